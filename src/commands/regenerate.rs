//! `kite-setup regenerate`: the leak playbook (product.md "`regenerate`: the leak playbook").
//!
//! Six steps: explain and confirm; open the app's console page, where the user clicks
//! "Regenerate secret"; capture the new secret and write it at once to the profile's
//! `pending` keyring entry; verify it with a real login; swap it into the main entry,
//! revoke the previous access token at Kite (Kite does not: kite-api.md §4) and drop the
//! pending entry; scan for plain-text copies of the old secret and token.
//!
//! # The state machine
//!
//! A rotation is one [`Step`], persisted in the pending entry's `step` field **before**
//! the next action starts, so a crash or Ctrl-C anywhere leaves the keyring holding the
//! old secret in the main entry, or the new one in the pending entry (and, from the
//! swap on, in the main entry too) — never neither:
//!
//! | step       | main entry      | pending entry                 | action that leaves it      |
//! |------------|-----------------|-------------------------------|----------------------------|
//! | `Captured` | old secret      | new secret (unverified)       | verifying login            |
//! | `Verified` | old (or new)    | new secret + the new session  | write main + session entry |
//! | `Swapped`  | new secret      | new secret + old token        | revoke the old token       |
//! | `Revoked`  | new secret      | new secret                    | delete the pending entry   |
//! | `Done`     | new secret      | (gone)                        | —                          |
//!
//! ("old (or new)": a crash inside the swap may have written the main entry already;
//! the swap is idempotent, so `--resume` simply writes it again.)
//!
//! The pending payload keeps what finishing needs after a crash: the api_key (checked
//! against the main entry), the old secret (for the leak scan), the old access token (to
//! revoke) and the verifying login's session. It is a keyring entry like the others and
//! is deleted as the last action of the rotation, which is why the pending entry outlives
//! the swap (product.md lists "delete the pending entry" before the revoke; the old
//! token would be lost with it).
//!
//! [`transition`] is the pure rule, tested transition by transition; [`drive`] performs
//! the actions.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::RegenerateArgs;
use crate::error::Error;
use crate::kite::{ErrorType, KiteError};
use crate::leakscan::{Needle, default_plan, scan};
use crate::profile::ProfileMeta;
use crate::secret::Secret;
use crate::store::{AppCredentials, PendingSecret, Store, get_json, set_json_verified};
use crate::validate;

use super::Ctx;
use super::login_flow::{LoginFailure, LoginParams, browser_login};

/// What `regenerate` takes from the environment (read in app.rs).
pub struct RegenerateEnv {
    /// Where the leak scan starts (the git work tree around it).
    pub cwd: PathBuf,
    pub home: Option<PathBuf>,
    /// `$HISTFILE`.
    pub histfile: Option<PathBuf>,
    /// Crash-test hook: abort the process right after this step is persisted. app.rs
    /// sets it from `KITE_SETUP_TEST_ABORT_AFTER` in debug builds only; `None` otherwise.
    pub abort_after: Option<Step>,
}

/// Where a rotation is. See the module documentation for what the keyring holds at each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The new secret is in the pending entry, not yet verified.
    Captured,
    /// A login with the new secret worked; its session is in the pending entry.
    Verified,
    /// The main entry holds the new secret, the session entry the new token.
    Swapped,
    /// The previous access token is dead at Kite (or there was none).
    Revoked,
    /// The pending entry is gone: the rotation is over.
    Done,
}

