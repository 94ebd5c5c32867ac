//! The interactive `kite-setup init` wizard through a real pseudo-terminal (expectrl),
//! against a sandbox process (auto-approve) and a real headless Secret Service, the
//! "browser" being the World's `$BROWSER` script. The test types what a person types,
//! creates the app on the "console" (the sandbox's control API) with exactly the redirect
//! URL the wizard shows, and then `secret-tool` proves what landed.
//!
//! The one race (docs/testing.md): a hidden-input prompt discards keys typed before the
//! terminal's echo is off, so every secret is typed only once the PTY's echo flag is off.
//! ptyprocess starts the child with echo OFF; `stty echo` first gives the wizard the
//! terminal a person has (echo on), so "echo off" really means "the secret prompt is
//! reading" and "echo restored" after Ctrl-C is meaningful.

use crate::support::{keyring, sandbox};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::cli::{World, login_port_turn};
use expectrl::process::unix::WaitStatus;
use expectrl::{Eof, Expect, Regex, Session};

type Pty = expectrl::session::OsSession;

/// The wizard in a terminal: the world's command, run by `sh` after `stty echo`.
fn spawn_wizard(w: &World, args: &[&str]) -> Pty {
    in_terminal(&w.command(args))
}

/// `inner` (program, arguments, environment) in a PTY whose echo is on, like a person's.
fn in_terminal(inner: &Command) -> Pty {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"stty echo && exec "$@""#)
        .arg("sh")
        .arg(inner.get_program())
        .args(inner.get_args())
        .env_clear();
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.env("TERM", "xterm");
    let mut pty = Session::spawn(cmd).expect("spawn kite-setup in a PTY");
    pty.set_expect_timeout(Some(Duration::from_secs(30)));
    pty
}

/// Everything the terminal showed, collected as the test reads it.
struct Screen {
    pty: Pty,
    seen: String,
}

impl Screen {
    fn new(pty: Pty) -> Self {
        Self {
            pty,
            seen: String::new(),
        }
    }

    /// Waits for `text`; panics with the screen so far if it does not come.
    fn expect(&mut self, text: &str) -> String {
        match self.pty.expect(text) {
            Ok(c) => {
                let got = String::from_utf8_lossy(c.as_bytes()).into_owned();
                self.seen.push_str(&got);
                got
            }
            Err(e) => panic!(
                "waiting for {text:?}: {e}\n--- screen so far:\n{}",
                self.rest()
            ),
        }
    }

    /// Waits for `re` and returns its first group.
    fn expect_regex(&mut self, re: &str) -> String {
        match self.pty.expect(Regex(re)) {
            Ok(c) => {
                self.seen.push_str(&String::from_utf8_lossy(c.as_bytes()));
                String::from_utf8_lossy(c.get(1).expect("a group")).into_owned()
            }
            Err(e) => panic!(
                "waiting for /{re}/: {e}\n--- screen so far:\n{}",
                self.rest()
            ),
        }
    }

