//! `kite-setup init`: the guided wizard. Pre-flight
//! (keyring, clock), then seven steps: console login, plan, create the app, capture key and
//! secret, verify by a real login (and the plan Kite shows), store, and the static IP
//! for orders (probed, never failing init). Nothing is written until the credentials are
//! verified (or `--skip-verify` says so loudly), and a failed write restores what was there.
//!
//! The questions of steps 1 to 4 are in `wizard`, the verifying login and its diagnoses
//! in `verify`, the `--no-input` form in `scripted`.

mod family;
mod orders;
mod scripted;
mod verify;
mod wizard;

use std::sync::Arc;
use std::time::Duration;

use crate::cli::{InitArgs, Plan, StoreChoice};
use crate::error::Error;
use crate::profile::{ProfileMeta, validate_profile_name};
use crate::session::{StoredSession, format_ist, humanize_until};
use crate::store::{AppCredentials, Store};

use super::{Ctx, plans};
use verify::step_verify;
use wizard::{step_capture, step_console, step_create_app, step_plan};

/// The path kite-setup registers; the port is chosen free at setup time.
pub const CALLBACK_PATH: &str = "/kite-setup/callback";
pub const DEFAULT_PORT: u16 = 5123;
/// TOTP codes tolerate about ±30 s.
const MAX_SKEW: Duration = Duration::from_secs(30);

/// What the wizard gathered.
struct Draft {
    client_id: String,
    /// The app this profile joins (a family member's, with `--app`), or `None` for its own.
    app: Option<String>,
    plan: Plan,
    redirect_url: String,
    app_name: Option<String>,
    /// The store of the app joined (its credentials are there); `None`: `--store` or the
    /// default.
    store: Option<StoreChoice>,
    /// The client IDs of the profiles already on the family member's app joined (none for
    /// the profile's own app).
    app_clients: Vec<String>,
    creds: AppCredentials,
}

impl Draft {
    /// Whether this profile joins a family member's app (rather than set up or keep its
    /// own): its login is another client ID's on an app already here.
    fn joins_family(&self) -> bool {
        !self.app_clients.is_empty()
    }
}

pub fn run(
    ctx: &Ctx<'_>,
    args: &InitArgs,
    is_port_free: &dyn Fn(u16) -> bool,
) -> Result<u8, Error> {
    validate_profile_name(&ctx.profile)?;
    if !ctx.interactive {
        return scripted::run_non_interactive(ctx, args);
    }
    let config = ctx.config.load()?;
    let existing = config.get(&ctx.profile, ctx.sandbox).cloned();
    if let Some(app_profile) = &args.app {
        if existing.is_some() && !args.force {
            return Err(Error::usage(
                format!("profile {} already exists", ctx.profile_label()),
                "pass --force to replace it, or --profile NAME for another one",
            ));
        }
        return family::run_wizard(ctx, args, app_profile);
    }

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
    if existing.is_none()
        && let Some(app_profile) = family::offer(ctx, &config)?
    {
        return family::run_wizard(ctx, args, &app_profile);
    }

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
        let pick = ctx.ports.prompter.select("What now?", &items, 0)?;
        match items[pick] {
            s if s.starts_with("Keep") => reuse = stored,
            s if s.starts_with("Quit") => {
                ctx.ui.say("Nothing was changed.");
                return Ok(0);
            }
            _ => {}
        }
    }

    let (ctx, mut draft) = if let (Some(creds), Some(meta)) = (reuse, &existing) {
        let draft = Draft {
            client_id: meta.client_id.clone(),
            // The stored credentials stay as they are: the profile keeps its app.
            app: meta.app.clone(),
            plan: meta.plan,
            redirect_url: meta.redirect_url.clone(),
            app_name: meta.app_name.clone(),
            store: None,
            app_clients: Vec::new(),
            creds,
        };
        (ctx.clone(), draft)
    } else {
        let (ctx, client_id) = step_console(ctx, args)?;
        let plan = step_plan(&ctx, args)?;
        let (redirect_url, app_name) = step_create_app(&ctx, &client_id, is_port_free)?;
        let creds = step_capture(&ctx, &client_id, &redirect_url, plan)?;
        let draft = Draft {
            client_id,
            app: None,
            plan,
            redirect_url,
            app_name: Some(app_name),
            store: None,
            app_clients: Vec::new(),
            creds,
        };
        (ctx, draft)
    };
    let ctx = &ctx;

    let session = step_verify(ctx, &mut draft, args)?;
    if let Some(s) = &session {
        orders::verify_plan(ctx, &mut draft, s);
    }
    step_store(
        ctx,
        store.as_ref(),
        &draft,
        session.as_ref(),
        true,
        existing.is_none(),
    )?;
    finish_orders(ctx, args, &draft, session.as_ref(), true)?;
    summary(ctx, &draft, session.as_ref());
    Ok(0)
}