/// The action that takes a rotation out of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A login with the new secret succeeded.
    Verify,
    /// The main entry (and the session entry) were written and read back.
    Swap,
    /// The previous token was revoked, was already dead, or there was none.
    Revoke,
    /// The pending entry was deleted.
    Finish,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 5] = [
        Step::Captured,
        Step::Verified,
        Step::Swapped,
        Step::Revoked,
        Step::Done,
    ];

    /// The name persisted in the pending entry (and used by the crash-test hook).
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Captured => "captured",
            Step::Verified => "verified",
            Step::Swapped => "swapped",
            Step::Revoked => "revoked",
            Step::Done => "done",
        }
    }

    pub fn parse(text: &str) -> Option<Step> {
        Step::ALL
            .into_iter()
            .find(|s| s.as_str() == text.trim().to_ascii_lowercase())
    }

    /// The action that leaves this step; `None` at the end.
    pub fn action(self) -> Option<Action> {
        match self {
            Step::Captured => Some(Action::Verify),
            Step::Verified => Some(Action::Swap),
            Step::Swapped => Some(Action::Revoke),
            Step::Revoked => Some(Action::Finish),
            Step::Done => None,
        }
    }

    /// Whether the main entry already holds the new secret at this step (after a crash
    /// inside the swap it may already at `Verified` too; that is harmless).
    pub fn main_is_new(self) -> bool {
        matches!(self, Step::Swapped | Step::Revoked | Step::Done)
    }

    /// Where the rotation stands, for people.
    fn describe(self) -> &'static str {
        match self {
            Step::Captured => "the new secret was saved but not yet verified",
            Step::Verified => "the new secret was verified but not yet swapped in",
            Step::Swapped => {
                "the new secret is in place; the previous access token is not yet revoked"
            }
            Step::Revoked => "the new secret is in place and the previous token revoked",
            Step::Done => "the rotation is complete",
        }
    }
}

/// An action that does not leave the step it was done at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTransition {
    pub from: Step,
    pub action: Action,
}

/// The pure rule: the step a rotation reaches when `action` is done at `from`. Only the
/// step's own action moves it, one step forward; anything else is refused.
pub fn transition(from: Step, action: Action) -> Result<Step, InvalidTransition> {
    match (from, action) {
        (Step::Captured, Action::Verify) => Ok(Step::Verified),
        (Step::Verified, Action::Swap) => Ok(Step::Swapped),
        (Step::Swapped, Action::Revoke) => Ok(Step::Revoked),
        (Step::Revoked, Action::Finish) => Ok(Step::Done),
        _ => Err(InvalidTransition { from, action }),
    }
}

/// A rotation in progress: its step and the pending payload.
struct Rotation {
    step: Step,
    data: PendingSecret,
    api_key: Secret,
}

impl Rotation {
    /// Loads the pending entry; `None` when there is none.
    fn load(ctx: &Ctx<'_>, store: &dyn Store) -> Result<Option<PendingSecret>, Error> {
        Ok(get_json::<PendingSecret>(store, &ctx.entries().pending())?)
    }

    fn from_pending(
        ctx: &Ctx<'_>,
        data: PendingSecret,
        main: Option<&AppCredentials>,
    ) -> Result<Self, Error> {
        let abort_hint = format!(
            "drop it with `kite-setup{} regenerate --abort` and start again",
            ctx.flags_prefix()
        );
        let step = Step::parse(&data.step).ok_or_else(|| {
            Error::failed(
                format!(
                    "the pending rotation is at a step this version does not know ({:?})",
                    data.step
                ),
                abort_hint.clone(),
            )
        })?;
        let api_key = match (&data.api_key, main) {
            (Some(p), Some(m)) if !p.ct_eq(&m.api_key) => {
                return Err(Error::failed(
                    "the pending secret belongs to another app than the one stored for this profile",
                    abort_hint,
                ));
            }
            (Some(p), _) => p.clone(),
            (None, Some(m)) => m.api_key.clone(),
            (None, None) => {
                return Err(Error::failed(
                    "the pending secret's app is unknown: no api_key is stored for this profile",
                    abort_hint,
                ));
            }
        };
        Ok(Self {
            step,
            data,
            api_key,
        })
    }

    /// Does `action`'s transition and persists the step reached (read back) before
    /// anything else happens; then the crash-test hook may abort.
    fn advance(
        &mut self,
        ctx: &Ctx<'_>,
        store: &dyn Store,
        env: &RegenerateEnv,
        action: Action,
    ) -> Result<(), Error> {
        let next = transition(self.step, action).map_err(|t| {
            Error::failed(
                format!(
                    "internal error: {:?} is not the next action at step {}",
                    t.action,
                    t.from.as_str()
                ),
                "please report this; the keyring still holds the secrets",
            )
        })?;
        if next == Step::Done {
            store.delete(&ctx.entries().pending())?;
        } else {
            next.as_str().clone_into(&mut self.data.step);
            set_json_verified(store, &ctx.entries().pending(), &self.data)?;
        }
        self.step = next;
        checkpoint(env, next);
        Ok(())
    }

