//! Flow tests: every command's branches over fakes (scripted prompter, memory store,
//! fake Kite, fixed clock) and the real loopback listener, with a "browser" that plays
//! Kite's redirect. Binary-level tests against the sandbox and a real keyring are in tests/.
#![allow(clippy::many_single_char_names)] // h, p, b, r, e: harness, prompter, browser, result, error

use std::sync::atomic::AtomicU16;

use crate::cli::{EnvArgs, EnvFormat, InitArgs, LoginArgs, Plan, RemoveArgs, StatusArgs};
use crate::error::{Error, RunFlags};
use crate::kite::KiteError;
use crate::store::{AppCredentials, Entries, Store, StoreError, get_json, set_json_verified};
use crate::testkit::{
    Answer, Harness, OK_QUERY, RecordingBrowser, ScriptedPrompter, kite_browser, kite_error,
    redirect_url, with_ctx,
};

const KEY: &str = "abcd1234efgh5678";
const SECRET: &str = "s3cr3tS3CR3Ts3cr3tS3CR3Ts3cr3t12";
const SECRET2: &str = "n3wn3wN3WN3Wn3wn3wN3WN3Wn3wn3w99";

/// A port in the range init searches (5123-5322), a new one per call so that no two
/// logins of a test share a redirect URL. Nothing binds it: logins go through the
/// harness's fake redirect.
fn test_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(5200);
    let p = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    assert!(p < 5320, "ran out of test ports");
    p
}

fn init_args() -> InitArgs {
    InitArgs {
        timeout: 5,
        ..InitArgs::default()
    }
}

