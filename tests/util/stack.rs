//! The bundled reference stack as a process of its own (`peakload-stack all`, or `peakload
//! stack up`), on a port of its choosing, announced by its first line on stdout. Its faults
//! are switched on over HTTP, as an operator would. Killed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The admin token [`StackProcess::all`] starts the stack with.
pub const ADMIN_TOKEN: &str = "planted";

const READY: &str = "peakload-stack listening on ";

/// `peakload-stack`, built next to `peakload` by `cargo test --workspace`.
pub fn stack_binary() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_peakload"));
    let stack = exe.with_file_name("peakload-stack");
    assert!(
        stack.is_file(),
        "{} is missing: build it with `cargo build --workspace`",
        stack.display()
    );
    stack
}

pub struct StackProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl StackProcess {
    /// `peakload-stack all` on `127.0.0.1:0` with [`ADMIN_TOKEN`], its data under `dir/data`,
    /// `extra` flags and `envs` added to the environment.
    pub fn all(dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> StackProcess {
        let mut cmd = Command::new(stack_binary());
        cmd.args([
            "all",
            "--listen",
            "127.0.0.1:0",
            "--admin-token",
            ADMIN_TOKEN,
        ])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(extra)
        .envs(envs.iter().copied());
        StackProcess::start(cmd)
    }

    /// Starts `cmd` and waits for its ready line, which must be its first line on stdout.
    /// The rest of stdout is read until the stack exits (a closed pipe would kill it).
    pub fn start(mut cmd: Command) -> StackProcess {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let Some(url) = line.strip_prefix(READY) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("unexpected ready line {line:?} from {cmd:?}");
        };
        let url = url.trim().to_string();
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        StackProcess { child, url }
    }

    /// Switches faults on (`POST /admin/faults`, a JSON body); fails unless answered 200.
    pub fn post_fault(&self, body: &str) {
        let answer = http(
            &self.url,
            "POST",
            "/admin/faults",
            &[
                ("Authorization", &format!("Bearer {ADMIN_TOKEN}")),
                ("Content-Type", "application/json"),
            ],
            body,
        );
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    /// The process id, for a signal sent from outside (`SIGSTOP`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then the exit status within 20 s.
    pub fn terminate(mut self) -> ExitStatus {
        // SAFETY: kill has no memory-safety preconditions; the pid is our own live child.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the stack did not exit within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for StackProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on a connection of its own; returns the whole answer, status line
/// first.
pub fn http(
    base_url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> String {
    let addr = base_url.trim_start_matches("http://").trim_end_matches('/');
    let mut conn = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("Connection: close\r\n\r\n");
    request.push_str(body);
    conn.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    answer
}
