//! The loopback listener that catches Kite's redirect.
//!
//! It binds exactly the registered address and answers only `GET <registered path>` with
//! the exact `Host` header and this login's nonce; everything else gets a small 400, 404
//! or 405 and the wait goes on. It accepts one callback and then stops (`wait` consumes
//! the listener, and dropping tiny_http's `Server` closes the socket).
//!
//! tiny_http reads each connection's request head in a thread of its own (a pool that
//! grows a thread whenever none is idle) and hands complete requests to a queue; `wait`
//! polls that queue in 100 ms slices. So a client that never finishes its request, a
//! huge header or a burst of junk connections occupy their own threads and cannot stall
//! the real callback (tests/it/listener_redirect.rs proves each case). tiny_http has no
//! header size limit and no read timeout: such a thread lives, and an endless header
//! line keeps growing in memory, until its client goes away. Only local processes can
//! connect (loopback), the wait is bounded by its deadline, and the process exits soon
//! after; bounding that would mean replacing tiny_http's connection reader.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use crate::clock::{Monotonic, SystemMonotonic};

use crate::error::{Fix, RunFlags};
use tiny_http::{Header, Method, Request, Response, Server};

use super::callback::{Callback, CallbackError, check_listener_query};
use super::target::RedirectTarget;
use super::wait::{WaitControl, WaitUi};

/// How long one poll of the request queue lasts; the UI ticks once per slice.
const SLICE: Duration = Duration::from_millis(100);

/// The most header bytes a redirect may carry. A browser's redirect to 127.0.0.1 sends a
/// few hundred bytes (a few KiB with cookies); anything far larger is not Kite's redirect.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Why the listener could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListenError {
    #[error("port {port} on {ip} is already in use by another program")]
    PortBusy { ip: String, port: u16 },
    #[error("the address {addr} is not available on this machine")]
    AddrNotAvailable { addr: String },
    #[error("not allowed to listen on port {port}")]
    PermissionDenied { port: u16 },
    #[error("could not listen on {addr}: {detail}")]
    Io { addr: String, detail: String },
}

impl ListenError {
    /// The fix as a run of the default live profile would read it (tests; commands
    /// render `fix()` with their run's flags).
    pub fn hint(&self) -> String {
        self.fix().render(&RunFlags::default())
    }

    pub fn fix(&self) -> Fix {
        match self {
            Self::PortBusy { ip, port } => Fix::text("another program (perhaps another ")
                .and_run("login")
                .and(format!(") is listening on {ip}:{port}; stop it and retry (see it with `lsof -i :{port}` or `ss -ltnp`). The redirect URL registered in the Kite console fixes the port, so to use another one, register a new redirect URL and update the profile; or use `--paste`")),
            Self::AddrNotAvailable { .. } => "this machine has no such loopback address (IPv6 may be off); register an http://127.0.0.1:PORT/... redirect URL instead, or use `--paste`".into(),
            Self::PermissionDenied { .. } => "ports below 1024 need privileges; register a redirect URL with a port between 1024 and 65535".into(),
            Self::Io { .. } => Fix::text("retry; if it persists, use ").and_run("login --paste"),
        }
    }
}

/// How a wait ended without a request token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    #[error("the login redirect did not arrive in time")]
    Timeout { redirect_url: String },
    #[error("the login was cancelled on Kite")]
    Cancelled,
    /// Ctrl-C: exit 130.
    #[error("interrupted")]
    Aborted,
    /// The user pressed `p`: the caller asks for the redirected URL instead.
    #[error("the user chose to paste the redirected URL")]
    PasteRequested,
    #[error("the listener failed: {detail}")]
    Io { detail: String },
}

impl WaitError {
    /// The fix as a run of the default live profile would read it (tests; commands
    /// render `fix()` with their run's flags).
    pub fn hint(&self) -> String {
        self.fix().render(&RunFlags::default())
    }