fn wizard_script(extra: Vec<(&'static str, Answer)>) -> Vec<(&'static str, Answer)> {
    let mut s = vec![
        ("client id", Answer::Text(" ab1234 ".into())),
        ("logged in to the console", Answer::Enter),
        ("plan", Answer::Choose("Personal".into())),
        ("api_key", Answer::Text(KEY.into())),
        ("api_secret", Answer::Text(SECRET.into())),
    ];
    s.extend(extra);
    s
}

fn stored_app(h: &Harness) -> Option<AppCredentials> {
    get_json(
        h.store.as_ref(),
        &Entries::new("default", false, Some("default")).app(),
    )
    .unwrap()
}

fn config_exists(h: &Harness) -> bool {
    h.config_dir.path().join("config.toml").exists()
}

/// Nothing stored, nothing written (the probe entry is gone too).
fn assert_untouched(h: &Harness) {
    assert!(
        h.store.snapshot().is_empty(),
        "store: {:?}",
        h.store.snapshot().keys().collect::<Vec<_>>()
    );
    assert!(!config_exists(h));
}

#[test]
fn init_wizard_happy_path_stores_verified_credentials() {
    let h = Harness::new("AB1234");
    let port = test_port();
    let p = ScriptedPrompter::new(wizard_script(vec![]));
    let b = kite_browser(&h, port, OK_QUERY);
    let (r, out, err) = with_ctx(&h, &p, &b, true, "", |ctx| {
        super::init::run(ctx, &init_args(), &|x| x == port)
    });
    assert_eq!(r.unwrap(), 0, "{err}");
    assert!(out.is_empty(), "stdout must stay data-only: {out}");
    let app = stored_app(&h).expect("app stored");
    assert_eq!(
        (app.api_key.expose(), app.api_secret.expose()),
        (KEY, SECRET)
    );
    let session = crate::store::load_session(
        h.store.as_ref(),
        &Entries::new("default", false, Some("default")),
    )
    .unwrap()
    .unwrap();
    assert_eq!(session.user_id, "AB1234");
    assert_eq!(
        crate::session::format_ist(session.expires_at),
        "2026-11-27 06:00:00"
    );
    let cfg = crate::profile::ConfigFile::new(h.config_dir.path().to_path_buf())
        .load()
        .unwrap();
    let meta = cfg.get("default", false).unwrap();
    assert_eq!(meta.client_id, "AB1234");
    assert_eq!(meta.redirect_url, redirect_url(port));
    assert!(meta.verified);
    let text = std::fs::read_to_string(h.config_dir.path().join("config.toml")).unwrap();
    assert!(!text.contains(SECRET) && !text.contains(KEY) && !text.contains("faketoken"));
    assert!(
        err.contains(&redirect_url(port)),
        "the form values are shown: {err}"
    );
    assert!(err.contains("Postback URL"));
    assert!(!err.contains(SECRET), "secret on the terminal");
    assert_eq!(h.kite.calls(), ["create_session(rt0123456789)", "profile"]);
    assert!(err.contains("kite-setup exec -- python bot.py"));
    // The console and the login page were both opened.
    let urls = b.urls();
    assert!(
        urls[0]
            .as_str()
            .starts_with("https://developers.kite.trade")
    );
    assert!(urls[1].as_str().contains("api_key=abcd1234efgh5678"));
    assert!(urls[1].as_str().contains("redirect_params=state%3D"));
}

#[test]
fn init_checksum_failure_lets_the_user_fix_only_the_secret() {
    let h = Harness::new("AB1234");
    h.kite
        .fail_session(kite_error(403, "TokenException", "Invalid `checksum`."));
    let port = test_port();
    let p = ScriptedPrompter::new(wizard_script(vec![
        (
            "what do you want to do",
            Answer::Choose("api_secret".into()),
        ),
        ("api_secret", Answer::Text(SECRET2.into())),
    ]));
    let b = kite_browser(&h, port, OK_QUERY);
    let (r, _, err) = with_ctx(&h, &p, &b, true, "", |ctx| {
        super::init::run(ctx, &init_args(), &|x| x == port)
    });
    assert_eq!(r.unwrap(), 0, "{err}");
    assert!(err.contains("Invalid checksum"), "{err}");
    assert_eq!(*h.kite.secrets_used.lock().unwrap(), [SECRET, SECRET2]);
    let app = stored_app(&h).unwrap();
    assert_eq!(
        (app.api_key.expose(), app.api_secret.expose()),
        (KEY, SECRET2),
        "key kept, secret replaced"
    );
}

#[test]
fn init_wrong_key_or_lapsed_plan_offers_the_key() {
    let h = Harness::new("AB1234");
    h.kite.fail_session(kite_error(
        403,
        "TokenException",
        "Incorrect `api_key` or `access_token`.",
    ));
    let port = test_port();
    let other_key = "zzzz1234yyyy5678";
    let p = ScriptedPrompter::new(wizard_script(vec![
        ("what do you want to do", Answer::Choose("api_key".into())),
        ("api_key", Answer::Text(other_key.into())),
    ]));
    let b = kite_browser(&h, port, OK_QUERY);
    let (r, _, err) = with_ctx(&h, &p, &b, true, "", |ctx| {
        super::init::run(ctx, &init_args(), &|x| x == port)
    });
    assert_eq!(r.unwrap(), 0);
    assert!(err.contains("subscription"), "names both causes: {err}");
    assert_eq!(stored_app(&h).unwrap().api_key.expose(), other_key);
}

#[test]
fn init_expired_request_token_retries_the_login() {
    let h = Harness::new("AB1234");
    h.kite.fail_session(kite_error(
        403,
        "TokenException",
        "Token is invalid or has expired.",
    ));
    let port = test_port();
    let p = ScriptedPrompter::new(wizard_script(vec![(
        "what do you want to do",
        Answer::Choose("Try the login again".into()),
    )]));
    let b = kite_browser(&h, port, OK_QUERY);
    let (r, _, err) = with_ctx(&h, &p, &b, true, "", |ctx| {
        super::init::run(ctx, &init_args(), &|x| x == port)
    });
    assert_eq!(r.unwrap(), 0);
    assert!(err.contains("5 minutes"), "{err}");
    assert_eq!(
        h.kite
            .calls()
            .iter()
            .filter(|c| c.starts_with("create_session"))
            .count(),
        2
    );
}

fn init_fails_and_stores_nothing(
    h: &Harness,
    port: u16,
    browser_query: &'static str,
    timeout: u64,
) -> (Error, String) {
    let p = ScriptedPrompter::new(wizard_script(vec![(
        "what do you want to do",
        Answer::Choose("Quit".into()),
    )]));
    let b = kite_browser(h, port, browser_query);
    let args = InitArgs {
        timeout,
        ..InitArgs::default()
    };
    let (r, _, err) = with_ctx(h, &p, &b, true, "", |ctx| {
        super::init::run(ctx, &args, &|x| x == port)
    });
    assert_untouched(h);
    (r.unwrap_err(), err)
}

#[test]
fn init_user_not_enabled_quits_with_nothing_stored() {
    let h = Harness::new("AB1234");
    h.kite.fail_session(kite_error(
        400,
        "InputException",
        "The user is not enabled for the app.",
    ));
    let (e, err) = init_fails_and_stores_nothing(&h, test_port(), OK_QUERY, 5);
    assert!(err.contains("not enabled"), "{err}");
    assert_eq!(e.exit_code(), 1);
    assert!(e.hint(&RunFlags::default()).unwrap().contains("client ID"));
}

#[test]
fn init_user_id_mismatch_is_caught_and_the_stray_token_revoked() {
    let h = Harness::new("ZZ9999");
    let (e, err) = init_fails_and_stores_nothing(&h, test_port(), OK_QUERY, 5);
    assert!(err.contains("ZZ9999") && err.contains("AB1234"), "{err}");
    assert!(e.to_string().contains("ZZ9999"));
    assert!(h.kite.calls().contains(&"invalidate".to_string()));
}

#[test]
fn init_cancelled_authorisation() {
    let h = Harness::new("AB1234");
    let (e, err) = init_fails_and_stores_nothing(&h, test_port(), "status=cancelled", 5);
    assert!(err.contains("cancelled"), "{err}");
    assert!(e.hint(&RunFlags::default()).unwrap().contains("Authorize"));
}

#[test]
fn init_no_redirect_shows_the_url_and_times_out() {
    let h = Harness::new("AB1234");
    let port = test_port();
    let p = ScriptedPrompter::new(wizard_script(vec![(
        "what do you want to do",
        Answer::Choose("Quit".into()),
    )]));
    let b = RecordingBrowser::new();
    let args = InitArgs {
        timeout: 1,
        ..InitArgs::default()
    };
    let (r, _, err) = with_ctx(&h, &p, &b, true, "", |ctx| {
        super::init::run(ctx, &args, &|x| x == port)
    });
    let e = r.unwrap_err();
    assert!(err.contains("No login redirect arrived"), "{err}");
    assert!(e.to_string().contains(&redirect_url(port)));
    assert_untouched(&h);
}

#[test]
fn init_wrong_registered_redirect_url_can_be_corrected() {
    // The app was registered with another port: the first login never arrives; the user
    // enters the registered URL and the retry succeeds there.
    let h = Harness::new("AB1234");
    let ours = test_port();
    let registered = test_port();
    let registered_url = redirect_url(registered);
    let p = ScriptedPrompter::new(wizard_script(vec![
        (
            "what do you want to do",
            Answer::Choose("redirect URL".into()),
        ),
        ("redirect url", Answer::Text(registered_url.clone())),
    ]));
    let b = kite_browser(&h, registered, OK_QUERY);
    let args = InitArgs {
        timeout: 1,
        ..InitArgs::default()
    };
    let (r, _, err) = with_ctx(&h, &p, &b, true, "", |ctx| {
        super::init::run(ctx, &args, &|x| x == ours)
    });
    assert_eq!(r.unwrap(), 0, "{err}");
    let cfg = crate::profile::ConfigFile::new(h.config_dir.path().to_path_buf())
        .load()
        .unwrap();
    assert_eq!(
        cfg.get("default", false).unwrap().redirect_url,
        registered_url
    );
}

#[test]
fn init_keyring_unavailable_fails_before_any_question() {
    let h = Harness::new("AB1234");
    *h.store.fail_with.lock().unwrap() = Some(StoreError::Unavailable {
        backend: "Secret Service".into(),
        detail: "no D-Bus".into(),
    });
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::new();
    let (r, _, _) = with_ctx(&h, &p, &b, true, "", |ctx| {
        super::init::run(ctx, &init_args(), &|_| true)
    });
    let e = r.unwrap_err();
    assert!(
        matches!(e, Error::Store(StoreError::Unavailable { .. })),
        "{e:?}"
    );
    assert!(
        e.hint(&RunFlags::default())
            .unwrap()
            .contains("--store keyutils")
    );
    assert!(p.asked.lock().unwrap().is_empty());
    assert!(!config_exists(&h));
}

#[test]
fn init_ctrl_c_at_the_secret_prompt_changes_nothing() {
    let h = Harness::new("AB1234");
    let p = ScriptedPrompter::new(vec![
        ("client id", Answer::Text("AB1234".into())),
        ("logged in to the console", Answer::Enter),
        ("plan", Answer::Choose("Connect".into())),
        ("api_key", Answer::Text(KEY.into())),
        ("api_secret", Answer::Interrupt),
    ]);
    let b = RecordingBrowser::new();
    let (r, _, _) = with_ctx(&h, &p, &b, true, "", |ctx| {
        super::init::run(ctx, &init_args(), &|_| true)
    });
    let e = r.unwrap_err();
    assert!(matches!(e, Error::Interrupted));
    assert_eq!(e.exit_code(), 130);
    assert_untouched(&h);
}

#[test]
fn init_rejects_bad_input_and_asks_again() {
    let h = Harness::new("AB1234");
    let port = test_port();
    let p = ScriptedPrompter::new(vec![
        ("client id", Answer::Text("A1".into())),
        ("client id", Answer::Text("AB1234".into())),
        ("logged in to the console", Answer::Enter),
        ("plan", Answer::Choose("Personal".into())),
        ("api_key", Answer::Text(format!("\"{KEY}\""))),
        ("api_key", Answer::Text(KEY.into())),
        ("api_secret", Answer::Text(KEY.into())),
        (
            "api_secret",
            Answer::Text("has space in it 0123456789abcdef".into()),
        ),
        ("api_secret", Answer::Text(SECRET.into())),
    ]);
    let b = kite_browser(&h, port, OK_QUERY);
    let (r, _, _) = with_ctx(&h, &p, &b, true, "", |ctx| {
        super::init::run(ctx, &init_args(), &|x| x == port)
    });
    assert_eq!(r.unwrap(), 0);
    let rejections = p.rejections.lock().unwrap().clone();
    assert_eq!(rejections.len(), 4, "{rejections:?}");
    assert!(rejections[1].contains("quotes"));
    assert!(
        rejections[2].contains("api_key"),
        "the key pasted as the secret: {rejections:?}"
    );
    assert!(
        rejections
            .iter()
            .all(|m| !m.contains(SECRET) && !m.contains(KEY))
    );
}

#[test]
fn init_existing_profile_is_not_overwritten_without_asking() {
    let h = Harness::new("AB1234");
    let port = test_port();
    {
        let p = ScriptedPrompter::new(wizard_script(vec![]));
        let b = kite_browser(&h, port, OK_QUERY);
        let (r, _, _) = with_ctx(&h, &p, &b, true, "", |ctx| {
            super::init::run(ctx, &init_args(), &|x| x == port)
        });
        r.unwrap();
    }
    let before = h.store.snapshot();
    let config_before = std::fs::read(h.config_dir.path().join("config.toml")).unwrap();
    let p = ScriptedPrompter::new(vec![("what now", Answer::Choose("Quit".into()))]);
    let b = RecordingBrowser::new();
    let (r, _, err) = with_ctx(&h, &p, &b, true, "", |ctx| {
        super::init::run(ctx, &init_args(), &|x| x == port)
    });
    assert_eq!(r.unwrap(), 0);
    assert!(err.contains("already exists"));
    assert_eq!(h.store.snapshot(), before);
    assert_eq!(
        std::fs::read(h.config_dir.path().join("config.toml")).unwrap(),
        config_before
    );
}

#[test]
fn init_keyring_failing_mid_write_restores_the_previous_entries() {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    let before = h.store.snapshot();
    let config_before = std::fs::read(h.config_dir.path().join("config.toml")).unwrap();
    // The new app entry is written, then the session write fails.
    *h.store.fail_writes_to.lock().unwrap() =
        Some(Entries::new("default", false, Some("default")).session());
    let mut script = vec![("what now", Answer::Choose("new app".into()))];
    script.extend(wizard_script(vec![]).into_iter().map(|(q, a)| {
        if q == "api_secret" {
            (q, Answer::Text(SECRET2.into()))
        } else {
            (q, a)
        }
    }));
    let p = ScriptedPrompter::new(script);
    let b = kite_browser(&h, port, OK_QUERY);
    let (r, _, _) = with_ctx(&h, &p, &b, true, "", |ctx| {
        super::init::run(ctx, &init_args(), &|x| x == port)
    });
    let e = r.unwrap_err();
    assert!(
        matches!(e, Error::Store(StoreError::Failed { .. })),
        "{e:?}"
    );
    assert_eq!(
        h.store.snapshot(),
        before,
        "the old secret is back in place"
    );
    assert_eq!(
        std::fs::read(h.config_dir.path().join("config.toml")).unwrap(),
        config_before
    );
}

#[test]
fn init_non_interactive_names_each_missing_flag() {
    let full = InitArgs {
        client_id: Some("AB1234".into()),
        api_key: Some(KEY.into()),
        redirect_url: Some(redirect_url(5999)),
        plan: Some(Plan::Personal),
        api_secret_stdin: true,
        skip_verify: true,
        ..init_args()
    };
    let cases: Vec<(&str, InitArgs)> = vec![
        (
            "--client-id",
            InitArgs {
                client_id: None,
                ..full.clone()
            },
        ),
        (
            "--api-key",
            InitArgs {
                api_key: None,
                ..full.clone()
            },
        ),
        (
            "--redirect-url",
            InitArgs {
                redirect_url: None,
                ..full.clone()
            },
        ),
        (
            "--plan",
            InitArgs {
                plan: None,
                ..full.clone()
            },
        ),
        (
            "--api-secret-stdin",
            InitArgs {
                api_secret_stdin: false,
                ..full.clone()
            },
        ),
    ];
    for (flag, args) in cases {
        let h = Harness::new("AB1234");
        let p = ScriptedPrompter::new(vec![]);
        let b = RecordingBrowser::new();
        let (r, _, _) = with_ctx(&h, &p, &b, false, SECRET, |ctx| {
            super::init::run(ctx, &args, &|_| true)
        });
        let e = r.unwrap_err();
        assert_eq!(e.exit_code(), 2, "{flag}");
        assert!(e.to_string().contains(flag), "{flag}: {e}");
        assert_untouched(&h);
    }
    // Bad values are usage errors too, and the secret on stdin is validated.
    for (args, stdin, what) in [
        (
            InitArgs {
                client_id: Some("nope".into()),
                ..full.clone()
            },
            SECRET,
            "--client-id",
        ),
        (
            InitArgs {
                redirect_url: Some("https://example.com/cb".into()),
                ..full.clone()
            },
            SECRET,
            "--redirect-url",
        ),
        (
            InitArgs {
                redirect_url: Some("http://127.0.0.1/cb".into()),
                ..full.clone()
            },
            SECRET,
            "--redirect-url",
        ),
        (full.clone(), KEY, "api_secret"),
        (full.clone(), "", "api_secret"),
    ] {
        let h = Harness::new("AB1234");
        let p = ScriptedPrompter::new(vec![]);
        let b = RecordingBrowser::new();
        let (r, _, _) = with_ctx(&h, &p, &b, false, stdin, |ctx| {
            super::init::run(ctx, &args, &|_| true)
        });
        let e = r.unwrap_err();
        assert_eq!(e.exit_code(), 2, "{what}: {e}");
        assert!(e.to_string().contains(what), "{what}: {e}");
        assert!(!e.to_string().contains(KEY) || what != "api_secret");
        assert_untouched(&h);
    }
}

#[test]
fn init_non_interactive_skip_verify_says_so_and_marks_the_profile() {
    let h = Harness::new("AB1234");
    let args = InitArgs {
        client_id: Some("AB1234".into()),
        api_key: Some(KEY.into()),
        redirect_url: Some(redirect_url(5999)),
        plan: Some(Plan::Connect),
        api_secret_stdin: true,
        skip_verify: true,
        ..init_args()
    };
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::new();
    let (r, out, err) = with_ctx(&h, &p, &b, false, &format!("{SECRET}\n"), |ctx| {
        super::init::run(ctx, &args, &|_| true)
    });
    assert_eq!(r.unwrap(), 0);
    assert!(out.is_empty());
    assert!(err.contains("SKIPPING VERIFICATION"));
    assert_eq!(stored_app(&h).unwrap().api_secret.expose(), SECRET);
    let cfg = crate::profile::ConfigFile::new(h.config_dir.path().to_path_buf())
        .load()
        .unwrap();
    assert!(!cfg.get("default", false).unwrap().verified);
    assert!(h.kite.calls().is_empty());
    // Running it again without --force is refused; with --force it replaces.
    let (r, _, _) = with_ctx(&h, &p, &b, false, SECRET2, |ctx| {
        super::init::run(ctx, &args, &|_| true)
    });
    assert_eq!(r.unwrap_err().exit_code(), 2);
    let forced = InitArgs {
        force: true,
        ..args
    };
    let (r, _, _) = with_ctx(&h, &p, &b, false, SECRET2, |ctx| {
        super::init::run(ctx, &forced, &|_| true)
    });
    assert_eq!(r.unwrap(), 0);
    assert_eq!(stored_app(&h).unwrap().api_secret.expose(), SECRET2);
}

/// A profile set up with today's token, for the daily commands.
fn set_up(h: &Harness, port: u16) {
    let p = ScriptedPrompter::new(wizard_script(vec![]));
    let b = kite_browser(h, port, OK_QUERY);
    let (r, _, _) = with_ctx(h, &p, &b, true, "", |ctx| {
        super::init::run(ctx, &init_args(), &|x| x == port)
    });
    r.unwrap();
}

#[test]
fn login_skips_when_the_token_is_valid_and_forces_a_new_one() {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    let calls_before = h.kite.calls().len();
    let p = ScriptedPrompter::new(vec![]);
    let b = kite_browser(&h, port, OK_QUERY);
    let (r, _, err) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::login::run(
            ctx,
            &LoginArgs {
                timeout: 5,
                ..LoginArgs::default()
            },
        )
    });
    assert_eq!(r.unwrap(), 0);
    assert!(
        err.contains(
            "Already logged in as Test Trader (AB1234) — valid until 06:00 IST (in 20 h 0 m)"
        ),
        "{err}"
    );
    assert_eq!(h.kite.calls().len(), calls_before);
    let (r, _, err) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::login::run(
            ctx,
            &LoginArgs {
                timeout: 5,
                force: true,
                ..LoginArgs::default()
            },
        )
    });
    assert_eq!(r.unwrap(), 0, "{err}");
    assert!(err.contains("Logged in as Test Trader (AB1234)"), "{err}");
    let s = crate::store::load_session(
        h.store.as_ref(),
        &Entries::new("default", false, Some("default")),
    )
    .unwrap()
    .unwrap();
    assert_eq!(s.access_token.expose(), "faketoken00000000000000000000002");
}

