//! Advisory inter-process locks, so that kite-setup processes running at once never lose,
//! mix or orphan each other's writes (see `docs/concurrency.md`):
//! - [`config_lock`] and [`secrets_lock`]: short exclusive locks around each
//!   read-modify-write of `config.toml` and of the `--store file` secrets file (held for
//!   the milliseconds of one load and one atomic rename);
//! - [`profile_lock`]: a per-profile lock around a command's state-changing section, never
//!   held while a person logs in in the browser, and for at most one bounded Kite call.
//!
//! A lock is `flock(LOCK_EX)` on a file under `locks/` next to the file it protects. The
//! kernel drops it when its holder exits, even by `kill -9`, so there are no stale locks;
//! lock files are never deleted (a deleted and re-created lock file would let two
//! processes each lock "the same" name). The holder writes its pid and command into the
//! file and empties it again on release, so a process that waits in vain can say who
//! holds it, and an idle lock file holds nothing.
//!
//! - [`app_lock`]: taken right after a profile lock when the profile is on an app, so that
//!   every section touching one family's app (a rotation of its secret, a member's login)
//!   runs one at a time.
//!
//! Nesting: profile lock, then app lock, then a config or secrets lock, never the other
//! way round (no profile lock is taken while an app lock is held), and no process takes
//! the same lock twice (a second `flock` on another
//! descriptor of the same file would wait for itself).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::Fix;

/// The directory lock files live in, inside the directory of the files they protect.
pub const LOCK_DIR: &str = "locks";

/// How long a process waits for a lock before it gives up and names the holder. Every
/// section under a lock is short (keyring calls and one Kite call, each with its own
/// timeout), so a holder that keeps it longer is stuck or waiting for a prompt.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(15);

/// How often a waiting process tries again.
const POLL: Duration = Duration::from_millis(20);

/// The wait in milliseconds; `app.rs` may change it once at start.
static WAIT_MS: AtomicU64 = AtomicU64::new(15_000);

/// Sets how long [`acquire`] waits (from `KITE_SETUP_LOCK_WAIT_SECS`, read in `app.rs`).
pub fn set_wait(wait: Duration) {
    WAIT_MS.store(
        u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

fn wait() -> Duration {
    Duration::from_millis(WAIT_MS.load(Ordering::Relaxed))
}

/// The process holding a lock, as it wrote itself into the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// What it is doing: the command (`init`, `login`) or the file it is writing.
    pub command: String,
}

impl Holder {
    fn parse(text: &str) -> Option<Self> {
        let mut pid = None;
        let mut command = None;
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("pid=") {
                pid = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("command=") {
                command = Some(v.trim().to_string());
            }
        }
        Some(Self {
            pid: pid?,
            command: command.unwrap_or_default(),
        })
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "kite-setup process {} ({})", self.pid, self.command)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum LockError {
    /// Another process kept the lock for the whole wait.
    #[error("{what} is busy: {} has held it for more than {waited_secs} s", holder_text(.holder.as_ref()))]
    Busy {
        what: String,
        holder: Option<Holder>,
        waited_secs: u64,
    },
    /// The lock file cannot be created or locked.
    #[error("cannot lock {path}: {detail}")]
    Io { path: String, detail: String },
}

fn holder_text(holder: Option<&Holder>) -> String {
    holder.map_or_else(|| "another kite-setup process".into(), ToString::to_string)
}

impl LockError {
    pub fn fix(&self) -> Fix {
        match self {
            LockError::Busy { .. } => "wait for that command to finish and run this again (if it hangs, stop it: its lock goes with it)".into(),
            LockError::Io { .. } => {
                "check the config directory's owner and permissions, or set KITE_SETUP_CONFIG_DIR".into()
            }
        }
    }
}

/// A held lock; released (and its file emptied) on drop, or by the kernel at exit.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

impl Lock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Empty the file while still holding the lock, so nobody reads a stale holder.
        let _ = self.file.set_len(0);
        // Closing the descriptor releases the lock.
    }
}

/// The lock of `config.toml` in `config_dir`.
pub fn config_lock(config_dir: &Path) -> Result<Lock, LockError> {
    acquire(
        &config_dir.join(LOCK_DIR).join("config.lock"),
        "the config file",
        "writing config.toml",
    )
}

