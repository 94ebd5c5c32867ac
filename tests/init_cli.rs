//! `kite-setup init` as a script runs it (`--no-input`, secret on stdin) against a sandbox
//! process and a real headless Secret Service; then `secret-tool` shows what landed.

#[path = "support/cli.rs"]
mod cli_support;
#[path = "support/keyring.rs"]
mod keyring_support;
#[path = "support/sandbox.rs"]
mod sandbox_support;

use cli_support::World;

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
        .lookup("sandbox/default/app")
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
        w.keyring.lookup("default/app").is_none(),
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
