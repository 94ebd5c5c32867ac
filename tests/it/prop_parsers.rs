//! Property tests for everything that reads untrusted text: the callback parser,
//! the redirect URL check, the credential validators, Kite's envelope decoder, and the sh
//! quoting of `kite-setup env`. Each property runs on arbitrary input and on input shaped
//! like the real thing (where the interesting branches are).

use kite_setup::commands::env::quote_sh;
use kite_setup::kite::wire::decode;
use kite_setup::kite::{SessionData, UserProfile};
use kite_setup::redirect::{RedirectTarget, parse_callback, validate_redirect_url};
use kite_setup::validate;
use proptest::prelude::*;

const NONCE: &str = "0123456789abcdef0123456789abcdef";
const REDIRECT: &str = "http://127.0.0.1:5123/kite-setup/callback";
/// Cases per property (proptest's default is 256).
const CASES: u32 = 2048;
/// The `proptest!` functions below.
const PROPERTIES: u32 = 10;

fn target() -> RedirectTarget {
    validate_redirect_url(REDIRECT).expect("the test's redirect URL")
}

/// Percent-decodes (and `+` → space) byte-wise, like each form value is decoded.
fn decoded(s: &str) -> Vec<u8> {
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
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// A query parameter as a browser, a person or an attacker might write it.
fn param() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("status".to_string()),
        Just("request_token".to_string()),
        Just("state".to_string()),
        Just("action".to_string()),
        Just("type".to_string()),
        "[a-z_%]{0,8}",
    ];
    let value = prop_oneof![
        Just(NONCE.to_string()),
        Just("success".to_string()),
        Just("cancelled".to_string()),
        "[A-Za-z0-9]{1,40}",
        "[A-Za-z0-9%+=&#?]{0,20}",
        ".{0,12}",
    ];
    (key, value).prop_map(|(k, v)| format!("{k}={v}"))
}

/// Something shaped like a pasted redirect.
fn callback_like() -> impl Strategy<Value = String> {
    let prefix = prop_oneof![
        Just(String::new()),
        Just("?".to_string()),
        Just(format!("{REDIRECT}?")),
        Just(format!("\"{REDIRECT}?")),
        Just("http://127.0.0.1:5124/kite-setup/callback?".to_string()),
        Just("https://127.0.0.1:5123/kite-setup/callback?".to_string()),
        Just("http://localhost:5123/kite-setup/callback?".to_string()),
        "[ -~]{0,20}",
    ];
    let suffix = prop_oneof![
        Just(String::new()),
        Just("#x".into()),
        Just("\"".into()),
        " *"
    ];
    (prefix, prop::collection::vec(param(), 0..7), suffix)
        .prop_map(|(p, ps, s)| format!("{p}{}{s}", ps.join("&")))
}

fn check_callback(input: &str) {
    if let Ok(cb) = parse_callback(input, &target(), NONCE) {
        let d = decoded(input);
        let t = cb.request_token.as_bytes();
        assert!(
            contains(input.as_bytes(), t) || contains(&d, t),
            "a token that is not in the input: {input:?}"
        );
        assert!(
            contains(&d, NONCE.as_bytes()),
            "accepted without the nonce: {input:?}"
        );
        assert!(!cb.request_token.is_empty());
        assert!(cb.request_token.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}

/// A URL shaped like a redirect URL, good or bad.
fn url_like() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        Just("http"),
        Just("https"),
        Just("HTTP"),
        Just("ftp"),
        Just("javascript")
    ];
    let host = prop_oneof![
        Just("127.0.0.1"),
        Just("127.8.9.10"),
        Just("[::1]"),
        Just("[::2]"),
        Just("localhost"),
        Just("10.0.0.1"),
        Just("0.0.0.0"),
        Just("127.1"),
        Just("0x7f.1"),
        Just("example.com"),
        Just("user@127.0.0.1"),
        Just("127.0.0.1.nip.io"),
        Just(""),
    ];
    let port = prop_oneof![
        Just(String::new()),
        Just(":".to_string()),
        Just(":0".to_string()),
        Just(":80".to_string()),
        Just(":65536".to_string()),
        (1u32..70_000).prop_map(|p| format!(":{p}")),
    ];
    let rest = prop_oneof![
        Just("/kite-setup/callback".to_string()),
        Just(String::new()),
        Just("/".to_string()),
        Just("/cb?x=1".to_string()),
        Just("/cb#f".to_string()),
        "[ -~]{0,16}",
    ];
    (scheme, host, port, rest).prop_map(|(s, h, p, r)| format!("{s}://{h}{p}{r}"))
}

