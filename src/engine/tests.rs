//! The engine against the scripted HTTP server: what a virtual user puts on the wire (cookies
//! within their scope, encoded paths, no injected header) and how both load models end (a
//! request in flight at the plan's end finishes within the drain, not cut).

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::vu::{Prepared, Stopping, Vu};
use super::{spawn_workers, EngineConfig};
use crate::http::tests::server::{
    answer, ok, Received, ScriptedServer, Split, Step, Transport, BOTH,
};
use crate::http::tests::{cuts, text};
use crate::http::{Client, ClientOptions};
use crate::record::traces::{merge_steps, StepTraces};
use crate::record::{Counters, Counts, ErrorKind, ErrorSample, IntervalReport, Shard};
use crate::scenario::{parse_scenario, Scenario};

fn scenario(src: &str) -> Scenario {
    parse_scenario(src, Path::new("t.toml"), &|_| None).unwrap_or_else(|e| panic!("{e}\n{src}"))
}

/// What a run or an iteration recorded, summed over threads and seconds.
#[derive(Default)]
struct Totals {
    steps: Vec<Counts>,
    journeys: Vec<Counts>,
    counters: Counters,
    samples: Vec<ErrorSample>,
    traces: Vec<StepTraces>,
}

impl Totals {
    fn from_reports(reports: impl IntoIterator<Item = IntervalReport>) -> Totals {
        let mut t = Totals::default();
        for r in reports {
            if t.steps.len() < r.steps.len() {
                t.steps.resize_with(r.steps.len(), Counts::default);
            }
            if t.journeys.len() < r.journeys.len() {
                t.journeys.resize_with(r.journeys.len(), Counts::default);
            }
            for (a, b) in t.steps.iter_mut().zip(&r.steps) {
                a.add(b);
            }
            for (a, b) in t.journeys.iter_mut().zip(&r.journeys) {
                a.add(b);
            }
            t.counters.add(&r.counters);
            t.samples.extend(r.samples);
            merge_steps(&mut t.traces, &r.traces);
        }
        t
    }

    fn requests(&self) -> u64 {
        self.steps.iter().map(|s| s.requests).sum()
    }

    fn errors(&self, kind: ErrorKind) -> u64 {
        let i = ErrorKind::ALL.iter().position(|k| *k == kind).unwrap();
        self.steps.iter().map(|s| s.by_kind[i]).sum()
    }

    fn checks_failed(&self) -> u64 {
        self.steps.iter().map(|s| s.checks_failed).sum()
    }

    fn iterations(&self) -> u64 {
        self.journeys.iter().map(|j| j.requests).sum()
    }
}

/// One virtual user runs one iteration of the scenario's first journey.
async fn one_iteration(src: &str, base_url: &str) -> Totals {
    iterations(src, base_url, 1).await
}

/// One virtual user runs `n` iterations of the scenario's first journey.
async fn iterations(src: &str, base_url: &str, n: u64) -> Totals {
    let scenario = scenario(&format!("base_url = \"{base_url}\"\n{src}"));
    let prepared = Prepared::new(&scenario, base_url).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let shard = Rc::new(RefCell::new(Shard::new(
        0,
        Instant::now(),
        prepared.step_count,
        prepared.journeys.len(),
        tx,
    )));
    let options = ClientOptions::new(true).with_http_version(scenario.protocol.http_version);
    let mut vu = Vu::new(0, Client::new(options));
    let (stop, ended) = (CancellationToken::new(), CancellationToken::new());
    let stopping = Stopping {
        stop: &stop,
        ended: &ended,
    };
    for i in 0..n {
        let run = vu.iterate(&prepared, &prepared.journeys[0], i, None, &shard, stopping);
        tokio::time::timeout(Duration::from_secs(20), run)
            .await
            .expect("the iteration ends");
    }
    drop(vu);
    Rc::try_unwrap(shard)
        .ok()
        .unwrap()
        .into_inner()
        .finish(Instant::now());
    Totals::from_reports(rx)
}

fn targets(got: &[Received]) -> Vec<&str> {
    got.iter().map(|r| r.target()).collect()
}

