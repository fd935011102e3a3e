//! The file as a whole: a full scenario, reading files, errors together and in order, syntax
//! errors, base_url, durations and `[stack]`.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::scenario::template::{json_escape, json_value_text, url_encode};

/// Renders a template with fixed values per expression, applying the escapes as the engine
/// must: literal parts verbatim, expressions escaped.
fn render(t: &Template, value: &dyn Fn(&Expr) -> String) -> String {
    let mut out = String::new();
    for p in &t.parts {
        match p {
            Part::Lit(s) => out.push_str(s),
            Part::Expr { expr, escape } => {
                let v = value(expr);
                out.push_str(&match escape {
                    Escape::None => v,
                    Escape::Url | Escape::PathSegment => url_encode(&v),
                    Escape::Target => {
                        let mut out = Vec::new();
                        crate::url::push_encoded_target(v.as_bytes(), &mut out);
                        String::from_utf8(out).unwrap()
                    }
                    Escape::JsonString => json_escape(&v),
                    Escape::JsonValue => json_value_text(&v),
                });
            }
        }
    }
    out
}

fn lit(s: &str) -> Part {
    Part::Lit(s.to_string())
}

fn ex(expr: Expr, escape: Escape) -> Part {
    Part::Expr { expr, escape }
}

const FULL: &str = r#"
name = "black-friday"
base_url = "http://127.0.0.1:8080/"
timeout = "3s"
thresholds = ["checkout.p99 < 300ms", "http.error_rate < 1%", "http.rps > 200",
              "dropped_iterations == 0", "shopper.login.p99.9 <= 1.5s", "browser.mean < 40",
              "checks.rate >= 0.99"]

[headers]
"User-Agent" = "peakload/{{env.API_KEY}}"

[load]
start_rps = 5
max_vus = 500
max_lag = "2s"
stages = [ { duration = "10s", target_rps = 50, name = "ramp" },
           { duration = "30s", target_rps = 50 },
           { duration = "500ms", target_rps = 400.5, name = "spike" } ]

[[feeder]]
name = "user"
file = "data/users.csv"
mode = "unique"

[[feeder]]
name = "sku"
file = "skus.csv"
mode = "random"

[[journey]]
name = "shopper"
weight = 70

  [[journey.step]]
  name = "login"
  method = "post"
  path = "/api/login"
  json = { email = "{{user.email}}", password = "{{ user.password }}", qty = 1, note = "hi \"{{user.email}}\"!", tags = ["a", "{{uuid}}"], nested = { ok = true, f = 1.5 } }
  extract = { token = { json = "$.token" }, req = { header = "X-Request-Id" }, code = { regex = "code=(\\d+)" } }
  check = { status = 200, body_contains = "ok", json = { "$.status" = "ok", "/n" = 3 }, max_duration = "500ms" }
  think = "1s..3s"
  timeout = "5s"

  [[journey.step]]
  path = "/api/products/{{sku.id}}"
  query = { page = "{{random_int 1 5}}", q = "red shoes&more", n = 3, b = true }
  headers = { Authorization = "Bearer {{token}}", "X-Code" = "{{code}}" }
  think = "500ms"
  check = { status = "2xx" }

  [[journey.step]]
  name = "checkout"
  method = "PUT"
  url = "https://pay.example/checkout?o={{token}}"
  form = { data = "{{uuid}} x", who = "{{user.email}}" }
  check = { status = [201, 409] }
  extract = { token = { json = "/new_token" } }

  [[journey.step]]
  name = "note"
  method = "POST"
  path = "/notes"
  body = "raw {{token}} at {{now_ms}} by {{vu}}/{{iteration}}"
  content_type = "text/plain"
  check = { status = "200..299" }

[[journey]]
name = "browser"

  [[journey.step]]
  path = "/"
"#;

fn full_dir() -> Dir {
    Dir::new(&[("data/users.csv", USERS_CSV), ("skus.csv", "id\n1\n2\n")])
}

