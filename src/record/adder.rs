//! Adding stored histograms (HdrHistogram V2 deflate-compressed, base64, as results.json and
//! latency.hlog hold them) bucket for bucket, the way `peakload merge` adds N shards' seconds.
//!
//! Decoding a stored histogram into a [`Histogram`] first would allocate and zero its whole
//! counts array (tens of thousands of buckets for latencies up to seconds) and then walk all of
//! it to add it, for a few hundred buckets in use: for 100 shards × 1 hour × 12 histograms a
//! second that was most of a merge's time. [`Adder::add_encoded`] instead walks the encoded
//! counts, which skip runs of empty buckets, and adds each bucket in use to a plain counts
//! array at the format's own index (no value-to-bucket arithmetic per count), which becomes a
//! [`Histogram`] once, when the sum is finished. The base64, inflate (zlib-rs) and count buffers
//! are reused from one line to the next ([`Decoder`]). Anything it does not expect (another
//! layout than the sum's, a feature peakload never writes) goes through the full decoder, so
//! the sum is the same either way.

use base64::Engine as _;
use hdrhistogram::Histogram;

use super::results::decode_histogram;

/// The V2 cookies, with the 8-byte word size in bits 4..7 as every writer sets it.
const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
pub(super) const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;
/// cookie, payload length, normalizing offset, digits, lowest, highest, integer-to-double ratio.
const V2_HEADER: usize = 4 + 4 + 4 + 4 + 8 + 8 + 8;

/// A sum of histograms: the first one added decides the precision, later ones are added into
/// it (the range grows as needed), so the sum is exact for histograms of one precision, as
/// every peakload histogram is.
#[derive(Default)]
pub struct Adder(Sum);

#[derive(Default)]
enum Sum {
    #[default]
    Empty,
    /// Stored histograms of one layout, added at the format's own bucket indices.
    Counts(Counts),
    Histogram(Histogram<u64>),
}

/// Bucket counts indexed as the V2 format (and [`Histogram`]) index them: the index of a value
/// depends only on the lowest discernible value and the precision, so histograms of one layout
/// add index by index whatever their ranges.
struct Counts {
    layout: Layout,
    counts: Vec<u64>,
}

impl Counts {
    /// The sum, its range set by its own counts (see [`canonical`]).
    fn to_histogram(&self) -> Result<Histogram<u64>, String> {
        let l = &self.layout;
        let largest = self
            .counts
            .iter()
            .rposition(|&n| n > 0)
            .and_then(|i| l.value_at(i))
            .unwrap_or(0);
        let mut h = Histogram::new_with_bounds(l.lowest, range_for(l.lowest, largest), l.digits)
            .map_err(|e| format!("histogram has an invalid range: {e:?}"))?;
        h.auto(true);
        for (index, &n) in self.counts.iter().enumerate() {
            if n > 0 {
                let value = l.value_at(index).expect("checked when added");
                h.record_n(value, n)
                    .map_err(|e| format!("cannot add histograms: {e:?}"))?;
            }
        }
        Ok(h)
    }

    /// Adds the buckets in use of a stored histogram of this layout ([`decode_counts`]).
    fn add_entries(&mut self, entries: &[(usize, u64)]) {
        let Some(&(last, _)) = entries.last() else {
            return;
        };
        if self.counts.len() <= last {
            self.counts.resize(last + 1, 0);
        }
        for &(index, n) in entries {
            let c = &mut self.counts[index];
            *c = c.saturating_add(n);
        }
    }
}

/// Buffers reused from one stored histogram to the next.
pub struct Decoder {
    compressed: Vec<u8>,
    inflated: Vec<u8>,
    inflate: zlib_rs::Inflate,
    /// The buckets in use of the histogram being added: (index, count).
    entries: Vec<(usize, u64)>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            compressed: Vec::new(),
            inflated: Vec::new(),
            inflate: zlib_rs::Inflate::new(true, 15),
            entries: Vec::new(),
        }
    }
}

/// What the V2 header says about the counts that follow it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Layout {
    lowest: u64,
    digits: u8,
    /// log2 of the lowest discernible value.
    unit_magnitude: u32,
    /// log2 of half the sub-buckets per bucket.
    half_magnitude: u32,
}