    fn creds(&self) -> AppCredentials {
        AppCredentials {
            api_key: self.api_key.clone(),
            api_secret: self.data.api_secret.clone(),
        }
    }
}

/// The crash-test hook: dies like a `kill -9` would, right after `step` was persisted.
fn checkpoint(env: &RegenerateEnv, step: Step) {
    if env.abort_after == Some(step) {
        std::process::abort();
    }
}

/// How `drive` ended.
enum Ended {
    Finished,
    /// Everything but the revoke is done; the pending entry stays at `Swapped`.
    RevokeFailed(KiteError),
}

pub fn run(ctx: &Ctx<'_>, args: &RegenerateArgs, env: &RegenerateEnv) -> Result<u8, Error> {
    let meta = ctx.require_profile()?;
    let store = ctx.store_for(&meta)?;
    let pending = Rotation::load(ctx, store.as_ref())?;
    if args.abort {
        return abort(ctx, store.as_ref(), pending, args);
    }
    if args.resume {
        let Some(p) = pending else {
            ctx.ui.say(format!(
                "No interrupted rotation for profile {}: nothing to resume.",
                ctx.profile_label()
            ));
            return Ok(0);
        };
        return resume(ctx, &store, &meta, p, args, env);
    }
    if let Some(p) = pending {
        let step = Step::parse(&p.step).map_or("at an unknown step", Step::describe);
        if !ctx.interactive {
            return Err(Error::usage(
                format!(
                    "a secret rotation for profile {} was interrupted ({step})",
                    ctx.profile_label()
                ),
                "pass --resume to finish it, or --abort --yes to drop the pending secret",
            ));
        }
        ctx.ui.warn(format!(
            "A secret rotation for profile {} was interrupted: {step}.",
            ctx.profile_label()
        ));
        let items = [
            "Resume it (recommended): finish verifying and swapping in the pending secret",
            "Abort it: drop the pending secret",
            "Quit and change nothing",
        ];
        return match ctx.prompter.select("What now?", &items, 0)? {
            0 => resume(ctx, &store, &meta, p, args, env),
            1 => abort(ctx, store.as_ref(), Some(p), args),
            _ => {
                ctx.ui.say("Nothing was changed.");
                Ok(0)
            }
        };
    }
    fresh(ctx, &store, &meta, args, env)
}

