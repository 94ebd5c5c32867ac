//! The browser login shared by `init` (verification), `login` and `regenerate`: bind the
//! registered redirect URL, open the login page with a nonce, catch the redirect (or take
//! a pasted URL), exchange the request token, check who logged in, prove the token works.

use std::time::Duration;

use crate::error::Error;
use crate::kite::{KiteError, UserProfile};
use crate::redirect::{
    BrowserError, BrowserOutcome, CallbackError, ListenError, RedirectUrlError, WaitError,
    new_nonce, parse_callback, validate_redirect_url,
};
use crate::session::{StoredSession, expiry_after, parse_login_time};
use crate::store::AppCredentials;

use super::Ctx;

/// What a login needs.
pub struct LoginParams<'a> {
    /// The client ID the app belongs to; the login must be by this user.
    pub client_id: &'a str,
    pub creds: &'a AppCredentials,
    /// The redirect URL registered for the app.
    pub redirect_url: &'a str,
    pub timeout: Duration,
    /// Skip the listener and ask for the redirected URL.
    pub paste: bool,
    /// Print the URL only.
    pub no_browser: bool,
}

impl<'a> LoginParams<'a> {
    /// A login through the listener and the browser (no `--paste`, no `--no-browser`):
    /// the verification logins of `init` and `regenerate`.
    pub fn via_browser(
        client_id: &'a str,
        creds: &'a AppCredentials,
        redirect_url: &'a str,
        timeout: Duration,
    ) -> Self {
        Self {
            client_id,
            creds,
            redirect_url,
            timeout,
            paste: false,
            no_browser: false,
        }
    }
}

pub struct LoginOutcome {
    pub session: StoredSession,
    pub profile: UserProfile,
}

/// Why a login failed, precisely enough for the wizard's diagnoses.
#[derive(Debug)]
pub enum LoginFailure {
    RedirectUrl(RedirectUrlError),
    Listen(ListenError),
    /// No redirect reached the listener before the deadline.
    NoCallback {
        waited: Duration,
    },
    /// The user pressed Cancel on Kite's authorisation page.
    Cancelled,
    /// A pasted URL was not a usable redirect.
    BadCallback(CallbackError),
    /// `POST /session/token` failed.
    Exchange(KiteError),
    /// The token was issued but `GET /user/profile` refused it.
    Profile(KiteError),
    /// Someone else logged in.
    WrongUser {
        expected: String,
        got: String,
    },
    Interrupted,
    /// The listener or stdin failed.
    Io(String),
    /// The sandbox's self-player could not log in (what the login page would have shown a
    /// person, e.g. "The user is not enabled for the app."): nobody else will, so the
    /// login ends at once instead of waiting for a redirect.
    SelfPlay(String),
}

/// The words of the developer console's app page for adding a client ID, with the client
/// ID to add and the app (its name, or its masked api_key): the one place that says where
/// a family member's client ID goes.
pub fn add_client_steps(client_id: &str, app: &str) -> String {
    format!(
        "on the developer console open {app} → Client IDs → type {client_id} in \"Zerodha Client ID\" → Add client ID"
    )
}

/// The app as the console lists it: its name when kite-setup knows it, else its api_key
/// (masked; the console shows it on the app's page).
pub fn app_label(app_name: Option<&str>, api_key: &crate::secret::Secret) -> String {
    app_name.map_or_else(
        || format!("the app with api_key {}", api_key.masked()),
        |n| format!("app {n}"),
    )
}

/// The console form's grey placeholder: saved by mistake, it stands where a real client ID
/// should be.
pub const PLACEHOLDER_CLIENT_ID: &str = "AB1234";

/// A warning when one of `client_ids` is the console form's placeholder, `None` otherwise.
pub fn placeholder_warning<'a>(client_ids: impl IntoIterator<Item = &'a str>) -> Option<String> {
    client_ids
        .into_iter()
        .any(|c| c.eq_ignore_ascii_case(PLACEHOLDER_CLIENT_ID))
        .then(|| {
            format!(
                "{PLACEHOLDER_CLIENT_ID} is the grey placeholder of the console's client ID field: if the app's Client IDs show {PLACEHOLDER_CLIENT_ID}, the placeholder was saved instead of the real client ID (remove it and add the real one)"
            )
        })
}

