//! The world's rules, each at its edge (times in IST).

use super::*;
use kite_wire::time::{format_ist, parse_login_time};

fn ist(s: &str) -> Timestamp {
    parse_login_time(s).unwrap()
}

fn secs(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n)
}

/// A state and a fresh request token for the demo app, with its right checksum.
fn with_token(now: Timestamp) -> (State, String, String, String) {
    let mut s = State::seeded();
    let key = s.demo_api_key.clone();
    let client = s.demo_client_id.clone();
    let rt = s.issue_request_token(&key, &client, now);
    let secret = s.app(&key).unwrap().api_secret.clone();
    let sum = kite_wire::checksum(&Secret::from(key.as_str()), &rt, &secret);
    (s, key, rt, sum)
}

#[test]
fn seeded_ids_have_kite_shapes() {
    let s = State::seeded();
    let a = s.account(&s.demo_client_id).unwrap();
    assert!(a.client_id.len() == 6 && a.client_id[..2].chars().all(|c| c.is_ascii_uppercase()));
    let app = s.app(&s.demo_api_key).unwrap();
    assert_eq!(app.api_key.len(), 16);
    assert!(
        app.api_key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    );
    assert_eq!(app.api_secret.len(), 32);
    assert_eq!(app.client_ids, vec![a.client_id.clone()]);
}

#[test]
fn token_from_a_day_login_dies_at_next_six_ist() {
    let now = ist("2026-11-26 10:00:00");
    let (mut s, key, rt, sum) = with_token(now);
    let at = s.exchange(&key, &rt, &sum, now).unwrap();
    assert_eq!(format_ist(at.expires_at), "2026-11-27 06:00:00");
    let tok = at.token.expose().to_string();
    assert!(
        s.check_access(&key, &tok, ist("2026-11-27 05:59:59"))
            .is_some()
    );
    assert!(
        s.check_access(&key, &tok, ist("2026-11-27 06:00:00"))
            .is_none()
    );
}

#[test]
fn token_from_a_two_am_login_dies_the_same_morning() {
    let now = ist("2026-11-26 02:00:00");
    let (mut s, key, rt, sum) = with_token(now);
    let at = s.exchange(&key, &rt, &sum, now).unwrap();
    assert_eq!(format_ist(at.expires_at), "2026-11-26 06:00:00");
    let tok = at.token.expose().to_string();
    assert!(
        s.check_access(&key, &tok, ist("2026-11-26 06:00:00"))
            .is_none()
    );
}

#[test]
fn request_token_is_dead_at_exactly_300_seconds() {
    let now = ist("2026-11-26 10:00:00");
    let (mut s, key, rt, sum) = with_token(now);
    assert_eq!(
        s.exchange(&key, &rt, &sum, now.checked_add(secs(300)).unwrap())
            .unwrap_err(),
        ExchangeError::TokenInvalid
    );
    let (mut s, key, rt, sum) = with_token(now);
    assert!(
        s.exchange(&key, &rt, &sum, now.checked_add(secs(299)).unwrap())
            .is_ok()
    );
}

#[test]
fn request_token_is_single_use_even_after_a_bad_checksum() {
    let now = ist("2026-11-26 10:00:00");
    let (mut s, key, rt, sum) = with_token(now);
    assert_eq!(
        s.exchange(&key, &rt, "00", now).unwrap_err(),
        ExchangeError::BadChecksum
    );
    assert_eq!(
        s.exchange(&key, &rt, &sum, now).unwrap_err(),
        ExchangeError::TokenInvalid
    );

    let (mut s, key, rt, sum) = with_token(now);
    assert!(s.exchange(&key, &rt, &sum, now).is_ok());
    assert_eq!(
        s.exchange(&key, &rt, &sum, now).unwrap_err(),
        ExchangeError::TokenInvalid
    );
}

#[test]
fn lapsed_subscription_and_unknown_key_are_bad_key() {
    let now = ist("2026-11-26 10:00:00");
    let (mut s, key, rt, sum) = with_token(now);
    assert_eq!(
        s.exchange("nokey", &rt, &sum, now).unwrap_err(),
        ExchangeError::BadKey
    );
    s.app_mut(&key).unwrap().subscription_active = false;
    assert_eq!(
        s.exchange(&key, &rt, &sum, now).unwrap_err(),
        ExchangeError::BadKey
    );
    s.app_mut(&key).unwrap().subscription_active = true;
    let at = s.exchange(&key, &rt, &sum, now).unwrap();
    s.app_mut(&key).unwrap().subscription_active = false;
    assert!(s.check_access(&key, at.token.expose(), now).is_none());
}

#[test]
fn regenerated_secret_keeps_tokens_but_changes_checksums() {
    let now = ist("2026-11-26 10:00:00");
    let (mut s, key, rt, sum) = with_token(now);
    let at = s.exchange(&key, &rt, &sum, now).unwrap();
    let old = s.app(&key).unwrap().api_secret.clone();
    let new = s.regenerate_secret(&key).unwrap();
    assert_ne!(old, new);
    assert!(s.check_access(&key, at.token.expose(), now).is_some());
    let client = s.demo_client_id.clone();
    let rt2 = s.issue_request_token(&key, &client, now);
    let old_sum = kite_wire::checksum(&Secret::from(key.as_str()), &rt2, &old);
    assert_eq!(
        s.exchange(&key, &rt2, &old_sum, now).unwrap_err(),
        ExchangeError::BadChecksum
    );
}

