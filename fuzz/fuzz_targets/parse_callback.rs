//! Fuzzes the pasted/received redirect parser: it must never panic, and it may only return
//! a request token that is in the input (raw or percent-decoded) with this login's nonce.
#![no_main]

use kite_setup::redirect::{parse_callback, validate_redirect_url};
use libfuzzer_sys::fuzz_target;

const NONCE: &str = "0123456789abcdef0123456789abcdef";

fn percent_decoded(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(u8::try_from(h * 16 + l).unwrap());
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len().max(1)).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let target = validate_redirect_url("http://127.0.0.1:5123/kite-setup/callback").unwrap();
    if let Ok(cb) = parse_callback(input, &target, NONCE) {
        let decoded = percent_decoded(input);
        let token = cb.request_token.as_bytes();
        assert!(!token.is_empty());
        assert!(contains(input.as_bytes(), token) || contains(&decoded, token));
        assert!(contains(&decoded, NONCE.as_bytes()));
    }
    // The redirect URL check on the same text must not panic either.
    let _ = validate_redirect_url(input);
});
