//! The tool's side of the sandbox's test control API: find a running sandbox, read its
//! clock, create apps and approve logins when kite-setup plays the browser's part on a
//! headless machine. Sandbox mode only; never used against the live Kite.

use std::time::Duration;

use jiff::SignedDuration;
use reqwest::blocking::Client;
use url::Url;

use crate::commands::SandboxControl;
use crate::error::Error;
use crate::redirect::{Browser, BrowserError, BrowserOutcome};
use crate::secret::Secret;
use crate::store::AppCredentials;

/// A client for one sandbox's control API.
#[derive(Clone)]
pub struct SandboxClient {
    base: Url,
    client: Client,
}

fn sandbox_error(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::failed(
        format!("the sandbox could not {what}: {detail}"),
        "restart it with `kite-setup sandbox`, or use --sandbox instead of --sandbox-url to run one in-process",
    )
}

impl SandboxClient {
    pub fn new(base: &Url, timeout: Duration) -> Result<Self, Error> {
        crate::kite::client::check_endpoint(base).map_err(|e| {
            Error::usage(
                format!("--sandbox-url: {e}"),
                "a sandbox runs on a loopback address, e.g. http://127.0.0.1:5010",
            )
        })?;
        // A sandbox is on loopback (app.rs refuses any other --sandbox-url): no proxy.
        let client = crate::kite::client::client_builder(timeout, timeout, true)
            .build()
            .map_err(|e| sandbox_error("be reached", e.without_url()))?;
        let mut base = base.clone();
        base.set_path("/");
        base.set_query(None);
        Ok(Self { base, client })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Url {
        let mut u = self.base.clone();
        u.set_path(path);
        u
    }

    /// GETs a control API document; `what` completes "the sandbox could not ...".
    fn get(&self, path: &str, what: &str) -> Result<serde_json::Value, Error> {
        self.client
            .get(self.url(path))
            .send()
            .and_then(reqwest::blocking::Response::json)
            .map_err(|e| sandbox_error(what, e.without_url()))
    }

    /// The sandbox clock's offset from real time (time travel), if a sandbox answers.
    pub fn clock_offset(&self) -> Result<SignedDuration, Error> {
        let v = self.get("/_sandbox/clock", "tell its clock")?;
        let secs = v["offset_seconds"]
            .as_i64()
            .ok_or_else(|| sandbox_error("tell its clock", "no offset_seconds"))?;
        Ok(SignedDuration::from_secs(secs))
    }

    fn post(&self, path: &str, body: &serde_json::Value) -> Result<serde_json::Value, Error> {
        let resp = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .map_err(|e| sandbox_error("answer", e.without_url()))?;
        let status = resp.status();
        let v: serde_json::Value = resp
            .json()
            .map_err(|e| sandbox_error("answer", e.without_url()))?;
        if !status.is_success() {
            let msg = v["message"].as_str().unwrap_or("an error").to_string();
            return Err(sandbox_error("do that", msg));
        }
        Ok(v)
    }

    /// Asks the sandbox to log in its app's owner for `login_url` and returns where the
    /// browser would be redirected.
    pub fn approve(&self, login_url: &Url) -> Result<Url, Error> {
        let v = self.post(
            "/_sandbox/approve",
            &serde_json::json!({ "login_url": login_url.as_str() }),
        )?;
        let to = v["redirect_url"]
            .as_str()
            .ok_or_else(|| sandbox_error("approve the login", "no redirect_url"))?;
        Url::parse(to).map_err(|e| sandbox_error("approve the login", e))
    }

    /// Follows a redirect to kite-setup's own listener, as a browser would.
    pub fn visit(&self, url: &Url) -> Result<(), Error> {
        self.client
            .get(url.clone())
            .send()
            .map(|_| ())
            .map_err(|e| sandbox_error("reach the redirect", e.without_url()))
    }
}

impl SandboxControl for SandboxClient {
    fn create_app(
        &self,
        client_id: &str,
        redirect_url: &str,
        plan: &str,
    ) -> Result<AppCredentials, Error> {
        let v = self.post("/_sandbox/apps", &serde_json::json!({ "client_id": client_id, "redirect_url": redirect_url, "plan": plan }))?;
        let key = v["api_key"]
            .as_str()
            .ok_or_else(|| sandbox_error("create the app", "no api_key"))?;
        let secret = v["api_secret"]
            .as_str()
            .ok_or_else(|| sandbox_error("create the app", "no api_secret"))?;
        Ok(AppCredentials {
            api_key: Secret::from(key),
            api_secret: Secret::from(secret),
        })
    }

    fn demo_client_id(&self) -> Result<String, Error> {
        let v = self.get("/_sandbox/state", "show its state")?;
        v["accounts"][0]["client_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| sandbox_error("show its state", "no accounts"))
    }
}

/// The "browser" of a headless sandbox run: approves the login through the control API
/// and follows the redirect to the listener from a background thread, like a browser tab.
pub struct SelfPlayBrowser(pub SandboxClient);

impl Browser for SelfPlayBrowser {
    fn open(&self, url: &Url) -> Result<BrowserOutcome, BrowserError> {
        if !url.path().ends_with("/connect/login") {
            return Ok(BrowserOutcome::NotOpened(
                "sandbox self-play only handles logins".into(),
            ));
        }
        let to = self
            .0
            .approve(url)
            .map_err(|e| BrowserError::Failed(e.to_string()))?;
        let client = self.0.clone();
        std::thread::spawn(move || {
            // Let the listener start waiting first; it is bound already, so this is only politeness.
            std::thread::sleep(Duration::from_millis(20));
            let _ = client.visit(&to);
        });
        Ok(BrowserOutcome::Opened)
    }
}
