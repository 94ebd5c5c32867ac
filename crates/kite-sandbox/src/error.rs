//! Why a sandbox could not start. The messages say what happened; the fix (which flag to
//! change) is the embedding tool's to give, since it owns the flags: `is_usage` and the
//! variant tell it which one.

use std::fmt;
use std::path::PathBuf;

/// A failure to start a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The listen address is not `IP:PORT`.
    BadAddress(String),
    /// The listen address is not loopback: the sandbox hands out credentials to whoever asks.
    NotLoopback(String),
    /// The state file exists but is not a sandbox state (`what` never quotes its values).
    StateUnreadable { path: PathBuf, what: String },
    /// The state file could not be read (permissions, a directory...).
    StateRead { path: PathBuf, detail: String },
    /// The state file or its directory could not be written (`op`: create, write...).
    StateWrite {
        op: &'static str,
        path: PathBuf,
        detail: String,
    },
    /// The port could not be bound.
    Bind { addr: String, detail: String },
    /// The listener came up without an IP address.
    NoAddress,
}

impl Error {
    /// A mistake in what was asked for (the address), as opposed to a failure to do it.
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::BadAddress(_) | Self::NotLoopback(_))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadAddress(addr) => write!(f, "{addr:?} is not an address with a port"),
            Self::NotLoopback(addr) => write!(
                f,
                "refusing to serve the sandbox on {addr}: only loopback addresses are allowed"
            ),
            Self::StateUnreadable { path, what } => write!(
                f,
                "the sandbox state file {} cannot be read: {what}",
                path.display()
            ),
            Self::StateRead { path, detail } => {
                write!(f, "cannot read {}: {detail}", path.display())
            }
            Self::StateWrite { op, path, detail } => {
                write!(f, "cannot {op} {}: {detail}", path.display())
            }
            Self::Bind { addr, detail } => {
                write!(f, "cannot serve the sandbox on {addr}: {detail}")
            }
            Self::NoAddress => f.write_str("the sandbox listener has no IP address"),
        }
    }
}

impl std::error::Error for Error {}
