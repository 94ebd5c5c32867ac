//! Catching Kite's login redirect on this machine.
//!
//! Kite has no `redirect_uri` parameter: it always redirects the browser to the one URL
//! registered for the app, so the listener must sit exactly there (scheme, address, port,
//! path). The pieces:
//!
//! - [`validate_redirect_url`] → [`RedirectTarget`]: which registered URLs we can listen on
//!   (`http://127.x.y.z:PORT/path` or `http://[::1]:PORT/path`).
//! - [`new_nonce`] and [`parse_callback`]: the pure check of a redirected URL (also what
//!   `login --paste` uses), with the nonce we put in Kite's `redirect_params`.
//! - [`RedirectPort`] → [`PendingLogin`]: what a login binds and waits on; the real
//!   [`LoopbackRedirect`] is the loopback HTTP [`Listener`] that waits for the one callback.
//! - [`WaitUi`]: what the user sees and presses while we wait ([`TerminalWaitUi`],
//!   [`NoTtyWaitUi`]).
//! - [`Browser`]: opening the login page ([`SystemBrowser`]; tests use the testkit's `RecordingBrowser`).

mod browser;
mod callback;
mod listener;
mod port;
mod target;
mod wait;

pub use browser::{Browser, BrowserEnv, BrowserError, BrowserOutcome, SystemBrowser};
#[cfg(any(test, feature = "testkit"))]
pub(crate) use callback::check_listener_query;
pub use callback::{Callback, CallbackError, NONCE_PARAM, new_nonce, parse_callback};
pub use listener::{ListenError, Listener, WaitError};
pub use port::{LoopbackRedirect, PendingLogin, RedirectPort};
pub use target::{RedirectTarget, RedirectUrlError, validate_redirect_url};
pub use wait::{NoTtyWaitUi, TerminalWaitUi, WaitControl, WaitUi, format_remaining};
