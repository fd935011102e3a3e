//! The HTTP client: one keep-alive connection per origin per virtual user.
//!
//! [`Client`] is the face the engine and the observers use: the caller serializes a request
//! into [`Client::request`], [`Client::send`] finds or opens the connection, runs the exchange
//! and leaves the response readable until the next send. `h1` speaks HTTP/1.1 on one
//! connection, `tls` configures rustls, `cookies` keeps an RFC 6265 cookie jar. A steady run
//! allocates nothing per request: requests are written from the caller's buffer, responses are
//! read into reused buffers, and headers are looked up by offset.
//!
//! # Reuse and retries (RFC 9112 §9.3.1)
//!
//! A reused connection is first checked for having been closed by the server while it sat
//! idle; if it was, the request goes on a new connection, never having been written. If it
//! still ends after the request was written and before any byte of a response, the request
//! is sent once more on a fresh connection only when its method is safe (GET, HEAD, OPTIONS,
//! TRACE): the server may have acted on it, and a POST, PATCH, PUT or DELETE must not reach it
//! twice without the test saying so. PUT and DELETE are idempotent (RFC 9110 §9.2.2), but in a
//! load test a second DELETE answers 404 and a second PUT is work the plan did not ask for.
//! Every request written a second time is counted in [`Client::retries`]. A response that had
//! begun and ended early is an error, never a stale connection.

mod cookies;
mod decode;
mod h1;
/// The response reader on bytes in memory, for the fuzz targets (`fuzz/`).
#[doc(hidden)]
pub use h1::parse_response;
mod h2;
mod tls;

#[cfg(test)]
pub(crate) mod tests;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::TlsConnector;

pub use cookies::CookieJar;
pub use decode::Coding;

use crate::record::{ErrorKind, Phases};
use crate::scenario::{HttpVersion, DEFAULT_MAX_RESPONSE_HEADERS};
use crate::url::Origin;

/// What went wrong with one exchange, before any HTTP status was seen.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("could not resolve {host}: {source}")]
    Dns { host: String, source: io::Error },
    #[error("connect to {addr} failed: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("TLS: {err}{hint}", err = .0, hint = tls::hint(.0))]
    Tls(io::Error),
    #[error("{0}")]
    Io(io::Error),
    /// The request was written; the connection ended before any byte of a response.
    #[error(
        "connection {} after the request was sent, before any response{}",
        if *.reset { "reset" } else { "closed" },
        .resend.explain()
    )]
    NoResponse { reset: bool, resend: Resend },
    /// A response had begun and the connection ended before its end.
    #[error("connection {} {what}", if *.reset { "reset" } else { "closed" })]
    Truncated { what: Truncation, reset: bool },
    #[error("invalid response: {0}")]
    Protocol(String),
    #[error(
        "invalid response: more than {limit} header fields (max_response_headers in the \
         scenario raises the limit)"
    )]
    TooManyHeaders { limit: usize },
}

/// Why a request that got no response was not (or was) sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resend {
    /// It went on a new connection: nothing suggests an idle connection's close.
    NotReused,
    /// Not a safe method: the server may have acted on it.
    Unsafe,
    /// It was sent again on a fresh connection, and that one ended the same way.
    AlsoFresh,
}

impl Resend {
    fn explain(self) -> &'static str {
        match self {
            Resend::NotReused => "",
            Resend::Unsafe => {
                " on a reused connection (not sent again: the server may have acted on it, and \
                 only GET, HEAD, OPTIONS and TRACE are re-sent)"
            }
            Resend::AlsoFresh => " (sent again on a fresh connection, which ended the same way)",
        }
    }
}

/// Which part of a response the connection's end cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    Head { got: usize },
    Body { got: usize, expected: usize },
    Chunked { got: usize },
    UntilClose { got: usize },
}

impl std::fmt::Display for Truncation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Truncation::Head { got } => {
                write!(f, "part-way through the response head ({got} bytes)")
            }
            Truncation::Body { got, expected } => {
                write!(f, "after {got} of {expected} body bytes (Content-Length)")
            }
            Truncation::Chunked { got } => write!(
                f,
                "in the middle of a chunked body ({got} bytes decoded, no last chunk)"
            ),
            Truncation::UntilClose { got } => write!(
                f,
                "instead of closing after a close-delimited body ({got} bytes)"
            ),
        }
    }
}