    pub fn fix(&self) -> Fix {
        match self {
            Self::Timeout { redirect_url } => Fix::text(format!(
                "check that the app's redirect URL in the Kite console is exactly {redirect_url}; or run "
            ))
            .and_run("login --paste")
            .and(" and paste the URL the browser lands on"),
            Self::Cancelled => Fix::text("run ")
                .and_run("login")
                .and(" again and authorise the app on Kite"),
            Self::Aborted => Fix::default(),
            Self::PasteRequested => "paste the URL from the browser's address bar".into(),
            Self::Io { .. } => Fix::text("retry, or use ").and_run("login --paste"),
        }
    }
}

impl From<WaitError> for crate::error::Error {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::Aborted => Self::Interrupted,
            other => Self::failed(other.to_string(), other.fix()),
        }
    }
}

impl From<ListenError> for crate::error::Error {
    fn from(e: ListenError) -> Self {
        Self::failed(e.to_string(), e.fix())
    }
}

impl From<CallbackError> for crate::error::Error {
    fn from(e: CallbackError) -> Self {
        Self::failed(e.to_string(), e.fix())
    }
}

impl From<super::RedirectUrlError> for crate::error::Error {
    fn from(e: super::RedirectUrlError) -> Self {
        Self::usage(e.to_string(), e.fix())
    }
}

