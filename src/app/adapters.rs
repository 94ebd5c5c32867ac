//! The real adapters this process runs with, and the one snapshot of its environment.
#![allow(clippy::disallowed_methods)] // the composition root's adapters: the environment (read once), git and the free-port probe of `Machine`

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::cli::StoreChoice;
use crate::commands::{Machine, StoreProvider};
use crate::kite::Endpoints;
use crate::kite::client::HttpKite;
use crate::store::{Store, StoreError};

use super::settings::EnvSnapshot;

impl EnvSnapshot {
    /// Reads the process's environment, once per run.
    pub fn capture() -> Self {
        use std::io::IsTerminal;
        Self {
            vars: std::env::vars_os().collect(),
            stdin_tty: std::io::stdin().is_terminal(),
            stderr_tty: std::io::stderr().is_terminal(),
            platform_config_dir: dirs::config_dir(),
            platform_data_dir: dirs::data_dir(),
            home: dirs::home_dir(),
            cwd: std::env::current_dir().ok(),
            display_without_vars: !cfg!(any(
                target_os = "linux",
                target_os = "freebsd",
                target_os = "openbsd",
                target_os = "netbsd"
            )),
        }
    }
}

/// Reads one line from standard input, without its line ending.
pub(super) fn read_stdin_line() -> std::io::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    // Cut the line ending in place: the line may be a secret, and a trimmed copy
    // would leave the original buffer behind unwiped.
    let len = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(len);
    Ok(line)
}

/// A store and the choice it really is (sandbox mode may fall back to a file).
type OpenedStore = (Arc<dyn Store>, StoreChoice);

/// The real stores, opened once each per process.
pub(super) struct RealStores {
    pub(super) config_dir: PathBuf,
    pub(super) sandbox: bool,
    pub(super) cache: RefCell<HashMap<StoreChoice, OpenedStore>>,
    pub(super) timeout: Duration,
}

impl StoreProvider for RealStores {
    fn open(&self, choice: StoreChoice) -> Result<(Arc<dyn Store>, StoreChoice), StoreError> {
        if let Some(hit) = self.cache.borrow().get(&choice) {
            return Ok(hit.clone());
        }
        if choice == StoreChoice::SandboxFile && !self.sandbox {
            // Only a sandbox profile can have recorded it; a live one never uses it.
            return Err(StoreError::Unavailable {
                backend: "sandbox-only file store".into(),
                detail: "it holds sandbox profiles only".into(),
            });
        }
        let opened =
            match crate::store::backends::open_store(choice, &self.config_dir, self.timeout) {
                Ok(s) => (Arc::from(s), choice),
                Err(StoreError::Unavailable { .. })
                    if self.sandbox && choice == StoreChoice::Auto =>
                {
                    // Recorded as its own choice, so later commands open this same file.
                    let fallback = StoreChoice::SandboxFile;
                    let s = crate::store::backends::open_store(
                        fallback,
                        &self.config_dir,
                        self.timeout,
                    )?;
                    let opened: OpenedStore = (Arc::from(s), fallback);
                    self.cache.borrow_mut().insert(fallback, opened.clone());
                    opened
                }
                Err(e) => return Err(e),
            };
        self.cache.borrow_mut().insert(choice, opened.clone());
        Ok(opened)
    }
}

/// The HTTP client, built on first use: `token`, `env` and `exec` never talk to Kite, and
/// building a TLS client (loading the system's root certificates) would cost them time.
pub(super) struct LazyKite {
    pub(super) endpoints: Endpoints,
    /// The whole-call timeout (`KITE_SETUP_HTTP_TIMEOUT_SECS`, default 15 s).
    pub(super) timeout: Duration,
    pub(super) client: std::sync::OnceLock<Result<HttpKite, crate::kite::KiteError>>,
}

impl LazyKite {
    fn get(&self) -> Result<&HttpKite, crate::kite::KiteError> {
        self.client
            .get_or_init(|| {
                HttpKite::with_timeouts(
                    self.endpoints.clone(),
                    crate::kite::client::CONNECT_TIMEOUT.min(self.timeout),
                    self.timeout,
                )
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl crate::kite::Kite for LazyKite {
    fn create_session(
        &self,
        api_key: &crate::secret::Secret,
        request_token: &str,
        api_secret: &crate::secret::Secret,
    ) -> Result<crate::kite::SessionData, crate::kite::KiteError> {
        self.get()?
            .create_session(api_key, request_token, api_secret)
    }

    fn profile(
        &self,
        api_key: &crate::secret::Secret,
        access_token: &crate::secret::Secret,
    ) -> Result<crate::kite::UserProfile, crate::kite::KiteError> {
        self.get()?.profile(api_key, access_token)
    }

    fn invalidate(
        &self,
        api_key: &crate::secret::Secret,
        access_token: &crate::secret::Secret,
    ) -> Result<(), crate::kite::KiteError> {
        self.get()?.invalidate(api_key, access_token)
    }

    fn server_time(&self) -> Result<jiff::Timestamp, crate::kite::KiteError> {
        self.get()?.server_time()
    }

    fn reachable(&self, url: &Url) -> Result<(), crate::kite::KiteError> {
        self.get()?.reachable(url)
    }
}

/// This machine's host name, which `push` tells the server it came from (not secret).
pub(super) fn host_name() -> String {
    #[cfg(unix)]
    {
        rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned()
    }
    #[cfg(not(unix))]
    {
        std::env::var("COMPUTERNAME").unwrap_or_default()
    }
}

/// This machine: the places from the run's settings, ports and git asked live.
pub(super) struct RealMachine {
    pub(super) cwd: PathBuf,
    pub(super) home: Option<PathBuf>,
    pub(super) histfile: Option<PathBuf>,
    /// The in-process sandbox's state file (it holds the demo world's secrets).
    pub(super) sandbox_state: Option<PathBuf>,
}

impl Machine for RealMachine {
    fn is_port_free(&self, port: u16) -> bool {
        is_port_free(port)
    }
    fn in_git_worktree_unignored(&self, path: &std::path::Path) -> Option<bool> {
        in_git_worktree_unignored(path)
    }
    fn cwd(&self) -> &std::path::Path {
        &self.cwd
    }
    fn home(&self) -> Option<&std::path::Path> {
        self.home.as_deref()
    }
    fn histfile(&self) -> Option<&std::path::Path> {
        self.histfile.as_deref()
    }
    fn own_files(&self) -> Vec<PathBuf> {
        self.sandbox_state.iter().cloned().collect()
    }
}

/// Whether a loopback port can be bound right now.
fn is_port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// `Some(true)` when `path` is inside a git work tree and git does not ignore it;
/// `None` when git cannot tell (not a repo, no git).
fn in_git_worktree_unignored(path: &std::path::Path) -> Option<bool> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    let dir = abs.parent()?;
    let inside = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--is-inside-work-tree"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !inside.status.success() || String::from_utf8_lossy(&inside.stdout).trim() != "true" {
        return None;
    }
    let ignored = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["check-ignore", "-q", "--no-index", "--"])
        .arg(&abs)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    Some(!ignored.success())
}
