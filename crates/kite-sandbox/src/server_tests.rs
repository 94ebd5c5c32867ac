//! The server over real loopback sockets: stalled clients, the control API's typed
//! answers, redirect URLs. Raw HTTP/1.1 over `TcpStream`, so nothing here depends on an
//! HTTP client's own timeouts or retries.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use kite_wire::control::{AppCreated, Approved, FaultsCleared, StateView};
use kite_wire::{SessionData, checksum};

use super::*;

fn sandbox() -> SandboxHandle {
    let sb = start(SandboxOptions::default(), Arc::new(WallClock)).unwrap();
    sb.quiet();
    sb
}

fn addr(sb: &SandboxHandle) -> String {
    format!(
        "{}:{}",
        sb.url.host_str().unwrap(),
        sb.url.port_or_known_default().unwrap()
    )
}

/// One request on its own connection; the status and the body. Fails after `within`.
fn call(
    sb: &SandboxHandle,
    method: &str,
    path: &str,
    body: &str,
    within: Duration,
) -> (u16, String) {
    request(
        sb,
        method,
        path,
        &[("Content-Type", "application/json")],
        body,
        within,
    )
}

fn request(
    sb: &SandboxHandle,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
    within: Duration,
) -> (u16, String) {
    let (status, _, body) = request_full(sb, method, path, headers, body, within);
    (status, body)
}

/// The status, the header block and the body.
fn request_full(
    sb: &SandboxHandle,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
    within: Duration,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr(sb)).unwrap();
    s.set_read_timeout(Some(within)).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (k, v) in headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    let _ = write!(head, "Content-Length: {}\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("{method} {path}: no answer within {within:?}: {e}"));
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    (status, head.to_string(), body.to_string())
}

