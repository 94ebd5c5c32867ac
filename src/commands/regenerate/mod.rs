//! `kite-setup regenerate`: the leak playbook.
//!
//! Six steps: explain and confirm; open the app's console page, where the user clicks
//! "Regenerate secret"; capture the new secret and write it at once to the app's
//! `pending` keyring entry; verify it with a real login; swap it into the main entry,
//! revoke the previous access tokens at Kite (Kite does not) and drop the pending entry;
//! scan for plain-text copies of the old secret and tokens.
//!
//! The secret is the app's: when other profiles use the same app (a family's client
//! IDs), one rotation replaces it for all of them, revokes their tokens too, logs them
//! out here, and names the login each one needs.
//!
//! The rotation record and its transitions are in [`rotation`]; steps 4 to 6 (verify,
//! swap and revoke, leak scan) in `flow`.

mod flow;
pub mod rotation;

use std::sync::Arc;

use crate::cli::RegenerateArgs;
use crate::error::{Error, Fix, RunFlags};
use crate::profile::ProfileMeta;
use crate::secret::Secret;
use crate::store::{Entries, OtherToken, PendingSecret, Store, load_session};
use crate::validate;

use super::{Ctx, Machine};
use flow::{Ended, drive, leak_scan};
pub use rotation::{Action, InvalidTransition, Step, transition};
use rotation::{Old, Rotation, checkpoint};

/// What `regenerate` takes from outside: the machine (where the leak scan looks) and the
/// crash-test hook.
pub struct RegenerateEnv<'a> {
    pub machine: &'a dyn Machine,
    /// Crash-test hook: abort the process right after this step is persisted. app.rs
    /// sets it from `KITE_SETUP_TEST_ABORT_AFTER` in debug builds only; `None` otherwise.
    pub abort_after: Option<Step>,
}

pub fn run(ctx: &Ctx<'_>, args: &RegenerateArgs, env: &RegenerateEnv<'_>) -> Result<u8, Error> {
    let profile = ctx.open_profile()?;
    let (meta, store) = (&profile.meta, &profile.store);
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
        return resume(ctx, store, meta, p, args, env);
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
        return match ctx.ports.prompter.select("What now?", &items, 0)? {
            0 => resume(ctx, store, meta, p, args, env),
            1 => abort(ctx, store.as_ref(), Some(p), args),
            _ => {
                ctx.ui.say("Nothing was changed.");
                Ok(0)
            }
        };
    }
    fresh(ctx, store, meta, args, env)
}

/// A new rotation: steps 1 to 3, then the rest through `drive`.
fn fresh(
    ctx: &Ctx<'_>,
    store: &Arc<dyn Store>,
    meta: &ProfileMeta,
    args: &RegenerateArgs,
    env: &RegenerateEnv<'_>,
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
                Fix::text("secrets are never flags; e.g. ")
                    .and_piped("... | ", "regenerate --no-input --yes --api-secret-stdin"),
            ));
        }
    }
    let main = crate::store::load_app(store.as_ref(), &ctx.entries())?;
    let siblings = super::apps::siblings(&ctx.config.load()?, &ctx.profile, meta, ctx.sandbox);

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
    if !siblings.is_empty() {
        ctx.ui.say(format!(
            "  • This app's secret is shared by profiles {}: their access tokens are revoked too, and each must log in again.",
            siblings.join(", ")
        ));
    }
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
    } else if !ctx.ports.prompter.confirm("Start?", true)? {
        ctx.ui.say("Nothing was changed.");
        return Ok(0);
    }

    let api_key = if let Some(m) = &main {
        m.api_key.clone()
    } else {
        if !ctx.interactive {
            return Err(Error::login_needed(
                format!("no api_key is stored for profile {}", ctx.profile_label()),
                Fix::text("run ")
                    .and_run("regenerate")
                    .and(" in a terminal to enter it, or ")
                    .and_run("init --force"),
            ));
        }
        let k = ctx
            .ports
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
        super::login_flow::say_opened(ctx.ui, &ctx.ports.browser.open(&url), true);
        ctx.ui.say(
            "Click \"Regenerate secret\" and keep the page open: the new secret is shown once.",
        );
        ctx.ports
            .prompter
            .pause("Press Enter when the new secret is on the screen")?;
    } else {
        ctx.ui
            .say("(--no-input: the new secret is read from standard input)");
    }

    ctx.ui.heading("Step 3 of 6 — Save the new secret");
    let old = main.as_ref().map(|m| m.api_secret.clone());
    let new_secret = capture(ctx, &api_key, old.as_ref())?;
    let old_session = load_session(store.as_ref(), &ctx.entries()).ok().flatten();
    let old = Old {
        api_secret: old,
        access_token: old_session.map(|s| s.access_token),
        other_tokens: sibling_tokens(ctx, store.as_ref(), meta, &siblings),
    };
    let mut rot = Rotation::captured(api_key, new_secret, old, &ctx.profile);
    {
        let _section = flow::unchanged(ctx, store.as_ref(), &rot)?;
        rot.save(ctx, store.as_ref())?;
    }
    ctx.ui.ok(format!(
        "Saved the new secret as pending in the {} (read back and checked)",
        store.describe()
    ));
    ctx.ui.say(format!(
        "  From here on a crash or Ctrl-C loses nothing: `{}` continues.",
        ctx.command("regenerate --resume")
    ));
    checkpoint(env, Step::Captured);
    finish(ctx, store.as_ref(), meta, &mut rot, args, env)
}

