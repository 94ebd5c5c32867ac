//! `kite-setup init`: the guided wizard (product.md "init: the wizard"). Pre-flight
//! (keyring, clock), then six steps: console login, plan, create the app, capture key and
//! secret, verify by a real login, store. Nothing is written until the credentials are
//! verified (or `--skip-verify` says so loudly), and a failed write restores what was there.

use std::sync::Arc;
use std::time::Duration;

use crate::cli::{InitArgs, Plan, StoreChoice};
use crate::error::Error;
use crate::kite::{ErrorType, KiteError};
use crate::profile::{ProfileMeta, validate_profile_name};
use crate::secret::Secret;
use crate::session::{StoredSession, format_ist, humanize_until};
use crate::store::{AppCredentials, Store, set_json_verified};
use crate::validate;

use super::login_flow::{LoginFailure, LoginParams, browser_login};
use super::{Ctx, plans};

/// The path kite-setup registers; the port is chosen free at setup time.
pub const CALLBACK_PATH: &str = "/kite-setup/callback";
pub const DEFAULT_PORT: u16 = 5123;
/// TOTP codes tolerate about ±30 s.
const MAX_SKEW: Duration = Duration::from_secs(30);

/// What the wizard gathered.
struct Draft {
    client_id: String,
    plan: Plan,
    redirect_url: String,
    app_name: Option<String>,
    creds: AppCredentials,
}

pub fn run(
    ctx: &Ctx<'_>,
    args: &InitArgs,
    is_port_free: &dyn Fn(u16) -> bool,
) -> Result<u8, Error> {
    validate_profile_name(&ctx.profile)?;
    if !ctx.interactive {
        return run_non_interactive(ctx, args);
    }
    let config = ctx.config.load()?;
    let existing = config.get(&ctx.profile, ctx.sandbox).cloned();

    ctx.ui.heading(&format!(
        "kite-setup init — profile {}{}",
        ctx.profile_label(),
        if ctx.sandbox {
            ", against the local sandbox"
        } else {
            ""
        }
    ));
    ctx.ui
        .say("This sets up a Kite Connect app for your Zerodha account and keeps its api_key and");
    ctx.ui.say("api_secret in your OS keyring, checked by a real login. Ctrl-C at any point changes nothing.");

    let store = preflight_store(ctx)?;
    preflight_clock(ctx);

    let mut reuse: Option<AppCredentials> = None;
    if let Some(meta) = &existing {
        ctx.ui.gap();
        ctx.ui.say(format!(
            "Profile {} already exists: client {}, {} plan, redirect {}{}.",
            ctx.profile_label(),
            meta.client_id,
            plans::text(meta.plan).name,
            meta.redirect_url,
            if meta.verified { "" } else { ", NOT verified" }
        ));
        let stored = crate::store::load_app(store.as_ref(), &ctx.entries())
            .ok()
            .flatten();
        let mut items = Vec::new();
        if stored.is_some() {
            items.push("Keep its app: verify the stored credentials again");
        }
        items.push("Set up a new app (replaces this profile once verified)");
        items.push("Quit and change nothing");
        let pick = ctx.prompter.select("What now?", &items, 0)?;
        match items[pick] {
            s if s.starts_with("Keep") => reuse = stored,
            s if s.starts_with("Quit") => {
                ctx.ui.say("Nothing was changed.");
                return Ok(0);
            }
            _ => {}
        }
    }

    let mut draft = if let (Some(creds), Some(meta)) = (reuse, &existing) {
        Draft {
            client_id: meta.client_id.clone(),
            plan: meta.plan,
            redirect_url: meta.redirect_url.clone(),
            app_name: meta.app_name.clone(),
            creds,
        }
    } else {
        let client_id = step_console(ctx, args)?;
        let plan = step_plan(ctx, args)?;
        let (redirect_url, app_name) = step_create_app(ctx, &client_id, is_port_free)?;
        let creds = step_capture(ctx, &client_id, &redirect_url, plan)?;
        Draft {
            client_id,
            plan,
            redirect_url,
            app_name: Some(app_name),
            creds,
        }
    };

    let session = step_verify(ctx, &mut draft, args)?;
    step_store(ctx, store.as_ref(), &draft, session.as_ref(), true)?;
    summary(ctx, &draft, session.as_ref());
    Ok(0)
}

