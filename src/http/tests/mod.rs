//! The HTTP/1.1 conformance suite: every case runs against a [`server::ScriptedServer`] over
//! plain TCP and over TLS, with responses split across writes at awkward offsets, and checks
//! both what the client reported (status, body, error kind and message, retries) and what the
//! server received (how many requests, on which connections: never a POST twice).

pub(crate) mod h2server;
pub(crate) mod server;

pub(crate) use super::decode::encode as encode_for_test;

use std::time::Duration;

use server::{answer, ok, ScriptedServer, Split, Step, Transport, BOTH};

use super::{Client, ClientOptions, HttpError, Method};
use crate::record::ErrorKind;

fn client() -> Client {
    // The suite's certificate is self-signed; verification has its own case.
    Client::new(ClientOptions::new(true))
}

/// Sends one request and returns the status and body, within a time limit.
async fn call(
    client: &mut Client,
    server: &ScriptedServer,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(u16, Vec<u8>), HttpError> {
    client.request.clear();
    client.request.extend_from_slice(
        format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    client.request.extend_from_slice(body);
    let origin = server.origin();
    let sent = client.send(&origin, Method::of(method.as_bytes()));
    let status = tokio::time::timeout(Duration::from_secs(10), sent)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{method} {path} over {:?}: no answer in 10s",
                server.transport
            )
        })?;
    Ok((status, client.body().to_vec()))
}

async fn get(client: &mut Client, server: &ScriptedServer) -> Result<(u16, Vec<u8>), HttpError> {
    call(client, server, "GET", "/", b"").await
}

pub(crate) fn text(body: &[u8]) -> &str {
    std::str::from_utf8(body).unwrap()
}

/// Offsets at which `bytes` is cut: before each of `marks` and in the middle of each.
pub(crate) fn cuts(bytes: &[u8], marks: &[&str]) -> Split {
    let mut at = Vec::new();
    for m in marks {
        let i = memchr::memmem::find(bytes, m.as_bytes())
            .unwrap_or_else(|| panic!("{m:?} not in the response"));
        at.push(i);
        at.push(i + m.len() / 2);
    }
    at.sort_unstable();
    Split::At(at)
}

// ---------------------------------------------------------------------------------------------
// What the client already handled
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_response_split_anywhere_reads_the_same() {
    let response = b"HTTP/1.1 200 OK\r\nX-Trace: abc\r\nContent-Length: 5\r\n\r\nhello";
    let splits = [
        Split::Bytes,
        // Inside the status line, inside a header name and value, between CR and LF, inside the
        // blank line and the body.
        cuts(
            response,
            &[
                "HTTP/1.1 200",
                "X-Trace",
                "abc",
                "\r\nContent",
                "\r\n\r\n",
                "hello",
            ],
        ),
    ];
    for t in BOTH {
        for split in splits.clone() {
            let server = ScriptedServer::start(
                t,
                vec![vec![
                    Step::Read,
                    Step::Write(response.to_vec(), split.clone()),
                ]],
            )
            .await;
            let mut c = client();
            let (status, body) = get(&mut c, &server).await.unwrap();
            assert_eq!((status, text(&body)), (200, "hello"), "{t:?} {split:?}");
            assert_eq!(c.header("x-trace"), Some("abc"));
        }
    }
}

#[tokio::test]
async fn chunked_bodies_with_extensions_and_trailers() {
    let mut response =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=\"v\"\r\nhello\r\n1A ; x\r\n"
            .to_vec();
    response.extend_from_slice(
        b"abcdefghijklmnopqrstuvwxyz\r\n0;last\r\nTrailer-A: 1\r\nTrailer-B: 2\r\n\r\n",
    );
    let splits = [
        Split::Bytes,
        // Inside a chunk size, inside an extension, between a chunk's data and its CRLF,
        // between CR and LF, inside the trailers.
        cuts(
            &response,
            &["1A", "name=", "\r\n1A", "\r\n0;", "Trailer-A", "\r\n\r\n"],
        ),
    ];
    for t in BOTH {
        for split in splits.clone() {
            let server = ScriptedServer::start(
                t,
                vec![vec![
                    Step::Read,
                    Step::Write(response.clone(), split.clone()),
                    Step::Read,
                    Step::Write(ok("again"), Split::Whole),
                ]],
            )
            .await;
            let mut c = client();
            let (status, body) = get(&mut c, &server).await.unwrap();
            assert_eq!(status, 200);
            assert_eq!(
                text(&body),
                "helloabcdefghijklmnopqrstuvwxyz",
                "{t:?} {split:?}"
            );
            // The connection is ready for the next response.
            let (_, body) = get(&mut c, &server).await.unwrap();
            assert_eq!(text(&body), "again");
            assert_eq!(server.connections(), 1);
        }
    }
}

#[tokio::test]
async fn interim_responses_come_before_the_final_one() {
    let response = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 201 Created\r\nLocation: /x/1\r\nContent-Length: 2\r\n\r\nok";
    for t in BOTH {
        for split in [
            Split::Whole,
            Split::Bytes,
            cuts(response, &["HTTP/1.1 103", "HTTP/1.1 201"]),
        ] {
            let server = ScriptedServer::start(
                t,
                vec![vec![Step::Read, Step::Write(response.to_vec(), split)]],
            )
            .await;
            let mut c = client();
            let (status, body) = call(&mut c, &server, "POST", "/x", b"{}").await.unwrap();
            assert_eq!((status, text(&body)), (201, "ok"), "{t:?}");
            assert_eq!(c.header("location"), Some("/x/1"));
            assert_eq!(c.header("link"), None, "headers are the final response's");
        }
    }
}

