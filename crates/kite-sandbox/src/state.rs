//! The sandbox's world and its rules (docs/sandbox.md): accounts, apps, request
//! and access tokens, authorisations, the clock offset and pending faults. Pure: every
//! rule takes "now" as an argument, so the unit tests below need no server and no clock.

use std::net::IpAddr;

use jiff::{SignedDuration, Timestamp};
use kite_wire::Plan;
use kite_wire::control::{AccountView, AppView, Fault, StateView};
use serde::{Deserialize, Serialize};

pub use crate::codes::{ALNUM, LOWER_ALNUM, random_from, random_token, totp_now, totp_ok};
use crate::orders::Order;

use kite_wire::Secret;
use kite_wire::time::expiry_after;

/// A request token dies this long after it was issued (at exactly 300 s it is dead).
pub const REQUEST_TOKEN_LIFETIME: SignedDuration = SignedDuration::from_secs(300);

/// The exact messages Kite sends (docs/kite-wire.md "Messages").
pub const MSG_BAD_KEY_OR_TOKEN: &str = "Incorrect `api_key` or `access_token`.";
pub const MSG_TOKEN_INVALID: &str = "Token is invalid or has expired.";
pub const MSG_BAD_CHECKSUM: &str = "Invalid `checksum`.";
pub const MSG_NOT_ENABLED: &str = "The user is not enabled for the app.";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub client_id: String,
    pub password: Secret,
    /// Base32 TOTP secret (SHA1, 6 digits, 30 s).
    pub totp_secret: Secret,
    pub name: String,
    pub email: String,
    /// The developer account's IP whitelist (orders are accepted only from these).
    #[serde(default)]
    pub ips: Vec<IpAddr>,
    /// When the console last changed the whitelist (one change per calendar week).
    #[serde(default)]
    pub ips_changed_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct App {
    pub api_key: String,
    pub api_secret: Secret,
    pub name: String,
    /// The client IDs the app is enabled for (family accounts), never empty: the one it was
    /// created for first, which cannot be removed. A file from before client lists has
    /// `owner` with that one client ID instead: it loads as the one-entry list.
    #[serde(alias = "owner", deserialize_with = "one_or_more_client_ids")]
    pub client_ids: Vec<String>,
    /// Who created it on the console (lists it under their apps).
    pub created_by: String,
    pub redirect_url: String,
    #[serde(default)]
    pub postback_url: String,
    #[serde(default)]
    pub description: String,
    pub plan: Plan,
    pub subscription_active: bool,
    /// True once the console has shown the current secret (it shows it only once).
    pub secret_shown: bool,
}

/// An app's client IDs as stored: a list, or the lone `owner` string of older files.
fn one_or_more_client_ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMore {
        One(String),
        More(Vec<String>),
    }
    let ids = match OneOrMore::deserialize(d)? {
        OneOrMore::One(id) => vec![id],
        OneOrMore::More(ids) => ids,
    };
    if ids.is_empty() {
        return Err(serde::de::Error::custom(
            "an app needs at least one client ID",
        ));
    }
    Ok(ids)
}

impl App {
    /// The client ID the app was created for: first on its list, never removed.
    pub fn owner(&self) -> &str {
        self.client_ids.first().map_or("", String::as_str)
    }

    /// Whether `client_id` may log in to this app.
    pub fn enabled_for(&self, client_id: &str) -> bool {
        self.client_ids.iter().any(|c| c == client_id)
    }
}

/// Why a new client ID list was refused (the console and the control API word it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientsError {
    UnknownApp,
    /// The app's own client ID (the first) is missing from the list.
    OwnerMissing,
    /// The entry at this index (0-based) names no account.
    UnknownClient(usize),
    /// The entry at this index repeats an earlier one.
    Duplicate(usize),
    TooMany,
}

/// The most client IDs one app holds (the user and immediate family; a bound on the file).
pub const MAX_CLIENT_IDS: usize = 10;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestToken {
    pub token: Secret,
    pub api_key: String,
    pub client_id: String,
    pub issued_at: Timestamp,
    pub used: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessToken {
    pub token: Secret,
    pub api_key: String,
    pub client_id: String,
    pub login_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub accounts: Vec<Account>,
    pub apps: Vec<App>,
    pub request_tokens: Vec<RequestToken>,
    pub access_tokens: Vec<AccessToken>,
    /// (client_id, api_key) pairs: the one-time app authorisation was given.
    pub authorisations: Vec<(String, String)>,
    pub clock_offset_seconds: i64,
    pub faults: Vec<Fault>,
    /// Orders placed through the API, newest last.
    #[serde(default)]
    pub orders: Vec<Order>,
    /// The seeded demo account and app (printed in the banner).
    pub demo_client_id: String,
    pub demo_api_key: String,
}

/// Why a token exchange failed, mapped to Kite's answers by the API layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeError {
    /// Unknown api_key or lapsed subscription.
    BadKey,
    /// Unknown, used, expired or foreign request token.
    TokenInvalid,
    BadChecksum,
}

