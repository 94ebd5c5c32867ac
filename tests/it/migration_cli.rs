//! A config dir and store written by the previous release (tests/fixtures/release-0.1, made
//! by that release's own binary) read and converted by this one without loss: with the
//! `--store file` store it was written with, and with a real Secret Service holding the
//! same entries under the old names. The sandbox starts from the fixture's state file, so
//! the moved credentials are checked against the apps they belong to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::cli::{World, login_port_turn};
use crate::support::keyring::KeyringSession;
use crate::support::sandbox::SandboxProcess;

/// The fixture's profiles (sandbox profiles of the demo account).
pub const PROFILES: [&str; 2] = ["default", "work"];
/// The fixture's time: a minute after the old release wrote it (its sessions are valid).
const FIXTURE_NOW: &str = "2026-12-01T12:20:00Z";

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/release-0.1")
        .join(name)
}

/// The fixture's store: entry name → payload, as the old release wrote them.
pub fn fixture_entries() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(fixture("secrets.json")).expect("fixture secrets.json");
    serde_json::from_str(&text).expect("fixture secrets.json parses")
}

/// The fixture's store in the new layout: app entries under `sandbox/apps/<profile>/`,
/// sessions where they were; every payload the same, byte for byte.
pub fn migrated_entries() -> BTreeMap<String, String> {
    fixture_entries()
        .into_iter()
        .map(|(k, v)| {
            let (profile, what) = k
                .strip_prefix("sandbox/")
                .and_then(|r| r.split_once('/'))
                .expect("a sandbox entry");
            let name = match what {
                "app" | "pending" => format!("sandbox/apps/{profile}/{what}"),
                _ => k.clone(),
            };
            (name, v)
        })
        .collect()
}

fn toml_profiles(text: &str) -> toml::Table {
    let v: toml::Table = toml::from_str(text).expect("config.toml parses");
    v.get("sandbox_profiles")
        .and_then(toml::Value::as_table)
        .cloned()
        .expect("sandbox profiles")
}

fn write_private(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// A world whose config dir holds the fixture (with the keyring: its entries seeded under
/// the old names and config.toml's `store = "file"` read as `auto`), and whose sandbox
/// starts from the fixture's state with its clock at the fixture's time.
pub fn legacy_world(keyring: bool) -> (World, tempfile::TempDir) {
    let state = tempfile::tempdir().expect("temp dir");
    let path = state.path().join("sandbox.json");
    write_private(
        &path,
        &std::fs::read(fixture("sandbox.json")).expect("fixture sandbox.json"),
    );
    let sandbox = SandboxProcess::spawn(&["--auto-approve"], Some(&path));
    let w = World::with(KeyringSession::start(), sandbox);
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&w.config_dir)
            .expect("config dir");
    }
    let mut config = std::fs::read_to_string(fixture("config.toml")).expect("fixture config");
    if keyring {
        config = config.replace("store = \"file\"", "store = \"auto\"");
        for (k, v) in fixture_entries() {
            w.keyring.store(&k, &v);
        }
    } else {
        write_private(
            &w.config_dir.join("secrets.json"),
            &std::fs::read(fixture("secrets.json")).expect("fixture secrets"),
        );
    }
    write_private(&w.config_dir.join("config.toml"), config.as_bytes());
    let clock: serde_json::Value = w.control_get("/_sandbox/clock");
    let now: jiff::Timestamp = clock["now"].as_str().expect("now").parse().expect("time");
    let then: jiff::Timestamp = FIXTURE_NOW.parse().expect("time");
    let offset =
        clock["offset_seconds"].as_i64().expect("offset") - now.duration_since(then).as_secs();
    w.control(
        "/_sandbox/clock",
        &serde_json::json!({ "offset_seconds": offset }),
    );
    (w, state)
}

/// Every entry, old name or new, that the world's store holds for the fixture's profiles.
pub fn stored(w: &World, keyring: bool) -> BTreeMap<String, String> {
    if !keyring {
        let text = std::fs::read_to_string(w.config_dir.join("secrets.json")).expect("secrets");
        return serde_json::from_str(&text).expect("secrets.json parses");
    }
    let mut out = BTreeMap::new();
    for p in PROFILES {
        for name in [
            format!("sandbox/{p}/app"),
            format!("sandbox/{p}/pending"),
            format!("sandbox/{p}/session"),
            format!("sandbox/{p}/staged"),
            format!("sandbox/apps/{p}/app"),
            format!("sandbox/apps/{p}/pending"),
        ] {
            if let Some(v) = w.keyring.lookup(&name) {
                out.insert(name, v);
            }
        }
    }
    out
}

