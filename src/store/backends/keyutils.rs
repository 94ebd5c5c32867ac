//! `--store keyutils`: the Linux kernel keyring.
//!
//! Which keyring: the **user keyring** (`@u`, `_uid.<uid>`). It is shared by every process
//! of the user, so a key written by one `kite-setup` run is read by the next one, and it
//! lives until reboot: measured (tests/ssh_cli.rs) to outlive the SSH session that wrote
//! it and the user's last process (since Linux 5.3 the user keyring is kept by the user
//! namespace, not by the user's processes). The session
//! keyring that `linux-keyutils-keyring-store` uses does not work for a CLI: with no PAM
//! session the default session keyring is the user-session keyring, which the process
//! does not *possess*, so reading back its own key fails with `EACCES`; and a real session
//! keyring dies with the login session. Each key is also given user-level view/read/
//! search permission, so a process of the same user that does not possess `@u` (a
//! session keyring without the usual link to it) can still read it: the same trust as
//! the Secret Service, which any process of the user may ask.
//!
//! Key descriptions follow the keyring crate's convention, `keyring:<entry>@kite-setup`
//! (`keyctl search @u user keyring:default/app@kite-setup`). Calls are plain syscalls that
//! do not block, so they run without a worker thread.

use linux_keyutils::{KeyError, KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};

use crate::secret::Secret;
use crate::store::{SERVICE, Store, StoreError};

const BACKEND: &str = "kernel keyring";

/// The Linux kernel user keyring (`@u`): shared by the user's processes, lost at reboot.
#[derive(Debug, Default, Clone)]
pub struct KeyutilsStore {
    _private: (),
}

impl KeyutilsStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The kernel key description for an entry.
    pub fn description(entry: &str) -> String {
        format!("keyring:{entry}@{SERVICE}")
    }

    fn keyring(op: &str) -> Result<KeyRing, StoreError> {
        KeyRing::from_special_id(KeyRingIdentifier::User, true).map_err(|e| map_error(e, op))
    }
}

fn map_error(err: KeyError, op: &str) -> StoreError {
    match err {
        KeyError::OperationNotSupported => StoreError::Unavailable {
            backend: BACKEND.into(),
            detail: "the kernel has no key management (keyutils) support".into(),
        },
        other => StoreError::Failed {
            backend: BACKEND.into(),
            op: op.into(),
            detail: other.to_string(),
        },
    }
}

fn is_gone(err: KeyError) -> bool {
    matches!(
        err,
        KeyError::KeyDoesNotExist | KeyError::KeyRevoked | KeyError::KeyExpired
    )
}

impl Store for KeyutilsStore {
    fn get(&self, entry: &str) -> Result<Option<Secret>, StoreError> {
        let op = format!("read {entry}");
        let ring = Self::keyring(&op)?;
        let key = match ring.search(&Self::description(entry)) {
            Ok(key) => key,
            Err(e) if is_gone(e) => return Ok(None),
            Err(e) => return Err(map_error(e, &op)),
        };
        let bytes = match key.read_to_vec() {
            Ok(bytes) => bytes,
            // Invalidated between the search and the read.
            Err(e) if is_gone(e) => return Ok(None),
            Err(e) => return Err(map_error(e, &op)),
        };
        match String::from_utf8(bytes) {
            Ok(text) => Ok(Some(Secret::new(text))),
            Err(e) => {
                let mut bytes = e.into_bytes();
                zeroize::Zeroize::zeroize(&mut bytes);
                Err(StoreError::Corrupt {
                    entry: entry.into(),
                })
            }
        }
    }

    fn set(&self, entry: &str, value: &Secret) -> Result<(), StoreError> {
        let op = format!("write {entry}");
        if value.is_empty() {
            // The kernel cannot hold an empty payload in a `user` key.
            return Err(StoreError::Failed {
                backend: BACKEND.into(),
                op,
                detail: "the kernel keyring cannot hold an empty value".into(),
            });
        }
        let ring = Self::keyring(&op)?;
        let key = ring
            .add_key(&Self::description(entry), value.expose().as_bytes())
            .map_err(|e| map_error(e, &op))?;
        let perms = KeyPermissionsBuilder::builder()
            .posessor(Permission::ALL)
            .user(Permission::VIEW | Permission::READ | Permission::SEARCH)
            .build();
        key.set_perms(perms).map_err(|e| map_error(e, &op))
    }

    fn delete(&self, entry: &str) -> Result<bool, StoreError> {
        let op = format!("delete {entry}");
        let ring = Self::keyring(&op)?;
        let key = match ring.search(&Self::description(entry)) {
            Ok(key) => key,
            Err(e) if is_gone(e) => return Ok(false),
            Err(e) => return Err(map_error(e, &op)),
        };
        match key.invalidate() {
            Ok(()) => Ok(true),
            Err(e) if is_gone(e) => Ok(false),
            Err(e) => Err(map_error(e, &op)),
        }
    }

    fn describe(&self) -> String {
        "Linux kernel keyring (user keyring, lost at reboot)".into()
    }

    /// The user keyring's keys whose description is one of ours under `prefix`.
    fn list(&self, prefix: &str) -> Result<Option<Vec<String>>, StoreError> {
        let op = "list entries";
        let ring = Self::keyring(op)?;
        let links = ring.get_links(4096).map_err(|e| map_error(e, op))?;
        let suffix = format!("@{SERVICE}");
        let names = links
            .iter()
            .filter_map(linux_keyutils::LinkNode::as_key)
            .filter_map(|k| k.metadata().ok())
            .filter_map(|m| {
                m.get_description()
                    .strip_prefix("keyring:")
                    .and_then(|d| d.strip_suffix(suffix.as_str()))
                    .filter(|d| d.starts_with(prefix))
                    .map(str::to_string)
            })
            .collect();
        Ok(Some(names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_the_user_keyring() {
        let store = KeyutilsStore::new();
        let entry = format!("_unit/{}", super::super::random_hex(6));
        assert!(store.get(&entry).unwrap().is_none());
        store.set(&entry, &Secret::from("v1")).unwrap();
        store.set(&entry, &Secret::from("v2")).unwrap();
        assert_eq!(store.get(&entry).unwrap().unwrap().expose(), "v2");
        assert!(store.delete(&entry).unwrap());
        assert!(store.get(&entry).unwrap().is_none());
        assert!(!store.delete(&entry).unwrap());
        assert!(store.describe().contains("lost at reboot"));
        store.set(&entry, &Secret::from("v3")).unwrap();
        let listed = store.list("_unit/").unwrap().unwrap();
        assert!(listed.contains(&entry), "{listed:?}");
        assert!(store.delete(&entry).unwrap());
        assert!(!store.list("_unit/").unwrap().unwrap().contains(&entry));
    }
}
