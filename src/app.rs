//! The composition root: the one place that reads the environment, decides whether
//! prompting is possible, builds the real adapters, dispatches, and renders errors
//! (`error:` + `hint:` on stderr) and exit codes.
#![allow(clippy::disallowed_methods)] // the one module allowed to read the environment

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use url::Url;

use crate::cli::{Cli, Command, GlobalArgs, StoreChoice};
use crate::clock::SystemClock;
use crate::commands::{self, Ctx, SandboxControl, StoreProvider};
use crate::error::{Error, RunFlags, exit};
use crate::kite::Endpoints;
use crate::kite::client::HttpKite;
use crate::profile::ConfigFile;
use crate::prompt::{NoInputPrompter, Prompter, TerminalPrompter};
use crate::redirect::{Browser, BrowserEnv, NoTtyWaitUi, SystemBrowser, TerminalWaitUi, WaitUi};
use crate::sandbox_client::{SandboxClient, SelfPlayBrowser};
use crate::store::{Store, StoreError};
use crate::ui::Ui;

/// Where a sandbox is looked for before one is started in-process.
pub const DEFAULT_SANDBOX_URL: &str = "http://127.0.0.1:5010";

/// How long a call to the sandbox's control API may take (it is local).
const SANDBOX_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `--sandbox` waits for a sandbox at the default address before starting one.
const SANDBOX_PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// The line Ctrl-C ends a run with (from the signal handler, or a prompt that saw it).
/// Every write is one keyring call or an atomic rename, so none is ever half done; a
/// rotation step already persisted stays (and `regenerate --resume` continues it).
const INTERRUPTED_LINE: &str = "interrupted: no partial changes were made";

/// Parses `args` and runs the command. Keeps no global state besides the process-wide
/// core-dump limit, signal handler and TLS provider.
pub fn run<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    harden_process();
    match dispatch(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let flags = RunFlags::new(
                &cli.global.profile,
                cli.global.sandbox,
                cli.global.sandbox_url.as_deref(),
            );
            render_error(&e, cli.global.verbose, &flags);
            ExitCode::from(e.exit_code())
        }
    }
}

/// The core-dump limits the user had (soft, hard), saved before kite-setup lowers its own,
/// so `exec` can give them back to the child.
#[cfg(unix)]
static USER_CORE_LIMIT: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();

/// No core dumps (a crash must not write secrets to disk), and Ctrl-C/SIGTERM/SIGHUP
/// restore the terminal (echo, cursor) and exit 128+signal (130, 143, 129) without
/// touching stored state: every write kite-setup makes is a single keyring call or an
/// atomic rename. Only the soft core limit is lowered: the hard one stays, so `exec` can
/// hand the child the limit the user had.
fn harden_process() {
    #[cfg(unix)]
    {
        if let Ok((soft, hard)) = rlimit::getrlimit(rlimit::Resource::CORE) {
            let _ = USER_CORE_LIMIT.set((soft, hard));
            let _ = rlimit::setrlimit(rlimit::Resource::CORE, 0, hard);
        } else {
            let _ = rlimit::setrlimit(rlimit::Resource::CORE, 0, 0);
        }
    }
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let saved = rustix::termios::tcgetattr(rustix::stdio::stdin()).ok();
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        let _ = std::thread::Builder::new()
            .name("kite-setup-signals".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    if let Some(t) = &saved {
                        let _ = rustix::termios::tcsetattr(
                            rustix::stdio::stdin(),
                            rustix::termios::OptionalActions::Now,
                            t,
                        );
                    }
                    let code = if sig == SIGTERM {
                        exit::TERMINATED
                    } else if sig == SIGHUP {
                        exit::HANGUP
                    } else {
                        exit::INTERRUPTED
                    };
                    interrupted_exit(code);
                }
            });
    }
    #[cfg(not(unix))]
    let _ = ctrlc::set_handler(|| interrupted_exit(exit::INTERRUPTED));
}

/// How long an interrupted run waits for its keyring probe entry to be deleted.
const PROBE_CLEANUP_WAIT: Duration = Duration::from_secs(2);

/// Deletes a keyring probe entry in flight, shows the cursor again, says what is true,
/// and exits with `code`.
fn interrupted_exit(code: u8) -> ! {
    crate::store::backends::remove_interrupted_probe(PROBE_CLEANUP_WAIT);
    let mut err = std::io::stderr();
    let _ = write!(err, "\x1b[?25h\n{INTERRUPTED_LINE}\n");
    let _ = err.flush();
    std::process::exit(i32::from(code));
}

