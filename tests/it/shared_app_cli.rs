//! Two client IDs on one sandbox app, through the real binary and a real Secret Service:
//! `status` groups them under the app and names who still needs today's login; `logout`
//! and `remove` of one profile revoke only its own token at the sandbox, and `remove`
//! keeps the app's entry while the other profile uses it.

use crate::support::cli::World;

/// `$BROWSER` that logs in as `client_id` (the sandbox's approve endpoint, as that person
/// would at Kite's login page) and follows the redirect to kite-setup.
fn browser_as(client_id: &str) -> String {
    format!(
        r#"#!/usr/bin/env python3
import json, sys, urllib.request
url = sys.argv[1]
if "/connect/login" in url:
    base = url.split("/connect/login")[0]
    body = json.dumps({{"login_url": url, "client_id": "{client_id}"}}).encode()
    req = urllib.request.Request(base + "/_sandbox/approve", data=body, headers={{"Content-Type": "application/json"}})
    url = json.load(urllib.request.urlopen(req, timeout=10))["redirect_url"]
urllib.request.urlopen(url, timeout=10).read()
"#
    )
}

/// The sandbox profile `to` on `from`'s app, for client ID `client_id` (config.toml as
/// a family member's `init` writes it: the app's settings copied, its own client ID).
fn add_family_member(w: &World, from: &str, to: &str, client_id: &str) {
    let path = w.config_dir.join("config.toml");
    let mut doc: toml::Table =
        toml::from_str(&std::fs::read_to_string(&path).expect("config.toml")).expect("parses");
    let profiles = doc
        .get_mut("sandbox_profiles")
        .and_then(toml::Value::as_table_mut)
        .expect("sandbox profiles");
    let mut member = profiles[from].as_table().expect("profile").clone();
    member.insert("client_id".into(), client_id.into());
    member.remove("user_name");
    member.remove("orders");
    profiles.insert(to.into(), member.into());
    std::fs::write(&path, toml::to_string(&doc).expect("toml")).expect("write config.toml");
}

fn token_of(w: &World, profile: &str) -> Option<String> {
    let s = w.keyring.lookup(&format!("sandbox/{profile}/session"))?;
    let v: serde_json::Value = serde_json::from_str(&s).expect("session JSON");
    v["access_token"].as_str().map(str::to_string)
}

#[test]
fn one_family_members_logout_and_remove_leave_the_others_session_alive() {
    let w = World::new();
    let app = w.set_up();
    let spouse = w.control("/_sandbox/accounts", &serde_json::json!({}))["client_id"]
        .as_str()
        .expect("client_id")
        .to_string();
    w.control(
        &format!("/_sandbox/apps/{}/clients", app.api_key),
        &serde_json::json!({ "client_ids": [w.sandbox.client_id, spouse] }),
    );
    add_family_member(&w, "default", "spouse", &spouse);

    // Before the spouse's first login: one app, the spouse named as needing it.
    let status = w.run(&["status"], "").expect(0);
    assert_eq!(
        status
            .stderr
            .lines()
            .filter(|l| l.starts_with("app "))
            .count(),
        1,
        "{}",
        status.stderr
    );
    assert!(
        status
            .stderr
            .contains("today       needs today's login: kite-setup --sandbox-url"),
        "{}",
        status.stderr
    );
    assert!(
        status.stderr.contains("--profile spouse login"),
        "{}",
        status.stderr
    );

    w.set_browser(&browser_as(&spouse));
    w.run(&["--profile", "spouse", "login", "--timeout", "20"], "")
        .expect(0);
    let mine = token_of(&w, "default").expect("default's token");
    let theirs = token_of(&w, "spouse").expect("the spouse's token");
    assert_ne!(mine, theirs);
    assert_eq!(w.profile_status(&app.api_key, &mine), 200);
    assert_eq!(w.profile_status(&app.api_key, &theirs), 200);
    let json = w.run(&["--json", "status"], "").expect(0);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("status --json");
    assert_eq!(
        doc["apps"][0]["profiles"],
        serde_json::json!(["default", "spouse"])
    );
    assert_eq!(doc["apps"][0]["needs_login"], serde_json::json!([]));
    assert_eq!(doc["profiles"][1]["app"], "default");
    assert_eq!(doc["profiles"][1]["client_id"], spouse.as_str());

    // logout: the spouse's token only.
    w.run(&["--profile", "spouse", "logout"], "").expect(0);
    assert_eq!(w.profile_status(&app.api_key, &theirs), 403);
    assert_eq!(
        w.profile_status(&app.api_key, &mine),
        200,
        "default's session survives"
    );
    assert!(token_of(&w, "spouse").is_none());
    let app_entry = w.keyring.lookup("sandbox/apps/default/app");
    assert!(app_entry.is_some());

    // remove: the spouse's token and profile, not the app default still uses.
    w.run(&["--profile", "spouse", "login", "--timeout", "20"], "")
        .expect(0);
    let theirs = token_of(&w, "spouse").expect("a new token");
    let removed = w
        .run(&["--profile", "spouse", "remove", "--yes"], "")
        .expect(0);
    assert!(
        removed
            .stderr
            .contains("Kept app default: profile default still uses it"),
        "{}",
        removed.stderr
    );
    assert_eq!(w.profile_status(&app.api_key, &theirs), 403);
    assert_eq!(
        w.profile_status(&app.api_key, &mine),
        200,
        "default's session survives"
    );
    assert_eq!(w.keyring.lookup("sandbox/apps/default/app"), app_entry);
    assert!(w.keyring.lookup("sandbox/spouse/session").is_none());
    w.run(&["status", "--check"], "").expect(0);

    // The app's last profile takes the app's entry with it.
    let removed = w.run(&["remove", "--yes"], "").expect(0);
    assert!(!removed.stderr.contains("Kept app"), "{}", removed.stderr);
    assert!(w.keyring.lookup("sandbox/apps/default/app").is_none());
    assert_eq!(w.profile_status(&app.api_key, &mine), 403);
}
