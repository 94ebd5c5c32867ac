//! `init --no-input`: every value from flags, the secret from stdin, then the same
//! verification and store as the wizard.

use std::time::Duration;

use crate::cli::InitArgs;
use crate::error::{Error, Fix};
use crate::secret::Secret;
use crate::session::StoredSession;
use crate::store::AppCredentials;
use crate::validate;

use super::verify::verify_once;
use super::{Draft, step_store};
use crate::commands::Ctx;

/// The non-interactive form: every value from flags, the secret from stdin.
pub(super) fn run_non_interactive(ctx: &Ctx<'_>, args: &InitArgs) -> Result<u8, Error> {
    if let Some(app_profile) = &args.app {
        return super::family::run_scripted(ctx, args, app_profile);
    }
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
        .map_err(|e| Error::usage(format!("--redirect-url: {e}"), e.fix()))?;
    let plan = args
        .plan
        .ok_or_else(|| Error::missing_flag("--plan", "the app's plan (personal or connect)"))?;
    if !args.api_secret_stdin {
        return Err(Error::usage(
            "the api_secret is needed: pass --api-secret-stdin and send it on standard input",
            Fix::text("e.g. ")
                .and_piped(
                    "secret-tool lookup ... | ",
                    "init --no-input ... --api-secret-stdin",
                )
                .and("; secrets are never flags"),
        ));
    }
    let line = (ctx.ports.read_stdin_line)().map_err(|e| Error::StdinUnreadable {
        what: "the api_secret",
        detail: e.to_string(),
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
        let (s, _) = ctx.open_new_store()?;
        crate::store::backends::probe(&s)?;
        s
    };
    let mut draft = Draft {
        client_id,
        app: None,
        plan,
        redirect_url: redirect_url.to_string(),
        app_name: None,
        store: None,
        app_clients: Vec::new(),
        creds: AppCredentials {
            api_key: Secret::new(api_key),
            api_secret: secret,
        },
    };
    let session = verify_scripted(ctx, args, &mut draft)?;
    draft.app_name = None;
    step_store(
        ctx,
        store.as_ref(),
        &draft,
        session.as_ref(),
        false,
        !args.force,
    )?;
    super::finish_orders(ctx, args, &draft, session.as_ref(), false)?;
    Ok(0)
}

/// The `--no-input` verification (one login, or none with `--skip-verify`, said loudly)
/// and the plan Kite shows: a new app's and a family member's alike.
pub(super) fn verify_scripted(
    ctx: &Ctx<'_>,
    args: &InitArgs,
    draft: &mut Draft,
) -> Result<Option<StoredSession>, Error> {
    let session = if args.skip_verify {
        ctx.ui
            .warn("SKIPPING VERIFICATION (--skip-verify): nothing was checked against Kite.");
        None
    } else {
        let ctx = &ctx.with_self_play()?;
        Some(verify_once(ctx, draft, Duration::from_secs(args.timeout))?)
    };
    if let Some(s) = &session {
        super::orders::verify_plan(ctx, draft, s);
    }
    Ok(session)
}
