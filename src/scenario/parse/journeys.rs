//! `[[journey]]` and `[[journey.step]]`: names, weights, targets, bodies and timings; the
//! names of journeys and steps are checked here, since thresholds and reports use them.

use toml::de::DeValue;

use super::fields::clip_name;
use super::values::is_tchar;
use super::{Compiler, Value};
use crate::scenario::duration::parse_think;
use crate::scenario::model::*;
use crate::scenario::template::{Builder, FeederColumns, JourneyNames, Names};

const JOURNEY_KEYS: &[&str] = &["name", "weight", "keep_alive", "step"];
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
    "max_redirects",
];

/// Journey names that would make threshold metrics ambiguous.
const RESERVED_JOURNEY_NAMES: &[&str] = &["http", "checks"];

impl<'s> Compiler<'s> {
    pub(super) fn check_journey_names(
        &mut self,
        journeys: &[Journey],
        name_spans: &[(String, usize)],
    ) {
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

    pub(super) fn journey(
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
        let keep_alive = f
            .get("keep_alive")
            .and_then(|k| self.boolean(k, "keep_alive"))
            .unwrap_or(true);
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
            keep_alive,
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
                        let t = self.target_template(pv, p, false, &mut names);
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
                        let t = self.target_template(uv, u, true, &mut names);
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
            None => (
                clip_name(format!(
                    "{method} {}",
                    crate::url::redact_path(&target_text)
                )),
                target_at,
            ),
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
        let max_redirects = f.get("max_redirects").and_then(|m| self.max_redirects(m));
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
                absolute: url.is_some() && path.is_none(),
                query,
                headers,
                body,
                timeout,
                think,
                max_redirects,
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
pub(super) fn tables_names(v: &Value<'_>) -> Vec<(String, usize)> {
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
