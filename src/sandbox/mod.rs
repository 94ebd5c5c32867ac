//! The emulated Kite (product.md "The sandbox"): the developer console, the login page
//! and the API on one loopback address, with Kite's rules, plus a JSON control API for
//! tests. `start` runs it in-process (for `--sandbox` and tests); `run` is the
//! foreground `kite-setup sandbox` command.

mod api;
mod console;
mod control;
mod html;
mod http;
mod login;
pub mod state;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use url::Url;

use crate::cli::SandboxArgs;
use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::kite::ErrorType;
use crate::secret::Secret;
use http::{Reply, Req};
use state::{Fault, State};

/// Worker threads: a delayed answer on one must not hold up the others.
const WORKERS: usize = 8;
/// Bodies larger than this are refused (every real form and JSON body is tiny).
const MAX_BODY: u64 = 64 * 1024;

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// A loopback address (`127.0.0.1:0` picks a free port).
    pub addr: String,
    /// Where the state is kept; `None` keeps it in memory only.
    pub state_path: Option<PathBuf>,
    /// `/connect/login` redirects at once as the app's owner, without the login form.
    pub auto_approve: bool,
}

impl Default for SandboxOptions {
    /// A free loopback port, state in memory, the login form.
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:0".into(),
            state_path: None,
            auto_approve: false,
        }
    }
}

/// The seeded demo account and app (printed in the banner: that is its purpose).
#[derive(Debug, Clone)]
pub struct DemoInfo {
    pub client_id: String,
    pub password: Secret,
    pub totp_secret: Secret,
    pub api_key: String,
    pub api_secret: Secret,
    pub redirect_url: String,
}

