//! Hostile callbacks against the real binary: while `kite-setup login --force`
//! waits for its redirect (the `$BROWSER` does nothing), requests that must not be
//! accepted hit its listener: wrong path, no or wrong nonce, wrong Host, POST, a
//! cancellation without the nonce, no request_token, a 1 MB header, a client that never
//! finishes, 50 connections at once. None is accepted, none stalls: the real callback
//! that follows completes the login (exit 0) at once.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::cli::{Streaming, World, nonce_of};
use serde_json::json;

const PATH: &str = "/kite-setup/callback";
const FAKE_TOKEN: &str = "HostileTokenAbcdefghijklmnop0123";

/// Sends raw bytes and returns the status line ("" when the server closed without one).
fn send(addr: SocketAddr, request: &[u8]) -> String {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return "connect failed".into();
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn get(path_and_query: &str, host: &str) -> Vec<u8> {
    format!("GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
        .into_bytes()
}

/// The nonce (`state` inside `redirect_params`) of a login URL.
#[test]
fn hostile_callbacks_are_refused_and_the_real_one_completes_the_login() {
    let w = World::new();
    let app = w.set_up();
    let session_before = w.keyring.lookup("sandbox/default/session");
    // A browser that does nothing: the test plays every request itself.
    std::fs::write(&w.browser, "#!/bin/sh\nexit 0\n").expect("browser script");

    let mut login = Streaming::spawn(
        w.command(&["login", "--force", "--timeout", "60"]),
        Stdio::null(),
    );
    let login_url = login
        .login_url(Duration::from_secs(20))
        .expect("the login URL on stderr");
    let nonce = nonce_of(&login_url).expect("a nonce in the login URL");
    let target = url::Url::parse(&app.redirect_url).expect("redirect URL");
    let port = target.port().expect("port");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let host = format!("127.0.0.1:{port}");
    let ok_query = |extra: &str| format!("{PATH}?action=login&type=login{extra}");

    // A real request token for this app, with a wrong nonce (a replayed or forged redirect).
    let approved = w.control("/_sandbox/approve", &json!({ "login_url": login_url }));
    let real_redirect = approved["redirect_url"]
        .as_str()
        .expect("redirect_url")
        .to_string();
    let real = url::Url::parse(&real_redirect).expect("real redirect");
    let real_path_query = format!("{}?{}", real.path(), real.query().unwrap_or_default());
    assert!(
        real_path_query.contains(&nonce),
        "the approval carries the nonce"
    );
    let wrong_nonce_real_token = real_path_query.replace(&nonce, &"0".repeat(nonce.len()));

    let success = |n: &str| format!("&status=success&request_token={FAKE_TOKEN}&state={n}");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("wrong path", get(&format!("/other{}", success(&nonce)), &host)),
        (
            "path prefix",
            get(&format!("{PATH}x?{}", &success(&nonce)[1..]), &host),
        ),
        (
            "no nonce",
            get(&ok_query(&format!("&status=success&request_token={FAKE_TOKEN}")), &host),
        ),
        ("wrong nonce", get(&ok_query(&success(&"f".repeat(32))), &host)),
        ("short nonce", get(&ok_query(&success(&nonce[..16])), &host)),
        ("real token, wrong nonce", get(&wrong_nonce_real_token, &host)),
        (
            "duplicate state",
            get(&ok_query(&format!("{}&state={nonce}", success(&nonce))), &host),
        ),
        (
            "wrong Host header",
            get(&ok_query(&success(&nonce)), &format!("evil.example:{port}")),
        ),
        (
            "localhost Host with another port",
            get(&ok_query(&success(&nonce)), "127.0.0.1:1"),
        ),
        (
            "two Host headers",
            format!(
                "GET {} HTTP/1.1\r\nHost: {host}\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
                ok_query(&success(&nonce))
            )
            .into_bytes(),
        ),
        (
            "POST",
            format!(
                "POST {} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ok_query(&success(&nonce))
            )
            .into_bytes(),
        ),
        (
            "status=cancelled without nonce",
            get(&ok_query("&status=cancelled"), &host),
        ),
        (
            "status=cancelled with a wrong nonce",
            get(&ok_query(&format!("&status=cancelled&state={}", "a".repeat(32))), &host),
        ),
        (
            "missing request_token",
            get(&ok_query(&format!("&status=success&state={nonce}")), &host),
        ),
        (
            "malformed request_token",
            get(
                &ok_query(&format!("&status=success&request_token=%3Cscript%3E&state={nonce}")),
                &host,
            ),
        ),
        (
            "status not success",
            get(
                &ok_query(&format!("&status=error&request_token={FAKE_TOKEN}&state={nonce}")),
                &host,
            ),
        ),
        ("1 MB header", {
            let mut r = format!("GET {} HTTP/1.1\r\nHost: {host}\r\nX-Big: ", ok_query(&success(&nonce)))
                .into_bytes();
            r.extend(std::iter::repeat_n(b'a', 1 << 20));
            r.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
            r
        }),
        ("not HTTP at all", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03junk\r\n\r\n".to_vec()),
    ];

    let mut requests = 0usize;
    let mut accepted = Vec::new();
    // A client that never finishes its request, held open for the whole test.
    let mut slow = TcpStream::connect(addr).expect("slow client");
    slow.write_all(format!("GET {PATH}?state={nonce}&sta").as_bytes())
        .expect("slow write");
    requests += 1;
    // And one that connects and sends nothing.
    let idle = TcpStream::connect(addr).expect("idle client");
    requests += 1;

    for (name, bytes) in &cases {
        let started = Instant::now();
        let status = send(addr, bytes);
        requests += 1;
        println!("{name}: {status:?} in {:?}", started.elapsed());
        if status.contains(" 200") {
            accepted.push(*name);
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{name} took {:?}",
            started.elapsed()
        );
        assert!(
            login.child.try_wait().expect("try_wait").is_none(),
            "the login ended after {name:?}"
        );
    }

    // 50 connections at once, each a forged callback with a wrong nonce.
    let many: Vec<_> = (0..50)
        .map(|i| {
            let req = get(&ok_query(&success(&format!("{i:032x}"))), &host);
            std::thread::spawn(move || send(addr, &req))
        })
        .collect();
    for h in many {
        let status = h.join().expect("burst thread");
        requests += 1;
        if status.contains(" 200") {
            accepted.push("burst");
        }
    }
    assert!(
        login.child.try_wait().expect("try_wait").is_none(),
        "the login ended during the burst"
    );

    // The real callback, with the slow and idle clients still connected.
    let started = Instant::now();
    let status = send(addr, &get(&real_path_query, &host));
    assert!(status.contains(" 200"), "real callback: {status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "real callback took {:?}",
        started.elapsed()
    );
    let exit = loop {
        if let Some(s) = login.child.try_wait().expect("try_wait") {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the login did not finish after the real callback"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    drop((slow, idle));
    let stderr = login.stderr();
    assert_eq!(exit.code(), Some(0), "login failed:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains(FAKE_TOKEN), "a forged token was echoed");
    let session_after = w.keyring.lookup("sandbox/default/session");
    assert!(session_after.is_some() && session_after != session_before);
    assert!(accepted.is_empty(), "accepted: {accepted:?}");
    crate::support::report_figure(
        "hostile_callbacks",
        &format!(
            "hostile callbacks: {requests} requests, {} accepted",
            accepted.len()
        ),
    );
}
