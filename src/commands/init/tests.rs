//! `init --app` over fakes: joining the app of a profile an earlier release wrote (moved
//! first), and a login that does not come back, which stores nothing and names the
//! console's field (with the placeholder warning for `AB1234`).
#![allow(clippy::many_single_char_names)] // h, p, b, r, e: harness, prompter, browser, result, error

use crate::cli::InitArgs;
use crate::commands::Ctx;
use crate::error::RunFlags;
use crate::store::{AppCredentials, Entries, Store, get_json, set_json_verified};
use crate::testkit::{
    Harness, OK_QUERY, RecordingBrowser, ScriptedPrompter, kite_browser, redirect_url, with_ctx,
};

const KEY: &str = "abcd1234efgh5678";
const SECRET: &str = "s3cr3tS3CR3Ts3cr3tS3CR3Ts3cr3t12";
const PORT: u16 = 5391;

/// Profile `default` for XY9876 as the release before shared apps wrote it: no `app`, its
/// credentials under its own name.
fn pre_sharing_default(h: &Harness) {
    let config = format!(
        r#"[profiles.default]
client_id = "XY9876"
plan = "personal"
redirect_url = "{}"
store = "auto"
verified = true
created_at = "2026-11-20T00:00:00Z"
updated_at = "2026-11-20T00:00:00Z"
"#,
        redirect_url(PORT)
    );
    std::fs::write(h.config_dir.path().join("config.toml"), config).unwrap();
    let creds = AppCredentials {
        api_key: crate::secret::Secret::new(KEY.to_string()),
        api_secret: crate::secret::Secret::new(SECRET.to_string()),
    };
    set_json_verified(
        h.store.as_ref(),
        &Entries::new("default", false, None).legacy_app(),
        &creds,
    )
    .unwrap();
}

fn join_args(client_id: &str, timeout: u64) -> InitArgs {
    InitArgs {
        client_id: Some(client_id.into()),
        app: Some("default".into()),
        timeout,
        orders_from: crate::cli::OrdersFrom::Elsewhere,
        ..InitArgs::default()
    }
}

fn as_spouse<T>(ctx: &Ctx<'_>, f: impl FnOnce(&Ctx<'_>) -> T) -> T {
    f(&Ctx {
        profile: "spouse".into(),
        ..ctx.clone()
    })
}

#[test]
fn joining_a_pre_sharing_profile_moves_its_app_first_and_writes_no_second_copy() {
    let h = Harness::new("CD5678");
    pre_sharing_default(&h);
    let p = ScriptedPrompter::new(vec![]);
    let b = kite_browser(&h, PORT, OK_QUERY);
    let (r, _, err) = with_ctx(&h, &p, &b, false, "", |ctx| {
        as_spouse(ctx, |ctx| {
            super::run(ctx, &join_args("cd5678", 5), &|_| true)
        })
    });
    assert_eq!(r.unwrap(), 0, "{err}");
    let config = crate::profile::ConfigFile::new(h.config_dir.path().to_path_buf())
        .load()
        .unwrap();
    let default = config.get("default", false).unwrap();
    let spouse = config.get("spouse", false).unwrap();
    assert_eq!(default.app.as_deref(), Some("default"));
    assert_eq!(spouse.app.as_deref(), Some("default"));
    assert_eq!(spouse.client_id, "CD5678");
    assert_eq!(spouse.redirect_url, redirect_url(PORT));
    let store = h.store.as_ref();
    let app: AppCredentials = get_json(store, &Entries::new("x", false, Some("default")).app())
        .unwrap()
        .expect("the app's one entry");
    assert_eq!(app.api_key.expose(), KEY);
    assert!(
        store
            .get(&Entries::new("default", false, None).legacy_app())
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get(&Entries::new("spouse", false, Some("spouse")).app())
            .unwrap()
            .is_none()
    );
    let session: crate::session::StoredSession = get_json(
        store,
        &Entries::new("spouse", false, Some("default")).session(),
    )
    .unwrap()
    .expect("the spouse's session");
    assert_eq!(session.user_id, "CD5678");
}

#[test]
fn a_family_login_that_never_comes_back_stores_nothing_and_names_the_field() {
    let h = Harness::new("AB1234");
    pre_sharing_default(&h);
    // Moved once, so that the failing run below starts from the app layout.
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::new();
    let (_, _, _) = with_ctx(&h, &p, &b, false, "", |ctx| ctx.open_profile().map(|_| ()));
    let config_before = std::fs::read(h.config_dir.path().join("config.toml")).unwrap();
    let entries_before = h.store.snapshot();
    let (r, _, err) = with_ctx(&h, &p, &b, false, "", |ctx| {
        as_spouse(ctx, |ctx| {
            super::run(ctx, &join_args("AB1234", 1), &|_| true)
        })
    });
    let e = r.unwrap_err();
    assert_eq!(e.exit_code(), 1);
    let hint = e.hint(&RunFlags::default()).unwrap();
    for words in [
        "Client IDs",
        "type AB1234 in \"Zerodha Client ID\"",
        "Add client ID",
        "placeholder",
    ] {
        assert!(hint.contains(words), "{words:?} in {hint}");
    }
    assert!(
        err.contains("If Kite says \"The user is not enabled for the app\""),
        "{err}"
    );
    assert_eq!(
        std::fs::read(h.config_dir.path().join("config.toml")).unwrap(),
        config_before
    );
    assert_eq!(h.store.snapshot(), entries_before);
}
