//! Templates: any text as a raw body, a header value and a step path, compiled, then rendered
//! with variables holding any bytes. Never a panic; the path always renders to a target
//! without a space, CR or LF.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use peakload::engine::render::{render, RenderCtx, VarValue};
use peakload::scenario::Body;

/// A TOML basic string holding `s` exactly.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut mid = text.len() / 2;
    while !text.is_char_boundary(mid) {
        mid -= 1;
    }
    let (template, value) = text.split_at(mid);
    let src = format!(
        "name = \"t\"\nbase_url = \"http://127.0.0.1:9\"\n[[journey]]\nname = \"j\"\n\
         [[journey.step]]\nname = \"a\"\npath = \"/a\"\nextract = {{ v = {{ json = \"$.v\" }} }}\n\
         [[journey.step]]\nname = \"b\"\npath = {path}\nheaders = {{ X = {t} }}\nbody = {t}\n",
        path = toml_string(&format!("/{template}")),
        t = toml_string(template),
    );
    let Ok(s) =
        peakload::scenario::parse_scenario(&src, Path::new("/nonexistent/t.toml"), &|_| None)
    else {
        return;
    };
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
        "{out:?}"
    );
    for (_, h) in &step.headers {
        out.clear();
        render(h, &ctx, &mut out);
    }
    if let Body::Raw { text, .. } = &step.body {
        out.clear();
        render(text, &ctx, &mut out);
    }
});
