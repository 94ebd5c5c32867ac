//! One full `init` wizard transcript as a snapshot, for reviewing the words a person reads.
//! Deterministic: the wizard runs over fakes (a Kite that logs in the right user, a memory
//! store, a fixed clock, a scripted prompter whose questions and answers are written into
//! the transcript as dialoguer shows them) with the real loopback listener and a "browser"
//! that plays Kite's redirect. Ports, the nonce and the temp dir are normalized.

use std::io::Write;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use kite_setup::cli::{InitArgs, StoreChoice};
use kite_setup::clock::FixedClock;
use kite_setup::commands::orders_probe::ReadinessPort;
use kite_setup::commands::{Ctx, StoreProvider};
use kite_setup::kite::{Endpoints, ErrorType, Kite, KiteError, SessionData, UserProfile};
use kite_setup::prompt::{Answer, PromptError, Prompter, ScriptedPrompter, Validator};
use kite_setup::redirect::{NoTtyWaitUi, RecordingBrowser, WaitUi};
use kite_setup::secret::Secret;
use kite_setup::store::{MemoryStore, Store, StoreError};
use kite_setup::ui::{Capture, Ui};
use url::Url;

const CLIENT_ID: &str = "AB1234";
const KEY: &str = "abcd1234efgh5678";
const SECRET: &str = "s3cr3tS3CR3Ts3cr3tS3CR3Ts3cr3t12";
/// 10:00 IST.
const NOW: &str = "2026-11-26T04:30:00Z";

/// Kite for one user: every login succeeds.
struct OneUserKite {
    now: Timestamp,
}

impl Kite for OneUserKite {
    fn create_session(&self, _: &Secret, _: &str, _: &Secret) -> Result<SessionData, KiteError> {
        Ok(serde_json::from_value(serde_json::json!({
            "user_id": CLIENT_ID, "user_name": "Test Trader",
            "access_token": "faketoken0000000000000000000001",
            "login_time": kite_setup::session::format_ist(self.now),
        }))
        .expect("session"))
    }
    fn profile(&self, _: &Secret, _: &Secret) -> Result<UserProfile, KiteError> {
        Ok(serde_json::from_value(
            serde_json::json!({"user_id": CLIENT_ID, "user_name": "Test Trader"}),
        )
        .expect("profile"))
    }
    fn invalidate(&self, _: &Secret, _: &Secret) -> Result<(), KiteError> {
        Ok(())
    }
    fn server_time(&self) -> Result<Timestamp, KiteError> {
        Ok(self.now)
    }
    fn reachable(&self, _: &Url) -> Result<(), KiteError> {
        Ok(())
    }
}

/// Kite's answers to the order and plan probes: this machine's IPv4 address is on the
/// IP Whitelist, the API host has no IPv6 address, and the app is on Personal.
struct WhitelistedKite;

impl ReadinessPort for WhitelistedKite {
    fn api_addresses(&self) -> Result<Vec<IpAddr>, String> {
        Ok(vec![IpAddr::from([198, 51, 100, 10])])
    }
    fn cancel_probe(&self, _: IpAddr, _: &Secret, _: &Secret) -> Result<(), KiteError> {
        Err(KiteError::api(
            400,
            ErrorType::Input,
            "Couldn't find that order.".into(),
        ))
    }
    fn quote_probe(&self, _: &Secret, _: &Secret) -> Result<(), KiteError> {
        Err(KiteError::api(
            403,
            ErrorType::Permission,
            "Insufficient permission for that call.".into(),
        ))
    }
    fn source_address(&self, _: IpAddr) -> Option<IpAddr> {
        Some(IpAddr::from([203, 0, 113, 7]))
    }
    fn public_ip(&self) -> Result<IpAddr, String> {
        panic!("never looked up without consent")
    }
    fn public_ip_service(&self) -> String {
        "an echo service".into()
    }
}

struct MemoryStores(Arc<MemoryStore>);

impl StoreProvider for MemoryStores {
    fn open(&self, choice: StoreChoice) -> Result<(Arc<dyn Store>, StoreChoice), StoreError> {
        Ok((self.0.clone() as Arc<dyn Store>, choice))
    }
}

/// The scripted prompter, writing each question and answer into the transcript the way
/// dialoguer leaves it on the screen (`✔ question · answer`, secrets as stars).
struct ShownPrompter {
    inner: ScriptedPrompter,
    screen: Mutex<Capture>,
}

impl ShownPrompter {
    fn show(&self, prompt: &str, answer: &str) {
        let mut s = self.screen.lock().expect("lock");
        let _ = writeln!(s, "✔ {prompt} · {answer}");
    }
}

