//! A lean HTTP/1.1 client: one keep-alive connection per origin per virtual user.
//!
//! Requests are written from a caller-filled buffer and responses are read into a reusable
//! buffer, so a steady run allocates nothing per request. Headers stay where they were read and
//! are looked up by offset.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::TlsConnector;

use crate::record::ErrorKind;
use crate::url::Origin;

const MAX_HEADERS: usize = 96;
/// A response header block larger than this is a protocol error, not a reason to grow forever.
const MAX_HEAD_BYTES: usize = 256 * 1024;

/// What went wrong with one exchange, before any HTTP status was seen.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("could not resolve {host}: {source}")]
    Dns { host: String, source: io::Error },
    #[error("connect to {addr} failed: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("TLS: {err}{hint}", err = .0, hint = tls_hint(.0))]
    Tls(io::Error),
    #[error("{0}")]
    Io(io::Error),
    #[error("connection closed before a complete response")]
    ClosedEarly,
    #[error("invalid response: {0}")]
    Protocol(String),
}

/// A TLS record that makes no sense is nearly always plain HTTP on the other end.
fn tls_hint(e: &io::Error) -> &'static str {
    let text = e.to_string();
    if text.contains("corrupt message") || text.contains("InvalidContentType") {
        " (is that port plain HTTP? then use http://)"
    } else {
        ""
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
            HttpError::ClosedEarly => ErrorKind::ConnectionReset,
            HttpError::Protocol(_) => ErrorKind::Protocol,
        }
    }

    /// A failure on a reused connection that the server may have closed while it sat idle:
    /// safe to retry once on a fresh connection, as browsers and HTTP libraries do.
    fn is_stale_connection(&self) -> bool {
        match self {
            HttpError::ClosedEarly => true,
            HttpError::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
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

/// Where the parts of the last response sit in the client's buffers.
#[derive(Debug, Default, Clone)]
struct ResponseLayout {
    status: u16,
    /// Offsets of (name, value) pairs into `rbuf`.
    headers: Vec<(usize, usize, usize, usize)>,
    /// Body range in `rbuf`, unless the body was chunked and decoded into `chunked_body`.
    body: (usize, usize),
    chunked: bool,
}

/// Options fixed for a whole run.
#[derive(Clone)]
pub struct ClientOptions {
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl ClientOptions {
    pub fn new(insecure_tls: bool) -> Self {
        ClientOptions {
            tls: Some(tls_config(insecure_tls)),
        }
    }
}

fn tls_config(insecure: bool) -> Arc<rustls::ClientConfig> {
    static SECURE: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    static INSECURE: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let make = |insecure: bool| {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("the default provider supports the default protocol versions");
        let mut config = if insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                .with_no_client_auth()
        } else {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    };
    if insecure {
        INSECURE.get_or_init(|| make(true)).clone()
    } else {
        SECURE.get_or_init(|| make(false)).clone()
    }
}

/// For `insecure_tls = true`: test environments with self-signed certificates.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One virtual user's HTTP client. `request` is filled by the caller, then [`Client::send`]
/// performs the exchange; the response stays readable until the next send.
pub struct Client {
    options: ClientOptions,
    conns: Vec<Connection>,
    resolved: Vec<(String, u16, Vec<SocketAddr>)>,
    /// The serialized request (head and body) for the next send.
    pub request: Vec<u8>,
    rbuf: Vec<u8>,
    chunked_body: Vec<u8>,
    layout: ResponseLayout,
    /// Bytes read and written over the client's life.
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Client {
    pub fn new(options: ClientOptions) -> Self {
        Client {
            options,
            conns: Vec::with_capacity(1),
            resolved: Vec::new(),
            request: Vec::with_capacity(1024),
            rbuf: Vec::with_capacity(16 * 1024),
            chunked_body: Vec::new(),
            layout: ResponseLayout::default(),
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// Closes every connection, so the next iteration starts like a new user.
    pub fn close_all(&mut self) {
        self.conns.clear();
    }

    /// Sends `self.request` to `origin` and reads the whole response.
    pub async fn send(&mut self, origin: &Origin, head_request: bool) -> Result<u16, HttpError> {
        let idx = match self.conns.iter().position(|c| &c.origin == origin) {
            Some(i) => i,
            None => self.connect(origin).await?,
        };
        match self.exchange(idx, head_request).await {
            Ok(status) => Ok(status),
            Err(e) if self.conns[idx].reused && e.is_stale_connection() => {
                self.conns.swap_remove(idx);
                let idx = self.connect(origin).await?;
                self.exchange(idx, head_request).await
            }
            Err(e) => {
                self.conns.swap_remove(idx);
                Err(e)
            }
        }
    }

    async fn connect(&mut self, origin: &Origin) -> Result<usize, HttpError> {
        let addrs = self.resolve(origin).await?;
        let mut last_err = None;
        let mut tcp = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(source) => last_err = Some(HttpError::Connect { addr, source }),
            }
        }
        let tcp = match tcp {
            Some(t) => t,
            None => {
                return Err(last_err.unwrap_or_else(|| HttpError::Dns {
                    host: origin.host.clone(),
                    source: io::Error::new(io::ErrorKind::NotFound, "no address"),
                }))
            }
        };
        let _ = tcp.set_nodelay(true);
        let stream = if origin.tls {
            let config = self
                .options
                .tls
                .clone()
                .unwrap_or_else(|| tls_config(false));
            let name = rustls::pki_types::ServerName::try_from(origin.host.clone())
                .map_err(|e| HttpError::Tls(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
            let tls = TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(HttpError::Tls)?;
            Stream::Tls(Box::new(tls))
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

    async fn resolve(&mut self, origin: &Origin) -> Result<Vec<SocketAddr>, HttpError> {
        if let Some((_, _, addrs)) = self
            .resolved
            .iter()
            .find(|(h, p, _)| *h == origin.host && *p == origin.port)
        {
            return Ok(addrs.clone());
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
        self.resolved
            .push((origin.host.clone(), origin.port, addrs.clone()));
        Ok(addrs)
    }

    async fn exchange(&mut self, idx: usize, head_request: bool) -> Result<u16, HttpError> {
        let conn = &mut self.conns[idx];
        let tls = matches!(conn.stream, Stream::Tls(_));
        conn.stream
            .write_all(&self.request)
            .await
            .map_err(|e| io_error(e, tls))?;
        if tls {
            conn.stream.flush().await.map_err(|e| io_error(e, tls))?;
        }
        self.bytes_out += self.request.len() as u64;
        self.rbuf.clear();
        let (head_len, keep_alive, framing) = loop {
            let (head_len, keep_alive, framing) = read_head(
                &mut conn.stream,
                &mut self.rbuf,
                &mut self.layout,
                head_request,
                tls,
            )
            .await?;
            // Interim 1xx responses precede the real one.
            if (100..200).contains(&self.layout.status) && self.layout.status != 101 {
                self.rbuf.drain(..head_len);
                continue;
            }
            break (head_len, keep_alive, framing);
        };
        let mut reusable = keep_alive;
        match framing {
            Framing::Empty => self.layout.body = (head_len, head_len),
            Framing::Length(n) => {
                let end = head_len + n;
                while self.rbuf.len() < end {
                    let need = end - self.rbuf.len();
                    reserve(&mut self.rbuf, need);
                    let got = conn
                        .stream
                        .read_buf(&mut self.rbuf)
                        .await
                        .map_err(|e| io_error(e, tls))?;
                    if got == 0 {
                        return Err(HttpError::Io(io::ErrorKind::UnexpectedEof.into()));
                    }
                }
                self.layout.body = (head_len, end);
            }
            Framing::Chunked => {
                read_chunked(
                    &mut conn.stream,
                    &mut self.rbuf,
                    head_len,
                    &mut self.chunked_body,
                    tls,
                )
                .await?;
                self.layout.chunked = true;
            }
            Framing::UntilClose => {
                loop {
                    reserve(&mut self.rbuf, 8192);
                    let got = conn
                        .stream
                        .read_buf(&mut self.rbuf)
                        .await
                        .map_err(|e| io_error(e, tls))?;
                    if got == 0 {
                        break;
                    }
                }
                self.layout.body = (head_len, self.rbuf.len());
                reusable = false;
            }
        }
        self.bytes_in += self.rbuf.len() as u64;
        let status = self.layout.status;
        if reusable {
            self.conns[idx].reused = true;
        } else {
            self.conns.swap_remove(idx);
        }
        Ok(status)
    }

    pub fn status(&self) -> u16 {
        self.layout.status
    }

    /// The last response's body (chunked bodies decoded).
    pub fn body(&self) -> &[u8] {
        if self.layout.chunked {
            &self.chunked_body
        } else {
            &self.rbuf[self.layout.body.0..self.layout.body.1]
        }
    }

    /// The first header of the last response with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every header of the last response, in order, with values that are valid UTF-8.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.layout.headers.iter().filter_map(|&(ns, ne, vs, ve)| {
            let n = std::str::from_utf8(&self.rbuf[ns..ne]).ok()?;
            let v = std::str::from_utf8(&self.rbuf[vs..ve]).ok()?;
            Some((n, v))
        })
    }
}

enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

fn reserve(buf: &mut Vec<u8>, want: usize) {
    let free = buf.capacity() - buf.len();
    if free < want.min(64 * 1024) {
        buf.reserve(want.clamp(8192, 1 << 20));
    }
}

fn io_error(e: io::Error, tls: bool) -> HttpError {
    // tokio-rustls reports TLS failures as InvalidData wrapping a rustls error.
    if tls && e.kind() == io::ErrorKind::InvalidData {
        HttpError::Tls(e)
    } else {
        HttpError::Io(e)
    }
}

async fn read_head(
    stream: &mut Stream,
    rbuf: &mut Vec<u8>,
    layout: &mut ResponseLayout,
    head_request: bool,
    tls: bool,
) -> Result<(usize, bool, Framing), HttpError> {
    let mut scanned_empty = rbuf.is_empty();
    loop {
        if !rbuf.is_empty() || !scanned_empty {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(rbuf) {
                Ok(httparse::Status::Complete(head_len)) => {
                    let base = rbuf.as_ptr() as usize;
                    let status = resp.code.unwrap_or(0);
                    let version = resp.version.unwrap_or(1);
                    layout.status = status;
                    layout.chunked = false;
                    layout.headers.clear();
                    let mut length = None;
                    let mut chunked = false;
                    let mut close = version == 0;
                    for h in resp.headers.iter() {
                        let ns = h.name.as_ptr() as usize - base;
                        let vs = h.value.as_ptr() as usize - base;
                        layout
                            .headers
                            .push((ns, ns + h.name.len(), vs, vs + h.value.len()));
                        if h.name.eq_ignore_ascii_case("content-length") {
                            let v = std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|s| s.trim().parse::<usize>().ok())
                                .ok_or_else(|| HttpError::Protocol("bad Content-Length".into()))?;
                            length = Some(v);
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            chunked = h
                                .value
                                .rsplit(|&b| b == b',')
                                .next()
                                .map(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
                                .unwrap_or(false);
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            let v = h.value;
                            if contains_token(v, b"close") {
                                close = true;
                            } else if version == 0 && contains_token(v, b"keep-alive") {
                                close = false;
                            }
                        }
                    }
                    let framing = if head_request
                        || status == 204
                        || status == 304
                        || (100..200).contains(&status)
                    {
                        Framing::Empty
                    } else if chunked {
                        Framing::Chunked
                    } else if let Some(n) = length {
                        Framing::Length(n)
                    } else {
                        Framing::UntilClose
                    };
                    return Ok((head_len, !close, framing));
                }
                Ok(httparse::Status::Partial) => {
                    if rbuf.len() > MAX_HEAD_BYTES {
                        return Err(HttpError::Protocol("response head too large".into()));
                    }
                }
                Err(e) => return Err(HttpError::Protocol(e.to_string())),
            }
        }
        scanned_empty = true;
        reserve(rbuf, 8192);
        let got = stream.read_buf(rbuf).await.map_err(|e| io_error(e, tls))?;
        if got == 0 {
            return Err(if rbuf.is_empty() {
                HttpError::ClosedEarly
            } else {
                HttpError::Io(io::ErrorKind::UnexpectedEof.into())
            });
        }
    }
}

async fn read_more(stream: &mut Stream, rbuf: &mut Vec<u8>, tls: bool) -> Result<(), HttpError> {
    reserve(rbuf, 8192);
    match stream.read_buf(rbuf).await {
        Ok(0) => Err(HttpError::Io(io::ErrorKind::UnexpectedEof.into())),
        Ok(_) => Ok(()),
        Err(e) => Err(io_error(e, tls)),
    }
}

fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

async fn read_chunked(
    stream: &mut Stream,
    rbuf: &mut Vec<u8>,
    mut pos: usize,
    out: &mut Vec<u8>,
    tls: bool,
) -> Result<(), HttpError> {
    out.clear();
    loop {
        let (size_len, size) = loop {
            match httparse::parse_chunk_size(&rbuf[pos..]) {
                Ok(httparse::Status::Complete((n, size))) => break (n, size as usize),
                Ok(httparse::Status::Partial) => read_more(stream, rbuf, tls).await?,
                Err(_) => return Err(HttpError::Protocol("bad chunk size".into())),
            }
        };
        pos += size_len;
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                let rest = &rbuf[pos..];
                if let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
                    if i == 0 {
                        return Ok(());
                    }
                    pos += i + 2;
                } else {
                    read_more(stream, rbuf, tls).await?;
                }
            }
        }
        while rbuf.len() < pos + size + 2 {
            read_more(stream, rbuf, tls).await?;
        }
        out.extend_from_slice(&rbuf[pos..pos + size]);
        pos += size + 2;
    }
}