/// What to do when Kite says "The user is not enabled for the app." for `client_id`.
pub fn not_enabled_fix(client_id: &str, app: &str, others: &[&str]) -> String {
    let mut fix = format!(
        "{}, then log in again as {client_id}",
        add_client_steps(client_id, app)
    );
    if let Some(w) = placeholder_warning(std::iter::once(client_id).chain(others.iter().copied())) {
        fix.push_str("; ");
        fix.push_str(&w);
    }
    fix
}

/// Says, with the login URL of a profile on a shared app, what to do if Kite refuses it:
/// in the browser flow Kite shows this refusal on its own page and kite-setup never sees
/// it. Not in sandbox self-play, where kite-setup makes the login and sees the refusal.
pub fn say_not_enabled_note(ctx: &Ctx<'_>, client_id: &str, app: &str) {
    if !ctx.self_play {
        ctx.ui.say(format!(
            "If Kite says \"The user is not enabled for the app\", add {client_id} to the app's client IDs: {}.",
            add_client_steps(client_id, app)
        ));
    }
}

/// Runs one login. The caller stores the result.
pub fn browser_login(ctx: &Ctx<'_>, p: &LoginParams<'_>) -> Result<LoginOutcome, LoginFailure> {
    let target = validate_redirect_url(p.redirect_url).map_err(LoginFailure::RedirectUrl)?;
    let nonce = new_nonce();
    let login_url = ctx
        .endpoints
        .login_url(&p.creds.api_key, &[("state", nonce.as_str())]);

    let request_token = if p.paste {
        show_url(ctx, &login_url, p)?;
        paste(ctx, &target, &nonce)?
    } else {
        let pending = ctx
            .ports
            .redirect
            .bind(&target, &nonce)
            .map_err(LoginFailure::Listen)?;
        show_url(ctx, &login_url, p)?;
        let started = ctx.ports.monotonic.now();
        let mut wait_ui = (ctx.ports.wait_ui)();
        let waited = pending.wait(started + p.timeout, wait_ui.as_mut());
        drop(wait_ui);
        match waited {
            Ok(cb) => cb.request_token,
            Err(WaitError::PasteRequested) => paste(ctx, &target, &nonce)?,
            Err(WaitError::Timeout { .. }) => {
                return Err(LoginFailure::NoCallback {
                    waited: ctx.ports.monotonic.now().saturating_duration_since(started),
                });
            }
            Err(WaitError::Cancelled) => return Err(LoginFailure::Cancelled),
            Err(WaitError::Aborted) => return Err(LoginFailure::Interrupted),
            Err(e) => return Err(LoginFailure::Io(e.to_string())),
        }
    };

    let data = ctx
        .ports
        .kite
        .create_session(&p.creds.api_key, &request_token, &p.creds.api_secret)
        .map_err(LoginFailure::Exchange)?;
    if !data.user_id.eq_ignore_ascii_case(p.client_id) {
        // Not ours to keep: kill it so no stray token stays alive.
        let _ = ctx
            .ports
            .kite
            .invalidate(&p.creds.api_key, &data.access_token);
        return Err(LoginFailure::WrongUser {
            expected: p.client_id.to_string(),
            got: data.user.user_id,
        });
    }
    let profile = match ctx.ports.kite.profile(&p.creds.api_key, &data.access_token) {
        Ok(profile) => profile,
        Err(e) => {
            // The token will not be stored: revoke it (best effort) so it does not stay
            // alive at Kite until 06:00 with nobody holding it.
            let _ = ctx
                .ports
                .kite
                .invalidate(&p.creds.api_key, &data.access_token);
            return Err(LoginFailure::Profile(e));
        }
    };
    let login_time = parse_login_time(&data.login_time).unwrap_or_else(|| ctx.ports.clock.now());
    Ok(LoginOutcome {
        session: StoredSession {
            access_token: data.access_token,
            user_id: data.user.user_id,
            user_name: profile.user_name.clone(),
            login_time,
            expires_at: expiry_after(login_time),
        },
        profile,
    })
}

