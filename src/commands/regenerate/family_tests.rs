//! Flow tests of `regenerate` for an app two profiles share (a family's client IDs): one
//! rotation of the app's secret, both profiles' old tokens revoked, the other profile
//! logged out and told how to log in, and a crash after each step losing nothing for
//! either profile.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU16, Ordering};

use crate::cli::{Plan, RegenerateArgs, StoreChoice};
use crate::error::{Error, RunFlags};
use crate::profile::{ConfigFile, ProfileMeta};
use crate::session::{StoredSession, expiry_after};
use crate::store::{
    AppCredentials, Entries, OtherToken, PendingSecret, get_json, load_app, load_session,
    set_json_verified,
};
use crate::testkit::{Harness, OK_QUERY, ScriptedPrompter, redirect_url, with_ctx};

use super::rotation::SimulatedCrash;
use super::{RegenerateEnv, Step, run};
use crate::commands::TestMachine;

const KEY: &str = "abcd1234efgh5678";
const OLD: &str = "0ld0ld0LD0LD0ld0ld0LD0LD0ld0ld12";
const NEW: &str = "n3wn3wN3WN3Wn3wn3wN3WN3Wn3wn3w99";
const MY_TOKEN: &str = "mytoken0123456789abcdefghijklmno";
const SPOUSE_TOKEN: &str = "spousetoken0123456789abcdefghijk";
const APP: &str = "family";

fn test_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(5700);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

fn mine() -> Entries {
    Entries::new("default", false, Some(APP))
}

fn spouse() -> Entries {
    Entries::new("spouse", false, Some(APP))
}

fn meta(h: &Harness, client_id: &str, port: u16) -> ProfileMeta {
    ProfileMeta {
        client_id: client_id.into(),
        app: Some(APP.into()),
        plan: Plan::Personal,
        redirect_url: redirect_url(port),
        store: StoreChoice::Auto,
        app_name: None,
        user_name: None,
        verified: true,
        orders: None,
        created_at: h.now,
        updated_at: h.now,
    }
}

fn session(h: &Harness, token: &str, user_id: &str) -> StoredSession {
    StoredSession {
        access_token: token.into(),
        user_id: user_id.into(),
        user_name: "Test Trader".into(),
        login_time: h.now,
        expires_at: expiry_after(h.now),
    }
}

/// Two profiles on app `family`: `default` (AB1234, the one regenerate runs for) and
/// `spouse` (CD5678); the app entry once, with the OLD secret; a live session each.
fn family(h: &Harness, port: u16) -> ConfigFile {
    let cfg = ConfigFile::new(h.config_dir.path().to_path_buf());
    let mut c = cfg.load().unwrap();
    c.profiles_mut(false)
        .insert("default".into(), meta(h, "AB1234", port));
    c.profiles_mut(false)
        .insert("spouse".into(), meta(h, "CD5678", port));
    cfg.save(&c).unwrap();
    let s = h.store.as_ref();
    let creds = AppCredentials {
        api_key: KEY.into(),
        api_secret: OLD.into(),
    };
    set_json_verified(s, &mine().app(), &creds).unwrap();
    set_json_verified(s, &mine().session(), &session(h, MY_TOKEN, "AB1234")).unwrap();
    set_json_verified(s, &spouse().session(), &session(h, SPOUSE_TOKEN, "CD5678")).unwrap();
    cfg
}

struct Scene {
    h: Harness,
    port: u16,
    cfg: ConfigFile,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    machine: TestMachine,
}

