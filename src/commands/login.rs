//! `kite-setup login`: the daily browser login with the stored credentials.

use std::time::Duration;

use crate::cli::LoginArgs;
use crate::error::Error;
use crate::session::{StoredSession, format_ist, humanize_until};

use super::Ctx;
use super::login_flow::{LoginParams, browser_login};

pub fn run(ctx: &Ctx<'_>, args: &LoginArgs) -> Result<u8, Error> {
    let profile = ctx.open_profile()?;
    ctx.mention_pending_rotation(profile.store());
    let creds = profile.require_app()?;
    let meta = &profile.meta;
    if !args.force
        && let Some(s) = profile.valid_session(ctx.ports.clock.now())?
    {
        // A token about to die is as good as dead: log in again for a fresh one.
        if !s.dies_soon(ctx.ports.clock.now()) {
            ctx.ui.ok(format!(
                "Already logged in {} — use --force to log in again",
                describe(ctx, &s)
            ));
            return Ok(0);
        }
        ctx.ui.say(format!(
            "The stored token dies in under 5 minutes ({}): logging in again.",
            describe(ctx, &s)
        ));
    }
    if args.paste && !ctx.interactive {
        ctx.ui
            .say("Reading the redirected URL from standard input.");
    }
    let ctx = &ctx.with_self_play()?;
    let params = LoginParams {
        client_id: &meta.client_id,
        creds: &creds,
        redirect_url: &meta.redirect_url,
        timeout: Duration::from_secs(args.timeout),
        paste: args.paste,
        no_browser: args.no_browser,
    };
    let out = browser_login(ctx, &params).map_err(|f| f.into_error(ctx, &meta.redirect_url))?;
    // Stored only if the profile is still the one logged in to; the token it replaces is
    // revoked (a forced login would otherwise leave it alive, held by nobody).
    profile.replace_session(ctx, &creds, &out.session)?;
    ctx.ui
        .ok(format!("Logged in {}", describe(ctx, &out.session)));
    warn_if_dies_soon(ctx, &out.session);
    Ok(0)
}

/// After a login: warns when the new token dies within minutes (a login just before
/// 06:00 IST gets a token that dies at 06:00), and says what to do.
pub fn warn_if_dies_soon(ctx: &Ctx<'_>, s: &StoredSession) {
    if s.dies_soon(ctx.ports.clock.now()) {
        ctx.ui.warn(format!(
            "this token dies at 06:00 IST, {}: log in again after 06:00 IST with {} for today's token",
            humanize_until(s.time_left(ctx.ports.clock.now())),
            ctx.render(&crate::error::Fix::run("login"))
        ));
    }
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
        "as {name}({}) — valid until {} IST ({})",
        s.user_id,
        &time[..5.min(time.len())],
        humanize_until(s.time_left(ctx.ports.clock.now()))
    )
}
