//! Flow tests of `regenerate` over fakes (scripted prompter, memory store, fake Kite,
//! fixed clock) and the real loopback listener: every branch of the leak playbook, and
//! what the keyring holds after each way of stopping.
#![allow(clippy::many_single_char_names)] // h, p, b, r: harness, prompter, browser, result

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU16;

use crate::cli::{Plan, RegenerateArgs, StoreChoice};
use crate::error::{Error, RunFlags};
use crate::kite::KiteError;
use crate::profile::{ConfigFile, ProfileMeta};
use crate::session::{StoredSession, expiry_after};
use crate::store::{
    AppCredentials, Entries, PendingSecret, Store, get_json, load_app, load_session,
    set_json_verified,
};
use crate::testkit::{
    Answer, Harness, OK_QUERY, RecordingBrowser, ScriptedPrompter, kite_error, redirect_url,
    with_ctx,
};

use super::TestMachine;
use super::regenerate::{RegenerateEnv, Step, run};

const KEY: &str = "abcd1234efgh5678";
const OLD: &str = "0ld0ld0LD0LD0ld0ld0LD0LD0ld0ld12";
const NEW: &str = "n3wn3wN3WN3Wn3wn3wN3WN3Wn3wn3w99";
const NEW2: &str = "an0th3rS3cr3tan0th3rS3cr3tan0th3";
const OLD_TOKEN: &str = "oldtoken0123456789abcdefghijklmn";

/// A new port per call, so that no two logins of a test share a redirect URL. Nothing
/// binds it: logins go through the harness's fake redirect.
fn test_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(5400);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

/// A browser that completes Kite's login (through `h`'s fake redirect) whenever a login
/// page is opened.
fn kite_browser(h: &Harness, port: u16) -> RecordingBrowser {
    crate::testkit::kite_browser(h, port, OK_QUERY)
}

fn entries() -> Entries {
    Entries::new("default", false, Some("default"))
}

/// A verified profile with the OLD secret and a live token issued with it.
fn set_up(h: &Harness, port: u16) {
    let cfg = ConfigFile::new(h.config_dir.path().to_path_buf());
    let mut c = cfg.load().unwrap();
    c.profiles_mut(false).insert(
        "default".into(),
        ProfileMeta {
            client_id: "AB1234".into(),
            app: Some("default".into()),
            plan: Plan::Personal,
            redirect_url: redirect_url(port),
            store: StoreChoice::Auto,
            app_name: None,
            user_name: None,
            verified: true,
            orders: None,
            created_at: h.now,
            updated_at: h.now,
        },
    );
    cfg.save(&c).unwrap();
    let s = h.store.as_ref();
    set_json_verified(
        s,
        &entries().app(),
        &AppCredentials {
            api_key: KEY.into(),
            api_secret: OLD.into(),
        },
    )
    .unwrap();
    set_json_verified(
        s,
        &entries().session(),
        &StoredSession {
            access_token: OLD_TOKEN.into(),
            user_id: "AB1234".into(),
            user_name: "Test Trader".into(),
            login_time: h.now,
            expires_at: expiry_after(h.now),
        },
    )
    .unwrap();
}

fn args() -> RegenerateArgs {
    RegenerateArgs {
        timeout: 5,
        ..RegenerateArgs::default()
    }
}

/// Scan roots in private temp dirs: a cwd with `.env` holding the old secret, a home
/// whose `.bash_history` holds the old token.
struct Places {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    machine: TestMachine,
}

impl Places {
    fn planted() -> Self {
        let cwd = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        std::fs::write(
            cwd.path().join(".env"),
            format!("KITE_API_KEY={KEY}\nKITE_API_SECRET={OLD}\n"),
        )
        .unwrap();
        std::fs::write(
            home.path().join(".bash_history"),
            format!("ls\nexport KITE_ACCESS_TOKEN={OLD_TOKEN}\nls\n"),
        )
        .unwrap();
        let machine = TestMachine {
            cwd: cwd.path().to_path_buf(),
            home: Some(home.path().to_path_buf()),
            histfile: None,
            free_ports: Vec::new(),
        };
        Self {
            _dirs: (cwd, home),
            machine,
        }
    }

