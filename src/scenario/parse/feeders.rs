//! `[[feeder]]`: CSV files read at load time, whose columns templates name as
//! `{{feeder.column}}`.

use std::path::{Path, PathBuf};

use super::{Compiler, Value};
use crate::scenario::diag::{did_you_mean, line_col};
use crate::scenario::model::*;
use crate::scenario::template::FeederColumns;

const FEEDER_KEYS: &[&str] = &["name", "file", "mode"];

/// The feeders as compiled so far, plus where each was declared.
pub(super) struct FeederDecl {
    pub(super) feeder: Option<Feeder>,
    pub(super) columns: FeederColumns,
    pub(super) file_at: usize,
    /// The `file` value as written, for messages.
    pub(super) file: String,
}

impl<'s> Compiler<'s> {
    pub(super) fn feeders(&mut self, v: &Value<'_>) -> Vec<FeederDecl> {
        let mut out: Vec<FeederDecl> = Vec::new();
        let mut seen: Vec<(String, usize)> = Vec::new();
        for t in self.table_array(v, "feeder") {
            let Some(f) = self.fields(t, "[[feeder]]", FEEDER_KEYS, &[]) else {
                continue;
            };
            let name = match f.get("name") {
                Some(n) => self.feeder_name(n),
                None if !f.missing("name") => None,
                None => {
                    self.error(
                        f.at,
                        "this [[feeder]] has no \"name\"; add e.g. name = \"user\" and refer to \
                         its columns as {{user.<column>}}",
                    );
                    None
                }
            };
            if let (Some(n), Some(nv)) = (&name, f.get("name")) {
                if let Some((_, first)) = seen.iter().find(|(s, _)| s == n) {
                    let (line, _) = line_col(self.src, *first);
                    self.error(
                        nv.span().start,
                        format!(
                            "duplicate feeder name \"{n}\" (first declared on line {line}); \
                             give each feeder its own name"
                        ),
                    );
                }
                seen.push((n.clone(), nv.span().start));
            }
            let mode = match f.get("mode") {
                None => FeedMode::Sequential,
                Some(m) => match self.string(m, "mode") {
                    Some("sequential") | None => FeedMode::Sequential,
                    Some("random") => FeedMode::Random,
                    Some("unique") => FeedMode::Unique,
                    Some(other) => {
                        self.error(
                            m.span().start,
                            format!(
                                "unknown feeder mode \"{other}\"; expected \"sequential\", \
                                 \"random\" or \"unique\"{}",
                                did_you_mean(other, ["sequential", "random", "unique"])
                            ),
                        );
                        FeedMode::Sequential
                    }
                },
            };
            let mut decl = FeederDecl {
                feeder: None,
                columns: FeederColumns {
                    name: name.clone().unwrap_or_default(),
                    columns: None,
                },
                file_at: f.at,
                file: String::new(),
            };
            match f.get("file") {
                None if !f.missing("file") => {}
                None => self.error(
                    f.at,
                    "this [[feeder]] has no \"file\"; add e.g. file = \"data/users.csv\"",
                ),
                Some(fv) => {
                    decl.file_at = fv.span().start;
                    if let Some(file) = self.string(fv, "file") {
                        decl.file = file.to_string();
                        if let Some((columns, rows, path)) = self.read_csv(file, fv.span().start) {
                            if mode == FeedMode::Unique && rows.is_empty() {
                                self.error(
                                    fv.span().start,
                                    format!(
                                        "feeder file \"{file}\" has no data rows, so a unique \
                                         feeder could never give one; add rows"
                                    ),
                                );
                            }
                            decl.columns.columns = Some(columns.clone());
                            decl.feeder = Some(Feeder {
                                name: name.unwrap_or_default(),
                                path,
                                mode,
                                columns,
                                rows,
                            });
                        }
                    }
                }
            }
            out.push(decl);
        }
        out
    }

    fn feeder_name(&mut self, v: &Value<'_>) -> Option<String> {
        let n = self.name_value(v, "name")?;
        let valid = n
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
        if !valid {
            self.error(
                v.span().start,
                format!(
                    "feeder name \"{n}\" may only contain letters, digits, '_' and '-', since \
                     templates write it as {{{{{n}.<column>}}}}"
                ),
            );
            return None;
        }
        if n == "env" {
            self.error(
                v.span().start,
                "a feeder can't be named \"env\": {{env.NAME}} reads environment variables",
            );
            return None;
        }
        Some(n)
    }

    /// The header and rows of a CSV file, or `None` after reporting why not.
    fn read_csv(
        &mut self,
        file: &str,
        at: usize,
    ) -> Option<(Vec<String>, Vec<Vec<String>>, PathBuf)> {
        let given = Path::new(file);
        let path = if given.is_absolute() {
            given.to_path_buf()
        } else {
            self.dir.join(given)
        };
        let shown = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.error(
                    at,
                    format!(
                        "feeder file \"{file}\" not found (looked in {}); relative paths start \
                         from the scenario file's directory",
                        shown.display()
                    ),
                );
                return None;
            }
            Err(e) => {
                self.error(
                    at,
                    format!(
                        "can't read feeder file \"{file}\" ({}): {e}",
                        shown.display()
                    ),
                );
                return None;
            }
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(bytes.as_slice());
        let csv_error = |e: &csv::Error| -> String {
            match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    pos,
                    expected_len,
                    len,
                } => format!(
                    "feeder file \"{file}\" line {}: {len} fields, but the header has \
                     {expected_len}; every row needs one value per column",
                    pos.as_ref().map_or(0, |p| p.line())
                ),
                csv::ErrorKind::Utf8 { pos, .. } => format!(
                    "feeder file \"{file}\" line {}: not valid UTF-8",
                    pos.as_ref().map_or(0, |p| p.line())
                ),
                _ => format!("feeder file \"{file}\": {e}"),
            }
        };
        let columns: Vec<String> = match reader.headers() {
            Ok(h) => h.iter().map(str::to_string).collect(),
            Err(e) => {
                self.error(at, csv_error(&e));
                return None;
            }
        };
        if columns.iter().all(|c| c.trim().is_empty()) {
            self.error(
                at,
                format!(
                    "feeder file \"{file}\" has no header row; its first line must name the \
                     columns, e.g. email,password"
                ),
            );
            return None;
        }
        for (i, c) in columns.iter().enumerate() {
            if c.trim().is_empty() {
                self.error(
                    at,
                    format!(
                        "feeder file \"{file}\" line 1: column {} has no name in the header",
                        i + 1
                    ),
                );
                return None;
            }
            if columns[..i].contains(c) {
                self.error(
                    at,
                    format!("feeder file \"{file}\" line 1: column \"{c}\" appears twice"),
                );
                return None;
            }
        }
        let mut rows = Vec::new();
        for record in reader.records() {
            match record {
                Ok(r) => rows.push(r.iter().map(str::to_string).collect()),
                Err(e) => {
                    self.error(at, csv_error(&e));
                    return None;
                }
            }
        }
        Some((columns, rows, path))
    }
}
