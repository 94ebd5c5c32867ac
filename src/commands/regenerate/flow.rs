//! Steps 4 to 6 of a rotation: the verifying login, the swap and the revoke, the scan for
//! plain-text copies of the old secret and tokens.

use std::time::Duration;

use crate::cli::RegenerateArgs;
use crate::error::{Error, Fix};
use crate::kite::KiteError;
use crate::kite::error::Refusal;
use crate::leakscan::{Needle, default_plan, scan};
use crate::profile::ProfileMeta;
use crate::secret::Secret;
use crate::store::{AppCredentials, Entries, OtherToken, Store, load_session, set_json_verified};
use crate::ui::capitalize;

use super::rotation::{Action, Rotation};
use super::{RegenerateEnv, capture};
use crate::commands::login_flow::{LoginFailure, LoginParams, Verification, verify_login};
use crate::commands::{Ctx, txn};

/// How `drive` ended.
pub(super) enum Ended {
    Finished,
    /// Everything but the revoke is done; the pending entry stays at `Swapped`.
    RevokeFailed(KiteError),
}

/// Performs the action of each step until the rotation is done (or the revoke fails).
pub(super) fn drive(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    meta: &ProfileMeta,
    rot: &mut Rotation,
    args: &RegenerateArgs,
    env: &RegenerateEnv<'_>,
) -> Result<Ended, Error> {
    let mut step5_shown = false;
    let mut step5 = || {
        if !std::mem::replace(&mut step5_shown, true) {
            ctx.ui
                .heading("Step 5 of 6 — Swap in the new secret, revoke the previous token");
        }
    };
    loop {
        match rot.step().action() {
            None => return Ok(Ended::Finished),
            Some(Action::Verify) => verify(ctx, store, meta, rot, args, env)?,
            Some(Action::Swap) => {
                step5();
                swap_own(ctx, store, rot)?;
                let forgotten = forget_siblings(ctx, store, rot)?;
                let _section = unchanged(ctx, store, rot)?;
                rot.advance(ctx, store, env, Action::Swap)?;
                ctx.ui.ok(format!(
                    "Replaced the api_secret in the {} (read back and checked)",
                    store.describe()
                ));
                if let Some(s) = &rot.data.new_session {
                    ctx.ui.ok(format!(
                        "Stored the new access token ({})",
                        crate::commands::login::describe(ctx, s)
                    ));
                }
                if !forgotten.is_empty() {
                    ctx.ui.ok(format!(
                        "Logged out the other profiles on this app here: {}",
                        forgotten.join(", ")
                    ));
                }
            }
            Some(Action::Revoke) => {
                step5();
                if let Err(e) = revoke_old(ctx, rot) {
                    return Ok(Ended::RevokeFailed(e));
                }
                let _section = unchanged(ctx, store, rot)?;
                rot.advance(ctx, store, env, Action::Revoke)?;
            }
            Some(Action::Finish) => {
                step5();
                let _section = unchanged(ctx, store, rot)?;
                rot.advance(ctx, store, env, Action::Finish)?;
                ctx.ui
                    .ok("Removed the pending entry: the rotation is complete");
            }
        }
    }
}

/// The swap's own half, under the profile's section: the app entry gets the new secret,
/// the profile's session entry the verifying login's session. A token the profile got
/// meanwhile (a login while the person was at the console) is kept for the revoke first.
fn swap_own(ctx: &Ctx<'_>, store: &dyn Store, rot: &mut Rotation) -> Result<(), Error> {
    let _section = unchanged(ctx, store, rot)?;
    let entries = ctx.entries();
    if let Some(new) = rot.data.new_session.clone() {
        if let Ok(Some(now)) = load_session(store, &entries)
            && !rot.knows_token(&now.access_token)
        {
            rot.data.other_tokens.push(OtherToken {
                profile: ctx.profile.clone(),
                access_token: now.access_token,
            });
            rot.save(ctx, store)?;
        }
        set_json_verified(store, &entries.app(), &rot.creds()).map_err(swap_failed)?;
        set_json_verified(store, &entries.session(), &new).map_err(swap_failed)?;
    } else {
        set_json_verified(store, &entries.app(), &rot.creds()).map_err(swap_failed)?;
    }
    Ok(())
}

