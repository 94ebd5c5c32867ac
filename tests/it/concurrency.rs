//! The concurrency-and-crash suite: the real binary, several at once or killed mid-write,
//! against a sandbox process and a real store (a private headless Secret Service, or
//! `--store file`). Race windows are widened deterministically, never by sleeps alone:
//! - `strace -f -e inject=rename:delay_enter=…` holds one process at its
//!   atomic rename (of `config.toml` or `secrets.json`) while the test watches for its
//!   temp file to appear, then runs the other command to completion;
//! - a sandbox delay fault (`POST /_sandbox/faults`) on `/session/token` holds a logout's
//!   revoke or a login's token exchange while the other command runs;
//! - kill points: `strace -e inject=rename:signal=KILL|TERM:when=N` delivers the signal
//!   on entering the Nth rename, i.e. right after the (N-1)th write; with `--store file`
//!   every write of `init --force` is a rename, so every step of its store phase is hit.
//!   The number of writes before the store phase is measured (an init whose login Kite
//!   refuses writes only its probe), not assumed. The same kill points cut short the
//!   first command on a profile the previous release wrote (tests/fixtures/release-0.1),
//!   at each write of the move of its app entries (`commands::apps::migrate`).
//!
//! After each scenario the state is checked from outside: `config.toml`, the store's
//! entries, and the sandbox's count of live access tokens. "Lost" counts a profile or
//! entry that vanished or came back, or a profile whose metadata and secrets belong to
//! different apps; "orphaned" counts a token alive at Kite that no stored profile holds,
//! or entries left for a profile that does not exist.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cli::{self as cli_support, App, Run, World, run_command};

/// How long a delayed rename or Kite call is held: long enough for the other command to
/// finish, short against the lock wait (`KITE_SETUP_LOCK_WAIT_SECS` below).
const HOLD_US: u64 = 2_000_000;
/// How long a held Kite call waits: a whole browser login must fit in it.
const HOLD_KITE_MS: u64 = 3_000;
const LOCK_WAIT_SECS: &str = "20";

#[derive(Default)]
struct Tally {
    scenarios: usize,
    kill_points: usize,
    lost: Vec<String>,
    /// Tokens alive at Kite that no stored profile holds.
    orphaned_tokens: u64,
    orphaned: Vec<String>,
    other: Vec<String>,
}

impl Tally {
    fn lost(&mut self, scenario: &str, what: impl Into<String>) {
        self.lost.push(format!("{scenario}: {}", what.into()));
    }
    fn orphaned(&mut self, scenario: &str, what: impl Into<String>) {
        self.orphaned.push(format!("{scenario}: {}", what.into()));
    }
    fn other(&mut self, scenario: &str, what: impl Into<String>) {
        self.other.push(format!("{scenario}: {}", what.into()));
    }
}

/// Which store a world's profiles use.
#[derive(Clone, Copy, PartialEq)]
enum StoreKind {
    Keyring,
    File,
}

/// `kite-setup --sandbox-url … [--store file] --profile P ARGS…`.
fn kite(w: &World, store: StoreKind, profile: &str, args: &[&str]) -> Command {
    let mut all: Vec<&str> = vec!["--profile", profile];
    if store == StoreKind::File {
        all.extend(["--store", "file"]);
    }
    all.extend(args);
    let mut cmd = w.command(&all);
    cmd.env("KITE_SETUP_LOCK_WAIT_SECS", LOCK_WAIT_SECS);
    cmd
}

/// The same command run under `strace` with one injection (`-e inject=…`).
fn under_strace(cmd: &Command, inject: &str, log: Option<&Path>) -> Command {
    let mut s = Command::new("strace");
    s.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            s.env(k, v);
        }
    }
    let out = log.map_or_else(|| "/dev/null".to_string(), |p| p.display().to_string());
    s.args(["-f", "-qq", "-o", &out, "-e", "trace=rename"]);
    if !inject.is_empty() {
        s.args(["-e", inject]);
    }
    s.arg("--").arg(cmd.get_program()).args(cmd.get_args());
    s
}

fn spawn_with_stdin(mut cmd: Command, stdin: &str) -> Child {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "spawn {}: {e} (is strace installed?)",
                cmd.get_program().display()
            )
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child
}

