//! The top-level error: every failure a command can end with. It says its [`Kind`] (which
//! gives the exit code), its one line (`Display`), what to do ([`Error::fix`], a [`Fix`]
//! rendered with this run's flags) and, with `-v`, its detail (`Debug`: secrets inside
//! are `Secret`s and print as `[REDACTED]`). `app` renders it as `error: <one line>` and
//! `hint: <fix>` on stderr. Nothing here, nor anywhere else, looks at message text to
//! decide anything.

mod fix;

pub use fix::{Fix, RunFlags, SandboxFlag};

use crate::kite::KiteError;
use crate::profile::ConfigError;
use crate::prompt::PromptError;
use crate::store::StoreError;

/// Exit codes: 0 ok, 1 error, 2 usage/missing input, 4 login needed, 130 interrupted.
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const LOGIN_NEEDED: u8 = 4;
    pub const INTERRUPTED: u8 = 130;
}

/// What kind of failure it is, for the exit code and for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad flags or values, or a value missing in `--no-input` mode (exit 2).
    Usage,
    /// No credentials, no token, or a token that expired or was rejected (exit 4).
    LoginNeeded,
    /// Anything else that went wrong, already explained (exit 1).
    Failed,
    /// Ctrl-C (exit 130).
    Interrupted,
}

impl Kind {
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Usage => exit::USAGE,
            Kind::LoginNeeded => exit::LOGIN_NEEDED,
            Kind::Failed => exit::ERROR,
            Kind::Interrupted => exit::INTERRUPTED,
        }
    }
}

/// The cause below a one-off failure, kept for `-v` and `source()`.
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A failure explained where it happened (its message is one of a kind).
    #[error("{message}")]
    Said {
        kind: Kind,
        message: String,
        fix: Fix,
        #[source]
        source: Option<Source>,
    },
    /// A value that `--no-input` mode needed and did not get (exit 2).
    #[error("{what} is needed: pass {flag}")]
    MissingFlag {
        flag: &'static str,
        what: &'static str,
    },
    /// A question that needs a terminal, without one (exit 2).
    #[error("{missing} is needed, but there is no terminal to ask on")]
    NoTerminal { missing: String },
    /// A secret expected on standard input could not be read (`what`: "the api_secret").
    #[error("cannot read {what} from stdin: {detail}")]
    StdinUnreadable { what: &'static str, detail: String },
    /// `--no-input` without the `--yes` a destructive step needs (exit 2); `action` says
    /// what needs it, `fix` how to confirm.
    #[error("{action} needs confirmation")]
    NeedsConfirmation { action: String, fix: Fix },
    /// The terminal itself failed.
    #[error("the terminal failed: {0}")]
    Terminal(String),
    /// The profile is not set up (exit 4).
    #[error("no profile {profile:?} is set up{}", if *sandbox { " in the sandbox" } else { "" })]
    NoProfile { profile: String, sandbox: bool },
    /// The profile has no app credentials stored (exit 4); `label` as shown to people.
    #[error("no api_key/api_secret stored for profile {label}")]
    NoAppCredentials { label: String },
    /// Today's token is gone (exit 4); `expired_at` in IST, when there was one.
    #[error("{}", match expired_at {
        Some(at) => format!("the access token expired at {at} IST"),
        None => "no access token for today".to_string(),
    })]
    NoValidToken { expired_at: Option<String> },
    /// Ctrl-C (exit 130).
    #[error("interrupted")]
    Interrupted,
    #[error(transparent)]
    Kite(#[from] KiteError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Another error, with one more thing to do about it (appended to its own fix).
    #[error("{error}")]
    WithFix { error: Box<Error>, fix: Fix },
}

impl From<PromptError> for Error {
    fn from(e: PromptError) -> Self {
        match e {
            PromptError::Interrupted => Error::Interrupted,
            PromptError::NoTerminal { missing } => Error::NoTerminal { missing },
            PromptError::Io(detail) => Error::Terminal(detail),
        }
    }
}

impl Error {
    /// A one-off failure of `kind`.
    pub fn said(kind: Kind, message: impl Into<String>, fix: impl Into<Fix>) -> Self {
        Self::Said {
            kind,
            message: message.into(),
            fix: fix.into(),
            source: None,
        }
    }

    pub fn usage(message: impl Into<String>, fix: impl Into<Fix>) -> Self {
        Self::said(Kind::Usage, message, fix)
    }

    pub fn failed(message: impl Into<String>, fix: impl Into<Fix>) -> Self {
        Self::said(Kind::Failed, message, fix)
    }

    pub fn login_needed(message: impl Into<String>, fix: impl Into<Fix>) -> Self {
        Self::said(Kind::LoginNeeded, message, fix)
    }

    /// A value that `--no-input` mode needed and did not get.
    pub fn missing_flag(flag: &'static str, what: &'static str) -> Self {
        Self::MissingFlag { flag, what }
    }

    /// Keeps `source` as the cause of a one-off failure (other errors are unchanged).
    #[must_use]
    pub fn caused_by(self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        match self {
            Self::Said {
                kind, message, fix, ..
            } => Self::Said {
                kind,
                message,
                fix,
                source: Some(Box::new(cause)),
            },
            other => other,
        }
    }