impl Prompter for ShownPrompter {
    fn input(
        &self,
        prompt: &str,
        default: Option<&str>,
        validate: Validator<'_>,
    ) -> Result<String, PromptError> {
        let shown = default.map_or_else(|| prompt.to_string(), |d| format!("{prompt} ({d})"));
        let v = self.inner.input(prompt, default, validate)?;
        self.show(&shown, &v);
        Ok(v)
    }
    fn secret(&self, prompt: &str, validate: Validator<'_>) -> Result<Secret, PromptError> {
        let v = self.inner.secret(prompt, validate)?;
        self.show(prompt, "********");
        Ok(v)
    }
    fn select(&self, prompt: &str, items: &[&str], default: usize) -> Result<usize, PromptError> {
        let i = self.inner.select(prompt, items, default)?;
        self.show(prompt, items[i]);
        Ok(i)
    }
    fn confirm(&self, prompt: &str, default: bool) -> Result<bool, PromptError> {
        let v = self.inner.confirm(prompt, default)?;
        self.show(prompt, if v { "yes" } else { "no" });
        Ok(v)
    }
    fn pause(&self, prompt: &str) -> Result<(), PromptError> {
        self.inner.pause(prompt)?;
        self.show(prompt, "");
        Ok(())
    }
}

/// What a browser does after Kite's login: GET the redirect URL with a request token and
/// the `redirect_params` of the login URL (the nonce).
fn follow_redirect(login_url: &Url, redirect_url: &str) {
    let inner = login_url
        .query_pairs()
        .find(|(k, _)| k == "redirect_params")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let target = Url::parse(&format!(
        "{redirect_url}?action=login&type=login&status=success&request_token=rt0123456789&{inner}"
    ))
    .expect("redirect");
    std::thread::spawn(move || {
        use std::io::Read;
        let addr = format!(
            "{}:{}",
            target.host_str().expect("host"),
            target.port().expect("port")
        );
        for _ in 0..200 {
            if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
                let _ = write!(
                    s,
                    "GET {}?{} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
                    target.path(),
                    target.query().unwrap_or("")
                );
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf);
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    });
}

/// Replaces each `state%3D<hex>` nonce with a placeholder.
fn normalize_nonce(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("state%3D") {
        let (head, tail) = rest.split_at(i + "state%3D".len());
        out.push_str(head);
        out.push_str("<NONCE>");
        rest = tail.trim_start_matches(|c: char| c.is_ascii_hexdigit());
    }
    out.push_str(rest);
    out
}

#[test]
fn the_wizard_transcript() {
    let now: Timestamp = NOW.parse().expect("time");
    // init searches 5123-5322 for a free port; the top three are used by no other test
    // (the flow tests take 5200-5319, a real wizard takes the lowest free one).
    let port = (5320..=5322)
        .rev()
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port in 5320-5322");
    let redirect = format!("http://127.0.0.1:{port}/kite-setup/callback");
    let config_dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(MemoryStore::default());

    let (ui, out, err) = Ui::captured();
    let prompter = ShownPrompter {
        inner: ScriptedPrompter::new(vec![
            ("client id", Answer::Text(" ab1234 ".into())),
            ("logged in to the console", Answer::Enter),
            ("plan", Answer::Choose("Personal".into())),
            ("api_key", Answer::Text(KEY.into())),
            ("api_secret", Answer::Text(SECRET.into())),
        ]),
        screen: Mutex::new(err.clone()),
    };
    let to = redirect.clone();
    let browser = RecordingBrowser::acting(move |url| {
        if url.path().ends_with("/connect/login") {
            follow_redirect(url, &to);
        }
    });
    let kite = OneUserKite { now };
    let clock = FixedClock::at(now);
    let stores = MemoryStores(store.clone());
    let wait_ui = || -> Box<dyn WaitUi> { Box::new(NoTtyWaitUi::new(std::io::sink())) };
    let read_line = || -> std::io::Result<String> { Ok(String::new()) };
    let ctx = Ctx {
        profile: "default".into(),
        sandbox: false,
        sandbox_url: None,
        interactive: true,
        json: false,
        store_flag: None,
        prompter: &prompter,
        kite: &kite,
        endpoints: Endpoints::live(),
        browser: &browser,
        clock: &clock,
        config: kite_setup::profile::ConfigFile::new(config_dir.path().to_path_buf()),
        stores: &stores,
        ui: &ui,
        wait_ui: &wait_ui,
        sandbox_control: None,
        read_stdin_line: &read_line,
        browser_available: true,
        self_browser: None,
        self_play: std::cell::Cell::new(false),
        readiness: &WhitelistedKite,
    };
    let args = InitArgs {
        timeout: 10,
        ..InitArgs::default()
    };
    let code = kite_setup::commands::init::run(&ctx, &args, &|p| p == port).expect("init");
    assert_eq!(code, 0, "{}", err.text());
    assert!(out.text().is_empty(), "stdout is for data only");

    let transcript = normalize_nonce(
        &err.text()
            .replace(&config_dir.path().display().to_string(), "<CONFIG_DIR>")
            .replace(&port.to_string(), "<PORT>"),
    );
    assert!(!transcript.contains(SECRET), "the secret is never shown");
    assert!(
        !transcript.contains("faketoken"),
        "the token is never shown"
    );
    insta::assert_snapshot!("wizard_transcript", transcript);
}