    fn env(&self) -> RegenerateEnv<'_> {
        RegenerateEnv {
            machine: &self.machine,
            abort_after: None,
        }
    }
}

fn main_secret(h: &Harness) -> String {
    load_app(h.store.as_ref(), &entries())
        .unwrap()
        .unwrap()
        .api_secret
        .expose()
        .to_string()
}

fn pending(h: &Harness) -> Option<PendingSecret> {
    get_json(h.store.as_ref(), &entries().pending()).unwrap()
}

fn session_token(h: &Harness) -> String {
    load_session(h.store.as_ref(), &entries())
        .unwrap()
        .unwrap()
        .access_token
        .expose()
        .to_string()
}

fn invalidations(h: &Harness) -> usize {
    h.kite
        .calls()
        .iter()
        .filter(|c| c.as_str() == "invalidate")
        .count()
}

/// No secret value anywhere in what the user sees.
fn assert_no_secrets(text: &str) {
    for s in [OLD, NEW, NEW2, OLD_TOKEN, "faketoken"] {
        assert!(!text.contains(s), "a secret on the terminal:\n{text}");
    }
}

fn script_to_secret(secret: &str) -> Vec<(&'static str, Answer)> {
    vec![
        ("start", Answer::Yes),
        ("new secret is on the screen", Answer::Enter),
        ("new api_secret", Answer::Text(secret.into())),
    ]
}

/// Runs `regenerate` interactively with `script`.
fn regenerate(
    h: &Harness,
    port: u16,
    script: Vec<(&'static str, Answer)>,
    a: &RegenerateArgs,
    places: &Places,
) -> (Result<u8, Error>, String, String) {
    let p = ScriptedPrompter::new(script);
    let b = kite_browser(h, port);
    with_ctx(h, &p, &b, true, "", |ctx| run(ctx, a, &places.env()))
}

/// Runs `regenerate` in --no-input mode with `stdin`.
fn regenerate_no_input(
    h: &Harness,
    port: u16,
    a: &RegenerateArgs,
    stdin: &str,
) -> (Result<u8, Error>, String, String) {
    let p = ScriptedPrompter::new(vec![]);
    let b = kite_browser(h, port);
    let places = Places::planted();
    with_ctx(h, &p, &b, false, stdin, |ctx| run(ctx, a, &places.env()))
}

fn resume_args() -> RegenerateArgs {
    RegenerateArgs {
        resume: true,
        yes: true,
        no_scan: true,
        ..args()
    }
}

#[test]
fn happy_path_swaps_revokes_and_finds_the_old_copies() {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    let places = Places::planted();
    let p = ScriptedPrompter::new(script_to_secret(NEW));
    let b = kite_browser(&h, port);
    let (r, out, err) = with_ctx(&h, &p, &b, true, "", |ctx| run(ctx, &args(), &places.env()));
    assert_eq!(r.unwrap(), 0, "{err}");
    assert!(out.is_empty(), "stdout stays data-only: {out}");

    assert_eq!(main_secret(&h), NEW);
    assert!(pending(&h).is_none(), "the pending entry is gone");
    let token = session_token(&h);
    assert!(token.starts_with("faketoken"), "the new session is stored");
    assert_eq!(
        *h.kite.secrets_used.lock().unwrap(),
        [NEW],
        "verified with the new secret"
    );
    assert_eq!(
        h.kite.calls(),
        ["create_session(rt0123456789)", "profile", "invalidate"],
        "the old token is revoked after the verifying login"
    );

    // The console page of this app was opened first, then the login.
    let urls = b.urls();
    assert_eq!(
        urls[0].as_str(),
        "https://developers.kite.trade/apps/abcd1234efgh5678"
    );
    assert!(err.contains("https://developers.kite.trade/apps/abcd1234efgh5678"));
    assert!(urls[1].as_str().contains("/connect/login"));

    // A calm checklist: six numbered steps, each action ticked.
    for n in 1..=6 {
        assert!(err.contains(&format!("Step {n} of 6")), "step {n}: {err}");
    }
    for tick in [
        "✓ Saved the new secret as pending",
        "✓ The new secret works",
        "✓ Replaced the api_secret",
        "✓ Stored the new access token",
        "✓ Revoked the previous access token at Kite",
        "✓ Removed the pending entry",
        "✓ Done",
    ] {
        assert!(err.contains(tick), "{tick:?} missing:\n{err}");
    }
    assert!(err.contains("Kite does not revoke"), "{err}");
    // The leak scan names file:line and the kind, never the value.
    assert!(err.contains(".env:2  old api_secret"), "{err}");
    assert!(err.contains(".bash_history:2  old access_token"), "{err}");
    assert_no_secrets(&err);
}

#[test]
fn the_old_secret_pasted_again_is_refused_and_asked_again() {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    let mut script = script_to_secret(OLD);
    script.push(("new api_secret", Answer::Text(NEW.into())));
    let p = ScriptedPrompter::new(script);
    let b = kite_browser(&h, port);
    let places = Places::planted();
    let a = RegenerateArgs {
        no_scan: true,
        ..args()
    };
    let (r, _, err) = with_ctx(&h, &p, &b, true, "", |ctx| run(ctx, &a, &places.env()));
    assert_eq!(r.unwrap(), 0, "{err}");
    let rejections = p.rejections.lock().unwrap().clone();
    assert_eq!(rejections.len(), 1);
    assert!(rejections[0].contains("old secret"), "{rejections:?}");
    assert_eq!(*h.kite.secrets_used.lock().unwrap(), [NEW]);
    assert_eq!(main_secret(&h), NEW);
}

#[test]
fn no_input_old_secret_on_stdin_is_a_usage_error_and_changes_nothing() {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    let before = h.store.snapshot();
    let a = RegenerateArgs {
        yes: true,
        api_secret_stdin: true,
        ..args()
    };
    let (r, _, err) = regenerate_no_input(&h, port, &a, OLD);
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("old secret"), "{e}");
    assert_eq!(h.store.snapshot(), before);
    assert_no_secrets(&format!("{err}{e}"));
}

