//! Running the real `kite-setup` binary in a world of its own: a private headless Secret
//! Service, a sandbox process, private config and data directories, and a `$BROWSER` that
//! behaves like a person's browser on an auto-approving Kite (it GETs the login URL and
//! follows the redirect to kite-setup's listener).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::keyring::KeyringSession;
use super::sandbox::SandboxProcess;

pub const BIN: &str = env!("CARGO_BIN_EXE_kite-setup");

/// The interactive wizard picks the lowest free port from 5123 when it shows the form, and
/// binds it only at the login: two wizards verifying at once in this process (`init_pty`,
/// `real_browser`) would pick the same port. The tests whose wizard logs in take turns.
static LOGIN_PORT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds the turn of a wizard that logs in until the guard is dropped.
pub fn login_port_turn() -> std::sync::MutexGuard<'static, ()> {
    LOGIN_PORT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A browser for an auto-approving sandbox: fetches the login URL and follows redirects.
const BROWSER_SCRIPT: &str = r"#!/usr/bin/env python3
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=10).read()
";

/// A free loopback port for a redirect URL, distinct within this test process.
pub fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Spread processes apart by pid so parallel test binaries rarely meet.
    let _ = NEXT.compare_exchange(
        0,
        20_000 + (std::process::id() % 2_000) as u16 * 10,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let p = NEXT.fetch_add(1, Ordering::SeqCst);
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

pub fn redirect_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/kite-setup/callback")
}