#[tokio::test]
async fn head_204_and_304_have_no_body_whatever_their_headers_say() {
    for t in BOTH {
        let server = ScriptedServer::start(
            t,
            vec![[
                answer(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
                answer(b"HTTP/1.1 204 No Content\r\n\r\n"),
                answer(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: \"e\"\r\n\r\n"),
                answer(&ok("after")),
            ]
            .concat()],
        )
        .await;
        let mut c = client();
        let (status, body) = call(&mut c, &server, "HEAD", "/", b"").await.unwrap();
        assert_eq!((status, body.len()), (200, 0), "{t:?}");
        let (status, body) = get(&mut c, &server).await.unwrap();
        assert_eq!((status, body.len()), (204, 0));
        let (status, body) = get(&mut c, &server).await.unwrap();
        assert_eq!((status, body.len()), (304, 0));
        // Had a body been expected, this response would have been read as one.
        let (status, body) = get(&mut c, &server).await.unwrap();
        assert_eq!((status, text(&body)), (200, "after"));
        assert_eq!(server.connections(), 1);
    }
}

#[tokio::test]
async fn close_delimited_bodies_end_with_the_connection() {
    for t in BOTH {
        // Over TLS, with and without close_notify: curl takes both, since the framing is the
        // close itself.
        for close in [Step::Close, Step::CloseAbruptly] {
            let server = ScriptedServer::start(
                t,
                vec![vec![
                    Step::Read,
                    Step::Write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ".to_vec(),
                        Split::Whole,
                    ),
                    Step::Pause(Duration::from_millis(5)),
                    Step::Write(b"the end".to_vec(), Split::Bytes),
                    close.clone(),
                ]],
            )
            .await;
            let mut c = client();
            let (status, body) = get(&mut c, &server).await.unwrap();
            assert_eq!(
                (status, text(&body)),
                (200, "until the end"),
                "{t:?} {close:?}"
            );
        }
        // The next request needs a new connection.
        let server = ScriptedServer::start(
            t,
            vec![vec![
                Step::Read,
                Step::Write(b"HTTP/1.1 200 OK\r\n\r\nx".to_vec(), Split::Whole),
                Step::Close,
            ]],
        )
        .await;
        let mut c = client();
        get(&mut c, &server).await.unwrap();
        get(&mut c, &server).await.unwrap();
        assert_eq!(server.connections(), 2);
    }
}

