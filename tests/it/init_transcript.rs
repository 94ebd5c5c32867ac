//! One full `init` wizard transcript as a snapshot, for reviewing the words a person reads.
//! Deterministic: the wizard runs over the testkit's fakes (a Kite that logs in the right
//! user, a memory store, a fixed clock, a scripted prompter whose questions and answers are
//! written into the transcript as dialoguer shows them) with the real loopback listener and
//! a "browser" that plays Kite's redirect. Ports, the nonce and the temp dir are normalized.

use std::io::Write;
use std::sync::Mutex;

use kite_setup::cli::{InitArgs, Plan};
use kite_setup::prompt::{PromptError, Prompter, Validator};
use kite_setup::secret::Secret;
use kite_setup::testkit::{
    Answer, Capture, FakeReadiness, Harness, OK_QUERY, ScriptedPrompter, kite_browser,
};
use kite_setup::ui::Ui;

const CLIENT_ID: &str = "AB1234";
const KEY: &str = "abcd1234efgh5678";
const SECRET: &str = "s3cr3tS3CR3Ts3cr3tS3CR3Ts3cr3t12";

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
    // 10:00 IST, the testkit's fixed time.
    let mut h = Harness::new(CLIENT_ID);
    // Kite's answers to the order and plan probes: this machine's IPv4 address is on the
    // IP Whitelist, the API host has no IPv6 address, and the app is on Personal.
    h.readiness = FakeReadiness {
        plan: Some(Plan::Personal),
        ..FakeReadiness::allowed()
    };
    // init searches 5123-5322 for a free port; the test says which one is free. Nothing
    // binds it: the login goes through the harness's fake redirect.
    let port = 5322;

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
    let browser = kite_browser(&h, port, OK_QUERY);
    let args = InitArgs {
        timeout: 10,
        ..InitArgs::default()
    };
    let code = kite_setup::testkit::with_ctx_on(&h, &ui, &prompter, &browser, true, "", |ctx| {
        kite_setup::commands::init::run(ctx, &args, &|p| p == port)
    })
    .expect("init");
    assert_eq!(code, 0, "{}", err.text());
    assert!(out.text().is_empty(), "stdout is for data only");

    let transcript = normalize_nonce(
        &err.text()
            .replace(&h.config_dir.path().display().to_string(), "<CONFIG_DIR>")
            .replace(&port.to_string(), "<PORT>"),
    );
    assert!(!transcript.contains(SECRET), "the secret is never shown");
    assert!(
        !transcript.contains("faketoken"),
        "the token is never shown"
    );
    insta::assert_snapshot!("wizard_transcript", transcript);
}
