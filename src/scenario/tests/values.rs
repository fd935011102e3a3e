//! Templates in strings, tables and JSON bodies: where their errors point, env values,
//! integers written in other notations.

use super::*;

#[test]
fn undefined_variable_lists_what_is_defined_and_suggests() {
    let dir = Dir::new(&[("users.csv", USERS_CSV)]);
    let src = r#"name = "x"
base_url = "http://h"
[[feeder]]
name = "user"
file = "users.csv"
[[journey]]
name = "j"
  [[journey.step]]
  path = "/login"
  extract = { token = { json = "$.token" } }
  [[journey.step]]
  path = "/a/{{tokn}}/{{later}}"
  [[journey.step]]
  name = "late"
  path = "/b"
  extract = { later = { header = "x" } }
"#;
    let e = parse_in(&dir, src).unwrap_err();
    let got: Vec<String> = e
        .diagnostics
        .iter()
        .map(|d| format!("{}:{} {}", d.line, d.col, d.message))
        .collect();
    assert_eq!(
        got,
        vec![
            "12:14 undefined variable \"tokn\": no earlier step extracts it and no feeder column has that name; defined here: token, user.email, user.password (did you mean \"token\"?)".to_string(),
            "12:23 undefined variable \"later\": it is extracted by step \"late\", which has not run yet at this point; defined here: token, user.email, user.password".to_string(),
        ]
    );
}

#[test]
fn positions_fall_back_to_the_string_start_when_it_has_escapes() {
    let e = one_error(
        "name = \"x\"\nbase_url = \"http://h\"\n[[journey]]\nname = \"j\"\n[[journey.step]]\npath = \"/\\t{{nope}}\"\n",
    );
    assert!(
        e.starts_with("s.toml:6:8: undefined variable \"nope\""),
        "{e}"
    );
    // Literal strings map exactly; columns count characters, not bytes.
    let e = one_error(
        "name = \"x\"\nbase_url = \"http://h\"\n[[journey]]\nname = \"j\"\n[[journey.step]]\npath = '/é/{{nope}}'\n",
    );
    assert!(
        e.starts_with("s.toml:6:12: undefined variable \"nope\""),
        "{e}"
    );
}

#[test]
fn template_errors() {
    let base =
        "name = \"x\"\nbase_url = \"http://h\"\n[[journey]]\nname = \"j\"\n[[journey.step]]\n";
    let cases = [
        ("path = \"/{{uuid\"", "6:10: unclosed \"{{\" in template; close the expression with \"}}\""),
        ("path = \"/{{env.NOPE}}\"", "6:10: environment variable \"NOPE\" is not set (used as {{env.NOPE}})"),
        ("path = \"/{{random_int 5 1}}\"", "6:10: random_int 5 1: the low bound is above the high one; write {{random_int 1 5}}"),
        ("path = \"/{{random_int a}}\"", "6:10: random_int takes two integers, low and high (both included), e.g. {{random_int 1 100}}"),
        ("path = \"/{{uuid 3}}\"", "6:10: \"uuid\" takes no arguments, found \"3\""),
        ("path = \"/{{ }}\"", "6:10: empty expression \"{{}}\"; write e.g. {{uuid}} or {{user.email}}"),
        ("path = \"/{{usr.email}}\"", "6:10: unknown feeder \"usr\" in {{usr.email}}; no [[feeder]] is declared"),
    ];
    for (step, want) in cases {
        let e = one_error(&format!("{base}{step}\n"));
        assert_eq!(e, format!("s.toml:{want}"));
    }
}

