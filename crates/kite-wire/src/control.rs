//! The sandbox's test control API (docs/sandbox.md "Control API"): JSON under
//! `/_sandbox/`, one request and one response type per endpoint, used by the sandbox to
//! read and answer and by kite-setup's client to ask. Errors come back as Kite's error
//! envelope (`InputException`, HTTP 400). Responses that create credentials carry them
//! (that is their purpose); `StateView` never carries a secret.

use std::net::IpAddr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{Plan, Secret};

/// Every control path starts with this.
pub const PREFIX: &str = "/_sandbox/";

/// The control API's paths.
pub mod path {
    /// `GET` → `StateView`.
    pub const STATE: &str = "/_sandbox/state";
    /// `GET` → `ClockView`; `POST SetClock` → `ClockView`.
    pub const CLOCK: &str = "/_sandbox/clock";
    /// `POST NewAccount` → `AccountCreated`.
    pub const ACCOUNTS: &str = "/_sandbox/accounts";
    /// `POST NewApp` → `AppCreated`.
    pub const APPS: &str = "/_sandbox/apps";
    /// `POST Fault` → `FaultAdded`; `DELETE` → `FaultsCleared`.
    pub const FAULTS: &str = "/_sandbox/faults";
    /// `POST Approve` → `Approved`.
    pub const APPROVE: &str = "/_sandbox/approve";
    /// `GET` → `PeerView`: the address this request came from, as a public "what is my
    /// IP" service would answer it.
    pub const PEER: &str = "/_sandbox/peer";

    /// `POST {}` → `SecretRegenerated`.
    pub fn regenerate(api_key: &str) -> String {
        format!("{APPS}/{api_key}/regenerate")
    }

    /// `POST SetSubscription` → `SubscriptionSet`.
    pub fn subscription(api_key: &str) -> String {
        format!("{APPS}/{api_key}/subscription")
    }

    /// `POST SetClients` → `ClientsSet`.
    pub fn clients(api_key: &str) -> String {
        format!("{APPS}/{api_key}/clients")
    }

    /// `POST SetIps` → `IpsSet`.
    pub fn ips(client_id: &str) -> String {
        format!("{ACCOUNTS}/{client_id}/ips")
    }
}

/// What `GET /_sandbox/state` shows: counts and public facts, no secret, password, TOTP
/// secret or token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateView {
    pub apps: Vec<AppView>,
    /// The seeded demo account first.
    pub accounts: Vec<AccountView>,
    pub live_request_tokens: usize,
    pub live_access_tokens: usize,
    pub clock_offset_seconds: i64,
    pub faults: Vec<Fault>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppView {
    pub api_key: String,
    pub name: String,
    /// The client ID the app was created for (first of `client_ids`).
    pub owner: String,
    /// Every client ID the app is enabled for (family accounts), `owner` first.
    #[serde(default)]
    pub client_ids: Vec<String>,
    pub plan: Plan,
    pub subscription_active: bool,
    pub redirect_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    pub client_id: String,
    pub name: String,
    /// The developer account's IP whitelist: orders for its apps are accepted only from
    /// these addresses (empty: none configured, every order refused).
    #[serde(default)]
    pub ips: Vec<IpAddr>,
}

/// What `GET /_sandbox/peer` answers: the TCP peer address of the request, the address
/// the static IP rule checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    pub ip: IpAddr,
}

/// The sandbox clock: real time plus `offset_seconds` (time travel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockView {
    pub offset_seconds: i64,
    pub now: Timestamp,
}

/// `POST /_sandbox/clock`: set the offset (at most 100 years either way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetClock {
    pub offset_seconds: i64,
}

/// `POST /_sandbox/accounts`: the body is an empty object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccount {}

/// A new account's login credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountCreated {
    pub client_id: String,
    pub password: Secret,
    pub totp_secret: Secret,
}