/// config.toml's profiles, each with the app it names (and nothing else changed from the
/// fixture): what differs, empty when nothing does.
pub fn config_problems(w: &World, keyring: bool, want_app: &[(&str, Option<&str>)]) -> Vec<String> {
    let now = toml_profiles(
        &std::fs::read_to_string(w.config_dir.join("config.toml")).expect("config.toml"),
    );
    let before = toml_profiles(&std::fs::read_to_string(fixture("config.toml")).expect("fixture"));
    let mut problems = Vec::new();
    for (p, app) in want_app {
        let (Some(mut m), Some(mut old)) = (
            now.get(*p).and_then(toml::Value::as_table).cloned(),
            before.get(*p).and_then(toml::Value::as_table).cloned(),
        ) else {
            problems.push(format!("profile {p} is missing"));
            continue;
        };
        let got = m.remove("app");
        if got.as_ref().and_then(toml::Value::as_str) != *app {
            problems.push(format!("profile {p} names app {got:?}, not {app:?}"));
        }
        if keyring {
            old.insert("store".into(), "auto".into());
        }
        if m != old {
            problems.push(format!("profile {p} changed: {m:?}\nwas {old:?}"));
        }
    }
    problems
}

fn converted(keyring: bool) {
    let (w, _state) = legacy_world(keyring);
    let before = fixture_entries();
    assert_eq!(stored(&w, keyring), before, "the seeded store");

    // `status` reads the old layout where it is, and moves nothing.
    let status = w.run(&["--json", "status"], "").expect(0);
    let doc: serde_json::Value = serde_json::from_str(&status.stdout).expect("status --json");
    for (i, p) in PROFILES.iter().enumerate() {
        let r = &doc["profiles"][i];
        assert_eq!(r["name"], *p);
        assert_eq!(r["app"], serde_json::Value::Null, "{p} not moved yet");
        assert_eq!(r["client_id"], "RT7667");
        assert_eq!(r["plan"], "Personal");
        assert_eq!(r["api_secret_stored"], true);
        assert_eq!(r["token"]["state"], "valid", "{p}: {r}");
        assert_eq!(r["pending_rotation"], *p == "work");
        let key = cli_key(&before, p);
        let masked = r["api_key"].as_str().expect("masked key");
        assert!(
            masked.starts_with(&key[..4]) && masked.ends_with(&key[key.len() - 4..]),
            "{masked}"
        );
    }
    assert_eq!(
        doc["apps"].as_array().map(Vec::len),
        Some(2),
        "one group each"
    );
    assert_eq!(stored(&w, keyring), before, "status moved nothing");
    assert!(config_problems(&w, keyring, &[("default", None), ("work", None)]).is_empty());

    // The first commands that open the profiles move them.
    let token = w.run(&["token"], "").expect(0);
    let session: serde_json::Value =
        serde_json::from_str(&before["sandbox/default/session"]).expect("session");
    assert_eq!(
        token.stdout.trim(),
        session["access_token"].as_str().unwrap()
    );
    let env = w.run(&["--profile", "work", "env"], "");
    assert!(
        env.stdout.contains(&cli_key(&before, "work")),
        "env gives the moved api_key: {} {}",
        env.stdout,
        env.stderr
    );
    assert_eq!(stored(&w, keyring), migrated_entries());
    let problems = config_problems(
        &w,
        keyring,
        &[("default", Some("default")), ("work", Some("work"))],
    );
    assert!(problems.is_empty(), "{problems:#?}");
    for p in PROFILES {
        assert!(!stored(&w, keyring).contains_key(&format!("sandbox/{p}/app")));
    }

    // And they keep working at the sandbox: the interrupted rotation finishes with the
    // secret it had verified, and a new login works with the moved credentials.
    let pending: serde_json::Value =
        serde_json::from_str(&before["sandbox/work/pending"]).expect("pending");
    w.run(
        &[
            "--profile",
            "work",
            "regenerate",
            "--resume",
            "--no-input",
            "--yes",
            "--no-scan",
        ],
        "",
    )
    .expect(0);
    let now = stored(&w, keyring);
    let app: serde_json::Value = serde_json::from_str(&now["sandbox/apps/work/app"]).expect("app");
    assert_eq!(app["api_secret"], pending["api_secret"]);
    assert!(!now.contains_key("sandbox/apps/work/pending"));
    let _turn = login_port_turn();
    w.run(&["login", "--force", "--timeout", "20"], "")
        .expect(0);
    w.run(&["status", "--check"], "").expect(0);
}

fn cli_key(entries: &BTreeMap<String, String>, profile: &str) -> String {
    let app: serde_json::Value =
        serde_json::from_str(&entries[&format!("sandbox/{profile}/app")]).expect("app");
    app["api_key"].as_str().expect("api_key").to_string()
}

#[test]
fn the_previous_releases_file_store_is_converted_without_loss() {
    converted(false);
}

#[test]
fn the_previous_releases_keyring_entries_are_converted_without_loss() {
    converted(true);
}
