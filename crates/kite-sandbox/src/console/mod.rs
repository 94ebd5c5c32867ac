//! The developer console (docs/sandbox.md "Console") as plain HTML: login with TOTP, the app list
//! with plan and subscription, billing (renew a lapsed subscription), the create-app
//! form, and the app page: the secret shown once and regenerated, the client IDs the app
//! is enabled for (added and removed), and the redirect and postback URLs (edited).

use std::collections::HashMap;
use std::fmt::Write;

use url::{Host, Url};

use super::html::{error_line, esc, hidden, input, page};
use super::http::{Reply, Req};
use super::state::{self, App};
use super::{Shared, lock};
use kite_wire::Plan;
use kite_wire::Secret;

mod app_page;
use app_page::{app_page, edit_clients, edit_urls};

const COOKIE: &str = "kite_console";

pub fn handle(shared: &Shared, req: &Req) -> Reply {
    let path = req.path.trim_end_matches('/');
    let m = req.method.as_str();
    match (m, path) {
        ("GET", "/console") => match user(shared, req) {
            Some(_) => Reply::redirect(303, "/console/apps"),
            None => login_form(None),
        },
        ("POST", "/console/login") => login(shared, req),
        ("POST", "/console/logout") => logout(shared, req),
        _ => {
            let Some(user) = user(shared, req) else {
                return Reply::redirect(303, "/console");
            };
            match (m, path) {
                ("GET", "/console/profile") => {
                    return super::console_profile::show(shared, &user, req);
                }
                ("POST", "/console/profile") => {
                    return super::console_profile::save(shared, &user, req);
                }
                _ => {}
            }
            let rest: Vec<&str> = path.strip_prefix("/console/apps").map_or_else(
                || vec!["?", "?", "?"],
                |r| r.split('/').filter(|p| !p.is_empty()).collect(),
            );
            match (m, rest.as_slice()) {
                ("GET", []) => list(shared, &user),
                ("GET", ["new"]) => new_form(&user, &HashMap::new(), &[]),
                ("POST", ["new"]) => create(shared, &user, req),
                ("GET", [key]) => with_app(shared, &user, key, |a| {
                    app_page(shared, a, &AppForm::default())
                }),
                ("POST", [key, "clients"]) => {
                    with_app(shared, &user, key, |a| edit_clients(shared, a, req))
                }
                ("POST", [key, "urls"]) => {
                    with_app(shared, &user, key, |a| edit_urls(shared, a, req))
                }
                ("POST", [key, "regenerate"]) => with_app(shared, &user, key, |a| {
                    shared.mutate(|s, _| s.regenerate_secret(&a.api_key));
                    Reply::redirect(303, &format!("/console/apps/{}", a.api_key))
                }),
                ("GET", [key, "billing"]) => with_app(shared, &user, key, billing_page),
                ("POST", [key, "billing"]) => {
                    let active = req.form().get("action").map(String::as_str) == Some("renew");
                    with_app(shared, &user, key, |a| {
                        shared.mutate(|s, _| {
                            if let Some(app) = s.app_mut(&a.api_key) {
                                app.subscription_active = active;
                            }
                        });
                        Reply::redirect(303, &format!("/console/apps/{}/billing", a.api_key))
                    })
                }
                _ => not_found(),
            }
        }
    }
}

fn not_found() -> Reply {
    Reply::html(
        404,
        page(
            "Not found",
            "<p><a href=\"/console/apps\">Your apps</a></p>",
        ),
    )
}

/// The signed-in client ID, from the session cookie.
fn user(shared: &Shared, req: &Req) -> Option<String> {
    let cookie = req.cookie(COOKIE)?;
    lock(&shared.sessions).get(&cookie).cloned()
}

fn login_form(error: Option<&str>) -> Reply {
    let body = format!(
        "<p>Log in with your Zerodha client ID, password and TOTP.</p>{}\
         <form method=\"post\" action=\"/console/login\">{}{}{}\
         <button type=\"submit\">Login</button></form>",
        error_line(error),
        input("Client ID", "client_id", "text", ""),
        input("Password", "password", "password", ""),
        input("TOTP code", "totp", "text", ""),
    );
    Reply::html(200, page("Kite Connect developer console", &body))
}

