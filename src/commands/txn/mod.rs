//! A profile's state changes as transactions that other processes and kills cannot split
//! (docs/concurrency.md). Each runs under the profile's lock and as an `interrupt`
//! critical section; none waits for a person, and each makes at most one Kite call.
//!
//! `init`'s store phase is a staged commit:
//! 1. the whole new profile goes to the `staged` entry ([`StagedProfile`]);
//! 2. `config.toml` names it: **the commit**;
//! 3. the app and session entries are written;
//! 4. the access token it replaces is revoked, and the staged entry dropped.
//!
//! A kill before 2 leaves the old profile whole, and the next command on the profile drops
//! the staged entry (revoking the token its login got); a kill after 2 leaves the new
//! profile committed, and the next command finishes steps 3-4 ([`recover`]). A command
//! finds out cheaply: a kill leaves the holder's record in the profile's lock file.
//!
//! `login` and `logout` change the session entry compare-before-write: `login` stores its
//! token only if the profile is still the one it logged in to, and revokes the token it
//! replaces; `logout` forgets the token only if it is still the one it revoked.

use crate::error::{Error, Fix};
use crate::interrupt;
use crate::lock::Lock;
use crate::profile::{ConfigError, ProfileMeta};
use crate::secret::Secret;
use crate::session::StoredSession;
use crate::store::{
    AppCredentials, Entries, ReplacedToken, StagedProfile, Store, get_json, load_app, load_session,
    set_json_verified,
};

use super::Ctx;

/// A profile's state-changing section: its lock (and its app's), and an `interrupt`
/// critical section.
/// Dropping it releases the lock (emptying the lock file) first and then ends the
/// section, where a Ctrl-C or SIGTERM that came meanwhile ends the process.
#[must_use = "the section ends when this is dropped"]
pub struct Section {
    _app_lock: Option<Lock>,
    _lock: Lock,
    _critical: interrupt::Critical,
}

/// Takes this profile's lock for `command`'s state-changing section (waiting for the
/// lock can still be interrupted; the section after it cannot).
pub fn section(ctx: &Ctx<'_>, command: &str) -> Result<Section, Error> {
    section_of(ctx, &ctx.profile, command, None)
}

/// [`section`] of another profile than the run's (a rotation of a shared secret logs
/// out the app's other profiles, each under its own lock), or locking app `joining`
/// rather than the one config.toml names for the profile (a profile joining that app).
/// Never taken while holding another section.
pub fn section_of(
    ctx: &Ctx<'_>,
    profile: &str,
    command: &str,
    joining: Option<&str>,
) -> Result<Section, Error> {
    // The lock file lives in the config dir: check (or create) that first, so a shared
    // or foreign directory gets its own error and nothing is written into it.
    crate::profile::create_private_dir(&ctx.config.dir)?;
    let lock = crate::lock::profile_lock(&ctx.config.dir, profile, ctx.sandbox, command)
        .map_err(|e| Error::from(ConfigError::from(e)))?;
    // The profile's app as config.toml names it now (read under the profile lock, so no
    // command of this profile can change it before the app lock is taken).
    let app = match joining {
        Some(id) => Some(id.to_string()),
        None => ctx
            .config
            .load()?
            .get(profile, ctx.sandbox)
            .and_then(|m| m.app.clone()),
    };
    let app_lock = app
        .map(|id| crate::lock::app_lock(&ctx.config.dir, &id, ctx.sandbox, command))
        .transpose()
        .map_err(|e| Error::from(ConfigError::from(e)))?;
    Ok(Section {
        _app_lock: app_lock,
        _lock: lock,
        _critical: interrupt::critical(),
    })
}

/// [`section`] for a command that read the profile long ago (before a login, a prompt):
/// refuses when the profile was removed or set up again with another app meanwhile, so
/// that nothing is written for a profile that is gone.
pub fn section_unchanged(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    command: &str,
    api_key: &Secret,
) -> Result<Section, Error> {
    let section = section(ctx, command)?;
    let exists = ctx.config.load()?.get(&ctx.profile, ctx.sandbox).is_some();
    let same_app = load_app(store, &ctx.entries())?.is_none_or(|a| a.api_key == *api_key);
    if exists && same_app {
        Ok(section)
    } else {
        Err(changed_meanwhile(ctx, command))
    }
}

