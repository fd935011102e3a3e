//! Templates: `{{ ... }}` expressions in strings, split and resolved at compile time.
//!
//! A [`Template`] renders by writing each literal part verbatim and each expression with its
//! [`Escape`]. So literal parts are stored already in their final form: raw in headers and raw
//! bodies; percent-encoded where a request target needs it in paths and URLs (see
//! [`crate::url`]) and everywhere in query and form values; JSON text in JSON bodies.
//! `{{env.NAME}}` is read once here and becomes literal text.

use super::diag::did_you_mean;
use std::fmt::Write as _;

use super::model::{Escape, Expr, Part, Template};

pub(crate) const BUILTINS: &[&str] = &["uuid", "random_int", "now_ms", "vu", "iteration"];

/// A piece of a template string, before resolution.
#[derive(Debug, PartialEq)]
pub(crate) enum Segment<'a> {
    Lit(&'a str),
    /// The text between the braces, and the byte offset of its `{{` in the string.
    Expr {
        text: &'a str,
        at: usize,
    },
}

/// Splits at `{{ ... }}`; an unclosed `{{` is an error at its byte offset.
pub(crate) fn split(s: &str) -> Result<Vec<Segment<'_>>, (usize, String)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(open) = s[pos..].find("{{").map(|i| i + pos) {
        if open > pos {
            out.push(Segment::Lit(&s[pos..open]));
        }
        let Some(close) = s[open + 2..].find("}}").map(|i| i + open + 2) else {
            return Err((
                open,
                "unclosed \"{{\" in template; close the expression with \"}}\"".to_string(),
            ));
        };
        out.push(Segment::Expr {
            text: &s[open + 2..close],
            at: open,
        });
        pos = close + 2;
    }
    if pos < s.len() {
        out.push(Segment::Lit(&s[pos..]));
    }
    Ok(out)
}

/// A feeder as templates see it.
pub(crate) struct FeederColumns {
    pub name: String,
    /// `None` when the CSV could not be read; references are then not checked further.
    pub columns: Option<Vec<String>>,
}

/// The names a template can refer to at one place in the file.
pub(crate) struct Names<'a> {
    pub feeders: &'a [FeederColumns],
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// `None` outside a journey (default headers, `base_url`): no variables there.
    pub journey: Option<&'a mut JourneyNames>,
    /// Feeders referenced outside journeys, which every journey must load.
    pub global_feeders: Option<&'a mut Vec<usize>>,
}

/// A journey's variables and feeders as its steps are compiled in order.
#[derive(Default)]
pub(crate) struct JourneyNames {
    /// Every variable extracted so far, in order of first extraction (`Journey::vars`).
    pub vars: Vec<String>,
    pub feeders: Vec<usize>,
    /// Variables extracted by the current step or later ones, with the step's name.
    pub later: Vec<(String, String)>,
}

/// What an expression resolved to.
pub(crate) enum Resolved {
    Expr(Expr),
    /// `{{env.NAME}}`: the value, read now.
    Text(String),
}

impl Names<'_> {
    pub(crate) fn resolve(&mut self, text: &str) -> Result<Resolved, String> {
        let mut words = text.split_whitespace();
        let Some(head) = words.next() else {
            return Err("empty expression \"{{}}\"; write e.g. {{uuid}} or {{user.email}}".into());
        };
        let args: Vec<&str> = words.collect();
        let no_args = |e: Expr| {
            if args.is_empty() {
                Ok(Resolved::Expr(e))
            } else {
                Err(format!(
                    "\"{head}\" takes no arguments, found \"{}\"",
                    args.join(" ")
                ))
            }
        };
        match head {
            "uuid" => return no_args(Expr::Uuid),
            "now_ms" => return no_args(Expr::NowMs),
            "vu" => return no_args(Expr::Vu),
            "iteration" => return no_args(Expr::Iteration),
            "random_int" => return random_int(&args).map(Resolved::Expr),
            _ => {}
        }
        if !args.is_empty() {
            return Err(format!(
                "unexpected \"{}\" after \"{head}\" in {{{{{text}}}}}; only random_int takes arguments",
                args.join(" ")
            ));
        }
        if let Some(name) = head.strip_prefix("env.") {
            return (self.env)(name).map(Resolved::Text).ok_or_else(|| {
                format!("environment variable \"{name}\" is not set (used as {{{{env.{name}}}}})")
            });
        }
        if let Some((feeder, column)) = head.split_once('.') {
            return self.feed(feeder, column).map(Resolved::Expr);
        }
        self.var(head).map(Resolved::Expr)
    }

    fn feed(&mut self, feeder: &str, column: &str) -> Result<Expr, String> {
        let Some(index) = self.feeders.iter().position(|f| f.name == feeder) else {
            let names: Vec<&str> = self.feeders.iter().map(|f| f.name.as_str()).collect();
            let known = if names.is_empty() {
                "no [[feeder]] is declared".to_string()
            } else {
                format!("declared feeders: {}", names.join(", "))
            };
            return Err(format!(
                "unknown feeder \"{feeder}\" in {{{{{feeder}.{column}}}}}; {known}{}",
                did_you_mean(feeder, names.iter().copied())
            ));
        };
        let column_index = match &self.feeders[index].columns {
            None => 0,
            Some(columns) => columns.iter().position(|c| c == column).ok_or_else(|| {
                format!(
                    "feeder \"{feeder}\" has no column \"{column}\"; its columns are: {}{}",
                    columns.join(", "),
                    did_you_mean(column, columns.iter().map(String::as_str))
                )
            })?,
        };
        let used = match (&mut self.journey, &mut self.global_feeders) {
            (Some(j), _) => Some(&mut j.feeders),
            (None, Some(g)) => Some(&mut **g),
            (None, None) => None,
        };
        if let Some(used) = used {
            if !used.contains(&index) {
                used.push(index);
            }
        }
        Ok(Expr::Feed {
            feeder: index,
            column: column_index,
        })
    }

    fn var(&mut self, name: &str) -> Result<Expr, String> {
        let Some(journey) = self.journey.as_deref() else {
            return Err(format!(
                "variable \"{name}\" can't be used here: only steps see journey variables; \
                 default headers and base_url may use feeders, env.NAME and built-ins"
            ));
        };
        if let Some(i) = journey.vars.iter().position(|v| v == name) {
            return Ok(Expr::Var(i));
        }
        let mut defined: Vec<String> = journey.vars.clone();
        for f in self.feeders {
            for c in f.columns.iter().flatten() {
                defined.push(format!("{}.{c}", f.name));
            }
        }
        let why = match journey.later.iter().find(|(v, _)| v == name) {
            Some((_, step)) => {
                format!("it is extracted by step \"{step}\", which has not run yet at this point")
            }
            None => "no earlier step extracts it and no feeder column has that name".to_string(),
        };
        let listed = if defined.is_empty() {
            "nothing is defined here yet".to_string()
        } else {
            format!("defined here: {}", defined.join(", "))
        };
        let candidates = defined
            .iter()
            .map(String::as_str)
            .chain(BUILTINS.iter().copied());
        Err(format!(
            "undefined variable \"{name}\": {why}; {listed}{}",
            did_you_mean(name, candidates)
        ))
    }
}

