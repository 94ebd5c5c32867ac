//! The real order-readiness probe (`commands::orders_probe::ReadinessPort`) over HTTP:
//! one client per probed address, so each family's probe connects where it says. The
//! order probe is a cancel of an order ID that cannot exist: no order is ever placed,
//! modified or cancelled (see docs/orders.md).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use url::{Host, Url};

use super::Endpoints;
use super::client::{check_endpoint, client_builder, is_loopback};
use super::error::KiteError;
use super::wire::decode;
use crate::commands::orders_probe::{PROBE_ORDER_ID, ReadinessPort};
use crate::secret::Secret;

/// The live "what is my IP" service asked, only with consent.
const PUBLIC_IP_SERVICE: &str = "https://api.ipify.org";

pub struct HttpReadiness {
    pub endpoints: Endpoints,
    pub timeout: Duration,
}

impl HttpReadiness {
    fn port(&self) -> u16 {
        self.endpoints.api.port_or_known_default().unwrap_or(443)
    }

    /// A GET or DELETE of `path` under the API root, connected to `addr` when given.
    fn call(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        addr: Option<IpAddr>,
        auth: Option<String>,
    ) -> Result<serde_json::Value, KiteError> {
        let mut url = self.endpoints.api.clone();
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        url.set_path(path);
        url.set_query((!query.is_empty()).then_some(query));
        check_endpoint(&url)?;
        let mut builder = client_builder(
            self.timeout.min(Duration::from_secs(5)),
            self.timeout,
            is_loopback(&url),
        )
        .user_agent(concat!("kite-setup/", env!("CARGO_PKG_VERSION")));
        if let Some(a) = addr {
            match url.host() {
                // A name: keep it (TLS needs it) and pin where it connects.
                Some(Host::Domain(d)) => {
                    let d = d.to_string();
                    builder = builder.resolve(&d, SocketAddr::new(a, self.port()));
                }
                _ => {
                    url.set_ip_host(a).map_err(|()| KiteError::Connect {
                        host: a.to_string(),
                        detail: "not an address for this URL".into(),
                    })?;
                }
            }
        }
        let host = match addr {
            Some(a) => SocketAddr::new(a, self.port()).to_string(),
            None => url.host_str().unwrap_or("?").to_string(),
        };
        let client = builder.build().map_err(|e| KiteError::Connect {
            host: host.clone(),
            detail: format!("cannot set up the HTTP client: {}", e.without_url()),
        })?;
        let mut req = client.request(method, url).header("X-Kite-Version", "3");
        if let Some(a) = auth {
            req = req.header(AUTHORIZATION, a);
        }
        let resp = req.send().map_err(|e| transport(&e, &host, self.timeout))?;
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .bytes()
            .map_err(|e| transport(&e, &host, self.timeout))?;
        decode(status, ct.as_deref(), &body)
    }
}

fn transport(e: &reqwest::Error, host: &str, timeout: Duration) -> KiteError {
    if e.is_timeout() {
        KiteError::Timeout {
            host: host.to_string(),
            seconds: timeout.as_secs(),
        }
    } else {
        KiteError::Connect {
            host: host.to_string(),
            detail: if e.is_connect() {
                "connection refused or host unreachable".into()
            } else {
                "the connection failed or was reset".into()
            },
        }
    }
}

fn auth(api_key: &Secret, token: &Secret) -> String {
    format!("token {}:{}", api_key.expose(), token.expose())
}

impl ReadinessPort for HttpReadiness {
    fn api_addresses(&self) -> Result<Vec<IpAddr>, String> {
        let host = match self.endpoints.api.host() {
            Some(Host::Ipv4(a)) => return Ok(vec![IpAddr::V4(a)]),
            Some(Host::Ipv6(a)) => return Ok(vec![IpAddr::V6(a)]),
            Some(Host::Domain(d)) => d.to_string(),
            None => return Err("no host".into()),
        };
        // The system resolver's order (getaddrinfo), the one Python and Go clients follow.
        let mut out: Vec<IpAddr> = Vec::new();
        for a in (host.as_str(), self.port())
            .to_socket_addrs()
            .map_err(|e| e.to_string())?
        {
            if !out.contains(&a.ip()) {
                out.push(a.ip());
            }
        }
        Ok(out)
    }

    fn cancel_probe(
        &self,
        addr: IpAddr,
        api_key: &Secret,
        token: &Secret,
    ) -> Result<(), KiteError> {
        // A probe: the order ID cannot exist, so nothing is ever cancelled.
        self.call(
            reqwest::Method::DELETE,
            &format!("/orders/regular/{PROBE_ORDER_ID}"),
            Some(addr),
            Some(auth(api_key, token)),
        )
        .map(|_| ())
    }