#[tokio::test]
async fn http_1_0_responses_close_unless_kept_alive() {
    for t in BOTH {
        let server = ScriptedServer::start(
            t,
            vec![answer(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")],
        )
        .await;
        let mut c = client();
        assert_eq!(text(&get(&mut c, &server).await.unwrap().1), "ok");
        assert_eq!(text(&get(&mut c, &server).await.unwrap().1), "ok");
        assert_eq!(server.connections(), 2, "{t:?}: HTTP/1.0 closes by default");

        let server = ScriptedServer::start(
            t,
            vec![[
                answer(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"),
                answer(b"HTTP/1.0 200 OK\r\n\r\nuntil close"),
                vec![Step::Close],
            ]
            .concat()],
        )
        .await;
        let mut c = client();
        assert_eq!(text(&get(&mut c, &server).await.unwrap().1), "ok");
        assert_eq!(text(&get(&mut c, &server).await.unwrap().1), "until close");
        assert_eq!(server.connections(), 1, "{t:?}");
    }
}

#[tokio::test]
async fn eight_mib_bodies_by_length_and_chunked() {
    let big: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut by_length =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", big.len()).into_bytes();
    by_length.extend_from_slice(&big);
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in big.chunks(100_000) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    for t in BOTH {
        let server = ScriptedServer::start(
            t,
            vec![vec![
                Step::Read,
                Step::Write(by_length.clone(), Split::At(vec![100, 1 << 20, 5 << 20])),
                Step::Read,
                Step::Write(chunked.clone(), Split::At(vec![60, 100_000, 3 << 20])),
            ]],
        )
        .await;
        let mut c = client();
        let before = c.bytes_in;
        let (_, body) = get(&mut c, &server).await.unwrap();
        assert!(body == big, "{t:?}: Content-Length body differs");
        let (_, body) = get(&mut c, &server).await.unwrap();
        assert!(body == big, "{t:?}: chunked body differs");
        assert_eq!(
            c.bytes_in - before,
            (by_length.len() + chunked.len()) as u64
        );
    }
}

#[tokio::test]
async fn bare_lf_line_endings() {
    for t in BOTH {
        let server = ScriptedServer::start(
            t,
            vec![[
                answer(b"HTTP/1.1 200 OK\nX-A: b\nContent-Length: 2\n\nok"),
                answer(b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\nT: x\n\n"),
                answer(&ok("next")),
            ]
            .concat()],
        )
        .await;
        let mut c = client();
        let (_, body) = get(&mut c, &server).await.unwrap();
        assert_eq!((text(&body), c.header("x-a")), ("ok", Some("b")), "{t:?}");
        assert_eq!(text(&get(&mut c, &server).await.unwrap().1), "abc");
        assert_eq!(text(&get(&mut c, &server).await.unwrap().1), "next");
        assert_eq!(server.connections(), 1);
    }
}

#[tokio::test]
async fn transfer_encoding_wins_over_content_length_and_the_connection_is_dropped() {
    for t in BOTH {
        let server = ScriptedServer::start(
            t,
            vec![answer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")],
        )
        .await;
        let mut c = client();
        assert_eq!(text(&get(&mut c, &server).await.unwrap().1), "ok", "{t:?}");
        // A response framed two ways is how request smuggling starts: not reused.
        assert_eq!(text(&get(&mut c, &server).await.unwrap().1), "ok");
        assert_eq!(server.connections(), 2);
    }
}

#[tokio::test]
async fn several_content_lengths_must_agree() {
    for t in BOTH {
        for same in [
            "Content-Length: 2\r\nContent-Length: 2\r\n",
            "Content-Length: 2, 2\r\n",
        ] {
            let server = ScriptedServer::start(
                t,
                vec![answer(
                    format!("HTTP/1.1 200 OK\r\n{same}\r\nok").as_bytes(),
                )],
            )
            .await;
            assert_eq!(text(&get(&mut client(), &server).await.unwrap().1), "ok");
        }
        for differ in [
            "Content-Length: 2\r\nContent-Length: 3\r\n",
            "Content-Length: 2, 3\r\n",
            "Content-Length: +2\r\n",
        ] {
            let server = ScriptedServer::start(
                t,
                vec![answer(
                    format!("HTTP/1.1 200 OK\r\n{differ}\r\nok!").as_bytes(),
                )],
            )
            .await;
            let e = get(&mut client(), &server).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Protocol, "{t:?} {differ:?}: {e}");
        }
    }
}

#[tokio::test]
async fn keep_alive_reuse_until_connection_close() {
    for t in BOTH {
        let server = ScriptedServer::start(
            t,
            vec![[
                answer(&ok("1")),
                answer(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n2"),
            ]
            .concat()],
        )
        .await;
        let mut c = client();
        for want in ["1", "2", "1"] {
            assert_eq!(text(&get(&mut c, &server).await.unwrap().1), want, "{t:?}");
        }
        let conns: Vec<usize> = server.requests().iter().map(|r| r.conn).collect();
        assert_eq!(conns, vec![0, 0, 1]);
    }
}

/// A server that closes a keep-alive connection while it is idle (its keep-alive timeout):
/// the next request, of any method, goes on a new connection, sent once, with no error.
#[tokio::test]
async fn a_connection_closed_while_idle_is_not_used() {
    for t in BOTH {
        for method in ["GET", "POST"] {
            let server = ScriptedServer::start(
                t,
                vec![[
                    answer(&ok("a")),
                    vec![Step::Pause(Duration::from_millis(20)), Step::Close],
                ]
                .concat()],
            )
            .await;
            let mut c = client();
            call(&mut c, &server, method, "/", b"x").await.unwrap();
            tokio::time::sleep(Duration::from_millis(150)).await;
            let (status, _) = call(&mut c, &server, method, "/", b"x").await.unwrap();
            assert_eq!(status, 200, "{t:?} {method}");
            let got = server.settle(2).await;
            assert_eq!(got.len(), 2, "{t:?} {method}: {got:?}");
            assert_eq!(server.connections(), 2);
            assert_eq!(c.retries, 0, "nothing was written on the closed connection");
        }
    }
}

/// A server that closes right after answering, without `Connection: close`: the close is
/// seen before the next request is written (or, when it races the write, a GET goes again on a
/// fresh connection), and the server sees each request once.
#[tokio::test]
async fn a_server_that_closes_after_each_answer_sees_each_request_once() {
    for t in BOTH {
        let server =
            ScriptedServer::start(t, vec![[answer(&ok("a")), vec![Step::Close]].concat()]).await;
        let mut c = client();
        for _ in 0..5 {
            assert_eq!(get(&mut c, &server).await.unwrap().0, 200, "{t:?}");
        }
        let got = server.settle(5).await;
        assert_eq!(got.len(), 5, "{t:?}: {got:?}");
        assert!(c.retries <= 5);
    }
}

/// Bytes a server sends on an idle connection (a 408 before it closes) are not the answer
/// to the next request.
#[tokio::test]
async fn an_unsolicited_response_retires_the_connection() {
    for t in BOTH {
        let server = ScriptedServer::start(
            t,
            vec![
                [
                    answer(&ok("first")),
                    vec![
                        Step::Pause(Duration::from_millis(20)),
                        Step::Write(
                            b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n".to_vec(),
                            Split::Whole,
                        ),
                    ],
                ]
                .concat(),
                answer(&ok("second")),
            ],
        )
        .await;
        let mut c = client();
        get(&mut c, &server).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        let (status, body) = get(&mut c, &server).await.unwrap();
        assert_eq!((status, text(&body)), (200, "second"), "{t:?}");
    }
}

#[tokio::test]
async fn broken_responses_are_protocol_errors() {
    for t in BOTH {
        for response in [
            &b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n"[..],
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n",
            b"<html>not http</html>\r\n\r\n",
        ] {
            let server = ScriptedServer::start(t, vec![answer(response)]).await;
            let e = get(&mut client(), &server).await.unwrap_err();
            assert_eq!(
                e.kind(),
                ErrorKind::Protocol,
                "{t:?} {:?}: {e}",
                String::from_utf8_lossy(response)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Regressions: each once sent a request twice, hid a short response, or refused a good one
// ---------------------------------------------------------------------------------------------

/// A server reads a POST on a reused connection and closes without answering. The POST was
/// sent once and is an error; a GET in the same place is sent again and counted as retried.
#[tokio::test]
async fn a_non_idempotent_request_is_never_sent_twice() {
    for t in BOTH {
        for end in [Step::Close, Step::Reset] {
            for method in ["POST", "PATCH", "PUT", "DELETE"] {
                let server = ScriptedServer::start(
                    t,
                    vec![
                        [answer(&ok("warm")), vec![Step::Read, end.clone()]].concat(),
                        answer(&ok("would be a duplicate")),
                    ],
                )
                .await;
                let mut c = client();
                get(&mut c, &server).await.unwrap();
                let e = call(&mut c, &server, method, "/orders", b"{\"sku\":1}")
                    .await
                    .unwrap_err();
                assert_eq!(
                    e.kind(),
                    ErrorKind::ConnectionReset,
                    "{t:?} {end:?} {method}: {e}"
                );
                let message = e.to_string();
                assert!(message.contains("after the request was sent"), "{message}");
                assert!(message.contains("not sent again"), "{message}");
                let got = server.settle(2).await;
                let sent: Vec<&str> = got.iter().map(|r| r.method()).collect();
                assert_eq!(sent, vec!["GET", method], "{t:?} {end:?}");
                assert_eq!(got[1].body, b"{\"sku\":1}", "the body arrived once, whole");
                assert_eq!(c.retries, 0);
            }
            // A GET is safe to send again.
            let server = ScriptedServer::start(
                t,
                vec![
                    [answer(&ok("warm")), vec![Step::Read, end.clone()]].concat(),
                    answer(&ok("fresh")),
                ],
            )
            .await;
            let mut c = client();
            get(&mut c, &server).await.unwrap();
            let (status, body) = get(&mut c, &server).await.unwrap();
            assert_eq!((status, text(&body)), (200, "fresh"), "{t:?} {end:?}");
            assert_eq!(c.retries, 1, "the second send is counted");
            let conns: Vec<usize> = server.settle(3).await.iter().map(|r| r.conn).collect();
            assert_eq!(conns, vec![0, 0, 1]);
        }
    }
}

/// On a fresh connection nothing is sent again, whatever the method.
#[tokio::test]
async fn no_response_on_a_new_connection_is_an_error() {
    for t in BOTH {
        let server = ScriptedServer::start(t, vec![vec![Step::Read, Step::Close]]).await;
        let mut c = client();
        let e = get(&mut c, &server).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{t:?}: {e}");
        assert_eq!(
            e.to_string(),
            "connection closed after the request was sent, before any response"
        );
        assert_eq!(server.settle(1).await.len(), 1);
        assert_eq!(c.retries, 0);
    }
}

/// `Content-Length: 100`, 40 bytes, close, on a reused connection: an error, never a stale
/// connection, and nothing sent again. The same for a chunked body and a head cut short.
#[tokio::test]
async fn a_response_that_ends_early_is_an_error() {
    let mut short = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec();
    short.extend_from_slice(&[b'x'; 40]);
    let cases: [(&[u8], &str); 3] = [
        (
            &short,
            "connection closed after 40 of 100 body bytes (Content-Length)",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nabc",
            "connection closed in the middle of a chunked body (5 bytes decoded, no last chunk)",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Le",
            "connection closed part-way through the response head (27 bytes)",
        ),
    ];
    for t in BOTH {
        for (response, message) in cases {
            for end in [Step::Close, Step::CloseAbruptly] {
                let server = ScriptedServer::start(
                    t,
                    vec![
                        [answer(&ok("warm")), answer(response), vec![end.clone()]].concat(),
                        answer(&ok("would be a re-send")),
                    ],
                )
                .await;
                let mut c = client();
                get(&mut c, &server).await.unwrap();
                let e = get(&mut c, &server).await.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{t:?} {end:?}: {e}");
                assert_eq!(e.to_string(), message, "{t:?} {end:?}");
                assert_eq!(server.settle(2).await.len(), 2, "{t:?}: nothing sent again");
                assert_eq!(server.connections(), 1);
            }
        }
    }
}

/// The header limit is hyper's 100 by default, and the scenario can raise or lower it.
#[tokio::test]
async fn the_header_limit_is_configurable() {
    fn with_headers(n: usize) -> Vec<u8> {
        let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..n - 1 {
            r.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        r.extend_from_slice(b"Content-Length: 2\r\n\r\nok");
        r
    }
    for t in BOTH {
        for (limit, headers, fine) in [
            (None, 100, true),
            (None, 101, false),
            (Some(150), 101, true),
            (Some(150), 150, true),
            (Some(150), 151, false),
            (Some(10), 11, false),
        ] {
            let server = ScriptedServer::start(t, vec![answer(&with_headers(headers))]).await;
            let mut options = ClientOptions::new(true);
            if let Some(n) = limit {
                options = options.with_max_response_headers(n);
            }
            let got = get(&mut Client::new(options), &server).await;
            match got {
                Ok((status, _)) => assert!(fine && status == 200, "{t:?} {limit:?} {headers}"),
                Err(e) => {
                    assert!(!fine, "{t:?} {limit:?} {headers}: {e}");
                    assert_eq!(e.kind(), ErrorKind::Protocol);
                    let limit = limit.unwrap_or(100);
                    assert_eq!(
                        e.to_string(),
                        format!("invalid response: more than {limit} header fields (max_response_headers in the scenario raises the limit)")
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn a_self_signed_certificate_error_names_insecure() {
    let server = ScriptedServer::start(Transport::Tls, vec![answer(&ok("x"))]).await;
    let mut c = Client::new(ClientOptions::new(false));
    let e = get(&mut c, &server).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls);
    let message = e.to_string();
    assert!(message.contains("--insecure"), "{message}");
    assert!(message.contains("self-signed"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// Content codings
// ---------------------------------------------------------------------------------------------

/// gzip, deflate, br and zstd bodies, framed by length or chunked and cut at awkward offsets,
/// read decoded; the wire bytes and the decoded bytes are both counted.
#[tokio::test]
async fn encoded_bodies_are_decoded() {
    use super::decode::{encode, Coding};
    let data = "{\"order\": 7, \"note\": \"très bien\"} ".repeat(50);
    for t in BOTH {
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Br, Coding::Zstd] {
            let packed = encode(coding, data.as_bytes());
            let mut by_length = format!(
                "HTTP/1.1 200 OK\r\nContent-Encoding: {}\r\nContent-Length: {}\r\n\r\n",
                coding.name(),
                packed.len()
            )
            .into_bytes();
            by_length.extend_from_slice(&packed);
            let mut chunked = format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: {}\r\n\r\n",
                coding.name()
            )
            .into_bytes();
            let half = packed.len() / 2;
            for part in [&packed[..half], &packed[half..]] {
                chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                chunked.extend_from_slice(part);
                chunked.extend_from_slice(b"\r\n");
            }
            chunked.extend_from_slice(b"0\r\n\r\n");
            let body_at = |r: &[u8]| memchr::memmem::find(r, b"\r\n\r\n").unwrap() + 4;
            let splits = [
                Split::At(vec![body_at(&by_length) + 1, body_at(&by_length) + 7]),
                Split::At(vec![body_at(&chunked) + 2, chunked.len() - 4]),
            ];
            let server = ScriptedServer::start(
                t,
                vec![vec![
                    Step::Read,
                    Step::Write(by_length.clone(), splits[0].clone()),
                    Step::Read,
                    Step::Write(chunked.clone(), splits[1].clone()),
                ]],
            )
            .await;
            let mut c = client();
            for wire in [&by_length, &chunked] {
                let (in0, dec0) = (c.bytes_in, c.bytes_in_decoded);
                let (status, body) = get(&mut c, &server).await.unwrap();
                assert_eq!(
                    (status, text(&body)),
                    (200, data.as_str()),
                    "{t:?} {coding:?}"
                );
                if t == Transport::Tcp {
                    assert_eq!(c.bytes_in - in0, wire.len() as u64);
                }
                let head_and_framing = (c.bytes_in - in0) as usize - packed.len();
                assert_eq!(
                    c.bytes_in_decoded - dec0,
                    (head_and_framing + data.len()) as u64,
                    "{t:?} {coding:?}"
                );
            }
            assert_eq!(server.connections(), 1);
        }
    }
}

/// A body that does not decode is a `protocol` error, and the next identity response on the
/// connection is read as it came.
#[tokio::test]
async fn a_body_that_does_not_decode_is_a_protocol_error() {
    for t in BOTH {
        let bad = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello";
        let server =
            ScriptedServer::start(t, vec![[answer(bad), answer(&ok("plain"))].concat()]).await;
        let mut c = client();
        let err = get(&mut c, &server).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{t:?}");
        assert!(
            err.to_string().contains("gzip body could not be decoded"),
            "{err}"
        );
        let (status, body) = get(&mut c, &server).await.unwrap();
        assert_eq!((status, text(&body)), (200, "plain"));
        assert_eq!(server.connections(), 1);
        // An unknown coding is left as it came.
        let odd = b"HTTP/1.1 200 OK\r\nContent-Encoding: compress\r\nContent-Length: 3\r\n\r\nabc";
        let server = ScriptedServer::start(t, vec![answer(odd)]).await;
        let (status, body) = get(&mut client(), &server).await.unwrap();
        assert_eq!((status, text(&body)), (200, "abc"));
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/2
// ---------------------------------------------------------------------------------------------

use crate::scenario::HttpVersion;
use h2server::{Answer, H2Server, Script};

fn client_speaking(v: HttpVersion) -> Client {
    Client::new(ClientOptions::new(true).with_http_version(v))
}

async fn call_at(
    client: &mut Client,
    origin: &crate::url::Origin,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(u16, Vec<u8>), HttpError> {
    client.request.clear();
    client.request.extend_from_slice(
        format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: t\r\nContent-Length: {}\r\n\r\n",
            origin.port,
            body.len()
        )
        .as_bytes(),
    );
    client.request.extend_from_slice(body);
    let sent = client.send(origin, Method::of(method.as_bytes()));
    let status = tokio::time::timeout(Duration::from_secs(10), sent)
        .await
        .expect("an answer within 10 s")?;
    Ok((status, client.body().to_vec()))
}

fn shop(method: &str, path: &str) -> Answer {
    let body = if method == "HEAD" {
        Vec::new()
    } else {
        format!("{method} {path} ").repeat(300).into_bytes()
    };
    Answer {
        status: if method == "POST" { 201 } else { 200 },
        headers: vec![("x-trace", "abc".into())],
        body,
        // Frames that cut the body at odd places (h2 refuses floods of tiny frames).
        frame: 97,
        script: Script::Answer,
    }
}

/// HTTP/2 by ALPN over TLS and by prior knowledge (h2c) over TCP: requests and bodies go as
/// streams on one connection, responses (bodies in many small DATA frames) read whole, headers
/// readable, the protocol counted.
#[tokio::test]
async fn http2_over_alpn_and_prior_knowledge() {
    for t in BOTH {
        let server = H2Server::start(t, true, shop).await;
        let origin = server.origin();
        let mut c = client_speaking(HttpVersion::Http2);
        for (method, path, body) in [
            ("GET", "/items?page=2", &b""[..]),
            ("POST", "/cart", b"{\"sku\": 7}"),
            ("GET", "/items", b""),
        ] {
            let (status, got) = call_at(&mut c, &origin, method, path, body).await.unwrap();
            let want = format!("{method} {path} ").repeat(300);
            assert_eq!(
                (status, text(&got)),
                (if method == "POST" { 201 } else { 200 }, want.as_str()),
                "{t:?}"
            );
            assert_eq!(c.header("x-trace"), Some("abc"));
        }
        let log = server.requests();
        assert_eq!(log.len(), 3);
        assert!(
            log.iter().all(|r| r.version == "HTTP/2.0" && r.conn == 0),
            "{t:?} {log:?}"
        );
        assert_eq!(log[0].path, "/items?page=2");
        assert_eq!(
            (log[1].method.as_str(), &log[1].body[..]),
            ("POST", &b"{\"sku\": 7}"[..])
        );
        assert_eq!(log[1].header("user-agent"), Some("t"));
        assert!(log[1].header("host").is_none(), "Host goes as :authority");
        assert_eq!(server.connections(), 1, "{t:?}");
        assert_eq!(c.phases.http2, 3);
        assert!(c.bytes_in > 3 * 3000 && c.bytes_out > 0, "{t:?}");
    }
}

/// `auto` takes HTTP/2 where TLS's ALPN agrees and HTTP/1.1 where it does not or over
/// cleartext; `"2"` against a server that refuses h2 says so.
#[tokio::test]
async fn http2_auto_falls_back_to_http1() {
    let h2 = H2Server::start(Transport::Tls, true, shop).await;
    let mut c = client_speaking(HttpVersion::Auto);
    let (status, _) = call_at(&mut c, &h2.origin(), "GET", "/a", b"")
        .await
        .unwrap();
    assert_eq!((status, c.phases.http2), (200, 1));

    let h1 = H2Server::start(Transport::Tls, false, shop).await;
    for _ in 0..2 {
        let (status, body) = call_at(&mut c, &h1.origin(), "GET", "/b", b"")
            .await
            .unwrap();
        assert_eq!((status, text(&body)), (200, "h1"));
    }
    assert_eq!(c.phases.http2, 1);
    assert_eq!(
        h1.connections(),
        1,
        "the connection ALPN settled on is used"
    );
    assert!(h1.requests().iter().all(|r| r.version == "HTTP/1.1"));

    let plain = ScriptedServer::start(Transport::Tcp, vec![answer(&ok("plain"))]).await;
    let (status, body) = call_at(&mut c, &plain.origin(), "GET", "/", b"")
        .await
        .unwrap();
    assert_eq!((status, text(&body)), (200, "plain"));

    let mut strict = client_speaking(HttpVersion::Http2);
    let err = call_at(&mut strict, &h1.origin(), "GET", "/", b"")
        .await
        .unwrap_err();
    // The server refuses the handshake (no ALPN protocol in common); one that completed it
    // choosing HTTP/1.1 would be a `protocol` error saying so.
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.to_string().contains("offers only h2"), "{err}");
}

/// A compressed HTTP/2 body is decoded like an HTTP/1.1 one.
#[tokio::test]
async fn http2_bodies_are_decoded() {
    for t in BOTH {
        let server = H2Server::start(t, true, |_, _| Answer {
            status: 200,
            headers: vec![("content-encoding", "gzip".into())],
            body: super::decode::encode(super::decode::Coding::Gzip, &b"zipped ".repeat(100)),
            frame: 5,
            script: Script::Answer,
        })
        .await;
        let mut c = client_speaking(HttpVersion::Http2);
        let (status, body) = call_at(&mut c, &server.origin(), "GET", "/", b"")
            .await
            .unwrap();
        assert_eq!((status, body), (200, b"zipped ".repeat(100)), "{t:?}");
        assert!(c.bytes_in_decoded > c.bytes_in);
    }
}

/// A server answering every request with `shop`'s answer and `script` on the requests whose
/// path starts with `/x`.
fn scripted(script: Script) -> impl Fn(&str, &str) -> Answer + Send + Sync + 'static {
    move |method, path| Answer {
        script: if path.starts_with("/x") {
            script.clone()
        } else {
            Script::Answer
        },
        ..shop(method, path)
    }
}

fn expected_body(method: &str, path: &str) -> String {
    format!("{method} {path} ").repeat(300)
}

/// RST_STREAM after part of the body: the request fails as `connection_reset`, is not sent
/// again (a POST reached the server once), and the connection carries the next request.
#[tokio::test]
async fn http2_a_stream_reset_mid_response_fails_that_request_only() {
    for t in BOTH {
        let server = H2Server::start(t, true, scripted(Script::ResetAfter(500))).await;
        let origin = server.origin();
        let mut c = client_speaking(HttpVersion::Http2);
        let err = call_at(&mut c, &origin, "POST", "/x/order", b"{}")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{t:?} {err}");
        let (status, body) = call_at(&mut c, &origin, "GET", "/next", b"").await.unwrap();
        assert_eq!(
            (status, text(&body)),
            (200, expected_body("GET", "/next").as_str())
        );
        let log = server.requests();
        let posts = log.iter().filter(|r| r.method == "POST").count();
        assert_eq!((posts, log.len()), (1, 2), "{t:?} {log:?}");
        assert_eq!(
            server.connections(),
            1,
            "{t:?}: a reset ends a stream, not the connection"
        );
        assert_eq!((c.retries, c.phases.http2), (0, 1));
    }
}

/// A graceful GOAWAY after each answer: every request is answered, each reaches the server
/// once (the next one goes on a new connection, whether the client saw the GOAWAY before
/// opening its stream or the connection refused the stream), and nothing counts as a retry.
#[tokio::test]
async fn http2_graceful_goaway_moves_to_a_new_connection() {
    for t in BOTH {
        let server = H2Server::start(t, true, scripted(Script::GoAwayAfter)).await;
        let origin = server.origin();
        let mut c = client_speaking(HttpVersion::Http2);
        for i in 0..12 {
            let (method, body) = if i % 2 == 0 {
                ("POST", &b"{}"[..])
            } else {
                ("GET", &b""[..])
            };
            let path = format!("/x/{i}");
            let (status, got) = call_at(&mut c, &origin, method, &path, body)
                .await
                .unwrap_or_else(|e| panic!("{t:?} request {i}: {e}"));
            let want = (
                if method == "POST" { 201 } else { 200 },
                expected_body(method, &path),
            );
            assert_eq!((status, text(&got).to_string()), want, "{t:?}");
        }
        let log = server.requests();
        let mut paths: Vec<&str> = log.iter().map(|r| r.path.as_str()).collect();
        paths.dedup();
        assert_eq!((log.len(), paths.len()), (12, 12), "{t:?} {log:?}");
        assert_eq!(
            server.connections(),
            12,
            "{t:?}: one stream per connection after GOAWAY"
        );
        assert_eq!(c.retries, 0);
    }
}

/// GOAWAY (INTERNAL_ERROR) and a close while a POST's stream is open: an error, the POST seen
/// once, never re-sent; the next request opens a new connection.
#[tokio::test]
async fn http2_abrupt_goaway_is_an_error_and_never_a_second_post() {
    for t in BOTH {
        let server = H2Server::start(t, true, scripted(Script::GoAwayInstead)).await;
        let origin = server.origin();
        let mut c = client_speaking(HttpVersion::Http2);
        let err = call_at(&mut c, &origin, "POST", "/x/checkout", b"{\"cart\": 1}")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{t:?} {err}");
        let (status, _) = call_at(&mut c, &origin, "GET", "/after", b"")
            .await
            .unwrap();
        assert_eq!(status, 200);
        let log = server.requests();
        let posts = log.iter().filter(|r| r.method == "POST").count();
        assert_eq!((posts, log.len()), (1, 2), "{t:?} {log:?}");
        assert_eq!(server.connections(), 2, "{t:?}");
        assert_eq!(c.retries, 0);
    }
}

/// The server closes an idle connection without GOAWAY: the next request (a POST) goes on a
/// new connection, once, and succeeds.
#[tokio::test]
async fn http2_an_idle_connection_closed_by_the_server_is_replaced() {
    for t in BOTH {
        let server = H2Server::start(
            t,
            true,
            scripted(Script::CloseAfter(Duration::from_millis(50))),
        )
        .await;
        let origin = server.origin();
        let mut c = client_speaking(HttpVersion::Http2);
        let (status, _) = call_at(&mut c, &origin, "GET", "/x/first", b"")
            .await
            .unwrap();
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, _) = call_at(&mut c, &origin, "POST", "/then", b"{}")
            .await
            .unwrap();
        assert_eq!(status, 201, "{t:?}");
        let log = server.requests();
        assert_eq!(log.len(), 2, "{t:?} {log:?}");
        assert_eq!((log[1].conn, server.connections()), (1, 2), "{t:?}");
    }
}

/// Trailers after the body and a 103 before the answer: the final status and the whole body.
#[tokio::test]
async fn http2_trailers_and_interim_responses() {
    for t in BOTH {
        for script in [
            Script::Trailers(vec![("x-checksum", "abc".into())]),
            Script::EarlyHints,
        ] {
            let server = H2Server::start(t, true, scripted(script.clone())).await;
            let mut c = client_speaking(HttpVersion::Http2);
            for path in ["/x/a", "/x/b"] {
                let (status, body) = call_at(&mut c, &server.origin(), "GET", path, b"")
                    .await
                    .unwrap_or_else(|e| panic!("{t:?} {script:?}: {e}"));
                assert_eq!(
                    (status, text(&body)),
                    (200, expected_body("GET", path).as_str()),
                    "{t:?} {script:?}"
                );
            }
            assert_eq!(server.connections(), 1, "{t:?} {script:?}");
        }
    }
}

/// More header fields than `max_response_headers`: a protocol error for that request; the
/// connection carries on, and a higher limit reads the same response.
#[tokio::test]
async fn http2_a_header_list_over_the_limit_is_a_protocol_error() {
    for t in BOTH {
        let server = H2Server::start(t, true, |method: &str, path: &str| Answer {
            headers: if path.starts_with("/x") {
                let field =
                    |i| -> (&'static str, String) { (format!("x-h{i}").leak(), "v".into()) };
                (0..150).map(field).collect()
            } else {
                Vec::new()
            },
            ..shop(method, path)
        })
        .await;
        let origin = server.origin();
        let mut c = client_speaking(HttpVersion::Http2);
        let err = call_at(&mut c, &origin, "GET", "/x/many", b"")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{t:?} {err}");
        assert!(err.to_string().contains("max_response_headers"), "{err}");
        let (status, _) = call_at(&mut c, &origin, "GET", "/few", b"").await.unwrap();
        assert_eq!((status, server.connections()), (200, 1), "{t:?}");

        let mut roomy = Client::new(
            ClientOptions::new(true)
                .with_http_version(HttpVersion::Http2)
                .with_max_response_headers(200),
        );
        let (status, _) = call_at(&mut roomy, &origin, "GET", "/x/many", b"")
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert_eq!(roomy.header("x-h149"), Some("v"));
    }
}

/// Every frame of the answers split across many small writes (and so reads), over TCP and
/// inside TLS records: the same statuses, headers and bodies.
#[tokio::test]
async fn http2_responses_split_across_reads() {
    for t in BOTH {
        let server = H2Server::start_trickling(t, true, true, shop).await;
        let origin = server.origin();
        let mut c = client_speaking(HttpVersion::Http2);
        for (method, path) in [("GET", "/a"), ("POST", "/b"), ("GET", "/c")] {
            let (status, body) = call_at(&mut c, &origin, method, path, b"{}").await.unwrap();
            assert_eq!(
                (status, text(&body)),
                (
                    if method == "POST" { 201 } else { 200 },
                    expected_body(method, path).as_str()
                ),
                "{t:?}"
            );
            assert_eq!(c.header("x-trace"), Some("abc"));
        }
        assert_eq!((server.requests().len(), server.connections()), (3, 1));
    }
}

/// A server speaking raw frames: each HEADERS frame is answered `200` (no body) followed at
/// once by GOAWAY naming that stream as the last, and the connection is left open — so the
/// client has seen the GOAWAY, but not the connection's end, when its next request comes.
/// Returns the address and, per connection, how many requests (HEADERS frames) it carried.
async fn goaway_and_stay_open() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = counts.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let conn = {
                let mut l = log.lock().unwrap();
                l.push(0);
                l.len() - 1
            };
            let log = log.clone();
            tokio::spawn(async move {
                let mut preface = [0u8; 24];
                if tcp.read_exact(&mut preface).await.is_err() {
                    return;
                }
                // SETTINGS (empty), then frames as they come.
                let _ = tcp.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await;
                loop {
                    let mut head = [0u8; 9];
                    if tcp.read_exact(&mut head).await.is_err() {
                        return;
                    }
                    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
                    let mut payload = vec![0u8; len];
                    if tcp.read_exact(&mut payload).await.is_err() {
                        return;
                    }
                    let (kind, flags) = (head[3], head[4]);
                    let stream = &head[5..9];
                    match kind {
                        // SETTINGS without ACK: acknowledge.
                        4 if flags & 1 == 0 => {
                            let _ = tcp.write_all(&[0, 0, 0, 4, 1, 0, 0, 0, 0]).await;
                        }
                        1 => {
                            log.lock().unwrap()[conn] += 1;
                            let mut out = vec![0, 0, 1, 1, 5];
                            out.extend_from_slice(stream);
                            // HPACK: indexed field 8, `:status: 200`.
                            out.push(0x88);
                            out.extend_from_slice(&[0, 0, 8, 7, 0, 0, 0, 0, 0]);
                            out.extend_from_slice(stream);
                            out.extend_from_slice(&[0, 0, 0, 0]);
                            let _ = tcp.write_all(&out).await;
                        }
                        _ => {}
                    }
                }
            });
        }
    });
    (addr, counts)
}

/// After a GOAWAY the connection takes no new stream; the next request, a POST, goes on a new
/// connection (having never left), and every connection carries exactly one request.
#[tokio::test]
async fn http2_a_request_after_goaway_goes_on_a_new_connection_once() {
    let (addr, counts) = goaway_and_stay_open().await;
    let origin = crate::url::Origin {
        tls: false,
        host: "127.0.0.1".into(),
        port: addr.port(),
    };
    let mut c = client_speaking(HttpVersion::Http2);
    for i in 0..4 {
        let (status, _) = call_at(&mut c, &origin, "POST", &format!("/order/{i}"), b"{}")
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(status, 200);
    }
    assert_eq!(*counts.lock().unwrap(), vec![1, 1, 1, 1]);
    assert_eq!(c.retries, 0);
}
