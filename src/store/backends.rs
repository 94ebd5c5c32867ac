//! The real stores: OS credential store through keyring-core (Secret Service on
//! Linux/BSD, Keychain on macOS, Credential Manager on Windows), the Linux kernel keyring,
//! and the explicit plaintext file. Built in `app.rs` through [`open_store`].

use std::path::Path;
use std::sync::{Arc, mpsc};
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
pub use os::BACKEND as OS_BACKEND;
pub use os::KeyringStore;

/// The directory (inside the config dir) of the sandbox-only file store.
pub const SANDBOX_STORE_DIR: &str = "sandbox-store";
/// The `--store file` store's file name (in the config dir, or in [`SANDBOX_STORE_DIR`]).
pub use file::FILE_NAME as SECRETS_FILE;

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
        StoreChoice::SandboxFile => Ok(Box::new(FileStore::new(
            &config_dir.join(SANDBOX_STORE_DIR),
        ))),
        #[cfg(target_os = "linux")]
        StoreChoice::Keyutils => Ok(Box::new(KeyutilsStore::new())),
        #[cfg(not(target_os = "linux"))]
        StoreChoice::Keyutils => Err(StoreError::Unavailable {
            backend: "kernel keyring".into(),
            detail: "--store keyutils exists on Linux only".into(),
        }),
    }
}

/// Where probe entries are filed: `_probe/<pid>-<random hex>`.
pub const PROBE_PREFIX: &str = "_probe/";

/// The probe entry this process is writing right now (with its store), so that a run
/// interrupted by a signal can delete it before exiting.
static IN_FLIGHT: std::sync::Mutex<Option<(Arc<dyn Store>, String)>> = std::sync::Mutex::new(None);

/// Proves the store works: writes a random probe entry (`_probe/<pid>-<hex>`), reads it
/// back and deletes it. Used by `init`'s pre-flight and by `doctor`. The delete is tried
/// even when the read fails, and a signal mid-way deletes it too
/// ([`remove_interrupted_probe`]); a probe killed outright leaves an entry named after
/// its process, which [`remove_stale_probes`] recognises later.
pub fn probe(store: &Arc<dyn Store>) -> Result<(), StoreError> {
    let entry = format!("{PROBE_PREFIX}{}-{}", std::process::id(), random_hex(8));
    set_in_flight(Some((Arc::clone(store), entry.clone())));
    let result = probe_entry(store.as_ref(), &entry);
    set_in_flight(None);
    result
}

fn set_in_flight(value: Option<(Arc<dyn Store>, String)>) {
    *IN_FLIGHT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = value;
}

