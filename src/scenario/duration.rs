//! Human durations (`"250ms"`, `"1.5s"`, `"1h30m"`) and think-time ranges (`"1s..3s"`).

use std::time::Duration;

use super::model::Think;

const UNITS: &[(&str, u128)] = &[
    ("h", 3_600_000_000_000),
    ("ms", 1_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("us", 1_000),
    ("µs", 1_000),
    ("ns", 1),
];

/// The longest duration a scenario or a flag may give (a stage, the whole plan, `settle`, a
/// timeout): far beyond any load test, and far from where adding it to a clock overflows.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

const HINT: &str = "write e.g. \"250ms\", \"1.5s\", \"2m\" or \"1m30s\" (units: h, m, s, ms, us)";

/// Parses a duration such as `"250ms"`, `"1.5s"`, `"2m"`, `"1h30m"`, `"500us"`.
///
/// Several `<number><unit>` pairs may follow each other; each number may have a fraction.
/// Errors say what is wrong and show the accepted forms.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err(format!("empty duration; {HINT}"));
    }
    if text.starts_with('-') {
        return Err(format!(
            "negative duration \"{text}\" is not allowed; {HINT}"
        ));
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
            .unwrap_or(rest.len());
        let number = &rest[..num_len];
        rest = rest[num_len..].trim_start();
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        if number.is_empty() {
            return Err(format!(
                "invalid duration \"{text}\": expected a number before \"{unit}\"; {HINT}"
            ));
        }
        if unit.is_empty() {
            return Err(format!(
                "duration \"{text}\" has no unit; write e.g. \"{number}s\" or \"{number}ms\""
            ));
        }
        let Some(&(_, unit_ns)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!(
                "unknown unit \"{unit}\" in duration \"{text}\"; {HINT}"
            ));
        };
        let number = number.replace('_', "");
        let (whole, frac) = number.split_once('.').unwrap_or((&number, ""));
        if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(format!("invalid number in duration \"{text}\"; {HINT}"));
        }
        let overflow = || too_long(text);
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| overflow())?
        };
        let mut ns = whole.checked_mul(unit_ns).ok_or_else(overflow)?;
        // The fraction, exactly, to nanosecond resolution.
        let mut scale = unit_ns;
        for digit in frac.chars().take(30) {
            scale /= 10;
            ns += u128::from(digit.to_digit(10).unwrap_or(0)) * scale;
        }
        total = total.checked_add(ns).ok_or_else(overflow)?;
    }
    if total > MAX_DURATION.as_nanos() {
        return Err(too_long(text));
    }
    Ok(Duration::new(
        (total / 1_000_000_000) as u64,
        (total % 1_000_000_000) as u32,
    ))
}

/// The message for a duration past [`MAX_DURATION`].
pub fn too_long(text: &str) -> String {
    format!("duration \"{text}\" is too long; the most is 366 days (\"8784h\")")
}

/// Parses a think time: a fixed `"500ms"` or a uniform range `"1s..3s"`.
pub(crate) fn parse_think(s: &str) -> Result<Think, String> {
    match s.split_once("..") {
        None => {
            let d = parse_duration(s)?;
            Ok(Think { min: d, max: d })
        }
        Some((lo, hi)) => {
            let min = parse_duration(lo)?;
            let max = parse_duration(hi)?;
            if min > max {
                return Err(format!(
                    "think range \"{s}\" goes backwards; write the shorter pause first, e.g. \"{}..{}\"",
                    hi.trim(),
                    lo.trim()
                ));
            }
            Ok(Think { min, max })
        }
    }
}
