//! Reading one table: its keys checked against the ones a section accepts, and its values
//! read as strings, numbers, durations and arrays of tables, each mistake reported where it
//! stands. Every section reads its table through these.

use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::{Compiler, Key, Value};
use crate::scenario::diag::{did_you_mean, suggest};
use crate::scenario::duration::parse_duration;

/// The longest name (scenario, journey, step, stage, feeder), in bytes.
pub(super) const MAX_NAME_BYTES: usize = 256;

/// `text` cut to at most [`MAX_NAME_BYTES`] on a character boundary, for names made from a
/// step's method and path.
pub(super) fn clip_name(mut text: String) -> String {
    if text.len() > MAX_NAME_BYTES {
        let mut end = MAX_NAME_BYTES - '…'.len_utf8();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// A table's entries in file order, with the keys already checked.
pub(super) struct Fields<'t, 'i> {
    pub(super) entries: Vec<(&'t Key<'i>, &'t Value<'i>)>,
    /// Where the table starts, for "missing key" errors.
    pub(super) at: usize,
    /// Known keys that an unknown key was taken for ("did you mean"), so that their absence
    /// is not reported a second time.
    pub(super) typos: Vec<String>,
}

impl<'t, 'i> Fields<'t, 'i> {
    pub(super) fn get(&self, key: &str) -> Option<&'t Value<'i>> {
        self.entry(key).map(|(_, v)| v)
    }

    pub(super) fn entry(&self, key: &str) -> Option<(&'t Key<'i>, &'t Value<'i>)> {
        self.entries
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .copied()
    }

    /// Whether `key` is absent and worth reporting (not already explained by a typo).
    pub(super) fn missing(&self, key: &str) -> bool {
        self.entry(key).is_none() && !self.typos.iter().any(|t| t == key)
    }

    pub(super) fn key_at(&self, key: &str) -> usize {
        self.entry(key).map_or(self.at, |(k, _)| k.span().start)
    }
}

/// Entries of a TOML table in the order they appear in the file.
pub(super) fn entries<'t, 'i>(table: &'t DeTable<'i>) -> Vec<(&'t Key<'i>, &'t Value<'i>)> {
    let mut e: Vec<_> = table.iter().collect();
    e.sort_by_key(|(k, _)| k.span().start);
    e
}

/// A short description of a value for type errors: `integer 5`, `string "x"`, `table`.
fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => {
            let shown: String = s.chars().take(40).collect();
            format!("string \"{shown}\"")
        }
        DeValue::Integer(i) => format!("integer {i}"),
        DeValue::Float(f) => format!("float {f}"),
        DeValue::Boolean(b) => format!("boolean {b}"),
        DeValue::Datetime(d) => format!("datetime {d}"),
        DeValue::Array(_) => "an array".to_string(),
        DeValue::Table(_) => "a table".to_string(),
    }
}

