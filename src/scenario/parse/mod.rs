//! The compiler: a spanned TOML tree in, a [`Scenario`] out, every problem recorded on the way.
//!
//! Each `compile_*` function reads one table, reports what is wrong through the [`Collector`]
//! and still returns its best guess, so one mistake never hides the next. The caller only
//! builds a `Scenario` when nothing was reported.

pub(super) mod checks;
mod feeders;
mod fields;
mod load;
mod observe;
mod values;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml::de::{DeString, DeTable, DeValue};
use toml::Spanned;

use super::diag::{Collector, ScenarioErrors};
use super::duration::parse_think;
use super::model::*;
use super::template::{Builder, FeederColumns, JourneyNames, Names};
use super::threshold::parse_threshold;
use fields::Fields;
use load::default_load;
use values::is_tchar;

type Value<'i> = Spanned<DeValue<'i>>;
type Key<'i> = Spanned<DeString<'i>>;

const TOP_KEYS: &[&str] = &[
    "name",
    "base_url",
    "timeout",
    "thresholds",
    "headers",
    "load",
    "feeder",
    "journey",
    "observe",
    "stack",
];
const STACK_KEYS: &[&str] = &["args"];
/// Flags `peakload run` sets itself when it starts the stack.
const STACK_OWN_FLAGS: &[&str] = &["--listen", "--data-dir"];
const JOURNEY_KEYS: &[&str] = &["name", "weight", "step"];
const STEP_KEYS: &[&str] = &[
    "name",
    "method",
    "path",
    "url",
    "query",
    "headers",
    "json",
    "form",
    "body",
    "content_type",
    "timeout",
    "think",
    "extract",
    "check",
];
/// Journey names that would make threshold metrics ambiguous.
const RESERVED_JOURNEY_NAMES: &[&str] = &["http", "checks"];

pub(crate) fn compile(
    src: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Scenario, ScenarioErrors> {
    let (root, syntax_errors) = DeTable::parse_recoverable(src);
    if !syntax_errors.is_empty() {
        // A damaged tree would only add confusing follow-on errors; report the syntax first.
        let mut diags = Collector::new();
        for e in syntax_errors {
            let at = e.span().map_or(0, |s| s.start);
            diags.error(at, format!("TOML syntax error: {}", e.message()));
        }
        return Err(diags.finish(src, path));
    }
    let root = Spanned::new(root.span(), DeValue::Table(root.into_inner()));
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut c = Compiler {
        src,
        diags: Collector::new(),
        env,
        dir,
    };
    let scenario = c.scenario(&root, path);
    if c.diags.is_empty() {
        Ok(scenario)
    } else {
        Err(c.diags.finish(src, path))
    }
}

struct Compiler<'s> {
    src: &'s str,
    diags: Collector,
    env: &'s dyn Fn(&str) -> Option<String>,
    /// The scenario file's directory, for relative feeder paths.
    dir: PathBuf,
}

impl<'s> Compiler<'s> {
    // ---- the scenario -------------------------------------------------------------------

