//! Reading one value out of a JSON response by RFC 6901 pointer, without building the whole
//! document: the parser walks the body, skips (and still validates) everything off the
//! pointer's path, and builds only the value the pointer names. A response answers the same
//! as `serde_json::from_slice::<Value>(body)?.pointer(p)` would — invalid JSON or trailing
//! bytes find nothing, and of duplicate keys the last one counts — but the parts of the body
//! nobody asked for cost no allocation.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

/// The value at `pointer` (`""` is the whole document, otherwise it starts with `/`), or
/// `None` when the body is not JSON or has nothing there.
pub fn lookup(body: &[u8], pointer: &str) -> Option<Value> {
    let rest = match pointer {
        "" => None,
        p => Some(p.strip_prefix('/')?),
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let found = Seek { rest }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    found
}

/// Looks for the pointer's remaining segments (`None`: this value is the one).
struct Seek<'p> {
    rest: Option<&'p str>,
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match self.rest {
            None => Value::deserialize(d).map(Some),
            Some(rest) => {
                let (segment, rest) = match rest.split_once('/') {
                    Some((s, r)) => (s, Some(r)),
                    None => (rest, None),
                };
                d.deserialize_any(Step { segment, rest })
            }
        }
    }
}

/// One segment of the pointer, applied to whatever value comes.
struct Step<'p> {
    segment: &'p str,
    rest: Option<&'p str>,
}

impl<'de> Visitor<'de> for Step<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(hit) = map.next_key_seed(KeyIs(self.segment))? {
            if hit {
                // A later duplicate replaces an earlier one, as in a parsed object.
                found = map.next_value_seed(Seek { rest: self.rest })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let want = index(self.segment);
        let mut found = None;
        let mut i = 0usize;
        loop {
            if Some(i) == want {
                match seq.next_element_seed(Seek { rest: self.rest })? {
                    Some(v) => found = v,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i += 1;
        }
        Ok(found)
    }

    // A scalar has nothing under it.
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// An array index as RFC 6901 writes it: digits, no leading zero (as `Value::pointer`).
fn index(segment: &str) -> Option<usize> {
    if segment.is_empty()
        || !segment.bytes().all(|b| b.is_ascii_digit())
        || (segment.len() > 1 && segment.starts_with('0'))
    {
        return None;
    }
    segment.parse().ok()
}

/// Whether an object's key is the pointer's segment (`~1` is `/`, `~0` is `~`), compared
/// without copying the key when it has no escapes.
struct KeyIs<'p>(&'p str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(segment_is(self.0, key))
    }
}

fn segment_is(segment: &str, key: &str) -> bool {
    if !segment.contains('~') {
        return segment == key;
    }
    let mut want = segment.bytes();
    let mut got = key.bytes();
    loop {
        let expected = match want.next() {
            None => return got.next().is_none(),
            Some(b'~') => match want.next() {
                Some(b'0') => b'~',
                Some(b'1') => b'/',
                // Not a valid escape: `Value::pointer` finds nothing either.
                _ => return false,
            },
            Some(b) => b,
        };
        if got.next() != Some(expected) {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same answers as parsing the whole document and asking `Value::pointer`, on
    /// documents and pointers chosen to differ: escapes, duplicates, indices with leading
    /// zeros, scalars in the way, invalid and trailing bytes.
    #[test]
    fn answers_as_a_parsed_document_does() {
        let docs = [
            r#"{"token":"t0k3n","id":42,"items":[{"sku":"a-1","price":9.5}]}"#,
            r#"{"a/b":{"m~n":[1,[2,{"x":null}],true]},"a":{"b":"no"},"":{"":"empty"}}"#,
            r#"{"k":1,"k":{"deep":"last wins"}}"#,
            r#"[10,{"0":"zero"},[],{}]"#,
            r#""just a string""#,
            r#"{"big":123456789012345678901234567890,"neg":-1.5e-3,"u":"\u00e9\n"}"#,
            r#"{"a":1} trailing"#,
            r#"{"a":[1,2,}"#,
            "",
            "not json",
        ];
        let pointers = [
            "",
            "/",
            "/token",
            "/id",
            "/items",
            "/items/0",
            "/items/0/sku",
            "/items/1",
            "/items/00",
            "/items/-",
            "/items/0/sku/0",
            "/a~1b",
            "/a~1b/m~0n/1/1/x",
            "/a~1b/m~0n/01",
            "/a/b",
            "/a~2b",
            "//",
            "/k",
            "/k/deep",
            "/0",
            "/1/0",
            "/2/0",
            "/big",
            "/neg",
            "/u",
            "token",
            "/a",
        ];
        for doc in docs {
            let parsed: Option<Value> = serde_json::from_str(doc).ok();
            for p in pointers {
                let want = parsed.as_ref().and_then(|v| v.pointer(p)).cloned();
                assert_eq!(lookup(doc.as_bytes(), p), want, "{doc} {p}");
            }
        }
    }
}
