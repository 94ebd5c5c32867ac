//! Step 5: the verifying login, what probably went wrong when it fails, and init's final
//! error for a failed verification.

use std::time::Duration;

use crate::cli::InitArgs;
use crate::error::{Error, Fix};
use crate::kite::KiteError;
use crate::kite::error::Refusal;
use crate::secret::Secret;
use crate::session::StoredSession;
use crate::store::AppCredentials;
use crate::validate;

use super::Draft;
use crate::commands::Ctx;
use crate::commands::login_flow::{
    LoginFailure, LoginOutcome, LoginParams, Verification, app_label, not_enabled_fix,
    say_not_enabled_note, verify_login,
};

const SECRET: &str = "Re-enter the api_secret";
const KEY: &str = "Re-enter the api_key";
const URL: &str = "Re-enter the redirect URL registered on the console";

/// Verifies by a real login, retrying with only the wrong field changed.
pub(super) fn step_verify(
    ctx: &Ctx<'_>,
    draft: &mut Draft,
    args: &InitArgs,
) -> Result<Option<StoredSession>, Error> {
    ctx.ui.heading("Step 5 of 7 — Verify with a real login");
    if args.skip_verify {
        ctx.ui.warn(
            "SKIPPING VERIFICATION (--skip-verify): nothing was checked against Kite. A wrong key,",
        );
        ctx.ui
            .warn("secret or redirect URL will only show up at your first `kite-setup login`.");
        return Ok(None);
    }
    if !ctx.self_play {
        let how = if draft.joins_family() {
            format!(
                "{} logs in as they do on Kite (their own client ID, password and TOTP) and authorises the app once.",
                draft.client_id
            )
        } else {
            "Log in as you do on Kite (client ID, password, TOTP) and authorise the app once."
                .to_string()
        };
        ctx.ui.say(how);
    }
    let timeout = Duration::from_secs(args.timeout);
    say_family_note(ctx, draft);
    let out = verify_login(
        ctx,
        &mut DraftLogin {
            draft,
            timeout,
            ask: true,
        },
    )?;
    say_verified(ctx, &out);
    Ok(Some(out.session))
}

/// The `--no-input` verification: one login; a failure is diagnosed and ends the run.
pub(super) fn verify_once(
    ctx: &Ctx<'_>,
    draft: &mut Draft,
    timeout: Duration,
) -> Result<StoredSession, Error> {
    say_family_note(ctx, draft);
    let out = verify_login(
        ctx,
        &mut DraftLogin {
            draft,
            timeout,
            ask: false,
        },
    )?;
    say_verified(ctx, &out);
    Ok(out.session)
}

/// A family member's login: Kite refuses it on its own page until the client ID is on the
/// app's client IDs, and kite-setup never sees that page, so it says so beforehand.
fn say_family_note(ctx: &Ctx<'_>, draft: &Draft) {
    if draft.joins_family() {
        say_not_enabled_note(ctx, &draft.client_id, &draft_app_label(draft));
    }
}

fn draft_app_label(draft: &Draft) -> String {
    app_label(draft.app_name.as_deref(), &draft.creds.api_key)
}

/// The fix for a family member's login that Kite did not let through.
fn family_fix(draft: &Draft) -> String {
    let others: Vec<&str> = draft.app_clients.iter().map(String::as_str).collect();
    not_enabled_fix(&draft.client_id, &draft_app_label(draft), &others)
}

fn say_verified(ctx: &Ctx<'_>, out: &LoginOutcome) {
    ctx.ui.ok(format!(
        "Verified: Kite logged in {} ({})",
        out.profile.user_name, out.session.user_id
    ));
}

/// A verifying login with the draft's values; `ask` lets the person fix a field and retry.
struct DraftLogin<'a> {
    draft: &'a mut Draft,
    timeout: Duration,
    ask: bool,
}

