//! Keyring failures through the binary (README "Where things are kept"): no D-Bus at all,
//! a Secret Service whose collection is locked, and one that never answers (SIGSTOP).
//! Every command that needs a secret ends within the keyring timeout (plus a margin) with
//! one `error:` line naming what happened, a `hint:` naming the fix, exit 1, and nothing
//! written anywhere (no config file, nothing in the data dir, the keyring file as it was).
//!
//! Live mode (no sandbox): the sandbox may fall back to its own file store when no
//! keyring exists, which live profiles never do; every command here fails before the
//! network. The timeout is cut to 2 s with `KITE_SETUP_KEYRING_TIMEOUT_SECS`; one case
//! runs with the default 10 s.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::cli::{BIN, Run, check_failure, run_command};
use crate::support::keyring::KeyringSession;

const TIMEOUT_SECS: u64 = 2;
/// Start-up, the D-Bus handshake and process exit on a loaded 2-core machine.
const MARGIN: Duration = Duration::from_secs(4);

const CONFIG: &str = r#"[profiles.default]
client_id = "AB1234"
plan = "personal"
redirect_url = "http://127.0.0.1:5123/kite-setup/callback"
store = "auto"
verified = true
created_at = "2026-11-26T00:00:00Z"
updated_at = "2026-11-26T00:00:00Z"
"#;

const SECRET: &str = "KeyringFailSecret0123456789abcdefXY";

#[derive(Clone, Copy, Debug)]
enum Broken {
    NoDbus,
    /// A locked collection that holds the profile's entries (locked after they were
    /// written, as a screen lock or a timeout does).
    Locked,
    /// A collection locked from the start (the daemon restarted without a password);
    /// only `init` is run against it: with no entries and no way to look, the others
    /// cannot tell a locked keyring from an empty one.
    LockedEmpty,
    Frozen,
}

impl Broken {
    fn session(self) -> KeyringSession {
        match self {
            Broken::NoDbus => KeyringSession::no_dbus(),
            Broken::Locked => {
                let s = KeyringSession::start();
                s.store(
                    "default/app",
                    r#"{"api_key":"abcdefgh12345678","api_secret":"KeyringFailSecret0123456789abcdefXY"}"#,
                );
                s.store("default/session", "{}");
                // org.freedesktop.Secret.Service.Lock needs no prompt (unlocking does).
                let out = s
                    .command("dbus-send")
                    .args([
                        "--session",
                        "--print-reply",
                        "--reply-timeout=5000",
                        "--dest=org.freedesktop.secrets",
                        "/org/freedesktop/secrets",
                        "org.freedesktop.Secret.Service.Lock",
                        "array:objpath:/org/freedesktop/secrets/collection/login",
                    ])
                    .output()
                    .expect("dbus-send Lock (package dbus)");
                assert!(
                    out.status.success(),
                    "Lock: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                s
            }
            Broken::LockedEmpty => KeyringSession::start_locked(),
            Broken::Frozen => {
                let s = KeyringSession::start();
                s.freeze_keyring();
                s
            }
        }
    }

    /// What the error line must say, and what the hint must name.
    fn expect(self) -> (&'static str, &'static str) {
        match self {
            Broken::NoDbus => ("not available", "--store keyutils"),
            Broken::Locked | Broken::LockedEmpty => ("locked", "unlock"),
            Broken::Frozen => ("did not answer within", "unlock"),
        }
    }
}

/// A command under test: argv, stdin, and whether a profile exists beforehand.
struct Case {
    name: &'static str,
    args: Vec<&'static str>,
    stdin: String,
    with_profile: bool,
}

fn case(name: &'static str, args: Vec<&'static str>, stdin: String, with_profile: bool) -> Case {
    Case {
        name,
        args,
        stdin,
        with_profile,
    }
}

fn commands() -> Vec<Case> {
    vec![
        case(
            "init --no-input",
            vec![
                "init",
                "--no-input",
                "--client-id",
                "AB1234",
                "--api-key",
                "abcdefgh12345678",
                "--redirect-url",
                "http://127.0.0.1:5123/kite-setup/callback",
                "--plan",
                "personal",
                "--api-secret-stdin",
            ],
            format!("{SECRET}\n"),
            false,
        ),
        case("login", vec!["login"], String::new(), true),
        case("token", vec!["token"], String::new(), true),
        case("status", vec!["status"], String::new(), true),
        case("env", vec!["env"], String::new(), true),
        case("logout", vec!["logout"], String::new(), true),
    ]
}

struct Dirs {
    _tmp: tempfile::TempDir,
    config: PathBuf,
    data: PathBuf,
}

fn dirs(with_profile: bool) -> Dirs {
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = tmp.path().join("config");
    let data = tmp.path().join("data");
    if with_profile {
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(config.join("config.toml"), CONFIG).unwrap();
    }
    Dirs {
        _tmp: tmp,
        config,
        data,
    }
}

fn files(root: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(rd) = std::fs::read_dir(root) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.push((p.clone(), Vec::new()));
            files(&p, out);
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
        }
    }
}

