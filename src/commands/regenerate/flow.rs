//! Steps 4 to 6 of a rotation: the verifying login, the swap and the revoke, the scan for
//! plain-text copies of the old secret and token.

use std::time::Duration;

use crate::cli::RegenerateArgs;
use crate::error::{Error, Fix};
use crate::kite::KiteError;
use crate::kite::error::Refusal;
use crate::leakscan::{Needle, default_plan, scan};
use crate::profile::ProfileMeta;
use crate::store::{AppCredentials, Store, set_json_verified};
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
                let creds = rot.creds();
                let _section = unchanged(ctx, store, rot)?;
                set_json_verified(store, &ctx.entries().app(), &creds).map_err(swap_failed)?;
                if let Some(s) = &rot.data.new_session {
                    set_json_verified(store, &ctx.entries().session(), s).map_err(swap_failed)?;
                }
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
            }
            Some(Action::Revoke) => {
                step5();
                match &rot.data.old_access_token {
                    None => ctx
                        .ui
                        .ok("No previous access token was stored: nothing to revoke"),
                    Some(t) => match ctx.ports.kite.invalidate(&rot.api_key, t) {
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
    txn::section_unchanged(ctx, store, "regenerate", &rot.api_key).inspect_err(|_| {
        if let Some(s) = &rot.data.new_session {
            txn::revoke_quietly(ctx, &rot.api_key, &s.access_token);
        }
    })
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
                set_json_verified(self.store, &ctx.entries().pending(), &rot.data)?;
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
