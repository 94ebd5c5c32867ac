//! Orders (docs/sandbox.md "Orders"): place, modify and cancel as the official SDKs call
//! them, and the order book. Order changes are accepted only from an address on the
//! developer account's IP whitelist (the TCP peer of the request), at most ten per second
//! per account; MARKET and SL-M orders need market protection. Nothing is ever filled:
//! a placed order stays OPEN until it is cancelled.

use std::collections::VecDeque;
use std::net::IpAddr;

use jiff::{SignedDuration, Timestamp};
use kite_wire::ErrorType;
use kite_wire::time::format_ist;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http::{Reply, Req};
use crate::{Shared, api, lock, state};

/// With an empty whitelist (Kite's words).
pub const MSG_NO_IPS: &str =
    "No IPs configured for this app. Add allowed IPs on the Kite developer console.";
/// A MARKET or SL-M order without market protection (Kite's words).
pub const MSG_MARKET_PROTECTION: &str = "Market orders without market protection are not allowed via API. Please set market protection or use a Limit order.";
/// A modify or cancel of an order that does not exist (Kite does not document its text).
pub const MSG_NO_ORDER: &str = "Couldn't find that order.";
/// More order requests than `MAX_PER_SECOND` in one second.
pub const MSG_TOO_MANY: &str = "Too many requests";
/// Order requests allowed per account in any one second.
pub const MAX_PER_SECOND: usize = 10;

const VARIETIES: &[&str] = &["regular", "amo", "co", "iceberg", "auction"];
const EXCHANGES: &[&str] = &["NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX"];
const PRODUCTS: &[&str] = &["CNC", "NRML", "MIS", "MTF"];
const ORDER_TYPES: &[&str] = &["MARKET", "LIMIT", "SL", "SL-M"];
const VALIDITIES: &[&str] = &["DAY", "IOC", "TTL"];

/// A peer outside the whitelist (Kite's words, with the address Kite saw).
pub fn msg_ip_not_allowed(peer: &str) -> String {
    format!(
        "IP ({peer}) is not allowed to place orders for this app. Update allowed IPs on the Kite developer console."
    )
}

/// One order, as kept in the state (field names as Kite's order book has them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(clippy::struct_field_names)]
pub struct Order {
    pub order_id: String,
    pub api_key: String,
    pub placed_by: String,
    pub variety: String,
    /// `OPEN` or `CANCELLED`.
    pub status: String,
    pub exchange: String,
    pub tradingsymbol: String,
    pub transaction_type: String,
    pub order_type: String,
    pub product: String,
    pub validity: String,
    pub quantity: u64,
    pub disclosed_quantity: u64,
    pub price: f64,
    pub trigger_price: f64,
    /// -1 (automatic) or a percentage; 0 when not given (LIMIT and SL orders).
    pub market_protection: f64,
    pub tag: Option<String>,
    pub placed_at: Timestamp,
}

/// The order requests of one account in the last second.
#[derive(Debug, Default)]
pub struct RateWindow(VecDeque<Timestamp>);

impl RateWindow {
    /// Counts a request at `now`, or refuses it when `MAX_PER_SECOND` already came in the
    /// second before (a refused request is not counted).
    pub fn admit(&mut self, now: Timestamp) -> bool {
        let second = SignedDuration::from_secs(1);
        while self
            .0
            .front()
            .is_some_and(|t| now.duration_since(*t) >= second || *t > now)
        {
            self.0.pop_front();
        }
        if self.0.len() >= MAX_PER_SECOND {
            return false;
        }
        self.0.push_back(now);
        true
    }
}

/// The static IP rule: the peer must be on the developer account's whitelist.
pub fn ip_rule(whitelist: &[IpAddr], peer: Option<IpAddr>) -> Result<(), String> {
    if whitelist.is_empty() {
        return Err(MSG_NO_IPS.into());
    }
    match peer {
        Some(ip) if whitelist.contains(&ip) => Ok(()),
        Some(ip) => Err(msg_ip_not_allowed(&ip.to_string())),
        None => Err(msg_ip_not_allowed("unknown")),
    }
}

/// Validates a whitelist as the console does: at most two IPv4 or IPv6 addresses, no
/// duplicates. Returns them in canonical form.
pub fn parse_whitelist(ips: &[String]) -> Result<Vec<IpAddr>, String> {
    if ips.len() > 2 {
        return Err("at most two IPs can be whitelisted".into());
    }
    let mut out = Vec::new();
    for (i, text) in ips.iter().enumerate() {
        let ip: IpAddr = text
            .trim()
            .parse()
            .map_err(|_| format!("ips[{i}] is not an IPv4 or IPv6 address: {text:?}"))?;
        let ip = ip.to_canonical();
        if out.contains(&ip) {
            return Err(format!("ips[{i}] repeats {ip}"));
        }
        out.push(ip);
    }
    Ok(out)
}

