//! A step's `extract` and `check` tables, and JSON paths turned into pointers.

use toml::de::DeValue;

use super::fields::entries;
use super::values::is_tchar;
use super::{Compiler, Value};
use crate::scenario::model::*;
use crate::scenario::template::{JourneyNames, BUILTINS};

const CHECK_KEYS: &[&str] = &["status", "body_contains", "json", "max_duration"];
const EXTRACT_KEYS: &[&str] = &["json", "header", "regex"];

impl<'s> Compiler<'s> {
    pub(super) fn extractions(
        &mut self,
        v: &Value<'_>,
        journey: &mut JourneyNames,
    ) -> Vec<Extraction> {
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
            let Some(f) = self.fields(ev, &what, &[EXTRACT_KEYS, &["optional"]].concat(), &[])
            else {
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
            let optional = match f.get("optional") {
                Some(o) => match o.get_ref() {
                    DeValue::Boolean(b) => *b,
                    _ => {
                        self.type_error(o, "optional", "true or false");
                        false
                    }
                },
                None => false,
            };
            out.push(Extraction {
                var: index,
                source,
                optional,
            });
        }
        out
    }

    pub(super) fn checks(&mut self, v: &Value<'_>) -> Vec<Check> {
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