/// RFC 6265 scope: Path, expiry, host-only cookies, and 127.0.0.1 is not localhost.
#[tokio::test]
async fn cookies_are_sent_only_within_their_scope() {
    for t in BOTH {
        let set = b"HTTP/1.1 200 OK\r\n\
            Set-Cookie: sid=1; Path=/private; HttpOnly\r\n\
            Set-Cookie: all=2\r\n\
            Set-Cookie: old=3; Expires=Thu, 01 Jan 1970 00:00:00 GMT\r\n\
            Set-Cookie: brief=4; Max-Age=0\r\n\
            Set-Cookie: elsewhere=5; Domain=localhost\r\n\
            Content-Length: 0\r\n\r\n";
        let server = ScriptedServer::start(
            t,
            vec![
                [answer(set), answer(&ok("")), answer(&ok(""))].concat(),
                answer(&ok("")),
            ],
        )
        .await;
        let localhost = server.url().replace("127.0.0.1", "localhost");
        let src = format!(
            r#"name = "cookies"
[[journey]]
name = "j"
  [[journey.step]]
  path = "/login"
  [[journey.step]]
  path = "/public"
  [[journey.step]]
  path = "/private/orders"
  [[journey.step]]
  url = "{localhost}/"
"#
        );
        let totals = one_iteration(&src, &server.url()).await;
        assert_eq!(totals.requests(), 4, "{t:?}");
        let got = server.settle(4).await;
        let cookies: Vec<Vec<&str>> = got.iter().map(|r| r.headers("cookie")).collect();
        assert_eq!(
            cookies,
            vec![vec![], vec!["all=2"], vec!["sid=1; all=2"], vec![]],
            "{t:?}"
        );
    }
}

/// A value extracted from a response with CR LF in it, used in a header: never sent.
#[tokio::test]
async fn a_header_value_with_a_line_break_is_never_sent() {
    for t in BOTH {
        let body = r#"{"token":"abc\r\nX-Injected: yes"}"#;
        let server =
            ScriptedServer::start(t, vec![[answer(&ok(body)), answer(&ok(""))].concat()]).await;
        let src = r#"name = "inject"
[[journey]]
name = "j"
  [[journey.step]]
  name = "login"
  method = "POST"
  path = "/login"
  extract = { token = { json = "$.token" } }
  [[journey.step]]
  name = "me"
  path = "/me"
  headers = { Authorization = "Bearer {{token}}" }
"#;
        let totals = one_iteration(src, &server.url()).await;
        let got = server.settle(2).await;
        assert_eq!(
            targets(&got),
            vec!["/login"],
            "{t:?}: the second request was sent"
        );
        assert!(got.iter().all(|r| r.headers("x-injected").is_empty()));
        assert_eq!(totals.steps[1].requests, 1);
        assert_eq!(totals.errors(ErrorKind::InvalidRequest), 1);
        // Counted, but with no latency: it was never on the wire.
        assert_eq!(totals.steps[1].latency.len(), 0);
        let sample = &totals.samples[0];
        assert_eq!(
            (sample.kind, sample.step.as_str()),
            (ErrorKind::InvalidRequest, "me")
        );
        assert!(
            sample.message.contains("header Authorization"),
            "{}",
            sample.message
        );
        assert!(!sample.message.contains("abc"), "the value is not quoted");
        assert_eq!(totals.journeys[0].errors, 1, "the iteration failed");
    }
}