fn changed_meanwhile(ctx: &Ctx<'_>, command: &str) -> Error {
    Error::failed(
        format!(
            "profile {} was removed or set up again while this {command} ran: it stored nothing more, and revoked the token it got",
            ctx.profile_label()
        ),
        Fix::text("see ")
            .and_run("status")
            .and(", and run it again if the profile is there"),
    )
}

/// `init`'s store phase: the profile `meta` with these credentials and session, as a
/// staged commit (module docs). With `must_be_new`, fails if another process created the
/// profile since this run looked. A failure before the commit changes nothing; one after
/// it is rolled back (the entries first, so that a kill during the rollback still leaves
/// a profile the next command can finish).
///
/// `meta.app` names the app the profile joins (a family member's: its credentials are
/// already stored and are not written again), or is `None` for the profile's own app:
/// the one it has when `app` has the same api_key or no other profile uses it, else a new
/// one ([`own_app_id`]).
pub fn store_profile(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    meta: ProfileMeta,
    app: &AppCredentials,
    session: Option<&StoredSession>,
    must_be_new: bool,
) -> Result<(), Error> {
    let left = {
        let _section = section_of(ctx, &ctx.profile, "init", meta.app.as_deref())?;
        store_profile_locked(ctx, store, meta, app, session, must_be_new)?
    };
    // The app this profile left, under that app's lock (not nested in the section above,
    // which holds another app's): a family member joining it meanwhile keeps it.
    if let Some(old) = left {
        let _lock = crate::lock::app_lock(&ctx.config.dir, &old, ctx.sandbox, "init")
            .map_err(|e| Error::from(ConfigError::from(e)))?;
        drop_unused_app(ctx, store, &old)?;
    }
    Ok(())
}

/// [`store_profile`] under the section; the app the profile left, if it left one.
fn store_profile_locked(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    mut meta: ProfileMeta,
    app: &AppCredentials,
    session: Option<&StoredSession>,
    must_be_new: bool,
) -> Result<Option<String>, Error> {
    recover_locked(ctx, store)?;
    let config = ctx.config.load()?;
    let old_meta = config.get(&ctx.profile, ctx.sandbox).cloned();
    if must_be_new && old_meta.is_some() {
        // The login's token would otherwise stay alive, held by nobody.
        if let Some(s) = session {
            revoke_quietly(ctx, &app.api_key, &s.access_token);
        }
        return Err(Error::usage(
            format!(
                "profile {} already exists (another kite-setup process set it up meanwhile)",
                ctx.profile_label()
            ),
            "pass --force to replace it, or --profile NAME for another one",
        ));
    }
    if let Some(old) = &old_meta {
        meta.created_at = old.created_at;
    }
    let joins = meta.app.is_some();
    if joins {
        // The app joined must still hold the credentials the verifying login used (its
        // profile may have been set up again with another app meanwhile).
        let now = load_app(store, &ctx.entries_for(&meta))?;
        if now.is_none_or(|a| a.api_key != app.api_key) {
            if let Some(s) = session {
                revoke_quietly(ctx, &app.api_key, &s.access_token);
            }
            return Err(changed_meanwhile(ctx, "init"));
        }
    } else {
        let id = own_app_id(ctx, store, &config, old_meta.as_ref(), app);
        if config.profiles_on_app(&id, ctx.sandbox).next().is_none() {
            // A new app: a pending rotation filed under its name is a leftover of an app
            // that went away (a kill before its entries were dropped), not this app's.
            store.delete(&Entries::new(&ctx.profile, ctx.sandbox, Some(&id)).pending())?;
        }
        meta.app = Some(id);
    }
    let entries = ctx.entries_for(&meta);
    let before_app = store.get(&entries.app())?;
    let before_session = store.get(&entries.session())?;
    let app_id = meta.app.clone().unwrap_or_default();
    let before_siblings: Vec<(String, ProfileMeta)> = config
        .profiles_on_app(&app_id, ctx.sandbox)
        .filter(|(name, _)| **name != ctx.profile)
        .map(|(n, m)| (n.clone(), m.clone()))
        .collect();
    let staged = StagedProfile {
        meta: meta.clone(),
        app: app.clone(),
        session: session.cloned(),
        replaced: replaced_token(ctx, store, session),
        joins_app: joins,
        previous_app: Some(crate::store::PreviousApp {
            creds: load_app(store, &entries).ok().flatten(),
        }),
    };
    if let Err(e) = set_json_verified(store, &entries.staged(), &staged) {
        let _ = store.delete(&entries.staged());
        return Err(e.into());
    }
    let commit = ctx.config.update(|c| {
        c.profiles_mut(ctx.sandbox)
            .insert(ctx.profile.clone(), meta.clone());
        c.sync_app_settings(&ctx.profile, ctx.sandbox);
    });
    if let Err(e) = commit {
        let _ = store.delete(&entries.staged());
        return Err(e.into());
    }
    if let Err(e) = apply(store, ctx, &staged) {
        if !joins {
            restore(store, &entries.app(), before_app.as_ref());
        }
        restore(store, &entries.session(), before_session.as_ref());
        let _ = ctx.config.update(|c| {
            let profiles = c.profiles_mut(ctx.sandbox);
            match old_meta {
                Some(m) => profiles.insert(ctx.profile.clone(), m),
                None => profiles.remove(&ctx.profile),
            };
            profiles.extend(before_siblings);
        });
        let _ = store.delete(&entries.staged());
        return Err(e);
    }
    interrupt::note(format!(
        "profile {} was stored completely before the interruption",
        ctx.profile_label()
    ));
    finish(ctx, store, &staged)?;
    Ok(old_meta
        .and_then(|m| m.app)
        .filter(|old| Some(old) != meta.app.as_ref()))
}

