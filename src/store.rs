//! Where secrets live, as a dependency. `Store` is a tiny key/value API over one service
//! (`kite-setup`) in the OS credential store; the adapters are in `store/`. Entry names
//! and payloads are defined here once (`Entry`, `AppCredentials`, `PendingSecret`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Fix, RunFlags};
use crate::secret::Secret;
use crate::session::StoredSession;

pub mod backends;
pub mod lifetime;

/// The keyring service every entry is filed under.
pub const SERVICE: &str = "kite-setup";

/// How long one keyring call may take before we give up (a locked keyring can hang).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store is not there at all (no D-Bus session, no Secret Service).
    #[error("the {backend} is not available: {detail}")]
    Unavailable { backend: String, detail: String },
    /// The store is there but locked and would need an unlock prompt.
    #[error("the {backend} is locked")]
    Locked { backend: String },
    /// A call did not answer in time.
    #[error("the {backend} did not answer within {seconds} s while trying to {op}")]
    Timeout {
        backend: String,
        op: String,
        seconds: u64,
    },
    /// The store refused or failed one operation.
    #[error("the {backend} failed to {op}: {detail}")]
    Failed {
        backend: String,
        op: String,
        detail: String,
    },
    /// An entry is there but does not hold what kite-setup wrote.
    #[error("the keyring entry {entry} is damaged")]
    Corrupt { entry: String },
    /// A value was written but did not read back the same.
    #[error("the {backend} did not keep what was written to {entry}")]
    ReadBackMismatch { backend: String, entry: String },
}

impl StoreError {
    /// The fix as a run of the default live profile would read it (tests; commands
    /// render [`StoreError::fix`] with their run's flags).
    pub fn hint(&self) -> String {
        self.fix().render(&RunFlags::default())
    }

    pub fn fix(&self) -> Fix {
        match self {
            StoreError::Unavailable { .. } => "start a Secret Service (e.g. gnome-keyring-daemon, KeePassXC) in this session, or choose --store keyutils (kernel keyring, lost at reboot) or --store file (plaintext, mode 0600)".into(),
            StoreError::Locked { .. } => "unlock your keyring (log in to the desktop, or `gnome-keyring-daemon --unlock`), then try again".into(),
            StoreError::Timeout { .. } => Fix::text("the keyring may be locked and waiting for a prompt nobody sees: unlock it, or run ").and_run("doctor"),
            StoreError::Failed { .. } => Fix::text("run ").and_run("doctor").and(" to test the keyring; nothing was changed"),
            StoreError::Corrupt { entry } if entry.ends_with("/session") => {
                Fix::text("log in again with ").and_run("login --force").and(" to rewrite it")
            }
            StoreError::Corrupt { entry } if entry.ends_with("/pending") => {
                Fix::text("drop the interrupted rotation with ").and_run("regenerate --abort").and(", then regenerate again")
            }
            StoreError::Corrupt { .. } => Fix::text("run ").and_run("init").and(" again for this profile to rewrite it"),
            StoreError::ReadBackMismatch { .. } => Fix::text("the keyring is not keeping entries; run ").and_run("doctor").and(" and try another store"),
        }
    }
}

/// A key/value store of secrets. Every call must return within the store's timeout.
pub trait Store: Send + Sync {
    fn get(&self, entry: &str) -> Result<Option<Secret>, StoreError>;
    fn set(&self, entry: &str, value: &Secret) -> Result<(), StoreError>;
    /// Deletes; `Ok(false)` when there was nothing to delete.
    fn delete(&self, entry: &str) -> Result<bool, StoreError>;
    /// What this store is, for messages and `status` ("Secret Service", ...).
    fn describe(&self) -> String;
    /// The names of kite-setup's entries that start with `prefix` (for cleaning up stale
    /// probe entries), or `None` when this store cannot list them.
    fn list(&self, prefix: &str) -> Result<Option<Vec<String>>, StoreError> {
        let _ = prefix;
        Ok(None)
    }
}