pub(super) fn int_of(v: &DeValue<'_>) -> Option<i64> {
    match v {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

pub(super) fn float_of(v: &DeValue<'_>) -> Option<f64> {
    match v {
        DeValue::Integer(_) => int_of(v).map(|i| i as f64),
        DeValue::Float(f) => f.as_str().replace('_', "").parse().ok(),
        _ => None,
    }
}

/// Where a string value's text starts in the source, when the source spells it unescaped.
#[derive(Clone, Copy)]
pub(super) struct StrLoc {
    start: usize,
    content: Option<usize>,
}

impl StrLoc {
    pub(super) fn at(self, offset: usize) -> usize {
        self.content.map_or(self.start, |c| c + offset)
    }
}

impl<'s> Compiler<'s> {
    pub(super) fn error(&mut self, at: usize, msg: impl Into<String>) {
        self.diags.error(at, msg);
    }

    pub(super) fn str_loc(&self, v: &Value<'_>, value: &str) -> StrLoc {
        let span = v.span();
        let raw = self.src.get(span.clone()).unwrap_or("");
        let delim = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            3
        } else {
            1
        };
        let content = (raw.len() >= 2 * delim)
            .then(|| &raw[delim..raw.len() - delim])
            .filter(|inner| *inner == value)
            .map(|_| span.start + delim);
        StrLoc {
            start: span.start,
            content,
        }
    }

    /// Checks a table's keys against `allowed` (listed in the error) and `tolerated` (accepted
    /// silently here, judged by the caller).
    pub(super) fn fields<'t, 'i>(
        &mut self,
        v: &'t Value<'i>,
        what: &str,
        allowed: &[&str],
        tolerated: &[&str],
    ) -> Option<Fields<'t, 'i>> {
        let DeValue::Table(t) = v.get_ref() else {
            self.error(
                v.span().start,
                format!("{what} must be a table, found {}", describe(v.get_ref())),
            );
            return None;
        };
        let entries = entries(t);
        let mut typos = Vec::new();
        for (k, _) in &entries {
            let key = k.get_ref().as_ref();
            if !allowed.contains(&key) && !tolerated.contains(&key) {
                if let Some(s) = suggest(key, allowed.iter().copied()) {
                    typos.push(s.to_string());
                }
                self.error(
                    k.span().start,
                    format!(
                        "unknown key \"{key}\" in {what}; expected one of: {}{}",
                        allowed.join(", "),
                        did_you_mean(key, allowed.iter().copied())
                    ),
                );
            }
        }
        Some(Fields {
            entries,
            at: v.span().start,
            typos,
        })
    }

    pub(super) fn type_error(&mut self, v: &Value<'_>, key: &str, expected: &str) {
        self.error(
            v.span().start,
            format!(
                "\"{key}\" must be {expected}, found {}",
                describe(v.get_ref())
            ),
        );
    }

    pub(super) fn string<'t>(&mut self, v: &'t Value<'_>, key: &str) -> Option<&'t str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            _ => {
                self.type_error(v, key, "a string");
                None
            }
        }
    }

    pub(super) fn int_in(&mut self, v: &Value<'_>, key: &str, min: i64, max: i64) -> Option<i64> {
        let expected = if max >= i64::from(u32::MAX) {
            format!("an integer ≥ {min}")
        } else {
            format!("an integer from {min} to {max}")
        };
        match int_of(v.get_ref()) {
            Some(i) if (min..=max).contains(&i) => Some(i),
            Some(i) => {
                self.error(
                    v.span().start,
                    format!("\"{key}\" must be {expected}, found {i}"),
                );
                None
            }
            None => {
                self.type_error(v, key, &expected);
                None
            }
        }
    }

    pub(super) fn u32_in(&mut self, v: &Value<'_>, key: &str, min: u32) -> Option<u32> {
        self.int_in(v, key, i64::from(min), i64::from(u32::MAX))
            .map(|i| i as u32)
    }

    pub(super) fn non_negative(&mut self, v: &Value<'_>, key: &str) -> Option<f64> {
        match float_of(v.get_ref()) {
            Some(f) if f >= 0.0 && f.is_finite() => Some(f),
            Some(f) => {
                self.error(
                    v.span().start,
                    format!("\"{key}\" must be a number ≥ 0, found {f}"),
                );
                None
            }
            None => {
                self.type_error(v, key, "a number ≥ 0");
                None
            }
        }
    }

    pub(super) fn duration(
        &mut self,
        v: &Value<'_>,
        key: &str,
        positive: bool,
    ) -> Option<Duration> {
        let s = self.string_or(v, key, "a duration string such as \"10s\" or \"250ms\"")?;
        match parse_duration(s) {
            Ok(d) if positive && d.is_zero() => {
                self.error(
                    v.span().start,
                    format!("\"{key}\" must be longer than zero, found \"{s}\""),
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.error(v.span().start, format!("bad duration for \"{key}\": {e}"));
                None
            }
        }
    }

    pub(super) fn string_or<'t>(
        &mut self,
        v: &'t Value<'_>,
        key: &str,
        expected: &str,
    ) -> Option<&'t str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            _ => {
                self.type_error(v, key, expected);
                None
            }
        }
    }

    /// An array of tables (`[[journey]]`); a single table is reported with the fix.
    pub(super) fn table_array<'t, 'i>(
        &mut self,
        v: &'t Value<'i>,
        key: &str,
    ) -> Vec<&'t Value<'i>> {
        match v.get_ref() {
            DeValue::Array(a) => {
                let mut out = Vec::new();
                for item in a.iter() {
                    if item.get_ref().is_table() {
                        out.push(item);
                    } else {
                        self.error(
                            item.span().start,
                            format!(
                                "each \"{key}\" must be a table, found {}",
                                describe(item.get_ref())
                            ),
                        );
                    }
                }
                out
            }
            _ => {
                self.error(
                    v.span().start,
                    format!(
                        "\"{key}\" must be an array of tables, written [[{key}]], found {}",
                        describe(v.get_ref())
                    ),
                );
                Vec::new()
            }
        }
    }

    /// A required, non-empty name.
    pub(super) fn name_value(&mut self, v: &Value<'_>, key: &str) -> Option<String> {
        let s = self.string(v, key)?;
        if s.trim().is_empty() {
            self.error(v.span().start, format!("\"{key}\" must not be empty"));
            return None;
        }
        if s.len() > MAX_NAME_BYTES {
            self.error(
                v.span().start,
                format!(
                    "\"{key}\" is {} bytes long; the most is {MAX_NAME_BYTES} (names label \
                     results, logs and reports)",
                    s.len()
                ),
            );
            return None;
        }
        Some(s.to_string())
    }
}
