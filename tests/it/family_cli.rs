//! A family member's profile on an app that is already here (`init --app PROFILE`), through
//! the real binary, a real Secret Service and a sandbox process: one app, two client IDs,
//! one api_secret in the keyring, two sessions, both working with the official Python SDK;
//! and a client ID the app is not enabled for, refused with the console's field named and
//! nothing stored changed.

use std::path::Path;

use crate::support::cli::{Run, World, run_command};

/// A `$BROWSER` in which the person `client_id` logs in: it asks the sandbox for what its
/// login page would answer for that client ID (`/_sandbox/approve`, the form without the
/// password typing) and follows the redirect to kite-setup's listener. Kite's refusal
/// ("The user is not enabled for the app.") stops it there, as it stops a person, after
/// writing the status and the answer to `report`.
pub(crate) fn browser_as(client_id: &str, report: &Path) -> String {
    let report = report.display();
    format!(
        r#"#!/usr/bin/env python3
import json, sys, urllib.error, urllib.request
url = sys.argv[1]
if "/connect/login" not in url:
    sys.exit(0)  # the console page: a person looks at it
base = url.split("/connect/login")[0]
ask = urllib.request.Request(base + "/_sandbox/approve",
    json.dumps({{"login_url": url, "client_id": "{client_id}"}}).encode(),
    {{"Content-Type": "application/json"}})
try:
    to = json.load(urllib.request.urlopen(ask, timeout=10))["redirect_url"]
except urllib.error.HTTPError as e:
    open("{report}", "w").write("%s %s" % (e.code, e.read().decode()))
    sys.exit(0)
urllib.request.urlopen(to, timeout=10).read()
"#
    )
}

/// A second sandbox account (a family member's client ID).
pub(crate) fn new_account(w: &World) -> String {
    let acc = w.control("/_sandbox/accounts", &serde_json::json!({}));
    let id = acc["client_id"].as_str().expect("client_id").to_string();
    assert_ne!(id, w.sandbox.client_id);
    id
}

/// `--profile NAME init --no-input --client-id CLIENT --app default` plus `extra`.
fn join(w: &World, name: &str, client: &str, timeout: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "--profile",
        name,
        "init",
        "--no-input",
        "--client-id",
        client,
        "--app",
        "default",
        "--orders-from",
        "elsewhere",
        "--timeout",
        timeout,
    ];
    args.extend_from_slice(extra);
    w.run(&args, "")
}

/// `secret-tool search --all service kite-setup`: (username, secret) of every item.
fn keyring_entries(w: &World) -> Vec<(String, String)> {
    let out = w
        .keyring
        .command("secret-tool")
        .args(["search", "--all", "service", "kite-setup"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("secret-tool");
    // secret-tool prints the secret on stdout and the attributes on stderr, item by item.
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let users: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("attribute.username = "))
        .map(str::to_string)
        .collect();
    let secrets: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("secret = "))
        .map(str::to_string)
        .collect();
    assert_eq!(users.len(), secrets.len(), "{text}");
    let mut pairs: Vec<(String, String)> = users.into_iter().zip(secrets).collect();
    pairs.sort();
    pairs
}

/// The official SDK with the profile's variables from `exec`: the user_id Kite reports.
fn sdk_user_id(w: &World, profile: &str) -> String {
    let script = r#"import os, sys
from kiteconnect import KiteConnect
kite = KiteConnect(api_key=os.environ["KITE_API_KEY"], root=sys.argv[1])
kite.set_access_token(os.environ["KITE_ACCESS_TOKEN"])
print(kite.profile()["user_id"])
"#;
    let mut cmd = w.command(&["--profile", profile, "exec", "--", "python3", "-c", script]);
    cmd.arg(&w.sandbox.api_url);
    let run = run_command(cmd, "").expect(0);
    run.stdout.trim().to_string()
}

