//! The top level of the file: the name, base_url, timeout, default headers and thresholds,
//! `[stack]`, and each section read in the order later ones need (feeders before the
//! templates that name them, journeys before the thresholds that name them).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml::de::DeValue;

use super::fields::Fields;
use super::journeys::tables_names;
use super::load::default_load;
use super::protocol::TOP_PROTOCOL_KEYS;
use super::{Compiler, Value};
use crate::scenario::diag::line_col;
use crate::scenario::model::*;
use crate::scenario::template::{FeederColumns, Names};
use crate::scenario::threshold::parse_threshold;

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
    "max_response_headers",
    "gate",
];
const STACK_KEYS: &[&str] = &["args"];
/// Flags `peakload run` sets itself when it starts the stack.
const STACK_OWN_FLAGS: &[&str] = &["--listen", "--data-dir"];

impl<'s> Compiler<'s> {
    pub(super) fn scenario(&mut self, root: &Value<'_>, path: &Path) -> Scenario {
        let keys: Vec<&str> = TOP_KEYS.iter().chain(TOP_PROTOCOL_KEYS).copied().collect();
        let top = self
            .fields(root, "the scenario (top level)", &keys, &[])
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
            protocol: self.protocol_options(&top),
            gate: match top.get("gate") {
                Some(v) => self.gate(v),
                None => Vec::new(),
            },
            max_response_headers: top
                .get("max_response_headers")
                .and_then(|v| {
                    self.int_in(
                        v,
                        "max_response_headers",
                        1,
                        MAX_RESPONSE_HEADERS_LIMIT as i64,
                    )
                })
                .map_or(DEFAULT_MAX_RESPONSE_HEADERS, |n| n as usize),
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
        match crate::url::split_url(url) {
            Ok(_) => Some(BaseUrl::Url(url.to_string())),
            Err(e) => {
                // The URL is not echoed: it may hold credentials or come from the environment.
                self.error(
                    v.span().start,
                    format!(
                        "base_url: {e}; it must be an http:// or https:// URL \
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
                    line_col(self.src, b.span().start).0
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
}
