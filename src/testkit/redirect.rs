//! The redirect port and the monotonic clock without sockets or real time: a fake
//! browser delivers the URL Kite would redirect to, and the bound login takes it through
//! the same pure checks the real listener applies (address, path, nonce).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use url::Url;

use crate::clock::Monotonic;
use crate::redirect::{
    Callback, CallbackError, ListenError, PendingLogin, RedirectPort, RedirectTarget, WaitControl,
    WaitError, WaitUi, check_listener_query,
};

/// Monotonic time that moves only when it is moved (a fake wait that times out moves it
/// to its deadline, so "waited N s" reads as the real one would).
#[derive(Debug, Clone)]
pub struct ManualMonotonic {
    base: Instant,
    offset: Arc<Mutex<Duration>>,
}

impl Default for ManualMonotonic {
    fn default() -> Self {
        Self {
            base: Instant::now(),
            offset: Arc::default(),
        }
    }
}

impl ManualMonotonic {
    /// Moves the time forward to `t` (never back).
    pub fn advance_to(&self, t: Instant) {
        let mut offset = self.offset.lock().expect("monotonic lock");
        *offset = (*offset).max(t.saturating_duration_since(self.base));
    }
}

impl Monotonic for ManualMonotonic {
    fn now(&self) -> Instant {
        self.base + *self.offset.lock().expect("monotonic lock")
    }
}

/// A redirect no socket backs. [`FakeRedirect::deliver`] is what a browser's redirect
/// does; a bound login's wait takes every delivery made since: the first one for its
/// address and path that passes the listener's checks wins, the others are lost (as a
/// redirect to a port nobody listens on, or one the listener answers with 400, is).
#[derive(Debug, Clone, Default)]
pub struct FakeRedirect {
    delivered: Arc<Mutex<Vec<Url>>>,
    bound: Arc<Mutex<Vec<String>>>,
    /// Makes the next bind fail with this error.
    pub fail_bind: Arc<Mutex<Option<ListenError>>>,
    pub clock: ManualMonotonic,
}

impl FakeRedirect {
    /// A browser following Kite's redirect to `url`.
    pub fn deliver(&self, url: Url) {
        self.delivered.lock().expect("redirect lock").push(url);
    }

    /// The redirect URLs bound so far, in order.
    pub fn bound(&self) -> Vec<String> {
        self.bound.lock().expect("redirect lock").clone()
    }
}

impl RedirectPort for FakeRedirect {
    fn bind(
        &self,
        target: &RedirectTarget,
        nonce: &str,
    ) -> Result<Box<dyn PendingLogin>, ListenError> {
        if let Some(e) = self.fail_bind.lock().expect("redirect lock").take() {
            return Err(e);
        }
        self.bound
            .lock()
            .expect("redirect lock")
            .push(target.to_string());
        Ok(Box::new(FakePending {
            redirect: self.clone(),
            target: target.clone(),
            nonce: nonce.to_string(),
        }))
    }
}

struct FakePending {
    redirect: FakeRedirect,
    target: RedirectTarget,
    nonce: String,
}

impl FakePending {
    fn is_ours(&self, url: &Url) -> bool {
        let addr = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}").parse::<SocketAddr>().ok(),
            _ => None,
        };
        addr == Some(self.target.socket_addr()) && url.path() == self.target.path()
    }

    fn take(&self) -> Result<Callback, WaitError> {
        let delivered = std::mem::take(&mut *self.redirect.delivered.lock().expect("lock"));
        for url in delivered.iter().filter(|u| self.is_ours(u)) {
            match check_listener_query(url.query().unwrap_or(""), &self.nonce) {
                Ok(callback) => return Ok(callback),
                Err(CallbackError::Cancelled) => return Err(WaitError::Cancelled),
                Err(_) => {}
            }
        }
        Err(WaitError::Timeout {
            redirect_url: self.target.to_string(),
        })
    }
}

impl PendingLogin for FakePending {
    fn wait(
        self: Box<Self>,
        deadline: Instant,
        ui: &mut dyn WaitUi,
    ) -> Result<Callback, WaitError> {
        let now = self.redirect.clock.now();
        let result = match ui.tick(deadline.saturating_duration_since(now)) {
            WaitControl::Continue => self.take(),
            WaitControl::Paste => Err(WaitError::PasteRequested),
            WaitControl::Abort => Err(WaitError::Aborted),
        };
        if let Err(WaitError::Timeout { .. }) = result {
            self.redirect.clock.advance_to(deadline);
        }
        ui.finish();
        result
    }
}
