//! The order rules, without a server.

use std::collections::HashMap;

use super::*;

fn form(pairs: &[(&str, &str)]) -> Form {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect::<HashMap<_, _>>()
}

fn market(extra: &[(&str, &str)]) -> Form {
    let mut f = form(&[
        ("exchange", "NSE"),
        ("tradingsymbol", "INFY"),
        ("transaction_type", "BUY"),
        ("quantity", "1"),
        ("product", "CNC"),
        ("order_type", "MARKET"),
    ]);
    f.extend(form(extra));
    f
}

fn now() -> Timestamp {
    "2026-12-01T04:00:00Z".parse().unwrap()
}

fn place(f: &Form) -> Result<Order, String> {
    new_order("regular", f, "AB1234", "key", now())
}

#[test]
fn ten_order_requests_a_second_then_429() {
    let mut w = RateWindow::default();
    let t = now();
    for _ in 0..MAX_PER_SECOND {
        assert!(w.admit(t));
    }
    assert!(!w.admit(t));
    let almost = t.checked_add(SignedDuration::from_millis(999)).unwrap();
    assert!(
        !w.admit(almost),
        "the refused ones are not counted, the first ten still are"
    );
    let later = t.checked_add(SignedDuration::from_secs(1)).unwrap();
    assert!(w.admit(later), "a second after the first ten, room again");
}

#[test]
fn the_ip_rule_names_the_peer_kite_saw() {
    let v4: IpAddr = "127.0.0.1".parse().unwrap();
    let v6: IpAddr = "::1".parse().unwrap();
    assert_eq!(ip_rule(&[], Some(v4)).unwrap_err(), MSG_NO_IPS);
    assert!(ip_rule(&[v4], Some(v4)).is_ok());
    assert_eq!(
        ip_rule(&[v4], Some(v6)).unwrap_err(),
        "IP (::1) is not allowed to place orders for this app. Update allowed IPs on the Kite developer console."
    );
    assert!(ip_rule(&[v4], None).is_err());
}

#[test]
fn whitelists_hold_at_most_two_distinct_addresses() {
    let ok = parse_whitelist(&["127.0.0.1".into(), " ::1 ".into()]).unwrap();
    assert_eq!(ok.len(), 2);
    assert!(parse_whitelist(&[]).unwrap().is_empty());
    assert!(parse_whitelist(&["1.1.1.1".into(), "2.2.2.2".into(), "3.3.3.3".into()]).is_err());
    assert!(parse_whitelist(&["127.0.0.1".into(), "127.0.0.1".into()]).is_err());
    assert!(parse_whitelist(&["localhost".into()]).is_err());
    assert!(parse_whitelist(&["[::1]".into()]).is_err());
    // An IPv4-mapped address is the IPv4 address.
    assert_eq!(
        parse_whitelist(&["::ffff:127.0.0.1".into()]).unwrap(),
        vec!["127.0.0.1".parse::<IpAddr>().unwrap()]
    );
}

#[test]
fn market_and_sl_m_orders_need_market_protection() {
    assert_eq!(place(&market(&[])).unwrap_err(), MSG_MARKET_PROTECTION);
    assert_eq!(
        place(&market(&[("market_protection", "0")])).unwrap_err(),
        MSG_MARKET_PROTECTION
    );
    assert!(place(&market(&[("market_protection", "-1")])).is_ok());
    assert!(place(&market(&[("market_protection", "100")])).is_ok());
    assert!(place(&market(&[("market_protection", "101")])).is_err());
    assert!(place(&market(&[("market_protection", "-2")])).is_err());
    let slm = market(&[("order_type", "SL-M"), ("trigger_price", "1500")]);
    assert_eq!(place(&slm).unwrap_err(), MSG_MARKET_PROTECTION);
    let limit = market(&[("order_type", "LIMIT"), ("price", "1500.5")]);
    let o = place(&limit).unwrap();
    assert_eq!(
        (o.status.as_str(), o.price, o.validity.as_str()),
        ("OPEN", 1500.5, "DAY")
    );
}

#[test]
fn required_fields_and_price_rules() {
    for missing in [
        "exchange",
        "tradingsymbol",
        "transaction_type",
        "quantity",
        "product",
        "order_type",
    ] {
        let mut f = market(&[("market_protection", "-1")]);
        f.remove(missing);
        assert_eq!(
            place(&f).unwrap_err(),
            format!("Missing or empty `{missing}`."),
            "{missing}"
        );
    }
    let bad = |pairs: &[(&str, &str)]| place(&market(pairs)).unwrap_err();
    assert_eq!(bad(&[("exchange", "NYSE")]), "Invalid `exchange`.");
    assert_eq!(
        bad(&[("quantity", "0"), ("market_protection", "-1")]),
        "Invalid `quantity`."
    );
    assert_eq!(bad(&[("quantity", "-5")]), "Invalid `quantity`.");
    assert_eq!(bad(&[("order_type", "LIMIT")]), "Invalid `price`.");
    assert_eq!(
        bad(&[("order_type", "SL"), ("price", "10")]),
        "Invalid `trigger_price`."
    );
    assert_eq!(bad(&[("price", "abc")]), "Invalid `price`.");
}

#[test]
fn modify_keeps_the_rules() {
    let mut o = place(&market(&[("order_type", "LIMIT"), ("price", "10")])).unwrap();
    modify(&mut o, &form(&[("price", "11"), ("quantity", "3")])).unwrap();
    assert_eq!((o.price, o.quantity), (11.0, 3));
    // To MARKET without protection: refused, and the order is left as it was.
    assert_eq!(
        modify(&mut o, &form(&[("order_type", "MARKET")])).unwrap_err(),
        MSG_MARKET_PROTECTION
    );
    assert_eq!(o.order_type, "LIMIT");
    modify(
        &mut o,
        &form(&[("order_type", "MARKET"), ("market_protection", "-1")]),
    )
    .unwrap();
    assert_eq!(o.order_type, "MARKET");
}

#[test]
fn order_ids_look_like_kites() {
    let id = new_order_id();
    assert_eq!(id.len(), 19);
    assert!(id.chars().all(|c| c.is_ascii_digit()) && !id.starts_with('0'));
    let v = view(&place(&market(&[("market_protection", "-1")])).unwrap());
    assert_eq!(v["pending_quantity"], 1);
    assert_eq!(v["order_timestamp"], "2026-12-01 09:30:00");
}
