//! Response bodies in a `Content-Encoding`: gzip, deflate, br and zstd decoded into the
//! client's reused buffer, so checks and extraction read what the server meant to send.
//!
//! Only an encoded response pays for this; an identity body is never copied. A decoded body is
//! capped ([`MAX_DECODED`]) so a small compressed answer cannot fill the generator's memory.

use std::io::{self, Read};

/// A decoded body larger than this is a `protocol` error.
pub const MAX_DECODED: u64 = 64 * 1024 * 1024;

/// A response's `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Coding {
    #[default]
    Identity,
    Gzip,
    /// zlib-wrapped, as RFC 9110 says; raw deflate, which some servers send, is accepted too.
    Deflate,
    Br,
    Zstd,
    /// A coding peakload does not decode, or several: the body is left as it came.
    Other,
}

impl Coding {
    pub fn of(value: &[u8]) -> Coding {
        let v = value.trim_ascii();
        let is = |name: &[u8]| v.eq_ignore_ascii_case(name);
        if v.is_empty() || is(b"identity") {
            Coding::Identity
        } else if is(b"gzip") || is(b"x-gzip") {
            Coding::Gzip
        } else if is(b"deflate") {
            Coding::Deflate
        } else if is(b"br") {
            Coding::Br
        } else if is(b"zstd") {
            Coding::Zstd
        } else {
            Coding::Other
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Coding::Identity => "identity",
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Br => "br",
            Coding::Zstd => "zstd",
            Coding::Other => "other",
        }
    }
}

/// Decodes `input` into `out` (cleared first).
pub fn decode(coding: Coding, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    out.clear();
    match coding {
        Coding::Identity | Coding::Other => {
            out.extend_from_slice(input);
            Ok(())
        }
        Coding::Gzip => read_capped(flate2::read::MultiGzDecoder::new(input), out),
        Coding::Deflate => {
            if read_capped(flate2::read::ZlibDecoder::new(input), out).is_ok() {
                return Ok(());
            }
            out.clear();
            read_capped(flate2::read::DeflateDecoder::new(input), out)
        }
        Coding::Br => read_capped(brotli::Decompressor::new(input, 4096), out),
        Coding::Zstd => read_capped(zstd::stream::read::Decoder::with_buffer(input)?, out),
    }
}

fn read_capped(reader: impl Read, out: &mut Vec<u8>) -> io::Result<()> {
    let n = reader.take(MAX_DECODED + 1).read_to_end(out)?;
    if n as u64 > MAX_DECODED {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("decoded body larger than {} MiB", MAX_DECODED >> 20),
        ));
    }
    Ok(())
}

/// Encodes `data` as a server would, for tests.
#[cfg(test)]
pub(crate) fn encode(coding: Coding, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match coding {
        Coding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Coding::Deflate => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Coding::Br => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                w.write_all(data).unwrap();
            }
            out
        }
        Coding::Zstd => zstd::stream::encode_all(data, 3).unwrap(),
        Coding::Identity | Coding::Other => data.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn every_coding_round_trips_and_garbage_is_an_error() {
        let data = b"{\"order\": 7, \"items\": [1, 2, 3]} ".repeat(100);
        let mut out = Vec::new();
        for c in [Coding::Gzip, Coding::Deflate, Coding::Br, Coding::Zstd] {
            decode(c, &encode(c, &data), &mut out).unwrap();
            assert_eq!(out, data, "{c:?}");
            assert!(
                decode(c, b"not compressed at all", &mut out).is_err(),
                "{c:?}"
            );
        }
        // Raw deflate, as some servers send for "deflate".
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&data).unwrap();
        decode(Coding::Deflate, &e.finish().unwrap(), &mut out).unwrap();
        assert_eq!(out, data);
        assert_eq!(Coding::of(b" GZIP "), Coding::Gzip);
        assert_eq!(Coding::of(b"gzip, br"), Coding::Other);
        assert_eq!(Coding::of(b""), Coding::Identity);
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_cap() {
        let zeros = vec![0u8; (MAX_DECODED + 1024) as usize];
        let small = encode(Coding::Zstd, &zeros);
        assert!(small.len() < 1 << 20);
        let mut out = Vec::new();
        let err = decode(Coding::Zstd, &small, &mut out).unwrap_err();
        assert!(err.to_string().contains("larger than 64 MiB"), "{err}");
    }
}
