//! Kite's failures as types: the documented `error_type`s, what Kite refused ([`Refusal`],
//! see docs/errors.md) and the ways the transport fails. Messages never carry a secret, a
//! token or a full URL with a query.

use crate::error::{Fix, RunFlags};

pub use kite_wire::ErrorType;

/// What Kite refused, as far as a person can act on it. Kite tells these apart only by
/// the words of its `message` (one `error_type` covers several causes, and the static-IP
/// refusals have been seen under more than one type), so this is the one place that reads
/// message text: [`Refusal::classify`], called once where the error envelope is decoded.
/// Everything else matches on the enum. The messages relied on are listed in
/// docs/errors.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `Invalid `checksum`.`: the api_secret does not belong to the api_key.
    BadChecksum,
    /// `Token is invalid or has expired.`: the login's request token was used or is stale.
    RequestTokenSpent,
    /// `Incorrect `api_key` or `access_token`.` (or any other TokenException): a wrong
    /// key, a dead access token, or a lapsed subscription.
    BadKeyOrToken,
    /// `The user is not enabled for the app.` (InputException, at the login step): the
    /// client ID that logged in is not on the app's client IDs (a family member's not
    /// added yet, or the console form's placeholder saved in its place).
    UserNotEnabled,
    /// The static-IP rule: orders come from an IP that is not registered
    /// (`IP (…) is not allowed to place orders for this app…`), or none is registered
    /// (`No IPs configured for this app…`: `listed` is false).
    IpNotAllowed { listed: bool },
    /// `Insufficient permission for that call.` (any other PermissionException): the
    /// app's plan does not include the call.
    InsufficientPermission,
    /// Anything else; the status and error_type still say what kind it is.
    Other,
}

impl Refusal {
    /// Decides what Kite refused from its envelope: the error_type and status first, the
    /// message only where Kite gives no other way to tell (see the type's docs).
    pub fn classify(error_type: &ErrorType, _status: u16, message: &str) -> Self {
        // The IP rule first: its texts are distinctive and its type is not reliable.
        if message.starts_with("No IPs configured") {
            return Self::IpNotAllowed { listed: false };
        }
        if message.starts_with("IP (") && message.contains("is not allowed to place orders") {
            return Self::IpNotAllowed { listed: true };
        }
        match error_type {
            ErrorType::Token if message.contains("checksum") => Self::BadChecksum,
            ErrorType::Token if message.contains("Token is invalid") => Self::RequestTokenSpent,
            ErrorType::Token => Self::BadKeyOrToken,
            ErrorType::Input if message.contains("not enabled for the app") => Self::UserNotEnabled,
            ErrorType::Permission => Self::InsufficientPermission,
            _ => Self::Other,
        }
    }
}

/// Why a call to Kite did not give an answer we can use.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KiteError {
    /// Kite answered with its error envelope; `refusal` is what it means, decided once.
    #[error("Kite said: {message} ({}, HTTP {status})", error_type.as_str())]
    Api {
        status: u16,
        error_type: ErrorType,
        message: String,
        refusal: Refusal,
    },
    /// An error status whose body was not Kite's envelope (a proxy's HTML page, an
    /// empty body, JSON without `error_type`).
    #[error("Kite answered HTTP {status} with {what} instead of its JSON error")]
    UnexpectedError { status: u16, what: String },
    /// A success status whose body we could not read.
    #[error("Kite's answer could not be read: {0}")]
    Malformed(String),
    /// Kite sent a redirect; API calls never follow one.
    #[error("Kite answered with a redirect (HTTP {status}) where it never does")]
    Redirected { status: u16 },
    #[error("no answer from {host} within {seconds} s")]
    Timeout { host: String, seconds: u64 },
    #[error("cannot reach {host}: {detail}")]
    Connect { host: String, detail: String },
    /// An endpoint override that would send credentials in clear text off this machine.
    #[error("refusing plain http to {0}: only loopback addresses may use http")]
    InsecureEndpoint(String),
}