/// Deletes app `app`'s entries when no profile uses it any more (a profile moved to
/// another app; a kill before this leaves an unused entry, never a missing one).
fn drop_unused_app(ctx: &Ctx<'_>, store: &dyn Store, app: &str) -> Result<(), Error> {
    let config = ctx.config.load()?;
    if config.profiles_on_app(app, ctx.sandbox).next().is_none() {
        let entries = Entries::new(&ctx.profile, ctx.sandbox, Some(app));
        store.delete(&entries.app())?;
        store.delete(&entries.pending())?;
    }
    Ok(())
}

/// The app a profile's own credentials go to: the app it is on when they are that app's
/// (same api_key) or nobody else uses that app; otherwise a new app, so that a family
/// member's app is never overwritten by another app's credentials.
fn own_app_id(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    config: &crate::profile::Config,
    old: Option<&ProfileMeta>,
    app: &AppCredentials,
) -> String {
    if let Some(id) = old.and_then(|m| m.app.as_deref()) {
        let shared = config.app_used_by_others(id, &ctx.profile, ctx.sandbox);
        let same_key = load_app(store, &Entries::new(&ctx.profile, ctx.sandbox, Some(id)))
            .ok()
            .flatten()
            .is_some_and(|a| a.api_key == app.api_key);
        if same_key || !shared {
            return id.to_string();
        }
    }
    config.fresh_app_id(&ctx.profile, ctx.sandbox)
}

/// The live token of the session this write replaces, if it is another one.
fn replaced_token(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    new: Option<&StoredSession>,
) -> Option<ReplacedToken> {
    let entries = ctx.entries();
    // A damaged entry has no token to revoke; it is simply overwritten.
    let old = load_session(store, &entries).ok().flatten()?;
    let app = load_app(store, &entries).ok().flatten()?;
    let now = ctx.ports.clock.now();
    (old.is_valid_at(now) && new.is_none_or(|n| n.access_token != old.access_token)).then(|| {
        ReplacedToken {
            api_key: app.api_key,
            access_token: old.access_token,
        }
    })
}

/// Step 3: the app entry (unless the profile joins an app already stored) and the
/// session entry, read back.
fn apply(store: &dyn Store, ctx: &Ctx<'_>, staged: &StagedProfile) -> Result<(), Error> {
    let entries = ctx.entries_for(&staged.meta);
    if !staged.joins_app {
        set_json_verified(store, &entries.app(), &staged.app)?;
    }
    match &staged.session {
        Some(s) => set_json_verified(store, &entries.session(), s)?,
        None => {
            store.delete(&entries.session())?;
        }
    }
    Ok(())
}