/// The keyring round trip before any question: a secret that cannot be stored must not
/// be typed.
fn preflight_store(ctx: &Ctx<'_>) -> Result<Arc<dyn Store>, Error> {
    let choice = ctx.store_flag.unwrap_or(StoreChoice::Auto);
    let (store, _) = ctx.stores.open(choice)?;
    crate::store::backends::probe(&store)?;
    ctx.ui.ok(format!("Keyring works ({})", store.describe()));
    Ok(store)
}

/// The clock check: the console's TOTP fails when the clock is off by more than ~30 s.
fn preflight_clock(ctx: &Ctx<'_>) {
    match ctx.kite.server_time() {
        Ok(server) => {
            let skew = ctx.clock.now().duration_since(server).unsigned_abs();
            if skew <= MAX_SKEW {
                ctx.ui.ok(format!(
                    "Clock is in step with Kite (off by {} s)",
                    skew.as_secs()
                ));
            } else {
                ctx.ui.warn(format!(
                    "Your clock is off by {} s from Kite's: TOTP codes will be rejected. Sync it (e.g. `timedatectl set-ntp true`) before logging in.",
                    skew.as_secs()
                ));
            }
        }
        Err(e) => ctx.ui.warn(format!(
            "Could not check the clock against Kite ({e}); TOTP needs a clock within 30 s."
        )),
    }
}

fn step_console(ctx: &Ctx<'_>, args: &InitArgs) -> Result<String, Error> {
    ctx.ui
        .heading("Step 1 of 6 — Log in to the Kite developer console");
    let self_play = ctx.offer_self_play()?;
    let demo_id = match ctx.sandbox_control {
        Some(c) => c.demo_client_id().ok(),
        None => None,
    };
    let client_id = if let Some(id) = &args.client_id {
        validate::client_id(id).map_err(|m| Error::usage(m, "pass --client-id like AB1234"))?
    } else {
        if let Some(demo) = &demo_id {
            ctx.ui.say(format!(
                "The sandbox's demo account is {demo} (press Enter to use it)."
            ));
        }
        let raw = ctx.prompter.input(
            "Your Zerodha client ID (like AB1234)",
            demo_id.as_deref(),
            &|s| validate::client_id(s).map(|_| ()),
        )?;
        validate::client_id(&raw).map_err(|m| Error::usage(m, "a client ID looks like AB1234"))?
    };
    let console = ctx.endpoints.console.clone();
    if self_play {
        ctx.ui.say(format!(
            "(sandbox: kite-setup plays the console's part; it is at {console} if you want to look)"
        ));
        return Ok(client_id);
    }
    ctx.ui
        .say("Open the developer console and log in with your client ID, password and the");
    ctx.ui
        .say("6-digit TOTP code from your authenticator app (the same one you use for Kite):");
    ctx.ui.say(format!("  {console}"));
    open_quietly(ctx, &console);
    ctx.prompter
        .pause("Press Enter when you are logged in to the console")?;
    Ok(client_id)
}

fn step_plan(ctx: &Ctx<'_>, args: &InitArgs) -> Result<Plan, Error> {
    ctx.ui.heading("Step 2 of 6 — Choose the plan");
    if let Some(p) = args.plan {
        ctx.ui
            .say(format!("Plan: {} (from --plan)", plans::text(p).name));
        return Ok(p);
    }
    for p in &plans::PLANS {
        ctx.ui
            .say(format!("  {} ({}): {}.", p.name, p.price, p.can));
        ctx.ui.say(format!("      {}.", capitalize(p.cannot)));
    }
    ctx.ui.say("If a paid subscription lapses, Kite answers every call with 403 \"Incorrect api_key or access_token\".");
    let items: Vec<String> = plans::PLANS
        .iter()
        .map(|p| format!("{} — {}", p.name, p.price))
        .collect();
    let refs: Vec<&str> = items.iter().map(String::as_str).collect();
    let pick = ctx
        .prompter
        .select("Which plan is (or will be) the app on?", &refs, 0)?;
    Ok(plans::PLANS[pick].plan)
}