impl HttpError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            HttpError::Dns { .. } => ErrorKind::Dns,
            HttpError::Connect { source, .. } => match source.kind() {
                io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
                io::ErrorKind::TimedOut => ErrorKind::Timeout,
                _ => ErrorKind::ConnectFailed,
            },
            HttpError::Tls(_) => ErrorKind::Tls,
            HttpError::Io(e) => match e.kind() {
                io::ErrorKind::TimedOut => ErrorKind::Timeout,
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof => ErrorKind::ConnectionReset,
                _ => ErrorKind::Io,
            },
            HttpError::NoResponse { .. } | HttpError::Truncated { .. } => {
                ErrorKind::ConnectionReset
            }
            HttpError::Protocol(_) | HttpError::TooManyHeaders { .. } => ErrorKind::Protocol,
        }
    }
}

/// What the client must know of a request's method: a response to HEAD has no body, and only
/// a safe method is sent again after a connection ended with no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Method {
    head: bool,
    safe: bool,
}

impl Method {
    pub const GET: Method = Method {
        head: false,
        safe: true,
    };

    pub fn of(name: &[u8]) -> Method {
        Method {
            head: name == b"HEAD",
            safe: matches!(name, b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE"),
        }
    }
}

/// Options fixed for a whole run.
#[derive(Clone)]
pub struct ClientOptions {
    /// `None`: verify certificates against the web's roots.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// A response with more header fields is a protocol error.
    pub max_response_headers: usize,
    pub http_version: HttpVersion,
    /// Accept any certificate (`--insecure`).
    insecure: bool,
    /// The TLS configuration offering HTTP/2 by ALPN, when `http_version` asks for it.
    tls_h2: Option<Arc<rustls::ClientConfig>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            tls: None,
            max_response_headers: DEFAULT_MAX_RESPONSE_HEADERS,
            http_version: HttpVersion::Http1,
            insecure: false,
            tls_h2: None,
        }
    }
}

impl ClientOptions {
    pub fn new(insecure_tls: bool) -> Self {
        ClientOptions {
            tls: Some(tls::config(insecure_tls)),
            insecure: insecure_tls,
            ..ClientOptions::default()
        }
    }

    pub fn with_http_version(mut self, v: HttpVersion) -> Self {
        self.http_version = v;
        self.tls_h2 = match v {
            HttpVersion::Http1 => None,
            HttpVersion::Http2 => Some(tls::config_h2(self.insecure, false)),
            HttpVersion::Auto => Some(tls::config_h2(self.insecure, true)),
        };
        self
    }

