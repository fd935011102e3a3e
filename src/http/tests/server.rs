//! A scripted HTTP/1.1 server on 127.0.0.1:0, over TCP or TLS, for the conformance suite and
//! the engine's tests: each connection follows a script (read a request, write bytes split
//! at chosen offsets, pause, close, close without TLS close_notify, reset), and everything the
//! server received is logged, request by request and connection by connection.
//!
//! After its script a connection keeps reading and logs any further request without answering
//! it, so a request sent where none was expected shows up in the log.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

use crate::url::Origin;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Tcp,
    Tls,
}

pub(crate) const BOTH: [Transport; 2] = [Transport::Tcp, Transport::Tls];

/// How a write is cut into pieces, each written and flushed on its own after a short pause,
/// so the client sees them in separate reads.
#[derive(Debug, Clone)]
pub(crate) enum Split {
    Whole,
    /// One byte per write.
    Bytes,
    /// Cut before each of these offsets.
    At(Vec<usize>),
}

#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// Read one request (head, and a body by Content-Length) and log it.
    Read,
    Write(Vec<u8>, Split),
    Pause(Duration),
    /// FIN, after a TLS close_notify.
    Close,
    /// Drop the connection without a TLS close_notify (over TCP, the same as `Close`).
    CloseAbruptly,
    /// RST (SO_LINGER 0).
    Reset,
}

/// Read a request and answer it with `response` in one write.
pub(crate) fn answer(response: &[u8]) -> Vec<Step> {
    vec![Step::Read, Step::Write(response.to_vec(), Split::Whole)]
}

/// A 200 with a Content-Length body, keep-alive.
pub(crate) fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One request as the server read it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// Index of the connection, in accept order.
    pub conn: usize,
    pub head: String,
    pub body: Vec<u8>,
}

impl Received {
    pub fn method(&self) -> &str {
        self.head.split(' ').next().unwrap_or("")
    }

    pub fn target(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or("")
    }

    /// Every value of a header, in order.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        self.head
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Log {
    pub connections: usize,
    pub requests: Vec<Received>,
}

pub(crate) struct ScriptedServer {
    pub addr: SocketAddr,
    pub transport: Transport,
    log: Arc<Mutex<Log>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl ScriptedServer {
    /// Connection `i` follows `scripts[i]`, or the last script once they run out.
    pub async fn start(transport: Transport, scripts: Vec<Vec<Step>>) -> ScriptedServer {
        Self::start_with(transport, |_| scripts).await
    }

    /// Like [`ScriptedServer::start`], for scripts that need the server's own URL.
    pub async fn start_with(
        transport: Transport,
        scripts: impl FnOnce(&str) -> Vec<Vec<Step>>,
    ) -> ScriptedServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let scripts = scripts(&url_of(transport, addr));
        assert!(!scripts.is_empty());
        let log = Arc::new(Mutex::new(Log::default()));
        let acceptor = (transport == Transport::Tls).then(tls_acceptor);
        let accept = {
            let log = log.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    let _ = tcp.set_nodelay(true);
                    let conn = {
                        let mut l = log.lock().unwrap();
                        l.connections += 1;
                        l.connections - 1
                    };
                    let script = scripts[conn.min(scripts.len() - 1)].clone();
                    let log = log.clone();
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let stream = match acceptor {
                            None => ServerStream::Plain(tcp),
                            Some(a) => match a.accept(tcp).await {
                                Ok(s) => ServerStream::Tls(Box::new(s)),
                                Err(_) => return,
                            },
                        };
                        run(stream, conn, script, log).await;
                    });
                }
            })
        };
        ScriptedServer {
            addr,
            transport,
            log,
            accept,
        }
    }

    pub fn origin(&self) -> Origin {
        Origin {
            tls: self.transport == Transport::Tls,
            host: "127.0.0.1".into(),
            port: self.addr.port(),
        }
    }

    pub fn url(&self) -> String {
        url_of(self.transport, self.addr)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.log.lock().unwrap().requests.clone()
    }

    pub fn connections(&self) -> usize {
        self.log.lock().unwrap().connections
    }

    /// Waits (a little) for the server to have logged `n` requests; returns what it has.
    pub async fn settle(&self, n: usize) -> Vec<Received> {
        for _ in 0..100 {
            if self.requests().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Anything more would arrive about now.
        tokio::time::sleep(Duration::from_millis(30)).await;
        self.requests()
    }
}

