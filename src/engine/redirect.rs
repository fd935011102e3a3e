//! Following a redirect inside a step: where the `Location` points (resolved against the
//! request it answers, RFC 3986 §5), and the request that goes there, rewritten from the one
//! just sent.
//!
//! The rules are the browsers' and curl's (RFC 9110 §15.4): 303 turns any method but HEAD into
//! a GET without a body, 301 and 302 turn a POST into a GET, 307 and 308 keep the method and
//! the body. A redirect to another origin (scheme, host or port) drops `Authorization`,
//! `Proxy-Authorization` and a `Cookie` header the step wrote itself; the jar's cookies are
//! chosen again for the new origin and path by their own scope. Only a step that is
//! redirected pays for any of this: a request that is not answered by a redirect is never
//! copied.

use std::sync::Arc;
use std::time::SystemTime;

use crate::http::{CookieJar, Method};
use crate::url::{push_encoded_target, split_url, Origin};

/// Why a redirect was not followed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RedirectError {
    #[error("more than {max} redirects (max_redirects); the last one answered HTTP {status}")]
    TooMany { max: u32, status: u16 },
    /// The location is not quoted whole: it may carry a token in its query.
    #[error("HTTP {status} with a Location that is not an http(s) URL or path: {why}")]
    BadLocation { status: u16, why: String },
}

/// Statuses that send the client elsewhere with a `Location`.
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// The request that follows a redirect, written into `out`.
pub struct Next {
    pub origin: Arc<Origin>,
    /// The path (without query) in `out`, for cookie scope.
    pub path: (usize, usize),
    pub method: Method,
    /// Where the jar's `Cookie` header sits in `out`, if it wrote one.
    pub jar_cookie: (usize, usize),
}

/// The request a redirect answered.
pub struct Answered<'a> {
    pub request: &'a [u8],
    pub origin: &'a Origin,
    /// Its path (without query), and its jar-written `Cookie` header, in `request`.
    pub path: (usize, usize),
    pub jar_cookie: (usize, usize),
}

/// Writes into `out` the request that follows `status` with `location`, from the request that
/// got it.
pub fn next_request(
    answered: Answered<'_>,
    status: u16,
    location: &str,
    cookies: &mut CookieJar,
    out: &mut Vec<u8>,
) -> Result<Next, RedirectError> {
    let Answered {
        request: prev,
        origin,
        path: prev_path,
        jar_cookie: prev_jar_cookie,
    } = answered;
    let bad = |why: &str| RedirectError::BadLocation {
        status,
        why: why.to_string(),
    };
    let (next_origin, target) =
        resolve(origin, &prev[prev_path.0..prev_path.1], location).map_err(|e| bad(&e))?;
    let method_end = memchr::memchr(b' ', prev).unwrap_or(0);
    let method = &prev[..method_end];
    let head_end = memchr::memmem::find(prev, b"\r\n\r\n").map_or(prev.len(), |i| i + 2);
    let to_get =
        (status == 303 && method != b"HEAD") || (matches!(status, 301 | 302) && method == b"POST");
    let same_origin = next_origin == *origin;

    out.clear();
    out.extend_from_slice(if to_get { b"GET" } else { method });
    out.push(b' ');
    let path_start = out.len();
    out.extend_from_slice(&target);
    let path_end = memchr::memchr(b'?', &out[path_start..]).map_or(out.len(), |i| path_start + i);
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(next_origin.host_header().as_bytes());
    out.extend_from_slice(b"\r\n");
    let first_line_end = memchr::memmem::find(prev, b"\r\n").map_or(head_end, |i| i + 2);
    let mut at = first_line_end;
    while at < head_end {
        let end =
            memchr::memmem::find(&prev[at..head_end], b"\r\n").map_or(head_end, |i| at + i + 2);
        let line = &prev[at..end];
        let from_jar = at == prev_jar_cookie.0 && end == prev_jar_cookie.1;
        let name = line
            .split(|&b| b == b':')
            .next()
            .unwrap_or(line)
            .trim_ascii();
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        let keep = !from_jar
            && !is("host")
            && !(to_get && (is("content-length") || is("content-type") || is("transfer-encoding")))
            && (same_origin || !(is("authorization") || is("proxy-authorization") || is("cookie")));
        if keep {
            out.extend_from_slice(line);
        }
        at = end;
    }
    let jar_start = out.len();
    if !cookies.is_empty() {
        let path = out[path_start..path_end].to_vec();
        cookies.write_header(&next_origin, &path, SystemTime::now(), out);
    }
    let jar_cookie = (jar_start, out.len());
    out.extend_from_slice(b"\r\n");
    if !to_get {
        out.extend_from_slice(&prev[(head_end + 2).min(prev.len())..]);
    }
    Ok(Next {
        origin: Arc::new(next_origin),
        path: (path_start, path_end),
        method: Method::of(&out[..memchr::memchr(b' ', out).unwrap_or(0)]),
        jar_cookie,
    })
}

