//! The fault matrix: every Kite failure the sandbox can inject, on every API
//! path a command reaches, through the real binary with a real keyring. Each case must end
//! with the documented exit code, one specific `error:` line, a `hint:`, no panic, and the
//! stored state (keyring entries and files) exactly as before — except `regenerate`, whose
//! design leaves a pending rotation behind: a fault while verifying keeps the old secret in
//! the main entry and the new one pending at `captured`; a fault on the revoke leaves it
//! `swapped` (the new secret in place). Those states are asserted exactly, anything else
//! counts as a state change, and `regenerate --resume` must then finish the rotation.
//!
//! One world per command group, the groups in parallel threads; the faults are
//! count-limited and each case checks that its fault was used up.

use crate::support::cli::{
    App, Run, StoredState, World, check_failure, payload_str, payload_value,
};
use serde_json::{Value, json};

/// The whole-call HTTP timeout the binary runs with here (`KITE_SETUP_HTTP_TIMEOUT_SECS`),
/// and a delay that is surely past it.
const HTTP_TIMEOUT_SECS: &str = "2";
const DELAY_MS: u64 = 3_500;

/// The exit code a Kite/network failure gives, for every command: 1 (none of these faults
/// means that a new login is needed, which would be 4).
const KITE_FAILURE_EXIT: i32 = 1;

/// A marker inside injected bodies: it must never reach the terminal.
const BODY_MARKER: &str = "MARKER-7f3a-body-must-not-be-echoed";

/// One injected fault and the words the error line must contain.
struct Fault {
    name: &'static str,
    spec: Value,
    expect: String,
}

fn faults() -> Vec<Fault> {
    let status = |code: u16| Fault {
        name: match code {
            500 => "HTTP 500",
            502 => "HTTP 502",
            503 => "HTTP 503",
            504 => "HTTP 504",
            _ => "HTTP 429",
        },
        spec: json!({ "status": code }),
        expect: format!("HTTP {code}"),
    };
    vec![
        status(500),
        status(502),
        status(503),
        status(504),
        status(429),
        Fault {
            name: "delay past the timeout",
            spec: json!({ "delay_ms": DELAY_MS }),
            expect: format!("within {HTTP_TIMEOUT_SECS} s"),
        },
        Fault {
            name: "connection reset",
            spec: json!({ "reset": true }),
            expect: "cannot reach".into(),
        },
        Fault {
            name: "HTML body",
            spec: json!({ "status": 502, "body": format!("<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1>{BODY_MARKER}</body></html>") }),
            expect: "HTML page".into(),
        },
        Fault {
            name: "JSON without error_type",
            spec: json!({ "status": 500, "body": format!("{{\"status\":\"error\",\"message\":\"{BODY_MARKER}\"}}") }),
            expect: "JSON without an error_type".into(),
        },
        Fault {
            name: "empty body",
            spec: json!({ "status": 502, "body": "" }),
            expect: "empty body".into(),
        },
    ]
}

/// A command that reaches Kite, and the API paths it reaches.
#[derive(Clone, Copy, Debug)]
enum Cmd {
    /// `init --no-input --force` over the existing profile (verifies by a login).
    Init,
    /// `login --force`.
    Login,
    /// `status --check` (`GET /user/profile`).
    StatusCheck,
    /// `logout` (`DELETE /session/token`).
    Logout,
    /// `regenerate --no-input --yes --api-secret-stdin --no-scan` after the secret was
    /// regenerated at the console: the verifying login (`POST /session/token`,
    /// `GET /user/profile`), then the revoke of the old token (`DELETE /session/token`).
    Regenerate,
}

/// One API path a command reaches. The sandbox matches faults by path alone, so `skip`
/// requests on that path are let through first (a delay-only fault of 0 ms each) to hit
/// a later call: `regenerate` exchanges its request token on `/session/token` before it
/// revokes the old token there.
#[derive(Clone, Copy)]
struct Target {
    path: &'static str,
    label: &'static str,
    skip: u32,
}

