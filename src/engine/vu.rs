//! One virtual user: runs a journey's steps in order, with its own connection, variables and
//! cookies, and records what each request measured into the thread's shard.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::redirect::{self, RedirectError};
use super::render::{render, url_encode_into, RenderCtx, VarValue};
use crate::http::{Client, CookieJar, HttpError, Method};
use crate::plan::ShardSpec;
use crate::record::{ErrorKind, Shard};
use crate::scenario::{
    Body, Check, ExtractSource, FeedMode, Feeder, Scenario, StatusMatch, Step, Template,
};
use crate::url::{push_encoded_target, split_url, Origin};

/// A step with everything that does not change between requests worked out once.
pub struct PreparedStep {
    /// Index among all steps of the scenario (journey by journey).
    pub flat: usize,
    pub name: String,
    method: Vec<u8>,
    method_kind: Method,
    target: Target,
    query: Vec<(Vec<u8>, Template)>,
    /// Literal headers, already serialized as `Name: value\r\n`.
    static_headers: Vec<u8>,
    dynamic_headers: Vec<(String, Template)>,
    body: Body,
    timeout: Duration,
    think: Option<(Duration, Duration)>,
    max_redirects: u32,
    /// Send a `traceparent` and record the trace id.
    trace: bool,
    extract: Vec<crate::scenario::Extraction>,
    checks: Vec<Check>,
    status_check: Option<StatusMatch>,
}

enum Target {
    /// A path under the base URL: origin and `Host` known up front.
    Path {
        origin: Arc<Origin>,
        host: String,
        prefix: String,
        path: Template,
    },
    /// A literal absolute URL.
    Fixed {
        origin: Arc<Origin>,
        host: String,
        target: String,
    },
    /// An absolute URL with expressions: split after rendering.
    Dynamic(Template),
}

pub struct PreparedJourney {
    pub index: usize,
    pub name: String,
    pub steps: Vec<PreparedStep>,
    pub vars: usize,
    pub feeders: Vec<usize>,
    pub keep_alive: bool,
}

/// The scenario compiled for the engine, shared by every thread.
pub struct Prepared {
    pub journeys: Vec<PreparedJourney>,
    pub feeders: Vec<Arc<Feeder>>,
    pub cursors: Vec<AtomicUsize>,
    pub step_count: usize,
    /// The slice of the plan this generator runs: VU, iteration and feeder-row numbers are the
    /// plan's, so they never repeat across shards.
    pub shard: ShardSpec,
}

impl Prepared {
    pub fn new(scenario: &Scenario, base_url: &str) -> Result<Self, String> {
        let (base_origin, base_path) =
            split_url(base_url).map_err(|e| format!("base URL {base_url:?}: {e}"))?;
        let base_origin = Arc::new(base_origin);
        let mut prefix = Vec::new();
        push_encoded_target(base_path.trim_end_matches('/').as_bytes(), &mut prefix);
        let prefix = String::from_utf8(prefix).expect("percent-encoding leaves ASCII");
        let mut flat = 0;
        let mut journeys = Vec::new();
        for (ji, j) in scenario.journeys.iter().enumerate() {
            let mut steps = Vec::new();
            for s in &j.steps {
                steps.push(prepare_step(scenario, s, flat, &base_origin, &prefix)?);
                flat += 1;
            }
            journeys.push(PreparedJourney {
                index: ji,
                name: j.name.clone(),
                steps,
                vars: j.vars.len(),
                feeders: j.feeders.clone(),
                keep_alive: j.keep_alive,
            });
        }
        Ok(Prepared {
            journeys,
            feeders: scenario.feeders.clone(),
            cursors: scenario
                .feeders
                .iter()
                .map(|_| AtomicUsize::new(0))
                .collect(),
            step_count: flat,
            shard: ShardSpec::WHOLE,
        })
    }

    /// The same, for slice `shard` of the plan.
    pub fn with_shard(mut self, shard: ShardSpec) -> Self {
        self.shard = shard;
        self
    }
}

