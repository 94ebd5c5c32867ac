//! The server over real loopback sockets: stalled clients, the control API's typed
//! answers, redirect URLs. Raw HTTP/1.1 over `TcpStream`, so nothing here depends on an
//! HTTP client's own timeouts or retries.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use kite_wire::control::{AppCreated, FaultsCleared, StateView};

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
    let mut s = TcpStream::connect(addr(sb)).unwrap();
    s.set_read_timeout(Some(within)).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
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
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
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
