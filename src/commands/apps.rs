//! Apps shared by several profiles (docs/apps.md): one developer-console app serves the
//! client IDs of a family, so its api_key and api_secret are stored once, under
//! `apps/<app>/`, and each profile is one client ID with its own session on it.
//!
//! A profile an earlier kite-setup wrote keeps its credentials under its own name and
//! names no app. The first command that opens it moves them ([`migrate`]), under the
//! profile's lock and as one critical section:
//! 1. copy the app entry (and a pending rotation's entry) to the app's names, read back;
//! 2. `config.toml` names the app: **the commit**;
//! 3. delete the entries under the profile's own name.
//!
//! A kill before 2 leaves the profile as it was (the copies are written again, the same,
//! next time); a kill after it leaves leftovers that the next command deletes
//! ([`tidy_migration`], run when the lock file says a holder was cut short).

use crate::error::Error;
use crate::interrupt;
use crate::profile::{Config, ProfileMeta};
use crate::secret::Secret;
use crate::store::{Entries, Store, StoreError};

use super::Ctx;

/// Moves a pre-sharing profile's app entries to an app of its own (module docs); returns
/// the metadata as it is now. A profile that already names an app is returned unchanged.
pub fn migrate(ctx: &Ctx<'_>, store: &dyn Store, meta: ProfileMeta) -> Result<ProfileMeta, Error> {
    if meta.app.is_some() {
        return Ok(meta);
    }
    // A store that cannot be read fails here, before the lock file is written.
    let old = Entries::new(&ctx.profile, ctx.sandbox, None);
    store.get(&old.app())?;
    let _section = super::txn::section(ctx, "moving the profile's app entries")?;
    let config = ctx.config.load()?;
    let Some(current) = config.get(&ctx.profile, ctx.sandbox).cloned() else {
        return Ok(meta);
    };
    if current.app.is_some() {
        // Another process moved them while this one waited for the lock.
        return Ok(current);
    }
    // A family member already moved with the very same credentials: the earlier release
    // kept a copy per profile, this one shares the app's (one secret to rotate).
    let (id, _app_lock) =
        if let Some((id, lock)) = same_app_here(ctx, store, &config, &current, &old)? {
            (id, Some(lock))
        } else {
            let id = config.fresh_app_id(&ctx.profile, ctx.sandbox);
            let new = Entries::new(&ctx.profile, ctx.sandbox, Some(&id));
            // No profile names `id`: whatever is filed under it is a leftover.
            copy_or_clear(store, &old.app(), &new.app())?;
            copy_or_clear(store, &old.pending(), &new.pending())?;
            (id, None)
        };
    let moved = ctx.config.update(|c| {
        let m = c.profiles_mut(ctx.sandbox).get_mut(&ctx.profile)?;
        if m.app.is_none() {
            m.app = Some(id.clone());
        }
        c.sync_app_settings_into(&ctx.profile, ctx.sandbox);
        c.get(&ctx.profile, ctx.sandbox).cloned()
    })?;
    let Some(moved) = moved else {
        return Ok(current);
    };
    interrupt::note(format!(
        "profile {}'s app entries were moved to app {id}",
        ctx.profile_label()
    ));
    delete_legacy(store, &old)?;
    Ok(moved)
}

/// The app (with its lock held) that another profile of this store already uses with
/// exactly the credentials `old` holds, when there is no rotation of them pending here.
fn same_app_here(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    config: &Config,
    current: &ProfileMeta,
    old: &Entries,
) -> Result<Option<(String, crate::lock::Lock)>, Error> {
    if store.get(&old.pending())?.is_some() {
        return Ok(None);
    }
    let Some(mine) = crate::store::load_app(store, old)? else {
        return Ok(None);
    };
    let Some(id) = app_for_key(ctx, store, config, &mine.api_key) else {
        return Ok(None);
    };
    if config
        .profiles_on_app(&id, ctx.sandbox)
        .any(|(_, m)| m.store != current.store)
    {
        return Ok(None);
    }
    let lock = crate::lock::app_lock(&ctx.config.dir, &id, ctx.sandbox, "moving a profile")
        .map_err(|e| Error::from(crate::profile::ConfigError::from(e)))?;
    let entries = Entries::new(&ctx.profile, ctx.sandbox, Some(&id));
    let same = crate::store::load_app(store, &entries)?.is_some_and(|a| a == mine)
        && store.get(&entries.pending())?.is_none();
    Ok(same.then_some((id, lock)))
}