#[test]
fn a_login_just_before_six_ist_warns_and_the_dying_token_is_replaced() {
    let mut h = Harness::new("AB1234");
    // 05:59:59 IST: Kite's token dies at 06:00, one second later.
    h.now = "2026-11-26T00:29:59Z".parse().unwrap();
    h.kite = crate::testkit::FakeKite::new("AB1234", h.now);
    let port = test_port();
    let p = ScriptedPrompter::new(wizard_script(vec![]));
    let b = kite_browser(&h, port, OK_QUERY);
    let (r, _, err) = with_ctx(&h, &p, &b, true, "", |ctx| {
        super::init::run(ctx, &init_args(), &|x| x == port)
    });
    assert_eq!(r.unwrap(), 0, "{err}");
    assert!(!err.contains("in expired"), "{err}");
    assert!(
        err.contains("valid until 2026-11-26 06:00:00 IST (in 1 s)"),
        "{err}"
    );
    assert!(
        err.contains("this token dies at 06:00 IST, in 1 s: log in again after 06:00 IST"),
        "{err}"
    );
    // `login` does not keep a token with a second left: it logs in again.
    let calls_before = h.kite.calls().len();
    let p = ScriptedPrompter::new(vec![]);
    let (r, _, err) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::login::run(
            ctx,
            &LoginArgs {
                timeout: 5,
                ..LoginArgs::default()
            },
        )
    });
    assert_eq!(r.unwrap(), 0, "{err}");
    assert!(!err.contains("Already logged in"), "{err}");
    assert!(err.contains("dies in under 5 minutes"), "{err}");
    assert!(err.contains("Logged in as Test Trader (AB1234)"), "{err}");
    assert!(h.kite.calls().len() > calls_before, "a new login was made");
    let s = crate::store::load_session(
        h.store.as_ref(),
        &Entries::new("default", false, Some("default")),
    )
    .unwrap()
    .unwrap();
    assert_eq!(s.access_token.expose(), "faketoken00000000000000000000002");
}