#[test]
fn full_scenario_compiles() {
    let dir = full_dir();
    let s = parse_in(&dir, FULL).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.name, "black-friday");
    assert_eq!(s.base_url, BaseUrl::Url("http://127.0.0.1:8080".into()));
    assert_eq!(s.timeout, Duration::from_secs(3));
    assert_eq!(s.source_path, dir.path());
    assert_eq!(
        s.headers,
        vec![("User-Agent".to_string(), Template::literal("peakload/k\"1"))]
    );

    let Load::Open(open) = &s.load else {
        panic!("open model expected")
    };
    assert_eq!(open.start_rps, 5.0);
    assert_eq!(open.max_vus, 500);
    assert_eq!(open.pre_allocated_vus, 50);
    assert_eq!(open.max_lag, Duration::from_secs(2));
    assert_eq!(
        open.stages,
        vec![
            RateStage {
                duration: Duration::from_secs(10),
                target_rps: 50.0,
                name: Some("ramp".into())
            },
            RateStage {
                duration: Duration::from_secs(30),
                target_rps: 50.0,
                name: None
            },
            RateStage {
                duration: Duration::from_millis(500),
                target_rps: 400.5,
                name: Some("spike".into())
            },
        ]
    );
    assert_eq!(s.load.duration(), Duration::from_millis(40_500));

    assert_eq!(s.feeders.len(), 2);
    let user = &s.feeders[0];
    assert_eq!(user.name, "user");
    assert_eq!(user.path, dir.dir.path().join("data/users.csv"));
    assert_eq!(user.mode, FeedMode::Unique);
    assert_eq!(user.columns, vec!["email", "password"]);
    assert_eq!(
        user.rows,
        vec![vec!["a@x.io", "pw1"], vec!["b@x.io", "p,w2"]]
    );
    assert_eq!(s.feeders[1].mode, FeedMode::Random);

    assert_eq!(s.journeys.len(), 2);
    let j = &s.journeys[0];
    assert_eq!((j.name.as_str(), j.weight), ("shopper", 70));
    assert_eq!(j.vars, vec!["token", "req", "code"]);
    // user first (login's JSON body), then sku (second step's path).
    assert_eq!(j.feeders, vec![0, 1]);
    assert_eq!(s.journeys[1].weight, 1);
    assert_eq!(s.journeys[1].steps[0].name, "GET /");
    assert!(s.journeys[1].feeders.is_empty());

    // login
    let login = &j.steps[0];
    assert_eq!(login.name, "login");
    assert_eq!(login.method, "POST");
    assert_eq!(login.url, Template::literal("/api/login"));
    assert_eq!(login.timeout, Some(Duration::from_secs(5)));
    assert_eq!(
        login.think,
        Some(Think {
            min: Duration::from_secs(1),
            max: Duration::from_secs(3)
        })
    );
    let Body::Json(body) = &login.body else {
        panic!("json body expected")
    };
    let email = Expr::Feed {
        feeder: 0,
        column: 0,
    };
    let password = Expr::Feed {
        feeder: 0,
        column: 1,
    };
    assert_eq!(
        body.parts,
        vec![
            lit("{\"email\":"),
            ex(email.clone(), Escape::JsonValue),
            lit(",\"password\":"),
            ex(password.clone(), Escape::JsonValue),
            lit(",\"qty\":1,\"note\":\"hi \\\""),
            ex(email.clone(), Escape::JsonString),
            lit("\\\"!\",\"tags\":[\"a\","),
            ex(Expr::Uuid, Escape::JsonValue),
            lit("],\"nested\":{\"ok\":true,\"f\":1.5}}"),
        ]
    );
    let rendered = render(body, &|e| match e {
        Expr::Feed { column: 0, .. } => "a\"@x.io".into(),
        Expr::Feed { .. } => "12".into(),
        Expr::Uuid => "u-1".into(),
        other => panic!("{other:?}"),
    });
    let json: serde_json::Value = serde_json::from_str(&rendered).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "email": "a\"@x.io", "password": 12, "qty": 1, "note": "hi \"a\"@x.io\"!",
            "tags": ["a", "u-1"], "nested": {"ok": true, "f": 1.5}
        })
    );
    let vars: Vec<(usize, String)> = login
        .extract
        .iter()
        .map(|e| {
            let src = match &e.source {
                ExtractSource::Json(p) => format!("json {p}"),
                ExtractSource::Header(h) => format!("header {h}"),
                ExtractSource::Regex(r) => format!("regex {}", r.as_str()),
            };
            (e.var, src)
        })
        .collect();
    assert_eq!(
        vars,
        vec![
            (0, "json /token".to_string()),
            (1, "header x-request-id".to_string()),
            (2, "regex code=(\\d+)".to_string()),
        ]
    );
    let checks: Vec<String> = login.checks.iter().map(|c| format!("{c:?}")).collect();
    assert_eq!(
        checks,
        vec![
            "Status(Exact(200))".to_string(),
            "BodyContains(\"ok\")".to_string(),
            "JsonEquals { pointer: \"/status\", expected: String(\"ok\") }".to_string(),
            "JsonEquals { pointer: \"/n\", expected: Number(3) }".to_string(),
            "MaxDuration(500ms)".to_string(),
        ]
    );

    // product page: default name, query, headers with variables
    let product = &j.steps[1];
    assert_eq!(product.name, "GET /api/products/{{sku.id}}");
    assert_eq!(
        product.url.parts,
        vec![
            lit("/api/products/"),
            ex(
                Expr::Feed {
                    feeder: 1,
                    column: 0
                },
                Escape::PathSegment
            )
        ]
    );
    assert_eq!(
        product.query,
        vec![
            (
                "page".to_string(),
                Template {
                    parts: vec![ex(Expr::RandomInt { lo: 1, hi: 5 }, Escape::Url)]
                }
            ),
            ("q".to_string(), Template::literal("red%20shoes%26more")),
            ("n".to_string(), Template::literal("3")),
            ("b".to_string(), Template::literal("true")),
        ]
    );
    assert_eq!(
        product.headers,
        vec![
            (
                "Authorization".to_string(),
                Template {
                    parts: vec![lit("Bearer "), ex(Expr::Var(0), Escape::None)]
                }
            ),
            (
                "X-Code".to_string(),
                Template {
                    parts: vec![ex(Expr::Var(2), Escape::None)]
                }
            ),
        ]
    );
    assert_eq!(
        product.think,
        Some(Think {
            min: Duration::from_millis(500),
            max: Duration::from_millis(500)
        })
    );
    assert!(matches!(
        product.checks.as_slice(),
        [Check::Status(StatusMatch::Range(200, 299))]
    ));

    // checkout: absolute url, form, re-extraction reuses the variable index
    let checkout = &j.steps[2];
    assert_eq!(checkout.method, "PUT");
    assert_eq!(
        checkout.url.parts,
        vec![
            lit("https://pay.example/checkout?o="),
            ex(Expr::Var(0), Escape::Url)
        ]
    );
    let Body::Form(form) = &checkout.body else {
        panic!("form expected")
    };
    assert_eq!(
        form,
        &vec![
            (
                "data".to_string(),
                Template {
                    parts: vec![ex(Expr::Uuid, Escape::Url), lit("%20x")]
                }
            ),
            (
                "who".to_string(),
                Template {
                    parts: vec![ex(email.clone(), Escape::Url)]
                }
            ),
        ]
    );
    assert_eq!(checkout.extract.len(), 1);
    assert_eq!(checkout.extract[0].var, 0);
    assert!(matches!(
        checkout.checks.as_slice(),
        [Check::Status(StatusMatch::List(l))] if l == &[201, 409]
    ));

    // raw body with built-ins
    let note = &j.steps[3];
    let Body::Raw { content_type, text } = &note.body else {
        panic!("raw body expected")
    };
    assert_eq!(content_type.as_deref(), Some("text/plain"));
    assert_eq!(
        text.parts,
        vec![
            lit("raw "),
            ex(Expr::Var(0), Escape::None),
            lit(" at "),
            ex(Expr::NowMs, Escape::None),
            lit(" by "),
            ex(Expr::Vu, Escape::None),
            lit("/"),
            ex(Expr::Iteration, Escape::None),
        ]
    );
    assert!(matches!(
        note.checks.as_slice(),
        [Check::Status(StatusMatch::Range(200, 299))]
    ));

    // thresholds resolved
    let t: Vec<(MetricRef, CmpOp, f64)> = s
        .thresholds
        .iter()
        .map(|t| (t.metric.clone(), t.op, t.limit))
        .collect();
    let m = |scope, stat| MetricRef { scope, stat };
    assert_eq!(
        t,
        vec![
            (
                m(
                    Scope::Step {
                        journey: 0,
                        step: 2
                    },
                    Stat::Percentile(99.0)
                ),
                CmpOp::Lt,
                300.0
            ),
            (m(Scope::Http, Stat::ErrorRate), CmpOp::Lt, 0.01),
            (m(Scope::Http, Stat::Rps), CmpOp::Gt, 200.0),
            (m(Scope::Run, Stat::DroppedIterations), CmpOp::Eq, 0.0),
            (
                m(
                    Scope::Step {
                        journey: 0,
                        step: 0
                    },
                    Stat::Percentile(99.9)
                ),
                CmpOp::Le,
                1500.0
            ),
            (m(Scope::Journey(1), Stat::Mean), CmpOp::Lt, 40.0),
            (m(Scope::Run, Stat::ChecksPassRate), CmpOp::Ge, 0.99),
        ]
    );
    assert_eq!(s.thresholds[0].expr, "checkout.p99 < 300ms");
}