/// The lock of the plaintext secrets file in `dir`.
pub fn secrets_lock(dir: &Path) -> Result<Lock, LockError> {
    acquire(
        &dir.join(LOCK_DIR).join("secrets.lock"),
        "the plaintext secrets file",
        "writing secrets.json",
    )
}

/// The lock file of one profile (live and sandbox profiles apart).
pub fn profile_lock_path(config_dir: &Path, profile: &str, sandbox: bool) -> PathBuf {
    let kind = if sandbox { "sandbox" } else { "live" };
    config_dir
        .join(LOCK_DIR)
        .join(format!("profile-{kind}-{profile}.lock"))
}

/// The lock of one profile's stored state, for `command`'s state-changing section.
pub fn profile_lock(
    config_dir: &Path,
    profile: &str,
    sandbox: bool,
    command: &str,
) -> Result<Lock, LockError> {
    let label = if sandbox {
        format!("profile {profile} (sandbox)")
    } else {
        format!("profile {profile}")
    };
    acquire(
        &profile_lock_path(config_dir, profile, sandbox),
        &label,
        command,
    )
}

/// The lock of one app's shared state (its credentials, its pending rotation, and the
/// sessions of its profiles as a rotation sees them), taken after the profile lock by the
/// state-changing section of any profile on the app (docs/apps.md).
pub fn app_lock(
    config_dir: &Path,
    app: &str,
    sandbox: bool,
    command: &str,
) -> Result<Lock, LockError> {
    let kind = if sandbox { "sandbox" } else { "live" };
    let label = if sandbox {
        format!("app {app} (sandbox)")
    } else {
        format!("app {app}")
    };
    acquire(
        &config_dir
            .join(LOCK_DIR)
            .join(format!("app-{kind}-{app}.lock")),
        &label,
        command,
    )
}

/// Whether a process holds the lock at `path` now, or died holding it: its record is
/// still in the file (a release empties it). Cheap (one `stat`), so readers can ask on
/// every run and take the lock only then.
pub fn is_held_or_was_cut_short(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
}

/// Takes the exclusive lock on `path` (created 0600, its directory 0700 if new), waiting
/// up to the configured wait; then names `what` and the holder.
pub fn acquire(path: &Path, what: &str, command: &str) -> Result<Lock, LockError> {
    let io = |e: &std::io::Error| LockError::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(|e| io(&e))?;
    }
    let started = crate::clock::Monotonic::now(&crate::clock::SystemMonotonic);
    let wait = wait();
    loop {
        match try_lock(path) {
            Ok(Some(mut file)) => {
                let record = format!("pid={}\ncommand={command}\n", std::process::id());
                let written = file
                    .set_len(0)
                    .and_then(|()| file.rewind())
                    .and_then(|()| file.write_all(record.as_bytes()))
                    .and_then(|()| file.flush());
                written.map_err(|e| io(&e))?;
                return Ok(Lock {
                    file,
                    path: path.to_path_buf(),
                });
            }
            Ok(None) if started.elapsed() < wait => std::thread::sleep(POLL),
            Ok(None) => {
                return Err(LockError::Busy {
                    what: what.to_string(),
                    holder: read_holder(path),
                    waited_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                });
            }
            Err(e) => return Err(io(&e)),
        }
    }
}

/// Who holds the lock on `path` now, if anyone says so.
pub fn read_holder(path: &Path) -> Option<Holder> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    Holder::parse(&text)
}

