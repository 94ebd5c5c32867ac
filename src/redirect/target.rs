//! The registered redirect URL, checked for what the loopback listener can catch.
//!
//! Accepted: `http://127.x.y.z:PORT/path` and `http://[::1]:PORT/path`, the port written
//! out, no query, fragment or userinfo. `localhost` is refused on purpose: Kite redirects
//! the browser to the registered URL verbatim, and we cannot know whether the browser
//! resolves `localhost` to `::1` or to `127.0.0.1` (browsers differ, and some try both),
//! while the listener must bind one exact address. An IP literal removes the guess.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::error::{Fix, RunFlags};
use url::{Host, Url};

/// A redirect URL the listener can bind exactly: loopback IP, explicit port, a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectTarget {
    url: Url,
    addr: SocketAddr,
}

impl RedirectTarget {
    /// The normalised URL (as the browser will request it).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The address to bind.
    pub fn socket_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The path the callback arrives on (at least `/`).
    pub fn path(&self) -> &str {
        self.url.path()
    }

    /// The exact `Host` header a browser sends for this URL: `127.0.0.1:5123` or
    /// `[::1]:5123` (for port 80 browsers omit `:80`; see [`Self::host_header_matches`]).
    pub fn host_header(&self) -> String {
        match self.addr {
            SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        }
    }

    /// Whether a `Host` header names this target exactly. Browsers omit `:80` for port
    /// 80, so for that one port the bare address is accepted too.
    pub fn host_header_matches(&self, value: &str) -> bool {
        if value == self.host_header() {
            return true;
        }
        self.port() == 80
            && match self.addr {
                SocketAddr::V4(a) => value == a.ip().to_string(),
                SocketAddr::V6(a) => value == format!("[{}]", a.ip()),
            }
    }
}

impl fmt::Display for RedirectTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

/// Why a redirect URL cannot be used by the listener. One line each, plus [`Self::hint`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUrlError {
    #[error("the redirect URL is empty")]
    Empty,
    #[error("the redirect URL is not a valid URL ({reason})")]
    Unparseable { reason: String },
    #[error("the redirect URL has a port outside 1-65535")]
    BadPort,
    #[error(
        "the listener can only catch an http://127.0.0.1 redirect; with a hosted https redirect use `--paste`"
    )]
    Https,
    #[error("the redirect URL must start with http:// (it starts with {scheme}://)")]
    UnsupportedScheme { scheme: String },
    #[error(
        "the listener can only catch an http://127.0.0.1 redirect; with a hosted https redirect use `--paste` (host here: {host})"
    )]
    NotLoopback { host: String },
    #[error("the redirect URL uses localhost, which may resolve to ::1 or to 127.0.0.1")]
    Localhost { port: Option<u16> },
    #[error("the redirect URL writes the loopback address unusually; write it as {canonical}")]
    NonCanonicalHost { canonical: String },
    #[error("the redirect URL has no port")]
    MissingPort,
    #[error("the redirect URL has port 0, which cannot be registered")]
    PortZero,
    #[error("the redirect URL contains a user name or password")]
    Userinfo,
    #[error("the redirect URL has a query string (?...)")]
    Query,
    #[error("the redirect URL has a fragment (#...)")]
    Fragment,
}

impl RedirectUrlError {
    /// The fix as a run of the default live profile would read it (tests; commands
    /// render `fix()` with their run's flags).
    pub fn hint(&self) -> String {
        self.fix().render(&RunFlags::default())
    }

    pub fn fix(&self) -> Fix {
        const EXAMPLE: &str = "http://127.0.0.1:5123/kite-setup/callback";
        match self {
            Self::Empty | Self::Unparseable { .. } | Self::UnsupportedScheme { .. } => Fix::text(
                format!("register a redirect URL such as {EXAMPLE} in the Kite developer console"),
            ),
            Self::BadPort | Self::MissingPort | Self::PortZero => Fix::text(format!(
                "write the port explicitly, between 1024 and 65535, e.g. {EXAMPLE}; the registered URL fixes the port the listener binds"
            )),
            Self::Https | Self::NotLoopback { .. } => Fix::text(format!(
                "register {EXAMPLE} to let kite-setup catch the login itself, or run "
            ))
            .and_run("login --paste")
            .and(" and paste the redirected URL"),
            Self::Localhost { port } => Fix::text(format!(
                "register http://127.0.0.1:{}/kite-setup/callback instead (an IP literal, so the browser and the listener agree on the address)",
                port.unwrap_or(5123)
            )),
            Self::NonCanonicalHost { canonical } => Fix::text(format!(
                "register the URL with the host written as {canonical}"
            )),
            Self::Userinfo | Self::Query | Self::Fragment => Fix::text(format!(
                "register the URL without user@, ?query or #fragment, e.g. {EXAMPLE}; kite-setup adds its own parameters"
            )),
        }
    }
}

