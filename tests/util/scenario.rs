//! Scenarios for the tests, written from what each test cares about.
//!
//! [`Scenario`] renders a scenario file: a name, a base URL (by default a closed port, so a run
//! without `--target` sends nothing anywhere real), optional top-level settings, a `[load]`
//! block, extra sections (`[observe]`, `[stack]`, feeders) and journeys of [`Step`]s. Values
//! are TOML as it would be written in the file: `Step::get("me", "/me").headers(r#"{
//! Authorization = "Bearer {{token}}" }"#)`. A test whose point is the exact text of a file (an
//! error's line and column) writes it literally instead.
//!
//! [`Case`] is a temporary directory holding `scenario.toml`, the data files it names and the
//! run's `out/` directory, with the commands that run it.

use std::fmt::{self, Display, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::process::{peakload, spawn, Outcome, Running};
use super::server::TestServer;

/// The base URL of a scenario the test runs with `--target`: a closed port on loopback.
pub const UNUSED_BASE_URL: &str = "http://127.0.0.1:9";

#[derive(Debug, Clone)]
pub struct Scenario {
    name: String,
    base_url: String,
    /// Top-level `key = value` lines after `base_url`.
    settings: Vec<String>,
    /// The body of `[load]`.
    load: String,
    /// Whole sections, as written.
    sections: Vec<String>,
    journeys: Vec<Journey>,
}

impl Scenario {
    /// A scenario with no load and no journey yet, aimed at [`UNUSED_BASE_URL`].
    pub fn new(name: &str) -> Scenario {
        Scenario {
            name: name.to_string(),
            base_url: UNUSED_BASE_URL.to_string(),
            settings: Vec::new(),
            load: String::new(),
            sections: Vec::new(),
            journeys: Vec::new(),
        }
    }

    /// A URL, or `"stack"` for the bundled stack.
    pub fn base_url(mut self, url: impl Display) -> Self {
        self.base_url = url.to_string();
        self
    }

    /// A top-level setting; `value` is TOML.
    pub fn setting(mut self, key: &str, value: impl Display) -> Self {
        self.settings.push(format!("{key} = {value}"));
        self
    }

    /// The requests' timeout, e.g. `"5s"`.
    pub fn timeout(self, duration: &str) -> Self {
        self.setting("timeout", quoted(duration))
    }

    pub fn thresholds(self, exprs: &[&str]) -> Self {
        let list: Vec<String> = exprs.iter().map(|e| quoted(e)).collect();
        self.setting("thresholds", format!("[{}]", list.join(", ")))
    }

    /// Open model: `rps` arrivals per second for `duration`.
    pub fn rps(self, rps: u32, duration: &str) -> Self {
        self.load(&format!("rps = {rps}\nduration = {}", quoted(duration)))
    }

    /// Closed model: `vus` virtual users for `duration`.
    pub fn vus(self, vus: u32, duration: &str) -> Self {
        self.load(&format!("vus = {vus}\nduration = {}", quoted(duration)))
    }

    /// Open model in stages of `(duration, target_rps, name)` (an empty name for none),
    /// starting at `start_rps`, with at most `max_vus`.
    pub fn stages(self, start_rps: u32, max_vus: u32, stages: &[(&str, u32, &str)]) -> Self {
        let mut body = format!("start_rps = {start_rps}\nmax_vus = {max_vus}\nstages = [\n");
        for (duration, target_rps, name) in stages {
            let name = match *name {
                "" => String::new(),
                n => format!(", name = {}", quoted(n)),
            };
            body.push_str(&format!(
                "  {{ duration = {}, target_rps = {target_rps}{name} }},\n",
                quoted(duration)
            ));
        }
        body.push(']');
        self.load(&body)
    }

    /// The body of `[load]`, as written (the model, VU limits).
    pub fn load(mut self, body: &str) -> Self {
        self.load = body.trim().to_string();
        self
    }

    /// A `[[feeder]]` reading `file` (next to the scenario, see [`Case::file`]).
    pub fn feeder(self, name: &str, file: &str, mode: &str) -> Self {
        self.section(&format!(
            "[[feeder]]\nname = {}\nfile = {}\nmode = {}",
            quoted(name),
            quoted(file),
            quoted(mode)
        ))
    }

    /// A whole section as written, e.g. `"[observe]\nscrape = [\"stack\"]"`.
    pub fn section(mut self, text: &str) -> Self {
        self.sections.push(text.trim().to_string());
        self
    }

    pub fn journey(mut self, journey: Journey) -> Self {
        self.journeys.push(journey);
        self
    }

    /// A step of the single journey `"j"` (created by the first call).
    pub fn step(mut self, step: Step) -> Self {
        match self.journeys.last_mut() {
            Some(j) if j.name == "j" => j.steps.push(step),
            _ => self.journeys.push(Journey::new("j").step(step)),
        }
        self
    }
}

impl Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "name = {}", quoted(&self.name))?;
        writeln!(f, "base_url = {}", quoted(&self.base_url))?;
        for s in &self.settings {
            writeln!(f, "{s}")?;
        }
        if !self.load.is_empty() {
            write!(f, "\n[load]\n{}\n", self.load)?;
        }
        for s in &self.sections {
            write!(f, "\n{s}\n")?;
        }
        for j in &self.journeys {
            write!(f, "\n{j}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Journey {
    name: String,
    weight: Option<u32>,
    steps: Vec<Step>,
}

impl Journey {
    pub fn new(name: &str) -> Journey {
        Journey {
            name: name.to_string(),
            weight: None,
            steps: Vec::new(),
        }
    }

    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = Some(weight);
        self
    }

    pub fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }
}

