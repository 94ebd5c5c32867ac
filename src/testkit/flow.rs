//! Fakes for flow tests: a scripted Kite that behaves like the real one for one user,
//! a store provider over `MemoryStore`, a browser that completes the login through the
//! fake redirect, and a builder for a `Ctx` wired to fakes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use url::Url;

use crate::cli::StoreChoice;
use crate::commands::{Ctx, Ports, StoreProvider};
use crate::kite::{Kite, KiteError, SessionData, UserProfile};
use crate::secret::Secret;
use crate::store::{Store, StoreError};
use crate::testkit::{FakeRedirect, FixedClock, MemoryStore, RecordingBrowser};

/// A Kite for one user: every exchange succeeds with a fresh token unless a scripted
/// failure is queued; records every call (never the secret).
pub struct FakeKite {
    pub user_id: String,
    pub user_name: String,
    pub now: Timestamp,
    pub session_failures: Mutex<VecDeque<KiteError>>,
    pub profile_failures: Mutex<VecDeque<KiteError>>,
    pub invalidate_failures: Mutex<VecDeque<KiteError>>,
    pub server_time_error: Mutex<Option<KiteError>>,
    pub calls: Mutex<Vec<String>>,
    /// api_secret values seen by create_session (to check which secret was used).
    pub secrets_used: Mutex<Vec<String>>,
    pub issued: Mutex<u32>,
    /// The access tokens `invalidate` was called with, in order.
    pub invalidated: Mutex<Vec<String>>,
}

impl FakeKite {
    pub fn new(user_id: &str, now: Timestamp) -> Self {
        Self {
            user_id: user_id.into(),
            user_name: "Test Trader".into(),
            now,
            session_failures: Mutex::default(),
            profile_failures: Mutex::default(),
            invalidate_failures: Mutex::default(),
            server_time_error: Mutex::default(),
            calls: Mutex::default(),
            secrets_used: Mutex::default(),
            issued: Mutex::new(0),
            invalidated: Mutex::default(),
        }
    }

    pub fn fail_session(&self, e: KiteError) {
        self.session_failures.lock().unwrap().push_back(e);
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

/// A Kite that refuses some addresses with the IP rule and answers "no such order"
/// to the others.
pub struct FakeReadiness {
    pub addrs: Vec<std::net::IpAddr>,
    pub refused: Vec<std::net::IpAddr>,
    pub down: Vec<std::net::IpAddr>,
    /// What `/quote` shows; `None` fails it (the plan cannot be told).
    pub plan: Option<crate::cli::Plan>,
    pub calls: std::cell::RefCell<Vec<std::net::IpAddr>>,
}

impl crate::commands::orders_probe::ReadinessPort for FakeReadiness {
    fn api_addresses(&self) -> Result<Vec<std::net::IpAddr>, String> {
        Ok(self.addrs.clone())
    }
    fn cancel_probe(
        &self,
        addr: std::net::IpAddr,
        _: &Secret,
        _: &Secret,
    ) -> Result<(), KiteError> {
        self.calls.borrow_mut().push(addr);
        if self.down.contains(&addr) {
            return Err(KiteError::Connect {
                host: addr.to_string(),
                detail: "refused".into(),
            });
        }
        let msg = if self.refused.contains(&addr) {
            format!(
                "IP ({addr}) is not allowed to place orders for this app. Update allowed IPs on the Kite developer console."
            )
        } else {
            "Couldn't find that order.".into()
        };
        let ty = if self.refused.contains(&addr) {
            crate::kite::ErrorType::Permission
        } else {
            crate::kite::ErrorType::Input
        };
        Err(KiteError::api(403, ty, msg))
    }
    fn quote_probe(&self, _: &Secret, _: &Secret) -> Result<(), KiteError> {
        match self.plan {
            Some(crate::cli::Plan::Connect) => Ok(()),
            Some(crate::cli::Plan::Personal) => Err(KiteError::api(
                403,
                crate::kite::ErrorType::Permission,
                "Insufficient permission for that call.".into(),
            )),
            None => Err(KiteError::api(
                503,
                crate::kite::ErrorType::General,
                "Service unavailable.".into(),
            )),
        }
    }
    fn source_address(&self, addr: std::net::IpAddr) -> Option<std::net::IpAddr> {
        Some(addr)
    }
    fn public_ip(&self) -> Result<std::net::IpAddr, String> {
        Err("offline".into())
    }
    fn public_ip_service(&self) -> String {
        "nowhere".into()
    }
}

impl FakeReadiness {
    /// An IPv4-only API host that does not refuse this machine; the plan unknown.
    pub fn allowed() -> Self {
        Self {
            addrs: vec!["203.0.113.7".parse().unwrap()],
            refused: vec![],
            down: vec![],
            plan: None,
            calls: std::cell::RefCell::default(),
        }
    }
}

/// Kite's envelope error with its exact message.
pub fn kite_error(status: u16, error_type: &str, message: &str) -> KiteError {
    KiteError::api(
        status,
        crate::kite::ErrorType::parse(error_type),
        message.into(),
    )
}

impl Kite for FakeKite {
    fn create_session(
        &self,
        _api_key: &Secret,
        request_token: &str,
        api_secret: &Secret,
    ) -> Result<SessionData, KiteError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("create_session({request_token})"));
        self.secrets_used
            .lock()
            .unwrap()
            .push(api_secret.expose().to_string());
        if let Some(e) = self.session_failures.lock().unwrap().pop_front() {
            return Err(e);
        }
        let mut n = self.issued.lock().unwrap();
        *n += 1;
        let body = serde_json::json!({
            "user_id": self.user_id, "user_name": self.user_name, "access_token": format!("faketoken{n:023}"),
            "login_time": crate::session::format_ist(self.now),
        });
        Ok(serde_json::from_value(body).expect("session"))
    }