/// Literal paths are encoded as a browser encodes a typed URL; a variable inside a path is
/// one segment's text; a link taken whole loses its fragment.
#[tokio::test]
async fn paths_are_percent_encoded_and_fragments_never_sent() {
    for t in BOTH {
        let server = ScriptedServer::start_with(t, |url| {
            let body = format!(
                r##"{{"id":"x/y#frag z?","next":"/n?c=a b&d=é#frag","link":"{url}/l/a b?x=%2F y#f"}}"##
            );
            let mut script = answer(&ok(&body));
            for _ in 0..5 {
                script.extend(answer(&ok("")));
            }
            vec![script]
        })
        .await;
        let src = format!(
            r#"name = "paths"
[[journey]]
name = "j"
  [[journey.step]]
  path = "/a b/é?k=v w"
  extract = {{ id = {{ json = "$.id" }}, next = {{ json = "$.next" }}, link = {{ json = "$.link" }} }}
  [[journey.step]]
  path = "/items/{{{{id}}}}/x"
  [[journey.step]]
  path = "{{{{next}}}}"
  [[journey.step]]
  path = "/search?q={{{{id}}}}&n=1"
  query = {{ more = "{{{{id}}}}" }}
  [[journey.step]]
  url = "{}/u/{{{{id}}}}"
  [[journey.step]]
  url = "{{{{link}}}}"
"#,
            server.url()
        );
        let totals = one_iteration(&src, &server.url()).await;
        assert_eq!(
            totals.steps.iter().map(|s| s.errors).sum::<u64>(),
            0,
            "{t:?}"
        );
        let got = server.settle(6).await;
        assert_eq!(
            targets(&got),
            vec![
                "/a%20b/%C3%A9?k=v%20w",
                "/items/x%2Fy%23frag%20z%3F/x",
                "/n?c=a%20b&d=%C3%A9",
                "/search?q=x%2Fy%23frag%20z%3F&n=1&more=x%2Fy%23frag%20z%3F",
                "/u/x%2Fy%23frag%20z%3F",
                "/l/a%20b?x=%2F%20y",
            ],
            "{t:?}"
        );
    }
}

fn two_step_journey(keep_alive: &str) -> String {
    format!(
        r#"name = "visits"
[[journey]]
name = "j"
{keep_alive}
  [[journey.step]]
  name = "home"
  path = "/home"
  [[journey.step]]
  name = "cart"
  path = "/cart"
"#
    )
}

/// `keep_alive = false`: each iteration is a new visitor with its own connection (and TLS
/// handshake), shared by its steps and closed at its end.
#[tokio::test]
async fn keep_alive_false_opens_a_connection_per_iteration() {
    for t in BOTH {
        let two = [answer(&ok("a")), answer(&ok("b"))].concat();
        let server = ScriptedServer::start(t, vec![two]).await;
        let got = iterations(&two_step_journey("keep_alive = false"), &server.url(), 3).await;
        assert_eq!((got.requests(), got.iterations()), (6, 3), "{t:?}");
        assert_eq!(got.errors(ErrorKind::ConnectionReset), 0);
        let log = server.settle(6).await;
        let conns: Vec<usize> = log.iter().map(|r| r.conn).collect();
        assert_eq!(conns, vec![0, 0, 1, 1, 2, 2], "{t:?}");
        assert_eq!(server.connections(), 3);

        // The default keeps one connection across iterations.
        let six = vec![answer(&ok("a")); 6].concat();
        let server = ScriptedServer::start(t, vec![six]).await;
        let got = iterations(&two_step_journey(""), &server.url(), 3).await;
        assert_eq!(got.requests(), 6);
        server.settle(6).await;
        assert_eq!(server.connections(), 1, "{t:?}");
    }
}

fn redirect(status: u16, location: &str, extra: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status} Moved\r\nLocation: {location}\r\n{extra}Content-Length: 0\r\n\r\n")
        .into_bytes()
}

/// A login that answers 303 is followed to the page it names, as a GET without the body; the
/// step is one request whose final response is the one checked, and a cookie the 303 set goes
/// with the next hop. The response is cut inside its Location.
#[tokio::test]
async fn a_303_after_a_post_is_followed_with_a_get() {
    for t in BOTH {
        let moved = redirect(
            303,
            "/account/../orders/7?from=login",
            "Set-Cookie: sid=9\r\n",
        );
        let server = ScriptedServer::start(
            t,
            vec![vec![
                Step::Read,
                Step::Write(
                    moved.clone(),
                    cuts(&moved, &["/orders", "login\r\n", "sid"]),
                ),
                Step::Read,
                Step::Write(ok("order 7"), Split::Bytes),
            ]],
        )
        .await;
        let src = r#"name = "r"
[[journey]]
name = "j"
  [[journey.step]]
  name = "login"
  method = "POST"
  path = "/login"
  json = { user = "u" }
  check = { status = 200, body_contains = "order 7" }
"#;
        let got = one_iteration(src, &server.url()).await;
        assert_eq!(got.requests(), 1, "{t:?}");
        assert!(got.samples.is_empty(), "{t:?} {:?}", got.samples);
        assert_eq!(got.checks_failed(), 0);
        let log = server.settle(2).await;
        assert_eq!(targets(&log), ["/login", "/orders/7?from=login"], "{t:?}");
        assert_eq!(log[1].method(), "GET");
        assert!(log[1].body.is_empty());
        assert!(log[1].headers("content-length").is_empty());
        assert!(log[1].headers("content-type").is_empty());
        assert_eq!(log[1].headers("cookie"), ["sid=9"]);
    }
}

