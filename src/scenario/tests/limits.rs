//! What `check` refuses because `run` could not do it: values that would panic, overflow a
//! clock or make memory grow with a number rather than with the plan. Each is reported at its
//! `file:line:col`, never a panic.

use super::*;

/// A scenario with `top` at the top level, `load` as its `[load]` and one journey/step.
fn with(top: &str, load: &str, journey: &str, step: &str) -> String {
    format!(
        "name = \"x\"\nbase_url = \"http://h\"\n{top}\n[load]\n{load}\n[[journey]]\nname = \"j\"\n{journey}\n[[journey.step]]\npath = \"/\"\n{step}\n"
    )
}

#[test]
fn non_ascii_urls_are_errors_not_panics() {
    let e = errors(&with(
        "[observe]\nscrape = [\"éééé\"]",
        "rps = 1\nduration = \"1s\"",
        "",
        "",
    ));
    assert!(e.iter().any(|m| m.contains("s.toml:4:")), "{e:#?}");
    let e = errors(&with(
        "[observe.prometheus]\nurl = \"éééé\"\nquery = { x = \"up\" }",
        "rps = 1\nduration = \"1s\"",
        "",
        "",
    ));
    assert!(!e.is_empty());
}

#[test]
fn stages_that_sum_past_the_longest_plan_are_refused() {
    let e = one_error(&with(
        "",
        "stages = [{ duration = \"8000h\", target_rps = 1 }, { duration = \"8000h\", target_rps = 1 }]",
        "",
        "",
    ));
    assert!(e.contains("s.toml:5:10") && e.contains("366 days"), "{e}");
    let e = errors(&with(
        "",
        "stages = [{ duration = \"18446744073709551615s\", target_rps = 1 }, { duration = \"18446744073709551615s\", target_rps = 1 }]",
        "",
        "",
    ));
    assert!(e.iter().all(|m| m.contains("too long")), "{e:#?}");
    let e = one_error(&with(
        "",
        "model = \"closed\"\nstages = [{ duration = \"8000h\", target_vus = 1 }, { duration = \"8000h\", target_vus = 1 }]",
        "",
        "",
    ));
    assert!(e.contains("366 days"), "{e}");
}

#[test]
fn huge_durations_are_refused_where_they_are_written() {
    for (top, load) in [
        (
            "[observe]\nsettle = \"18446744073709551615s\"",
            "rps = 1\nduration = \"1s\"",
        ),
        ("timeout = \"9000h\"", "rps = 1\nduration = \"1s\""),
        ("", "rps = 1\nduration = \"367d\""),
        (
            "",
            "rps = 1\nduration = \"1s\"\nmax_lag = \"100000000000h\"",
        ),
    ] {
        let e = errors(&with(top, load, "", ""));
        assert!(
            e.iter().any(|m| m.starts_with("s.toml:") && (m.contains("too long") || m.contains("unit"))),
            "{top} {load}: {e:#?}"
        );
    }
    assert!(parse_duration("8784h").is_ok());
    assert!(parse_duration("8784h1ns").unwrap_err().contains("366 days"));
}

#[test]
fn names_are_limited_in_length() {
    let long = "n".repeat(70_000);
    let e = one_error(&format!(
        "name = \"x\"\nbase_url = \"http://h\"\n[[journey]]\nname = \"{long}\"\n[[journey.step]]\nname = \"{long}\"\npath = \"/\"\n"
    )
    .replace(&format!("name = \"{long}\"\npath"), "name = \"s\"\npath"));
    assert!(
        e.contains("s.toml:4:8") && e.contains("the most is 256"),
        "{e}"
    );
    // A name made from a long path is cut, on a character boundary.
    let s = parse(&format!(
        "name = \"x\"\nbase_url = \"http://h\"\n[[journey]]\nname = \"j\"\n[[journey.step]]\npath = \"/{}\"\n",
        "é".repeat(40_000)
    ))
    .unwrap();
    let name = &s.journeys[0].steps[0].name;
    assert!(name.len() <= 256 && name.ends_with('…'), "{}", name.len());
}