    fn profile(&self, _api_key: &Secret, _access_token: &Secret) -> Result<UserProfile, KiteError> {
        self.calls.lock().unwrap().push("profile".into());
        if let Some(e) = self.profile_failures.lock().unwrap().pop_front() {
            return Err(e);
        }
        Ok(serde_json::from_value(
            serde_json::json!({"user_id": self.user_id, "user_name": self.user_name}),
        )
        .expect("profile"))
    }

    fn invalidate(&self, _api_key: &Secret, access_token: &Secret) -> Result<(), KiteError> {
        self.calls.lock().unwrap().push("invalidate".into());
        self.invalidated
            .lock()
            .unwrap()
            .push(access_token.expose().to_string());
        match self.invalidate_failures.lock().unwrap().pop_front() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn server_time(&self) -> Result<Timestamp, KiteError> {
        match &*self.server_time_error.lock().unwrap() {
            Some(e) => Err(e.clone()),
            None => Ok(self.now),
        }
    }

    fn reachable(&self, _url: &Url) -> Result<(), KiteError> {
        Ok(())
    }
}

/// One `MemoryStore` for every choice.
pub struct MemoryStores(pub Arc<MemoryStore>);

impl StoreProvider for MemoryStores {
    fn open(&self, choice: StoreChoice) -> Result<(Arc<dyn Store>, StoreChoice), StoreError> {
        if let Some(e) = &*self.0.fail_with.lock().unwrap() {
            return Err(e.clone());
        }
        Ok((self.0.clone() as Arc<dyn Store>, choice))
    }
}

/// What a browser does after Kite's login: follow the redirect to `redirect_url` with
/// the given query (and the nonce taken from the login URL's `redirect_params`).
pub fn redirected_url(login_url: &Url, redirect_url: &str, query: &str) -> Url {
    let inner = login_url
        .query_pairs()
        .find(|(k, _)| k == "redirect_params")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    Url::parse(&format!("{redirect_url}?{query}&{inner}")).expect("a redirect URL")
}

/// Keeps `Ctx`'s borrowed parts alive for a test.
pub struct Harness {
    pub kite: FakeKite,
    pub store: Arc<MemoryStore>,
    pub config_dir: tempfile::TempDir,
    pub now: Timestamp,
    /// Where logins catch the redirect (no socket), with the monotonic clock it moves.
    pub redirect: FakeRedirect,
    pub readiness: FakeReadiness,
}

impl Harness {
    pub fn new(user_id: &str) -> Self {
        let now: Timestamp = "2026-11-26T04:30:00Z".parse().unwrap(); // 10:00 IST
        Self {
            kite: FakeKite::new(user_id, now),
            store: Arc::new(MemoryStore::default()),
            config_dir: tempfile::tempdir().unwrap(),
            now,
            redirect: FakeRedirect::default(),
            readiness: FakeReadiness::allowed(),
        }
    }
}

/// Builds a `Ctx` over fakes and runs `f` with it; returns what `f` returned and the
/// captured stdout and stderr.
pub fn with_ctx<T>(
    h: &Harness,
    prompter: &dyn crate::prompt::Prompter,
    browser: &dyn crate::redirect::Browser,
    interactive: bool,
    stdin: &str,
    f: impl FnOnce(&Ctx<'_>) -> T,
) -> (T, String, String) {
    let (ui, out, err) = crate::ui::Ui::captured();
    let r = with_ctx_on(h, &ui, prompter, browser, interactive, stdin, f);
    (r, out.text(), err.text())
}

/// [`with_ctx`] writing to `ui`, for a test that writes its own lines between the
/// command's (the wizard transcript shows each question and answer).
pub fn with_ctx_on<T>(
    h: &Harness,
    ui: &crate::ui::Ui,
    prompter: &dyn crate::prompt::Prompter,
    browser: &dyn crate::redirect::Browser,
    interactive: bool,
    stdin: &str,
    f: impl FnOnce(&Ctx<'_>) -> T,
) -> T {
    let clock = FixedClock::at(h.now);
    let stores = MemoryStores(h.store.clone());
    let wait_ui = || -> Box<dyn crate::redirect::WaitUi> {
        Box::new(crate::redirect::NoTtyWaitUi::new(std::io::sink()))
    };
    let stdin = stdin.to_string();
    let read_line = move || -> std::io::Result<String> { Ok(stdin.clone()) };
    let ctx = Ctx {
        profile: "default".into(),
        sandbox: false,
        sandbox_url: None,
        interactive,
        json: false,
        store_flag: None,
        endpoints: crate::kite::Endpoints::live(),
        config: crate::profile::ConfigFile::new(h.config_dir.path().to_path_buf()),
        ui,
        browser_available: true,
        self_play: false,
        ports: Ports {
            prompter,
            browser,
            kite: &h.kite,
            clock: &clock,
            monotonic: &h.redirect.clock,
            redirect: &h.redirect,
            stores: &stores,
            wait_ui: &wait_ui,
            sandbox_control: None,
            read_stdin_line: &read_line,
            self_browser: None,
            readiness: &h.readiness,
        },
    };
    f(&ctx)
}

/// Kite's success redirect query (the nonce is added from the login URL).
pub const OK_QUERY: &str = "action=login&type=login&status=success&request_token=rt0123456789";

/// kite-setup's redirect URL on `port`.
pub fn redirect_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/kite-setup/callback")
}

/// A browser that completes Kite's login with `query` whenever a login page is opened,
/// redirecting to kite-setup's URL on `port` through `h`'s fake redirect (and records
/// other pages, such as the console, without doing anything there).
pub fn kite_browser(h: &Harness, port: u16, query: &'static str) -> RecordingBrowser {
    let to = redirect_url(port);
    let redirect = h.redirect.clone();
    RecordingBrowser::acting(move |url| {
        if url.path().ends_with("/connect/login") {
            redirect.deliver(redirected_url(url, &to, query));
        }
    })
}