#[test]
fn a_secret_from_another_app_gets_invalid_checksum_and_can_be_pasted_again() {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    h.kite
        .fail_session(kite_error(403, "TokenException", "Invalid `checksum`."));
    let mut script = script_to_secret(NEW2);
    script.push(("what do you want to do", Answer::Choose("Paste".into())));
    script.push(("new api_secret", Answer::Text(NEW.into())));
    let a = RegenerateArgs {
        no_scan: true,
        ..args()
    };
    let (r, _, err) = regenerate(&h, port, script, &a, &Places::planted());
    assert_eq!(r.unwrap(), 0, "{err}");
    assert!(err.contains("Invalid checksum"), "{err}");
    assert!(err.contains("old secret was pasted again"), "{err}");
    assert!(err.contains("another app"), "{err}");
    assert_eq!(*h.kite.secrets_used.lock().unwrap(), [NEW2, NEW]);
    assert_eq!(main_secret(&h), NEW);
    assert!(pending(&h).is_none());
}

#[test]
fn stopping_after_a_failed_verification_keeps_the_pending_secret_for_resume() {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    h.kite
        .fail_session(kite_error(403, "TokenException", "Invalid `checksum`."));
    let mut script = script_to_secret(NEW);
    script.push(("what do you want to do", Answer::Choose("Stop".into())));
    let (r, _, err) = regenerate(&h, port, script, &args(), &Places::planted());
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 4, "Kite rejected the login: {e}");
    assert!(
        e.hint(&RunFlags::default()).unwrap().contains("--resume"),
        "{:?}",
        e.hint(&RunFlags::default())
    );
    assert!(err.contains("Nothing is lost"), "{err}");
    assert_eq!(main_secret(&h), OLD, "the current secret is untouched");
    let p = pending(&h).expect("pending kept");
    assert_eq!((p.api_secret.expose(), p.step.as_str()), (NEW, "captured"));
    assert_eq!(session_token(&h), OLD_TOKEN);

    // Later: --resume verifies the pending secret and completes.
    let (r, _, err) = regenerate_no_input(&h, port, &resume_args(), "");
    assert_eq!(r.unwrap(), 0, "{err}");
    assert_eq!(main_secret(&h), NEW);
    assert!(pending(&h).is_none());
    assert_eq!(invalidations(&h), 1, "the old token revoked once");
}