#[test]
fn load_scenario_reads_the_file_and_reports_unreadable_ones() {
    let dir = full_dir();
    std::fs::write(dir.path(), FULL.replace("{{env.API_KEY}}", "1")).unwrap();
    let s = load_scenario(&dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.journeys.len(), 2);

    let missing = dir.dir.path().join("nope.toml");
    let e = load_scenario(&missing).unwrap_err();
    assert_eq!(e.diagnostics.len(), 1);
    assert_eq!(e.diagnostics[0].line, 0);
    assert!(e
        .to_string()
        .starts_with(&format!("{}: can't read scenario file:", missing.display())));
}

#[test]
fn many_mistakes_reported_at_once_in_order() {
    let dir = Dir::new(&[]);
    let src = r#"name = "bad"
base_url = "http://localhost:8080"
timeout = 10
thresholds = ["chekout.p99 < 300ms"]

[load]
stages = [ { duration = "10 parsecs", taget_rps = 5 } ]

[[feeder]]
name = "user"
file = "data/users.csv"

[[journey]]
name = "j"
  [[journey.step]]
  name = "checkout"
  path = "/x"
  headers = { A = "Bearer {{tokn}}" }
"#;
    let e = parse_in(&dir, src).unwrap_err();
    let p = dir.path();
    let p = p.display();
    let abs = dir.dir.path().join("data/users.csv");
    let expected = vec![
        format!("{p}:3:11: \"timeout\" must be a duration string such as \"10s\" or \"250ms\", found integer 10"),
        format!("{p}:4:15: unknown metric \"chekout.p99\"; expected http.<stat>, <journey>.<stat>, <step>.<stat>, <journey>.<step>.<stat>, dropped_iterations, iterations, feeder_exhausted, checks.failed or checks.rate; journeys: j; steps: checkout (did you mean \"checkout.p99\"?)"),
        format!("{p}:7:25: bad duration for \"duration\": unknown unit \"parsecs\" in duration \"10 parsecs\"; write e.g. \"250ms\", \"1.5s\", \"2m\" or \"1m30s\" (units: h, m, s, ms, us)"),
        format!("{p}:7:39: unknown key \"taget_rps\" in load stage; expected one of: duration, target_rps, name (did you mean \"target_rps\"?)"),
        format!("{p}:11:8: feeder file \"data/users.csv\" not found (looked in {}); relative paths start from the scenario file's directory", abs.display()),
        format!("{p}:18:27: undefined variable \"tokn\": no earlier step extracts it and no feeder column has that name; nothing is defined here yet"),
    ];
    let got: Vec<String> = e.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(got, expected);
    assert_eq!(e.to_string(), expected.join("\n") + "\n");
}

