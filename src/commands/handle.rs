//! One profile as a command uses it: its metadata, the store its secrets are in and its
//! entry names, opened once. Commands ask the handle for credentials and sessions instead
//! of passing a store, a metadata record and an entry set around separately.

use std::sync::Arc;

use jiff::Timestamp;

use crate::error::Error;
use crate::profile::ProfileMeta;
use crate::secret::Secret;
use crate::session::{StoredSession, format_ist};
use crate::store::{AppCredentials, Entries, Store, load_app, load_session};

use super::Ctx;

pub struct ProfileHandle {
    pub meta: ProfileMeta,
    pub store: Arc<dyn Store>,
    pub entries: Entries,
    /// The profile as people read it (`work (sandbox)`).
    label: String,
}

impl Ctx<'_> {
    /// The run's profile, set up and with its store open; "login needed" when it is not
    /// set up.
    pub fn open_profile(&self) -> Result<ProfileHandle, Error> {
        let meta = self.require_profile()?;
        self.profile_handle(meta)
    }

    /// The handle of a profile whose metadata is already loaded (opens its store, and
    /// first finishes or drops any `init` of it a kill cut short, `txn::recover`, and moves a
    /// pre-sharing profile's app entries, `apps::migrate`).
    pub fn profile_handle(&self, meta: ProfileMeta) -> Result<ProfileHandle, Error> {
        // Only the store it records: never a fallback in its place.
        let store = self.open_recorded(&meta)?;
        super::txn::recover(self, store.as_ref())?;
        // The first command on a profile an earlier kite-setup wrote files its app apart.
        let meta = super::apps::migrate(self, store.as_ref(), meta)?;
        Ok(ProfileHandle {
            entries: self.entries_for(&meta),
            meta,
            store,
            label: self.profile_label(),
        })
    }
}

impl ProfileHandle {
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The app credentials, if stored.
    pub fn app(&self) -> Result<Option<AppCredentials>, Error> {
        Ok(load_app(self.store(), &self.entries)?)
    }

    /// The app credentials, or "login needed".
    pub fn require_app(&self) -> Result<AppCredentials, Error> {
        self.app()?.ok_or_else(|| Error::NoAppCredentials {
            label: self.label.clone(),
        })
    }

    /// The stored session, valid or not.
    pub fn session(&self) -> Result<Option<StoredSession>, Error> {
        Ok(load_session(self.store(), &self.entries)?)
    }

    /// The stored session if it is still valid at `now`.
    pub fn valid_session(&self, now: Timestamp) -> Result<Option<StoredSession>, Error> {
        Ok(self.session()?.filter(|s| s.is_valid_at(now)))
    }

    /// The session valid at `now`, or exit 4 with the reason.
    pub fn require_session(&self, now: Timestamp) -> Result<StoredSession, Error> {
        match self.session()? {
            Some(s) if s.is_valid_at(now) => Ok(s),
            Some(s) => Err(Error::NoValidToken {
                expired_at: Some(format_ist(s.expires_at)),
            }),
            None => Err(Error::NoValidToken { expired_at: None }),
        }
    }

    /// Stores the session a login with `used` got, if the profile is still the one it
    /// logged in to, and revokes the token it replaces (`txn::replace_session`).
    pub fn replace_session(
        &self,
        ctx: &Ctx<'_>,
        used: &AppCredentials,
        new: &StoredSession,
    ) -> Result<(), Error> {
        super::txn::replace_session(ctx, self.store(), used, new)
    }

    /// Forgets the session if it still holds `revoked` (a login may have stored a newer
    /// one meanwhile); whether it did (`txn::forget_session_if`).
    pub fn forget_session_if(&self, ctx: &Ctx<'_>, revoked: &Secret) -> Result<bool, Error> {
        super::txn::forget_session_if(ctx, self.store(), revoked)
    }

    /// This profile's state-changing section: its lock, and no interruption until it ends
    /// (`txn::section`).
    pub fn section(&self, ctx: &Ctx<'_>, command: &str) -> Result<super::txn::Section, Error> {
        super::txn::section(ctx, command)
    }
}