#[test]
fn revoked_token_is_rejected_and_revoke_needs_a_live_token() {
    let now = ist("2026-11-26 10:00:00");
    let (mut s, key, rt, sum) = with_token(now);
    let at = s.exchange(&key, &rt, &sum, now).unwrap();
    assert!(!s.revoke("otherkey", at.token.expose(), now));
    assert!(s.revoke(&key, at.token.expose(), now));
    assert!(s.check_access(&key, at.token.expose(), now).is_none());
    assert!(!s.revoke(&key, at.token.expose(), now));
}

#[test]
fn faults_count_down_and_disappear() {
    let mut s = State::default();
    s.faults.push(Fault {
        path: "/user/profile".into(),
        status: Some(503),
        delay_ms: None,
        body: None,
        reset: false,
        count: 2,
    });
    assert!(s.take_fault("/user/margins").is_none());
    assert_eq!(s.take_fault("/user/profile").unwrap().status, Some(503));
    assert_eq!(s.faults[0].count, 1);
    assert!(s.take_fault("/user/profile").is_some());
    assert!(s.take_fault("/user/profile").is_none());
    assert!(s.faults.is_empty());
}

#[test]
fn pruning_keeps_recent_tokens_and_drops_old_ones() {
    let now = ist("2026-11-26 10:00:00");
    let (mut s, key, rt, sum) = with_token(now);
    s.exchange(&key, &rt, &sum, now).unwrap();
    s.prune(now.checked_add(secs(3600)).unwrap());
    assert_eq!((s.request_tokens.len(), s.access_tokens.len()), (1, 1));
    s.prune(now.checked_add(secs(9 * 86_400)).unwrap());
    assert_eq!((s.request_tokens.len(), s.access_tokens.len()), (0, 0));
}

#[test]
fn state_view_has_no_secrets() {
    let now = ist("2026-11-26 10:00:00");
    let (mut s, key, rt, sum) = with_token(now);
    let at = s.exchange(&key, &rt, &sum, now).unwrap();
    let rt2 = s.issue_request_token(&key, &s.demo_client_id.clone(), now);
    let view = serde_json::to_string(&s.public_view(now)).unwrap();
    let acc = s.account(&s.demo_client_id).unwrap();
    let app = s.app(&key).unwrap();
    for secret in [
        app.api_secret.expose(),
        acc.password.expose(),
        acc.totp_secret.expose(),
        at.token.expose(),
        rt.as_str(),
        rt2.as_str(),
    ] {
        assert!(!view.contains(secret), "state view leaks a secret");
    }
    assert!(view.contains(&key));
    assert!(view.contains("\"live_access_tokens\":1"));
}

#[test]
fn totp_accepts_one_step_of_skew_only() {
    let s = State::seeded();
    let secret = s.account(&s.demo_client_id).unwrap().totp_secret.clone();
    let now = ist("2026-11-26 10:00:10");
    let code = totp_now(&secret, now).unwrap();
    assert!(totp_ok(&secret, &code, now));
    assert!(totp_ok(&secret, &code, now.checked_add(secs(30)).unwrap()));
    assert!(!totp_ok(&secret, &code, now.checked_add(secs(90)).unwrap()));
    assert!(!totp_ok(&secret, "abc", now));
}

#[test]
fn client_id_lists_keep_the_owner_first_and_name_known_accounts_once() {
    let mut s = State::seeded();
    let key = s.demo_api_key.clone();
    let owner = s.demo_client_id.clone();
    let spouse = s.new_account("Spouse").client_id;
    let parent = s.new_account("Parent").client_id;
    let ids = |v: &[&str]| v.iter().map(|c| (*c).to_string()).collect::<Vec<_>>();
    assert_eq!(
        s.set_client_ids(&key, &ids(&[&parent, &owner.to_lowercase(), &spouse])),
        Ok(vec![owner.clone(), parent.clone(), spouse.clone()])
    );
    let app = s.app(&key).unwrap();
    assert!(app.enabled_for(&spouse) && app.enabled_for(&owner));
    assert_eq!(app.owner(), owner);
    assert_eq!(
        s.set_client_ids(&key, &ids(&[&spouse])),
        Err(ClientsError::OwnerMissing)
    );
    assert_eq!(
        s.set_client_ids(&key, &ids(&[&owner, "ZZ0000"])),
        Err(ClientsError::UnknownClient(1))
    );
    assert_eq!(
        s.set_client_ids(&key, &ids(&[&owner, &spouse, &spouse.to_lowercase()])),
        Err(ClientsError::Duplicate(2))
    );
    assert_eq!(
        s.set_client_ids("nosuchkey", &ids(&[&owner])),
        Err(ClientsError::UnknownApp)
    );
    let many: Vec<String> = (0..MAX_CLIENT_IDS)
        .map(|_| s.new_account("x").client_id)
        .collect();
    let mut too_many = ids(&[&owner]);
    too_many.extend(many);
    assert_eq!(
        s.set_client_ids(&key, &too_many),
        Err(ClientsError::TooMany)
    );
    // Refusals left the last good list.
    assert_eq!(
        s.app(&key).unwrap().client_ids,
        vec![owner, parent.clone(), spouse]
    );
    assert!(
        !s.app(&key).unwrap().enabled_for(&parent.to_lowercase()),
        "callers normalize"
    );
}

#[test]
fn an_app_record_needs_at_least_one_client_id() {
    let mut v = serde_json::to_value(State::seeded()).unwrap();
    v["apps"][0]["client_ids"] = serde_json::json!([]);
    assert!(serde_json::from_value::<State>(v).is_err());
}
