//! Strings, tables and JSON bodies that may hold templates, compiled against the names in
//! scope (headers, query and form values, bodies, base_url).

use toml::de::DeValue;

use super::fields::{entries, float_of, int_of};
use super::{Compiler, Value};
use crate::scenario::model::*;
use crate::scenario::template::{
    encode_literal, json_escape, json_value_text, split, Builder, Names, Resolved, Segment,
};

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
                out.push((name.to_string(), self.template(hv, s, Escape::None, names)));
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

/// RFC 7230 token characters (methods, header names).
pub(super) fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}