const fn target(path: &'static str, label: &'static str) -> Target {
    Target {
        path,
        label,
        skip: 0,
    }
}

const REVOKE: &str = "DELETE /session/token";

impl Cmd {
    fn label(self) -> &'static str {
        match self {
            Cmd::Init => "init",
            Cmd::Login => "login --force",
            Cmd::StatusCheck => "status --check",
            Cmd::Logout => "logout",
            Cmd::Regenerate => "regenerate",
        }
    }

    /// The paths this command reaches.
    fn targets(self) -> Vec<Target> {
        match self {
            Cmd::Init | Cmd::Login => vec![
                target("/session/token", "POST /session/token"),
                target("/user/profile", "GET /user/profile"),
            ],
            Cmd::StatusCheck => vec![target("/user/profile", "GET /user/profile")],
            Cmd::Logout => vec![target("/session/token", REVOKE)],
            Cmd::Regenerate => vec![
                target("/session/token", "POST /session/token"),
                target("/user/profile", "GET /user/profile"),
                Target {
                    skip: 1,
                    ..target("/session/token", REVOKE)
                },
            ],
        }
    }

    /// Runs the command; `rot` is the rotation under way for `regenerate`.
    fn run(self, w: &World, app: &App, rot: Option<&Rotation>) -> Run {
        let env = [("KITE_SETUP_HTTP_TIMEOUT_SECS", HTTP_TIMEOUT_SECS)];
        match self {
            Cmd::Init => {
                let mut args = w.init_args(app);
                args.push("--force");
                w.run_env(&args, &format!("{}\n", app.api_secret), &env)
            }
            Cmd::Login => w.run_env(&["login", "--force", "--timeout", "20"], "", &env),
            Cmd::StatusCheck => w.run_env(&["status", "--check"], "", &env),
            Cmd::Logout => w.run_env(&["logout"], "", &env),
            Cmd::Regenerate => {
                let new = &rot.expect("regenerate runs in a rotation").new_secret;
                w.run_env(
                    &[
                        "regenerate",
                        "--no-input",
                        "--yes",
                        "--api-secret-stdin",
                        "--no-scan",
                        "--timeout",
                        "20",
                    ],
                    &format!("{new}\n"),
                    &env,
                )
            }
        }
    }
}

/// A secret rotation under test: what the keyring held before, and the new secret the
/// console showed.
struct Rotation {
    old_secret: String,
    old_token: String,
    new_secret: String,
}

const APP_SECRET: &str = "/api_secret";
const APP_KEY: &str = "/api_key";
const TOKEN: &str = "/access_token";

impl Rotation {
    /// Reads the old secret and token, then clicks "Regenerate secret" at the console.
    fn start(w: &World, app: &App, before: &StoredState) -> Self {
        let old_secret =
            payload_str(before.app.as_deref(), APP_SECRET).expect("an api_secret before");
        let old_token = payload_str(before.session.as_deref(), TOKEN).expect("a token before");
        let new_secret = w.regenerate_at_console(&app.api_key);
        assert_ne!(new_secret, old_secret, "the console gives a new secret");
        Self {
            old_secret,
            old_token,
            new_secret,
        }
    }

