//! JSON paths for extraction and checks, and the forms of `status`.

use super::*;
use crate::scenario::parse::checks::json_pointer;

#[test]
fn json_paths_become_pointers() {
    let ok = [
        ("$", ""),
        ("", ""),
        ("$.token", "/token"),
        ("$.a.b[0]", "/a/b/0"),
        ("$['a']", "/a"),
        ("$[\"a.b\"].c", "/a.b/c"),
        ("$['x/y~z'][12]", "/x~1y~0z/12"),
        ("$.items[0]['sku']", "/items/0/sku"),
        ("$['it\\'s']", "/it's"),
        ("/order_id", "/order_id"),
        ("/a~1b/~0", "/a~1b/~0"),
    ];
    for (path, pointer) in ok {
        assert_eq!(json_pointer(path).as_deref(), Ok(pointer), "{path}");
    }
    for bad in ["a.b", "$..a", "$.*", "$[x]", "$['a'", "$[0", "/a~2", "$a"] {
        assert!(json_pointer(bad).is_err(), "{bad}");
    }
}

#[test]
fn status_forms() {
    let statuses = |s: &str| -> Vec<Check> {
        let scenario = parse(&format!(
            "name = \"x\"\nbase_url = \"http://h\"\n[[journey]]\nname = \"j\"\n[[journey.step]]\npath = \"/\"\ncheck = {{ status = {s} }}\n"
        ))
        .unwrap();
        scenario.journeys[0].steps[0].checks.clone()
    };
    let one = |s: &str| match statuses(s).as_slice() {
        [Check::Status(m)] => m.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(one("204"), StatusMatch::Exact(204));
    assert_eq!(one("\"204\""), StatusMatch::Exact(204));
    assert_eq!(one("\"4xx\""), StatusMatch::Range(400, 499));
    assert_eq!(one("\"200..204\""), StatusMatch::Range(200, 204));
    assert_eq!(one("[200, 302]"), StatusMatch::List(vec![200, 302]));
    assert!(one("\"2xx\"").matches(250));
}