fn url_of(transport: Transport, addr: SocketAddr) -> String {
    let scheme = match transport {
        Transport::Tcp => "http",
        Transport::Tls => "https",
    };
    format!("{scheme}://127.0.0.1:{}", addr.port())
}

enum ServerStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl ServerStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            ServerStream::Plain(s) => s,
            ServerStream::Tls(s) => s.get_ref().0,
        }
    }

    async fn read_some(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        match self {
            ServerStream::Plain(s) => s.read_buf(buf).await,
            ServerStream::Tls(s) => s.read_buf(buf).await,
        }
    }

    async fn write_piece(&mut self, piece: &[u8]) -> std::io::Result<()> {
        match self {
            ServerStream::Plain(s) => write_flush(s, piece).await,
            ServerStream::Tls(s) => write_flush(s.as_mut(), piece).await,
        }
    }

    async fn close(mut self) {
        match &mut self {
            ServerStream::Plain(s) => {
                let _ = s.shutdown().await;
            }
            ServerStream::Tls(s) => {
                let _ = s.shutdown().await;
            }
        }
    }
}

async fn write_flush<S: AsyncWrite + Unpin>(s: &mut S, piece: &[u8]) -> std::io::Result<()> {
    s.write_all(piece).await?;
    s.flush().await
}

async fn run(mut stream: ServerStream, conn: usize, script: Vec<Step>, log: Arc<Mutex<Log>>) {
    let mut buf = Vec::new();
    for step in script {
        match step {
            Step::Read => {
                if !read_request(&mut stream, &mut buf, conn, &log).await {
                    return;
                }
            }
            Step::Write(bytes, split) => {
                let cuts: Vec<usize> = match split {
                    Split::Whole => vec![],
                    Split::Bytes => (1..bytes.len()).collect(),
                    Split::At(at) => at,
                };
                let mut from = 0;
                for cut in cuts.into_iter().chain([bytes.len()]) {
                    if cut <= from {
                        continue;
                    }
                    if from > 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    if stream.write_piece(&bytes[from..cut]).await.is_err() {
                        return;
                    }
                    from = cut;
                }
            }
            Step::Pause(d) => tokio::time::sleep(d).await,
            Step::Close => {
                stream.close().await;
                return;
            }
            Step::CloseAbruptly => return,
            Step::Reset => {
                let _ = socket2::SockRef::from(stream.tcp()).set_linger(Some(Duration::ZERO));
                return;
            }
        }
    }
    // The script is done: log whatever else comes, without answering.
    while read_request(&mut stream, &mut buf, conn, &log).await {}
}

/// Reads one request into the log; false when the connection ended first.
async fn read_request(
    stream: &mut ServerStream,
    buf: &mut Vec<u8>,
    conn: usize,
    log: &Mutex<Log>,
) -> bool {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head_len)) = req.parse(buf) {
            let length = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0usize);
            if buf.len() >= head_len + length {
                let head = String::from_utf8_lossy(&buf[..head_len - 4]).into_owned();
                let body = buf[head_len..head_len + length].to_vec();
                buf.drain(..head_len + length);
                log.lock()
                    .unwrap()
                    .requests
                    .push(Received { conn, head, body });
                return true;
            }
        }
        match stream.read_some(buf).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost, made once per test process.
fn certificate() -> &'static (Vec<u8>, Vec<u8>) {
    static CERT: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    CERT.get_or_init(|| {
        let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("a self-signed certificate");
        (ck.cert.der().to_vec(), ck.key_pair.serialize_der())
    })
}

pub(crate) fn tls_acceptor_with_alpn(alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
    let (cert, key) = certificate();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(cert.clone())],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.clone().into()),
        )
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    let (cert, key) = certificate();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(cert.clone())],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.clone().into()),
        )
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}