/// Checks the registered redirect URL and returns what the listener binds.
pub fn validate_redirect_url(s: &str) -> Result<RedirectTarget, RedirectUrlError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(RedirectUrlError::Empty);
    }
    let url = Url::parse(s).map_err(|e| match e {
        url::ParseError::InvalidPort => RedirectUrlError::BadPort,
        other => RedirectUrlError::Unparseable {
            reason: other.to_string(),
        },
    })?;
    match url.scheme() {
        "http" => {}
        "https" => return Err(RedirectUrlError::Https),
        other => {
            return Err(RedirectUrlError::UnsupportedScheme {
                scheme: other.to_string(),
            });
        }
    }
    let raw = raw_authority(s);
    if !url.username().is_empty() || url.password().is_some() || raw.contains('@') {
        return Err(RedirectUrlError::Userinfo);
    }
    let (raw_host, raw_port) = split_host_port(raw);
    let ip: IpAddr = match url.host() {
        Some(Host::Domain(d)) => {
            let d = d.to_ascii_lowercase();
            if d == "localhost" || d.ends_with(".localhost") {
                return Err(RedirectUrlError::Localhost { port: url.port() });
            }
            return Err(RedirectUrlError::NotLoopback { host: d });
        }
        Some(Host::Ipv4(v4)) if v4.is_loopback() => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) if v6 == Ipv6Addr::LOCALHOST => IpAddr::V6(v6),
        Some(other) => {
            return Err(RedirectUrlError::NotLoopback {
                host: other.to_string(),
            });
        }
        None => {
            return Err(RedirectUrlError::Unparseable {
                reason: "no host".into(),
            });
        }
    };
    let canonical = url.host_str().unwrap_or_default();
    if !raw_host.eq_ignore_ascii_case(canonical) {
        return Err(RedirectUrlError::NonCanonicalHost {
            canonical: canonical.to_string(),
        });
    }
    // The url crate drops a default port (":80"), so look at what was written.
    let port = match raw_port {
        None | Some("") => return Err(RedirectUrlError::MissingPort),
        Some(_) => url.port().unwrap_or(80),
    };
    if port == 0 {
        return Err(RedirectUrlError::PortZero);
    }
    if url.query().is_some() {
        return Err(RedirectUrlError::Query);
    }
    if url.fragment().is_some() {
        return Err(RedirectUrlError::Fragment);
    }
    Ok(RedirectTarget {
        addr: SocketAddr::new(ip, port),
        url,
    })
}

