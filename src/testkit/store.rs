//! A store in memory.

use crate::secret::Secret;
use crate::store::{Store, StoreError};

/// An in-memory store for tests; can be told to fail.
#[derive(Default)]
pub struct MemoryStore {
    pub entries: std::sync::Mutex<std::collections::BTreeMap<String, Secret>>,
    /// When set, every call fails with this error.
    pub fail_with: std::sync::Mutex<Option<StoreError>>,
    /// When set, only `set` calls fail with this error.
    pub fail_writes_with: std::sync::Mutex<Option<StoreError>>,
    /// When set, `set` calls to this one entry fail (a keyring failing mid-way).
    pub fail_writes_to: std::sync::Mutex<Option<String>>,
}

impl MemoryStore {
    pub fn snapshot(&self) -> std::collections::BTreeMap<String, String> {
        self.entries
            .lock()
            .expect("lock")
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_string()))
            .collect()
    }

    fn check(&self) -> Result<(), StoreError> {
        match &*self.fail_with.lock().expect("lock") {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

impl Store for MemoryStore {
    fn get(&self, entry: &str) -> Result<Option<Secret>, StoreError> {
        self.check()?;
        Ok(self.entries.lock().expect("lock").get(entry).cloned())
    }

    fn set(&self, entry: &str, value: &Secret) -> Result<(), StoreError> {
        self.check()?;
        if let Some(e) = &*self.fail_writes_with.lock().expect("lock") {
            return Err(e.clone());
        }
        if self.fail_writes_to.lock().expect("lock").as_deref() == Some(entry) {
            return Err(StoreError::Failed {
                backend: "memory store".into(),
                op: format!("write {entry}"),
                detail: "injected failure".into(),
            });
        }
        self.entries
            .lock()
            .expect("lock")
            .insert(entry.to_string(), value.clone());
        Ok(())
    }

    fn delete(&self, entry: &str) -> Result<bool, StoreError> {
        self.check()?;
        Ok(self.entries.lock().expect("lock").remove(entry).is_some())
    }

    fn describe(&self) -> String {
        "memory store".into()
    }

    fn list(&self, prefix: &str) -> Result<Option<Vec<String>>, StoreError> {
        self.check()?;
        Ok(Some(
            self.entries
                .lock()
                .expect("lock")
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect(),
        ))
    }
}