/// Form fields as the SDKs send them.
type Form = std::collections::HashMap<String, String>;

fn field<'f>(form: &'f Form, name: &str) -> Option<&'f str> {
    form.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn required<'f>(form: &'f Form, name: &str) -> Result<&'f str, String> {
    field(form, name).ok_or_else(|| format!("Missing or empty `{name}`."))
}

fn one_of(form: &Form, name: &str, allowed: &[&str]) -> Result<String, String> {
    let v = required(form, name)?.to_ascii_uppercase();
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(&v)) {
        Ok(v)
    } else {
        Err(format!("Invalid `{name}`."))
    }
}

fn number(form: &Form, name: &str) -> Result<Option<f64>, String> {
    field(form, name)
        .map(|v| {
            v.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= -1.0)
                .ok_or_else(|| format!("Invalid `{name}`."))
        })
        .transpose()
}

fn count(form: &Form, name: &str) -> Result<Option<u64>, String> {
    field(form, name)
        .map(|v| v.parse::<u64>().map_err(|_| format!("Invalid `{name}`.")))
        .transpose()
}

/// The price rules of an order type, checked on every place and modify. The market
/// protection values compared exactly (0, -1) are parsed from text, never computed.
#[allow(clippy::float_cmp)]
fn check_prices(o: &Order) -> Result<(), String> {
    let needs_price = matches!(o.order_type.as_str(), "LIMIT" | "SL");
    let needs_trigger = matches!(o.order_type.as_str(), "SL" | "SL-M");
    if needs_price && o.price <= 0.0 {
        return Err("Invalid `price`.".into());
    }
    if needs_trigger && o.trigger_price <= 0.0 {
        return Err("Invalid `trigger_price`.".into());
    }
    let p = o.market_protection;
    if matches!(o.order_type.as_str(), "MARKET" | "SL-M") && p == 0.0 {
        return Err(MSG_MARKET_PROTECTION.into());
    }
    if p != 0.0 && p != -1.0 && !(p > 0.0 && p <= 100.0) {
        return Err("Invalid `market_protection`.".into());
    }
    if o.quantity == 0 {
        return Err("Invalid `quantity`.".into());
    }
    Ok(())
}

/// A new OPEN order from `POST /orders/{variety}`'s form.
pub fn new_order(
    variety: &str,
    form: &Form,
    placed_by: &str,
    api_key: &str,
    now: Timestamp,
) -> Result<Order, String> {
    let order = Order {
        order_id: String::new(),
        api_key: api_key.to_string(),
        placed_by: placed_by.to_string(),
        variety: variety.to_string(),
        status: "OPEN".into(),
        exchange: one_of(form, "exchange", EXCHANGES)?,
        tradingsymbol: required(form, "tradingsymbol")?.to_ascii_uppercase(),
        transaction_type: one_of(form, "transaction_type", &["BUY", "SELL"])?,
        quantity: count(form, "quantity")?.ok_or("Missing or empty `quantity`.")?,
        product: one_of(form, "product", PRODUCTS)?,
        order_type: one_of(form, "order_type", ORDER_TYPES)?,
        validity: match field(form, "validity") {
            None => "DAY".into(),
            Some(_) => one_of(form, "validity", VALIDITIES)?,
        },
        disclosed_quantity: count(form, "disclosed_quantity")?.unwrap_or(0),
        price: number(form, "price")?.unwrap_or(0.0),
        trigger_price: number(form, "trigger_price")?.unwrap_or(0.0),
        market_protection: number(form, "market_protection")?.unwrap_or(0.0),
        tag: field(form, "tag").map(str::to_string),
        placed_at: now,
    };
    if order.tag.as_ref().is_some_and(|t| t.chars().count() > 20) {
        return Err("Invalid `tag`.".into());
    }
    check_prices(&order)?;
    Ok(order)
}

/// `PUT /orders/{variety}/{order_id}`: the fields given replace the order's.
pub fn modify(order: &mut Order, form: &Form) -> Result<(), String> {
    let mut next = order.clone();
    if let Some(q) = count(form, "quantity")? {
        next.quantity = q;
    }
    if let Some(q) = count(form, "disclosed_quantity")? {
        next.disclosed_quantity = q;
    }
    if let Some(p) = number(form, "price")? {
        next.price = p;
    }
    if let Some(p) = number(form, "trigger_price")? {
        next.trigger_price = p;
    }
    if let Some(p) = number(form, "market_protection")? {
        next.market_protection = p;
    }
    if field(form, "order_type").is_some() {
        next.order_type = one_of(form, "order_type", ORDER_TYPES)?;
    }
    if field(form, "validity").is_some() {
        next.validity = one_of(form, "validity", VALIDITIES)?;
    }
    check_prices(&next)?;
    *order = next;
    Ok(())
}