/// Step 4: revoke the replaced token (before the entry that remembers it goes), drop
/// the pre-sharing app entries the profile may have had, then the staged entry.
fn finish(ctx: &Ctx<'_>, store: &dyn Store, staged: &StagedProfile) -> Result<(), Error> {
    if let Some(r) = &staged.replaced
        && revoke_quietly(ctx, &r.api_key, &r.access_token)
    {
        ctx.ui.ok("Revoked the access token of the app it replaces");
    }
    let entries = ctx.entries_for(&staged.meta);
    if entries.app_id().is_some() {
        store.delete(&entries.legacy_app())?;
        store.delete(&entries.legacy_pending())?;
    }
    store.delete(&entries.staged())?;
    Ok(())
}

fn restore(store: &dyn Store, entry: &str, before: Option<&Secret>) {
    let _ = match before {
        Some(v) => store.set(entry, v),
        None => store.delete(entry).map(|_| ()),
    };
}

/// Revokes a token at Kite; `true` when it is dead now (revoked, or already rejected).
/// A failure is a warning: the token dies at 06:00 IST anyway.
pub fn revoke_quietly(ctx: &Ctx<'_>, api_key: &Secret, token: &Secret) -> bool {
    match ctx.ports.kite.invalidate(api_key, token) {
        Ok(()) => true,
        Err(e) if e.is_token_error() => true,
        Err(e) => {
            ctx.ui.warn(format!(
                "Could not revoke an access token at Kite ({e}); it stays valid until 06:00 IST"
            ));
            false
        }
    }
}

/// Finishes or drops an `init` a kill cut short, if the profile's lock file says a
/// holder died (or is at work: then this waits for it). Called whenever a command opens
/// the profile's store.
pub fn recover(ctx: &Ctx<'_>, store: &dyn Store) -> Result<(), Error> {
    let path = crate::lock::profile_lock_path(&ctx.config.dir, &ctx.profile, ctx.sandbox);
    if !crate::lock::is_held_or_was_cut_short(&path) {
        return Ok(());
    }
    let _section = section(ctx, "recovering an interrupted command")?;
    recover_locked(ctx, store)
}

/// For a profile `config.toml` does not name: drops what a first `init` of it left when a
/// kill cut it short (revoking its token), if the lock file says so. Best effort, in the
/// store `--store` names (or the OS keyring): the profile's metadata, which would say
/// where, was never written.
pub fn recover_uncommitted(ctx: &Ctx<'_>) {
    let path = crate::lock::profile_lock_path(&ctx.config.dir, &ctx.profile, ctx.sandbox);
    if !crate::lock::is_held_or_was_cut_short(&path) {
        return;
    }
    let choice = ctx.store_flag.unwrap_or(crate::cli::StoreChoice::Auto);
    if let Ok((store, _)) = ctx.ports.stores.open(choice) {
        let _ = recover(ctx, store.as_ref());
    }
}

/// [`recover`] with the lock held.
fn recover_locked(ctx: &Ctx<'_>, store: &dyn Store) -> Result<(), Error> {
    super::apps::tidy_migration(ctx, store)?;
    let entries = ctx.entries();
    let Some(staged) = get_json::<StagedProfile>(store, &entries.staged())? else {
        return Ok(());
    };
    let committed = ctx
        .config
        .load()?
        .get(&ctx.profile, ctx.sandbox)
        .is_some_and(|m| is_commit_of(m, &staged.meta));
    if committed {
        // The app may be a family's: a rotation of its secret by another profile since
        // the commit must not be undone by this profile's older copy.
        let current = load_app(store, &ctx.entries_for(&staged.meta))?;
        let overtaken = match (&staged.previous_app, &current) {
            (Some(prev), Some(now)) => *now != staged.app && prev.creds.as_ref() != Some(now),
            _ => false,
        };
        let mut staged = staged;
        if overtaken {
            // The login of that `init` used the secret the rotation replaced: its token is
            // revoked like the family's others, and this profile logs in again.
            if let Some(s) = staged.session.take() {
                revoke_quietly(ctx, &staged.app.api_key, &s.access_token);
            }
            staged.joins_app = true;
            ctx.ui.warn(format!(
                "The app of profile {} changed since its interrupted `init` (a family member rotated its secret): kept the app's current credentials; log in again with `{}`",
                ctx.profile_label(),
                ctx.command("login")
            ));
        }
        apply(store, ctx, &staged)?;
        finish(ctx, store, &staged)?;
        ctx.ui.warn(format!(
            "An earlier `init` of profile {} was interrupted after saving it: finished storing its app and session",
            ctx.profile_label()
        ));
    } else {
        if let Some(s) = &staged.session {
            revoke_quietly(ctx, &staged.app.api_key, &s.access_token);
        }
        store.delete(&entries.staged())?;
        ctx.ui.warn(format!(
            "An earlier `init` of profile {} was interrupted before saving it: dropped the new app it had not stored (the profile is as it was)",
            ctx.profile_label()
        ));
    }
    Ok(())
}

