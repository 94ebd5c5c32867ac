//! `kite-setup init` as a script runs it (`--no-input`, secret on stdin) against a sandbox
//! process and a real headless Secret Service; then `secret-tool` shows what landed.

use crate::support::cli;
use crate::support::cli::World;

#[test]
fn non_interactive_init_stores_verified_credentials_in_the_real_keyring() {
    let w = World::new();
    let app = w.create_app();
    let run = w
        .run(&w.init_args(&app), &format!("{}\n", app.api_secret))
        .expect(0);
    assert!(
        run.stdout.is_empty(),
        "stdout is for data only: {}",
        run.stdout
    );
    assert!(
        run.stderr.contains("Verified: Kite logged in"),
        "{}",
        run.stderr
    );

    let stored = w
        .keyring
        .lookup("sandbox/apps/default/app")
        .expect("app entry in the Secret Service");
    let v: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(v["api_key"], app.api_key.as_str());
    assert_eq!(v["api_secret"], app.api_secret.as_str());
    let session: serde_json::Value = serde_json::from_str(
        &w.keyring
            .lookup("sandbox/default/session")
            .expect("session entry"),
    )
    .unwrap();
    assert_eq!(session["user_id"], w.sandbox.client_id.as_str());
    assert!(
        w.keyring.lookup("apps/default/app").is_none() && w.keyring.lookup("default/app").is_none(),
        "sandbox profiles never land in live entries"
    );

    // On disk: only the metadata file, with no secret in it.
    let files = w.files_on_disk();
    let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    assert_eq!(files.len(), 1, "{names:?}");
    let text = String::from_utf8(files[0].1.clone()).unwrap();
    let token = session["access_token"].as_str().unwrap();
    for secret in [app.api_secret.as_str(), app.api_key.as_str(), token] {
        assert!(!text.contains(secret), "a secret in {}", names[0]);
    }
    // The api_key is part of the login URL people open, so it may be shown; never the others.
    assert!(
        !run.stderr.contains(&app.api_secret) && !run.stderr.contains(token),
        "a secret on stderr"
    );

    // The token is accepted by the sandbox.
    let token = w.run(&["token"], "").expect(0).stdout;
    assert_eq!(token.trim(), session["access_token"].as_str().unwrap());
}

// ---------------------------------------------------------------------------------------
// Each diagnosed failure through the real binary: one `error:` line, one `hint:` line, the
// documented exit code, and the keyring and the metadata exactly as they were.
// ---------------------------------------------------------------------------------------

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::support::cli::{App, Run, redirect_url, run_command};
use crate::support::keyring::KeyringSession;
use crate::support::sandbox::SandboxProcess;

/// A `$BROWSER` that never follows the link: no login ever happens.
const IDLE_BROWSER: &str = "#!/bin/sh\nexit 0\n";

/// A `$BROWSER` for a sandbox WITH the login form: logs in as `client_id` with the
/// password and the TOTP code the sandbox's page shows for its demo account, then presses
/// `action` ("authorize" or "cancel") on the authorisation page, following redirects like
/// a browser. Kite's error pages (e.g. "user not enabled") end the script quietly, as a
/// person would stop there, after writing the status and the page to `report`.
fn form_browser(client_id: &str, password: &str, action: &str, report: &Path) -> String {
    let report = report.display();
    format!(
        r#"#!/usr/bin/env python3
import html, re, sys, urllib.error, urllib.parse, urllib.request
url = sys.argv[1]
if "/connect/login" not in url:
    sys.exit(0)  # the console page: a person looks at it
page = urllib.request.urlopen(url, timeout=10).read().decode()
def field(page, name):
    m = re.search(r'name="%s" value="([^"]*)"' % name, page)
    return html.unescape(m.group(1)) if m else ""
totp = re.search(r'id="demo_totp">([0-9]+)<', page).group(1)
form = {{"api_key": field(page, "api_key"), "redirect_params": field(page, "redirect_params"),
        "client_id": "{client_id}", "password": "{password}", "totp": totp}}
try:
    page = urllib.request.urlopen(urllib.parse.urljoin(url, "/connect/login"),
        urllib.parse.urlencode(form).encode(), timeout=10).read().decode()
    if 'name="ticket"' in page:
        body = urllib.parse.urlencode({{"ticket": field(page, "ticket"), "action": "{action}"}})
        urllib.request.urlopen(urllib.parse.urljoin(url, "/connect/authorize"), body.encode(), timeout=10).read()
except urllib.error.HTTPError as e:
    open("{report}", "w").write("%s %s" % (e.code, e.read().decode()))
"#
    )
}