#[test]
fn absolute_urls_need_no_base_url() {
    let s =
        parse("name = \"x\"\n[[journey]]\nname = \"j\"\n[[journey.step]]\nurl = \"http://a/b\"\n")
            .unwrap();
    assert_eq!(s.base_url, BaseUrl::Url(String::new()));
}

#[test]
fn syntax_errors_are_located() {
    let e = errors("name = \"x\"\nbad = \nother = [1,\n");
    assert!(!e.is_empty());
    assert!(e[0].starts_with("s.toml:2:7: TOML syntax error: "), "{e:?}");
    let e = errors("a = 1\na = 2\n");
    assert_eq!(
        e,
        vec!["s.toml:2:1: TOML syntax error: duplicate key".to_string()]
    );
}

#[test]
fn durations() {
    let ok = [
        ("250ms", Duration::from_millis(250)),
        ("1s", Duration::from_secs(1)),
        ("1.5s", Duration::from_millis(1500)),
        ("2m", Duration::from_secs(120)),
        ("1h30m", Duration::from_secs(5400)),
        ("90s", Duration::from_secs(90)),
        ("1m30s", Duration::from_secs(90)),
        ("500us", Duration::from_micros(500)),
        ("0.1s", Duration::from_millis(100)),
        (" 10 s ", Duration::from_secs(10)),
        ("1_000ms", Duration::from_secs(1)),
        ("0s", Duration::ZERO),
        ("1.000000001s", Duration::new(1, 1)),
    ];
    for (s, d) in ok {
        assert_eq!(parse_duration(s), Ok(d), "{s}");
    }
    let bad = [
        ("", "empty duration"),
        ("  ", "empty duration"),
        ("-1s", "negative duration \"-1s\" is not allowed"),
        (
            "10",
            "duration \"10\" has no unit; write e.g. \"10s\" or \"10ms\"",
        ),
        ("10sec", "unknown unit \"sec\" in duration \"10sec\""),
        ("s", "expected a number before \"s\""),
        ("1..2s", "invalid number"),
        ("99999999999999999999999h", "too long"),
    ];
    for (s, want) in bad {
        let e = parse_duration(s).unwrap_err();
        assert!(e.contains(want), "{s}: {e}");
    }
}