    /// How `after` differs from what regenerate's design leaves after a failure on
    /// `target` (module docs of src/commands/regenerate.rs), by name, never by value.
    fn unexpected(
        &self,
        app: &App,
        target: Target,
        before: &StoredState,
        after: &StoredState,
    ) -> Vec<String> {
        let mut d = Vec::new();
        let mut want = |ok: bool, what: &str| {
            if !ok {
                d.push(what.to_string());
            }
        };
        let pending = after.pending.as_deref();
        let field = |p: &str| payload_str(pending, p);
        let revoke = target.label == REVOKE;
        want(
            field("/step").as_deref() == Some(if revoke { "swapped" } else { "captured" }),
            "pending entry's step",
        );
        want(
            field(APP_SECRET).as_deref() == Some(self.new_secret.as_str()),
            "pending entry's api_secret (not the new one)",
        );
        want(
            field(APP_KEY).as_deref() == Some(app.api_key.as_str()),
            "pending entry's api_key",
        );
        want(
            field("/old_api_secret").as_deref() == Some(self.old_secret.as_str()),
            "pending entry's old_api_secret",
        );
        want(
            field("/old_access_token").as_deref() == Some(self.old_token.as_str()),
            "pending entry's old_access_token",
        );
        want(after.files == before.files, "files on disk");
        if revoke {
            // Swapped: the new secret in the main entry, the verifying login's session
            // stored, and kept in the pending entry until the old token is revoked.
            let app_entry = after.app.as_deref();
            want(
                payload_str(app_entry, APP_SECRET).as_deref() == Some(self.new_secret.as_str()),
                "app entry (not the new secret)",
            );
            want(
                payload_str(app_entry, APP_KEY).as_deref() == Some(app.api_key.as_str()),
                "app entry's api_key",
            );
            let session = payload_value(after.session.as_deref(), "");
            want(
                session.is_some() && session == payload_value(pending, "/new_session"),
                "session entry (not the verifying login's)",
            );
            want(
                payload_str(after.session.as_deref(), TOKEN).as_deref()
                    != Some(self.old_token.as_str()),
                "session entry (still the old token)",
            );
        } else {
            // Captured: nothing but the pending entry was touched.
            want(after.app == before.app, "app entry (not the old secret)");
            want(after.session == before.session, "session entry");
            want(
                payload_value(pending, "/new_session").is_none(),
                "pending entry's new_session (verification failed)",
            );
        }
        d
    }

    /// `regenerate --resume` with the faults gone: it must finish, leave the new secret
    /// in place, the pending entry gone, the old token dead and the stored one alive.
    fn resume(&self, w: &World, app: &App, failed: &StoredState, target: Target) -> Vec<String> {
        let run = w.run_env(
            &[
                "regenerate",
                "--resume",
                "--no-input",
                "--yes",
                "--no-scan",
                "--timeout",
                "20",
            ],
            "",
            &[("KITE_SETUP_HTTP_TIMEOUT_SECS", HTTP_TIMEOUT_SECS)],
        );
        let mut p = Vec::new();
        if run.code != 0 || run.stderr.contains("panicked") {
            p.push(format!(
                "--resume: exit {} (wanted 0)\n--- resume stderr:\n{}",
                run.code, run.stderr
            ));
            return p;
        }
        let s = w.stored_state("default");
        if payload_str(s.app.as_deref(), APP_SECRET).as_deref() != Some(self.new_secret.as_str()) {
            p.push("--resume: the app entry lacks the new secret".into());
        }
        if s.pending.is_some() {
            p.push("--resume: the pending entry is left".into());
        }
        let token = payload_str(s.session.as_deref(), TOKEN).unwrap_or_default();
        if target.label == REVOKE && s.session != failed.session {
            p.push("--resume: the session entry changed after the swap".into());
        }
        if token == self.old_token {
            p.push("--resume: the session entry still holds the old token".into());
        }
        if w.profile_status(&app.api_key, &self.old_token) != 403 {
            p.push("--resume: the old token is still alive at Kite".into());
        }
        if w.profile_status(&app.api_key, &token) != 200 {
            p.push("--resume: the stored token does not work".into());
        }
        p
    }
}

/// What one group found: cases run, panics, state changes, and every problem by case.
#[derive(Default)]
struct Tally {
    cases: usize,
    panics: usize,
    state_changes: usize,
    problems: Vec<String>,
}

