//! `kite-setup status`: every profile of this mode, grouped by the app it uses (a family's
//! client IDs share one app, docs/apps.md), what is stored (masked), the token's time left,
//! who still needs today's login, interrupted rotations; `--check` asks Kite. Exit 0 when
//! the selected profile is usable, 4 when a login is needed, 1 when the store cannot be
//! read or `--check` cannot reach Kite. Never prints a secret.

use serde_json::json;

use crate::cli::StatusArgs;
use crate::error::{Error, Fix, RunFlags};
use crate::profile::ProfileMeta;
use crate::session::{format_ist, humanize_left};
use crate::store::{Entries, load_app, load_session};

use super::{Ctx, plans};

/// What status found for one profile.
struct Report {
    name: String,
    meta: ProfileMeta,
    store: String,
    api_key_masked: Option<String>,
    secret_stored: bool,
    token: TokenState,
    /// The profile that started a pending rotation of the app's secret (the one to resume it).
    pending_rotation: Option<String>,
    /// Where the session came from, when it was pushed here.
    origin: Option<crate::commands::import::Origin>,
    check: Option<Result<String, String>>,
    /// Why `--check` could not tell whether the token works (Kite or the network failed,
    /// as opposed to Kite rejecting the token): an error, not "login needed".
    check_failed: Option<crate::kite::KiteError>,
    /// The store could not be read (absent, locked, hung): its own fix, not a login.
    store_failed: Option<crate::store::StoreError>,
}

enum TokenState {
    None,
    Valid {
        expires: String,
        left: String,
        seconds: i64,
    },
    Expired {
        at: String,
    },
}

impl Report {
    /// No valid session (none, expired, or one `--check` saw Kite reject): this client
    /// ID's holder has to log in today.
    fn needs_login(&self) -> bool {
        let rejected = matches!(self.check, Some(Err(_))) && self.check_failed.is_none();
        self.store_failed.is_none() && (rejected || !matches!(self.token, TokenState::Valid { .. }))
    }

    fn usable(&self) -> bool {
        self.store_failed.is_none()
            // A pushed session is usable without the secret (it stayed on the laptop).
            && (self.secret_stored || self.origin.is_some())
            && matches!(self.token, TokenState::Valid { .. })
            && !matches!(self.check, Some(Err(_)))
    }
}

pub fn run(ctx: &Ctx<'_>, args: &StatusArgs) -> Result<u8, Error> {
    // This profile as it is after any `init` a kill cut short is finished or dropped; a
    // store that cannot be opened is reported below, per profile.
    if let Some(meta) = ctx.config.load()?.get(&ctx.profile, ctx.sandbox)
        && let Ok((store, _)) = ctx.ports.stores.open(ctx.store_flag.unwrap_or(meta.store))
    {
        super::txn::recover(ctx, store.as_ref())?;
    }
    let config = ctx.config.load()?;
    let profiles = config.profiles(ctx.sandbox);
    let mut reports = Vec::new();
    for (name, meta) in profiles {
        let check = args.check && name == &ctx.profile;
        reports.push(inspect(ctx, name, meta, check));
    }
    let selected = reports.iter().find(|r| r.name == ctx.profile);
    let usable = selected.is_some_and(Report::usable);

    let groups = by_app(&reports);

    if ctx.json {
        let list: Vec<_> = reports.iter().map(|r| to_json(ctx, r)).collect();
        let apps: Vec<_> = groups.iter().map(|g| app_json(g)).collect();
        let doc = json!({ "profile": ctx.profile, "sandbox": ctx.sandbox, "usable": usable, "profiles": list, "apps": apps });
        ctx.ui.data(&format!("{doc}\n"));
    } else if reports.is_empty() {
        ctx.ui.say(format!(
            "No {}profiles yet.",
            if ctx.sandbox { "sandbox " } else { "" }
        ));
    } else {
        for g in &groups {
            print_heading(ctx, g);
            for r in g {
                print_report(ctx, r);
            }
        }
    }

    if selected.is_none() {
        return Err(Error::login_needed(
            format!(
                "no profile {:?}{}",
                ctx.profile,
                if ctx.sandbox { " in the sandbox" } else { "" }
            ),
            Fix::text("run ").and_run("init"),
        ));
    }
    if let Some(e) = selected.and_then(|r| r.store_failed.clone()) {
        // A missing, locked or hung keyring: logging in would fail the same way.
        return Err(Error::Store(e));
    }
    if let Some(e) = selected.and_then(|r| r.check_failed.clone()) {
        // Kite did not say whether the token works: a new login would not help.
        let fix = e.fix();
        return Err(
            Error::failed(format!("could not check the token with Kite: {e}"), fix).caused_by(e),
        );
    }
    if usable {
        Ok(0)
    } else {
        if !ctx.json {
            ctx.ui
                .say(format!("hint: {}", ctx.render(&crate::error::login_fix())));
        }
        Ok(crate::error::exit::LOGIN_NEEDED)
    }
}

