//! The loopback listener against real sockets: the happy path, hostile requests that must
//! not be accepted (and must not stall the real callback that follows), timeouts, the
//! paste/abort keys, and the one-callback rule.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use kite_setup::redirect::{
    Browser, Callback, ListenError, Listener, RedirectTarget, WaitControl, WaitError, WaitUi,
    new_nonce, validate_redirect_url,
};
use kite_setup::testkit::RecordingBrowser;

const TOKEN: &str = "Rq7TokenAbcdefghijklmnop0123456";
const PATH: &str = "/kite-setup/callback";

/// A UI that never stops the wait; counts ticks and finishes.
#[derive(Default)]
struct QuietUi {
    ticks: usize,
    finished: usize,
}

impl WaitUi for QuietUi {
    fn tick(&mut self, _remaining: Duration) -> WaitControl {
        self.ticks += 1;
        WaitControl::Continue
    }
    fn finish(&mut self) {
        self.finished += 1;
    }
}

/// A UI that answers `control` from the `after`-th tick on.
struct ScriptedUi {
    after: usize,
    control: WaitControl,
    ticks: usize,
    remaining_seen: Vec<Duration>,
    finished: usize,
}

impl WaitUi for ScriptedUi {
    fn tick(&mut self, remaining: Duration) -> WaitControl {
        self.ticks += 1;
        self.remaining_seen.push(remaining);
        if self.ticks > self.after {
            self.control
        } else {
            WaitControl::Continue
        }
    }
    fn finish(&mut self) {
        self.finished += 1;
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Running {
    target: RedirectTarget,
    nonce: String,
    addr: SocketAddr,
    handle: JoinHandle<Result<Callback, WaitError>>,
}

impl Running {
    fn host(&self) -> String {
        self.target.host_header()
    }

    fn good_request(&self) -> String {
        format!(
            "GET {PATH}?action=login&type=login&status=success&request_token={TOKEN}&state={} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.nonce,
            self.host()
        )
    }

    /// Sends the real callback and checks that the wait ends with it within one second.
    fn finish_with_real_callback(self) {
        let started = Instant::now();
        let response = send(self.addr, &self.good_request());
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        let callback = self.handle.join().unwrap().expect("accepted");
        assert_eq!(callback.request_token, TOKEN);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "real callback took {:?}",
            started.elapsed()
        );
    }
}

fn start(timeout: Duration) -> Running {
    let target = validate_redirect_url(&format!("http://127.0.0.1:{}{PATH}", free_port())).unwrap();
    let nonce = new_nonce();
    let listener = Listener::bind(&target, nonce.clone()).expect("bind");
    let addr = listener.local_addr();
    let deadline = Instant::now() + timeout;
    let handle = thread::spawn(move || listener.wait(deadline, &mut QuietUi::default()));
    Running {
        target,
        nonce,
        addr,
        handle,
    }
}

/// Sends raw bytes and reads the whole answer (the server closes, or 3 s pass).
fn send(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    read_all(&mut s)
}

fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn header_value<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Sends a hostile request, checks it is refused with `status` and does not echo the
/// token or the nonce, then proves the listener is still waiting and not stalled.
fn refused(request: impl Fn(&Running) -> String, status: u16) {
    let running = start(Duration::from_secs(10));
    let response = send(running.addr, &request(&running));
    assert_eq!(status_of(&response), status, "{response}");
    assert!(!response.contains(TOKEN), "{response}");
    assert!(!response.contains(&running.nonce), "{response}");
    assert_eq!(
        header_value(&response, "Cache-Control"),
        Some("no-store"),
        "{response}"
    );
    assert!(
        !running.handle.is_finished(),
        "a refused request ended the wait"
    );
    running.finish_with_real_callback();
}

#[test]
fn happy_path_returns_the_token_and_a_safe_page() {
    let running = start(Duration::from_secs(10));
    let response = send(running.addr, &running.good_request());
    assert_eq!(status_of(&response), 200, "{response}");
    for (name, value) in [
        ("Cache-Control", "no-store"),
        ("Referrer-Policy", "no-referrer"),
        (
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'",
        ),
        ("X-Content-Type-Options", "nosniff"),
    ] {
        assert_eq!(
            header_value(&response, name),
            Some(value),
            "{name}: {response}"
        );
    }
    assert!(
        header_value(&response, "Content-Type")
            .unwrap()
            .starts_with("text/html"),
        "{response}"
    );
    assert!(response.contains("you can close this tab"), "{response}");
    assert!(!response.contains(TOKEN), "page echoes the token");
    assert!(!response.contains(&running.nonce), "page echoes the nonce");
    let callback = running.handle.join().unwrap().unwrap();
    assert_eq!(callback.request_token, TOKEN);
}

#[test]
fn wrong_path_is_404() {
    refused(|r| r.good_request().replace(PATH, "/kite-setup/other"), 404);
    refused(|r| r.good_request().replace(PATH, "/"), 404);
}

#[test]
fn missing_or_wrong_nonce_is_400() {
    refused(
        |r| r.good_request().replace(&format!("&state={}", r.nonce), ""),
        400,
    );
    refused(
        |r| {
            r.good_request()
                .replace(&r.nonce, "0000000000000000ffffffffffffffff")
        },
        400,
    );
}

#[test]
fn wrong_host_header_is_400() {
    for host in [
        "localhost:{p}",
        "127.0.0.1",
        "evil.example:{p}",
        "127.0.0.2:{p}",
        "",
    ] {
        refused(
            |r| {
                let wanted = format!("Host: {}\r\n", r.host());
                let h = host.replace("{p}", &r.addr.port().to_string());
                r.good_request().replace(&wanted, &format!("Host: {h}\r\n"))
            },
            400,
        );
    }
    // Two Host headers, one of them right.
    refused(
        |r| {
            let wanted = format!("Host: {}\r\n", r.host());
            r.good_request()
                .replace(&wanted, &format!("{wanted}Host: evil.example\r\n"))
        },
        400,
    );
    // No Host header at all.
    refused(
        |r| {
            r.good_request()
                .replace(&format!("Host: {}\r\n", r.host()), "")
        },
        400,
    );
}

#[test]
fn post_and_head_are_405() {
    refused(
        |r| {
            r.good_request().replacen("GET ", "POST ", 1).replace(
                "Connection: close\r\n",
                "Connection: close\r\nContent-Length: 0\r\n",
            )
        },
        405,
    );
    refused(|r| r.good_request().replacen("GET ", "HEAD ", 1), 405);
}

#[test]
fn missing_or_bad_token_with_the_right_nonce_is_400() {
    refused(
        |r| {
            r.good_request()
                .replace(&format!("request_token={TOKEN}&"), "")
        },
        400,
    );
    refused(
        |r| {
            r.good_request()
                .replace(&format!("request_token={TOKEN}"), "request_token=a%3Cb")
        },
        400,
    );
    refused(
        |r| {
            r.good_request()
                .replace("status=success", "status=success&status=success")
        },
        400,
    );
}

#[test]
fn cancelled_with_the_nonce_ends_the_wait_as_cancelled() {
    let running = start(Duration::from_secs(10));
    let request = format!(
        "GET {PATH}?status=cancelled&state={} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        running.nonce,
        running.host()
    );
    let response = send(running.addr, &request);
    assert_eq!(status_of(&response), 200, "{response}");
    assert!(response.contains("you can close this tab"), "{response}");
    assert!(!response.contains(&running.nonce));
    assert_eq!(running.handle.join().unwrap(), Err(WaitError::Cancelled));
}

#[test]
fn cancelled_without_the_nonce_does_not_end_the_wait() {
    refused(
        |r| {
            format!(
                "GET {PATH}?status=cancelled HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                r.host()
            )
        },
        400,
    );
}

#[test]
fn one_megabyte_header_does_not_stall_the_callback() {
    let junk = "a".repeat(1024 * 1024);
    refused(
        |r| {
            r.good_request()
                .replace(&format!("&state={}", r.nonce), "")
                .replace(
                    "Connection: close\r\n",
                    &format!("Connection: close\r\nX-Junk: {junk}\r\n"),
                )
        },
        400,
    );
}

#[test]
fn unfinished_one_megabyte_header_does_not_stall_the_callback() {
    let running = start(Duration::from_secs(10));
    let mut hog = TcpStream::connect(running.addr).unwrap();
    hog.write_all(format!("GET {PATH} HTTP/1.1\r\nX-Junk: ").as_bytes())
        .unwrap();
    hog.write_all("b".repeat(1024 * 1024).as_bytes()).unwrap();
    // Never finishes the line; keep the connection open while the real callback arrives.
    thread::sleep(Duration::from_millis(100));
    running.finish_with_real_callback();
    drop(hog);
}

#[test]
fn slow_client_holding_a_connection_does_not_stall_the_callback() {
    let running = start(Duration::from_secs(10));
    let mut slow = TcpStream::connect(running.addr).unwrap();
    slow.write_all(format!("GET {PATH}?sta").as_bytes())
        .unwrap();
    let idle = TcpStream::connect(running.addr).unwrap(); // connects, sends nothing
    thread::sleep(Duration::from_millis(200));
    running.finish_with_real_callback();
    drop((slow, idle));
}

#[test]
fn fifty_concurrent_junk_connections_do_not_stall_the_callback() {
    let running = start(Duration::from_secs(10));
    let mut held = Vec::new();
    for i in 0..50 {
        let mut s = TcpStream::connect(running.addr).unwrap();
        match i % 5 {
            0 => {}                                                      // silent
            1 => s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap(), // unfinished
            2 => s
                .write_all(b"\x16\x03\x01\x02\x00garbage-tls-hello")
                .unwrap(),
            3 => s
                .write_all(
                    format!("POST {PATH} HTTP/1.1\r\nHost: {}\r\n\r\n", running.host()).as_bytes(),
                )
                .unwrap(),
            _ => s
                .write_all(
                    format!(
                        "GET {PATH}?state=nope HTTP/1.1\r\nHost: {}\r\n\r\n",
                        running.host()
                    )
                    .as_bytes(),
                )
                .unwrap(),
        }
        held.push(s);
    }
    thread::sleep(Duration::from_millis(100));
    assert!(!running.handle.is_finished());
    running.finish_with_real_callback();
    drop(held);
}

#[test]
fn timeout_returns_timeout_quickly() {
    let started = Instant::now();
    let running = start(Duration::from_millis(300));
    let result = running.handle.join().unwrap();
    assert!(
        matches!(&result, Err(WaitError::Timeout { redirect_url }) if redirect_url.ends_with(PATH)),
        "{result:?}"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(800),
        "{took:?}"
    );
}

#[test]
fn deadline_in_the_past_times_out_at_once() {
    let target = validate_redirect_url(&format!("http://127.0.0.1:{}{PATH}", free_port())).unwrap();
    let listener = Listener::bind(&target, new_nonce()).unwrap();
    let mut ui = QuietUi::default();
    let started = Instant::now();
    let result = listener.wait(Instant::now(), &mut ui);
    assert!(matches!(result, Err(WaitError::Timeout { .. })));
    assert!(started.elapsed() < Duration::from_millis(50));
    assert_eq!(ui.finished, 1);
}

#[test]
fn second_callback_after_acceptance_is_not_served() {
    let running = start(Duration::from_secs(10));
    let addr = running.addr;
    let second = running.good_request();
    running.finish_with_real_callback();
    // The listener is closed: connecting fails, or (in the instant before the socket
    // closes) the request gets no 200.
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match TcpStream::connect(addr) {
            Err(_) => break,
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
                let _ = s.write_all(second.as_bytes());
                let response = read_all(&mut s);
                assert!(!response.starts_with("HTTP/1.1 200"), "{response}");
            }
        }
        assert!(
            Instant::now() < deadline,
            "the port still accepts connections"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ui_paste_and_abort_end_the_wait() {
    for (control, expected) in [
        (WaitControl::Paste, WaitError::PasteRequested),
        (WaitControl::Abort, WaitError::Aborted),
    ] {
        let target =
            validate_redirect_url(&format!("http://127.0.0.1:{}{PATH}", free_port())).unwrap();
        let listener = Listener::bind(&target, new_nonce()).unwrap();
        let mut ui = ScriptedUi {
            after: 3,
            control,
            ticks: 0,
            remaining_seen: Vec::new(),
            finished: 0,
        };
        let started = Instant::now();
        let result = listener.wait(Instant::now() + Duration::from_secs(60), &mut ui);
        assert_eq!(result, Err(expected));
        assert_eq!(ui.ticks, 4);
        assert_eq!(ui.finished, 1);
        // Three 100 ms slices before the fourth tick, and the countdown goes down.
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(290) && took < Duration::from_millis(900),
            "{took:?}"
        );
        assert!(ui.remaining_seen.windows(2).all(|w| w[0] > w[1]));
        assert!(ui.remaining_seen[0] <= Duration::from_secs(60));
    }
    // Abort maps to the interrupted error (exit 130).
    let e: kite_setup::error::Error = WaitError::Aborted.into();
    assert_eq!(e.exit_code(), 130);
}

#[test]
fn port_busy_names_the_port_and_the_console() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let target = validate_redirect_url(&format!("http://127.0.0.1:{port}{PATH}")).unwrap();
    let err = Listener::bind(&target, new_nonce()).unwrap_err();
    assert_eq!(
        err,
        ListenError::PortBusy {
            ip: "127.0.0.1".into(),
            port
        }
    );
    assert!(err.to_string().contains(&port.to_string()));
    assert!(err.hint().contains(&port.to_string()));
    assert!(err.hint().contains("console"), "{}", err.hint());
}

