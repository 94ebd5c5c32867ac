//! Kite's failures as types: the documented `error_type`s (kite-api.md §5) and the ways
//! the transport fails. Messages never carry a secret, a token or a full URL with a query.

pub use kite_wire::ErrorType;

/// Why a call to Kite did not give an answer we can use.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KiteError {
    /// Kite answered with its error envelope.
    #[error("Kite said: {message} ({}, HTTP {status})", error_type.as_str())]
    Api {
        status: u16,
        error_type: ErrorType,
        message: String,
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

    /// What to do about it, in one line.
    pub fn hint(&self) -> String {
        match self {
            Self::Api { status: 429, .. } => {
                "Kite is rate-limiting this api_key (10 requests/s); wait a few seconds and try again".into()
            }
            Self::Api { error_type: ErrorType::Token, message, .. } => {
                if message.contains("checksum") {
                    "the api_secret does not match the api_key: copy both from the same app's page in the developer console".into()
                } else if message.contains("Token is invalid") {
                    "the login's request token expired or was already used: log in again (it lives about 5 minutes)".into()
                } else {
                    "log in again with `kite-setup login`; if that fails too, check that the app's subscription is active on the console's billing page".into()
                }
            }
            Self::Api { error_type: ErrorType::Permission, .. } => {
                "the app's plan does not include this call; a new login will not help: check the plan on the developer console".into()
            }
            Self::Api { error_type: ErrorType::Input, message, .. } if message.contains("not enabled") => {
                "log in with the client ID the app was created for, or create an app for this client ID".into()
            }
            Self::Api { status, .. } | Self::UnexpectedError { status, .. } if *status >= 500 => {
                "Kite is having trouble; try again in a minute (status: https://kite.trade/status)".into()
            }
            Self::Api { .. } | Self::UnexpectedError { .. } => {
                "try again; if it persists, run `kite-setup doctor`".into()
            }
            Self::Malformed(_) | Self::Redirected { .. } => {
                "something between you and Kite (a proxy or captive portal) changed the answer; try another network".into()
            }
            Self::Timeout { .. } | Self::Connect { .. } => {
                "check your internet connection and proxy settings, then try again (`kite-setup doctor` checks the hosts)".into()
            }
            Self::InsecureEndpoint(_) => {
                "use https, or a sandbox on 127.0.0.1".into()
            }
        }
    }
}
