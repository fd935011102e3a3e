//! HTTP/1.1 on one connection (RFC 9112): writes a request the caller serialized, reads one
//! response into the client's buffers, and when it fails says how far the exchange got, which
//! is what decides whether the request may be sent again.
//!
//! Headers stay where they were read and are kept as offsets; a chunked body is decoded into a
//! second buffer. Both buffers are reused, so a steady run allocates nothing per response.

use std::io;

use std::future::Future as _;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{HttpError, Truncation};

/// Header slots parsed on the stack. A limit above this parses a second time into a heap
/// array, only for a response that has more headers than this.
const STACK_HEADERS: usize = 100;
/// A response head larger than this is a protocol error, not a reason to grow forever.
pub(super) const MAX_HEAD_BYTES: usize = 256 * 1024;
/// A chunk-size or trailer line longer than this is a protocol error.
const MAX_CHUNK_LINE: usize = 64 * 1024;

/// Where the parts of the last response sit in [`Buffers::rbuf`].
#[derive(Debug, Default, Clone)]
pub(super) struct Layout {
    pub status: u16,
    /// Offsets of (name, value) pairs.
    pub headers: Vec<(usize, usize, usize, usize)>,
    /// The body's range, unless it was chunked and decoded into [`Buffers::decoded`].
    pub body: (usize, usize),
    pub chunked: bool,
    pub coding: super::decode::Coding,
}

/// The client's reusable buffers.
#[derive(Debug, Default)]
pub(super) struct Buffers {
    pub rbuf: Vec<u8>,
    pub decoded: Vec<u8>,
    /// The last body after its `Content-Encoding` was undone, when it had one.
    pub content: Vec<u8>,
    pub content_decoded: bool,
    pub layout: Layout,
}

/// How far a failed exchange got.
#[derive(Debug)]
pub(super) enum Failure {
    /// Nothing of the request reached the connection: its first write failed.
    Unsent(io::Error),
    /// The request was written, then the connection ended before any byte of a response.
    NoResponse { reset: bool },
    /// Anything else: a response had begun, or the failure is not the end of the connection.
    Error(HttpError),
}

/// One request and its response on one connection.
pub(super) struct Exchange<'a, S> {
    pub stream: &'a mut S,
    pub tls: bool,
    pub bufs: &'a mut Buffers,
    pub max_headers: usize,
    /// A response to HEAD has no body, whatever its headers say.
    pub head_request: bool,
    /// Bytes written and read so far.
    pub sent: u64,
    pub received: u64,
    /// When the first byte of a response arrived.
    pub first_byte: Option<std::time::Instant>,
}

enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