impl Display for Journey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[[journey]]\nname = {}", quoted(&self.name))?;
        if let Some(w) = self.weight {
            writeln!(f, "weight = {w}")?;
        }
        for s in &self.steps {
            write!(f, "\n{s}")?;
        }
        Ok(())
    }
}

/// One `[[journey.step]]`: its keys in order, values as TOML.
#[derive(Debug, Clone)]
pub struct Step {
    keys: Vec<(String, String)>,
}

impl Step {
    /// A step with only its name yet: add its `path` or `url` with [`Step::set`].
    pub fn named(name: &str) -> Step {
        Step { keys: Vec::new() }.set("name", quoted(name))
    }

    /// `GET path`, named `name`.
    pub fn get(name: &str, path: &str) -> Step {
        Step::named(name).set("path", quoted(path))
    }

    /// `POST path`, named `name`.
    pub fn post(name: &str, path: &str) -> Step {
        Step::named(name)
            .set("method", quoted("POST"))
            .set("path", quoted(path))
    }

    /// `GET path`, unnamed (the name defaults to the path).
    pub fn unnamed(path: &str) -> Step {
        Step { keys: Vec::new() }.set("path", quoted(path))
    }

    /// Any key; `value` is TOML.
    pub fn set(mut self, key: &str, value: impl Display) -> Self {
        self.keys.push((key.to_string(), value.to_string()));
        self
    }

    pub fn check(self, value: &str) -> Self {
        self.set("check", value)
    }

    pub fn json(self, value: &str) -> Self {
        self.set("json", value)
    }

    pub fn headers(self, value: &str) -> Self {
        self.set("headers", value)
    }

    pub fn query(self, value: &str) -> Self {
        self.set("query", value)
    }

    pub fn extract(self, value: &str) -> Self {
        self.set("extract", value)
    }

    /// The pause after the step, e.g. `"200ms"`.
    pub fn think(self, duration: &str) -> Self {
        self.set("think", quoted(duration))
    }
}

impl Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  [[journey.step]]")?;
        for (k, v) in &self.keys {
            writeln!(f, "  {k} = {v}")?;
        }
        Ok(())
    }
}

/// A TOML basic string.
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A scenario in its own temporary directory, with an `out/` directory for its results.
pub struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    /// Writes `scenario` (a [`Scenario`] or literal text) to `scenario.toml`.
    pub fn new(scenario: impl Display) -> Case {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("scenario.toml"), scenario.to_string())
            .expect("write scenario");
        Case { dir }
    }

    /// A data file next to the scenario (a feeder's CSV).
    pub fn file(self, name: &str, contents: &str) -> Self {
        std::fs::write(self.dir.path().join(name), contents).expect("write data file");
        self
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn scenario(&self) -> PathBuf {
        self.dir.path().join("scenario.toml")
    }

    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// `peakload run scenario.toml --out <out>`.
    pub fn run_command(&self, out: &Path) -> Command {
        let mut cmd = peakload();
        cmd.arg("run").arg(self.scenario()).arg("--out").arg(out);
        cmd
    }

    /// `peakload run scenario.toml --out out --target <server> -q <extra>`.
    pub fn command(&self, server: &TestServer, extra: &[&str]) -> Command {
        let mut cmd = self.run_command(&self.out());
        cmd.arg("--target").arg(server.url()).arg("-q").args(extra);
        cmd
    }

    /// [`Case::command`], started.
    pub fn spawn(&self, server: &TestServer, extra: &[&str]) -> Running {
        spawn(self.command(server, extra)).writing_to(self.out())
    }

    /// [`Case::command`], run to its end.
    pub fn run(&self, server: &TestServer, extra: &[&str]) -> Outcome {
        self.spawn(server, extra).finish()
    }

    /// [`Case::run`] with `envs` added to the environment.
    pub fn run_with_env(
        &self,
        server: &TestServer,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> Outcome {
        let mut cmd = self.command(server, extra);
        cmd.envs(envs.iter().copied());
        spawn(cmd).writing_to(self.out()).finish()
    }
}
