//! Numbers for the charts: time series cut from the timeline and thinned to what a chart can
//! show, and percentile spectra decoded from the stored histograms.

use hdrhistogram::Histogram;

use crate::record::results::TimelinePoint;

/// Points per series a time chart keeps: a chart ~900 px wide shows no more, and a one-hour run
/// (3600 points per series) stays small.
pub const MAX_POINTS: usize = 600;

/// Thins `points` (sorted by x) to at most about `max_points` by keeping, for each of
/// `max_points / 2` buckets, its lowest and its highest point in time order, so spikes and dips
/// survive. Shorter series are returned as they are.
pub fn min_max_decimate(points: &[(f64, f64)], max_points: usize) -> Vec<(f64, f64)> {
    let buckets = (max_points / 2).max(1);
    if points.len() <= max_points.max(2) {
        return points.to_vec();
    }
    let mut out = Vec::with_capacity(buckets * 2 + 2);
    let per = points.len() as f64 / buckets as f64;
    for b in 0..buckets {
        let from = (b as f64 * per) as usize;
        let to = (((b + 1) as f64 * per) as usize).min(points.len());
        let chunk = &points[from..to];
        if chunk.is_empty() {
            continue;
        }
        let (mut lo, mut hi) = (0, 0);
        for (i, p) in chunk.iter().enumerate() {
            if p.1 < chunk[lo].1 {
                lo = i;
            }
            if p.1 > chunk[hi].1 {
                hi = i;
            }
        }
        let (first, second) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        out.push(chunk[first]);
        if second != first {
            out.push(chunk[second]);
        }
    }
    if out.last() != points.last() {
        out.push(*points.last().expect("non-empty"));
    }
    if out.first() != points.first() {
        out.insert(0, points[0]);
    }
    out
}

/// One value per timeline second, thinned for a chart.
pub fn timeline_series(
    timeline: &[TimelinePoint],
    value: impl Fn(&TimelinePoint) -> f64,
) -> Vec<(f64, f64)> {
    let raw: Vec<(f64, f64)> = timeline
        .iter()
        .map(|p| (p.t as f64, value(p)))
        .filter(|(_, v)| v.is_finite())
        .collect();
    min_max_decimate(&raw, MAX_POINTS)
}

/// Error kinds that occur anywhere in the timeline, in name order.
pub fn error_kinds(timeline: &[TimelinePoint]) -> Vec<String> {
    let mut kinds: Vec<String> = timeline
        .iter()
        .flat_map(|p| p.errors_by_kind.iter())
        .filter(|(_, &n)| n > 0)
        .map(|(k, _)| k.clone())
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// The percentile spectrum of a latency histogram (µs) as HdrHistogram plots it: points
/// `(1 / (1 - q), latency in ms)` for quantiles `q` below 1, ending with the maximum at the
/// x of one request in `len` (where a run of that many requests could still resolve it).
/// Empty for an empty histogram.
pub fn spectrum(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<(f64, f64)> = Vec::new();
    for v in h.iter_quantiles(5) {
        let q = v.quantile_iterated_to();
        if q >= 1.0 {
            break;
        }
        let x = 1.0 / (1.0 - q);
        if x >= h.len() as f64 {
            // Past one request in `len`: no more resolution there; the maximum ends the line.
            break;
        }
        let y = h.highest_equivalent(v.value_iterated_to()).min(h.max()) as f64 / 1000.0;
        if out.last().is_some_and(|&(lx, _)| x <= lx) {
            continue;
        }
        out.push((x, y));
    }
    let max = h.max() as f64 / 1000.0;
    match out.last_mut() {
        Some(last) if last.0 >= h.len() as f64 => last.1 = max,
        _ => out.push((h.len() as f64, max)),
    }
    out
}

/// Where a spectrum chart's x axis ends: the next power of ten past the data, at least 10⁴
/// (99.99%) so runs read on the same grid.
pub fn spectrum_x_max<'a>(spectra: impl IntoIterator<Item = &'a [(f64, f64)]>) -> f64 {
    let data_max = spectra
        .into_iter()
        .flat_map(|s| s.iter().map(|p| p.0))
        .fold(1.0_f64, f64::max);
    let decades = (data_max.log10() - 1e-6).ceil().clamp(4.0, 9.0);
    10f64.powf(decades)
}

/// The percentile an x of the spectrum stands for: 1 → 0%, 10 → 90%, 1000 → 99.9%.
pub fn percentile_label(x: f64) -> String {
    let decades = x.log10().round() as i32;
    match decades {
        0 => "0%".into(),
        1 => "90%".into(),
        d => format!("{}%", format_nines(d)),
    }
}

/// `2` → `99`, `3` → `99.9`, `5` → `99.999`.
fn format_nines(decades: i32) -> String {
    let mut s = String::from("99");
    if decades > 2 {
        s.push('.');
        for _ in 2..decades {
            s.push('9');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{new_histogram, record_micros};

    #[test]
    fn decimation_keeps_spikes_and_ends() {
        let mut pts: Vec<(f64, f64)> = (0..3600).map(|t| (t as f64, 10.0)).collect();
        pts[1234].1 = 500.0;
        pts[2000].1 = 0.5;
        let out = min_max_decimate(&pts, 600);
        assert!(out.len() <= 602, "{}", out.len());
        assert!(out.iter().any(|p| p.1 == 500.0));
        assert!(out.iter().any(|p| p.1 == 0.5));
        assert_eq!(out.first(), pts.first());
        assert_eq!(out.last(), pts.last());
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0), "time order kept");
    }

    #[test]
    fn short_series_are_untouched() {
        let pts = vec![(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)];
        assert_eq!(min_max_decimate(&pts, 600), pts);
    }

    #[test]
    fn spectrum_rises_and_ends_at_the_max() {
        let mut h = new_histogram();
        for i in 1..=10_000u64 {
            record_micros(&mut h, i * 100); // 0.1 ms .. 1000 ms, uniform
        }
        let s = spectrum(&h);
        assert!(s.len() > 20, "{} points", s.len());
        assert!(s.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        let median = s.iter().find(|p| p.0 >= 2.0).unwrap().1;
        assert!((450.0..=550.0).contains(&median), "median {median}");
        let last = s.last().unwrap();
        assert!((last.1 - 1000.0).abs() < 1.0, "max {}", last.1);
        assert!(last.0 >= 10_000.0);
        assert_eq!(spectrum_x_max([s.as_slice()]), 10_000.0);
        assert!(spectrum(&new_histogram()).is_empty());
    }

    #[test]
    fn percentile_labels_read_as_nines() {
        let labels: Vec<_> = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5]
            .iter()
            .map(|&x| percentile_label(x))
            .collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]);
    }
}