/// Every kite-setup item in the Secret Service as `secret-tool search` shows it: the
/// usernames and the secrets, each sorted; empty when there is no (unlocked) keyring.
fn keyring_items(w: &World) -> Vec<String> {
    let Ok(out) = w
        .keyring
        .command("secret-tool")
        .args(["search", "--all", "service", "kite-setup"])
        .stdin(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    // secret-tool prints the secret on stdout and the attributes on stderr.
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let mut names: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("attribute.username = "))
        .map(str::to_string)
        .collect();
    let mut secrets: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("secret = "))
        .map(str::to_string)
        .collect();
    names.sort();
    secrets.sort();
    names.extend(secrets);
    names
}

/// What a failed init must leave exactly as it was: every file under the config and data
/// dirs (bytes), and every kite-setup item in the keyring (attributes and secret). The
/// keyring's own file is not compared: the pre-flight's probe entry (written, read back,
/// deleted) makes gnome-keyring rewrite it with the same items.
#[derive(Debug, PartialEq)]
struct Stored {
    files: Vec<(PathBuf, Vec<u8>)>,
    keyring_items: Vec<String>,
}

fn stored(w: &World) -> Stored {
    let mut files = w.files_on_disk();
    files.sort();
    Stored {
        files,
        keyring_items: keyring_items(w),
    }
}

/// Exactly one `error:` line, directly followed by one `hint:` line that contains `hint`.
fn assert_error_and_hint(run: &Run, code: i32, error: &str, hint: &str) {
    assert_eq!(
        run.code, code,
        "exit code\n--- stdout:\n{}\n--- stderr:\n{}",
        run.stdout, run.stderr
    );
    let lines: Vec<&str> = run.stderr.lines().collect();
    let errors: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line:\n{}", run.stderr);
    let i = errors[0];
    assert!(
        lines[i].contains(error),
        "error line should say {error:?}:\n{}",
        run.stderr
    );
    assert!(
        lines.get(i + 1).is_some_and(|l| l.starts_with("hint: ")),
        "a hint line follows the error:\n{}",
        run.stderr
    );
    assert!(
        lines[i + 1].contains(hint),
        "hint should say {hint:?}:\n{}",
        run.stderr
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("hint: ")).count(),
        1,
        "one hint line:\n{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "stdout is for data: {}", run.stdout);
}

/// A non-interactive init with explicit values (the secret goes on stdin).
fn init(w: &World, key: &str, redirect: &str, timeout: &str, secret: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "init",
        "--no-input",
        "--client-id",
        &w.sandbox.client_id,
        "--api-key",
        key,
        "--redirect-url",
        redirect,
        "--plan",
        "personal",
        "--api-secret-stdin",
        "--timeout",
        timeout,
    ];
    args.extend_from_slice(extra);
    w.run(&args, &format!("{secret}\n"))
}

/// Runs `f`, then asserts that the keyring and the files are as they were before.
fn unchanged(w: &World, f: impl FnOnce() -> Run) -> Run {
    let before = stored(w);
    let run = f();
    assert_eq!(
        stored(w),
        before,
        "stored state changed; stderr:\n{}",
        run.stderr
    );
    run
}

fn other_account_app(w: &World, redirect: &str) -> App {
    let acc = w.control("/_sandbox/accounts", &serde_json::json!({}));
    let other = acc["client_id"].as_str().expect("client_id").to_string();
    assert_ne!(other, w.sandbox.client_id);
    let v = w.control(
        "/_sandbox/apps",
        &serde_json::json!({"client_id": other, "redirect_url": redirect, "plan": "personal"}),
    );
    App {
        api_key: v["api_key"].as_str().expect("api_key").into(),
        api_secret: v["api_secret"].as_str().expect("api_secret").into(),
        redirect_url: redirect.into(),
    }
}

#[test]
fn wrong_secret_is_invalid_checksum_and_stores_nothing() {
    let w = World::new();
    let app = w.create_app();
    let wrong = "w".repeat(32);
    let run = unchanged(&w, || {
        init(&w, &app.api_key, &app.redirect_url, "20", &wrong, &[])
    });
    assert!(run.stderr.contains("Invalid checksum"), "{}", run.stderr);
    assert_error_and_hint(
        &run,
        1,
        "checksum",
        "the api_secret does not match the api_key",
    );
    assert!(stored(&w).files.is_empty() && stored(&w).keyring_items.is_empty());
}

