//! The console's app page: the secret shown once, the client IDs the app is enabled for
//! (added and removed), and the redirect and postback URLs (edited).

#[allow(clippy::wildcard_imports)] // the console's helpers and imports, split for length only
use super::*;

/// `POST /console/apps/{key}/clients` with `action=add|remove` and `client_id`: one client
/// ID more or less for the app. The one it was created for stays (docs/sandbox.md).
pub(super) fn edit_clients(shared: &Shared, app: &App, req: &Req) -> Reply {
    let f = req.form();
    let client_id = f
        .get("client_id")
        .map(|c| c.trim().to_ascii_uppercase())
        .unwrap_or_default();
    let refuse = |error: String| {
        let form = AppForm {
            errors: vec![error],
            client_id: client_id.clone(),
            urls: None,
        };
        app_page(shared, app, &form)
    };
    let mut ids = app.client_ids.clone();
    match f.get("action").map(String::as_str) {
        Some("add") => {
            if ids.contains(&client_id) {
                return refuse(format!(
                    "Zerodha Client ID: {client_id:?} is already enabled for this app."
                ));
            }
            ids.push(client_id.clone());
        }
        Some("remove") => {
            if client_id == app.owner() {
                return refuse(format!(
                    "Zerodha Client ID: {client_id:?} created this app and cannot be removed."
                ));
            }
            if !ids.contains(&client_id) {
                return refuse(format!(
                    "Zerodha Client ID: {client_id:?} is not enabled for this app."
                ));
            }
            ids.retain(|c| *c != client_id);
        }
        _ => return refuse("Choose add or remove.".to_string()),
    }
    match shared.mutate(|s, _| s.set_client_ids(&app.api_key, &ids)) {
        Ok(_) => Reply::redirect(303, &format!("/console/apps/{}", app.api_key)),
        Err(state::ClientsError::TooMany) => refuse(format!(
            "Zerodha Client ID: an app is enabled for at most {} client IDs.",
            state::MAX_CLIENT_IDS
        )),
        Err(_) => refuse(unknown_client(&client_id)),
    }
}

/// `POST /console/apps/{key}/urls`: new redirect and postback URLs, with the create-app
/// form's rules; a refusal changes neither.
pub(super) fn edit_urls(shared: &Shared, app: &App, req: &Req) -> Reply {
    let f = req.form();
    let v = |k: &str| f.get(k).map_or("", |s| s.trim());
    let (redirect_url, postback_url) = (v("redirect_url"), v("postback_url"));
    let errors = check_urls(redirect_url, postback_url);
    if !errors.is_empty() {
        let form = AppForm {
            errors,
            client_id: String::new(),
            urls: Some((redirect_url.to_string(), postback_url.to_string())),
        };
        return app_page(shared, app, &form);
    }
    shared.mutate(|s, _| {
        if let Some(a) = s.app_mut(&app.api_key) {
            a.redirect_url = redirect_url.to_string();
            a.postback_url = postback_url.to_string();
        }
    });
    Reply::redirect(303, &format!("/console/apps/{}", app.api_key))
}

/// The client IDs the app is enabled for, each but the first with a remove button, and
/// the form that adds one.
fn clients_section(app: &App, typed: &str) -> String {
    let k = esc(&app.api_key);
    let mut rows = String::new();
    for (i, c) in app.client_ids.iter().enumerate() {
        let action = if i == 0 {
            "created the app".to_string()
        } else {
            format!(
                "<form method=\"post\" action=\"/console/apps/{k}/clients\">{a}{c}\
                 <button type=\"submit\" id=\"remove-{id}\">Remove</button></form>",
                a = hidden("action", "remove"),
                c = hidden("client_id", c),
                id = esc(c),
            )
        };
        let _ = write!(
            rows,
            "<tr><td><code class=\"client_id\">{}</code></td><td>{action}</td></tr>",
            esc(c)
        );
    }
    format!(
        "<h2>Client IDs</h2>\
         <p class=\"note\">Who may log in to this app: your own client ID and your immediate \
         family's (spouse, dependent children, dependent parents).</p>\
         <table id=\"client_ids\">{rows}</table>\
         <form method=\"post\" action=\"/console/apps/{k}/clients\">{a}{cid}\
         <button type=\"submit\" id=\"add_client\">Add client ID</button></form>",
        a = hidden("action", "add"),
        cid = input("Zerodha Client ID", "client_id", "text", typed),
    )
}