struct Head {
    len: usize,
    keep_alive: bool,
    framing: Framing,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Exchange<'_, S> {
    pub async fn write(&mut self, request: &[u8]) -> Result<(), Failure> {
        let mut written = 0;
        while written < request.len() {
            match self.stream.write(&request[written..]).await {
                Ok(0) => return Err(self.write_failed(written, io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    written += n;
                    self.sent += n as u64;
                }
                Err(e) => return Err(self.write_failed(written, e)),
            }
        }
        if self.tls {
            if let Err(e) = self.stream.flush().await {
                return Err(self.write_failed(written, e));
            }
        }
        Ok(())
    }

    fn write_failed(&self, written: usize, e: io::Error) -> Failure {
        if written == 0 {
            Failure::Unsent(e)
        } else if is_reset(&e) {
            Failure::NoResponse { reset: true }
        } else {
            Failure::Error(io_error(e, self.tls))
        }
    }

    /// Reads one response, skipping interim 1xx ones. `Ok(true)`: the connection can carry
    /// the next request.
    pub async fn read_response(&mut self) -> Result<bool, Failure> {
        self.bufs.rbuf.clear();
        let head = loop {
            let head = self.read_head().await?;
            match self.bufs.layout.status {
                101 => {
                    return Err(Failure::Error(HttpError::Protocol(
                        "101 Switching Protocols, but no upgrade was asked for".into(),
                    )))
                }
                100..=199 => {
                    self.bufs.rbuf.drain(..head.len);
                }
                _ => break head,
            }
        };
        let start = head.len;
        let end = match head.framing {
            Framing::Empty => {
                self.bufs.layout.body = (start, start);
                start
            }
            Framing::Length(n) => {
                let end = start.checked_add(n).ok_or_else(|| {
                    Failure::Error(HttpError::Protocol("Content-Length too large".into()))
                })?;
                while self.bufs.rbuf.len() < end {
                    let got = self.bufs.rbuf.len() - start;
                    self.more(
                        end - self.bufs.rbuf.len(),
                        Truncation::Body { got, expected: n },
                    )
                    .await?;
                }
                self.bufs.layout.body = (start, end);
                end
            }
            Framing::Chunked => {
                let end = self.read_chunked(start).await?;
                self.bufs.layout.chunked = true;
                end
            }
            Framing::UntilClose => {
                loop {
                    match self.fill(64 * 1024).await {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) if is_reset(&e) => {
                            let got = self.bufs.rbuf.len() - start;
                            return Err(Failure::Error(HttpError::Truncated {
                                what: Truncation::UntilClose { got },
                                reset: true,
                            }));
                        }
                        Err(e) => return Err(Failure::Error(io_error(e, self.tls))),
                    }
                }
                self.bufs.layout.body = (start, self.bufs.rbuf.len());
                return Ok(false);
            }
        };
        // Bytes past the response were sent unasked: the connection's state is unknown.
        Ok(head.keep_alive && self.bufs.rbuf.len() == end)
    }

    async fn read_head(&mut self) -> Result<Head, Failure> {
        loop {
            if !self.bufs.rbuf.is_empty() {
                match parse_head(
                    &self.bufs.rbuf,
                    &mut self.bufs.layout,
                    self.max_headers,
                    self.head_request,
                ) {
                    Ok(Some(head)) => return Ok(head),
                    Ok(None) if self.bufs.rbuf.len() > MAX_HEAD_BYTES => {
                        return Err(Failure::Error(HttpError::Protocol(format!(
                            "response head larger than {} KiB",
                            MAX_HEAD_BYTES / 1024
                        ))))
                    }
                    Ok(None) => {}
                    Err(e) => return Err(Failure::Error(e)),
                }
            }
            let got = self.bufs.rbuf.len();
            match self.fill(8192).await {
                Ok(true) => {}
                Ok(false) if self.received == 0 => {
                    return Err(Failure::NoResponse { reset: false })
                }
                Err(e) if self.received == 0 && is_reset(&e) => {
                    return Err(Failure::NoResponse { reset: true })
                }
                Ok(false) => {
                    return Err(Failure::Error(HttpError::Truncated {
                        what: Truncation::Head { got },
                        reset: false,
                    }))
                }
                Err(e) if is_reset(&e) => {
                    return Err(Failure::Error(HttpError::Truncated {
                        what: Truncation::Head { got },
                        reset: true,
                    }))
                }
                Err(e) => return Err(Failure::Error(io_error(e, self.tls))),
            }
        }
    }

    /// Decodes a chunked body that starts at `pos`; returns where the response ends.
    async fn read_chunked(&mut self, mut pos: usize) -> Result<usize, Failure> {
        self.bufs.decoded.clear();
        loop {
            let (line_end, next) = self.line(pos).await?;
            let size = chunk_size(&self.bufs.rbuf[pos..line_end]).ok_or_else(|| {
                Failure::Error(HttpError::Protocol("invalid chunk size line".into()))
            })?;
            pos = next;
            if size == 0 {
                // Trailer fields, if any, end with an empty line.
                loop {
                    let (line_end, next) = self.line(pos).await?;
                    let blank = line_end == pos;
                    pos = next;
                    if blank {
                        return Ok(pos);
                    }
                }
            }
            let data_end = pos.checked_add(size).ok_or_else(|| {
                Failure::Error(HttpError::Protocol("chunk size too large".into()))
            })?;
            self.need(data_end + 1).await?;
            let after = match self.bufs.rbuf[data_end] {
                b'\n' => data_end + 1,
                b'\r' => {
                    self.need(data_end + 2).await?;
                    if self.bufs.rbuf[data_end + 1] != b'\n' {
                        return Err(Failure::Error(HttpError::Protocol(
                            "chunk data not followed by a line end".into(),
                        )));
                    }
                    data_end + 2
                }
                _ => {
                    return Err(Failure::Error(HttpError::Protocol(
                        "chunk data longer than its size".into(),
                    )))
                }
            };
            self.bufs
                .decoded
                .extend_from_slice(&self.bufs.rbuf[pos..data_end]);
            pos = after;
        }
    }

