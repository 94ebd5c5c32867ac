//! `kite-setup regenerate` as the real binary runs it, against a sandbox process and a
//! real headless Secret Service (`secret-tool` shows what landed):
//! - end to end: the console regenerates the secret (control API), `regenerate --no-input`
//!   swaps it in, the previous token is dead at Kite, a new login works, and the leak scan
//!   finds the old secret in a git repo's ignored `.env` and the old token in
//!   `~/.bash_history`, by place and never by value;
//! - crash safety: the process aborts (SIGABRT, the debug-build hook) right after each
//!   persisted step; the keyring always holds the old or the new secret, `status` reports
//!   the interrupted rotation and `--resume` completes to a working login;
//! - a shared app (two client IDs, two profiles on one sandbox app): one new secret,
//!   both old tokens dead at the sandbox, the other profile told to log in again; and the
//!   crash suite above runs with that second profile on the app, checking both.

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

fn token_of(w: &World, profile: &str) -> String {
    w.run(&["--profile", profile, "token"], "")
        .expect(0)
        .stdout
        .trim()
        .to_string()
}

/// The family member's profile in [`add_family_member`].
const SPOUSE: &str = "spouse";

/// A `$BROWSER` that logs in as `client_id` (the sandbox's approve call: who logs in
/// and authorises) and follows Kite's redirect to kite-setup.
fn browser_as(w: &World, client_id: &str) {
    let approve = w.sandbox.at("/_sandbox/approve");
    w.set_browser(&format!(
        r#"#!/usr/bin/env python3
import json, sys, urllib.request
body = json.dumps({{"login_url": sys.argv[1], "client_id": "{client_id}"}}).encode()
req = urllib.request.Request("{approve}", data=body, headers={{"Content-Type": "application/json"}})
to = json.load(urllib.request.urlopen(req, timeout=10))["redirect_url"]
urllib.request.urlopen(to, timeout=10).read()
"#
    ));
}

/// A second sandbox account on `app`'s client IDs, and profile `spouse` for it on the
/// same app (app id `default`, the first profile's), logged in through the binary.
///
/// The profile's metadata is written into config.toml directly (a copy of `default`'s
/// with the other client ID: the app settings of a profile on a shared app are the
/// app's): this is what `init` stores when a profile joins a family member's app; the
/// session then comes from a real `login` as that client ID.
fn add_family_member(w: &World, app: &cli::App) -> String {
    let account = w.control("/_sandbox/accounts", &serde_json::json!({}));
    let client_id = account["client_id"]
        .as_str()
        .expect("client_id")
        .to_string();
    w.control(
        &format!("/_sandbox/apps/{}/clients", app.api_key),
        &serde_json::json!({"client_ids": [w.sandbox.client_id, client_id]}),
    );
    let cfg = kite_setup::profile::ConfigFile::new(w.config_dir.clone());
    let mut c = cfg.load().unwrap();
    let mut meta = c.get("default", true).expect("profile default").clone();
    assert_eq!(meta.app.as_deref(), Some("default"));
    meta.client_id.clone_from(&client_id);
    meta.user_name = None;
    meta.orders = None;
    c.profiles_mut(true).insert(SPOUSE.into(), meta);
    cfg.save(&c).unwrap();
    log_in_as_spouse(w, &client_id);
    client_id
}

fn log_in_as_spouse(w: &World, client_id: &str) {
    browser_as(w, client_id);
    w.run(&["--profile", SPOUSE, "login", "--force"], "")
        .expect(0);
    browser_as(w, &w.sandbox.client_id);
}