/// A running sandbox; it stops when the handle is dropped.
pub struct SandboxHandle {
    /// The root, `http://127.0.0.1:PORT/`.
    pub url: Url,
    pub demo: DemoInfo,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl SandboxHandle {
    /// The login page, without query.
    pub fn login_url(&self) -> Url {
        self.url.join("connect/login").expect("relative URL")
    }

    /// The developer console.
    pub fn console_url(&self) -> Url {
        self.url.join("console").expect("relative URL")
    }

    /// The API root as SDKs take it (no trailing slash: gokiteconnect wants none).
    pub fn api_url(&self) -> String {
        self.url.as_str().trim_end_matches('/').to_string()
    }

    /// The one-line `--json` banner, demo secrets included.
    pub fn banner_json(&self) -> serde_json::Value {
        serde_json::json!({
            "url": self.url.as_str(),
            "console_url": self.console_url().as_str(),
            "login_url": self.login_url().as_str(),
            "api_url": self.api_url(),
            "client_id": self.demo.client_id,
            "password": self.demo.password.expose(),
            "totp_secret": self.demo.totp_secret.expose(),
            "api_key": self.demo.api_key,
            "api_secret": self.demo.api_secret.expose(),
            "redirect_url": self.demo.redirect_url,
        })
    }

    /// The human banner (stderr), with the demo's current TOTP code.
    pub fn banner_text(&self) -> String {
        let code = state::totp_now(&self.demo.totp_secret, self.shared.now())
            .unwrap_or_else(|| "?".into());
        format!(
            "kite-setup sandbox: an emulated Kite on {url} (offline, not Zerodha)\n\
             \n  console     {console}\n  login page  {login}\n  API root    {api}\n\
             \nDemo account (for the console and the login page):\n  client ID   {cid}\n  password    {pw}\n  TOTP secret {totp}   (code now: {code})\n\
             \nDemo app:\n  api_key     {key}\n  api_secret  {secret}\n  redirect    {redirect}\n\
             \nPoint kite-setup at it with --sandbox-url {url}. Ctrl-C stops it.",
            url = self.url,
            console = self.console_url(),
            login = self.login_url(),
            api = self.api_url(),
            cid = self.demo.client_id,
            pw = self.demo.password.expose(),
            totp = self.demo.totp_secret.expose(),
            key = self.demo.api_key,
            secret = self.demo.api_secret.expose(),
            redirect = self.demo.redirect_url,
        )
    }

    /// Stops serving and waits for the workers (dropping the handle does the same).
    pub fn shutdown(self) {
        drop(self);
    }

    /// Stops the per-request log lines on stderr (for an in-process sandbox behind a
    /// wizard); the foreground command keeps them.
    pub fn quiet(&self) {
        self.shared.log.store(false, Ordering::Relaxed);
    }

    /// Serves until the process ends (the foreground command).
    pub fn join(mut self) {
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for _ in 0..self.workers.len() {
            self.server.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// What the request handlers share.
pub(crate) struct Shared {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    state_path: Option<PathBuf>,
    auto_approve: bool,
    /// One stderr line per request (method, path, status) unless quieted.
    log: AtomicBool,
    /// Console sessions: cookie value → client ID (memory only).
    sessions: Mutex<HashMap<String, String>>,
    /// Logins waiting at the "Authorize app" page: ticket → (client ID, api_key, params).
    tickets: Mutex<HashMap<String, login::Ticket>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// The sandbox clock: the given clock plus the time-travel offset.
    fn now(&self) -> Timestamp {
        let offset = lock(&self.state).clock_offset_seconds;
        shifted(self.clock.now(), offset)
    }

    /// Reads the state (no save).
    fn read<R>(&self, f: impl FnOnce(&State, Timestamp) -> R) -> R {
        let s = lock(&self.state);
        let now = shifted(self.clock.now(), s.clock_offset_seconds);
        f(&s, now)
    }

    /// Changes the state and persists it.
    fn mutate<R>(&self, f: impl FnOnce(&mut State, Timestamp) -> R) -> R {
        let mut s = lock(&self.state);
        let now = shifted(self.clock.now(), s.clock_offset_seconds);
        let out = f(&mut s, now);
        s.prune(now);
        if let Some(path) = &self.state_path
            && let Err(e) = save(path, &s)
        {
            eprintln!("sandbox: cannot save the state: {e}");
        }
        out
    }
}

fn shifted(t: Timestamp, offset_seconds: i64) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(offset_seconds))
        .unwrap_or(t)
}

fn save(path: &Path, s: &State) -> Result<(), crate::profile::ConfigError> {
    let bytes = serde_json::to_vec_pretty(s).expect("the state serializes");
    crate::profile::write_private_atomic(path, &bytes)
}

/// Loads the state file, or seeds a new world (and writes it) when there is none.
fn load_or_seed(path: &Path) -> Result<State, Error> {
    let mut state = match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<State>(&bytes).map_err(|e| {
            // Never serde's own message: it quotes values, and the file holds the demo
            // world's passwords, TOTP secrets and api_secrets.
            let mut what = crate::kite::wire::data_error(&e);
            if !what.contains(" at line ") {
                what = format!("{what} at line {}", e.line());
            }
            Error::failed(
                format!(
                    "the sandbox state file {} cannot be read: {what}",
                    path.display()
                ),
                "move it away (a new demo world is created), or run `kite-setup sandbox --state FILE` with another file",
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::seeded(),
        Err(e) => {
            return Err(Error::failed(
                format!("cannot read {}: {e}", path.display()),
                "check the file's permissions, or run `kite-setup sandbox --state FILE` with another file",
            ));
        }
    };
    if state.account(&state.demo_client_id).is_none() || state.app(&state.demo_api_key).is_none() {
        let seeded = State::seeded();
        state.demo_client_id.clone_from(&seeded.demo_client_id);
        state.demo_api_key.clone_from(&seeded.demo_api_key);
        state.accounts.extend(seeded.accounts);
        state.apps.extend(seeded.apps);
    }
    let unwritable = |e: crate::profile::ConfigError| {
        Error::failed(
            e.to_string(),
            "run `kite-setup sandbox --state FILE` with a file in a directory you can write",
        )
    };
    // Only a directory we create is made private: never chmod an existing one (/tmp).
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        crate::profile::create_private_dir(dir).map_err(unwritable)?;
    }
    save(path, &state).map_err(unwritable)?;
    Ok(state)
}

/// Accepts loopback addresses only: the sandbox hands out credentials to whoever asks.
fn loopback_addr(addr: &str) -> Result<SocketAddr, Error> {
    let parsed: SocketAddr = addr.trim().parse().map_err(|_| {
        Error::usage(
            format!("{addr:?} is not an address with a port"),
            "use --addr 127.0.0.1:PORT (port 0 picks a free one)",
        )
    })?;
    if !parsed.ip().is_loopback() {
        return Err(Error::usage(
            format!(
                "refusing to serve the sandbox on {parsed}: only loopback addresses are allowed"
            ),
            "use --addr 127.0.0.1:PORT or [::1]:PORT",
        ));
    }
    Ok(parsed)
}

/// Starts a sandbox in this process; it serves until `shutdown` (or the process ends).
pub fn start(opts: SandboxOptions, clock: Arc<dyn Clock>) -> Result<SandboxHandle, Error> {
    let addr = loopback_addr(&opts.addr)?;
    let state = match &opts.state_path {
        Some(p) => load_or_seed(p)?,
        None => State::seeded(),
    };
    let server = tiny_http::Server::http(addr).map_err(|e| {
        Error::failed(
            format!("cannot serve the sandbox on {addr}: {e}"),
            "another program uses the port: pick another with --addr 127.0.0.1:PORT (0 = any free port)",
        )
    })?;
    let local = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Error::failed("the sandbox listener has no IP address", "try again"))?;
    let url = Url::parse(&format!("http://{local}/"))
        .map_err(|e| Error::failed(format!("bad listen address: {e}"), "try again"))?;
    let demo = {
        let acc = state
            .account(&state.demo_client_id)
            .expect("the demo account is seeded");
        let app = state
            .app(&state.demo_api_key)
            .expect("the demo app is seeded");
        DemoInfo {
            client_id: acc.client_id.clone(),
            password: acc.password.clone(),
            totp_secret: acc.totp_secret.clone(),
            api_key: app.api_key.clone(),
            api_secret: app.api_secret.clone(),
            redirect_url: app.redirect_url.clone(),
        }
    };
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
        clock,
        state_path: opts.state_path,
        auto_approve: opts.auto_approve,
        log: AtomicBool::new(true),
        sessions: Mutex::new(HashMap::new()),
        tickets: Mutex::new(HashMap::new()),
    });
    let server = Arc::new(server);
    let stop = Arc::new(AtomicBool::new(false));
    let workers = (0..WORKERS)
        .map(|_| {
            let (server, stop, shared) = (server.clone(), stop.clone(), shared.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(rq) = server.recv() {
                        // A bug in one handler must not take a worker down: the request is
                        // dropped, and tiny_http answers it with a 500.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            serve(&shared, rq);
                        }));
                    }
                }
            })
        })
        .collect();
    Ok(SandboxHandle {
        url,
        demo,
        server,
        stop,
        workers,
        shared,
    })
}

