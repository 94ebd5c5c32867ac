//! A family member's profile on an app that is already here (docs/apps.md): Kite lets one
//! app serve the developer's own client ID and those of immediate family, so the new
//! profile is only a client ID and its own session on that app. No key or secret is asked
//! for; the app's client IDs list on the console must name the client ID, and the family
//! member's own login proves it does. The app's credentials are not written again
//! (`Draft.app` set: `txn::store_profile` joins the app).

use std::collections::BTreeMap;

use crate::cli::InitArgs;
use crate::error::{Error, Fix};
use crate::profile::{Config, ProfileMeta};
use crate::store::AppCredentials;
use crate::validate;

use super::verify::step_verify;
use super::{Draft, finish_orders, step_store, summary};
use crate::commands::Ctx;
use crate::commands::handle::ProfileHandle;
use crate::commands::login_flow::{add_client_steps, app_label};

/// Who counts as family and what they share, as the wizard explains it.
pub(super) const FAMILY_RULE: [&str; 4] = [
    "Kite lets one app serve your own client ID and those of your immediate family (spouse,",
    "dependent children, dependent parents). Each family client ID must be added to the app's",
    "client IDs on the developer console. They may share your registered static IP: saving the",
    "IP Whitelist declares it is used only by you and your immediate family.",
];

/// The app of an existing profile, opened (and moved to the app layout first if an
/// earlier release wrote it).
pub(super) struct FamilyApp {
    /// The profile named by `--app` (or picked in the wizard).
    pub profile: String,
    pub meta: ProfileMeta,
    pub handle: ProfileHandle,
    pub creds: AppCredentials,
    /// The client IDs of every profile on the app.
    pub clients: Vec<String>,
}

impl FamilyApp {
    fn label(&self) -> String {
        app_label(self.meta.app_name.as_deref(), &self.creds.api_key)
    }
}

/// Opens the app of profile `name`: refuses a profile that does not exist, or the run's
/// own profile.
pub(super) fn open_app_of(ctx: &Ctx<'_>, name: &str) -> Result<FamilyApp, Error> {
    if name == ctx.profile {
        return Err(Error::usage(
            format!("--app {name} names the profile being set up"),
            "--app names another profile, whose app this one joins",
        ));
    }
    let config = ctx.config.load()?;
    let Some(meta) = config.get(name, ctx.sandbox).cloned() else {
        return Err(Error::usage(
            format!(
                "--app {name}: no {}profile {name} here",
                if ctx.sandbox { "sandbox " } else { "" }
            ),
            Fix::text("see the profiles and their apps with ").and_run("status"),
        ));
    };
    // Its own context: the handle's recovery, lock and migration are that profile's.
    let app_ctx = Ctx {
        profile: name.to_string(),
        store_flag: None,
        ..ctx.clone()
    };
    let handle = app_ctx.profile_handle(meta)?;
    let creds = handle.require_app()?;
    let meta = handle.meta.clone();
    let clients = match meta.app.as_deref() {
        Some(id) => ctx
            .config
            .load()?
            .profiles_on_app(id, ctx.sandbox)
            .map(|(_, m)| m.client_id.clone())
            .collect(),
        None => vec![meta.client_id.clone()],
    };
    if let Some(flag) = ctx.store_flag
        && flag != meta.store
    {
        return Err(Error::usage(
            format!(
                "--store {}: the app of profile {name} keeps its credentials in the {} store",
                flag.as_str(),
                meta.store.as_str()
            ),
            "drop --store: a family member's profile uses its app's store",
        ));
    }
    Ok(FamilyApp {
        profile: name.to_string(),
        meta,
        handle,
        creds,
        clients,
    })
}

/// Refuses a client ID that already logs in on the app: the same person has a profile.
fn check_new_client(ctx: &Ctx<'_>, app: &FamilyApp, client_id: &str) -> Result<(), String> {
    if client_id.eq_ignore_ascii_case(&app.meta.client_id) {
        let login = Ctx {
            profile: app.profile.clone(),
            ..ctx.clone()
        }
        .command("login");
        return Err(format!(
            "{client_id} is profile {}'s own client ID: that is the same person (use `{login}`)",
            app.profile
        ));
    }
    if app
        .clients
        .iter()
        .any(|c| c.eq_ignore_ascii_case(client_id))
    {
        return Err(format!(
            "{client_id} already has a profile on this app (see `{}`)",
            ctx.command("status")
        ));
    }
    Ok(())
}