/// RFC 9110 §15.4: 301 and 302 turn a POST into a GET, 307 and 308 keep the method and body.
#[tokio::test]
async fn post_redirects_follow_the_method_rules() {
    for (status, method, body) in [
        (301, "GET", ""),
        (302, "GET", ""),
        (307, "POST", "q=1"),
        (308, "POST", "q=1"),
    ] {
        let server = ScriptedServer::start(
            Transport::Tcp,
            vec![[answer(&redirect(status, "/next", "")), answer(&ok("done"))].concat()],
        )
        .await;
        let src = r#"name = "r"
[[journey]]
name = "j"
  [[journey.step]]
  method = "POST"
  path = "/form"
  form = { q = "1" }
"#;
        let got = one_iteration(src, &server.url()).await;
        assert_eq!((got.requests(), got.samples.len()), (1, 0), "{status}");
        let log = server.settle(2).await;
        assert_eq!(targets(&log), ["/form", "/next"], "{status}");
        assert_eq!(
            (log[1].method(), text(&log[1].body)),
            (method, body),
            "{status}"
        );
    }
}

/// To another origin, Authorization and the step's own Cookie header stay behind and the jar's
/// cookies go only where their scope says; on the same origin they are kept.
#[tokio::test]
async fn a_cross_origin_redirect_drops_credentials() {
    for t in BOTH {
        let other = ScriptedServer::start(t, vec![answer(&ok("there"))]).await;
        let there = format!("{}/landing", other.url().replace("127.0.0.1", "localhost"));
        let first = redirect(302, "/same", "Set-Cookie: sid=1\r\n");
        let server = ScriptedServer::start(
            t,
            vec![[answer(&first), answer(&redirect(302, &there, ""))].concat()],
        )
        .await;
        let src = r#"name = "r"
[[journey]]
name = "j"
  [[journey.step]]
  path = "/start"
  headers = { Authorization = "Bearer secret", Cookie = "pref=1", X-Kept = "yes" }
"#;
        let got = one_iteration(src, &server.url()).await;
        assert_eq!(
            (got.requests(), got.samples.len()),
            (1, 0),
            "{t:?} {:?}",
            got.samples
        );
        let log = server.settle(2).await;
        assert_eq!(targets(&log), ["/start", "/same"]);
        assert_eq!(log[1].headers("authorization"), ["Bearer secret"], "{t:?}");
        assert_eq!(log[1].headers("cookie"), ["pref=1", "sid=1"]);
        let far = other.settle(1).await;
        assert_eq!(targets(&far), ["/landing"], "{t:?}");
        assert!(far[0].headers("authorization").is_empty(), "{t:?}");
        assert!(far[0].headers("cookie").is_empty(), "{t:?}");
        assert_eq!(far[0].headers("x-kept"), ["yes"]);
        assert!(far[0].headers("host")[0].starts_with("localhost:"));
    }
}

/// A redirect loop ends at max_redirects as its own error; max_redirects = 0 takes the 3xx as
/// the answer, as oha does.
#[tokio::test]
async fn redirects_stop_at_max_redirects() {
    let server = ScriptedServer::start(
        Transport::Tcp,
        vec![vec![answer(&redirect(302, "/loop", "")); 4].concat()],
    )
    .await;
    let src = r#"name = "r"
max_redirects = 5
[[journey]]
name = "j"
  [[journey.step]]
  path = "/loop"
  max_redirects = 2
"#;
    let got = one_iteration(src, &server.url()).await;
    assert_eq!(got.requests(), 1);
    assert_eq!(got.errors(ErrorKind::TooManyRedirects), 1);
    assert!(
        got.samples[0].message.contains("more than 2 redirects"),
        "{:?}",
        got.samples
    );
    assert_eq!(server.settle(3).await.len(), 3);

    let server =
        ScriptedServer::start(Transport::Tcp, vec![answer(&redirect(302, "/else", ""))]).await;
    let src = r#"name = "r"
max_redirects = 0
[[journey]]
name = "j"
  [[journey.step]]
  path = "/x"
  check = { status = 302 }
"#;
    let got = one_iteration(src, &server.url()).await;
    assert_eq!((got.requests(), got.samples.len()), (1, 0));
    assert_eq!(server.settle(1).await.len(), 1);
}