/// Whether `stored` is the metadata `staged` committed. Only what belongs to this profile
/// is compared (each `init` writes its own `updated_at`): the app's settings may have been
/// copied over since by a family member's `init` or `import` (`Config::sync_app_settings`).
fn is_commit_of(stored: &ProfileMeta, staged: &ProfileMeta) -> bool {
    stored.client_id == staged.client_id
        && stored.app == staged.app
        && stored.user_name == staged.user_name
        && stored.verified == staged.verified
        && stored.orders == staged.orders
        && stored.created_at == staged.created_at
        && stored.updated_at == staged.updated_at
}

/// For `remove`, under its lock: drops a staged entry, revoking the token it holds.
pub fn drop_staged(ctx: &Ctx<'_>, store: &dyn Store) -> Result<bool, Error> {
    let entries = ctx.entries();
    if let Ok(Some(staged)) = get_json::<StagedProfile>(store, &entries.staged())
        && let Some(s) = &staged.session
    {
        revoke_quietly(ctx, &staged.app.api_key, &s.access_token);
    }
    Ok(store.delete(&entries.staged())?)
}

/// `login`'s write: stores `new` as the session if the profile is still the one logged in
/// to with `used` (not removed, not set up again with another app meanwhile), then
/// revokes the live token it replaced. Otherwise revokes `new` and fails: nothing stored.
pub fn replace_session(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    used: &AppCredentials,
    new: &StoredSession,
) -> Result<(), Error> {
    let replaced = {
        let _section = section(ctx, "login")?;
        // Read under the lock: an `init` that just moved the profile to another app is seen.
        let entries = ctx.entries();
        let exists = ctx.config.load()?.get(&ctx.profile, ctx.sandbox).is_some();
        // The whole credentials: a rotation of a family's shared secret that swapped in a
        // new one since this login started has logged the profile out on purpose.
        let same_app = load_app(store, &entries)?.is_some_and(|a| a == *used);
        if !(exists && same_app) {
            revoke_quietly(ctx, &used.api_key, &new.access_token);
            return Err(changed_meanwhile(ctx, "login"));
        }
        // A damaged entry has no token to revoke; it is simply overwritten.
        let old = load_session(store, &entries).ok().flatten();
        set_json_verified(store, &entries.session(), new)?;
        interrupt::note(format!(
            "the new access token of profile {} was stored",
            ctx.profile_label()
        ));
        let now = ctx.ports.clock.now();
        old.filter(|o| o.access_token != new.access_token && o.is_valid_at(now))
    };
    if let Some(old) = replaced
        && revoke_quietly(ctx, &used.api_key, &old.access_token)
    {
        ctx.ui.ok("Revoked the access token it replaces at Kite");
    }
    Ok(())
}

/// `logout`'s local half: forgets the session only if it still holds `revoked` (a login
/// may have stored a newer token while the revoke was on its way). Whether it did.
pub fn forget_session_if(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    revoked: &Secret,
) -> Result<bool, Error> {
    let entries = ctx.entries();
    let _section = section(ctx, "logout")?;
    if let Ok(Some(now)) = load_session(store, &entries)
        && now.access_token != *revoked
    {
        return Ok(false);
    }
    store.delete(&entries.session())?;
    interrupt::note(format!(
        "the access token of profile {} was forgotten",
        ctx.profile_label()
    ));
    Ok(true)
}

#[cfg(test)]
mod tests;
