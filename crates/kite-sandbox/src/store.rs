//! The state file: JSON, private (0600 in a 0700 directory the sandbox creates), replaced
//! atomically so a kill leaves the old state or the new one. The one place this crate
//! writes files.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::Error;
use crate::state::State;

fn write_err(op: &'static str, path: &Path, e: &std::io::Error) -> Error {
    Error::StateWrite {
        op,
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

/// Creates `dir` (and parents) and makes it 0700 on Unix. Only for a directory that did
/// not exist: an existing one (`/tmp`) keeps its mode.
pub fn create_private_dir(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(|e| write_err("create", dir, &e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| write_err("set permissions on", dir, &e))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` through a 0600 temp file in the same directory and a rename.
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix).map_err(|e| Error::StateWrite {
        op: "get randomness for",
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let tmp = dir.join(format!(".{name}.{}.tmp", kite_wire::hex(&suffix)));
    let result = (|| {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(|e| write_err("create", &tmp, &e))?;
        f.write_all(bytes)
            .map_err(|e| write_err("write", &tmp, &e))?;
        f.sync_all().map_err(|e| write_err("sync", &tmp, &e))?;
        fs::rename(&tmp, path).map_err(|e| write_err("replace", path, &e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes the whole state.
pub fn save(path: &Path, s: &State) -> Result<(), Error> {
    let bytes = serde_json::to_vec_pretty(s).expect("the state serializes");
    write_private_atomic(path, &bytes)
}

/// Loads the state file, or seeds a new world (and writes it) when there is none. A file
/// missing the demo account or app gets them back.
pub fn load_or_seed(path: &Path) -> Result<State, Error> {
    let mut state = match fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<State>(&bytes).map_err(|e| {
            // Never serde's own message: it quotes values, and the file holds the demo
            // world's passwords, TOTP secrets and api_secrets.
            let mut what = kite_wire::envelope::data_error(&e);
            if !what.contains(" at line ") {
                what = format!("{what} at line {}", e.line());
            }
            Error::StateUnreadable {
                path: path.to_path_buf(),
                what,
            }
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::seeded(),
        Err(e) => {
            return Err(Error::StateRead {
                path: path.to_path_buf(),
                detail: e.to_string(),
            });
        }
    };
    if state.account(&state.demo_client_id).is_none() || state.app(&state.demo_api_key).is_none() {
        let seeded = State::seeded();
        state.demo_client_id.clone_from(&seeded.demo_client_id);
        state.demo_api_key.clone_from(&seeded.demo_api_key);
        state.accounts.extend(seeded.accounts);
        state.apps.extend(seeded.apps);
    }
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        create_private_dir(dir)?;
    }
    save(path, &state)?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_is_seeded_private_and_reloads_the_same_world() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("new/dir/sandbox.json");
        let first = load_or_seed(&path).unwrap();
        let again = load_or_seed(&path).unwrap();
        assert_eq!(first.demo_api_key, again.demo_api_key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        let leftovers = fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temp file stays behind");
    }

    #[test]
    fn a_file_from_before_orders_and_ip_whitelists_still_loads() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("sandbox.json");
        let mut old = serde_json::to_value(State::seeded()).unwrap();
        old.as_object_mut().unwrap().remove("orders");
        for acc in old["accounts"].as_array_mut().unwrap() {
            let acc = acc.as_object_mut().unwrap();
            acc.remove("ips");
            acc.remove("ips_changed_at");
        }
        old["faults"] = serde_json::json!([{"path": "/user/profile", "status": 503, "count": 2}]);
        fs::write(&path, serde_json::to_vec(&old).unwrap()).unwrap();
        let s = load_or_seed(&path).unwrap();
        assert_eq!(s.demo_client_id, old["demo_client_id"]);
        assert!(s.orders.is_empty() && s.accounts[0].ips.is_empty());
        assert_eq!(s.faults[0].count, 2);
    }

    /// A state file exactly as the sandbox wrote it before apps had client ID lists (one
    /// `owner` per app), with a second account and a second app.
    const BEFORE_CLIENT_LISTS: &str = include_str!("../fixtures/state-before-client-lists.json");

    #[test]
    fn a_file_from_before_client_id_lists_loads_each_owner_as_the_list() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("sandbox.json");
        fs::write(&path, BEFORE_CLIENT_LISTS).unwrap();
        let old: serde_json::Value = serde_json::from_str(BEFORE_CLIENT_LISTS).unwrap();
        let s = load_or_seed(&path).unwrap();
        assert_eq!(
            s.demo_api_key, old["demo_api_key"],
            "no new demo world was seeded"
        );
        assert_eq!((s.apps.len(), s.accounts.len()), (2, 2));
        for (app, before) in s.apps.iter().zip(old["apps"].as_array().unwrap()) {
            assert_eq!(app.client_ids, vec![before["owner"].as_str().unwrap()]);
            assert_eq!(
                app.api_secret.expose(),
                before["api_secret"].as_str().unwrap()
            );
        }
        // Written back in the new shape, which loads again the same.
        let now: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert!(now["apps"][0].get("owner").is_none());
        assert_eq!(
            now["apps"][1]["client_ids"],
            serde_json::json!([old["apps"][1]["owner"]])
        );
        let again = load_or_seed(&path).unwrap();
        assert_eq!(again.apps[1].client_ids, s.apps[1].client_ids);
    }

    #[test]
    fn a_broken_file_is_refused_without_quoting_it() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("sandbox.json");
        fs::write(&path, r#"{"accounts": "canary-password"}"#).unwrap();
        let err = load_or_seed(&path).unwrap_err();
        let said = err.to_string();
        assert!(matches!(err, Error::StateUnreadable { .. }), "{said}");
        assert!(!said.contains("canary"), "{said}");
        assert!(said.contains("at line 1"), "{said}");
        assert_eq!(
            fs::read(&path).unwrap(),
            br#"{"accounts": "canary-password"}"#,
            "the file is left as it was"
        );
    }
}