#[test]
fn ipv6_loopback_listener_or_a_clear_error() {
    let port = match TcpListener::bind("[::1]:0") {
        Ok(l) => l.local_addr().unwrap().port(),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::AddrNotAvailable, "{e}");
            let target =
                validate_redirect_url(&format!("http://[::1]:{}{PATH}", free_port())).unwrap();
            assert!(matches!(
                Listener::bind(&target, new_nonce()),
                Err(ListenError::AddrNotAvailable { .. })
            ));
            return;
        }
    };
    let target = validate_redirect_url(&format!("http://[::1]:{port}{PATH}")).unwrap();
    let nonce = new_nonce();
    let listener = Listener::bind(&target, nonce.clone()).unwrap();
    let addr = listener.local_addr();
    let handle = thread::spawn(move || {
        listener.wait(
            Instant::now() + Duration::from_secs(10),
            &mut QuietUi::default(),
        )
    });
    let req = |host: &str| {
        format!(
            "GET {PATH}?status=success&request_token={TOKEN}&state={nonce} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
    };
    // The IPv4 spelling of the host is refused; the exact [::1]:port is accepted.
    let r = send(addr, &req(&format!("127.0.0.1:{port}")));
    assert_eq!(status_of(&r), 400, "{r}");
    let r = send(addr, &req(&format!("[::1]:{port}")));
    assert_eq!(status_of(&r), 200, "{r}");
    assert_eq!(handle.join().unwrap().unwrap().request_token, TOKEN);
}