/// Gives this process back the core-dump limit the user had, right before `exec` replaces
/// it with the user's command (which should dump core as the user configured).
fn restore_core_limit() {
    #[cfg(unix)]
    if let Some(&(soft, hard)) = USER_CORE_LIMIT.get() {
        let _ = rlimit::setrlimit(rlimit::Resource::CORE, soft, hard);
    }
}

/// `error:` and `hint:` lines; with `-v`, also the typed error as the code sees it (its
/// `Debug` form: secrets inside are `Secret`s and print as `[REDACTED]`).
fn render_error(e: &Error, verbose: u8, flags: &RunFlags) {
    let mut err = std::io::stderr().lock();
    if matches!(e, Error::Interrupted) {
        let _ = writeln!(err, "\n{INTERRUPTED_LINE}");
        return;
    }
    let _ = writeln!(err, "error: {e}");
    if let Some(hint) = e.hint(flags) {
        let _ = writeln!(err, "hint: {hint}");
    }
    if verbose > 0 {
        let _ = writeln!(err, "detail: {e:?}");
    }
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// A whole number of seconds from `name` (for tests and slow links), if set and valid.
fn env_secs(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| (1..=600).contains(s))
        .map(Duration::from_secs)
}

/// The whole-call timeout for Kite's API: `KITE_SETUP_HTTP_TIMEOUT_SECS` (1-600) or 15 s.
fn http_timeout() -> Duration {
    env_secs("KITE_SETUP_HTTP_TIMEOUT_SECS").unwrap_or(crate::kite::client::TOTAL_TIMEOUT)
}

/// The per-call keyring timeout: `KITE_SETUP_KEYRING_TIMEOUT_SECS` (1-600) or 10 s.
fn keyring_timeout() -> Duration {
    env_secs("KITE_SETUP_KEYRING_TIMEOUT_SECS").unwrap_or(crate::store::DEFAULT_TIMEOUT)
}

fn config_dir() -> Result<PathBuf, Error> {
    env_path("KITE_SETUP_CONFIG_DIR")
        .or_else(|| dirs::config_dir().map(|d| d.join("kite-setup")))
        .ok_or_else(|| {
            Error::failed(
                "no config directory on this system",
                "set KITE_SETUP_CONFIG_DIR to a private directory",
            )
        })
}

fn data_dir() -> Result<PathBuf, Error> {
    env_path("KITE_SETUP_DATA_DIR")
        .or_else(|| dirs::data_dir().map(|d| d.join("kite-setup")))
        .ok_or_else(|| {
            Error::failed(
                "no data directory on this system",
                "set KITE_SETUP_DATA_DIR",
            )
        })
}