/// `compression` asks for the codings in Accept-Encoding; the answer's body is decoded before
/// the checks and extraction read it, and both sizes are counted.
#[tokio::test]
async fn compressed_answers_are_checked_and_extracted_decoded() {
    use crate::http::tests::encode_for_test as encode;
    use crate::http::Coding;
    for t in BOTH {
        let packed = encode(Coding::Br, b"{\"token\": \"abc\", \"status\": \"ok\"}");
        let mut first = format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: {}\r\n\r\n",
            packed.len()
        )
        .into_bytes();
        first.extend_from_slice(&packed);
        let server =
            ScriptedServer::start(t, vec![[answer(&first), answer(&ok("fine"))].concat()]).await;
        let src = r#"name = "z"
compression = ["gzip", "br", "zstd"]
[[journey]]
name = "j"
  [[journey.step]]
  path = "/login"
  extract = { token = { json = "$.token" } }
  check = { json = { "$.status" = "ok" } }
  [[journey.step]]
  path = "/use/{{token}}"
"#;
        let got = iterations(src, &server.url(), 1).await;
        assert_eq!(
            (got.requests(), got.samples.len()),
            (2, 0),
            "{t:?} {:?}",
            got.samples
        );
        assert_eq!(got.checks_failed(), 0);
        let log = server.settle(2).await;
        assert_eq!(targets(&log), ["/login", "/use/abc"]);
        assert_eq!(log[0].headers("accept-encoding"), ["gzip, br, zstd"]);
        let c = &got.counters;
        assert_eq!(
            c.bytes_in_decoded as i64 - c.bytes_in as i64,
            32 - packed.len() as i64,
            "{t:?}"
        );
    }
}

