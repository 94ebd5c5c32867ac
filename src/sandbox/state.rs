//! The sandbox's world and its rules (product.md "The sandbox"): accounts, apps, request
//! and access tokens, authorisations, the clock offset and pending faults. Pure: every
//! rule takes "now" as an argument, so the unit tests below need no server and no clock.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::session::expiry_after;

/// A request token dies this long after it was issued (at exactly 300 s it is dead).
pub const REQUEST_TOKEN_LIFETIME: SignedDuration = SignedDuration::from_secs(300);

/// The exact messages Kite sends (kite-api.md §2, §3).
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Personal,
    Connect,
}

impl Plan {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "personal" => Some(Self::Personal),
            "connect" => Some(Self::Connect),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Personal => "personal",
            Self::Connect => "connect",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct App {
    pub api_key: String,
    pub api_secret: Secret,
    pub name: String,
    /// The one client ID the app is enabled for.
    pub owner: String,
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

/// One injected fault (test control API).
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
    /// How many more requests it hits.
    pub count: u32,
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

/// Random values from the OS. A failing OS RNG is unrecoverable, so this panics.
pub fn random_from(alphabet: &[u8], len: usize) -> String {
    // Rejection sampling keeps the distribution uniform.
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut buf = [0u8; 64];
        getrandom::fill(&mut buf).expect("the OS random number generator works");
        for b in buf {
            if usize::from(b) < limit && out.len() < len {
                out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
            }
        }
    }
    out
}

const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// 32 mixed-case alphanumerics (secrets and tokens).
pub fn random_token() -> String {
    random_from(ALNUM, 32)
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
            owner: owner.to_string(),
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

    /// A new secret for the app; issued access tokens live on (kite-api.md §4).
    pub fn regenerate_secret(&mut self, api_key: &str) -> Option<Secret> {
        let app = self.app_mut(api_key)?;
        app.api_secret = Secret::new(random_token());
        app.secret_shown = false;
        Some(app.api_secret.clone())
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
        let expected = crate::kite::checksum(&Secret::from(api_key), request_token, &secret);
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
    }

    /// What `GET /_sandbox/state` shows: no secret, password, TOTP secret or token.
    pub fn public_view(&self, now: Timestamp) -> serde_json::Value {
        let apps: Vec<_> = self
            .apps
            .iter()
            .map(|a| {
                serde_json::json!({
                    "api_key": a.api_key,
                    "name": a.name,
                    "owner": a.owner,
                    "plan": a.plan.as_str(),
                    "subscription_active": a.subscription_active,
                    "redirect_url": a.redirect_url,
                })
            })
            .collect();
        let accounts: Vec<_> = self
            .accounts
            .iter()
            .map(|a| serde_json::json!({ "client_id": a.client_id, "name": a.name }))
            .collect();
        let live_request = self
            .request_tokens
            .iter()
            .filter(|t| !t.used && now.duration_since(t.issued_at) < REQUEST_TOKEN_LIFETIME)
            .count();
        let live_access = self
            .access_tokens
            .iter()
            .filter(|t| !t.revoked && now < t.expires_at)
            .count();
        serde_json::json!({
            "apps": apps,
            "accounts": accounts,
            "live_request_tokens": live_request,
            "live_access_tokens": live_access,
            "clock_offset_seconds": self.clock_offset_seconds,
            "faults": self.faults,
        })
    }
}

/// Checks a 6-digit TOTP code against a base32 secret at `now`, allowing ±1 step.
pub fn totp_ok(secret_b32: &Secret, code: &str, now: Timestamp) -> bool {
    let Some(totp) = totp_for(secret_b32) else {
        return false;
    };
    let Ok(secs) = u64::try_from(now.as_second()) else {
        return false;
    };
    totp.check(code.trim(), secs).is_some()
}

/// The current code (for the demo convenience line and the banner).
pub fn totp_now(secret_b32: &Secret, now: Timestamp) -> Option<String> {
    let totp = totp_for(secret_b32)?;
    let secs = u64::try_from(now.as_second()).ok()?;
    Some(totp.generate(secs).to_string())
}

fn totp_for(secret_b32: &Secret) -> Option<totp_rs::Totp> {
    let bytes = totp_rs::Secret::try_from_base32(secret_b32.expose()).ok()?;
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(bytes)
        .build()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{format_ist, parse_login_time};

    fn ist(s: &str) -> Timestamp {
        parse_login_time(s).unwrap()
    }

    fn secs(n: i64) -> SignedDuration {
        SignedDuration::from_secs(n)
    }

    /// A state and a fresh request token for the demo app, with its right checksum.
    fn with_token(now: Timestamp) -> (State, String, String, String) {
        let mut s = State::seeded();
        let key = s.demo_api_key.clone();
        let client = s.demo_client_id.clone();
        let rt = s.issue_request_token(&key, &client, now);
        let secret = s.app(&key).unwrap().api_secret.clone();
        let sum = crate::kite::checksum(&Secret::from(key.as_str()), &rt, &secret);
        (s, key, rt, sum)
    }

    #[test]
    fn seeded_ids_have_kite_shapes() {
        let s = State::seeded();
        let a = s.account(&s.demo_client_id).unwrap();
        assert!(a.client_id.len() == 6 && a.client_id[..2].chars().all(|c| c.is_ascii_uppercase()));
        let app = s.app(&s.demo_api_key).unwrap();
        assert_eq!(app.api_key.len(), 16);
        assert!(
            app.api_key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_eq!(app.api_secret.len(), 32);
        assert_eq!(app.owner, a.client_id);
    }

    #[test]
    fn token_from_a_day_login_dies_at_next_six_ist() {
        let now = ist("2026-11-26 10:00:00");
        let (mut s, key, rt, sum) = with_token(now);
        let at = s.exchange(&key, &rt, &sum, now).unwrap();
        assert_eq!(format_ist(at.expires_at), "2026-11-27 06:00:00");
        let tok = at.token.expose().to_string();
        assert!(
            s.check_access(&key, &tok, ist("2026-11-27 05:59:59"))
                .is_some()
        );
        assert!(
            s.check_access(&key, &tok, ist("2026-11-27 06:00:00"))
                .is_none()
        );
    }

    #[test]
    fn token_from_a_two_am_login_dies_the_same_morning() {
        let now = ist("2026-11-26 02:00:00");
        let (mut s, key, rt, sum) = with_token(now);
        let at = s.exchange(&key, &rt, &sum, now).unwrap();
        assert_eq!(format_ist(at.expires_at), "2026-11-26 06:00:00");
        let tok = at.token.expose().to_string();
        assert!(
            s.check_access(&key, &tok, ist("2026-11-26 06:00:00"))
                .is_none()
        );
    }

    #[test]
    fn request_token_is_dead_at_exactly_300_seconds() {
        let now = ist("2026-11-26 10:00:00");
        let (mut s, key, rt, sum) = with_token(now);
        assert_eq!(
            s.exchange(&key, &rt, &sum, now.checked_add(secs(300)).unwrap())
                .unwrap_err(),
            ExchangeError::TokenInvalid
        );
        let (mut s, key, rt, sum) = with_token(now);
        assert!(
            s.exchange(&key, &rt, &sum, now.checked_add(secs(299)).unwrap())
                .is_ok()
        );
    }

    #[test]
    fn request_token_is_single_use_even_after_a_bad_checksum() {
        let now = ist("2026-11-26 10:00:00");
        let (mut s, key, rt, sum) = with_token(now);
        assert_eq!(
            s.exchange(&key, &rt, "00", now).unwrap_err(),
            ExchangeError::BadChecksum
        );
        assert_eq!(
            s.exchange(&key, &rt, &sum, now).unwrap_err(),
            ExchangeError::TokenInvalid
        );

        let (mut s, key, rt, sum) = with_token(now);
        assert!(s.exchange(&key, &rt, &sum, now).is_ok());
        assert_eq!(
            s.exchange(&key, &rt, &sum, now).unwrap_err(),
            ExchangeError::TokenInvalid
        );
    }

    #[test]
    fn lapsed_subscription_and_unknown_key_are_bad_key() {
        let now = ist("2026-11-26 10:00:00");
        let (mut s, key, rt, sum) = with_token(now);
        assert_eq!(
            s.exchange("nokey", &rt, &sum, now).unwrap_err(),
            ExchangeError::BadKey
        );
        s.app_mut(&key).unwrap().subscription_active = false;
        assert_eq!(
            s.exchange(&key, &rt, &sum, now).unwrap_err(),
            ExchangeError::BadKey
        );
        s.app_mut(&key).unwrap().subscription_active = true;
        let at = s.exchange(&key, &rt, &sum, now).unwrap();
        s.app_mut(&key).unwrap().subscription_active = false;
        assert!(s.check_access(&key, at.token.expose(), now).is_none());
    }

    #[test]
    fn regenerated_secret_keeps_tokens_but_changes_checksums() {
        let now = ist("2026-11-26 10:00:00");
        let (mut s, key, rt, sum) = with_token(now);
        let at = s.exchange(&key, &rt, &sum, now).unwrap();
        let old = s.app(&key).unwrap().api_secret.clone();
        let new = s.regenerate_secret(&key).unwrap();
        assert_ne!(old, new);
        assert!(s.check_access(&key, at.token.expose(), now).is_some());
        let client = s.demo_client_id.clone();
        let rt2 = s.issue_request_token(&key, &client, now);
        let old_sum = crate::kite::checksum(&Secret::from(key.as_str()), &rt2, &old);
        assert_eq!(
            s.exchange(&key, &rt2, &old_sum, now).unwrap_err(),
            ExchangeError::BadChecksum
        );
    }

    #[test]
    fn revoked_token_is_rejected_and_revoke_needs_a_live_token() {
        let now = ist("2026-11-26 10:00:00");
        let (mut s, key, rt, sum) = with_token(now);
        let at = s.exchange(&key, &rt, &sum, now).unwrap();
        assert!(!s.revoke("otherkey", at.token.expose(), now));
        assert!(s.revoke(&key, at.token.expose(), now));
        assert!(s.check_access(&key, at.token.expose(), now).is_none());
        assert!(!s.revoke(&key, at.token.expose(), now));
    }

    #[test]
    fn faults_count_down_and_disappear() {
        let mut s = State::default();
        s.faults.push(Fault {
            path: "/user/profile".into(),
            status: Some(503),
            delay_ms: None,
            body: None,
            reset: false,
            count: 2,
        });
        assert!(s.take_fault("/user/margins").is_none());
        assert_eq!(s.take_fault("/user/profile").unwrap().status, Some(503));
        assert_eq!(s.faults[0].count, 1);
        assert!(s.take_fault("/user/profile").is_some());
        assert!(s.take_fault("/user/profile").is_none());
        assert!(s.faults.is_empty());
    }

    #[test]
    fn pruning_keeps_recent_tokens_and_drops_old_ones() {
        let now = ist("2026-11-26 10:00:00");
        let (mut s, key, rt, sum) = with_token(now);
        s.exchange(&key, &rt, &sum, now).unwrap();
        s.prune(now.checked_add(secs(3600)).unwrap());
        assert_eq!((s.request_tokens.len(), s.access_tokens.len()), (1, 1));
        s.prune(now.checked_add(secs(9 * 86_400)).unwrap());
        assert_eq!((s.request_tokens.len(), s.access_tokens.len()), (0, 0));
    }

    #[test]
    fn state_view_has_no_secrets() {
        let now = ist("2026-11-26 10:00:00");
        let (mut s, key, rt, sum) = with_token(now);
        let at = s.exchange(&key, &rt, &sum, now).unwrap();
        let rt2 = s.issue_request_token(&key, &s.demo_client_id.clone(), now);
        let view = s.public_view(now).to_string();
        let acc = s.account(&s.demo_client_id).unwrap();
        let app = s.app(&key).unwrap();
        for secret in [
            app.api_secret.expose(),
            acc.password.expose(),
            acc.totp_secret.expose(),
            at.token.expose(),
            rt.as_str(),
            rt2.as_str(),
        ] {
            assert!(!view.contains(secret), "state view leaks a secret");
        }
        assert!(view.contains(&key));
        assert!(view.contains("\"live_access_tokens\":1"));
    }

    #[test]
    fn totp_accepts_one_step_of_skew_only() {
        let s = State::seeded();
        let secret = s.account(&s.demo_client_id).unwrap().totp_secret.clone();
        let now = ist("2026-11-26 10:00:10");
        let code = totp_now(&secret, now).unwrap();
        assert!(totp_ok(&secret, &code, now));
        assert!(totp_ok(&secret, &code, now.checked_add(secs(30)).unwrap()));
        assert!(!totp_ok(&secret, &code, now.checked_add(secs(90)).unwrap()));
        assert!(!totp_ok(&secret, "abc", now));
    }
}