    /// The same error with one more fix after its own (nothing is added to Ctrl-C).
    #[must_use]
    pub fn with_fix(self, fix: Fix) -> Self {
        match self {
            Self::Interrupted => Self::Interrupted,
            error => Self::WithFix {
                error: Box::new(error),
                fix,
            },
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Error::Said { kind, .. } => *kind,
            Error::MissingFlag { .. }
            | Error::NoTerminal { .. }
            | Error::NeedsConfirmation { .. }
            // `--profile` with a name that cannot be one is a usage error like any bad flag.
            | Error::Config(ConfigError::BadProfileName(_)) => Kind::Usage,
            Error::NoProfile { .. } | Error::NoAppCredentials { .. } | Error::NoValidToken { .. } => {
                Kind::LoginNeeded
            }
            Error::Interrupted => Kind::Interrupted,
            Error::Terminal(_) | Error::StdinUnreadable { .. } | Error::Kite(_) | Error::Store(_) | Error::Config(_) => Kind::Failed,
            Error::WithFix { error, .. } => error.kind(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        self.kind().exit_code()
    }

    /// What to do about it; `None` for Ctrl-C.
    pub fn fix(&self) -> Option<Fix> {
        Some(match self {
            Error::Said { fix, .. } | Error::NeedsConfirmation { fix, .. } => fix.clone(),
            Error::MissingFlag { flag, .. } => Fix::text(format!(
                "in --no-input mode every value comes from a flag; add {flag}"
            )),
            Error::NoTerminal { .. } => Fix::text(
                "run in a terminal, or pass the value as a flag with --no-input (secrets on stdin: --api-secret-stdin)",
            ),
            Error::Terminal(_) => Fix::text("run again in an interactive terminal"),
            Error::StdinUnreadable { .. } => {
                Fix::text("send the secret as one line on standard input")
            }
            Error::NoProfile { .. } => Fix::text("run ").and_run("init").and(" first"),
            Error::NoAppCredentials { .. } => Fix::text("run ")
                .and_run("init")
                .and(" to set them up (or ")
                .and_run("regenerate")
                .and(" if the secret was lost)"),
            Error::NoValidToken { .. } => login_fix(),
            Error::Interrupted => return None,
            Error::Kite(e) => e.fix(),
            Error::Store(e) => e.fix(),
            Error::Config(e) => e.fix(),
            Error::WithFix { error, fix } => error.fix().unwrap_or_default().also(fix.clone()),
        })
    }

    /// The `hint:` line, rendered with this run's flags.
    pub fn hint(&self, flags: &RunFlags) -> Option<String> {
        self.fix().map(|f| f.render(flags))
    }
}

/// "run `kite-setup login`", the fix of every missing or dead token.
pub fn login_fix() -> Fix {
    Fix::text("run ")
        .and_run("login")
        .and(" (tokens die at 06:00 IST every day)")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn work_in_sandbox() -> RunFlags {
        RunFlags::new("work", true, None)
    }

    #[test]
    fn each_kind_has_its_exit_code() {
        let cases = [
            (Error::missing_flag("--plan", "the plan"), exit::USAGE),
            (
                Error::from(ConfigError::BadProfileName("x y".into())),
                exit::USAGE,
            ),
            (Error::NoValidToken { expired_at: None }, exit::LOGIN_NEEDED),
            (Error::failed("m", "f"), exit::ERROR),
            (Error::Interrupted, exit::INTERRUPTED),
            (
                Error::NoProfile {
                    profile: "p".into(),
                    sandbox: false,
                }
                .with_fix(Fix::text("x")),
                exit::LOGIN_NEEDED,
            ),
        ];
        for (e, code) in cases {
            assert_eq!(e.exit_code(), code, "{e:?}");
        }
    }

    /// Hints from deep layers once named `kite-setup login --force` for every profile;
    /// rendered at the top they name the profile and the sandbox of the run.
    #[test]
    fn a_store_hint_sends_the_person_back_to_the_same_profile() {
        let e = Error::from(StoreError::Corrupt {
            entry: "sandbox/work/session".into(),
        });
        assert_eq!(
            e.hint(&work_in_sandbox()).unwrap(),
            "log in again with `kite-setup --sandbox --profile work login --force` to rewrite it"
        );
        let e = Error::from(KiteError::Timeout {
            host: "api.kite.trade".into(),
            seconds: 15,
        });
        assert!(
            e.hint(&RunFlags::new("mum", false, None))
                .unwrap()
                .contains("`kite-setup --profile mum doctor`")
        );
    }

    #[test]
    fn typed_failures_read_as_before() {
        let e = Error::NoProfile {
            profile: "work".into(),
            sandbox: true,
        };
        assert_eq!(
            e.to_string(),
            "no profile \"work\" is set up in the sandbox"
        );
        assert_eq!(
            e.hint(&work_in_sandbox()).unwrap(),
            "run `kite-setup --sandbox --profile work init` first"
        );
        let e = Error::NoValidToken {
            expired_at: Some("2026-11-27 06:00:00".into()),
        };
        assert_eq!(
            e.to_string(),
            "the access token expired at 2026-11-27 06:00:00 IST"
        );
        assert_eq!(
            e.hint(&RunFlags::default()).unwrap(),
            "run `kite-setup login` (tokens die at 06:00 IST every day)"
        );
    }

    #[test]
    fn an_added_fix_follows_the_errors_own_and_keeps_its_line_and_kind() {
        let e = Error::login_needed("Kite said: no", Fix::text("log in"))
            .with_fix(Fix::text("the new secret stays pending"));
        assert_eq!(e.to_string(), "Kite said: no");
        assert_eq!(e.exit_code(), exit::LOGIN_NEEDED);
        assert_eq!(
            e.hint(&RunFlags::default()).unwrap(),
            "log in; the new secret stays pending"
        );
        assert!(Error::Interrupted.with_fix(Fix::text("x")).fix().is_none());
    }

    #[test]
    fn the_cause_is_kept_as_the_source() {
        use std::error::Error as _;
        let cause = KiteError::Timeout {
            host: "h".into(),
            seconds: 1,
        };
        let e = Error::failed("could not", "retry").caused_by(cause);
        assert!(e.source().unwrap().to_string().contains("no answer from h"));
    }
}