/// A new rotation: steps 1 to 3, then the rest through `drive`.
fn fresh(
    ctx: &Ctx<'_>,
    store: &Arc<dyn Store>,
    meta: &ProfileMeta,
    args: &RegenerateArgs,
    env: &RegenerateEnv,
) -> Result<u8, Error> {
    if !ctx.interactive {
        if !args.yes {
            return Err(Error::usage(
                "regenerate replaces the api_secret and needs confirmation",
                "pass --yes with --no-input (and the new secret on stdin with --api-secret-stdin)",
            ));
        }
        if !args.api_secret_stdin {
            return Err(Error::usage(
                "the new api_secret is needed: pass --api-secret-stdin and send it on standard input",
                "secrets are never flags; e.g. `... | kite-setup regenerate --no-input --yes --api-secret-stdin`",
            ));
        }
    }
    let main = crate::store::load_app(store.as_ref(), &ctx.entries())?;

    ctx.ui.heading(&format!(
        "kite-setup regenerate — a new api_secret for profile {}",
        ctx.profile_label()
    ));
    ctx.ui.heading("Step 1 of 6 — What happens");
    ctx.ui.say("  • You make a new api_secret on the developer console; the old one stops working at once.");
    ctx.ui
        .say("  • Scripts and servers holding the old secret fail until they get the new one");
    ctx.ui
        .say("    (`kite-setup exec` and `kite-setup env` pick it up by themselves).");
    ctx.ui.say("  • Kite does not revoke access tokens issued before; kite-setup revokes the previous one itself.");
    ctx.ui.say(
        "  • Your current secret stays in the keyring until the new one passes a real login; the",
    );
    ctx.ui.say("    new one is saved (pending) the moment you paste it, so stopping halfway loses nothing.");
    ctx.ui
        .say("  • Last, kite-setup looks for plain-text copies of the old secret and token.");
    if main.is_none() {
        ctx.ui.say(
            "  (No secret is stored for this profile: this sets a new one, as for a lost secret.)",
        );
    }
    if args.yes {
        ctx.ui.say("Going ahead (--yes).");
    } else if !ctx.prompter.confirm("Start?", true)? {
        ctx.ui.say("Nothing was changed.");
        return Ok(0);
    }

    let api_key = if let Some(m) = &main {
        m.api_key.clone()
    } else {
        if !ctx.interactive {
            return Err(Error::login_needed(
                format!("no api_key is stored for profile {}", ctx.profile_label()),
                format!(
                    "run `kite-setup{flags} regenerate` in a terminal to enter it, or `kite-setup{flags} init --force`",
                    flags = ctx.flags_prefix()
                ),
            ));
        }
        let k = ctx
            .prompter
            .input("The app's api_key", None, &validate::api_key)?;
        Secret::new(k)
    };

    ctx.ui
        .heading("Step 2 of 6 — Regenerate the secret on the console");
    let url = ctx.endpoints.console_app_url(api_key.expose());
    ctx.ui
        .say("Open the app's page on the developer console (log in with your client ID, password and TOTP):");
    ctx.ui.say(format!("  {url}"));
    if ctx.interactive {
        match ctx.browser.open(&url) {
            Ok(crate::redirect::BrowserOutcome::Opened) => ctx.ui.say("(opened in your browser)"),
            Ok(crate::redirect::BrowserOutcome::NotOpened(why)) => {
                ctx.ui
                    .say(format!("(no browser opened: {why}; open the URL yourself)"));
            }
            Err(e) => ctx.ui.say(format!(
                "(could not open a browser: {e}; open the URL yourself)"
            )),
        }
        ctx.ui.say(
            "Click \"Regenerate secret\" and keep the page open: the new secret is shown once.",
        );
        ctx.prompter
            .pause("Press Enter when the new secret is on the screen")?;
    } else {
        ctx.ui
            .say("(--no-input: the new secret is read from standard input)");
    }

    ctx.ui.heading("Step 3 of 6 — Save the new secret");
    let old = main.as_ref().map(|m| m.api_secret.clone());
    let new_secret = capture(ctx, &api_key, old.as_ref())?;
    let old_session = crate::store::load_session(store.as_ref(), &ctx.entries())
        .ok()
        .flatten();
    let mut rot = Rotation {
        step: Step::Captured,
        data: PendingSecret {
            api_secret: new_secret,
            step: Step::Captured.as_str().to_string(),
            api_key: Some(api_key.clone()),
            old_api_secret: old,
            old_access_token: old_session.map(|s| s.access_token),
            new_session: None,
        },
        api_key,
    };
    set_json_verified(store.as_ref(), &ctx.entries().pending(), &rot.data)?;
    ctx.ui.ok(format!(
        "Saved the new secret as pending in the {} (read back and checked)",
        store.describe()
    ));
    ctx.ui.say(format!(
        "  From here on a crash or Ctrl-C loses nothing: `kite-setup{} regenerate --resume` continues.",
        ctx.flags_prefix()
    ));
    checkpoint(env, Step::Captured);
    finish(ctx, store.as_ref(), meta, &mut rot, args, env)
}

