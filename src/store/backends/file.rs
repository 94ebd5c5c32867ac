//! `--store file`: a plaintext JSON map `{ "<entry>": "<value>" }` in
//! `<config_dir>/secrets.json`, mode 0600 in a 0700 directory, replaced atomically on each
//! write. Only ever used when chosen explicitly; `status` flags it. Local file calls do not
//! hang, so they run without a worker thread.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use zeroize::Zeroize;

use crate::profile::{create_private_dir, write_private_atomic};
use crate::secret::Secret;
use crate::store::{Store, StoreError};

/// File name of the plaintext store inside the config directory.
pub const FILE_NAME: &str = "secrets.json";

const BACKEND: &str = "plaintext file store";

/// The explicit plaintext store. Each write is a read-modify-write of the whole file under
/// its lock (`locks/secrets.lock` beside it), so processes writing at once keep each
/// other's entries; reads need no lock (the file is replaced by an atomic rename).
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

type Map = BTreeMap<String, Secret>;

impl FileStore {
    pub fn new(config_dir: &Path) -> Self {
        Self {
            path: config_dir.join(FILE_NAME),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn failed(&self, op: &str, detail: impl std::fmt::Display) -> StoreError {
        StoreError::Failed {
            backend: BACKEND.into(),
            op: op.into(),
            detail: format!("{}: {detail}", self.path.display()),
        }
    }

    /// The file's lock, for one read-modify-write.
    fn lock(&self, op: &str) -> Result<crate::lock::Lock, StoreError> {
        let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
        create_private_dir(dir).map_err(|e| self.failed(op, e))?;
        crate::lock::secrets_lock(dir).map_err(|e| StoreError::Failed {
            backend: BACKEND.into(),
            op: op.into(),
            detail: e.to_string(),
        })
    }

    fn load(&self, op: &str) -> Result<Map, StoreError> {
        // A FIFO or device would block the read (or never end): refused before opening.
        match std::fs::metadata(&self.path) {
            Ok(m) if !m.is_file() => {
                return Err(self.failed(op, "it is not a regular file; move it away"));
            }
            _ => {}
        }
        let mut text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
            // Not UTF-8 at all: damaged, and its bytes are not shown.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(StoreError::Corrupt {
                    entry: self.path.display().to_string(),
                });
            }
            Err(e) => return Err(self.failed(op, e)),
        };
        let parsed = serde_json::from_str::<Map>(&text);
        text.zeroize();
        // serde's message may quote the text around the error: never shown.
        parsed.map_err(|_| StoreError::Corrupt {
            entry: self.path.display().to_string(),
        })
    }

    fn save(&self, op: &str, map: &Map) -> Result<(), StoreError> {
        let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
        create_private_dir(dir).map_err(|e| self.failed(op, e))?;
        let mut bytes = serde_json::to_vec_pretty(map).map_err(|e| self.failed(op, e))?;
        let written = write_private_atomic(&self.path, &bytes);
        bytes.zeroize();
        written.map_err(|e| self.failed(op, e))
    }
}

impl Store for FileStore {
    fn get(&self, entry: &str) -> Result<Option<Secret>, StoreError> {
        Ok(self.load(&format!("read {entry}"))?.remove(entry))
    }

    fn set(&self, entry: &str, value: &Secret) -> Result<(), StoreError> {
        let op = format!("write {entry}");
        let _lock = self.lock(&op)?;
        // A damaged file is reported, never overwritten (that would lose the other entries).
        let mut map = self.load(&op)?;
        map.insert(entry.to_string(), value.clone());
        self.save(&op, &map)
    }

    fn delete(&self, entry: &str) -> Result<bool, StoreError> {
        let op = format!("delete {entry}");
        let _lock = self.lock(&op)?;
        let mut map = self.load(&op)?;
        if map.remove(entry).is_none() {
            return Ok(false);
        }
        self.save(&op, &map)?;
        Ok(true)
    }

    fn describe(&self) -> String {
        format!("plaintext file {}", self.path.display())
    }

    fn list(&self, prefix: &str) -> Result<Option<Vec<String>>, StoreError> {
        let map = self.load("list entries")?;
        Ok(Some(
            map.into_keys().filter(|k| k.starts_with(prefix)).collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_private_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cfg");
        let store = FileStore::new(&dir);
        assert!(store.get("p/app").unwrap().is_none());
        assert!(!store.delete("p/app").unwrap());
        store.set("p/app", &Secret::from("one")).unwrap();
        store.set("p/session", &Secret::from("two")).unwrap();
        assert_eq!(store.get("p/app").unwrap().unwrap().expose(), "one");
        assert!(store.delete("p/app").unwrap());
        assert!(store.get("p/app").unwrap().is_none());
        assert_eq!(store.get("p/session").unwrap().unwrap().expose(), "two");
        assert!(store.describe().starts_with("plaintext file "));
        assert!(store.describe().ends_with("secrets.json"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(store.path()), 0o600);
        }
    }

    /// Threads (each with its own lock descriptor, as processes have) writing different
    /// entries at once: every entry lands.
    #[test]
    fn concurrent_writers_keep_each_others_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let start = std::sync::Arc::new(std::sync::Barrier::new(6));
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let store = FileStore::new(tmp.path());
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    for j in 0..5 {
                        store
                            .set(&format!("p{i}/e{j}"), &Secret::from("v"))
                            .unwrap();
                    }
                    store.delete(&format!("p{i}/e0")).unwrap();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let store = FileStore::new(tmp.path());
        for i in 0..6 {
            assert!(store.get(&format!("p{i}/e0")).unwrap().is_none());
            for j in 1..5 {
                assert!(
                    store.get(&format!("p{i}/e{j}")).unwrap().is_some(),
                    "p{i}/e{j} lost"
                );
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_in_place_of_the_file_is_refused_not_read() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FileStore::new(tmp.path());
        let made = std::process::Command::new("mkfifo")
            .arg(store.path())
            .status()
            .unwrap();
        assert!(made.success());
        for err in [
            store.get("p/app").unwrap_err(),
            store.set("p/app", &Secret::from("x")).unwrap_err(),
        ] {
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
    }

    #[test]
    fn corrupt_file_is_reported_without_contents_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FileStore::new(tmp.path());
        std::fs::write(store.path(), "{\"p/app\": \"canary-secret").unwrap();
        for err in [
            store.get("p/app").unwrap_err(),
            store.set("p/other", &Secret::from("x")).unwrap_err(),
            store.delete("p/app").unwrap_err(),
        ] {
            assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("canary"), "{shown}");
        }
        let kept = std::fs::read_to_string(store.path()).unwrap();
        assert!(kept.contains("canary-secret"));
    }
}