#[test]
fn env_hands_over_a_dying_token_with_a_warning() {
    let mut h = Harness::new("AB1234");
    h.now = "2026-11-26T00:26:00Z".parse().unwrap(); // 05:56 IST
    h.kite = crate::testkit::FakeKite::new("AB1234", h.now);
    set_up(&h, test_port());
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::default();
    let args = EnvArgs {
        format: EnvFormat::Sh,
        with_secret: false,
        dotenv: None,
        force: false,
    };
    let (r, out, err) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::env::run(ctx, &args, &|_| None)
    });
    assert_eq!(r.unwrap(), 0, "{err}");
    assert!(out.contains("KITE_ACCESS_TOKEN="), "{out}");
    assert!(
        err.contains(
            "the access token dies at 06:00 IST, in 4 m: run `kite-setup login` after 06:00 IST"
        ),
        "{err}"
    );
}

#[test]
fn a_token_that_has_expired_is_described_as_expired_not_in_expired() {
    let h = Harness::new("AB1234");
    let s = crate::session::StoredSession {
        access_token: "t".into(),
        user_id: "AB1234".into(),
        user_name: String::new(),
        login_time: h.now,
        expires_at: h.now,
    };
    let p = ScriptedPrompter::new(vec![]);
    let b = kite_browser(&h, test_port(), OK_QUERY);
    let (text, _, _) = with_ctx(&h, &p, &b, false, "", |ctx| super::login::describe(ctx, &s));
    assert!(text.ends_with("(expired)"), "{text}");
}