    fn scenario(&mut self, root: &Value<'_>, path: &Path) -> Scenario {
        let top = self
            .fields(root, "the scenario (top level)", TOP_KEYS, &[])
            .unwrap_or(Fields {
                entries: Vec::new(),
                at: 0,
                typos: Vec::new(),
            });
        let name = match top.get("name") {
            Some(v) => self.name_value(v, "name").unwrap_or_default(),
            None if !top.missing("name") => String::new(),
            None => {
                self.error(
                    0,
                    "missing required key \"name\" at the top level; add e.g. name = \"black-friday\"",
                );
                String::new()
            }
        };
        let timeout = top
            .get("timeout")
            .and_then(|v| self.duration(v, "timeout", true))
            .unwrap_or(Duration::from_secs(10));

        let mut feeders = match top.get("feeder") {
            Some(v) => self.feeders(v),
            None => Vec::new(),
        };
        let columns: Vec<FeederColumns> = feeders
            .iter_mut()
            .map(|f| FeederColumns {
                name: std::mem::take(&mut f.columns.name),
                columns: f.columns.columns.take(),
            })
            .collect();

        let mut global_feeders = Vec::new();
        let headers = match top.get("headers") {
            Some(v) => {
                let mut names = Names {
                    feeders: &columns,
                    env: self.env,
                    journey: None,
                    global_feeders: Some(&mut global_feeders),
                };
                self.header_table(v, "headers", &mut names)
            }
            None => Vec::new(),
        };
        let base_url = top.get("base_url").and_then(|v| self.base_url(v, &columns));

        let load = match top.get("load") {
            Some(v) => self.load(v),
            None => default_load(),
        };

        let mut journeys = Vec::new();
        let mut first_relative: Option<usize> = None;
        match top.get("journey") {
            Some(v) => {
                let tables = self.table_array(v, "journey");
                if tables.is_empty() && v.get_ref().is_array() {
                    self.error(v.span().start, "at least one [[journey]] is needed");
                }
                for t in tables {
                    if let Some(j) = self.journey(t, &columns, &global_feeders, &mut first_relative)
                    {
                        journeys.push(j);
                    }
                }
                self.check_journey_names(&journeys, &tables_names(v));
            }
            None => self.error(
                0,
                "no journey: add at least one [[journey]] with a name and one [[journey.step]]",
            ),
        }
        let base_url = match base_url {
            Some(b) => b,
            None => {
                if let Some(at) = first_relative {
                    let what = if top.get("base_url").is_some() {
                        "a valid base_url"
                    } else {
                        "base_url"
                    };
                    if top.get("base_url").is_none() {
                        self.error(
                            at,
                            format!(
                                "this step uses a relative path, so the scenario needs {what}: \
                                 add base_url = \"http://host:port\" (or \"stack\") at the top, \
                                 or use url = \"https://...\" in every step"
                            ),
                        );
                    }
                }
                BaseUrl::Url(String::new())
            }
        };

        for (i, d) in feeders.iter().enumerate() {
            let Some(f) = &d.feeder else { continue };
            let used = journeys.iter().any(|j| j.feeders.contains(&i));
            if f.rows.is_empty() && f.mode != FeedMode::Unique && used {
                self.error(
                    d.file_at,
                    format!(
                        "feeder file \"{}\" has a header but no rows; add data rows",
                        d.file
                    ),
                );
            }
        }
        let feeders: Vec<Arc<Feeder>> = feeders
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                Arc::new(d.feeder.unwrap_or_else(|| Feeder {
                    name: columns[i].name.clone(),
                    path: PathBuf::new(),
                    mode: FeedMode::Sequential,
                    columns: Vec::new(),
                    rows: Vec::new(),
                }))
            })
            .collect();

        let mut scenario = Scenario {
            name,
            source_path: path.to_path_buf(),
            base_url,
            headers,
            timeout,
            load,
            journeys,
            feeders,
            thresholds: Vec::new(),
            observe: match top.get("observe") {
                Some(v) => self.observe(v),
                None => Observe::default(),
            },
            stack_args: match top.get("stack") {
                Some(v) => self.stack(v, top.get("base_url")),
                None => Vec::new(),
            },
        };
        if let Some(v) = top.get("thresholds") {
            scenario.thresholds = self.thresholds(v, &scenario);
        }
        scenario
    }

    fn base_url(&mut self, v: &Value<'_>, feeders: &[FeederColumns]) -> Option<BaseUrl> {
        let s = self.string(v, "base_url")?;
        if s == "stack" {
            return Some(BaseUrl::Stack);
        }
        let mut names = Names {
            feeders,
            env: self.env,
            journey: None,
            global_feeders: None,
        };
        let t = self.template(v, s, Escape::None, &mut names);
        let Some(url) = t.as_literal() else {
            self.error(
                v.span().start,
                "base_url may only use {{env.NAME}} templates, which are read once at load time",
            );
            return None;
        };
        let url = url.trim_end_matches('/');
        let lower = url.to_ascii_lowercase();
        let host = lower
            .strip_prefix("http://")
            .or_else(|| lower.strip_prefix("https://"));
        match host {
            Some(h) if !h.is_empty() => Some(BaseUrl::Url(url.to_string())),
            _ => {
                self.error(
                    v.span().start,
                    format!(
                        "base_url \"{url}\" must be an http:// or https:// URL \
                         (e.g. \"http://127.0.0.1:8080\") or \"stack\""
                    ),
                );
                None
            }
        }
    }

    /// `[stack]`: flags for the bundled stack (`peakload stack up --help` lists them).
    fn stack(&mut self, v: &Value<'_>, base_url: Option<&Value<'_>>) -> Vec<String> {
        let Some(f) = self.fields(v, "[stack]", STACK_KEYS, &[]) else {
            return Vec::new();
        };
        if let Some(b) =
            base_url.filter(|b| !matches!(b.get_ref(), DeValue::String(s) if s == "stack"))
        {
            self.error(
                v.span().start,
                format!(
                    "[stack] configures the bundled stack, but base_url (line {}) names another target; \
                     set base_url = \"stack\" or remove [stack]",
                    super::diag::line_col(self.src, b.span().start).0
                ),
            );
        }
        let mut out = Vec::new();
        let Some(list) = f.get("args") else {
            return out;
        };
        let DeValue::Array(items) = list.get_ref() else {
            self.type_error(
                list,
                "args",
                "an array of flags such as [\"--db-pool-size\", \"4\", \"--db-latency-ms\", \"3\"]",
            );
            return out;
        };
        for item in items.iter() {
            let Some(s) = self.string(item, "args") else {
                continue;
            };
            let flag = s.split('=').next().unwrap_or(s);
            if STACK_OWN_FLAGS.contains(&flag) {
                self.error(
                    item.span().start,
                    format!("{flag} is set by peakload when it starts the stack; remove it"),
                );
                continue;
            }
            out.push(s.to_string());
        }
        out
    }

    fn thresholds(&mut self, v: &Value<'_>, scenario: &Scenario) -> Vec<Threshold> {
        let DeValue::Array(items) = v.get_ref() else {
            self.type_error(
                v,
                "thresholds",
                "an array of strings such as [\"http.p99 < 300ms\"]",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items.iter() {
            let Some(expr) = self.string(item, "thresholds") else {
                continue;
            };
            match parse_threshold(expr, scenario) {
                Ok(t) => out.push(t),
                Err(e) => self.error(item.span().start, e),
            }
        }
        out
    }

    fn check_journey_names(&mut self, journeys: &[Journey], name_spans: &[(String, usize)]) {
        let mut seen: Vec<&str> = Vec::new();
        for j in journeys {
            if seen.contains(&j.name.as_str()) && !j.name.is_empty() {
                let at = name_spans
                    .iter()
                    .filter(|(n, _)| *n == j.name)
                    .nth(1)
                    .map_or(0, |(_, at)| *at);
                self.error(
                    at,
                    format!(
                        "duplicate journey name \"{}\"; thresholds and reports name journeys, \
                         so each needs its own name",
                        j.name
                    ),
                );
            }
            seen.push(&j.name);
        }
    }

    // ---- journeys and steps -------------------------------------------------------------

    fn journey(
        &mut self,
        v: &Value<'_>,
        feeders: &[FeederColumns],
        global_feeders: &[usize],
        first_relative: &mut Option<usize>,
    ) -> Option<Journey> {
        let f = self.fields(v, "[[journey]]", JOURNEY_KEYS, &[])?;
        let name = match f.get("name") {
            Some(n) => {
                let name = self.name_value(n, "name");
                if let Some(reserved) = name
                    .as_deref()
                    .filter(|n| RESERVED_JOURNEY_NAMES.contains(n))
                {
                    self.error(
                        n.span().start,
                        format!(
                            "a journey can't be named \"{reserved}\": thresholds use \
                             \"{reserved}.\" for run-wide metrics"
                        ),
                    );
                }
                name.unwrap_or_default()
            }
            None if !f.missing("name") => String::new(),
            None => {
                self.error(
                    f.at,
                    "this [[journey]] has no \"name\"; add e.g. name = \"shopper\"",
                );
                String::new()
            }
        };
        let weight = f
            .get("weight")
            .and_then(|w| self.u32_in(w, "weight", 1))
            .unwrap_or(1);
        let step_tables = match f.get("step") {
            Some(s) => self.table_array(s, "journey.step"),
            None => Vec::new(),
        };
        if step_tables.is_empty() {
            self.error(
                f.at,
                format!(
                    "journey \"{name}\" has no steps; add at least one [[journey.step]] with \
                     e.g. path = \"/\""
                ),
            );
        }
        let plan: Vec<(String, Vec<String>)> =
            step_tables.iter().map(|s| step_outline(s)).collect();
        let mut names = JourneyNames {
            feeders: global_feeders.to_vec(),
            ..Default::default()
        };
        let mut steps = Vec::new();
        let mut step_names: Vec<String> = Vec::new();
        for (i, s) in step_tables.iter().enumerate() {
            names.later = plan[i..]
                .iter()
                .flat_map(|(step, vars)| vars.iter().map(move |v| (v.clone(), step.clone())))
                .collect();
            if let Some((step, name_at)) = self.step(s, feeders, &mut names, first_relative) {
                if step_names.contains(&step.name) {
                    self.error(
                        name_at,
                        format!(
                            "duplicate step name \"{}\" in journey \"{name}\"; steps are \
                             measured by name, so give this one its own name = \"...\"",
                            step.name
                        ),
                    );
                }
                step_names.push(step.name.clone());
                steps.push(step);
            }
        }
        Some(Journey {
            name,
            weight,
            steps,
            vars: names.vars,
            feeders: names.feeders,
        })
    }

    /// A step, and where its name was given (or where its default name came from).
    fn step(
        &mut self,
        v: &Value<'_>,
        feeders: &[FeederColumns],
        journey: &mut JourneyNames,
        first_relative: &mut Option<usize>,
    ) -> Option<(Step, usize)> {
        let f = self.fields(v, "[[journey.step]]", STEP_KEYS, &[])?;
        let method = match f.get("method") {
            None => "GET".to_string(),
            Some(m) => match self.string(m, "method") {
                Some(s) if !s.is_empty() && s.chars().all(is_tchar) => s.to_ascii_uppercase(),
                Some(s) => {
                    self.error(
                        m.span().start,
                        format!("\"{s}\" is not an HTTP method; write e.g. \"GET\" or \"POST\""),
                    );
                    "GET".to_string()
                }
                None => "GET".to_string(),
            },
        };
        let mut names = Names {
            feeders,
            env: self.env,
            journey: Some(journey),
            global_feeders: None,
        };

        let (path, url) = (f.entry("path"), f.entry("url"));
        let mut target_text = String::new();
        let mut target_at = f.at;
        let url_template = match (path, url) {
            (Some(_), Some((uk, _))) => {
                self.error(
                    uk.span().start,
                    "a step has either \"path\" (joined to base_url) or \"url\" (absolute), \
                     not both",
                );
                Template::default()
            }
            (None, None) if !(f.missing("path") && f.missing("url")) => Template::default(),
            (None, None) => {
                self.error(
                    f.at,
                    "this step has no target; add path = \"/api/...\" (joined to base_url) \
                     or url = \"https://host/...\"",
                );
                Template::default()
            }
            (Some((_, pv)), None) => {
                target_at = pv.span().start;
                match self.string(pv, "path") {
                    Some(p) => {
                        target_text = p.to_string();
                        first_relative.get_or_insert(pv.span().start);
                        let t = self.template(pv, p, Escape::None, &mut names);
                        if let Some(Part::Lit(first)) = t.parts.first() {
                            if !first.starts_with('/') {
                                self.error(
                                    pv.span().start,
                                    format!(
                                        "path \"{p}\" must start with \"/\"; for another host \
                                         use url = \"https://...\" instead"
                                    ),
                                );
                            }
                        }
                        t
                    }
                    None => Template::default(),
                }
            }
            (None, Some((_, uv))) => {
                target_at = uv.span().start;
                match self.string(uv, "url") {
                    Some(u) => {
                        target_text = u.to_string();
                        let t = self.template(uv, u, Escape::None, &mut names);
                        if let Some(Part::Lit(first)) = t.parts.first() {
                            let lower = first.to_ascii_lowercase();
                            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                                self.error(
                                    uv.span().start,
                                    format!(
                                        "url \"{u}\" must be absolute, starting with http:// \
                                         or https://; for a path on base_url use path = \"...\""
                                    ),
                                );
                            }
                        }
                        t
                    }
                    None => Template::default(),
                }
            }
        };

        let (name, name_at) = match f.get("name") {
            Some(n) => (
                self.name_value(n, "name").unwrap_or_default(),
                n.span().start,
            ),
            None => (format!("{method} {target_text}"), target_at),
        };

        let query = match f.get("query") {
            Some(q) => self.value_table(q, "query", Escape::Url, &mut names),
            None => Vec::new(),
        };
        let headers = match f.get("headers") {
            Some(h) => self.header_table(h, "headers", &mut names),
            None => Vec::new(),
        };

        let mut body = Body::None;
        let mut body_key: Option<&str> = None;
        for (k, bv) in &f.entries {
            let key = k.get_ref().as_ref();
            if !matches!(key, "json" | "form" | "body") {
                continue;
            }
            if let Some(first) = body_key {
                self.error(
                    k.span().start,
                    format!("a step has at most one body; \"{key}\" conflicts with \"{first}\""),
                );
                continue;
            }
            body_key = Some(if key == "json" {
                "json"
            } else if key == "form" {
                "form"
            } else {
                "body"
            });
            body = match key {
                "json" => {
                    let mut b = Builder::default();
                    self.json_template(bv, &mut names, &mut b);
                    Body::Json(b.finish())
                }
                "form" => Body::Form(self.value_table(bv, "form", Escape::Url, &mut names)),
                _ => match self.string(bv, "body") {
                    Some(s) => Body::Raw {
                        content_type: None,
                        text: self.template(bv, s, Escape::None, &mut names),
                    },
                    None => Body::None,
                },
            };
        }
        if let Some(ct) = f.get("content_type") {
            let ct_value = self.string(ct, "content_type").map(str::to_string);
            match &mut body {
                Body::Raw { content_type, .. } => *content_type = ct_value,
                _ if body_key == Some("body") => {}
                _ => self.error(
                    f.key_at("content_type"),
                    "\"content_type\" goes with a raw body = \"...\"; json and form set their \
                     own content type",
                ),
            }
        }

        let timeout = f
            .get("timeout")
            .and_then(|t| self.duration(t, "timeout", true));
        let think = f.get("think").and_then(|t| {
            let s = self.string_or(
                t,
                "think",
                "a duration such as \"1s\" or a range \"1s..3s\"",
            )?;
            parse_think(s)
                .map_err(|e| self.error(t.span().start, format!("bad think time: {e}")))
                .ok()
        });
        let checks = match f.get("check") {
            Some(c) => self.checks(c),
            None => Vec::new(),
        };
        // Extraction last: a step's own variables are only visible to the steps after it.
        let extract = match f.get("extract") {
            Some(e) => self.extractions(e, journey),
            None => Vec::new(),
        };
        Some((
            Step {
                name,
                method,
                url: url_template,
                query,
                headers,
                body,
                timeout,
                think,
                extract,
                checks,
            },
            name_at,
        ))
    }
}