fn step_create_app(
    ctx: &Ctx<'_>,
    client_id: &str,
    is_port_free: &dyn Fn(u16) -> bool,
) -> Result<(String, String), Error> {
    ctx.ui.heading("Step 3 of 6 — Create the app");
    let port = (DEFAULT_PORT..DEFAULT_PORT.saturating_add(200))
        .find(|p| is_port_free(*p))
        .ok_or_else(|| {
            Error::failed(
                format!(
                    "no free port between {DEFAULT_PORT} and {} for the login redirect",
                    DEFAULT_PORT + 199
                ),
                "free one of those ports, or pass --redirect-url with a port of your choice",
            )
        })?;
    let redirect_url = format!("http://127.0.0.1:{port}{CALLBACK_PATH}");
    let app_name = format!("kite-setup-{}", client_id.to_ascii_lowercase());
    if ctx.self_play.get() {
        ctx.ui
            .say("kite-setup will create the app in the sandbox itself, with these values:");
    } else {
        ctx.ui.say(
            "On the console, choose \"Create new app\" and fill in the form exactly like this:",
        );
    }
    ctx.ui.say(format!(
        "  App name           {app_name}   (any name you like)"
    ));
    ctx.ui.say(format!("  Zerodha Client ID  {client_id}"));
    ctx.ui.say(format!("  Redirect URL       {redirect_url}"));
    ctx.ui.say("  Postback URL       (leave empty)");
    ctx.ui.say("  Description        (optional)");
    if port == DEFAULT_PORT {
        ctx.ui.say(format!(
            "Port {port} is free now; kite-setup will listen there for each login."
        ));
    } else {
        ctx.ui.say(format!(
            "Port {DEFAULT_PORT} is taken, so this uses {port}, free now."
        ));
    }
    ctx.ui.say(format!(
        "An app serves only the client ID it is created for ({client_id}). A family member's"
    ));
    ctx.ui
        .say("account needs its own app and its own profile (kite-setup --profile NAME init).");
    Ok((redirect_url, app_name))
}

fn step_capture(
    ctx: &Ctx<'_>,
    client_id: &str,
    redirect_url: &str,
    plan: Plan,
) -> Result<AppCredentials, Error> {
    ctx.ui
        .heading("Step 4 of 6 — Copy the api_key and api_secret");
    if let Some(control) = ctx.sandbox_control.filter(|_| ctx.self_play.get()) {
        let plan = match plan {
            Plan::Personal => "personal",
            Plan::Connect => "connect",
        };
        let creds = control.create_app(client_id, redirect_url, plan)?;
        ctx.ui.ok(format!(
            "Created the app in the sandbox: api_key {}, api_secret captured (hidden)",
            creds.api_key.masked()
        ));
        return Ok(creds);
    }
    ctx.ui
        .say("The app's page shows the api_key and the api_secret. The secret is shown only once:");
    ctx.ui
        .say("copy it now. (Lost it later? `kite-setup regenerate` makes a new one.)");
    let key = ctx.prompter.input("api_key", None, &validate::api_key)?;
    ctx.ui
        .say("The api_secret is not shown while you type or paste it.");
    let key_for_check = key.clone();
    let secret = ctx.prompter.secret("api_secret", &move |s| {
        validate::api_secret(s, Some(&key_for_check))
    })?;
    Ok(AppCredentials {
        api_key: Secret::new(key),
        api_secret: secret.trimmed(),
    })
}

