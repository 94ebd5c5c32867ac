//! Steps 1 to 4 of the wizard: the console login, the plan, the app's form, the key and
//! secret.

use crate::cli::{InitArgs, Plan};
use crate::error::Error;
use crate::secret::Secret;
use crate::store::AppCredentials;
use crate::ui::capitalize;
use crate::validate;

use super::{CALLBACK_PATH, DEFAULT_PORT};
use crate::commands::login_flow::say_opened;
use crate::commands::{Ctx, plans};

/// Returns the client ID, and the context the rest of the wizard runs with (self-play
/// decided here, before the console step).
pub(super) fn step_console<'a>(ctx: &Ctx<'a>, args: &InitArgs) -> Result<(Ctx<'a>, String), Error> {
    ctx.ui
        .heading("Step 1 of 7 — Log in to the Kite developer console");
    let ctx = &ctx.with_self_play()?;
    let self_play = ctx.self_play;
    let demo_id = match ctx.ports.sandbox_control {
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
        let raw = ctx.ports.prompter.input(
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
        return Ok((ctx.clone(), client_id));
    }
    ctx.ui
        .say("Open the developer console and log in with your client ID, password and the");
    ctx.ui
        .say("6-digit TOTP code from your authenticator app (the same one you use for Kite):");
    ctx.ui.say(format!("  {console}"));
    open_console(ctx);
    ctx.ports
        .prompter
        .pause("Press Enter when you are logged in to the console")?;
    Ok((ctx.clone(), client_id))
}

pub(super) fn step_plan(ctx: &Ctx<'_>, args: &InitArgs) -> Result<Plan, Error> {
    ctx.ui.heading("Step 2 of 7 — Choose the plan");
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
        .ports
        .prompter
        .select("Which plan is (or will be) the app on?", &refs, 0)?;
    Ok(plans::PLANS[pick].plan)
}

pub(super) fn step_create_app(
    ctx: &Ctx<'_>,
    client_id: &str,
    is_port_free: &dyn Fn(u16) -> bool,
) -> Result<(String, String), Error> {
    ctx.ui.heading("Step 3 of 7 — Create the app");
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
    if ctx.self_play {
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
        "One app serves your client ID ({client_id}) and those of your immediate family (spouse,"
    ));
    ctx.ui.say(
        "dependent children, dependent parents), each added to the app's client IDs on the console.",
    );
    let join = crate::error::RunFlags::new("NAME", ctx.sandbox, ctx.sandbox_url.as_deref())
        .command(&format!("init --app {}", ctx.profile));
    ctx.ui
        .say("A family member's profile uses this app, with no new key or secret:");
    ctx.ui.say(format!("  {join}"));
    Ok((redirect_url, app_name))
}

pub(super) fn step_capture(
    ctx: &Ctx<'_>,
    client_id: &str,
    redirect_url: &str,
    plan: Plan,
) -> Result<AppCredentials, Error> {
    ctx.ui
        .heading("Step 4 of 7 — Copy the api_key and api_secret");
    if let Some(control) = ctx.ports.sandbox_control.filter(|_| ctx.self_play) {
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
    let key = ctx
        .ports
        .prompter
        .input("api_key", None, &validate::api_key)?;
    ctx.ui
        .say("The api_secret is not shown while you type or paste it.");
    let key_for_check = key.clone();
    let secret = ctx.ports.prompter.secret("api_secret", &move |s| {
        validate::api_secret(s, Some(&key_for_check))
    })?;
    Ok(AppCredentials {
        api_key: Secret::new(key),
        api_secret: secret.trimmed(),
    })
}
/// Opens the console; the URL is on screen already, so no "open it yourself".
pub(super) fn open_console(ctx: &Ctx<'_>) {
    say_opened(
        ctx.ui,
        &ctx.ports.browser.open(&ctx.endpoints.console),
        false,
    );
}
