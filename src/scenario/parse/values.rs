//! Strings, tables and JSON bodies that may hold templates, compiled against the names in
//! scope (headers, query and form values, bodies, base_url).

use toml::de::DeValue;

use super::fields::{entries, float_of, int_of};
use super::{Compiler, Value};
use crate::scenario::model::*;
use crate::scenario::template::{
    encode_literal, json_escape, json_value_text, split, Builder, Names, Resolved, Segment,
};
use crate::url::encode_literal_target;

impl<'s> Compiler<'s> {
    pub(super) fn header_table(
        &mut self,
        v: &Value<'_>,
        key: &str,
        names: &mut Names<'_>,
    ) -> Vec<(String, Template)> {
        let DeValue::Table(t) = v.get_ref() else {
            self.type_error(v, key, "a table of header names to strings");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, hv) in entries(t) {
            let name = k.get_ref().as_ref();
            if name.is_empty() || !name.chars().all(is_tchar) {
                self.error(
                    k.span().start,
                    format!("\"{name}\" is not a valid header name"),
                );
                continue;
            }
            if let Some(s) = self.string(hv, name) {
                let t = self.template(hv, s, Escape::None, names);
                // Values from variables and feeders are checked when the request is built.
                let broken = t.parts.iter().any(|p| {
                    matches!(p, Part::Lit(l) if l.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)))
                });
                if broken {
                    self.error(
                        hv.span().start,
                        format!(
                            "header \"{name}\" has a CR, LF or NUL in its value, which would end \
                             the header early and let the rest be read as another header; \
                             remove it"
                        ),
                    );
                    continue;
                }
                out.push((name.to_string(), t));
            }
        }
        out
    }

    /// Query or form parameters: strings are templates, numbers and booleans literals.
    pub(super) fn value_table(
        &mut self,
        v: &Value<'_>,
        key: &str,
        escape: Escape,
        names: &mut Names<'_>,
    ) -> Vec<(String, Template)> {
        let DeValue::Table(t) = v.get_ref() else {
            self.type_error(v, key, "a table such as { page = 1, q = \"shoes\" }");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, pv) in entries(t) {
            let name = k.get_ref().as_ref().to_string();
            let template = match pv.get_ref() {
                DeValue::String(s) => self.template(pv, s, escape, names),
                DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) => {
                    let text = self.src[pv.span()].replace('_', "");
                    let text = match pv.get_ref() {
                        DeValue::Integer(_) => int_of(pv.get_ref()).map_or(text, |i| i.to_string()),
                        _ => text,
                    };
                    Template::literal(encode_literal(&text, escape))
                }
                _ => {
                    self.type_error(pv, &name, "a string, number or boolean");
                    continue;
                }
            };
            out.push((name, template));
        }
        out
    }

    /// Compiles one string into a template; problems are reported at the `{{` when the file
    /// spells the string without escapes, else at the string.
    pub(super) fn template(
        &mut self,
        v: &Value<'_>,
        s: &str,
        escape: Escape,
        names: &mut Names<'_>,
    ) -> Template {
        let loc = self.str_loc(v, s);
        let mut b = Builder::default();
        match split(s) {
            Err((at, msg)) => self.error(loc.at(at), msg),
            Ok(segments) => {
                for seg in segments {
                    match seg {
                        Segment::Lit(l) => b.lit(&encode_literal(l, escape)),
                        Segment::Expr { text, at } => match names.resolve(text) {
                            Ok(Resolved::Expr(e)) => b.expr(e, escape),
                            Ok(Resolved::Text(t)) => b.lit(&encode_literal(&t, escape)),
                            Err(msg) => self.error(loc.at(at), msg),
                        },
                    }
                }
            }
        }
        b.finish()
    }

    /// Compiles a step's `path` (`absolute` false) or `url` into a template whose every part is
    /// encoded for where it falls: literal text as a browser sends a typed URL (with `#` and
    /// a stray `%` refused, see [`encode_literal_target`]); an expression inside the path as
    /// one segment's text, inside the query as a query value, in the host as it is (checked
    /// when the request is built), and an expression that starts the path or URL as a whole
    /// link. `{{env.NAME}}` is read now and handled as literal text.
    pub(super) fn target_template(
        &mut self,
        v: &Value<'_>,
        s: &str,
        absolute: bool,
        names: &mut Names<'_>,
    ) -> Template {
        let loc = self.str_loc(v, s);
        let mut b = Builder::default();
        let segments = match split(s) {
            Ok(segments) => segments,
            Err((at, msg)) => {
                self.error(loc.at(at), msg);
                return b.finish();
            }
        };
        let mut target = TargetText {
            pos: if absolute {
                TargetPos::Scheme
            } else {
                TargetPos::Path
            },
            errors: Vec::new(),
        };
        for (i, seg) in segments.into_iter().enumerate() {
            match seg {
                Segment::Lit(l) => {
                    let at = l.as_ptr() as usize - s.as_ptr() as usize;
                    target.literal(l, at, &mut b);
                }
                Segment::Expr { text, at } => match names.resolve(text) {
                    Ok(Resolved::Expr(e)) => {
                        let escape = match target.pos {
                            _ if i == 0 => Escape::Target,
                            TargetPos::Scheme | TargetPos::Authority => Escape::None,
                            TargetPos::Path => Escape::PathSegment,
                            TargetPos::Query => Escape::Url,
                        };
                        if i == 0 {
                            // What follows a whole link is its path, or its query after a `?`.
                            target.pos = TargetPos::Path;
                        }
                        b.expr(e, escape);
                    }
                    Ok(Resolved::Text(t)) => target.literal(&t, at, &mut b),
                    Err(msg) => self.error(loc.at(at), msg),
                },
            }
        }
        for (at, msg) in target.errors {
            self.error(loc.at(at), msg);
        }
        let t = b.finish();
        if absolute {
            // The whole URL, or its literal start when that holds the whole authority
            // ("http://h:99999/{{id}}"): what run would refuse, check refuses.
            let head = t.as_literal().or_else(|| match t.parts.first() {
                Some(Part::Lit(l))
                    if l.split_once("://")
                        .is_some_and(|(_, rest)| rest.contains(['/', '?'])) =>
                {
                    Some(l.as_str())
                }
                _ => None,
            });
            if let Some(url) = head {
                match crate::url::split_url(url) {
                    // A wrong scheme is reported by the caller, with what to write instead.
                    Ok(_) | Err(crate::url::UrlError::Scheme) => {}
                    // Not the URL itself: it may hold credentials.
                    Err(e) => self.error(v.span().start, format!("url: {e}")),
                }
            }
        }
        t
    }

    /// Appends a TOML value as compact JSON text; strings may hold templates.
    pub(super) fn json_template(&mut self, v: &Value<'_>, names: &mut Names<'_>, b: &mut Builder) {
        match v.get_ref() {
            DeValue::Table(t) => {
                b.lit("{");
                for (i, (k, item)) in entries(t).into_iter().enumerate() {
                    if i > 0 {
                        b.lit(",");
                    }
                    b.lit(&serde_json::Value::String(k.get_ref().to_string()).to_string());
                    b.lit(":");
                    self.json_template(item, names, b);
                }
                b.lit("}");
            }
            DeValue::Array(a) => {
                b.lit("[");
                for (i, item) in a.iter().enumerate() {
                    if i > 0 {
                        b.lit(",");
                    }
                    self.json_template(item, names, b);
                }
                b.lit("]");
            }
            DeValue::String(s) => self.json_string(v, s, names, b),
            _ => match self.toml_to_json(v) {
                Some(j) => b.lit(&j.to_string()),
                None => b.lit("null"),
            },
        }
    }

    fn json_string(&mut self, v: &Value<'_>, s: &str, names: &mut Names<'_>, b: &mut Builder) {
        let loc = self.str_loc(v, s);
        let segments = match split(s) {
            Ok(segs) => segs,
            Err((at, msg)) => {
                self.error(loc.at(at), msg);
                return;
            }
        };
        if let [Segment::Expr { text, at }] = segments.as_slice() {
            match names.resolve(text) {
                Ok(Resolved::Expr(e)) => b.expr(e, Escape::JsonValue),
                Ok(Resolved::Text(t)) => b.lit(&json_value_text(&t)),
                Err(msg) => self.error(loc.at(*at), msg),
            }
            return;
        }
        b.lit("\"");
        for seg in segments {
            match seg {
                Segment::Lit(l) => b.lit(&json_escape(l)),
                Segment::Expr { text, at } => match names.resolve(text) {
                    Ok(Resolved::Expr(e)) => b.expr(e, Escape::JsonString),
                    Ok(Resolved::Text(t)) => b.lit(&json_escape(&t)),
                    Err(msg) => self.error(loc.at(at), msg),
                },
            }
        }
        b.lit("\"");
    }

    /// A TOML value as JSON (check expectations, literal JSON body values).
    pub(super) fn toml_to_json(&mut self, v: &Value<'_>) -> Option<serde_json::Value> {
        use serde_json::Value as J;
        Some(match v.get_ref() {
            DeValue::String(s) => J::String(s.to_string()),
            DeValue::Integer(_) => match int_of(v.get_ref()) {
                Some(i) => J::from(i),
                None => {
                    self.error(v.span().start, "integer out of range for JSON (64-bit)");
                    return None;
                }
            },
            DeValue::Float(_) => match float_of(v.get_ref()).and_then(serde_json::Number::from_f64)
            {
                Some(n) => J::Number(n),
                None => {
                    self.error(
                        v.span().start,
                        "JSON has no inf or nan; use a finite number",
                    );
                    return None;
                }
            },
            DeValue::Boolean(b) => J::Bool(*b),
            DeValue::Datetime(d) => J::String(d.to_string()),
            DeValue::Array(a) => J::Array(a.iter().filter_map(|i| self.toml_to_json(i)).collect()),
            DeValue::Table(t) => {
                let mut m = serde_json::Map::new();
                for (k, item) in entries(t) {
                    if let Some(j) = self.toml_to_json(item) {
                        m.insert(k.get_ref().to_string(), j);
                    }
                }
                J::Object(m)
            }
        })
    }
}