/// The access tokens the other profiles on the app hold now (a damaged session entry
/// holds none).
fn sibling_tokens(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    meta: &ProfileMeta,
    siblings: &[String],
) -> Vec<OtherToken> {
    siblings
        .iter()
        .filter_map(|name| {
            let entries = Entries::new(name, ctx.sandbox, meta.app.as_deref());
            let s = load_session(store, &entries).ok().flatten()?;
            Some(OtherToken {
                profile: name.clone(),
                access_token: s.access_token,
            })
        })
        .collect()
}

/// The flags that run a command for `profile` as this run's person would type them.
fn flags_of(ctx: &Ctx<'_>, profile: &str) -> RunFlags {
    RunFlags::new(profile, ctx.sandbox, ctx.sandbox_url.as_deref())
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
        let s = ctx.ports.prompter.secret("New api_secret", &check)?;
        Ok(s.trimmed())
    } else {
        let line = (ctx.ports.read_stdin_line)().map_err(|e| Error::StdinUnreadable {
            what: "the new api_secret",
            detail: e.to_string(),
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
    env: &RegenerateEnv<'_>,
) -> Result<u8, Error> {
    let as_read = pending.clone();
    let pending = take_over(ctx, store.as_ref(), pending)?;
    let main = crate::store::load_app(store.as_ref(), &ctx.entries())?;
    let mut rot = Rotation::from_pending(pending, main.as_ref())?;
    // A take-over changed it here only: the entry still holds what was read.
    rot.seen = Some(as_read);
    ctx.ui.heading(&format!(
        "kite-setup regenerate --resume — profile {}",
        ctx.profile_label()
    ));
    ctx.ui.say(format!(
        "Picking up an interrupted rotation: {}.",
        rot.step().describe()
    ));
    finish(ctx, store.as_ref(), meta, &mut rot, args, env)
}

/// A rotation another profile on the app started, as this run's profile finishes it.
/// Before the verifying login (`Captured`) this profile takes it over: the login and the
/// session the swap stores are its own, and the starter's token becomes one of the
/// others' to revoke. From the swap on, what is left (revoke, finish) is the same
/// whoever runs it. In between (`Verified`), the verified session is the starter's
/// client ID's: only that profile can store it.
fn take_over(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    mut pending: PendingSecret,
) -> Result<PendingSecret, Error> {
    let Some(owner) = pending.profile.clone().filter(|p| *p != ctx.profile) else {
        return Ok(pending);
    };
    match Step::parse(&pending.step) {
        Some(Step::Captured) => {
            ctx.ui.say(format!(
                "Profile {owner} started this rotation of the app's secret; profile {} finishes it (its own login verifies the new secret).",
                ctx.profile_label()
            ));
            let mine = load_session(store, &ctx.entries())
                .ok()
                .flatten()
                .map(|s| s.access_token);
            // This profile's token becomes the rotation's own (one it had before a login
            // meanwhile stays among the others, to be revoked all the same).
            pending
                .other_tokens
                .retain(|o| !(o.profile == ctx.profile && mine.as_ref() == Some(&o.access_token)));
            if let Some(t) = pending.old_access_token.take() {
                pending.other_tokens.push(OtherToken {
                    profile: owner,
                    access_token: t,
                });
            }
            pending.old_access_token = mine;
            pending.profile = Some(ctx.profile.clone());
            Ok(pending)
        }
        Some(Step::Verified) => Err(started_by(ctx, &owner)?),
        _ => Ok(pending),
    }
}

/// The error for a rotation verified by `owner`'s login, seen from another profile.
fn started_by(ctx: &Ctx<'_>, owner: &str) -> Result<Error, Error> {
    let what = format!(
        "the interrupted rotation of this app's secret was started and verified by profile {owner}"
    );
    let config = ctx.config.load()?;
    let me = config
        .get(&ctx.profile, ctx.sandbox)
        .and_then(|m| m.app.as_deref());
    let owner_on_app = config
        .get(owner, ctx.sandbox)
        .is_some_and(|m| m.app.is_some() && m.app.as_deref() == me);
    Ok(if owner_on_app {
        let cmd = flags_of(ctx, owner).command("regenerate --resume");
        Error::usage(what, format!("finish it as that profile: {cmd}"))
    } else {
        Error::usage(
            format!("{what}, which no longer uses this app"),
            Fix::text("drop it with ")
                .and_run("regenerate --abort")
                .and(", then run ")
                .and_run("regenerate")
                .and(" again"),
        )
    })
}

/// Says which profiles on the run's app hold no session now (after a rotation each must
/// log in again), with the `login` command of each; `only` narrows them to those whose
/// token the rotation took.
fn say_logins_needed(ctx: &Ctx<'_>, store: &dyn Store, only: Option<&[OtherToken]>) {
    let Ok(config) = ctx.config.load() else {
        return;
    };
    let Some(app) = config
        .get(&ctx.profile, ctx.sandbox)
        .and_then(|m| m.app.clone())
    else {
        return;
    };
    let out: Vec<&String> = config
        .profiles_on_app(&app, ctx.sandbox)
        .map(|(n, _)| n)
        .filter(|n| only.is_none_or(|o| o.iter().any(|t| t.profile == **n)))
        .filter(|n| {
            let entries = Entries::new(n, ctx.sandbox, Some(&app));
            matches!(store.get(&entries.session()), Ok(None))
        })
        .collect();
    match out.as_slice() {
        [] => return,
        [one] => ctx.ui.warn(format!(
            "Profile {one} shares this app's secret: it is logged out and must log in again:"
        )),
        many => ctx.ui.warn(format!(
            "Profiles {} share this app's secret: they are logged out and each must log in again:",
            many.iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
    for name in out {
        ctx.ui
            .say(format!("  {}", flags_of(ctx, name).command("login")));
    }
}

/// Steps 4 to 6 from wherever `rot` is, then the closing summary.
fn finish(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    meta: &ProfileMeta,
    rot: &mut Rotation,
    args: &RegenerateArgs,
    env: &RegenerateEnv<'_>,
) -> Result<u8, Error> {
    let ended = match drive(ctx, store, meta, rot, args, env) {
        Ok(e) => e,
        Err(e) => {
            if rot.step() != Step::Done {
                ctx.ui.gap();
                ctx.ui.warn(format!(
                    "Stopped: {}. Nothing is lost: `{}` continues from here.",
                    rot.step().describe(),
                    ctx.command("regenerate --resume")
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
            say_logins_needed(ctx, store, None);
            ctx.ui.say(
                "Anything else that held the old secret (servers, CI variables) needs the new one,",
            );
            ctx.ui.say(format!(
                "or `{}` to get credentials without keeping a copy.",
                ctx.command("exec -- CMD")
            ));
            Ok(0)
        }
        Ended::RevokeFailed(e) => {
            say_logins_needed(ctx, store, None);
            let fix = Fix::text("the new secret is in place and works; run ")
                .and_run("regenerate --resume")
                .and(
                    " when Kite is reachable to revoke the old token (it dies at 06:00 IST anyway)",
                );
            Err(Error::failed(
                format!("could not revoke the previous access token at Kite: {e}"),
                fix,
            )
            .caused_by(e))
        }
    }
}

/// Whether the session entry of `profile` (the run's when `None`) on the run's app holds
/// `token`.
fn session_holds(ctx: &Ctx<'_>, store: &dyn Store, profile: Option<&str>, token: &Secret) -> bool {
    let entries = Entries::new(
        profile.unwrap_or(&ctx.profile),
        ctx.sandbox,
        ctx.entries().app_id(),
    );
    load_session(store, &entries)
        .ok()
        .flatten()
        .is_some_and(|s| s.access_token == *token)
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
                .say("previous access tokens, which otherwise live until 06:00 IST).");
        }
        _ => {
            ctx.ui.say(
                "Aborting keeps your current secret and drops the pending new one. If you already",
            );
            ctx.ui.say("clicked \"Regenerate secret\" on the console, the current one no longer works at Kite:");
            ctx.ui
                .say(format!("run `{}` again then.", ctx.command("regenerate")));
        }
    }
    if !args.yes {
        if !ctx.interactive {
            return Err(Error::NeedsConfirmation {
                action: "dropping the pending secret".into(),
                fix: Fix::text("pass --yes with --no-input"),
            });
        }
        if !ctx
            .ports
            .prompter
            .confirm("Drop the pending secret?", false)?
        {
            ctx.ui.say("Nothing was changed.");
            return Ok(0);
        }
    }
    // The verifying login's token, unless a swap cut short already stored it: nobody
    // would hold it, so it must not stay alive.
    if step == Some(Step::Verified)
        && let (Some(s), Some(k)) = (&p.new_session, &p.api_key)
        && !session_holds(ctx, store, p.profile.as_deref(), &s.access_token)
    {
        let _ = ctx.ports.kite.invalidate(k, &s.access_token);
    }
    {
        let _section = crate::commands::txn::section(ctx, "regenerate --abort")?;
        store.delete(&ctx.entries().pending())?;
    }
    ctx.ui.ok("Dropped the pending secret");
    // Aborting forgets nothing more; those a swap already logged out stay so.
    say_logins_needed(ctx, store, Some(&p.other_tokens));
    Ok(0)
}

#[cfg(test)]
mod family_tests;
