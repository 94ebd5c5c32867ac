//! The Kite Connect client side: where Kite lives (live or sandbox), the login URL, the
//! checksum, the wire types and errors, and the `Kite` trait that commands talk to.
//! The HTTP implementation is `client::HttpKite`.

pub mod client;
pub mod error;
pub mod probe;
pub mod wire;

use url::Url;

pub use error::{ErrorType, KiteError};
pub use kite_wire::checksum;
pub use wire::{SessionData, UserProfile};

use crate::secret::Secret;

/// The three places Kite lives: the login page, the API root and the developer console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The login page (`.../connect/login`), without query.
    pub login: Url,
    /// The API root (routes such as `/session/token` hang off it).
    pub api: Url,
    /// The developer console root.
    pub console: Url,
    /// True for the emulated Kite (its console has different pages, it has a control API).
    pub sandbox: bool,
}

impl Endpoints {
    /// The real Kite.
    pub fn live() -> Self {
        Self {
            login: Url::parse("https://kite.zerodha.com/connect/login").expect("static URL"),
            api: Url::parse("https://api.kite.trade").expect("static URL"),
            console: Url::parse("https://developers.kite.trade").expect("static URL"),
            sandbox: false,
        }
    }

    /// A sandbox at `base` (e.g. `http://127.0.0.1:5010`): routes at the root, console
    /// under `/console`, login at `/connect/login`.
    pub fn sandbox(base: &Url) -> Self {
        let mut root = base.clone();
        root.set_path("/");
        root.set_query(None);
        root.set_fragment(None);
        Self {
            login: root.join("connect/login").expect("relative URL"),
            api: root.clone(),
            console: root.join("console").expect("relative URL"),
            sandbox: true,
        }
    }

    /// The URL of `path` (e.g. `session/token`) under the API root.
    pub fn api_url(&self, path: &str) -> Url {
        let mut u = self.api.clone();
        u.set_path(path);
        u
    }

    /// The console page of one app (where the secret is shown and regenerated).
    pub fn console_app_url(&self, api_key: &str) -> Url {
        let mut u = self.console.clone();
        let base = u.path().trim_end_matches('/').to_string();
        u.set_path(&format!("{base}/apps/{api_key}"));
        u
    }

    /// The browser login URL: `v=3`, `api_key` and, URL-encoded, the `redirect_params`
    /// that Kite appends to the redirect (kite-setup puts its nonce there).
    pub fn login_url(&self, api_key: &Secret, redirect_params: &[(&str, &str)]) -> Url {
        let mut u = self.login.clone();
        {
            let mut q = u.query_pairs_mut();
            q.append_pair("v", "3");
            q.append_pair("api_key", api_key.expose());
            if !redirect_params.is_empty() {
                let inner = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(redirect_params)
                    .finish();
                q.append_pair("redirect_params", &inner);
            }
        }
        u
    }
}

/// What commands need from Kite. The real one is `client::HttpKite`; tests use fakes.
pub trait Kite {
    /// `POST /session/token`: trade a request_token for today's session.
    fn create_session(
        &self,
        api_key: &Secret,
        request_token: &str,
        api_secret: &Secret,
    ) -> Result<SessionData, KiteError>;

    /// `GET /user/profile`: the cheapest "is this token alive" call.
    fn profile(&self, api_key: &Secret, access_token: &Secret) -> Result<UserProfile, KiteError>;

    /// `DELETE /session/token`: kill an access token.
    fn invalidate(&self, api_key: &Secret, access_token: &Secret) -> Result<(), KiteError>;

    /// Kite's clock, from the `Date` header of a cheap request (TOTP needs ±30 s).
    fn server_time(&self) -> Result<jiff::Timestamp, KiteError>;

    /// Whether `url`'s host answers HTTP at all (any status counts), for `doctor`.
    fn reachable(&self, url: &Url) -> Result<(), KiteError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_login_url_has_v3_key_and_encoded_params() {
        let e = Endpoints::live();
        let u = e.login_url(&"abc123".into(), &[("state", "f00d")]);
        assert_eq!(u.host_str(), Some("kite.zerodha.com"));
        assert_eq!(u.path(), "/connect/login");
        let pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
        assert!(pairs.contains(&("v".into(), "3".into())));
        assert!(pairs.contains(&("api_key".into(), "abc123".into())));
        assert!(pairs.contains(&("redirect_params".into(), "state=f00d".into())));
        assert!(u.as_str().contains("redirect_params=state%3Df00d"));
    }

    #[test]
    fn sandbox_endpoints_hang_off_the_root() {
        let e = Endpoints::sandbox(&Url::parse("http://127.0.0.1:5010/some/path?x=1").unwrap());
        assert_eq!(e.api.as_str(), "http://127.0.0.1:5010/");
        assert_eq!(e.login.as_str(), "http://127.0.0.1:5010/connect/login");
        assert_eq!(
            e.api_url("session/token").as_str(),
            "http://127.0.0.1:5010/session/token"
        );
        assert_eq!(
            e.console_app_url("k1").as_str(),
            "http://127.0.0.1:5010/console/apps/k1"
        );
        assert_eq!(
            Endpoints::live().console_app_url("k1").as_str(),
            "https://developers.kite.trade/apps/k1"
        );
    }
}