#[test]
fn recording_browser_can_play_kite_and_hit_the_listener() {
    // The browser seam as tests will use it: "opening" the login URL follows Kite's
    // redirect to the registered URL with the nonce from redirect_params.
    let target = validate_redirect_url(&format!("http://127.0.0.1:{}{PATH}", free_port())).unwrap();
    let nonce = new_nonce();
    let listener = Listener::bind(&target, nonce.clone()).unwrap();
    let redirect = target.url().clone();
    let browser = RecordingBrowser::acting(move |login: &url::Url| {
        let params = login
            .query_pairs()
            .find(|(k, _)| k == "redirect_params")
            .map(|(_, v)| v.into_owned())
            .expect("redirect_params");
        let mut to = redirect.clone();
        to.set_query(Some(&format!(
            "action=login&type=login&status=success&request_token={TOKEN}&{params}"
        )));
        let addr: SocketAddr = format!("{}:{}", to.host_str().unwrap(), to.port().unwrap())
            .parse()
            .unwrap();
        let request = format!(
            "GET {}?{} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n\r\n",
            to.path(),
            to.query().unwrap(),
            to.host_str().unwrap(),
            to.port().unwrap()
        );
        thread::spawn(move || send(addr, &request));
    });
    let login = kite_setup::kite::Endpoints::live().login_url(&"key".into(), &[("state", &nonce)]);
    browser.open(&login).unwrap();
    let cb = listener
        .wait(
            Instant::now() + Duration::from_secs(5),
            &mut QuietUi::default(),
        )
        .unwrap();
    assert_eq!(cb.request_token, TOKEN);
    assert_eq!(browser.urls(), vec![login]);
}
