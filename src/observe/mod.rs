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
    /// How long each after-run read may take.
    source_timeout: std::time::Duration,
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
            source_timeout: observe.source_timeout,
            insecure,
        })
    }

    /// Whether sources are read after the run (and `finish` may take a while).
    pub fn reads_after_run(&self) -> bool {
        self.prometheus.is_some() || self.aws.is_some()
    }

    /// The longest [`RunObserver::finish`] can take once its sources are reached: `settle`,
    /// then resolving AWS credentials and the reads, each within `[observe] source_timeout`.
    pub fn after_run_bound(&self) -> std::time::Duration {
        self.settle + 2 * self.source_timeout
    }

    /// Stops scraping, waits `settle`, reads the after-run sources, and returns everything
    /// observed (`None` when nothing was configured). The sources are read at the same time,
    /// each read within `[observe] source_timeout`: one that fails or hangs becomes a note
    /// naming it, and the others are kept. When `interrupt` completes first (a signal, a time
    /// limit), what had arrived is kept and the notes name the reads that had not answered.
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
        if self.prometheus.is_none() && self.aws.is_none() {
            return Some(infra);
        }
        let Some(w) = window else {
            infra
                .notes
                .push("after-run sources: the run's start time is unknown".into());
            return Some(infra);
        };
        let limit = self.source_timeout;
        let insecure = self.insecure;
        let settled = std::cell::Cell::new(false);
        let prometheus: std::cell::RefCell<Option<Infra>> = Default::default();
        let aws_progress = peakload_aws::SharedProgress::default();
        let after_run = async {
            tokio::time::sleep(self.settle).await;
            settled.set(true);
            let prometheus_read = async {
                if let Some(p) = &self.prometheus {
                    let read = match tokio::time::timeout(limit, prometheus::fetch(p, &w, insecure))
                        .await
                    {
                        Ok(read) => read,
                        Err(_) => Infra {
                            notes: vec![format!(
                                "prometheus query_range at {}: no answer within {} s; the other sources were read",
                                p.url,
                                limit.as_secs_f64()
                            )],
                            ..Infra::default()
                        },
                    };
                    *prometheus.borrow_mut() = Some(read);
                }
            };
            let aws_read = async {
                if let Some(a) = &self.aws {
                    a.collect_into(&w, limit, &aws_progress).await;
                }
            };
            tokio::join!(prometheus_read, aws_read);
        };
        let interrupted = tokio::select! {
            () = after_run => false,
            () = interrupt => true,
        };
        if interrupted && !settled.get() {
            infra.notes.push(
                "after-run sources (Prometheus, AWS) were not read: interrupted while waiting for them to settle"
                    .into(),
            );
            return Some(infra);
        }
        match (prometheus.into_inner(), &self.prometheus) {
            (Some(read), _) => infra.extend(read),
            (None, Some(p)) => infra.notes.push(format!(
                "prometheus query_range at {}: not read: interrupted before it answered (what the other sources returned is kept)",
                p.url
            )),
            (None, None) => {}
        }
        if let Some(a) = &self.aws {
            infra.extend(a.infra(aws_progress, &w));
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
