//! The pure check of a redirected URL: Kite's callback, from the listener or pasted by
//! the user. Parameters are read by name, never by position; duplicates are refused.
//! Neither the request token nor the nonce ever appears in an error.

use std::collections::HashMap;
use std::fmt;

use crate::error::{Fix, RunFlags};
use url::Url;

use super::target::RedirectTarget;

/// The name of our nonce in Kite's `redirect_params` (Kite has no OAuth `state` of its
/// own; it appends the pairs we give it to the redirect).
pub const NONCE_PARAM: &str = "state";

/// The longest request token accepted (public examples are 32 alphanumerics; the length
/// is not documented, so leave room).
const MAX_TOKEN_LEN: usize = 128;

/// A fresh nonce: 32 lowercase hex digits from the OS random source.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source failed");
    crate::profile::hex(&bytes)
}

/// A successful login: the single-use request token to exchange at once.
#[derive(Clone, PartialEq, Eq)]
pub struct Callback {
    pub request_token: String,
}

impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callback")
            .field("request_token", &"[REDACTED]")
            .finish()
    }
}

/// Why a redirected URL was not accepted. One line each, plus [`Self::hint`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error("that does not look like the redirected URL (nothing like ?request_token=... in it)")]
    Unrecognized,
    #[error("the pasted URL's {part} does not match the registered redirect URL {expected}")]
    WrongUrl {
        part: &'static str,
        expected: String,
    },
    #[error("the login was cancelled on Kite")]
    Cancelled,
    #[error("the redirect does not carry this login's state nonce")]
    NonceMismatch,
    #[error("Kite did not report a successful login (status is not \"success\")")]
    NotSuccess,
    #[error("the redirect has no request_token")]
    MissingToken,
    #[error("the request_token in the redirect is malformed")]
    BadToken,
    #[error("the redirect repeats the parameter {name}")]
    DuplicateParam { name: String },
}

impl CallbackError {
    /// The fix as a run of the default live profile would read it (tests; commands
    /// render `fix()` with their run's flags).
    pub fn hint(&self) -> String {
        self.fix().render(&RunFlags::default())
    }

    pub fn fix(&self) -> Fix {
        match self {
            Self::Unrecognized => "copy the whole address from the browser's address bar after logging in (it starts with your redirect URL)".into(),
            Self::WrongUrl { expected, .. } => Fix::text(format!(
                "paste the address the browser landed on after the login; it should start with {expected} (if it does not, the app's registered redirect URL differs from this profile's)"
            )),
            Self::Cancelled => Fix::text("run ")
                .and_run("login")
                .and(" again and authorise the app on Kite"),
            Self::NonceMismatch => "this URL belongs to another login attempt; use the URL from the login page kite-setup opened just now".into(),
            Self::NotSuccess => "log in again; if Kite shows an error page, read it (e.g. the client ID is not enabled for this app)".into(),
            Self::MissingToken | Self::BadToken => "copy the whole address from the browser's address bar, unchanged, right after the login".into(),
            Self::DuplicateParam { .. } => "paste the address exactly as the browser shows it, once".into(),
        }
    }
}

/// Checks a redirected URL for this login. `input` may be the full URL from the address
/// bar (then its scheme, host, port and path must be the target's), a bare `?query` or a
/// bare `query`; surrounding whitespace and quotes are tolerated.
///
/// Order: duplicates, `status=cancelled` (a pasted cancellation needs no nonce: it
/// carries no token), nonce, `status=success`, the token.
pub fn parse_callback(
    input: &str,
    target: &RedirectTarget,
    nonce: &str,
) -> Result<Callback, CallbackError> {
    let query = extract_query(input, target)?;
    let params = Params::parse(query)?;
    if params.get("status") == Some("cancelled") {
        return Err(CallbackError::Cancelled);
    }
    if !nonce_matches(params.get(NONCE_PARAM), nonce) {
        return Err(CallbackError::NonceMismatch);
    }
    params.into_callback()
}