fn prepare_step(
    scenario: &Scenario,
    s: &Step,
    flat: usize,
    base: &Arc<Origin>,
    prefix: &str,
) -> Result<PreparedStep, String> {
    let target = match s.url.as_literal() {
        _ if !s.absolute => Target::Path {
            origin: base.clone(),
            host: base.host_header(),
            prefix: prefix.to_string(),
            path: s.url.clone(),
        },
        Some(lit) => {
            let (origin, target) = split_url(lit).map_err(|e| format!("step {:?}: {e}", s.name))?;
            Target::Fixed {
                host: origin.host_header(),
                origin: Arc::new(origin),
                target: target.to_string(),
            }
        }
        None => Target::Dynamic(s.url.clone()),
    };
    // Step headers replace scenario headers of the same name.
    let mut headers: Vec<(String, Template)> = scenario
        .headers
        .iter()
        .filter(|(n, _)| !s.headers.iter().any(|(m, _)| m.eq_ignore_ascii_case(n)))
        .cloned()
        .collect();
    headers.extend(s.headers.iter().cloned());
    let mut static_headers = Vec::new();
    let mut dynamic_headers = Vec::new();
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !has("user-agent") {
        static_headers.extend_from_slice(
            format!("User-Agent: peakload/{}\r\n", env!("CARGO_PKG_VERSION")).as_bytes(),
        );
    }
    if !has("accept") {
        static_headers.extend_from_slice(b"Accept: */*\r\n");
    }
    let codings = &scenario.protocol.compression;
    if !codings.is_empty() && !has("accept-encoding") {
        let list: Vec<&str> = codings.iter().map(|c| c.as_str()).collect();
        static_headers
            .extend_from_slice(format!("Accept-Encoding: {}\r\n", list.join(", ")).as_bytes());
    }
    let content_type = match &s.body {
        Body::None => None,
        Body::Json(_) => Some("application/json".to_string()),
        Body::Form(_) => Some("application/x-www-form-urlencoded".to_string()),
        Body::Raw { content_type, .. } => content_type.clone(),
    };
    if let Some(ct) = content_type {
        if !has("content-type") {
            static_headers.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
    }
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        match value.as_literal() {
            Some(v) => static_headers.extend_from_slice(format!("{name}: {v}\r\n").as_bytes()),
            None => dynamic_headers.push((name, value)),
        }
    }
    let status_check = s.checks.iter().find_map(|c| match c {
        Check::Status(m) => Some(m.clone()),
        _ => None,
    });
    let query = s
        .query
        .iter()
        .map(|(k, v)| {
            let mut key = Vec::new();
            url_encode_into(k, &mut key);
            (key, v.clone())
        })
        .collect();
    Ok(PreparedStep {
        flat,
        name: s.name.clone(),
        method: s.method.as_bytes().to_vec(),
        method_kind: Method::of(s.method.as_bytes()),
        target,
        query,
        static_headers,
        dynamic_headers,
        body: s.body.clone(),
        timeout: s.timeout.unwrap_or(scenario.timeout),
        think: s.think.map(|t| (t.min, t.max)),
        max_redirects: s.max_redirects.unwrap_or(scenario.protocol.max_redirects),
        trace: scenario.protocol.trace,
        extract: s.extract.clone(),
        checks: s.checks.clone(),
        status_check,
    })
}

/// A request on the wire. If it is dropped before [`InFlight::disarm`] — the run stopped and
/// the drain ran out, or a stop cut it short — it is recorded as `cancelled` with the time it
/// had waited, so a target that hangs still shows in the results.
struct InFlight<'a> {
    shard: &'a Rc<RefCell<Shard>>,
    step: usize,
    from: Instant,
    armed: bool,
}

impl InFlight<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Ok(mut sh) = self.shard.try_borrow_mut() {
                let now = Instant::now();
                sh.record_request(self.step, now, now - self.from, Some(ErrorKind::Cancelled));
            }
        }
    }
}

/// An iteration under way. If it is dropped armed — cut part-way by the end of the run, a
/// stop, or the drain running out — it is counted as interrupted, so the iterations the run
/// started all show up somewhere in the results.
struct Underway<'a> {
    shard: &'a Rc<RefCell<Shard>>,
    armed: bool,
}

impl Drop for Underway<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Ok(mut sh) = self.shard.try_borrow_mut() {
                sh.iteration_interrupted(Instant::now());
            }
        }
    }
}