impl KiteError {
    /// Kite's error envelope, classified once ([`Refusal::classify`]).
    pub fn api(status: u16, error_type: ErrorType, message: String) -> Self {
        let refusal = Refusal::classify(&error_type, status, &message);
        Self::Api {
            status,
            error_type,
            message,
            refusal,
        }
    }

    /// What Kite refused, when it answered with its envelope.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Self::Api { refusal, .. } => Some(*refusal),
            _ => None,
        }
    }

    pub fn is_token_error(&self) -> bool {
        matches!(
            self,
            Self::Api {
                error_type: ErrorType::Token,
                ..
            }
        )
    }

    /// The message Kite sent, when it sent its envelope.
    pub fn kite_message(&self) -> Option<&str> {
        match self {
            Self::Api { message, .. } => Some(message),
            _ => None,
        }
    }

    /// True when trying again later may work (network trouble, rate limit, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api {
                status, error_type, ..
            } => *status == 429 || *status >= 500 || *error_type == ErrorType::Network,
            Self::UnexpectedError { status, .. } => *status == 429 || *status >= 500,
            Self::Timeout { .. } | Self::Connect { .. } => true,
            _ => false,
        }
    }

    /// The fix as a run of the default live profile would read it (tests; commands
    /// render [`KiteError::fix`] with their run's flags).
    pub fn hint(&self) -> String {
        self.fix().render(&RunFlags::default())
    }

    /// What to do about it, in one line.
    pub fn fix(&self) -> Fix {
        match self {
            Self::Api { status: 429, .. } => {
                "Kite is rate-limiting this api_key (10 requests/s); wait a few seconds and try again".into()
            }
            Self::Api { refusal: Refusal::BadChecksum, .. } => {
                "the api_secret does not match the api_key: copy both from the same app's page in the developer console".into()
            }
            Self::Api { refusal: Refusal::RequestTokenSpent, .. } => {
                "the login's request token expired or was already used: log in again (it lives about 5 minutes)".into()
            }
            Self::Api { refusal: Refusal::BadKeyOrToken, .. } => {
                Fix::text("log in again with ").and_run("login").and("; if that fails too, check that the app's subscription is active on the console's billing page")
            }
            Self::Api { refusal: Refusal::IpNotAllowed { .. }, .. } => {
                Fix::text("orders are accepted only from an IP on the developer account's IP Whitelist: developers.kite.trade → Profile (top right) → IP Whitelist (not the app's page; at most two IPs, one change per week); add the IP Kite named, then check with ").and_run("doctor")
            }
            Self::Api { refusal: Refusal::InsufficientPermission, .. } => {
                "the app's plan does not include this call (Personal has no market data); a new login will not help: check the plan and subscription on the developer console's billing page".into()
            }
            Self::Api { refusal: Refusal::UserNotEnabled, .. } => {
                "the client ID that logged in is not on the app's client IDs: on the developer console open the app → Client IDs → type the client ID in \"Zerodha Client ID\" → Add client ID, then log in again (an app serves your own client ID and your immediate family's)".into()
            }
            Self::Api { status, .. } | Self::UnexpectedError { status, .. } if *status >= 500 => {
                "Kite is having trouble; try again in a minute (status: https://kite.trade/status)".into()
            }
            Self::Api { .. } | Self::UnexpectedError { .. } => {
                Fix::text("try again; if it persists, run ").and_run("doctor")
            }
            Self::Malformed(_) | Self::Redirected { .. } => {
                "something between you and Kite (a proxy or captive portal) changed the answer; try another network".into()
            }
            Self::Timeout { .. } | Self::Connect { .. } => {
                Fix::text("check your internet connection and proxy settings, then try again (").and_run("doctor").and(" checks the hosts)")
            }
            Self::InsecureEndpoint(_) => {
                "use https, or a sandbox on 127.0.0.1".into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIX: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kite-mocks/errors"
    );

    /// Each recorded error body, decoded as the client decodes it, carries its refusal.
    #[test]
    fn fixtures_are_classified_where_they_are_decoded() {
        let cases = [
            (
                "token_exception_invalid_checksum.json",
                403,
                Refusal::BadChecksum,
            ),
            (
                "token_exception_token_invalid_or_expired.json",
                403,
                Refusal::RequestTokenSpent,
            ),
            (
                "token_exception_invalid_access_token.json",
                403,
                Refusal::BadKeyOrToken,
            ),
            (
                "input_exception_user_not_enabled.json",
                400,
                Refusal::UserNotEnabled,
            ),
            (
                "permission_exception_insufficient_permission.json",
                403,
                Refusal::InsufficientPermission,
            ),
            (
                "network_exception_too_many_requests.json",
                429,
                Refusal::Other,
            ),
            (
                "general_exception_route_not_found.json",
                404,
                Refusal::Other,
            ),
            ("docs_example_general_exception.json", 500, Refusal::Other),
        ];
        for (file, status, want) in cases {
            let body = std::fs::read(format!("{FIX}/{file}")).unwrap();
            let err = crate::kite::wire::decode::<serde_json::Value>(
                status,
                Some("application/json"),
                &body,
            )
            .unwrap_err();
            assert_eq!(err.refusal(), Some(want), "{file}");
        }
    }

    #[test]
    fn the_static_ip_refusals_are_told_apart_whatever_their_type() {
        let listed = "IP (2402:3a80:1c4f::1) is not allowed to place orders for this app. Update allowed IPs on the Kite developer console. Learn more - https://support.zerodha.com/category/trading-and-markets/general-kite/kite-api/articles/static-ip";
        let none = "No IPs configured for this app. Add allowed IPs on the Kite developer console.";
        for ty in [ErrorType::Permission, ErrorType::Input, ErrorType::Token] {
            assert_eq!(
                Refusal::classify(&ty, 403, listed),
                Refusal::IpNotAllowed { listed: true },
                "{ty:?}"
            );
            assert_eq!(
                Refusal::classify(&ty, 403, none),
                Refusal::IpNotAllowed { listed: false },
                "{ty:?}"
            );
        }
        let e = KiteError::api(403, ErrorType::Permission, none.into());
        assert!(e.hint().contains("IP Whitelist"), "{}", e.hint());
    }

    #[test]
    fn the_words_only_count_under_their_own_error_type() {
        // A checksum complaint under another type is not a bad secret.
        assert_eq!(
            Refusal::classify(&ErrorType::Input, 400, "Invalid `checksum`."),
            Refusal::Other
        );
        assert_eq!(
            Refusal::classify(
                &ErrorType::Token,
                403,
                "The user is not enabled for the app."
            ),
            Refusal::BadKeyOrToken
        );
        assert_eq!(
            Refusal::classify(&ErrorType::Permission, 403, "anything"),
            Refusal::InsufficientPermission
        );
        assert_eq!(
            Refusal::classify(
                &ErrorType::General,
                500,
                "Insufficient permission for that call."
            ),
            Refusal::Other
        );
    }

    /// A family member's login refused because the client ID is not on the app: its own
    /// refusal, whose fix names the console's field (the words of its app page).
    #[test]
    fn user_not_enabled_is_its_own_refusal_and_names_the_console_field() {
        let e = KiteError::api(
            400,
            ErrorType::Input,
            "The user is not enabled for the app.".into(),
        );
        assert_eq!(e.refusal(), Some(Refusal::UserNotEnabled));
        let hint = e.hint();
        for words in ["Client IDs", "\"Zerodha Client ID\"", "Add client ID"] {
            assert!(hint.contains(words), "{words}: {hint}");
        }
    }

    #[test]
    fn errors_without_an_envelope_have_no_refusal() {
        let e = KiteError::Timeout {
            host: "api.kite.trade".into(),
            seconds: 15,
        };
        assert_eq!(e.refusal(), None);
    }
}
