//! The Kite API at the root (docs/sandbox.md "API"): `/session/token`, `/user/profile`,
//! `/user/margins[/segment]`, with Kite's envelopes, messages and status codes.

use serde_json::{Value, json};

use super::Shared;
use super::http::{Reply, Req};
use super::state::{
    AccessToken, Account, ExchangeError, MSG_BAD_CHECKSUM, MSG_BAD_KEY_OR_TOKEN, MSG_TOKEN_INVALID,
};
use kite_wire::time::format_ist;
use kite_wire::{Secret, SessionData, User, UserProfile};

pub fn handle(shared: &Shared, req: &Req) -> Reply {
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/session/token") => exchange(shared, req),
        ("DELETE", "/session/token") => invalidate(shared, req),
        ("GET", "/user/profile") => signed(shared, req, |acc, _| profile(acc)),
        ("GET", "/user/margins") => signed(shared, req, |_, _| margins()),
        ("GET", "/quote") => super::market::quote(shared, req),
        (_, "/orders") => super::orders::handle(shared, req),
        (_, p) if p.starts_with("/orders/") => super::orders::handle(shared, req),
        ("GET", p) if p.starts_with("/user/margins/") => {
            margins_segment(shared, req, &p["/user/margins/".len()..])
        }
        _ => Reply::not_found(),
    }
}

/// `/user/margins/{equity|commodity}`: the token is checked first, then the segment.
fn margins_segment(shared: &Shared, req: &Req, segment: &str) -> Reply {
    let checked = signed(shared, req, |_, _| Value::Null);
    if checked.status != 200 {
        return checked;
    }
    match margins().get(segment) {
        Some(v) => Reply::success(v),
        None => Reply::input_error("Invalid segment. Valid segments are `equity` and `commodity`."),
    }
}

/// `POST /session/token`: the checks run in Kite's order (fields, key, token, checksum).
fn exchange(shared: &Shared, req: &Req) -> Reply {
    let form = req.form();
    let mut fields = Vec::new();
    for name in ["api_key", "request_token", "checksum"] {
        match form.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            Some(v) => fields.push(v.to_string()),
            None => return Reply::input_error(&format!("Missing or empty `{name}`.")),
        }
    }
    let (api_key, request_token, checksum) = (&fields[0], &fields[1], &fields[2]);
    let result = shared.mutate(|s, now| {
        let at = s.exchange(api_key, request_token, checksum, now)?;
        let account = s.account(&at.client_id).cloned();
        Ok((at, account))
    });
    match result {
        Ok((at, Some(account))) => Reply::success(&session_data(&account, &at)),
        Ok((_, None)) | Err(ExchangeError::BadKey) => Reply::token_error(MSG_BAD_KEY_OR_TOKEN),
        Err(ExchangeError::TokenInvalid) => Reply::token_error(MSG_TOKEN_INVALID),
        Err(ExchangeError::BadChecksum) => Reply::token_error(MSG_BAD_CHECKSUM),
    }
}

/// `DELETE /session/token?api_key=K&access_token=T`.
fn invalidate(shared: &Shared, req: &Req) -> Reply {
    let (Some(key), Some(token)) = (req.query.get("api_key"), req.query.get("access_token")) else {
        return Reply::input_error("Missing `api_key` or `access_token`.");
    };
    if shared.mutate(|s, now| s.revoke(key, token, now)) {
        Reply::success(&Value::Bool(true))
    } else {
        Reply::token_error(MSG_BAD_KEY_OR_TOKEN)
    }
}

/// The account and token of a call signed with `Authorization: token api_key:access_token`,
/// or Kite's answer to a bad one.
pub(crate) fn authorised(shared: &Shared, req: &Req) -> Result<(Account, AccessToken), Reply> {
    let Some((key, token)) = req
        .authorization
        .as_deref()
        .and_then(|h| h.trim().strip_prefix("token "))
        .and_then(|kt| kt.trim().split_once(':'))
    else {
        return Err(Reply::token_error(MSG_BAD_KEY_OR_TOKEN));
    };
    shared
        .read(|s, now| {
            let at = s.check_access(key, token, now)?.clone();
            let acc = s.account(&at.client_id)?.clone();
            Some((acc, at))
        })
        .ok_or_else(|| Reply::token_error(MSG_BAD_KEY_OR_TOKEN))
}

/// Runs `f` for a signed call.
fn signed(shared: &Shared, req: &Req, f: impl FnOnce(&Account, &AccessToken) -> Value) -> Reply {
    match authorised(shared, req) {
        Ok((acc, at)) => Reply::success(&f(&acc, &at)),
        Err(reply) => reply,
    }
}

fn short_name(account: &Account) -> String {
    account
        .name
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The user record of `/user/profile` and `/session/token`, shaped like Kite's (the
/// profile fixture's lists; no tokens).
fn user(account: &Account) -> User {
    let list = |items: &[&str]| items.iter().map(|s| (*s).to_string()).collect();
    User {
        user_id: account.client_id.clone(),
        user_type: "individual".into(),
        email: account.email.clone(),
        user_name: account.name.clone(),
        user_shortname: short_name(account),
        broker: "ZERODHA".into(),
        exchanges: list(&["NSE", "NFO", "BFO", "CDS", "BSE", "MCX", "BCD", "MF"]),
        products: list(&["CNC", "NRML", "MIS", "BO", "CO"]),
        order_types: list(&["MARKET", "LIMIT", "SL", "SL-M"]),
        avatar_url: None,
        meta: json!({ "demat_consent": "physical" }),
    }
}

fn profile(account: &Account) -> Value {
    to_value(&UserProfile {
        user: user(account),
    })
}

/// `/session/token`'s data: the user record and today's tokens.
fn session_data(account: &Account, at: &AccessToken) -> Value {
    to_value(&SessionData {
        user: user(account),
        api_key: at.api_key.clone(),
        access_token: at.token.clone(),
        public_token: Secret::new(super::state::random_token()),
        enctoken: Secret::new(super::state::random_token()),
        refresh_token: Secret::default(),
        silo: String::new(),
        login_time: format_ist(at.login_at),
    })
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("wire types serialize")
}

/// `/user/margins`' data, shaped like fixtures/kite-mocks/margins.json.
fn margins() -> Value {
    let segment = |cash: f64, debits: f64, exposure: f64, span: f64| {
        json!({
            "enabled": true,
            "net": cash - debits,
            "available": {
                "adhoc_margin": 0, "cash": cash, "opening_balance": cash,
                "live_balance": cash - debits, "collateral": 0, "intraday_payin": 0,
            },
            "utilised": {
                "debits": debits, "exposure": exposure, "m2m_realised": 0, "m2m_unrealised": 0,
                "option_premium": 0, "payout": 0, "span": span, "holding_sales": 0,
                "turnover": 0, "liquid_collateral": 0, "stock_collateral": 0, "delivery": 0,
            },
        })
    };
    json!({
        "equity": segment(245_431.6, 145_706.55, 38_981.25, 101_989.0),
        "commodity": segment(100_661.7, 0.0, 0.0, 0.0),
    })
}