/// The query of a request the listener received (path already checked), for a login
/// whose nonce is `nonce`. Unlike [`parse_callback`], the nonce is checked first, so
/// only this login's redirect can cancel the wait.
pub(crate) fn check_listener_query(query: &str, nonce: &str) -> Result<Callback, CallbackError> {
    let params = Params::parse(query)?;
    if !nonce_matches(params.get(NONCE_PARAM), nonce) {
        return Err(CallbackError::NonceMismatch);
    }
    if params.get("status") == Some("cancelled") {
        return Err(CallbackError::Cancelled);
    }
    params.into_callback()
}

fn extract_query<'a>(input: &'a str, target: &RedirectTarget) -> Result<&'a str, CallbackError> {
    let s = strip_wrapping(input);
    if s.contains("://") {
        let url = Url::parse(s).map_err(|_| CallbackError::Unrecognized)?;
        let expected = target.url();
        let wrong = |part| CallbackError::WrongUrl {
            part,
            expected: expected.to_string(),
        };
        if url.scheme() != expected.scheme() {
            return Err(wrong("scheme"));
        }
        if url.host() != expected.host() {
            return Err(wrong("host"));
        }
        if url.port_or_known_default() != Some(target.port()) {
            return Err(wrong("port"));
        }
        if url.path() != expected.path() {
            return Err(wrong("path"));
        }
        // Borrow the query from the input rather than the parsed URL.
        return match s.split_once('?') {
            Some((_, q)) => Ok(q.split_once('#').map_or(q, |(q, _)| q)),
            None => Err(CallbackError::MissingToken),
        };
    }
    let q = s.strip_prefix('?').unwrap_or(s);
    if q.contains('=') && !q.contains(char::is_whitespace) {
        Ok(q.split_once('#').map_or(q, |(q, _)| q))
    } else {
        Err(CallbackError::Unrecognized)
    }
}

/// Trims whitespace and one layer (or two) of matching quotes or angle brackets.
fn strip_wrapping(input: &str) -> &str {
    let mut s = input.trim();
    for _ in 0..2 {
        let stripped = [('"', '"'), ('\'', '\''), ('<', '>'), ('`', '`')]
            .iter()
            .find_map(|&(a, b)| s.strip_prefix(a).and_then(|r| r.strip_suffix(b)));
        match stripped {
            Some(inner) => s = inner.trim(),
            None => break,
        }
    }
    s
}

/// Constant-time comparison (the length is not secret: nonces are 32 hex digits).
fn nonce_matches(got: Option<&str>, expected: &str) -> bool {
    let Some(got) = got else { return false };
    if expected.is_empty() || got.len() != expected.len() {
        return false;
    }
    got.bytes()
        .zip(expected.bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// Query parameters by name, each at most once.
struct Params(HashMap<String, String>);

impl Params {
    fn parse(query: &str) -> Result<Self, CallbackError> {
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if map.contains_key(k.as_ref()) {
                // Name only parameters we know; an unknown name is echoed as nothing.
                let name = match k.as_ref() {
                    n @ ("status" | "request_token" | "action" | "type") => n.to_string(),
                    NONCE_PARAM => NONCE_PARAM.to_string(),
                    _ => "(another parameter)".to_string(),
                };
                return Err(CallbackError::DuplicateParam { name });
            }
            map.insert(k.into_owned(), v.into_owned());
        }
        Ok(Self(map))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn into_callback(self) -> Result<Callback, CallbackError> {
        if self.get("status") != Some("success") {
            return Err(CallbackError::NotSuccess);
        }
        let token = match self.get("request_token") {
            None | Some("") => return Err(CallbackError::MissingToken),
            Some(t) => t,
        };
        if token.len() > MAX_TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CallbackError::BadToken);
        }
        Ok(Callback {
            request_token: token.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
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
}