/// Step 7 and its record. Runs after the store: whatever it finds, what Kite accepted is
/// kept. Only a prompt (Ctrl-C) or a failed metadata write ends init with an error.
fn finish_orders(
    ctx: &Ctx<'_>,
    args: &InitArgs,
    draft: &Draft,
    session: Option<&StoredSession>,
    interactive: bool,
) -> Result<(), Error> {
    let record = orders::step_orders(ctx, args, draft, session, interactive)?;
    if record.is_some() {
        super::orders_probe::save_record(ctx, record, None)?;
    }
    Ok(())
}

/// The keyring round trip before any question: a secret that cannot be stored must not
/// be typed.
fn preflight_store(ctx: &Ctx<'_>) -> Result<Arc<dyn Store>, Error> {
    let (store, _) = ctx.open_new_store()?;
    crate::store::backends::probe(&store)?;
    ctx.ui.ok(format!("Keyring works ({})", store.describe()));
    Ok(store)
}

/// The clock check: the console's TOTP fails when the clock is off by more than ~30 s.
fn preflight_clock(ctx: &Ctx<'_>) {
    match ctx.ports.kite.server_time() {
        Ok(server) => {
            let skew = ctx.ports.clock.now().duration_since(server).unsigned_abs();
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
/// Stores the profile as one transaction (`txn::store_profile`: staged entry, metadata,
/// app and session entries, under the profile's lock): a failure puts back what was there,
/// and a kill leaves the old profile or the new one, whole. `must_be_new`: the profile did
/// not exist when this run looked, and must not have been created meanwhile.
fn step_store(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    draft: &Draft,
    session: Option<&StoredSession>,
    interactive: bool,
    must_be_new: bool,
) -> Result<(), Error> {
    if interactive {
        ctx.ui.heading("Step 6 of 7 — Store");
    }
    let now = ctx.ports.clock.now();
    let used_choice = match draft.store {
        Some(choice) => choice,
        None => {
            ctx.ports
                .stores
                .open(ctx.store_flag.unwrap_or(StoreChoice::Auto))?
                .1
        }
    };
    let meta = ProfileMeta {
        client_id: draft.client_id.clone(),
        app: draft.app.clone(),
        plan: draft.plan,
        redirect_url: draft.redirect_url.clone(),
        store: used_choice,
        app_name: draft.app_name.clone(),
        user_name: session
            .map(|s| s.user_name.clone())
            .filter(|n| !n.is_empty()),
        verified: session.is_some(),
        orders: None,
        created_at: now,
        updated_at: now,
    };
    super::txn::store_profile(ctx, store, meta, &draft.creds, session, must_be_new)?;
    if draft.app.is_some() {
        ctx.ui.ok(format!(
            "Uses the app's api_key and api_secret, stored once in the {} for every profile on it",
            store.describe()
        ));
    } else {
        ctx.ui.ok(format!(
            "Stored api_key and api_secret in the {} (read back and checked)",
            store.describe()
        ));
    }
    if session.is_some() {
        ctx.ui.ok("Stored today's access token");
    }
    ctx.ui.ok(format!(
        "Wrote the profile (no secrets) to {}",
        ctx.config.path().display()
    ));
    Ok(())
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
        let left = s.time_left(ctx.ports.clock.now());
        ctx.ui.say(format!(
            "  token       valid until {} IST ({})",
            format_ist(s.expires_at),
            humanize_until(left)
        ));
        super::login::warn_if_dies_soon(ctx, s);
    }
    ctx.ui.gap();
    ctx.ui.say("Next:");
    // The comments line up whatever flags the commands carry.
    let next = [
        (
            ctx.command("exec -- python bot.py"),
            "your script gets KITE_API_KEY and KITE_ACCESS_TOKEN",
        ),
        (
            format!("eval \"$({})\"", ctx.command("env")),
            "or put them in this shell",
        ),
        (
            ctx.command("login"),
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

#[cfg(test)]
mod tests;