fn dispatch(cli: &Cli) -> Result<u8, Error> {
    match &cli.command {
        Command::Completions(a) => {
            let mut cmd = Cli::command();
            clap_complete::generate(a.shell, &mut cmd, "kite-setup", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Sandbox(a) => {
            crate::sandbox::run(a, cli.global.json, data_dir()?.join("sandbox.json"))
                .map(|()| exit::OK)
        }
        _ => with_context(&cli.global, |ctx| run_command(ctx, &cli.command)),
    }
}

fn run_command(ctx: &Ctx<'_>, command: &Command) -> Result<u8, Error> {
    match command {
        Command::Init(a) => commands::init::run(ctx, a, &is_port_free),
        Command::Login(a) => commands::login::run(ctx, a),
        Command::Token => commands::token::run(ctx),
        Command::Env(a) => commands::env::run(ctx, a, &in_git_worktree_unignored),
        Command::Exec(a) => commands::exec::run(
            ctx,
            a,
            std::env::vars_os().map(|(k, _)| k).collect(),
            &restore_core_limit,
        ),
        Command::Status(a) => commands::status::run(ctx, a),
        Command::Doctor => {
            let env = commands::doctor::DoctorEnv {
                cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
                home: dirs::home_dir(),
                histfile: env_path("HISTFILE"),
                is_port_free: &is_port_free,
            };
            commands::doctor::run(ctx, &env)
        }
        Command::Regenerate(a) => {
            let env = commands::regenerate::RegenerateEnv {
                cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
                home: dirs::home_dir(),
                histfile: env_path("HISTFILE"),
                abort_after: test_abort_after()?,
            };
            commands::regenerate::run(ctx, a, &env)
        }
        Command::Logout => commands::logout::logout(ctx),
        Command::Remove(a) => commands::logout::remove(ctx, a),
        Command::Sandbox(_) | Command::Completions(_) => {
            unreachable!("dispatched before a context is built")
        }
    }
}

/// The crash-test hook of `regenerate`: `KITE_SETUP_TEST_ABORT_AFTER=<step>` makes the
/// process abort right after that step of a rotation is persisted, as a `kill -9` would
/// (tests/regenerate_cli.rs). Compiled into debug builds only (which is what `cargo test`
/// runs): a release binary never reads the variable, so nobody's rotation can be cut short
/// by a stray environment. An unknown step name is a usage error, not silently ignored.
#[cfg(debug_assertions)]
fn test_abort_after() -> Result<Option<commands::regenerate::Step>, Error> {
    let Some(v) = std::env::var("KITE_SETUP_TEST_ABORT_AFTER")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    commands::regenerate::Step::parse(&v)
        .map(Some)
        .ok_or_else(|| {
            Error::usage(
                format!("KITE_SETUP_TEST_ABORT_AFTER={v:?} is not a rotation step"),
                "use captured, verified, swapped, revoked or done (a test hook; unset it)",
            )
        })
}

/// Release builds: the crash-test hook does not exist.
#[cfg(not(debug_assertions))]
#[allow(clippy::unnecessary_wraps)]
fn test_abort_after() -> Result<Option<commands::regenerate::Step>, Error> {
    Ok(None)
}

/// Where the sandbox is for this run, and the in-process one if we had to start it.
struct SandboxSetup {
    client: SandboxClient,
    _in_process: Option<crate::sandbox::SandboxHandle>,
}

fn resolve_sandbox(global: &GlobalArgs, ui: &Ui) -> Result<Option<SandboxSetup>, Error> {
    if let Some(u) = &global.sandbox_url {
        let url = Url::parse(u).map_err(|e| {
            Error::usage(
                format!("--sandbox-url {u:?} is not a URL: {e}"),
                "e.g. --sandbox-url http://127.0.0.1:5010",
            )
        })?;
        if !crate::kite::client::is_loopback(&url) {
            // The sandbox is local by definition; a remote "sandbox" would receive the
            // api_key, checksums and tokens of every sandbox profile.
            return Err(Error::usage(
                format!(
                    "--sandbox-url {u:?} is not a loopback address: a sandbox runs on this machine"
                ),
                "e.g. --sandbox-url http://127.0.0.1:5010 (start one with `kite-setup sandbox`)",
            ));
        }
        let client = SandboxClient::new(&url, SANDBOX_TIMEOUT)?;
        client.clock_offset().map_err(|_| {
            Error::failed(
                format!("no sandbox answers at {url}"),
                "start one with `kite-setup sandbox`, or use --sandbox to run one in-process",
            )
        })?;
        return Ok(Some(SandboxSetup {
            client,
            _in_process: None,
        }));
    }
    if !global.sandbox {
        return Ok(None);
    }
    let default = Url::parse(DEFAULT_SANDBOX_URL).expect("static URL");
    let probe = SandboxClient::new(&default, SANDBOX_PROBE_TIMEOUT)?;
    if probe.clock_offset().is_ok() {
        return Ok(Some(SandboxSetup {
            client: SandboxClient::new(&default, SANDBOX_TIMEOUT)?,
            _in_process: None,
        }));
    }
    let handle = crate::sandbox::start(
        crate::sandbox::SandboxOptions {
            addr: "127.0.0.1:0".into(),
            state_path: Some(data_dir()?.join("sandbox.json")),
            auto_approve: false,
        },
        Arc::new(SystemClock::default()),
    )?;
    handle.quiet();
    ui.say(format!(
        "(no sandbox at {DEFAULT_SANDBOX_URL}: started one in this process at {})",
        handle.url
    ));
    let client = SandboxClient::new(&handle.url, SANDBOX_TIMEOUT)?;
    Ok(Some(SandboxSetup {
        client,
        _in_process: Some(handle),
    }))
}

fn with_context<T>(
    global: &GlobalArgs,
    f: impl FnOnce(&Ctx<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    // A usage error before anything else: no sandbox started (and its state file
    // seeded), no keyring or network touched, for a profile that cannot exist.
    crate::profile::validate_profile_name(&global.profile)?;
    let stdin_tty = std::io::stdin().is_terminal();
    let stderr_tty = std::io::stderr().is_terminal();
    let interactive = !global.no_input && stdin_tty && stderr_tty;
    let color = stderr_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let ui = Ui::stdio(color);

    let sandbox = resolve_sandbox(global, &ui)?;
    let (endpoints, clock) = match &sandbox {
        Some(s) => (
            Endpoints::sandbox(s.client.base()),
            SystemClock::shifted(s.client.clock_offset()?),
        ),
        None => (Endpoints::live(), SystemClock::default()),
    };
    crate::kite::client::check_endpoint(&endpoints.api)?;
    let kite = LazyKite {
        endpoints: endpoints.clone(),
        timeout: http_timeout(),
        client: std::sync::OnceLock::new(),
    };
    let config = ConfigFile::new(config_dir()?);

    let browser_env = BrowserEnv {
        browser: std::env::var("BROWSER")
            .ok()
            .filter(|b| !b.trim().is_empty()),
        has_display: has_display(),
        ssh: std::env::var_os("SSH_CONNECTION").is_some() || std::env::var_os("SSH_TTY").is_some(),
    };
    let browser_available =
        browser_env.browser.is_some() || (browser_env.has_display && !browser_env.ssh);
    let browser = SystemBrowser::new(browser_env);
    let self_browser = sandbox.as_ref().map(|s| SelfPlayBrowser(s.client.clone()));

    let prompter: Box<dyn Prompter> = if interactive {
        Box::new(TerminalPrompter::new())
    } else {
        Box::new(NoInputPrompter)
    };
    let stores = RealStores {
        config_dir: config.dir.clone(),
        sandbox: sandbox.is_some(),
        cache: RefCell::default(),
        timeout: keyring_timeout(),
    };
    let wait_ui = move || -> Box<dyn WaitUi> {
        if stderr_tty && stdin_tty {
            Box::new(TerminalWaitUi::new(color))
        } else {
            Box::new(NoTtyWaitUi::new(std::io::stderr()))
        }
    };
    let read_line = || -> std::io::Result<String> {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        // Cut the line ending in place: the line may be a secret, and a trimmed copy
        // would leave the original buffer behind unwiped.
        let len = line.trim_end_matches(['\n', '\r']).len();
        line.truncate(len);
        Ok(line)
    };

    let ctx = Ctx {
        profile: global.profile.clone(),
        sandbox: sandbox.is_some(),
        sandbox_url: global.sandbox_url.clone(),
        interactive,
        json: global.json,
        store_flag: global.store,
        prompter: prompter.as_ref(),
        kite: &kite,
        endpoints,
        browser: &browser,
        clock: &clock,
        config,
        stores: &stores,
        ui: &ui,
        wait_ui: &wait_ui,
        sandbox_control: sandbox.as_ref().map(|s| &s.client as &dyn SandboxControl),
        read_stdin_line: &read_line,
        browser_available,
        self_browser: self_browser.as_ref().map(|b| b as &dyn Browser),
        self_play: std::cell::Cell::new(false),
    };
    f(&ctx)
}

#[cfg(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd"
))]
fn has_display() -> bool {
    std::env::var_os("DISPLAY").is_some_and(|v| !v.is_empty())
        || std::env::var_os("WAYLAND_DISPLAY").is_some_and(|v| !v.is_empty())
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd"
)))]
fn has_display() -> bool {
    true
}

/// A store and the choice it really is (sandbox mode may fall back to a file).
type OpenedStore = (Arc<dyn Store>, StoreChoice);

/// The real stores, opened once each per process.
struct RealStores {
    config_dir: PathBuf,
    sandbox: bool,
    cache: RefCell<HashMap<StoreChoice, OpenedStore>>,
    timeout: Duration,
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
struct LazyKite {
    endpoints: Endpoints,
    /// The whole-call timeout (`KITE_SETUP_HTTP_TIMEOUT_SECS`, default 15 s).
    timeout: Duration,
    client: std::sync::OnceLock<Result<HttpKite, crate::kite::KiteError>>,
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