#[test]
fn env_values_are_literals_escaped_for_their_place() {
    let s = parse(
        r#"name = "x"
base_url = "{{env.HOST}}"
[[journey]]
name = "j"
  [[journey.step]]
  path = "/{{env.COUNT}}"
  query = { k = "{{env.API_KEY}}" }
  json = { key = "{{env.API_KEY}}", n = "{{env.COUNT}}", s = "a{{env.API_KEY}}" }
"#,
    )
    .unwrap();
    assert_eq!(s.base_url, BaseUrl::Url("http://10.0.0.1:9000".into()));
    let step = &s.journeys[0].steps[0];
    assert_eq!(step.url, Template::literal("/7"));
    assert_eq!(step.query[0].1, Template::literal("k%221"));
    let Body::Json(j) = &step.body else { panic!() };
    assert_eq!(j, &Template::literal(r#"{"key":"k\"1","n":7,"s":"ak\"1"}"#));
}

#[test]
fn integers_in_other_notations() {
    let s = parse("name = \"x\"\nbase_url = \"http://h\"\n[[journey]]\nname = \"j\"\nweight = 0x10\n[[journey.step]]\npath = \"/\"\nquery = { n = -1_000, h = 0xff }\njson = { n = -5, big = 1_000 }\n").unwrap();
    let j = &s.journeys[0];
    assert_eq!(j.weight, 16);
    assert_eq!(j.steps[0].query[0].1, Template::literal("-1000"));
    assert_eq!(j.steps[0].query[1].1, Template::literal("255"));
    let Body::Json(b) = &j.steps[0].body else {
        panic!()
    };
    assert_eq!(b, &Template::literal(r#"{"n":-5,"big":1000}"#));
}

/// A step's path or url: literal text is encoded as a browser sends a typed URL, expressions
/// by where they fall, and what cannot be sent as written is refused at its position.
#[test]
fn paths_and_urls_are_encoded_for_their_place() {
    let src = r#"name = "x"
base_url = "http://h"
[[journey]]
name = "j"
  [[journey.step]]
  name = "literal"
  path = "/a b/é?k=v w"
  extract = { id = { header = "x" } }
  [[journey.step]]
  name = "parts"
  path = "/items/{{id}}/x?q={{id}}&env={{env.COUNT}}"
  [[journey.step]]
  name = "link"
  path = "{{id}}?page=2"
  [[journey.step]]
  name = "absolute"
  url = "https://{{id}}:8443/a b/{{id}}"
"#;
    let s = parse(src).unwrap();
    let steps = &s.journeys[0].steps;
    assert_eq!(
        steps[0].url.as_literal(),
        Some("/a%20b/%C3%A9?k=v%20w"),
        "{:?}",
        steps[0].url
    );
    let escapes = |i: usize| -> Vec<Escape> {
        steps[i]
            .url
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Expr { escape, .. } => Some(*escape),
                Part::Lit(_) => None,
            })
            .collect()
    };
    assert_eq!(escapes(1), vec![Escape::PathSegment, Escape::Url]);
    assert_eq!(steps[1].url.parts.last(), Some(&Part::Lit("&env=7".into())));
    assert_eq!(escapes(2), vec![Escape::Target]);
    assert_eq!(escapes(3), vec![Escape::None, Escape::PathSegment]);
    assert!(
        matches!(&steps[3].url.parts[2], Part::Lit(l) if l == ":8443/a%20b/"),
        "{:?}",
        steps[3].url.parts
    );
}

#[test]
fn targets_that_cannot_be_sent_as_written_are_refused_where_they_go_wrong() {
    let step =
        "name = \"x\"\nbase_url = \"http://h\"\n[[journey]]\nname = \"j\"\n[[journey.step]]\n";
    let e = one_error(&format!("{step}path = \"/a#frag\"\n"));
    assert!(
        e.starts_with("s.toml:6:11: a \"#\" starts a fragment, which is never sent"),
        "{e}"
    );
    let e = one_error(&format!("{step}path = \"/{{{{uuid}}}}/100%\"\n"));
    assert!(
        e.starts_with("s.toml:6:22: \"%\" must start a percent-escape"),
        "{e}"
    );
    let e = one_error(&format!("{step}url = \"http://a b/x\"\n"));
    assert_eq!(
        e,
        "s.toml:6:7: url: URL host has characters a host name cannot have"
    );
}

#[test]
fn header_values_with_line_breaks_are_refused() {
    let e = one_error(
        "name = \"x\"\nbase_url = \"http://h\"\n[headers]\nX-A = \"a\\r\\nX-Injected: yes\"\n[[journey]]\nname = \"j\"\n[[journey.step]]\npath = \"/\"\n",
    );
    assert!(
        e.starts_with("s.toml:4:7: header \"X-A\" has a CR, LF or NUL in its value"),
        "{e}"
    );
}
