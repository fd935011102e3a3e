//! Scenario files: TOML in, a validated [`Scenario`] out, or every problem at once.
//!
//! [`load_scenario`] reads a file and [`parse_scenario`] compiles its text into the model in
//! [`model`], resolving every name (variables, feeders, steps named by thresholds) to an index.
//! Nothing is sent anywhere: feeder CSV files are read here, `{{env.NAME}}` is read here, and
//! the result either runs as is or comes back as [`ScenarioErrors`], one
//! `path:line:col: message` per problem, sorted by position. TOML syntax errors are reported
//! alone, since a damaged file would only produce confusing follow-on errors.
//!
//! # The file format
//!
//! ```toml
//! name = "black-friday"                 # required
//! base_url = "http://127.0.0.1:8080"    # or "stack" for the bundled reference stack;
//!                                       # required unless every step has an absolute url;
//!                                       # http(s) only; a trailing slash is dropped;
//!                                       # may use {{env.NAME}}
//! timeout = "10s"                       # per request, unless a step sets its own; default 10s
//! max_response_headers = 100            # more header fields in a response is a `protocol`
//!                                       # error; 1 to 10000, default 100 (hyper's limit)
//! max_redirects = 10                    # redirects a step follows (its own max_redirects
//!                                       # overrides); 0 to 100, default 10; 0: a 3xx is the
//!                                       # answer (see the README's HTTP section)
//! compression = ["gzip", "br", "zstd"] # sent as Accept-Encoding (any of gzip, deflate, br,
//!                                       # zstd); default none asked. Encoded bodies are
//!                                       # decoded before checks and extraction, whatever asked
//! http_version = "auto"                 # "1.1" (default), "2" (ALPN h2 over https, h2c with
//!                                       # prior knowledge over http) or "auto" (h2 where
//!                                       # TLS's ALPN agrees, else HTTP/1.1)
//! trace = true                          # a W3C traceparent on every request; each step's
//!                                       # slowest and failed trace ids in results and report
//! thresholds = ["checkout.p99 < 300ms", "http.error_rate < 1%", "http.rps > 200",
//!               "dropped_iterations == 0", "feeder_exhausted == 0"]
//!                                       # run-wide: dropped_iterations, iterations,
//!                                       # feeder_exhausted, checks.failed, checks.rate
//!
//! [headers]                             # sent with every request; values are templates
//! "User-Agent" = "peakload"             # (feeders, env and built-ins; no journey variables)
//!
//! [load]                                # optional; default: open model, 10s at 1 rps
//! model = "open"                        # "open" (default) or "closed"
//! start_rps = 0                         # rate at t = 0; each stage ramps linearly; default 0
//! max_vus = 500                         # cap on concurrent iterations; default 1000, most 100000
//! pre_allocated_vus = 20                # default min(max_vus, max(1, ⌈first target_rps⌉))
//! max_lag = "5s"                        # arrivals waiting longer for a VU are dropped; default 5s
//! arrivals = "poisson"                  # "even" (default: evenly spaced) or "poisson"
//!                                       # (exponential gaps, the planned total exactly)
//! seed = 42                             # the Poisson draws; default 1 (same pattern each run)
//! stages = [
//!   { duration = "10s", target_rps = 50, name = "ramp" },
//!   { duration = "30s", target_rps = 50 },
//!   { duration = "5s", target_rps = 400, name = "spike" },
//! ]
//! # Closed model: model = "closed", start_vus = 0, stages = [{ duration = "10s", target_vus = 20 }]
//! # Shorthands: rps = 100, duration = "30s"  (open: one stage, start_rps = rps)
//! #             vus = 10, duration = "30s"   (closed: one stage, start_vus = vus; implies
//! #                                          model = "closed")
//! # Limits: rates up to 10000000 per second, VU counts up to 100000, durations (each stage
//! # and all stages together) up to 366 days.
//!
//! [stack]                             # optional, with base_url = "stack" only: flags for the
//! args = ["--db-pool-size", "2"]        # bundled stack (`peakload stack up --help`); peakload
//!                                       # sets --listen and --data-dir itself
//!
//! [gate]                              # optional: the regression gate's policy per metric
//! rps = "off"                           # (with `run --history`); "off"/"on", or a table:
//! p99 = { min_effect = "15%", confirm_runs = 3 }   # alpha, min_effect, min_absolute,
//! "*" = { alpha = 0.0005 }              # min_history, confirm_runs, gated; "*" = all
//!                                       # metrics; --gate-policy overrides the file
//!
//! [observe]                           # optional: the infrastructure's own signals
//! scrape = ["stack", "http://127.0.0.1:9100/metrics"]  # Prometheus text endpoints read
//!                                       # every scrape_interval during the run; "stack" is
//!                                       # the target's /metrics (the bundled stack)
//! scrape_interval = "1s"                # default 1s
//!
//! [observe.prometheus]                  # optional: query_range after the run
//! url = "http://127.0.0.1:9090"
//! step = "1s"                           # default 1s
//! queries = { db_wait = "rate(db_wait_seconds_sum[30s])" }   # name = PromQL
//!
//! # AWS, read after the run through the standard credential chain (AWS_PROFILE, env, role).
//! # settle = "2m" in [observe] waits before reading: CloudWatch publishes with a delay.
//! # source_timeout = "60s" in [observe]: how long each after-run read (a Prometheus server,
//! # the CloudWatch metrics, one log group, one scaling resource) may take; one that fails or
//! # hangs is named in the notes and the others are kept (also when the run is interrupted).
//! [observe.cloudwatch]                  # optional: GetMetricData
//! region = "eu-west-1"                  # default: the standard chain
//! endpoint_url = "http://127.0.0.1:5055"   # optional (an emulator); logs and scaling use it too
//! period = "10s"                        # 1s, 5s, 10s, 30s or whole minutes; default: the
//!                                       # finest each metric has (1 s for high-resolution
//!                                       # metrics while CloudWatch keeps such data, 3 hours;
//!                                       # a standard metric's minute; at most 3600 values
//!                                       # for the run), said in the notes. A
//!                                       # metric coarser than the period asked is read at its
//!                                       # own. Each value covers its period, from its time.
//! metrics = [{ namespace = "PeakloadStack", metric = "DbPoolWaitTime", stat = "p99",
//!              dimensions = { Service = "peakload-stack-api" }, unit = "Seconds" }]
//! presets = [{ kind = "ecs_service", cluster = "shop", service = "api" },
//!            { kind = "sqs_queue", queue = "emails" }]  # also alb_target_group, rds_instance,
//!                                       # dynamodb_table, lambda_function
//!
//! [observe.logs]                        # optional: FilterLogEvents counts per interval
//! log_groups = ["/ecs/shop-api"]
//! patterns = ["ERROR", { name = "timeouts", filter = "?timeout ?\"timed out\"" }]
//!                                       # default: errors, timeouts, oom
//! interval = "10s"                      # default: the CloudWatch period if set, else 1s
//!                                       # (1m for runs over 3 hours)
//!
//! [observe.scaling]                     # optional: scaling activities as events
//! ecs = [{ cluster = "shop", service = "api" }]   # Application Auto Scaling
//! asg = ["shop-nodes"]                  # EC2 Auto Scaling groups
//! lookback = "15m"                      # include activities that began before the run
//!
//! [[feeder]]
//! name = "user"                         # templates use {{user.<column>}}
//! file = "data/users.csv"               # relative to this file; the header row names columns
//! mode = "sequential"                   # "sequential" (default, wraps around), "random",
//!                                       # or "unique" (each row once, then iterations that
//!                                       # need a row are skipped and counted)
//!
//! [[journey]]
//! name = "shopper"                      # unique; "http" and "checks" are reserved
//! weight = 70                           # share of iterations (open) or VUs (closed); default 1
//! keep_alive = false                    # each iteration opens its own connections (new TLS
//!                                       # handshakes, as a new visitor) and closes them at
//!                                       # its end; default true (kept across iterations)
//!
//!   [[journey.step]]
//!   name = "login"                      # default "<METHOD> <path or url>"; unique per journey
//!   method = "POST"                     # default GET; upper-cased
//!   path = "/api/login"                 # joined to base_url; or url = "https://host/x";
//!                                       # exactly one of them; templates allowed; encoded
//!                                       # as described under "Paths and URLs" below
//!   query = { page = "{{random_int 1 5}}", q = "shoes" }  # strings, numbers, booleans
//!   headers = { Authorization = "Bearer {{token}}" }       # override default headers
//!   json = { email = "{{user.email}}", qty = 1 }           # any TOML value, sent as JSON
//!   # or form = { data = "{{uuid}}" }, or body = "raw {{uuid}}" with content_type = "text/plain";
//!   # at most one of json / form / body
//!   timeout = "5s"
//!   think = "1s..3s"                    # pause after this step: fixed "500ms" or a range
//!   max_redirects = 0                   # overrides the top-level max_redirects
//!   extract = { token = { json = "$.token" }, order_id = { json = "/order_id" },
//!               req = { header = "X-Request-Id" }, code = { regex = "code=(\\d+)" } }
//!   # optional = true beside the source: a response without the value (e.g. a 409 the check
//!   # accepts) leaves the variable unset instead of an extract_failed error
//!   #   extract = { order_id = { json = "$.order_id", optional = true } }
//!   check = { status = 200, body_contains = "ok", json = { "$.status" = "ok" },
//!             max_duration = "500ms" }
//!   # status = 200 | [201, 409] | "2xx" | "200..299"
//! ```
//!
//! ## Templates
//!
//! Strings in `path`, `url`, `query`, `headers`, `json`, `form` and `body` may hold
//! expressions in double braces (spaces inside the braces are allowed):
//!
//! | expression | value |
//! |---|---|
//! | `{{token}}` | a variable extracted by an *earlier* step of the same journey |
//! | `{{user.email}}` | column `email` of the iteration's row from feeder `user` |
//! | `{{env.API_KEY}}` | an environment variable, read once when the file is loaded; unset is an error |
//! | `{{uuid}}` | a random v4 UUID |
//! | `{{random_int 1 100}}` | a random integer, both bounds included |
//! | `{{now_ms}}` | milliseconds since the Unix epoch |
//! | `{{vu}}`, `{{iteration}}` | the VU number and the iteration number, from 0 |
//!
//! In a JSON body, a string that is exactly one expression (`qty = "{{n}}"`) becomes a whole
//! JSON value: numbers and booleans as they are, anything else a JSON string. Query and form
//! values are URL-encoded. A [`Template`] renders by writing each literal part verbatim and
//! each expression with its [`Escape`]: literal parts are stored in their final form (already
//! percent-encoded in query and form values, already JSON text in JSON bodies). Query and form
//! *keys* are stored as written.
//!
//! ## Paths and URLs
//!
//! What a request target cannot carry is percent-encoded, the way a browser sends a typed URL:
//! `path = "/a b/é?k=v w"` is sent as `/a%20b/%C3%A9?k=v%20w`. An expression inside a path is
//! one segment's text and inside the query one value: every character but `A-Z a-z 0-9 - . _ ~`
//! is encoded, so an `id` of `x/y#z` in `path = "/items/{{id}}"` stays one segment
//! (`/items/x%2Fy%23z`). An expression that starts a `path` or a `url` (`path = "{{next}}"`,
//! a link taken from a response) is a whole path or URL: only what a request target cannot
//! carry is encoded, `%XX` escapes are kept, and a `#fragment` is dropped. In a `url`, an
//! expression in the host is checked when the request is built. A fragment is never sent, so
//! `peakload check` refuses a literal `#` (write `%23` for the character), a `%` that starts no
//! escape (write `%25`), and a host with characters no host has.
//!
//! Header values may not hold CR, LF or NUL: `check` refuses them in literal text, and a value
//! from a variable or a feeder that has one makes the request an `invalid_request` error,
//! never sent (it would end the header and start another).
//!
//! ## Extraction and checks
//!
//! `json` takes a JSON path (`"$.a.b[0]"`, `"$['a']"`) or an RFC 6901 pointer (`"/a/b/0"`),
//! stored as a pointer; `header` is matched case-insensitively; `regex` yields capture group 1
//! when there is one, else the whole match. Checks run in the order status, body_contains,
//! json (one per entry), max_duration.
//!
//! ## Thresholds
//!
//! `<metric> <op> <value>` with `<op>` one of `< <= > >= == !=`. Metrics: `http.<stat>`,
//! `<journey>.<stat>`, `<step>.<stat>` (when the step name is unique across journeys),
//! `<journey>.<step>.<stat>`, and the run-wide `dropped_iterations`, `iterations`,
//! `checks.failed`, `checks.rate`. Stats: `p50`, `p90`, `p95`, `p99`, `p999`, any `p<N>`
//! (`p75`, `p99.9`), `mean`, `min`, `max` (limits are durations such as `300ms`; a bare
//! number is milliseconds), `error_rate` (`1%` or `0.01`), `rps`, `requests`, `errors`.
//! See [`parse_threshold`].

mod diag;
mod duration;
pub mod model;
mod parse;
mod template;
mod threshold;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use diag::{Diagnostic, ScenarioErrors};
pub use duration::parse_duration;
pub use model::*;
pub use parse::gate::is_gated_metric;

pub use threshold::parse_threshold;

/// Reads and compiles a scenario file, taking `{{env.NAME}}` from the process environment.
pub fn load_scenario(path: &Path) -> Result<Scenario, ScenarioErrors> {
    let bytes = std::fs::read(path)
        .map_err(|e| ScenarioErrors::whole_file(path, format!("can't read scenario file: {e}")))?;
    let src =
        String::from_utf8(bytes).map_err(|e| diag::not_utf8(path, e.as_bytes(), e.utf8_error()))?;
    parse_scenario(&src, path, &|name| std::env::var(name).ok())
}

/// Compiles scenario text. `path` locates diagnostics and anchors relative feeder paths;
/// `env` answers `{{env.NAME}}`.
pub fn parse_scenario(
    src: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Scenario, ScenarioErrors> {
    parse::compile(src, path, env)
}
