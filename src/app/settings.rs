//! Run settings, resolved once and purely from the parsed arguments and one snapshot of
//! the environment (clap's structs are the "low" arguments, [`Settings`] the "high"
//! ones the run uses). Nothing here reads the process environment: [`EnvSnapshot`] is
//! taken by `adapters`, so every rule below is a unit test away.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::GlobalArgs;
use crate::commands::regenerate::Step;
use crate::error::{Error, RunFlags};
use crate::redirect::BrowserEnv;

/// What the run may know of its environment, read once. Not `Debug`: the variables may
/// hold a token (`KITE_ACCESS_TOKEN`).
#[derive(Default)]
pub struct EnvSnapshot {
    pub vars: HashMap<OsString, OsString>,
    pub stdin_tty: bool,
    pub stderr_tty: bool,
    /// The platform's config and data directories, the fallbacks of the variables.
    pub platform_config_dir: Option<PathBuf>,
    pub platform_data_dir: Option<PathBuf>,
    pub home: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
    /// A graphical session is possible on this platform without `$DISPLAY` (macOS,
    /// Windows).
    pub display_without_vars: bool,
}

impl EnvSnapshot {
    /// A variable's value as text, when set and not empty.
    fn text(&self, name: &str) -> Option<String> {
        self.vars
            .get(&OsString::from(name))
            .and_then(|v| v.to_str())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    fn is_set(&self, name: &str) -> bool {
        self.vars.contains_key(&OsString::from(name))
    }

    fn is_set_nonempty(&self, name: &str) -> bool {
        self.vars
            .get(&OsString::from(name))
            .is_some_and(|v| !v.is_empty())
    }

    fn path(&self, name: &str) -> Option<PathBuf> {
        self.vars
            .get(&OsString::from(name))
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }
}

/// Everything a run decides before it starts, once.
pub struct Settings {
    /// The flags a suggested command repeats.
    pub flags: RunFlags,
    pub stdin_tty: bool,
    pub stderr_tty: bool,
    /// A person can be asked: a terminal on stdin and stderr, and no `--no-input`.
    pub interactive: bool,
    /// Colour on stderr: a terminal, and `NO_COLOR` unset or empty.
    pub color: bool,
    /// The whole-call timeout for Kite's API (`KITE_SETUP_HTTP_TIMEOUT_SECS`).
    pub http_timeout: Duration,
    /// The per-call keyring timeout (`KITE_SETUP_KEYRING_TIMEOUT_SECS`).
    pub keyring_timeout: Duration,
    /// How long to wait for another process's lock (`KITE_SETUP_LOCK_WAIT_SECS`).
    pub lock_wait: Duration,
    config_dir: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    pub browser_env: BrowserEnv,
    /// A browser can be opened here (`$BROWSER`, or a display and no SSH session).
    pub browser_available: bool,
    /// Where the leak scans start.
    pub cwd: PathBuf,
    pub home: Option<PathBuf>,
    pub histfile: Option<PathBuf>,
    /// The names of the variables set now (`exec` removes stale `KITE_*` ones).
    pub var_names: Vec<OsString>,
    /// `KITE_SETUP_TEST_ABORT_AFTER` as set (debug builds only), parsed on use.
    abort_after: Option<String>,
    /// `KITE_SETUP_SSH_COMMAND`: the ssh client `push` runs (default `ssh`).
    pub ssh_command: Option<String>,
    /// The client address of the SSH session this runs in (`SSH_CONNECTION`'s first
    /// field), and the whole variable (`login` prints the tunnel command from it).
    pub ssh_connection: Option<String>,
    /// `-v` given.
    pub verbose: bool,
    /// `USER`, for the `ssh -L` command a login in an SSH session prints.
    pub user: Option<String>,
}

/// A whole number of seconds (1-600) from a variable, if set and valid.
fn secs(env: &EnvSnapshot, name: &str) -> Option<Duration> {
    env.text(name)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| (1..=600).contains(s))
        .map(Duration::from_secs)
}