impl Scene {
    fn new() -> Self {
        let h = Harness::new("AB1234");
        let port = test_port();
        let cfg = family(&h, port);
        let (cwd, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let machine = TestMachine {
            cwd: cwd.path().to_path_buf(),
            home: Some(home.path().to_path_buf()),
            histfile: None,
            free_ports: Vec::new(),
        };
        Self {
            h,
            port,
            cfg,
            _dirs: (cwd, home),
            machine,
        }
    }

    /// `regenerate` for `default` without a terminal, crashing after `crash_after`; the
    /// result, or `None` when it crashed, and the captured stderr.
    fn run(&self, a: &RegenerateArgs, stdin: &str, crash_after: Option<Step>) -> Run {
        let p = ScriptedPrompter::new(vec![]);
        let b = crate::testkit::kite_browser(&self.h, self.port, OK_QUERY);
        let env = RegenerateEnv {
            machine: &self.machine,
            abort_after: crash_after,
        };
        let (r, _, err) = with_ctx(&self.h, &p, &b, false, stdin, |ctx| {
            catch_unwind(AssertUnwindSafe(|| run(ctx, a, &env)))
        });
        let result = match r {
            Ok(r) => Some(r),
            Err(payload) => {
                assert!(
                    payload.downcast_ref::<SimulatedCrash>().is_some(),
                    "a real panic, not the crash hook:\n{err}"
                );
                None
            }
        };
        Run { result, err }
    }

    fn fresh(&self, crash_after: Option<Step>) -> Run {
        let a = RegenerateArgs {
            yes: true,
            api_secret_stdin: true,
            no_scan: true,
            timeout: 5,
            ..RegenerateArgs::default()
        };
        self.run(&a, NEW, crash_after)
    }

    fn resume(&self) -> Run {
        let a = RegenerateArgs {
            resume: true,
            yes: true,
            no_scan: true,
            timeout: 5,
            ..RegenerateArgs::default()
        };
        self.run(&a, "", None)
    }

    fn app_secret(&self) -> Option<String> {
        load_app(self.h.store.as_ref(), &mine())
            .unwrap()
            .map(|a| a.api_secret.expose().to_string())
    }

    fn pending(&self) -> Option<PendingSecret> {
        get_json(self.h.store.as_ref(), &mine().pending()).unwrap()
    }

    fn token(&self, e: &Entries) -> Option<String> {
        load_session(self.h.store.as_ref(), e)
            .unwrap()
            .map(|s| s.access_token.expose().to_string())
    }

    fn revoked(&self) -> Vec<String> {
        self.h.kite.invalidated.lock().unwrap().clone()
    }

    /// The entries that hold app credentials: one per app, whatever the profiles.
    fn app_entries(&self) -> Vec<String> {
        self.h
            .store
            .snapshot()
            .into_keys()
            .filter(|k| k.ends_with("/app"))
            .collect()
    }

    fn metas(&self) -> Vec<(String, ProfileMeta)> {
        self.cfg
            .load()
            .unwrap()
            .profiles(false)
            .iter()
            .map(|(n, m)| (n.clone(), m.clone()))
            .collect()
    }
}

struct Run {
    result: Option<Result<u8, Error>>,
    err: String,
}

impl Run {
    fn code(&self) -> u8 {
        match self.result.as_ref().expect("no crash") {
            Ok(c) => *c,
            Err(e) => panic!("failed: {e}\n{}", self.err),
        }
    }
}

#[test]
fn one_rotation_replaces_the_shared_secret_and_logs_out_the_other_profile() {
    let s = Scene::new();
    let metas = s.metas();
    let r = s.fresh(None);
    assert_eq!(r.code(), 0, "{}", r.err);

    assert_eq!(s.app_entries(), [mine().app()], "one app entry");
    assert_eq!(s.app_secret().as_deref(), Some(NEW));
    assert!(s.pending().is_none());
    assert_eq!(
        s.h.kite.secrets_used.lock().unwrap().as_slice(),
        [NEW],
        "one verifying login, by the profile regenerate runs for"
    );
    let revoked = s.revoked();
    assert!(revoked.contains(&MY_TOKEN.to_string()), "{revoked:?}");
    assert!(revoked.contains(&SPOUSE_TOKEN.to_string()), "{revoked:?}");
    assert_eq!(revoked.len(), 2, "{revoked:?}");
    assert!(s.token(&mine()).unwrap().starts_with("faketoken"));
    assert_eq!(s.token(&spouse()), None, "the other profile is logged out");
    assert_eq!(s.metas(), metas, "both profiles' metadata intact");

    let err = &r.err;
    assert!(
        err.contains("This app's secret is shared by profiles spouse: their access tokens are revoked too, and each must log in again."),
        "{err}"
    );
    assert!(
        err.contains("Revoked profile spouse's previous access token at Kite"),
        "{err}"
    );
    assert!(
        err.contains(
            "Profile spouse shares this app's secret: it is logged out and must log in again:"
        ),
        "{err}"
    );
    let login = RunFlags::new("spouse", false, None).command("login");
    assert_eq!(login, "kite-setup --profile spouse login");
    assert!(err.contains(&format!("  {login}\n")), "{err}");
    for secret in [OLD, NEW, MY_TOKEN, SPOUSE_TOKEN] {
        assert!(!err.contains(secret), "a secret on stderr:\n{err}");
    }
}

#[test]
fn a_crash_after_each_step_then_resume_loses_nothing_for_either_profile() {
    let mut checked = 0;
    for step in Step::ALL {
        let s = Scene::new();
        let metas = s.metas();
        let r = s.fresh(Some(step));
        assert!(r.result.is_none(), "crashed after {step:?}:\n{}", r.err);

        // Right after the crash: the old secret or the new one, never neither; the
        // other profile's token known to the pending entry from the first step on.
        let main = s.app_secret();
        let pending = s.pending();
        assert!(
            main.as_deref() == Some(OLD)
                || main.as_deref() == Some(NEW)
                || pending
                    .as_ref()
                    .is_some_and(|p| p.api_secret.expose() == NEW),
            "after {step:?}"
        );
        if let Some(p) = &pending {
            assert_eq!(p.profile.as_deref(), Some("default"));
            assert_eq!(
                p.other_tokens,
                [OtherToken {
                    profile: "spouse".into(),
                    access_token: SPOUSE_TOKEN.into()
                }],
                "after {step:?}"
            );
        }
        let spouse_after_crash = s.token(&spouse());
        assert_eq!(
            spouse_after_crash.is_some(),
            !step.main_is_new(),
            "the other profile is logged out at the swap, after {step:?}"
        );

        let r = s.resume();
        assert_eq!(r.code(), 0, "resume after {step:?}: {}", r.err);
        assert_eq!(s.app_secret().as_deref(), Some(NEW), "after {step:?}");
        assert_eq!(s.app_entries(), [mine().app()]);
        assert!(s.pending().is_none(), "after {step:?}");
        assert_eq!(s.metas(), metas, "both profiles' metadata after {step:?}");
        let revoked = s.revoked();
        for t in [MY_TOKEN, SPOUSE_TOKEN] {
            assert!(revoked.contains(&t.to_string()), "{t} after {step:?}");
        }
        assert!(
            s.token(&mine()).unwrap().starts_with("faketoken"),
            "own session is the new one after {step:?}"
        );
        assert!(
            !revoked.iter().any(|t| t.starts_with("faketoken")),
            "the new session is not revoked after {step:?}"
        );
        assert_eq!(s.token(&spouse()), None, "after {step:?}");
        // The other profile logs in with the app's credentials: the new ones.
        let spouse_creds = load_app(s.h.store.as_ref(), &spouse()).unwrap().unwrap();
        assert_eq!(spouse_creds.api_secret.expose(), NEW);
        if step != Step::Done {
            assert!(
                r.err.contains("kite-setup --profile spouse login"),
                "resume after {step:?} names the login:\n{}",
                r.err
            );
        }
        checked += 1;
    }
    assert_eq!(checked, Step::ALL.len());
}

#[test]
fn a_token_the_other_profile_got_meanwhile_is_taken_and_revoked_too() {
    let s = Scene::new();
    let r = s.fresh(Some(Step::Captured));
    assert!(r.result.is_none());
    // The spouse logs in (with the old secret, before the console click) meanwhile.
    let later = "spouselater0123456789abcdefghijk";
    set_json_verified(
        s.h.store.as_ref(),
        &spouse().session(),
        &session(&s.h, later, "CD5678"),
    )
    .unwrap();
    let r = s.resume();
    assert_eq!(r.code(), 0, "{}", r.err);
    let revoked = s.revoked();
    for t in [MY_TOKEN, SPOUSE_TOKEN, later] {
        assert!(revoked.contains(&t.to_string()), "{t}: {revoked:?}");
    }
    assert_eq!(s.token(&spouse()), None);
}

#[test]
fn abort_forgets_nothing_more_of_the_other_profile() {
    // Before the swap: the spouse's session is untouched, and stays so.
    let s = Scene::new();
    assert!(s.fresh(Some(Step::Verified)).result.is_none());
    let abort = RegenerateArgs {
        abort: true,
        yes: true,
        ..RegenerateArgs::default()
    };
    let r = s.run(&abort, "", None);
    assert_eq!(r.code(), 0, "{}", r.err);
    assert_eq!(s.token(&spouse()).as_deref(), Some(SPOUSE_TOKEN));
    assert_eq!(s.token(&mine()).as_deref(), Some(MY_TOKEN));
    assert_eq!(s.app_secret().as_deref(), Some(OLD));
    assert!(!s.revoked().contains(&SPOUSE_TOKEN.to_string()));
    assert!(!r.err.contains("must log in again"), "{}", r.err);

    // After the swap: the spouse was logged out there; abort says so and changes
    // nothing else.
    let s = Scene::new();
    assert!(s.fresh(Some(Step::Swapped)).result.is_none());
    let mut before = s.h.store.snapshot();
    let r = s.run(&abort, "", None);
    assert_eq!(r.code(), 0, "{}", r.err);
    before.remove(&mine().pending());
    assert_eq!(s.h.store.snapshot(), before, "only the pending entry went");
    assert!(
        r.err.contains("kite-setup --profile spouse login"),
        "{}",
        r.err
    );
}

#[test]
fn a_rotation_the_other_profile_started_is_taken_over_before_its_verifying_login() {
    let s = Scene::new();
    assert!(s.fresh(Some(Step::Captured)).result.is_none());
    // The pending entry is the app's: make it the one `spouse` would have written.
    let mut p = s.pending().unwrap();
    p.profile = Some("spouse".into());
    p.old_access_token = Some(SPOUSE_TOKEN.into());
    p.other_tokens = vec![OtherToken {
        profile: "default".into(),
        access_token: MY_TOKEN.into(),
    }];
    set_json_verified(s.h.store.as_ref(), &mine().pending(), &p).unwrap();
    let r = s.resume();
    assert_eq!(r.code(), 0, "{}", r.err);
    assert!(
        r.err.contains("Profile spouse started this rotation"),
        "{}",
        r.err
    );
    assert_eq!(s.app_secret().as_deref(), Some(NEW));
    let revoked = s.revoked();
    for t in [MY_TOKEN, SPOUSE_TOKEN] {
        assert!(revoked.contains(&t.to_string()), "{t}: {revoked:?}");
    }
    assert_eq!(revoked.len(), 2, "each once: {revoked:?}");
    assert!(
        r.err.contains("Revoked the previous access token at Kite")
            && r.err
                .contains("Revoked profile spouse's previous access token at Kite"),
        "{}",
        r.err
    );
    assert!(s.token(&mine()).unwrap().starts_with("faketoken"));
    assert_eq!(s.token(&spouse()), None);
    assert!(
        r.err.contains("kite-setup --profile spouse login"),
        "{}",
        r.err
    );
}

#[test]
fn a_rotation_the_other_profile_verified_is_left_to_it() {
    let s = Scene::new();
    assert!(s.fresh(Some(Step::Verified)).result.is_none());
    let mut p = s.pending().unwrap();
    p.profile = Some("spouse".into());
    set_json_verified(s.h.store.as_ref(), &mine().pending(), &p).unwrap();
    let before = s.h.store.snapshot();
    let e = s.resume().result.unwrap().unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("verified by profile spouse"), "{e}");
    let hint = e.hint(&RunFlags::default()).unwrap();
    assert!(
        hint.contains("kite-setup --profile spouse regenerate --resume"),
        "{hint}"
    );
    assert_eq!(s.h.store.snapshot(), before, "nothing changed");