#[test]
fn login_by_paste_reads_the_redirected_url_from_stdin() {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    // The "person" copies the address bar after Kite's redirect: built from the login URL
    // the browser was given (it carries the nonce).
    let pasted = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = pasted.clone();
    let to = redirect_url(port);
    let b = RecordingBrowser::acting(move |url| {
        let params: std::collections::HashMap<String, String> =
            url.query_pairs().into_owned().collect();
        *sink.lock().unwrap() = format!("{to}?{OK_QUERY}&{}", params["redirect_params"]);
    });
    let p = ScriptedPrompter::new(vec![]);
    let args = LoginArgs {
        paste: true,
        force: true,
        timeout: 5,
        ..LoginArgs::default()
    };
    let (r, _, err) = with_ctx(&h, &p, &b, false, "", |ctx| {
        let read = || Ok(pasted.lock().unwrap().clone());
        let ctx = crate::commands::Ctx {
            ports: crate::commands::Ports {
                read_stdin_line: &read,
                ..ctx.ports
            },
            ..ctx.clone()
        };
        super::login::run(&ctx, &args)
    });
    assert_eq!(r.unwrap(), 0, "{err}");
    assert!(err.contains("Logged in"), "{err}");
    // A paste without the nonce is refused (exit 2) and the stored session stays.
    let before = h.store.snapshot();
    let (r, _, _) = with_ctx(
        &h,
        &p,
        &RecordingBrowser::new(),
        false,
        &format!("{}?{OK_QUERY}", redirect_url(port)),
        |ctx| super::login::run(ctx, &args),
    );
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert_eq!(h.store.snapshot(), before);
}

#[test]
fn login_whose_profile_check_fails_revokes_the_unstored_token() {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    let before = h.store.snapshot();
    h.kite
        .profile_failures
        .lock()
        .unwrap()
        .push_back(kite_error(503, "NetworkException", "Service unavailable."));
    let p = ScriptedPrompter::new(vec![]);
    let b = kite_browser(&h, port, OK_QUERY);
    let (r, _, _) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::login::run(
            ctx,
            &LoginArgs {
                timeout: 5,
                force: true,
                ..LoginArgs::default()
            },
        )
    });
    assert_eq!(r.unwrap_err().exit_code(), 1);
    assert_eq!(h.store.snapshot(), before);
    let calls = h.kite.calls();
    assert!(
        calls.last().is_some_and(|c| c.starts_with("invalidate")),
        "the new token is revoked: {calls:?}"
    );
}

