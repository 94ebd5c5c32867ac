//! A headless Chromium driven over WebDriver: Debian's `/usr/bin/chromedriver` on a free
//! loopback port, plain JSON over HTTP with the blocking `reqwest` client. Just what a
//! test needs: navigate, find by CSS, type, click, read text, screenshot. `Drop` ends the
//! session (which quits Chromium) and kills chromedriver by PID.
//!
//! Needs the Debian packages `chromium chromium-driver`. Chromium runs with the flags this
//! machine needs (no sandbox as root, no GPU, no network but loopback) and a fresh,
//! empty profile directory.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const PACKAGES: &str = "apt-get install -y --no-install-recommends chromium chromium-driver";
/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct WebDriver {
    driver: Child,
    http: reqwest::blocking::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    dir: tempfile::TempDir,
}

/// A handle on one element of the current page.
pub struct Element<'a> {
    wd: &'a WebDriver,
    id: String,
}

impl WebDriver {
    /// Starts chromedriver and a headless Chromium session. Panics with chromedriver's log
    /// when either cannot start: a browser test must fail loudly, never skip.
    pub fn start() -> Self {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing; install the browser test packages: {PACKAGES}"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("kite-chromium-")
            .tempdir()
            .expect("temp dir");
        let profile = dir.path().join("profile");
        std::fs::create_dir(&profile).expect("profile dir");
        let log = dir.path().join("chromedriver.log");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {CHROMEDRIVER}: {e}; {PACKAGES}"));
        let http = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let base = format!("http://127.0.0.1:{port}");
        let mut wd = Self {
            driver,
            http,
            session: String::new(),
            dir,
        };
        // chromedriver answers /status once it listens (usually within 100 ms).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ready = wd
                .http
                .get(format!("{base}/status"))
                .send()
                .ok()
                .and_then(|r| r.json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready on port {port}\n{}",
                wd.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1000,900",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let resp = wd.http.post(format!("{base}/session")).json(&caps).send();
        let v: Value = match resp.and_then(reqwest::blocking::Response::json) {
            Ok(v) => v,
            Err(e) => panic!("WebDriver new session: {e}\n{}", wd.log()),
        };
        let Some(id) = v["value"]["sessionId"].as_str() else {
            panic!(
                "Chromium did not start under chromedriver: {}\n{}",
                v["value"], // error + message, e.g. "session not created"
                wd.log()
            );
        };
        wd.session = format!("{base}/session/{id}");
        // A click that submits a form returns before the next page is there: finding an
        // element waits for it (up to 10 s) instead of failing at once.
        wd.post(
            "/timeouts",
            &json!({"implicit": 10_000, "pageLoad": 20_000}),
        );
        wd
    }

    /// The tail of chromedriver's log (for failure messages).
    pub fn log(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        let mut tail: Vec<&str> = tail.into_iter().rev().collect();
        tail.insert(0, "--- chromedriver log (tail):");
        tail.join("\n")
    }

    /// One WebDriver command; panics on a WebDriver error with its message.
    fn call(&self, method: &reqwest::Method, path: &str, body: Option<&Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = resp.status();
        let v: Value = resp
            .json()
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: not JSON: {e}"));
        assert!(
            status.is_success(),
            "WebDriver {method} {path} -> {status}: {} {}",
            v["value"]["error"],
            v["value"]["message"]
        );
        v["value"].clone()
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        self.call(&reqwest::Method::POST, path, Some(body))
    }

    fn get(&self, path: &str) -> Value {
        self.call(&reqwest::Method::GET, path, None)
    }

    /// Navigates and waits for the page to load.
    pub fn goto(&self, url: &str) {
        self.post("/url", &json!({ "url": url }));
    }

    pub fn current_url(&self) -> String {
        self.get("/url").as_str().unwrap_or_default().to_string()
    }

    /// Waits until the browser is at a URL starting with `prefix`; returns that URL.
    pub fn wait_for_url(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.current_url();
            if url.starts_with(prefix) {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "the browser stayed at {url}, not {prefix}...\n--- page text:\n{}",
                self.body_text()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn title(&self) -> String {
        self.get("/title").as_str().unwrap_or_default().to_string()
    }

    /// The current page's HTML as the browser holds it.
    pub fn source(&self) -> String {
        self.get("/source").as_str().unwrap_or_default().to_string()
    }

    /// The first element matching `css`; panics (with the page's text) when there is none.
    pub fn find(&self, css: &str) -> Element<'_> {
        let resp = self
            .http
            .post(format!("{}/element", self.session))
            .json(&json!({"using": "css selector", "value": css}))
            .send()
            .and_then(reqwest::blocking::Response::json::<Value>)
            .unwrap_or_else(|e| panic!("WebDriver find {css}: {e}"));
        match resp["value"][ELEMENT].as_str() {
            Some(id) => Element {
                wd: self,
                id: id.to_string(),
            },
            None => panic!(
                "no element {css:?} on {} ({}): {resp}\n--- page text:\n{}",
                self.current_url(),
                self.title(),
                self.body_text()
            ),
        }
    }

    /// The visible text of the page body.
    pub fn body_text(&self) -> String {
        self.find_text("body")
    }

    fn find_text(&self, css: &str) -> String {
        let v = self
            .http
            .post(format!("{}/element", self.session))
            .json(&json!({"using": "css selector", "value": css}))
            .send()
            .and_then(reqwest::blocking::Response::json::<Value>)
            .ok();
        let Some(id) = v.as_ref().and_then(|v| v["value"][ELEMENT].as_str()) else {
            return String::new();
        };
        self.get(&format!("/element/{id}/text"))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Clears the field `css` and types `text` into it, as keystrokes.
    pub fn fill(&self, css: &str, text: &str) {
        let e = self.find(css);
        e.clear();
        e.send_keys(text);
    }

    pub fn click(&self, css: &str) {
        self.find(css).click();
    }

    pub fn text(&self, css: &str) -> String {
        self.find(css).text()
    }

    /// A PNG of the viewport, written to `path`; returns its size in bytes.
    pub fn screenshot(&self, path: &Path) -> usize {
        let b64 = self.get("/screenshot");
        let png = base64_decode(b64.as_str().expect("screenshot is a string"));
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("artifact dir");
        }
        std::fs::write(path, &png).expect("write screenshot");
        png.len()
    }
}

impl Element<'_> {
    pub fn click(&self) {
        self.wd
            .post(&format!("/element/{}/click", self.id), &json!({}));
    }

    pub fn clear(&self) {
        self.wd
            .post(&format!("/element/{}/clear", self.id), &json!({}));
    }

    pub fn send_keys(&self, text: &str) {
        self.wd.post(
            &format!("/element/{}/value", self.id),
            &json!({ "text": text }),
        );
    }

    pub fn text(&self) -> String {
        self.wd
            .get(&format!("/element/{}/text", self.id))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        // Ending the session quits Chromium; then chromedriver goes, by its PID.
        if !self.session.is_empty() {
            let _ = self
                .http
                .delete(&self.session)
                .timeout(Duration::from_secs(10))
                .send();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (with padding) to bytes; WebDriver screenshots are plain base64.
fn base64_decode(text: &str) -> Vec<u8> {
    fn value(c: u8) -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c:#x}"),
        }
    }
    let clean: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_round_numbers() {
        assert_eq!(super::base64_decode("aGVsbG8="), b"hello");
        assert_eq!(super::base64_decode("aGk="), b"hi");
        assert_eq!(super::base64_decode("YWJj"), b"abc");
    }
}