fn check_redirect(input: &str) {
    if let Ok(t) = validate_redirect_url(input) {
        assert_eq!(t.url().scheme(), "http", "{input:?}");
        assert!(t.ip().is_loopback(), "{input:?}");
        assert_ne!(t.port(), 0, "{input:?}");
        assert!(
            input.contains(&format!(":{}", t.port())),
            "a port that was not written: {input:?}"
        );
        assert!(t.url().query().is_none() && t.url().fragment().is_none());
    }
}

/// Whether `v` is specific enough that finding it in a message means it was echoed.
fn secret_like(v: &str) -> bool {
    let v = v.trim();
    v.chars().count() >= 8
        && v.chars().any(|c| c.is_ascii_digit())
        && v.chars().any(char::is_alphabetic)
}

fn check_validators(value: &str, key: &str) {
    let _ = validate::client_id(value);
    for (what, r) in [
        ("api_key", validate::api_key(value)),
        ("api_secret", validate::api_secret(value, None)),
        ("api_secret vs key", validate::api_secret(value, Some(key))),
        (
            "new secret",
            validate::new_api_secret(value, key, "OldSecret0123456789abcdefABCDEF00"),
        ),
    ] {
        if let Err(msg) = r {
            if secret_like(value) {
                assert!(
                    !msg.contains(value.trim()),
                    "{what} echoed the value: {msg}"
                );
            }
            if secret_like(key) {
                assert!(!msg.contains(key), "{what} echoed the key: {msg}");
            }
            assert!(!msg.contains('\n'), "{what}: not one line: {msg:?}");
        }
    }
}

