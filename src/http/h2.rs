//! HTTP/2 on one connection per origin, with the `h2` crate: the request the caller serialized
//! as HTTP/1.1 is sent as one stream (its head becomes pseudo-headers and fields, its body a
//! DATA frame), and the response is laid out in the client's buffers exactly as an HTTP/1.1
//! response would be (a status line, `name: value` lines, then the body), so headers, body,
//! decoding and everything after read it the same way.
//!
//! The connection's frames are driven by a task of their own; bytes read and written are
//! counted at the socket, frames and HPACK included.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::decode::Coding;
use super::h1::Buffers;
use super::HttpError;

/// Request fields HTTP/2 forbids (RFC 9113 §8.2.2) or carries as pseudo-headers.
const NOT_SENT: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
];

#[derive(Default)]
struct Counters {
    read: AtomicU64,
    written: AtomicU64,
}

/// An HTTP/2 connection and the task driving it.
pub(super) struct H2Conn {
    send: h2::client::SendRequest<Bytes>,
    driver: tokio::task::JoinHandle<()>,
    counters: Arc<Counters>,
    /// Counters already reported.
    seen: (u64, u64),
}

impl Drop for H2Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl H2Conn {
    pub async fn handshake<S>(io: S) -> Result<H2Conn, HttpError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let counters = Arc::new(Counters::default());
        let io = Counting {
            inner: io,
            counters: counters.clone(),
        };
        let (send, conn) = h2::client::handshake(io).await.map_err(h2_error)?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(H2Conn {
            send,
            driver,
            counters,
            seen: (0, 0),
        })
    }

    /// Whether the connection can take another stream.
    pub fn open(&self) -> bool {
        !self.driver.is_finished()
    }

    /// Bytes (read, written) since the last call.
    pub fn take_bytes(&mut self) -> (u64, u64) {
        let r = self.counters.read.load(Ordering::Relaxed);
        let w = self.counters.written.load(Ordering::Relaxed);
        let delta = (r - self.seen.0, w - self.seen.1);
        self.seen = (r, w);
        delta
    }

    /// Sends `request` (serialized as HTTP/1.1) to `scheme` and reads the response into
    /// `bufs`. Returns the status and when the response's head arrived.
    pub async fn exchange(
        &mut self,
        scheme: &str,
        request: &[u8],
        bufs: &mut Buffers,
        max_headers: usize,
    ) -> Result<(u16, Instant), H2Failure> {
        let (req, body) = to_h2(scheme, request).map_err(H2Failure::stream)?;
        // Until `send_request` has taken the stream, nothing of the request is on its way: a
        // connection closed or told to go away (GOAWAY) since its last response refuses here.
        let mut send = self.send.clone().ready().await.map_err(H2Failure::unsent)?;
        let (response, mut stream) = send
            .send_request(req, body.is_empty())
            .map_err(H2Failure::unsent)?;
        if !body.is_empty() {
            stream
                .send_data(Bytes::copy_from_slice(body), true)
                .map_err(H2Failure::sent)?;
        }
        let response = response.await.map_err(H2Failure::sent)?;
        let first_byte = Instant::now();
        let status = response.status().as_u16();
        if response.headers().len() > max_headers {
            // Dropping the response resets its stream; the connection carries on.
            return Err(H2Failure::stream(HttpError::TooManyHeaders {
                limit: max_headers,
            }));
        }
        let rbuf = &mut bufs.rbuf;
        let layout = &mut bufs.layout;
        rbuf.clear();
        layout.headers.clear();
        layout.chunked = false;
        layout.coding = Coding::Identity;
        layout.status = status;
        rbuf.extend_from_slice(b"HTTP/2 ");
        rbuf.extend_from_slice(response.status().as_str().as_bytes());
        rbuf.extend_from_slice(b"\r\n");
        for (name, value) in response.headers() {
            let ns = rbuf.len();
            rbuf.extend_from_slice(name.as_str().as_bytes());
            let ne = rbuf.len();
            rbuf.extend_from_slice(b": ");
            let vs = rbuf.len();
            rbuf.extend_from_slice(value.as_bytes());
            layout.headers.push((ns, ne, vs, rbuf.len()));
            rbuf.extend_from_slice(b"\r\n");
            if name == http::header::CONTENT_ENCODING {
                layout.coding = Coding::of(value.as_bytes());
            }
        }
        rbuf.extend_from_slice(b"\r\n");
        let start = rbuf.len();
        let mut body = response.into_body();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(H2Failure::sent)?;
            let _ = body.flow_control().release_capacity(chunk.len());
            rbuf.extend_from_slice(&chunk);
        }
        layout.body = (start, rbuf.len());
        Ok((status, first_byte))
    }
}