    // Verified by a profile that is gone: drop it.
    p.profile = Some("gone".into());
    set_json_verified(s.h.store.as_ref(), &mine().pending(), &p).unwrap();
    let e = s.resume().result.unwrap().unwrap_err();
    assert!(e.to_string().contains("no longer uses this app"), "{e}");
    assert!(
        e.hint(&RunFlags::default())
            .unwrap()
            .contains("regenerate --abort")
    );
}

#[test]
fn a_swap_cut_short_after_the_logouts_is_finished_by_resume_or_kept_by_abort() {
    // The pending entry cannot be written at the end of the swap: the app entry, this
    // profile's session and the other profile's logout are done, the step is `verified`.
    let cut_short = || {
        let s = Scene::new();
        assert!(s.fresh(Some(Step::Verified)).result.is_none());
        *s.h.store.fail_writes_to.lock().unwrap() = Some(mine().pending());
        let r = s.resume();
        assert_eq!(r.result.unwrap().unwrap_err().exit_code(), 1, "{}", r.err);
        *s.h.store.fail_writes_to.lock().unwrap() = None;
        assert_eq!(s.pending().unwrap().step, "verified");
        assert_eq!(s.app_secret().as_deref(), Some(NEW));
        assert_eq!(s.token(&spouse()), None);
        s
    };

    let s = cut_short();
    let r = s.resume();
    assert_eq!(r.code(), 0, "{}", r.err);
    assert!(s.pending().is_none());
    let revoked = s.revoked();
    for t in [MY_TOKEN, SPOUSE_TOKEN] {
        assert!(revoked.contains(&t.to_string()), "{t}: {revoked:?}");
    }
    let mine_now = s.token(&mine()).unwrap();
    assert!(mine_now.starts_with("faketoken") && !revoked.contains(&mine_now));

    let s = cut_short();
    let new_session = s.token(&mine()).unwrap();
    let abort = RegenerateArgs {
        abort: true,
        yes: true,
        ..RegenerateArgs::default()
    };
    let r = s.run(&abort, "", None);
    assert_eq!(r.code(), 0, "{}", r.err);
    assert!(s.pending().is_none());
    assert_eq!(
        s.token(&mine()).as_deref(),
        Some(new_session.as_str()),
        "the stored new session stays"
    );
    assert!(
        !s.revoked().contains(&new_session),
        "a stored session is not revoked by abort"
    );
    assert!(
        r.err.contains("kite-setup --profile spouse login"),
        "{}",
        r.err
    );
}

