//! The real stores: OS credential store through keyring-core (Secret Service on
//! Linux/BSD, Keychain on macOS, Credential Manager on Windows), the Linux kernel keyring,
//! and the explicit plaintext file. Built in `app.rs` through [`open_store`].

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use crate::cli::StoreChoice;
use crate::secret::Secret;

use super::{Store, StoreError};

mod file;
#[cfg(target_os = "linux")]
mod keyutils;
mod os;

pub use file::FileStore;
#[cfg(target_os = "linux")]
pub use keyutils::KeyutilsStore;
pub use os::KeyringStore;

/// Opens the store the user chose. `Auto` connects to the OS credential store now (once
/// per process, under `timeout`), so an unavailable or hung keyring is reported here.
pub fn open_store(
    choice: StoreChoice,
    config_dir: &Path,
    timeout: Duration,
) -> Result<Box<dyn Store>, StoreError> {
    match choice {
        StoreChoice::Auto => Ok(Box::new(KeyringStore::connect(timeout)?)),
        StoreChoice::File => Ok(Box::new(FileStore::new(config_dir))),
        #[cfg(target_os = "linux")]
        StoreChoice::Keyutils => Ok(Box::new(KeyutilsStore::new())),
        #[cfg(not(target_os = "linux"))]
        StoreChoice::Keyutils => Err(StoreError::Unavailable {
            backend: "kernel keyring".into(),
            detail: "--store keyutils exists on Linux only".into(),
        }),
    }
}

/// Proves the store works: writes a random probe entry (`_probe/<hex>`), reads it back and
/// deletes it. Used by `init`'s pre-flight and by `doctor`. The delete is tried even when
/// the read fails, so a probe leaves nothing behind when the store allows it.
pub fn probe(store: &dyn Store) -> Result<(), StoreError> {
    let tag = random_hex(8);
    let entry = format!("_probe/{tag}");
    let value = Secret::new(format!("kite-setup-probe-{}", random_hex(8)));
    store.set(&entry, &value)?;
    let read = store.get(&entry);
    let deleted = store.delete(&entry);
    match read? {
        Some(back) if back == value => {}
        _ => {
            return Err(StoreError::ReadBackMismatch {
                backend: store.describe(),
                entry,
            });
        }
    }
    if deleted? {
        Ok(())
    } else {
        Err(StoreError::Failed {
            backend: store.describe(),
            op: format!("delete {entry}"),
            detail: "the probe entry was gone before it was deleted".into(),
        })
    }
}

/// Random lowercase hex, `bytes * 2` characters long.
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // An OS without randomness cannot run kite-setup at all (nonces need it too); a
    // fixed probe name would still work, so fall back to zeros rather than fail here.
    let _ = crate::random::fill(&mut buf);
    crate::profile::hex(&buf)
}

/// Whole seconds for a timeout message, rounded up (a 0.5 s timeout reads "1 s").
fn whole_seconds(timeout: Duration) -> u64 {
    timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0)
}

/// Runs `f` on a worker thread and waits at most `timeout` for it. On timeout the thread
/// is left behind (it may be blocked in a D-Bus call forever); that is acceptable for a
/// CLI that reports the error and exits.
fn with_timeout<T, F>(backend: &str, op: &str, timeout: Duration, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("kite-setup-store".into())
        .spawn(move || {
            // The receiver is gone only after a timeout; nobody wants the result then.
            let _ = tx.send(f());
        })
        .map_err(|e| StoreError::Failed {
            backend: backend.into(),
            op: op.into(),
            detail: format!("could not start a worker thread: {e}"),
        })?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(StoreError::Timeout {
            backend: backend.into(),
            op: op.into(),
            seconds: whole_seconds(timeout),
        }),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(StoreError::Failed {
            backend: backend.into(),
            op: op.into(),
            detail: "the store call crashed".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::MemoryStore;

    #[test]
    fn timeout_fires_and_names_backend_and_op() {
        let started = std::time::Instant::now();
        let err = with_timeout("test store", "read a/b", Duration::from_millis(100), || {
            std::thread::sleep(Duration::from_secs(5));
            Ok(())
        })
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        match err {
            StoreError::Timeout {
                backend,
                op,
                seconds,
            } => {
                assert_eq!(backend, "test store");
                assert_eq!(op, "read a/b");
                assert_eq!(seconds, 1);
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
    }

    #[test]
    fn timeout_passes_results_and_errors_through() {
        let ok = with_timeout("s", "op", Duration::from_secs(2), || Ok(7)).unwrap();
        assert_eq!(ok, 7);
        let err = with_timeout::<(), _>("s", "op", Duration::from_secs(2), || {
            Err(StoreError::Locked {
                backend: "s".into(),
            })
        })
        .unwrap_err();
        assert!(matches!(err, StoreError::Locked { .. }));
    }

    #[test]
    fn a_panicking_call_is_a_failure_not_a_hang() {
        let err = with_timeout::<(), _>("s", "op", Duration::from_secs(2), || {
            panic!("boom (expected in this test)")
        })
        .unwrap_err();
        assert!(matches!(err, StoreError::Failed { .. }));
    }

    #[test]
    fn probe_round_trips_and_leaves_nothing() {
        let store = MemoryStore::default();
        probe(&store).unwrap();
        assert!(store.snapshot().is_empty());
    }

    #[test]
    fn probe_reports_a_store_that_loses_writes() {
        struct Forgetful;
        impl Store for Forgetful {
            fn get(&self, _: &str) -> Result<Option<Secret>, StoreError> {
                Ok(None)
            }
            fn set(&self, _: &str, _: &Secret) -> Result<(), StoreError> {
                Ok(())
            }
            fn delete(&self, _: &str) -> Result<bool, StoreError> {
                Ok(false)
            }
            fn describe(&self) -> String {
                "forgetful".into()
            }
        }
        let err = probe(&Forgetful).unwrap_err();
        assert!(
            matches!(err, StoreError::ReadBackMismatch { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn probe_passes_store_errors_through() {
        let store = MemoryStore::default();
        *store.fail_with.lock().unwrap() = Some(StoreError::Locked {
            backend: "memory".into(),
        });
        assert!(matches!(
            probe(&store).unwrap_err(),
            StoreError::Locked { .. }
        ));
    }
}