#[test]
fn two_client_ids_on_one_app_share_one_secret_and_each_has_its_own_session() {
    let w = World::new();
    let app = w.set_up();
    let spouse = new_account(&w);
    // On the console: the spouse's client ID added to the app's client IDs.
    w.control(
        &format!("/_sandbox/apps/{}/clients", app.api_key),
        &serde_json::json!({"client_ids": [w.sandbox.client_id, spouse]}),
    );
    let report = w.keyring.path().join("browser-saw.txt");
    w.set_browser(&browser_as(&spouse, &report));
    let run = join(&w, "spouse", &spouse, "20", &[]).expect(0);
    assert!(
        run.stderr.contains("Verified: Kite logged in"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("({spouse})")),
        "{}",
        run.stderr
    );
    assert!(!report.exists(), "Kite refused the spouse's login");
    assert!(
        !run.stderr.contains(&app.api_secret),
        "the secret on stderr"
    );

    let entries = keyring_entries(&w);
    let names: Vec<&str> = entries.iter().map(|(u, _)| u.as_str()).collect();
    let with_secret: Vec<&str> = entries
        .iter()
        .filter(|(_, s)| s.contains(&app.api_secret))
        .map(|(u, _)| u.as_str())
        .collect();
    assert_eq!(with_secret, ["sandbox/apps/default/app"], "{names:?}");
    let sessions: Vec<&str> = names
        .iter()
        .copied()
        .filter(|u| u.ends_with("/session"))
        .collect();
    assert_eq!(
        sessions,
        ["sandbox/default/session", "sandbox/spouse/session"],
        "{names:?}"
    );
    let config = std::fs::read_to_string(w.config_dir.join("config.toml")).expect("config");
    assert!(
        config.contains("[sandbox_profiles.spouse]")
            && config.matches("app = \"default\"").count() == 2,
        "both profiles name the app:\n{config}"
    );
    assert!(config.contains(&app.redirect_url), "{config}");

    // Each profile's token works with the official SDK, as its own user.
    assert_eq!(sdk_user_id(&w, "default"), w.sandbox.client_id);
    assert_eq!(sdk_user_id(&w, "spouse"), spouse);
}

#[test]
fn a_client_id_not_on_the_app_is_refused_with_the_console_field_and_nothing_changes() {
    let w = World::new();
    w.set_up();
    let stranger = new_account(&w);
    let report = w.keyring.path().join("browser-saw.txt");
    w.set_browser(&browser_as(&stranger, &report));
    let config = w.config_dir.join("config.toml");
    let config_before = std::fs::read(&config).expect("config");
    let keyring_before = keyring_entries(&w);

    let run = join(&w, "spouse", &stranger, "4", &[]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let saw = std::fs::read_to_string(&report).expect("the browser met Kite's refusal");
    assert!(
        saw.starts_with("400") && saw.contains("The user is not enabled for the app."),
        "{saw}"
    );
    let hint = run
        .stderr
        .lines()
        .find(|l| l.starts_with("hint: "))
        .unwrap_or_else(|| panic!("a hint: {}", run.stderr));
    for words in [
        "Client IDs",
        "\"Zerodha Client ID\"",
        "Add client ID",
        stranger.as_str(),
    ] {
        assert!(hint.contains(words), "{words:?} in {hint}");
    }
    assert_eq!(
        run.stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .count(),
        1,
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(&config).expect("config"), config_before);
    assert_eq!(keyring_entries(&w), keyring_before);
}

#[test]
fn app_flags_the_app_provides_are_refused_with_one_line() {
    let w = World::new();
    w.set_up();
    let before = keyring_entries(&w);
    let files = w.files_on_disk();
    for (extra, says) in [
        (
            &["--api-key", "abcd1234efgh5678"][..],
            "--api-key cannot be used with --app",
        ),
        (
            &["--api-secret-stdin"][..],
            "--api-secret-stdin cannot be used with --app",
        ),
        (
            &[
                "--redirect-url",
                "http://127.0.0.1:5999/kite-setup/callback",
            ][..],
            "--redirect-url cannot be used with --app",
        ),
        (
            &["--plan", "personal"][..],
            "--plan cannot be used with --app",
        ),
    ] {
        let run = join(&w, "spouse", "CD5678", "4", extra).expect(2);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{}", run.stderr);
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(says),
            "{}",
            run.stderr
        );
        assert!(lines[1].starts_with("hint: "), "{}", run.stderr);
    }
    // The app's own client ID is the same person: a login, not a new profile.
    let same = join(&w, "spouse", &w.sandbox.client_id, "4", &[]).expect(2);
    assert!(same.stderr.contains("same person"), "{}", same.stderr);
    assert!(same.stderr.contains("login"), "{}", same.stderr);
    // No such profile: exit 2, and `status` shows the ones there are.
    let mut args = vec![
        "--profile",
        "kid",
        "init",
        "--no-input",
        "--client-id",
        "CD5678",
    ];
    args.extend(["--app", "nobody"]);
    let missing = w.run(&args, "").expect(2);
    assert!(
        missing.stderr.contains("no sandbox profile nobody here"),
        "{}",
        missing.stderr
    );
    assert!(missing.stderr.contains("status"), "{}", missing.stderr);
    // Another store than the app's.
    let store = join(&w, "spouse", "CD5678", "4", &["--store", "keyutils"]).expect(2);
    assert!(
        store.stderr.contains("--store keyutils"),
        "{}",
        store.stderr
    );
    assert_eq!(keyring_entries(&w), before);
    assert_eq!(w.files_on_disk(), files);
}

