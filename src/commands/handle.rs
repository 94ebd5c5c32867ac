//! One profile as a command uses it: its metadata, the store its secrets are in and its
//! entry names, opened once. Commands ask the handle for credentials and sessions instead
//! of passing a store, a metadata record and an entry set around separately.

use std::sync::Arc;

use jiff::Timestamp;

use crate::error::Error;
use crate::profile::ProfileMeta;
use crate::session::{StoredSession, format_ist};
use crate::store::{AppCredentials, Entries, Store, load_app, load_session, set_json_verified};

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

    /// The handle of a profile whose metadata is already loaded (opens its store).
    pub fn profile_handle(&self, meta: ProfileMeta) -> Result<ProfileHandle, Error> {
        let choice = self.store_flag.unwrap_or(meta.store);
        let store = self.stores.open(choice)?.0;
        Ok(ProfileHandle {
            meta,
            store,
            entries: self.entries(),
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

    /// Stores a new session (read back).
    pub fn save_session(&self, s: &StoredSession) -> Result<(), Error> {
        Ok(set_json_verified(self.store(), &self.entries.session(), s)?)
    }

    /// Forgets the stored session; `false` when there was none.
    pub fn forget_session(&self) -> Result<bool, Error> {
        Ok(self.store.delete(&self.entries.session())?)
    }
}