/// The new secret, from the hidden prompt or stdin; must differ from the old one.
fn capture(ctx: &Ctx<'_>, api_key: &Secret, old: Option<&Secret>) -> Result<Secret, Error> {
    let check = |s: &str| match old {
        Some(o) => validate::new_api_secret(s, api_key.expose(), o.expose()),
        None => validate::api_secret(s, Some(api_key.expose())),
    };
    if ctx.interactive {
        ctx.ui
            .say("Paste the new api_secret (it is not shown while you type or paste).");
        let s = ctx.prompter.secret("New api_secret", &check)?;
        Ok(s.trimmed())
    } else {
        let line = (ctx.read_stdin_line)().map_err(|e| {
            Error::failed(
                format!("cannot read the new api_secret from stdin: {e}"),
                "send the secret as one line on standard input",
            )
        })?;
        let s = Secret::new(line).trimmed();
        check(s.expose()).map_err(|m| {
            Error::usage(
                format!("new api_secret on stdin: {m}"),
                "send only the new secret, one line; nothing was changed",
            )
        })?;
        Ok(s)
    }
}

/// Finishes a rotation from a pending entry.
fn resume(
    ctx: &Ctx<'_>,
    store: &Arc<dyn Store>,
    meta: &ProfileMeta,
    pending: PendingSecret,
    args: &RegenerateArgs,
    env: &RegenerateEnv,
) -> Result<u8, Error> {
    let main = crate::store::load_app(store.as_ref(), &ctx.entries())?;
    let mut rot = Rotation::from_pending(ctx, pending, main.as_ref())?;
    ctx.ui.heading(&format!(
        "kite-setup regenerate --resume — profile {}",
        ctx.profile_label()
    ));
    ctx.ui.say(format!(
        "Picking up an interrupted rotation: {}.",
        rot.step.describe()
    ));
    finish(ctx, store.as_ref(), meta, &mut rot, args, env)
}

/// Steps 4 to 6 from wherever `rot` is, then the closing summary.
fn finish(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    meta: &ProfileMeta,
    rot: &mut Rotation,
    args: &RegenerateArgs,
    env: &RegenerateEnv,
) -> Result<u8, Error> {
    let ended = match drive(ctx, store, meta, rot, args, env) {
        Ok(e) => e,
        Err(e) => {
            if rot.step != Step::Done {
                ctx.ui.gap();
                ctx.ui.warn(format!(
                    "Stopped: {}. Nothing is lost: `kite-setup{} regenerate --resume` continues from here.",
                    rot.step.describe(),
                    ctx.flags_prefix()
                ));
            }
            return Err(e);
        }
    };
    leak_scan(ctx, rot, args, env);
    ctx.ui.gap();
    match ended {
        Ended::Finished => {
            ctx.ui.ok(format!(
                "Done: profile {} uses the new secret.",
                ctx.profile_label()
            ));
            ctx.ui.say(
                "Anything else that held the old secret (servers, CI variables) needs the new one,",
            );
            ctx.ui.say(format!(
                "or `kite-setup{} exec -- CMD` to get credentials without keeping a copy.",
                ctx.flags_prefix()
            ));
            Ok(0)
        }
        Ended::RevokeFailed(e) => {
            let hint = format!(
                "the new secret is in place and works; run `kite-setup{} regenerate --resume` when Kite is reachable to revoke the old token (it dies at 06:00 IST anyway)",
                ctx.flags_prefix()
            );
            Err(Error::failed(
                format!("could not revoke the previous access token at Kite: {e}"),
                hint,
            ))
        }
    }
}