/// Resolves `location` against the request to `origin` with path `base_path` (RFC 3986 §5.2):
/// the new origin, and the target percent-encoded where needed, without its fragment.
fn resolve(origin: &Origin, base_path: &[u8], location: &str) -> Result<(Origin, Vec<u8>), String> {
    let loc = location.trim();
    if loc.is_empty() {
        return Err("empty".into());
    }
    let scheme_end = loc.find([':', '/', '?', '#']);
    let has_scheme = scheme_end.is_some_and(|i| i > 0 && loc.as_bytes()[i] == b':');
    let mut target = Vec::with_capacity(loc.len() + base_path.len());
    if has_scheme || loc.starts_with("//") {
        let absolute = if has_scheme {
            loc.to_string()
        } else {
            format!("{}:{loc}", if origin.tls { "https" } else { "http" })
        };
        let (o, t) = split_url(&absolute).map_err(|e| e.to_string())?;
        push_encoded_target(t.as_bytes(), &mut target);
        return Ok((o, remove_dot_segments(&target)));
    }
    if loc.starts_with('/') {
        push_encoded_target(loc.as_bytes(), &mut target);
    } else if loc.starts_with('?') || loc.starts_with('#') {
        target.extend_from_slice(base_path);
        push_encoded_target(loc.as_bytes(), &mut target);
    } else {
        let dir = base_path
            .iter()
            .rposition(|&b| b == b'/')
            .map_or(&b"/"[..], |i| &base_path[..=i]);
        target.extend_from_slice(dir);
        push_encoded_target(loc.as_bytes(), &mut target);
    }
    if target.is_empty() {
        target.push(b'/');
    }
    Ok((origin.clone(), remove_dot_segments(&target)))
}

/// RFC 3986 §5.2.4 on the path of a target; the query is kept as it is.
fn remove_dot_segments(target: &[u8]) -> Vec<u8> {
    let q = memchr::memchr(b'?', target).unwrap_or(target.len());
    let (path, query) = target.split_at(q);
    let mut segs: Vec<&[u8]> = Vec::new();
    let parts: Vec<&[u8]> = path.split(|&b| b == b'/').skip(1).collect();
    let last = parts.len().saturating_sub(1);
    for (i, seg) in parts.iter().enumerate() {
        match *seg {
            b"." | b".." => {
                if *seg == b".." {
                    segs.pop();
                }
                if i == last {
                    segs.push(b"");
                }
            }
            s => segs.push(s),
        }
    }
    let mut out = Vec::with_capacity(target.len());
    for s in &segs {
        out.push(b'/');
        out.extend_from_slice(s);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(query);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(tls: bool, host: &str, port: u16) -> Origin {
        Origin {
            tls,
            host: host.into(),
            port,
        }
    }

    fn resolved(loc: &str) -> (Origin, String) {
        let (o, t) = resolve(&origin(false, "a.test", 80), b"/shop/cart/view", loc).unwrap();
        (o, String::from_utf8(t).unwrap())
    }

    #[test]
    fn locations_resolve_against_the_request() {
        let a = origin(false, "a.test", 80);
        assert_eq!(
            resolved("/login?next=/x"),
            (a.clone(), "/login?next=/x".into())
        );
        assert_eq!(resolved("done"), (a.clone(), "/shop/cart/done".into()));
        assert_eq!(resolved("../pay"), (a.clone(), "/shop/pay".into()));
        assert_eq!(resolved("./"), (a.clone(), "/shop/cart/".into()));
        assert_eq!(resolved("../../../../x"), (a.clone(), "/x".into()));
        assert_eq!(
            resolved("?page=2"),
            (a.clone(), "/shop/cart/view?page=2".into())
        );
        assert_eq!(resolved("/a b/é#frag"), (a.clone(), "/a%20b/%C3%A9".into()));
        assert_eq!(
            resolved("https://B.test:8443/x/../y?q"),
            (origin(true, "b.test", 8443), "/y?q".into())
        );
        assert_eq!(
            resolved("//cdn.test/img"),
            (origin(false, "cdn.test", 80), "/img".into())
        );
        assert_eq!(resolved("HTTP://a.test"), (a, "/".into()));
        assert!(resolve(&origin(false, "a", 80), b"/", "ftp://x/").is_err());
        assert!(resolve(&origin(false, "a", 80), b"/", "mailto:x@y").is_err());
        assert!(resolve(&origin(false, "a", 80), b"/", "  ").is_err());
    }
}
