//! In-process tests of the profile transactions.

use super::*;
use crate::cli::{Plan, StoreChoice};
use crate::testkit::{Harness, RecordingBrowser, ScriptedPrompter, with_ctx};

fn meta(h: &Harness, redirect_port: u16) -> ProfileMeta {
    ProfileMeta {
        client_id: "AB1234".into(),
        app: Some("default".into()),
        plan: Plan::Personal,
        redirect_url: format!("http://127.0.0.1:{redirect_port}/kite-setup/callback"),
        store: StoreChoice::Auto,
        app_name: None,
        user_name: None,
        verified: true,
        orders: None,
        created_at: h.now,
        updated_at: h.now,
    }
}

fn app(key: &str) -> AppCredentials {
    AppCredentials {
        api_key: Secret::from(key),
        api_secret: Secret::from("s".repeat(32).as_str()),
    }
}

fn session(h: &Harness, token: &str) -> StoredSession {
    StoredSession {
        access_token: Secret::from(token),
        user_id: "AB1234".into(),
        user_name: String::new(),
        login_time: h.now,
        expires_at: crate::session::expiry_after(h.now),
    }
}

/// Runs `f` with a context over the harness (non-interactive, no browser).
fn run<T>(h: &Harness, f: impl FnOnce(&Ctx<'_>) -> T) -> T {
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::default();
    with_ctx(h, &p, &b, false, "", f).0
}

/// The state a kill leaves: the old profile whole, a staged new one, and (when
/// `committed`) config.toml naming the new one; the dead holder's record in the lock.
fn cut_short(h: &Harness, committed: bool) {
    run(h, |ctx| {
        let e = crate::store::Entries::new("default", false, Some("default"));
        ctx.config
            .update(|c| c.profiles.insert("default".into(), meta(h, 5123)))
            .unwrap();
        set_json_verified(h.store.as_ref(), &e.app(), &app("oldkey")).unwrap();
        set_json_verified(h.store.as_ref(), &e.session(), &session(h, "old-token")).unwrap();
        // A later init: its own updated_at.
        let later = ProfileMeta {
            updated_at: h.now + jiff::SignedDuration::from_secs(60),
            ..meta(h, 5124)
        };
        let staged = StagedProfile {
            meta: later,
            app: app("newkey"),
            session: Some(session(h, "new-token")),
            replaced: Some(ReplacedToken {
                api_key: Secret::from("oldkey"),
                access_token: Secret::from("old-token"),
            }),
            joins_app: false,
            previous_app: Some(crate::store::PreviousApp {
                creds: Some(app("oldkey")),
            }),
        };
        set_json_verified(h.store.as_ref(), &e.staged(), &staged).unwrap();
        if committed {
            ctx.config
                .update(|c| c.profiles.insert("default".into(), staged.meta.clone()))
                .unwrap();
        }
        let path = crate::lock::profile_lock_path(&ctx.config.dir, "default", false);
        std::fs::write(path, "pid=1\ncommand=init\n").unwrap();
    });
}

fn stored_key(h: &Harness) -> String {
    let e = crate::store::Entries::new("default", false, Some("default"));
    load_app(h.store.as_ref(), &e)
        .unwrap()
        .unwrap()
        .api_key
        .expose()
        .to_string()
}

#[test]
fn a_committed_init_is_finished_and_the_token_it_replaces_revoked() {
    let h = Harness::new("AB1234");
    cut_short(&h, true);
    run(&h, |ctx| recover(ctx, h.store.as_ref())).unwrap();
    assert_eq!(stored_key(&h), "newkey");
    let e = crate::store::Entries::new("default", false, Some("default"));
    let s = load_session(h.store.as_ref(), &e).unwrap().unwrap();
    assert_eq!(s.access_token.expose(), "new-token");
    assert!(h.store.get(&e.staged()).unwrap().is_none());
    assert_eq!(h.kite.calls(), ["invalidate"], "the old token is revoked");
    let cfg = crate::profile::ConfigFile::new(h.config_dir.path().to_path_buf());
    let lock = crate::lock::profile_lock_path(&cfg.dir, "default", false);
    assert!(
        !crate::lock::is_held_or_was_cut_short(&lock),
        "the record is cleared"
    );
}

#[test]
fn an_uncommitted_init_is_dropped_and_its_token_revoked() {
    let h = Harness::new("AB1234");
    cut_short(&h, false);
    run(&h, |ctx| recover(ctx, h.store.as_ref())).unwrap();
    assert_eq!(stored_key(&h), "oldkey", "the old profile stays whole");
    let e = crate::store::Entries::new("default", false, Some("default"));
    let s = load_session(h.store.as_ref(), &e).unwrap().unwrap();
    assert_eq!(s.access_token.expose(), "old-token");
    assert!(h.store.get(&e.staged()).unwrap().is_none());
    assert_eq!(
        h.kite.calls(),
        ["invalidate"],
        "the staged login's token is revoked"
    );
}

#[test]
fn logout_keeps_a_token_stored_after_the_one_it_revoked() {
    let h = Harness::new("AB1234");
    let e = crate::store::Entries::new("default", false, Some("default"));
    set_json_verified(h.store.as_ref(), &e.session(), &session(&h, "newer")).unwrap();
    let forgot = run(&h, |ctx| {
        forget_session_if(ctx, h.store.as_ref(), &Secret::from("older"))
    });
    assert!(!forgot.unwrap());
    assert!(h.store.get(&e.session()).unwrap().is_some());
    let forgot = run(&h, |ctx| {
        forget_session_if(ctx, h.store.as_ref(), &Secret::from("newer"))
    });
    assert!(forgot.unwrap());
    assert!(h.store.get(&e.session()).unwrap().is_none());
}

#[test]
fn a_login_for_a_profile_removed_meanwhile_stores_nothing_and_revokes() {
    let h = Harness::new("AB1234");
    let e = crate::store::Entries::new("default", false, Some("default"));
    let r = run(&h, |ctx| {
        replace_session(ctx, h.store.as_ref(), &app("k"), &session(&h, "t"))
    });
    let err = r.unwrap_err();
    assert!(
        err.to_string().contains("was removed or set up again"),
        "{err}"
    );
    assert!(h.store.get(&e.session()).unwrap().is_none());
    assert_eq!(h.kite.calls(), ["invalidate"]);
}

#[test]
fn a_profile_moving_to_a_family_app_drops_its_old_app_only_when_nobody_else_uses_it() {
    let h = Harness::new("AB1234");
    let on = |app: &str| ProfileMeta {
        app: Some(app.into()),
        ..meta(&h, 5123)
    };
    let entries = |app: &str| crate::store::Entries::new("default", false, Some(app));
    for (others_on_old, kept) in [(false, false), (true, true)] {
        run(&h, |ctx| {
            ctx.config
                .update(|c| {
                    c.profiles.clear();
                    c.profiles.insert("default".into(), on("mine"));
                    c.profiles.insert("parent".into(), on("family"));
                    if others_on_old {
                        c.profiles.insert("child".into(), on("mine"));
                    }
                })
                .unwrap();
            set_json_verified(h.store.as_ref(), &entries("mine").app(), &app("minekey")).unwrap();
            set_json_verified(h.store.as_ref(), &entries("family").app(), &app("famkey")).unwrap();
            store_profile(
                ctx,
                h.store.as_ref(),
                on("family"),
                &app("famkey"),
                None,
                false,
            )
            .unwrap();
        });
        assert_eq!(
            h.store.get(&entries("mine").app()).unwrap().is_some(),
            kept,
            "the old app is kept only while another profile uses it"
        );
        let family: AppCredentials = get_json(h.store.as_ref(), &entries("family").app())
            .unwrap()
            .unwrap();
        assert_eq!(
            family.api_key.expose(),
            "famkey",
            "the joined app is untouched"
        );
    }
}

#[test]
fn a_family_members_change_of_the_apps_settings_does_not_undo_a_committed_init() {
    let h = Harness::new("AB1234");
    cut_short(&h, true);
    // A family member's init copied other app settings over since the commit.
    run(&h, |ctx| {
        ctx.config.update(|c| {
            let m = c.profiles.get_mut("default").unwrap();
            m.plan = Plan::Connect;
            m.redirect_url = "http://127.0.0.1:5999/kite-setup/callback".into();
        })
    })
    .unwrap();
    run(&h, |ctx| recover(ctx, h.store.as_ref())).unwrap();
    assert_eq!(stored_key(&h), "newkey", "still finished as committed");
    let e = crate::store::Entries::new("default", false, Some("default"));
    let s = load_session(h.store.as_ref(), &e).unwrap().unwrap();
    assert_eq!(s.access_token.expose(), "new-token");
}

#[test]
fn a_rotation_of_the_shared_secret_since_the_commit_is_kept_by_the_recovery() {
    let h = Harness::new("AB1234");
    cut_short(&h, true);
    let e = crate::store::Entries::new("default", false, Some("default"));
    // A family member rotated the app's secret after the commit.
    let rotated = AppCredentials {
        api_key: Secret::from("newkey"),
        api_secret: Secret::from("r".repeat(32).as_str()),
    };
    set_json_verified(h.store.as_ref(), &e.app(), &rotated).unwrap();
    let (_, _, err) = {
        let p = ScriptedPrompter::new(vec![]);
        let b = RecordingBrowser::default();
        with_ctx(&h, &p, &b, false, "", |ctx| recover(ctx, h.store.as_ref()))
    };
    let now: AppCredentials = get_json(h.store.as_ref(), &e.app()).unwrap().unwrap();
    assert_eq!(now, rotated, "the rotated secret is not overwritten");
    assert!(
        load_session(h.store.as_ref(), &e).unwrap().is_none(),
        "the old secret's login is not stored"
    );
    assert_eq!(
        h.kite.calls(),
        ["invalidate", "invalidate"],
        "its token and the replaced one are revoked"
    );
    assert!(err.contains("log in again"), "{err}");
}

#[test]
fn a_new_app_does_not_inherit_a_pending_rotation_left_under_its_name() {
    let h = Harness::new("AB1234");
    let e = crate::store::Entries::new("default", false, Some("default"));
    h.store
        .set(&e.pending(), &Secret::from("{\"left\":1}"))
        .unwrap();
    let fresh = ProfileMeta {
        app: None,
        ..meta(&h, 5123)
    };
    run(&h, |ctx| {
        store_profile(ctx, h.store.as_ref(), fresh, &app("newkey"), None, true)
    })
    .unwrap();
    assert_eq!(stored_key(&h), "newkey");
    assert!(
        h.store.get(&e.pending()).unwrap().is_none(),
        "no phantom rotation"
    );
}
