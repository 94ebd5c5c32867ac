//! The OS credential store through keyring-core, with the store crate chosen explicitly per
//! platform. There is no in-memory fallback: a platform without one gets `Unavailable`.

use std::sync::Arc;
use std::time::Duration;

use keyring_core::{CredentialStore, Entry};

use super::with_timeout;
use crate::secret::Secret;
use crate::store::{SERVICE, Store, StoreError};

/// The OS credential store. Connects once (in [`KeyringStore::connect`]) and reuses that
/// connection for every call; every call, the connect included, runs under the timeout.
///
/// Items are filed with `service = kite-setup` and `username = <entry name>`; on Linux the
/// Secret Service items carry exactly those attributes, so
/// `secret-tool lookup service kite-setup username default/app` finds them.
///
/// After a timeout the abandoned call may still hold the connection (the store crate
/// serialises calls on one mutex), so later calls on the same store time out too: report
/// the first timeout and exit rather than retry.
///
/// Cost on Linux: the connect does a Diffie-Hellman session handshake (1024-bit, pure
/// Rust `num-bigint`), ~2 ms optimised but ~30 ms in an unoptimised build; each read is a
/// search plus a GetSecret, ~1.5 ms.
pub struct KeyringStore {
    store: Arc<CredentialStore>,
    timeout: Duration,
}

/// Human name of this platform's store, for messages and `status`.
#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
pub const BACKEND: &str = "Secret Service";
#[cfg(target_os = "macos")]
pub const BACKEND: &str = "macOS Keychain";
#[cfg(target_os = "windows")]
pub const BACKEND: &str = "Windows Credential Manager";
#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "macos",
    target_os = "windows"
)))]
pub const BACKEND: &str = "OS credential store";

impl KeyringStore {
    /// Connects to the platform store (on Linux: a D-Bus session connection and a Secret
    /// Service session), giving up after `timeout`.
    pub fn connect(timeout: Duration) -> Result<Self, StoreError> {
        let store = with_timeout(BACKEND, "connect", timeout, platform_store)?;
        Ok(Self { store, timeout })
    }

    fn call<T, F>(&self, op: &str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Arc<CredentialStore>) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        with_timeout(BACKEND, op, self.timeout, move || f(&store))
    }
}

#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
fn platform_store() -> Result<Arc<CredentialStore>, StoreError> {
    let store = zbus_secret_service_keyring_store::Store::new()
        .map_err(|e| map_error(e, "connect", "connect"))?;
    Ok(store)
}

#[cfg(target_os = "macos")]
fn platform_store() -> Result<Arc<CredentialStore>, StoreError> {
    let store = apple_native_keyring_store::keychain::Store::new()
        .map_err(|e| map_error(e, "connect", "connect"))?;
    Ok(store)
}

#[cfg(target_os = "windows")]
fn platform_store() -> Result<Arc<CredentialStore>, StoreError> {
    let store = windows_native_keyring_store::Store::new()
        .map_err(|e| map_error(e, "connect", "connect"))?;
    Ok(store)
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "macos",
    target_os = "windows"
)))]
fn platform_store() -> Result<Arc<CredentialStore>, StoreError> {
    Err(StoreError::Unavailable {
        backend: BACKEND.into(),
        detail: "this build knows no credential store for this operating system".into(),
    })
}

fn entry_in(store: &Arc<CredentialStore>, name: &str, op: &str) -> Result<Entry, StoreError> {
    Entry::new_in_store(store, SERVICE, name).map_err(|e| map_error(e, op, name))
}

impl Store for KeyringStore {
    fn get(&self, entry: &str) -> Result<Option<Secret>, StoreError> {
        let name = entry.to_string();
        self.call(&format!("read {entry}"), move |store| {
            let op = format!("read {name}");
            let e = entry_in(store, &name, &op)?;
            match e.get_password() {
                Ok(value) => Ok(Some(Secret::new(value))),
                Err(keyring_core::Error::NoEntry) => Ok(None),
                Err(err) => Err(map_error(err, &op, &name)),
            }
        })
    }

    fn set(&self, entry: &str, value: &Secret) -> Result<(), StoreError> {
        let name = entry.to_string();
        let value = value.clone();
        self.call(&format!("write {entry}"), move |store| {
            let op = format!("write {name}");
            let e = entry_in(store, &name, &op)?;
            e.set_password(value.expose())
                .map_err(|err| map_error(err, &op, &name))
        })
    }

    fn delete(&self, entry: &str) -> Result<bool, StoreError> {
        let name = entry.to_string();
        self.call(&format!("delete {entry}"), move |store| {
            let op = format!("delete {name}");
            let e = entry_in(store, &name, &op)?;
            match e.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring_core::Error::NoEntry) => Ok(false),
                Err(err) => Err(map_error(err, &op, &name)),
            }
        })
    }

    fn describe(&self) -> String {
        BACKEND.into()
    }

    /// Searches the store for every item filed under the `kite-setup` service and reads
    /// each one's user name (the entry name): attributes only, never a secret.
    fn list(&self, prefix: &str) -> Result<Option<Vec<String>>, StoreError> {
        let prefix = prefix.to_string();
        self.call("list entries", move |store| {
            let op = "list entries";
            let spec = std::collections::HashMap::from([("service", SERVICE)]);
            let found = store.search(&spec).map_err(|e| map_error(e, op, op))?;
            let mut names = Vec::new();
            for entry in found {
                let attrs = entry.get_attributes().map_err(|e| map_error(e, op, op))?;
                if let Some(name) = attrs.get("username").filter(|n| n.starts_with(&prefix)) {
                    names.push(name.clone());
                }
            }
            Ok(Some(names))
        })
    }
}