/// The form that edits the redirect and postback URLs.
fn urls_section(app: &App, typed: Option<&(String, String)>) -> String {
    let (r, pb) = typed.map_or(
        (app.redirect_url.as_str(), app.postback_url.as_str()),
        |(r, p)| (r.as_str(), p.as_str()),
    );
    format!(
        "<h2>URLs</h2><form method=\"post\" action=\"/console/apps/{k}/urls\">{r}{pb}\
         <button type=\"submit\" id=\"save_urls\">Save URLs</button></form>\
         <p class=\"note\">The redirect URL must be https, except http://127.0.0.1 or \
         http://localhost for testing.</p>",
        k = esc(&app.api_key),
        r = input("Redirect URL", "redirect_url", "text", r),
        pb = input("Postback URL (optional)", "postback_url", "text", pb),
    )
}

/// The app page: the secret appears once, then only "regenerate"; the client IDs and the
/// URLs can be edited.
pub(super) fn app_page(shared: &Shared, app: &App, form: &AppForm) -> Reply {
    let show_secret = !app.secret_shown;
    if show_secret {
        shared.mutate(|s, _| {
            if let Some(a) = s.app_mut(&app.api_key) {
                a.secret_shown = true;
            }
        });
    }
    let secret = if show_secret {
        format!(
            "<code id=\"api_secret\">{}</code> <strong>Copy it now: it is shown only once.</strong>",
            esc(app.api_secret.expose())
        )
    } else {
        "<span id=\"api_secret_hidden\">hidden — regenerate to see a new one</span>".to_string()
    };
    let errs: String = form.errors.iter().fold(String::new(), |mut out, e| {
        let _ = write!(out, "<li>{}</li>", esc(e));
        out
    });
    let errs = if errs.is_empty() {
        String::new()
    } else {
        format!("<ul class=\"error\" id=\"errors\">{errs}</ul>")
    };
    let body = format!(
        "{errs}<table>\
         <tr><th>api_key</th><td><code id=\"api_key\">{k}</code></td></tr>\
         <tr><th>api_secret</th><td>{secret}</td></tr>\
         <tr><th>Zerodha Client IDs</th><td>{o}</td></tr>\
         <tr><th>Redirect URL</th><td><code id=\"redirect_url\">{r}</code></td></tr>\
         <tr><th>Postback URL</th><td>{pb}</td></tr>\
         <tr><th>Plan</th><td>{p}</td></tr>\
         <tr><th>Subscription</th><td>{s} (<a href=\"/console/apps/{k}/billing\">billing</a>)</td></tr>\
         </table>\
         <form method=\"post\" action=\"/console/apps/{k}/regenerate\">\
         <button type=\"submit\" id=\"regenerate\">Regenerate secret</button></form>\
         <p class=\"note\">A new secret does not end sessions already logged in.</p>\
         {clients}{urls}\
         <p><a href=\"/console/apps\">All apps</a></p>",
        k = esc(&app.api_key),
        o = esc(&app.client_ids.join(", ")),
        clients = clients_section(app, &form.client_id),
        urls = urls_section(app, form.urls.as_ref()),
        r = esc(&app.redirect_url),
        pb = esc(&app.postback_url),
        p = esc(app.plan.as_str()),
        s = subscription_text(app),
    );
    let status = if form.errors.is_empty() { 200 } else { 400 };
    Reply::html(status, page(&app.name, &body))
}