    /// What is on the screen so far, plus whatever is still unread (for failure messages).
    fn rest(&mut self) -> String {
        let mut s = self.seen.clone();
        let mut buf = [0u8; 8192];
        while let Ok(n) = self.pty.try_read(&mut buf) {
            if n == 0 {
                break;
            }
            s.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        s
    }

    fn send(&mut self, keys: &str) {
        self.pty.send(keys).expect("type into the PTY");
    }

    /// Types `value` and Enter.
    fn enter(&mut self, value: &str) {
        self.send(value);
        self.send("\r");
    }

    /// Waits until the terminal's echo is off (the hidden prompt is reading), so no key
    /// typed next is lost (docs/testing.md).
    fn wait_echo_off(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.pty.get_process().get_echo().expect("echo flag") {
            assert!(
                Instant::now() < deadline,
                "echo never went off at the secret prompt:\n{}",
                self.rest()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn echo_is_on(&self) -> bool {
        self.pty.get_process().get_echo().expect("echo flag")
    }

    /// Reads to the end and returns the exit code.
    fn finish(&mut self) -> i32 {
        if let Ok(c) = self.pty.expect(Eof) {
            self.seen.push_str(&String::from_utf8_lossy(c.as_bytes()));
        }
        match self.pty.get_process().wait().expect("wait") {
            WaitStatus::Exited(_, code) => code,
            other => panic!("kite-setup did not exit normally: {other:?}\n{}", self.seen),
        }
    }

    /// The screen without colour/cursor escape sequences.
    fn plain(&self) -> String {
        strip_ansi(&self.seen)
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else if c != '\r' {
            out.push(c);
        }
    }
    out
}

/// Answers steps 1-3 (client ID from the prompt's default, Enter at the console, the
/// default plan) and returns the redirect URL the wizard showed.
fn through_step_3(s: &mut Screen, demo: &str) -> String {
    s.expect("Your Zerodha client ID");
    s.expect(demo); // offered as the default
    s.send("\r");
    s.expect("Press Enter when you are logged in to the console");
    s.send("\r");
    s.expect("Which plan");
    s.send("\r");
    s.expect_regex(r"Redirect URL +(http://127\.0\.0\.1:[0-9]+/kite-setup/callback)")
}

#[test]
fn the_wizard_in_a_terminal_ends_with_verified_credentials_in_the_keyring() {
    let _turn = login_port_turn();
    let w = World::new();
    let mut s = Screen::new(spawn_wizard(&w, &["init", "--timeout", "30"]));
    let demo = w.sandbox.client_id.clone();
    let redirect = through_step_3(&mut s, &demo);

    // The person creates the app on the console with exactly the values shown.
    let app = w.control(
        "/_sandbox/apps",
        &serde_json::json!({"client_id": demo, "redirect_url": redirect, "plan": "personal"}),
    );
    let key = app["api_key"].as_str().expect("api_key").to_string();
    let secret = app["api_secret"].as_str().expect("api_secret").to_string();

    s.expect("Step 4 of 7");
    s.expect("api_key");
    s.expect("›");
    s.enter(&key);
    s.expect("not shown while you type");
    s.expect("api_secret");
    s.expect("›");
    s.wait_echo_off();
    s.enter(&secret);
    s.expect("Verified: Kite logged in");
    s.expect("Step 6 of 7");
    // The new account has no IPs: the probe is refused, and the wizard offers to
    // register this machine's loopback on the sandbox's IP Whitelist.
    s.expect("Step 7 of 7 — Static IP for orders");
    s.expect("no order is placed or changed");
    s.expect("orders over IPv4 are refused: no IPs are on the IP Whitelist");
    s.expect("Where will your bot send orders from?");
    s.send("\r");
    s.expect("Register 127.0.0.1");
    s.send("\r");
    s.expect("orders from this machine: allowed over IPv4 127.0.0.1");
    s.expect("is ready:");
    s.expect("Next:");
    let code = s.finish();
    let screen = s.plain();
    assert_eq!(code, 0, "{screen}");
    assert!(s.echo_is_on(), "the terminal's echo is back on");

    // The secret never reached the terminal, not even as echo.
    assert!(!screen.contains(&secret), "the secret was shown:\n{screen}");
    assert!(screen.contains("api_secret  stored"), "{screen}");
    // The next commands carry this run's --sandbox-url, and their comments still line up.
    let next: Vec<&str> = screen
        .split("Next:\n")
        .nth(1)
        .expect("the next commands")
        .lines()
        .take(3)
        .collect();
    assert!(
        next.iter().all(|l| l.contains("kite-setup --sandbox-url ")),
        "{next:?}"
    );
    let columns: Vec<Option<usize>> = next.iter().map(|l| l.find('#')).collect();
    assert!(
        columns.iter().all(|c| c.is_some() && *c == columns[0]),
        "{next:#?}"
    );

    // secret-tool proves the entries landed.
    let stored: serde_json::Value = serde_json::from_str(
        &w.keyring
            .lookup("sandbox/apps/default/app")
            .expect("app entry"),
    )
    .expect("json");
    assert_eq!(stored["api_key"], key.as_str());
    assert_eq!(stored["api_secret"], secret.as_str());
    let session: serde_json::Value = serde_json::from_str(
        &w.keyring
            .lookup("sandbox/default/session")
            .expect("session entry"),
    )
    .expect("json");
    assert_eq!(session["user_id"], demo.as_str());
    let token = session["access_token"].as_str().expect("token");
    assert!(!screen.contains(token), "the token was shown");

    // Nothing else on disk: the metadata file only, holding no secret.
    let files = w.files_on_disk();
    assert_eq!(
        files.len(),
        1,
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert!(files[0].0.ends_with("config.toml"), "{:?}", files[0].0);
    let meta = String::from_utf8(files[0].1.clone()).expect("utf-8");
    for value in [secret.as_str(), key.as_str(), token] {
        assert!(!meta.contains(value), "a secret in the metadata:\n{meta}");
    }
    assert!(meta.contains(&redirect), "{meta}");
    assert!(meta.contains("verified = true"), "{meta}");
}

#[test]
fn ctrl_c_at_the_secret_prompt_exits_130_and_changes_nothing() {
    let w = World::new();
    let mut s = Screen::new(spawn_wizard(&w, &["init"]));
    through_step_3(&mut s, &w.sandbox.client_id.clone());
    s.expect("Step 4 of 7");
    s.expect("api_key");
    s.expect("›");
    s.enter("abcd1234efgh5678");
    s.expect("api_secret");
    s.expect("›");
    s.wait_echo_off();
    s.send("\x03"); // Ctrl-C
    s.expect("interrupted: no partial changes were made");
    let code = s.finish();
    assert_eq!(code, 130, "{}", s.plain());
    assert!(s.echo_is_on(), "echo restored after Ctrl-C:\n{}", s.plain());
    assert!(s.seen.contains("\x1b[?25h"), "the cursor is shown again");
    assert!(w.keyring.lookup("sandbox/apps/default/app").is_none());
    assert!(w.keyring.lookup("sandbox/default/session").is_none());
    assert!(
        w.files_on_disk().is_empty(),
        "{:?}",
        w.files_on_disk().iter().map(|f| &f.0).collect::<Vec<_>>()
    );
}

#[test]
fn a_bad_value_at_a_prompt_is_explained_and_asked_again() {
    let w = World::new();
    let mut s = Screen::new(spawn_wizard(&w, &["init"]));
    s.expect("Your Zerodha client ID");
    s.expect("›");
    s.enter("A1");
    s.expect("2-3 letters then 3-5 digits, like AB1234");
    s.expect("Your Zerodha client ID"); // asked again
    s.expect("›");
    // Clear whatever the prompt pre-filled, then type a valid ID.
    s.enter(&w.sandbox.client_id.to_lowercase());
    s.expect("Press Enter when you are logged in to the console");
    s.send("\r");
    s.expect("Which plan");
    s.send("\r");
    s.expect("Step 4 of 7");
    s.expect("api_key");
    s.expect("›");
    s.enter("\"abcd1234efgh5678\"");
    s.expect("the api_key contains quotes: paste the value only");
    s.expect("api_key");
    s.expect("›");
    s.enter("abcd1234efgh5678");
    s.expect("api_secret");
    s.expect("›");
    s.wait_echo_off();
    s.send("\x03");
    assert_eq!(s.finish(), 130, "{}", s.plain());
    let screen = s.plain();
    assert!(
        screen.contains(&format!("Zerodha Client ID  {}", w.sandbox.client_id)),
        "the retyped lower-case ID is used, upper-cased:\n{screen}"
    );
    assert!(w.files_on_disk().is_empty());
}

/// A wrong secret, diagnosed through the real sandbox; the retry menu re-asks only the
/// secret (the key, the plan and the redirect URL are kept) and the second login works.
#[test]
fn a_wrong_secret_is_diagnosed_and_only_the_secret_is_asked_again() {
    let _turn = login_port_turn();
    let w = World::new();
    let mut s = Screen::new(spawn_wizard(&w, &["init", "--timeout", "30"]));
    let demo = w.sandbox.client_id.clone();
    let redirect = through_step_3(&mut s, &demo);
    let app = w.control(
        "/_sandbox/apps",
        &serde_json::json!({"client_id": demo, "redirect_url": redirect, "plan": "personal"}),
    );
    let key = app["api_key"].as_str().expect("api_key").to_string();
    let secret = app["api_secret"].as_str().expect("api_secret").to_string();
    s.expect("Step 4 of 7");
    s.expect("api_key");
    s.expect("›");
    s.enter(&key);
    s.expect("not shown while you type");
    s.expect("api_secret");
    s.expect("›");
    s.wait_echo_off();
    s.enter(&"w".repeat(32));
    s.expect("Invalid checksum");
    s.expect("What do you want to do?");
    s.send("\r"); // the first choice: re-enter the api_secret
    s.expect("· Re-enter the api_secret");
    s.expect("api_secret");
    s.expect("›");
    s.wait_echo_off();
    s.enter(&secret);
    s.expect("Verified: Kite logged in");
    // The static IP step: the bot runs elsewhere (the second choice).
    s.expect("Where will your bot send orders from?");
    s.send("\x1b[B\r");
    s.expect("install kite-setup and run");
    s.expect("Next:");
    assert_eq!(s.finish(), 0, "{}", s.plain());
    let stored: serde_json::Value = serde_json::from_str(
        &w.keyring
            .lookup("sandbox/apps/default/app")
            .expect("app entry"),
    )
    .expect("json");
    assert_eq!(
        stored["api_key"],
        key.as_str(),
        "the key typed first is kept"
    );
    assert_eq!(stored["api_secret"], secret.as_str());
    let screen = s.plain();
    assert_eq!(
        screen.matches("? api_key").count(),
        1,
        "the key is asked once:\n{screen}"
    );
}

/// Live mode on a machine with no D-Bus session: the keyring pre-flight fails before the
/// first question, so nobody types a secret that cannot be stored.
#[test]
fn no_keyring_fails_before_the_first_question() {
    let w = World::with(
        keyring::KeyringSession::no_dbus(),
        sandbox::SandboxProcess::auto_approve(),
    );
    let mut s = Screen::new(in_terminal(&w.live_command(&["init"])));
    s.expect("error: ");
    s.expect("hint: ");
    assert_eq!(s.finish(), 1, "{}", s.plain());
    let screen = s.plain();
    assert!(
        !screen.contains("client ID ("),
        "asked a question first:\n{screen}"
    );
    assert!(screen.contains("--store keyutils"), "{screen}");
    assert!(w.files_on_disk().is_empty());
}

/// An existing profile is never replaced without asking: the wizard says what exists and
/// offers to keep it, replace it, or quit; quitting changes nothing.
#[test]
fn an_existing_profile_is_not_replaced_without_asking() {
    let w = World::new();
    let app = w.set_up();
    let before = w.files_on_disk();
    let entry = w
        .keyring
        .lookup("sandbox/apps/default/app")
        .expect("set up");
    let mut s = Screen::new(spawn_wizard(&w, &["init"]));
    s.expect("already exists");
    s.expect(&app.redirect_url);
    s.expect("Keep its app");
    s.expect("Quit and change nothing");
    s.send("\x1b[B\x1b[B\r"); // down, down, Enter
    s.expect("· Quit and change nothing");
    s.expect("Nothing was changed.");
    assert_eq!(s.finish(), 0, "{}", s.plain());
    assert_eq!(w.files_on_disk(), before);
    assert_eq!(w.keyring.lookup("sandbox/apps/default/app"), Some(entry));
}

/// A family member's profile: with an app here, the wizard offers it first, explains who
/// counts as family, asks only the client ID, waits while the person adds it to the app's
/// client IDs on the console, and verifies by that client ID's own login. No key or
/// secret is asked for, and the app's entry stays the one it was.
#[test]
fn the_wizard_sets_up_a_family_member_on_the_app_here() {
    use crate::family_cli::{browser_as, new_account};
    let _turn = login_port_turn();
    let w = World::new();
    let app = w.set_up();
    let app_entry = w.keyring.lookup("sandbox/apps/default/app");
    let spouse = new_account(&w);
    let report = w.keyring.path().join("browser-saw.txt");
    w.set_browser(&browser_as(&spouse, &report));
    let mut s = Screen::new(spawn_wizard(
        &w,
        &[
            "--profile",
            "spouse",
            "init",
            "--timeout",
            "30",
            "--orders-from",
            "elsewhere",
        ],
    ));
    s.expect("Use the app of a family member (no new key or secret)");
    s.expect("Set up a new app");
    s.send("\r");
    s.expect(&format!("the app of default ({})", w.sandbox.client_id));
    s.send("\r");
    s.expect("dependent children, dependent parents");
    s.expect("static IP");
    s.expect("The family member's Zerodha client ID");
    s.enter(&spouse);
    s.expect(&format!(
        "type {spouse} in \"Zerodha Client ID\" → Add client ID"
    ));
    s.expect(&format!(
        "Press Enter when {spouse} is on the app's client IDs"
    ));
    // The person adds the client ID on the console (its control API here).
    w.control(
        &format!("/_sandbox/apps/{}/clients", app.api_key),
        &serde_json::json!({"client_ids": [w.sandbox.client_id, spouse]}),
    );
    s.send("\r");
    s.expect("If Kite says \"The user is not enabled for the app\"");
    s.expect("Verified: Kite logged in");
    s.expect(&format!("({spouse})"));
    s.expect("Uses the app's api_key and api_secret");
    s.expect("is ready:");
    let code = s.finish();
    let screen = s.plain();
    assert_eq!(code, 0, "{screen}");
    assert!(
        !screen.contains("api_secret ·"),
        "no secret asked:\n{screen}"
    );
    assert!(!report.exists(), "Kite refused the login");
    assert_eq!(w.keyring.lookup("sandbox/apps/default/app"), app_entry);
    let session: serde_json::Value = serde_json::from_str(
        &w.keyring
            .lookup("sandbox/spouse/session")
            .expect("the spouse's session"),
    )
    .expect("json");
    assert_eq!(session["user_id"], spouse.as_str());
    assert!(w.keyring.lookup("sandbox/apps/spouse/app").is_none());
}
