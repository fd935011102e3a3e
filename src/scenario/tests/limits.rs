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
