use std::cell::RefCell;

use super::*;
use crate::kite::ErrorType;
use crate::testkit::FakeReadiness;

fn v4() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}
fn v6() -> IpAddr {
    "::1".parse().unwrap()
}

#[test]
fn the_ip_in_kites_message_is_the_one_shown() {
    assert_eq!(
        seen_ip("IP (2402:3a80:1c4f::1) is not allowed to place orders for this app.").as_deref(),
        Some("2402:3a80:1c4f::1")
    );
    assert_eq!(seen_ip("No IPs configured for this app."), None);
}

#[test]
fn each_family_is_probed_on_its_own_address_and_the_preferred_one_is_the_resolvers_first() {
    let fake = FakeReadiness {
        addrs: vec![v6(), v4()],
        refused: vec![v6()],
        down: vec![],
        plan: Some(Plan::Personal),
        calls: RefCell::default(),
    };
    let c = check_orders(&fake, false, &"k".into(), &"t".into());
    assert_eq!(*fake.calls.borrow(), vec![v4(), v6()]);
    assert_eq!(c.preferred, Some(Family::Ipv6));
    assert_eq!(c.ipv4.verdict(), "pass");
    assert_eq!(c.ipv6.verdict(), "fail");
    assert!(c.preferred_refused(), "the dual-stack trap");
    assert!(c.ipv6.detail(c.preferred).contains("Kite saw IP ::1"));
    assert!(c.ipv6.detail(c.preferred).contains("prefers"));
    assert_eq!(c.refused_ips(), vec!["::1".to_string()]);
}

#[test]
fn the_sandbox_tries_both_loopbacks_and_a_missing_one_is_a_skip() {
    let fake = FakeReadiness {
        addrs: vec![v4()],
        refused: vec![],
        down: vec![v6()],
        plan: Some(Plan::Connect),
        calls: RefCell::default(),
    };
    let c = check_orders(&fake, true, &"k".into(), &"t".into());
    assert_eq!(c.ipv4.verdict(), "pass");
    assert!(
        c.ipv4
            .detail(c.preferred)
            .starts_with("orders from this machine: allowed over IPv4 127.0.0.1")
    );
    assert_eq!(c.ipv6.verdict(), "skip");
    assert!(c.ipv6.detail(None).contains("does not serve ::1"));
    assert!(!c.preferred_refused());
    // Live: no IPv6 address for the host is a skip without a connection attempt.
    let c = check_orders(&fake, false, &"k".into(), &"t".into());
    assert!(c.ipv6.detail(None).contains("no IPv6 address"));
}

#[test]
fn a_token_error_is_not_an_ip_verdict() {
    struct Dead;
    impl ReadinessPort for Dead {
        fn api_addresses(&self) -> Result<Vec<IpAddr>, String> {
            Ok(vec!["127.0.0.1".parse().unwrap()])
        }
        fn cancel_probe(&self, _: IpAddr, _: &Secret, _: &Secret) -> Result<(), KiteError> {
            Err(KiteError::api(
                403,
                ErrorType::Token,
                "Incorrect `api_key` or `access_token`.".into(),
            ))
        }
        fn quote_probe(&self, _: &Secret, _: &Secret) -> Result<(), KiteError> {
            Err(KiteError::api(500, ErrorType::General, "boom".into()))
        }
        fn source_address(&self, _: IpAddr) -> Option<IpAddr> {
            None
        }
        fn public_ip(&self) -> Result<IpAddr, String> {
            Err("no".into())
        }
        fn public_ip_service(&self) -> String {
            String::new()
        }
    }
    let c = check_orders(&Dead, false, &"k".into(), &"t".into());
    assert_eq!(c.ipv4.verdict(), "skip");
    assert!(matches!(
        check_plan(&Dead, &"k".into(), &"t".into()),
        PlanSeen::Unknown(_)
    ));
}

#[test]
fn the_plan_is_told_by_the_quote_answer() {
    let mut fake = FakeReadiness {
        addrs: vec![],
        refused: vec![],
        down: vec![],
        plan: Some(Plan::Personal),
        calls: RefCell::default(),
    };
    assert_eq!(
        check_plan(&fake, &"k".into(), &"t".into()).plan(),
        Some(Plan::Personal)
    );
    fake.plan = Some(Plan::Connect);
    assert_eq!(
        check_plan(&fake, &"k".into(), &"t".into()).plan(),
        Some(Plan::Connect)
    );
}

#[test]
fn the_fix_names_the_ips_and_the_console_place() {
    let f = whitelist_fix(&["127.0.0.1".into()], None).render(&crate::error::RunFlags::default());
    assert!(f.contains("add 127.0.0.1 on developers.kite.trade → Profile"));
    assert!(f.contains("one change per week"));
    let f = whitelist_fix(&[], Some("http://127.0.0.1:1/console/profile"))
        .render(&crate::error::RunFlags::default());
    assert!(f.contains("this machine's public IP"), "{f}");
    assert!(f.contains("/console/profile"), "{f}");
}