/// The entries of one profile: its own (session, staged, origin) and those of the app it
/// uses (credentials, pending rotation), filed once per app under `apps/<app>/` so that
/// the profiles of one family's app share one api_secret (docs/apps.md). A profile that
/// names no app yet is one an earlier kite-setup wrote: its app entries are still under
/// its own name. Sandbox entries are filed under `sandbox/` so they can never be mistaken
/// for live ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entries {
    prefix: String,
    app_prefix: String,
    app: Option<String>,
}

impl Entries {
    /// The entries of `profile` on app `app` (`None`: the pre-sharing layout).
    pub fn new(profile: &str, sandbox: bool, app: Option<&str>) -> Self {
        let root = if sandbox { "sandbox/" } else { "" };
        let prefix = format!("{root}{profile}");
        let app_prefix = match app {
            Some(id) => format!("{root}apps/{id}"),
            None => prefix.clone(),
        };
        Self {
            prefix,
            app_prefix,
            app: app.map(str::to_string),
        }
    }

    /// The app these entries' credentials belong to, if the profile names one.
    pub fn app_id(&self) -> Option<&str> {
        self.app.as_deref()
    }

    /// api_key + api_secret, of the app.
    pub fn app(&self) -> String {
        format!("{}/app", self.app_prefix)
    }

    /// A new api_secret during a rotation, before it replaces the old one (of the app).
    pub fn pending(&self) -> String {
        format!("{}/pending", self.app_prefix)
    }

    /// The app entry of the pre-sharing layout, under the profile's own name.
    pub fn legacy_app(&self) -> String {
        format!("{}/app", self.prefix)
    }

    /// The pending entry of the pre-sharing layout, under the profile's own name.
    pub fn legacy_pending(&self) -> String {
        format!("{}/pending", self.prefix)
    }

    /// Today's access token, login time and expiry.
    pub fn session(&self) -> String {
        format!("{}/session", self.prefix)
    }

    /// The whole new profile while `init` stores it ([`StagedProfile`]).
    pub fn staged(&self) -> String {
        format!("{}/staged", self.prefix)
    }

    /// Where the stored session came from when it was pushed (`import`); no secret.
    pub fn origin(&self) -> String {
        format!("{}/origin", self.prefix)
    }
}

/// The app entry's payload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppCredentials {
    pub api_key: Secret,
    pub api_secret: Secret,
}

/// The pending entry's payload during `regenerate`: the new secret and everything needed
/// to finish the rotation after a crash (it is a keyring entry, so secrets may live here).
/// Fields after `step` were added with the rotation state machine; `#[serde(default)]`
/// keeps older payloads readable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingSecret {
    /// The new api_secret.
    pub api_secret: Secret,
    /// The rotation step reached, persisted before each next step.
    pub step: String,
    /// The app the new secret belongs to (checked against the main entry on resume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    /// The secret being replaced: needed for the leak scan after a resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_api_secret: Option<Secret>,
    /// The access token issued with the old secret: revoked at Kite by the rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_access_token: Option<Secret>,
    /// The session of the verifying login with the new secret, stored at the swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_session: Option<StoredSession>,
    /// The profile the rotation runs for: `old_access_token` and `new_session` are its.
    /// (The entry is the app's, so another profile on the app sees it too.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The access tokens of the app's other profiles, taken before their sessions are
    /// forgotten at the swap, so that a crash anywhere still lets the rotation revoke them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_tokens: Vec<OtherToken>,
}

/// An access token of another profile on the app, revoked by a rotation of its secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OtherToken {
    pub profile: String,
    pub access_token: Secret,
}