/// The output of one run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: &Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the exit code is `code`.
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A snapshot of everything stored for one profile (see `World::stored_state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredState {
    pub app: Option<String>,
    pub session: Option<String>,
    pub pending: Option<String>,
    pub files: Vec<(PathBuf, Vec<u8>)>,
}

impl StoredState {
    /// Which parts differ from `other`, by name only (never the values).
    pub fn diff(&self, other: &Self) -> Vec<&'static str> {
        let mut d = Vec::new();
        if self.app != other.app {
            d.push("app entry");
        }
        if self.session != other.session {
            d.push("session entry");
        }
        if self.pending != other.pending {
            d.push("pending entry");
        }
        if self.files != other.files {
            d.push("files on disk");
        }
        d
    }
}

/// A string in a keyring entry's JSON payload at a JSON pointer (`/api_secret`,
/// `/new_session/access_token`); `None` when the entry, the field or the payload is absent.
pub fn payload_str(payload: Option<&str>, pointer: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(payload?).ok()?;
    v.pointer(pointer)?.as_str().map(str::to_string)
}

/// A keyring entry's JSON payload at a JSON pointer, whatever its type (`""` is the whole).
pub fn payload_value(payload: Option<&str>, pointer: &str) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(payload?).ok()?;
    v.pointer(pointer).cloned()
}

/// Checks the shape every failure must have: the exit code, exactly one `error:` line
/// containing `fragment`, a non-empty `hint:` line, and no panic. Returns what is wrong.
pub fn check_failure(run: &Run, code: i32, fragment: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if run.stderr.contains("panicked") || run.code == 101 {
        problems.push("PANIC".to_string());
    }
    if run.code != code {
        problems.push(format!("exit {} (wanted {code})", run.code));
    }
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    match errors.as_slice() {
        [one] if one.contains(fragment) => {}
        [one] => problems.push(format!("error line {one:?} lacks {fragment:?}")),
        other => problems.push(format!("{} error: lines (wanted 1)", other.len())),
    }
    if !run
        .stderr
        .lines()
        .any(|l| l.starts_with("hint: ") && l.len() > "hint: ".len() + 5)
    {
        problems.push("no hint: line".into());
    }
    problems
}

/// An app created in the sandbox for the demo account.
pub struct App {
    pub api_key: String,
    pub api_secret: String,
    pub redirect_url: String,
}

/// One isolated world for the binary.
pub struct World {
    pub keyring: KeyringSession,
    pub sandbox: SandboxProcess,
    pub config_dir: PathBuf,
    pub data_dir: PathBuf,
    pub browser: PathBuf,
    http: reqwest::blocking::Client,
}

impl World {
    /// A real keyring and an auto-approving sandbox.
    pub fn new() -> Self {
        Self::with(KeyringSession::start(), SandboxProcess::auto_approve())
    }

    pub fn with(keyring: KeyringSession, sandbox: SandboxProcess) -> Self {
        let config_dir = keyring.path().join("kite-setup-config");
        let data_dir = keyring.path().join("kite-setup-data");
        let browser = keyring.path().join("browser.py");
        std::fs::write(&browser, BROWSER_SCRIPT).expect("write browser script");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        kite_setup::kite::client::install_tls_provider();
        let http = reqwest::blocking::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        Self {
            keyring,
            sandbox,
            config_dir,
            data_dir,
            browser,
            http,
        }
    }

    /// `kite-setup --sandbox-url URL ARGS...` with this world's environment (and nothing
    /// else from the test's environment that could change behaviour).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.live_command(&[]);
        cmd.arg("--sandbox-url").arg(&self.sandbox.url).args(args);
        cmd
    }

    /// `kite-setup ARGS...` with this world's environment but WITHOUT the sandbox: live
    /// mode (for what happens before any network call, such as the keyring pre-flight).
    pub fn live_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        #[allow(clippy::disallowed_methods)] // the child needs PATH to find python3 for $BROWSER
        let path = std::env::var_os("PATH").unwrap_or_default();
        cmd.env_clear()
            .env("PATH", path)
            .envs(self.keyring.envs())
            .env("KITE_SETUP_CONFIG_DIR", &self.config_dir)
            .env("KITE_SETUP_DATA_DIR", &self.data_dir)
            .env("BROWSER", &self.browser)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("NO_COLOR", "1")
            .args(args);
        cmd
    }

    /// Replaces the `$BROWSER` script (e.g. one that drives the sandbox's login form, or
    /// one that never follows the link).
    pub fn set_browser(&self, script: &str) {
        std::fs::write(&self.browser, script).expect("write browser script");
    }

    /// Any program with this world's environment (the same one `command` gives
    /// kite-setup), e.g. a shell that runs kite-setup itself.
    pub fn program(&self, program: &str) -> Command {
        let kite = self.command(&[]);
        let mut cmd = Command::new(program);
        cmd.env_clear();
        for (k, v) in kite.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        cmd
    }

    /// Runs with `stdin` as standard input (not a terminal: --no-input is implied).
    pub fn run(&self, args: &[&str], stdin: &str) -> Run {
        run_command(self.command(args), stdin)
    }

    /// Like `run`, with extra environment variables (e.g. the test timeouts).
    pub fn run_env(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_command(cmd, stdin)
    }

    /// GET a sandbox control path as JSON (e.g. `/_sandbox/state`).
    pub fn control_get(&self, path: &str) -> serde_json::Value {
        let resp = self
            .http
            .get(self.sandbox.at(path))
            .send()
            .expect("control API");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().expect("control JSON")
    }

    /// Faults injected and not yet used up.
    pub fn pending_faults(&self) -> usize {
        self.control_get("/_sandbox/state")["faults"]
            .as_array()
            .map_or(0, Vec::len)
    }

    /// What a command could change: the profile's keyring entries (app, session, pending)
    /// and every file under the config and data dirs.
    pub fn stored_state(&self, profile: &str) -> StoredState {
        let entry = |e: &str| self.keyring.lookup(&format!("sandbox/{profile}/{e}"));
        // The app's entries are filed under the app config.toml names for the profile.
        let app = self.app_of(profile);
        let app_entry = |e: &str| {
            app.as_deref()
                .and_then(|a| self.keyring.lookup(&format!("sandbox/apps/{a}/{e}")))
                .or_else(|| entry(e))
        };
        StoredState {
            app: app_entry("app"),
            session: entry("session"),
            pending: app_entry("pending"),
            files: self.files_on_disk(),
        }
    }

    /// The app config.toml names for sandbox profile `profile`, if any.
    pub fn app_of(&self, profile: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.config_dir.join("config.toml")).ok()?;
        let v: toml::Value = toml::from_str(&text).ok()?;
        v.get("sandbox_profiles")?
            .get(profile)?
            .get("app")?
            .as_str()
            .map(str::to_string)
    }

    /// POST to the sandbox's control API.
    pub fn control(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let resp = self
            .http
            .post(self.sandbox.at(path))
            .json(body)
            .send()
            .expect("control API");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().expect("control JSON")
    }

    /// "Regenerate secret" on the sandbox console for `api_key` (control API); the new
    /// api_secret. The old one stops working at once; tokens issued before stay alive.
    pub fn regenerate_at_console(&self, api_key: &str) -> String {
        self.control(
            &format!("/_sandbox/apps/{api_key}/regenerate"),
            &serde_json::json!({}),
        )["api_secret"]
            .as_str()
            .expect("api_secret")
            .to_string()
    }

    /// The HTTP status the sandbox answers `GET /user/profile` with for this token (200
    /// alive, 403 dead). Not through any injected fault: call it with none pending.
    pub fn profile_status(&self, api_key: &str, token: &str) -> u16 {
        self.http
            .get(self.sandbox.at("/user/profile"))
            .header("X-Kite-Version", "3")
            .header("Authorization", format!("token {api_key}:{token}"))
            .send()
            .expect("GET /user/profile")
            .status()
            .as_u16()
    }

    /// A new app for the demo account with a free redirect port.
    pub fn create_app(&self) -> App {
        let redirect_url = redirect_url(free_port());
        let v = self.control(
            "/_sandbox/apps",
            &serde_json::json!({"client_id": self.sandbox.client_id, "redirect_url": redirect_url, "plan": "personal"}),
        );
        App {
            api_key: v["api_key"].as_str().expect("api_key").into(),
            api_secret: v["api_secret"].as_str().expect("api_secret").into(),
            redirect_url,
        }
    }

    /// The argv of a non-interactive init for `app` (the secret goes on stdin).
    pub fn init_args<'a>(&'a self, app: &'a App) -> Vec<&'a str> {
        vec![
            "init",
            "--no-input",
            "--client-id",
            &self.sandbox.client_id,
            "--api-key",
            &app.api_key,
            "--redirect-url",
            &app.redirect_url,
            "--plan",
            "personal",
            "--api-secret-stdin",
            "--timeout",
            "20",
        ]
    }

    /// A verified sandbox profile `default`, set up through the binary.
    pub fn set_up(&self) -> App {
        let app = self.create_app();
        self.run(&self.init_args(&app), &format!("{}\n", app.api_secret))
            .expect(0);
        app
    }

    /// Every file under the config and data dirs, with contents (to prove what is on disk).
    pub fn files_on_disk(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for root in [&self.config_dir, &self.data_dir] {
            collect(root, &mut out);
        }
        out
    }
}

fn collect(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        // Lock files (src/lock.rs) hold no state: they are empty whenever no process holds them.
        if p.is_dir()
            && p.file_name()
                .is_some_and(|n| n == kite_setup::lock::LOCK_DIR)
        {
            continue;
        }
        if p.is_dir() {
            collect(&p, out);
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
}

/// Runs a prepared command with `stdin` and collects its output.
pub fn run_command(mut cmd: Command, stdin: &str) -> Run {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn kite-setup");
    let mut input = child.stdin.take().expect("stdin");
    let text = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().expect("wait kite-setup");
    let _ = writer.join();
    Run::from(&out)
}

/// A kite-setup process with piped stdio whose stderr is read line by line while it runs,
/// to catch the login URL (and its nonce) while a login waits for its redirect.
pub struct Streaming {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    reader: Option<JoinHandle<String>>,
}

impl Streaming {
    pub fn spawn(mut cmd: Command, stdin: Stdio) -> Self {
        let mut child = cmd
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kite-setup");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                all.push_str(&line);
                all.push('\n');
                let _ = tx.send(line);
            }
            all
        });
        Self {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// The `/connect/login` URL kite-setup printed, if it did within `timeout`.
    pub fn login_url(&self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let line = self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .ok()?;
            if let Some(at) = line.find("http") {
                let url = line[at..].trim();
                if url.contains("/connect/login") {
                    return Some(url.to_string());
                }
            }
        }
    }

    /// All of stderr; call after the process has ended (or its stderr closed).
    pub fn stderr(&mut self) -> String {
        self.reader
            .take()
            .map(|r| r.join().expect("stderr reader"))
            .unwrap_or_default()
    }
}

/// The nonce kite-setup put in a login URL's `redirect_params` (`state=<hex>`).
pub fn nonce_of(login_url: &str) -> Option<String> {
    let u = url::Url::parse(login_url).ok()?;
    let params = u
        .query_pairs()
        .find(|(k, _)| k == "redirect_params")
        .map(|(_, v)| v.into_owned())?;
    url::form_urlencoded::parse(params.as_bytes())
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
}