/// How one iteration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IterationEnd {
    Completed,
    Failed(ErrorKind),
    /// Stopped part-way because the run was stopping.
    Interrupted,
    /// A unique feeder had no rows left; nothing was sent.
    FeederExhausted,
}

/// How a run's end reaches a virtual user.
#[derive(Clone, Copy)]
pub struct Stopping<'a> {
    /// A stop was asked (signal, key): no new step starts and pauses are cut; a request in
    /// flight gets the drain to finish.
    pub stop: &'a CancellationToken,
    /// The plan's end has come: an iteration under way goes on within the drain, but the pause
    /// after its last step, which only paces the next iteration, is cut.
    pub ended: &'a CancellationToken,
}

/// A virtual user's state, reused across its iterations.
pub struct Vu {
    pub id: u64,
    client: Client,
    vars: Vec<VarValue>,
    cookies: CookieJar,
    body: Vec<u8>,
    scratch: Vec<u8>,
}

impl Vu {
    pub fn new(id: u64, client: Client) -> Self {
        Vu {
            id,
            client,
            vars: Vec::new(),
            cookies: CookieJar::default(),
            body: Vec::with_capacity(512),
            scratch: Vec::with_capacity(256),
        }
    }

    /// Runs one iteration of `journey`. `intended` is the open model's scheduled start: when the
    /// iteration starts later than that, the wait counts in the first step's latency.
    ///
    /// The future may be dropped at any await (the drain ran out): the request in flight is
    /// then recorded as `cancelled` and the iteration as interrupted.
    pub async fn iterate(
        &mut self,
        prepared: &Prepared,
        journey: &PreparedJourney,
        iteration: u64,
        intended: Option<Instant>,
        shard: &Rc<RefCell<Shard>>,
        stopping: Stopping<'_>,
    ) -> IterationEnd {
        self.vars.clear();
        self.vars.resize(journey.vars, VarValue::default());
        self.cookies.clear();
        let mut rows: Vec<Option<&[String]>> = vec![None; prepared.feeders.len()];
        for &f in &journey.feeders {
            match take_row(prepared, f) {
                Some(row) => rows[f] = Some(row),
                None => {
                    shard.borrow_mut().feeder_exhausted(Instant::now());
                    return IterationEnd::FeederExhausted;
                }
            }
        }
        if !journey.keep_alive {
            // A connection left by another journey's iteration would make this one a return
            // visit.
            self.client.close_all();
        }
        let mut underway = Underway { shard, armed: true };
        let began = Instant::now();
        let measured_from = match intended {
            Some(t) if t < began => t,
            _ => began,
        };
        let mut end = IterationEnd::Completed;
        let mut last_end = began;
        for (i, step) in journey.steps.iter().enumerate() {
            if stopping.stop.is_cancelled() {
                end = IterationEnd::Interrupted;
                break;
            }
            let ctx = RenderCtx {
                vars: &self.vars,
                rows: &rows,
                vu: self.id,
                iteration,
            };
            let built = build_request(
                &mut self.client.request,
                &mut self.body,
                &mut self.scratch,
                &mut self.cookies,
                step,
                &ctx,
            );
            let built = match built {
                Ok(b) => b,
                Err(why) => {
                    let now = Instant::now();
                    let kind = ErrorKind::InvalidRequest;
                    let mut sh = shard.borrow_mut();
                    sh.record_unsent(step.flat, now, kind);
                    if sh.wants_sample(kind) {
                        sh.sample(kind, &step.name, why.to_string());
                    }
                    last_end = now;
                    end = IterationEnd::Failed(kind);
                    break;
                }
            };
            let start = Instant::now();
            let from = if i == 0 {
                measured_from.min(start)
            } else {
                start
            };
            let (in0, out0, decoded0, retries0) = (
                self.client.bytes_in,
                self.client.bytes_out,
                self.client.bytes_in_decoded,
                self.client.retries,
            );
            let in_flight = InFlight {
                shard,
                step: step.flat,
                from,
                armed: true,
            };
            let trace = built.trace;
            let phases0 = self.client.phases;
            let sent = tokio::time::timeout(step.timeout, self.exchange(step, built)).await;
            let finished = Instant::now();
            last_end = finished;
            in_flight.disarm();
            let outcome = match sent {
                Err(_) => {
                    self.client.close_all();
                    Err((
                        ErrorKind::Timeout,
                        format!("no response within {:?}", step.timeout),
                    ))
                }
                Ok(Err(e)) => Err((e.kind(), e.to_string())),
                Ok(Ok(answered)) => Ok(answered),
            };
            let latency = finished - from;
            let verdict = match outcome {
                Err((kind, message)) => Verdict {
                    error: Some(kind),
                    message,
                    transport: true,
                    ..Verdict::default()
                },
                Ok((status, at)) => self.judge(step, status, finished - start, &at.origin, at.path),
            };
            {
                let mut sh = shard.borrow_mut();
                sh.add_bytes(
                    self.client.bytes_in - in0,
                    self.client.bytes_out - out0,
                    self.client.bytes_in_decoded - decoded0,
                );
                if self.client.retries > retries0 {
                    sh.add_retries(self.client.retries - retries0);
                }
                sh.record_request(step.flat, finished, latency, verdict.error);
                sh.record_phases(step.flat, &self.client.phases.since(&phases0));
                if trace != 0 {
                    sh.record_trace(step.flat, trace, finished, latency, verdict.error);
                }
                sh.record_checks(step.flat, verdict.checks, verdict.checks_failed);
                if let Some(kind) = verdict.error {
                    if sh.wants_sample(kind) {
                        sh.sample(kind, &step.name, verdict.message);
                    }
                }
            }
            if let Some(kind) = verdict.error {
                end = IterationEnd::Failed(kind);
                // Later steps depend on a response that never came or on a value it lacked.
                if verdict.transport || verdict.extract_failed {
                    break;
                }
            }
            // The pause follows every step, the last one included: that is how a closed-model VU
            // is paced between iterations.
            if let Some((lo, hi)) = step.think {
                let pause = if hi > lo {
                    lo + Duration::from_nanos(fastrand::u64(0..=(hi - lo).as_nanos() as u64))
                } else {
                    lo
                };
                let last = i + 1 == journey.steps.len();
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    // Every step was done; only the pause is cut short.
                    _ = stopping.stop.cancelled(), if last => {}
                    _ = stopping.ended.cancelled(), if last => {}
                    _ = stopping.stop.cancelled(), if !last => { end = IterationEnd::Interrupted; break; }
                }
            }
        }
        if !journey.keep_alive {
            self.client.close_all();
        }
        if end != IterationEnd::Interrupted {
            underway.armed = false;
            let error = match end {
                IterationEnd::Failed(k) => Some(k),
                _ => None,
            };
            shard.borrow_mut().record_iteration(
                journey.index,
                last_end,
                last_end - measured_from,
                error,
            );
        }
        end
    }

    /// Sends the built request and follows redirects up to the step's `max_redirects`, each
    /// hop inside the step's time; returns the final status and where its request went.
    async fn exchange(
        &mut self,
        step: &PreparedStep,
        built: Built,
    ) -> Result<(u16, Built), SendError> {
        let mut at = built;
        let mut method = step.method_kind;
        let mut hops = 0;
        loop {
            let status = self.client.send(&at.origin, method).await?;
            if step.max_redirects == 0 || !redirect::is_redirect(status) {
                return Ok((status, at));
            }
            let Some(location) = self.client.header("location").map(str::to_string) else {
                return Ok((status, at));
            };
            if hops == step.max_redirects {
                return Err(SendError::Redirect(RedirectError::TooMany {
                    max: step.max_redirects,
                    status,
                }));
            }
            hops += 1;
            self.store_cookies(&at.origin, at.path);
            let answered = redirect::Answered {
                request: &self.client.request,
                origin: &at.origin,
                path: at.path,
                jar_cookie: at.jar_cookie,
            };
            let next = redirect::next_request(
                answered,
                status,
                &location,
                &mut self.cookies,
                &mut self.scratch,
            )?;
            std::mem::swap(&mut self.client.request, &mut self.scratch);
            method = next.method;
            at = Built {
                origin: next.origin,
                path: next.path,
                jar_cookie: next.jar_cookie,
                trace: at.trace,
            };
        }
    }

    /// Keeps the cookies the response just read sets, scoped by the request it answers.
    fn store_cookies(&mut self, origin: &Origin, path: (usize, usize)) {
        if self.client.has_header("set-cookie") {
            let now = std::time::SystemTime::now();
            let path = &self.client.request[path.0..path.1];
            for (n, value) in self.client.headers() {
                if n.eq_ignore_ascii_case("set-cookie") {
                    self.cookies.store(origin, path, value, now);
                }
            }
        }
    }

    /// Applies the step's checks and extractions to the response just read.
    fn judge(
        &mut self,
        step: &PreparedStep,
        status: u16,
        service_time: Duration,
        origin: &Origin,
        path: (usize, usize),
    ) -> Verdict {
        let mut v = Verdict::default();
        self.store_cookies(origin, path);
        let status_ok = match &step.status_check {
            Some(m) => m.matches(status),
            None => status < 400,
        };
        if !status_ok {
            v.error = Some(if status >= 500 {
                ErrorKind::Http5xx
            } else if status >= 400 {
                ErrorKind::Http4xx
            } else {
                ErrorKind::CheckFailed
            });
            v.message = format!("HTTP {status}");
        }
        let body = self.client.body();
        for check in &step.checks {
            v.checks += 1;
            // The message is made only for a failure: a passing check costs no formatting.
            let failed: Option<String> = match check {
                Check::Status(m) => (!m.matches(status)).then(|| format!("status {status}")),
                Check::BodyContains(s) => memchr::memmem::find(body, s.as_bytes())
                    .is_none()
                    .then(|| format!("body does not contain {s:?}")),
                Check::JsonEquals { pointer, expected } => {
                    let got = super::json::lookup(body, pointer);
                    // The value found is not quoted: responses carry tokens and personal data.
                    (!got.as_ref().is_some_and(|g| json_equal(g, expected))).then(|| {
                        format!(
                            "{pointer} is {}, expected {expected}",
                            describe_json(got.as_ref())
                        )
                    })
                }
                Check::MaxDuration(d) => {
                    (service_time > *d).then(|| format!("took {service_time:?}, limit {d:?}"))
                }
            };
            if let Some(what) = failed {
                v.checks_failed += 1;
                if v.error.is_none() {
                    v.error = Some(ErrorKind::CheckFailed);
                    v.message = format!("check failed: {what}");
                }
            }
        }
        for e in &step.extract {
            let value = match &e.source {
                ExtractSource::Json(p) => super::json::lookup(body, p).and_then(|x| match x {
                    serde_json::Value::String(s) => Some((s, false)),
                    serde_json::Value::Null => None,
                    other => Some((other.to_string(), true)),
                }),
                ExtractSource::Header(h) => self.client.header(h).map(|s| (s.to_string(), false)),
                ExtractSource::Regex(re) => {
                    let text = String::from_utf8_lossy(body);
                    re.captures(&text).and_then(|c| {
                        c.get(if c.len() > 1 { 1 } else { 0 })
                            .map(|m| (m.as_str().to_string(), false))
                    })
                }
            };
            match value {
                Some((text, json_literal)) => {
                    self.vars[e.var] = VarValue {
                        text,
                        json_literal,
                        set: true,
                    };
                }
                // Declared optional: no value is an answer, not an error; nothing stale is kept.
                None if e.optional => self.vars[e.var] = VarValue::default(),
                None => {
                    v.extract_failed = true;
                    if v.error.is_none() {
                        v.error = Some(ErrorKind::ExtractFailed);
                        v.message = format!("extraction failed ({})", describe_source(&e.source));
                    }
                }
            }
        }
        v
    }
}