fn inspect(ctx: &Ctx<'_>, name: &str, meta: &ProfileMeta, check: bool) -> Report {
    let entries = Entries::new(name, ctx.sandbox, meta.app.as_deref());
    let mut r = Report {
        name: name.to_string(),
        meta: meta.clone(),
        store: meta.store.as_str().to_string(),
        api_key_masked: None,
        secret_stored: false,
        token: TokenState::None,
        pending_rotation: None,
        origin: None,
        check: None,
        check_failed: None,
        store_failed: None,
    };
    let store = match ctx.open_recorded(meta) {
        Ok(s) => s,
        Err(e) => {
            r.store_failed = Some(e);
            return r;
        }
    };
    r.store = store.describe();
    let app = match load_app(store.as_ref(), &entries) {
        Ok(a) => a,
        Err(e) => {
            r.store_failed = Some(e);
            return r;
        }
    };
    if let Some(a) = &app {
        r.api_key_masked = Some(a.api_key.masked());
        r.secret_stored = !a.api_secret.is_empty();
    }
    let now = ctx.ports.clock.now();
    match load_session(store.as_ref(), &entries) {
        Ok(Some(s)) if s.is_valid_at(now) => {
            r.token = TokenState::Valid {
                expires: format_ist(s.expires_at),
                left: humanize_left(s.time_left(now)),
                seconds: s.time_left(now).as_secs(),
            };
            if check && let Some(a) = &app {
                r.check = Some(match ctx.ports.kite.profile(&a.api_key, &s.access_token) {
                    Ok(p) => Ok(format!(
                        "Kite accepts the token ({} {})",
                        p.user_name, p.user_id
                    )),
                    Err(e) => {
                        let shown = format!("{e}");
                        if !e.is_token_error() {
                            r.check_failed = Some(e);
                        }
                        Err(shown)
                    }
                });
            }
        }
        Ok(Some(s)) => {
            r.token = TokenState::Expired {
                at: format_ist(s.expires_at),
            }
        }
        Ok(None) => {}
        Err(e) => {
            r.store_failed = Some(e);
        }
    }
    let config = ctx.config.load().unwrap_or_default();
    let exists = |p: &str| config.get(p, ctx.sandbox).is_some();
    r.pending_rotation = crate::commands::rotation_owner(store.as_ref(), &entries, name, exists);
    if !matches!(r.token, TokenState::None) {
        r.origin = crate::commands::import::load_origin(store.as_ref(), &entries)
            .ok()
            .flatten();
    }
    r
}