#[test]
fn stalled_bodies_cannot_hold_the_workers() {
    let sb = sandbox();
    // More stalled clients than workers, each announcing a body larger than tiny_http
    // buffers itself, and never sending it.
    let stalled: Vec<TcpStream> = (0..WORKERS + 2)
        .map(|_| {
            let mut s = TcpStream::connect(addr(&sb)).unwrap();
            s.write_all(
                b"POST /_sandbox/clock HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{",
            )
            .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let (status, _) = call(&sb, "GET", "/_sandbox/clock", "", BODY_TIMEOUT * 3);
    assert_eq!(status, 200);
    assert!(t0.elapsed() < BODY_TIMEOUT * 3);
    // A stalled client gets 408 once its time is up, when it finally gives up. (Ten
    // stalled requests on eight workers: the last ones start their wait one timeout late.)
    std::thread::sleep((BODY_TIMEOUT * 2 + Duration::from_secs(1)).saturating_sub(t0.elapsed()));
    let mut first = stalled.into_iter().next().unwrap();
    first.shutdown(std::net::Shutdown::Write).unwrap();
    first.set_read_timeout(Some(BODY_TIMEOUT * 3)).unwrap();
    let mut answer = String::new();
    let _ = first.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("did not arrive in time"), "{answer:?}");
}

#[test]
fn delete_faults_clears_them_all() {
    let sb = sandbox();
    let t = Duration::from_secs(10);
    for path in ["/user/profile", "/session/token"] {
        let fault = format!(r#"{{"path":"{path}","status":503,"count":5}}"#);
        assert_eq!(call(&sb, "POST", "/_sandbox/faults", &fault, t).0, 200);
    }
    let (status, body) = call(&sb, "DELETE", "/_sandbox/faults", "", t);
    assert_eq!(status, 200, "{body}");
    let cleared: FaultsCleared = serde_json::from_str(&body).unwrap();
    assert_eq!(cleared.cleared, 2);
    let (_, body) = call(&sb, "GET", "/_sandbox/state", "", t);
    let state: StateView = serde_json::from_str(&body).unwrap();
    assert!(state.faults.is_empty());
    // The route answers normally again (403: no token), not the injected 503.
    assert_eq!(call(&sb, "GET", "/user/profile", "", t).0, 403);
}

#[test]
fn ipv6_loopback_redirect_urls_are_accepted_and_followed() {
    let sb = sandbox();
    let t = Duration::from_secs(10);
    let new_app = format!(
        r#"{{"client_id":"{}","redirect_url":"http://[::1]:5123/kite-setup/callback"}}"#,
        sb.demo.client_id
    );
    let (status, body) = call(&sb, "POST", "/_sandbox/apps", &new_app, t);
    assert_eq!(status, 200, "{body}");
    let app: AppCreated = serde_json::from_str(&body).unwrap();
    let approve = format!(
        r#"{{"login_url":"{}?v=3&api_key={}"}}"#,
        sb.login_url(),
        app.api_key
    );
    let (status, body) = call(&sb, "POST", "/_sandbox/approve", &approve, t);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("http://[::1]:5123/kite-setup/callback?action=login"),
        "{body}"
    );
}

/// A clock that stands still, so that the rate rule is exact.
struct Frozen(Timestamp);

impl Clock for Frozen {
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// The demo user's access token, through the approve shortcut and the real exchange.
fn demo_token(sb: &SandboxHandle) -> String {
    let t = Duration::from_secs(10);
    let approve = format!(
        r#"{{"login_url":"{}?v=3&api_key={}"}}"#,
        sb.login_url(),
        sb.demo.api_key
    );
    let (_, body) = call(sb, "POST", "/_sandbox/approve", &approve, t);
    let to: Approved = serde_json::from_str(&body).unwrap();
    let rt = Url::parse(&to.redirect_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "request_token")
        .unwrap()
        .1
        .into_owned();
    let sum = checksum(
        &Secret::from(sb.demo.api_key.as_str()),
        &rt,
        &sb.demo.api_secret,
    );
    let form = format!(
        "api_key={}&request_token={rt}&checksum={sum}",
        sb.demo.api_key
    );
    let (status, body) = request(
        sb,
        "POST",
        "/session/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form,
        t,
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let s: SessionData = serde_json::from_value(v["data"].clone()).unwrap();
    s.access_token.expose().to_string()
}

#[test]
fn orders_follow_the_static_ip_rule_on_the_tcp_peer() {
    let now: Timestamp = "2026-12-01T04:00:00Z".parse().unwrap();
    let sb = start(SandboxOptions::default(), Arc::new(Frozen(now))).unwrap();
    sb.quiet();
    let t = Duration::from_secs(10);
    let auth = format!("token {}:{}", sb.demo.api_key, demo_token(&sb));
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let order =
        |method: &str, path: &str, body: &str| request(&sb, method, path, &headers, body, t);
    let set_ips = |ips: &str| {
        let path = kite_wire::control::path::ips(&sb.demo.client_id);
        let (status, body) = call(&sb, "POST", &path, &format!(r#"{{"ips":{ips}}}"#), t);
        assert_eq!(status, 200, "{body}");
    };
    let limit = "exchange=NSE&tradingsymbol=INFY&transaction_type=BUY&quantity=1&product=CNC&order_type=LIMIT&price=1500";

    // New accounts start with no IPs, as real ones do.
    let (status, body) = order("POST", "/orders/regular", limit);
    assert_eq!(status, 403);
    assert!(
        body.contains(orders::MSG_NO_IPS) && body.contains("PermissionException"),
        "{body}"
    );

    // The peer is 127.0.0.1; only 127.0.0.2 is listed.
    set_ips(r#"["127.0.0.2"]"#);
    let (status, body) = order("POST", "/orders/regular", limit);
    assert_eq!(status, 403);
    assert!(
        body.contains("IP (127.0.0.1) is not allowed to place orders"),
        "{body}"
    );
    // The order book is not IP-checked.
    assert_eq!(order("GET", "/orders", "").0, 200);

    set_ips(r#"["127.0.0.2", "127.0.0.1"]"#);
    let (_, body) = call(&sb, "GET", "/_sandbox/state", "", t);
    let state: StateView = serde_json::from_str(&body).unwrap();
    assert_eq!(state.accounts[0].ips.len(), 2);
    let (status, body) = order("POST", "/orders/regular", limit);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = v["data"]["order_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 19);

    let (status, body) = order(
        "PUT",
        &format!("/orders/regular/{id}"),
        "price=1490&quantity=2",
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = order("POST", "/orders/regular", &limit.replace("LIMIT", "MARKET"));
    assert_eq!(status, 400);
    assert!(body.contains(orders::MSG_MARKET_PROTECTION), "{body}");
    let (_, body) = order("GET", "/orders", "");
    assert!(
        body.contains(r#""price":1490.0"#) && body.contains(r#""status":"OPEN""#),
        "{body}"
    );
    assert_eq!(order("DELETE", &format!("/orders/regular/{id}"), "").0, 200);
    let (status, body) = order("DELETE", &format!("/orders/regular/{id}"), "");
    assert_eq!(status, 400, "{body}");
    let (status, body) = order("DELETE", "/orders/regular/1234567890123456789", "");
    assert_eq!(status, 400);
    assert!(body.contains(orders::MSG_NO_ORDER), "{body}");
    // No token, no order: the token is checked before the IP.
    let (status, body) = request(&sb, "POST", "/orders/regular", &[], limit, t);
    assert_eq!(status, 403);
    assert!(body.contains("TokenException"), "{body}");

    // Eight order requests so far in this (frozen) second: two more, then 429.
    for _ in 0..2 {
        assert_eq!(order("POST", "/orders/regular", limit).0, 200);
    }
    let (status, body) = order("POST", "/orders/regular", limit);
    assert_eq!(status, 429);
    assert!(
        body.contains("NetworkException") && body.contains("Too many requests"),
        "{body}"
    );
}

#[test]
fn the_console_profile_page_keeps_the_weekly_rule() {
    let now: Timestamp = "2026-12-01T04:00:00Z".parse().unwrap();
    let sb = start(SandboxOptions::default(), Arc::new(Frozen(now))).unwrap();
    sb.quiet();
    let t = Duration::from_secs(10);
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let code = state::totp_now(&sb.demo.totp_secret, now).unwrap();
    let login = format!(
        "client_id={}&password={}&totp={code}",
        sb.demo.client_id,
        sb.demo.password.expose()
    );
    let (status, head, _) = request_full(&sb, "POST", "/console/login", &form, &login, t);
    assert_eq!(status, 303);
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    let headers = [form[0], ("Cookie", cookie.as_str())];
    let page =
        |method: &str, body: &str| request(&sb, method, "/console/profile", &headers, body, t);

    let (status, body) = page("GET", "");
    assert_eq!(status, 200);
    assert!(
        body.contains("IP Whitelist") && body.contains("No IPs configured"),
        "{body}"
    );
    let (status, body) = page("POST", "ips=127.0.0.1");
    assert_eq!(status, 400, "the declaration is required");
    assert!(body.contains("immediate family"), "{body}");
    let (status, _) = page("POST", "ips=&declaration=yes");
    assert_eq!(status, 400, "at least one IP");
    let (status, _) = page("POST", "ips=1.1.1.1%0A2.2.2.2%0A3.3.3.3&declaration=yes");
    assert_eq!(status, 400, "at most two");
    let (status, _) = page("POST", "ips=127.0.0.1%0A%3A%3A1&declaration=yes");
    assert_eq!(status, 303);
    let (_, body) = call(&sb, "GET", "/_sandbox/state", "", t);
    let state: StateView = serde_json::from_str(&body).unwrap();
    assert_eq!(state.accounts[0].ips.len(), 2);

    // A second change the same week is refused, saying when; a week later it is allowed.
    let (status, body) = page("POST", "ips=127.0.0.2&declaration=yes");
    assert_eq!(status, 400);
    assert!(body.contains("2026-12-07 00:00:00 IST"), "{body}");
    let week = 7 * 86_400;
    call(
        &sb,
        "POST",
        "/_sandbox/clock",
        &format!(r#"{{"offset_seconds":{week}}}"#),
        t,
    );
    let (status, _) = page("POST", "ips=127.0.0.2&declaration=yes");
    assert_eq!(status, 303);
    let (_, body) = page("GET", "");
    assert!(body.contains("<code>127.0.0.2</code>"), "{body}");
}

#[test]
fn one_sandbox_on_both_loopbacks_tells_the_families_apart() {
    let sb = match start_on(
        SandboxOptions::default(),
        &["[::1]:0".to_string()],
        Arc::new(WallClock),
    ) {
        Ok(sb) => sb,
        Err(e) => {
            // A machine without IPv6 loopback: a clear bind error naming the address.
            assert!(
                matches!(e, Error::Bind { ref addr, .. } if addr.starts_with("[::1]:")),
                "{e}"
            );
            return;
        }
    };
    sb.quiet();
    assert_eq!(sb.urls.len(), 2);
    assert_eq!(sb.urls[1].host_str(), Some("[::1]"));
    assert_eq!(sb.urls[0].port(), sb.urls[1].port(), "one port for both");
    let t = Duration::from_secs(10);
    let auth = format!("token {}:{}", sb.demo.api_key, demo_token(&sb));
    let path = kite_wire::control::path::ips(&sb.demo.client_id);
    call(&sb, "POST", &path, r#"{"ips":["127.0.0.1"]}"#, t);
    let limit = "exchange=NSE&tradingsymbol=INFY&transaction_type=BUY&quantity=1&product=CNC&order_type=LIMIT&price=1500";
    let order_via = |url: &Url| {
        let mut s = TcpStream::connect((
            url.host_str().unwrap().trim_matches(['[', ']']),
            url.port().unwrap(),
        ))
        .unwrap();
        s.set_read_timeout(Some(t)).unwrap();
        let head = format!(
            "POST /orders/regular HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {auth}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{limit}",
            limit.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let v4 = order_via(&sb.urls[0]);
    assert!(v4.starts_with("HTTP/1.1 200"), "{v4}");
    let v6 = order_via(&sb.urls[1]);
    assert!(v6.starts_with("HTTP/1.1 403"), "{v6}");
    assert!(
        v6.contains("IP (::1) is not allowed to place orders"),
        "{v6}"
    );
}

#[test]
fn the_peer_endpoint_echoes_the_tcp_peer_address() {
    let sb = sandbox();
    let (status, body) = call(
        &sb,
        "GET",
        kite_wire::control::path::PEER,
        "",
        Duration::from_secs(10),
    );
    assert_eq!(status, 200, "{body}");
    let v: kite_wire::control::PeerView = serde_json::from_str(&body).unwrap();
    assert_eq!(v.ip, std::net::IpAddr::from([127, 0, 0, 1]));
}

/// Where an approve for `client_id` (None: the owner) of the demo app sends the browser,
/// or the refusal.
fn approve_as(sb: &SandboxHandle, client_id: Option<&str>) -> (u16, String) {
    let body = serde_json::to_string(&kite_wire::control::Approve {
        login_url: format!("{}?v=3&api_key={}", sb.login_url(), sb.demo.api_key),
        client_id: client_id.map(str::to_string),
    })
    .unwrap();
    call(
        sb,
        "POST",
        "/_sandbox/approve",
        &body,
        Duration::from_secs(10),
    )
}

#[test]
fn an_app_serves_the_client_ids_on_its_list_and_refuses_the_rest() {
    use kite_wire::control::{AccountCreated, ClientsSet};
    let now: Timestamp = "2026-12-01T04:00:00Z".parse().unwrap();
    let sb = start(SandboxOptions::default(), Arc::new(Frozen(now))).unwrap();
    sb.quiet();
    let t = Duration::from_secs(10);
    let account = || -> AccountCreated {
        serde_json::from_str(&call(&sb, "POST", "/_sandbox/accounts", "{}", t).1).unwrap()
    };
    let (spouse, stranger) = (account(), account());
    let owner = sb.demo.client_id.clone();
    let clients = kite_wire::control::path::clients(&sb.demo.api_key);
    let set = |ids: &[&str]| {
        let body = serde_json::to_string(&kite_wire::control::SetClients {
            client_ids: ids.iter().map(|c| (*c).to_string()).collect(),
        })
        .unwrap();
        call(&sb, "POST", &clients, &body, t)
    };

    // Refusals change nothing and never quote the body.
    let lower = spouse.client_id.to_lowercase();
    for (ids, says) in [
        (vec![lower.as_str()], "cannot be removed"),
        (
            vec![owner.as_str(), "ZZ0000"],
            "entry 2 is not a known client ID",
        ),
        (
            vec![owner.as_str(), &spouse.client_id, &lower],
            "entry 3 repeats",
        ),
        (vec![], "cannot be removed"),
    ] {
        let (status, body) = set(&ids);
        assert_eq!(status, 400, "{ids:?}: {body}");
        assert!(
            body.contains("InputException") && body.contains(says),
            "{body}"
        );
        assert!(
            !body.contains("ZZ0000") && !body.contains(&spouse.client_id),
            "{body}"
        );
    }
    let state = || -> StateView {
        serde_json::from_str(&call(&sb, "GET", "/_sandbox/state", "", t).1).unwrap()
    };
    assert_eq!(state().apps[0].client_ids, vec![owner.clone()]);

    // The list is replaced, the owner kept first wherever it was given, case folded.
    let (status, body) = set(&[&lower, &owner]);
    assert_eq!(status, 200, "{body}");
    let got: ClientsSet = serde_json::from_str(&body).unwrap();
    assert_eq!(
        got.client_ids,
        vec![owner.clone(), spouse.client_id.clone()]
    );
    assert_eq!(state().apps[0].client_ids, got.client_ids);
    assert_eq!(state().apps[0].owner, owner);

    // The login page: the spouse reaches the authorisation page, the stranger gets Kite's
    // refusal at the login step, and no request token is issued for it.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let submit = |a: &AccountCreated| {
        let code = state::totp_now(&a.totp_secret, now).unwrap();
        let body = format!(
            "api_key={}&client_id={}&password={}&totp={code}",
            sb.demo.api_key,
            a.client_id,
            a.password.expose()
        );
        request_full(&sb, "POST", "/connect/login", &form, &body, t)
    };
    let (status, _, page) = submit(&spouse);
    assert_eq!(status, 200);
    assert!(page.contains("Authorize Demo app"), "{page}");
    let (status, head, body) = submit(&stranger);
    assert_eq!(status, 400);
    assert!(head.contains("application/json"), "{head}");
    assert_eq!(
        body,
        r#"{"status":"error","message":"The user is not enabled for the app.","data":null,"error_type":"InputException"}"#
    );
    assert_eq!(state().live_request_tokens, 0);

    // The approve shortcut follows the same list.
    let (status, body) = approve_as(&sb, Some(&stranger.client_id));
    assert_eq!(status, 400);
    assert!(
        body.contains("The user is not enabled for the app."),
        "{body}"
    );
    let (status, body) = approve_as(&sb, Some("ZZ0000"));
    assert_eq!(status, 400);
    assert!(body.contains("not a known account"), "{body}");
    assert_eq!(state().live_request_tokens, 0);
    let (status, body) = approve_as(&sb, Some(&lower));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("request_token="), "{body}");
    assert_eq!(state().live_request_tokens, 1);

    // Taken off the list while the authorisation page is open: refused at "Authorize".
    let ticket = page
        .split("name=\"ticket\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    assert_eq!(set(&[&owner]).0, 200);
    let (status, body) = request(
        &sb,
        "POST",
        "/connect/authorize",
        &form,
        &format!("ticket={ticket}&action=authorize"),
        t,
    );
    assert_eq!(status, 400);
    assert!(
        body.contains("The user is not enabled for the app."),
        "{body}"
    );
    assert_eq!(
        state().live_request_tokens,
        1,
        "no token for the removed client ID"
    );
    let (status, body) = approve_as(&sb, None);
    assert_eq!(status, 200, "the owner logs in as before: {body}");
}

#[test]
fn the_console_app_page_edits_client_ids_and_urls() {
    use kite_wire::control::AccountCreated;
    let now: Timestamp = "2026-12-01T04:00:00Z".parse().unwrap();
    let sb = start(SandboxOptions::default(), Arc::new(Frozen(now))).unwrap();
    sb.quiet();
    let t = Duration::from_secs(10);
    let spouse: AccountCreated =
        serde_json::from_str(&call(&sb, "POST", "/_sandbox/accounts", "{}", t).1).unwrap();
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let code = state::totp_now(&sb.demo.totp_secret, now).unwrap();
    let login = format!(
        "client_id={}&password={}&totp={code}",
        sb.demo.client_id,
        sb.demo.password.expose()
    );
    let (_, head, _) = request_full(&sb, "POST", "/console/login", &form, &login, t);
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    let headers = [form[0], ("Cookie", cookie.as_str())];
    let key = &sb.demo.api_key;
    let post = |what: &str, body: &str| {
        request(
            &sb,
            "POST",
            &format!("/console/apps/{key}/{what}"),
            &headers,
            body,
            t,
        )
    };
    let app = || -> kite_wire::control::AppView {
        let (_, body) = call(&sb, "GET", "/_sandbox/state", "", t);
        let s: StateView = serde_json::from_str(&body).unwrap();
        s.apps.into_iter().find(|a| &a.api_key == key).unwrap()
    };

    let (status, page) = request(&sb, "GET", &format!("/console/apps/{key}"), &headers, "", t);
    assert_eq!(status, 200);
    assert!(
        page.contains("id=\"add_client\"") && page.contains("created the app"),
        "{page}"
    );
    assert!(
        !page.contains("id=\"remove-"),
        "the creator has no remove button: {page}"
    );

    // Add: validated like the create-app form's client ID field.
    let (status, page) = post("clients", "action=add&client_id=ZZ0000");
    assert_eq!(status, 400);
    assert!(
        page.contains("&quot;ZZ0000&quot; is not a known client ID."),
        "{page}"
    );
    assert!(
        page.contains("value=\"ZZ0000\""),
        "what was typed stays: {page}"
    );
    let lower = spouse.client_id.to_lowercase();
    let (status, _) = post("clients", &format!("action=add&client_id=+{lower}+"));
    assert_eq!(status, 303);
    assert_eq!(
        app().client_ids,
        vec![sb.demo.client_id.clone(), spouse.client_id.clone()]
    );
    let (status, page) = post("clients", &format!("action=add&client_id={lower}"));
    assert_eq!(status, 400);
    assert!(page.contains("is already enabled for this app."), "{page}");
    let (_, page) = request(&sb, "GET", &format!("/console/apps/{key}"), &headers, "", t);
    assert!(
        page.contains(&format!("id=\"remove-{}\"", spouse.client_id)),
        "{page}"
    );

    // Remove: never the creator.
    let (status, page) = post(
        "clients",
        &format!("action=remove&client_id={}", sb.demo.client_id),
    );
    assert_eq!(status, 400);
    assert!(
        page.contains("created this app and cannot be removed."),
        "{page}"
    );
    let (status, _) = post(
        "clients",
        &format!("action=remove&client_id={}", spouse.client_id),
    );
    assert_eq!(status, 303);
    assert_eq!(app().client_ids, vec![sb.demo.client_id.clone()]);
    let (status, page) = post(
        "clients",
        &format!("action=remove&client_id={}", spouse.client_id),
    );
    assert_eq!(status, 400);
    assert!(page.contains("is not enabled for this app."), "{page}");

    // URLs: the create-app rules; a refusal keeps both, with what was typed on the page.
    let (status, page) = post(
        "urls",
        "redirect_url=http%3A%2F%2Fexample.com%2Fcb&postback_url=ftp%3A%2F%2F127.0.0.1%2F",
    );
    assert_eq!(status, 400);
    assert!(
        page.contains("Redirect URL: The URL must be https"),
        "{page}"
    );
    assert!(
        page.contains("Postback URL: The URL must be https"),
        "{page}"
    );
    assert!(page.contains("value=\"http://example.com/cb\""), "{page}");
    assert_eq!(app().redirect_url, sb.demo.redirect_url);
    let (status, _) = post(
        "urls",
        "redirect_url=http%3A%2F%2F127.0.0.1%3A5200%2Fcb&postback_url=https%3A%2F%2Fexample.com%2Fpb",
    );
    assert_eq!(status, 303);
    assert_eq!(app().redirect_url, "http://127.0.0.1:5200/cb");
    let (_, page) = request(&sb, "GET", &format!("/console/apps/{key}"), &headers, "", t);
    assert!(page.contains("value=\"https://example.com/pb\""), "{page}");
    let (status, body) = approve_as(&sb, None);
    assert_eq!(status, 200);
    assert!(
        body.contains("http://127.0.0.1:5200/cb?action=login"),
        "the new redirect URL is used: {body}"
    );
    // An empty postback URL is allowed, as on the create form.
    let (status, _) = post(
        "urls",
        "redirect_url=http%3A%2F%2F127.0.0.1%3A5200%2Fcb&postback_url=",
    );
    assert_eq!(status, 303);
}