fn finish(child: Child) -> Run {
    let out = child.wait_with_output().expect("wait");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Waits until a temp file of an atomic write of `name` (`.name.XXXX.tmp`) is in `dir`:
/// the held process has read the old file and sits at its rename.
fn wait_for_temp(dir: &Path, name: &str, child: &mut Child) -> bool {
    let prefix = format!(".{name}.");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().to_string();
                if n.starts_with(&prefix) && Path::new(&n).extension().is_some_and(|x| x == "tmp") {
                    return true;
                }
            }
        }
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// The init argv for `app` (the secret goes on stdin), with `--force` if asked.
fn init_args<'a>(w: &'a World, app: &'a App, force: bool) -> Vec<&'a str> {
    let mut args = w.init_args(app);
    if force {
        args.push("--force");
    }
    args
}

fn init(w: &World, store: StoreKind, profile: &str, app: &App, force: bool) -> Run {
    run_command(
        kite(w, store, profile, &init_args(w, app, force)),
        &format!("{}\n", app.api_secret),
    )
}

/// The sandbox profiles in `config.toml`: name → redirect URL.
fn config_profiles(w: &World) -> BTreeMap<String, String> {
    config_field(w, "redirect_url")
}

/// The sandbox profiles in `config.toml`: name → the app they use (the profile's own
/// name for a profile that names none).
fn config_apps(w: &World) -> BTreeMap<String, String> {
    let mut apps = config_field(w, "app");
    for (name, app) in &mut apps {
        if app.is_empty() {
            app.clone_from(name);
        }
    }
    apps
}