#[test]
fn key_from_one_app_and_secret_from_another_is_invalid_checksum() {
    let w = World::new();
    let one = w.create_app();
    let other = w.create_app();
    let run = unchanged(&w, || {
        init(
            &w,
            &one.api_key,
            &one.redirect_url,
            "20",
            &other.api_secret,
            &[],
        )
    });
    assert!(
        run.stderr.contains("key and secret come from the same app"),
        "{}",
        run.stderr
    );
    assert_error_and_hint(&run, 1, "checksum", "from the same app");
}

#[test]
fn lapsed_subscription_names_the_plan_and_stores_nothing() {
    let w = World::new();
    let app = w.create_app();
    w.control(
        &format!("/_sandbox/apps/{}/subscription", app.api_key),
        &serde_json::json!({"active": false}),
    );
    let run = unchanged(&w, || {
        init(
            &w,
            &app.api_key,
            &app.redirect_url,
            "20",
            &app.api_secret,
            &[],
        )
    });
    assert!(
        run.stderr.contains("subscription is not active"),
        "{}",
        run.stderr
    );
    assert_error_and_hint(
        &run,
        1,
        "Incorrect `api_key` or `access_token`",
        "subscription",
    );
}

#[test]
fn wrong_redirect_url_registered_means_no_redirect_arrives() {
    let w = World::new();
    let app = w.create_app(); // registered with port A
    let ours = redirect_url(cli::free_port()); // we listen on port B
    let run = unchanged(&w, || {
        init(&w, &app.api_key, &ours, "2", &app.api_secret, &[])
    });
    assert!(
        run.stderr.contains("it must be exactly the one above"),
        "{}",
        run.stderr
    );
    assert_error_and_hint(
        &run,
        1,
        &format!("no login redirect reached {ours}"),
        "registered redirect URL is exactly this one",
    );
}

/// The app belongs to another account and the demo user logs in through the login form
/// (a sandbox WITH the form: the auto-approving one always logs in the app's owner, so it
/// cannot produce this). Kite shows "The user is not enabled for the app." in the browser
/// and never redirects, so kite-setup sees no redirect and its diagnosis names this cause.
#[test]
fn user_not_enabled_for_the_app_is_named_in_the_diagnosis() {
    let w = World::with(KeyringSession::start(), SandboxProcess::with_login_form());
    let app = other_account_app(&w, &redirect_url(cli::free_port()));
    let report = w.keyring.path().join("browser-saw.txt");
    w.set_browser(&form_browser(
        &w.sandbox.client_id,
        &w.sandbox.password,
        "authorize",
        &report,
    ));
    let run = unchanged(&w, || {
        init(
            &w,
            &app.api_key,
            &app.redirect_url,
            "3",
            &app.api_secret,
            &[],
        )
    });
    assert!(
        run.stderr.contains("The user is not enabled for the app"),
        "{}",
        run.stderr
    );
    let saw = std::fs::read_to_string(&report).expect("the browser met Kite's error page");
    assert!(
        saw.starts_with("400") && saw.contains("The user is not enabled for the app."),
        "{saw}"
    );
    assert_error_and_hint(&run, 1, "no login redirect reached", "user not enabled");
}

/// The auto-approving sandbox logs in the app's owner: an app of another account with the
/// demo client ID in `--client-id` makes Kite return another user_id.
#[test]
fn user_id_mismatch_is_caught_and_nothing_is_stored() {
    let w = World::new();
    let app = other_account_app(&w, &redirect_url(cli::free_port()));
    let run = unchanged(&w, || {
        init(
            &w,
            &app.api_key,
            &app.redirect_url,
            "20",
            &app.api_secret,
            &[],
        )
    });
    assert!(
        run.stderr.contains("but this profile is for"),
        "{}",
        run.stderr
    );
    assert!(
        w.sandbox
            .stderr_log()
            .contains("sandbox: DELETE /session/token -> 200"),
        "the stray token of the wrong user is revoked: {}",
        w.sandbox.stderr_log()
    );
    assert_error_and_hint(
        &run,
        1,
        &format!(
            "but profile default (sandbox) is for {}",
            w.sandbox.client_id
        ),
        &format!("log in as {}", w.sandbox.client_id),
    );
}