fn draft_for(app: &FamilyApp, client_id: String) -> Draft {
    Draft {
        client_id,
        app: app.meta.app.clone(),
        plan: app.meta.plan,
        redirect_url: app.meta.redirect_url.clone(),
        app_name: app.meta.app_name.clone(),
        store: Some(app.meta.store),
        app_clients: app.clients.clone(),
        creds: app.creds.clone(),
    }
}

/// The flags that come from the app and may not be given with `--app`.
fn refuse_app_flags(args: &InitArgs) -> Result<(), Error> {
    let given = [
        ("--api-key", args.api_key.is_some()),
        ("--api-secret-stdin", args.api_secret_stdin),
        ("--redirect-url", args.redirect_url.is_some()),
        ("--plan", args.plan.is_some()),
    ];
    if let Some((flag, _)) = given.iter().find(|(_, on)| *on) {
        return Err(Error::usage(
            format!(
                "{flag} cannot be used with --app: the app's key, secret, redirect URL and plan are used"
            ),
            "drop it, or drop --app to set up a new app",
        ));
    }
    Ok(())
}

/// `init --no-input --client-id C --app PROFILE`.
pub(super) fn run_scripted(ctx: &Ctx<'_>, args: &InitArgs, app_profile: &str) -> Result<u8, Error> {
    refuse_app_flags(args)?;
    let client_id = args
        .client_id
        .as_deref()
        .ok_or_else(|| Error::missing_flag("--client-id", "the family member's client ID"))?;
    let client_id = validate::client_id(client_id).map_err(|m| {
        Error::usage(
            format!("--client-id: {m}"),
            "pass it like --client-id AB1234",
        )
    })?;
    refuse_existing(ctx, args)?;
    let app = open_app_of(ctx, app_profile)?;
    check_new_client(ctx, &app, &client_id).map_err(|m| {
        Error::usage(
            m,
            "--client-id is the family member's own client ID, not yet set up here",
        )
    })?;
    let mut draft = draft_for(&app, client_id);
    let session = super::scripted::verify_scripted(ctx, args, &mut draft)?;
    step_store(
        ctx,
        app.handle.store(),
        &draft,
        session.as_ref(),
        false,
        !args.force,
    )?;
    finish_orders(ctx, args, &draft, session.as_ref(), false)?;
    Ok(0)
}

fn refuse_existing(ctx: &Ctx<'_>, args: &InitArgs) -> Result<(), Error> {
    if ctx.config.load()?.get(&ctx.profile, ctx.sandbox).is_some() && !args.force {
        return Err(Error::usage(
            format!("profile {} already exists", ctx.profile_label()),
            "pass --force to replace it, or --profile NAME for another one",
        ));
    }
    Ok(())
}

/// The apps here (on this sandbox-ness), each with one profile that names it and the
/// profiles on it as `name (CLIENT)`. A profile an earlier release wrote is an app of
/// its own.
fn apps_here(config: &Config, except: &str, sandbox: bool) -> Vec<(String, String)> {
    let mut apps: BTreeMap<String, Vec<(&String, &ProfileMeta)>> = BTreeMap::new();
    for (name, meta) in config.profiles(sandbox) {
        if name == except {
            continue;
        }
        let key = meta.app.clone().unwrap_or_else(|| format!("\u{0}{name}"));
        apps.entry(key).or_default().push((name, meta));
    }
    apps.into_values()
        .map(|profiles| {
            let shown: Vec<String> = profiles
                .iter()
                .map(|(n, m)| format!("{n} ({})", m.client_id))
                .collect();
            (profiles[0].0.clone(), shown.join(", "))
        })
        .collect()
}

/// For a new profile when apps exist here: offers the app of a family member first.
/// Returns the profile whose app to use, or `None` for a new app.
pub(super) fn offer(ctx: &Ctx<'_>, config: &Config) -> Result<Option<String>, Error> {
    let apps = apps_here(config, &ctx.profile, ctx.sandbox);
    if apps.is_empty() {
        return Ok(None);
    }
    ctx.ui.gap();
    let items = [
        "Use the app of a family member (no new key or secret)",
        "Set up a new app",
    ];
    let pick = ctx.ports.prompter.select(
        "An app is set up here already. Which app will this profile use?",
        &items,
        0,
    )?;
    if pick != 0 {
        return Ok(None);
    }
    let shown: Vec<String> = apps
        .iter()
        .map(|(_, s)| format!("the app of {s}"))
        .collect();
    let refs: Vec<&str> = shown.iter().map(String::as_str).collect();
    let pick = ctx.ports.prompter.select("Which app?", &refs, 0)?;
    Ok(Some(apps[pick].0.clone()))
}