/// One attempt: the locked file, or `None` when another process holds the lock.
#[cfg(unix)]
fn try_lock(path: &Path) -> std::io::Result<Option<File>> {
    use rustix::fs::{FlockOperation, flock};
    use std::os::unix::fs::OpenOptionsExt;
    #[allow(clippy::disallowed_methods)] // the lock file adapter: opened, never written
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK || e == rustix::io::Errno::INTR => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Windows: a handle opened with no sharing is exclusive until it is closed (also by the
/// system when the process dies).
#[cfg(windows)]
fn try_lock(path: &Path) -> std::io::Result<Option<File>> {
    use std::os::windows::fs::OpenOptionsExt;
    const ERROR_SHARING_VIOLATION: i32 = 32;
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .share_mode(0)
        .open(path)
    {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.raw_os_error() == Some(ERROR_SHARING_VIOLATION) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::sync::{Arc, Barrier, Mutex};
    use std::time::Instant;

    /// The wait is process-wide: tests that change it hold this.
    static WAIT_GUARD: Mutex<()> = Mutex::new(());

    #[test]
    fn a_second_holder_waits_and_names_the_first() {
        let _g = WAIT_GUARD.lock().unwrap();
        set_wait(Duration::from_millis(200));
        let tmp = tempfile::tempdir().unwrap();
        let held = profile_lock(tmp.path(), "mom", true, "init").unwrap();
        // Another descriptor (as another process would have) cannot take it.
        let started = Instant::now();
        let err = profile_lock(tmp.path(), "mom", true, "logout").unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(200));
        match &err {
            LockError::Busy { what, holder, .. } => {
                assert_eq!(what, "profile mom (sandbox)");
                let holder = holder.as_ref().expect("the holder wrote itself");
                assert_eq!(holder.pid, std::process::id());
                assert_eq!(holder.command, "init");
            }
            other @ LockError::Io { .. } => panic!("expected busy, got {other:?}"),
        }
        assert!(
            err.to_string()
                .contains(&format!("kite-setup process {} (init)", std::process::id())),
            "{err}"
        );
        // Other profiles, live or sandbox, are not held up.
        drop(profile_lock(tmp.path(), "mom", false, "init").unwrap());
        drop(profile_lock(tmp.path(), "dad", true, "init").unwrap());
        // Released: free again, and the file says nothing any more.
        let path = held.path().to_path_buf();
        drop(held);
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        assert!(read_holder(&path).is_none());
        drop(profile_lock(tmp.path(), "mom", true, "logout").unwrap());
        set_wait(DEFAULT_WAIT);
    }

    #[test]
    fn threads_serialise_a_read_modify_write() {
        let _g = WAIT_GUARD.lock().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let counter = tmp.path().join("counter");
        std::fs::write(&counter, "0").unwrap();
        let threads = 8;
        let rounds = 20;
        let start = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let dir = tmp.path().to_path_buf();
                let counter = counter.clone();
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    for _ in 0..rounds {
                        let _lock = config_lock(&dir).unwrap();
                        let n: u32 = std::fs::read_to_string(&counter).unwrap().parse().unwrap();
                        std::thread::yield_now();
                        std::fs::write(&counter, (n + 1).to_string()).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let total: usize = std::fs::read_to_string(&counter).unwrap().parse().unwrap();
        assert_eq!(total, threads * rounds, "an update was lost");
    }

    /// A real other process (util-linux `flock`) holding the lock: we wait for it, and
    /// get the lock the moment it exits, killed or not.
    #[test]
    fn another_process_holds_it_until_it_dies() {
        let _g = WAIT_GUARD.lock().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(LOCK_DIR).join("config.lock");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "").unwrap();
        // `--close`: the lock stays with `flock` itself, not with its `sleep`.
        let mut child = Command::new("flock")
            .args(["--exclusive", "--close"])
            .arg(&path)
            .args(["sleep", "5"])
            .stdin(Stdio::null())
            .spawn()
            .expect("util-linux flock");
        // Until the child holds it, a try succeeds; wait for the first refusal.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match try_lock(&path).unwrap() {
                None => break,
                Some(f) => drop(f),
            }
            assert!(Instant::now() < deadline, "flock never took the lock");
            std::thread::sleep(Duration::from_millis(10));
        }
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            child.kill().unwrap();
            child.wait().unwrap();
        });
        let started = Instant::now();
        let lock = config_lock(tmp.path()).expect("the lock after the holder died");
        let waited = started.elapsed();
        killer.join().unwrap();
        assert!(
            waited >= Duration::from_millis(250),
            "did not wait: {waited:?}"
        );
        assert!(waited < Duration::from_secs(10), "{waited:?}");
        drop(lock);
    }

    #[test]
    fn holder_records_parse() {
        assert_eq!(
            Holder::parse("pid=42\ncommand=login --force\n"),
            Some(Holder {
                pid: 42,
                command: "login --force".into()
            })
        );
        assert_eq!(Holder::parse(""), None);
        assert_eq!(Holder::parse("pid=x\n"), None);
    }
}