impl Layout {
    fn new(lowest: u64, highest: u64, digits: u32) -> Option<Layout> {
        if lowest == 0 || digits > 5 || highest < lowest.saturating_mul(2) {
            return None;
        }
        let largest_single_unit = 2 * 10u64.pow(digits);
        let sub_bucket_magnitude = 64 - (largest_single_unit - 1).leading_zeros();
        let unit_magnitude = 63 - lowest.leading_zeros();
        // What `Histogram::new_with_bounds` refuses, refused here, so that a sum of counts can
        // always become a histogram when it is finished.
        if lowest > u64::MAX / 2 || unit_magnitude + sub_bucket_magnitude > 63 {
            return None;
        }
        Some(Layout {
            lowest,
            digits: digits as u8,
            unit_magnitude,
            half_magnitude: sub_bucket_magnitude.max(1) - 1,
        })
    }

    /// The lowest value counted at `index` of the counts array.
    fn value_at(&self, index: usize) -> Option<u64> {
        let half = 1u64 << self.half_magnitude;
        let index = index as u64;
        let (bucket, sub_bucket) = match (index >> self.half_magnitude).checked_sub(1) {
            Some(bucket) => (bucket, (index & (half - 1)) + half),
            None => (0, index & (half - 1)),
        };
        let shift = bucket + u64::from(self.unit_magnitude);
        (shift < 64 && sub_bucket.leading_zeros() as u64 > shift).then(|| sub_bucket << shift)
    }

    fn matches(&self, h: &Histogram<u64>) -> bool {
        h.low() == self.lowest && h.sigfig() == self.digits
    }
}

impl Adder {
    /// Adds a stored (base64) histogram.
    pub fn add(&mut self, encoded: &str) -> Result<(), String> {
        self.add_histogram(&decode_histogram(encoded)?)
    }

    pub fn add_histogram(&mut self, h: &Histogram<u64>) -> Result<(), String> {
        let acc = self.histogram()?;
        match acc {
            None => {
                let mut first = h.clone();
                first.auto(true);
                self.0 = Sum::Histogram(first);
                Ok(())
            }
            Some(acc) => acc
                .add(h)
                .map_err(|e| format!("cannot add histograms: {e:?}")),
        }
    }

    /// The sum as a [`Histogram`] from now on (`None` while empty).
    fn histogram(&mut self) -> Result<Option<&mut Histogram<u64>>, String> {
        if let Sum::Counts(c) = &self.0 {
            self.0 = Sum::Histogram(c.to_histogram()?);
        }
        Ok(match &mut self.0 {
            Sum::Histogram(h) => Some(h),
            _ => None,
        })
    }

    /// Adds another sum to this one.
    pub fn absorb(&mut self, other: Adder) -> Result<(), String> {
        match (&mut self.0, other.0) {
            (_, Sum::Empty) => Ok(()),
            (Sum::Empty, sum) => {
                self.0 = sum;
                Ok(())
            }
            (Sum::Counts(a), Sum::Counts(b)) if a.layout == b.layout => {
                if a.counts.len() < b.counts.len() {
                    a.counts.resize(b.counts.len(), 0);
                }
                for (x, y) in a.counts.iter_mut().zip(&b.counts) {
                    *x = x.saturating_add(*y);
                }
                Ok(())
            }
            (_, Sum::Counts(b)) => self.add_histogram(&b.to_histogram()?),
            (_, Sum::Histogram(h)) => self.add_histogram(&h),
        }
    }

    /// Adds a stored (base64) histogram without building it first (see the module's doc); the
    /// result is the one [`Adder::add`] gives.
    pub fn add_encoded(&mut self, encoded: &str, d: &mut Decoder) -> Result<(), String> {
        self.add_encoded_bytes(encoded.trim().as_bytes(), d)
    }

    /// [`Adder::add_encoded`] on the bytes of the base64 text.
    pub fn add_encoded_bytes(&mut self, encoded: &[u8], d: &mut Decoder) -> Result<(), String> {
        match self.try_add_counts(encoded, d) {
            Ok(true) => Ok(()),
            Ok(false) => {
                let text = std::str::from_utf8(encoded)
                    .map_err(|_| "histogram is not valid base64: not text".to_string())?;
                self.add(text)
            }
            Err(e) => Err(e),
        }
    }

