//! The pure callback check, case by case.

use super::super::validate_redirect_url;
use super::*;

const NONCE: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "Zx81TokenAbc0123456789XYZabcdefg";

fn target() -> RedirectTarget {
    validate_redirect_url("http://127.0.0.1:5123/kite-setup/callback").unwrap()
}

fn parse(s: &str) -> Result<Callback, CallbackError> {
    parse_callback(s, &target(), NONCE)
}

fn good_query() -> String {
    format!("action=login&type=login&status=success&request_token={TOKEN}&state={NONCE}")
}

#[test]
fn nonce_is_32_hex_and_fresh() {
    let a = new_nonce();
    let b = new_nonce();
    assert_eq!(a.len(), 32);
    assert!(
        a.bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_ne!(a, b);
}

#[test]
fn full_url_from_the_address_bar() {
    let cb = parse(&format!(
        "http://127.0.0.1:5123/kite-setup/callback?{}",
        good_query()
    ))
    .unwrap();
    assert_eq!(cb.request_token, TOKEN);
}

#[test]
fn parameter_order_does_not_matter() {
    let q = format!("state={NONCE}&request_token={TOKEN}&status=success&type=login");
    assert_eq!(parse(&q).unwrap().request_token, TOKEN);
}

#[test]
fn bare_query_with_and_without_question_mark() {
    assert_eq!(
        parse(&format!("?{}", good_query())).unwrap().request_token,
        TOKEN
    );
    assert_eq!(parse(&good_query()).unwrap().request_token, TOKEN);
}

#[test]
fn whitespace_and_quotes_are_tolerated() {
    let url = format!("http://127.0.0.1:5123/kite-setup/callback?{}", good_query());
    for wrapped in [
        format!("  {url}\n"),
        format!("\"{url}\""),
        format!("'{url}'"),
        format!(" < {url} > "),
        format!("\t\"'{url}'\" "),
    ] {
        assert_eq!(parse(&wrapped).unwrap().request_token, TOKEN, "{wrapped}");
    }
}

#[test]
fn cancelled_is_reported_as_such() {
    assert_eq!(
        parse("http://127.0.0.1:5123/kite-setup/callback?status=cancelled"),
        Err(CallbackError::Cancelled)
    );
    assert_eq!(
        parse(&format!("status=cancelled&state={NONCE}")),
        Err(CallbackError::Cancelled)
    );
}

#[test]
fn wrong_or_missing_nonce_is_refused() {
    let wrong = good_query().replace(NONCE, "ffffffffffffffffffffffffffffffff");
    assert_eq!(parse(&wrong), Err(CallbackError::NonceMismatch));
    let missing = format!("status=success&request_token={TOKEN}");
    assert_eq!(parse(&missing), Err(CallbackError::NonceMismatch));
    let short = good_query().replace(NONCE, "0123");
    assert_eq!(parse(&short), Err(CallbackError::NonceMismatch));
    // An empty expected nonce never matches, even an empty state.
    assert_eq!(
        parse_callback(
            &format!("status=success&request_token={TOKEN}&state="),
            &target(),
            ""
        ),
        Err(CallbackError::NonceMismatch)
    );
}

#[test]
fn status_must_be_success() {
    let q = good_query().replace("status=success", "status=error");
    assert_eq!(parse(&q), Err(CallbackError::NotSuccess));
    let q = good_query().replace("status=success&", "");
    assert_eq!(parse(&q), Err(CallbackError::NotSuccess));
}

#[test]
fn missing_or_empty_token() {
    let q = format!("status=success&state={NONCE}");
    assert_eq!(parse(&q), Err(CallbackError::MissingToken));
    let q = format!("status=success&state={NONCE}&request_token=");
    assert_eq!(parse(&q), Err(CallbackError::MissingToken));
    assert_eq!(
        parse("http://127.0.0.1:5123/kite-setup/callback"),
        Err(CallbackError::MissingToken)
    );
}

#[test]
fn token_with_bad_characters_or_too_long() {
    for bad in [
        "abc%20def",
        "abc-def",
        "abc%3Cscript%3E",
        "t%C3%A9st",
        "a.b",
    ] {
        let q = format!("status=success&state={NONCE}&request_token={bad}");
        assert_eq!(parse(&q), Err(CallbackError::BadToken), "{bad}");
    }
    let long = "a".repeat(129);
    let q = format!("status=success&state={NONCE}&request_token={long}");
    assert_eq!(parse(&q), Err(CallbackError::BadToken));
    let max = "a".repeat(128);
    let q = format!("status=success&state={NONCE}&request_token={max}");
    assert_eq!(parse(&q).unwrap().request_token, max);
}

#[test]
fn duplicate_parameters_are_refused() {
    let q = format!("{}&request_token=other", good_query());
    assert_eq!(
        parse(&q),
        Err(CallbackError::DuplicateParam {
            name: "request_token".into()
        })
    );
    let q = format!("{}&state={NONCE}", good_query());
    assert!(matches!(
        parse(&q),
        Err(CallbackError::DuplicateParam { .. })
    ));
    let q = format!("{}&x=1&x=2", good_query());
    assert_eq!(
        parse(&q),
        Err(CallbackError::DuplicateParam {
            name: "(another parameter)".into()
        })
    );
}

#[test]
fn full_url_must_match_the_target() {
    let q = good_query();
    let cases = [
        (
            format!("https://127.0.0.1:5123/kite-setup/callback?{q}"),
            "scheme",
        ),
        (
            format!("http://127.0.0.2:5123/kite-setup/callback?{q}"),
            "host",
        ),
        (
            format!("http://localhost:5123/kite-setup/callback?{q}"),
            "host",
        ),
        (
            format!("http://127.0.0.1:5124/kite-setup/callback?{q}"),
            "port",
        ),
        (format!("http://127.0.0.1/kite-setup/callback?{q}"), "port"),
        (format!("http://127.0.0.1:5123/other?{q}"), "path"),
        (format!("http://127.0.0.1:5123/?{q}"), "path"),
    ];
    for (url, part) in cases {
        match parse(&url) {
            Err(CallbackError::WrongUrl { part: p, expected }) => {
                assert_eq!(p, part, "{url}");
                assert_eq!(expected, "http://127.0.0.1:5123/kite-setup/callback");
            }
            other => panic!("{url}: {other:?}"),
        }
    }
}

#[test]
fn junk_is_unrecognized() {
    for junk in [
        "",
        "   ",
        "hello",
        "\"\"",
        "request token please",
        "http://[broken",
    ] {
        assert_eq!(parse(junk), Err(CallbackError::Unrecognized), "{junk:?}");
    }
}

#[test]
fn errors_and_debug_never_show_the_token_or_nonce() {
    let inputs = [
        format!("status=error&request_token={TOKEN}&state={NONCE}"),
        format!("status=success&request_token={TOKEN}&state=ffff{NONCE}"),
        format!("status=success&request_token={TOKEN}-x&state={NONCE}"),
        format!("status=success&request_token={TOKEN}&request_token={TOKEN}&state={NONCE}"),
        format!("http://127.0.0.1:9/x?status=success&request_token={TOKEN}&state={NONCE}"),
        format!("{TOKEN}{NONCE}"),
    ];
    for input in &inputs {
        let e = parse(input).expect_err(input);
        for text in [e.to_string(), e.hint(), format!("{e:?}")] {
            assert!(!text.contains(TOKEN), "{text}");
            assert!(!text.contains(NONCE), "{text}");
            assert!(!text.contains('\n'), "{text}");
        }
    }
    let cb = parse(&good_query()).unwrap();
    assert!(!format!("{cb:?}").contains(TOKEN));
}

#[test]
fn listener_check_needs_the_nonce_even_to_cancel() {
    assert_eq!(
        check_listener_query("status=cancelled", NONCE),
        Err(CallbackError::NonceMismatch)
    );
    assert_eq!(
        check_listener_query(&format!("status=cancelled&state={NONCE}"), NONCE),
        Err(CallbackError::Cancelled)
    );
    assert_eq!(
        check_listener_query(&good_query(), NONCE)
            .unwrap()
            .request_token,
        TOKEN
    );
}
