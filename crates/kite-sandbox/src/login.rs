//! The Kite login page (docs/sandbox.md "Login"): `GET /connect/login?v=3&api_key=K`, the login
//! form (client ID, password, TOTP), the one-time "Authorize app" page, then a redirect
//! to the app's registered URL with the request token and the `redirect_params` pairs.

use jiff::{SignedDuration, Timestamp};
use url::Url;

use super::html::{error_line, esc, hidden, input, page};
use super::http::{Reply, Req};
use super::state::{self, App, MSG_NOT_ENABLED};
use super::{Shared, lock};
use kite_wire::ErrorType;
use kite_wire::Secret;

/// A login that passed the form and waits for "Authorize" or "Cancel".
pub struct Ticket {
    client_id: String,
    api_key: String,
    redirect_params: String,
    created: Timestamp,
}

/// How long the authorisation page stays usable.
const TICKET_LIFETIME: SignedDuration = SignedDuration::from_secs(600);

pub fn handle(shared: &Shared, req: &Req) -> Reply {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/connect/login") => start(shared, req),
        ("POST", "/connect/login") => submit(shared, req),
        ("POST", "/connect/authorize") => authorize(shared, req),
        _ => Reply::not_found(),
    }
}

fn unknown_app() -> Reply {
    Reply::html(
        400,
        page(
            "Invalid api_key",
            "<p class=\"error\" id=\"error\">Invalid <code>api_key</code>: no app has this key.</p>\
             <p>Check the key on the developer console.</p>",
        ),
    )
}

fn find_app(shared: &Shared, api_key: Option<&String>) -> Option<App> {
    let key = api_key?;
    shared.read(|s, _| s.app(key).cloned())
}

/// `GET /connect/login`: the form, or (with `--auto-approve`) the redirect at once.
fn start(shared: &Shared, req: &Req) -> Reply {
    let Some(app) = find_app(shared, req.query.get("api_key")) else {
        return unknown_app();
    };
    let params = req
        .query
        .get("redirect_params")
        .cloned()
        .unwrap_or_default();
    if shared.auto_approve {
        return success(shared, &app, app.owner(), &params);
    }
    form(shared, &app, &params, "", None)
}