impl State {
    /// A fresh world with one demo account and one demo app.
    pub fn seeded() -> Self {
        let mut s = Self::default();
        let account = s.new_account("Demo Trader");
        let app = s.new_app(
            &account.client_id,
            "Demo app",
            "http://127.0.0.1:5123/kite-setup/callback",
            Plan::Personal,
        );
        s.demo_client_id = account.client_id;
        s.demo_api_key = app.api_key;
        s
    }

    pub fn account(&self, client_id: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.client_id == client_id)
    }

    /// Whether `client_id` (normalized by the caller), `password` and a current TOTP
    /// code log that account in: the check behind both Kite's login page and the console.
    pub fn login_ok(&self, client_id: &str, password: &Secret, totp: &str, now: Timestamp) -> bool {
        self.account(client_id)
            .is_some_and(|a| a.password.ct_eq(password) && totp_ok(&a.totp_secret, totp, now))
    }

    pub fn app(&self, api_key: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.api_key == api_key)
    }

    pub fn app_mut(&mut self, api_key: &str) -> Option<&mut App> {
        self.apps.iter_mut().find(|a| a.api_key == api_key)
    }

    /// Adds an account with a fresh client ID (`AB1234` shape), password and TOTP secret.
    pub fn new_account(&mut self, name: &str) -> Account {
        let client_id = loop {
            let letters = random_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 2);
            let id = format!("{letters}{}", random_from(b"0123456789", 4));
            if self.account(&id).is_none() {
                break id;
            }
        };
        let mut totp_bytes = [0u8; 20];
        getrandom::fill(&mut totp_bytes).expect("the OS random number generator works");
        let account = Account {
            email: format!("{}@sandbox.invalid", client_id.to_ascii_lowercase()),
            client_id,
            password: Secret::new(random_from(ALNUM, 12)),
            totp_secret: Secret::new(totp_rs::Secret::from(totp_bytes).to_base32()),
            name: name.to_string(),
            ips: Vec::new(),
            ips_changed_at: None,
        };
        self.accounts.push(account.clone());
        account
    }

    /// Adds an app enabled for `owner` with a fresh key and secret.
    pub fn new_app(&mut self, owner: &str, name: &str, redirect_url: &str, plan: Plan) -> App {
        let app = App {
            api_key: random_from(LOWER_ALNUM, 16),
            api_secret: Secret::new(random_token()),
            name: name.to_string(),
            client_ids: vec![owner.to_string()],
            created_by: owner.to_string(),
            redirect_url: redirect_url.to_string(),
            postback_url: String::new(),
            description: String::new(),
            plan,
            subscription_active: true,
            secret_shown: false,
        };
        self.apps.push(app.clone());
        app
    }

    /// A new secret for the app; issued access tokens live on (docs/sandbox.md).
    pub fn regenerate_secret(&mut self, api_key: &str) -> Option<Secret> {
        let app = self.app_mut(api_key)?;
        app.api_secret = Secret::new(random_token());
        app.secret_shown = false;
        Some(app.api_secret.clone())
    }

    /// Replaces the app's client IDs with `ids` (upper-cased, trimmed): every one a known
    /// account, no repeats, at most `MAX_CLIENT_IDS`, the app's own client ID kept first
    /// wherever the list puts it. Sessions already issued are not touched. Returns the list.
    pub fn set_client_ids(
        &mut self,
        api_key: &str,
        ids: &[String],
    ) -> Result<Vec<String>, ClientsError> {
        let owner = self
            .app(api_key)
            .ok_or(ClientsError::UnknownApp)?
            .owner()
            .to_string();
        let ids: Vec<String> = ids.iter().map(|c| c.trim().to_ascii_uppercase()).collect();
        if ids.len() > MAX_CLIENT_IDS {
            return Err(ClientsError::TooMany);
        }
        for (i, id) in ids.iter().enumerate() {
            if ids[..i].contains(id) {
                return Err(ClientsError::Duplicate(i));
            }
            if self.account(id).is_none() {
                return Err(ClientsError::UnknownClient(i));
            }
        }
        if !ids.contains(&owner) {
            return Err(ClientsError::OwnerMissing);
        }
        let list: Vec<String> = std::iter::once(owner.clone())
            .chain(ids.into_iter().filter(|c| *c != owner))
            .collect();
        let app = self.app_mut(api_key).ok_or(ClientsError::UnknownApp)?;
        app.client_ids.clone_from(&list);
        Ok(list)
    }

    pub fn is_authorised(&self, client_id: &str, api_key: &str) -> bool {
        self.authorisations
            .iter()
            .any(|(c, k)| c == client_id && k == api_key)
    }

    pub fn authorise(&mut self, client_id: &str, api_key: &str) {
        if !self.is_authorised(client_id, api_key) {
            self.authorisations
                .push((client_id.to_string(), api_key.to_string()));
        }
    }

    /// Issues a request token for a login of `client_id` into the app `api_key`.
    pub fn issue_request_token(
        &mut self,
        api_key: &str,
        client_id: &str,
        now: Timestamp,
    ) -> String {
        let token = random_token();
        self.request_tokens.push(RequestToken {
            token: Secret::new(token.clone()),
            api_key: api_key.to_string(),
            client_id: client_id.to_string(),
            issued_at: now,
            used: false,
        });
        token
    }

    /// `POST /session/token`'s rules: key, then token, then checksum. A token that reaches
    /// the checksum step is consumed whatever the checksum says (single use).
    pub fn exchange(
        &mut self,
        api_key: &str,
        request_token: &str,
        checksum: &str,
        now: Timestamp,
    ) -> Result<AccessToken, ExchangeError> {
        let app = self
            .app(api_key)
            .filter(|a| a.subscription_active)
            .ok_or(ExchangeError::BadKey)?;
        let secret = app.api_secret.clone();
        let wanted = Secret::from(request_token);
        let rt = self
            .request_tokens
            .iter_mut()
            .find(|t| t.token == wanted)
            .ok_or(ExchangeError::TokenInvalid)?;
        let age = now.duration_since(rt.issued_at);
        if rt.used || rt.api_key != api_key || age >= REQUEST_TOKEN_LIFETIME {
            return Err(ExchangeError::TokenInvalid);
        }
        rt.used = true;
        let client_id = rt.client_id.clone();
        let expected = kite_wire::checksum(&Secret::from(api_key), request_token, &secret);
        if !Secret::from(checksum.trim().to_ascii_lowercase()).ct_eq(&Secret::new(expected)) {
            return Err(ExchangeError::BadChecksum);
        }
        let at = AccessToken {
            token: Secret::new(random_token()),
            api_key: api_key.to_string(),
            client_id,
            login_at: now,
            expires_at: expiry_after(now),
            revoked: false,
        };
        self.access_tokens.push(at.clone());
        Ok(at)
    }

    /// The live access token `token` for `api_key`, if the call may go through: not
    /// revoked, not expired, the key matches and the app's subscription is active.
    pub fn check_access(&self, api_key: &str, token: &str, now: Timestamp) -> Option<&AccessToken> {
        let app = self.app(api_key).filter(|a| a.subscription_active)?;
        let wanted = Secret::from(token);
        self.access_tokens.iter().find(|t| {
            t.token == wanted && !t.revoked && now < t.expires_at && t.api_key == app.api_key
        })
    }

    /// Kills an access token (logout). False if it was not a live one.
    pub fn revoke(&mut self, api_key: &str, token: &str, now: Timestamp) -> bool {
        if self.check_access(api_key, token, now).is_none() {
            return false;
        }
        let wanted = Secret::from(token);
        for t in &mut self.access_tokens {
            if t.token == wanted {
                t.revoked = true;
            }
        }
        true
    }

    /// Takes one hit of the first fault for `path`, if any.
    pub fn take_fault(&mut self, path: &str) -> Option<Fault> {
        let i = self.faults.iter().position(|f| f.path == path)?;
        let mut hit = self.faults[i].clone();
        hit.count = 1;
        self.faults[i].count = self.faults[i].count.saturating_sub(1);
        if self.faults[i].count == 0 {
            self.faults.remove(i);
        }
        Some(hit)
    }

    /// Drops tokens long dead, so the file does not grow forever. The margins keep the
    /// rules independent of pruning when a test travels back in time a little.
    pub fn prune(&mut self, now: Timestamp) {
        let day = SignedDuration::from_hours(24);
        self.request_tokens
            .retain(|t| now.duration_since(t.issued_at) < day);
        self.access_tokens
            .retain(|t| now.duration_since(t.expires_at) < SignedDuration::from_hours(7 * 24));
        self.orders
            .retain(|o| now.duration_since(o.placed_at) < SignedDuration::from_hours(7 * 24));
    }

    /// What `GET /_sandbox/state` shows: no secret, password, TOTP secret or token.
    pub fn public_view(&self, now: Timestamp) -> StateView {
        StateView {
            apps: self
                .apps
                .iter()
                .map(|a| AppView {
                    api_key: a.api_key.clone(),
                    name: a.name.clone(),
                    owner: a.owner().to_string(),
                    client_ids: a.client_ids.clone(),
                    plan: a.plan,
                    subscription_active: a.subscription_active,
                    redirect_url: a.redirect_url.clone(),
                })
                .collect(),
            accounts: self
                .accounts
                .iter()
                .map(|a| AccountView {
                    client_id: a.client_id.clone(),
                    name: a.name.clone(),
                    ips: a.ips.clone(),
                })
                .collect(),
            live_request_tokens: self
                .request_tokens
                .iter()
                .filter(|t| !t.used && now.duration_since(t.issued_at) < REQUEST_TOKEN_LIFETIME)
                .count(),
            live_access_tokens: self
                .access_tokens
                .iter()
                .filter(|t| !t.revoked && now < t.expires_at)
                .count(),
            clock_offset_seconds: self.clock_offset_seconds,
            faults: self.faults.clone(),
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
