//! URLs as peakload takes them (`base_url`, `--target`, step URLs, scrape endpoints): split
//! into an [`Origin`] and a request target, percent-encoded where a request target cannot carry
//! a character as it is, and redacted before they reach results, reports or logs (credentials
//! and query strings never do).
//!
//! Encoding follows what browsers do with a typed URL: a character that may not appear in a
//! request target (space, non-ASCII, `"`, `<`, `{`, controls, …) is sent as the `%XX` of its
//! UTF-8 bytes, and anything from `#` on is a fragment, which is never sent. Text that stands
//! for one path segment or one query value (a template expression) is encoded as data: every
//! character but the RFC 3986 unreserved ones, so a `/`, `?`, `&` or `#` in it stays inside it.

/// Scheme, host and port of a URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// The `Host` header value: the port is left out when it is the scheme's default.
    pub fn host_header(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("URL must start with http:// or https://")]
    Scheme,
    #[error("URL has no host")]
    NoHost,
    #[error("URL has an invalid port")]
    Port,
    #[error("URL host has characters a host name cannot have")]
    Host,
}

/// Splits an absolute URL into its origin and the request target (path and query).
pub fn split_url(url: &str) -> Result<(Origin, &str), UrlError> {
    let (tls, rest) = if let Some(r) = strip_prefix_ci(url, "http://") {
        (false, r)
    } else if let Some(r) = strip_prefix_ci(url, "https://") {
        (true, r)
    } else {
        return Err(UrlError::Scheme);
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let mut target = &rest[end..];
    if let Some(hash) = target.find('#') {
        target = &target[..hash];
    }
    if target.is_empty() {
        target = "/";
    }
    // Credentials in the URL are not supported as such; drop them from the authority.
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let close = v6.find(']').ok_or(UrlError::NoHost)?;
        let host = &v6[..close];
        let after = &v6[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(UrlError::Port),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::NoHost);
    }
    if !host.bytes().all(is_host_byte) {
        return Err(UrlError::Host);
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| UrlError::Port)?,
        None if tls => 443,
        None => 80,
    };
    Ok((
        Origin {
            tls,
            host: host.to_ascii_lowercase(),
            port,
        },
        target,
    ))
}

/// RFC 3986 reg-name and IP-literal characters: nothing that could end the `Host` header or
/// the authority early (no space, CR, LF, `/`, `@`, …).
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:".contains(&b)
}

/// RFC 3986 unreserved characters: the only ones a path segment or query value taken from data
/// keeps as they are.
pub fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Characters a request target carries as they are (RFC 3986 pchar, `/`, `?` and `%`; `[` and
/// `]` for IPv6 hosts in absolute URLs). Everything else is percent-encoded.
fn is_target_byte(b: u8) -> bool {
    is_unreserved(b) || b"!$&'()*+,;=:@/?%[]".contains(&b)
}

fn push_pct(b: u8, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
}

/// Appends text that is one path segment or one query value: every byte but the unreserved
/// ones is percent-encoded (UTF-8), so `/`, `?`, `&`, `=`, `#` and `%` stay data.
pub fn push_encoded_component(value: &[u8], out: &mut Vec<u8>) {
    let mut start = 0;
    for (i, &b) in value.iter().enumerate() {
        if !is_unreserved(b) {
            out.extend_from_slice(&value[start..i]);
            push_pct(b, out);
            start = i + 1;
        }
    }
    out.extend_from_slice(&value[start..]);
}

/// Appends a whole path, path and query, or URL taken from data (a variable holding a link):
/// characters a request target cannot carry are percent-encoded, `%` is kept (the text is
/// taken as already encoded where it is), and a `#fragment` is dropped.
pub fn push_encoded_target(value: &[u8], out: &mut Vec<u8>) {
    let value = match memchr::memchr(b'#', value) {
        Some(i) => &value[..i],
        None => value,
    };
    let mut start = 0;
    for (i, &b) in value.iter().enumerate() {
        if !is_target_byte(b) {
            out.extend_from_slice(&value[start..i]);
            push_pct(b, out);
            start = i + 1;
        }
    }
    out.extend_from_slice(&value[start..]);
}

/// A literal path (or path and query) from a scenario file, made sendable: characters a
/// request target cannot carry are percent-encoded as UTF-8, like a browser does with a typed
/// URL. Refused, with the byte offset and why: a `#` (a fragment is never sent, so it is
/// almost certainly a mistake; `%23` is a literal `#`) and a `%` not followed by two hex digits
/// (ambiguous; `%25` is a literal `%`).
pub fn encode_literal_target(text: &str) -> Result<String, (usize, String)> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'#' => {
                return Err((
                    i,
                    "a \"#\" starts a fragment, which is never sent to the server; remove it, \
                     or write %23 for a literal #"
                        .into(),
                ))
            }
            b'%' if !(bytes.len() > i + 2
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit()) =>
            {
                return Err((
                    i,
                    "\"%\" must start a percent-escape such as %20; write %25 for a literal %"
                        .into(),
                ))
            }
            b if is_target_byte(b) => out.push(b),
            b => push_pct(b, &mut out),
        }
    }
    Ok(String::from_utf8(out).expect("percent-encoding leaves ASCII"))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    // `get` is `None` when the prefix's length falls inside a multi-byte character.
    match s.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => Some(&s[prefix.len()..]),
        _ => None,
    }
}