#[test]
fn the_other_profile_is_pointed_at_the_profile_that_started_the_rotation() {
    let s = Scene::new();
    assert!(s.fresh(Some(Step::Verified)).result.is_none());
    let store = s.h.store.as_ref();
    let both = |p: &str| p == "default" || p == "spouse";
    assert_eq!(
        crate::commands::rotation_owner(store, &spouse(), "spouse", both).as_deref(),
        Some("default"),
        "spouse's status and login name default's resume"
    );
    // The starter was removed meanwhile: the profile asking is the one to act.
    let only_spouse = |p: &str| p == "spouse";
    assert_eq!(
        crate::commands::rotation_owner(store, &spouse(), "spouse", only_spouse).as_deref(),
        Some("spouse")
    );
    assert!(s.resume().result.unwrap().is_ok());
    assert_eq!(
        crate::commands::rotation_owner(store, &spouse(), "spouse", both),
        None,
        "nothing pending once it is finished"
    );
}

#[test]
fn a_run_whose_rotation_another_profile_took_over_meanwhile_writes_nothing_more() {
    let s = Scene::new();
    assert!(s.fresh(Some(Step::Captured)).result.is_none());
    let seen = s.pending().unwrap();
    let main = load_app(s.h.store.as_ref(), &mine()).unwrap();
    let rot = super::rotation::Rotation::from_pending(seen.clone(), main.as_ref()).unwrap();
    let prompter = ScriptedPrompter::new(vec![]);
    let browser = crate::testkit::RecordingBrowser::default();
    let (result, _, _) = with_ctx(&s.h, &prompter, &browser, false, "", |ctx| {
        super::flow::unchanged(ctx, s.h.store.as_ref(), &rot).map(|_| ())
    });
    assert!(result.is_ok(), "the entry is as this run saw it");

    // The spouse's `regenerate --resume` took it over while this run was at its login.
    let mut theirs = seen;
    theirs.profile = Some("spouse".into());
    set_json_verified(s.h.store.as_ref(), &mine().pending(), &theirs).unwrap();
    let before = s.h.store.snapshot();
    let (result, _, _) = with_ctx(&s.h, &prompter, &browser, false, "", |ctx| {
        super::flow::unchanged(ctx, s.h.store.as_ref(), &rot).map(|_| ())
    });
    let e = result.unwrap_err();
    assert!(e.to_string().contains("took this rotation"), "{e}");
    assert_eq!(s.h.store.snapshot(), before, "nothing written");
}
