//! The test control API (product.md "Test control API"), JSON under `/_sandbox/`:
//! extra accounts and apps, secrets, subscriptions, time travel, faults and a state view
//! that never carries a secret.

use serde_json::{Map, Value, json};

use super::Shared;
use super::console::check_redirect_url;
use super::http::{Reply, Req};
use super::state::{Fault, Plan};

type Obj = Map<String, Value>;

pub fn handle(shared: &Shared, req: &Req) -> Reply {
    let parts: Vec<&str> = req.path.split('/').filter(|p| !p.is_empty()).collect();
    let body = || req.json();
    let result = match (req.method.as_str(), &parts[1..]) {
        ("GET", ["state"]) => Ok(shared.read(super::state::State::public_view)),
        ("GET", ["clock"]) => Ok(clock_view(shared)),
        ("POST", ["clock"]) => body().and_then(|b| set_clock(shared, &b)),
        ("POST", ["accounts"]) => body().map(|_| new_account(shared)),
        ("POST", ["apps"]) => body().and_then(|b| new_app(shared, &b)),
        ("POST", ["apps", key, "regenerate"]) => {
            match shared.mutate(|s, _| s.regenerate_secret(key)) {
                Some(secret) => Ok(json!({ "api_secret": secret.expose() })),
                None => Err(format!("no app has the api_key {key:?}")),
            }
        }
        ("POST", ["apps", key, "subscription"]) => {
            body().and_then(|b| set_subscription(shared, key, &b))
        }
        ("POST", ["faults"]) => body().and_then(|b| add_fault(shared, &b)),
        ("POST", ["approve"]) => body().and_then(|b| {
            let login_url = b
                .get("login_url")
                .and_then(Value::as_str)
                .ok_or("login_url is required")?;
            super::login::approve(shared, login_url).map(|u| json!({ "redirect_url": u }))
        }),
        _ => return Reply::not_found(),
    };
    match result {
        Ok(v) => Reply::json(200, &v),
        Err(message) => Reply::json(
            400,
            &json!({ "status": "error", "message": message, "error_type": "InputException", "data": null }),
        ),
    }
}

fn clock_view(shared: &Shared) -> Value {
    shared
        .read(|s, now| json!({ "offset_seconds": s.clock_offset_seconds, "now": now.to_string() }))
}

fn set_clock(shared: &Shared, b: &Obj) -> Result<Value, String> {
    let offset = b
        .get("offset_seconds")
        .and_then(Value::as_i64)
        .filter(|o| o.unsigned_abs() <= 100 * 365 * 86_400)
        .ok_or("offset_seconds must be an integer number of seconds (within 100 years)")?;
    shared.mutate(|s, _| s.clock_offset_seconds = offset);
    Ok(clock_view(shared))
}

fn new_account(shared: &Shared) -> Value {
    let acc = shared.mutate(|s, _| s.new_account("Sandbox User"));
    json!({
        "client_id": acc.client_id,
        "password": acc.password.expose(),
        "totp_secret": acc.totp_secret.expose(),
    })
}

fn new_app(shared: &Shared, b: &Obj) -> Result<Value, String> {
    let str_field = |name: &str| b.get(name).and_then(Value::as_str).map(str::trim);
    let client_id = str_field("client_id")
        .ok_or("client_id is required")?
        .to_ascii_uppercase();
    if shared.read(|s, _| s.account(&client_id).is_none()) {
        return Err(format!("no account has the client_id {client_id:?}"));
    }
    let redirect_url = str_field("redirect_url").ok_or("redirect_url is required")?;
    check_redirect_url(redirect_url)?;
    let plan = match str_field("plan") {
        None => Plan::Personal,
        Some(p) => Plan::parse(p).ok_or("plan must be \"personal\" or \"connect\"")?,
    };
    let name = str_field("name").unwrap_or("Test app");
    let app = shared.mutate(|s, _| {
        let app = s.new_app(&client_id, name, redirect_url, plan);
        if let Some(a) = s.app_mut(&app.api_key) {
            a.secret_shown = true;
        }
        app
    });
    Ok(json!({ "api_key": app.api_key, "api_secret": app.api_secret.expose() }))
}

fn set_subscription(shared: &Shared, key: &str, b: &Obj) -> Result<Value, String> {
    let active = b
        .get("active")
        .and_then(Value::as_bool)
        .ok_or("active must be true or false")?;
    let found = shared.mutate(|s, _| {
        s.app_mut(key)
            .map(|a| a.subscription_active = active)
            .is_some()
    });
    if found {
        Ok(json!({ "api_key": key, "subscription_active": active }))
    } else {
        Err(format!("no app has the api_key {key:?}"))
    }
}

fn add_fault(shared: &Shared, b: &Obj) -> Result<Value, String> {
    let mut fault: Fault = serde_json::from_value(Value::Object(b.clone()))
        .or_else(|_| {
            // `count` may be left out: one hit.
            let mut with_count = b.clone();
            with_count.entry("count").or_insert(json!(1));
            serde_json::from_value(Value::Object(with_count))
        })
        .map_err(|e| format!("bad fault: {e}"))?;
    if !fault.path.starts_with('/') {
        return Err("path must start with / (the path only, no query)".into());
    }
    fault.path = fault.path.split('?').next().unwrap_or_default().to_string();
    if fault.count == 0 {
        return Err("count must be at least 1".into());
    }
    if let Some(st) = fault.status
        && !(400..=599).contains(&st)
    {
        return Err("status must be an error status (400-599)".into());
    }
    if fault.delay_ms.is_some_and(|d| d > 60_000) {
        return Err("delay_ms must be at most 60000".into());
    }
    if fault.status.is_none() && fault.body.is_none() && fault.delay_ms.is_none() && !fault.reset {
        return Err("give status, body, delay_ms or reset".into());
    }
    shared.mutate(|s, _| s.faults.push(fault.clone()));
    Ok(json!({ "fault": fault }))
}