/// Why a step got no final response to judge.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Redirect(#[from] RedirectError),
}

impl SendError {
    fn kind(&self) -> ErrorKind {
        match self {
            SendError::Http(e) => e.kind(),
            SendError::Redirect(RedirectError::TooMany { .. }) => ErrorKind::TooManyRedirects,
            SendError::Redirect(RedirectError::BadLocation { .. }) => ErrorKind::Protocol,
        }
    }
}

/// A request that is not sent: it could not be written safely.
#[derive(Debug, thiserror::Error)]
enum Unsendable {
    /// The value is not quoted: it may be a token or personal data.
    #[error(
        "header {name}: its value has a CR, LF or NUL (from a variable or a feeder), which would \
         end the header and start another; the request was not sent"
    )]
    HeaderValue { name: String },
    #[error(
        "the URL built from variables is not a valid http(s) URL: {0}; the request was not sent"
    )]
    Url(crate::url::UrlError),
}

/// Where a built request goes, and its path (offsets into the request, without the query)
/// for cookie scope.
struct Built {
    origin: Arc<Origin>,
    path: (usize, usize),
    /// Where the jar's `Cookie` header is, for a redirect to choose cookies again.
    jar_cookie: (usize, usize),
    /// The W3C trace id sent in its `traceparent`, or 0.
    trace: u128,
}

