//! In-process tests of moving a profile an earlier release wrote to the app layout, and of
//! finishing that move after a kill at each of its steps.

use std::collections::BTreeMap;

use super::*;
use crate::cli::{Plan, StatusArgs, StoreChoice};
use crate::testkit::{Harness, RecordingBrowser, ScriptedPrompter, with_ctx};

/// The entries as an earlier release wrote them (its own serialisation, kept byte for byte).
const APP: &str =
    r#"{"api_key":"oldkey1234abcdef","api_secret":"ssssssssssssssssssssssssssssssss"}"#;
const SESSION: &str = r#"{"access_token":"tok-default","user_id":"AB1234","user_name":"Test Trader","login_time":"2026-11-26T04:00:00Z","expires_at":"2026-11-27T00:30:00Z"}"#;
const PENDING: &str = r#"{"api_secret":"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn","step":"Swapped","api_key":"oldkey1234abcdef"}"#;

fn meta(h: &Harness, app: Option<&str>) -> ProfileMeta {
    ProfileMeta {
        client_id: "AB1234".into(),
        app: app.map(str::to_string),
        plan: Plan::Personal,
        redirect_url: "http://127.0.0.1:5123/kite-setup/callback".into(),
        store: StoreChoice::Auto,
        app_name: Some("my bot".into()),
        user_name: Some("Test Trader".into()),
        verified: true,
        orders: None,
        created_at: h.now,
        updated_at: h.now,
    }
}

