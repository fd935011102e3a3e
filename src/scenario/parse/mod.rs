//! The compiler: a spanned TOML tree in, a [`Scenario`] out, every problem recorded on the way.
//!
//! Each `compile_*` function reads one table, reports what is wrong through the [`Collector`]
//! and still returns its best guess, so one mistake never hides the next. The caller only
//! builds a `Scenario` when nothing was reported.

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
use super::template::{Builder, FeederColumns, JourneyNames, Names, BUILTINS};
use super::threshold::parse_threshold;
use fields::{entries, Fields};
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
const CHECK_KEYS: &[&str] = &["status", "body_contains", "json", "max_duration"];
const EXTRACT_KEYS: &[&str] = &["json", "header", "regex"];
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

    fn extractions(&mut self, v: &Value<'_>, journey: &mut JourneyNames) -> Vec<Extraction> {
        let DeValue::Table(t) = v.get_ref() else {
            self.type_error(
                v,
                "extract",
                "a table such as { token = { json = \"$.token\" } }",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, ev) in entries(t) {
            let var = k.get_ref().as_ref();
            let valid = var
                .chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && var
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
            if !valid {
                self.error(
                    k.span().start,
                    format!(
                        "\"{var}\" is not a valid variable name; use letters, digits, '_' and \
                         '-', starting with a letter"
                    ),
                );
                continue;
            }
            if BUILTINS.contains(&var) {
                self.error(
                    k.span().start,
                    format!(
                        "\"{var}\" is a built-in template function; pick another variable name"
                    ),
                );
                continue;
            }
            let what = format!("extract \"{var}\"");
            let Some(f) = self.fields(ev, &what, EXTRACT_KEYS, &[]) else {
                continue;
            };
            let present: Vec<_> = f
                .entries
                .iter()
                .filter(|(k, _)| EXTRACT_KEYS.contains(&k.get_ref().as_ref()))
                .collect();
            if present.len() != 1 {
                let at = present.get(1).map_or(f.at, |(k, _)| k.span().start);
                self.error(
                    at,
                    format!(
                        "{what} needs exactly one source: json = \"$.path\", header = \"Name\" \
                         or regex = \"...\""
                    ),
                );
                continue;
            }
            let (sk, sv) = present[0];
            let Some(text) = self.string(sv, sk.get_ref().as_ref()) else {
                continue;
            };
            let source = match sk.get_ref().as_ref() {
                "json" => match json_pointer(text) {
                    Ok(p) => ExtractSource::Json(p),
                    Err(e) => {
                        self.error(sv.span().start, e);
                        continue;
                    }
                },
                "header" => {
                    if text.is_empty() || !text.chars().all(is_tchar) {
                        self.error(
                            sv.span().start,
                            format!("\"{text}\" is not a valid header name"),
                        );
                        continue;
                    }
                    ExtractSource::Header(text.to_ascii_lowercase())
                }
                _ => match regex::Regex::new(text) {
                    Ok(r) => ExtractSource::Regex(r),
                    Err(e) => {
                        let detail = e.to_string();
                        let last = detail.lines().last().unwrap_or("").trim();
                        let last = last.strip_prefix("error: ").unwrap_or(last).to_string();
                        self.error(sv.span().start, format!("bad regex for {what}: {last}"));
                        continue;
                    }
                },
            };
            let index = match journey.vars.iter().position(|v| v == var) {
                Some(i) => i,
                None => {
                    journey.vars.push(var.to_string());
                    journey.vars.len() - 1
                }
            };
            out.push(Extraction { var: index, source });
        }
        out
    }

    fn checks(&mut self, v: &Value<'_>) -> Vec<Check> {
        let Some(f) = self.fields(v, "check", CHECK_KEYS, &[]) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(s) = f.get("status") {
            if let Some(m) = self.status(s) {
                out.push(Check::Status(m));
            }
        }
        if let Some(b) = f.get("body_contains") {
            if let Some(s) = self.string(b, "body_contains") {
                out.push(Check::BodyContains(s.to_string()));
            }
        }
        if let Some(j) = f.get("json") {
            match j.get_ref() {
                DeValue::Table(t) => {
                    for (k, expected) in entries(t) {
                        match json_pointer(k.get_ref().as_ref()) {
                            Ok(pointer) => {
                                if let Some(expected) = self.toml_to_json(expected) {
                                    out.push(Check::JsonEquals { pointer, expected });
                                }
                            }
                            Err(e) => self.error(k.span().start, e),
                        }
                    }
                }
                _ => self.type_error(j, "json", "a table such as { \"$.status\" = \"ok\" }"),
            }
        }
        if let Some(d) = f.get("max_duration") {
            if let Some(d) = self.duration(d, "max_duration", true) {
                out.push(Check::MaxDuration(d));
            }
        }
        out
    }

    fn status(&mut self, v: &Value<'_>) -> Option<StatusMatch> {
        let help =
            "a status such as 200, a list [201, 409], a class \"2xx\" or a range \"200..299\"";
        let code = |c: &mut Self, item: &Value<'_>| -> Option<u16> {
            c.int_in(item, "status", 100, 599).map(|i| i as u16)
        };
        match v.get_ref() {
            DeValue::Integer(_) => code(self, v).map(StatusMatch::Exact),
            DeValue::Array(items) => {
                if items.is_empty() {
                    self.error(
                        v.span().start,
                        format!("\"status\" list is empty; write {help}"),
                    );
                    return None;
                }
                let codes: Vec<u16> = items.iter().filter_map(|i| code(self, i)).collect();
                (codes.len() == items.len()).then_some(StatusMatch::List(codes))
            }
            DeValue::String(s) => {
                let parsed = parse_status_text(s.trim());
                if parsed.is_none() {
                    self.error(v.span().start, format!("bad status \"{s}\"; write {help}"));
                }
                parsed
            }
            _ => {
                self.type_error(v, "status", help);
                None
            }
        }
    }
}