    /// Reads until `rbuf` holds `len` bytes, inside a chunked body.
    async fn need(&mut self, len: usize) -> Result<(), Failure> {
        while self.bufs.rbuf.len() < len {
            let got = self.bufs.decoded.len();
            self.more(len - self.bufs.rbuf.len(), Truncation::Chunked { got })
                .await?;
        }
        Ok(())
    }

    /// The line starting at `pos` inside a chunked body: where its text ends (before CRLF or
    /// a bare LF) and where the next line starts.
    async fn line(&mut self, pos: usize) -> Result<(usize, usize), Failure> {
        let mut from = pos;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.bufs.rbuf[from..]) {
                let lf = from + i;
                let end = if lf > pos && self.bufs.rbuf[lf - 1] == b'\r' {
                    lf - 1
                } else {
                    lf
                };
                return Ok((end, lf + 1));
            }
            if self.bufs.rbuf.len() - pos > MAX_CHUNK_LINE {
                return Err(Failure::Error(HttpError::Protocol(
                    "chunk size or trailer line too long".into(),
                )));
            }
            from = self.bufs.rbuf.len();
            let got = self.bufs.decoded.len();
            self.more(8192, Truncation::Chunked { got }).await?;
        }
    }

    /// Reads more of a response that has begun: the connection ending here cuts it short.
    async fn more(&mut self, want: usize, what: Truncation) -> Result<(), Failure> {
        match self.fill(want).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Failure::Error(HttpError::Truncated { what, reset: false })),
            Err(e) if is_reset(&e) => {
                Err(Failure::Error(HttpError::Truncated { what, reset: true }))
            }
            Err(e) => Err(Failure::Error(io_error(e, self.tls))),
        }
    }

    /// Reads what is there into `rbuf`: `Ok(false)` when the peer has closed. A TLS peer that
    /// closes without close_notify has closed too (as curl takes it): whether that cut a body
    /// short is for the framing to say, and only a close-delimited body ends that way.
    async fn fill(&mut self, want: usize) -> io::Result<bool> {
        reserve(&mut self.bufs.rbuf, want);
        match self.stream.read_buf(&mut self.bufs.rbuf).await {
            Ok(0) => Ok(false),
            Ok(n) => {
                if self.received == 0 {
                    self.first_byte = Some(std::time::Instant::now());
                }
                self.received += n as u64;
                Ok(true)
            }
            Err(e) if self.tls && e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Reads one response from `bytes` as the client reads it from a connection, for the fuzz
/// targets: its status and body length, or why it is not a valid response.
pub fn parse_response(bytes: &[u8], max_headers: usize) -> Result<(u16, usize), String> {
    let mut stream = tokio::io::join(bytes, tokio::io::sink());
    let mut bufs = Buffers::default();
    let outcome = {
        let mut ex = Exchange {
            stream: &mut stream,
            tls: false,
            bufs: &mut bufs,
            max_headers,
            head_request: false,
            sent: 0,
            received: 0,
            first_byte: None,
        };
        // An in-memory stream never waits, so one poll finishes the read.
        let mut read = std::pin::pin!(ex.read_response());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match read.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => return Err("the read waited on memory".into()),
        }
    };
    match outcome {
        Ok(_) => {
            let (a, b) = bufs.layout.body;
            let len = if bufs.layout.chunked {
                bufs.decoded.len()
            } else {
                b.saturating_sub(a)
            };
            Ok((bufs.layout.status, len))
        }
        Err(Failure::Error(e)) => Err(e.to_string()),
        Err(Failure::NoResponse { reset }) => Err(format!("no response (reset: {reset})")),
        Err(Failure::Unsent(e)) => Err(e.to_string()),
    }
}

fn reserve(buf: &mut Vec<u8>, want: usize) {
    let free = buf.capacity() - buf.len();
    if free < want.min(64 * 1024) {
        buf.reserve(want.clamp(8192, 1 << 20));
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

pub(super) fn io_error(e: io::Error, tls: bool) -> HttpError {
    // tokio-rustls reports TLS failures as InvalidData wrapping a rustls error.
    if tls && e.kind() == io::ErrorKind::InvalidData {
        HttpError::Tls(e)
    } else {
        HttpError::Io(e)
    }
}

/// Parses a complete response head, or says it is not complete yet (`Ok(None)`).
fn parse_head(
    buf: &[u8],
    layout: &mut Layout,
    max_headers: usize,
    head_request: bool,
) -> Result<Option<Head>, HttpError> {
    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    let slots = max_headers.min(STACK_HEADERS);
    match parse_into(buf, &mut stack[..slots], layout, head_request) {
        Err(HttpError::TooManyHeaders { .. }) if max_headers > STACK_HEADERS => {
            let mut heap = vec![httparse::EMPTY_HEADER; max_headers];
            parse_into(buf, &mut heap, layout, head_request)
        }
        parsed => parsed,
    }
}

fn parse_into<'b>(
    buf: &'b [u8],
    headers: &mut [httparse::Header<'b>],
    layout: &mut Layout,
    head_request: bool,
) -> Result<Option<Head>, HttpError> {
    let limit = headers.len();
    let mut resp = httparse::Response::new(headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders { limit }),
        Err(e) => return Err(HttpError::Protocol(format!("invalid response head: {e}"))),
    };
    let status = resp.code.unwrap_or(0);
    // RFC 9110 §15: a status code is 100 to 599; "000" is no answer to count as a status.
    if !(100..600).contains(&status) {
        return Err(HttpError::Protocol(format!(
            "invalid response head: status code {status} is not 100..599"
        )));
    }
    let version = resp.version.unwrap_or(1);
    let base = buf.as_ptr() as usize;
    layout.status = status;
    layout.chunked = false;
    layout.coding = super::decode::Coding::Identity;
    layout.headers.clear();
    let mut length: Option<usize> = None;
    let mut transfer_encoding = false;
    let mut chunked = false;
    let mut close = version == 0;
    for h in resp.headers.iter() {
        let ns = h.name.as_ptr() as usize - base;
        let vs = h.value.as_ptr() as usize - base;
        layout
            .headers
            .push((ns, ns + h.name.len(), vs, vs + h.value.len()));
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = content_length(h.value).ok_or_else(|| {
                HttpError::Protocol(format!(
                    "invalid Content-Length {:?}",
                    String::from_utf8_lossy(h.value)
                ))
            })?;
            match length {
                Some(m) if m != n => {
                    return Err(HttpError::Protocol(format!(
                        "conflicting Content-Length values {m} and {n}"
                    )))
                }
                _ => length = Some(n),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            // The last coding applied frames the body.
            chunked = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("content-encoding") {
            layout.coding = super::decode::Coding::of(h.value);
        } else if h.name.eq_ignore_ascii_case("connection") {
            if contains_token(h.value, b"close") {
                close = true;
            } else if version == 0 && contains_token(h.value, b"keep-alive") {
                close = false;
            }
        }
    }
    // RFC 9112 §6.3, in its order.
    let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304
    {
        Framing::Empty
    } else if transfer_encoding {
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    // Transfer-Encoding wins over Content-Length, but a response with both is how request
    // smuggling starts: its connection is not used again.
    let both_framings = transfer_encoding && length.is_some();
    let keep_alive = !(close || both_framings);
    Ok(Some(Head {
        len,
        keep_alive,
        framing,
    }))
}

/// A Content-Length value: digits, or a list of identical ones (RFC 9110 §8.6).
fn content_length(value: &[u8]) -> Option<usize> {
    let mut found = None;
    for part in value.split(|&b| b == b',') {
        let digits = part.trim_ascii();
        if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
        match found {
            Some(m) if m != n => return None,
            _ => found = Some(n),
        }
    }
    found
}

/// A chunk-size line without its line end: hex digits, then optional extensions.
fn chunk_size(line: &[u8]) -> Option<usize> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 15 {
        return None;
    }
    let rest = &line[digits..];
    let ws = rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    let rest = &rest[ws..];
    if !(rest.is_empty() || rest[0] == b';') {
        return None;
    }
    usize::from_str_radix(std::str::from_utf8(&line[..digits]).ok()?, 16).ok()
}

fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mutated responses (fixed seeds): a status and a body no longer than what was read, or an
    /// error; never a panic.
    #[test]
    fn mutated_responses_never_panic() {
        const SEEDS: &[&[u8]] = &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n0\r\nT: 1\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
            b"HTTP/1.0 200 OK\r\n\r\nuntil close",
        ];
        const TOKENS: &[&[u8]] = &[
            b"\r\n",
            b"\n",
            b":",
            b" ",
            b"\xff",
            b"Content-Length: ",
            b"Transfer-Encoding: chunked",
            b"18446744073709551616",
            b"-1",
            b"ffffffffffffffff",
            b"0\r\n\r\n",
            b"HTTP/1.1 ",
        ];
        for seed in 0..5000u64 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut bytes = SEEDS[rng.usize(0..SEEDS.len())].to_vec();
            for _ in 0..rng.usize(1..4) {
                let at = rng.usize(0..=bytes.len());
                match rng.u8(0..3) {
                    0 => {
                        let t = TOKENS[rng.usize(0..TOKENS.len())];
                        bytes.splice(at..at, t.iter().copied());
                    }
                    1 => {
                        let end = (at + rng.usize(0..8)).min(bytes.len());
                        bytes.drain(at..end);
                    }
                    _ => {
                        if at < bytes.len() {
                            bytes[at] = rng.u8(..);
                        }
                    }
                }
            }
            if let Ok((status, body)) = parse_response(&bytes, 100) {
                assert!(body <= bytes.len(), "seed {seed}: {bytes:?}");
                assert!((100..600).contains(&status), "seed {seed}: {bytes:?}");
            }
        }
    }

    /// The entry point the fuzz target uses reads what a connection would give.
    #[test]
    fn responses_in_memory() {
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 100),
            Ok((200, 2))
        );
        assert_eq!(
            parse_response(
                b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                100
            ),
            Ok((201, 3))
        );
        for bad in [
            &b""[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nhi",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n",
            b"\xff\xfe",
            // Found by mutation: a status "000" was taken as a response with status 0.
            b"HTTP/1.0 000 OK\r\n\r\nuntil\xff close",
            b"HTTP/1.1 999 Nine\r\nContent-Length: 0\r\n\r\n",
        ] {
            assert!(
                parse_response(bad, 100).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn chunk_size_lines() {
        assert_eq!(chunk_size(b"1a"), Some(26));
        assert_eq!(chunk_size(b"1A;name=value;other"), Some(26));
        assert_eq!(chunk_size(b"0 ; ext"), Some(0));
        assert_eq!(chunk_size(b""), None);
        assert_eq!(chunk_size(b";ext"), None);
        assert_eq!(chunk_size(b"5 x"), None);
        assert_eq!(chunk_size(b"-5"), None);
        assert_eq!(chunk_size(b"1234567890abcdef"), None);
    }

    #[test]
    fn content_length_values() {
        assert_eq!(content_length(b"100"), Some(100));
        assert_eq!(content_length(b" 7 , 7"), Some(7));
        assert_eq!(content_length(b"7, 8"), None);
        assert_eq!(content_length(b"+7"), None);
        assert_eq!(content_length(b""), None);
        assert_eq!(content_length(b"0x10"), None);
    }
}
