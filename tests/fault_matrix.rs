//! The fault matrix (issue 6): every Kite failure the sandbox can inject, on every API
//! path a command reaches, through the real binary with a real keyring. Each case must end
//! with the documented exit code, one specific `error:` line, a `hint:`, no panic, and the
//! stored state (keyring entries and files) exactly as before.
//!
//! One world per command group, the groups in parallel threads; the faults are
//! count-limited and each case checks that its fault was used up.

#[path = "support/cli.rs"]
mod cli_support;
#[path = "support/keyring.rs"]
mod keyring_support;
#[path = "support/sandbox.rs"]
mod sandbox_support;

use cli_support::{App, Run, World, check_failure};
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
    // `regenerate` arrives with its own issue: add `Cmd::Regenerate` here, its argv in
    // `args`, and its paths in `targets` (POST /session/token, GET /user/profile for the
    // verifying login, DELETE /session/token for revoking the old token).
}

impl Cmd {
    fn label(self) -> &'static str {
        match self {
            Cmd::Init => "init",
            Cmd::Login => "login --force",
            Cmd::StatusCheck => "status --check",
            Cmd::Logout => "logout",
        }
    }

    /// The (path, label) pairs this command reaches.
    fn targets(self) -> Vec<(&'static str, &'static str)> {
        match self {
            Cmd::Init | Cmd::Login => vec![
                ("/session/token", "POST /session/token"),
                ("/user/profile", "GET /user/profile"),
            ],
            Cmd::StatusCheck => vec![("/user/profile", "GET /user/profile")],
            Cmd::Logout => vec![("/session/token", "DELETE /session/token")],
        }
    }

    fn run(self, w: &World, app: &App) -> Run {
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
        }
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
    for (path, target) in cmd.targets() {
        for f in faults() {
            let case = format!("{} × {target} × {}", cmd.label(), f.name);
            let before = w.stored_state("default");
            let mut spec = f.spec.clone();
            spec["path"] = json!(path);
            spec["count"] = json!(1);
            w.control("/_sandbox/faults", &spec);
            let run = cmd.run(&w, &app);
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
            if run.stderr.contains(BODY_MARKER) || run.stdout.contains(BODY_MARKER) {
                problems.push("the injected body was echoed".into());
            }
            let after = w.stored_state("default");
            let changed = before.diff(&after);
            if !changed.is_empty() {
                t.state_changes += 1;
                problems.push(format!("state changed: {}", changed.join(", ")));
            }
            let left = w.pending_faults();
            if left != 0 {
                problems.push(format!("the fault was not reached ({left} left)"));
                drain(&w, path);
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
    let groups = [Cmd::Init, Cmd::Login, Cmd::StatusCheck, Cmd::Logout];
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
    println!(
        "fault matrix: {} faults, {} panics, {} state changes",
        total.cases, total.panics, total.state_changes
    );
    assert!(
        total.problems.is_empty(),
        "{} of {} cases failed:\n{}",
        total.problems.len(),
        total.cases,
        total.problems.join("\n\n")
    );
    assert_eq!(total.cases, 60, "10 faults × 6 command/path pairs");
}
