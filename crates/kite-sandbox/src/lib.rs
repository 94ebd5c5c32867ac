//! An emulated Kite Connect (docs/sandbox.md): the developer console, the login page and
//! the API on one loopback address, with Kite's rules, plus a JSON control API for tests.
//! `start` runs it in this process until the handle is dropped. It knows nothing of
//! kite-setup: the wire facts come from kite-wire, the options and errors are its own.

mod api;
mod codes;
mod console;
mod console_profile;
mod control;
mod error;
mod html;
mod http;
mod login;
mod market;
mod orders;
mod serve;
pub mod state;
mod store;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use jiff::{SignedDuration, Timestamp};
use kite_wire::Secret;
pub use kite_wire::time::Clock;
use url::Url;

pub use error::Error;
use state::State;

/// Worker threads: a delayed answer on one must not hold up the others.
const WORKERS: usize = 8;
/// How long a client may take to send the body it announced.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The real time: the one place this crate reads the system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallClock;

impl Clock for WallClock {
    #[allow(clippy::disallowed_methods)] // the sandbox's one wall-clock adapter
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

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
    /// Every root it serves: `url` first, then the extra addresses of `start_on`.
    pub urls: Vec<Url>,
    pub demo: DemoInfo,
    servers: Vec<Arc<tiny_http::Server>>,
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
        let also = self.urls[1..].iter().fold(String::new(), |mut out, u| {
            let _ = writeln!(out, "  also on     {u}");
            out
        });
        format!(
            "kite-setup sandbox: an emulated Kite on {url} (offline, not Zerodha)\n\
             \n  console     {console}\n  login page  {login}\n  API root    {api}\n{also}\
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
        for server in &self.servers {
            for _ in 0..WORKERS {
                server.unblock();
            }
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
    /// Order requests per account in the last second (memory only).
    order_rate: Mutex<HashMap<String, orders::RateWindow>>,
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
            && let Err(e) = store::save(path, &s)
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

/// Accepts loopback addresses only: the sandbox hands out credentials to whoever asks.
fn loopback_addr(addr: &str) -> Result<SocketAddr, Error> {
    let parsed: SocketAddr = addr
        .trim()
        .parse()
        .map_err(|_| Error::BadAddress(addr.to_string()))?;
    if !parsed.ip().is_loopback() {
        return Err(Error::NotLoopback(parsed.to_string()));
    }
    Ok(parsed)
}

/// Starts a sandbox in this process; it serves until `shutdown` (or the process ends).
pub fn start(opts: SandboxOptions, clock: Arc<dyn Clock>) -> Result<SandboxHandle, Error> {
    start_on(opts, &[], clock)
}

fn bind(addr: SocketAddr) -> Result<(tiny_http::Server, Url), Error> {
    let server = tiny_http::Server::http(addr).map_err(|e| Error::Bind {
        addr: addr.to_string(),
        detail: e.to_string(),
    })?;
    let local = server.server_addr().to_ip().ok_or(Error::NoAddress)?;
    let url = Url::parse(&format!("http://{local}/")).map_err(|_| Error::NoAddress)?;
    Ok((server, url))
}

/// Like `start`, and also serving on each `extra` loopback address, where port 0 means
/// the first address's port: with `[::1]:0` next to `127.0.0.1:0`, one sandbox answers on
/// both loopbacks, so a client's address family shows in the static IP rule as it does at
/// Kite. Fails if any address cannot be bound.
pub fn start_on(
    opts: SandboxOptions,
    extra: &[String],
    clock: Arc<dyn Clock>,
) -> Result<SandboxHandle, Error> {
    let addr = loopback_addr(&opts.addr)?;
    let mut extra_addrs = extra
        .iter()
        .map(|a| loopback_addr(a))
        .collect::<Result<Vec<_>, _>>()?;
    let state = match &opts.state_path {
        Some(p) => store::load_or_seed(p)?,
        None => State::seeded(),
    };
    let (server, url) = bind(addr)?;
    let port = url.port_or_known_default().unwrap_or(0);
    let mut servers = vec![Arc::new(server)];
    let mut urls = vec![url.clone()];
    for a in &mut extra_addrs {
        if a.port() == 0 {
            a.set_port(port);
        }
        let (server, url) = bind(*a)?;
        servers.push(Arc::new(server));
        urls.push(url);
    }
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
        order_rate: Mutex::new(HashMap::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let workers = servers
        .iter()
        .flat_map(|server| std::iter::repeat_n(server, WORKERS))
        .map(|server| {
            let (server, stop, shared) = (server.clone(), stop.clone(), shared.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(rq) = server.recv() {
                        // A bug in one handler must not take a worker down: the request is
                        // dropped, and tiny_http answers it with a 500.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            serve::serve(&shared, rq);
                        }));
                    }
                }
            })
        })
        .collect();
    Ok(SandboxHandle {
        url,
        urls,
        demo,
        servers,
        stop,
        workers,
        shared,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert!(loopback_addr(bad).unwrap_err().is_usage(), "{bad}");
        }
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod server_tests;