#[test]
fn no_input_verification_failure_exits_with_the_resume_hint() {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    h.kite
        .fail_session(kite_error(403, "TokenException", "Invalid `checksum`."));
    let a = RegenerateArgs {
        yes: true,
        api_secret_stdin: true,
        ..args()
    };
    let (r, _, err) = regenerate_no_input(&h, port, &a, NEW);
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 4);
    assert!(err.contains("Invalid checksum"), "{err}");
    assert!(e.hint(&RunFlags::default()).unwrap().contains("--abort"));
    assert_eq!(main_secret(&h), OLD);
    assert_eq!(pending(&h).unwrap().step, "captured");
}

#[test]
fn a_revoke_kite_rejects_is_fine() {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    h.kite
        .invalidate_failures
        .lock()
        .unwrap()
        .push_back(kite_error(
            403,
            "TokenException",
            "Incorrect `api_key` or `access_token`.",
        ));
    let a = RegenerateArgs {
        yes: true,
        api_secret_stdin: true,
        no_scan: true,
        ..args()
    };
    let (r, _, err) = regenerate_no_input(&h, port, &a, NEW);
    assert_eq!(r.unwrap(), 0, "{err}");
    assert!(
        err.contains("already rejects the previous access token"),
        "{err}"
    );
    assert!(pending(&h).is_none());
    assert_eq!(main_secret(&h), NEW);
}

#[test]
fn an_unreachable_kite_at_the_revoke_is_warned_and_resume_finishes_it() {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    h.kite
        .invalidate_failures
        .lock()
        .unwrap()
        .push_back(KiteError::Timeout {
            host: "api.kite.trade".into(),
            seconds: 15,
        });
    let a = RegenerateArgs {
        yes: true,
        api_secret_stdin: true,
        ..args()
    };
    let (r, _, err) = regenerate_no_input(&h, port, &a, NEW);
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert!(e.to_string().contains("could not revoke"), "{e}");
    assert!(
        e.hint(&RunFlags::default())
            .unwrap()
            .contains("regenerate --resume")
    );
    assert!(
        err.contains("Could not revoke the previous access token"),
        "{err}"
    );
    assert!(
        err.contains("Step 6 of 6"),
        "the leak scan still runs: {err}"
    );
    // The new secret and token are in place; the old token waits in the pending entry.
    assert_eq!(main_secret(&h), NEW);
    assert!(session_token(&h).starts_with("faketoken"));
    let p = pending(&h).unwrap();
    assert_eq!(p.step, "swapped");
    assert_eq!(p.old_access_token.unwrap().expose(), OLD_TOKEN);

    let (r, _, err) = regenerate_no_input(&h, port, &resume_args(), "");
    assert_eq!(r.unwrap(), 0, "{err}");
    assert!(err.contains("Revoked the previous access token"), "{err}");
    assert!(pending(&h).is_none());
    assert_eq!(invalidations(&h), 2);
    assert_eq!(
        h.kite.secrets_used.lock().unwrap().len(),
        1,
        "no second login"
    );
}

