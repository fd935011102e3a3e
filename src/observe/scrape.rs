//! Reads Prometheus-format `/metrics` endpoints every interval during a run.
//!
//! [`Scraper::run`] is a task on the run's own runtime (the load workers have their own
//! threads, so it never competes with them for a scheduler): each tick it GETs every endpoint,
//! parses the text with [`super::prom_text`] and feeds a [`ScrapeSeries`] per endpoint. When
//! the run's token is cancelled it takes one last scrape and returns the [`Infra`].

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::prom_text::{parse, ScrapeSeries};
use super::Infra;
use crate::http::{Client, ClientOptions, Method};
use crate::url::{split_url, Origin};

/// One endpoint to scrape.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// As shown in `Series::source` and notes: scheme, host, port and path, no query.
    pub label: String,
    origin: Origin,
    target: String,
}

impl Endpoint {
    pub fn new(url: &str) -> Result<Endpoint, String> {
        let (origin, target) = split_url(url).map_err(|e| format!("{url:?}: {e}"))?;
        let path = target.split('?').next().unwrap_or("/");
        Ok(Endpoint {
            label: format!(
                "{}://{}{}",
                if origin.tls { "https" } else { "http" },
                origin.host_header(),
                path
            ),
            origin,
            target: target.to_string(),
        })
    }

    /// The `instance` label its series carry: `host:port`, and the path when it is not
    /// `/metrics` (two endpoints on one port stay apart).
    pub fn instance(&self) -> String {
        let path = self.target.split('?').next().unwrap_or("/");
        let o = &self.origin;
        let host = if o.host.contains(':') {
            format!("[{}]:{}", o.host, o.port)
        } else {
            format!("{}:{}", o.host, o.port)
        };
        if path == "/metrics" {
            host
        } else {
            format!("{host}{path}")
        }
    }
}

/// Sends one GET and returns the status and body. Used by the scraper and the Prometheus API
/// source; a fresh request each time, connections kept by `client`.
pub async fn http_get(
    client: &mut Client,
    origin: &Origin,
    target: &str,
    accept: &str,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), String> {
    client.request.clear();
    client.request.extend_from_slice(
        format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nAccept: {accept}\r\nUser-Agent: peakload\r\n\r\n",
            origin.host_header()
        )
        .as_bytes(),
    );
    match tokio::time::timeout(timeout, client.send(origin, Method::GET)).await {
        Ok(Ok(status)) => Ok((status, client.body().to_vec())),
        Ok(Err(e)) => {
            client.close_all();
            Err(e.to_string())
        }
        Err(_) => {
            client.close_all();
            Err(format!("no answer within {timeout:?}"))
        }
    }
}

pub struct Scraper {
    endpoints: Vec<Endpoint>,
    interval: Duration,
    run_start: Instant,
    insecure: bool,
    live: Option<LiveSignals>,
}

/// The signals that moved most lately, for the live dashboard: (name, unit, values).
pub type LiveSignals = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Vec<f64>)>>>;

/// How many signals, and how many recent points of each, the dashboard gets.
const LIVE_SIGNALS: usize = 6;
const LIVE_POINTS: usize = 120;

struct EndpointState {
    endpoint: Endpoint,
    client: Client,
    series: ScrapeSeries,
    attempts: u32,
    failures: u32,
    first_failure: Option<String>,
    bad_lines: usize,
}

impl Scraper {
    pub fn new(
        endpoints: Vec<Endpoint>,
        interval: Duration,
        run_start: Instant,
        insecure: bool,
    ) -> Self {
        Scraper {
            endpoints,
            interval: interval.max(Duration::from_millis(100)),
            run_start,
            insecure,
            live: None,
        }
    }

    /// Also publish the most active signals after every scrape.
    pub fn with_live(mut self, live: Option<LiveSignals>) -> Self {
        self.live = live;
        self
    }

    /// Scrapes until `stop` is cancelled, then once more, and returns what it read.
    pub async fn run(self, stop: CancellationToken) -> Infra {
        let mut states: Vec<EndpointState> = self
            .endpoints
            .into_iter()
            .map(|endpoint| EndpointState {
                series: ScrapeSeries::new(format!("scrape:{}", endpoint.label))
                    .with_instance(endpoint.instance()),
                endpoint,
                client: Client::new(ClientOptions::new(self.insecure)),
                attempts: 0,
                failures: 0,
                first_failure: None,
                bad_lines: 0,
            })
            .collect();
        let timeout = self.interval.mul_f64(0.8);
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let last = tokio::select! {
                _ = tick.tick() => false,
                _ = stop.cancelled() => true,
            };
            for s in &mut states {
                scrape_once(s, self.run_start, timeout).await;
            }
            if let Some(live) = &self.live {
                let mut shown: Vec<_> = states
                    .iter()
                    .flat_map(|s| s.series.most_active(LIVE_SIGNALS, LIVE_POINTS))
                    .collect();
                shown.truncate(LIVE_SIGNALS);
                *live.lock().unwrap_or_else(|e| e.into_inner()) = shown;
            }
            if last {
                break;
            }
        }
        let mut infra = Infra::default();
        for s in states {
            if s.failures > 0 {
                infra.notes.push(format!(
                    "scrape of {}: {} of {} attempts failed (first: {})",
                    s.endpoint.label,
                    s.failures,
                    s.attempts,
                    s.first_failure.unwrap_or_default()
                ));
            }
            if s.bad_lines > 0 {
                infra.notes.push(format!(
                    "scrape of {}: {} line(s) were not valid Prometheus text and were skipped",
                    s.endpoint.label, s.bad_lines
                ));
            }
            infra.series.extend(s.series.finish());
        }
        infra
    }
}

async fn scrape_once(s: &mut EndpointState, run_start: Instant, timeout: Duration) {
    s.attempts += 1;
    let sent = run_start.elapsed().as_secs_f64();
    let got = http_get(
        &mut s.client,
        &s.endpoint.origin,
        &s.endpoint.target,
        "text/plain;version=0.0.4",
        timeout,
    )
    .await;
    let failure = match got {
        Ok((200, body)) => {
            // The sample is as of the moment the response came back, near enough: stamp it
            // halfway through the exchange.
            let t = (sent + run_start.elapsed().as_secs_f64()) / 2.0;
            let expo = parse(&String::from_utf8_lossy(&body));
            s.bad_lines = s.bad_lines.max(expo.bad_lines.len());
            s.series.add(t, &expo);
            None
        }
        Ok((status, _)) => Some(format!("HTTP status {status}")),
        Err(e) => Some(e),
    };
    if let Some(f) = failure {
        s.series
            .failed((sent + run_start.elapsed().as_secs_f64()) / 2.0);
        s.failures += 1;
        s.first_failure.get_or_insert(f);
    }
}
