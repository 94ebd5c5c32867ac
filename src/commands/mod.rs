//! One module per command, each a `run(ctx, args)` over the seams in `Ctx`: no command
//! touches the terminal, the keyring, the network or the clock directly.

pub mod apps;
pub mod doctor;
pub mod env;
pub mod exec;
#[cfg(test)]
mod flow_tests;
pub mod handle;
pub mod import;
pub mod init;
pub mod login;
pub mod login_flow;
pub mod logout;
pub mod orders_probe;
pub mod plans;
pub mod push;
pub mod regenerate;
#[cfg(test)]
mod regenerate_tests;
pub mod remote;
#[cfg(test)]
mod ssh_flow_tests;
pub mod status;
pub mod token;
pub mod txn;

use std::path::Path;
use std::sync::Arc;

use crate::cli::StoreChoice;
use crate::clock::{Clock, Monotonic};
use crate::error::{Error, Fix, RunFlags};
use crate::kite::{Endpoints, Kite};
use crate::profile::{ConfigFile, ProfileMeta};
use crate::prompt::Prompter;
use crate::redirect::{Browser, RedirectPort, WaitUi};
use crate::store::{AppCredentials, Entries, Store, StoreError};
use crate::ui::Ui;

/// Facts about the machine that commands ask for: the real one is in `app`, tests give
/// their own.
pub trait Machine {
    /// Whether a loopback port can be bound right now.
    fn is_port_free(&self, port: u16) -> bool;
    /// `Some(true)` when `path` is inside a git work tree and git does not ignore it;
    /// `None` when git cannot tell (not a repo, no git).
    fn in_git_worktree_unignored(&self, path: &Path) -> Option<bool>;
    /// Where leak scans start (the git work tree around it).
    fn cwd(&self) -> &Path;
    fn home(&self) -> Option<&Path>;
    /// `$HISTFILE`.
    fn histfile(&self) -> Option<&Path>;
    /// Files kite-setup itself keeps values in besides the config dir's file stores (the
    /// in-process sandbox's state): the leak scan skips them.
    fn own_files(&self) -> Vec<std::path::PathBuf> {
        Vec::new()
    }
}

/// A machine made of plain values, for tests: the ports in `free_ports` are free, git
/// knows nothing.
#[cfg(test)]
pub struct TestMachine {
    pub cwd: std::path::PathBuf,
    pub home: Option<std::path::PathBuf>,
    pub histfile: Option<std::path::PathBuf>,
    pub free_ports: Vec<u16>,
}

#[cfg(test)]
impl Machine for TestMachine {
    fn is_port_free(&self, port: u16) -> bool {
        self.free_ports.contains(&port)
    }
    fn in_git_worktree_unignored(&self, _path: &Path) -> Option<bool> {
        None
    }
    fn cwd(&self) -> &Path {
        &self.cwd
    }
    fn home(&self) -> Option<&Path> {
        self.home.as_deref()
    }
    fn histfile(&self) -> Option<&Path> {
        self.histfile.as_deref()
    }
}

/// Opens the secret store a profile uses; the real one remembers what it opened.
pub trait StoreProvider {
    /// The store for `choice`, and the choice really used (sandbox mode may fall back to
    /// its own file store when no OS keyring exists, and says so).
    fn open(&self, choice: StoreChoice) -> Result<(Arc<dyn Store>, StoreChoice), StoreError>;
}

/// The sandbox's control API, for playing the browser's part on a headless machine.
pub trait SandboxControl {
    /// Creates an app for `client_id` like the console's form would.
    fn create_app(
        &self,
        client_id: &str,
        redirect_url: &str,
        plan: &str,
    ) -> Result<AppCredentials, Error>;
    /// Replaces the account's IP Whitelist, as its console's profile page would.
    fn set_ips(&self, client_id: &str, ips: &[&str]) -> Result<(), Error>;
    /// The client ID of the sandbox's demo account.
    fn demo_client_id(&self) -> Result<String, Error>;
    /// Creates a sandbox account for a family member to rehearse with and adds it to the
    /// client IDs of the app `api_key`, as the console's app page would; its client ID.
    /// (Its password and TOTP secret are never asked for: the sandbox approves its login.)
    fn add_family_account(&self, api_key: &str) -> Result<String, Error>;
}