/// [`copy_verified`], or deletes `to` when `from` holds nothing.
fn copy_or_clear(store: &dyn Store, from: &str, to: &str) -> Result<(), StoreError> {
    if store.get(from)?.is_none() {
        store.delete(to)?;
        return Ok(());
    }
    copy_verified(store, from, to)
}

/// Writes `from`'s value (if any) to `to`, byte for byte, and reads it back.
fn copy_verified(store: &dyn Store, from: &str, to: &str) -> Result<(), StoreError> {
    let Some(value) = store.get(from)? else {
        return Ok(());
    };
    store.set(to, &value)?;
    match store.get(to)? {
        Some(back) if back == value => Ok(()),
        _ => Err(StoreError::ReadBackMismatch {
            backend: store.describe(),
            entry: to.to_string(),
        }),
    }
}

fn delete_legacy(store: &dyn Store, legacy: &Entries) -> Result<(), StoreError> {
    store.delete(&legacy.legacy_app())?;
    store.delete(&legacy.legacy_pending())?;
    Ok(())
}

/// After a kill: deletes what a migration cut short after its commit left under the
/// profile's own name (the app's copies were read back before the commit). Should the
/// app's copy be missing all the same (a store that lost a write), the profile's own entry
/// is the only copy of the credentials: it is copied first, then deleted. Called with the
/// profile's lock held.
pub fn tidy_migration(ctx: &Ctx<'_>, store: &dyn Store) -> Result<(), Error> {
    let config = ctx.config.load()?;
    let Some(id) = config
        .get(&ctx.profile, ctx.sandbox)
        .and_then(|m| m.app.clone())
    else {
        return Ok(());
    };
    let entries = Entries::new(&ctx.profile, ctx.sandbox, Some(&id));
    if store.get(&entries.legacy_app())?.is_none()
        && store.get(&entries.legacy_pending())?.is_none()
    {
        return Ok(());
    }
    if store.get(&entries.app())?.is_none() {
        copy_verified(store, &entries.legacy_app(), &entries.app())?;
        if store.get(&entries.pending())?.is_none() {
            copy_verified(store, &entries.legacy_pending(), &entries.pending())?;
        }
    }
    delete_legacy(store, &entries)?;
    Ok(())
}

/// The other profiles on `meta`'s app, by name (none for a profile on an app of its own).
pub fn siblings(config: &Config, profile: &str, meta: &ProfileMeta, sandbox: bool) -> Vec<String> {
    meta.app.as_deref().map_or_else(Vec::new, |id| {
        config
            .profiles_on_app(id, sandbox)
            .filter(|(name, _)| *name != profile)
            .map(|(name, _)| name.clone())
            .collect()
    })
}

/// The app in `config` (on this sandbox-ness) whose stored api_key is `api_key`, if one
/// is: a second family member pushed to the same server joins it instead of storing the
/// credentials twice.
pub fn app_for_key(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    config: &Config,
    api_key: &Secret,
) -> Option<String> {
    let ids: std::collections::BTreeSet<&str> = config
        .profiles(ctx.sandbox)
        .values()
        .filter_map(|m| m.app.as_deref())
        .collect();
    ids.into_iter()
        .find(|id| {
            crate::store::load_app(store, &Entries::new(&ctx.profile, ctx.sandbox, Some(id)))
                .ok()
                .flatten()
                .is_some_and(|a| a.api_key.ct_eq(api_key))
        })
        .map(str::to_string)
}

#[cfg(test)]
mod tests;