fn run_group(cmd: Cmd) -> Tally {
    let w = World::new();
    let app = w.set_up();
    assert!(
        w.keyring.lookup("sandbox/default/session").is_some(),
        "set-up stores a session"
    );
    let mut t = Tally::default();
    for target in cmd.targets() {
        let path = target.path;
        for f in faults() {
            let case = format!("{} × {} × {}", cmd.label(), target.label, f.name);
            let before = w.stored_state("default");
            let rot = matches!(cmd, Cmd::Regenerate).then(|| Rotation::start(&w, &app, &before));
            if target.skip > 0 {
                let through = json!({ "path": path, "delay_ms": 0, "count": target.skip });
                w.control("/_sandbox/faults", &through);
            }
            let mut spec = f.spec.clone();
            spec["path"] = json!(path);
            spec["count"] = json!(1);
            w.control("/_sandbox/faults", &spec);
            let run = cmd.run(&w, &app, rot.as_ref());
            t.cases += 1;
            let shown: Vec<&str> = run
                .stderr
                .lines()
                .filter(|l| l.starts_with("error: ") || l.starts_with("hint: "))
                .collect();
            println!("{case}: exit {}\n  {}", run.code, shown.join("\n  "));
            let mut problems = check_failure(&run, KITE_FAILURE_EXIT, &f.expect);
            if problems.iter().any(|p| p == "PANIC") {
                t.panics += 1;
            }
            if rot.is_some()
                && !run
                    .stderr
                    .lines()
                    .any(|l| l.starts_with("hint: ") && l.contains("regenerate --resume"))
            {
                problems.push("the hint does not point to `regenerate --resume`".into());
            }
            if run.stderr.contains(BODY_MARKER) || run.stdout.contains(BODY_MARKER) {
                problems.push("the injected body was echoed".into());
            }
            let after = w.stored_state("default");
            let changed: Vec<String> = match &rot {
                None => before.diff(&after).into_iter().map(String::from).collect(),
                Some(r) => r.unexpected(&app, target, &before, &after),
            };
            if !changed.is_empty() {
                t.state_changes += 1;
                problems.push(format!("unexpected state: {}", changed.join(", ")));
            }
            let left = w.pending_faults();
            if left != 0 {
                problems.push(format!("the fault was not reached ({left} left)"));
                drain(&w, path);
            }
            if let Some(r) = &rot {
                let resumed = r.resume(&w, &app, &after, target);
                let stuck = !resumed.is_empty();
                problems.extend(resumed);
                if stuck {
                    // The next rotations would start from a broken one: stop this group.
                    t.problems.push(format!("{case}: {}", problems.join("; ")));
                    return t;
                }
            }
            if !problems.is_empty() {
                t.problems.push(format!(
                    "{case}: {}\n--- stderr:\n{}",
                    problems.join("; "),
                    run.stderr
                ));
            }
        }
    }
    t
}

/// Uses up faults left on `path` so that they cannot spill into the next case.
fn drain(w: &World, path: &str) {
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client");
    for _ in 0..5 {
        if w.pending_faults() == 0 {
            return;
        }
        let _ = http.get(w.sandbox.at(path)).send();
    }
}

#[test]
fn fault_matrix() {
    let groups = [
        Cmd::Init,
        Cmd::Login,
        Cmd::StatusCheck,
        Cmd::Logout,
        Cmd::Regenerate,
    ];
    let handles: Vec<_> = groups
        .iter()
        .map(|&cmd| (cmd, std::thread::spawn(move || run_group(cmd))))
        .collect();
    let mut total = Tally::default();
    for (cmd, h) in handles {
        let t = h
            .join()
            .unwrap_or_else(|_| panic!("group {} panicked", cmd.label()));
        total.cases += t.cases;
        total.panics += t.panics;
        total.state_changes += t.state_changes;
        total.problems.extend(t.problems);
    }
    crate::support::report_figure(
        "fault_matrix",
        &format!(
            "fault matrix: {} faults, {} panics, {} state changes",
            total.cases, total.panics, total.state_changes
        ),
    );
    assert!(
        total.problems.is_empty(),
        "{} of {} cases failed:\n{}",
        total.problems.len(),
        total.cases,
        total.problems.join("\n\n")
    );
    assert_eq!(total.cases, 90, "10 faults × 9 command/path pairs");
}
