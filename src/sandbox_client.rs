//! The tool's side of the sandbox's test control API (docs/sandbox.md), typed with the
//! request and response types the sandbox itself uses: find a running sandbox, read its
//! clock, create apps and approve logins when kite-setup plays the browser's part on a
//! headless machine. Sandbox mode only; never used against the live Kite.

use std::time::Duration;

use jiff::SignedDuration;
use kite_wire::Plan;
use kite_wire::control::{
    self, AccountCreated, AppCreated, Approve, Approved, ClientsSet, ClockView, FaultsCleared,
    IpsSet, NewAccount, NewApp, SetClients, SetIps, StateView,
};
use kite_wire::envelope::{Envelope, data_error};
use reqwest::blocking::Client;
use serde::Serialize;
use serde::de::DeserializeOwned;
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

/// Sends a control request and reads its typed answer, or the sandbox's error
/// envelope's message.
fn send<T: DeserializeOwned>(
    request: reqwest::blocking::RequestBuilder,
    what: &str,
) -> Result<T, Error> {
    let resp = request
        .send()
        .map_err(|e| sandbox_error(what, e.without_url()))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .map_err(|e| sandbox_error(what, e.without_url()))?;
    if !status.is_success() {
        let env: Envelope = serde_json::from_slice(&bytes).unwrap_or_default();
        let msg = env.message.unwrap_or_else(|| "an error".into());
        return Err(sandbox_error(what, msg));
    }
    serde_json::from_slice(&bytes).map_err(|e| sandbox_error(what, data_error(&e)))
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
    fn get<T: DeserializeOwned>(&self, path: &str, what: &str) -> Result<T, Error> {
        send(self.client.get(self.url(path)), what)
    }

    fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        what: &str,
    ) -> Result<T, Error> {
        send(self.client.post(self.url(path)).json(body), what)
    }

    /// The sandbox clock's offset from real time (time travel), if a sandbox answers.
    pub fn clock_offset(&self) -> Result<SignedDuration, Error> {
        let v: ClockView = self.get(control::path::CLOCK, "tell its clock")?;
        Ok(SignedDuration::from_secs(v.offset_seconds))
    }

    /// What the sandbox holds, without secrets.
    pub fn state(&self) -> Result<StateView, Error> {
        self.get(control::path::STATE, "show its state")
    }

    /// Drops every pending injected fault; returns how many there were.
    pub fn clear_faults(&self) -> Result<usize, Error> {
        let v: FaultsCleared = send(
            self.client.delete(self.url(control::path::FAULTS)),
            "clear its faults",
        )?;
        Ok(v.cleared)
    }

    /// Replaces the client IDs the app `api_key` is enabled for (family accounts; the
    /// app's own client ID must stay on the list) and returns the list as stored, the
    /// app's own first.
    pub fn set_app_clients(
        &self,
        api_key: &str,
        client_ids: &[String],
    ) -> Result<Vec<String>, Error> {
        let v: ClientsSet = self.post(
            &control::path::clients(api_key),
            &SetClients {
                client_ids: client_ids.to_vec(),
            },
            "set the app's client IDs",
        )?;
        Ok(v.client_ids)
    }

    /// Asks the sandbox to log in its app's owner for `login_url` and returns where the
    /// browser would be redirected.
    pub fn approve(&self, login_url: &Url) -> Result<Url, Error> {
        self.approve_as(login_url, None)
    }

    /// [`SandboxClient::approve`] for a login by `client_id` (a family member on the
    /// app), or by the app's owner when `None`.
    pub fn approve_as(&self, login_url: &Url, client_id: Option<&str>) -> Result<Url, Error> {
        let what = "approve the login";
        let v: Approved = self.post(
            control::path::APPROVE,
            &Approve {
                login_url: login_url.to_string(),
                client_id: client_id.map(str::to_string),
            },
            what,
        )?;
        Url::parse(&v.redirect_url).map_err(|e| sandbox_error(what, e))
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
        let what = "create the app";
        let plan = Plan::parse(plan).ok_or_else(|| sandbox_error(what, "unknown plan"))?;
        let v: AppCreated = self.post(
            control::path::APPS,
            &NewApp {
                client_id: client_id.to_string(),
                redirect_url: redirect_url.to_string(),
                plan: Some(plan),
                name: None,
            },
            what,
        )?;
        Ok(AppCredentials {
            api_key: Secret::new(v.api_key),
            api_secret: v.api_secret,
        })
    }

    fn set_ips(&self, client_id: &str, ips: &[&str]) -> Result<(), Error> {
        let _: IpsSet = self.post(
            &control::path::ips(client_id),
            &SetIps {
                ips: ips.iter().map(|s| (*s).to_string()).collect(),
            },
            "save the IP Whitelist",
        )?;
        Ok(())
    }

    fn add_family_account(&self, api_key: &str) -> Result<String, Error> {
        let created: AccountCreated =
            self.post(control::path::ACCOUNTS, &NewAccount {}, "create an account")?;
        let what = "set the app's client IDs";
        let mut client_ids = self
            .state()?
            .apps
            .into_iter()
            .find(|a| a.api_key == api_key)
            .map(|a| a.client_ids)
            .ok_or_else(|| sandbox_error(what, "no app has that api_key"))?;
        client_ids.push(created.client_id.clone());
        self.set_app_clients(api_key, &client_ids)?;
        Ok(created.client_id)
    }

    fn demo_client_id(&self) -> Result<String, Error> {
        self.state()?
            .accounts
            .into_iter()
            .next()
            .map(|a| a.client_id)
            .ok_or_else(|| sandbox_error("show its state", "no accounts"))
    }
}