/// Where the text of a `path` or `url` has got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetPos {
    /// Before `://`.
    Scheme,
    /// The host and port.
    Authority,
    Path,
    Query,
}

/// Literal text of a `path` or `url`, encoded as it comes, with the problems found and the
/// byte offset of each in the string.
struct TargetText {
    pos: TargetPos,
    errors: Vec<(usize, String)>,
}

impl TargetText {
    fn literal(&mut self, mut text: &str, mut at: usize, b: &mut Builder) {
        if self.pos == TargetPos::Scheme {
            match text.find("://") {
                Some(i) => {
                    b.lit(&text[..i + 3]);
                    text = &text[i + 3..];
                    at += i + 3;
                    self.pos = TargetPos::Authority;
                }
                None => {
                    b.lit(text);
                    return;
                }
            }
        }
        if self.pos == TargetPos::Authority {
            let end = text.find(['/', '?', '#']).unwrap_or(text.len());
            b.lit(&text[..end]);
            text = &text[end..];
            at += end;
            if text.is_empty() {
                return;
            }
            self.pos = TargetPos::Path;
        }
        match encode_literal_target(text) {
            Ok(encoded) => b.lit(&encoded),
            Err((i, msg)) => self.errors.push((at + i, msg)),
        }
        if text.contains('?') {
            self.pos = TargetPos::Query;
        }
    }
}

/// RFC 7230 token characters (methods, header names).
pub(super) fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}