/// With no browser here, kite-setup plays the browser's part in the sandbox: it logs in as
/// the family member's client ID (not the app's owner). Refused, it stops at once with the
/// console's field named; once the client ID is on the app, the same run works.
#[test]
fn self_play_logs_in_as_the_family_member_and_a_refusal_ends_at_once() {
    let w = World::new();
    let app = w.set_up();
    let kid = new_account(&w);
    let self_play = |timeout: &str| {
        let mut cmd = w.command(&[
            "--profile",
            "kid",
            "init",
            "--no-input",
            "--client-id",
            &kid,
            "--app",
            "default",
            "--orders-from",
            "elsewhere",
            "--timeout",
            timeout,
        ]);
        cmd.env_remove("BROWSER");
        run_command(cmd, "")
    };
    let started = std::time::Instant::now();
    let refused = self_play("60");
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the refusal did not wait for the timeout"
    );
    assert!(
        refused
            .stderr
            .contains("The user is not enabled for the app"),
        "{}",
        refused.stderr
    );
    let hint = refused
        .stderr
        .lines()
        .find(|l| l.starts_with("hint: "))
        .unwrap_or_default();
    assert!(
        hint.contains(&format!(
            "type {kid} in \"Zerodha Client ID\" → Add client ID"
        )),
        "{}",
        refused.stderr
    );
    assert!(w.keyring.lookup("sandbox/kid/session").is_none());

    w.control(
        &format!("/_sandbox/apps/{}/clients", app.api_key),
        &serde_json::json!({"client_ids": [w.sandbox.client_id, kid]}),
    );
    let ok = self_play("20").expect(0);
    assert!(
        ok.stderr.contains(&format!("approves the login as {kid}")),
        "{}",
        ok.stderr
    );
    let session: serde_json::Value = serde_json::from_str(
        &w.keyring
            .lookup("sandbox/kid/session")
            .expect("the kid's session"),
    )
    .expect("json");
    assert_eq!(session["user_id"], kid.as_str());

    // Taken off the app's client IDs again: the daily login says where to add it back.
    w.control(
        &format!("/_sandbox/apps/{}/clients", app.api_key),
        &serde_json::json!({"client_ids": [w.sandbox.client_id]}),
    );
    let mut cmd = w.command(&["--profile", "kid", "login", "--force", "--timeout", "60"]);
    cmd.env_remove("BROWSER");
    let login = run_command(cmd, "");
    assert_eq!(login.code, 1, "{}", login.stderr);
    // kite-setup makes this login itself and sees the refusal: no note beforehand (a
    // person's browser login gets one), the error and its hint say it.
    assert!(
        !login
            .stderr
            .contains("If Kite says \"The user is not enabled for the app\""),
        "no note ahead of a login kite-setup makes itself: {}",
        login.stderr
    );
    assert!(
        login
            .stderr
            .contains(&format!("error: the sandbox's login by {kid} failed")),
        "{}",
        login.stderr
    );
    let hint = login
        .stderr
        .lines()
        .find(|l| l.starts_with("hint: "))
        .unwrap_or_default();
    assert!(
        hint.contains(&format!(
            "type {kid} in \"Zerodha Client ID\" → Add client ID"
        )),
        "{}",
        login.stderr
    );
    let still: serde_json::Value = serde_json::from_str(
        &w.keyring
            .lookup("sandbox/kid/session")
            .expect("the kid's session"),
    )
    .expect("json");
    assert_eq!(still, session, "a refused login changes no session");
}