/// One string field of every sandbox profile in `config.toml` ("" when absent).
fn config_field(w: &World, key: &str) -> BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(w.config_dir.join("config.toml")) else {
        return BTreeMap::new();
    };
    let v: toml::Value = toml::from_str(&text).expect("config.toml parses");
    v.get("sandbox_profiles")
        .and_then(toml::Value::as_table)
        .map(|t| {
            t.iter()
                .map(|(k, m)| {
                    let url = m.get(key).and_then(toml::Value::as_str);
                    (k.clone(), url.unwrap_or_default().to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every kite-setup entry in the world's store: name → payload.
fn entries(w: &World, store: StoreKind, profiles: &[&str]) -> BTreeMap<String, String> {
    match store {
        StoreKind::File => {
            let Ok(text) = std::fs::read_to_string(w.config_dir.join("secrets.json")) else {
                return BTreeMap::new();
            };
            serde_json::from_str(&text).expect("secrets.json parses")
        }
        StoreKind::Keyring => {
            let mut out = BTreeMap::new();
            let apps = config_apps(w);
            let mut names = Vec::new();
            for p in profiles {
                for e in ["app", "session", "pending", "staged"] {
                    names.push(format!("sandbox/{p}/{e}"));
                }
                // Its app's entries, under the app config.toml names (or the profile's).
                let app = apps.get(*p).map_or(*p, String::as_str);
                for e in ["app", "pending"] {
                    names.push(format!("sandbox/apps/{app}/{e}"));
                }
            }
            for name in names {
                if let Some(v) = w.keyring.lookup(&name) {
                    out.insert(name, v);
                }
            }
            out
        }
    }
}

fn field(payload: &str, pointer: &str) -> Option<String> {
    cli_support::payload_str(Some(payload), pointer)
}

fn live_tokens(w: &World) -> u64 {
    w.control_get("/_sandbox/state")["live_access_tokens"]
        .as_u64()
        .expect("live_access_tokens")
}

/// Checks the world after a scenario: each profile in `expect_present` is complete (its
/// metadata, app entry and session belong to one app, its token alive), none of
/// `expect_absent` has metadata or entries, and every live token is held by a profile.
fn check(
    t: &mut Tally,
    scenario: &str,
    w: &World,
    store: StoreKind,
    apps: &[&App],
    expect_present: &[&str],
    expect_absent: &[&str],
) {
    let config = config_profiles(w);
    let app_of = config_apps(w);
    let all: Vec<&str> = expect_present
        .iter()
        .chain(expect_absent)
        .copied()
        .collect();
    let stored = entries(w, store, &all);
    let redirect_of: BTreeMap<&str, &str> = apps
        .iter()
        .map(|a| (a.api_key.as_str(), a.redirect_url.as_str()))
        .collect();
    let mut held = 0;
    for p in expect_present {
        let Some(url) = config.get(*p) else {
            t.lost(scenario, format!("profile {p} is missing from config.toml"));
            continue;
        };
        let app_id = app_of.get(*p).map_or(*p, String::as_str);
        let Some(app) = stored.get(&format!("sandbox/apps/{app_id}/app")) else {
            t.lost(scenario, format!("profile {p} has no app entry"));
            continue;
        };
        let key = field(app, "/api_key").unwrap_or_default();
        if redirect_of.get(key.as_str()) != Some(&url.as_str()) {
            t.lost(
                scenario,
                format!("profile {p} is mixed: its app entry and config.toml are of two apps"),
            );
        }
        match stored
            .get(&format!("sandbox/{p}/session"))
            .and_then(|s| field(s, "/access_token"))
        {
            Some(token) if w.profile_status(&key, &token) == 200 => held += 1,
            Some(_) => t.lost(scenario, format!("profile {p} holds a dead token")),
            None => t.lost(scenario, format!("profile {p} has no session")),
        }
    }
    for p in expect_absent {
        if config.contains_key(*p) {
            t.lost(
                scenario,
                format!("removed profile {p} is back in config.toml"),
            );
        }
    }
    for name in stored.keys() {
        let parts: Vec<&str> = name.split('/').collect();
        let owned = match parts.as_slice() {
            ["sandbox", "apps", app, _] => app_of.values().any(|a| a == app),
            ["sandbox", profile, _] => config.contains_key(*profile),
            _ => true,
        };
        if !owned {
            t.lost(
                scenario,
                format!("entry {name} of a profile that does not exist"),
            );
        }
        if name.ends_with("/staged") || name.ends_with("/pending") {
            t.other(scenario, format!("entry {name} left behind"));
        }
    }
    let live = live_tokens(w);
    if live > held {
        t.orphaned_tokens += live - held;
        t.orphaned(
            scenario,
            format!("{} live token(s) held by no profile", live - held),
        );
    }
}

fn expect_ok(t: &mut Tally, scenario: &str, what: &str, run: &Run) {
    if run.code != 0 {
        t.other(
            scenario,
            format!("{what} exited {}: {}", run.code, run.stderr.trim()),
        );
    }
}

/// Two inits of different profiles, the first held at its config.toml rename while the
/// second runs: both profiles must stay.
fn two_inits_of_different_profiles(t: &mut Tally, store: StoreKind) {
    let scenario = match store {
        StoreKind::Keyring => "init a ∥ init b (keyring)",
        StoreKind::File => "init a ∥ init b (--store file)",
    };
    t.scenarios += 1;
    let w = World::new();
    let (a, b) = (w.create_app(), w.create_app());
    // With the keyring, init's only rename is config.toml's; with --store file the first
    // rename is the keyring probe's write to secrets.json.
    let (name, inject) = match store {
        StoreKind::Keyring => (
            "config.toml",
            format!("inject=rename:delay_enter={HOLD_US}"),
        ),
        StoreKind::File => (
            "secrets.json",
            format!("inject=rename:delay_enter={HOLD_US}:when=1"),
        ),
    };
    let slow = under_strace(
        &kite(&w, store, "a", &init_args(&w, &a, false)),
        &inject,
        None,
    );
    let mut slow = spawn_with_stdin(slow, &format!("{}\n", a.api_secret));
    if !wait_for_temp(&w.config_dir, name, &mut slow) {
        t.other(scenario, format!("init a never reached its {name} rename"));
    }
    let fast = init(&w, store, "b", &b, false);
    expect_ok(t, scenario, "init b", &fast);
    expect_ok(t, scenario, "init a", &finish(slow));
    check(t, scenario, &w, store, &[&a, &b], &["a", "b"], &[]);
}

/// Two inits (no `--force`) of the same new profile, the first held at its config.toml
/// rename: the second must refuse (the profile exists now) and leave no token alive.
fn two_inits_of_one_new_profile(t: &mut Tally) {
    let scenario = "init ∥ init (one new profile)";
    t.scenarios += 1;
    let w = World::new();
    let (first, second) = (w.create_app(), w.create_app());
    let store = StoreKind::Keyring;
    let slow = under_strace(
        &kite(&w, store, "default", &init_args(&w, &first, false)),
        &format!("inject=rename:delay_enter={HOLD_US}"),
        None,
    );
    let mut slow = spawn_with_stdin(slow, &format!("{}\n", first.api_secret));
    if !wait_for_temp(&w.config_dir, "config.toml", &mut slow) {
        t.other(scenario, "the first init never reached its rename");
    }
    let fast = init(&w, store, "default", &second, false);
    if fast.code != 2 || !fast.stderr.contains("already exists") {
        t.other(
            scenario,
            format!(
                "the second init did not refuse: exit {}: {}",
                fast.code,
                fast.stderr.trim()
            ),
        );
    }
    expect_ok(t, scenario, "first init", &finish(slow));
    check(
        t,
        scenario,
        &w,
        store,
        &[&first, &second],
        &["default"],
        &[],
    );
    let key = entries(&w, store, &["default"])
        .get("sandbox/apps/default/app")
        .and_then(|a| field(a, "/api_key"));
    if key.as_deref() != Some(first.api_key.as_str()) {
        t.lost(scenario, "the first init's profile was overwritten");
    }
}

/// `remove a` while `init b` is held at its config.toml rename: a must stay removed.
fn remove_during_init(t: &mut Tally) {
    let scenario = "remove a ∥ init b";
    t.scenarios += 1;
    let w = World::new();
    let (a, b) = (w.create_app(), w.create_app());
    expect_ok(
        t,
        scenario,
        "init a",
        &init(&w, StoreKind::Keyring, "a", &a, false),
    );
    let slow = under_strace(
        &kite(&w, StoreKind::Keyring, "b", &init_args(&w, &b, false)),
        &format!("inject=rename:delay_enter={HOLD_US}"),
        None,
    );
    let mut slow = spawn_with_stdin(slow, &format!("{}\n", b.api_secret));
    if !wait_for_temp(&w.config_dir, "config.toml", &mut slow) {
        t.other(scenario, "init b never reached its rename");
    }
    let removed = run_command(kite(&w, StoreKind::Keyring, "a", &["remove", "--yes"]), "");
    expect_ok(t, scenario, "remove a", &removed);
    expect_ok(t, scenario, "init b", &finish(slow));
    check(t, scenario, &w, StoreKind::Keyring, &[&b], &["b"], &["a"]);
}

/// `init --force` of one profile from two processes, the first held at its config.toml
/// rename: the profile must be one app's, whole, and no token left alive unheld.
fn two_forced_inits_of_one_profile(t: &mut Tally) {
    let scenario = "init --force ∥ init --force (one profile)";
    t.scenarios += 1;
    let w = World::new();
    let (old, first, second) = (w.create_app(), w.create_app(), w.create_app());
    let store = StoreKind::Keyring;
    expect_ok(
        t,
        scenario,
        "init",
        &init(&w, store, "default", &old, false),
    );
    let slow = under_strace(
        &kite(&w, store, "default", &init_args(&w, &first, true)),
        &format!("inject=rename:delay_enter={HOLD_US}"),
        None,
    );
    let mut slow = spawn_with_stdin(slow, &format!("{}\n", first.api_secret));
    if !wait_for_temp(&w.config_dir, "config.toml", &mut slow) {
        t.other(scenario, "the first init --force never reached its rename");
    }
    let fast = init(&w, store, "default", &second, true);
    expect_ok(t, scenario, "second init --force", &fast);
    expect_ok(t, scenario, "first init --force", &finish(slow));
    check(
        t,
        scenario,
        &w,
        store,
        &[&old, &first, &second],
        &["default"],
        &[],
    );
}

/// A sandbox fault that holds the next request to `path` for `HOLD_KITE_MS`.
fn hold_next(w: &World, path: &str) {
    w.control(
        "/_sandbox/faults",
        &serde_json::json!({"path": path, "delay_ms": HOLD_KITE_MS, "count": 1}),
    );
}

/// Waits until the injected faults are used up (the held request has arrived).
fn wait_fault_taken(w: &World) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if w.pending_faults() == 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn session_token(w: &World, profile: &str) -> Option<String> {
    w.keyring
        .lookup(&format!("sandbox/{profile}/session"))
        .and_then(|s| field(&s, "/access_token"))
}

/// `logout` held in its revoke while `login --force` stores a new token: logout must not
/// delete the token it never revoked.
fn logout_during_login(t: &mut Tally) {
    let scenario = "logout ∥ login --force";
    t.scenarios += 1;
    let w = World::new();
    let app = w.set_up();
    hold_next(&w, "/session/token");
    let logout = kite(&w, StoreKind::Keyring, "default", &["logout"]);
    let logout = spawn_with_stdin(logout, "");
    if !wait_fault_taken(&w) {
        t.other(scenario, "logout never sent its revoke");
    }
    let login = run_command(
        kite(
            &w,
            StoreKind::Keyring,
            "default",
            &["login", "--force", "--timeout", "20"],
        ),
        "",
    );
    expect_ok(t, scenario, "login --force", &login);
    expect_ok(t, scenario, "logout", &finish(logout));
    check(
        t,
        scenario,
        &w,
        StoreKind::Keyring,
        &[&app],
        &["default"],
        &[],
    );
}

/// `login --force` replaces a live token: the replaced one must be revoked.
fn forced_login_revokes_what_it_replaces(t: &mut Tally) {
    let scenario = "login --force ×3";
    t.scenarios += 1;
    let w = World::new();
    let app = w.set_up();
    for _ in 0..3 {
        let login = run_command(
            kite(
                &w,
                StoreKind::Keyring,
                "default",
                &["login", "--force", "--timeout", "20"],
            ),
            "",
        );
        expect_ok(t, scenario, "login --force", &login);
    }
    check(
        t,
        scenario,
        &w,
        StoreKind::Keyring,
        &[&app],
        &["default"],
        &[],
    );
}

/// `remove` while a `login --force` is held in its token exchange: nothing may be left
/// for the removed profile, and the login's new token must not live on unheld.
fn remove_during_login(t: &mut Tally) {
    let scenario = "remove ∥ login --force";
    t.scenarios += 1;
    let w = World::new();
    let app = w.set_up();
    let before = session_token(&w, "default");
    hold_next(&w, "/session/token");
    let login = kite(
        &w,
        StoreKind::Keyring,
        "default",
        &["login", "--force", "--timeout", "20"],
    );
    let login = spawn_with_stdin(login, "");
    if !wait_fault_taken(&w) {
        t.other(scenario, "login never sent its token exchange");
    }
    let removed = run_command(
        kite(&w, StoreKind::Keyring, "default", &["remove", "--yes"]),
        "",
    );
    expect_ok(t, scenario, "remove", &removed);
    let login = finish(login);
    if login.code == 0 {
        t.other(
            scenario,
            "login --force reported success for a removed profile",
        );
    }
    check(
        t,
        scenario,
        &w,
        StoreKind::Keyring,
        &[&app],
        &[],
        &["default"],
    );
    if before.is_none() {
        t.other(scenario, "no session before the race");
    }
}

/// `remove` while `regenerate` is held in its verifying login's token exchange: nothing
/// may be written back for the removed profile, and no token left alive.
fn remove_during_regenerate(t: &mut Tally) {
    let scenario = "remove ∥ regenerate";
    t.scenarios += 1;
    let w = World::new();
    let app = w.set_up();
    let new_secret = w.regenerate_at_console(&app.api_key);
    hold_next(&w, "/session/token");
    let mut regenerate = kite(
        &w,
        StoreKind::Keyring,
        "default",
        &[
            "regenerate",
            "--no-input",
            "--yes",
            "--api-secret-stdin",
            "--timeout",
            "20",
        ],
    );
    // The leak scan (never reached when all goes right) starts in an empty directory.
    regenerate.current_dir(w.keyring.path());
    let regenerate = spawn_with_stdin(regenerate, &format!("{new_secret}\n"));
    if !wait_fault_taken(&w) {
        t.other(scenario, "regenerate never sent its token exchange");
    }
    let removed = run_command(
        kite(&w, StoreKind::Keyring, "default", &["remove", "--yes"]),
        "",
    );
    expect_ok(t, scenario, "remove", &removed);
    let regenerate = finish(regenerate);
    if regenerate.code == 0 {
        t.other(
            scenario,
            "regenerate reported success for a removed profile",
        );
    }
    check(
        t,
        scenario,
        &w,
        StoreKind::Keyring,
        &[&app],
        &[],
        &["default"],
    );
}

/// While `init --force` holds the profile (it sits at its config.toml rename), `remove`
/// with a 1 s lock wait must refuse, naming the holder's pid and command.
fn busy_profile_names_its_holder(t: &mut Tally) {
    let scenario = "remove while init --force holds the profile";
    t.scenarios += 1;
    let w = World::new();
    let (o, x) = (w.create_app(), w.create_app());
    let store = StoreKind::Keyring;
    expect_ok(t, scenario, "init", &init(&w, store, "default", &o, false));
    let slow = under_strace(
        &kite(&w, store, "default", &init_args(&w, &x, true)),
        &format!("inject=rename:delay_enter={}", HOLD_US * 2),
        None,
    );
    let mut slow = spawn_with_stdin(slow, &format!("{}\n", x.api_secret));
    if !wait_for_temp(&w.config_dir, "config.toml", &mut slow) {
        t.other(scenario, "init --force never reached its rename");
    }
    let holder = traced_pid(slow.id());
    let mut remove = kite(&w, store, "default", &["remove", "--yes"]);
    remove.env("KITE_SETUP_LOCK_WAIT_SECS", "1");
    let removed = run_command(remove, "");
    let named = holder.is_some_and(|pid| {
        removed
            .stderr
            .contains(&format!("kite-setup process {pid} (init)"))
    });
    if removed.code != 1 || !named || !removed.stderr.contains("hint: ") {
        t.other(
            scenario,
            format!(
                "remove did not refuse naming init {holder:?}: exit {}: {}",
                removed.code,
                removed.stderr.trim()
            ),
        );
    }
    expect_ok(t, scenario, "init --force", &finish(slow));
    check(t, scenario, &w, store, &[&x], &["default"], &[]);
}

/// The pid of the process `strace` (pid `tracer`) runs.
fn traced_pid(tracer: u32) -> Option<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{tracer}/task/{tracer}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

/// How many renames an init run makes, from its strace log.
fn renames_in(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("rename(") && !l.contains("resumed>"))
        .count()
}

/// How many renames `init --force` makes before its store phase and in all: an init whose
/// login Kite refuses writes only its pre-flight probe (with the keyring: nothing).
fn measure_renames(t: &mut Tally, store: StoreKind) -> (usize, usize) {
    let w = World::new();
    let (old, new) = (w.create_app(), w.create_app());
    let setup = init(&w, store, "default", &old, false);
    expect_ok(t, "kill points", "init", &setup);
    let log = w.keyring.path().join("strace-refused.log");
    w.control(
        "/_sandbox/faults",
        &serde_json::json!({"path": "/session/token", "status": 403, "count": 1}),
    );
    let args = init_args(&w, &new, true);
    let stdin = format!("{}\n", new.api_secret);
    let refused = under_strace(&kite(&w, store, "default", &args), "", Some(&log));
    let _ = finish(spawn_with_stdin(refused, &stdin));
    let before_store = renames_in(&log);
    let log = w.keyring.path().join("strace-full.log");
    let full = under_strace(&kite(&w, store, "default", &args), "", Some(&log));
    let full = finish(spawn_with_stdin(full, &stdin));
    expect_ok(t, "kill points", "reference init --force", &full);
    let total = renames_in(&log);
    assert!(
        total > before_store,
        "the store phase made {} renames",
        total - before_store
    );
    (before_store, total)
}

/// The kill points of `init --force` with `store`, as (rename to signal at, name). On
/// entering rename N, writes 1..N-1 are done. With --store file every write is a rename,
/// and N-1 ≥ before_store + 1 means at least one store-phase write has landed (a token
/// exists and must not be lost). With the keyring, the store phase's keyring writes come
/// before its one rename (config.toml's), so every rename is a kill point.
fn kill_plan(t: &mut Tally, store: StoreKind) -> Vec<(usize, String)> {
    let (before_store, total) = measure_renames(t, store);
    let first = match store {
        StoreKind::File => before_store + 2,
        StoreKind::Keyring => before_store + 1,
    };
    (first..=total)
        .map(|n| {
            let name = match store {
                StoreKind::File => format!("after store write {}", n - 1 - before_store),
                StoreKind::Keyring => format!("at rename {}", n - before_store),
            };
            (n, name)
        })
        .collect()
}

/// One kill point: `init --force` gets SIGKILL or SIGTERM on entering its `n`th rename;
/// then the next command on the profile runs (it finishes or drops what the kill cut
/// short), and the profile must be the old app's or the new one's, whole. After SIGTERM
/// the message must say which.
fn kill_point(t: &mut Tally, store: StoreKind, n: usize, name: &str, signal: &str) {
    let scenario = match store {
        StoreKind::File => format!("init --force --store file, SIG{signal} {name}"),
        StoreKind::Keyring => format!("init --force (keyring), SIG{signal} {name}"),
    };
    t.scenarios += 1;
    t.kill_points += 1;
    let w = World::new();
    let (old, new) = (w.create_app(), w.create_app());
    expect_ok(
        t,
        &scenario,
        "init",
        &init(&w, store, "default", &old, false),
    );
    let killed = under_strace(
        &kite(&w, store, "default", &init_args(&w, &new, true)),
        &format!("inject=rename:signal={signal}:when={n}"),
        None,
    );
    let killed = finish(spawn_with_stdin(killed, &format!("{}\n", new.api_secret)));
    // The next command on the profile: a script's `token`, a person's `status`.
    let next = if signal == "KILL" { "token" } else { "status" };
    let _next = run_command(kite(&w, store, "default", &[next]), "");
    check(t, &scenario, &w, store, &[&old, &new], &["default"], &[]);
    let now_key = entries(&w, store, &["default"])
        .get("sandbox/apps/default/app")
        .and_then(|a| field(a, "/api_key"));
    let is_new = now_key.as_deref() == Some(new.api_key.as_str());
    if signal == "TERM" {
        let said_nothing = killed.stderr.contains("no partial changes were made");
        if said_nothing == is_new {
            t.other(
                &scenario,
                format!(
                    "after SIGTERM it said {:?}, but the profile is the {} app's",
                    killed.stderr.lines().last().unwrap_or_default(),
                    if is_new { "new" } else { "old" }
                ),
            );
        }
    }
}

/// A first `init` of a profile killed at its commit (the config.toml rename): the profile
/// must not exist afterwards, and the next command must drop the staged entry and revoke
/// the token its login got.
fn first_init_killed_at_its_commit(t: &mut Tally) {
    let scenario = "first init (keyring), SIGKILL at its commit";
    t.scenarios += 1;
    t.kill_points += 1;
    let w = World::new();
    let app = w.create_app();
    let store = StoreKind::Keyring;
    let killed = under_strace(
        &kite(&w, store, "default", &init_args(&w, &app, false)),
        "inject=rename:signal=KILL:when=1",
        None,
    );
    let _ = finish(spawn_with_stdin(killed, &format!("{}\n", app.api_secret)));
    let next = run_command(kite(&w, store, "default", &["token"]), "");
    if next.code != 4 {
        t.other(
            scenario,
            format!("token exited {}: {}", next.code, next.stderr.trim()),
        );
    }
    check(t, scenario, &w, store, &[&app], &[], &["default"]);
}

/// The fixture's store after the move of `moved`'s app entries alone.
fn moved_alone(moved: &str) -> BTreeMap<String, String> {
    crate::migration_cli::fixture_entries()
        .into_iter()
        .map(|(k, v)| {
            let what = k.strip_prefix(&format!("sandbox/{moved}/"));
            match what {
                Some(e @ ("app" | "pending")) => (format!("sandbox/apps/{moved}/{e}"), v),
                _ => (k, v),
            }
        })
        .collect()
}

/// `kite-setup --profile P token` on a world from the previous release's fixture.
fn legacy_token(w: &World, profile: &str) -> Command {
    let mut cmd = w.command(&["--profile", profile, "token"]);
    cmd.env("KITE_SETUP_LOCK_WAIT_SECS", LOCK_WAIT_SECS);
    cmd
}

/// How many renames the first command on `profile` of the fixture makes (the move of its
/// app entries; with the keyring, only config.toml's commit is a rename), checking that
/// it ends as the move should.
fn measure_migration(t: &mut Tally, keyring: bool, profile: &str) -> usize {
    let (w, _state) = crate::migration_cli::legacy_world(keyring);
    let log = w.keyring.path().join("strace-migration.log");
    let run = finish(spawn_with_stdin(
        under_strace(&legacy_token(&w, profile), "", Some(&log)),
        "",
    ));
    expect_ok(t, "migration kill points", "reference token", &run);
    if crate::migration_cli::stored(&w, keyring) != moved_alone(profile) {
        t.other(
            "migration kill points",
            format!("the reference run did not move {profile} as expected"),
        );
    }
    renames_in(&log)
}

/// One kill point of the move: the first command on `profile` (a script's `token`) gets
/// SIGKILL on entering its `n`th rename; the next `token` must finish or redo the move,
/// print the profile's own token, and leave every entry of both profiles there, byte for
/// byte (the other profile not moved).
fn migration_kill_point(t: &mut Tally, keyring: bool, profile: &str, n: usize) {
    let scenario = format!(
        "first command on a {profile} the previous release wrote ({}), SIGKILL at rename {n}",
        if keyring { "keyring" } else { "--store file" }
    );
    t.scenarios += 1;
    t.kill_points += 1;
    let (w, _state) = crate::migration_cli::legacy_world(keyring);
    let killed = under_strace(
        &legacy_token(&w, profile),
        &format!("inject=rename:signal=KILL:when={n}"),
        None,
    );
    let killed = finish(spawn_with_stdin(killed, ""));
    if killed.code == 0 {
        t.other(&scenario, "the command was not killed");
    }
    let next = run_command(legacy_token(&w, profile), "");
    expect_ok(t, &scenario, "the next token", &next);
    let session = crate::migration_cli::fixture_entries()
        .get(&format!("sandbox/{profile}/session"))
        .and_then(|s| field(s, "/access_token"));
    if session.as_deref() != Some(next.stdout.trim()) {
        t.lost(&scenario, "the next token printed another token");
    }
    let want = moved_alone(profile);
    let now = crate::migration_cli::stored(&w, keyring);
    for (k, v) in &want {
        if now.get(k) != Some(v) {
            t.lost(&scenario, format!("{k} is missing or changed"));
        }
    }
    for k in now.keys().filter(|k| !want.contains_key(*k)) {
        t.orphaned(&scenario, format!("{k} was left behind"));
    }
    let apps: Vec<(&str, Option<&str>)> = crate::migration_cli::PROFILES
        .iter()
        .map(|p| (*p, (*p == profile).then_some(*p)))
        .collect();
    for problem in crate::migration_cli::config_problems(&w, keyring, &apps) {
        t.lost(&scenario, problem);
    }
}

type Job = Box<dyn Fn(&mut Tally) + Send + Sync>;

/// Runs the jobs on a few threads (each scenario has its own keyring, sandbox and
/// directories), and adds up their tallies.
fn run_jobs(jobs: &[Job], threads: usize) -> Tally {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut t = Tally::default();
                    while let Some(job) =
                        jobs.get(next.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
                    {
                        job(&mut t);
                    }
                    t
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a scenario panicked"))
            .collect()
    });
    let mut all = Tally::default();
    for t in tallies {
        all.scenarios += t.scenarios;
        all.kill_points += t.kill_points;
        all.orphaned_tokens += t.orphaned_tokens;
        all.lost.extend(t.lost);
        all.orphaned.extend(t.orphaned);
        all.other.extend(t.other);
    }
    all
}

#[test]
fn concurrency_and_crash() {
    let started = Instant::now();
    let mut jobs: Vec<Job> = vec![
        Box::new(|t| two_inits_of_different_profiles(t, StoreKind::Keyring)),
        Box::new(|t| two_inits_of_different_profiles(t, StoreKind::File)),
        Box::new(two_inits_of_one_new_profile),
        Box::new(remove_during_init),
        Box::new(two_forced_inits_of_one_profile),
        Box::new(logout_during_login),
        Box::new(forced_login_revokes_what_it_replaces),
        Box::new(remove_during_login),
        Box::new(remove_during_regenerate),
        Box::new(busy_profile_names_its_holder),
        Box::new(first_init_killed_at_its_commit),
    ];
    let mut measured = Tally::default();
    for store in [StoreKind::File, StoreKind::Keyring] {
        for (n, name) in kill_plan(&mut measured, store) {
            for signal in ["KILL", "TERM"] {
                let name = name.clone();
                jobs.push(Box::new(move |t| kill_point(t, store, n, &name, signal)));
            }
        }
    }
    let mut migration_points = 0;
    for keyring in [false, true] {
        for profile in crate::migration_cli::PROFILES {
            for n in 1..=measure_migration(&mut measured, keyring, profile) {
                migration_points += 1;
                jobs.push(Box::new(move |t| {
                    migration_kill_point(t, keyring, profile, n);
                }));
            }
        }
    }
    let mut t = run_jobs(&jobs, 3);
    t.other.extend(measured.other);
    let failures: BTreeSet<&String> = t.lost.iter().chain(&t.orphaned).chain(&t.other).collect();
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    crate::support::report_figure(
        "concurrency",
        &format!(
            "concurrency: {} scenarios, {} kill points ({migration_points} in moving a previous release's profile), {} lost, {} orphaned tokens",
            t.scenarios,
            t.kill_points,
            t.lost.len(),
            t.orphaned_tokens
        ),
    );
    eprintln!("(in {:.1} s)", started.elapsed().as_secs_f64());
    assert!(
        failures.is_empty(),
        "{} failure(s), listed above",
        failures.len()
    );
}
