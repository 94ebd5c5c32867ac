//! The top-level error: every failure a command can end with, its exit code and its hint.
//! `app.rs` renders it as `error: <one line>` and `hint: <what to do>` on stderr.

use crate::kite::KiteError;
use crate::profile::ConfigError;
use crate::prompt::PromptError;
use crate::store::StoreError;

/// Exit codes: 0 ok, 1 error, 2 usage/missing input, 4 login needed; for `exec`, 126
/// cannot execute and 127 not found (as shells and `env` report them); 128+signal when a
/// signal ends the run (129 SIGHUP, 130 Ctrl-C, 143 SIGTERM).
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const LOGIN_NEEDED: u8 = 4;
    pub const CANNOT_EXECUTE: u8 = 126;
    pub const NOT_FOUND: u8 = 127;
    pub const HANGUP: u8 = 129;
    pub const INTERRUPTED: u8 = 130;
    pub const TERMINATED: u8 = 143;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags or values, or a value missing in `--no-input` mode (exit 2).
    #[error("{message}")]
    Usage { message: String, hint: String },
    /// No credentials, no token, or a token that expired or was rejected (exit 4).
    #[error("{message}")]
    LoginNeeded { message: String, hint: String },
    /// Ctrl-C (exit 130).
    #[error("interrupted")]
    Interrupted,
    /// `exec` could not start the command: 127 not found, 126 found but not executable.
    #[error("{message}")]
    Exec {
        message: String,
        hint: String,
        code: u8,
    },
    /// Anything else that went wrong, already explained (exit 1).
    #[error("{message}")]
    Failed { message: String, hint: String },
    #[error(transparent)]
    Kite(#[from] KiteError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl From<PromptError> for Error {
    fn from(e: PromptError) -> Self {
        match e {
            PromptError::Interrupted => Error::Interrupted,
            PromptError::NoTerminal { missing } => Error::Usage {
                message: format!("{missing} is needed, but there is no terminal to ask on"),
                hint: "run in a terminal, or pass the value as a flag with --no-input (secrets on stdin: --api-secret-stdin)".into(),
            },
            PromptError::Io(detail) => Error::Failed {
                message: format!("the terminal failed: {detail}"),
                hint: "run again in an interactive terminal".into(),
            },
        }
    }
}

impl Error {
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::Usage {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn failed(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::Failed {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn login_needed(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::LoginNeeded {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// A value that `--no-input` mode needed and did not get.
    pub fn missing_flag(flag: &str, what: &str) -> Self {
        Self::usage(
            format!("{what} is needed: pass {flag}"),
            format!("in --no-input mode every value comes from a flag; add {flag}"),
        )
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            // `--profile` with a name that cannot be one is a usage error like any bad flag.
            Error::Usage { .. } | Error::Config(ConfigError::BadProfileName(_)) => exit::USAGE,
            Error::LoginNeeded { .. } => exit::LOGIN_NEEDED,
            Error::Interrupted => exit::INTERRUPTED,
            Error::Exec { code, .. } => *code,
            Error::Failed { .. } | Error::Kite(_) | Error::Store(_) | Error::Config(_) => {
                exit::ERROR
            }
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Usage { hint, .. }
            | Error::LoginNeeded { hint, .. }
            | Error::Failed { hint, .. }
            | Error::Exec { hint, .. } => Some(hint.clone()),
            Error::Interrupted => None,
            Error::Kite(e) => Some(e.hint()),
            Error::Store(e) => Some(e.hint()),
            Error::Config(e) => Some(e.hint()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