/// The reports grouped by app, in the order of each app's first profile by name; a
/// profile an earlier release wrote (no app yet) is a group of its own.
fn by_app(reports: &[Report]) -> Vec<Vec<&Report>> {
    let mut groups: Vec<Vec<&Report>> = Vec::new();
    for r in reports {
        let same = groups
            .iter_mut()
            .find(|g| r.meta.app.is_some() && g[0].meta.app == r.meta.app);
        match same {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    groups
}

/// The app's name as people know it: the console's app name when known, and the id.
fn app_label(first: &Report) -> String {
    let name = first.meta.app_name.as_deref().map(|n| format!("{n:?} "));
    match &first.meta.app {
        Some(id) => match name {
            Some(n) => format!("app {n}({id})"),
            None => format!("app {id}"),
        },
        None => format!(
            "app {}of profile {} (from an earlier release: filed under the app on its next command)",
            name.unwrap_or_default(),
            first.name
        ),
    }
}

fn print_heading(ctx: &Ctx<'_>, group: &[&Report]) {
    let first = group[0];
    let key = group
        .iter()
        .find_map(|r| r.api_key_masked.as_deref())
        .unwrap_or("not stored");
    ctx.ui.say(format!(
        "{} — api_key {key}, {} plan",
        app_label(first),
        plans::text(first.meta.plan).name
    ));
}

fn app_json(group: &[&Report]) -> serde_json::Value {
    let first = group[0];
    let names = |f: fn(&Report) -> bool| -> Vec<&str> {
        group
            .iter()
            .filter(|r| f(r))
            .map(|r| r.name.as_str())
            .collect()
    };
    json!({
        "id": first.meta.app,
        "name": first.meta.app_name,
        "api_key": group.iter().find_map(|r| r.api_key_masked.as_deref()),
        "plan": plans::text(first.meta.plan).name,
        "profiles": names(|_| true),
        "needs_login": names(Report::needs_login),
    })
}

fn print_report(ctx: &Ctx<'_>, r: &Report) {
    let marker = if r.name == ctx.profile { "*" } else { " " };
    let user = r
        .meta
        .user_name
        .as_deref()
        .map(|u| format!(" ({u})"))
        .unwrap_or_default();
    ctx.ui.say(format!(
        "  {marker} {}{} — client {}{user}, {} plan{}",
        r.name,
        if ctx.sandbox { " (sandbox)" } else { "" },
        r.meta.client_id,
        plans::text(r.meta.plan).name,
        if r.meta.verified {
            ""
        } else {
            ", NOT verified (--skip-verify)"
        }
    ));
    let store_note = match r.meta.store {
        crate::cli::StoreChoice::File => "  (plaintext file: chosen with --store file)",
        crate::cli::StoreChoice::SandboxFile => {
            "  (plaintext file: sandbox only, no OS keyring here)"
        }
        _ => "",
    };
    ctx.ui
        .say(format!("      store       {}{store_note}", r.store));
    if let Some(e) = &r.store_failed {
        ctx.ui.say(format!("      problem     {e}"));
        return;
    }
    ctx.ui.say(format!(
        "      api_key     {}",
        r.api_key_masked.as_deref().unwrap_or("not stored")
    ));
    ctx.ui.say(format!(
        "      api_secret  {}",
        if r.secret_stored {
            "stored"
        } else {
            "not stored"
        }
    ));
    match &r.token {
        TokenState::None => ctx.ui.say("      token       none — log in"),
        TokenState::Valid { expires, left, .. } => ctx.ui.say(format!(
            "      token       valid until {expires} IST (in {left})"
        )),
        TokenState::Expired { at } => ctx
            .ui
            .say(format!("      token       expired at {at} IST — log in")),
    }
    if let Some(o) = &r.origin {
        ctx.ui.say(format!("      session     {}", o.describe()));
    }
    if r.needs_login() {
        ctx.ui.say(format!(
            "      today       needs today's login: {}",
            RunFlags::new(&r.name, ctx.sandbox, ctx.sandbox_url.as_deref()).command("login")
        ));
    } else {
        ctx.ui.say("      today       logged in");
    }
    match &r.check {
        Some(Ok(m)) => ctx.ui.say(format!("      check       {m}")),
        Some(Err(m)) => ctx.ui.say(format!("      check       FAILED: {m}")),
        None => {}
    }
    if let Some(owner) = &r.pending_rotation {
        ctx.ui.say(format!(
            "      rotation    INTERRUPTED — run `{}` (or --abort)",
            RunFlags::new(owner, ctx.sandbox, ctx.sandbox_url.as_deref())
                .command("regenerate --resume")
        ));
    }
    ctx.ui
        .say(format!("      redirect    {}", r.meta.redirect_url));
    match &r.meta.orders {
        Some(o) => {
            ctx.ui.say(format!(
                "      orders      checked {} IST: ipv4 {}, ipv6 {}",
                format_ist(o.checked_at),
                o.ipv4.verdict,
                o.ipv6.verdict
            ));
            for f in [&o.ipv4, &o.ipv6] {
                ctx.ui.say(format!("                  {}", f.detail));
            }
        }
        None => ctx.ui.say(format!(
            "      orders      not checked yet — run `{}`",
            RunFlags::new(&r.name, ctx.sandbox, ctx.sandbox_url.as_deref()).command("doctor")
        )),
    }
}

fn to_json(ctx: &Ctx<'_>, r: &Report) -> serde_json::Value {
    let token = match &r.token {
        TokenState::None => json!({ "state": "none" }),
        TokenState::Valid {
            expires, seconds, ..
        } => json!({ "state": "valid", "expires_ist": expires, "seconds_left": seconds }),
        TokenState::Expired { at } => json!({ "state": "expired", "expired_ist": at }),
    };
    json!({
        "name": r.name,
        "selected": r.name == ctx.profile,
        "sandbox": ctx.sandbox,
        "client_id": r.meta.client_id,
        "app": r.meta.app,
        "user_name": r.meta.user_name,
        "plan": plans::text(r.meta.plan).name,
        "verified": r.meta.verified,
        "store": r.store,
        "store_error": r.store_failed.as_ref().map(ToString::to_string),
        "api_key": r.api_key_masked,
        "api_secret_stored": r.secret_stored,
        "token": token,
        "pending_rotation": r.pending_rotation.is_some(),
        "origin": r.origin.as_ref().map(|o| json!({"from": o.from, "via": o.via, "at_ist": crate::session::format_ist(o.at), "text": o.describe()})),
        "check": r.check.as_ref().map(|c| match c { Ok(m) => json!({"ok": true, "message": m}), Err(m) => json!({"ok": false, "message": m}) }),
        "redirect_url": r.meta.redirect_url,
        "orders": r.meta.orders,
        "usable": r.usable(),
        "needs_login": r.needs_login(),
    })
}