/// Verifies by a real login, retrying with only the wrong field changed.
fn step_verify(
    ctx: &Ctx<'_>,
    draft: &mut Draft,
    args: &InitArgs,
) -> Result<Option<StoredSession>, Error> {
    ctx.ui.heading("Step 5 of 6 — Verify with a real login");
    if args.skip_verify {
        ctx.ui.warn(
            "SKIPPING VERIFICATION (--skip-verify): nothing was checked against Kite. A wrong key,",
        );
        ctx.ui
            .warn("secret or redirect URL will only show up at your first `kite-setup login`.");
        return Ok(None);
    }
    if !ctx.self_play.get() {
        ctx.ui.say(
            "Log in as you do on Kite (client ID, password, TOTP) and authorise the app once.",
        );
    }
    loop {
        let creds = draft.creds.clone();
        let params = LoginParams::via_browser(
            &draft.client_id,
            &creds,
            &draft.redirect_url,
            Duration::from_secs(args.timeout),
        );
        let failure = match browser_login(ctx, &params) {
            Ok(out) => {
                ctx.ui.ok(format!(
                    "Verified: Kite logged in {} ({})",
                    out.profile.user_name, out.session.user_id
                ));
                return Ok(Some(out.session));
            }
            Err(LoginFailure::Interrupted) => return Err(Error::Interrupted),
            Err(f) => f,
        };
        let (diagnosis, fixes) = diagnose(&failure, draft);
        ctx.ui.gap();
        for line in &diagnosis {
            ctx.ui.warn(line);
        }
        let mut items: Vec<&str> = fixes.clone();
        items.push("Try the login again");
        items.push("Quit without saving anything");
        let pick = ctx.prompter.select("What do you want to do?", &items, 0)?;
        match items[pick] {
            "Re-enter the api_secret" => {
                let key = creds.api_key.expose().to_string();
                let s = ctx
                    .prompter
                    .secret("api_secret", &move |s| validate::api_secret(s, Some(&key)))?;
                draft.creds = AppCredentials {
                    api_key: creds.api_key.clone(),
                    api_secret: s.trimmed(),
                };
            }
            "Re-enter the api_key" => {
                let k = ctx.prompter.input("api_key", None, &validate::api_key)?;
                draft.creds = AppCredentials {
                    api_key: Secret::new(k),
                    api_secret: creds.api_secret.clone(),
                };
            }
            "Re-enter the redirect URL registered on the console" => {
                let u = ctx.prompter.input(
                    "Redirect URL exactly as registered",
                    Some(&draft.redirect_url),
                    &|s| {
                        crate::redirect::validate_redirect_url(s)
                            .map(|_| ())
                            .map_err(|e| format!("{e} ({})", e.hint()))
                    },
                )?;
                draft.redirect_url = u;
            }
            "Try the login again" => {}
            _ => {
                ctx.ui.say("Nothing was saved.");
                return Err(verify_error(failure, ctx, draft));
            }
        }
    }
}

/// A failed verification as init's final error. Kite refusing the credentials being set
/// up means a wrong value (exit 1, the fix in the hint), not "login needed" (exit 4, which
/// tells a script to run `kite-setup login` for a profile that does not exist yet).
fn verify_error(failure: LoginFailure, ctx: &Ctx<'_>, draft: &Draft) -> Error {
    match failure {
        LoginFailure::Exchange(e) | LoginFailure::Profile(e) if e.is_token_error() => {
            let msg = e.kite_message().unwrap_or_default();
            let hint = if msg.contains("checksum") {
                e.hint()
            } else if msg.contains("Token is invalid") {
                "run init again and finish the login within 5 minutes (a request token works once)"
                    .into()
            } else {
                "check the api_key on the app's page, and that the app's subscription is active on the console's billing page".into()
            };
            Error::failed(e.to_string(), hint)
        }
        other => other.into_error(ctx, &draft.redirect_url),
    }
}

