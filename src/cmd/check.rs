//! `peakload check`: validates a scenario file and describes its plan, sending nothing.

use std::fmt::Write as _;
use std::path::Path;

use super::{Failure, Outcome};
use crate::plan::{ArrivalSchedule, VuSchedule};
use crate::scenario::{ArrivalProcess, BaseUrl, FeedMode, Load, Scenario};
use crate::url::{redact_path, redact_url};

pub fn command(path: &Path) -> Result<Outcome, Failure> {
    let s = crate::scenario::load_scenario(path).map_err(Failure::Scenario)?;
    crate::outln!("{}", describe_plan(&s));
    Ok(Outcome::Success)
}

/// What `peakload check` prints for a valid scenario.
pub fn describe_plan(s: &Scenario) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: valid", s.source_path.display());
    let target = match &s.base_url {
        BaseUrl::Stack => "the bundled reference stack".to_string(),
        BaseUrl::Url(u) => redact_url(u),
    };
    let _ = writeln!(out, "  target: {target}");
    match &s.load {
        Load::Open(o) => {
            let plan = ArrivalSchedule::new(o);
            let _ = writeln!(
                out,
                "  open model: {} stage(s), {:?}, {} planned iterations, max_vus {}{}",
                o.stages.len(),
                s.load.duration(),
                plan.total_arrivals(),
                o.max_vus,
                match o.arrivals {
                    ArrivalProcess::Even => String::new(),
                    ArrivalProcess::Poisson { seed } => format!(", Poisson arrivals (seed {seed})"),
                }
            );
        }
        Load::Closed(c) => {
            let _ = writeln!(
                out,
                "  closed model: {} stage(s), {:?}, up to {} VUs",
                c.stages.len(),
                s.load.duration(),
                VuSchedule::new(c).max_vus()
            );
        }
    }
    for j in &s.journeys {
        let _ = writeln!(
            out,
            "  journey {} (weight {}): {} step(s)",
            j.name,
            j.weight,
            j.steps.len()
        );
        for st in &j.steps {
            let _ = writeln!(
                out,
                "    {} {} {}",
                st.name,
                st.method,
                shorten(redact_path(&st.url.describe(&j.vars)))
            );
        }
    }
    for f in &s.feeders {
        let mode = match f.mode {
            FeedMode::Sequential => "sequential",
            FeedMode::Random => "random",
            FeedMode::Unique => "unique",
        };
        let _ = writeln!(out, "  feeder {}: {} rows ({mode})", f.name, f.rows.len());
    }
    for t in &s.thresholds {
        let _ = writeln!(out, "  threshold {}", t.expr);
    }
    out
}

/// A path as shown in the description: a long one (a 10 MB template) is cut, with its length.
fn shorten(mut path: String) -> String {
    const LONGEST: usize = 200;
    if path.len() <= LONGEST {
        return path;
    }
    let full = path.len();
    let mut end = LONGEST;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    path.truncate(end);
    let _ = write!(path, "… ({full} bytes)");
    path
}
