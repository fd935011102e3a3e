//! The HTTP/1.1 response reader on any bytes: a status and a body, or a protocol error;
//! never a panic, never a body longer than what was read.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((status, body)) = peakload::http::parse_response(data, 100) {
        assert!((100..1000).contains(&status), "{status}");
        assert!(body <= data.len(), "{body} > {}", data.len());
    }
});