    fn quote_probe(&self, api_key: &Secret, token: &Secret) -> Result<(), KiteError> {
        self.call(
            reqwest::Method::GET,
            "/quote?i=NSE:INFY",
            None,
            Some(auth(api_key, token)),
        )
        .map(|_| ())
    }

    fn source_address(&self, addr: IpAddr) -> Option<IpAddr> {
        // A UDP "connect" only asks the kernel for the route: no packet leaves.
        let bind: SocketAddr = if addr.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let s = UdpSocket::bind(bind).ok()?;
        s.connect(SocketAddr::new(addr, self.port())).ok()?;
        s.local_addr().ok().map(|a| a.ip())
    }

    fn public_ip(&self) -> Result<IpAddr, String> {
        if self.endpoints.sandbox {
            let v: kite_wire::control::PeerView = self
                .raw_get(self.endpoints.api_url(kite_wire::control::path::PEER))
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))?;
            return Ok(v.ip);
        }
        let b = self.raw_get(Url::parse(PUBLIC_IP_SERVICE).map_err(|e| e.to_string())?)?;
        String::from_utf8_lossy(&b)
            .trim()
            .parse()
            .map_err(|_| "the echo service's answer is not an IP".to_string())
    }

    fn public_ip_service(&self) -> String {
        if self.endpoints.sandbox {
            format!("the sandbox ({})", self.endpoints.api)
        } else {
            PUBLIC_IP_SERVICE.to_string()
        }
    }
}

impl HttpReadiness {
    fn raw_get(&self, url: Url) -> Result<Vec<u8>, String> {
        check_endpoint(&url).map_err(|e| e.to_string())?;
        let client = client_builder(self.timeout, self.timeout, is_loopback(&url))
            .build()
            .map_err(|e| e.without_url().to_string())?;
        let resp = client
            .get(url)
            .send()
            .map_err(|e| e.without_url().to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status().as_u16()));
        }
        resp.bytes()
            .map(|b| b.to_vec())
            .map_err(|e| e.without_url().to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::commands::SandboxControl;
    use crate::commands::orders_probe::{Family, check_orders, check_plan};

    /// A login of the demo account through the control API, then the token exchange.
    fn demo_token(
        sb: &kite_sandbox::SandboxHandle,
        client: &crate::sandbox_client::SandboxClient,
    ) -> Secret {
        use crate::kite::Kite;
        let e = Endpoints::sandbox(&sb.url);
        let key: Secret = sb.demo.api_key.clone().into();
        let to = client.approve(&e.login_url(&key, &[])).unwrap();
        let rt = to
            .query_pairs()
            .find(|(k, _)| k == "request_token")
            .unwrap()
            .1
            .to_string();
        let kite = crate::kite::client::HttpKite::new(e).unwrap();
        kite.create_session(&key, &rt, &sb.demo.api_secret)
            .unwrap()
            .access_token
    }

    #[test]
    fn against_a_dual_stack_sandbox_each_family_gets_its_own_verdict() {
        let sb = kite_sandbox::start_on(
            kite_sandbox::SandboxOptions::default(),
            &["[::1]:0".to_string()],
            Arc::new(kite_sandbox::WallClock),
        )
        .expect("this machine serves ::1");
        sb.quiet();
        let client =
            crate::sandbox_client::SandboxClient::new(&sb.url, Duration::from_secs(5)).unwrap();
        let port = HttpReadiness {
            endpoints: Endpoints::sandbox(&sb.url),
            timeout: Duration::from_secs(5),
        };
        let key: Secret = sb.demo.api_key.clone().into();
        let token = demo_token(&sb, &client);
        // New accounts have no IPs: both refused, no address named.
        let c = check_orders(&port, true, &key, &token);
        assert_eq!((c.ipv4.verdict(), c.ipv6.verdict()), ("fail", "fail"));
        assert_eq!(c.preferred, Some(Family::Ipv4));
        client.set_ips(&sb.demo.client_id, &["127.0.0.1"]).unwrap();
        let c = check_orders(&port, true, &key, &token);
        assert_eq!(c.ipv4.verdict(), "pass", "{:?}", c.ipv4);
        assert_eq!(c.ipv6.verdict(), "fail");
        assert_eq!(c.refused_ips(), vec!["::1".to_string()]);
        assert_eq!(port.public_ip().unwrap(), IpAddr::from([127, 0, 0, 1]));
        // The demo app is on Personal: the quote is refused.
        assert_eq!(
            check_plan(&port, &key, &token).plan(),
            Some(crate::cli::Plan::Personal)
        );
    }
}