    /// `Ok(false)` when the fast path does not apply and nothing was added.
    fn try_add_counts(&mut self, encoded: &[u8], d: &mut Decoder) -> Result<bool, String> {
        d.compressed.clear();
        base64::engine::general_purpose::STANDARD
            .decode_vec(encoded, &mut d.compressed)
            .map_err(|e| format!("histogram is not valid base64: {e}"))?;
        let bytes = &d.compressed;
        if bytes.len() < 8 || be_u32(bytes, 0) != V2_COMPRESSED_COOKIE {
            return Ok(false);
        }
        let len = be_u32(bytes, 4) as usize;
        let Some(deflated) = bytes.get(8..8 + len) else {
            return Ok(false);
        };
        let Some(inflated) = inflate(&mut d.inflate, deflated, &mut d.inflated) else {
            return Ok(false);
        };
        let raw = &d.inflated[..inflated];
        if raw.len() < V2_HEADER || be_u32(raw, 0) != V2_COOKIE {
            return Ok(false);
        }
        let payload_len = be_u32(raw, 4) as usize;
        let normalizing_offset = be_u32(raw, 8);
        let ratio = f64::from_bits(be_u64(raw, 32));
        let highest = be_u64(raw, 24);
        let Some(layout) = Layout::new(be_u64(raw, 16), highest, be_u32(raw, 12)) else {
            return Ok(false);
        };
        let Some(payload) = raw.get(V2_HEADER..V2_HEADER + payload_len) else {
            return Ok(false);
        };
        if normalizing_offset != 0 || ratio != 1.0 {
            return Ok(false);
        }
        // Every count is decoded (and checked) before any is added, so that a histogram refused
        // half-way leaves the sum as it was.
        if !decode_counts(payload, &mut d.entries) {
            return Ok(false);
        }
        let entries = &d.entries;
        if let Some(&(last, _)) = entries.last() {
            if layout.value_at(last).is_none() {
                return Ok(false);
            }
        }
        match &mut self.0 {
            Sum::Empty => {
                let mut c = Counts {
                    layout,
                    counts: Vec::new(),
                };
                c.add_entries(entries);
                self.0 = Sum::Counts(c);
            }
            Sum::Counts(c) if c.layout == layout => c.add_entries(entries),
            Sum::Counts(_) => return Ok(false),
            Sum::Histogram(acc) => {
                if !layout.matches(acc) {
                    return Ok(false);
                }
                for &(index, n) in entries {
                    let value = layout.value_at(index).expect("checked above");
                    acc.record_n(value, n)
                        .map_err(|e| format!("cannot add histograms: {e:?}"))?;
                }
            }
        }
        Ok(true)
    }

    /// The sum, with a range that depends on its counts alone (see [`canonical`]).
    pub fn finish(self) -> Histogram<u64> {
        let new = || Histogram::new(3).expect("3 significant figures are valid");
        match self.0 {
            Sum::Empty => new(),
            // The layout and every count were checked when added (see `Layout::new`).
            Sum::Counts(c) => c.to_histogram().unwrap_or_else(|_| new()),
            Sum::Histogram(h) => canonical(h),
        }
    }
}

/// The highest trackable value of a sum whose largest count is at `largest`: that value, at
/// least twice the lowest (what a range needs).
fn range_for(lowest: u64, largest: u64) -> u64 {
    largest.max(lowest.saturating_mul(2))
}

/// `h` with the range its counts need. The stored form records the range, and a range grown
/// as shards were added depends on their order and grouping: the same counts merged as one
/// level and as two were written with different ranges (21,375 against 22,399), so the two
/// results differed in their bytes though not in a single count.
fn canonical(h: Histogram<u64>) -> Histogram<u64> {
    let largest = if h.is_empty() {
        0
    } else {
        h.lowest_equivalent(h.max())
    };
    let high = range_for(h.low(), largest);
    if h.high() == high {
        return h;
    }
    let Ok(mut c) = Histogram::new_with_bounds(h.low(), high, h.sigfig()) else {
        return h;
    };
    if c.add(&h).is_ok() {
        c
    } else {
        h
    }
}

/// Decodes the counts of a V2 payload into `entries`, (index, count) of every bucket in use in
/// index order; false when they are malformed.
fn decode_counts(payload: &[u8], entries: &mut Vec<(usize, u64)>) -> bool {
    entries.clear();
    let mut at = 0;
    let mut index: usize = 0;
    while let Some(&first) = payload.get(at) {
        // Most counts and most runs of empty buckets fit in one byte.
        let zigzag = if first < 0x80 {
            at += 1;
            u64::from(first)
        } else {
            let Some((value, next)) = varint(payload, at) else {
                return false;
            };
            at = next;
            value
        };
        if zigzag & 1 == 1 {
            // A negative n: a run of -n empty buckets.
            let Some(next) = usize::try_from((zigzag >> 1) + 1)
                .ok()
                .and_then(|run| index.checked_add(run))
            else {
                return false;
            };
            index = next;
            continue;
        }
        let n = zigzag >> 1;
        if n > 0 {
            entries.push((index, n));
        }
        let Some(next) = index.checked_add(1) else {
            return false;
        };
        index = next;
    }
    true
}