/// The error type Kite's envelope names when `GET /user/profile` refuses this token.
fn profile_error_type(w: &World, api_key: &str, token: &str) -> Option<String> {
    let v: serde_json::Value = http()
        .get(w.sandbox.at("/user/profile"))
        .header("X-Kite-Version", "3")
        .header("Authorization", format!("token {api_key}:{token}"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["error_type"].as_str().map(str::to_string)
}

/// The keyring items that hold app credentials, by name (`secret-tool search`).
fn app_items(w: &World) -> Vec<String> {
    let out = w
        .keyring
        .command("secret-tool")
        .args(["search", "--all", "service", "kite-setup"])
        .stdin(Stdio::null())
        .output()
        .expect("secret-tool search");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("attribute.username = "))
        .filter(|u| u.ends_with("/app"))
        .map(str::to_string)
        .collect()
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
    // A second profile on the same app: each step is checked for both.
    let spouse_id = add_family_member(&w, &app);
    let steps = ["captured", "verified", "swapped", "revoked", "done"];
    let mut losses = 0;
    let mut profiles_checked = 0;
    for step in steps {
        let old_secret = secret_in(&w, APP_ENTRY).expect("a secret before the rotation");
        let old_token = token(&w);
        let spouse_token = token_of(&w, SPOUSE);
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
        assert_eq!(app_items(&w), [APP_ENTRY], "one app entry after {step}");

        // status reports the interrupted rotation (and only while there is one), for
        // the other profile on the app too: the rotation is the app's.
        for profile in ["default", SPOUSE] {
            let st = w.run(&["--profile", profile, "status"], "");
            let shown = format!("{}{}", st.stdout, st.stderr);
            assert_eq!(
                shown.contains("INTERRUPTED"),
                want_pending.is_some(),
                "status of {profile} after {step}:\n{shown}"
            );
        }

        // --resume completes; the rotation ends with the new secret and both old tokens dead.
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
        } else {
            assert!(
                resumed.stderr.contains("--profile spouse login"),
                "the other profile is told to log in after {step}:\n{}",
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
        assert_eq!(
            profile_status(&w, &app.api_key, &spouse_token),
            403,
            "the other profile's previous token is revoked after {step}"
        );
        // Nothing lost for either profile: each logs in with the app's new credentials.
        w.run(&["login", "--force"], "").expect(0);
        let t = token(&w);
        assert_eq!(profile_status(&w, &app.api_key, &t), 200, "after {step}");
        profiles_checked += 1;
        let logged_out = w.run(&["--profile", SPOUSE, "status"], "");
        if logged_out.code != 4 {
            losses += 1;
        }
        log_in_as_spouse(&w, &spouse_id);
        let t = token_of(&w, SPOUSE);
        if profile_status(&w, &app.api_key, &t) != 200 {
            losses += 1;
        }
        profiles_checked += 1;
    }
    crate::support::report_figure(
        "regenerate_cli",
        &format!(
            "regenerate crash safety: {} steps, 2 profiles on one app ({profiles_checked} profile checks), {losses} lost credentials",
            steps.len()
        ),
    );
    assert_eq!(losses, 0);
}

#[test]
fn regenerate_on_a_shared_app_rotates_once_and_kills_both_tokens() {
    let w = World::new();
    let app = w.set_up();
    let spouse_id = add_family_member(&w, &app);
    let my_token = token(&w);
    let spouse_token = token_of(&w, SPOUSE);
    assert_ne!(my_token, spouse_token);
    for t in [&my_token, &spouse_token] {
        assert_eq!(profile_status(&w, &app.api_key, t), 200);
    }
    assert_eq!(
        app_items(&w),
        [APP_ENTRY],
        "one api_secret for the two profiles"
    );

    let new_secret = regenerate_at_console(&w, &app.api_key);
    let run = w
        .run(
            &[
                "regenerate",
                "--no-input",
                "--yes",
                "--api-secret-stdin",
                "--no-scan",
                "--timeout",
                "20",
            ],
            &format!("{new_secret}\n"),
        )
        .expect(0);

    // One new secret, in the one app entry.
    assert_eq!(app_items(&w), [APP_ENTRY]);
    assert_eq!(
        secret_in(&w, APP_ENTRY).as_deref(),
        Some(new_secret.as_str())
    );
    assert!(w.keyring.lookup(PENDING_ENTRY).is_none());

    // Both old tokens dead at the sandbox.
    for (who, t) in [("default", &my_token), (SPOUSE, &spouse_token)] {
        assert_eq!(
            profile_error_type(&w, &app.api_key, t).as_deref(),
            Some("TokenException"),
            "{who}'s old token"
        );
    }
    let fresh = token(&w);
    assert_eq!(profile_status(&w, &app.api_key, &fresh), 200);

    // The other profile is told to log in again, and needs to.
    let err = &run.stderr;
    assert!(
        err.contains("This app's secret is shared by profiles spouse"),
        "{err}"
    );
    assert!(
        err.contains(
            "Profile spouse shares this app's secret: it is logged out and must log in again:"
        ),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "kite-setup --sandbox-url {} --profile spouse login",
            w.sandbox.url
        )),
        "{err}"
    );
    for value in [&app.api_secret, &new_secret, &my_token, &spouse_token] {
        assert!(!err.contains(value.as_str()), "a secret on stderr:\n{err}");
    }
    w.run(&["--profile", SPOUSE, "status"], "").expect(4);

    // Its login works with the app's new secret.
    log_in_as_spouse(&w, &spouse_id);
    let t = token_of(&w, SPOUSE);
    assert_eq!(profile_status(&w, &app.api_key, &t), 200);
    assert_eq!(profile_status(&w, &app.api_key, &fresh), 200);
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