/// Scheme, host, port and path prefix: credentials and query strings never reach results or
/// logs.
pub fn redact_url(url: &str) -> String {
    match split_url(url) {
        Ok((o, target)) => {
            let path = target.split('?').next().unwrap_or("").trim_end_matches('/');
            format!(
                "{}://{}{path}",
                if o.tls { "https" } else { "http" },
                o.host_header()
            )
        }
        Err(_) => "(invalid URL)".into(),
    }
}

/// A step's path or URL as shown to people (results, reports, `check`, names made from it):
/// the user name and password of an absolute URL are dropped, and every query value becomes
/// `…` (the names stay, to tell the steps apart; values may be keys or tokens).
pub fn redact_path(path: &str) -> String {
    let (before, query) = match path.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (path, None),
    };
    let mut out = match before.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find('/').unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(end);
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{tail}")
        }
        None => before.to_string(),
    };
    if let Some(q) = query {
        out.push('?');
        let params: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((name, _)) => format!("{name}=…"),
                None if p.is_empty() => String::new(),
                None => "…".to_string(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

/// Error messages never carry URLs with credentials or queries.
pub fn redact_message(m: &str) -> String {
    m.split(' ')
        .map(|w| {
            if w.contains("://") {
                redact_url(w.trim_matches(|c| c == '"' || c == ':'))
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        let (o, t) = split_url("http://127.0.0.1:8080/api/x?y=1#frag").unwrap();
        assert_eq!(
            o,
            Origin {
                tls: false,
                host: "127.0.0.1".into(),
                port: 8080
            }
        );
        assert_eq!(t, "/api/x?y=1");
        let (o, t) = split_url("HTTPS://Example.com").unwrap();
        assert!(o.tls);
        assert_eq!(o.port, 443);
        assert_eq!(o.host_header(), "example.com");
        assert_eq!(t, "/");
        let (o, _) = split_url("http://[::1]:9000/").unwrap();
        assert_eq!(o.host, "::1");
        assert_eq!(o.host_header(), "[::1]:9000");
        assert_eq!(split_url("ftp://x"), Err(UrlError::Scheme));
        assert_eq!(split_url("http://x:99999/"), Err(UrlError::Port));
        assert_eq!(split_url("http:///x"), Err(UrlError::NoHost));
        assert_eq!(
            split_url("http://a\r\nX-Injected: yes/"),
            Err(UrlError::Host)
        );
        assert_eq!(split_url("http://a b/"), Err(UrlError::Host));
    }

    #[test]
    fn shown_paths_carry_no_credentials_and_no_query_values() {
        assert_eq!(
            redact_path("http://user:PASS@host:8080/a/b?api_key=SECRET&page=2"),
            "http://host:8080/a/b?api_key=…&page=…"
        );
        assert_eq!(redact_path("HTTPS://u@h/x"), "HTTPS://h/x");
        assert_eq!(redact_path("http://a:b@c@h"), "http://h");
        assert_eq!(redact_path("/a?TOKEN"), "/a?…");
        assert_eq!(redact_path("/a?k={{token}}&&x"), "/a?k=…&&…");
        // '@' in a path is no user name.
        assert_eq!(redact_path("/users/@me"), "/users/@me");
        assert_eq!(redact_path("é?é=é"), "é?é=…");
    }

    #[test]
    fn non_ascii_urls_are_refused_not_a_panic() {
        for u in [
            "éééé",
            "é",
            "httpé://x",
            "http:/éé",
            "https:/é",
            "http://é/",
            "ｈttp://x",
        ] {
            assert!(split_url(u).is_err(), "{u}");
        }
        assert_eq!(redact_url("éééé"), "(invalid URL)");
    }

    #[test]
    fn literal_targets_are_encoded_like_a_browser_does() {
        assert_eq!(
            encode_literal_target("/a b/é?k=v w").unwrap(),
            "/a%20b/%C3%A9?k=v%20w"
        );
        assert_eq!(
            encode_literal_target("/x/%7Efoo;p=1?a=1&b=/c:d@e").unwrap(),
            "/x/%7Efoo;p=1?a=1&b=/c:d@e"
        );
        assert_eq!(
            encode_literal_target("/q\"<>{}|\\^`").unwrap(),
            "/q%22%3C%3E%7B%7D%7C%5C%5E%60"
        );
        let (at, why) = encode_literal_target("/a#frag").unwrap_err();
        assert_eq!(at, 2);
        assert!(why.contains("fragment"), "{why}");
        let (at, why) = encode_literal_target("/100%").unwrap_err();
        assert_eq!(at, 4);
        assert!(why.contains("%25"), "{why}");
        assert!(encode_literal_target("/%zz").is_err());
    }

    #[test]
    fn values_are_encoded_by_what_they_stand_for() {
        let mut out = Vec::new();
        push_encoded_component("a b/c?d&e=f#g%h é".as_bytes(), &mut out);
        assert_eq!(out, b"a%20b%2Fc%3Fd%26e%3Df%23g%25h%20%C3%A9");
        out.clear();
        push_encoded_target("/next page?cursor=a b&x=%2F#frag".as_bytes(), &mut out);
        assert_eq!(out, b"/next%20page?cursor=a%20b&x=%2F");
        out.clear();
        push_encoded_target(b"https://[::1]:8080/a\r\nb", &mut out);
        assert_eq!(out, b"https://[::1]:8080/a%0D%0Ab");
    }
}