/// The format's LEB128 variant at `at`: up to 9 bytes, the 9th contributing all 8 of its bits.
/// Returns the value and where the next one starts.
fn varint(bytes: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.get(at..)?.iter().enumerate().take(9) {
        if i == 8 {
            return Some((value | (u64::from(b) << 56), at + 9));
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, at + i + 1));
        }
    }
    None
}

/// Largest inflated histogram accepted by the fast path (a sum of an hour's latencies at three
/// digits is a few tens of KiB); anything larger goes to the full decoder.
const MAX_INFLATED: usize = 64 << 20;

/// Inflates a whole zlib stream into `out` (kept at its largest size from one call to the next,
/// so it is not zeroed again); the length inflated, or `None` when it is not one.
fn inflate(z: &mut zlib_rs::Inflate, input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    z.reset(true);
    let want = input
        .len()
        .saturating_mul(4)
        .saturating_add(64)
        .min(MAX_INFLATED);
    if out.len() < want {
        out.resize(want, 0);
    }
    loop {
        let (read, written) = (z.total_in() as usize, z.total_out() as usize);
        match z.decompress(
            &input[read..],
            &mut out[written..],
            zlib_rs::InflateFlush::Finish,
        ) {
            Ok(zlib_rs::Status::StreamEnd) => return Some(z.total_out() as usize),
            Ok(_) => {
                let now = z.total_out() as usize;
                if now == out.len() && out.len() < MAX_INFLATED {
                    let grown = (out.len() * 2).min(MAX_INFLATED);
                    out.resize(grown, 0);
                } else if now == written && z.total_in() as usize == read {
                    // No progress with room to write: the stream is cut short.
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::results::encode_histogram;

    fn drawn(seed: u64, n: usize, scale: f64) -> Histogram<u64> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut h = crate::record::new_histogram();
        for _ in 0..n {
            let us = (scale * (1.0 + 50.0 * rng.f64() * rng.f64() * rng.f64())) as u64;
            crate::record::record_micros(&mut h, us);
        }
        h
    }

    fn both(parts: &[Histogram<u64>]) -> (Histogram<u64>, Histogram<u64>) {
        let (mut slow, mut fast, mut d) = (Adder::default(), Adder::default(), Decoder::default());
        for p in parts {
            let e = encode_histogram(p);
            slow.add(&e).unwrap();
            fast.add_encoded(&e, &mut d).unwrap();
        }
        (slow.finish(), fast.finish())
    }

    #[test]
    fn adding_the_stored_counts_is_adding_the_histograms() {
        // Growing ranges (the sum must resize), one empty, one from a single value, one spanning
        // microseconds to an hour.
        let mut parts: Vec<_> = (0..20u64)
            .map(|i| drawn(i, 50 + 97 * i as usize, 40.0 * (i + 1).pow(3) as f64))
            .collect();
        parts.insert(3, crate::record::new_histogram());
        let mut single = crate::record::new_histogram();
        single.record_n(12_345, 7).unwrap();
        parts.push(single);
        let mut wide = crate::record::new_histogram();
        for us in [1, 2, 1023, 1024, 2047, 2048, 999_999, 3_600_000_000] {
            crate::record::record_micros(&mut wide, us);
        }
        parts.push(wide);
        let (slow, fast) = both(&parts);
        assert_eq!(slow, fast);
        assert_eq!(fast, slow);
        assert_eq!(slow.len(), fast.len());
        for q in (0..=1000).map(|i| i as f64 / 1000.0) {
            assert_eq!(
                slow.value_at_quantile(q),
                fast.value_at_quantile(q),
                "q {q}"
            );
        }
        assert_eq!((slow.min(), slow.max()), (fast.min(), fast.max()));
        let back = decode_histogram(&encode_histogram(&fast)).unwrap();
        assert_eq!(back, slow);
        // The other order: the first added is the widest.
        parts.reverse();
        let (slow, fast) = both(&parts);
        assert_eq!(slow, fast);
        assert_eq!(fast, slow);
    }

    /// The stored form records the range; a sum's must not depend on the order or grouping
    /// of what was added, or a merge of parts differs in its bytes from the direct merge.
    #[test]
    fn a_sum_is_stored_the_same_whatever_the_order_and_grouping() {
        // Two of them with ranges that end in one bucket of the format (16,384-32,767 µs), at
        // their largest values 21,375 and 22,399 (as a sum built by `Histogram::add` has): a
        // range set to the first already holds the second.
        let mut parts: Vec<_> = (0..4u64).map(|i| drawn(200 + i, 40, 100.0)).collect();
        for top in [21_375, 22_399] {
            let mut h = Histogram::new_with_bounds(1, top, 3).unwrap();
            h.add(drawn(top, 40, 100.0)).unwrap();
            h.record(top).unwrap();
            parts.push(h);
        }
        let stored = |order: &[usize], split: usize| {
            let mut d = Decoder::default();
            let mut total = Adder::default();
            for group in [&order[..split], &order[split..]] {
                let mut part = Adder::default();
                for &i in group {
                    part.add_encoded(&encode_histogram(&parts[i]), &mut d)
                        .unwrap();
                }
                // A part is stored, then read back, as `peakload merge` of parts reads it.
                total
                    .add_encoded(&encode_histogram(&part.finish()), &mut d)
                    .unwrap();
            }
            encode_histogram(&total.finish())
        };
        let direct = stored(&[0, 1, 2, 3, 4, 5], 6);
        for (order, split) in [
            (vec![5, 4, 3, 2, 1, 0], 6),
            (vec![0, 1, 2, 3, 4, 5], 1),
            (vec![2, 0, 4, 1, 5, 3], 3),
        ] {
            assert_eq!(stored(&order, split), direct, "{order:?} split at {split}");
        }
        // The slow way (a built histogram in the sum) stores it the same.
        let mut slow = Adder::default();
        for p in parts.iter().rev() {
            slow.add_histogram(p).unwrap();
        }
        assert_eq!(encode_histogram(&slow.finish()), direct);
    }

    #[test]
    fn a_layout_no_histogram_can_have_is_left_to_the_full_decoder() {
        for (low, high, digits) in [(1, 2, 3), (1, 3_600_000_000, 3), (1000, 1 << 40, 5)] {
            assert!(Layout::new(low, high, digits).is_some());
            assert!(Histogram::<u64>::new_with_bounds(low, high, digits as u8).is_ok());
        }
        for (low, high, digits) in [(0, 2, 3), (1, 1, 3), (1, 2, 6), (1 << 62, u64::MAX, 3)] {
            assert!(Layout::new(low, high, digits).is_none());
            assert!(Histogram::<u64>::new_with_bounds(low, high, digits as u8).is_err());
        }
    }

    #[test]
    fn sums_absorbed_into_one_are_the_sum_of_all() {
        // As the merge adds each reader thread's sums of one second: the parts split in blocks,
        // each block added the fast way, the blocks' sums absorbed in turn.
        let parts: Vec<_> = (0..12u64)
            .map(|i| drawn(100 + i, 300, 60.0 * (1 + i % 5).pow(4) as f64))
            .collect();
        let (slow, _) = both(&parts);
        let mut d = Decoder::default();
        let mut total = Adder::default();
        for block in parts.chunks(5) {
            let mut sum = Adder::default();
            for p in block {
                sum.add_encoded(&encode_histogram(p), &mut d).unwrap();
            }
            total.absorb(sum).unwrap();
        }
        // One absorbed as a built histogram, as a sum that left the fast path would be.
        let mut built = Adder::default();
        built.add_histogram(&parts[0]).unwrap();
        total.absorb(built).unwrap();
        let mut expected = Adder::default();
        expected.add_histogram(&slow).unwrap();
        expected.add_histogram(&parts[0]).unwrap();
        let (total, expected) = (total.finish(), expected.finish());
        assert_eq!(total, expected);
        assert_eq!(expected, total);
        assert_eq!(total.len(), 12 * 300 + 300);
    }

    #[test]
    fn what_the_fast_path_cannot_read_is_refused_or_read_the_slow_way() {
        let mut d = Decoder::default();
        let mut a = Adder::default();
        assert!(a.add_encoded("not base64!", &mut d).is_err());
        let e = encode_histogram(&drawn(1, 100, 500.0));
        // Cut short: refused, and the sum is left as it was.
        let cut = &e[..e.len() / 2];
        assert!(a.add_encoded(cut, &mut d).is_err());
        assert!(matches!(a.0, Sum::Empty));
        // Another precision than the sum's: added by the full decoder.
        let mut two = Histogram::<u64>::new(2).unwrap();
        two.record(1234).unwrap();
        a.add_encoded(&e, &mut d).unwrap();
        a.add_encoded(&encode_histogram(&two), &mut d).unwrap();
        assert_eq!(a.finish().len(), 101);
    }
}
