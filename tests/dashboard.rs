//! The live dashboard end to end: the real binary in a real terminal (tmux), against a real
//! HTTP server on port 0. Reads the screen with `capture-pane`, presses keys with `send-keys`,
//! then checks the results and that the terminal was given back.
//!
//! Needs `tmux` on PATH (`apt-get install -y tmux`).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::process::BIN;
use crate::util::tmux::Tmux;
use crate::util::{shared_cpu, Case, Journey, Scenario, Step, TestServer};

/// Twenty seconds of load in two named stages, with thresholds for the dashboard to show.
fn dash_scenario(journey: Journey) -> Scenario {
    Scenario::new("dash-e2e")
        .timeout("30s")
        .thresholds(&["http.error_rate < 1%", "http.p99 < 2s"])
        .stages(20, 50, &[("10s", 40, "warm-up"), ("10s", 40, "steady")])
        .journey(journey)
}

/// `peakload run` in the pane, then its exit code, then a pause that keeps the pane open.
fn shell_command(case: &Case, server: &TestServer, extra: &str) -> String {
    format!(
        "{BIN} run {} --target {} --out {} {extra}; echo \"peakload exited $?\"; sleep 600",
        case.scenario().display(),
        server.url(),
        case.out().display()
    )
}

fn results_status(out: &Path) -> String {
    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json written");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["status"].as_str().unwrap().to_string()
}

#[test]
fn dashboard_shows_the_run_q_stops_it_and_the_terminal_is_restored() {
    let _cpu = shared_cpu();
    let server = TestServer::start();
    let case = Case::new(dash_scenario(
        Journey::new("shop")
            .step(Step::get("list", "/work").check("{ status = 200 }"))
            .step(Step::get("item", "/delay/{{random_int 1 9}}").check("{ status = 200 }")),
    ));
    let tmux = Tmux::start("q", &shell_command(&case, &server, ""));

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
    assert_eq!(results_status(&case.out()), "interrupted");
}

#[test]
fn second_ctrl_c_exits_at_once_and_still_restores_the_terminal() {
    let _cpu = shared_cpu();
    let server = TestServer::start();
    // Each request takes 20 s: the drain has requests in flight to wait for.
    let case = Case::new(dash_scenario(
        Journey::new("waiting").step(Step::get("slow", "/delay/20000")),
    ));
    let tmux = Tmux::start("ctrlc", &shell_command(&case, &server, "--drain 60s"));
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
    let stty = tmux.stty();
    assert!(
        stty.contains("icanon") && !stty.contains("-icanon"),
        "raw mode is off: {stty}"
    );
}