#[test]
fn a_keyring_failing_mid_swap_keeps_the_old_secret_and_the_pending_one() {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    *h.store.fail_writes_to.lock().unwrap() = Some(entries().app());
    let a = RegenerateArgs {
        yes: true,
        api_secret_stdin: true,
        no_scan: true,
        ..args()
    };
    let (r, _, err) = regenerate_no_input(&h, port, &a, NEW);
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert!(
        e.to_string().contains("could not write the new secret"),
        "{e}"
    );
    assert!(e.hint(&RunFlags::default()).unwrap().contains("--resume"));
    assert!(err.contains("Nothing is lost"), "{err}");
    assert_eq!(main_secret(&h), OLD, "the old secret is intact");
    assert_eq!(session_token(&h), OLD_TOKEN);
    let p = pending(&h).unwrap();
    assert_eq!((p.api_secret.expose(), p.step.as_str()), (NEW, "verified"));
    assert_eq!(invalidations(&h), 0, "nothing revoked before the swap");

    *h.store.fail_writes_to.lock().unwrap() = None;
    let (r, _, err) = regenerate_no_input(&h, port, &resume_args(), "");
    assert_eq!(r.unwrap(), 0, "{err}");
    assert_eq!(main_secret(&h), NEW);
    assert!(session_token(&h).starts_with("faketoken"));
    assert!(pending(&h).is_none());
    assert_eq!(invalidations(&h), 1);
    assert_eq!(
        h.kite.secrets_used.lock().unwrap().len(),
        1,
        "the verified session is reused"
    );
}

/// Ctrl-C at `at` (the index of the scripted question to interrupt).
fn interrupt_at(script: Vec<(&'static str, Answer)>, at: usize) -> (Harness, Error) {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    h.kite
        .fail_session(kite_error(403, "TokenException", "Invalid `checksum`."));
    let mut s: Vec<_> = script.into_iter().take(at).collect();
    let q = if at < 3 {
        ["start", "new secret is on the screen", "new api_secret"][at]
    } else {
        "what do you want to do"
    };
    s.push((q, Answer::Interrupt));
    let (r, _, _) = regenerate(&h, port, s, &args(), &Places::planted());
    (h, r.unwrap_err())
}

#[test]
fn ctrl_c_at_each_prompt_exits_130_and_keeps_what_was_stored() {
    let script = script_to_secret(NEW);
    let mut covered = 0;
    for at in 0..3 {
        let (h, e) = interrupt_at(script.clone(), at);
        assert_eq!(e.exit_code(), 130, "prompt {at}");
        assert!(pending(&h).is_none(), "nothing pending before the paste");
        assert_eq!(main_secret(&h), OLD);
        assert_eq!(session_token(&h), OLD_TOKEN);
        covered += 1;
    }
    // After a failed verification: the pending entry is already persisted and stays.
    let (h, e) = interrupt_at(script, 3);
    assert_eq!(e.exit_code(), 130);
    assert_eq!(main_secret(&h), OLD);
    assert_eq!(pending(&h).unwrap().step, "captured");
    covered += 1;
    assert_eq!(covered, 4);
}

/// A harness whose rotation stopped at `Captured` (a real run whose verification failed).
fn interrupted_at_captured() -> (Harness, u16) {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    h.kite
        .fail_session(kite_error(403, "TokenException", "Invalid `checksum`."));
    let a = RegenerateArgs {
        yes: true,
        api_secret_stdin: true,
        ..args()
    };
    let (r, _, _) = regenerate_no_input(&h, port, &a, NEW);
    assert!(r.is_err());
    assert_eq!(pending(&h).unwrap().step, Step::Captured.as_str());
    (h, port)
}

#[test]
fn a_plain_run_with_a_pending_rotation_offers_resume_abort_quit() {
    let (h, port) = interrupted_at_captured();
    let before: BTreeMap<String, String> = h.store.snapshot();

    // Without a terminal: a usage error naming both ways on.
    let a = RegenerateArgs {
        yes: true,
        api_secret_stdin: true,
        ..args()
    };
    let (r, _, _) = regenerate_no_input(&h, port, &a, NEW2);
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.hint(&RunFlags::default()).unwrap().contains("--resume")
            && e.hint(&RunFlags::default()).unwrap().contains("--abort")
    );
    assert_eq!(h.store.snapshot(), before);

    // Interactive: quit, Ctrl-C at the choice, then resume.
    let (r, _, err) = regenerate(
        &h,
        port,
        vec![("what now", Answer::Choose("Quit".into()))],
        &args(),
        &Places::planted(),
    );
    assert_eq!(r.unwrap(), 0);
    assert!(err.contains("was interrupted"), "{err}");
    assert_eq!(h.store.snapshot(), before);
    let (r, _, _) = regenerate(
        &h,
        port,
        vec![("what now", Answer::Interrupt)],
        &args(),
        &Places::planted(),
    );
    assert_eq!(r.unwrap_err().exit_code(), 130);
    assert_eq!(h.store.snapshot(), before);

    let (r, _, err) = regenerate(
        &h,
        port,
        vec![("what now", Answer::Choose("Resume".into()))],
        &args(),
        &Places::planted(),
    );
    assert_eq!(r.unwrap(), 0, "{err}");
    assert_eq!(main_secret(&h), NEW);
    assert!(pending(&h).is_none());
    assert!(
        err.contains(".env:2  old api_secret"),
        "the scan runs after a resume: {err}"
    );
}