/// The staged entry's payload while `init` stores a profile: the whole new profile, written
/// first, so that a process killed half-way leaves the old profile (the metadata does not
/// name this one yet: the entry is dropped) or the means to finish the new one (it does:
/// the entry is applied). See `commands::txn`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StagedProfile {
    /// The metadata being written; equal to the file's once the profile is committed.
    pub meta: crate::profile::ProfileMeta,
    pub app: AppCredentials,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<StoredSession>,
    /// The access token the new profile replaces, revoked before this entry is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<ReplacedToken>,
    /// The profile joins an app whose credentials are already stored (a family member's):
    /// `app` is a copy for revoking, and the app entry is not written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub joins_app: bool,
    /// The app entry `app` replaces, as it was before the commit: a recovery writes `app`
    /// only while the entry still holds that (or `app`). Absent in entries written before
    /// apps were shared (the app was the profile's alone then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_app: Option<PreviousApp>,
}

/// What an app entry held before a staged `init` replaced it (`None`: no entry).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PreviousApp {
    pub creds: Option<AppCredentials>,
}

/// An access token being replaced, with the api_key Kite needs to revoke it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReplacedToken {
    pub api_key: Secret,
    pub access_token: Secret,
}

/// Reads a JSON payload from an entry.
pub fn get_json<T: for<'de> Deserialize<'de>>(
    store: &dyn Store,
    entry: &str,
) -> Result<Option<T>, StoreError> {
    match store.get(entry)? {
        None => Ok(None),
        Some(raw) => {
            serde_json::from_str(raw.expose())
                .map(Some)
                .map_err(|_| StoreError::Corrupt {
                    entry: entry.to_string(),
                })
        }
    }
}

/// Writes a JSON payload to an entry and reads it back to prove it landed.
pub fn set_json_verified<T: Serialize>(
    store: &dyn Store,
    entry: &str,
    value: &T,
) -> Result<(), StoreError> {
    let raw = Secret::new(serde_json::to_string(value).expect("payload serializes"));
    store.set(entry, &raw)?;
    match store.get(entry)? {
        Some(back) if back == raw => Ok(()),
        _ => Err(StoreError::ReadBackMismatch {
            backend: store.describe(),
            entry: entry.to_string(),
        }),
    }
}

pub fn load_app(
    store: &dyn Store,
    entries: &Entries,
) -> Result<Option<AppCredentials>, StoreError> {
    get_json(store, &entries.app())
}

pub fn load_session(
    store: &dyn Store,
    entries: &Entries,
) -> Result<Option<StoredSession>, StoreError> {
    get_json(store, &entries.session())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::MemoryStore;

    #[test]
    fn sandbox_entries_are_apart_from_live() {
        let live = Entries::new("default", false, None);
        let sb = Entries::new("default", true, None);
        assert_eq!(live.app(), "default/app");
        assert_eq!(sb.app(), "sandbox/default/app");
        assert_ne!(live.session(), sb.session());
    }

    #[test]
    fn profiles_on_one_app_share_its_entries_and_keep_their_own_sessions() {
        let me = Entries::new("default", false, Some("family"));
        let spouse = Entries::new("spouse", false, Some("family"));
        assert_eq!(me.app(), "apps/family/app");
        assert_eq!(me.app(), spouse.app());
        assert_eq!(me.pending(), spouse.pending());
        assert_ne!(me.session(), spouse.session());
        assert_eq!(me.legacy_app(), "default/app");
        let sb = Entries::new("spouse", true, Some("family"));
        assert_eq!(sb.app(), "sandbox/apps/family/app");
    }

    #[test]
    fn json_round_trip_with_read_back() {
        let s = MemoryStore::default();
        let creds = AppCredentials {
            api_key: "k".into(),
            api_secret: "s".into(),
        };
        set_json_verified(&s, "p/app", &creds).unwrap();
        let back: AppCredentials = get_json(&s, "p/app").unwrap().unwrap();
        assert_eq!(back, creds);
    }

    #[test]
    fn garbage_in_an_entry_is_corrupt_not_a_panic() {
        let s = MemoryStore::default();
        s.set("p/app", &"not json".into()).unwrap();
        let err = get_json::<AppCredentials>(&s, "p/app").unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }));
        assert!(!err.to_string().contains("not json"));
    }
}