/// The authority as written: between `://` and the first `/`, `\`, `?` or `#`.
fn raw_authority(s: &str) -> &str {
    let rest = s.split_once("://").map_or(s, |(_, r)| r);
    let end = rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

/// `[::1]:80` → (`[::1]`, Some("80")); `127.0.0.1` → (`127.0.0.1`, None).
fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if authority.starts_with('[') {
        if let Some(close) = authority.find(']') {
            let (host, rest) = authority.split_at(close + 1);
            return (host, rest.strip_prefix(':'));
        }
        return (authority, None);
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> RedirectTarget {
        validate_redirect_url(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> RedirectUrlError {
        validate_redirect_url(s).expect_err(s)
    }

    #[test]
    fn accepts_ipv4_loopback_with_port_and_path() {
        let t = ok("http://127.0.0.1:5123/kite-setup/callback");
        assert_eq!(t.socket_addr(), "127.0.0.1:5123".parse().unwrap());
        assert_eq!(t.path(), "/kite-setup/callback");
        assert_eq!(t.host_header(), "127.0.0.1:5123");
    }

    #[test]
    fn accepts_other_127_addresses() {
        let t = ok("http://127.3.2.1:9000/cb");
        assert_eq!(t.ip(), "127.3.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn empty_path_defaults_to_slash() {
        assert_eq!(ok("http://127.0.0.1:5123").path(), "/");
        assert_eq!(ok("http://127.0.0.1:5123/").path(), "/");
    }

    #[test]
    fn accepts_ipv6_loopback() {
        let t = ok("http://[::1]:5123/cb");
        assert_eq!(t.socket_addr(), "[::1]:5123".parse().unwrap());
        assert_eq!(t.host_header(), "[::1]:5123");
    }

    #[test]
    fn surrounding_whitespace_and_uppercase_scheme_are_fine() {
        assert_eq!(ok("  HTTP://127.0.0.1:5123/cb \n").port(), 5123);
    }

    #[test]
    fn explicit_port_80_is_kept_although_url_drops_it() {
        let t = ok("http://127.0.0.1:80/cb");
        assert_eq!(t.port(), 80);
        assert!(t.host_header_matches("127.0.0.1"));
        assert!(t.host_header_matches("127.0.0.1:80"));
    }

    #[test]
    fn rejects_localhost_with_hint_naming_127_and_the_port() {
        let e = err("http://localhost:5123/cb");
        assert_eq!(e, RedirectUrlError::Localhost { port: Some(5123) });
        assert!(e.hint().contains("http://127.0.0.1:5123/"), "{}", e.hint());
        assert!(matches!(
            err("http://LOCALHOST:5123/"),
            RedirectUrlError::Localhost { .. }
        ));
    }

    #[test]
    fn rejects_https_pointing_at_paste() {
        let e = err("https://127.0.0.1:5123/cb");
        assert_eq!(e, RedirectUrlError::Https);
        assert!(e.to_string().contains("--paste"));
        assert_eq!(err("https://example.com/kite"), RedirectUrlError::Https);
    }

    #[test]
    fn rejects_non_loopback_hosts() {
        assert!(matches!(
            err("http://example.com:5123/cb"),
            RedirectUrlError::NotLoopback { .. }
        ));
        assert!(matches!(
            err("http://192.168.1.5:5123/cb"),
            RedirectUrlError::NotLoopback { .. }
        ));
        assert!(matches!(
            err("http://0.0.0.0:5123/cb"),
            RedirectUrlError::NotLoopback { .. }
        ));
        assert!(matches!(
            err("http://[::]:5123/cb"),
            RedirectUrlError::NotLoopback { .. }
        ));
        assert!(matches!(
            err("http://[::ffff:127.0.0.1]:5123/cb"),
            RedirectUrlError::NotLoopback { .. }
        ));
        assert!(
            err("http://example.com:5123/cb")
                .to_string()
                .contains("--paste")
        );
    }

    #[test]
    fn rejects_missing_port() {
        assert_eq!(err("http://127.0.0.1/cb"), RedirectUrlError::MissingPort);
        assert_eq!(err("http://127.0.0.1:/cb"), RedirectUrlError::MissingPort);
        assert_eq!(err("http://[::1]/cb"), RedirectUrlError::MissingPort);
    }

    #[test]
    fn rejects_port_zero_and_out_of_range() {
        assert_eq!(err("http://127.0.0.1:0/cb"), RedirectUrlError::PortZero);
        assert_eq!(err("http://127.0.0.1:70000/cb"), RedirectUrlError::BadPort);
        assert_eq!(err("http://127.0.0.1:-1/cb"), RedirectUrlError::BadPort);
    }

    #[test]
    fn rejects_query_fragment_userinfo() {
        assert_eq!(err("http://127.0.0.1:5123/cb?x=1"), RedirectUrlError::Query);
        assert_eq!(err("http://127.0.0.1:5123/cb?"), RedirectUrlError::Query);
        assert_eq!(
            err("http://127.0.0.1:5123/cb#top"),
            RedirectUrlError::Fragment
        );
        assert_eq!(
            err("http://u:p@127.0.0.1:5123/cb"),
            RedirectUrlError::Userinfo
        );
        assert_eq!(err("http://@127.0.0.1:5123/cb"), RedirectUrlError::Userinfo);
    }

    #[test]
    fn rejects_unusual_spellings_of_loopback() {
        assert!(matches!(
            err("http://127.1:5123/cb"),
            RedirectUrlError::NonCanonicalHost { .. }
        ));
        assert!(matches!(
            err("http://2130706433:5123/cb"),
            RedirectUrlError::NonCanonicalHost { .. }
        ));
    }

    #[test]
    fn rejects_garbage_and_other_schemes() {
        assert_eq!(err("   "), RedirectUrlError::Empty);
        assert!(matches!(
            err("127.0.0.1:5123/cb"),
            RedirectUrlError::Unparseable { .. } | RedirectUrlError::UnsupportedScheme { .. }
        ));
        assert!(matches!(
            err("ftp://127.0.0.1:21/"),
            RedirectUrlError::UnsupportedScheme { .. }
        ));
        assert!(matches!(
            err("not a url"),
            RedirectUrlError::Unparseable { .. }
        ));
    }

    #[test]
    fn every_error_is_one_line_with_a_hint() {
        for s in [
            "",
            "x",
            "https://a.b/",
            "http://a.b:1/",
            "http://localhost:1/",
            "http://127.1:1/",
            "http://127.0.0.1/",
            "http://127.0.0.1:0/",
            "http://127.0.0.1:99999/",
            "http://u@127.0.0.1:1/",
            "http://127.0.0.1:1/?q",
            "http://127.0.0.1:1/#f",
            "ftp://127.0.0.1:1/",
        ] {
            let e = err(s);
            assert!(!e.to_string().contains('\n'), "{s}");
            assert!(!e.hint().is_empty() && !e.hint().contains('\n'), "{s}");
        }
    }
}