/// Performs the action of each step until the rotation is done (or the revoke fails).
fn drive(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    meta: &ProfileMeta,
    rot: &mut Rotation,
    args: &RegenerateArgs,
    env: &RegenerateEnv,
) -> Result<Ended, Error> {
    let mut step5_shown = false;
    let mut step5 = || {
        if !std::mem::replace(&mut step5_shown, true) {
            ctx.ui
                .heading("Step 5 of 6 — Swap in the new secret, revoke the previous token");
        }
    };
    loop {
        match rot.step.action() {
            None => return Ok(Ended::Finished),
            Some(Action::Verify) => verify(ctx, store, meta, rot, args, env)?,
            Some(Action::Swap) => {
                step5();
                let creds = rot.creds();
                set_json_verified(store, &ctx.entries().app(), &creds)
                    .map_err(|e| swap_failed(ctx, &e))?;
                if let Some(s) = &rot.data.new_session {
                    set_json_verified(store, &ctx.entries().session(), s)
                        .map_err(|e| swap_failed(ctx, &e))?;
                }
                rot.advance(ctx, store, env, Action::Swap)?;
                ctx.ui.ok(format!(
                    "Replaced the api_secret in the {} (read back and checked)",
                    store.describe()
                ));
                if let Some(s) = &rot.data.new_session {
                    ctx.ui.ok(format!(
                        "Stored the new access token ({})",
                        super::login::describe(ctx, s)
                    ));
                }
            }
            Some(Action::Revoke) => {
                step5();
                match &rot.data.old_access_token {
                    None => ctx
                        .ui
                        .ok("No previous access token was stored: nothing to revoke"),
                    Some(t) => match ctx.kite.invalidate(&rot.api_key, t) {
                        Ok(()) => ctx.ui.ok("Revoked the previous access token at Kite"),
                        Err(e) if e.is_token_error() => ctx.ui.ok(
                            "Kite already rejects the previous access token (expired or revoked)",
                        ),
                        Err(e) => {
                            ctx.ui.warn(format!(
                                "Could not revoke the previous access token at Kite: {e}."
                            ));
                            ctx.ui.warn("It stays alive until 06:00 IST unless revoked: the rotation stays open until it is.");
                            return Ok(Ended::RevokeFailed(e));
                        }
                    },
                }
                rot.advance(ctx, store, env, Action::Revoke)?;
            }
            Some(Action::Finish) => {
                step5();
                rot.advance(ctx, store, env, Action::Finish)?;
                ctx.ui
                    .ok("Removed the pending entry: the rotation is complete");
            }
        }
    }
}

fn swap_failed(ctx: &Ctx<'_>, e: &crate::store::StoreError) -> Error {
    Error::failed(
        format!("could not write the new secret into the keyring: {e}"),
        format!(
            "the new secret is safe in the pending entry; fix the keyring (`kite-setup doctor`), then run `kite-setup{} regenerate --resume`",
            ctx.flags_prefix()
        ),
    )
}

/// Step 4: a real login with the new secret. On failure the pending entry stays; the
/// user may paste the secret again, retry, or stop.
fn verify(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    meta: &ProfileMeta,
    rot: &mut Rotation,
    args: &RegenerateArgs,
    env: &RegenerateEnv,
) -> Result<(), Error> {
    ctx.ui
        .heading("Step 4 of 6 — Verify the new secret with a real login");
    ctx.ui
        .say("Log in as you do on Kite (client ID, password, TOTP).");
    ctx.offer_self_play()?;
    loop {
        let creds = rot.creds();
        let params = LoginParams::via_browser(
            &meta.client_id,
            &creds,
            &meta.redirect_url,
            Duration::from_secs(args.timeout),
        );
        let failure = match browser_login(ctx, &params) {
            Ok(out) => {
                ctx.ui.ok(format!(
                    "The new secret works: Kite logged in {} ({})",
                    out.profile.user_name, out.session.user_id
                ));
                rot.data.new_session = Some(out.session);
                return rot.advance(ctx, store, env, Action::Verify);
            }
            Err(LoginFailure::Interrupted) => return Err(Error::Interrupted),
            Err(f) => f,
        };
        let checksum = is_checksum(&failure);
        let err = failure.into_error(ctx, &meta.redirect_url);
        ctx.ui.gap();
        if checksum {
            ctx.ui.warn(
                "Kite said \"Invalid checksum\": this secret does not belong to the app's api_key.",
            );
            ctx.ui.warn("Usually the old secret was pasted again (copied before clicking \"Regenerate secret\"),");
            ctx.ui.warn(
                "or the secret comes from another app. Copy the new one from this app's page.",
            );
        } else {
            ctx.ui.warn(format!("The login failed: {err}."));
            if let Some(h) = err.hint() {
                ctx.ui.warn(h);
            }
        }
        ctx.ui
            .say("Your current secret is untouched; the new one stays pending.");
        if !ctx.interactive {
            return Err(with_pending_hint(ctx, err));
        }
        let items = [
            "Paste the new secret again",
            "Try the login again",
            "Stop here (finish later with `regenerate --resume`)",
        ];
        match ctx
            .prompter
            .select("What do you want to do?", &items, usize::from(!checksum))?
        {
            0 => {
                let s = capture(ctx, &rot.api_key, rot.data.old_api_secret.as_ref())?;
                rot.data.api_secret = s;
                set_json_verified(store, &ctx.entries().pending(), &rot.data)?;
                ctx.ui
                    .ok("Saved the new secret as pending (read back and checked)");
            }
            1 => {}
            _ => return Err(with_pending_hint(ctx, err)),
        }
    }
}

