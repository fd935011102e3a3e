//! The HdrHistogram interval log (`latency.hlog`), in the standard text format that the
//! reference HdrHistogram tools (Java `HistogramLogReader`, Python `hdrh`, HdrLogProcessing) read.
//!
//! One untagged line per second holds every request of that second; tagged lines
//! (`Tag=<journey>/<step>`) hold each step's share. Values are microseconds; the max column is in
//! milliseconds (`MaxValueDivisor` 1000).

use std::io::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use super::results::encode_histogram;

pub struct HlogWriter<W: Write> {
    out: W,
}

impl<W: Write> HlogWriter<W> {
    pub fn new(mut out: W, start: SystemTime) -> io::Result<Self> {
        let secs = start
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64();
        writeln!(out, "#[Histogram log format version 1.3]")?;
        writeln!(out, "#[Latency in microseconds, written by peakload]")?;
        writeln!(
            out,
            "#[StartTime: {secs:.3} (seconds since epoch), {}]",
            humantime::format_rfc3339_millis(start)
        )?;
        writeln!(out, "#[BaseTime: {secs:.3} (seconds since epoch)]")?;
        writeln!(out, "#[MaxValueDivisor: 1000.0]")?;
        writeln!(
            out,
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        )?;
        Ok(HlogWriter { out })
    }

    /// Writes one interval; `start` is seconds since the run's start.
    pub fn interval(
        &mut self,
        tag: Option<&str>,
        start: f64,
        length: f64,
        h: &Histogram<u64>,
    ) -> io::Result<()> {
        if let Some(tag) = tag {
            // Tags may not contain commas or whitespace in this format.
            let clean: String = tag
                .chars()
                .map(|c| {
                    if c == ',' || c.is_whitespace() {
                        '_'
                    } else {
                        c
                    }
                })
                .collect();
            write!(self.out, "Tag={clean},")?;
        }
        writeln!(
            self.out,
            "{start:.3},{length:.3},{:.3},{}",
            h.max() as f64 / 1000.0,
            encode_histogram(h)
        )
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// One interval line of a `latency.hlog`.
#[derive(Debug, Clone)]
pub struct HlogInterval {
    /// `<journey>/<step>` for a step's share; `None` for every request of the interval.
    pub tag: Option<String>,
    /// Seconds since the run's start.
    pub start: f64,
    pub length: f64,
    pub histogram: Histogram<u64>,
}

/// Reads the interval lines of a log written by [`HlogWriter`] (comments, the header line and
/// blank lines are skipped). An unreadable line is an error naming its line number.
pub fn read_intervals(text: &str) -> Result<Vec<HlogInterval>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if let Some(iv) = parse_line(line).map_err(|e| format!("line {}: {e}", n + 1))? {
            out.push(iv);
        }
    }
    Ok(out)
}

/// One line of a log: `None` for a comment, the header line or a blank line.
pub fn parse_line(line: &str) -> Result<Option<HlogInterval>, String> {
    let Some(raw) = split_line(line)? else {
        return Ok(None);
    };
    Ok(Some(HlogInterval {
        tag: raw.tag.map(str::to_string),
        start: raw.start,
        length: raw.length,
        histogram: super::results::decode_histogram(raw.histogram)?,
    }))
}

/// One interval line, its histogram still encoded (base64): for readers that add histograms
/// without building each one (see [`super::adder`]).
#[derive(Debug, Clone, Copy)]
pub struct RawInterval<'a> {
    pub tag: Option<&'a str>,
    pub start: f64,
    pub length: f64,
    pub histogram: &'a str,
}

/// [`parse_line`] without decoding the histogram.
pub fn split_line(line: &str) -> Result<Option<RawInterval<'_>>, String> {
    let Some(raw) = split_line_bytes(line.as_bytes())? else {
        return Ok(None);
    };
    Ok(Some(RawInterval {
        tag: raw.tag,
        start: raw.start,
        length: raw.length,
        histogram: std::str::from_utf8(raw.histogram).map_err(|_| "histogram is not text")?,
    }))
}

/// [`RawInterval`] of a line read as bytes: only the fields before the histogram need to be
/// text, the histogram is checked as base64 when it is decoded.
#[derive(Debug, Clone, Copy)]
pub struct RawIntervalBytes<'a> {
    pub tag: Option<&'a str>,
    pub start: f64,
    pub length: f64,
    pub histogram: &'a [u8],
}

/// [`split_line`] on bytes, without checking that the histogram is text (a reader that adds
/// millions of lines need not check every byte twice).
pub fn split_line_bytes(line: &[u8]) -> Result<Option<RawIntervalBytes<'_>>, String> {
    let line = line.trim_ascii();
    if line.is_empty() || line[0] == b'#' || line[0] == b'"' {
        return Ok(None);
    }
    let (tag, rest) = match line.strip_prefix(b"Tag=") {
        Some(r) => {
            let comma = memchr::memchr(b',', r).ok_or("a tag and nothing else")?;
            let tag = std::str::from_utf8(&r[..comma]).map_err(|_| "the tag is not text")?;
            (Some(tag), &r[comma + 1..])
        }
        None => (None, line),
    };
    let mut fields = rest.splitn(4, |&b| b == b',');
    let mut num = |what: &str| -> Result<f64, String> {
        fields
            .next()
            .and_then(|f| std::str::from_utf8(f).ok())
            .and_then(|f| f.trim().parse::<f64>().ok())
            .ok_or_else(|| format!("no {what}"))
    };
    let start = num("start time")?;
    let length = num("interval length")?;
    let _max = num("interval max")?;
    let histogram = fields.next().ok_or_else(|| "no histogram".to_string())?;
    Ok(Some(RawIntervalBytes {
        tag,
        start,
        length,
        histogram: histogram.trim_ascii(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        h.record(1500).unwrap();
        h.record(250_000).unwrap();
        let mut buf = Vec::new();
        let mut w = HlogWriter::new(&mut buf, SystemTime::now()).unwrap();
        w.interval(None, 0.0, 1.0, &h).unwrap();
        w.interval(Some("shop/add to cart"), 1.0, 0.5, &h).unwrap();
        let read = read_intervals(std::str::from_utf8(&buf).unwrap()).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].tag, None);
        assert_eq!(read[1].tag.as_deref(), Some("shop/add_to_cart"));
        assert_eq!((read[1].start, read[1].length), (1.0, 0.5));
        assert_eq!(read[1].histogram, h);
        // HdrHistogram's compressed V2 cookie, as other readers of the format look for it.
        assert!(encode_histogram(&h).starts_with("HISTFAAA"));
        // As a reader of bytes sees them: a CRLF line, a tag that is not text.
        let line = b"Tag=a/b,1.000,1.000,2.000,HISTFAAA\r\n";
        let raw = split_line_bytes(line).unwrap().unwrap();
        assert_eq!(
            (raw.tag, raw.start, raw.histogram),
            (Some("a/b"), 1.0, &b"HISTFAAA"[..])
        );
        assert!(split_line_bytes(b"Tag=\xff,1,1,1,HISTFAAA").is_err());
        assert!(split_line_bytes(b"#[comment]").unwrap().is_none());
        assert!(read_intervals("0.0,1.0,2.0,notbase64!")
            .unwrap_err()
            .starts_with("line 1"));
    }
}