/// In the sandbox with kite-setup playing the browser (no browser here), offers to play
/// the console's part too: a new sandbox account for the family member, added to the
/// app's client IDs. Its client ID, or `None` to ask for one (declined, or not self-play).
fn sandbox_family_member(ctx: &Ctx<'_>, app: &FamilyApp) -> Result<Option<String>, Error> {
    let Some(control) = ctx.ports.sandbox_control.filter(|_| ctx.self_play) else {
        return Ok(None);
    };
    if !ctx.ports.prompter.confirm(
        "Create a family member's account in the sandbox and add it to the app's client IDs (as its console would)?",
        true,
    )? {
        return Ok(None);
    }
    let id = control.add_family_account(app.creds.api_key.expose())?;
    ctx.ui.ok(format!(
        "Created sandbox account {id} and added it to the app's client IDs"
    ));
    Ok(Some(id))
}

/// What the person does on the console before the family member's login: add the client
/// ID to the app (not shown when kite-setup played the console's part).
fn console_step(ctx: &Ctx<'_>, label: &str, client_id: &str) -> Result<(), Error> {
    if ctx.self_play {
        ctx.ui.say(format!(
            "(sandbox: the login is approved as {client_id}, which must be a sandbox account on the app's client IDs)"
        ));
    }
    ctx.ui.say(format!(
        "Add {client_id} to the app's client IDs, then log in as {client_id}:"
    ));
    ctx.ui.say(format!(
        "  {}",
        crate::ui::capitalize(&add_client_steps(client_id, label))
    ));
    ctx.ui.say(format!("  {}", ctx.endpoints.console));
    if !ctx.self_play {
        super::wizard::open_console(ctx);
    }
    ctx.ports.prompter.pause(&format!(
        "Press Enter when {client_id} is on the app's client IDs"
    ))?;
    Ok(())
}

/// The wizard's family path: the rule, the client ID, the console step, the login.
pub(super) fn run_wizard(ctx: &Ctx<'_>, args: &InitArgs, app_profile: &str) -> Result<u8, Error> {
    refuse_app_flags(args)?;
    let app = open_app_of(ctx, app_profile)?;
    let label = app.label();
    ctx.ui.heading(&format!(
        "A family member's profile on the app of {} ({})",
        app.profile, app.meta.client_id
    ));
    for line in FAMILY_RULE {
        ctx.ui.say(line);
    }
    let ctx = &ctx.with_self_play()?;
    let client_id = if let Some(id) = &args.client_id {
        let id =
            validate::client_id(id).map_err(|m| Error::usage(m, "pass --client-id like AB1234"))?;
        check_new_client(ctx, &app, &id)
            .map_err(|m| Error::usage(m, "--client-id is the family member's own client ID"))?;
        console_step(ctx, &label, &id)?;
        id
    } else if let Some(id) = sandbox_family_member(ctx, &app)? {
        id
    } else {
        let raw = ctx.ports.prompter.input(
            "The family member's Zerodha client ID (like CD5678)",
            None,
            &|s| validate::client_id(s).and_then(|id| check_new_client(ctx, &app, &id)),
        )?;
        let id = validate::client_id(&raw)
            .map_err(|m| Error::usage(m, "a client ID looks like AB1234"))?;
        console_step(ctx, &label, &id)?;
        id
    };
    ctx.ui.say(format!(
        "The app's key, secret and redirect URL are profile {}'s: nothing to copy.",
        app.profile
    ));
    let mut draft = draft_for(&app, client_id);
    let session = step_verify(ctx, &mut draft, args)?;
    if let Some(s) = &session {
        super::orders::verify_plan(ctx, &mut draft, s);
    }
    step_store(
        ctx,
        app.handle.store(),
        &draft,
        session.as_ref(),
        true,
        !args.force,
    )?;
    finish_orders(ctx, args, &draft, session.as_ref(), true)?;
    summary(ctx, &draft, session.as_ref());
    Ok(0)
}