#[test]
fn stack_args_go_to_the_bundled_stack_only() {
    let base = "name = \"x\"\nbase_url = \"stack\"\n[[journey]]\nname = \"j\"\n  [[journey.step]]\n  name = \"s\"\n  path = \"/\"\n";
    let s = parse(&format!(
        "{base}[stack]\nargs = [\"--db-pool-size\", \"4\", \"--db-latency-ms=3\"]\n"
    ))
    .unwrap();
    assert_eq!(s.stack_args, ["--db-pool-size", "4", "--db-latency-ms=3"]);
    assert!(parse(base).unwrap().stack_args.is_empty());

    let e = one_error(&format!(
        "{base}[stack]\nargs = [\"--listen=0.0.0.0:80\"]\n"
    ));
    assert!(
        e.contains("9:9") && e.contains("--listen is set by peakload"),
        "{e}"
    );
    let e = one_error(&format!("{base}[stack]\nargs = \"--db-pool-size 4\"\n"));
    assert!(e.contains("9:8") && e.contains("an array of flags"), "{e}");
    let e = one_error(&format!("{base}[stack]\narg = []\n"));
    assert!(e.contains("did you mean \"args\""), "{e}");
    let other = base.replace("\"stack\"", "\"http://127.0.0.1:9\"");
    let e = one_error(&format!("{other}[stack]\nargs = []\n"));
    assert!(e.contains("base_url (line 2)"), "{e}");
}

#[test]
fn the_bundled_scenarios_compile() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let s = load_scenario(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s.base_url, BaseUrl::Stack, "{}", path.display());
            seen.push(s.name);
        }
    }
    seen.sort();
    assert_eq!(seen, ["black-friday", "breaking-point", "smoke"]);
}

#[test]
fn max_response_headers_is_validated() {
    let base = "name = \"x\"\nbase_url = \"http://h\"\n";
    let step = "[[journey]]\nname = \"j\"\n[[journey.step]]\npath = \"/\"\n";
    assert_eq!(
        parse(&format!("{base}{step}"))
            .unwrap()
            .max_response_headers,
        DEFAULT_MAX_RESPONSE_HEADERS
    );
    assert_eq!(
        parse(&format!("{base}max_response_headers = 300\n{step}"))
            .unwrap()
            .max_response_headers,
        300
    );
    assert_eq!(
        one_error(&format!("{base}max_response_headers = 0\n{step}")),
        "s.toml:3:24: \"max_response_headers\" must be an integer from 1 to 10000, found 0"
    );
    assert_eq!(
        one_error(&format!("{base}max_response_headers = \"many\"\n{step}")),
        "s.toml:3:24: \"max_response_headers\" must be an integer from 1 to 10000, found string \"many\""
    );
}