/// What probably went wrong and which fields the user may want to fix (product.md step 5).
fn diagnose(failure: &LoginFailure, draft: &Draft) -> (Vec<String>, Vec<&'static str>) {
    const SECRET: &str = "Re-enter the api_secret";
    const KEY: &str = "Re-enter the api_key";
    const URL: &str = "Re-enter the redirect URL registered on the console";
    match failure {
        LoginFailure::NoCallback { waited } => (
            vec![
                format!("No login redirect arrived in {} s at {}.", waited.as_secs(), draft.redirect_url),
                "Kite sends the browser to the redirect URL registered for the app; it must be exactly the one above.".into(),
                "If the browser showed \"The user is not enabled for the app\", you logged in with another client ID than the app's.".into(),
                "If the browser could not connect, a firewall may block the port.".into(),
            ],
            vec![URL],
        ),
        LoginFailure::Cancelled => (vec!["The login was cancelled on Kite's authorisation page: choose Authorize next time.".into()], vec![]),
        LoginFailure::Exchange(e) | LoginFailure::Profile(e) => diagnose_kite(e, SECRET, KEY),
        LoginFailure::WrongUser { expected, got } => (
            vec![
                format!("Kite logged in {got}, but this profile is for {expected}."),
                format!("Log out of Kite in the browser and log in as {expected}, or run init for {got} in its own profile."),
            ],
            vec![],
        ),
        LoginFailure::RedirectUrl(e) => (vec![format!("{e}."), e.hint()], vec![URL]),
        LoginFailure::Listen(e) => (vec![format!("{e}."), e.hint()], vec![URL]),
        LoginFailure::BadCallback(e) => (vec![format!("{e}."), e.hint()], vec![]),
        LoginFailure::Io(d) => (vec![format!("The login failed: {d}.")], vec![]),
        LoginFailure::Interrupted => (vec![], vec![]),
    }
}

fn diagnose_kite(
    e: &KiteError,
    secret: &'static str,
    key: &'static str,
) -> (Vec<String>, Vec<&'static str>) {
    let msg = e.kite_message().unwrap_or_default();
    match e {
        KiteError::Api { error_type: ErrorType::Token, .. } if msg.contains("checksum") => (
            vec![
                "Kite said \"Invalid checksum\": the api_secret does not belong to this api_key.".into(),
                "Copy the secret again, or check that key and secret come from the same app (regenerated since?).".into(),
            ],
            vec![secret, key],
        ),
        KiteError::Api { error_type: ErrorType::Token, .. } if msg.contains("Token is invalid") => (
            vec!["Kite said the login's request token is invalid or expired: it lives about 5 minutes and works once. Log in again.".into()],
            vec![],
        ),
        KiteError::Api { error_type: ErrorType::Token, .. } => (
            vec![
                "Kite said \"Incorrect api_key or access_token\": the api_key is wrong, or the app's subscription is not active.".into(),
                "Check the key on the app's page, and the plan on the console's billing page.".into(),
            ],
            vec![key],
        ),
        KiteError::Api { error_type: ErrorType::Input, .. } if msg.contains("not enabled") => (
            vec!["Kite said the user is not enabled for the app: log in with the client ID the app was created for.".into()],
            vec![],
        ),
        other => (vec![format!("{other}."), other.hint()], vec![]),
    }
}

