//! Rendering templates into request bytes, with the escaping each position needs.

use std::fmt::Write as _;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::scenario::{Escape, Expr, Part, Template};

/// Characters left as they are in query and form values (RFC 3986 unreserved).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A journey variable's current value.
#[derive(Debug, Clone, Default)]
pub struct VarValue {
    pub text: String,
    /// Came from a JSON number, boolean, object or array: written bare as a whole JSON value.
    pub json_literal: bool,
    pub set: bool,
}

/// What expressions read while one iteration renders its requests.
pub struct RenderCtx<'a> {
    pub vars: &'a [VarValue],
    /// The row taken for each scenario feeder this iteration (indexed by feeder).
    pub rows: &'a [Option<&'a [String]>],
    pub vu: u64,
    pub iteration: u64,
}

pub fn render(t: &Template, ctx: &RenderCtx<'_>, out: &mut Vec<u8>) {
    for part in &t.parts {
        match part {
            Part::Lit(s) => out.extend_from_slice(s.as_bytes()),
            Part::Expr { expr, escape } => SCRATCH.with_borrow_mut(|scratch| {
                scratch.clear();
                let literal = eval(expr, ctx, scratch);
                write_escaped(scratch, literal, *escape, out);
            }),
        }
    }
}

thread_local! {
    /// An expression's value before escaping, reused: a request renders several, and a fresh
    /// string for each was an allocation per expression.
    static SCRATCH: std::cell::RefCell<String> = std::cell::RefCell::new(String::with_capacity(256));
}

pub fn render_string(t: &Template, ctx: &RenderCtx<'_>) -> String {
    if let Some(lit) = t.as_literal() {
        return lit.to_string();
    }
    let mut out = Vec::new();
    render(t, ctx, &mut out);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Writes an expression's value into `out`; returns whether it is a bare JSON literal.
fn eval(expr: &Expr, ctx: &RenderCtx<'_>, out: &mut String) -> bool {
    match expr {
        Expr::Var(i) => match ctx.vars.get(*i) {
            Some(v) if v.set => {
                out.push_str(&v.text);
                v.json_literal
            }
            _ => false,
        },
        Expr::Feed { feeder, column } => {
            if let Some(Some(row)) = ctx.rows.get(*feeder) {
                if let Some(cell) = row.get(*column) {
                    out.push_str(cell);
                }
            }
            false
        }
        Expr::Uuid => {
            let v = fastrand::u128(..);
            // Version 4, RFC 4122 variant.
            let v = (v & !(0xF << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for i in 0..32 {
                if matches!(i, 8 | 12 | 16 | 20) {
                    out.push('-');
                }
                out.push(HEX[(v >> (124 - 4 * i)) as usize & 0xF] as char);
            }
            false
        }
        Expr::RandomInt { lo, hi } => {
            out.push_str(itoa::Buffer::new().format(fastrand::i64(*lo..=*hi)));
            true
        }
        Expr::NowMs => {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            out.push_str(itoa::Buffer::new().format(ms));
            true
        }
        Expr::Vu => {
            out.push_str(itoa::Buffer::new().format(ctx.vu));
            true
        }
        Expr::Iteration => {
            out.push_str(itoa::Buffer::new().format(ctx.iteration));
            true
        }
    }
}

fn write_escaped(value: &str, json_literal: bool, escape: Escape, out: &mut Vec<u8>) {
    match escape {
        Escape::None => out.extend_from_slice(value.as_bytes()),
        Escape::Url => {
            for chunk in utf8_percent_encode(value, QUERY_VALUE) {
                out.extend_from_slice(chunk.as_bytes());
            }
        }
        Escape::PathSegment => crate::url::push_encoded_component(value.as_bytes(), out),
        Escape::Target => crate::url::push_encoded_target(value.as_bytes(), out),
        Escape::JsonString => json_escape_into(value, out),
        Escape::JsonValue => {
            if json_literal {
                out.extend_from_slice(value.as_bytes());
            } else {
                out.push(b'"');
                json_escape_into(value, out);
                out.push(b'"');
            }
        }
    }
}

pub fn json_escape_into(value: &str, out: &mut Vec<u8>) {
    for &b in value.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                let _ = write!(VecWriter(out), "\\u{b:04x}");
            }
            _ => out.push(b),
        }
    }
}

/// Percent-encodes a query or form key or value.
pub fn url_encode_into(value: &str, out: &mut Vec<u8>) {
    for chunk in utf8_percent_encode(value, QUERY_VALUE) {
        out.extend_from_slice(chunk.as_bytes());
    }
}

struct VecWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(parts: Vec<Part>) -> Template {
        Template { parts }
    }

    #[test]
    fn escapes_by_position() {
        let vars = vec![
            VarValue {
                text: "a \"b\"&c".into(),
                json_literal: false,
                set: true,
            },
            VarValue {
                text: "42".into(),
                json_literal: true,
                set: true,
            },
        ];
        let rows: Vec<Option<&[String]>> = vec![];
        let ctx = RenderCtx {
            vars: &vars,
            rows: &rows,
            vu: 3,
            iteration: 9,
        };
        let body = t(vec![
            Part::Lit("{\"s\":\"x".into()),
            Part::Expr {
                expr: Expr::Var(0),
                escape: Escape::JsonString,
            },
            Part::Lit("\",\"n\":".into()),
            Part::Expr {
                expr: Expr::Var(1),
                escape: Escape::JsonValue,
            },
            Part::Lit(",\"q\":".into()),
            Part::Expr {
                expr: Expr::Var(0),
                escape: Escape::JsonValue,
            },
            Part::Lit("}".into()),
        ]);
        let s = render_string(&body, &ctx);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["s"], "xa \"b\"&c");
        assert_eq!(v["n"], 42);
        assert_eq!(v["q"], "a \"b\"&c");
        let q = t(vec![Part::Expr {
            expr: Expr::Var(0),
            escape: Escape::Url,
        }]);
        assert_eq!(render_string(&q, &ctx), "a%20%22b%22%26c");
        let u = t(vec![Part::Expr {
            expr: Expr::Uuid,
            escape: Escape::None,
        }]);
        let id = render_string(&u, &ctx);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        let r = t(vec![Part::Expr {
            expr: Expr::RandomInt { lo: 5, hi: 7 },
            escape: Escape::None,
        }]);
        for _ in 0..50 {
            let n: i64 = render_string(&r, &ctx).parse().unwrap();
            assert!((5..=7).contains(&n));
        }
    }
}