    pub fn with_max_response_headers(mut self, n: usize) -> Self {
        self.max_response_headers = n;
        self
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

struct Connection {
    origin: Origin,
    stream: Stream,
    /// Has answered at least one request, so the server may have closed it since.
    reused: bool,
}

impl Connection {
    /// Whether a connection kept for reuse can still take a request. The runtime already knows
    /// whether anything arrived since the last response (the end of a short read cleared the
    /// socket's readiness), so asking costs no system call when nothing did: a close, a TLS
    /// close_notify, or bytes the server sent unasked (a 408 before closing) all retire it.
    /// `thorough` also asks the kernel (one non-blocking peek), for requests that must not be
    /// written on a connection whose close is already on its way.
    async fn still_open(&mut self, thorough: bool) -> bool {
        let mut scratch = [0u8; 64];
        let quiet = std::future::poll_fn(|cx| {
            let mut buf = ReadBuf::new(&mut scratch);
            Poll::Ready(
                Pin::new(&mut self.stream)
                    .poll_read(cx, &mut buf)
                    .is_pending(),
            )
        })
        .await;
        if !quiet || !thorough {
            return quiet;
        }
        let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        matches!(
            socket2::SockRef::from(self.stream.tcp()).peek(&mut byte),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock
        )
    }
}

/// One virtual user's HTTP client. `request` is filled by the caller, then [`Client::send`]
/// performs the exchange; the response stays readable until the next send.
pub struct Client {
    options: ClientOptions,
    conns: Vec<Connection>,
    /// HTTP/2 connections, one per origin.
    h2: Vec<(Origin, h2::H2Conn)>,
    /// Origins whose TLS chose HTTP/1.1 by ALPN (`http_version = "auto"`).
    h1_only: Vec<Origin>,
    resolved: Vec<Resolved>,
    /// Which of a host's addresses the next new connection tries first: starts at random, so
    /// virtual users spread over all of them, and moves on with each connection.
    next_addr: usize,
    /// The serialized request (head and body) for the next send.
    pub request: Vec<u8>,
    bufs: h1::Buffers,
    /// Bytes read and written over the client's life.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// `bytes_in` with every encoded body counted at its decoded size.
    pub bytes_in_decoded: u64,
    /// Where the client's requests spent their time, summed over its life.
    pub phases: Phases,
    /// Requests written a second time, on a fresh connection, after a reused one ended with
    /// no response (safe methods only).
    pub retries: u64,
}

impl Client {
    pub fn new(options: ClientOptions) -> Self {
        Client {
            options,
            conns: Vec::with_capacity(1),
            h2: Vec::new(),
            h1_only: Vec::new(),
            resolved: Vec::new(),
            next_addr: fastrand::usize(..),
            request: Vec::with_capacity(1024),
            bufs: h1::Buffers {
                rbuf: Vec::with_capacity(16 * 1024),
                ..Default::default()
            },
            bytes_in: 0,
            bytes_out: 0,
            bytes_in_decoded: 0,
            phases: Phases::default(),
            retries: 0,
        }
    }

    /// Closes every connection, so the next iteration starts like a new user.
    pub fn close_all(&mut self) {
        self.conns.clear();
        self.h2.clear();
    }

    /// Sends `self.request` to `origin` and reads the whole response, its body decoded when
    /// it came in a `Content-Encoding` peakload knows.
    pub async fn send(&mut self, origin: &Origin, method: Method) -> Result<u16, HttpError> {
        self.bufs.content_decoded = false;
        let status = self.exchange(origin, method).await?;
        let coding = self.bufs.layout.coding;
        if !matches!(coding, Coding::Identity | Coding::Other) {
            let bufs = &mut self.bufs;
            let raw = if bufs.layout.chunked {
                &bufs.decoded[..]
            } else {
                &bufs.rbuf[bufs.layout.body.0..bufs.layout.body.1]
            };
            if !raw.is_empty() {
                decode::decode(coding, raw, &mut bufs.content).map_err(|e| {
                    HttpError::Protocol(format!("{} body could not be decoded: {e}", coding.name()))
                })?;
                bufs.content_decoded = true;
                self.bytes_in_decoded = (self.bytes_in_decoded + bufs.content.len() as u64)
                    .saturating_sub(raw.len() as u64);
            }
        }
        Ok(status)
    }

    /// The whole exchange, retries included, with the body as it came.
    async fn exchange(&mut self, origin: &Origin, method: Method) -> Result<u16, HttpError> {
        // The HTTP/2 and connecting futures are boxed: they are large (TLS handshakes, h2
        // streams) and rare or unused per request, and kept inline they made every request's
        // future as large as they are, copied at each move.
        if self.options.http_version != HttpVersion::Http1 && !self.h1_only.contains(origin) {
            if let Some(answered) = Box::pin(self.exchange_h2(origin)).await {
                return answered;
            }
        }
        let mut kept = None;
        if let Some(i) = self.conns.iter().position(|c| &c.origin == origin) {
            if self.conns[i].still_open(!method.safe).await {
                kept = Some(i);
            } else {
                self.conns.swap_remove(i);
            }
        }
        let (idx, reused) = match kept {
            Some(i) => (i, self.conns[i].reused),
            None => (Box::pin(self.connect(origin)).await?, false),
        };
        let failure = match self.attempt(idx, method).await {
            Ok(status) => return Ok(status),
            Err(f) => f,
        };
        let resend = match &failure {
            // Nothing was written: sending it now is sending it once.
            h1::Failure::Unsent(_) => reused,
            h1::Failure::NoResponse { .. } => reused && method.safe,
            h1::Failure::Error(_) => false,
        };
        if !resend {
            let why = if reused {
                Resend::Unsafe
            } else {
                Resend::NotReused
            };
            return Err(into_error(failure, why, origin.tls));
        }
        if matches!(failure, h1::Failure::NoResponse { .. }) {
            self.retries += 1;
        }
        let idx = Box::pin(self.connect(origin)).await?;
        self.attempt(idx, method)
            .await
            .map_err(|f| into_error(f, Resend::AlsoFresh, origin.tls))
    }

    /// One exchange on connection `idx`, which is dropped unless it can carry another.
    async fn attempt(&mut self, idx: usize, method: Method) -> Result<u16, h1::Failure> {
        let conn = &mut self.conns[idx];
        let tls = matches!(conn.stream, Stream::Tls(_));
        let mut ex = h1::Exchange {
            stream: &mut conn.stream,
            tls,
            bufs: &mut self.bufs,
            max_headers: self.options.max_response_headers,
            head_request: method.head,
            sent: 0,
            received: 0,
            first_byte: None,
        };
        let began = std::time::Instant::now();
        let result = match ex.write(&self.request).await {
            Ok(()) => ex.read_response().await,
            Err(f) => Err(f),
        };
        if let (Ok(_), Some(first)) = (&result, ex.first_byte) {
            let p = &mut self.phases;
            p.timed += 1;
            p.ttfb_us += micros(first.saturating_duration_since(began));
            p.transfer_us += micros(first.elapsed());
        }
        self.bytes_out += ex.sent;
        self.bytes_in += ex.received;
        self.bytes_in_decoded += ex.received;
        match result {
            Ok(true) => {
                self.conns[idx].reused = true;
                Ok(self.bufs.layout.status)
            }
            Ok(false) => {
                self.conns.swap_remove(idx);
                Ok(self.bufs.layout.status)
            }
            Err(f) => {
                self.conns.swap_remove(idx);
                Err(f)
            }
        }
    }

    /// One request over HTTP/2, or `None` when the origin speaks HTTP/1.1 (ALPN chose it, or
    /// `auto` over cleartext): then the HTTP/1.1 path takes the request.
    ///
    /// A kept connection that refuses the stream before any of the request left (the server
    /// closed it or sent GOAWAY since the last response) is replaced and the request sent on
    /// the new one: it is sent once. Once the stream is open the request is never sent again,
    /// whatever its method, as over HTTP/1.1 after a response began: the server may be
    /// working on it. A stream reset (RST_STREAM) fails that request only; the connection
    /// carries the next one.
    async fn exchange_h2(&mut self, origin: &Origin) -> Option<Result<u16, HttpError>> {
        let mut fresh = false;
        loop {
            let i = match self.h2.iter().position(|(o, c)| o == origin && c.open()) {
                Some(i) => i,
                None => {
                    self.h2.retain(|(o, _)| o != origin);
                    fresh = true;
                    match self.connect_h2(origin).await {
                        Ok(true) => self.h2.len() - 1,
                        Ok(false) => return None,
                        Err(e) => return Some(Err(e)),
                    }
                }
            };
            let scheme = if origin.tls { "https" } else { "http" };
            let conn = &mut self.h2[i].1;
            let began = std::time::Instant::now();
            let result = conn
                .exchange(
                    scheme,
                    &self.request,
                    &mut self.bufs,
                    self.options.max_response_headers,
                )
                .await;
            let (read, written) = conn.take_bytes();
            self.bytes_in += read;
            self.bytes_in_decoded += read;
            self.bytes_out += written;
            match result {
                Ok((status, first)) => {
                    let p = &mut self.phases;
                    p.timed += 1;
                    p.http2 += 1;
                    p.ttfb_us += micros(first.saturating_duration_since(began));
                    p.transfer_us += micros(first.elapsed());
                    return Some(Ok(status));
                }
                Err(f) => {
                    if !f.stream_only {
                        self.h2.swap_remove(i);
                    }
                    if f.unsent && !fresh {
                        continue;
                    }
                    return Some(Err(f.error));
                }
            }
        }
    }

    /// Opens an HTTP/2 connection to `origin`: `Ok(false)` when it speaks HTTP/1.1 instead
    /// (`auto`), with the TLS connection ALPN settled on kept for it.
    async fn connect_h2(&mut self, origin: &Origin) -> Result<bool, HttpError> {
        let version = self.options.http_version;
        if !origin.tls && version == HttpVersion::Auto {
            self.h1_only.push(origin.clone());
            return Ok(false);
        }
        let tcp = self.open_tcp(origin).await?;
        if !origin.tls {
            // h2c with prior knowledge (RFC 9113 §3.3).
            let conn = h2::H2Conn::handshake(tcp).await?;
            self.h2.push((origin.clone(), conn));
            return Ok(true);
        }
        let config = self
            .options
            .tls_h2
            .clone()
            .unwrap_or_else(|| tls::config_h2(false, true));
        let tls = self.tls_handshake(origin, config, tcp).await?;
        if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
            let conn = h2::H2Conn::handshake(tls).await?;
            self.h2.push((origin.clone(), conn));
            return Ok(true);
        }
        if version == HttpVersion::Http2 {
            return Err(HttpError::Protocol(
                "the server did not agree to HTTP/2 by ALPN (http_version = \"2\"); \
                 http_version = \"auto\" falls back to HTTP/1.1"
                    .into(),
            ));
        }
        self.h1_only.push(origin.clone());
        self.conns.push(Connection {
            origin: origin.clone(),
            stream: Stream::Tls(Box::new(tls)),
            reused: false,
        });
        Ok(false)
    }

    async fn tls_handshake(
        &mut self,
        origin: &Origin,
        config: Arc<rustls::ClientConfig>,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, HttpError> {
        let began = std::time::Instant::now();
        let name = rustls::pki_types::ServerName::try_from(origin.host.clone())
            .map_err(|e| HttpError::Tls(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        let tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(HttpError::Tls)?;
        self.phases.tls_us += micros(began.elapsed());
        Ok(tls)
    }

    async fn connect(&mut self, origin: &Origin) -> Result<usize, HttpError> {
        let tcp = self.open_tcp(origin).await?;
        let stream = if origin.tls {
            let config = self
                .options
                .tls
                .clone()
                .unwrap_or_else(|| tls::config(false));
            Stream::Tls(Box::new(self.tls_handshake(origin, config, tcp).await?))
        } else {
            Stream::Plain(tcp)
        };
        self.conns.push(Connection {
            origin: origin.clone(),
            stream,
            reused: false,
        });
        Ok(self.conns.len() - 1)
    }

    /// Resolves `origin` and opens a TCP connection to one of its addresses.
    async fn open_tcp(&mut self, origin: &Origin) -> Result<TcpStream, HttpError> {
        let t0 = std::time::Instant::now();
        let addrs = self.resolve(origin).await?;
        let t1 = std::time::Instant::now();
        let mut last_err = None;
        let mut tcp = None;
        let start = self.next_addr;
        self.next_addr = self.next_addr.wrapping_add(1);
        for addr in connect_order(&addrs, start) {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(source) => last_err = Some(HttpError::Connect { addr, source }),
            }
        }
        let t2 = std::time::Instant::now();
        let tcp = match tcp {
            Some(t) => t,
            None => {
                return Err(last_err.unwrap_or_else(|| HttpError::Dns {
                    host: origin.host.clone(),
                    source: io::Error::new(io::ErrorKind::NotFound, "no address"),
                }))
            }
        };
        self.phases.connections += 1;
        self.phases.dns_us += micros(t1 - t0);
        self.phases.connect_us += micros(t2 - t1);
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    /// The host's addresses, from a cache kept [`DNS_CACHE`]: a new connection after that
    /// asks the resolver again, so the run follows a load balancer that adds or drops nodes.
    async fn resolve(&mut self, origin: &Origin) -> Result<Vec<SocketAddr>, HttpError> {
        let now = std::time::Instant::now();
        self.resolved
            .retain(|r| now.duration_since(r.at) < DNS_CACHE);
        if let Some(r) = self
            .resolved
            .iter()
            .find(|r| r.host == origin.host && r.port == origin.port)
        {
            return Ok(r.addrs.clone());
        }
        let addrs: Vec<SocketAddr> = if let Ok(ip) = origin.host.parse::<std::net::IpAddr>() {
            vec![SocketAddr::new(ip, origin.port)]
        } else {
            tokio::net::lookup_host((origin.host.as_str(), origin.port))
                .await
                .map_err(|source| HttpError::Dns {
                    host: origin.host.clone(),
                    source,
                })?
                .collect()
        };
        self.resolved.push(Resolved {
            host: origin.host.clone(),
            port: origin.port,
            addrs: addrs.clone(),
            at: now,
        });
        Ok(addrs)
    }

    pub fn status(&self) -> u16 {
        self.bufs.layout.status
    }

    /// The last response's body: chunked bodies and content codings decoded.
    pub fn body(&self) -> &[u8] {
        let layout = &self.bufs.layout;
        if self.bufs.content_decoded {
            &self.bufs.content
        } else if layout.chunked {
            &self.bufs.decoded
        } else {
            &self.bufs.rbuf[layout.body.0..layout.body.1]
        }
    }

    /// The first header of the last response with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Whether the last response has a header with this name (case-insensitive), asked of
    /// the bytes as read: no UTF-8 check of every name and value, as on each response.
    pub fn has_header(&self, name: &str) -> bool {
        let rbuf = &self.bufs.rbuf;
        self.bufs
            .layout
            .headers
            .iter()
            .any(|&(ns, ne, _, _)| rbuf[ns..ne].eq_ignore_ascii_case(name.as_bytes()))
    }

    /// Every header of the last response, in order, with values that are valid UTF-8.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        let rbuf = &self.bufs.rbuf;
        self.bufs
            .layout
            .headers
            .iter()
            .filter_map(move |&(ns, ne, vs, ve)| {
                let n = std::str::from_utf8(&rbuf[ns..ne]).ok()?;
                let v = std::str::from_utf8(&rbuf[vs..ve]).ok()?;
                Some((n, v))
            })
    }
}

/// How long a host's resolved addresses are used before a new connection resolves it again.
/// The system resolver gives no TTL; an ALB's records live 60 s, so 5 s follows a change
/// promptly and costs each virtual user at most one lookup per 5 s, only when it connects.
pub const DNS_CACHE: std::time::Duration = std::time::Duration::from_secs(5);

struct Resolved {
    host: String,
    port: u16,
    addrs: Vec<SocketAddr>,
    at: std::time::Instant,
}

/// The order a new connection tries `addrs` in: the addresses of the resolver's preferred
/// family (its first address's, RFC 6724) rotated by `start`, so connections spread over all
/// of a load balancer's nodes; then the other family's, in the resolver's order, as fallbacks.
fn connect_order(addrs: &[SocketAddr], start: usize) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return Vec::new();
    };
    let preferred: Vec<SocketAddr> = addrs
        .iter()
        .filter(|a| a.is_ipv4() == first.is_ipv4())
        .copied()
        .collect();
    let n = preferred.len();
    let mut order: Vec<SocketAddr> = (0..n).map(|i| preferred[(start + i) % n]).collect();
    order.extend(addrs.iter().filter(|a| a.is_ipv4() != first.is_ipv4()));
    order
}

fn micros(d: std::time::Duration) -> u64 {
    d.as_micros() as u64
}

/// The error a caller sees for a failed exchange.
fn into_error(failure: h1::Failure, resend: Resend, tls: bool) -> HttpError {
    match failure {
        h1::Failure::Unsent(e) => h1::io_error(e, tls),
        h1::Failure::NoResponse { reset } => HttpError::NoResponse { reset, resend },
        h1::Failure::Error(e) => e,
    }
}

#[cfg(test)]
mod dns_tests {
    use super::*;