/// A bound listener for one login.
pub struct Listener {
    server: Server,
    target: RedirectTarget,
    nonce: String,
    addr: SocketAddr,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("target", &self.target.to_string())
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Binds `addr`, retrying "address in use" for up to half a second: tiny_http closes a
/// finished listener's socket from its accept thread, a moment after `wait` returns, so a
/// retried login on the same port (init's "try again") would otherwise find it busy.
fn bind_retrying(addr: SocketAddr) -> io::Result<TcpListener> {
    let until = SystemMonotonic.now() + std::time::Duration::from_millis(500);
    loop {
        // The one place that binds the redirect listener.
        #[allow(clippy::disallowed_methods)]
        let bound = TcpListener::bind(addr);
        match bound {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && SystemMonotonic.now() < until => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

impl Listener {
    /// Binds exactly the target's address and port.
    pub fn bind(target: &RedirectTarget, nonce: String) -> Result<Self, ListenError> {
        let addr = target.socket_addr();
        let socket = bind_retrying(addr).map_err(|e| match e.kind() {
            io::ErrorKind::AddrInUse => ListenError::PortBusy {
                ip: addr.ip().to_string(),
                port: addr.port(),
            },
            io::ErrorKind::AddrNotAvailable => ListenError::AddrNotAvailable {
                addr: addr.to_string(),
            },
            io::ErrorKind::PermissionDenied => ListenError::PermissionDenied { port: addr.port() },
            _ => ListenError::Io {
                addr: addr.to_string(),
                detail: e.to_string(),
            },
        })?;
        let addr = socket.local_addr().unwrap_or(addr);
        let server = Server::from_listener(socket, None).map_err(|e| ListenError::Io {
            addr: addr.to_string(),
            detail: e.to_string(),
        })?;
        Ok(Self {
            server,
            target: target.clone(),
            nonce,
            addr,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until this login's callback arrives, the deadline passes, or the user asks to
    /// paste or to abort. `ui.tick` runs about every 100 ms, and `ui.finish` once at the
    /// end whatever the outcome. The listener closes when this returns.
    pub fn wait(self, deadline: Instant, ui: &mut dyn WaitUi) -> Result<Callback, WaitError> {
        let result = self.wait_inner(deadline, ui);
        ui.finish();
        result
    }

    fn wait_inner(&self, deadline: Instant, ui: &mut dyn WaitUi) -> Result<Callback, WaitError> {
        loop {
            let remaining = deadline.saturating_duration_since(SystemMonotonic.now());
            match ui.tick(remaining) {
                WaitControl::Continue => {}
                WaitControl::Paste => return Err(WaitError::PasteRequested),
                WaitControl::Abort => return Err(WaitError::Aborted),
            }
            if remaining.is_zero() {
                return Err(WaitError::Timeout {
                    redirect_url: self.target.to_string(),
                });
            }
            let request = self
                .server
                .recv_timeout(remaining.min(SLICE))
                .map_err(|e| WaitError::Io {
                    detail: e.to_string(),
                })?;
            if let Some(request) = request {
                match self.judge(&request) {
                    Verdict::Reject(status, text) => reply_text(request, status, text),
                    Verdict::Accept(callback) => {
                        reply_page(request, SUCCESS_PAGE);
                        return Ok(callback);
                    }
                    Verdict::Cancelled => {
                        reply_page(request, CANCELLED_PAGE);
                        return Err(WaitError::Cancelled);
                    }
                }
            }
        }
    }

    fn judge(&self, request: &Request) -> Verdict {
        if *request.method() != Method::Get {
            return Verdict::Reject(405, "Only GET is answered here.".into());
        }
        let mut hosts = request
            .headers()
            .iter()
            .filter(|h| h.field.equiv("Host"))
            .map(|h| h.value.as_str());
        let host_ok = match (hosts.next(), hosts.next()) {
            (Some(h), None) => self.target.host_header_matches(h),
            _ => false,
        };
        if !host_ok {
            return Verdict::Reject(400, "Wrong Host header.".into());
        }
        let url = request.url();
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        if path != self.target.path() {
            return Verdict::Reject(404, "Not found.".into());
        }
        match check_listener_query(query, &self.nonce) {
            Ok(_) if header_bytes(request) > MAX_HEADER_BYTES => {
                Verdict::Reject(431, "Request header fields too large.".into())
            }
            Ok(callback) => Verdict::Accept(callback),
            Err(CallbackError::Cancelled) => Verdict::Cancelled,
            Err(CallbackError::NonceMismatch) => Verdict::Reject(
                400,
                "This request does not belong to the login kite-setup is waiting for. If you cancelled the login on Kite, press Ctrl-C in the terminal.".into(),
            ),
            Err(e) => Verdict::Reject(
                400,
                format!("kite-setup did not accept this redirect: {e}. It is still waiting; log in again from the page it opened."),
            ),
        }
    }
}

/// The size of a request's head: the URL and every header line.
fn header_bytes(request: &Request) -> usize {
    request
        .headers()
        .iter()
        .map(|h| h.field.as_str().as_str().len() + h.value.as_str().len() + 4)
        .sum::<usize>()
        + request.url().len()
}

enum Verdict {
    Reject(u16, String),
    Accept(Callback),
    Cancelled,
}

const SUCCESS_PAGE: &str =
    "kite-setup received the login; you can close this tab and return to the terminal.";
const CANCELLED_PAGE: &str =
    "kite-setup received the cancellation; you can close this tab and return to the terminal.";

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static ASCII header")
}

fn common_headers() -> [Header; 4] {
    [
        header("Cache-Control", "no-store"),
        header("Referrer-Policy", "no-referrer"),
        header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'",
        ),
        header("X-Content-Type-Options", "nosniff"),
    ]
}

fn reply_page(request: Request, message: &str) {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>kite-setup</title>\
         <style>body{{font-family:sans-serif;margin:4em auto;max-width:36em;}}</style></head>\
         <body><p>{message}</p></body></html>\n"
    );
    let mut response = Response::from_string(body)
        .with_header(header("Content-Type", "text/html; charset=utf-8"))
        .with_header(header("Connection", "close"));
    for h in common_headers() {
        response.add_header(h);
    }
    // The browser may already be gone; the login is ours either way.
    let _ = request.respond(response);
}

fn reply_text(request: Request, status: u16, text: String) {
    let mut response = Response::from_string(text + "\n")
        .with_status_code(status)
        .with_header(header("Content-Type", "text/plain; charset=utf-8"));
    if status == 405 {
        response.add_header(header("Allow", "GET"));
    }
    for h in common_headers() {
        response.add_header(h);
    }
    let _ = request.respond(response);
}