/// `kite-setup sandbox`: start, print the banner, serve until killed.
pub fn run(args: &SandboxArgs, json: bool, default_state: PathBuf) -> Result<(), Error> {
    let opts = SandboxOptions {
        addr: args.addr.clone(),
        state_path: Some(args.state.clone().unwrap_or(default_state)),
        auto_approve: args.auto_approve,
    };
    let handle = start(opts, Arc::new(SystemClock::default()))?;
    if json {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", handle.banner_json());
        let _ = out.flush();
    } else {
        eprintln!("{}", handle.banner_text());
    }
    handle.join();
    Ok(())
}

/// Answers one request: faults first, then the route; one log line, without the query.
fn serve(shared: &Shared, mut rq: tiny_http::Request) {
    let req = match read_request(&mut rq) {
        Ok(req) => req,
        Err(reply) => {
            log(shared, rq.method().as_str(), rq.url(), reply.status);
            send(shared, rq, reply);
            return;
        }
    };
    let fault = if shared.read(|s, _| s.faults.is_empty()) {
        None
    } else {
        shared.mutate(|s, _| s.take_fault(&req.path))
    };
    let reply = match fault {
        Some(f) => {
            if let Some(ms) = f.delay_ms {
                std::thread::sleep(Duration::from_millis(ms));
            }
            if f.reset {
                log(shared, &req.method, &req.path, 0);
                break_connection(rq);
                return;
            }
            fault_reply(&f).unwrap_or_else(|| route(shared, &req))
        }
        None => route(shared, &req),
    };
    log(shared, &req.method, &req.path, reply.status);
    send(shared, rq, reply);
}

fn log(shared: &Shared, method: &str, url: &str, status: u16) {
    if !shared.log.load(Ordering::Relaxed) {
        return;
    }
    let path = loggable_path(url);
    if status == 0 {
        eprintln!("sandbox: {method} {path} -> connection dropped (fault)");
    } else {
        eprintln!("sandbox: {method} {path} -> {status}");
    }
}