#[test]
fn abort_asks_then_drops_only_the_pending_secret() {
    let (h, port) = interrupted_at_captured();
    let before = h.store.snapshot();
    let abort = RegenerateArgs {
        abort: true,
        ..args()
    };
    // --no-input without --yes: refused.
    let (r, _, _) = regenerate_no_input(&h, port, &abort, "");
    assert_eq!(r.unwrap_err().exit_code(), 2);
    assert_eq!(h.store.snapshot(), before);
    // Interactive: No, then Ctrl-C, change nothing.
    for (answer, code) in [(Answer::No, 0), (Answer::Interrupt, 130)] {
        let (r, _, _) = regenerate(
            &h,
            port,
            vec![("drop the pending secret", answer)],
            &abort,
            &Places::planted(),
        );
        assert_eq!(r.unwrap_or_else(|e| e.exit_code()), code);
        assert_eq!(h.store.snapshot(), before);
    }
    let (r, _, err) = regenerate(
        &h,
        port,
        vec![("drop the pending secret", Answer::Yes)],
        &abort,
        &Places::planted(),
    );
    assert_eq!(r.unwrap(), 0);
    assert!(err.contains("✓ Dropped the pending secret"), "{err}");
    assert!(pending(&h).is_none());
    assert_eq!(main_secret(&h), OLD);
    assert_eq!(session_token(&h), OLD_TOKEN);

    // Nothing left to abort or resume.
    let (r, _, err) = regenerate_no_input(&h, port, &resume_args(), "");
    assert_eq!(r.unwrap(), 0);
    assert!(err.contains("nothing to resume"), "{err}");
}

#[test]
fn abort_after_verification_revokes_the_unused_new_token() {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    *h.store.fail_writes_to.lock().unwrap() = Some(entries().app());
    let a = RegenerateArgs {
        yes: true,
        api_secret_stdin: true,
        ..args()
    };
    let (r, _, _) = regenerate_no_input(&h, port, &a, NEW);
    assert!(r.is_err());
    assert_eq!(pending(&h).unwrap().step, "verified");
    let abort = RegenerateArgs {
        abort: true,
        yes: true,
        ..args()
    };
    let (r, _, _) = regenerate_no_input(&h, port, &abort, "");
    assert_eq!(r.unwrap(), 0);
    assert!(pending(&h).is_none());
    assert_eq!(
        invalidations(&h),
        1,
        "the verifying login's token is revoked"
    );
    assert_eq!(main_secret(&h), OLD);
}

#[test]
fn no_input_needs_yes_and_the_secret_on_stdin() {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    let before = h.store.snapshot();
    let (r, _, _) = regenerate_no_input(
        &h,
        port,
        &RegenerateArgs {
            api_secret_stdin: true,
            ..args()
        },
        NEW,
    );
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.hint(&RunFlags::default()).unwrap().contains("--yes"),
        "{:?}",
        e.hint(&RunFlags::default())
    );
    let (r, _, _) = regenerate_no_input(
        &h,
        port,
        &RegenerateArgs {
            yes: true,
            ..args()
        },
        NEW,
    );
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("--api-secret-stdin"), "{e}");
    assert_eq!(h.store.snapshot(), before);
}

