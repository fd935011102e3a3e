//! Faults planted from outside the stack, with the tools an operator would use — not the
//! stack's fault switches: another MariaDB session holding `LOCK TABLES products WRITE`, and
//! `SIGSTOP` of the worker process. The stack runs as two processes (`peakload-stack api` and
//! `peakload-stack worker`) on a fresh MariaDB database; `peakload run` loads the API at 30
//! arrivals/s for 22 s, scraping both `/metrics` every second; at t≈10 s the fault is planted
//! for 8 s. The diagnosis must name the matching kind first, dated within a few seconds of the
//! fault, and the same setup with no fault must name no cause.
//!
//! These are the fast cases of `bench/faults` (the full suite, with CPU, memory, I/O and a
//! delay on the users' path, is too slow and too machine-dependent for CI).
//!
//! Needs MariaDB (`PEAKLOAD_TEST_MYSQL_URL`, set by `scripts/test`) and its command-line client
//! (`mariadb` or `mysql`, from `mariadb-client`): the lock is held by a session of that client,
//! as a DBA's would be. Under CI a missing server or client fails the tests; elsewhere they
//! skip, saying so on stderr.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use peakload_test_support::unique;
use serde_json::Value;

use crate::util::stack::{stack_binary, StackProcess};
use crate::util::{exclusive_cpu, peakload, run, spawn, Case, Journey, Scenario, Step};

/// When the fault is planted, and for how long.
const FAULT_AT: Duration = Duration::from_millis(10_300);
const FAULT_FOR: u64 = 8;

/// What `PEAKLOAD_TEST_MYSQL_URL` names, as the command-line client takes it.
struct Server {
    url: String,
    host: String,
    port: String,
    user: String,
    password: Option<String>,
    client: PathBuf,
}

impl Server {
    /// The test server, or `None` (with the reason on stderr) when it cannot be used and CI is
    /// not set; under CI, a test failure.
    fn find() -> Option<Server> {
        let url = std::env::var("PEAKLOAD_TEST_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
        let found = Server::parse(&url).and_then(|s| s.check().map(|()| s));
        match found {
            Ok(s) => Some(s),
            Err(why) if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) => {
                panic!("{why} (CI is set, so this fails instead of skipping)")
            }
            Err(why) => {
                eprintln!("SKIPPED: outside-fault test: {why}");
                None
            }
        }
    }

