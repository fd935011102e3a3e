//! The live dashboard end to end: the real binary in a real terminal (tmux), against a real
//! HTTP server on port 0. Reads the screen with `capture-pane`, presses keys with `send-keys`,
//! then checks the results and that the terminal was given back.
//!
//! Needs `tmux` on PATH (`apt-get install -y tmux`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;

/// A tiny target: fast endpoints, and a slow one to keep requests in flight while draining.
fn start_server() -> (String, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = Router::new()
                .route("/api/items", get(|| async { "[1,2,3]" }))
                .route("/api/items/{id}", get(|| async { "{\"id\":1}" }))
                .route(
                    "/slow",
                    get(|| async {
                        tokio::time::sleep(Duration::from_secs(20)).await;
                        "late"
                    }),
                );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    (format!("http://{addr}"), handle)
}

/// One tmux server (own socket) with one 160×48 session; killed on drop, pass or fail.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(name: &str, command: &str) -> Tmux {
        let socket = format!("peakload-{name}-{}", std::process::id());
        let tmux = Tmux { socket };
        let out = tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "160",
            "-y",
            "48",
            "-s",
            "t",
            command,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is needed for this test: apt-get install -y tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    fn alternate_on(&self) -> bool {
        let out = self.run(&["display", "-p", "-t", "t", "#{alternate_on}"]);
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    fn keys(&self, keys: &str) {
        assert!(self.run(&["send-keys", "-t", "t", keys]).status.success());
    }

    /// Polls the screen until `done` holds; panics with the last screen after `limit`.
    fn wait_for(&self, what: &str, limit: Duration, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn write_scenario(dir: &Path, journey: &str, steps: &str) -> PathBuf {
    let path = dir.join("dash.toml");
    std::fs::write(
        &path,
        format!(
            r#"name = "dash-e2e"
base_url = "http://127.0.0.1:9"
timeout = "30s"
thresholds = ["http.error_rate < 1%", "http.p99 < 2s"]

[load]
start_rps = 20
max_vus = 50
stages = [
  {{ duration = "10s", target_rps = 40, name = "warm-up" }},
  {{ duration = "10s", target_rps = 40, name = "steady" }},
]

[[journey]]
name = "{journey}"
{steps}
"#
        ),
    )
    .unwrap();
    path
}

fn shell_command(bin: &str, scenario: &Path, target: &str, out: &Path, extra: &str) -> String {
    format!(
        "{bin} run {} --target {target} --out {} {extra}; echo \"peakload exited $?\"; sleep 600",
        scenario.display(),
        out.display()
    )
}

fn results_status(out: &Path) -> String {
    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json written");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["status"].as_str().unwrap().to_string()
}

const STEPS: &str = r#"
  [[journey.step]]
  name = "list"
  path = "/api/items"
  check = { status = 200 }

  [[journey.step]]
  name = "item"
  path = "/api/items/{{random_int 1 9}}"
  check = { status = 200 }
"#;

#[test]
fn dashboard_shows_the_run_q_stops_it_and_the_terminal_is_restored() {
    let (target, _server) = start_server();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "shop", STEPS);
    let out = dir.path().join("out");
    let bin = env!("CARGO_BIN_EXE_peakload");
    let tmux = Tmux::start("q", &shell_command(bin, &scenario, &target, &out, ""));

    let screen = tmux.wait_for("the dashboard with figures", Duration::from_secs(20), |s| {
        s.contains("dash-e2e")
            && s.contains("shop/list")
            && s.contains("shop/item")
            && s.contains("Requests/s")
            && s.contains("it/s")
            && s.contains("✓ http.error_rate < 1%")
            && !s.contains("Requests/s 0.0 ")
    });
    assert!(
        tmux.alternate_on(),
        "the dashboard uses the alternate screen"
    );
    assert!(screen.contains("warm-up"), "{screen}");
    println!("dashboard:\n{screen}");

    tmux.keys("Tab");
    tmux.wait_for("the per-step view", Duration::from_secs(5), |s| {
        s.contains("now/s") && s.contains("GET")
    });
    tmux.keys("Tab");
    tmux.wait_for("the overview again", Duration::from_secs(5), |s| {
        s.contains("Latency")
    });

    tmux.keys("q");
    let screen = tmux.wait_for("peakload to exit", Duration::from_secs(20), |s| {
        s.contains("peakload exited")
    });
    println!("after q:\n{screen}");
    assert!(!tmux.alternate_on(), "terminal restored:\n{screen}");
    assert!(
        screen.contains("peakload exited 3"),
        "exit code 3 (interrupted):\n{screen}"
    );
    assert!(
        screen.contains("dash-e2e — open") && screen.contains("(interrupted)"),
        "the text summary prints after the dashboard:\n{screen}"
    );
    assert!(screen.contains("thresholds:"), "{screen}");
    assert!(
        !screen.contains("Requests/s"),
        "no dashboard left over:\n{screen}"
    );
    assert_eq!(results_status(&out), "interrupted");
}

#[test]
fn second_ctrl_c_exits_at_once_and_still_restores_the_terminal() {
    let (target, _server) = start_server();
    let dir = tempfile::tempdir().unwrap();
    let steps = r#"
  [[journey.step]]
  name = "slow"
  path = "/slow"
"#;
    let scenario = write_scenario(dir.path(), "waiting", steps);
    let out = dir.path().join("out");
    let bin = env!("CARGO_BIN_EXE_peakload");
    let tmux = Tmux::start(
        "ctrlc",
        &shell_command(bin, &scenario, &target, &out, "--drain 60s"),
    );
    tmux.wait_for("the dashboard", Duration::from_secs(20), |s| {
        s.contains("dash-e2e") && s.contains("waiting/slow")
    });

    // In raw mode Ctrl-C is a key: the first one starts the drain (in-flight requests take
    // 20 s here), the second one must not wait for it.
    tmux.keys("C-c");
    tmux.wait_for("the stopping notice", Duration::from_secs(5), |s| {
        s.contains("STOPPING")
    });
    let pressed = Instant::now();
    tmux.keys("C-c");
    let screen = tmux.wait_for("peakload to exit", Duration::from_secs(10), |s| {
        s.contains("peakload exited")
    });
    assert!(
        pressed.elapsed() < Duration::from_secs(5),
        "the second Ctrl-C exits at once"
    );
    assert!(!tmux.alternate_on(), "terminal restored:\n{screen}");
    assert!(screen.contains("second interrupt: exiting now"), "{screen}");
    assert!(screen.contains("peakload exited 3"), "{screen}");
    let stty = tmux_stty(&tmux);
    assert!(
        stty.contains("icanon") && !stty.contains("-icanon"),
        "raw mode is off: {stty}"
    );
}

/// The pane's tty settings, read by a command typed into the waiting shell... which is
/// `sleep`; so ask tmux for the pane's tty and read it with stty from here.
fn tmux_stty(tmux: &Tmux) -> String {
    let tty = tmux.run(&["display", "-p", "-t", "t", "#{pane_tty}"]);
    let tty = String::from_utf8_lossy(&tty.stdout).trim().to_string();
    let out = Command::new("stty")
        .arg("-a")
        .arg("-F")
        .arg(&tty)
        .output()
        .expect("stty");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