fn is_checksum(f: &LoginFailure) -> bool {
    matches!(
        f,
        LoginFailure::Exchange(e @ KiteError::Api { error_type: ErrorType::Token, .. })
            if e.kite_message().unwrap_or_default().contains("checksum")
    )
}

/// The same error, with the hint that the pending secret is kept and how to go on.
fn with_pending_hint(ctx: &Ctx<'_>, e: Error) -> Error {
    let extra = format!(
        "the new secret stays pending: `kite-setup{p} regenerate --resume` retries, `kite-setup{p} regenerate --abort` drops it",
        p = ctx.flags_prefix()
    );
    match e {
        Error::Usage { message, hint } => Error::usage(message, format!("{hint}; {extra}")),
        Error::LoginNeeded { message, hint } => {
            Error::login_needed(message, format!("{hint}; {extra}"))
        }
        Error::Failed { message, hint } => Error::failed(message, format!("{hint}; {extra}")),
        Error::Kite(k) => Error::failed(k.to_string(), format!("{}; {extra}", k.hint())),
        other => other,
    }
}

/// Step 6: plain-text copies of the old secret and the old token. Prints places, never values.
fn leak_scan(ctx: &Ctx<'_>, rot: &Rotation, args: &RegenerateArgs, env: &RegenerateEnv) {
    ctx.ui
        .heading("Step 6 of 6 — Look for copies of the old secret and token");
    if args.no_scan {
        ctx.ui.say("Skipped (--no-scan).");
        return;
    }
    let mut needles = Vec::new();
    if let Some(s) = &rot.data.old_api_secret {
        needles.push(Needle {
            kind: "old api_secret",
            value: s.clone(),
        });
    }
    if let Some(t) = &rot.data.old_access_token {
        needles.push(Needle {
            kind: "old access_token",
            value: t.clone(),
        });
    }
    if needles.is_empty() {
        ctx.ui
            .say("Nothing to look for: no old secret or token was stored.");
        return;
    }
    let home = env.home.as_deref().unwrap_or(&env.cwd);
    let plan = default_plan(&env.cwd, home, env.histfile.as_deref(), &args.scan);
    ctx.ui
        .say("Searching this directory (the whole git work tree when in one: every file and the");
    ctx.ui.say(
        "git history), shell, Python, IPython and Jupyter histories and any --scan paths. Places",
    );
    ctx.ui.say("only, never values…");
    let report = scan(&plan, &needles);
    let lines = report.summary_lines();
    for (i, line) in lines.iter().enumerate() {
        if i == 0 && report.findings.is_empty() {
            ctx.ui.ok(capitalized(line));
        } else if i == 0 {
            ctx.ui.warn(capitalized(line));
        } else {
            ctx.ui.say(line);
        }
    }
    if !report.findings.is_empty() {
        ctx.ui.say(
            "Delete those copies (scripts can use `kite-setup exec` instead). The old secret no",
        );
        ctx.ui.say(
            "longer works, but a copy ever committed or shared means that repository is exposed.",
        );
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| {
        f.to_uppercase().collect::<String>() + c.as_str()
    })
}

