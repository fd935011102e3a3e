//! The bundled reference stack: `peakload stack up` (the stack in the foreground), and for
//! `base_url = "stack"` a child process on a free loopback port, ready before the run starts
//! and stopped after it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The child's pid, so that an immediate exit (second Ctrl-C) can still stop it.
pub static STACK_PID: AtomicU32 = AtomicU32::new(0);

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("the reference stack binary `peakload-stack` was not found next to {exe} or on PATH; build it with `cargo build --release --workspace`")]
    NotFound { exe: String },
    #[error("could not start {binary}: {source}")]
    Spawn {
        binary: String,
        source: std::io::Error,
    },
    #[error("cannot write the reference stack's log {path}: {source}")]
    Log {
        path: String,
        source: std::io::Error,
    },
    #[error("the reference stack did not become ready within {0:?}; see {1}")]
    NotReady(Duration, String),
    #[error("the reference stack exited during start-up ({status}; log {log}):\n{tail}")]
    Exited {
        status: String,
        log: String,
        tail: String,
    },
}

/// `peakload stack up`: becomes the stack process (exec), so signals, stdio and the exit code
/// are the stack's own. Returns only when it could not start.
pub fn up(args: &[std::ffi::OsString]) -> Result<super::Outcome, super::Failure> {
    use std::os::unix::process::CommandExt as _;
    let Some(binary) = find_binary() else {
        return Err(super::Failure::Unreachable("the reference stack binary `peakload-stack` was not found next to peakload or on PATH; build it with `cargo build --release --workspace`".into()));
    };
    let e = std::process::Command::new(&binary)
        .arg("all")
        .args(args)
        .exec();
    Err(super::Failure::Unreachable(format!(
        "cannot start {}: {e}",
        binary.display()
    )))
}

pub struct StackProcess {
    child: Child,
    pub base_url: String,
}

/// Finds `peakload-stack`: beside this executable first (cargo puts both in one directory),
/// then on PATH.
pub fn find_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("PEAKLOAD_STACK_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    for candidate in [dir.join("peakload-stack"), dir.join("../peakload-stack")] {
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("peakload-stack"))
        .find(|p| p.is_file())
}

pub async fn start(
    data_dir: &Path,
    log: PathBuf,
    extra_args: &[String],
) -> Result<StackProcess, StackError> {
    let binary = find_binary().ok_or_else(|| StackError::NotFound {
        exe: std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    })?;
    // The stack writes its log itself, so that its last lines reach the file however peakload
    // ends; a log that cannot be written is found here, with its reason, rather than as a
    // stack that died without a word.
    let log_error = |source| StackError::Log {
        path: log.display().to_string(),
        source,
    };
    let mut log_file = std::fs::File::create(&log).map_err(log_error)?;
    {
        use std::io::Write as _;
        log_file
            .write_all(b"peakload: starting the reference stack\n")
            .and_then(|()| log_file.sync_data())
            .map_err(log_error)?;
    }
    let mut command = Command::new(&binary);
    // SAFETY: prctl is async-signal-safe, and the closure allocates nothing.
    unsafe {
        command.pre_exec(|| {
            // Out of the terminal's process group (below), the stack must still end with
            // peakload, however peakload ends (SIGKILL, a closed terminal). Spawned from the
            // thread that runs the whole run, which lives as long as the process. SIGHUP, not
            // SIGTERM: when peakload is killed, the signal can arrive once per dying thread,
            // and a second SIGTERM means "exit now, without draining" to the stack.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGHUP) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .arg("all")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        // Its own process group: a terminal's Ctrl-C reaches peakload alone, which drains its
        // requests against a stack still serving, scrapes the last second, then stops it.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| StackError::Spawn {
            binary: binary.display().to_string(),
            source,
        })?;
    STACK_PID.store(child.id().unwrap_or(0), Ordering::SeqCst);
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let limit = Duration::from_secs(60);
    let log_name = log.display().to_string();
    let started = Instant::now();
    let base_url = loop {
        let line = tokio::time::timeout(limit.saturating_sub(started.elapsed()), lines.next_line())
            .await
            .map_err(|_| StackError::NotReady(limit, log_name.clone()))?;
        match line {
            Ok(Some(l)) => {
                if let Some(url) = l.trim().strip_prefix("peakload-stack listening on ") {
                    break url.trim().to_string();
                }
            }
            _ => {
                let status = match child.wait().await {
                    Ok(status) => status.to_string(),
                    Err(e) => format!("exit status unknown: {e}"),
                };
                let tail = log_tail(&log, 6);
                return Err(StackError::Exited {
                    status,
                    tail: if tail.is_empty() {
                        "  (it wrote nothing to its log)".to_string()
                    } else {
                        tail
                    },
                    log: log_name,
                });
            }
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    wait_ready(&base_url, limit.saturating_sub(started.elapsed()))
        .await
        .map_err(|_| StackError::NotReady(limit, log_name))?;
    Ok(StackProcess { child, base_url })
}

/// The last `n` non-empty lines the stack wrote to its log, indented, for an error message.
fn log_tail(log: &Path, n: usize) -> String {
    let bytes = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("peakload: "))
        .collect();
    let from = lines.len().saturating_sub(n);
    lines[from..]
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn wait_ready(base_url: &str, limit: Duration) -> Result<(), ()> {
    let (origin, _) = crate::url::split_url(base_url).map_err(|_| ())?;
    let deadline = Instant::now() + limit;
    let mut client = crate::http::Client::new(crate::http::ClientOptions::default());
    while Instant::now() < deadline {
        client.request.clear();
        client.request.extend_from_slice(
            format!(
                "GET /readyz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                origin.host_header()
            )
            .as_bytes(),
        );
        if let Ok(Ok(200)) = tokio::time::timeout(
            Duration::from_secs(2),
            client.send(&origin, crate::http::Method::GET),
        )
        .await
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(())
}

impl StackProcess {
    /// SIGTERM, then a kill if it has not exited within 10 s.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: sending a signal to our own child process.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        STACK_PID.store(0, Ordering::SeqCst);
    }
}

/// Kills the stack child at once, for an immediate exit.
pub fn kill_now() {
    let pid = STACK_PID.load(Ordering::SeqCst);
    if pid != 0 {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    }
}