/// Runs `f` as profile `profile` over the harness (non-interactive, no browser).
fn run_as<T>(h: &Harness, profile: &str, f: impl FnOnce(&Ctx<'_>) -> T) -> (T, String) {
    let prompter = ScriptedPrompter::new(vec![]);
    let browser = RecordingBrowser::default();
    let (out, _, err) = with_ctx(h, &prompter, &browser, false, "", |ctx| {
        let mut ctx = ctx.clone();
        ctx.profile = profile.to_string();
        f(&ctx)
    });
    (out, err)
}

fn config(h: &Harness) -> Config {
    crate::profile::ConfigFile::new(h.config_dir.path().to_path_buf())
        .load()
        .unwrap()
}

fn set(h: &Harness, entry: &str, value: &str) {
    h.store.set(entry, &Secret::from(value)).unwrap();
}

/// A profile `name` as the previous release left it: config.toml without an app, its app
/// entry, its session and (with `pending`) an interrupted rotation, under its own name.
fn legacy(h: &Harness, name: &str, pending: bool) {
    run_as(h, name, |ctx| {
        ctx.config
            .update(|c| c.profiles.insert(name.into(), meta(h, None)))
            .unwrap();
    });
    set(h, &format!("{name}/app"), APP);
    set(h, &format!("{name}/session"), SESSION);
    if pending {
        set(h, &format!("{name}/pending"), PENDING);
    }
}

/// What a kill leaves in the profile's lock file: the dead holder's record.
fn dead_holder(h: &Harness, name: &str) {
    let path = crate::lock::profile_lock_path(h.config_dir.path(), name, false);
    std::fs::write(path, "pid=1\ncommand=moving the profile's app entries\n").unwrap();
}

/// The store as a finished move of profile `default` (to app `default`) leaves it.
fn moved(pending: bool) -> BTreeMap<String, String> {
    let mut want = BTreeMap::from([
        ("apps/default/app".to_string(), APP.to_string()),
        ("default/session".to_string(), SESSION.to_string()),
    ]);
    if pending {
        want.insert("apps/default/pending".into(), PENDING.into());
    }
    want
}

fn open(h: &Harness, name: &str) -> ProfileMeta {
    run_as(h, name, |ctx| ctx.open_profile().map(|p| p.meta))
        .0
        .unwrap()
}

#[test]
fn a_pre_sharing_profile_is_moved_on_first_open_byte_for_byte() {
    for pending in [false, true] {
        let h = Harness::new("AB1234");
        legacy(&h, "default", pending);
        let before = config(&h).get("default", false).cloned().unwrap();
        let m = open(&h, "default");
        assert_eq!(m.app.as_deref(), Some("default"));
        assert_eq!(h.store.snapshot(), moved(pending), "pending: {pending}");
        let after = config(&h).get("default", false).cloned().unwrap();
        assert_eq!(
            after,
            ProfileMeta {
                app: Some("default".into()),
                ..before
            },
            "only the app is added to the profile's metadata"
        );
        // The handle reads the moved entries; a second open changes nothing.
        let (creds, _) = run_as(&h, "default", |ctx| ctx.open_profile()?.app());
        assert_eq!(creds.unwrap().unwrap().api_key.expose(), "oldkey1234abcdef");
        open(&h, "default");
        assert_eq!(h.store.snapshot(), moved(pending));
    }
}

#[test]
fn a_kill_during_the_copies_is_redone_by_the_next_command() {
    // Step 1 cut short after the app's copy, and after both copies.
    for copies in [&["app"][..], &["app", "pending"][..]] {
        let h = Harness::new("AB1234");
        legacy(&h, "default", true);
        for c in copies {
            let value = if *c == "app" { APP } else { PENDING };
            set(&h, &format!("apps/default/{c}"), value);
        }
        dead_holder(&h, "default");
        // Not committed: the profile is still read as it was.
        assert_eq!(config(&h).get("default", false).unwrap().app, None);
        let m = open(&h, "default");
        assert_eq!(m.app.as_deref(), Some("default"));
        assert_eq!(h.store.snapshot(), moved(true), "copies: {copies:?}");
    }
}

#[test]
fn a_kill_after_the_commit_leaves_leftovers_the_next_command_deletes() {
    // Killed after step 2 (nothing deleted yet) and during step 3 (the app entry gone,
    // the pending one not yet); the next command is `status` (which only tidies) or one
    // that opens the profile.
    for (deleted, status) in [(false, true), (false, false), (true, true), (true, false)] {
        let h = Harness::new("AB1234");
        legacy(&h, "default", true);
        set(&h, "apps/default/app", APP);
        set(&h, "apps/default/pending", PENDING);
        run_as(&h, "default", |ctx| {
            ctx.config
                .update(|c| {
                    c.profiles
                        .insert("default".into(), meta(&h, Some("default")))
                })
                .unwrap();
        });
        if deleted {
            h.store.delete("default/app").unwrap();
        }
        dead_holder(&h, "default");
        if status {
            let (code, _) = run_as(&h, "default", |ctx| {
                super::super::status::run(ctx, &StatusArgs::default())
            });
            assert_eq!(code.unwrap(), 0);
        } else {
            open(&h, "default");
        }
        assert_eq!(
            h.store.snapshot(),
            moved(true),
            "deleted: {deleted}, status: {status}"
        );
        let lock = crate::lock::profile_lock_path(h.config_dir.path(), "default", false);
        assert!(!crate::lock::is_held_or_was_cut_short(&lock));
    }
}

#[test]
fn a_commit_without_the_apps_copy_is_finished_from_the_profiles_own_entries() {
    // A commit whose app copies are not there (a store that lost the writes): the
    // profile's own entries are the only copy of the credentials, so tidying copies them
    // before it deletes them.
    let h = Harness::new("AB1234");
    legacy(&h, "default", true);
    run_as(&h, "default", |ctx| {
        ctx.config
            .update(|c| {
                c.profiles
                    .insert("default".into(), meta(&h, Some("default")))
            })
            .unwrap();
    });
    dead_holder(&h, "default");
    let (r, _) = run_as(&h, "default", |ctx| {
        super::super::txn::recover(ctx, h.store.as_ref())
    });
    r.unwrap();
    assert_eq!(h.store.snapshot(), moved(true));
}

#[test]
fn a_profile_named_like_an_existing_app_gets_a_fresh_app_id() {
    let h = Harness::new("AB1234");
    // Profile `me` is on app `spouse` (its first profile was removed); `spouse` is a
    // profile the previous release wrote, with other credentials.
    run_as(&h, "me", |ctx| {
        ctx.config
            .update(|c| c.profiles.insert("me".into(), meta(&h, Some("spouse"))))
            .unwrap();
    });
    let mine = r#"{"api_key":"mykey","api_secret":"mysecret"}"#;
    set(&h, "apps/spouse/app", mine);
    legacy(&h, "spouse", false);
    let m = open(&h, "spouse");
    assert_eq!(m.app.as_deref(), Some("spouse-2"));
    let snap = h.store.snapshot();
    assert_eq!(snap.get("apps/spouse/app").map(String::as_str), Some(mine));
    assert_eq!(snap.get("apps/spouse-2/app").map(String::as_str), Some(APP));
    assert!(!snap.contains_key("spouse/app"));
    assert_eq!(
        config(&h).get("me", false).unwrap().app.as_deref(),
        Some("spouse")
    );
    assert_eq!(
        siblings(&config(&h), "spouse", &m, false),
        Vec::<String>::new()
    );
}

#[test]
fn a_sandbox_profile_moves_under_the_sandbox_prefix() {
    let h = Harness::new("AB1234");
    run_as(&h, "default", |ctx| {
        ctx.config
            .update(|c| c.sandbox_profiles.insert("default".into(), meta(&h, None)))
            .unwrap();
    });
    set(&h, "sandbox/default/app", APP);
    set(&h, "sandbox/default/session", SESSION);
    let (m, _) = run_as(&h, "default", |ctx| {
        let mut ctx = ctx.clone();
        ctx.sandbox = true;
        ctx.open_profile().map(|p| p.meta)
    });
    assert_eq!(m.unwrap().app.as_deref(), Some("default"));
    assert_eq!(
        h.store.snapshot(),
        BTreeMap::from([
            ("sandbox/apps/default/app".to_string(), APP.to_string()),
            ("sandbox/default/session".to_string(), SESSION.to_string()),
        ])
    );
}

/// Profiles `default` and `spouse` on app `default`, both logged in today, and `old`, a
/// profile the previous release wrote; `spouse`'s session is `spouse_session`.
fn family(h: &Harness, spouse_session: bool) {
    run_as(h, "default", |ctx| {
        ctx.config
            .update(|c| {
                c.profiles
                    .insert("default".into(), meta(h, Some("default")));
                let mut spouse = meta(h, Some("default"));
                spouse.client_id = "CD5678".into();
                spouse.user_name = Some("Spouse Trader".into());
                c.profiles.insert("spouse".into(), spouse);
            })
            .unwrap();
    });
    set(h, "apps/default/app", APP);
    set(h, "default/session", SESSION);
    if spouse_session {
        set(
            h,
            "spouse/session",
            &SESSION.replace("tok-default", "tok-spouse"),
        );
    }
}

fn invalidations(h: &Harness) -> usize {
    h.kite.calls().iter().filter(|c| *c == "invalidate").count()
}

#[test]
fn logout_and_remove_of_one_family_member_leave_the_other_logged_in() {
    let h = Harness::new("AB1234");
    family(&h, true);
    let (code, err) = run_as(&h, "spouse", super::super::logout::logout);
    assert_eq!(code.unwrap(), 0, "{err}");
    assert_eq!(invalidations(&h), 1, "only the spouse's token is revoked");
    let snap = h.store.snapshot();
    assert!(!snap.contains_key("spouse/session"));
    assert_eq!(
        snap.get("default/session").map(String::as_str),
        Some(SESSION)
    );
    assert_eq!(snap.get("apps/default/app").map(String::as_str), Some(APP));

    // `remove spouse` keeps the app for `default`, and says so.
    set(
        &h,
        "spouse/session",
        &SESSION.replace("tok-default", "tok-spouse"),
    );
    set(&h, "apps/default/pending", PENDING);
    let args = crate::cli::RemoveArgs { yes: true };
    let (code, err) = run_as(&h, "spouse", |ctx| super::super::logout::remove(ctx, &args));
    assert_eq!(code.unwrap(), 0, "{err}");
    assert!(
        err.contains("Kept app default: profile default still uses it"),
        "{err}"
    );
    assert_eq!(
        invalidations(&h),
        2,
        "one revoke per profile, its own token"
    );
    let mut want = moved(true);
    want.insert("default/session".into(), SESSION.into());
    assert_eq!(h.store.snapshot(), want);
    assert!(config(&h).get("spouse", false).is_none());
    let (code, _) = run_as(&h, "default", |ctx| {
        super::super::status::run(ctx, &StatusArgs::default())
    });
    assert_eq!(code.unwrap(), 0, "default is still usable");

    // The last profile on the app takes its entries with it.
    let (code, err) = run_as(&h, "default", |ctx| {
        super::super::logout::remove(ctx, &args)
    });
    assert_eq!(code.unwrap(), 0, "{err}");
    assert!(!err.contains("Kept app"), "{err}");
    assert!(h.store.snapshot().is_empty(), "{:?}", h.store.snapshot());
}

#[test]
fn status_groups_profiles_by_app_and_names_who_must_log_in_today() {
    let h = Harness::new("AB1234");
    family(&h, false);
    legacy(&h, "old", false);
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::default();
    let (code, _, err) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::super::status::run(ctx, &StatusArgs::default())
    });
    assert_eq!(code.unwrap(), 0, "default is usable: {err}");
    let headings: Vec<&str> = err.lines().filter(|l| l.starts_with("app ")).collect();
    assert_eq!(headings.len(), 2, "{err}");
    assert!(
        headings[0].starts_with("app \"my bot\" (default) — api_key oldk…cdef, "),
        "{err}"
    );
    assert!(headings[1].starts_with("app \"my bot\" of profile old (from an earlier release"));
    // Both family members under the one heading, the spouse needing today's login.
    let family_block: Vec<&str> = err
        .split(headings[1])
        .next()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains(" — client "))
        .collect();
    assert_eq!(family_block.len(), 2, "{err}");
    assert!(family_block[1].contains("spouse — client CD5678 (Spouse Trader)"));
    assert!(
        err.contains("today       needs today's login: kite-setup --profile spouse login"),
        "{err}"
    );
    assert_eq!(err.matches("today       logged in").count(), 2, "{err}");
    for secret in ["ssssssss", "tok-default", "oldkey1234abcdef"] {
        assert!(!err.contains(secret), "{err}");
    }

    let (code, out, _) = with_ctx(&h, &p, &b, false, "", |ctx| {
        let mut ctx = ctx.clone();
        ctx.json = true;
        super::super::status::run(&ctx, &StatusArgs::default())
    });
    assert_eq!(code.unwrap(), 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let apps: Vec<_> = doc["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["app"].clone(),
                p["needs_login"].clone(),
            )
        })
        .collect();
    assert_eq!(
        apps,
        [
            (
                "default",
                serde_json::json!("default"),
                serde_json::json!(false)
            ),
            ("old", serde_json::Value::Null, serde_json::json!(false)),
            (
                "spouse",
                serde_json::json!("default"),
                serde_json::json!(true)
            ),
        ]
    );
    assert_eq!(
        doc["apps"][0]["profiles"],
        serde_json::json!(["default", "spouse"])
    );
    assert_eq!(doc["apps"][0]["needs_login"], serde_json::json!(["spouse"]));
    assert_eq!(doc["apps"][1]["id"], serde_json::Value::Null);
    // Status reads the old profile where it is and moves nothing.
    assert_eq!(
        h.store.snapshot().get("old/app").map(String::as_str),
        Some(APP)
    );
}