#[test]
fn login_rejected_by_kite_exits_4_and_keeps_the_old_session() {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    let before = h.store.snapshot();
    h.kite.fail_session(kite_error(
        403,
        "TokenException",
        "Incorrect `api_key` or `access_token`.",
    ));
    let p = ScriptedPrompter::new(vec![]);
    let b = kite_browser(&h, port, OK_QUERY);
    let (r, _, _) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::login::run(
            ctx,
            &LoginArgs {
                timeout: 5,
                force: true,
                ..LoginArgs::default()
            },
        )
    });
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 4);
    assert!(e.hint(&RunFlags::default()).unwrap().contains("billing"));
    assert_eq!(h.store.snapshot(), before);
}

#[test]
fn token_prints_only_the_token_or_exits_4() {
    let h = Harness::new("AB1234");
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::new();
    let (r, out, _) = with_ctx(&h, &p, &b, false, "", super::token::run);
    assert_eq!(r.unwrap_err().exit_code(), 4, "no profile");
    assert!(out.is_empty());
    let port = test_port();
    set_up(&h, port);
    let (r, out, err) = with_ctx(&h, &p, &b, false, "", super::token::run);
    assert_eq!(r.unwrap(), 0);
    assert_eq!(out, "faketoken00000000000000000000001\n");
    assert!(err.is_empty(), "{err}");
    // Past 06:00 IST the token is expired: exit 4 with the time it died.
    let mut later = Harness::new("AB1234");
    later.now = "2026-11-27T00:30:00Z".parse().unwrap();
    later.store = h.store.clone();
    std::fs::copy(
        h.config_dir.path().join("config.toml"),
        later.config_dir.path().join("config.toml"),
    )
    .unwrap();
    let (r, out, _) = with_ctx(&later, &p, &b, false, "", super::token::run);
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 4);
    assert!(
        e.to_string().contains("expired at 2026-11-27 06:00:00 IST"),
        "{e}"
    );
    assert!(out.is_empty());
}

#[test]
fn env_formats_and_secret_only_when_asked() {
    let h = Harness::new("AB1234");
    set_up(&h, test_port());
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::new();
    let args = EnvArgs {
        format: EnvFormat::Sh,
        with_secret: false,
        dotenv: None,
        force: false,
    };
    let (r, out, _) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::env::run(ctx, &args, &|_| None)
    });
    r.unwrap();
    assert_eq!(
        out,
        format!(
            "export KITE_API_KEY='{KEY}'\nexport KITE_ACCESS_TOKEN='faketoken00000000000000000000001'\n"
        )
    );
    let args = EnvArgs {
        format: EnvFormat::Json,
        with_secret: true,
        ..args
    };
    let (r, out, _) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::env::run(ctx, &args, &|_| None)
    });
    r.unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["KITE_API_SECRET"], SECRET);
    // json alone adds, for programs, the client ID, the token's death (06:00 IST after the
    // 10:00 IST login) and the API root; sh above has only the two variables.
    assert_eq!(v["KITE_CLIENT_ID"], "AB1234");
    assert_eq!(v["KITE_ACCESS_TOKEN_EXPIRES_AT"], "2026-11-27T00:30:00Z");
    assert_eq!(v["KITE_API_ROOT"], "https://api.kite.trade/");
    assert_eq!(v.as_object().unwrap().len(), 6, "{v}");
}

#[test]
fn env_dotenv_is_private_and_refused_in_an_unignored_git_path() {
    let h = Harness::new("AB1234");
    set_up(&h, test_port());
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    let args = EnvArgs {
        format: EnvFormat::Sh,
        with_secret: false,
        dotenv: Some(path.clone()),
        force: false,
    };
    let (r, out, _) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::env::run(ctx, &args, &|_| Some(true))
    });
    assert_eq!(r.unwrap_err().exit_code(), 2);
    assert!(!path.exists());
    let (r, out2, _) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::env::run(ctx, &args, &|_| Some(false))
    });
    r.unwrap();
    assert!(out.is_empty() && out2.is_empty());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&format!("KITE_API_KEY=\"{KEY}\"")));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn logout_revokes_then_forgets_and_keeps_the_token_when_kite_is_unreachable() {
    let h = Harness::new("AB1234");
    set_up(&h, test_port());
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::new();
    let entries = Entries::new("default", false, Some("default"));
    h.kite
        .invalidate_failures
        .lock()
        .unwrap()
        .push_back(KiteError::Timeout {
            host: "api.kite.trade".into(),
            seconds: 15,
        });
    let (r, _, _) = with_ctx(&h, &p, &b, false, "", super::logout::logout);
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert!(e.hint(&RunFlags::default()).unwrap().contains("kept"));
    assert!(h.store.get(&entries.session()).unwrap().is_some());
    let (r, _, err) = with_ctx(&h, &p, &b, false, "", super::logout::logout);
    assert_eq!(r.unwrap(), 0);
    assert!(err.contains("Revoked") && err.contains("Forgot"), "{err}");
    assert!(h.store.get(&entries.session()).unwrap().is_none());
    assert!(
        h.store.get(&entries.app()).unwrap().is_some(),
        "credentials stay"
    );
}

#[test]
fn logout_without_an_api_key_says_the_token_cannot_be_revoked_and_forgets_it() {
    let h = Harness::new("AB1234");
    set_up(&h, test_port());
    h.store
        .delete(&Entries::new("default", false, Some("default")).app())
        .unwrap();
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::new();
    let (r, _, err) = with_ctx(&h, &p, &b, false, "", super::logout::logout);
    assert_eq!(r.unwrap(), 0);
    assert!(
        err.contains("No api_key is stored") && err.contains("Forgot"),
        "{err}"
    );
    assert!(!h.kite.calls().contains(&"invalidate".to_string()));
    assert!(
        h.store
            .get(&Entries::new("default", false, Some("default")).session())
            .unwrap()
            .is_none()
    );
}

#[test]
fn logout_forgets_a_token_kite_already_rejects() {
    let h = Harness::new("AB1234");
    set_up(&h, test_port());
    h.kite
        .invalidate_failures
        .lock()
        .unwrap()
        .push_back(kite_error(
            403,
            "TokenException",
            "Incorrect `api_key` or `access_token`.",
        ));
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::new();
    let (r, _, err) = with_ctx(&h, &p, &b, false, "", super::logout::logout);
    assert_eq!(r.unwrap(), 0);
    assert!(err.contains("already rejects"), "{err}");
    assert!(
        h.store
            .get(&Entries::new("default", false, Some("default")).session())
            .unwrap()
            .is_none()
    );
}