/// Writes the app and session entries (read back), then the metadata. On any failure the
/// entries are put back as they were.
fn step_store(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    draft: &Draft,
    session: Option<&StoredSession>,
    interactive: bool,
) -> Result<(), Error> {
    if interactive {
        ctx.ui.heading("Step 6 of 6 — Store");
    }
    let entries = ctx.entries();
    let creds = &draft.creds;
    let before_app = store.get(&entries.app())?;
    let before_session = store.get(&entries.session())?;
    let written = (|| -> Result<(), Error> {
        set_json_verified(store, &entries.app(), creds)?;
        match session {
            Some(s) => set_json_verified(store, &entries.session(), s)?,
            None => {
                store.delete(&entries.session())?;
            }
        }
        let mut config = ctx.config.load()?;
        let now = ctx.clock.now();
        let created_at = config
            .get(&ctx.profile, ctx.sandbox)
            .map_or(now, |m| m.created_at);
        let (_, used_choice) = ctx
            .stores
            .open(ctx.store_flag.unwrap_or(StoreChoice::Auto))?;
        config.profiles_mut(ctx.sandbox).insert(
            ctx.profile.clone(),
            ProfileMeta {
                client_id: draft.client_id.clone(),
                plan: draft.plan,
                redirect_url: draft.redirect_url.clone(),
                store: used_choice,
                app_name: draft.app_name.clone(),
                user_name: session
                    .map(|s| s.user_name.clone())
                    .filter(|n| !n.is_empty()),
                verified: session.is_some(),
                created_at,
                updated_at: now,
            },
        );
        ctx.config.save(&config)?;
        Ok(())
    })();
    if let Err(e) = written {
        restore(store, &entries.app(), before_app.as_ref());
        restore(store, &entries.session(), before_session.as_ref());
        return Err(e);
    }
    ctx.ui.ok(format!(
        "Stored api_key and api_secret in the {} (read back and checked)",
        store.describe()
    ));
    if session.is_some() {
        ctx.ui.ok("Stored today's access token");
    }
    ctx.ui.ok(format!(
        "Wrote the profile (no secrets) to {}",
        ctx.config.path().display()
    ));
    Ok(())
}

fn restore(store: &dyn Store, entry: &str, before: Option<&Secret>) {
    let _ = match before {
        Some(v) => store.set(entry, v),
        None => store.delete(entry).map(|_| ()),
    };
}

fn summary(ctx: &Ctx<'_>, draft: &Draft, session: Option<&StoredSession>) {
    let creds = &draft.creds;
    ctx.ui.gap();
    ctx.ui
        .say(format!("Profile {} is ready:", ctx.profile_label()));
    ctx.ui.say(format!("  client      {}", draft.client_id));
    ctx.ui
        .say(format!("  plan        {}", plans::text(draft.plan).name));
    ctx.ui
        .say(format!("  api_key     {}", creds.api_key.masked()));
    ctx.ui.say("  api_secret  stored");
    ctx.ui.say(format!("  redirect    {}", draft.redirect_url));
    if let Some(s) = session {
        let left = s.time_left(ctx.clock.now());
        ctx.ui.say(format!(
            "  token       valid until {} IST ({})",
            format_ist(s.expires_at),
            humanize_until(left)
        ));
        super::login::warn_if_dies_soon(ctx, s);
    }
    let flags = ctx.flags_prefix();
    ctx.ui.gap();
    ctx.ui.say("Next:");
    // The comments line up whatever flags the commands carry.
    let next = [
        (
            format!("kite-setup{flags} exec -- python bot.py"),
            "your script gets KITE_API_KEY and KITE_ACCESS_TOKEN",
        ),
        (
            format!("eval \"$(kite-setup{flags} env)\""),
            "or put them in this shell",
        ),
        (
            format!("kite-setup{flags} login"),
            "every morning: tokens die at 06:00 IST",
        ),
    ];
    let width = next
        .iter()
        .map(|(c, _)| c.chars().count())
        .max()
        .unwrap_or(0);
    for (command, comment) in &next {
        ctx.ui.say(format!("  {command:<width$}   # {comment}"));
    }
}