#[test]
fn logout_and_remove_of_a_pre_sharing_profile_move_it_first_and_leave_nothing() {
    let h = Harness::new("AB1234");
    legacy(&h, "default", true);
    let (code, err) = run_as(&h, "default", super::super::logout::logout);
    assert_eq!(code.unwrap(), 0, "{err}");
    let mut want = moved(true);
    want.remove("default/session");
    assert_eq!(
        h.store.snapshot(),
        want,
        "moved, and only the session forgotten"
    );
    let args = crate::cli::RemoveArgs { yes: true };
    let (code, err) = run_as(&h, "default", |ctx| {
        super::super::logout::remove(ctx, &args)
    });
    assert_eq!(code.unwrap(), 0, "{err}");
    assert!(h.store.snapshot().is_empty(), "{:?}", h.store.snapshot());
    assert!(config(&h).profiles.is_empty());
}

#[test]
fn a_token_kite_rejects_at_check_counts_as_needing_todays_login() {
    let h = Harness::new("AB1234");
    family(&h, true);
    h.kite
        .profile_failures
        .lock()
        .unwrap()
        .push_back(crate::testkit::kite_error(
            403,
            "TokenException",
            "Incorrect `api_key` or `access_token`.",
        ));
    let (code, err) = run_as(&h, "default", |ctx| {
        super::super::status::run(ctx, &StatusArgs { check: true })
    });
    assert_eq!(code.unwrap(), 4, "{err}");
    assert!(
        err.contains("today       needs today's login: kite-setup login"),
        "{err}"
    );
    // The spouse's token was not checked: still shown as today's.
    assert_eq!(err.matches("today       logged in").count(), 1, "{err}");
}

