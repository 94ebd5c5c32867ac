//! `HttpKite`: the `Kite` trait over HTTPS (reqwest blocking, rustls/ring), with Kite's
//! headers, timeouts (connect 5 s, whole call 15 s by default; app.rs may set another
//! whole-call limit from `KITE_SETUP_HTTP_TIMEOUT_SECS`), no redirect following, proxies
//! bypassed for loopback, and plain http refused for anything but loopback.

use std::time::Duration;

use jiff::Timestamp;
use reqwest::blocking::{Client, ClientBuilder, Response};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, DATE};
use url::{Host, Url};

use super::error::KiteError;
use super::wire::{SessionData, UserProfile, decode};
use super::{Endpoints, Kite, checksum};
use crate::secret::Secret;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(15);

/// Kite over HTTP.
pub struct HttpKite {
    endpoints: Endpoints,
    client: Client,
    total_timeout: Duration,
}

/// True for 127.0.0.0/8, ::1 and `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Accepts https anywhere and http only on loopback.
pub fn check_endpoint(url: &Url) -> Result<(), KiteError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        _ => Err(KiteError::InsecureEndpoint(
            url.host_str().unwrap_or("?").to_string(),
        )),
    }
}

/// Installs rustls' ring provider once per process (reqwest is built without one).
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// reqwest's builder with what every client of kite-setup needs (this one and the
/// sandbox control client): the TLS provider installed, both timeouts, redirects never
/// followed, and proxies bypassed for loopback.
pub fn client_builder(connect: Duration, total: Duration, loopback: bool) -> ClientBuilder {
    install_tls_provider();
    let builder = Client::builder()
        .connect_timeout(connect)
        .timeout(total)
        .redirect(reqwest::redirect::Policy::none());
    if loopback {
        builder.no_proxy()
    } else {
        builder
    }
}

impl HttpKite {
    pub fn new(endpoints: Endpoints) -> Result<Self, KiteError> {
        Self::with_timeouts(endpoints, CONNECT_TIMEOUT, TOTAL_TIMEOUT)
    }

    pub fn with_timeouts(
        endpoints: Endpoints,
        connect: Duration,
        total: Duration,
    ) -> Result<Self, KiteError> {
        check_endpoint(&endpoints.api)?;
        check_endpoint(&endpoints.login)?;
        let client = client_builder(connect, total, is_loopback(&endpoints.api))
            .user_agent(concat!("kite-setup/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| KiteError::Connect {
                host: host_of(&endpoints.api),
                detail: format!("cannot set up the HTTP client: {}", e.without_url()),
            })?;
        Ok(Self {
            endpoints,
            client,
            total_timeout: total,
        })
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn send(&self, req: reqwest::blocking::RequestBuilder) -> Result<Response, KiteError> {
        req.header("X-Kite-Version", "3")
            .send()
            .map_err(|e| self.transport_error(&e))
    }

    /// Maps a transport failure to a message that names the host only (reqwest's own
    /// message can carry the URL, and DELETE /session/token has the token in its query).
    fn transport_error(&self, e: &reqwest::Error) -> KiteError {
        let host = host_of(&self.endpoints.api);
        if e.is_timeout() {
            return KiteError::Timeout {
                host,
                seconds: self.total_timeout.as_secs(),
            };
        }
        let detail = if e.is_connect() {
            "connection refused or host unreachable".to_string()
        } else if e.is_body() || e.is_decode() {
            "the connection broke while reading the answer".to_string()
        } else {
            "the connection failed or was reset".to_string()
        };
        KiteError::Connect { host, detail }
    }

    fn read<T: serde::de::DeserializeOwned>(&self, resp: Response) -> Result<T, KiteError> {
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.bytes().map_err(|e| self.transport_error(&e))?;
        decode(status, content_type.as_deref(), &body)
    }
}

fn host_of(url: &Url) -> String {
    match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or("?")),
        None => url.host_str().unwrap_or("?").to_string(),
    }
}

fn auth(api_key: &Secret, access_token: &Secret) -> String {
    format!("token {}:{}", api_key.expose(), access_token.expose())
}

impl Kite for HttpKite {
    fn create_session(
        &self,
        api_key: &Secret,
        request_token: &str,
        api_secret: &Secret,
    ) -> Result<SessionData, KiteError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("api_key", api_key.expose())
            .append_pair("request_token", request_token)
            .append_pair("checksum", &checksum(api_key, request_token, api_secret))
            .finish();
        let req = self
            .client
            .post(self.endpoints.api_url("session/token"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        let resp = self.send(req)?;
        self.read(resp)
    }

    fn profile(&self, api_key: &Secret, access_token: &Secret) -> Result<UserProfile, KiteError> {
        let req = self
            .client
            .get(self.endpoints.api_url("user/profile"))
            .header(AUTHORIZATION, auth(api_key, access_token));
        let resp = self.send(req)?;
        self.read(resp)
    }

    fn invalidate(&self, api_key: &Secret, access_token: &Secret) -> Result<(), KiteError> {
        let mut url = self.endpoints.api_url("session/token");
        url.query_pairs_mut()
            .append_pair("api_key", api_key.expose())
            .append_pair("access_token", access_token.expose());
        let req = self
            .client
            .delete(url)
            .header(AUTHORIZATION, auth(api_key, access_token));
        let resp = self.send(req)?;
        let _: serde_json::Value = self.read(resp)?;
        Ok(())
    }

    fn server_time(&self) -> Result<Timestamp, KiteError> {
        let resp = self.send(self.client.get(self.endpoints.api.clone()))?;
        let date = resp
            .headers()
            .get(DATE)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| KiteError::Malformed("no Date header".into()))?;
        parse_http_date(date)
            .ok_or_else(|| KiteError::Malformed("an unreadable Date header".into()))
    }

    fn reachable(&self, url: &Url) -> Result<(), KiteError> {
        check_endpoint(url)?;
        self.client
            .get(url.clone())
            .send()
            .map(|_| ())
            .map_err(|e| {
                let mut err = self.transport_error(&e);
                if let KiteError::Timeout { host, .. } | KiteError::Connect { host, .. } = &mut err
                {
                    *host = host_of(url);
                }
                err
            })
    }
}

/// Parses an HTTP `Date` header (IMF-fixdate, e.g. `Thu, 26 Nov 2026 15:15:48 GMT`).
pub fn parse_http_date(text: &str) -> Option<Timestamp> {
    jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(text.trim())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback() {
        for ok in [
            "https://api.kite.trade",
            "http://127.0.0.1:5010",
            "http://127.8.0.1",
            "http://[::1]:80",
            "http://localhost:1",
        ] {
            assert!(check_endpoint(&Url::parse(ok).unwrap()).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.kite.trade",
            "http://10.0.0.1:5010",
            "http://[::2]:80",
            "ftp://127.0.0.1",
            "http://localhost.evil.com",
        ] {
            assert!(check_endpoint(&Url::parse(bad).unwrap()).is_err(), "{bad}");
        }
        let e = Endpoints {
            api: Url::parse("http://192.0.2.1").unwrap(),
            ..Endpoints::live()
        };
        assert!(matches!(
            HttpKite::new(e),
            Err(KiteError::InsecureEndpoint(_))
        ));
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Thu, 26 Nov 2026 15:15:48 GMT")
                .unwrap()
                .to_string(),
            "2026-11-26T15:15:48Z"
        );
        assert!(parse_http_date("yesterday").is_none());
    }
}
