//! URLs as peakload takes them (`base_url`, `--target`, step URLs, scrape endpoints): split
//! into an [`Origin`] and a request target, and redacted before they reach results, reports or
//! logs (credentials and query strings never do).

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

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix) {
        Some(&s[prefix.len()..])
    } else {
        None
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

/// A step path without its query string, which may carry keys or tokens.
pub fn redact_path(path: &str) -> String {
    match path.split_once('?') {
        Some((p, _)) => format!("{p}?…"),
        None => path.to_string(),
    }
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
    }
}