/// The demo user logs in through the login form and presses Cancel on the authorisation
/// page: Kite redirects with `status=cancelled` (and our nonce), which the listener takes.
#[test]
fn cancelled_authorisation_stores_nothing() {
    let w = World::with(KeyringSession::start(), SandboxProcess::with_login_form());
    let app = w.create_app();
    w.set_browser(&form_browser(
        &w.sandbox.client_id,
        &w.sandbox.password,
        "cancel",
        &w.keyring.path().join("browser-saw.txt"),
    ));
    let run = unchanged(&w, || {
        init(
            &w,
            &app.api_key,
            &app.redirect_url,
            "20",
            &app.api_secret,
            &[],
        )
    });
    assert!(
        run.stderr.contains("choose Authorize next time"),
        "{}",
        run.stderr
    );
    assert_error_and_hint(&run, 1, "cancelled", "choose Authorize");
}

/// The same form-driving browser pressing Authorize completes the init: the two failure
/// tests above fail for the reason they claim, not because the script cannot log in.
#[test]
fn the_login_form_browser_can_complete_an_init() {
    let w = World::with(KeyringSession::start(), SandboxProcess::with_login_form());
    let app = w.create_app();
    w.set_browser(&form_browser(
        &w.sandbox.client_id,
        &w.sandbox.password,
        "authorize",
        &w.keyring.path().join("browser-saw.txt"),
    ));
    init(
        &w,
        &app.api_key,
        &app.redirect_url,
        "20",
        &app.api_secret,
        &[],
    )
    .expect(0);
    assert!(w.keyring.lookup("sandbox/apps/default/app").is_some());
}

#[test]
fn timeout_when_the_browser_never_logs_in() {
    let w = World::new();
    let app = w.create_app();
    w.set_browser(IDLE_BROWSER);
    let started = std::time::Instant::now();
    let run = unchanged(&w, || {
        init(
            &w,
            &app.api_key,
            &app.redirect_url,
            "2",
            &app.api_secret,
            &[],
        )
    });
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_error_and_hint(
        &run,
        1,
        &format!("no login redirect reached {} in 2 s", app.redirect_url),
        "--paste",
    );
}

/// Live mode (no sandbox) on a machine without any D-Bus session: the keyring pre-flight
/// fails before any network call, naming the other stores; nothing is written anywhere.
#[test]
fn keyring_unavailable_fails_early_and_names_the_other_stores() {
    let w = World::with(KeyringSession::no_dbus(), SandboxProcess::auto_approve());
    let app = w.create_app();
    let args = [
        "init",
        "--no-input",
        "--client-id",
        &w.sandbox.client_id,
        "--api-key",
        &app.api_key,
        "--redirect-url",
        &app.redirect_url,
        "--plan",
        "personal",
        "--api-secret-stdin",
    ];
    let run = run_command(w.live_command(&args), &format!("{}\n", app.api_secret));
    assert_error_and_hint(&run, 1, "", "--store keyutils");
    assert!(run.stderr.contains("--store file"), "{}", run.stderr);
    assert!(w.files_on_disk().is_empty(), "{:?}", w.files_on_disk());
    assert!(!w.config_dir.exists() && !w.data_dir.exists());
    assert!(!run.stderr.contains(&app.api_secret));
}

/// Sandbox mode without an OS keyring: a sandbox-only file store, said loudly (so the
/// README's quick start works on a headless machine); live profiles never do this (test above).
#[test]
fn sandbox_without_a_keyring_says_it_uses_a_sandbox_only_file() {
    let w = World::with(KeyringSession::no_dbus(), SandboxProcess::auto_approve());
    let app = w.create_app();
    let run = w
        .run(&w.init_args(&app), &format!("{}\n", app.api_secret))
        .expect(0);
    assert!(
        run.stderr.contains("No OS keyring here") && run.stderr.contains("sandbox only"),
        "{}",
        run.stderr
    );
}

#[test]
fn locked_keyring_fails_early_and_changes_nothing() {
    let w = World::with(
        KeyringSession::start_locked(),
        SandboxProcess::auto_approve(),
    );
    let app = w.create_app();
    let keyring_file = std::fs::read(w.keyring.login_keyring_file()).expect("keyring file");
    let run = unchanged(&w, || {
        init(
            &w,
            &app.api_key,
            &app.redirect_url,
            "20",
            &app.api_secret,
            &[],
        )
    });
    assert_error_and_hint(&run, 1, "locked", "unlock");
    assert!(w.files_on_disk().is_empty());
    assert_eq!(
        std::fs::read(w.keyring.login_keyring_file()).expect("keyring file"),
        keyring_file,
        "the locked keyring was not written"
    );
}