/// The ports a command reaches the outside world through: real adapters in `app`, fakes
/// in the testkit.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    pub prompter: &'a dyn Prompter,
    pub kite: &'a dyn Kite,
    pub browser: &'a dyn Browser,
    pub clock: &'a dyn Clock,
    /// Deadlines and how long a wait lasted.
    pub monotonic: &'a dyn Monotonic,
    /// Where logins catch Kite's redirect.
    pub redirect: &'a dyn RedirectPort,
    pub stores: &'a dyn StoreProvider,
    /// Makes the spinner/countdown shown while waiting for the login redirect.
    pub wait_ui: &'a dyn Fn() -> Box<dyn WaitUi>,
    /// Present in sandbox mode.
    pub sandbox_control: Option<&'a dyn SandboxControl>,
    /// Reads one line from standard input (`--api-secret-stdin`, `--paste` without a TTY).
    pub read_stdin_line: &'a dyn Fn() -> std::io::Result<String>,
    /// Sandbox mode only: a "browser" that approves logins through the sandbox's control
    /// API, for headless machines.
    pub self_browser: Option<&'a dyn Browser>,
    /// Order readiness: the static IP probe per address family and the plan check.
    pub readiness: &'a dyn orders_probe::ReadinessPort,
}

/// Everything a command may use: this run's settings, its output and its ports.
#[derive(Clone)]
pub struct Ctx<'a> {
    pub profile: String,
    pub sandbox: bool,
    /// `--sandbox-url` when given: suggested commands repeat it.
    pub sandbox_url: Option<String>,
    /// A person can be asked (a terminal, and no --no-input).
    pub interactive: bool,
    pub json: bool,
    /// `--store` when given.
    pub store_flag: Option<StoreChoice>,
    pub endpoints: Endpoints,
    pub config: ConfigFile,
    pub ui: &'a Ui,
    /// A browser can be opened here ($BROWSER, or a display and no SSH session).
    pub browser_available: bool,
    /// The person let kite-setup play the browser's part (sandbox only): set on the copy
    /// of the context that [`Ctx::with_self_play`] returns.
    pub self_play: bool,
    pub ports: Ports<'a>,
}

impl<'a> Ctx<'a> {
    /// The browser logins go through: the real one, or the sandbox self-player.
    pub fn login_browser(&self) -> &dyn Browser {
        match self.ports.self_browser {
            Some(b) if self.self_play => b,
            _ => self.ports.browser,
        }
    }

