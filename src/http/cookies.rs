//! A cookie jar as RFC 6265 §5 keeps one: `Set-Cookie` parsed leniently (§5.2), stored with
//! its scope (§5.3: host-only or domain, path, Secure, expiry from Max-Age or Expires) and sent
//! only where that scope matches (§5.4), longest path first.
//!
//! A virtual user keeps one jar per iteration (each iteration is a new visitor), so the jar
//! holds a handful of cookies and is searched in order. There is no public suffix list: a
//! `Domain` without a dot (`com`, `localhost`) is only accepted as the exact host, which keeps
//! a server from setting a cookie for a whole top-level domain. An IP address host only ever
//! gets host-only cookies, and `127.0.0.1` is not `localhost`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::url::Origin;

/// More cookies than this in one iteration are dropped: a server bug, not a visitor.
const MAX_COOKIES: usize = 1000;
/// RFC 6265bis caps a cookie's lifetime at 400 days.
const MAX_AGE: Duration = Duration::from_secs(400 * 24 * 3600);

#[derive(Debug, Clone)]
struct Cookie {
    name: String,
    value: String,
    /// Lower case, without a leading dot.
    domain: String,
    host_only: bool,
    path: String,
    secure: bool,
    /// `None`: a session cookie, kept until the jar is cleared.
    expires: Option<SystemTime>,
}

/// The cookies of one visitor.
#[derive(Debug, Default)]
pub struct CookieJar {
    /// In the order they are sent: longest path first, then the oldest first (§5.4).
    cookies: Vec<Cookie>,
}

/// A `Set-Cookie` value's parts that decide where the cookie goes.
struct Parsed<'a> {
    name: &'a str,
    value: &'a str,
    domain: Option<&'a str>,
    path: Option<&'a str>,
    secure: bool,
    expires: Option<SystemTime>,
}

