//! Mistakes in the structure of journeys, steps and their tables, one per case.

use super::*;

#[test]
fn structure_errors() {
    let base = "name = \"x\"\nbase_url = \"http://h\"\n";
    let step = "[[journey]]\nname = \"j\"\n[[journey.step]]\n";
    let cases: Vec<(String, &str)> = vec![
        (format!("{base}timout = \"1s\"\n{step}path = \"/\""), "s.toml:3:1: unknown key \"timout\" in the scenario (top level); expected one of: name, base_url, timeout, thresholds, headers, load, feeder, journey, observe, stack, max_response_headers, gate, max_redirects, compression, trace, http_version (did you mean \"timeout\"?)"),
        (base.to_string(), "s.toml:1:1: no journey: add at least one [[journey]] with a name and one [[journey.step]]"),
        (format!("base_url = \"http://h\"\n{step}path = \"/\""), "s.toml:1:1: missing required key \"name\" at the top level; add e.g. name = \"black-friday\""),
        (format!("{base}[[journey]]\nname = \"j\"\n"), "s.toml:3:1: journey \"j\" has no steps; add at least one [[journey.step]] with e.g. path = \"/\""),
        (format!("{base}[[journey]]\nname = \"j\"\nweight = 0\n[[journey.step]]\npath = \"/\""), "s.toml:5:10: \"weight\" must be an integer ≥ 1, found 0"),
        (format!("{base}{step}path = \"/\"\nmax_redirects = 101"), "s.toml:7:17: \"max_redirects\" must be an integer from 0 to 100, found 101"),
        (format!("{base}compression = [\"gzip\", \"brotli\"]\n{step}path = \"/\""), "s.toml:3:24: unknown compression \"brotli\"; expected gzip, deflate, br or zstd"),
        (format!("{base}compression = [\"br\", \"br\"]\n{step}path = \"/\""), "s.toml:3:22: \"br\" is listed twice in compression"),
        (format!("{base}http_version = \"2.0\"\n{step}path = \"/\""), "s.toml:3:16: unknown http_version \"2.0\"; expected \"1.1\" (the default), \"2\" (ALPN h2 over TLS, h2c prior knowledge over http://) or \"auto\" (HTTP/2 where TLS offers it)"),
        (format!("{base}trace = 1\n{step}path = \"/\""), "s.toml:3:9: \"trace\" must be true or false, found integer 1"),
        (format!("{base}compression = \"gzip\"\n{step}path = \"/\""), "s.toml:3:15: \"compression\" must be an array such as [\"gzip\", \"br\", \"zstd\"], found string \"gzip\""),
        (format!("{base}max_redirects = -1\n{step}path = \"/\""), "s.toml:3:17: \"max_redirects\" must be an integer from 0 to 100, found -1"),
        (format!("{base}[[journey]]\nname = \"j\"\nkeep_alive = \"no\"\n[[journey.step]]\npath = \"/\""), "s.toml:5:14: \"keep_alive\" must be true or false, found string \"no\""),
        (format!("{base}[[journey]]\nname = \"http\"\n[[journey.step]]\npath = \"/\""), "s.toml:4:8: a journey can't be named \"http\": thresholds use \"http.\" for run-wide metrics"),
        (format!("{base}{step}path = \"/\"\n{step}path = \"/\""), "s.toml:8:8: duplicate journey name \"j\"; thresholds and reports name journeys, so each needs its own name"),
        (format!("{base}{step}path = \"/\"\n[[journey.step]]\npath = \"/\""), "s.toml:8:8: duplicate step name \"GET /\" in journey \"j\"; steps are measured by name, so give this one its own name = \"...\""),
        (format!("{base}{step}path = \"/\"\nurl = \"http://x\""), "s.toml:7:1: a step has either \"path\" (joined to base_url) or \"url\" (absolute), not both"),
        (format!("{base}{step}method = \"GET\""), "s.toml:5:1: this step has no target; add path = \"/api/...\" (joined to base_url) or url = \"https://host/...\""),
        (format!("{base}{step}path = \"api\""), "s.toml:6:8: path \"api\" must start with \"/\"; for another host use url = \"https://...\" instead"),
        (format!("{base}{step}url = \"ftp://x\""), "s.toml:6:7: url \"ftp://x\" must be absolute, starting with http:// or https://; for a path on base_url use path = \"...\""),
        (format!("{base}{step}path = \"/\"\njson = {{}}\nbody = \"x\""), "s.toml:8:1: a step has at most one body; \"body\" conflicts with \"json\""),
        (format!("{base}{step}path = \"/\"\ncontent_type = \"x\""), "s.toml:7:1: \"content_type\" goes with a raw body = \"...\"; json and form set their own content type"),
        (format!("{base}{step}path = \"/\"\nmethod = \"GE T\""), "s.toml:7:10: \"GE T\" is not an HTTP method; write e.g. \"GET\" or \"POST\""),
        (format!("{base}{step}path = \"/\"\nthink = \"3s..1s\""), "s.toml:7:9: bad think time: think range \"3s..1s\" goes backwards; write the shorter pause first, e.g. \"1s..3s\""),
        (format!("{base}{step}path = \"/\"\nextract = {{ t = {{ regex = \"(\" }} }}"), "s.toml:7:27: bad regex for extract \"t\": unclosed group"),
        (format!("{base}{step}path = \"/\"\nextract = {{ t = {{ json = \"$.a\", header = \"b\" }} }}"), "s.toml:7:33: extract \"t\" needs exactly one source: json = \"$.path\", header = \"Name\" or regex = \"...\""),
        (format!("{base}{step}path = \"/\"\nextract = {{ uuid = {{ json = \"$.a\" }} }}"), "s.toml:7:13: \"uuid\" is a built-in template function; pick another variable name"),
        (format!("{base}{step}path = \"/\"\nextract = {{ t = {{ json = \"a.b\" }} }}"), "s.toml:7:26: bad JSON path \"a.b\": write a JSON path such as \"$.order.id\" or \"$.items[0]['sku']\", or a JSON pointer such as \"/order/id\""),
        (format!("{base}{step}path = \"/\"\ncheck = {{ status = 600 }}"), "s.toml:7:20: \"status\" must be an integer from 100 to 599, found 600"),
        (format!("{base}{step}path = \"/\"\ncheck = {{ status = \"2xy\" }}"), "s.toml:7:20: bad status \"2xy\"; write a status such as 200, a list [201, 409], a class \"2xx\" or a range \"200..299\""),
        (format!("{base}{step}path = \"/\"\ncheck = {{ stauts = 200 }}"), "s.toml:7:11: unknown key \"stauts\" in check; expected one of: status, body_contains, json, max_duration (did you mean \"status\"?)"),
        (format!("{base}{step}path = \"/\"\nquery = {{ a = [1] }}"), "s.toml:7:15: \"a\" must be a string, number or boolean, found an array"),
        (format!("{base}{step}path = \"/\"\ntimeout = \"0s\""), "s.toml:7:11: \"timeout\" must be longer than zero, found \"0s\""),
        (format!("name = \"x\"\n{step}path = \"/\""), "s.toml:5:8: this step uses a relative path, so the scenario needs base_url: add base_url = \"http://host:port\" (or \"stack\") at the top, or use url = \"https://...\" in every step"),
        (format!("name = \"x\"\nbase_url = \"localhost:80\"\n{step}path = \"/\""), "s.toml:2:12: base_url: URL must start with http:// or https://; it must be an http:// or https:// URL (e.g. \"http://127.0.0.1:8080\") or \"stack\""),
        (format!("{base}journey = 3"), "s.toml:3:11: \"journey\" must be an array of tables, written [[journey]], found integer 3"),
        (format!("{base}thresholds = [\"http.p99 < 1 parsec\"]\n{step}path = \"/\""), "s.toml:3:15: invalid latency \"1 parsec\" for http.p99 (e.g. 300ms or 1.5s): unknown unit \"parsec\" in duration \"1 parsec\"; write e.g. \"250ms\", \"1.5s\", \"2m\" or \"1m30s\" (units: h, m, s, ms, us)"),
    ];
    let mut wrong = Vec::new();
    for (src, want) in cases {
        let got = errors(&src);
        if got != vec![want.to_string()] {
            wrong.push(format!("in:\n{src}\nwant: {want}\ngot:  {got:?}\n"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn keep_alive_is_per_journey() {
    let s = parse(
        "name = \"x\"\nbase_url = \"http://h\"\n[[journey]]\nname = \"new\"\nkeep_alive = false\n[[journey.step]]\npath = \"/\"\n[[journey]]\nname = \"back\"\n[[journey.step]]\npath = \"/\"\n",
    )
    .unwrap();
    assert!(!s.journeys[0].keep_alive);
    assert!(s.journeys[1].keep_alive);
}

#[test]
fn max_redirects_default_scenario_and_step() {
    let s = parse("name = \"x\"\nbase_url = \"http://h\"\n[[journey]]\nname = \"j\"\n[[journey.step]]\npath = \"/\"\n").unwrap();
    assert_eq!(s.protocol.max_redirects, DEFAULT_MAX_REDIRECTS);
    assert_eq!(s.journeys[0].steps[0].max_redirects, None);
    let s = parse("name = \"x\"\nbase_url = \"http://h\"\nmax_redirects = 0\n[[journey]]\nname = \"j\"\n[[journey.step]]\npath = \"/\"\nmax_redirects = 3\n").unwrap();
    assert_eq!(s.protocol.max_redirects, 0);
    assert_eq!(s.journeys[0].steps[0].max_redirects, Some(3));
}
