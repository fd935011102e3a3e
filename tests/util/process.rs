//! The real binaries, run as separate processes and bounded in time: every test that spawns
//! one gets its exit code, stdout and stderr back as an [`Outcome`], and a process still
//! running past its limit is killed and fails the test. A [`Running`] process a test gives up
//! on (it panicked) is killed when dropped.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_peakload");

/// Longest any single invocation of a binary may take before the test fails.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// The documented exit codes (README, "Exit codes").
pub mod code {
    pub const OK: i32 = 0;
    pub const THRESHOLDS: i32 = 1;
    pub const REGRESSED: i32 = 1;
    pub const INVALID: i32 = 2;
    pub const INTERRUPTED: i32 = 3;
    pub const UNREACHABLE: i32 = 4;
    pub const UNWRITTEN: i32 = 5;
    pub const START_MISSED: i32 = 6;
    pub const INCOMPLETE: i32 = 7;
}

/// `peakload` with no arguments yet.
pub fn peakload() -> Command {
    Command::new(BIN)
}

/// How a process ended. For `peakload run`, `out` is its `--out` directory.
pub struct Outcome {
    /// The exit code; -1 when a signal ended the process.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub out: PathBuf,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn results_path(&self) -> PathBuf {
        self.out.join("results.json")
    }

    /// `results.json`, parsed; fails with the process's output when there is none.
    pub fn results(&self) -> Value {
        let path = self.results_path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "no {} ({e})\nexit {}\nstdout:\n{}\nstderr:\n{}",
                path.display(),
                self.code,
                self.stdout,
                self.stderr
            )
        });
        serde_json::from_str(&text).expect("results.json is JSON")
    }

    #[track_caller]
    pub fn expect_code(&self, want: i32) -> &Self {
        assert_eq!(
            self.code, want,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A started process whose stdout and stderr are being collected.
pub struct Running {
    child: Option<Child>,
    started: Instant,
    out: PathBuf,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

/// Starts `cmd` with stdin closed and its output collected.
pub fn spawn(mut cmd: Command) -> Running {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let stdout = child.stdout.take().map(collect);
    let stderr = child.stderr.take().map(collect);
    Running {
        child: Some(child),
        started,
        out: PathBuf::new(),
        stdout,
        stderr,
    }
}

fn collect(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `cmd` to its end, within [`RUN_LIMIT`].
pub fn run(cmd: Command) -> Outcome {
    spawn(cmd).finish()
}

/// Runs `cmd` to its end, within `limit`.
pub fn run_within(cmd: Command, limit: Duration) -> Outcome {
    spawn(cmd).finish_within(limit)
}

impl Running {
    /// Names the run's `--out` directory, for [`Outcome::results`].
    pub fn writing_to(mut self, out: PathBuf) -> Self {
        self.out = out;
        self
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    fn pid(&self) -> libc::pid_t {
        self.child.as_ref().expect("running").id() as libc::pid_t
    }

    /// Sends `sig` to the process.
    pub fn signal(&self, sig: libc::c_int) {
        let pid = self.pid();
        // SAFETY: kill has no memory-safety preconditions; the pid is our own live child.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
    }

    /// Sends `sig` to the process group the process leads (started with `process_group(0)`),
    /// as a terminal does on Ctrl-C.
    pub fn signal_group(&self, sig: libc::c_int) {
        let pid = self.pid();
        // SAFETY: as in `signal`; the group is our child's own.
        let rc = unsafe { libc::kill(-pid, sig) };
        assert_eq!(rc, 0, "kill(-{pid}, {sig}) failed");
    }

    /// Waits for the end, within [`RUN_LIMIT`] of the start.
    pub fn finish(self) -> Outcome {
        self.finish_within(RUN_LIMIT)
    }

    /// Waits for the end; past `limit` from the start, kills the process and fails the test.
    pub fn finish_within(mut self, limit: Duration) -> Outcome {
        let mut child = self.child.take().expect("running");
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the process") {
                break status;
            }
            if self.started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "still running after {limit:?}; killed it\nstdout:\n{}\nstderr:\n{}",
                    self.output(),
                    self.errors()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let elapsed = self.started.elapsed();
        Outcome {
            code: status.code().unwrap_or(-1),
            stdout: self.output(),
            stderr: self.errors(),
            out: std::mem::take(&mut self.out),
            elapsed,
        }
    }

    fn output(&mut self) -> String {
        self.stdout
            .take()
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default()
    }

    fn errors(&mut self) -> String {
        self.stderr
            .take()
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `done` every 20 ms; fails the test after `limit`.
#[track_caller]
pub fn wait_until(what: &str, limit: Duration, done: impl FnMut() -> bool) {
    assert!(eventually(limit, done), "timed out waiting for {what}");
}

/// Polls `done` every 20 ms for up to `limit`; whether it held.
pub fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}