    /// In sandbox mode without a browser, offers (or, without a terminal, decides) to
    /// play the browser's part. Returns the context the rest of the command runs with:
    /// this one with `self_play` set when self-play is on.
    pub fn with_self_play(&self) -> Result<Ctx<'a>, Error> {
        if self.self_play
            || self.ports.self_browser.is_none()
            || self.ports.sandbox_control.is_none()
            || self.browser_available
        {
            return Ok(self.clone());
        }
        let yes = if self.interactive {
            self.ui
                .say("No browser can be opened here (no display, or an SSH session).");
            self.ports.prompter.confirm(
                "Let kite-setup play the browser's part in the sandbox (create the app, approve the login)?",
                true,
            )?
        } else {
            self.ui.say("No browser can be opened here: kite-setup plays the browser's part in the sandbox.");
            true
        };
        Ok(Ctx {
            self_play: yes,
            ..self.clone()
        })
    }

    /// The run's profile's entries, on the app `config.toml` names for it now (a profile
    /// not there yet, or a file that cannot be read, gets the pre-sharing layout, where
    /// there is nothing to find; the command's own metadata load reports the file).
    pub fn entries(&self) -> Entries {
        let app = self.config.load().ok().and_then(|c| {
            c.get(&self.profile, self.sandbox)
                .and_then(|m| m.app.clone())
        });
        Entries::new(&self.profile, self.sandbox, app.as_deref())
    }

    /// The run's profile's entries as `meta` (being written, or read earlier) files them.
    pub fn entries_for(&self, meta: &ProfileMeta) -> Entries {
        Entries::new(&self.profile, self.sandbox, meta.app.as_deref())
    }

    /// `--profile NAME` as shown to people: sandbox profiles are marked.
    pub fn profile_label(&self) -> String {
        if self.sandbox {
            format!("{} (sandbox)", self.profile)
        } else {
            self.profile.clone()
        }
    }

    /// The profile's metadata, or "login needed" with the command that creates it (after
    /// dropping what a first `init` of it left when a kill cut it short, `txn::recover`).
    pub fn require_profile(&self) -> Result<ProfileMeta, Error> {
        let config = self.config.load()?;
        if config.get(&self.profile, self.sandbox).is_none() {
            txn::recover_uncommitted(self);
        }
        config
            .get(&self.profile, self.sandbox)
            .cloned()
            .ok_or_else(|| Error::NoProfile {
                profile: self.profile.clone(),
                sandbox: self.sandbox,
            })
    }

    /// The store `meta` records (or `--store`), and only that one: when sandbox mode
    /// would fall back to its own file because the OS keyring is gone, this profile's
    /// secrets are still in the keyring, so that is the error.
    pub fn open_recorded(&self, meta: &ProfileMeta) -> Result<Arc<dyn Store>, StoreError> {
        let choice = self.store_flag.unwrap_or(meta.store);
        match self.ports.stores.open(choice)? {
            (store, used) if used == choice => Ok(store),
            _ => Err(StoreError::Unavailable {
                backend: crate::store::backends::OS_BACKEND.into(),
                detail: format!(
                    "profile {} keeps its secrets there, and it cannot be reached",
                    self.profile_label()
                ),
            }),
        }
    }

    /// `plan` with kite-setup's own stores left out: the file stores in the config dir and
    /// the machine's other own files. They are where the values belong, not leaks.
    pub fn skip_own_files(
        &self,
        mut plan: crate::leakscan::ScanPlan,
        machine: &dyn Machine,
    ) -> crate::leakscan::ScanPlan {
        let dir = &self.config.dir;
        plan.own_files
            .push(dir.join(crate::store::backends::SECRETS_FILE));
        plan.own_files.push(
            dir.join(crate::store::backends::SANDBOX_STORE_DIR)
                .join(crate::store::backends::SECRETS_FILE),
        );
        plan.own_files.extend(machine.own_files());
        plan
    }

    /// The store for a new profile: `--store`, or the OS keyring, or in sandbox mode
    /// without one the sandbox-only file (which it says), and the choice to record.
    pub fn open_new_store(&self) -> Result<(Arc<dyn Store>, StoreChoice), Error> {
        let choice = self.store_flag.unwrap_or(StoreChoice::Auto);
        let (store, used) = self.ports.stores.open(choice)?;
        if used == StoreChoice::SandboxFile && choice != used {
            self.ui.warn(format!(
                "No OS keyring here: sandbox secrets go to a plaintext file in {} (sandbox only; live profiles never do this)",
                self.config.dir.join(crate::store::backends::SANDBOX_STORE_DIR).display()
            ));
        }
        Ok((store, used))
    }

    /// The flags a suggested command must repeat to act on this run's profile.
    pub fn flags(&self) -> RunFlags {
        RunFlags::new(&self.profile, self.sandbox, self.sandbox_url.as_deref())
    }

    /// `kite-setup FLAGS ARGS` with this run's flags, for text that names a command.
    pub fn command(&self, args: &str) -> String {
        self.flags().command(args)
    }

    /// A fix as this run's person reads it: the one renderer, with this run's flags.
    pub fn render(&self, fix: &Fix) -> String {
        fix.render(&self.flags())
    }

    /// Tells the person about an interrupted rotation, if one is pending.
    pub fn mention_pending_rotation(&self, store: &dyn Store) {
        let config = self.config.load().unwrap_or_default();
        let exists = |p: &str| config.get(p, self.sandbox).is_some();
        if let Some(owner) = rotation_owner(store, &self.entries(), &self.profile, exists) {
            self.ui.warn(format!(
                "a secret rotation was interrupted: run `{}` to finish it (or --abort)",
                RunFlags::new(&owner, self.sandbox, self.sandbox_url.as_deref())
                    .command("regenerate --resume")
            ));
        }
    }
}

/// The profile whose rotation of the app's secret is pending in `entries`' pending entry
/// (the one that started it, which is the one to resume it; `me` when the entry does not
/// say, cannot be read, or names a profile that is gone), or `None` when none is pending.
pub fn rotation_owner(
    store: &dyn Store,
    entries: &Entries,
    me: &str,
    exists: impl Fn(&str) -> bool,
) -> Option<String> {
    match store.get(&entries.pending()) {
        Ok(Some(raw)) => Some(
            serde_json::from_str::<crate::store::PendingSecret>(raw.expose())
                .ok()
                .and_then(|p| p.profile)
                .filter(|owner| exists(owner))
                .unwrap_or_else(|| me.to_string()),
        ),
        _ => None,
    }
}