fn login(shared: &Shared, req: &Req) -> Reply {
    let f = req.form();
    let client_id = f
        .get("client_id")
        .map(|c| c.trim().to_ascii_uppercase())
        .unwrap_or_default();
    let password = Secret::new(f.get("password").cloned().unwrap_or_default());
    let totp = f.get("totp").cloned().unwrap_or_default();
    let ok = shared.read(|s, now| s.login_ok(&client_id, &password, &totp, now));
    if !ok {
        return login_form(Some("Invalid client ID, password or TOTP code."));
    }
    let session = state::random_token();
    lock(&shared.sessions).insert(session.clone(), client_id);
    Reply::redirect(303, "/console/apps").with_header(
        "Set-Cookie",
        format!("{COOKIE}={session}; Path=/console; HttpOnly; SameSite=Strict"),
    )
}

fn logout(shared: &Shared, req: &Req) -> Reply {
    if let Some(c) = req.cookie(COOKIE) {
        lock(&shared.sessions).remove(&c);
    }
    Reply::redirect(303, "/console").with_header(
        "Set-Cookie",
        format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"),
    )
}

fn visible(app: &App, user: &str) -> bool {
    app.owner() == user || app.created_by == user
}

/// Runs `f` on the user's app `key`, or answers 404.
fn with_app(shared: &Shared, user: &str, key: &str, f: impl FnOnce(&App) -> Reply) -> Reply {
    match shared.read(|s, _| s.app(key).filter(|a| visible(a, user)).cloned()) {
        Some(app) => f(&app),
        None => not_found(),
    }
}

fn subscription_text(app: &App) -> &'static str {
    if app.subscription_active {
        "active"
    } else {
        "lapsed"
    }
}

fn list(shared: &Shared, user: &str) -> Reply {
    let apps: Vec<App> = shared.read(|s, _| {
        s.apps
            .iter()
            .filter(|a| visible(a, user))
            .cloned()
            .collect()
    });
    let mut rows = String::new();
    for a in &apps {
        let _ = write!(
            rows,
            "<tr><td><a href=\"/console/apps/{k}\">{n}</a></td><td><code>{k}</code></td>\
                 <td>{o}</td><td>{p}</td><td class=\"subscription\">{s}</td>\
                 <td><a href=\"/console/apps/{k}/billing\">Billing</a></td></tr>",
            k = esc(&a.api_key),
            n = esc(&a.name),
            o = esc(&a.client_ids.join(", ")),
            p = esc(a.plan.as_str()),
            s = subscription_text(a),
        );
    }
    let body = format!(
        "<p>Signed in as <strong id=\"user\">{u}</strong>.</p>\
         <table><tr><th>App</th><th>api_key</th><th>Client ID</th><th>Plan</th><th>Subscription</th><th></th></tr>{rows}</table>\
         <p><a href=\"/console/apps/new\" id=\"create\">Create new app</a></p>\
         <form method=\"post\" action=\"/console/logout\"><button type=\"submit\">Log out</button></form>",
        u = esc(user),
    );
    Reply::html(200, page("My apps", &body))
}

fn new_form(user: &str, values: &HashMap<String, String>, errors: &[String]) -> Reply {
    let v = |k: &str| values.get(k).map_or("", String::as_str);
    let client_id = if v("client_id").is_empty() {
        user
    } else {
        v("client_id")
    };
    let plan = v("plan");
    let errs: String = errors.iter().fold(String::new(), |mut out, e| {
        let _ = write!(out, "<li>{}</li>", esc(e));
        out
    });
    let errs = if errs.is_empty() {
        String::new()
    } else {
        format!("<ul class=\"error\" id=\"errors\">{errs}</ul>")
    };
    let option = |value: &str, label: &str| {
        let sel = if plan == value || (plan.is_empty() && value == "personal") {
            " selected"
        } else {
            ""
        };
        format!("<option value=\"{value}\"{sel}>{label}</option>")
    };
    let body = format!(
        "{errs}<form method=\"post\" action=\"/console/apps/new\">\
         <label for=\"plan\">Plan</label><select id=\"plan\" name=\"plan\">{p}{c}</select>\
         {name}{cid}{redirect}{postback}\
         <label for=\"description\">Description</label><textarea id=\"description\" name=\"description\">{desc}</textarea>\
         <button type=\"submit\">Create</button></form>\
         <p class=\"note\">The redirect URL must be https, except http://127.0.0.1 or http://localhost for testing.</p>",
        p = option(
            "personal",
            "Personal (free: orders, GTT, portfolio, margins; no market data)"
        ),
        c = option(
            "connect",
            "Connect (₹500/month: adds WebSocket and historical data)"
        ),
        name = input("App name", "name", "text", v("name")),
        cid = input("Zerodha Client ID", "client_id", "text", client_id),
        redirect = input("Redirect URL", "redirect_url", "text", v("redirect_url")),
        postback = input(
            "Postback URL (optional)",
            "postback_url",
            "text",
            v("postback_url")
        ),
        desc = esc(v("description")),
    );
    Reply::html(
        if errors.is_empty() { 200 } else { 400 },
        page("Create a new app", &body),
    )
}