fn probe_entry(store: &dyn Store, entry: &str) -> Result<(), StoreError> {
    let value = Secret::new(format!("kite-setup-probe-{}", random_hex(8)));
    store.set(entry, &value)?;
    let read = store.get(entry);
    let deleted = store.delete(entry);
    match read? {
        Some(back) if back == value => {}
        _ => {
            return Err(StoreError::ReadBackMismatch {
                backend: store.describe(),
                entry: entry.to_string(),
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

/// Called on Ctrl-C/SIGTERM: deletes the probe entry this process was in the middle of,
/// waiting at most `wait` (the store may be what hangs).
pub fn remove_interrupted_probe(wait: Duration) {
    let taken = IN_FLIGHT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    let Some((store, entry)) = taken else {
        return;
    };
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("kite-setup-probe-cleanup".into())
        .spawn(move || {
            let _ = store.delete(&entry);
            let _ = tx.send(());
        });
    if spawned.is_ok() {
        let _ = rx.recv_timeout(wait);
    }
}

/// Whether a probe entry was left by a probe that can no longer finish: its process is
/// gone, or the name is an older kite-setup's `_probe/<hex>` (no process in it).
pub fn probe_is_stale(name: &str, alive: &dyn Fn(u32) -> bool) -> bool {
    let Some(rest) = name.strip_prefix(PROBE_PREFIX) else {
        return false;
    };
    match rest
        .split_once('-')
        .and_then(|(pid, _)| pid.parse::<u32>().ok())
    {
        Some(pid) => pid != std::process::id() && !alive(pid),
        None => true,
    }
}

/// Whether a process with this id exists (on Unix: `kill(pid, 0)`, where "not permitted"
/// still means it exists). Elsewhere every process is taken to be alive.
pub fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return false;
        };
        !matches!(
            rustix::process::test_kill_process(pid),
            Err(rustix::io::Errno::SRCH)
        )
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Deletes the probe entries killed probes left behind (see [`probe_is_stale`]). `None`
/// when the store cannot list its entries.
pub fn remove_stale_probes(store: &dyn Store) -> Result<Option<usize>, StoreError> {
    let Some(names) = store.list(PROBE_PREFIX)? else {
        return Ok(None);
    };
    let mut removed = 0;
    for name in names.iter().filter(|n| probe_is_stale(n, &process_alive)) {
        if store.delete(name)? {
            removed += 1;
        }
    }
    Ok(Some(removed))
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
        let memory = Arc::new(MemoryStore::default());
        let store: Arc<dyn Store> = memory.clone();
        probe(&store).unwrap();
        assert!(memory.snapshot().is_empty());
        assert!(IN_FLIGHT.lock().unwrap().is_none());
    }

    #[test]
    fn an_interrupted_probe_deletes_its_entry() {
        let memory = Arc::new(MemoryStore::default());
        let store: Arc<dyn Store> = memory.clone();
        let entry = format!("{PROBE_PREFIX}{}-cafe", std::process::id());
        store.set(&entry, &Secret::from("x")).unwrap();
        set_in_flight(Some((store, entry)));
        remove_interrupted_probe(Duration::from_secs(2));
        assert!(memory.snapshot().is_empty());
        // Nothing in flight: nothing happens.
        remove_interrupted_probe(Duration::from_secs(2));
    }

    #[test]
    fn stale_probe_entries_are_those_of_dead_processes_and_old_names() {
        let me = std::process::id();
        let dead = |_: u32| false;
        let alive = |_: u32| true;
        assert!(probe_is_stale("_probe/0123456789abcdef", &alive));
        assert!(probe_is_stale("_probe/4242-0123456789abcdef", &dead));
        assert!(!probe_is_stale("_probe/4242-0123456789abcdef", &alive));
        assert!(!probe_is_stale(&format!("_probe/{me}-00"), &dead));
        assert!(!probe_is_stale("default/app", &dead));
        assert!(process_alive(me));
        // Far above any pid_max: no such process.
        assert!(!process_alive(2_000_000_000));
    }

    #[test]
    fn stale_probes_are_removed_and_nothing_else() {
        let memory = MemoryStore::default();
        for name in [
            "_probe/0123456789abcdef",
            "_probe/2000000000-aa",
            "default/app",
            "sandbox/default/session",
        ] {
            memory.set(name, &Secret::from("x")).unwrap();
        }
        let live = format!("_probe/{}-bb", std::process::id());
        memory.set(&live, &Secret::from("x")).unwrap();
        assert_eq!(remove_stale_probes(&memory).unwrap(), Some(2));
        let left: Vec<String> = memory.snapshot().into_keys().collect();
        assert_eq!(
            left,
            [live.as_str(), "default/app", "sandbox/default/session"]
        );
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
        let forgetful: Arc<dyn Store> = Arc::new(Forgetful);
        let err = probe(&forgetful).unwrap_err();
        assert!(
            matches!(err, StoreError::ReadBackMismatch { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn probe_passes_store_errors_through() {
        let memory = Arc::new(MemoryStore::default());
        *memory.fail_with.lock().unwrap() = Some(StoreError::Locked {
            backend: "memory".into(),
        });
        let store: Arc<dyn Store> = memory;
        assert!(matches!(
            probe(&store).unwrap_err(),
            StoreError::Locked { .. }
        ));
    }
}