/// Maps a keyring-core error to a `StoreError`. Never formats the error's payload bytes
/// (`BadEncoding`/`BadDataFormat` carry the stored value): only texts known to be free of
/// secrets reach the message.
pub(super) fn map_error(err: keyring_core::Error, op: &str, entry: &str) -> StoreError {
    use keyring_core::Error as E;
    let backend = BACKEND.to_string();
    match err {
        E::NoStorageAccess(inner) => {
            let text = inner.to_string();
            if let Some(detail) = unavailable_detail(&text) {
                StoreError::Unavailable { backend, detail }
            } else {
                // Secret Service: locked item or collection, or an unlock prompt that was
                // dismissed or could not be shown; macOS/Windows: access refused.
                StoreError::Locked { backend }
            }
        }
        E::PlatformFailure(inner) => {
            let text = inner.to_string();
            if let Some(detail) = unavailable_detail(&text) {
                StoreError::Unavailable { backend, detail }
            } else if text.contains("prompt") || text.contains("locked") {
                StoreError::Locked { backend }
            } else {
                StoreError::Failed {
                    backend,
                    op: op.into(),
                    detail: text,
                }
            }
        }
        E::BadEncoding(_) | E::BadDataFormat(..) => StoreError::Corrupt {
            entry: entry.into(),
        },
        E::Ambiguous(items) => StoreError::Failed {
            backend,
            op: op.into(),
            detail: format!(
                "{} items match service {SERVICE} and username {entry}; remove the extra ones (e.g. with seahorse)",
                items.len()
            ),
        },
        E::NoEntry => StoreError::Failed {
            backend,
            op: op.into(),
            detail: "no such entry".into(),
        },
        // Invalid, TooLong, BadStoreFormat, NoDefaultStore, NotSupportedByStore and any
        // later variant: their texts name attributes and limits, never values.
        other => StoreError::Failed {
            backend,
            op: op.into(),
            detail: other.to_string(),
        },
    }
}

/// Recognises "there is no store to talk to" in a Secret Service / zbus error text and
/// says which part is missing.
fn unavailable_detail(text: &str) -> Option<String> {
    let no_service = [
        "ServiceUnknown",
        "was not provided by any .service files",
        "NameHasNoOwner",
    ];
    let no_bus = [
        "no secret service provider or dbus session found",
        "Connection refused",
        "No such file or directory",
        "Address",
        "address",
    ];
    if no_service.iter().any(|p| text.contains(p)) {
        Some(format!(
            "no Secret Service on the D-Bus session bus ({text})"
        ))
    } else if no_bus.iter().any(|p| text.contains(p)) {
        Some(format!("no D-Bus session bus to connect to ({text})"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(text: &str) -> keyring_core::error::PlatformError {
        text.to_string().into()
    }

    #[test]
    fn no_bus_is_unavailable_and_says_so() {
        let err = map_error(
            keyring_core::Error::PlatformFailure(boxed(
                "no secret service provider or dbus session found",
            )),
            "connect",
            "connect",
        );
        match err {
            StoreError::Unavailable { detail, .. } => assert!(detail.contains("no D-Bus")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_secret_service_is_unavailable_and_says_so() {
        let err = map_error(
            keyring_core::Error::PlatformFailure(boxed(
                "zbus error: org.freedesktop.DBus.Error.ServiceUnknown: The name is not activatable",
            )),
            "connect",
            "connect",
        );
        match err {
            StoreError::Unavailable { detail, .. } => {
                assert!(detail.contains("no Secret Service"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn locked_and_prompts_are_locked() {
        for text in ["SS Error: object locked", "SS error: prompt dismissed"] {
            let err = map_error(
                keyring_core::Error::NoStorageAccess(boxed(text)),
                "write a",
                "a",
            );
            assert!(matches!(err, StoreError::Locked { .. }), "{text}: {err:?}");
        }
    }

    #[test]
    fn bad_bytes_are_corrupt_and_never_echoed() {
        let err = map_error(
            keyring_core::Error::BadEncoding(b"canary-secret\xff".to_vec()),
            "read p/app",
            "p/app",
        );
        assert!(matches!(err, StoreError::Corrupt { .. }));
        let shown = format!("{err} {err:?} {}", err.hint());
        assert!(!shown.contains("canary"), "{shown}");
    }

    #[test]
    fn other_failures_keep_the_operation() {
        let err = map_error(
            keyring_core::Error::PlatformFailure(boxed("zbus error: I/O error: broken pipe")),
            "write p/app",
            "p/app",
        );
        match err {
            StoreError::Failed { op, .. } => assert_eq!(op, "write p/app"),
            other => panic!("{other:?}"),
        }
    }
}
