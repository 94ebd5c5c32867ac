//! `kite-setup regenerate` as the real binary runs it, against a sandbox process and a
//! real headless Secret Service (`secret-tool` shows what landed):
//! - end to end: the console regenerates the secret (control API), `regenerate --no-input`
//!   swaps it in, the previous token is dead at Kite, a new login works, and the leak scan
//!   finds the old secret in a git repo's ignored `.env` and the old token in
//!   `~/.bash_history`, by place and never by value;
//! - crash safety: the process aborts (SIGABRT, the debug-build hook) right after each
//!   persisted step; the keyring always holds the old or the new secret, `status` reports
//!   the interrupted rotation and `--resume` completes to a working login.

use crate::support::cli;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::cli::{World, run_command};

const APP_ENTRY: &str = "sandbox/apps/default/app";
const PENDING_ENTRY: &str = "sandbox/apps/default/pending";
const SIGABRT: i32 = 6;

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
}

/// The HTTP status the sandbox answers `GET /user/profile` with for this token.
fn profile_status(w: &World, api_key: &str, token: &str) -> u16 {
    http()
        .get(w.sandbox.at("/user/profile"))
        .header("X-Kite-Version", "3")
        .header("Authorization", format!("token {api_key}:{token}"))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// "Regenerate secret" on the console, through the sandbox's control API.
fn regenerate_at_console(w: &World, api_key: &str) -> String {
    w.control(
        &format!("/_sandbox/apps/{api_key}/regenerate"),
        &serde_json::json!({}),
    )["api_secret"]
        .as_str()
        .expect("api_secret")
        .to_string()
}

/// The api_secret in an entry (main or pending), as `secret-tool` sees it.
fn secret_in(w: &World, entry: &str) -> Option<String> {
    let raw = w.keyring.lookup(entry)?;
    let v: serde_json::Value = serde_json::from_str(&raw).expect("JSON payload");
    v["api_secret"].as_str().map(str::to_string)
}

fn token(w: &World) -> String {
    w.run(&["token"], "").expect(0).stdout.trim().to_string()
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("git")
        .success();
    assert!(ok, "git {args:?}");
}

#[test]
fn regenerate_swaps_revokes_the_old_token_and_finds_the_old_copies() {
    let w = World::new();
    let app = w.set_up();
    let old_token = token(&w);
    assert_eq!(profile_status(&w, &app.api_key, &old_token), 200);

    let new_secret = regenerate_at_console(&w, &app.api_key);
    assert_eq!(
        profile_status(&w, &app.api_key, &old_token),
        200,
        "Kite does not revoke tokens when the secret is regenerated"
    );

    // The old secret in a git repo's ignored .env, the old token in the shell history.
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q"]);
    std::fs::write(repo.path().join(".gitignore"), ".env\n").unwrap();
    std::fs::write(
        repo.path().join(".env"),
        format!("KITE_API_SECRET={}\n", app.api_secret),
    )
    .unwrap();
    let home = w.keyring.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join(".bash_history"),
        format!("cd bot\nexport KITE_ACCESS_TOKEN={old_token}\npython bot.py\n"),
    )
    .unwrap();

    let mut cmd = w.command(&[
        "regenerate",
        "--no-input",
        "--yes",
        "--api-secret-stdin",
        "--timeout",
        "20",
    ]);
    cmd.current_dir(repo.path());
    let run = run_command(cmd, &format!("{new_secret}\n")).expect(0);
    assert!(run.stdout.is_empty(), "stdout is for data: {}", run.stdout);

    // Swapped in the real keyring, the pending entry gone.
    assert_eq!(
        secret_in(&w, APP_ENTRY).as_deref(),
        Some(new_secret.as_str())
    );
    assert!(w.keyring.lookup(PENDING_ENTRY).is_none());

    // The previous token is dead at Kite; the stored one is new and works.
    assert_eq!(profile_status(&w, &app.api_key, &old_token), 403);
    let stored = token(&w);
    assert_ne!(stored, old_token);
    assert_eq!(profile_status(&w, &app.api_key, &stored), 200);

    // A new login works with the new secret.
    w.run(&["login", "--force"], "").expect(0);
    let fresh = token(&w);
    assert_eq!(profile_status(&w, &app.api_key, &fresh), 200);

    // The leak scan: file:line and kind, never a value.
    let err = &run.stderr;
    assert!(err.contains(".env:1  old api_secret"), "{err}");
    assert!(err.contains(".bash_history:2  old access_token"), "{err}");
    for value in [&app.api_secret, &new_secret, &old_token, &stored] {
        assert!(!err.contains(value.as_str()), "a secret on stderr:\n{err}");
    }
    assert!(err.contains("Step 6 of 6"), "{err}");
}

