//! `kite-setup login`: the daily browser login with the stored credentials.

use std::time::Duration;

use crate::cli::LoginArgs;
use crate::error::Error;
use crate::session::{StoredSession, format_ist, humanize_left};

use super::Ctx;
use super::login_flow::{LoginParams, browser_login};

pub fn run(ctx: &Ctx<'_>, args: &LoginArgs) -> Result<u8, Error> {
    let profile = ctx.open_profile()?;
    ctx.mention_pending_rotation(profile.store());
    let creds = profile.require_app()?;
    if creds.api_secret.is_empty() {
        // A profile made by `import`: the session was pushed, the secret stayed behind.
        return Err(Error::login_needed(
            format!(
                "profile {} here holds a pushed session only: no api_secret to log in with",
                ctx.profile_label()
            ),
            crate::error::Fix::text("log in on the machine with the secret and ")
                .and_run("push HOST")
                .and(" again (or push once with --with-app to log in here)"),
        ));
    }
    let meta = &profile.meta;
    if !args.force
        && let Some(s) = profile.valid_session(ctx.clock.now())?
    {
        ctx.ui.ok(format!(
            "Already logged in {} — use --force to log in again",
            describe(ctx, &s)
        ));
        return Ok(0);
    }
    if args.paste && !ctx.interactive {
        ctx.ui
            .say("Reading the redirected URL from standard input.");
    }
    ctx.offer_self_play()?;
    let params = LoginParams {
        client_id: &meta.client_id,
        creds: &creds,
        redirect_url: &meta.redirect_url,
        timeout: Duration::from_secs(args.timeout),
        paste: args.paste,
        no_browser: args.no_browser,
    };
    let out = browser_login(ctx, &params).map_err(|f| f.into_error(ctx, &meta.redirect_url))?;
    profile.save_session(&out.session)?;
    // The session is this machine's own now, not a pushed one.
    let _ = profile.store().delete(&profile.entries.origin());
    ctx.ui
        .ok(format!("Logged in {}", describe(ctx, &out.session)));
    Ok(0)
}

/// `as NAME (AB1234) — valid until 06:00 IST (in 14 h 3 m)`.
pub fn describe(ctx: &Ctx<'_>, s: &StoredSession) -> String {
    let name = if s.user_name.is_empty() {
        String::new()
    } else {
        format!("{} ", s.user_name)
    };
    let expiry = format_ist(s.expires_at);
    let time = expiry.split(' ').nth(1).unwrap_or("06:00:00");
    format!(
        "as {name}({}) — valid until {} IST (in {})",
        s.user_id,
        &time[..5.min(time.len())],
        humanize_left(s.time_left(ctx.clock.now()))
    )
}
