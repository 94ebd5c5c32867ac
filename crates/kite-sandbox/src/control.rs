//! The test control API (docs/sandbox.md "Control API"), JSON under `/_sandbox/`: extra
//! accounts and apps, secrets, subscriptions, time travel, faults, approved logins and a
//! state view that never carries a secret. The request and response types are
//! kite-wire's, shared with kite-setup's client.

use kite_wire::control::{
    AccountCreated, AppCreated, Approve, Approved, ClientsSet, ClockView, Fault, FaultAdded,
    FaultsCleared, IpsSet, NewAccount, NewApp, PeerView, SecretRegenerated, SetClients, SetClock,
    SetIps, SetSubscription, SubscriptionSet,
};
use kite_wire::{ErrorType, Plan};
use serde::Serialize;

use super::Shared;
use super::console::check_redirect_url;
use super::http::{Reply, Req};

/// The largest clock offset: 100 years either way.
const MAX_OFFSET_SECONDS: u64 = 100 * 365 * 86_400;

pub fn handle(shared: &Shared, req: &Req) -> Reply {
    let parts: Vec<&str> = req.path.split('/').filter(|p| !p.is_empty()).collect();
    let result = match (req.method.as_str(), &parts[1..]) {
        ("GET", ["state"]) => Ok(json(&shared.read(super::state::State::public_view))),
        ("GET", ["clock"]) => Ok(json(&clock_view(shared))),
        ("GET", ["peer"]) => req
            .peer
            .map(|ip| json(&PeerView { ip }))
            .ok_or_else(|| "the peer address is unknown".to_string()),
        ("POST", ["clock"]) => req.json().and_then(|b| set_clock(shared, &b)),
        ("POST", ["accounts"]) => req.json::<NewAccount>().map(|_| json(&new_account(shared))),
        ("POST", ["accounts", client_id, "ips"]) => {
            req.json().and_then(|b| set_ips(shared, client_id, &b))
        }
        ("POST", ["apps"]) => req.json().and_then(|b| new_app(shared, &b)),
        ("POST", ["apps", key, "regenerate"]) => {
            match shared.mutate(|s, _| s.regenerate_secret(key)) {
                Some(api_secret) => Ok(json(&SecretRegenerated { api_secret })),
                None => Err(format!("no app has the api_key {key:?}")),
            }
        }
        ("POST", ["apps", key, "subscription"]) => {
            req.json().and_then(|b| set_subscription(shared, key, &b))
        }
        ("POST", ["apps", key, "clients"]) => req.json().and_then(|b| set_clients(shared, key, &b)),
        ("POST", ["faults"]) => req.json().and_then(|b| add_fault(shared, b)),
        ("DELETE", ["faults"]) => {
            let cleared = shared.mutate(|s, _| std::mem::take(&mut s.faults).len());
            Ok(json(&FaultsCleared { cleared }))
        }
        ("POST", ["approve"]) => req.json::<Approve>().and_then(|b| {
            let redirect_url = super::login::approve(shared, &b.login_url, b.client_id.as_deref())?;
            Ok(json(&Approved { redirect_url }))
        }),
        _ => return Reply::not_found(),
    };
    match result {
        Ok(v) => Reply::json(200, &v),
        Err(message) => Reply::error(400, &ErrorType::Input, &message),
    }
}

fn json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("control types serialize")
}

fn clock_view(shared: &Shared) -> ClockView {
    shared.read(|s, now| ClockView {
        offset_seconds: s.clock_offset_seconds,
        now,
    })
}

fn set_clock(shared: &Shared, b: &SetClock) -> Result<serde_json::Value, String> {
    if b.offset_seconds.unsigned_abs() > MAX_OFFSET_SECONDS {
        return Err(
            "offset_seconds must be an integer number of seconds (within 100 years)".into(),
        );
    }
    shared.mutate(|s, _| s.clock_offset_seconds = b.offset_seconds);
    Ok(json(&clock_view(shared)))
}

fn new_account(shared: &Shared) -> AccountCreated {
    let acc = shared.mutate(|s, _| s.new_account("Sandbox User"));
    AccountCreated {
        client_id: acc.client_id,
        password: acc.password,
        totp_secret: acc.totp_secret,
    }
}

fn set_ips(shared: &Shared, client_id: &str, b: &SetIps) -> Result<serde_json::Value, String> {
    let ips = super::orders::parse_whitelist(&b.ips)?;
    let client_id = client_id.to_ascii_uppercase();
    let found = shared.mutate(|s, _| {
        s.accounts
            .iter_mut()
            .find(|a| a.client_id == client_id)
            .map(|a| a.ips.clone_from(&ips))
            .is_some()
    });
    if found {
        Ok(json(&IpsSet { client_id, ips }))
    } else {
        Err(format!("no account has the client_id {client_id:?}"))
    }
}

fn new_app(shared: &Shared, b: &NewApp) -> Result<serde_json::Value, String> {
    let client_id = b.client_id.trim().to_ascii_uppercase();
    if shared.read(|s, _| s.account(&client_id).is_none()) {
        return Err(format!("no account has the client_id {client_id:?}"));
    }
    let redirect_url = b.redirect_url.trim();
    check_redirect_url(redirect_url)?;
    let plan = b.plan.unwrap_or(Plan::Personal);
    let name = b.name.as_deref().map_or("Test app", str::trim);
    let app = shared.mutate(|s, _| {
        let app = s.new_app(&client_id, name, redirect_url, plan);
        if let Some(a) = s.app_mut(&app.api_key) {
            a.secret_shown = true;
        }
        app
    });
    Ok(json(&AppCreated {
        api_key: app.api_key,
        api_secret: app.api_secret,
    }))
}

fn set_subscription(
    shared: &Shared,
    key: &str,
    b: &SetSubscription,
) -> Result<serde_json::Value, String> {
    let found = shared.mutate(|s, _| {
        s.app_mut(key)
            .map(|a| a.subscription_active = b.active)
            .is_some()
    });
    if found {
        Ok(json(&SubscriptionSet {
            api_key: key.to_string(),
            subscription_active: b.active,
        }))
    } else {
        Err(format!("no app has the api_key {key:?}"))
    }
}

fn set_clients(shared: &Shared, key: &str, b: &SetClients) -> Result<serde_json::Value, String> {
    use super::state::{ClientsError, MAX_CLIENT_IDS};
    // Positions, never values: a control API message does not quote the body.
    let client_ids = shared
        .mutate(|s, _| s.set_client_ids(key, &b.client_ids))
        .map_err(|e| match e {
            ClientsError::UnknownApp => format!("no app has the api_key {key:?}"),
            ClientsError::OwnerMissing => {
                "client_ids must keep the app's own client ID (it cannot be removed)".into()
            }
            ClientsError::UnknownClient(i) => {
                format!("client_ids entry {} is not a known client ID", i + 1)
            }
            ClientsError::Duplicate(i) => {
                format!("client_ids entry {} repeats an earlier one", i + 1)
            }
            ClientsError::TooMany => format!("client_ids holds at most {MAX_CLIENT_IDS}"),
        })?;
    Ok(json(&ClientsSet {
        api_key: key.to_string(),
        client_ids,
    }))
}

fn add_fault(shared: &Shared, mut fault: Fault) -> Result<serde_json::Value, String> {
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
    Ok(json(&FaultAdded { fault }))
}
