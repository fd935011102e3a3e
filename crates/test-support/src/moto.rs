//! The local AWS API emulator, `moto_server`: where it is, the credentials the SDK wants for
//! it, and a check that it answers.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Once;
use std::time::Duration;

/// `PEAKLOAD_MOTO_URL`, by default `http://127.0.0.1:5055` (where `scripts/test` starts it).
pub fn moto_url() -> String {
    std::env::var("PEAKLOAD_MOTO_URL").unwrap_or_else(|_| "http://127.0.0.1:5055".to_owned())
}

/// Credentials and region for the emulator (not secrets), unless the environment has them.
pub fn aws_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
        ] {
            if std::env::var_os(k).is_none() {
                std::env::set_var(k, v);
            }
        }
    });
}

/// The emulator's URL, after [`aws_env`]; fails the test (never skips it) when moto does not
/// answer `GET /moto-api/` within 5 s.
pub fn require_moto() -> String {
    aws_env();
    let url = moto_url();
    if let Err(why) = answers(&url) {
        panic!(
            "moto_server is not reachable at {url} ({why}): run the tests through scripts/test, \
             which starts it (or start `moto_server -H 127.0.0.1 -p 5055` and set \
             PEAKLOAD_MOTO_URL)"
        );
    }
    url
}

/// Creates an S3 bucket named `name` in the emulator (a unique name per test: the emulator
/// is shared by the whole suite). The emulator does not check signatures, so a plain
/// `PUT /name` does, without an SDK in every test binary.
pub fn create_bucket(name: &str) {
    let url = require_moto();
    let (status, body) = request(&url, &format!("PUT /{name}"))
        .unwrap_or_else(|e| panic!("creating bucket {name} at {url}: {e}"));
    assert!(
        status.contains(" 200 "),
        "creating bucket {name} at {url}: {status}\n{body}"
    );
}

/// Deletes the empty S3 bucket `name` in the emulator, as [`create_bucket`] makes one: at once,
/// without a Python start-up in between (a test that removes a bucket under a running upload).
pub fn delete_bucket(name: &str) {
    let url = require_moto();
    let (status, body) = request(&url, &format!("DELETE /{name}"))
        .unwrap_or_else(|e| panic!("deleting bucket {name} at {url}: {e}"));
    assert!(
        status.contains(" 204 ") || status.contains(" 200 "),
        "deleting bucket {name} at {url}: {status}\n{body}"
    );
}

/// One plain HTTP/1.1 request without a body (`METHOD /path`): the status line and the body.
fn request(url: &str, line: &str) -> Result<(String, String), String> {
    let mut conn = open(url)?;
    let host = host_of(url)?;
    write!(
        conn,
        "{line} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut text = String::new();
    conn.read_to_string(&mut text).map_err(|e| e.to_string())?;
    let (status, rest) = text.split_once("\r\n").unwrap_or((&text, ""));
    let body = rest.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status.to_owned(), body.to_owned()))
}

fn host_of(url: &str) -> Result<&str, String> {
    Ok(url
        .strip_prefix("http://")
        .ok_or("not an http:// URL")?
        .split('/')
        .next()
        .unwrap_or_default())
}

fn open(url: &str) -> Result<TcpStream, String> {
    let limit = Duration::from_secs(5);
    let addr = host_of(url)?
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let conn = TcpStream::connect_timeout(&addr, limit).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(limit))
        .map_err(|e| e.to_string())?;
    conn.set_write_timeout(Some(limit))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// One plain HTTP/1.1 request: any status line counts as an answer.
fn answers(url: &str) -> Result<(), String> {
    let limit = Duration::from_secs(5);
    let host = url
        .strip_prefix("http://")
        .ok_or("not an http:// URL")?
        .split('/')
        .next()
        .unwrap_or_default();
    let addr = host
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let mut conn = TcpStream::connect_timeout(&addr, limit).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(limit))
        .map_err(|e| e.to_string())?;
    conn.set_write_timeout(Some(limit))
        .map_err(|e| e.to_string())?;
    write!(
        conn,
        "GET /moto-api/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).map_err(|e| e.to_string())?;
    if head.starts_with(b"HTTP/1.") {
        Ok(())
    } else {
        Err(format!("not HTTP: {:?}", String::from_utf8_lossy(&head)))
    }
}