/// The console's redirect URL rule: https, or http on a loopback host (127.0.0.0/8, [::1]
/// or localhost: every loopback URL kite-setup itself accepts).
pub fn check_redirect_url(text: &str) -> Result<(), String> {
    let url = Url::parse(text.trim()).map_err(|_| format!("{text:?} is not a valid URL"))?;
    let loopback = match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(
            "The URL must be https (http is allowed only for 127.0.0.1, [::1] or localhost)".into(),
        ),
    }
}

/// The create-app form's wording for a client ID no account has.
fn unknown_client(client_id: &str) -> String {
    format!("Zerodha Client ID: {client_id:?} is not a known client ID.")
}

/// The create-app rules for the redirect URL and the optional postback URL.
fn check_urls(redirect_url: &str, postback_url: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if let Err(e) = check_redirect_url(redirect_url) {
        errors.push(format!("Redirect URL: {e}."));
    }
    if !postback_url.is_empty()
        && let Err(e) = check_redirect_url(postback_url)
    {
        errors.push(format!("Postback URL: {e}."));
    }
    errors
}

fn create(shared: &Shared, user: &str, req: &Req) -> Reply {
    let f = req.form();
    let v = |k: &str| f.get(k).map_or("", |s| s.trim());
    let mut errors = Vec::new();
    let name = v("name");
    if name.is_empty() || name.chars().count() > 100 {
        errors.push("App name: enter a name (up to 100 characters).".to_string());
    }
    let client_id = v("client_id").to_ascii_uppercase();
    if shared.read(|s, _| s.account(&client_id).is_none()) {
        errors.push(unknown_client(&client_id));
    }
    errors.extend(check_urls(v("redirect_url"), v("postback_url")));
    let plan = Plan::parse(v("plan"));
    if plan.is_none() {
        errors.push("Plan: choose Personal or Connect.".to_string());
    }
    if !errors.is_empty() {
        return new_form(user, &f, &errors);
    }
    let key = shared.mutate(|s, _| {
        let mut app = s.new_app(
            &client_id,
            name,
            v("redirect_url"),
            plan.unwrap_or(Plan::Personal),
        );
        if let Some(stored) = s.app_mut(&app.api_key) {
            stored.created_by = user.to_string();
            stored.postback_url = v("postback_url").to_string();
            stored.description = v("description").to_string();
        }
        std::mem::take(&mut app.api_key)
    });
    Reply::redirect(303, &format!("/console/apps/{key}"))
}

/// What an app page shows besides the app: refusals of the last edit, and the values the
/// user typed into the URL form (kept so a slip is fixed, not retyped).
#[derive(Default)]
struct AppForm {
    errors: Vec<String>,
    client_id: String,
    urls: Option<(String, String)>,
}

fn billing_page(app: &App) -> Reply {
    let (action, label) = if app.subscription_active {
        ("cancel", "Cancel subscription")
    } else {
        ("renew", "Renew subscription")
    };
    let body = format!(
        "<p>Plan: <strong>{p}</strong>. Subscription: <strong id=\"subscription\">{s}</strong>.</p>\
         <p class=\"note\">A lapsed subscription makes every API call answer 403 TokenException.</p>\
         <form method=\"post\" action=\"/console/apps/{k}/billing\">\
         <button type=\"submit\" name=\"action\" value=\"{action}\" id=\"{action}\">{label}</button></form>\
         <p><a href=\"/console/apps/{k}\">Back to the app</a></p>",
        p = esc(app.plan.as_str()),
        s = subscription_text(app),
        k = esc(&app.api_key),
    );
    Reply::html(200, page(&format!("Billing: {}", app.name), &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_url_rule() {
        for ok in [
            "https://example.com/cb",
            "http://127.0.0.1:5123/kite-setup/callback",
            "http://localhost/x",
            "http://[::1]:5123/kite-setup/callback",
            "http://127.0.0.2:5123/cb",
        ] {
            assert!(check_redirect_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/cb",
            "http://10.0.0.1/cb",
            "http://[::2]/cb",
            "http://[::]:5123/cb",
            "ftp://127.0.0.1/",
            "not a url",
            "",
        ] {
            assert!(check_redirect_url(bad).is_err(), "{bad}");
        }
    }
}
