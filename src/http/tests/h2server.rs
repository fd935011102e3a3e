//! An HTTP/2 server on 127.0.0.1:0 for the conformance suite: h2c with prior knowledge over
//! TCP, ALPN `h2` over TLS (or, to test the fallback, a TLS server that offers only
//! `http/1.1` and answers HTTP/1.1). Every request is logged; each is answered by a closure
//! from its method and path, the body sent in DATA frames of a chosen size.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::server::{tls_acceptor_with_alpn, Transport};
use crate::url::Origin;

/// One request as the server read it.
#[derive(Debug, Clone)]
pub(crate) struct H2Received {
    pub conn: usize,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub version: String,
}

impl H2Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The answer to a request: status, headers, body, the DATA frame size it is cut into, and
/// what the server does besides.
pub(crate) struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    pub frame: usize,
    pub script: Script,
}

/// HTTP/2's ways for an exchange to go otherwise than head and body.
#[derive(Debug, Clone, Default)]
pub(crate) enum Script {
    #[default]
    Answer,
    /// The head and this many body bytes, then RST_STREAM (INTERNAL_ERROR).
    ResetAfter(usize),
    /// The body, then these trailer fields.
    Trailers(Vec<(&'static str, String)>),
    /// A 103 Early Hints response before the answer.
    EarlyHints,
    /// The answer, then a graceful GOAWAY: the connection takes no new stream and closes
    /// once its streams are done.
    GoAwayAfter,
    /// No answer: GOAWAY (INTERNAL_ERROR) and the connection closed, the stream left open.
    GoAwayInstead,
    /// The answer, then the connection closed this long after it without a GOAWAY, as an
    /// idle timeout closes it.
    CloseAfter(std::time::Duration),
}

type Handler = Arc<dyn Fn(&str, &str) -> Answer + Send + Sync>;

pub(crate) struct H2Server {
    pub addr: std::net::SocketAddr,
    pub transport: Transport,
    log: Arc<Mutex<(usize, Vec<H2Received>)>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for H2Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl H2Server {
    /// `h2`: speak HTTP/2 (over TLS: offer only `h2` by ALPN); `false` over TLS offers only
    /// `http/1.1` and answers every request `200 "h1"` in HTTP/1.1.
    pub async fn start(
        transport: Transport,
        h2: bool,
        handler: impl Fn(&str, &str) -> Answer + Send + Sync + 'static,
    ) -> H2Server {
        Self::start_trickling(transport, h2, false, handler).await
    }

    /// `trickle`: the server's writes go out a few bytes at a time (1, 2, 3, 5, 7, 11 bytes in
    /// turn), each flushed, so frames reach the client split across many reads.
    pub async fn start_trickling(
        transport: Transport,
        h2: bool,
        trickle: bool,
        handler: impl Fn(&str, &str) -> Answer + Send + Sync + 'static,
    ) -> H2Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new((0usize, Vec::new())));
        let handler: Handler = Arc::new(handler);
        let acceptor = (transport == Transport::Tls)
            .then(|| tls_acceptor_with_alpn(if h2 { &[b"h2"] } else { &[b"http/1.1"] }));
        let accept = {
            let log = log.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    let _ = tcp.set_nodelay(true);
                    let conn = {
                        let mut l = log.lock().unwrap();
                        l.0 += 1;
                        l.0 - 1
                    };
                    let (log, handler, acceptor) = (log.clone(), handler.clone(), acceptor.clone());
                    tokio::spawn(async move {
                        match acceptor {
                            None if trickle => serve(Trickle::new(tcp), conn, log, handler).await,
                            None => serve(tcp, conn, log, handler).await,
                            Some(a) => {
                                let Ok(tls) = a.accept(tcp).await else { return };
                                if !h2 {
                                    serve_h1(tls, conn, log).await
                                } else if trickle {
                                    serve(Trickle::new(tls), conn, log, handler).await
                                } else {
                                    serve(tls, conn, log, handler).await
                                }
                            }
                        }
                    });
                }
            })
        };
        H2Server {
            addr,
            transport,
            log,
            accept,
        }
    }

    pub fn origin(&self) -> Origin {
        Origin {
            tls: self.transport == Transport::Tls,
            host: "127.0.0.1".into(),
            port: self.addr.port(),
        }
    }

    pub fn requests(&self) -> Vec<H2Received> {
        self.log.lock().unwrap().1.clone()
    }

    pub fn connections(&self) -> usize {
        self.log.lock().unwrap().0
    }
}