/// `POST /_sandbox/apps`: an app enabled for `client_id`, its secret already shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApp {
    pub client_id: String,
    /// https, or http on 127.0.0.1, localhost or [::1].
    pub redirect_url: String,
    /// Personal when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// "Test app" when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppCreated {
    pub api_key: String,
    pub api_secret: Secret,
}

/// `POST /_sandbox/apps/{api_key}/regenerate`: the new secret (old tokens live on).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretRegenerated {
    pub api_secret: Secret,
}

/// `POST /_sandbox/apps/{api_key}/subscription`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetSubscription {
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionSet {
    pub api_key: String,
    pub subscription_active: bool,
}

/// `POST /_sandbox/apps/{api_key}/clients`: replace the client IDs the app is enabled for
/// (family accounts). Each must be a known account, no repeats, at most ten, and the
/// app's own client ID must stay on it (it is kept first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetClients {
    pub client_ids: Vec<String>,
}

/// The app's client IDs as stored: its own first, then the rest in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientsSet {
    pub api_key: String,
    pub client_ids: Vec<String>,
}

/// `POST /_sandbox/accounts/{client_id}/ips`: replace the account's IP whitelist (at most
/// two IPv4 or IPv6 addresses, no duplicates; empty for none). Unlike the console, no
/// weekly limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetIps {
    pub ips: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpsSet {
    pub client_id: String,
    pub ips: Vec<IpAddr>,
}

/// One injected fault: the next `count` requests to `path` (no query) are delayed, get
/// `status` (Kite's envelope for it) or `body`, or have their connection broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Break the connection instead of answering.
    #[serde(default)]
    pub reset: bool,
    /// How many more requests it hits (one when left out).
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultAdded {
    pub fault: Fault,
}

/// `DELETE /_sandbox/faults`: every pending fault is dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultsCleared {
    /// How many there were.
    pub cleared: usize,
}

/// `POST /_sandbox/approve`: log the app's owner (or `client_id`, which must be on the
/// app's client IDs) in for this login URL, as a browser would, without the form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approve {
    pub login_url: String,
    /// Who logs in; the app's owner when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// Where the browser would be redirected (the app's URL with the request token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approved {
    pub redirect_url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_without_count_hits_once() {
        let f: Fault = serde_json::from_str(r#"{"path":"/x","status":503}"#).unwrap();
        assert_eq!((f.count, f.status, f.reset), (1, Some(503), false));
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"path":"/x","status":503,"reset":false,"count":1}"#
        );
        assert!(serde_json::from_str::<Fault>(r#"{"path":"/x","status":"abc"}"#).is_err());
    }

    #[test]
    fn new_app_leaves_out_what_it_does_not_set() {
        let req = NewApp {
            client_id: "AB1234".into(),
            redirect_url: "https://x.y/".into(),
            plan: None,
            name: None,
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"client_id":"AB1234","redirect_url":"https://x.y/"}"#
        );
        assert_eq!(path::regenerate("k"), "/_sandbox/apps/k/regenerate");
        assert_eq!(path::ips("AB1234"), "/_sandbox/accounts/AB1234/ips");
        assert_eq!(path::clients("k"), "/_sandbox/apps/k/clients");
        // A view from a sandbox before client lists still reads.
        let old: AppView = serde_json::from_str(
            r#"{"api_key":"k","name":"n","owner":"AB1234","plan":"personal","subscription_active":true,"redirect_url":"https://x.y/"}"#,
        )
        .unwrap();
        assert!(old.client_ids.is_empty());
        let approve = Approve {
            login_url: "u".into(),
            client_id: None,
        };
        assert_eq!(
            serde_json::to_string(&approve).unwrap(),
            r#"{"login_url":"u"}"#
        );
        let set: IpsSet =
            serde_json::from_str(r#"{"client_id":"AB1234","ips":["127.0.0.1","::1"]}"#).unwrap();
        assert_eq!(set.ips[1], IpAddr::from(std::net::Ipv6Addr::LOCALHOST));
    }
}