#[test]
fn remove_needs_confirmation_and_then_deletes_everything() {
    let h = Harness::new("AB1234");
    set_up(&h, test_port());
    let b = RecordingBrowser::new();
    let p = ScriptedPrompter::new(vec![]);
    let (r, _, _) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::logout::remove(ctx, &RemoveArgs { yes: false })
    });
    assert_eq!(r.unwrap_err().exit_code(), 2);
    assert!(!h.store.snapshot().is_empty());
    let p = ScriptedPrompter::new(vec![("remove profile", Answer::No)]);
    let (r, _, _) = with_ctx(&h, &p, &b, true, "", |ctx| {
        super::logout::remove(ctx, &RemoveArgs { yes: false })
    });
    assert_eq!(r.unwrap(), 0);
    assert!(!h.store.snapshot().is_empty());
    let p = ScriptedPrompter::new(vec![]);
    let (r, _, _) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::logout::remove(ctx, &RemoveArgs { yes: true })
    });
    assert_eq!(r.unwrap(), 0);
    assert!(h.store.snapshot().is_empty());
    assert!(h.kite.calls().contains(&"invalidate".to_string()));
    let cfg = crate::profile::ConfigFile::new(h.config_dir.path().to_path_buf())
        .load()
        .unwrap();
    assert!(cfg.get("default", false).is_none());
}

#[test]
fn status_exit_codes_and_no_secrets() {
    let h = Harness::new("AB1234");
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::new();
    let (r, _, _) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::status::run(ctx, &StatusArgs::default())
    });
    assert_eq!(r.unwrap_err().exit_code(), 4);
    set_up(&h, test_port());
    let (r, out, err) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::status::run(ctx, &StatusArgs { check: true })
    });
    assert_eq!(r.unwrap(), 0);
    assert!(
        err.contains("abcd…5678")
            && err.contains("api_secret  stored")
            && err.contains("Kite accepts"),
        "{err}"
    );
    for text in [&out, &err] {
        assert!(!text.contains(SECRET) && !text.contains(KEY) && !text.contains("faketoken"));
    }
    // The token rejected by Kite at --check: login needed.
    h.kite
        .profile_failures
        .lock()
        .unwrap()
        .push_back(kite_error(
            403,
            "TokenException",
            "Incorrect `api_key` or `access_token`.",
        ));
    let (r, _, err) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::status::run(ctx, &StatusArgs { check: true })
    });
    assert_eq!(r.unwrap(), 4, "{err}");
    // Kite failing at --check (503) is an error (exit 1), not "login needed" (exit 4).
    h.kite
        .profile_failures
        .lock()
        .unwrap()
        .push_back(kite_error(503, "NetworkException", "Service unavailable."));
    let (r, _, err) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::status::run(ctx, &StatusArgs { check: true })
    });
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 1, "{err}");
    assert!(e.to_string().contains("HTTP 503"), "{e}");
    assert!(!err.contains("kite-setup login"), "{err}");
    // A pending rotation is reported.
    set_json_verified(
        h.store.as_ref(),
        &Entries::new("default", false, Some("default")).pending(),
        &serde_json::json!({"x": 1}),
    )
    .unwrap();
    let (_, _, err) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::status::run(ctx, &StatusArgs::default())
    });
    assert!(err.contains("INTERRUPTED"), "{err}");
}

/// `doctor` over the fakes, in a scratch cwd/home with nothing to scan; (code, stderr).
fn doctor(h: &Harness) -> (u8, String) {
    let scratch = tempfile::tempdir().unwrap();
    let port = crate::profile::ConfigFile::new(h.config_dir.path().to_path_buf())
        .load()
        .unwrap()
        .get("default", false)
        .and_then(|m| url::Url::parse(&m.redirect_url).ok())
        .and_then(|u| u.port());
    let machine = super::TestMachine {
        cwd: scratch.path().to_path_buf(),
        home: Some(scratch.path().to_path_buf()),
        histfile: None,
        free_ports: port.into_iter().collect(),
    };
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::new();
    let (r, _, err) = with_ctx(h, &p, &b, false, "", |ctx| {
        super::doctor::run(ctx, &crate::cli::DoctorArgs::default(), &machine)
    });
    (r.unwrap(), err)
}

#[test]
fn doctor_passes_only_for_a_usable_profile() {
    let h = Harness::new("AB1234");
    // No profile yet: the machine is fine, but that is not "all checks passed".
    let (code, err) = doctor(&h);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("All checks passed"), "{err}");
    assert!(
        err.contains(
            "The machine checks passed; profile default is not set up yet: run `kite-setup init`"
        ),
        "{err}"
    );

    set_up(&h, test_port());
    let (code, err) = doctor(&h);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("[ok  ] credentials      api_key abcd…"),
        "{err}"
    );
    assert!(
        err.contains("[ok  ] session          Kite accepts today's token for AB1234 (in 20 h 0 m)"),
        "{err}"
    );
    assert!(err.contains("All checks passed"), "{err}");
}

#[test]
fn doctor_fails_when_the_recorded_store_lacks_the_credentials() {
    let h = Harness::new("AB1234");
    set_up(&h, test_port());
    h.store
        .delete(&Entries::new("default", false, Some("default")).app())
        .unwrap();
    let (code, err) = doctor(&h);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("[FAIL] credentials      no api_key/api_secret stored for profile default in the memory store this profile records"),
        "{err}"
    );
    assert!(err.contains("fix: run `kite-setup init`"), "{err}");
    assert!(!err.contains("All checks passed"), "{err}");
}