impl CookieJar {
    pub fn clear(&mut self) {
        self.cookies.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    pub fn len(&self) -> usize {
        self.cookies.len()
    }

    /// Takes one `Set-Cookie` value from a response of `origin` to a request for `path` (the
    /// request target without its query).
    pub fn store(&mut self, origin: &Origin, path: &[u8], set_cookie: &str, now: SystemTime) {
        let Some(p) = parse(set_cookie, now) else {
            return;
        };
        let host = origin.host.as_str();
        let (domain, host_only) = match p.domain {
            Some(d) => {
                let d = d.to_ascii_lowercase();
                if !domain_match(host, &d) || (!d.contains('.') && d != host) {
                    return;
                }
                (d, false)
            }
            None => (host.to_string(), true),
        };
        // A Secure cookie set over plain HTTP is refused (RFC 6265bis §5.7).
        if p.secure && !origin.tls {
            return;
        }
        let cookie = Cookie {
            name: p.name.to_string(),
            value: p.value.to_string(),
            domain,
            host_only,
            path: match p.path {
                Some(path) => path.to_string(),
                None => default_path(path),
            },
            secure: p.secure,
            expires: p.expires,
        };
        let same = self.cookies.iter().position(|c| {
            c.name == cookie.name && c.domain == cookie.domain && c.path == cookie.path
        });
        if cookie.expires.is_some_and(|t| t <= now) {
            // An expiry in the past is how a server deletes a cookie.
            if let Some(i) = same {
                self.cookies.remove(i);
            }
            return;
        }
        match same {
            // The replaced cookie keeps its place (its creation time, §5.3 step 11).
            Some(i) => self.cookies[i] = cookie,
            None if self.cookies.len() >= MAX_COOKIES => {}
            None => {
                let at = self
                    .cookies
                    .iter()
                    .position(|c| c.path.len() < cookie.path.len())
                    .unwrap_or(self.cookies.len());
                self.cookies.insert(at, cookie);
            }
        }
    }

    /// Appends `Cookie: ...\r\n` for a request to `origin` and `path` (without its query),
    /// when a cookie matches.
    pub fn write_header(
        &mut self,
        origin: &Origin,
        path: &[u8],
        now: SystemTime,
        out: &mut Vec<u8>,
    ) {
        if self
            .cookies
            .iter()
            .any(|c| c.expires.is_some_and(|t| t <= now))
        {
            self.cookies.retain(|c| c.expires.is_none_or(|t| t > now));
        }
        let mut first = true;
        for c in &self.cookies {
            let domain_ok = if c.host_only {
                origin.host == c.domain
            } else {
                domain_match(&origin.host, &c.domain)
            };
            if !domain_ok || (c.secure && !origin.tls) || !path_match(path, c.path.as_bytes()) {
                continue;
            }
            out.extend_from_slice(if first { b"Cookie: " } else { b"; " });
            first = false;
            out.extend_from_slice(c.name.as_bytes());
            out.push(b'=');
            out.extend_from_slice(c.value.as_bytes());
        }
        if !first {
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// §5.2, with the control-character rule of RFC 6265bis: a cookie whose name or value holds a
/// control character is ignored, so nothing read from a response can break a request header.
fn parse(set_cookie: &str, now: SystemTime) -> Option<Parsed<'_>> {
    let (pair, attributes) = set_cookie.split_once(';').unwrap_or((set_cookie, ""));
    let (name, value) = pair.split_once('=')?;
    let (name, value) = (trim(name), trim(value));
    let control = |s: &str| s.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f);
    if name.is_empty() || control(name) || control(value) {
        return None;
    }
    let mut p = Parsed {
        name,
        value,
        domain: None,
        path: None,
        secure: false,
        expires: None,
    };
    let mut max_age = None;
    for attribute in attributes.split(';') {
        let (key, val) = match attribute.split_once('=') {
            Some((k, v)) => (trim(k), trim(v)),
            None => (trim(attribute), ""),
        };
        if key.eq_ignore_ascii_case("expires") {
            if let Some(t) = parse_date(val) {
                p.expires = Some(t);
            }
        } else if key.eq_ignore_ascii_case("max-age") {
            if let Some(t) = parse_max_age(val, now) {
                max_age = Some(t);
            }
        } else if key.eq_ignore_ascii_case("domain") {
            let d = val.strip_prefix('.').unwrap_or(val);
            p.domain = (!d.is_empty()).then_some(d);
        } else if key.eq_ignore_ascii_case("path") {
            p.path = val.starts_with('/').then_some(val);
        } else if key.eq_ignore_ascii_case("secure") {
            p.secure = true;
        }
    }
    // Max-Age wins over Expires (§5.3 step 3).
    if max_age.is_some() {
        p.expires = max_age;
    }
    if let Some(t) = p.expires {
        p.expires = Some(t.min(now + MAX_AGE));
    }
    Some(p)
}

fn trim(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

fn parse_max_age(v: &str, now: SystemTime) -> Option<SystemTime> {
    let digits = v.strip_prefix('-').unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if v.starts_with('-') || digits.bytes().all(|b| b == b'0') {
        return Some(UNIX_EPOCH);
    }
    let secs = digits.parse::<u64>().unwrap_or(u64::MAX);
    Some(now + Duration::from_secs(secs).min(MAX_AGE))
}

/// §5.1.3.
fn domain_match(host: &str, domain: &str) -> bool {
    host == domain
        || (host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
            && host.parse::<std::net::IpAddr>().is_err())
}

/// §5.1.4: the directory of the request path.
fn default_path(path: &[u8]) -> String {
    if path.first() != Some(&b'/') {
        return "/".into();
    }
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) | None => "/".into(),
        Some(i) => String::from_utf8_lossy(&path[..i]).into_owned(),
    }
}

/// §5.1.4.
fn path_match(request: &[u8], cookie: &[u8]) -> bool {
    request == cookie
        || (request.starts_with(cookie)
            && (cookie.last() == Some(&b'/') || request.get(cookie.len()) == Some(&b'/')))
}

/// §5.1.1: the lenient cookie-date algorithm browsers use for `Expires`.
fn parse_date(s: &str) -> Option<SystemTime> {
    let delimiter = |c: char| {
        c == '\t'
            || (' '..='/').contains(&c)
            || (';'..='@').contains(&c)
            || ('['..='`').contains(&c)
            || ('{'..='~').contains(&c)
    };
    let (mut time, mut day, mut month, mut year) = (None, None, None, None);
    for token in s.split(delimiter).filter(|t| !t.is_empty()) {
        if time.is_none() {
            if let Some(t) = hms(token) {
                time = Some(t);
                continue;
            }
        }
        if day.is_none() {
            if let Some(d) = leading_number(token, 1, 2) {
                day = Some(d);
                continue;
            }
        }
        if month.is_none() {
            if let Some(m) = month_of(token) {
                month = Some(m);
                continue;
            }
        }
        if year.is_none() {
            if let Some(y) = leading_number(token, 2, 4) {
                year = Some(y);
            }
        }
    }
    let ((h, mi, sec), day, month, mut year) = (time?, day?, month?, year?);
    if (70..=99).contains(&year) {
        year += 1900;
    } else if year <= 69 {
        year += 2000;
    }
    if !(1..=31).contains(&day) || year < 1601 || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    if day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(sec);
    Some(if secs <= 0 {
        UNIX_EPOCH
    } else {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    })
}

/// `1*2DIGIT ":" 1*2DIGIT ":" 1*2DIGIT`, then anything that does not start with a digit.
fn hms(token: &str) -> Option<(u32, u32, u32)> {
    let mut fields = token.splitn(3, ':');
    let h = fields.next()?;
    let m = fields.next()?;
    let rest = fields.next()?;
    let digits = |f: &str| {
        (!f.is_empty() && f.len() <= 2 && f.bytes().all(|b| b.is_ascii_digit()))
            .then(|| f.parse::<u32>().ok())
            .flatten()
    };
    Some((digits(h)?, digits(m)?, leading_number(rest, 1, 2)?))
}

/// `min..=max` digits at the start of `token`, not followed by another digit.
fn leading_number(token: &str, min: usize, max: usize) -> Option<u32> {
    let n = token.bytes().take_while(u8::is_ascii_digit).count();
    if n < min || n > max {
        return None;
    }
    token[..n].parse().ok()
}

fn month_of(token: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let prefix = token.get(..3)?;
    MONTHS
        .iter()
        .position(|m| prefix.eq_ignore_ascii_case(m))
        .map(|i| i as u32 + 1)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(url: &str) -> Origin {
        crate::url::split_url(url).unwrap().0
    }

    fn header(jar: &mut CookieJar, url: &str, now: SystemTime) -> String {
        let (o, target) = crate::url::split_url(url).unwrap();
        let path = target.split('?').next().unwrap();
        let mut out = Vec::new();
        jar.write_header(&o, path.as_bytes(), now, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn cookie_dates_parse_the_way_browsers_read_them() {
        let t = |s: &str| parse_date(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs());
        assert_eq!(t("Wed, 21 Oct 2015 07:28:00 GMT"), Some(1_445_412_480));
        assert_eq!(t("Wednesday, 21-Oct-15 07:28:00 GMT"), Some(1_445_412_480));
        assert_eq!(t("Wed Oct 21 07:28:00 2015"), Some(1_445_412_480));
        assert_eq!(t("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(t("Sat, 29 Feb 2020 23:59:59 GMT"), Some(1_583_020_799));
        assert_eq!(t("Sun, 30 Feb 2020 00:00:00 GMT"), None);
        assert_eq!(t("Wed, 21 Oct 2015 25:00:00 GMT"), None);
        assert_eq!(t("tomorrow"), None);
        assert_eq!(t("Mon, 01 Jan 1601 00:00:00 GMT"), Some(0));
    }

    #[test]
    fn scope_follows_rfc_6265() {
        let now = at(1_700_000_000);
        let mut jar = CookieJar::default();
        let site = origin("http://shop.example.com/");
        jar.store(&site, b"/account/login", "sid=1; Path=/account", now);
        jar.store(&site, b"/account/login", "dir=2", now);
        jar.store(&site, b"/", "wide=3; Domain=.example.com", now);
        jar.store(&site, b"/", "host=4", now);
        jar.store(&site, b"/", "other=5; Domain=elsewhere.com", now);
        jar.store(&site, b"/", "tld=6; Domain=com", now);
        jar.store(
            &site,
            b"/",
            "gone=7; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            now,
        );
        jar.store(&site, b"/", "secure=8; Secure", now);
        assert_eq!(jar.len(), 4, "{jar:?}");
        // Longest path first; the default path of /account/login is /account.
        assert_eq!(
            header(&mut jar, "http://shop.example.com/account/orders?x=1", now),
            "Cookie: sid=1; dir=2; wide=3; host=4\r\n"
        );
        assert_eq!(
            header(&mut jar, "http://shop.example.com/accounting", now),
            "Cookie: wide=3; host=4\r\n"
        );
        // Domain cookies reach subdomains; host-only ones do not.
        assert_eq!(
            header(&mut jar, "http://api.example.com/", now),
            "Cookie: wide=3\r\n"
        );
        assert_eq!(header(&mut jar, "http://example.org/", now), "");
    }

    #[test]
    fn expiry_max_age_and_replacement() {
        let now = at(1_700_000_000);
        let mut jar = CookieJar::default();
        let site = origin("http://127.0.0.1:8080/");
        jar.store(
            &site,
            b"/",
            "a=1; Max-Age=10; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            now,
        );
        jar.store(
            &site,
            b"/",
            "b=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
            now,
        );
        jar.store(&site, b"/", "c=1", now);
        jar.store(&site, b"/", "c=2", now);
        assert_eq!(
            header(&mut jar, "http://127.0.0.1:8080/", now),
            "Cookie: a=1; c=2\r\n"
        );
        assert_eq!(
            header(&mut jar, "http://127.0.0.1:8080/", at(1_700_000_011)),
            "Cookie: c=2\r\n"
        );
        jar.store(&site, b"/", "c=; Max-Age=0", now);
        assert!(jar.is_empty(), "{jar:?}");
        // A cookie of 127.0.0.1 is not one of localhost, and an IP host has no subdomains.
        jar.store(&site, b"/", "ip=1; Domain=127.0.0.1", now);
        jar.store(&site, b"/", "sub=1; Domain=0.0.1", now);
        assert_eq!(header(&mut jar, "http://localhost:8080/", now), "");
        assert_eq!(
            header(&mut jar, "http://127.0.0.1:9090/", now),
            "Cookie: ip=1\r\n"
        );
    }

    #[test]
    fn secure_cookies_and_what_is_never_stored() {
        let now = at(1_700_000_000);
        let mut jar = CookieJar::default();
        let tls = origin("https://shop.example.com/");
        jar.store(&tls, b"/", "s=1; Secure; HttpOnly", now);
        jar.store(&tls, b"/", "noequals", now);
        jar.store(&tls, b"/", "=nameless", now);
        jar.store(&tls, b"/", "bad=a\u{1}b", now);
        assert_eq!(jar.len(), 1);
        assert_eq!(
            header(&mut jar, "https://shop.example.com/x", now),
            "Cookie: s=1\r\n"
        );
        assert_eq!(header(&mut jar, "http://shop.example.com/x", now), "");
    }
}