fn random_int(args: &[&str]) -> Result<Expr, String> {
    let usage =
        "random_int takes two integers, low and high (both included), e.g. {{random_int 1 100}}";
    let [lo, hi] = args else {
        return Err(usage.to_string());
    };
    let (Ok(lo), Ok(hi)) = (lo.parse::<i64>(), hi.parse::<i64>()) else {
        return Err(usage.to_string());
    };
    if lo > hi {
        return Err(format!(
            "random_int {lo} {hi}: the low bound is above the high one; write {{{{random_int {hi} {lo}}}}}"
        ));
    }
    Ok(Expr::RandomInt { lo, hi })
}

/// Builds a template, merging consecutive literal text into one part.
#[derive(Default)]
pub(crate) struct Builder {
    parts: Vec<Part>,
}

impl Builder {
    pub(crate) fn lit(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if let Some(Part::Lit(last)) = self.parts.last_mut() {
            last.push_str(s);
        } else {
            self.parts.push(Part::Lit(s.to_string()));
        }
    }

    pub(crate) fn expr(&mut self, expr: Expr, escape: Escape) {
        self.parts.push(Part::Expr { expr, escape });
    }

    pub(crate) fn finish(self) -> Template {
        Template { parts: self.parts }
    }
}

/// Percent-encodes everything but the RFC 3986 unreserved characters.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// JSON string escaping without the surrounding quotes.
pub(crate) fn json_escape(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

/// Literal text as it is stored for a given escape.
pub(crate) fn encode_literal(s: &str, escape: Escape) -> String {
    match escape {
        Escape::None => s.to_string(),
        Escape::Url | Escape::PathSegment => url_encode(s),
        Escape::Target => {
            let mut out = Vec::new();
            crate::url::push_encoded_target(s.as_bytes(), &mut out);
            String::from_utf8(out).expect("percent-encoding leaves ASCII")
        }
        Escape::JsonString => json_escape(s),
        Escape::JsonValue => json_value_text(s),
    }
}

/// How a resolved value is written as a whole JSON value: numbers and booleans as they are,
/// anything else as a string (the rule [`Escape::JsonValue`] gives the engine).
pub(crate) fn json_value_text(s: &str) -> String {
    let is_bare = s == "true"
        || s == "false"
        || matches!(
            serde_json::from_str::<serde_json::Value>(s),
            Ok(serde_json::Value::Number(_))
        );
    if is_bare {
        s.to_string()
    } else {
        serde_json::Value::String(s.to_string()).to_string()
    }
}

impl Template {
    /// The template shown to people: literal text with `{{...}}` for each expression.
    pub fn describe(&self, vars: &[String]) -> String {
        let mut s = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(l) => s.push_str(l),
                Part::Expr { expr, .. } => {
                    let name = match expr {
                        Expr::Var(i) => vars.get(*i).cloned().unwrap_or_default(),
                        Expr::Feed { .. } => "feeder".into(),
                        Expr::Uuid => "uuid".into(),
                        Expr::RandomInt { lo, hi } => format!("random_int {lo} {hi}"),
                        Expr::NowMs => "now_ms".into(),
                        Expr::Vu => "vu".into(),
                        Expr::Iteration => "iteration".into(),
                    };
                    let _ = write!(s, "{{{{{name}}}}}");
                }
            }
        }
        s
    }
}