/// A 19-digit order ID, like Kite's.
fn new_order_id() -> String {
    format!(
        "{}{}",
        state::random_from(b"123456789", 1),
        state::random_from(b"0123456789", 18)
    )
}

/// One order as the order book shows it.
pub fn view(o: &Order) -> Value {
    let open = o.status == "OPEN";
    json!({
        "placed_by": o.placed_by,
        "order_id": o.order_id,
        "exchange_order_id": null,
        "parent_order_id": null,
        "status": o.status,
        "status_message": null,
        "order_timestamp": format_ist(o.placed_at),
        "exchange_timestamp": null,
        "variety": o.variety,
        "exchange": o.exchange,
        "tradingsymbol": o.tradingsymbol,
        "order_type": o.order_type,
        "transaction_type": o.transaction_type,
        "validity": o.validity,
        "product": o.product,
        "quantity": o.quantity,
        "disclosed_quantity": o.disclosed_quantity,
        "price": o.price,
        "trigger_price": o.trigger_price,
        "average_price": 0,
        "filled_quantity": 0,
        "pending_quantity": if open { o.quantity } else { 0 },
        "cancelled_quantity": if open { 0 } else { o.quantity },
        "market_protection": o.market_protection,
        "tag": o.tag,
    })
}

/// `/orders` and `/orders/...`: the token first, then (for changes) the rate, the IP rule
/// and the fields, in that order.
pub fn handle(shared: &Shared, req: &Req) -> Reply {
    let parts: Vec<&str> = req.path.split('/').filter(|p| !p.is_empty()).collect();
    let change = match (req.method.as_str(), parts.len()) {
        ("GET", 1) => false,
        ("POST", 2) | ("PUT" | "DELETE", 3) => true,
        _ => return Reply::not_found(),
    };
    let (account, token) = match api::authorised(shared, req) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    if !change {
        let book: Vec<Value> = shared.read(|s, _| {
            s.orders
                .iter()
                .filter(|o| o.placed_by == account.client_id)
                .map(view)
                .collect()
        });
        return Reply::success(&Value::Array(book));
    }
    let now = shared.now();
    let admitted = lock(&shared.order_rate)
        .entry(account.client_id.clone())
        .or_default()
        .admit(now);
    if !admitted {
        return Reply::error(429, &ErrorType::Network, MSG_TOO_MANY);
    }
    let whitelist = shared.read(|s, _| {
        s.app(&token.api_key)
            .and_then(|app| s.account(&app.created_by))
            .map(|dev| dev.ips.clone())
            .unwrap_or_default()
    });
    if let Err(message) = ip_rule(&whitelist, req.peer) {
        return Reply::error(403, &ErrorType::Permission, &message);
    }
    let variety = parts[1];
    if !VARIETIES.contains(&variety) {
        return Reply::input_error("Invalid `variety`.");
    }
    let result = match (req.method.as_str(), parts.get(2)) {
        ("POST", None) => {
            let form = req.form();
            new_order(variety, &form, &account.client_id, &token.api_key, now).map(|mut o| {
                o.order_id = new_order_id();
                let id = o.order_id.clone();
                shared.mutate(|s, _| s.orders.push(o));
                id
            })
        }
        (method, Some(id)) => {
            let form = if method == "PUT" {
                req.form()
            } else {
                Form::new()
            };
            shared.mutate(|s, _| {
                let order = s
                    .orders
                    .iter_mut()
                    .find(|o| {
                        o.order_id == *id
                            && o.placed_by == account.client_id
                            && o.variety == variety
                    })
                    .ok_or(MSG_NO_ORDER.to_string())?;
                if order.status != "OPEN" {
                    return Err(format!(
                        "The order is {}: it can no longer be modified or cancelled.",
                        order.status
                    ));
                }
                if method == "PUT" {
                    modify(order, &form)?;
                } else {
                    order.status = "CANCELLED".into();
                }
                Ok(order.order_id.clone())
            })
        }
        _ => return Reply::not_found(),
    };
    match result {
        Ok(order_id) => Reply::success(&json!({ "order_id": order_id })),
        Err(message) => Reply::input_error(&message),
    }
}

#[cfg(test)]
#[path = "orders_tests.rs"]
mod tests;