/// The non-interactive form: every value from flags, the secret from stdin.
fn run_non_interactive(ctx: &Ctx<'_>, args: &InitArgs) -> Result<u8, Error> {
    let client_id = args
        .client_id
        .as_deref()
        .ok_or_else(|| Error::missing_flag("--client-id", "the Zerodha client ID"))?;
    let client_id = validate::client_id(client_id).map_err(|m| {
        Error::usage(
            format!("--client-id: {m}"),
            "pass it like --client-id AB1234",
        )
    })?;
    let api_key = args
        .api_key
        .as_deref()
        .ok_or_else(|| Error::missing_flag("--api-key", "the app's api_key"))?
        .trim()
        .to_string();
    validate::api_key(&api_key).map_err(|m| {
        Error::usage(
            format!("--api-key: {m}"),
            "copy the api_key from the app's page on the console",
        )
    })?;
    let redirect_url = args.redirect_url.as_deref().ok_or_else(|| {
        Error::missing_flag("--redirect-url", "the app's registered redirect URL")
    })?;
    crate::redirect::validate_redirect_url(redirect_url)
        .map_err(|e| Error::usage(format!("--redirect-url: {e}"), e.hint()))?;
    let plan = args
        .plan
        .ok_or_else(|| Error::missing_flag("--plan", "the app's plan (personal or connect)"))?;
    if !args.api_secret_stdin {
        return Err(Error::usage(
            "the api_secret is needed: pass --api-secret-stdin and send it on standard input",
            "e.g. `secret-tool lookup ... | kite-setup init --no-input ... --api-secret-stdin`; secrets are never flags",
        ));
    }
    let line = (ctx.read_stdin_line)().map_err(|e| {
        Error::failed(
            format!("cannot read the api_secret from stdin: {e}"),
            "send the secret as one line on standard input",
        )
    })?;
    let secret = Secret::new(line).trimmed();
    validate::api_secret(secret.expose(), Some(&api_key)).map_err(|m| {
        Error::usage(
            format!("api_secret on stdin: {m}"),
            "send only the secret, one line",
        )
    })?;

    let config = ctx.config.load()?;
    if config.get(&ctx.profile, ctx.sandbox).is_some() && !args.force {
        return Err(Error::usage(
            format!("profile {} already exists", ctx.profile_label()),
            "pass --force to replace it, or --profile NAME for another one",
        ));
    }
    let store = {
        let (s, _) = ctx
            .stores
            .open(ctx.store_flag.unwrap_or(StoreChoice::Auto))?;
        crate::store::backends::probe(&s)?;
        s
    };
    let mut draft = Draft {
        client_id,
        plan,
        redirect_url: redirect_url.to_string(),
        app_name: None,
        creds: AppCredentials {
            api_key: Secret::new(api_key),
            api_secret: secret,
        },
    };
    let session = if args.skip_verify {
        ctx.ui
            .warn("SKIPPING VERIFICATION (--skip-verify): nothing was checked against Kite.");
        None
    } else {
        ctx.offer_self_play()?;
        let params = LoginParams::via_browser(
            &draft.client_id,
            &draft.creds,
            &draft.redirect_url,
            Duration::from_secs(args.timeout),
        );
        match browser_login(ctx, &params) {
            Ok(out) => {
                ctx.ui.ok(format!(
                    "Verified: Kite logged in {} ({})",
                    out.profile.user_name, out.session.user_id
                ));
                Some(out.session)
            }
            Err(f) => {
                let (diagnosis, _) = diagnose(&f, &draft);
                for line in &diagnosis {
                    ctx.ui.say(format!("  {line}"));
                }
                return Err(verify_error(f, ctx, &draft));
            }
        }
    };
    draft.app_name = None;
    step_store(ctx, store.as_ref(), &draft, session.as_ref(), false)?;
    Ok(0)
}

fn open_quietly(ctx: &Ctx<'_>, url: &url::Url) {
    match ctx.browser.open(url) {
        Ok(crate::redirect::BrowserOutcome::Opened) => ctx.ui.say("(opened in your browser)"),
        Ok(crate::redirect::BrowserOutcome::NotOpened(why)) => {
            ctx.ui.say(format!("(no browser opened: {why})"));
        }
        Err(e) => ctx.ui.say(format!("(could not open a browser: {e})")),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| {
        f.to_uppercase().collect::<String>() + c.as_str()
    })
}