#[test]
fn counts_and_rates_are_bounded_by_what_one_process_runs() {
    for (load, at, what) in [
        (
            "vus = 4294967295\nduration = \"1s\"",
            "s.toml:5:7",
            "\"vus\" must be an integer from 1 to 100000",
        ),
        (
            "rps = 1\nduration = \"1s\"\nmax_vus = 4294967295",
            "s.toml:7:11",
            "\"max_vus\"",
        ),
        (
            "rps = 1\nduration = \"1s\"\npre_allocated_vus = 100001",
            "s.toml:7:21",
            "from 0 to 100000",
        ),
        (
            "model = \"closed\"\nstages = [{ duration = \"1s\", target_vus = 200000 }]",
            "s.toml:6:43",
            "\"target_vus\"",
        ),
        (
            "rps = 1.797e308\nduration = \"1s\"",
            "s.toml:5:7",
            "at most 10000000 per second",
        ),
        (
            "start_rps = 1e300\nstages = [{ duration = \"1s\", target_rps = 1 }]",
            "s.toml:5:13",
            "\"start_rps\"",
        ),
        ("rps = inf\nduration = \"1s\"", "s.toml:5:7", "≥ 0"),
        ("rps = nan\nduration = \"1s\"", "s.toml:5:7", "≥ 0"),
    ] {
        let e = one_error(&with("", load, "", ""));
        assert!(e.starts_with(at) && e.contains(what), "{load}: {e}");
    }
    // At the bounds: accepted.
    parse(&with("", "vus = 100000\nduration = \"1s\"", "", "")).unwrap();
    parse(&with("", "rps = 10000000\nduration = \"1s\"", "", "")).unwrap();
    // A huge weight is fine: choosing a journey costs no memory per unit of weight.
    parse(&with(
        "",
        "rps = 1\nduration = \"1s\"",
        "weight = 4294967295",
        "",
    ))
    .unwrap();
}

#[test]
fn urls_that_run_would_refuse_are_refused_by_check() {
    for base in [
        "http://[::1",
        "http://127.0.0.1:65536",
        "http://:80",
        "http://",
        "éééé",
    ] {
        let e = one_error(&format!(
            "name = \"x\"\nbase_url = \"{base}\"\n[[journey]]\nname = \"j\"\n[[journey.step]]\npath = \"/\"\n"
        ));
        assert!(e.starts_with("s.toml:2:12: base_url: "), "{base}: {e}");
    }
    for url in [
        "http://",
        "http://h:99999/",
        "http://h:99999/{{vu}}",
        "http://user:PASS@:99999/x?k={{vu}}",
    ] {
        let e = one_error(&format!(
            "name = \"x\"\n[[journey]]\nname = \"j\"\n[[journey.step]]\nname = \"s\"\nurl = \"{url}\"\n"
        ));
        assert!(e.starts_with("s.toml:6:7: url: "), "{url}: {e}");
        assert!(!e.contains("PASS"), "{e}");
    }
}

#[test]
fn optional_is_a_boolean_beside_one_extraction_source() {
    let s = parse(&with(
        "",
        "rps = 1\nduration = \"1s\"",
        "",
        "extract = { id = { json = \"$.id\", optional = true }, t = { header = \"X-T\" } }",
    ))
    .unwrap();
    let e = &s.journeys[0].steps[0].extract;
    assert!(e[0].optional && !e[1].optional);
    let e = one_error(&with(
        "",
        "rps = 1\nduration = \"1s\"",
        "",
        "extract = { id = { json = \"$.id\", optional = \"yes\" } }",
    ));
    assert!(
        e.starts_with("s.toml:12:46:") && e.contains("true or false"),
        "{e}"
    );
    let e = one_error(&with(
        "",
        "rps = 1\nduration = \"1s\"",
        "",
        "extract = { id = { optional = true } }",
    ));
    assert!(e.contains("needs exactly one source"), "{e}");
}

#[test]
fn the_shipped_scenarios_pass_check() {
    for f in ["black-friday.toml", "breaking-point.toml", "smoke.toml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(f);
        load_scenario(&path).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
}

#[test]
fn a_file_that_is_not_utf8_is_reported_at_its_first_bad_byte() {
    let dir = Dir::new(&[("scenario.toml", "")]);
    std::fs::write(dir.path(), b"name = \"x\"\n[[journey]]\nname = \"j\xff\"\n").unwrap();
    let e = load_scenario(&dir.path()).unwrap_err();
    let d = &e.diagnostics[0];
    assert_eq!((d.line, d.col), (3, 10), "{e}");
    assert!(d.message.contains("byte 32 (0xFF)"), "{e}");
}

#[test]
fn a_huge_value_is_not_echoed_whole_in_an_error() {
    let long = "x".repeat(100_000);
    let e = one_error(&with(
        "",
        "rps = 1\nduration = \"1s\"",
        "",
        &format!("headers = {{ A = \"{{{{{long}}}}}\" }}"),
    ));
    assert!(e.len() < 1200 && e.contains("message cut"), "{}", e.len());
}
