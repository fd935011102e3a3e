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
