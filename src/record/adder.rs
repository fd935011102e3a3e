//! Adding stored histograms (HdrHistogram V2 deflate-compressed, base64, as results.json and
//! latency.hlog hold them) bucket for bucket, the way `peakload merge` adds N shards' seconds.
//!
//! Decoding a stored histogram into a [`Histogram`] first would allocate and zero its whole
//! counts array (tens of thousands of buckets for latencies up to seconds) and then walk all of
//! it to add it, for a few hundred buckets in use: for 100 shards × 1 hour × 12 histograms a
//! second that was most of a merge's time. [`Adder::add_encoded`] instead walks the encoded
//! counts, which skip runs of empty buckets, and adds each bucket in use to the sum. Anything
//! it does not expect (another layout than the sum's, a feature peakload never writes) goes
//! through the full decoder, so the sum is the same either way.

use base64::Engine as _;
use hdrhistogram::Histogram;

use super::results::decode_histogram;

/// The V2 cookies, with the 8-byte word size in bits 4..7 as every writer sets it.
const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;
/// cookie, payload length, normalizing offset, digits, lowest, highest, integer-to-double ratio.
const V2_HEADER: usize = 4 + 4 + 4 + 4 + 8 + 8 + 8;

/// A sum of histograms: the first one added decides the precision, later ones are added into
/// it (the range grows as needed), so the sum is exact for histograms of one precision, as
/// every peakload histogram is.
#[derive(Default)]
pub struct Adder(Option<Histogram<u64>>);

/// Buffers reused from one stored histogram to the next.
pub struct Decoder {
    compressed: Vec<u8>,
    inflated: Vec<u8>,
    inflate: flate2::Decompress,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            compressed: Vec::new(),
            inflated: Vec::new(),
            inflate: flate2::Decompress::new(true),
        }
    }
}

/// What the V2 header says about the counts that follow it.
struct Layout {
    lowest: u64,
    highest: u64,
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
        Some(Layout {
            lowest,
            highest,
            digits: digits as u8,
            unit_magnitude: 63 - lowest.leading_zeros(),
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
        match &mut self.0 {
            None => {
                let mut first = h.clone();
                first.auto(true);
                self.0 = Some(first);
                Ok(())
            }
            Some(acc) => acc
                .add(h)
                .map_err(|e| format!("cannot add histograms: {e:?}")),
        }
    }

    /// Adds another sum to this one.
    pub fn absorb(&mut self, other: Adder) -> Result<(), String> {
        let Some(h) = other.0 else { return Ok(()) };
        if self.0.is_none() {
            self.0 = Some(h);
            return Ok(());
        }
        self.add_histogram(&h)
    }

    /// Adds a stored (base64) histogram without building it first (see the module's doc); the
    /// result is the one [`Adder::add`] gives.
    pub fn add_encoded(&mut self, encoded: &str, d: &mut Decoder) -> Result<(), String> {
        match self.try_add_counts(encoded.trim(), d) {
            Ok(true) => Ok(()),
            Ok(false) => self.add(encoded),
            Err(e) => Err(e),
        }
    }

    /// `Ok(false)` when the fast path does not apply and nothing was added.
    fn try_add_counts(&mut self, encoded: &str, d: &mut Decoder) -> Result<bool, String> {
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
        if !inflate(&mut d.inflate, deflated, &mut d.inflated) {
            return Ok(false);
        }
        let raw = &d.inflated;
        if raw.len() < V2_HEADER || be_u32(raw, 0) != V2_COOKIE {
            return Ok(false);
        }
        let payload_len = be_u32(raw, 4) as usize;
        let normalizing_offset = be_u32(raw, 8);
        let ratio = f64::from_bits(be_u64(raw, 32));
        let Some(layout) = Layout::new(be_u64(raw, 16), be_u64(raw, 24), be_u32(raw, 12)) else {
            return Ok(false);
        };
        let Some(payload) = raw.get(V2_HEADER..V2_HEADER + payload_len) else {
            return Ok(false);
        };
        if normalizing_offset != 0 || ratio != 1.0 {
            return Ok(false);
        }
        // Walk the counts once to check them before anything is added, so that a histogram
        // refused half-way leaves the sum as it was.
        if !for_each_count(payload, &layout, |_, _| true) {
            return Ok(false);
        }
        let acc = match &mut self.0 {
            Some(acc) if layout.matches(acc) => acc,
            Some(_) => return Ok(false),
            None => {
                let mut h =
                    Histogram::new_with_bounds(layout.lowest, layout.highest, layout.digits)
                        .map_err(|e| format!("histogram has an invalid range: {e:?}"))?;
                h.auto(true);
                self.0.insert(h)
            }
        };
        let mut failed = None;
        for_each_count(payload, &layout, |value, count| {
            match acc.record_n(value, count) {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(format!("cannot add histograms: {e:?}"));
                    false
                }
            }
        });
        match failed {
            None => Ok(true),
            Some(e) => Err(e),
        }
    }

