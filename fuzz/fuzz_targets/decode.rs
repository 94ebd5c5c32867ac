//! Fuzzes Kite's envelope decoder: any status, content type and body. It must never
//! panic, and its error is one line that does not repeat a non-envelope body.
#![no_main]

use kite_setup::kite::wire::decode;
use kite_setup::kite::{SessionData, UserProfile};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [Option<&str>; 4] = [
    None,
    Some("application/json"),
    Some("text/html; charset=utf-8"),
    Some("text/plain"),
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let status = u16::from_le_bytes([data[0], data[1]]);
    let content_type = CONTENT_TYPES[usize::from(data[2]) % CONTENT_TYPES.len()];
    let body = &data[3..];
    let errors = [
        decode::<SessionData>(status, content_type, body).err(),
        decode::<UserProfile>(status, content_type, body).err(),
        decode::<serde_json::Value>(status, content_type, body).err(),
    ];
    let is_json = serde_json::from_slice::<serde_json::Value>(body).is_ok();
    for e in errors.into_iter().flatten() {
        let shown = e.to_string();
        assert!(!shown.contains('\n'), "not one line");
        let _ = e.hint();
        // A body that is not JSON at all is only ever described, never shown.
        if !is_json && body.len() >= 12 {
            if let Ok(text) = std::str::from_utf8(body) {
                assert!(!shown.contains(text), "echoed the body");
            }
        }
    }
});