fn parse_status_text(s: &str) -> Option<StatusMatch> {
    let valid = |n: u16| (100..=599).contains(&n);
    if let Some(class) = s.strip_suffix("xx").or_else(|| s.strip_suffix("XX")) {
        let d: u16 = class.parse().ok().filter(|d| (1..=5).contains(d))?;
        return Some(StatusMatch::Range(d * 100, d * 100 + 99));
    }
    if let Some((lo, hi)) = s.split_once("..") {
        let lo: u16 = lo.trim().parse().ok().filter(|n| valid(*n))?;
        let hi: u16 = hi.trim().parse().ok().filter(|n| valid(*n))?;
        return (lo <= hi).then_some(StatusMatch::Range(lo, hi));
    }
    s.parse().ok().filter(|n| valid(*n)).map(StatusMatch::Exact)
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

/// `"$.a.b[0]"`, `"$['a']"` or an RFC 6901 pointer `"/a/b/0"`, as an RFC 6901 pointer.
pub(crate) fn json_pointer(path: &str) -> Result<String, String> {
    let help = "write a JSON path such as \"$.order.id\" or \"$.items[0]['sku']\", or a JSON \
                pointer such as \"/order/id\"";
    if path.is_empty() || path.starts_with('/') {
        let mut chars = path.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '~' && !matches!(chars.peek(), Some('0') | Some('1')) {
                return Err(format!(
                    "bad JSON pointer \"{path}\": \"~\" must be followed by 0 or 1 (~0 is \"~\", ~1 is \"/\")"
                ));
            }
        }
        return Ok(path.to_string());
    }
    let Some(mut rest) = path.strip_prefix('$') else {
        return Err(format!("bad JSON path \"{path}\": {help}"));
    };
    let bad = |why: &str| format!("bad JSON path \"{path}\": {why}; {help}");
    let mut pointer = String::new();
    let push = |pointer: &mut String, segment: &str| {
        pointer.push('/');
        pointer.push_str(&segment.replace('~', "~0").replace('/', "~1"));
    };
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if key.is_empty() {
                return Err(bad(
                    "empty key after \".\" (recursive \"..\" is not supported)",
                ));
            }
            if key == "*" {
                return Err(bad("wildcards are not supported"));
            }
            push(&mut pointer, key);
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let r = r.trim_start();
            if let Some(q) = r.chars().next().filter(|c| *c == '\'' || *c == '"') {
                let mut key = String::new();
                let mut chars = r[1..].char_indices();
                let mut close = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                key.push(n);
                            }
                        }
                        c if c == q => {
                            close = Some(i + 2);
                            break;
                        }
                        c => key.push(c),
                    }
                }
                let Some(after) = close else {
                    return Err(bad("unclosed quote in [...]"));
                };
                let Some(r) = r[after..].trim_start().strip_prefix(']') else {
                    return Err(bad("expected \"]\" after the quoted key"));
                };
                push(&mut pointer, &key);
                rest = r;
            } else {
                let end = r.find(']').ok_or_else(|| bad("unclosed \"[\""))?;
                let index = r[..end].trim();
                if index.is_empty() || !index.chars().all(|c| c.is_ascii_digit()) {
                    return Err(bad(&format!(
                        "\"[{index}]\" is not an array index; quote keys as ['key']"
                    )));
                }
                push(&mut pointer, index);
                rest = &r[end + 1..];
            }
        } else {
            return Err(bad("expected \".\" or \"[\""));
        }
    }
    Ok(pointer)
}
