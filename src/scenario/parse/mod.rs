//! The compiler: a spanned TOML tree in, a [`Scenario`] out, every problem recorded on the way.
//!
//! Each method of the compiler reads one table, reports what is wrong through the [`Collector`]
//! and still returns its best guess, so one mistake never hides the next. The caller only
//! builds a `Scenario` when nothing was reported.
//!
//! One module per section of the file, each with the keys it accepts beside the code that
//! reads them: `top` (the top level, `[stack]`, thresholds), `load`, `feeders`, `observe`,
//! `journeys` (journeys and steps), `protocol` (connections, redirects, encodings), `gate` (the regression gate's policy), `checks` (`extract`, `check`, JSON paths) and `values`
//! (strings, tables and JSON bodies with templates). `fields` reads any one table: unknown
//! keys, typed values, the positions errors point at. A new key is added in its section's
//! module (and in the file format in `scenario`'s docs).

// Public to `scenario` so that JSON paths can be tested on their own.
pub(super) mod checks;
mod feeders;
mod fields;
pub(super) mod gate;
mod journeys;
mod load;
pub(super) mod observe;
mod protocol;
mod top;
mod values;

use std::path::{Path, PathBuf};

use toml::de::{DeString, DeTable, DeValue};
use toml::Spanned;

use super::diag::{Collector, ScenarioErrors};
use super::model::Scenario;

type Value<'i> = Spanned<DeValue<'i>>;
type Key<'i> = Spanned<DeString<'i>>;

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