/// A failed HTTP/2 exchange, with what decides what happens next.
#[derive(Debug)]
pub(super) struct H2Failure {
    pub error: HttpError,
    /// The connection refused a new stream before any of the request left (closed, or a
    /// GOAWAY came since its last response): the request may go on a new connection, once.
    pub unsent: bool,
    /// Only this stream failed (RST_STREAM, a response refused by the client's own limits):
    /// the connection carries the next request.
    pub stream_only: bool,
}

impl H2Failure {
    fn unsent(e: h2::Error) -> Self {
        H2Failure {
            error: h2_error(e),
            unsent: true,
            stream_only: false,
        }
    }

    /// After the request's stream was opened. A stream reset (by either side) leaves the
    /// connection as it was; a GOAWAY or an I/O error ends it.
    fn sent(e: h2::Error) -> Self {
        let stream_only = e.is_reset();
        H2Failure {
            error: h2_error(e),
            unsent: false,
            stream_only,
        }
    }

    fn stream(error: HttpError) -> Self {
        H2Failure {
            error,
            unsent: false,
            stream_only: true,
        }
    }
}

/// The HTTP/1.1 request the engine wrote, as an HTTP/2 request and its body.
fn to_h2<'r>(scheme: &str, request: &'r [u8]) -> Result<(http::Request<()>, &'r [u8]), HttpError> {
    let invalid =
        |why: String| HttpError::Protocol(format!("request not sendable as HTTP/2: {why}"));
    let mut slots = [httparse::EMPTY_HEADER; 128];
    let mut parsed = httparse::Request::new(&mut slots);
    let head_len = match parsed.parse(request) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(invalid("incomplete head".into())),
        Err(e) => return Err(invalid(e.to_string())),
    };
    let method = parsed.method.unwrap_or("GET");
    let path = parsed.path.unwrap_or("/");
    let authority = parsed
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .unwrap_or("");
    let mut builder = http::Request::builder()
        .method(method)
        .uri(format!("{scheme}://{authority}{path}"))
        .version(http::Version::HTTP_2);
    for h in parsed.headers.iter() {
        if NOT_SENT.iter().any(|n| h.name.eq_ignore_ascii_case(n)) {
            continue;
        }
        builder = builder.header(h.name, h.value);
    }
    let req = builder.body(()).map_err(|e| invalid(e.to_string()))?;
    Ok((req, &request[head_len..]))
}

fn h2_error(e: h2::Error) -> HttpError {
    if e.is_io() {
        match e.into_io() {
            Some(io) => HttpError::Io(io),
            None => HttpError::Protocol("HTTP/2: I/O error".into()),
        }
    } else if e.is_go_away() || e.is_reset() {
        HttpError::Io(io::Error::new(
            io::ErrorKind::ConnectionReset,
            format!("HTTP/2: {e}"),
        ))
    } else {
        HttpError::Protocol(format!("HTTP/2: {e}"))
    }
}

/// A stream that counts the bytes through it.
struct Counting<S> {
    inner: S,
    counters: Arc<Counters>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counting<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.counters.read.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counting<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.counters
                .written
                .fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
