//! The tests that see the product as a person does. The first: headless Chromium (driven over
//! WebDriver) walks the sandbox's developer console and login page while
//! `kite-setup --sandbox-url URL init` runs in a pseudo-terminal and is given the values
//! read off those pages.
//!
//! `$BROWSER` is a tiny script that appends each URL the wizard opens to a file; the test
//! reads it and opens the URL in the same WebDriver-controlled browser, so the console
//! link and the login URL the wizard prints are the ones the browser really visits.
//! Screenshots of the console's credentials page and of kite-setup's callback page are
//! saved under `target/test-artifacts/`.
//!
//! A second test signs in to the console alone (no wizard, so no redirect port) and
//! walks the profile page's IP Whitelist through the weekly rule, with a week of sandbox
//! time passed through the control API's clock.
//!
//! Needs the Debian packages `chromium chromium-driver` (and the keyring test packages).
//! If Chromium cannot start, the test fails with chromedriver's log: it never skips.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use expectrl::process::Termios;
use expectrl::process::unix::WaitStatus;
use expectrl::session::OsSession as Session;
use expectrl::{Captures, Eof, Expect, Needle, Regex};

use crate::support::cli::{self, World};
use crate::support::keyring::KeyringSession;
use crate::support::sandbox::SandboxProcess;
use crate::support::webdriver::WebDriver;

/// How long any one wizard step or browser hand-off may take.
const STEP: Duration = Duration::from_secs(20);

/// A `$BROWSER` that hands each URL to the test: one line per URL in `urls`.
struct Handoff {
    script: PathBuf,
    urls: PathBuf,
}

impl Handoff {
    fn new(dir: &Path) -> Self {
        let script = dir.join("handoff-browser.sh");
        let urls = dir.join("opened-urls.txt");
        std::fs::write(
            &script,
            format!("#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n", urls.display()),
        )
        .expect("write $BROWSER script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Self { script, urls }
    }

    /// The `n`th URL (0-based) the wizard opened, once it is there.
    fn wait_for(&self, n: usize, t: &Terminal) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let text = std::fs::read_to_string(&self.urls).unwrap_or_default();
            let complete: Vec<&str> = text
                .split_inclusive('\n')
                .filter(|l| l.ends_with('\n'))
                .map(str::trim)
                .collect();
            if let Some(url) = complete.get(n) {
                return (*url).to_string();
            }
            assert!(
                Instant::now() < deadline,
                "the wizard opened no URL #{n} in {STEP:?} (opened so far: {complete:?})\n--- terminal so far:\n{}",
                t.text()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// The current code of the demo account's authenticator (SHA1, 6 digits, 30 s).
fn totp_now(secret_b32: &str) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_b32).expect("banner totp_secret");
    let totp = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(secret)
        .build()
        .expect("totp");
    // The authenticator on a person's phone reads the wall clock; so does the sandbox.
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    totp.generate(now).to_string()
}

/// `target/test-artifacts/` (beside the `tmp` dir cargo gives integration tests).
fn artifacts_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("test-artifacts")
}

/// The wizard's terminal, with everything it printed kept for checks and failure messages.
struct Terminal {
    s: Session,
    seen: Vec<u8>,
}

impl Terminal {
    fn expect<N: Needle>(&mut self, needle: N, what: &str) -> Captures {
        match self.s.expect(needle) {
            Ok(c) => {
                self.seen.extend_from_slice(c.before());
                self.seen.extend_from_slice(c.get(0).unwrap_or_default());
                c
            }
            Err(e) => panic!(
                "waiting for {what}: {e}\n--- terminal so far:\n{}",
                self.text()
            ),
        }
    }

    fn send(&mut self, text: &str) {
        self.s.send(text).expect("write to the PTY");
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }
}

