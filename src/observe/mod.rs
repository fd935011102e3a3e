//! Infrastructure signals for a run, read from their sources into the one model `results.json`
//! carries ([`crate::record::infra`]): [`Series`] (numbers over time) and [`Event`]s (things
//! with a start and an end, such as a scaling activity or a log line).
//!
//! Every source turns what it reads into this model, with times in seconds relative to the
//! run's start (use [`RunWindow::relative`] for Unix timestamps), and hands back an [`Infra`]
//! that the caller merges with [`Infra::extend`]. The result is stored in `results.json`
//! (`infra`), so `peakload diagnose results.json` can re-run the analysis offline.
//!
//! Sources here: [`scrape`] (a Prometheus-format `/metrics` endpoint read every second during
//! the run), [`prometheus`] (`query_range` against a Prometheus HTTP API after the run) and
//! [`csv_import`] (a CSV export), and [`aws`] (CloudWatch metrics, CloudWatch Logs pattern
//! counts and scaling activities, after the run).

pub mod aws;
pub mod csv_import;
pub mod prom_text;
pub mod prometheus;
pub mod scrape;

use crate::record::infra::Infra;
#[cfg(doc)]
use crate::record::infra::{Event, Series};

/// The run's wall-clock window, to align sources that speak in Unix time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunWindow {
    /// Unix seconds at the run's start.
    pub start_unix: f64,
    pub duration_s: f64,
}

impl RunWindow {
    pub fn relative(&self, unix_s: f64) -> f64 {
        unix_s - self.start_unix
    }

    /// From `started_at` (RFC 3339) and `duration_s` in results.
    pub fn from_results(r: &crate::record::results::Results) -> Option<RunWindow> {
        let start = humantime::parse_rfc3339_weak(&r.started_at).ok()?;
        let unix = start
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        Some(RunWindow {
            start_unix: unix,
            duration_s: r.duration_s,
        })
    }
}

/// The observation of one run: the scrape task started with the load, and the sources read
/// after it.
pub struct RunObserver {
    stop: tokio_util::sync::CancellationToken,
    scraping: Option<tokio::task::JoinHandle<Infra>>,
    prometheus: Option<crate::scenario::PrometheusSource>,
    aws: Option<aws::AwsObserve>,
    settle: std::time::Duration,
    insecure: bool,
}

impl RunObserver {
    /// Starts scraping (if any endpoint is configured) on the current runtime. `base_url` is
    /// the run's target, which `"stack"` refers to.
    pub fn start(
        observe: &crate::scenario::Observe,
        base_url: &str,
        run_start: std::time::Instant,
        insecure: bool,
        live: Option<scrape::LiveSignals>,
    ) -> Result<RunObserver, String> {
        let mut endpoints = Vec::new();
        for target in &observe.scrape {
            let url = match target {
                crate::scenario::ScrapeTarget::Stack => {
                    let (origin, _) = crate::url::split_url(base_url).map_err(|e| e.to_string())?;
                    format!(
                        "{}://{}/metrics",
                        if origin.tls { "https" } else { "http" },
                        origin.host_header()
                    )
                }
                crate::scenario::ScrapeTarget::Url(u) => u.clone(),
            };
            endpoints.push(scrape::Endpoint::new(&url)?);
        }
        let stop = tokio_util::sync::CancellationToken::new();
        let scraping = (!endpoints.is_empty()).then(|| {
            let scraper =
                scrape::Scraper::new(endpoints, observe.scrape_interval, run_start, insecure)
                    .with_live(live);
            tokio::spawn(scraper.run(stop.clone()))
        });
        Ok(RunObserver {
            stop,
            scraping,
            prometheus: observe.prometheus.clone(),
            aws: aws::AwsObserve::from_scenario(observe),
            settle: observe.settle,
            insecure,
        })
    }

    /// Whether sources are read after the run (and `finish` may take a while).
    pub fn reads_after_run(&self) -> bool {
        self.prometheus.is_some() || self.aws.is_some()
    }

    /// Stops scraping, waits `settle`, reads the after-run sources, and returns everything
    /// observed (`None` when nothing was configured). When `interrupt` completes first (a
    /// signal, a time limit), the after-run sources are skipped and a note says so: what
    /// was scraped is kept either way.
    pub async fn finish(
        self,
        window: Option<RunWindow>,
        interrupt: impl std::future::Future<Output = ()>,
    ) -> Option<Infra> {
        if self.scraping.is_none() && !self.reads_after_run() {
            return None;
        }
        self.stop.cancel();
        let mut infra = Infra::default();
        if let Some(h) = self.scraping {
            match h.await {
                Ok(i) => infra.extend(i),
                Err(e) => infra.notes.push(format!("the scrape task failed: {e}")),
            }
        }
        if !(self.prometheus.is_some() || self.aws.is_some()) {
            return Some(infra);
        }
        let Some(w) = window else {
            infra
                .notes
                .push("after-run sources: the run's start time is unknown".into());
            return Some(infra);
        };
        let after_run = async {
            tokio::time::sleep(self.settle).await;
            let mut read = Infra::default();
            if let Some(p) = &self.prometheus {
                read.extend(prometheus::fetch(p, &w, self.insecure).await);
            }
            if let Some(a) = &self.aws {
                read.extend(a.collect(&w).await);
            }
            read
        };
        tokio::select! {
            read = after_run => infra.extend(read),
            () = interrupt => infra.notes.push(
                "after-run sources (Prometheus, AWS) were not read: interrupted".into(),
            ),
        }
        Some(infra)
    }
}

/// A unit guessed from a Prometheus-style metric name.
pub fn unit_from_name(name: &str) -> &'static str {
    let base = name
        .trim_end_matches("_total")
        .trim_end_matches("_count")
        .trim_end_matches("_sum");
    if base.ends_with("_seconds") {
        "seconds"
    } else if base.ends_with("_bytes") {
        "bytes"
    } else if base.ends_with("_ratio") {
        "ratio"
    } else if base.ends_with("_percent") || base.ends_with("_pct") {
        "percent"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_from_prometheus_names() {
        assert_eq!(unit_from_name("process_cpu_seconds_total"), "seconds");
        assert_eq!(unit_from_name("process_resident_memory_bytes"), "bytes");
    }

    #[test]
    fn window_aligns_unix_time() {
        let w = RunWindow {
            start_unix: 1000.0,
            duration_s: 20.0,
        };
        assert_eq!(w.relative(1012.5), 12.5);
    }
}
