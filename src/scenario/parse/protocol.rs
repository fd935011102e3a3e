//! How requests go on the wire, beyond what a step sends: `keep_alive` per journey, and the
//! protocol options read here so their checks sit together.

use toml::de::DeValue;

use super::fields::Fields;
use super::{Compiler, Value};
use crate::scenario::model::*;

/// The top-level keys read here.
pub(super) const TOP_PROTOCOL_KEYS: &[&str] =
    &["max_redirects", "compression", "trace", "http_version"];

impl<'s> Compiler<'s> {
    pub(super) fn protocol_options(&mut self, top: &Fields<'_, '_>) -> ProtocolOptions {
        let mut o = ProtocolOptions::default();
        if let Some(v) = top.get("max_redirects") {
            o.max_redirects = self.max_redirects(v).unwrap_or(o.max_redirects);
        }
        if let Some(v) = top.get("http_version") {
            o.http_version = match self.string(v, "http_version") {
                Some("1.1") | None => HttpVersion::Http1,
                Some("2") => HttpVersion::Http2,
                Some("auto") => HttpVersion::Auto,
                Some(other) => {
                    self.error(
                        v.span().start,
                        format!(
                            "unknown http_version \"{other}\"; expected \"1.1\" (the default), \
                             \"2\" (ALPN h2 over TLS, h2c prior knowledge over http://) or \
                             \"auto\" (HTTP/2 where TLS offers it)"
                        ),
                    );
                    HttpVersion::Http1
                }
            };
        }
        if let Some(v) = top.get("trace") {
            o.trace = self.boolean(v, "trace").unwrap_or(false);
        }
        if let Some(v) = top.get("compression") {
            o.compression = self.compression(v);
        }
        o
    }

    fn compression(&mut self, v: &Value<'_>) -> Vec<Compression> {
        let DeValue::Array(items) = v.get_ref() else {
            self.type_error(
                v,
                "compression",
                "an array such as [\"gzip\", \"br\", \"zstd\"]",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items.iter() {
            let Some(name) = self.string(item, "compression") else {
                continue;
            };
            match Compression::ALL.iter().find(|c| c.as_str() == name) {
                Some(c) if out.contains(c) => self.error(
                    item.span().start,
                    format!("\"{name}\" is listed twice in compression"),
                ),
                Some(c) => out.push(*c),
                None => self.error(
                    item.span().start,
                    format!(
                        "unknown compression \"{name}\"; expected gzip, deflate, br or zstd{}",
                        crate::scenario::diag::did_you_mean(
                            name,
                            Compression::ALL.map(Compression::as_str)
                        )
                    ),
                ),
            }
        }
        out
    }

    pub(super) fn max_redirects(&mut self, v: &Value<'_>) -> Option<u32> {
        self.int_in(v, "max_redirects", 0, i64::from(MAX_REDIRECTS_LIMIT))
            .map(|n| n as u32)
    }

    pub(super) fn boolean(&mut self, v: &Value<'_>, key: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.type_error(v, key, "true or false");
                None
            }
        }
    }
}