    fn parse(url: &str) -> Result<Server, String> {
        let rest = url
            .strip_prefix("mysql://")
            .or_else(|| url.strip_prefix("mariadb://"))
            .ok_or_else(|| "PEAKLOAD_TEST_MYSQL_URL is not a mysql:// URL".to_owned())?;
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let (creds, hostport) = authority.rsplit_once('@').unwrap_or(("root", authority));
        let (user, password) = match creds.split_once(':') {
            Some((u, p)) => (u, Some(p.to_owned())),
            None => (creds, None),
        };
        let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "3306"));
        let client = ["mariadb", "mysql"]
            .iter()
            .find_map(|c| which(c))
            .ok_or_else(|| {
                "no MariaDB client (`mariadb` or `mysql`) on PATH: apt-get install mariadb-client"
                    .to_owned()
            })?;
        Ok(Server {
            url: url.to_owned(),
            host: host.to_owned(),
            port: port.to_owned(),
            user: user.to_owned(),
            password,
            client,
        })
    }

    fn check(&self) -> Result<(), String> {
        let out = self
            .client(None, "SELECT 1")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.client.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "MariaDB is unreachable at {}:{} (set PEAKLOAD_TEST_MYSQL_URL; scripts/test does): {}",
                self.host,
                self.port,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// The client running `sql` (on `db`), the password in its environment, not its arguments.
    fn client(&self, db: Option<&str>, sql: &str) -> Command {
        let mut cmd = Command::new(&self.client);
        cmd.args([
            "--protocol=TCP",
            "-h",
            &self.host,
            "-P",
            &self.port,
            "-u",
            &self.user,
        ])
        .args(["--batch", "--skip-column-names", "--connect-timeout=10"]);
        if let Some(p) = &self.password {
            cmd.env("MYSQL_PWD", p);
        }
        if let Some(db) = db {
            cmd.arg(db);
        }
        cmd.arg("-e").arg(sql);
        cmd
    }

    fn sql(&self, db: Option<&str>, sql: &str) {
        let out = self.client(db, sql).stdin(Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// A database made for one test, dropped with it (after every session on it is ended).
struct Database<'a> {
    server: &'a Server,
    name: String,
}

impl<'a> Database<'a> {
    fn create(server: &'a Server) -> Database<'a> {
        let name = unique("plt_outside_");
        server.sql(None, &format!("CREATE DATABASE `{name}`"));
        Database { server, name }
    }

    fn url(&self) -> String {
        peakload_url(&self.server.url, &self.name)
    }
}

impl Drop for Database<'_> {
    fn drop(&mut self) {
        let _ = self
            .server
            .client(None, &format!("DROP DATABASE IF EXISTS `{}`", self.name))
            .stdin(Stdio::null())
            .output();
    }
}

/// `url` with its database replaced by `db` (its query, if any, kept).
fn peakload_url(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    }
}

/// A process of the test's own (a database session, a signal's target), killed on drop.
struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child. A
        // stopped process is continued first, so nothing is left stopped.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGCONT) };
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

enum Fault {
    None,
    /// `LOCK TABLES products WRITE` from another session for [`FAULT_FOR`] seconds.
    LockTables,
    /// `SIGSTOP` of the worker process, `SIGCONT` [`FAULT_FOR`] seconds later.
    StopWorker,
}

/// 30 arrivals/s for 22 s: eight in ten look at a product, two send a notification and check
/// it was delivered (within 1.5 s when the worker is healthy).
fn scenario(api: &str, scrape: &[&str]) -> Scenario {
    let scrape: Vec<String> = scrape.iter().map(|u| format!("\"{u}/metrics\"")).collect();
    Scenario::new("outside")
        .base_url(api)
        .timeout("3s")
        .load("rps = 30\nduration = \"22s\"\nmax_vus = 200")
        .section(&format!(
            "[observe]\nscrape = [{}]\nscrape_interval = \"1s\"",
            scrape.join(", ")
        ))
        .journey(Journey::new("browse").weight(8).step(
            Step::get("product", "/api/products/{{random_int 1 200}}").check("{ status = 200 }"),
        ))
        .journey(
            Journey::new("notify")
                .weight(2)
                .step(
                    Step::post("notify", "/api/notifications")
                        .json(r#"{ to = "a@example.com", subject = "s", body = "b" }"#)
                        .extract(r#"{ id = { json = "$.id" } }"#)
                        .check("{ status = 202 }")
                        .think("1500ms"),
                )
                .step(
                    Step::get("status", "/api/notifications/{{id}}")
                        .check(r#"{ json = { "$.status" = "sent" } }"#),
                ),
        )
}

/// The stack on a fresh database, loaded and observed, with `fault` planted at [`FAULT_AT`];
/// returns `peakload diagnose --json` of the run and its text form (for failure messages).
fn outside(server: &Server, fault: Fault) -> (Value, String) {
    let db = Database::create(server);
    let stack = |role: &str| {
        let mut cmd = Command::new(stack_binary());
        cmd.args([
            role,
            "--listen",
            "127.0.0.1:0",
            "--log-level",
            "warn",
            "--mysql",
        ])
        .arg(db.url());
        StackProcess::start(cmd)
    };
    // The API first: it makes the schema and the seed data the worker reads.
    let api = stack("api");
    let worker = stack("worker");
    let case = Case::new(scenario(&api.url, &[&api.url, &worker.url]));
    let mut cmd = case.run_command(&case.out());
    cmd.arg("--quiet");
    let running = spawn(cmd).writing_to(case.out());
    std::thread::sleep(FAULT_AT.saturating_sub(running.started().elapsed()));
    let planted = Instant::now();
    let mut session = None;
    match fault {
        Fault::None => {}
        Fault::LockTables => {
            let sql =
                format!("LOCK TABLES products WRITE; SELECT SLEEP({FAULT_FOR}); UNLOCK TABLES;");
            let child = server
                .client(Some(&db.name), &sql)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            session = Some(Owned(child));
        }
        Fault::StopWorker => {
            // SAFETY: kill has no memory-safety preconditions; the pid is the worker's, our
            // own live child.
            let rc = unsafe { libc::kill(worker.pid() as libc::pid_t, libc::SIGSTOP) };
            assert_eq!(rc, 0);
            std::thread::sleep(Duration::from_secs(FAULT_FOR));
            // SAFETY: as above.
            let rc = unsafe { libc::kill(worker.pid() as libc::pid_t, libc::SIGCONT) };
            assert_eq!(rc, 0);
        }
    }
    if let Some(Owned(child)) = session.as_mut() {
        // The session ends by itself once the lock has been held for FAULT_FOR seconds.
        let status = child.wait().unwrap();
        assert!(status.success(), "the locking session failed: {status}");
        assert!(planted.elapsed() >= Duration::from_secs(FAULT_FOR - 1));
    }
    let outcome = running.finish();
    assert!(
        (0..=1).contains(&outcome.code),
        "peakload run failed: exit {}\n{}\n{}",
        outcome.code,
        outcome.stdout,
        outcome.stderr
    );
    let mut diagnose = peakload();
    diagnose.arg("diagnose").arg(outcome.results_path());
    let text = run(diagnose).stdout;
    let mut diagnose = peakload();
    diagnose
        .arg("diagnose")
        .arg(outcome.results_path())
        .arg("--json");
    let out = run(diagnose);
    assert_eq!(out.code, 0, "{}", out.stderr);
    (serde_json::from_str(&out.stdout).unwrap(), text)
}

/// The findings about the system under test: a short-of-CPU load generator is about the
/// machine that measured, which a loaded CI machine may well be.
fn findings(d: &Value) -> Vec<Value> {
    d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] != "generator_limited")
        .cloned()
        .collect()
}

/// The first finding, which must be of one of `want` and start within a few seconds of the
/// fault (t≈10.3 s; a lock met by requests sent just before it dates to t=9).
fn first_of(d: &Value, text: &str, want: &[&str]) -> Value {
    let found = findings(d);
    let kinds: Vec<&str> = found.iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert!(
        d["healthy"] == false && kinds.first().is_some_and(|k| want.contains(k)),
        "wanted one of {want:?} first, found {kinds:?}\n{text}"
    );
    let start = found[0]["window"]["start_s"].as_f64().unwrap();
    assert!(
        (8.0..=15.0).contains(&start),
        "the finding starts at t={start}, the fault at t≈10\n{text}"
    );
    found[0].clone()
}

#[test]
fn a_table_locked_by_another_session_is_the_database() {
    let Some(server) = Server::find() else { return };
    let _cpu = exclusive_cpu();
    let (d, text) = outside(&server, Fault::LockTables);
    let f = first_of(&d, &text, &["db_latency", "db_pool_saturation"]);
    // Read from the API's own database signals, not from the users' latency.
    let signal = f["signal"].as_str().unwrap();
    assert!(signal.starts_with("db_"), "{signal}\n{text}");
}

#[test]
fn a_stopped_worker_is_its_backlog_or_its_silence() {
    let Some(server) = Server::find() else { return };
    let _cpu = exclusive_cpu();
    let (d, text) = outside(&server, Fault::StopWorker);
    first_of(&d, &text, &["queue_backlog", "target_unresponsive"]);
}

#[test]
fn the_same_stack_unfaulted_names_no_cause() {
    let Some(server) = Server::find() else { return };
    let _cpu = exclusive_cpu();
    let (d, text) = outside(&server, Fault::None);
    let found = findings(&d);
    assert!(
        d["healthy"] == true && found.is_empty(),
        "a healthy run named {found:#?}\n{text}"
    );
}