#[test]
fn an_existing_profile_is_not_replaced_without_force() {
    let w = World::new();
    let first = w.set_up();
    let second = w.create_app();
    let before = stored(&w);
    assert_eq!(before.files.len(), 1);
    assert_eq!(
        before.keyring_items[..2],
        [
            "attribute.username = sandbox/apps/default/app",
            "attribute.username = sandbox/default/session"
        ],
        "{:?}",
        before.keyring_items
    );
    assert_eq!(before.keyring_items.len(), 4, "{:?}", before.keyring_items);
    let run = unchanged(&w, || {
        init(
            &w,
            &second.api_key,
            &second.redirect_url,
            "20",
            &second.api_secret,
            &[],
        )
    });
    assert_error_and_hint(
        &run,
        2,
        "profile default (sandbox) already exists",
        "--force",
    );
    let app = w.keyring.lookup("sandbox/apps/default/app").expect("kept");
    assert!(app.contains(&first.api_key) && !app.contains(&second.api_key));

    // With --force it is replaced.
    init(
        &w,
        &second.api_key,
        &second.redirect_url,
        "20",
        &second.api_secret,
        &["--force"],
    )
    .expect(0);
    let app = w
        .keyring
        .lookup("sandbox/apps/default/app")
        .expect("replaced");
    assert!(app.contains(&second.api_key));
}

#[test]
fn skip_verify_says_loudly_that_nothing_was_checked() {
    let w = World::new();
    let app = w.create_app();
    w.set_browser(IDLE_BROWSER);
    let run = init(
        &w,
        &app.api_key,
        &app.redirect_url,
        "20",
        &app.api_secret,
        &["--skip-verify"],
    )
    .expect(0);
    assert!(
        run.stderr.contains("SKIPPING VERIFICATION") && run.stderr.contains("nothing was checked"),
        "{}",
        run.stderr
    );
    assert!(w.keyring.lookup("sandbox/apps/default/app").is_some());
    assert!(w.keyring.lookup("sandbox/default/session").is_none());
    let files = w.files_on_disk();
    let meta = String::from_utf8_lossy(&files[0].1);
    assert!(meta.contains("verified = false"), "{meta}");
}

#[test]
fn missing_flags_exit_2_naming_the_flag() {
    let w = World::new();
    let app = w.create_app();
    let full: Vec<&str> = vec![
        "init",
        "--no-input",
        "--client-id",
        &w.sandbox.client_id,
        "--api-key",
        &app.api_key,
        "--redirect-url",
        &app.redirect_url,
        "--plan",
        "personal",
        "--api-secret-stdin",
    ];
    for (flag, takes_value) in [
        ("--client-id", true),
        ("--api-key", true),
        ("--redirect-url", true),
        ("--plan", true),
        ("--api-secret-stdin", false),
    ] {
        let i = full.iter().position(|a| *a == flag).expect("flag");
        let mut args = full.clone();
        args.drain(i..i + if takes_value { 2 } else { 1 });
        let run = unchanged(&w, || w.run(&args, &format!("{}\n", app.api_secret)));
        assert_error_and_hint(&run, 2, flag, flag);
    }
    assert!(w.files_on_disk().is_empty());
}

/// stdin is a pipe and there is no --no-input: init behaves as with --no-input (values from
/// flags, the secret from stdin; a missing one is named, never prompted for).
#[test]
fn stdin_not_a_terminal_behaves_as_no_input() {
    let w = World::new();
    let app = w.create_app();
    let run = unchanged(&w, || w.run(&["init"], ""));
    assert_error_and_hint(&run, 2, "--client-id", "--client-id");

    let args = [
        "init",
        "--client-id",
        &w.sandbox.client_id,
        "--api-key",
        &app.api_key,
        "--redirect-url",
        &app.redirect_url,
        "--plan",
        "personal",
        "--api-secret-stdin",
    ];
    let run = w.run(&args, &format!("{}\n", app.api_secret)).expect(0);
    assert!(run.stderr.contains("Verified"), "{}", run.stderr);
    assert!(w.keyring.lookup("sandbox/apps/default/app").is_some());
}