/// The "browser" of a headless sandbox run: approves the login through the control API
/// and follows the redirect to the listener from a background thread, like a browser tab.
pub struct SelfPlayBrowser(pub SandboxClient);

impl SelfPlayBrowser {
    fn approve_and_visit(
        &self,
        url: &Url,
        client_id: Option<&str>,
    ) -> Result<BrowserOutcome, BrowserError> {
        if !url.path().ends_with("/connect/login") {
            return Ok(BrowserOutcome::NotOpened(
                "sandbox self-play only handles logins".into(),
            ));
        }
        let to = self
            .0
            .approve_as(url, client_id)
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

impl Browser for SelfPlayBrowser {
    fn open(&self, url: &Url) -> Result<BrowserOutcome, BrowserError> {
        self.approve_and_visit(url, None)
    }

    fn open_login(&self, url: &Url, client_id: &str) -> Result<BrowserOutcome, BrowserError> {
        self.approve_and_visit(url, Some(client_id))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kite_wire::control::{Fault, FaultAdded};

    use super::*;

    #[test]
    fn typed_control_calls_against_a_real_sandbox() {
        let sb = kite_sandbox::start(
            kite_sandbox::SandboxOptions::default(),
            Arc::new(kite_sandbox::WallClock),
        )
        .unwrap();
        sb.quiet();
        let client = SandboxClient::new(&sb.url, Duration::from_secs(10)).unwrap();
        assert_eq!(client.demo_client_id().unwrap(), sb.demo.client_id);
        let fault = Fault {
            path: "/user/profile".into(),
            status: Some(503),
            delay_ms: None,
            body: None,
            reset: false,
            count: 3,
        };
        let added: FaultAdded = client
            .post(control::path::FAULTS, &fault, "add a fault")
            .unwrap();
        assert_eq!(added.fault, fault);
        assert_eq!(client.state().unwrap().faults.len(), 1);
        assert_eq!(client.clear_faults().unwrap(), 1);
        assert!(client.state().unwrap().faults.is_empty());
        assert_eq!(client.clear_faults().unwrap(), 0);
        // Family accounts: a second client ID on the demo app, shown in the state.
        let spouse: control::AccountCreated = client
            .post(
                control::path::ACCOUNTS,
                &control::NewAccount {},
                "add an account",
            )
            .unwrap();
        let demo = sb.demo.client_id.clone();
        let both = vec![spouse.client_id.clone(), demo.clone()];
        assert_eq!(
            client.set_app_clients(&sb.demo.api_key, &both).unwrap(),
            vec![demo.clone(), spouse.client_id.clone()]
        );
        assert_eq!(
            client.state().unwrap().apps[0].client_ids,
            vec![demo, spouse.client_id.clone()]
        );
        let err = client
            .set_app_clients(&sb.demo.api_key, &[spouse.client_id])
            .unwrap_err();
        assert!(err.to_string().contains("cannot be removed"), "{err}");
        // A refusal arrives as the sandbox's own message.
        let err = client
            .create_app("ZZ9999", "https://x.y/", "personal")
            .unwrap_err();
        assert!(
            err.to_string().contains("no account has the client_id"),
            "{err}"
        );
    }
}