/// Runs `regenerate` with the crash hook at `step`; returns how the process ended.
fn regenerate_until_abort(w: &World, step: &str, new_secret: &str) -> std::process::ExitStatus {
    let mut cmd = w.command(&[
        "regenerate",
        "--no-input",
        "--yes",
        "--api-secret-stdin",
        "--no-scan",
        "--timeout",
        "20",
    ]);
    cmd.env("KITE_SETUP_TEST_ABORT_AFTER", step)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    let _ = writeln!(stdin, "{new_secret}");
    drop(stdin);
    child.wait().expect("wait")
}

#[test]
fn a_crash_after_any_step_loses_no_credential_and_resume_completes() {
    let w = World::new();
    let app = w.set_up();
    let steps = ["captured", "verified", "swapped", "revoked", "done"];
    let mut losses = 0;
    for step in steps {
        let old_secret = secret_in(&w, APP_ENTRY).expect("a secret before the rotation");
        let old_token = token(&w);
        let new_secret = regenerate_at_console(&w, &app.api_key);

        let status = regenerate_until_abort(&w, step, &new_secret);
        assert_eq!(status.signal(), Some(SIGABRT), "aborted after {step}");

        // What the keyring holds right after the crash.
        let main = secret_in(&w, APP_ENTRY);
        let pending = secret_in(&w, PENDING_ENTRY);
        let holds_old = main.as_deref() == Some(old_secret.as_str());
        let holds_new = main.as_deref() == Some(new_secret.as_str())
            || pending.as_deref() == Some(new_secret.as_str());
        if !holds_old && !holds_new {
            losses += 1;
        }
        let (want_main, want_pending) = match step {
            "captured" | "verified" => (&old_secret, Some(&new_secret)),
            "swapped" | "revoked" => (&new_secret, Some(&new_secret)),
            _ => (&new_secret, None),
        };
        assert_eq!(main.as_ref(), Some(want_main), "main entry after {step}");
        assert_eq!(pending.as_ref(), want_pending, "pending entry after {step}");

        // status reports the interrupted rotation (and only while there is one).
        let st = w.run(&["status"], "");
        let shown = format!("{}{}", st.stdout, st.stderr);
        assert_eq!(
            shown.contains("INTERRUPTED"),
            want_pending.is_some(),
            "status after {step}:\n{shown}"
        );

        // --resume completes; the rotation ends with the new secret and the old token dead.
        let resumed = w
            .run(
                &["regenerate", "--resume", "--no-input", "--yes", "--no-scan"],
                "",
            )
            .expect(0);
        if want_pending.is_none() {
            assert!(
                resumed.stderr.contains("nothing to resume"),
                "{}",
                resumed.stderr
            );
        }
        assert_eq!(secret_in(&w, APP_ENTRY).as_ref(), Some(&new_secret));
        assert!(w.keyring.lookup(PENDING_ENTRY).is_none(), "after {step}");
        assert_eq!(
            profile_status(&w, &app.api_key, &old_token),
            403,
            "the previous token is revoked after {step}"
        );
        // And a working login.
        w.run(&["login", "--force"], "").expect(0);
        let t = token(&w);
        assert_eq!(profile_status(&w, &app.api_key, &t), 200, "after {step}");
    }
    crate::support::report_figure(
        "regenerate_cli",
        &format!(
            "regenerate crash safety: {} steps, {losses} lost credentials",
            steps.len()
        ),
    );
    assert_eq!(losses, 0);
}

#[test]
fn regenerate_help_says_it_fixes_a_lost_secret() {
    let mut cmd = Command::new(cli::BIN);
    cmd.env_clear().args(["regenerate", "--help"]);
    let help = run_command(cmd, "").expect(0).stdout;
    assert!(help.contains("lost secret"), "{help}");
    for flag in [
        "--resume",
        "--abort",
        "--api-secret-stdin",
        "--scan",
        "--no-scan",
        "--yes",
    ] {
        assert!(help.contains(flag), "{flag} in:\n{help}");
    }
}