fn show_url(ctx: &Ctx<'_>, url: &url::Url, p: &LoginParams<'_>) -> Result<(), LoginFailure> {
    ctx.ui.say("Log in to Kite at:");
    ctx.ui.say(format!("  {url}"));
    if let Some(meta) = on_shared_app(ctx) {
        let app = app_label(meta.app_name.as_deref(), &p.creds.api_key);
        say_not_enabled_note(ctx, p.client_id, &app);
    }
    if p.no_browser {
        return Ok(());
    }
    match ctx.login_browser().open_login(url, p.client_id) {
        Ok(BrowserOutcome::Opened) if ctx.self_play => {
            ctx.ui.say(format!(
                "(sandbox: kite-setup plays the browser and approves the login as {})",
                p.client_id
            ));
        }
        Err(e) if ctx.self_play => return Err(LoginFailure::SelfPlay(e.to_string())),
        outcome => say_opened(ctx.ui, &outcome, true),
    }
    Ok(())
}

/// The run's profile, when another profile uses its app too (a family member's client ID
/// must be on the app's client IDs to log in).
fn on_shared_app(ctx: &Ctx<'_>) -> Option<crate::profile::ProfileMeta> {
    let config = ctx.config.load().ok()?;
    let meta = config.get(&ctx.profile, ctx.sandbox)?;
    let app = meta.app.as_deref()?;
    config
        .app_used_by_others(app, &ctx.profile, ctx.sandbox)
        .then(|| meta.clone())
}

/// The one line that says what opening a page did. `open_yourself` adds "open the URL
/// yourself" where the person must, because nothing else will show the page.
pub fn say_opened(
    ui: &crate::ui::Ui,
    outcome: &Result<BrowserOutcome, BrowserError>,
    open_yourself: bool,
) {
    let tail = if open_yourself {
        "; open the URL yourself"
    } else {
        ""
    };
    match outcome {
        Ok(BrowserOutcome::Opened) => ui.say("(opened in your browser)"),
        Ok(BrowserOutcome::NotOpened(why)) => ui.say(format!("(no browser opened: {why}{tail})")),
        Err(e) => ui.say(format!("(could not open a browser: {e}{tail})")),
    }
}