/// The swap's other half: the session entries of the app's other profiles are forgotten,
/// each under that profile's own lock (taken one at a time, never while holding this
/// profile's). A token not yet in the pending entry (that profile logged in meanwhile) is
/// written there first, under this profile's section, and then the session is looked at
/// again. Returns the profiles logged out.
fn forget_siblings(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    rot: &mut Rotation,
) -> Result<Vec<String>, Error> {
    let config = ctx.config.load()?;
    let Some(me) = config.get(&ctx.profile, ctx.sandbox) else {
        return Ok(Vec::new());
    };
    let Some(app) = me.app.clone() else {
        return Ok(Vec::new());
    };
    let mut forgotten = Vec::new();
    for name in crate::commands::apps::siblings(&config, &ctx.profile, me, ctx.sandbox) {
        let entries = Entries::new(&name, ctx.sandbox, Some(&app));
        loop {
            let section = txn::section_of(ctx, &name, "regenerate", None)?;
            let still_on_app = ctx
                .config
                .load()?
                .get(&name, ctx.sandbox)
                .is_some_and(|m| m.app.as_deref() == Some(app.as_str()));
            if !still_on_app {
                break;
            }
            // A damaged entry holds no token to keep: it is simply deleted.
            match load_session(store, &entries).ok().flatten() {
                Some(s) if !rot.knows_token(&s.access_token) => {
                    drop(section);
                    let _own = unchanged(ctx, store, rot)?;
                    rot.data.other_tokens.push(OtherToken {
                        profile: name.clone(),
                        access_token: s.access_token,
                    });
                    rot.save(ctx, store)?;
                }
                _ => {
                    if store.delete(&entries.session()).map_err(swap_failed)? {
                        forgotten.push(name.clone());
                    }
                    crate::interrupt::note(format!(
                        "profile {name} was logged out by the rotation of its app's secret"
                    ));
                    break;
                }
            }
        }
    }
    Ok(forgotten)
}

/// Revokes the old access tokens: the run's profile's and the other profiles'. Each one
/// Kite already rejects counts as revoked; the first that cannot be revoked stops here
/// (the rotation stays at `Swapped`, and `--resume` tries them all again).
fn revoke_old(ctx: &Ctx<'_>, rot: &Rotation) -> Result<(), KiteError> {
    let mut tokens: Vec<(Option<&str>, &Secret)> = Vec::new();
    if let Some(t) = &rot.data.old_access_token {
        tokens.push((None, t));
    }
    for o in &rot.data.other_tokens {
        tokens.push((Some(o.profile.as_str()), &o.access_token));
    }
    if tokens.is_empty() {
        ctx.ui
            .ok("No previous access token was stored: nothing to revoke");
        return Ok(());
    }
    for (profile, token) in tokens {
        let whose = profile.map_or_else(
            || "the previous access token".to_string(),
            |p| format!("profile {p}'s previous access token"),
        );
        match ctx.ports.kite.invalidate(&rot.api_key, token) {
            Ok(()) => ctx.ui.ok(format!("Revoked {whose} at Kite")),
            Err(e) if e.is_token_error() => ctx
                .ui
                .ok(format!("Kite already rejects {whose} (expired or revoked)")),
            Err(e) => {
                ctx.ui
                    .warn(format!("Could not revoke {whose} at Kite: {e}."));
                ctx.ui.warn("It stays alive until 06:00 IST unless revoked: the rotation stays open until it is.");
                return Err(e);
            }
        }
    }
    Ok(())
}

fn swap_failed(e: crate::store::StoreError) -> Error {
    Error::failed(
        format!("could not write the new secret into the keyring: {e}"),
        Fix::text("the new secret is safe in the pending entry; fix the keyring (")
            .and_run("doctor")
            .and("), then run ")
            .and_run("regenerate --resume"),
    )
    .caused_by(e)
}

/// Step 4: a real login with the new secret. On failure the pending entry stays; the
/// user may paste the secret again, retry, or stop.
fn verify(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    meta: &ProfileMeta,
    rot: &mut Rotation,
    args: &RegenerateArgs,
    env: &RegenerateEnv<'_>,
) -> Result<(), Error> {
    ctx.ui
        .heading("Step 4 of 6 — Verify the new secret with a real login");
    ctx.ui
        .say("Log in as you do on Kite (client ID, password, TOTP).");
    let ctx = &ctx.with_self_play()?;
    let mut login = NewSecretLogin {
        store,
        meta,
        creds: rot.creds(),
        rot: &mut *rot,
        timeout: Duration::from_secs(args.timeout),
    };
    let out = verify_login(ctx, &mut login)?;
    ctx.ui.ok(format!(
        "The new secret works: Kite logged in {} ({})",
        out.profile.user_name, out.session.user_id
    ));
    rot.data.new_session = Some(out.session);
    let _section = unchanged(ctx, store, rot)?;
    rot.advance(ctx, store, env, Action::Verify)
}