#[test]
fn two_pre_sharing_profiles_with_the_same_credentials_end_on_one_app() {
    let h = Harness::new("AB1234");
    legacy(&h, "default", false);
    legacy(&h, "spouse", false);
    // The spouse's copy under another name (its own session) but the same app.
    set(&h, "spouse/session", SESSION);
    assert_eq!(open(&h, "default").app.as_deref(), Some("default"));
    let m = open(&h, "spouse");
    assert_eq!(m.app.as_deref(), Some("default"), "joined, not copied");
    let snap = h.store.snapshot();
    let apps: Vec<&String> = snap.keys().filter(|k| k.ends_with("/app")).collect();
    assert_eq!(apps, ["apps/default/app"], "one copy of the secret");
    assert!(
        snap.contains_key("spouse/session"),
        "its session stays its own"
    );
    assert_eq!(
        siblings(&config(&h), "spouse", &m, false),
        ["default".to_string()]
    );
}

#[test]
fn a_pre_sharing_profile_with_other_credentials_or_a_rotation_keeps_an_app_of_its_own() {
    let h = Harness::new("AB1234");
    legacy(&h, "default", false);
    legacy(&h, "spouse", true);
    assert_eq!(open(&h, "default").app.as_deref(), Some("default"));
    assert_eq!(
        open(&h, "spouse").app.as_deref(),
        Some("spouse"),
        "a pending rotation of its copy is finished on its own app"
    );
    legacy(&h, "child", false);
    set(
        &h,
        "child/app",
        r#"{"api_key":"oldkey1234abcdef","api_secret":"other-secret-0123456789abcdefgh"}"#,
    );
    assert_eq!(
        open(&h, "child").app.as_deref(),
        Some("child"),
        "another secret: not joined"
    );
}
