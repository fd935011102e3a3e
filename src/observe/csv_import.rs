//! CSV import: signals exported from anywhere. The first column is the time (Unix seconds or
//! RFC 3339), every other column one signal named by its header. Empty cells are gaps.

use std::path::Path;

use crate::record::infra::{Infra, Series};

#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("cannot read {0}: {1}")]
    Read(String, String),
    #[error("{file}:{line}: {message}")]
    At {
        file: String,
        line: u64,
        message: String,
    },
    #[error("{0}: no data rows")]
    Empty(String),
}

/// Reads the file. Times become seconds relative to `origin_unix` (the run's start), or to
/// the first row when there is no run.
pub fn import(path: &Path, origin_unix: Option<f64>) -> Result<Infra, CsvError> {
    let file = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| CsvError::Read(file.clone(), e.to_string()))?;
    parse(&text, &file, origin_unix)
}

pub fn parse(text: &str, file: &str, origin_unix: Option<f64>) -> Result<Infra, CsvError> {
    let at = |line: u64, message: String| CsvError::At {
        file: file.to_string(),
        line,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| at(1, e.to_string()))?.clone();
    if headers.len() < 2 {
        return Err(at(
            1,
            "need a time column and at least one signal column".into(),
        ));
    }
    let mut series: Vec<Series> = headers
        .iter()
        .skip(1)
        .map(|h| Series {
            source: format!("csv:{file}"),
            name: h.to_string(),
            unit: String::new(),
            dimensions: Default::default(),
            span_s: None,
            points: Vec::new(),
        })
        .collect();
    let mut origin = origin_unix;
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            at(line, e.to_string())
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let t_text = record.get(0).unwrap_or("");
        let unix = parse_time(t_text).ok_or_else(|| {
            at(
                line,
                format!("time {t_text:?} is neither Unix seconds nor RFC 3339"),
            )
        })?;
        let t0 = *origin.get_or_insert(unix);
        for (i, cell) in record.iter().skip(1).enumerate() {
            if cell.is_empty() {
                continue;
            }
            let v: f64 = cell.parse().map_err(|_| {
                at(
                    line,
                    format!("{:?}: {cell:?} is not a number", &series[i].name),
                )
            })?;
            series[i].points.push((unix - t0, v));
        }
    }
    if series.iter().all(|s| s.points.is_empty()) {
        return Err(CsvError::Empty(file.to_string()));
    }
    for s in &mut series {
        s.points
            .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    }
    Ok(Infra {
        series,
        ..Default::default()
    })
}

fn parse_time(s: &str) -> Option<f64> {
    if let Ok(v) = s.parse::<f64>() {
        return v.is_finite().then_some(v);
    }
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_and_rfc3339_times_with_gaps() {
        let text = "time,cpu,queue\n1000,0.5,\n1001,0.7,3\n";
        let infra = parse(text, "m.csv", None).unwrap();
        assert_eq!(infra.series[0].name, "cpu");
        assert_eq!(infra.series[0].points, vec![(0.0, 0.5), (1.0, 0.7)]);
        assert_eq!(infra.series[1].points, vec![(1.0, 3.0)]);
        let text = "ts,x\n2024-11-29T10:00:00Z,1\n2024-11-29T10:00:02Z,2\n";
        let infra = parse(text, "m.csv", None).unwrap();
        assert_eq!(infra.series[0].points, vec![(0.0, 1.0), (2.0, 2.0)]);
        let infra = parse("t,x\n1010,1\n", "m.csv", Some(1000.0)).unwrap();
        assert_eq!(infra.series[0].points, vec![(10.0, 1.0)]);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("t,x\n1000,1\n1001,abc\n", "m.csv", None).unwrap_err();
        assert_eq!(e.to_string(), "m.csv:3: \"x\": \"abc\" is not a number");
        let e = parse("t,x\nyesterday,1\n", "m.csv", None).unwrap_err();
        assert!(e.to_string().starts_with("m.csv:2: time"), "{e}");
        assert!(parse("t\n1\n", "m.csv", None).is_err());
    }
}
