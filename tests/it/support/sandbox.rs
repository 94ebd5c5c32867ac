//! Spawns the real `kite-setup sandbox` binary on a free loopback port and reads its
//! one-line JSON banner. The child dies with the value.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The banner keys, exactly (docs/sandbox.md).
pub const BANNER_KEYS: [&str; 10] = [
    "url",
    "console_url",
    "login_url",
    "api_url",
    "client_id",
    "password",
    "totp_secret",
    "api_key",
    "api_secret",
    "redirect_url",
];

/// A sandbox child process and what its banner said.
pub struct SandboxProcess {
    /// `http://127.0.0.1:PORT/`
    pub url: String,
    pub console_url: String,
    pub login_url: String,
    /// The root SDKs take (no trailing slash).
    pub api_url: String,
    pub client_id: String,
    pub password: String,
    pub totp_secret: String,
    pub api_key: String,
    pub api_secret: String,
    pub redirect_url: String,
    /// The banner line as parsed.
    pub banner: serde_json::Value,
    /// The banner line as printed.
    pub banner_line: String,
    /// How long the banner took to arrive.
    pub startup: Duration,
    child: Child,
    log: Arc<Mutex<String>>,
    _dir: Option<tempfile::TempDir>,
}

impl SandboxProcess {
    /// `sandbox --auto-approve` with a fresh state file.
    pub fn auto_approve() -> Self {
        Self::spawn(&["--auto-approve"], None)
    }

    /// `sandbox` with the login form, with a fresh state file.
    pub fn with_login_form() -> Self {
        Self::spawn(&[], None)
    }

    /// Spawns `kite-setup sandbox --addr 127.0.0.1:0 --json --state FILE EXTRA...`; `state`
    /// defaults to a file in a fresh temp dir. Panics if no banner arrives within 10 s.
    pub fn spawn(extra: &[&str], state: Option<&Path>) -> Self {
        let dir = if state.is_none() {
            Some(tempfile::tempdir().expect("temp dir"))
        } else {
            None
        };
        let state_path = state.map_or_else(
            || dir.as_ref().expect("dir").path().join("sandbox.json"),
            Path::to_path_buf,
        );
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_kite-setup"))
            .args(["sandbox", "--addr", "127.0.0.1:0", "--json", "--state"])
            .arg(&state_path)
            .args(extra)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kite-setup sandbox");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut buf = [0u8; 4096];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("log lock")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            // Keep reading so the child never blocks on a full pipe.
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        });
        let line = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(l) if !l.trim().is_empty() => l,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "no sandbox banner ({other:?}); stderr: {}",
                    log.lock().expect("log lock")
                );
            }
        };
        let startup = started.elapsed();
        let banner: serde_json::Value =
            serde_json::from_str(line.trim()).expect("the banner is one JSON line");
        let field = |k: &str| banner[k].as_str().unwrap_or_default().to_string();
        Self {
            url: field("url"),
            console_url: field("console_url"),
            login_url: field("login_url"),
            api_url: field("api_url"),
            client_id: field("client_id"),
            password: field("password"),
            totp_secret: field("totp_secret"),
            api_key: field("api_key"),
            api_secret: field("api_secret"),
            redirect_url: field("redirect_url"),
            banner_line: line.trim().to_string(),
            banner,
            startup,
            child,
            log,
            _dir: dir,
        }
    }

    /// Everything the sandbox wrote on stderr so far (its request log).
    pub fn stderr_log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// `http://127.0.0.1:PORT/<path>` (path without a leading slash).
    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path.trim_start_matches('/'))
    }

    /// Stops the child now (the temp dir stays until drop).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