/// `--abort`: drops the pending secret after confirmation.
fn abort(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    pending: Option<PendingSecret>,
    args: &RegenerateArgs,
) -> Result<u8, Error> {
    let Some(p) = pending else {
        ctx.ui.say(format!(
            "No interrupted rotation for profile {}: nothing to abort.",
            ctx.profile_label()
        ));
        return Ok(0);
    };
    let step = Step::parse(&p.step);
    match step {
        Some(s) if s.main_is_new() => {
            ctx.ui.say("The new secret is already in place; aborting only skips what is left (revoking the");
            ctx.ui
                .say("previous access token, which otherwise lives until 06:00 IST).");
        }
        _ => {
            ctx.ui.say(
                "Aborting keeps your current secret and drops the pending new one. If you already",
            );
            ctx.ui.say("clicked \"Regenerate secret\" on the console, the current one no longer works at Kite:");
            ctx.ui.say(format!(
                "run `kite-setup{} regenerate` again then.",
                ctx.flags_prefix()
            ));
        }
    }
    if !args.yes {
        if !ctx.interactive {
            return Err(Error::usage(
                "dropping the pending secret needs confirmation",
                "pass --yes with --no-input",
            ));
        }
        if !ctx.prompter.confirm("Drop the pending secret?", false)? {
            ctx.ui.say("Nothing was changed.");
            return Ok(0);
        }
    }
    // The verifying login's token was never handed out: do not leave it alive.
    if step == Some(Step::Verified)
        && let (Some(s), Some(k)) = (&p.new_session, &p.api_key)
    {
        let _ = ctx.kite.invalidate(k, &s.access_token);
    }
    store.delete(&ctx.entries().pending())?;
    ctx.ui.ok("Dropped the pending secret");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_moves_only_by_its_own_action() {
        assert_eq!(
            transition(Step::Captured, Action::Verify),
            Ok(Step::Verified)
        );
        assert_eq!(transition(Step::Verified, Action::Swap), Ok(Step::Swapped));
        assert_eq!(transition(Step::Swapped, Action::Revoke), Ok(Step::Revoked));
        assert_eq!(transition(Step::Revoked, Action::Finish), Ok(Step::Done));
    }

    #[test]
    fn every_other_pair_is_refused() {
        let actions = [Action::Verify, Action::Swap, Action::Revoke, Action::Finish];
        let mut legal = 0;
        for from in Step::ALL {
            for action in actions {
                match transition(from, action) {
                    Ok(to) => {
                        legal += 1;
                        assert_eq!(from.action(), Some(action), "{from:?} by {action:?}");
                        let i = Step::ALL.iter().position(|s| *s == from).unwrap();
                        assert_eq!(to, Step::ALL[i + 1], "one step forward");
                    }
                    Err(e) => assert_eq!(e, InvalidTransition { from, action }),
                }
            }
        }
        assert_eq!(legal, 4);
        assert_eq!(Step::Done.action(), None);
    }

    #[test]
    fn walking_the_actions_reaches_done_in_order() {
        let mut step = Step::Captured;
        let mut seen = vec![step];
        while let Some(a) = step.action() {
            step = transition(step, a).unwrap();
            seen.push(step);
        }
        assert_eq!(seen, Step::ALL);
    }

    #[test]
    fn step_names_round_trip_and_unknown_ones_are_none() {
        for s in Step::ALL {
            assert_eq!(Step::parse(s.as_str()), Some(s));
        }
        assert_eq!(Step::parse(" Swapped "), Some(Step::Swapped));
        assert_eq!(Step::parse("pending"), None);
        assert_eq!(Step::parse(""), None);
    }

    #[test]
    fn main_entry_holds_the_new_secret_from_the_swap_on() {
        let new: Vec<Step> = Step::ALL.into_iter().filter(|s| s.main_is_new()).collect();
        assert_eq!(new, [Step::Swapped, Step::Revoked, Step::Done]);
    }

    #[test]
    fn pending_payloads_of_the_first_format_still_load() {
        let old: PendingSecret =
            serde_json::from_str(r#"{"api_secret":"abc","step":"captured"}"#).unwrap();
        assert_eq!(Step::parse(&old.step), Some(Step::Captured));
        assert!(old.api_key.is_none() && old.old_access_token.is_none());
        assert!(old.new_session.is_none() && old.old_api_secret.is_none());
    }
}