    pub fn finish(self) -> Histogram<u64> {
        self.0
            .unwrap_or_else(|| Histogram::new(3).expect("3 significant figures are valid"))
    }
}

/// Calls `f(value, count)` for every bucket in use, in order; stops (returning false) when `f`
/// does or when the counts are malformed.
fn for_each_count(payload: &[u8], layout: &Layout, mut f: impl FnMut(u64, u64) -> bool) -> bool {
    let mut at = 0;
    let mut index: usize = 0;
    while at < payload.len() {
        let Some((zigzag, used)) = varint(&payload[at..]) else {
            return false;
        };
        at += used;
        let n = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
        if n < 0 {
            // A run of -n empty buckets.
            let Some(next) = index.checked_add(n.unsigned_abs() as usize) else {
                return false;
            };
            index = next;
            continue;
        }
        if n > 0 {
            let Some(value) = layout.value_at(index) else {
                return false;
            };
            if !f(value, n as u64) {
                return false;
            }
        }
        index += 1;
    }
    true
}

/// The format's LEB128 variant: up to 9 bytes, the 9th contributing all 8 of its bits.
fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(9) {
        if i == 8 {
            return Some((value | (u64::from(b) << 56), 9));
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Inflates a whole zlib stream into `out`; false when it is not one.
fn inflate(z: &mut flate2::Decompress, input: &[u8], out: &mut Vec<u8>) -> bool {
    z.reset(true);
    out.clear();
    out.reserve(input.len() * 4 + 64);
    loop {
        let before = z.total_in() as usize;
        match z.decompress_vec(&input[before..], out, flate2::FlushDecompress::Finish) {
            Ok(flate2::Status::StreamEnd) => return true,
            Ok(_) => {
                if out.len() == out.capacity() {
                    out.reserve(out.capacity());
                } else if z.total_in() as usize == before {
                    // No progress with room to write: the stream is cut short.
                    return false;
                }
            }
            Err(_) => return false,
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

    #[test]
    fn what_the_fast_path_cannot_read_is_refused_or_read_the_slow_way() {
        let mut d = Decoder::default();
        let mut a = Adder::default();
        assert!(a.add_encoded("not base64!", &mut d).is_err());
        let e = encode_histogram(&drawn(1, 100, 500.0));
        // Cut short: refused, and the sum is left as it was.
        let cut = &e[..e.len() / 2];
        assert!(a.add_encoded(cut, &mut d).is_err());
        assert!(a.0.is_none());
        // Another precision than the sum's: added by the full decoder.
        let mut two = Histogram::<u64>::new(2).unwrap();
        two.record(1234).unwrap();
        a.add_encoded(&e, &mut d).unwrap();
        a.add_encoded(&encode_histogram(&two), &mut d).unwrap();
        assert_eq!(a.finish().len(), 101);
    }
}