fn snapshot(ks: &KeyringSession, d: &Dirs) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    files(&d.config, &mut out);
    files(&d.data, &mut out);
    // The keyring's own files (the locked collection must not change).
    files(&ks.path().join("data"), &mut out);
    out.sort();
    out
}

fn run(ks: &KeyringSession, d: &Dirs, args: &[&str], stdin: &str, timeout: Option<u64>) -> Run {
    let mut cmd = Command::new(BIN);
    #[allow(clippy::disallowed_methods)] // the child needs PATH like any process
    let path = std::env::var_os("PATH").unwrap_or_default();
    cmd.env_clear()
        .env("PATH", path)
        .envs(ks.envs())
        .env("KITE_SETUP_CONFIG_DIR", &d.config)
        .env("KITE_SETUP_DATA_DIR", &d.data)
        .env("NO_COLOR", "1")
        .args(args);
    if let Some(t) = timeout {
        cmd.env("KITE_SETUP_KEYRING_TIMEOUT_SECS", t.to_string());
    }
    run_command(cmd, stdin)
}

#[derive(Default)]
struct Tally {
    cases: usize,
    panics: usize,
    writes: usize,
    problems: Vec<String>,
}

fn one_case(ks: &KeyringSession, broken: Broken, c: &Case, timeout: Option<u64>, t: &mut Tally) {
    let (name, args, stdin) = (c.name, &c.args, c.stdin.as_str());
    let d = dirs(c.with_profile);
    let before = snapshot(ks, &d);
    let started = Instant::now();
    let r = run(ks, &d, args, stdin, timeout);
    let took = started.elapsed();
    let case = format!("{broken:?} × {name} (timeout {timeout:?})");
    let (fragment, fix) = broken.expect();
    let mut problems = check_failure(&r, 1, fragment);
    t.cases += 1;
    if problems.iter().any(|p| p == "PANIC") {
        t.panics += 1;
    }
    if !r
        .stderr
        .lines()
        .any(|l| l.starts_with("hint: ") && l.contains(fix))
    {
        problems.push(format!("the hint does not name {fix:?}"));
    }
    let limit = Duration::from_secs(timeout.unwrap_or(10)) + MARGIN;
    if took > limit {
        problems.push(format!("took {took:?} (limit {limit:?})"));
    }
    if r.stderr.contains(SECRET) || r.stdout.contains(SECRET) {
        problems.push("the secret was echoed".into());
    }
    let after = snapshot(ks, &d);
    if after != before {
        t.writes += 1;
        let names: Vec<_> = after
            .iter()
            .filter(|f| !before.contains(f))
            .map(|(p, _)| p.display().to_string())
            .collect();
        problems.push(format!("something was written: {names:?}"));
    }
    println!(
        "{case}: exit {} in {took:?}: {}",
        r.code,
        r.stderr
            .lines()
            .filter(|l| l.starts_with("error: ") || l.starts_with("hint: "))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    if !problems.is_empty() {
        t.problems.push(format!(
            "{case}: {}\n--- stderr:\n{}",
            problems.join("; "),
            r.stderr
        ));
    }
}

fn group(broken: Broken) -> Tally {
    let ks = broken.session();
    let mut t = Tally::default();
    for c in commands() {
        if matches!(broken, Broken::LockedEmpty) && c.with_profile {
            continue;
        }
        one_case(&ks, broken, &c, Some(TIMEOUT_SECS), &mut t);
    }
    t
}

#[test]
fn keyring_failures() {
    let mut handles: Vec<_> = [
        Broken::NoDbus,
        Broken::Locked,
        Broken::LockedEmpty,
        Broken::Frozen,
    ]
    .into_iter()
    .map(|b| std::thread::spawn(move || group(b)))
    .collect();
    // The default timeout (10 s), once, on a daemon that never answers.
    handles.push(std::thread::spawn(|| {
        let ks = Broken::Frozen.session();
        let mut t = Tally::default();
        let c = case("token", vec!["token"], String::new(), true);
        one_case(&ks, Broken::Frozen, &c, None, &mut t);
        t
    }));
    let mut total = Tally::default();
    for h in handles {
        let t = h.join().expect("group thread");
        total.cases += t.cases;
        total.panics += t.panics;
        total.writes += t.writes;
        total.problems.extend(t.problems);
    }
    crate::support::report_figure(
        "keyring_failures",
        &format!(
            "keyring failures: {} cases, {} panics, {} writes",
            total.cases, total.panics, total.writes
        ),
    );
    assert!(
        total.problems.is_empty(),
        "{} of {} cases failed:\n{}",
        total.problems.len(),
        total.cases,
        total.problems.join("\n\n")
    );
}