async fn serve<S>(io: S, conn: usize, log: Arc<Mutex<(usize, Vec<H2Received>)>>, handler: Handler)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Ok(mut h2) = h2::server::handshake(io).await else {
        return;
    };
    while let Some(Ok((request, mut respond))) = h2.accept().await {
        let (parts, mut body) = request.into_parts();
        let mut data = Vec::new();
        while let Some(Ok(chunk)) = body.data().await {
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let method = parts.method.to_string();
        log.lock().unwrap().1.push(H2Received {
            conn,
            method: method.clone(),
            path: path.clone(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            body: data,
            version: format!("{:?}", parts.version),
        });
        let answer = handler(&method, &path);
        if let Script::GoAwayInstead = answer.script {
            // The stream stays open (not reset) while the connection goes away under it.
            let _held = respond;
            h2.abrupt_shutdown(h2::Reason::INTERNAL_ERROR);
            while h2.accept().await.is_some() {}
            return;
        }
        if let Script::EarlyHints = answer.script {
            let hints = http::Response::builder()
                .status(103)
                .header("link", "</style.css>; rel=preload")
                .body(())
                .unwrap();
            let _ = respond.send_informational(hints);
        }
        let mut response = http::Response::builder().status(answer.status);
        for (n, v) in &answer.headers {
            response = response.header(*n, v);
        }
        let response = response.body(()).unwrap();
        let trailers = match &answer.script {
            Script::Trailers(t) => Some(t.clone()),
            _ => None,
        };
        let ends_here = answer.body.is_empty() && trailers.is_none();
        let Ok(mut send) = respond.send_response(response, ends_here) else {
            continue;
        };
        let mut body = &answer.body[..];
        if let Script::ResetAfter(n) = answer.script {
            body = &body[..n.min(body.len())];
        }
        let chunks: Vec<&[u8]> = body.chunks(answer.frame.max(1)).collect();
        let ends_with_data = trailers.is_none() && !matches!(answer.script, Script::ResetAfter(_));
        for (i, c) in chunks.iter().enumerate() {
            send.reserve_capacity(c.len());
            let _ = send.send_data(
                Bytes::copy_from_slice(c),
                ends_with_data && i + 1 == chunks.len(),
            );
        }
        match answer.script {
            Script::ResetAfter(_) => {
                // Drive the connection a moment so the DATA frames go first: the reset then
                // comes mid-response (a reset drops what is still queued).
                let pause = std::time::Duration::from_millis(50);
                let _ = tokio::time::timeout(pause, h2.accept()).await;
                send.send_reset(h2::Reason::INTERNAL_ERROR);
            }
            Script::Trailers(t) => {
                let mut map = http::HeaderMap::new();
                for (n, v) in t {
                    map.insert(n, v.parse().unwrap());
                }
                let _ = send.send_trailers(map);
            }
            Script::GoAwayAfter => h2.graceful_shutdown(),
            Script::CloseAfter(pause) => {
                // Drive the connection (the answer's frames go out), then close without GOAWAY.
                let _ = tokio::time::timeout(pause, h2.accept()).await;
                return;
            }
            _ => {}
        }
    }
}

/// A TLS server that chose HTTP/1.1 by ALPN: answers `200 h1` to each request, keep-alive.
async fn serve_h1<S>(mut io: S, conn: usize, log: Arc<Mutex<(usize, Vec<H2Received>)>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let Ok(n) = io.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(end) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            buf.drain(..end + 4);
            let mut words = head.split(' ');
            log.lock().unwrap().1.push(H2Received {
                conn,
                method: words.next().unwrap_or("").into(),
                path: words.next().unwrap_or("").into(),
                headers: Vec::new(),
                body: Vec::new(),
                version: "HTTP/1.1".into(),
            });
            let _ = io
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nh1")
                .await;
        }
    }
}

/// A stream whose writes go out a few bytes at a time, each flushed.
struct Trickle<S> {
    inner: S,
    turn: usize,
}

impl<S> Trickle<S> {
    fn new(inner: S) -> Self {
        Trickle { inner, turn: 0 }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Trickle<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Trickle<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        const SIZES: [usize; 6] = [1, 2, 3, 5, 7, 11];
        let n = SIZES[self.turn % SIZES.len()].min(buf.len());
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_write(cx, &buf[..n]) {
            std::task::Poll::Ready(Ok(n)) => {
                this.turn += 1;
                // Each piece on its own segment (the socket has TCP_NODELAY).
                let _ = std::pin::Pin::new(&mut this.inner).poll_flush(cx);
                std::task::Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