/// The pure rule from arguments and environment to settings.
pub fn resolve(global: &GlobalArgs, env: &EnvSnapshot) -> Settings {
    let interactive = !global.no_input && env.stdin_tty && env.stderr_tty;
    let color = env.stderr_tty && !env.is_set_nonempty("NO_COLOR");
    let browser_env = BrowserEnv {
        browser: env.text("BROWSER").filter(|b| !b.trim().is_empty()),
        has_display: env.display_without_vars
            || env.is_set_nonempty("DISPLAY")
            || env.is_set_nonempty("WAYLAND_DISPLAY"),
        ssh: env.is_set("SSH_CONNECTION") || env.is_set("SSH_TTY"),
    };
    let browser_available =
        browser_env.browser.is_some() || (browser_env.has_display && !browser_env.ssh);
    let abort_after = if cfg!(debug_assertions) {
        env.text("KITE_SETUP_TEST_ABORT_AFTER")
    } else {
        None
    };
    Settings {
        flags: RunFlags::new(
            &global.profile,
            global.sandbox,
            global.sandbox_url.as_deref(),
        ),
        stdin_tty: env.stdin_tty,
        stderr_tty: env.stderr_tty,
        interactive,
        color,
        http_timeout: secs(env, "KITE_SETUP_HTTP_TIMEOUT_SECS")
            .unwrap_or(crate::kite::client::TOTAL_TIMEOUT),
        keyring_timeout: secs(env, "KITE_SETUP_KEYRING_TIMEOUT_SECS")
            .unwrap_or(crate::store::DEFAULT_TIMEOUT),
        lock_wait: secs(env, "KITE_SETUP_LOCK_WAIT_SECS").unwrap_or(crate::lock::DEFAULT_WAIT),
        config_dir: env.path("KITE_SETUP_CONFIG_DIR").or_else(|| {
            env.platform_config_dir
                .as_ref()
                .map(|d| d.join("kite-setup"))
        }),
        data_dir: env
            .path("KITE_SETUP_DATA_DIR")
            .or_else(|| env.platform_data_dir.as_ref().map(|d| d.join("kite-setup"))),
        browser_env,
        browser_available,
        cwd: env.cwd.clone().unwrap_or_else(|| PathBuf::from(".")),
        home: env.home.clone(),
        histfile: env.path("HISTFILE"),
        var_names: env.vars.keys().cloned().collect(),
        abort_after,
        ssh_command: env.text("KITE_SETUP_SSH_COMMAND"),
        ssh_connection: env.text("SSH_CONNECTION"),
        verbose: global.verbose > 0,
        user: env.text("USER"),
    }
}

impl Settings {
    /// The SSH client's address, when this runs in an SSH session.
    pub fn ssh_client(&self) -> Option<&str> {
        self.ssh_connection
            .as_deref()
            .and_then(|c| c.split_whitespace().next())
    }
}

impl Settings {
    pub fn config_dir(&self) -> Result<PathBuf, Error> {
        self.config_dir.clone().ok_or_else(|| {
            Error::failed(
                "no config directory on this system",
                "set KITE_SETUP_CONFIG_DIR to a private directory",
            )
        })
    }

    pub fn data_dir(&self) -> Result<PathBuf, Error> {
        self.data_dir.clone().ok_or_else(|| {
            Error::failed(
                "no data directory on this system",
                "set KITE_SETUP_DATA_DIR",
            )
        })
    }

