//! The programmatic API the main tool uses for `--sandbox`: `sandbox::start` in-process
//! with an injected clock, state in memory, and a clean shutdown.

use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use kite_setup::kite::client::HttpKite;
use kite_setup::kite::{Endpoints, Kite, KiteError};
use kite_setup::sandbox::{SandboxOptions, start};
use kite_setup::secret::Secret;
use kite_setup::session::{format_ist, parse_login_time};
use kite_setup::testkit::FixedClock;

#[test]
fn in_process_sandbox_follows_the_injected_clock_and_shuts_down() {
    let clock = Arc::new(FixedClock::at(
        parse_login_time("2026-11-26 02:00:00").unwrap(),
    ));
    let opts = SandboxOptions {
        auto_approve: true,
        ..SandboxOptions::default()
    };
    let sb = start(opts, clock.clone()).unwrap();
    sb.quiet();
    let banner = sb.banner_json();
    assert_eq!(banner.as_object().unwrap().len(), 10);
    assert_eq!(banner["api_key"], sb.demo.api_key.as_str());
    assert_eq!(sb.url.host_str(), Some("127.0.0.1"));

    let kite = HttpKite::new(Endpoints::sandbox(&sb.url)).unwrap();
    assert_eq!(
        format_ist(kite.server_time().unwrap()),
        "2026-11-26 02:00:00",
        "the Date header comes from the sandbox clock"
    );

    let key = Secret::from(sb.demo.api_key.as_str());
    let login = Endpoints::sandbox(&sb.url).login_url(&key, &[("state", "s1")]);
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client.get(login).send().unwrap();
    assert_eq!(resp.status(), 302);
    let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(&sb.demo.redirect_url));
    let rt = location
        .query_pairs()
        .find(|(k, _)| k == "request_token")
        .unwrap()
        .1
        .into_owned();

    let session = kite.create_session(&key, &rt, &sb.demo.api_secret).unwrap();
    assert_eq!(session.login_time, "2026-11-26 02:00:00");
    kite.profile(&key, &session.access_token).unwrap();

    // A login at 02:00 IST dies at 06:00 the same morning.
    clock.advance(SignedDuration::from_secs(4 * 3600 - 1));
    kite.profile(&key, &session.access_token).unwrap();
    clock.advance(SignedDuration::from_secs(1));
    assert!(
        kite.profile(&key, &session.access_token)
            .unwrap_err()
            .is_token_error()
    );

    let url = sb.url.clone();
    sb.shutdown();
    let quick = HttpKite::with_timeouts(
        Endpoints::sandbox(&url),
        Duration::from_secs(1),
        Duration::from_secs(2),
    )
    .unwrap();
    assert!(matches!(
        quick.server_time(),
        Err(KiteError::Connect { .. } | KiteError::Timeout { .. })
    ));
}

#[test]
fn non_loopback_addresses_are_refused() {
    for addr in ["0.0.0.0:0", "10.1.2.3:80", "[::]:0", "example.com:80"] {
        let opts = SandboxOptions {
            addr: addr.into(),
            ..SandboxOptions::default()
        };
        let err = start(opts, Arc::new(FixedClock::at(jiff::Timestamp::UNIX_EPOCH)))
            .err()
            .unwrap_or_else(|| panic!("{addr} was accepted"));
        assert_eq!(err.exit_code(), 2, "{addr}");
    }
}