#[test]
fn no_input_happy_path() {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    let a = RegenerateArgs {
        yes: true,
        api_secret_stdin: true,
        ..args()
    };
    let (r, out, err) = regenerate_no_input(&h, port, &a, &format!("  {NEW}  "));
    assert_eq!(r.unwrap(), 0, "{err}");
    assert!(out.is_empty());
    assert_eq!(main_secret(&h), NEW, "trimmed");
    assert!(pending(&h).is_none());
    assert_eq!(invalidations(&h), 1);
    assert!(err.contains("Found 2 plain-text copies"), "{err}");
    assert_no_secrets(&err);
}

#[test]
fn a_lost_secret_is_replaced_after_asking_for_the_api_key() {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    h.store.delete(&entries().app()).unwrap();
    h.store.delete(&entries().session()).unwrap();
    let script = vec![
        ("start", Answer::Yes),
        ("api_key", Answer::Text(KEY.into())),
        ("new secret is on the screen", Answer::Enter),
        ("new api_secret", Answer::Text(NEW.into())),
    ];
    let (r, _, err) = regenerate(&h, port, script, &args(), &Places::planted());
    assert_eq!(r.unwrap(), 0, "{err}");
    assert!(err.contains("lost secret"), "{err}");
    assert!(err.contains("nothing to revoke"), "{err}");
    assert!(err.contains("Nothing to look for"), "{err}");
    assert_eq!(main_secret(&h), NEW);
    assert_eq!(invalidations(&h), 0);
}

#[test]
fn daily_commands_mention_an_interrupted_rotation_on_stderr_only() {
    let (h, _) = interrupted_at_captured();
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::new();
    let (r, out, err) = with_ctx(&h, &p, &b, false, "", super::token::run);
    assert_eq!(r.unwrap(), 0);
    assert_eq!(
        out,
        format!("{OLD_TOKEN}\n"),
        "stdout stays the token alone"
    );
    assert!(err.contains("regenerate --resume"), "{err}");
    let env_args = crate::cli::EnvArgs {
        format: crate::cli::EnvFormat::Sh,
        with_secret: false,
        dotenv: None,
        force: false,
    };
    let (r, out, err) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::env::run(ctx, &env_args, &|_| None)
    });
    assert_eq!(r.unwrap(), 0);
    assert!(
        out.contains("KITE_ACCESS_TOKEN") && !out.contains("rotation"),
        "{out}"
    );
    assert!(err.contains("regenerate --resume"), "{err}");
}

#[test]
fn a_crash_inside_the_swap_is_repaired_by_resume() {
    // The main entry is written, the session entry is not: the step is still `Verified`
    // with the new secret already in the main entry. Resume writes both again.
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    *h.store.fail_writes_to.lock().unwrap() = Some(entries().session());
    let a = RegenerateArgs {
        yes: true,
        api_secret_stdin: true,
        no_scan: true,
        ..args()
    };
    let (r, _, _) = regenerate_no_input(&h, port, &a, NEW);
    assert_eq!(r.unwrap_err().exit_code(), 1);
    assert_eq!(main_secret(&h), NEW, "main written before the failure");
    assert_eq!(pending(&h).unwrap().step, "verified");
    assert_eq!(session_token(&h), OLD_TOKEN);
    assert_eq!(
        invalidations(&h),
        0,
        "the old token still serves until the swap ends"
    );

    *h.store.fail_writes_to.lock().unwrap() = None;
    let (r, _, err) = regenerate_no_input(&h, port, &resume_args(), "");
    assert_eq!(r.unwrap(), 0, "{err}");
    assert_eq!(main_secret(&h), NEW);
    assert!(session_token(&h).starts_with("faketoken"));
    assert!(pending(&h).is_none());
    assert_eq!(invalidations(&h), 1);
}