/// A step's name and the variables it extracts, read ahead of compiling the journey so that
/// "used before extracted" errors can name the step that extracts the variable.
fn step_outline(v: &Value<'_>) -> (String, Vec<String>) {
    let DeValue::Table(t) = v.get_ref() else {
        return (String::new(), Vec::new());
    };
    let get = |k: &str| {
        t.iter()
            .find(|(key, _)| key.get_ref().as_ref() == k)
            .map(|(_, v)| v.get_ref())
    };
    let name = match get("name").and_then(|n| n.as_str()) {
        Some(n) => n.to_string(),
        None => {
            let method = get("method")
                .and_then(|m| m.as_str())
                .unwrap_or("GET")
                .to_ascii_uppercase();
            let target = get("path")
                .or_else(|| get("url"))
                .and_then(|p| p.as_str())
                .unwrap_or("");
            format!("{method} {target}")
        }
    };
    let vars = match get("extract") {
        Some(DeValue::Table(e)) => e.iter().map(|(k, _)| k.get_ref().to_string()).collect(),
        _ => Vec::new(),
    };
    (name, vars)
}

/// Each `[[journey]]`'s name and where it is written, for duplicate-name errors.
fn tables_names(v: &Value<'_>) -> Vec<(String, usize)> {
    let DeValue::Array(a) = v.get_ref() else {
        return Vec::new();
    };
    a.iter()
        .filter_map(|j| {
            let DeValue::Table(t) = j.get_ref() else {
                return None;
            };
            t.iter()
                .find(|(k, _)| k.get_ref().as_ref() == "name")
                .and_then(|(_, n)| Some((n.get_ref().as_str()?.to_string(), n.span().start)))
        })
        .collect()
}