    #[test]
    fn new_connections_spread_over_the_preferred_family() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let addrs = [
            a("10.0.0.1:80"),
            a("[::1]:80"),
            a("10.0.0.2:80"),
            a("10.0.0.3:80"),
        ];
        let firsts: Vec<SocketAddr> = (0..6).map(|s| connect_order(&addrs, s)[0]).collect();
        assert_eq!(
            firsts,
            [addrs[0], addrs[2], addrs[3], addrs[0], addrs[2], addrs[3]]
        );
        let order = connect_order(&addrs, 1);
        assert_eq!(order, [addrs[2], addrs[3], addrs[0], addrs[1]]);
        assert!(connect_order(&[], 3).is_empty());
    }

    /// A cached answer is used within DNS_CACHE and asked again after it.
    #[tokio::test]
    async fn resolved_addresses_expire() {
        let mut c = Client::new(ClientOptions::default());
        let origin = Origin {
            tls: false,
            host: "localhost".into(),
            port: 9,
        };
        let first = c.resolve(&origin).await.unwrap();
        assert!(!first.is_empty());
        // A stale entry with another answer is replaced; a fresh one is used as it is.
        let planted = vec!["192.0.2.7:9".parse().unwrap()];
        c.resolved[0].addrs = planted.clone();
        assert_eq!(c.resolve(&origin).await.unwrap(), planted);
        c.resolved[0].at = std::time::Instant::now() - DNS_CACHE;
        assert_eq!(c.resolve(&origin).await.unwrap(), first);
    }
}