/// The profile's section for the rotation's next write, if the profile is still the one
/// this rotation started on (`remove` or `init --force` may have run while a person was
/// at the console or logging in). Otherwise the verifying login's token, which nothing
/// would hold, is revoked.
pub(super) fn unchanged(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    rot: &Rotation,
) -> Result<txn::Section, Error> {
    let revoke_mine = || {
        if let Some(s) = &rot.data.new_session {
            txn::revoke_quietly(ctx, &rot.api_key, &s.access_token);
        }
    };
    let section = txn::section_unchanged(ctx, store, "regenerate", &rot.api_key)
        .inspect_err(|_| revoke_mine())?;
    if !rot.still_ours(ctx, store)? {
        revoke_mine();
        return Err(Error::failed(
            "another kite-setup run took this rotation of the app's secret over, finished or dropped it meanwhile: this one stored nothing more",
            Fix::text("see ")
                .and_run("status")
                .and(" (a family member's profile may hold the rotation now)"),
        ));
    }
    Ok(section)
}

/// The verifying login of step 4: with the pending secret; a failure keeps it pending.
struct NewSecretLogin<'a> {
    store: &'a dyn Store,
    meta: &'a ProfileMeta,
    rot: &'a mut Rotation,
    /// The rotation's credentials as logged in with (refreshed after a new paste).
    creds: AppCredentials,
    timeout: Duration,
}

impl Verification for NewSecretLogin<'_> {
    fn params(&self) -> LoginParams<'_> {
        LoginParams::via_browser(
            &self.meta.client_id,
            &self.creds,
            &self.meta.redirect_url,
            self.timeout,
        )
    }

    fn recover(&mut self, ctx: &Ctx<'_>, failure: LoginFailure) -> Result<(), Error> {
        let checksum = is_checksum(&failure);
        let err = failure.into_error(ctx, &self.meta.redirect_url);
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
            if let Some(f) = err.fix() {
                ctx.ui.warn(ctx.render(&f));
            }
        }
        ctx.ui
            .say("Your current secret is untouched; the new one stays pending.");
        if !ctx.interactive {
            return Err(err.with_fix(pending_fix()));
        }
        let items = [
            "Paste the new secret again",
            "Try the login again",
            "Stop here (finish later with `regenerate --resume`)",
        ];
        match ctx.ports.prompter.select(
            "What do you want to do?",
            &items,
            usize::from(!checksum),
        )? {
            0 => {
                let rot = &mut *self.rot;
                let s = capture(ctx, &rot.api_key, rot.data.old_api_secret.as_ref())?;
                rot.data.api_secret = s;
                let _section = unchanged(ctx, self.store, rot)?;
                rot.save(ctx, self.store)?;
                self.creds = rot.creds();
                ctx.ui
                    .ok("Saved the new secret as pending (read back and checked)");
                Ok(())
            }
            1 => Ok(()),
            _ => Err(err.with_fix(pending_fix())),
        }
    }
}

fn is_checksum(f: &LoginFailure) -> bool {
    matches!(
        f,
        LoginFailure::Exchange(KiteError::Api {
            refusal: Refusal::BadChecksum,
            ..
        })
    )
}

/// What a failed verification adds to its error's fix: the pending secret is kept, and how
/// to go on.
fn pending_fix() -> Fix {
    Fix::text("the new secret stays pending: ")
        .and_run("regenerate --resume")
        .and(" retries, ")
        .and_run("regenerate --abort")
        .and(" drops it")
}

/// Step 6: plain-text copies of the old secret and the old token. Prints places, never values.
pub(super) fn leak_scan(
    ctx: &Ctx<'_>,
    rot: &Rotation,
    args: &RegenerateArgs,
    env: &RegenerateEnv<'_>,
) {
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
    for o in &rot.data.other_tokens {
        needles.push(Needle {
            kind: "old access_token",
            value: o.access_token.clone(),
        });
    }
    if needles.is_empty() {
        ctx.ui
            .say("Nothing to look for: no old secret or token was stored.");
        return;
    }
    let m = env.machine;
    let plan = default_plan(
        m.cwd(),
        m.home().unwrap_or(m.cwd()),
        m.histfile(),
        &args.scan,
    );
    let plan = ctx.skip_own_files(plan, m);
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
            ctx.ui.ok(capitalize(line));
        } else if i == 0 {
            ctx.ui.warn(capitalize(line));
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
