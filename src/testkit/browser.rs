//! A browser that records the pages it is asked to open.

use std::sync::Mutex;

use url::Url;

use crate::redirect::{Browser, BrowserError, BrowserOutcome};

type Action = Box<dyn Fn(&Url) + Send + Sync>;

enum Behaviour {
    Open,
    NotOpen(String),
    Fail(String),
    Act(Action),
}

/// A test browser: records every URL; opens nothing, refuses, fails, or acts (a closure
/// gets the URL, e.g. to follow the login on a sandbox and hit the listener).
pub struct RecordingBrowser {
    urls: Mutex<Vec<Url>>,
    behaviour: Behaviour,
}

impl RecordingBrowser {
    /// Records and reports `Opened`.
    pub fn new() -> Self {
        Self::with(Behaviour::Open)
    }

    /// Records and reports `NotOpened(reason)`.
    pub fn not_opening(reason: impl Into<String>) -> Self {
        Self::with(Behaviour::NotOpen(reason.into()))
    }

    /// Records and fails with `BrowserError::Spawn`.
    pub fn failing(detail: impl Into<String>) -> Self {
        Self::with(Behaviour::Fail(detail.into()))
    }

    /// Records, calls `action` with the URL (on the caller's thread: spawn inside it if
    /// it must run while the caller waits), and reports `Opened`.
    pub fn acting(action: impl Fn(&Url) + Send + Sync + 'static) -> Self {
        Self::with(Behaviour::Act(Box::new(action)))
    }

    fn with(behaviour: Behaviour) -> Self {
        Self {
            urls: Mutex::new(Vec::new()),
            behaviour,
        }
    }

    /// Every URL opened so far.
    pub fn urls(&self) -> Vec<Url> {
        self.urls.lock().expect("not poisoned").clone()
    }
}

impl Default for RecordingBrowser {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for RecordingBrowser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingBrowser")
            .field("urls", &self.urls().len())
            .finish_non_exhaustive()
    }
}

impl Browser for RecordingBrowser {
    fn open(&self, url: &Url) -> Result<BrowserOutcome, BrowserError> {
        self.urls.lock().expect("not poisoned").push(url.clone());
        match &self.behaviour {
            Behaviour::Open => Ok(BrowserOutcome::Opened),
            Behaviour::NotOpen(reason) => Ok(BrowserOutcome::NotOpened(reason.clone())),
            Behaviour::Fail(detail) => Err(BrowserError::Spawn {
                program: "test browser".into(),
                detail: detail.clone(),
            }),
            Behaviour::Act(action) => {
                action(url);
                Ok(BrowserOutcome::Opened)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn login() -> Url {
        Url::parse(
            "https://kite.zerodha.com/connect/login?v=3&api_key=k&redirect_params=state%3Dab",
        )
        .unwrap()
    }

    #[test]
    fn recording_browser_records_fails_and_acts() {
        let b = RecordingBrowser::new();
        assert_eq!(b.open(&login()).unwrap(), BrowserOutcome::Opened);
        assert_eq!(b.urls(), vec![login()]);

        let b = RecordingBrowser::failing("boom");
        assert!(b.open(&login()).is_err());
        assert_eq!(b.urls().len(), 1);

        let b = RecordingBrowser::not_opening("nope");
        assert_eq!(
            b.open(&login()).unwrap(),
            BrowserOutcome::NotOpened("nope".into())
        );

        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&calls);
        let b = RecordingBrowser::acting(move |u| {
            assert_eq!(u.host_str(), Some("kite.zerodha.com"));
            seen.fetch_add(1, Ordering::SeqCst);
        });
        b.open(&login()).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