fn form(shared: &Shared, app: &App, params: &str, client_id: &str, error: Option<&str>) -> Reply {
    let demo = shared.read(|s, now| {
        let acc = s.account(&s.demo_client_id)?;
        let code = state::totp_now(&acc.totp_secret, now)?;
        Some((acc.client_id.clone(), code))
    });
    let demo_line = demo
        .map(|(id, code)| {
            format!(
                "<p class=\"note\">Demo account {}: the TOTP code now is <code id=\"demo_totp\">{}</code>.</p>",
                esc(&id),
                esc(&code)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<p>Log in to use <strong>{name}</strong>.</p>{err}\
         <form method=\"post\" action=\"/connect/login\">{key}{params}\
         {cid}{pw}{totp}<button type=\"submit\">Login</button></form>{demo_line}",
        name = esc(&app.name),
        err = error_line(error),
        key = hidden("api_key", &app.api_key),
        params = hidden("redirect_params", params),
        cid = input("Client ID", "client_id", "text", client_id),
        pw = input("Password", "password", "password", ""),
        totp = input("TOTP code", "totp", "text", ""),
    );
    Reply::html(200, page("Login to Kite", &body))
}

/// `POST /connect/login`: check the credentials, then the app's user, then authorisation.
fn submit(shared: &Shared, req: &Req) -> Reply {
    let f = req.form();
    let Some(app) = find_app(shared, f.get("api_key")) else {
        return unknown_app();
    };
    let params = f.get("redirect_params").cloned().unwrap_or_default();
    let client_id = f
        .get("client_id")
        .map(|c| c.trim().to_ascii_uppercase())
        .unwrap_or_default();
    let password = Secret::new(f.get("password").cloned().unwrap_or_default());
    let totp = f.get("totp").cloned().unwrap_or_default();
    let valid = shared.read(|s, now| s.login_ok(&client_id, &password, &totp, now));
    if !valid {
        return form(
            shared,
            &app,
            &params,
            &client_id,
            Some("Invalid client ID, password or TOTP code."),
        );
    }
    if !app.enabled_for(&client_id) {
        return not_enabled();
    }
    if shared.read(|s, _| s.is_authorised(&client_id, &app.api_key)) {
        return success(shared, &app, &client_id, &params);
    }
    let ticket = state::random_token();
    let now = shared.now();
    let mut tickets = lock(&shared.tickets);
    tickets.retain(|_, t| now.duration_since(t.created) < TICKET_LIFETIME);
    tickets.insert(
        ticket.clone(),
        Ticket {
            client_id,
            api_key: app.api_key.clone(),
            redirect_params: params,
            created: now,
        },
    );
    drop(tickets);
    let body = format!(
        "<p><strong>{name}</strong> wants to access your Kite account: your profile, funds \
         and orders.</p><form method=\"post\" action=\"/connect/authorize\">{t}\
         <button type=\"submit\" name=\"action\" value=\"authorize\" id=\"authorize\">Authorize</button>\
         <button type=\"submit\" name=\"action\" value=\"cancel\" id=\"cancel\">Cancel</button></form>",
        name = esc(&app.name),
        t = hidden("ticket", &ticket),
    );
    Reply::html(200, page(&format!("Authorize {}", app.name), &body))
}

/// Kite's answer to a login by a client ID the app is not enabled for, at the login step:
/// before any authorisation or request token.
fn not_enabled() -> Reply {
    Reply::error(400, &ErrorType::Input, MSG_NOT_ENABLED)
}

/// `POST /connect/authorize`: the one-time authorisation, given or refused.
fn authorize(shared: &Shared, req: &Req) -> Reply {
    let f = req.form();
    let now = shared.now();
    let ticket = f
        .get("ticket")
        .and_then(|t| lock(&shared.tickets).remove(t))
        .filter(|t| now.duration_since(t.created) < TICKET_LIFETIME);
    let Some(t) = ticket else {
        return Reply::html(
            400,
            page(
                "Login expired",
                "<p class=\"error\" id=\"error\">This login has expired. Start again from the app.</p>",
            ),
        );
    };
    let Some(app) = find_app(shared, Some(&t.api_key)) else {
        return unknown_app();
    };
    // Taken off the app's list while the authorisation page was open.
    if !app.enabled_for(&t.client_id) {
        return not_enabled();
    }
    if f.get("action").map(String::as_str) == Some("authorize") {
        shared.mutate(|s, _| s.authorise(&t.client_id, &t.api_key));
        success(shared, &app, &t.client_id, &t.redirect_params)
    } else {
        let url = redirect_to(&app, &[("status", "cancelled")], &t.redirect_params);
        Reply::redirect(302, &url)
    }
}

/// Issues a request token and redirects to the app with it.
fn success(shared: &Shared, app: &App, client_id: &str, params: &str) -> Reply {
    Reply::redirect(302, &success_url(shared, app, client_id, params))
}

/// `POST /_sandbox/approve {"login_url", "client_id"?}`: what `/connect/login` would
/// redirect to if the app's owner (or `client_id`) logged in and authorised it. Lets
/// kite-setup play the browser's part on a headless machine without typing the demo
/// password anywhere. A client ID the app is not enabled for gets the login page's
/// message.
pub fn approve(
    shared: &Shared,
    login_url: &str,
    client_id: Option<&str>,
) -> Result<String, String> {
    let url = Url::parse(login_url).map_err(|_| "login_url is not a URL".to_string())?;
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    let app = find_app(shared, query.get("api_key")).ok_or("no app has that api_key")?;
    let params = query.get("redirect_params").cloned().unwrap_or_default();
    let client_id = client_id.map_or_else(
        || app.owner().to_string(),
        |c| c.trim().to_ascii_uppercase(),
    );
    if shared.read(|s, _| s.account(&client_id).is_none()) {
        return Err("client_id is not a known account".into());
    }
    if !app.enabled_for(&client_id) {
        return Err(MSG_NOT_ENABLED.into());
    }
    Ok(success_url(shared, &app, &client_id, &params))
}

fn success_url(shared: &Shared, app: &App, client_id: &str, params: &str) -> String {
    let token = shared.mutate(|s, now| {
        s.authorise(client_id, &app.api_key);
        s.issue_request_token(&app.api_key, client_id, now)
    });
    redirect_to(
        app,
        &[
            ("action", "login"),
            ("type", "login"),
            ("status", "success"),
            ("request_token", &token),
        ],
        params,
    )
}

/// The app's registered redirect URL with `pairs` and the decoded `redirect_params` pairs
/// appended to whatever query it already has.
fn redirect_to(app: &App, pairs: &[(&str, &str)], redirect_params: &str) -> String {
    let Ok(mut url) = Url::parse(&app.redirect_url) else {
        return app.redirect_url.clone();
    };
    {
        let mut q = url.query_pairs_mut();
        q.extend_pairs(pairs);
        q.extend_pairs(url::form_urlencoded::parse(redirect_params.as_bytes()));
    }
    url.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kite_wire::Plan;

    #[test]
    fn redirect_keeps_existing_query_and_adds_params() {
        let mut s = state::State::default();
        let app = s.new_app(
            "AB1234",
            "x",
            "https://example.com/cb?keep=1",
            Plan::Personal,
        );
        let u = redirect_to(&app, &[("status", "cancelled")], "state=ab%26c&x=1");
        let url = Url::parse(&u).unwrap();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            vec![
                ("keep".into(), "1".into()),
                ("status".into(), "cancelled".into()),
                ("state".into(), "ab&c".into()),
                ("x".into(), "1".into()),
            ]
        );
    }
}