fn build_request(
    req: &mut Vec<u8>,
    body: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    cookies: &mut CookieJar,
    step: &PreparedStep,
    ctx: &RenderCtx<'_>,
) -> Result<Built, Unsendable> {
    req.clear();
    req.extend_from_slice(&step.method);
    req.push(b' ');
    let target_start = req.len();
    let (origin, host): (Arc<Origin>, std::borrow::Cow<'_, str>) = match &step.target {
        Target::Path {
            origin,
            host,
            prefix,
            path,
        } => {
            req.extend_from_slice(prefix.as_bytes());
            let before = req.len();
            render(path, ctx, req);
            if req.len() == before || req[before] != b'/' {
                req.insert(before, b'/');
            }
            (origin.clone(), host.as_str().into())
        }
        Target::Fixed {
            origin,
            host,
            target,
        } => {
            req.extend_from_slice(target.as_bytes());
            (origin.clone(), host.as_str().into())
        }
        Target::Dynamic(t) => {
            scratch.clear();
            render(t, ctx, scratch);
            let url = String::from_utf8_lossy(scratch);
            let (origin, target) = split_url(&url).map_err(Unsendable::Url)?;
            // A host from a variable may have carried characters into the path.
            push_encoded_target(target.as_bytes(), req);
            let host = origin.host_header();
            (Arc::new(origin), host.into())
        }
    };
    let path_end =
        memchr::memchr(b'?', &req[target_start..]).map_or(req.len(), |i| target_start + i);
    if !step.query.is_empty() {
        let mut sep = if req[target_start..].contains(&b'?') {
            b'&'
        } else {
            b'?'
        };
        for (k, v) in &step.query {
            req.push(sep);
            sep = b'&';
            req.extend_from_slice(k);
            req.push(b'=');
            render(v, ctx, req);
        }
    }
    req.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    req.extend_from_slice(host.as_bytes());
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(&step.static_headers);
    for (name, value) in &step.dynamic_headers {
        req.extend_from_slice(name.as_bytes());
        req.extend_from_slice(b": ");
        let at = req.len();
        render(value, ctx, req);
        if memchr::memchr3(b'\r', b'\n', 0, &req[at..]).is_some() {
            return Err(Unsendable::HeaderValue { name: name.clone() });
        }
        req.extend_from_slice(b"\r\n");
    }
    let jar_start = req.len();
    if !cookies.is_empty() {
        scratch.clear();
        scratch.extend_from_slice(&req[target_start..path_end]);
        cookies.write_header(&origin, scratch, std::time::SystemTime::now(), req);
    }
    let jar_cookie = (jar_start, req.len());
    let trace = if step.trace {
        // W3C Trace Context: a random trace id and parent span id, neither all zeros; sampled,
        // so the target's tracer keeps the trace.
        let trace = fastrand::u128(1..);
        let span = fastrand::u64(1..);
        let _ = std::io::Write::write_fmt(
            req,
            format_args!("traceparent: 00-{trace:032x}-{span:016x}-01\r\n"),
        );
        trace
    } else {
        0
    };
    body.clear();
    match &step.body {
        Body::None => {}
        Body::Json(t) => render(t, ctx, body),
        Body::Raw { text, .. } => render(text, ctx, body),
        Body::Form(fields) => {
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    body.push(b'&');
                }
                url_encode_into(k, body);
                body.push(b'=');
                render(v, ctx, body);
            }
        }
    }
    if !matches!(step.body, Body::None) || matches!(&step.method[..], b"POST" | b"PUT" | b"PATCH") {
        req.extend_from_slice(b"Content-Length: ");
        req.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
    Ok(Built {
        origin,
        path: (target_start, path_end),
        jar_cookie,
        trace,
    })
}