#[test]
fn doctor_fails_without_todays_token_or_when_kite_rejects_it() {
    let h = Harness::new("AB1234");
    set_up(&h, test_port());
    let entries = Entries::new("default", false, Some("default"));
    let session = crate::store::load_session(h.store.as_ref(), &entries)
        .unwrap()
        .unwrap();

    // Kite no longer accepts the stored token.
    h.kite
        .profile_failures
        .lock()
        .unwrap()
        .push_back(kite_error(
            403,
            "TokenException",
            "Incorrect `api_key` or `access_token`.",
        ));
    let (code, err) = doctor(&h);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("[FAIL] session          Kite rejects the stored token"),
        "{err}"
    );
    assert!(err.contains("fix: run `kite-setup login --force`"), "{err}");

    // Expired (yesterday's token).
    let mut old = session.clone();
    old.expires_at = h
        .now
        .checked_sub(jiff::SignedDuration::from_hours(4))
        .unwrap();
    set_json_verified(h.store.as_ref(), &entries.session(), &old).unwrap();
    let (code, err) = doctor(&h);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("[FAIL] session          the access token expired at"),
        "{err}"
    );
    assert!(err.contains("`kite-setup login`"), "{err}");

    // None at all.
    h.store.delete(&entries.session()).unwrap();
    let (code, err) = doctor(&h);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("[FAIL] session          no access token for today"),
        "{err}"
    );
    assert!(!err.contains("All checks passed"), "{err}");
}

#[test]
fn doctor_does_not_pass_a_token_kite_could_not_check_or_a_pending_rotation() {
    let h = Harness::new("AB1234");
    set_up(&h, test_port());
    *h.kite.server_time_error.lock().unwrap() = Some(KiteError::Timeout {
        host: "api.kite.trade".into(),
        seconds: 15,
    });
    let (code, err) = doctor(&h);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "[warn] session          today's token is stored (in 20 h 0 m); not checked with Kite"
        ),
        "{err}"
    );
    *h.kite.server_time_error.lock().unwrap() = None;
    h.store
        .set(
            &Entries::new("default", false, Some("default")).pending(),
            &"{}".into(),
        )
        .unwrap();
    let (code, err) = doctor(&h);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("[FAIL] rotation"), "{err}");
    assert!(err.contains("regenerate --resume"), "{err}");
}

/// Doctor's fixes name this run's flags: a busy redirect port sends a `--sandbox-url` run
/// to `init` and `login --paste` with the same `--sandbox-url`, not to the live profile.
#[test]
fn doctor_renders_its_fixes_with_this_runs_flags() {
    let h = Harness::new("AB1234");
    let port = test_port();
    set_up(&h, port);
    let dir = tempfile::tempdir().unwrap();
    let machine = super::TestMachine {
        cwd: dir.path().to_path_buf(),
        home: None,
        histfile: None,
        free_ports: Vec::new(),
    };
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::new();
    let (r, _, err) = with_ctx(&h, &p, &b, false, "", |ctx| {
        let ctx = crate::commands::Ctx {
            sandbox_url: Some("http://127.0.0.1:6000".into()),
            ..ctx.clone()
        };
        super::doctor::run(&ctx, &crate::cli::DoctorArgs::default(), &machine)
    });
    assert_eq!(r.unwrap(), 1, "a busy port is a failed probe: {err}");
    let flags = "kite-setup --sandbox-url http://127.0.0.1:6000";
    assert!(
        err.contains(&format!(
            "register a new redirect URL with `{flags} init`; `{flags} login --paste` works meanwhile"
        )),
        "{err}"
    );
}

/// A child as the fake process saw it: program, arguments, removed and set variables.
type SeenChild = (String, Vec<String>, Vec<String>, Vec<(String, String)>);

/// A process port that records the child it was given and answers as told.
struct RecordingProcess {
    seen: std::sync::Mutex<Vec<SeenChild>>,
    answer: fn() -> std::io::Result<u8>,
}

impl crate::process::Process for RecordingProcess {
    fn exec(&self, child: crate::process::Child) -> std::io::Result<u8> {
        let s = |o: &std::ffi::OsString| o.to_string_lossy().to_string();
        self.seen.lock().unwrap().push((
            s(&child.program),
            child.args.iter().map(s).collect(),
            child.env_remove.iter().map(s).collect(),
            child
                .env_set
                .iter()
                .map(|(k, v)| (k.to_string(), v.expose().to_string()))
                .collect(),
        ));
        (self.answer)()
    }
}

#[test]
fn exec_hands_the_child_fresh_variables_and_exits_as_shells_do() {
    let h = Harness::new("AB1234");
    set_up(&h, test_port());
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::new();
    let args = crate::cli::ExecArgs {
        allow_expired: false,
        with_secret: false,
        command: vec!["python".into(), "bot.py".into(), "--live".into()],
    };
    let ok = RecordingProcess {
        seen: std::sync::Mutex::default(),
        answer: || Ok(3),
    };
    let env_names = vec!["PATH".into(), "KITE_API_SECRET".into(), "KITE_LOG".into()];
    let (r, out, _) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::exec::run(ctx, &args, env_names, &ok)
    });
    assert_eq!(r.unwrap(), 3, "the child's exit code is passed on");
    assert!(out.is_empty(), "{out}");
    let seen = ok.seen.lock().unwrap();
    let (program, child_args, removed, set) = &seen[0];
    assert_eq!(program, "python");
    assert_eq!(child_args, &["bot.py", "--live"]);
    assert_eq!(
        removed,
        &["KITE_API_SECRET"],
        "a stale secret is not inherited"
    );
    let set: Vec<&str> = set.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(set, ["KITE_API_KEY", "KITE_ACCESS_TOKEN"]);
    assert!(seen[0].3.iter().any(|(_, v)| v == KEY));

    let missing = RecordingProcess {
        seen: std::sync::Mutex::default(),
        answer: || Err(std::io::ErrorKind::NotFound.into()),
    };
    let (r, _, _) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::exec::run(ctx, &args, Vec::new(), &missing)
    });
    assert_eq!(r.unwrap_err().exit_code(), 127);
}