impl Verification for DraftLogin<'_> {
    fn params(&self) -> LoginParams<'_> {
        LoginParams::via_browser(
            &self.draft.client_id,
            &self.draft.creds,
            &self.draft.redirect_url,
            self.timeout,
        )
    }

    fn recover(&mut self, ctx: &Ctx<'_>, failure: LoginFailure) -> Result<(), Error> {
        let draft = &mut *self.draft;
        let (diagnosis, mut fixes) = diagnose(ctx, &failure, draft);
        if draft.joins_family() {
            // The key, secret and redirect URL are the family member's app's, stored and
            // working: nothing to re-enter here.
            fixes.clear();
        }
        if !self.ask {
            for line in &diagnosis {
                ctx.ui.say(format!("  {line}"));
            }
            return Err(verify_error(failure, ctx, draft));
        }
        ctx.ui.gap();
        for line in &diagnosis {
            ctx.ui.warn(line);
        }
        let mut items: Vec<&str> = fixes.clone();
        items.push("Try the login again");
        items.push("Quit without saving anything");
        let pick = ctx
            .ports
            .prompter
            .select("What do you want to do?", &items, 0)?;
        let creds = draft.creds.clone();
        match items[pick] {
            SECRET => {
                let key = creds.api_key.expose().to_string();
                let s = ctx
                    .ports
                    .prompter
                    .secret("api_secret", &move |s| validate::api_secret(s, Some(&key)))?;
                draft.creds = AppCredentials {
                    api_key: creds.api_key.clone(),
                    api_secret: s.trimmed(),
                };
            }
            KEY => {
                let k = ctx
                    .ports
                    .prompter
                    .input("api_key", None, &validate::api_key)?;
                draft.creds = AppCredentials {
                    api_key: Secret::new(k),
                    api_secret: creds.api_secret.clone(),
                };
            }
            URL => {
                let u = ctx.ports.prompter.input(
                    "Redirect URL exactly as registered",
                    Some(&draft.redirect_url),
                    &|s| {
                        crate::redirect::validate_redirect_url(s)
                            .map(|_| ())
                            .map_err(|e| format!("{e} ({})", ctx.render(&e.fix())))
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
        Ok(())
    }
}

/// A failed verification as init's final error. Kite refusing the credentials being set
/// up means a wrong value (exit 1, the fix in the hint), not "login needed" (exit 4, which
/// tells a script to run `kite-setup login` for a profile that does not exist yet).
pub(super) fn verify_error(failure: LoginFailure, ctx: &Ctx<'_>, draft: &Draft) -> Error {
    match failure {
        // A family member's login that never came back: most likely Kite's "not enabled"
        // page, which only the browser saw.
        LoginFailure::NoCallback { waited } if draft.joins_family() => Error::failed(
            format!(
                "no login by {} reached {} in {} s",
                draft.client_id,
                draft.redirect_url,
                waited.as_secs()
            ),
            format!(
                "if Kite said \"The user is not enabled for the app\": {}",
                family_fix(draft)
            ),
        ),
        LoginFailure::SelfPlay(detail) if draft.joins_family() => Error::failed(
            format!("the login as {} failed: {detail}", draft.client_id),
            family_fix(draft),
        ),
        LoginFailure::Exchange(e) | LoginFailure::Profile(e)
            if e.refusal() == Some(Refusal::UserNotEnabled) =>
        {
            Error::failed(e.to_string(), family_fix(draft)).caused_by(e)
        }
        LoginFailure::Exchange(e) | LoginFailure::Profile(e) if e.is_token_error() => {
            let fix: Fix = match e.refusal() {
                Some(Refusal::BadChecksum) => e.fix(),
                Some(Refusal::RequestTokenSpent) => {
                    "run init again and finish the login within 5 minutes (a request token works once)"
                        .into()
                }
                _ => "check the api_key on the app's page, and that the app's subscription is active on the console's billing page".into(),
            };
            Error::failed(e.to_string(), fix).caused_by(e)
        }
        other => other.into_error(ctx, &draft.redirect_url),
    }
}

/// What probably went wrong and which fields the user may want to fix.
fn diagnose(
    ctx: &Ctx<'_>,
    failure: &LoginFailure,
    draft: &Draft,
) -> (Vec<String>, Vec<&'static str>) {
    match failure {
        LoginFailure::NoCallback { waited } if draft.joins_family() => (
            vec![
                format!("No login by {} came back in {} s.", draft.client_id, waited.as_secs()),
                format!("If the browser showed \"The user is not enabled for the app\": {}.", family_fix(draft)),
            ],
            vec![],
        ),
        LoginFailure::SelfPlay(detail) => (
            vec![
                format!("The sandbox's login as {} failed: {}.", draft.client_id, detail.trim_end_matches('.')),
                format!("If it says the user is not enabled for the app: {}.", family_fix(draft)),
            ],
            vec![],
        ),
        LoginFailure::NoCallback { waited } => (
            vec![
                format!("No login redirect arrived in {} s at {}.", waited.as_secs(), draft.redirect_url),
                "Kite sends the browser to the redirect URL registered for the app; it must be exactly the one above.".into(),
                format!("If the browser showed \"The user is not enabled for the app\": {} is not on the app's client IDs; {}.", draft.client_id, family_fix(draft)),
                "If the browser could not connect, a firewall may block the port.".into(),
            ],
            vec![URL],
        ),
        LoginFailure::Cancelled => (vec!["The login was cancelled on Kite's authorisation page: choose Authorize next time.".into()], vec![]),
        LoginFailure::Exchange(e) | LoginFailure::Profile(e)
            if e.refusal() == Some(Refusal::UserNotEnabled) =>
        {
            (
                vec![format!(
                    "Kite said the user is not enabled for the app: {} is not on its client IDs; {}.",
                    draft.client_id,
                    family_fix(draft)
                )],
                vec![],
            )
        }
        LoginFailure::Exchange(e) | LoginFailure::Profile(e) => diagnose_kite(ctx, e, SECRET, KEY),
        LoginFailure::WrongUser { expected, got } => (
            vec![
                format!("Kite logged in {got}, but this profile is for {expected}."),
                format!("Log out of Kite in the browser and log in as {expected}, or run init for {got} in its own profile."),
            ],
            vec![],
        ),
        LoginFailure::RedirectUrl(e) => (vec![format!("{e}."), ctx.render(&e.fix())], vec![URL]),
        LoginFailure::Listen(e) => (vec![format!("{e}."), ctx.render(&e.fix())], vec![URL]),
        LoginFailure::BadCallback(e) => (vec![format!("{e}."), ctx.render(&e.fix())], vec![]),
        LoginFailure::Io(d) => (vec![format!("The login failed: {d}.")], vec![]),
        LoginFailure::Interrupted => (vec![], vec![]),
    }
}

fn diagnose_kite(
    ctx: &Ctx<'_>,
    e: &KiteError,
    secret: &'static str,
    key: &'static str,
) -> (Vec<String>, Vec<&'static str>) {
    match e {
        KiteError::Api { refusal: Refusal::BadChecksum, .. } => (
            vec![
                "Kite said \"Invalid checksum\": the api_secret does not belong to this api_key.".into(),
                "Copy the secret again, or check that key and secret come from the same app (regenerated since?).".into(),
            ],
            vec![secret, key],
        ),
        KiteError::Api { refusal: Refusal::RequestTokenSpent, .. } => (
            vec!["Kite said the login's request token is invalid or expired: it lives about 5 minutes and works once. Log in again.".into()],
            vec![],
        ),
        KiteError::Api { refusal: Refusal::BadKeyOrToken, .. } => (
            vec![
                "Kite said \"Incorrect api_key or access_token\": the api_key is wrong, or the app's subscription is not active.".into(),
                "Check the key on the app's page, and the plan on the console's billing page.".into(),
            ],
            vec![key],
        ),
        other => (vec![format!("{other}."), ctx.render(&other.fix())], vec![]),
    }
}