fn describe_source(s: &ExtractSource) -> String {
    match s {
        ExtractSource::Json(p) => format!("JSON {p}"),
        ExtractSource::Header(h) => format!("header {h}"),
        ExtractSource::Regex(r) => format!("regex {}", r.as_str()),
    }
}

/// What kind of value was found, without the value itself.
fn describe_json(v: Option<&serde_json::Value>) -> String {
    match v {
        None => "missing".into(),
        Some(serde_json::Value::Null) => "null".into(),
        Some(serde_json::Value::Bool(_)) => "another boolean".into(),
        Some(serde_json::Value::Number(_)) => "another number".into(),
        Some(serde_json::Value::String(s)) => {
            format!("another string ({} chars)", s.chars().count())
        }
        Some(serde_json::Value::Array(a)) => format!("an array of {}", a.len()),
        Some(serde_json::Value::Object(_)) => "an object".into(),
    }
}

fn json_equal(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[derive(Default)]
struct Verdict {
    error: Option<ErrorKind>,
    message: String,
    checks: u64,
    checks_failed: u64,
    extract_failed: bool,
    /// No HTTP response at all (connect, timeout, reset, TLS).
    transport: bool,
}

/// Takes this iteration's row from a feeder; `None` when a unique feeder has run out.
fn take_row(prepared: &Prepared, f: usize) -> Option<&[String]> {
    let feeder = &prepared.feeders[f];
    let n = feeder.rows.len();
    if n == 0 {
        return None;
    }
    // A shard takes the plan's rows `index, index + count, ...`: `unique` rows are partitioned
    // across shards, `sequential` ones walk the file in the plan's order between them.
    let row = |taken: usize| prepared.shard.global(taken as u64);
    let i = match feeder.mode {
        FeedMode::Sequential => {
            (row(prepared.cursors[f].fetch_add(1, Ordering::Relaxed)) % n as u64) as usize
        }
        FeedMode::Random => fastrand::usize(..n),
        FeedMode::Unique => {
            let i = row(prepared.cursors[f].fetch_add(1, Ordering::Relaxed));
            if i >= n as u64 {
                return None;
            }
            i as usize
        }
    };
    Some(&feeder.rows[i])
}

#[cfg(test)]
mod shard_tests {
    use super::*;

    fn prepared(mode: FeedMode, rows: usize, shard: ShardSpec) -> Prepared {
        Prepared {
            journeys: Vec::new(),
            feeders: vec![Arc::new(Feeder {
                name: "users".into(),
                path: "users.csv".into(),
                mode,
                columns: vec!["id".into()],
                rows: (0..rows).map(|i| vec![i.to_string()]).collect(),
            })],
            cursors: vec![AtomicUsize::new(0)],
            step_count: 0,
            shard: ShardSpec::WHOLE,
        }
        .with_shard(shard)
    }

    fn drain(p: &Prepared, limit: usize) -> Vec<String> {
        (0..limit)
            .map_while(|_| take_row(p, 0).map(|r| r[0].clone()))
            .collect()
    }

    #[test]
    fn unique_rows_are_partitioned_across_shards() {
        for n in [1u32, 2, 3, 7, 40] {
            let mut all: Vec<usize> = (0..n)
                .flat_map(|i| {
                    drain(
                        &prepared(FeedMode::Unique, 25, ShardSpec::new(i, n).unwrap()),
                        100,
                    )
                })
                .map(|r| r.parse().unwrap())
                .collect();
            all.sort();
            // Every row once, none twice, across the shards.
            assert_eq!(all, (0..25).collect::<Vec<_>>(), "N={n}");
        }
    }

    #[test]
    fn sequential_rows_are_offset_by_shard() {
        let rows = |i| {
            drain(
                &prepared(FeedMode::Sequential, 5, ShardSpec::new(i, 2).unwrap()),
                4,
            )
        };
        assert_eq!(rows(0), ["0", "2", "4", "1"]);
        assert_eq!(rows(1), ["1", "3", "0", "2"]);
    }
}
