//! `kite-setup logout` (revoke today's token at Kite, then forget it) and
//! `kite-setup remove` (revoke, delete the keyring entries and the metadata). Both are per
//! profile: on an app several profiles share (docs/apps.md) they touch only this
//! profile's token, and `remove` leaves the app's entries to the profiles still on it.

use super::handle::ProfileHandle;
use super::{Ctx, txn};
use crate::cli::RemoveArgs;
use crate::error::{Error, Fix};
use crate::kite::KiteError;
use crate::secret::Secret;

/// What happened to the token at Kite; the token itself where one was stored.
enum Revoked {
    Done(Secret),
    AlreadyDead(Secret),
    NothingStored,
    /// A token is stored but no api_key to revoke it with (the app entry is gone).
    NoKey(Secret),
    Failed(KiteError),
}

fn revoke(ctx: &Ctx<'_>, profile: &ProfileHandle) -> Result<Revoked, Error> {
    let Some(session) = profile.session()? else {
        return Ok(Revoked::NothingStored);
    };
    let Some(app) = profile.app()? else {
        return Ok(Revoked::NoKey(session.access_token));
    };
    Ok(
        match ctx
            .ports
            .kite
            .invalidate(&app.api_key, &session.access_token)
        {
            Ok(()) => Revoked::Done(session.access_token),
            Err(e) if e.is_token_error() => Revoked::AlreadyDead(session.access_token),
            Err(e) => Revoked::Failed(e),
        },
    )
}

pub fn logout(ctx: &Ctx<'_>) -> Result<u8, Error> {
    let profile = ctx.open_profile()?;
    let revoked = match revoke(ctx, &profile)? {
        Revoked::NothingStored => {
            ctx.ui
                .say("No access token is stored for this profile; nothing to revoke.");
            return Ok(0);
        }
        Revoked::Done(token) => {
            ctx.ui.ok("Revoked the access token at Kite");
            token
        }
        Revoked::AlreadyDead(token) => {
            ctx.ui
                .ok("Kite already rejects the access token (expired or revoked)");
            token
        }
        Revoked::NoKey(token) => {
            ctx.ui.warn(
                "No api_key is stored to revoke the token with; it stays valid at Kite until 06:00 IST",
            );
            token
        }
        Revoked::Failed(e) => {
            let fix = e.fix().also(Fix::text(
                "the token was kept so that you can revoke it later (it dies at 06:00 IST anyway)",
            ));
            return Err(Error::failed(
                format!("could not revoke the access token at Kite: {e}"),
                fix,
            )
            .caused_by(e));
        }
    };
    // Only the token revoked above: a login may have stored a newer one meanwhile.
    if profile.forget_session_if(ctx, &revoked)? {
        ctx.ui.ok("Forgot the access token locally");
    } else {
        ctx.ui.warn(
            "A newer access token was stored by another login meanwhile: it was kept (run logout again to revoke it)",
        );
    }
    Ok(0)
}

pub fn remove(ctx: &Ctx<'_>, args: &RemoveArgs) -> Result<u8, Error> {
    let meta = ctx.require_profile()?;
    if !args.yes {
        if !ctx.interactive {
            return Err(Error::NeedsConfirmation {
                action: format!("removing profile {}", ctx.profile_label()),
                fix: Fix::text("pass --yes to remove it without a prompt"),
            });
        }
        let sure = ctx.ports.prompter.confirm(
            &format!(
                "Remove profile {} ({}): revoke its token and delete its keyring entries?",
                ctx.profile_label(),
                meta.client_id
            ),
            false,
        )?;
        if !sure {
            ctx.ui.say("Nothing was changed.");
            return Ok(0);
        }
    }
    let profile = ctx.profile_handle(meta)?;
    let store = profile.store();
    // Waits for (or, past the lock wait, refuses) another command changing this profile;
    // one that is still logging in finds the profile gone when it comes to store.
    let _section = profile.section(ctx, "remove")?;
    match revoke(ctx, &profile)? {
        Revoked::NothingStored => {}
        Revoked::Done(_) => ctx.ui.ok("Revoked the access token at Kite"),
        Revoked::AlreadyDead(_) => ctx.ui.ok("Kite already rejects the access token"),
        Revoked::NoKey(_) => ctx.ui.warn(
            "No api_key is stored to revoke the token with; it stays valid at Kite until 06:00 IST",
        ),
        Revoked::Failed(e) => ctx.ui.warn(format!(
            "Could not revoke the access token at Kite ({e}); it dies at 06:00 IST"
        )),
    }
    if txn::drop_staged(ctx, store)? {
        ctx.ui.ok(format!(
            "Deleted an interrupted init's staged app from the {}",
            store.describe()
        ));
    }
    let entries = &profile.entries;
    let mut doomed = vec![
        (entries.session(), "access token"),
        (entries.origin(), "record of where the session came from"),
    ];
    // The app's entries go with its last profile; a family member still on it keeps them
    // (and its own session: only this profile's token was revoked above).
    let config = ctx.config.load()?;
    let users = super::apps::siblings(&config, &ctx.profile, &profile.meta, ctx.sandbox);
    if let (Some(id), Some(other)) = (entries.app_id(), users.first()) {
        let more = match users.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        ctx.ui.ok(format!(
            "Kept app {id}: profile {other} still uses it{more}"
        ));
    } else {
        doomed.push((entries.pending(), "pending secret"));
        doomed.push((entries.app(), "api_key and api_secret"));
    }
    if entries.app_id().is_some() {
        // Whatever a migration cut short left under the profile's own name.
        doomed.push((entries.legacy_pending(), "pending secret"));
        doomed.push((entries.legacy_app(), "api_key and api_secret"));
    }
    for (entry, what) in doomed {
        if store.delete(&entry)? {
            ctx.ui
                .ok(format!("Deleted the {what} from the {}", store.describe()));
        }
    }
    ctx.config.update(|config| {
        config.profiles_mut(ctx.sandbox).remove(&ctx.profile);
    })?;
    crate::interrupt::note(format!("profile {} was removed", ctx.profile_label()));
    ctx.ui.ok(format!(
        "Removed profile {} from {}",
        ctx.profile_label(),
        ctx.config.path().display()
    ));
    Ok(0)
}
