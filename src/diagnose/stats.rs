//! Robust statistics on per-second series: medians, MAD, rolling medians, ranks and lagged
//! rank correlation. Nothing here allocates per lag, so 200 signals × an hour stay cheap.

/// The median of `x` (NaNs excluded); 0 for an empty slice.
pub fn median(x: &[f64]) -> f64 {
    let mut v: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
    median_in_place(&mut v)
}

fn median_in_place(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    let m = *m;
    if v.len() % 2 == 1 {
        m
    } else {
        let below = v[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (below + m) / 2.0
    }
}

/// Median and median absolute deviation.
pub fn median_mad(x: &[f64]) -> (f64, f64) {
    let m = median(x);
    let mut dev: Vec<f64> = x
        .iter()
        .filter(|v| !v.is_nan())
        .map(|v| (v - m).abs())
        .collect();
    (m, median_in_place(&mut dev))
}

/// Centered rolling median of odd width `w` (shrinking at the edges).
pub fn rolling_median(x: &[f64], w: usize) -> Vec<f64> {
    let half = w / 2;
    let mut buf = Vec::with_capacity(w);
    (0..x.len())
        .map(|i| {
            buf.clear();
            buf.extend_from_slice(&x[i.saturating_sub(half)..(i + half + 1).min(x.len())]);
            median_in_place(&mut buf)
        })
        .collect()
}

/// Ranks from 1, ties sharing their average rank.
pub fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in &idx[i..=j] {
            r[*k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Pearson correlation; 0 when either side is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    if n < 3 {
        return 0.0;
    }
    let (a, b) = (&a[..n], &b[..n]);
    let ma = a.iter().sum::<f64>() / n as f64;
    let mb = b.iter().sum::<f64>() / n as f64;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (da, db) = (a[i] - ma, b[i] - mb);
        sab += da * db;
        saa += da * da;
        sbb += db * db;
    }
    if saa <= 1e-12 || sbb <= 1e-12 {
        return 0.0;
    }
    sab / (saa * sbb).sqrt()
}

/// Spearman correlation of `x` shifted later by `lag` seconds against `y` (`lag` > 0: `x`
/// leads), on precomputed ranks.
pub fn lagged(rx: &[f64], ry: &[f64], lag: isize) -> f64 {
    let n = rx.len().min(ry.len());
    let l = lag.unsigned_abs();
    if l + 3 > n {
        return 0.0;
    }
    if lag >= 0 {
        pearson(&rx[..n - l], &ry[l..n])
    } else {
        pearson(&rx[l..n], &ry[..n - l])
    }
}

/// Every stretch `(first, last)` from `from` where `hit` holds for `run` consecutive points
/// or more (or, at the end, for what remains, if at least 2).
pub fn sustained_runs(hit: &[bool], from: usize, run: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &h) in hit.iter().enumerate().skip(from) {
        match (h, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s >= run {
                    out.push((s, i - 1));
                }
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        if hit.len() - s >= run.min(2) {
            out.push((s, hit.len() - 1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_mad() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median_mad(&[1.0, 2.0, 3.0, 4.0, 100.0]), (3.0, 1.0));
        assert_eq!(
            rolling_median(&[1.0, 9.0, 1.0, 1.0, 5.0, 5.0], 3),
            vec![5.0, 1.0, 1.0, 1.0, 5.0, 5.0]
        );
    }

    #[test]
    fn ranks_share_ties_and_correlations_are_scale_free() {
        assert_eq!(ranks(&[10.0, 0.0, 0.0, 5.0]), vec![4.0, 1.5, 1.5, 3.0]);
        let x: Vec<f64> = (0..50).map(|i| (i as f64).powi(3)).collect();
        let y: Vec<f64> = (0..50).map(|i| i as f64 * 0.001).collect();
        let (rx, ry) = (ranks(&x), ranks(&y));
        assert!((lagged(&rx, &ry, 0) - 1.0).abs() < 1e-12);
        assert_eq!(pearson(&[1.0; 10], &y[..10]), 0.0);
        // x leads y by 3: a step in x at 20, in y at 23.
        let x: Vec<f64> = (0..60).map(|i| f64::from(u8::from(i >= 20))).collect();
        let y: Vec<f64> = (0..60).map(|i| f64::from(u8::from(i >= 23))).collect();
        let (rx, ry) = (ranks(&x), ranks(&y));
        assert!((lagged(&rx, &ry, 3) - 1.0).abs() < 1e-12);
        assert!(lagged(&rx, &ry, -3) < lagged(&rx, &ry, 3));
    }

    #[test]
    fn every_sustained_run() {
        let h = [false, true, false, true, true, true, false];
        assert_eq!(sustained_runs(&h, 0, 3), vec![(3, 5)]);
        assert_eq!(sustained_runs(&h, 0, 1), vec![(1, 1), (3, 5)]);
        assert_eq!(sustained_runs(&h, 4, 3), vec![]);
        let tail = [true, true, true, false, false, true, true];
        assert_eq!(sustained_runs(&tail, 0, 3), vec![(0, 2), (5, 6)]);
        assert_eq!(sustained_runs(&[], 0, 3), vec![]);
    }
}