/// A verifying login (init's step 5, regenerate's step 4): what it logs in with, and
/// what it does when that fails.
pub trait Verification {
    /// The login to try now (a field may have been fixed since the last failure).
    fn params(&self) -> LoginParams<'_>;
    /// After a failed login: `Ok(())` tries again (perhaps with a field fixed), an error
    /// stops with it.
    fn recover(&mut self, ctx: &Ctx<'_>, failure: LoginFailure) -> Result<(), Error>;
}

/// The one verify-login retry loop shared by init and regenerate: logs in until it
/// works, Ctrl-C, or `v` gives up.
pub fn verify_login(ctx: &Ctx<'_>, v: &mut dyn Verification) -> Result<LoginOutcome, Error> {
    loop {
        let result = browser_login(ctx, &v.params());
        match result {
            Ok(out) => return Ok(out),
            Err(LoginFailure::Interrupted) => return Err(Error::Interrupted),
            Err(failure) => v.recover(ctx, failure)?,
        }
    }
}

/// Asks for the URL the browser was redirected to (the page may show "can't connect";
/// the address bar still has the token).
fn paste(
    ctx: &Ctx<'_>,
    target: &crate::redirect::RedirectTarget,
    nonce: &str,
) -> Result<String, LoginFailure> {
    ctx.ui.say("After logging in, copy the full address from the browser's address bar (it starts with the redirect URL).");
    let text = if ctx.interactive {
        ctx.ports
            .prompter
            .input("Paste the redirected URL", None, &|s| {
                parse_callback(s, target, nonce)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .map_err(|e| match e {
                crate::prompt::PromptError::Interrupted => LoginFailure::Interrupted,
                other => LoginFailure::Io(other.to_string()),
            })?
    } else {
        (ctx.ports.read_stdin_line)().map_err(|e| LoginFailure::Io(e.to_string()))?
    };
    parse_callback(&text, target, nonce)
        .map(|cb| cb.request_token)
        .map_err(|e| match e {
            CallbackError::Cancelled => LoginFailure::Cancelled,
            other => LoginFailure::BadCallback(other),
        })
}

impl LoginFailure {
    /// For a login of a profile on a shared app that did not come back: the profile and
    /// the message (`None` for other failures, and for a profile on an app of its own).
    fn family_failure(
        &self,
        ctx: &Ctx<'_>,
        redirect_url: &str,
    ) -> Option<(crate::profile::ProfileMeta, String)> {
        if !matches!(
            self,
            LoginFailure::SelfPlay(_) | LoginFailure::NoCallback { .. }
        ) {
            return None;
        }
        let meta = on_shared_app(ctx)?;
        let who = &meta.client_id;
        let message = match self {
            LoginFailure::SelfPlay(detail) => {
                format!("the sandbox's login by {who} failed: {detail}")
            }
            LoginFailure::NoCallback { waited } => format!(
                "no login by {who} reached {redirect_url} in {} s",
                waited.as_secs()
            ),
            _ => return None,
        };
        Some((meta, message))
    }

    /// The failure as the top-level error: one line, one hint, the exit code by kind.
    pub fn into_error(self, ctx: &Ctx<'_>, redirect_url: &str) -> Error {
        // A family member's login that never came back: most likely Kite's "not enabled"
        // page, which only the browser saw.
        if let Some((meta, message)) = self.family_failure(ctx, redirect_url) {
            let app = meta
                .app_name
                .as_deref()
                .map_or_else(|| "the app".to_string(), |n| format!("app {n}"));
            return Error::failed(
                message,
                format!(
                    "if Kite said \"The user is not enabled for the app\": {}",
                    not_enabled_fix(&meta.client_id, &app, &[])
                ),
            );
        }
        match self {
            LoginFailure::RedirectUrl(e) => Error::usage(e.to_string(), e.fix()),
            LoginFailure::Listen(e) => Error::failed(e.to_string(), e.fix()),
            LoginFailure::NoCallback { waited } => Error::failed(
                format!(
                    "no login redirect reached {redirect_url} in {} s",
                    waited.as_secs()
                ),
                "check that the app's registered redirect URL is exactly this one, and that the browser showed no error (\"user not enabled\" means another client ID logged in); or retry with --paste",
            ),
            LoginFailure::Cancelled => Error::failed(
                "the login was cancelled on Kite's authorisation page",
                "run the command again and choose Authorize when Kite asks",
            ),
            LoginFailure::BadCallback(e) => Error::usage(e.to_string(), e.fix()),
            LoginFailure::Exchange(e) | LoginFailure::Profile(e) => {
                if e.is_token_error() {
                    Error::login_needed(e.to_string(), e.fix()).caused_by(e)
                } else {
                    Error::Kite(e)
                }
            }
            LoginFailure::WrongUser { expected, got } => Error::failed(
                format!(
                    "Kite logged in {got}, but profile {} is for {expected}",
                    ctx.profile_label()
                ),
                format!(
                    "log in as {expected} (log out of Kite in the browser first), or set up {got} in its own profile: --profile NAME"
                ),
            ),
            LoginFailure::Interrupted => Error::Interrupted,
            LoginFailure::Io(detail) => Error::failed(
                format!("the login failed: {detail}"),
                "try again, or use --paste",
            ),
            LoginFailure::SelfPlay(detail) => Error::failed(
                format!("the sandbox's login as the profile's client ID failed: {detail}"),
                "if it says the user is not enabled for the app, add the client ID to the app's client IDs on the sandbox console (the app's page → Client IDs → Add client ID)",
            ),
        }
    }
}
