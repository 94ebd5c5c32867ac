//! `kite-setup logout` (revoke today's token at Kite, then forget it) and
//! `kite-setup remove` (revoke, delete the keyring entries and the metadata).

use super::Ctx;
use super::handle::ProfileHandle;
use crate::cli::RemoveArgs;
use crate::error::{Error, Fix};
use crate::kite::KiteError;

/// What happened to the token at Kite.
enum Revoked {
    Done,
    AlreadyDead,
    NothingStored,
    /// A token is stored but no api_key to revoke it with (the app entry is gone).
    NoKey,
    Failed(KiteError),
}

fn revoke(ctx: &Ctx<'_>, profile: &ProfileHandle) -> Result<Revoked, Error> {
    let Some(session) = profile.session()? else {
        return Ok(Revoked::NothingStored);
    };
    let Some(app) = profile.app()? else {
        return Ok(Revoked::NoKey);
    };
    Ok(
        match ctx.kite.invalidate(&app.api_key, &session.access_token) {
            Ok(()) => Revoked::Done,
            Err(e) if e.is_token_error() => Revoked::AlreadyDead,
            Err(e) => Revoked::Failed(e),
        },
    )
}

pub fn logout(ctx: &Ctx<'_>) -> Result<u8, Error> {
    let profile = ctx.open_profile()?;
    match revoke(ctx, &profile)? {
        Revoked::NothingStored => {
            ctx.ui
                .say("No access token is stored for this profile; nothing to revoke.");
            return Ok(0);
        }
        Revoked::Done => ctx.ui.ok("Revoked the access token at Kite"),
        Revoked::AlreadyDead => ctx
            .ui
            .ok("Kite already rejects the access token (expired or revoked)"),
        Revoked::NoKey => ctx.ui.warn(
            "No api_key is stored to revoke the token with; it stays valid at Kite until 06:00 IST",
        ),
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
    }
    profile.forget_session()?;
    ctx.ui.ok("Forgot the access token locally");
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
        let sure = ctx.prompter.confirm(
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
    match revoke(ctx, &profile)? {
        Revoked::NothingStored => {}
        Revoked::Done => ctx.ui.ok("Revoked the access token at Kite"),
        Revoked::AlreadyDead => ctx.ui.ok("Kite already rejects the access token"),
        Revoked::NoKey => ctx.ui.warn(
            "No api_key is stored to revoke the token with; it stays valid at Kite until 06:00 IST",
        ),
        Revoked::Failed(e) => ctx.ui.warn(format!(
            "Could not revoke the access token at Kite ({e}); it dies at 06:00 IST"
        )),
    }
    let entries = &profile.entries;
    for (entry, what) in [
        (entries.session(), "access token"),
        (entries.pending(), "pending secret"),
        (entries.app(), "api_key and api_secret"),
        (entries.origin(), "record of where the session came from"),
    ] {
        if store.delete(&entry)? {
            ctx.ui
                .ok(format!("Deleted the {what} from the {}", store.describe()));
        }
    }
    let mut config = ctx.config.load()?;
    config.profiles_mut(ctx.sandbox).remove(&ctx.profile);
    ctx.config.save(&config)?;
    ctx.ui.ok(format!(
        "Removed profile {} from {}",
        ctx.profile_label(),
        ctx.config.path().display()
    ));
    Ok(0)
}