    /// The crash-test hook of `regenerate`: `KITE_SETUP_TEST_ABORT_AFTER=<step>` makes the
    /// process abort right after that step of a rotation is persisted, as a `kill -9`
    /// would (tests/regenerate_cli.rs). Debug builds only (which is what `cargo test`
    /// runs): a release binary never reads the variable, so nobody's rotation can be cut
    /// short by a stray environment. An unknown step name is a usage error, not ignored.
    pub fn abort_after(&self) -> Result<Option<Step>, Error> {
        let Some(v) = &self.abort_after else {
            return Ok(None);
        };
        Step::parse(v).map(Some).ok_or_else(|| {
            Error::usage(
                format!("KITE_SETUP_TEST_ABORT_AFTER={v:?} is not a rotation step"),
                "use captured, verified, swapped, revoked or done (a test hook; unset it)",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn global(args: &[&str]) -> GlobalArgs {
        let mut line = vec!["kite-setup"];
        line.extend_from_slice(args);
        line.push("token");
        crate::cli::Cli::try_parse_from(line).unwrap().global
    }

    fn env(vars: &[(&str, &str)]) -> EnvSnapshot {
        EnvSnapshot {
            vars: vars
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v)))
                .collect(),
            stdin_tty: true,
            stderr_tty: true,
            platform_config_dir: Some("/home/u/.config".into()),
            platform_data_dir: Some("/home/u/.local/share".into()),
            ..EnvSnapshot::default()
        }
    }

    #[test]
    fn asking_needs_both_terminals_and_no_no_input() {
        assert!(resolve(&global(&[]), &env(&[])).interactive);
        assert!(!resolve(&global(&["--no-input"]), &env(&[])).interactive);
        let mut e = env(&[]);
        e.stdin_tty = false;
        assert!(!resolve(&global(&[]), &e).interactive);
    }

    #[test]
    fn no_color_only_counts_when_not_empty() {
        assert!(resolve(&global(&[]), &env(&[])).color);
        assert!(!resolve(&global(&[]), &env(&[("NO_COLOR", "1")])).color);
        assert!(resolve(&global(&[]), &env(&[("NO_COLOR", "")])).color);
    }

    #[test]
    fn timeouts_take_whole_seconds_in_range_or_the_default() {
        let s = resolve(
            &global(&[]),
            &env(&[("KITE_SETUP_HTTP_TIMEOUT_SECS", " 7 ")]),
        );
        assert_eq!(s.http_timeout, Duration::from_secs(7));
        for bad in ["0", "601", "x", ""] {
            let s = resolve(
                &global(&[]),
                &env(&[("KITE_SETUP_KEYRING_TIMEOUT_SECS", bad)]),
            );
            assert_eq!(s.keyring_timeout, crate::store::DEFAULT_TIMEOUT, "{bad:?}");
        }
    }

    #[test]
    fn directories_come_from_the_variables_then_the_platform() {
        let s = resolve(&global(&[]), &env(&[("KITE_SETUP_CONFIG_DIR", "/c")]));
        assert_eq!(s.config_dir().unwrap(), PathBuf::from("/c"));
        assert_eq!(
            s.data_dir().unwrap(),
            PathBuf::from("/home/u/.local/share/kite-setup")
        );
        let mut e = env(&[("KITE_SETUP_DATA_DIR", "")]);
        e.platform_data_dir = None;
        assert_eq!(
            resolve(&global(&[]), &e)
                .data_dir()
                .unwrap_err()
                .exit_code(),
            1
        );
    }

    #[test]
    fn a_browser_is_available_with_browser_or_a_local_display() {
        let s = resolve(&global(&[]), &env(&[("DISPLAY", ":0")]));
        assert!(s.browser_available && s.browser_env.has_display);
        let s = resolve(
            &global(&[]),
            &env(&[("DISPLAY", ":0"), ("SSH_TTY", "/dev/pts/1")]),
        );
        assert!(!s.browser_available);
        let s = resolve(
            &global(&[]),
            &env(&[("SSH_TTY", "x"), ("BROWSER", "firefox")]),
        );
        assert!(s.browser_available);
        let s = resolve(&global(&[]), &env(&[("BROWSER", "  ")]));
        assert!(!s.browser_available && s.browser_env.browser.is_none());
    }

    #[test]
    fn the_run_flags_repeat_profile_and_sandbox_choice() {
        let s = resolve(
            &global(&["--profile", "mum", "--sandbox-url", "http://127.0.0.1:6000"]),
            &env(&[]),
        );
        assert_eq!(
            s.flags.prefix(),
            " --sandbox-url http://127.0.0.1:6000 --profile mum"
        );
    }

    #[test]
    fn the_abort_hook_parses_on_use() {
        let s = resolve(
            &global(&[]),
            &env(&[("KITE_SETUP_TEST_ABORT_AFTER", "swapped")]),
        );
        assert_eq!(s.abort_after().unwrap(), Some(Step::Swapped));
        let s = resolve(
            &global(&[]),
            &env(&[("KITE_SETUP_TEST_ABORT_AFTER", "later")]),
        );
        assert_eq!(s.abort_after().unwrap_err().exit_code(), 2);
        assert_eq!(
            resolve(&global(&[]), &env(&[])).abort_after().unwrap(),
            None
        );
    }
}
