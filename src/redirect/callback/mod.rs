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
    crate::random::fill(&mut bytes).expect("the OS random source failed");
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
mod tests;
