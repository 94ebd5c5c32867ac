//! Market data under the plan rule (docs/sandbox.md "Market data"): `GET /quote` answers
//! an app on the Personal plan with 403 PermissionException and a Connect app with quotes.
//! Not IP-checked. The prices are made up, the same for an instrument every time.

use kite_wire::{ErrorType, Plan};
use serde_json::{Map, Value, json};

use crate::http::{Reply, Req};
use crate::{Shared, api};

/// A call the app's plan does not include (Kite's words).
pub const MSG_NO_PERMISSION: &str = "Insufficient permission for that call.";

/// `GET /quote?i=EXCHANGE:SYMBOL[&i=...]`: the token, then the plan, then one quote per
/// well-formed instrument (others are left out, as Kite leaves out unknown ones).
pub fn quote(shared: &Shared, req: &Req) -> Reply {
    let (_, token) = match api::authorised(shared, req) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let plan = shared.read(|s, _| s.app(&token.api_key).map(|a| a.plan));
    if plan != Some(Plan::Connect) {
        return Reply::error(403, &ErrorType::Permission, MSG_NO_PERMISSION);
    }
    let mut data = Map::new();
    for (k, v) in url::form_urlencoded::parse(req.query_string.as_bytes()) {
        if k == "i"
            && let Some((exchange, symbol)) = v.split_once(':')
            && !exchange.is_empty()
            && !symbol.is_empty()
        {
            data.insert(v.to_string(), one(&v));
        }
    }
    Reply::success(&Value::Object(data))
}

/// A made-up quote shaped like Kite's: the price from the instrument's name.
fn one(instrument: &str) -> Value {
    let seed = instrument
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let price = f64::from(100 + seed % 4000) + f64::from(seed % 20) * 0.05;
    let level = json!({ "price": 0, "quantity": 0, "orders": 0 });
    json!({
        "instrument_token": seed % 10_000_000,
        "timestamp": "2026-01-01 15:30:00",
        "last_trade_time": "2026-01-01 15:29:59",
        "last_price": price,
        "last_quantity": 5,
        "buy_quantity": 0,
        "sell_quantity": 0,
        "volume": 0,
        "average_price": price,
        "oi": 0,
        "oi_day_high": 0,
        "oi_day_low": 0,
        "net_change": 0,
        "lower_circuit_limit": (price * 0.9 * 20.0).round() / 20.0,
        "upper_circuit_limit": (price * 1.1 * 20.0).round() / 20.0,
        "ohlc": { "open": price, "high": price, "low": price, "close": price },
        "depth": { "buy": vec![level.clone(); 5], "sell": vec![level; 5] },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_stable_and_shaped_like_kites() {
        let a = one("NSE:INFY");
        assert_eq!(a, one("NSE:INFY"));
        assert_ne!(a["last_price"], one("NSE:TCS")["last_price"]);
        assert_eq!(a["depth"]["buy"].as_array().unwrap().len(), 5);
        assert!(a["last_price"].as_f64().unwrap() >= 100.0);
    }

    #[test]
    fn the_permission_error_matches_the_official_fixture() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/kite-mocks/errors/permission_exception_insufficient_permission.json"
        );
        let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let ours = Reply::error(403, &ErrorType::Permission, MSG_NO_PERMISSION);
        assert_eq!(
            serde_json::from_slice::<Value>(&ours.body).unwrap(),
            fixture
        );
        assert_eq!(
            ErrorType::for_status(403),
            ErrorType::Token,
            "403 alone says Token"
        );
    }
}
