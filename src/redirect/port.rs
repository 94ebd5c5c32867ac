//! The redirect listener as a port: a login binds the registered redirect URL and waits
//! for its one callback. The real adapter is the loopback [`Listener`]; flow tests use
//! the testkit's `FakeRedirect`, which delivers the callback a fake browser scripted.

use std::time::Instant;

use super::callback::Callback;
use super::listener::{ListenError, Listener, WaitError};
use super::target::RedirectTarget;
use super::wait::WaitUi;

/// Where a login catches Kite's redirect.
pub trait RedirectPort {
    /// Starts listening exactly at `target` for the callback that carries `nonce`.
    fn bind(
        &self,
        target: &RedirectTarget,
        nonce: &str,
    ) -> Result<Box<dyn PendingLogin>, ListenError>;
}

/// A bound redirect waiting for its one callback.
pub trait PendingLogin {
    /// Waits until this login's callback arrives, `deadline` passes, or the person asks
    /// to paste or to abort; `ui.finish` runs once at the end whatever the outcome. The
    /// listener closes when this returns.
    fn wait(self: Box<Self>, deadline: Instant, ui: &mut dyn WaitUi)
    -> Result<Callback, WaitError>;
}

/// The real port: tiny_http on the registered loopback address.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoopbackRedirect;

impl RedirectPort for LoopbackRedirect {
    fn bind(
        &self,
        target: &RedirectTarget,
        nonce: &str,
    ) -> Result<Box<dyn PendingLogin>, ListenError> {
        Ok(Box::new(Listener::bind(target, nonce.to_string())?))
    }
}

impl PendingLogin for Listener {
    fn wait(
        self: Box<Self>,
        deadline: Instant,
        ui: &mut dyn WaitUi,
    ) -> Result<Callback, WaitError> {
        Listener::wait(*self, deadline, ui)
    }
}