/// `trace = true`: every request carries its own W3C traceparent (a redirect's hops share
/// their step's), and the ids of the slowest and the failed requests are kept per step.
#[tokio::test]
async fn traced_requests_are_kept_by_trace_id() {
    for t in BOTH {
        let server = ScriptedServer::start(
            t,
            vec![[
                answer(&redirect(302, "/home", "")),
                answer(&ok("home")),
                answer(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"),
            ]
            .concat()],
        )
        .await;
        let src = r#"name = "t"
trace = true
[[journey]]
name = "j"
  [[journey.step]]
  name = "start"
  path = "/"
  [[journey.step]]
  name = "pay"
  path = "/pay"
"#;
        let got = one_iteration(src, &server.url()).await;
        assert_eq!(got.requests(), 2, "{t:?}");
        let log = server.settle(3).await;
        let parents: Vec<&str> = log.iter().map(|r| r.headers("traceparent")[0]).collect();
        let ids: Vec<&str> = parents
            .iter()
            .map(|p| {
                let parts: Vec<&str> = p.split('-').collect();
                assert_eq!(parts.len(), 4, "{p}");
                assert_eq!((parts[0], parts[3]), ("00", "01"));
                assert!(parts[1].len() == 32 && parts[2].len() == 16, "{p}");
                assert!(parts[1]
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
                parts[1]
            })
            .collect();
        assert_eq!(
            ids[0], ids[1],
            "the redirect's hop is the same request's trace"
        );
        assert_ne!(ids[1], ids[2]);
        assert_eq!(got.traces.len(), 2);
        assert_eq!(got.traces[0].slowest.len(), 1);
        assert_eq!(got.traces[0].slowest[0].trace_id, ids[0]);
        assert!(got.traces[0].failed.is_empty());
        assert_eq!(got.traces[1].failed[0].trace_id, ids[2]);
        assert_eq!(got.traces[1].failed[0].error, Some(ErrorKind::Http5xx));
    }
    // Off by default: no header, nothing kept.
    let server = ScriptedServer::start(Transport::Tcp, vec![answer(&ok(""))]).await;
    let got = one_iteration(
        "name = \"t\"\n[[journey]]\nname = \"j\"\n[[journey.step]]\npath = \"/\"\n",
        &server.url(),
    )
    .await;
    assert!(server.settle(1).await[0].headers("traceparent").is_empty());
    assert!(got.traces.iter().all(StepTraces::is_empty));
}

/// Each step's time split like curl's: connecting (once, by the step that opened the
/// connection), waiting for the first byte, and the transfer of the rest.
#[tokio::test]
async fn request_time_is_split_into_phases() {
    for t in BOTH {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n".to_vec();
        let server = ScriptedServer::start(
            t,
            vec![vec![
                Step::Read,
                Step::Write(head, Split::Whole),
                Step::Pause(Duration::from_millis(300)),
                Step::Write(b"body".to_vec(), Split::Whole),
                Step::Read,
                Step::Pause(Duration::from_millis(200)),
                Step::Write(ok("late"), Split::Whole),
            ]],
        )
        .await;
        let got = one_iteration(&two_step_journey(""), &server.url()).await;
        assert_eq!((got.requests(), got.samples.len()), (2, 0), "{t:?}");
        let (first, second) = (got.steps[0].phases, got.steps[1].phases);
        assert_eq!((first.timed, first.connections), (1, 1), "{t:?}");
        assert_eq!((second.timed, second.connections), (1, 0), "{t:?}");
        assert!(first.transfer_us >= 290_000, "{t:?} {first:?}");
        assert!(first.ttfb_us < 290_000, "{t:?} {first:?}");
        assert!(second.ttfb_us >= 190_000, "{t:?} {second:?}");
        assert!(second.transfer_us < 190_000, "{t:?} {second:?}");
        assert_eq!(second.dns_us + second.connect_us + second.tls_us, 0);
        assert_eq!(first.tls_us > 0, t == Transport::Tls, "{t:?} {first:?}");
        let timing = crate::record::results::StepTiming::from_phases(&first).unwrap();
        assert!(timing.transfer_ms >= 290.0);
    }
}

/// `http_version = "2"`: a journey's requests go as HTTP/2 streams on one connection, and the
/// step's phases say how many responses came over HTTP/2.
#[tokio::test]
async fn a_journey_over_http2() {
    use crate::http::tests::h2server::{Answer, H2Server};
    for t in BOTH {
        let server = H2Server::start(t, true, |_, path| Answer {
            status: 200,
            headers: vec![("set-cookie", "sid=5".into())],
            body: format!("{{\"path\": \"{path}\"}}").into_bytes(),
            frame: 4,
            script: Default::default(),
        })
        .await;
        let src = r#"name = "h2"
http_version = "2"
[[journey]]
name = "j"
  [[journey.step]]
  name = "home"
  path = "/home"
  extract = { p = { json = "$.path" } }
  [[journey.step]]
  name = "cart"
  method = "POST"
  path = "/cart"
  json = { from = "{{p}}" }
"#;
        let base = format!(
            "{}://127.0.0.1:{}",
            if t == Transport::Tls { "https" } else { "http" },
            server.addr.port()
        );
        let got = iterations(src, &base, 2).await;
        assert_eq!(
            (got.requests(), got.samples.len()),
            (4, 0),
            "{t:?} {:?}",
            got.samples
        );
        assert_eq!(got.steps[0].phases.http2 + got.steps[1].phases.http2, 4);
        let log = server.requests();
        assert_eq!(log[1].body, b"{\"from\":\"/home\"}", "{t:?}");
        assert_eq!(log[1].header("cookie"), Some("sid=5"));
        assert_eq!(server.connections(), 1, "{t:?}");
    }
}

/// Runs a whole plan through the worker threads against `base_url`; returns what it recorded
/// and how long it took.
async fn run_plan(src: &str, base_url: &str, drain: Duration) -> (Totals, Duration) {
    let scenario = scenario(&format!("base_url = \"{base_url}\"\n{src}"));
    let version = scenario.protocol.http_version;
    let prepared = Prepared::new(&scenario, base_url).unwrap();
    let config = Arc::new(EngineConfig {
        scenario: Arc::new(scenario),
        prepared: Arc::new(prepared),
        threads: 1,
        run_start: Instant::now(),
        stop: CancellationToken::new(),
        drain,
        client: ClientOptions::new(true).with_http_version(version),
    });
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    let workers = spawn_workers(config, tx);
    // Joined off the runtime, which keeps serving the scripted server meanwhile.
    tokio::task::spawn_blocking(move || {
        for w in workers {
            w.join().unwrap();
        }
    })
    .await
    .unwrap();
    let took = started.elapsed();
    (Totals::from_reports(rx.try_iter()), took)
}

/// A journey whose second step takes 300 ms, so a request is in flight when the plan ends.
fn slow_second_step(load: &str, last_think: &str) -> String {
    format!(
        r#"name = "drain"
[load]
{load}
[[journey]]
name = "j"
  [[journey.step]]
  name = "fast"
  path = "/fast"
  [[journey.step]]
  name = "slow"
  path = "/slow"
  {last_think}
"#
    )
}

fn slow_server_script(pause: Duration) -> Vec<Step> {
    let mut script = Vec::new();
    for _ in 0..40 {
        script.extend(answer(&ok("f")));
        script.extend([
            Step::Read,
            Step::Pause(pause),
            Step::Write(ok("s"), Split::Whole),
        ]);
    }
    script
}

/// Both models let the requests in flight at the plan's end finish within the drain: none
/// is cancelled, every request the server answered is counted, no iteration is cut, and the
/// pause after the last step does not hold the run up.
#[tokio::test]
async fn requests_in_flight_at_the_planned_end_finish_within_the_drain() {
    for load in [
        "model = \"closed\"\nvus = 2\nduration = \"1s\"",
        "rps = 4\nduration = \"1s\"",
    ] {
        let server = ScriptedServer::start(
            Transport::Tcp,
            vec![slow_server_script(Duration::from_millis(300))],
        )
        .await;
        let src = slow_second_step(load, "think = \"10s\"");
        let (totals, took) = run_plan(&src, &server.url(), Duration::from_secs(5)).await;
        let got = server.settle(0).await;
        assert_eq!(totals.errors(ErrorKind::Cancelled), 0, "{load}");
        assert_eq!(
            totals.requests(),
            got.len() as u64,
            "{load}: every answered request counted"
        );
        assert!(totals.steps[1].requests > 0);
        assert_eq!(totals.counters.interrupted_iterations, 0, "{load}");
        assert_eq!(totals.iterations(), totals.steps[1].requests);
        assert!(
            took < Duration::from_millis(2500),
            "{load}: took {took:?}; the 10 s pause after the last step must not delay the end"
        );
    }
}

/// What is still in flight when the drain runs out is recorded as cancelled, and the run ends
/// at the plan's end plus the drain, whatever the request timeout.
#[tokio::test]
async fn the_drain_bounds_the_end_of_both_models() {
    for load in [
        "model = \"closed\"\nvus = 2\nduration = \"1s\"",
        "rps = 2\nduration = \"1s\"",
    ] {
        let server = ScriptedServer::start(
            Transport::Tcp,
            vec![slow_server_script(Duration::from_secs(30))],
        )
        .await;
        let src = format!("timeout = \"60s\"\n{}", slow_second_step(load, ""));
        let (totals, took) = run_plan(&src, &server.url(), Duration::from_millis(500)).await;
        assert!(totals.errors(ErrorKind::Cancelled) >= 1, "{load}");
        assert_eq!(
            totals.counters.interrupted_iterations,
            totals.errors(ErrorKind::Cancelled),
            "{load}"
        );
        assert!(
            took >= Duration::from_millis(1400) && took < Duration::from_millis(4000),
            "{load}: took {took:?} with a 1 s plan and a 0.5 s drain"
        );
    }
}

/// A sold-out checkout (409, accepted by the step's check) carries no order id: with
/// `optional = true` that is no error and the journey goes on with the variable unset; without
/// it, the same answer is an `extract_failed`.
#[tokio::test]
async fn an_optional_extraction_without_a_value_is_no_error() {
    let sold_out = b"HTTP/1.1 409 Conflict\r\nContent-Length: 20\r\n\r\n{\"error\":\"sold out\"}";
    for (optional, errors) in [(true, 0), (false, 1)] {
        let server = ScriptedServer::start(
            Transport::Tcp,
            vec![[answer(sold_out), answer(&ok(""))].concat()],
        )
        .await;
        let src = format!(
            r#"name = "checkout"
[[journey]]
name = "j"
  [[journey.step]]
  name = "checkout"
  method = "POST"
  path = "/checkout"
  check = {{ status = [201, 409] }}
  extract = {{ order_id = {{ json = "$.order_id", optional = {optional} }} }}
  [[journey.step]]
  name = "next"
  path = "/next"
"#
        );
        let totals = one_iteration(&src, &server.url()).await;
        assert_eq!(
            totals.errors(ErrorKind::ExtractFailed),
            errors,
            "optional = {optional}"
        );
        // A failed extraction ends the iteration; an optional one without a value does not.
        assert_eq!(
            totals.steps[1].requests,
            1 - errors,
            "optional = {optional}"
        );
        assert_eq!(totals.journeys[0].errors, errors);
    }
}

/// Mutated templates (fixed seeds) in a path, a header and a body compile or are refused, and
/// what compiles renders with any variable value: never a panic, and the request target never
/// holds a space, CR or LF.
#[test]
fn mutated_templates_render_without_a_panic_or_an_unsafe_target() {
    use super::render::{render, RenderCtx, VarValue};
    const TOKENS: &[&str] = &[
        "{{",
        "}}",
        "{{v}}",
        "{{ v }}",
        "{{uuid}}",
        "{{random_int 1 9}}",
        "{{random_int 9 1}}",
        "{{random_int 0 18446744073709551615}}",
        "{{now_ms}}",
        "{{vu}}",
        "{{iteration}}",
        "é",
        "%",
        "%2",
        "%zz",
        "#",
        "?",
        "&",
        "=",
        "/",
        "\\\"",
        " ",
        "\\t",
        "{{env.X}}",
        "{{user.x}}",
    ];
    const VALUES: &[&str] = &[
        "",
        " ",
        "a b",
        "\r\n",
        "é",
        "%",
        "{\"a\":1}",
        "../..",
        "?x=1#f",
    ];
    let mut compiled = 0;
    for seed in 0..2000u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut template = String::from("/a/{{v}}?q={{v}}");
        for _ in 0..rng.usize(1..5) {
            let mut at = rng.usize(0..=template.len());
            while !template.is_char_boundary(at) {
                at -= 1;
            }
            template.insert_str(at, TOKENS[rng.usize(0..TOKENS.len())]);
        }
        let src = format!(
            "name = \"t\"\nbase_url = \"http://127.0.0.1:9\"\n[[journey]]\nname = \"j\"\n\
             [[journey.step]]\nname = \"a\"\npath = \"/a\"\nextract = {{ v = {{ json = \"$.v\" }} }}\n\
             [[journey.step]]\nname = \"b\"\npath = \"{template}\"\nheaders = {{ X = \"{template}\" }}\n\
             body = \"{template}\"\n"
        );
        let Ok(s) = parse_scenario(&src, Path::new("t.toml"), &|_| None) else {
            continue;
        };
        compiled += 1;
        let value = VALUES[rng.usize(0..VALUES.len())];
        let vars: Vec<VarValue> = s.journeys[0]
            .vars
            .iter()
            .map(|_| VarValue {
                text: value.to_string(),
                json_literal: value.starts_with('{'),
                set: true,
            })
            .collect();
        let rows: Vec<Option<&[String]>> = Vec::new();
        let ctx = RenderCtx {
            vars: &vars,
            rows: &rows,
            vu: 1,
            iteration: 2,
        };
        let step = &s.journeys[0].steps[1];
        let mut out = Vec::new();
        render(&step.url, &ctx, &mut out);
        assert!(
            !out.iter().any(|b| matches!(b, b' ' | b'\r' | b'\n')),
            "seed {seed}: {template:?} with {value:?} → {:?}",
            String::from_utf8_lossy(&out)
        );
        for (_, h) in &step.headers {
            out.clear();
            render(h, &ctx, &mut out);
        }
        if let crate::scenario::Body::Raw { text, .. } = &step.body {
            out.clear();
            render(text, &ctx, &mut out);
        }
    }
    assert!(
        compiled > 100,
        "{compiled} compiled: the test renders too little"
    );
}