/// Bodies of every shape, with `marker` somewhere inside.
fn body_with(marker: &str) -> impl Strategy<Value = Vec<u8>> + use<> {
    let m = marker.to_string();
    prop_oneof![
        // Anything at all around the marker.
        (prop::collection::vec(any::<u8>(), 0..64), prop::collection::vec(any::<u8>(), 0..64))
            .prop_map(move |(a, b)| [a, m.clone().into_bytes(), b].concat()),
        // HTML.
        Just(format!("<!doctype html><html><body>{marker}</body></html>").into_bytes()),
        // JSON that is not Kite's error envelope, or whose marker is outside `message`.
        prop_oneof![
            Just(format!(r#"{{"status":"error","detail":"{marker}"}}"#)),
            Just(format!(r#"{{"status":"success","data":"{marker}"}}"#)),
            Just(format!(r#"{{"status":"success","data":{{"user_id":"{marker}x","exchanges":"{marker}"}}}}"#)),
            Just(format!(r#"{{"status":"success","data":{{"user_id":1,"access_token":"{marker}"}}}}"#)),
            Just(format!(r#"{{"status":"success","data":{{"user_id":"AB1234","access_token":{{"{marker}":1}}}}}}"#)),
            Just(format!(r#"{{"status":"success","data":{{"user_id":"AB1234","avatar_url":["{marker}"]}}}}"#)),
            Just(format!(r#"{{"status":"success","data":{{"user_id":"AB1234","products":[1,"{marker}"]}}}}"#)),
            Just(format!(r#"{{"status":"success","data":{{"user_id":"AB1234","access_token":"t","login_time":{{"a":"{marker}"}}}}}}"#)),
            Just(format!(r#"{{"status":"success","data":{{"user_id":["{marker}"]}}}}"#)),
            Just(format!(r#"{{"status":"success","data":{{"user_id":"AB1234","exchanges":["{marker}",2]}}}}"#)),
            Just(format!(r#"{{"status":"error","error_type":"TokenException","data":"{marker}"}}"#)),
            Just(format!(r#"{{"{marker}":1}}"#)),
            Just(format!(r#"{{"status":"success","data":{{"user_id":"AB1234","access_token":"t"}},"{marker}":1"#)),
        ]
        .prop_map(String::into_bytes),
    ]
}

fn check_decode(status: u16, content_type: Option<&str>, body: &[u8], marker: &str) {
    let results = [
        decode::<SessionData>(status, content_type, body).err(),
        decode::<UserProfile>(status, content_type, body).err(),
        decode::<serde_json::Value>(status, content_type, body).err(),
        decode::<bool>(status, content_type, body).err(),
    ];
    for e in results.into_iter().flatten() {
        let shown = e.to_string();
        assert!(!shown.contains(marker), "echoed the body: {shown}");
        assert!(!shown.contains('\n'), "not one line: {shown:?}");
        assert!(!e.hint().is_empty());
    }
}

/// Undoes POSIX sh single quoting as a shell would: `'...'` literal, `\x` outside quotes.
fn sh_unquote(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '\'') => quoted = false,
            (true, c) => out.push(c),
            (false, '\'') => quoted = true,
            (false, '\\') => out.push(chars.next()?),
            // Anything else unquoted would be word-split or expanded by the shell.
            (false, _) => return None,
        }
    }
    (!quoted).then_some(out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn parse_callback_on_any_string(s in any::<String>()) {
        check_callback(&s);
    }

    #[test]
    fn parse_callback_on_redirect_like_strings(s in callback_like()) {
        check_callback(&s);
    }

    #[test]
    fn parse_callback_takes_exactly_the_token_given(token in "[A-Za-z0-9]{1,128}", order in 0usize..3) {
        let params = [
            format!("request_token={token}"),
            format!("state={NONCE}"),
            "status=success".to_string(),
        ];
        let q = format!("{}&{}&{}", params[order % 3], params[(order + 1) % 3], params[(order + 2) % 3]);
        let cb = parse_callback(&format!("{REDIRECT}?action=login&{q}"), &target(), NONCE).expect("valid");
        prop_assert_eq!(cb.request_token, token);
    }

    #[test]
    fn validate_redirect_url_on_any_string(s in any::<String>()) {
        check_redirect(&s);
    }

    #[test]
    fn validate_redirect_url_on_url_like_strings(s in url_like()) {
        check_redirect(&s);
    }

    #[test]
    fn validators_on_any_string(v in any::<String>(), k in "[A-Za-z0-9]{6,20}") {
        check_validators(&v, &k);
    }

    #[test]
    fn validators_on_credential_like_strings(
        v in "[ \"'`]?[A-Za-z0-9]{4,40}[ \t\n\"'é-]?[A-Za-z0-9]{0,40}[ \n\"']?",
        k in "[A-Za-z0-9]{6,20}",
    ) {
        check_validators(&v, &k);
        check_validators(&k, &k);
    }

    #[test]
    fn decode_on_any_bytes(
        status in prop_oneof![any::<u16>(), 100u16..600],
        ct in prop::option::of(prop_oneof![
            Just("application/json".to_string()),
            Just("text/html; charset=utf-8".to_string()),
            Just("text/plain".to_string()),
            "[ -~]{0,30}",
        ]),
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        check_decode(status, ct.as_deref(), &body, "\u{0}never-there\u{0}");
    }

    #[test]
    fn decode_never_echoes_the_body(
        status in prop_oneof![Just(200u16), Just(403u16), Just(429u16), Just(500u16), Just(502u16), 100u16..600],
        ct in prop::option::of(prop_oneof![Just("application/json"), Just("text/html"), Just("text/plain")]),
        (marker, body) in "[A-Za-z0-9]{16,24}".prop_flat_map(|m| (Just(m.clone()), body_with(&m))),
    ) {
        check_decode(status, ct, &body, &marker);
    }

    #[test]
    fn sh_quoting_round_trips(v in any::<String>()) {
        let q = quote_sh(&v);
        prop_assert_eq!(sh_unquote(&q), Some(v));
    }
}

/// The figure for the summary line (each property fails its own test if any case fails).
#[test]
fn summary() {
    crate::support::report_figure(
        "prop_parsers",
        &format!(
            "property tests: {PROPERTIES} properties, {CASES} cases each ({} in all)",
            CASES * PROPERTIES
        ),
    );
}