/// The path without its query, with key-like segments (the api_key in console and
/// control paths) cut to their first four characters.
fn loggable_path(url: &str) -> String {
    let path = url.split('?').next().unwrap_or_default();
    path.split('/')
        .map(|seg| {
            if seg.len() >= 12 && seg.chars().all(|c| c.is_ascii_alphanumeric()) {
                format!("{}…", &seg[..4])
            } else {
                seg.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn read_request(rq: &mut tiny_http::Request) -> Result<Req, Reply> {
    let url = rq.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let header = |name: &'static str| {
        rq.headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_string())
    };
    let mut req = Req {
        method: rq.method().as_str().to_ascii_uppercase(),
        path: path.to_string(),
        query: http::parse_pairs(query.as_bytes()),
        authorization: header("Authorization"),
        cookie: header("Cookie"),
        body: Vec::new(),
    };
    let mut reader = rq.as_reader().take(MAX_BODY + 1);
    if reader.read_to_end(&mut req.body).is_err() {
        return Err(Reply::input_error("The request body could not be read."));
    }
    if req.body.len() as u64 > MAX_BODY {
        return Err(Reply::error(
            413,
            &ErrorType::Input,
            "The request body is too large.",
        ));
    }
    Ok(req)
}

fn route(shared: &Shared, req: &Req) -> Reply {
    let p = req.path.as_str();
    if p == "/connect/login" || p == "/connect/authorize" {
        login::handle(shared, req)
    } else if p == "/console" || p.starts_with("/console/") {
        console::handle(shared, req)
    } else if p.starts_with("/_sandbox/") {
        control::handle(shared, req)
    } else {
        api::handle(shared, req)
    }
}

/// The answer an injected fault gives, or `None` for a delay-only fault.
fn fault_reply(f: &Fault) -> Option<Reply> {
    if let Some(body) = &f.body {
        return Some(Reply {
            status: f.status.unwrap_or(500),
            content_type: Some("text/plain; charset=utf-8"),
            headers: Vec::new(),
            body: body.clone().into_bytes(),
        });
    }
    let status = f.status?;
    let message = match status {
        403 => state::MSG_BAD_KEY_OR_TOKEN,
        404 => "Route not found",
        429 => "Too many requests",
        400 => "Invalid input (injected fault).",
        502 => "Bad gateway (injected fault).",
        503 => "Service unavailable (injected fault).",
        _ => "Something went wrong (injected fault).",
    };
    Some(Reply::error(
        status,
        &ErrorType::for_status(status),
        message,
    ))
}

/// Sends the answer with an explicit `Date` from the sandbox clock.
fn send(shared: &Shared, rq: tiny_http::Request, reply: Reply) {
    let date = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&shared.now())
        .unwrap_or_default();
    let mut resp = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    let mut headers = reply.headers;
    headers.push(("Date", date));
    if let Some(ct) = reply.content_type {
        headers.push(("Content-Type", ct.to_string()));
    }
    for (name, value) in headers {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            resp.add_header(h);
        }
    }
    let _ = rq.respond(resp);
}

/// A "reset" fault: the client gets a line that is not HTTP and then nothing, which every
/// client reports as a broken connection (tiny_http cannot close the socket directly).
fn break_connection(rq: tiny_http::Request) {
    let mut w = rq.into_writer();
    let _ = w.write_all(b"\x00\r\n\r\n");
    let _ = w.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_paths_drop_queries_and_cut_keys() {
        assert_eq!(
            loggable_path("/session/token?api_key=k&access_token=t"),
            "/session/token"
        );
        assert_eq!(
            loggable_path("/console/apps/abcd1234efgh5678/regenerate"),
            "/console/apps/abcd…/regenerate"
        );
        assert_eq!(
            loggable_path("/user/margins/equity"),
            "/user/margins/equity"
        );
    }

    #[test]
    fn only_loopback_addresses() {
        assert!(loopback_addr("127.0.0.1:0").is_ok());
        assert!(loopback_addr("127.9.9.9:5010").is_ok());
        assert!(loopback_addr("[::1]:0").is_ok());
        for bad in [
            "0.0.0.0:0",
            "[::]:0",
            "192.168.1.2:80",
            "localhost:80",
            "127.0.0.1",
        ] {
            assert_eq!(loopback_addr(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn status_faults_give_the_documented_envelope() {
        let f = |status: Option<u16>, body: Option<&str>| Fault {
            path: "/x".into(),
            status,
            delay_ms: None,
            body: body.map(str::to_string),
            reset: false,
            count: 1,
        };
        let r = fault_reply(&f(Some(429), None)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            (v["error_type"].as_str(), v["message"].as_str()),
            (Some("NetworkException"), Some("Too many requests"))
        );
        let r = fault_reply(&f(None, Some("<html>"))).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (500, b"<html>".as_slice()));
        assert!(!r.content_type.unwrap().contains("json"));
        assert!(fault_reply(&f(None, None)).is_none());
    }
}