/// Polls until the terminal's echo is off: the hidden prompt discards keys typed before
/// (docs/testing.md). The wrapper below turned echo on, so "off" means the prompt is reading.
fn wait_echo_off(s: &Session) {
    let deadline = Instant::now() + STEP;
    while s.get_process().is_echo().expect("termios") {
        assert!(
            Instant::now() < deadline,
            "the secret prompt never turned echo off"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn chromium_walks_the_console_and_login_page_while_init_runs_in_a_terminal() {
    let started = Instant::now();
    let w = World::with(KeyringSession::start(), SandboxProcess::with_login_form());
    let sb = &w.sandbox;
    let browser = WebDriver::start();
    let handoff = Handoff::new(w.keyring.path());
    let artifacts = artifacts_dir();
    let credentials_png = artifacts.join("real-browser-console-credentials.png");
    let callback_png = artifacts.join("real-browser-callback.png");
    for old in [&credentials_png, &callback_png] {
        let _ = std::fs::remove_file(old);
    }

    // The wizard picks its redirect port from 5123 like the terminal wizard tests' do.
    let _turn = cli::login_port_turn();
    // The wizard in a terminal. expectrl's PTY starts with echo off; a person's terminal
    // echoes, and only then does "echo went off" prove the hidden prompt is reading.
    let inner = w.command(&["init", "--timeout", "60"]);
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("stty echo && exec \"$0\" \"$@\"")
        .arg(inner.get_program())
        .args(inner.get_args());
    cmd.env_clear();
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.env("BROWSER", &handoff.script);
    let mut s = Session::spawn(cmd).expect("spawn init in a PTY");
    s.set_expect_timeout(Some(STEP));
    let mut t = Terminal {
        s,
        seen: Vec::new(),
    };

    // Step 1: the client ID, then the console opens in "the browser".
    t.expect("Your Zerodha client ID", "client ID prompt");
    t.send(&format!("{}\r", sb.client_id));
    let console_url = handoff.wait_for(0, &t);
    assert_eq!(
        console_url.trim_end_matches('/'),
        sb.console_url.trim_end_matches('/'),
        "the wizard opens the console"
    );
    browser.goto(&console_url);
    browser.fill("#client_id", &sb.client_id);
    browser.fill("#password", &sb.password);
    browser.fill("#totp", &totp_now(&sb.totp_secret));
    browser.click("form[action='/console/login'] button[type=submit]");
    assert_eq!(
        browser.text("#user"),
        sb.client_id,
        "signed in to the console"
    );
    t.expect(
        "Press Enter when you are logged in to the console",
        "console pause",
    );
    t.send("\r");

    // Step 2: the plan (Personal, the first item).
    t.expect("Which plan", "plan prompt");
    t.send("\r");

    // Step 3: the redirect URL to register, read off the terminal.
    let caps = t.expect(
        Regex(r"Redirect URL +(http://127\.0\.0\.1:[0-9]+/kite-setup/callback)"),
        "redirect URL shown",
    );
    let redirect = String::from_utf8_lossy(caps.get(1).unwrap()).into_owned();

    // The browser creates the app with exactly that redirect URL.
    browser.click("#create");
    browser.fill("#name", "kite-setup real browser");
    browser.fill("#client_id", &sb.client_id);
    browser.fill("#redirect_url", &redirect);
    browser.fill("#description", "Created by headless Chromium in a test");
    browser.click("#plan option[value='personal']");
    browser.click("form[action='/console/apps/new'] button[type=submit]");
    let api_key = browser.text("#api_key");
    let api_secret = browser.text("#api_secret");
    assert_eq!(browser.text("#redirect_url"), redirect);
    assert!(
        !api_key.is_empty() && !api_secret.is_empty(),
        "credentials on the page"
    );
    assert!(browser.screenshot(&credentials_png) > 0);

    // Step 4: key and secret into the wizard, the secret only once echo is off.
    t.expect("Lost it later?", "step 4");
    t.expect("api_key", "api_key prompt");
    t.send(&format!("{api_key}\r"));
    t.expect("not shown while you type", "secret note");
    t.expect("api_secret", "api_secret prompt");
    wait_echo_off(&t.s);
    t.send(&format!("{api_secret}\r"));

    // Step 5: the wizard opens the login URL; the same browser logs in and authorises.
    let login_url = handoff.wait_for(1, &t);
    assert!(
        login_url.starts_with(&sb.login_url) && login_url.contains(&api_key),
        "{login_url}"
    );
    browser.goto(&login_url);
    browser.fill("#client_id", &sb.client_id);
    browser.fill("#password", &sb.password);
    browser.fill("#totp", &totp_now(&sb.totp_secret));
    browser.click("form[action='/connect/login'] button[type=submit]");
    browser.click("#authorize");

    // The browser ends on kite-setup's own callback page.
    let landed = browser.wait_for_url(&redirect);
    let page_text = browser.body_text();
    let page_source = browser.source();
    assert!(
        page_text.contains("return to the terminal"),
        "callback page: {page_text}"
    );
    let request_token = url::Url::parse(&landed)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "request_token")
        .map(|(_, v)| v.into_owned())
        .expect("request_token in the redirect");
    assert!(
        !page_source.contains(&request_token) && !page_source.contains(&api_secret),
        "the callback page shows no token or secret: {page_source}"
    );
    assert!(browser.screenshot(&callback_png) > 0);

    // Steps 5-7 in the terminal: verified, stored, the static IP step (the new account
    // has no IPs; the bot is said to run elsewhere), exit 0.
    t.expect("Verified: Kite logged in", "verified");
    t.expect("Where will your bot send orders from?", "static IP step");
    t.send("\x1b[B\r");
    t.expect("Profile default (sandbox) is ready", "summary");
    t.expect(Eof, "the wizard ends");
    let status = t.s.get_process().wait().expect("wait");
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "exit status {status:?}"
    );

    // The keyring holds what the page showed; the session is the demo user's.
    let app: serde_json::Value = serde_json::from_str(
        &w.keyring
            .lookup("sandbox/apps/default/app")
            .expect("app entry in the Secret Service"),
    )
    .unwrap();
    assert_eq!(app["api_key"], api_key.as_str());
    assert_eq!(app["api_secret"], api_secret.as_str());
    let session: serde_json::Value = serde_json::from_str(
        &w.keyring
            .lookup("sandbox/default/session")
            .expect("session entry"),
    )
    .unwrap();
    assert_eq!(session["user_id"], sb.client_id.as_str());
    let token = session["access_token"].as_str().expect("access token");
    assert!(
        !page_source.contains(token),
        "the callback page shows no access token"
    );
    // The terminal never showed the secret (hidden prompt) nor the token.
    let transcript = t.text();
    assert!(
        !transcript.contains(&api_secret) && !transcript.contains(token),
        "a secret on the terminal:\n{transcript}"
    );

    for png in [&credentials_png, &callback_png] {
        let len = std::fs::metadata(png).map_or(0, |m| m.len());
        assert!(len > 0, "{} is missing or empty", png.display());
    }
    eprintln!(
        "real browser: console login, app creation, Kite login and authorisation in Chromium; init exited 0 in {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        artifacts.display()
    );
}

/// The accounts' IP whitelists as `GET /_sandbox/state` shows them: the demo account's.
fn demo_whitelist(http: &reqwest::blocking::Client, sb: &SandboxProcess) -> Vec<String> {
    let state: serde_json::Value = http
        .get(sb.at("_sandbox/state"))
        .send()
        .and_then(reqwest::blocking::Response::json)
        .expect("GET /_sandbox/state");
    let account = state["accounts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["client_id"] == sb.client_id.as_str()))
        .unwrap_or_else(|| panic!("the demo account in the state: {state}"));
    account["ips"]
        .as_array()
        .expect("ips")
        .iter()
        .map(|ip| ip.as_str().unwrap_or_default().to_string())
        .collect()
}

/// Types `ips` (one per line) into the profile form, ticks the family declaration, saves.
fn save_whitelist(browser: &WebDriver, ips: &str) {
    browser.fill("#ips", ips);
    browser.click("#declaration");
    browser.click("#update");
}

#[test]
fn chromium_sets_the_ip_whitelist_and_meets_the_weekly_rule() {
    let started = Instant::now();
    // No wizard here, so no redirect port to share with the terminal tests.
    let sb = SandboxProcess::with_login_form();
    // Both reqwest clients (WebDriver's and this one) need the TLS provider installed.
    kite_setup::kite::client::install_tls_provider();
    let browser = WebDriver::start();
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(STEP)
        .build()
        .expect("http client");
    let artifacts = artifacts_dir();
    let refused_png = artifacts.join("real-browser-profile-weekly-rule.png");
    let changed_png = artifacts.join("real-browser-profile-after-a-week.png");
    for old in [&refused_png, &changed_png] {
        let _ = std::fs::remove_file(old);
    }
    assert!(
        demo_whitelist(&http, &sb).is_empty(),
        "a fresh account has no IPs"
    );

    browser.goto(&sb.console_url);
    browser.fill("#client_id", &sb.client_id);
    browser.fill("#password", &sb.password);
    browser.fill("#totp", &totp_now(&sb.totp_secret));
    browser.click("form[action='/console/login'] button[type=submit]");
    assert_eq!(
        browser.text("#user"),
        sb.client_id,
        "signed in to the console"
    );
    browser.goto(&sb.at("console/profile"));
    assert!(
        browser.text("#current").contains("No IPs configured"),
        "{}",
        browser.body_text()
    );

    // The first change is allowed.
    save_whitelist(&browser, "127.0.0.1");
    assert_eq!(browser.text("#saved"), "Saved.");
    assert_eq!(browser.text("#current"), "Whitelisted: 127.0.0.1");
    assert_eq!(demo_whitelist(&http, &sb), ["127.0.0.1"]);

    // A second change in the same week is refused, and nothing changes.
    save_whitelist(&browser, "127.0.0.1\n::1");
    let page = browser.body_text();
    assert!(
        page.contains("The IP Whitelist can be changed once per calendar week"),
        "no weekly-rule refusal on the page:\n{page}"
    );
    assert_eq!(browser.text("#current"), "Whitelisted: 127.0.0.1");
    assert_eq!(demo_whitelist(&http, &sb), ["127.0.0.1"]);
    assert!(browser.screenshot(&refused_png) > 0);

    // A week of sandbox time later, the change is accepted.
    let clock: serde_json::Value = http
        .post(sb.at("_sandbox/clock"))
        .json(&serde_json::json!({"offset_seconds": 7 * 24 * 3600}))
        .send()
        .and_then(reqwest::blocking::Response::error_for_status)
        .and_then(reqwest::blocking::Response::json)
        .expect("POST /_sandbox/clock");
    assert_eq!(clock["offset_seconds"], 7 * 24 * 3600);
    browser.goto(&sb.at("console/profile"));
    assert!(
        browser
            .text("#next_change")
            .contains("A change is allowed now"),
        "{}",
        browser.body_text()
    );
    save_whitelist(&browser, "127.0.0.1\n::1");
    assert_eq!(browser.text("#saved"), "Saved.");
    assert_eq!(browser.text("#current"), "Whitelisted: 127.0.0.1, ::1");
    assert_eq!(demo_whitelist(&http, &sb), ["127.0.0.1", "::1"]);
    assert!(browser.screenshot(&changed_png) > 0);

    for png in [&refused_png, &changed_png] {
        let len = std::fs::metadata(png).map_or(0, |m| m.len());
        assert!(len > 0, "{} is missing or empty", png.display());
    }
    eprintln!(
        "real browser: IP whitelist set, refused by the weekly rule, changed a sandbox week later, in {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        artifacts.display()
    );
}
