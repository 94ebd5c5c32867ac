//! The sandbox binary end to end over HTTP: the login redirect, the token exchange and
//! signed calls through the library's `HttpKite`, every rule the product page fixes, the
//! login form and authorisation page, the console, the control API and faults.

#[path = "support/sandbox.rs"]
mod sandbox_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kite_setup::kite::client::HttpKite;
use kite_setup::kite::{Endpoints, ErrorType, Kite, KiteError, SessionData};
use kite_setup::secret::Secret;
use reqwest::blocking::{Client, Response};
use sandbox_support::{BANNER_KEYS, SandboxProcess};
use serde_json::{Value, json};
use url::Url;

const BAD_KEY: &str = "Incorrect `api_key` or `access_token`.";
const TOKEN_INVALID: &str = "Token is invalid or has expired.";
const BAD_CHECKSUM: &str = "Invalid `checksum`.";

/// Form bodies without reqwest's `form` feature (not enabled in this crate).
trait FormBody {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormBody for reqwest::blocking::RequestBuilder {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
    }
}

fn http() -> Client {
    kite_setup::kite::client::install_tls_provider();
    Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn kite(sb: &SandboxProcess) -> HttpKite {
    HttpKite::new(Endpoints::sandbox(&Url::parse(&sb.url).unwrap())).unwrap()
}

fn control(sb: &SandboxProcess, path: &str, body: &Value) -> Value {
    let r = http()
        .post(sb.at(&format!("_sandbox/{path}")))
        .json(body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "control {path}");
    r.json().unwrap()
}

fn state(sb: &SandboxProcess) -> Value {
    http()
        .get(sb.at("_sandbox/state"))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn query(location: &str) -> HashMap<String, String> {
    Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn location(r: &Response) -> String {
    r.headers()["location"].to_str().unwrap().to_string()
}

/// An auto-approved login: the request_token from the redirect (with our nonce back).
fn request_token(sb: &SandboxProcess, api_key: &str) -> String {
    let mut u = Url::parse(&sb.login_url).unwrap();
    u.query_pairs_mut()
        .append_pair("v", "3")
        .append_pair("api_key", api_key)
        .append_pair("redirect_params", "state=n0nce&x=a b");
    let r = http().get(u).send().unwrap();
    assert_eq!(r.status(), 302);
    let q = query(&location(&r));
    assert_eq!(q["status"], "success");
    assert_eq!(q["action"], "login");
    assert_eq!(q["type"], "login");
    assert_eq!(q["state"], "n0nce");
    assert_eq!(q["x"], "a b");
    q["request_token"].clone()
}

fn session(sb: &SandboxProcess, api_key: &str, secret: &str) -> Result<SessionData, KiteError> {
    let rt = request_token(sb, api_key);
    kite(sb).create_session(&Secret::from(api_key), &rt, &Secret::from(secret))
}

fn demo_session(sb: &SandboxProcess) -> SessionData {
    session(sb, &sb.api_key, &sb.api_secret).unwrap()
}

fn assert_api_error(
    r: Result<impl std::fmt::Debug, KiteError>,
    status: u16,
    ty: &ErrorType,
    msg: &str,
) {
    match r {
        Err(KiteError::Api {
            status: s,
            error_type,
            message,
            ..
        }) => assert_eq!((s, &error_type, message.as_str()), (status, ty, msg)),
        other => panic!("expected {status} {ty:?} {msg:?}, got {other:?}"),
    }
}

fn signed_get(sb: &SandboxProcess, path: &str, key: &str, token: &Secret) -> Response {
    http()
        .get(sb.at(path))
        .header("X-Kite-Version", "3")
        .header("Authorization", format!("token {key}:{}", token.expose()))
        .send()
        .unwrap()
}

fn set_clock(sb: &SandboxProcess, offset: i64) {
    control(sb, "clock", &json!({ "offset_seconds": offset }));
}

fn totp_code(secret_b32: &str, at_unix: u64) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret_b32).unwrap();
    let totp = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(bytes)
        .build()
        .unwrap();
    totp.generate(at_unix).to_string()
}

/// The sandbox's own clock (its `Date` can be shifted by time travel).
fn sandbox_now(sb: &SandboxProcess) -> jiff::Timestamp {
    let v: Value = http()
        .get(sb.at("_sandbox/clock"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["now"].as_str().unwrap().parse().unwrap()
}

fn current_code(sb: &SandboxProcess, secret: &str) -> String {
    totp_code(secret, u64::try_from(sandbox_now(sb).as_second()).unwrap())
}

#[test]
fn banner_is_one_json_line_with_exactly_the_listed_keys_within_two_seconds() {
    let sb = SandboxProcess::auto_approve();
    assert!(sb.startup < Duration::from_secs(2), "{:?}", sb.startup);
    let obj = sb.banner.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want = BANNER_KEYS.to_vec();
    want.sort_unstable();
    assert_eq!(keys, want);
    assert!(obj.values().all(Value::is_string));
    assert!(sb.url.starts_with("http://127.0.0.1:") && sb.url.ends_with('/'));
    assert_eq!(sb.login_url, format!("{}connect/login", sb.url));
    assert_eq!(sb.console_url, format!("{}console", sb.url));
    assert_eq!(sb.api_url, sb.url.trim_end_matches('/'));
    assert_eq!(sb.redirect_url, "http://127.0.0.1:5123/kite-setup/callback");
    assert_eq!(sb.api_key.len(), 16);
    assert_eq!(sb.api_secret.len(), 32);
    assert!(!sb.banner_line.contains('\n'));
}

#[test]
fn login_exchange_profile_margins_invalidate() {
    let sb = SandboxProcess::auto_approve();
    let s = demo_session(&sb);
    assert_eq!(s.user_id, sb.client_id);
    assert_eq!(s.api_key, sb.api_key);
    assert_eq!(s.access_token.len(), 32);
    assert!(
        s.access_token
            .expose()
            .chars()
            .all(|c| c.is_ascii_alphanumeric())
    );
    assert_eq!(s.user_type, "individual");
    assert_eq!(s.broker, "ZERODHA");
    assert!(kite_setup::session::parse_login_time(&s.login_time).is_some());

    // The raw body has the fixture's shape.
    let rt = request_token(&sb, &sb.api_key);
    let sum = kite_setup::kite::checksum(
        &Secret::from(sb.api_key.as_str()),
        &rt,
        &Secret::from(sb.api_secret.as_str()),
    );
    let r = http()
        .post(sb.at("session/token"))
        .header("Authorization", "token whatever:null")
        .form_body(&[
            ("api_key", sb.api_key.as_str()),
            ("request_token", &rt),
            ("checksum", &sum),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().unwrap();
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/kite-mocks/generate_session.json")).unwrap();
    let mut want: Vec<&String> = fixture["data"].as_object().unwrap().keys().collect();
    let mut got: Vec<&String> = body["data"].as_object().unwrap().keys().collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(body["data"]["refresh_token"], "");
    assert!(body["data"]["avatar_url"].is_null());
    assert_eq!(body["data"]["meta"]["demat_consent"], "physical");

    let key = Secret::from(sb.api_key.as_str());
    let prof = kite(&sb).profile(&key, &s.access_token).unwrap();
    assert_eq!(prof.user_id, sb.client_id);

    let margins: Value = signed_get(&sb, "user/margins", &sb.api_key, &s.access_token)
        .json()
        .unwrap();
    assert_eq!(margins["status"], "success");
    assert!(margins["data"]["equity"]["available"]["cash"].is_number());
    assert!(margins["data"]["commodity"]["enabled"].as_bool().unwrap());
    let equity: Value = signed_get(&sb, "user/margins/equity", &sb.api_key, &s.access_token)
        .json()
        .unwrap();
    assert!(equity["data"]["net"].is_number());
    let bad = signed_get(&sb, "user/margins/stocks", &sb.api_key, &s.access_token);
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().unwrap()["error_type"], "InputException");

    // A key that does not match the token is refused.
    let other = control(
        &sb,
        "apps",
        &json!({"client_id": sb.client_id, "redirect_url": "https://example.com/cb", "plan": "connect"}),
    );
    let r = kite(&sb).profile(
        &Secret::from(other["api_key"].as_str().unwrap()),
        &s.access_token,
    );
    assert_api_error(r, 403, &ErrorType::Token, BAD_KEY);

    kite(&sb).invalidate(&key, &s.access_token).unwrap();
    assert_api_error(
        kite(&sb).profile(&key, &s.access_token),
        403,
        &ErrorType::Token,
        BAD_KEY,
    );
    assert_api_error(
        kite(&sb).invalidate(&key, &s.access_token),
        403,
        &ErrorType::Token,
        BAD_KEY,
    );
}

#[test]
fn request_tokens_are_single_use_and_die_at_300_seconds() {
    let sb = SandboxProcess::auto_approve();
    let key = Secret::from(sb.api_key.as_str());
    let secret = Secret::from(sb.api_secret.as_str());
    let rt = request_token(&sb, &sb.api_key);
    kite(&sb).create_session(&key, &rt, &secret).unwrap();
    assert_api_error(
        kite(&sb).create_session(&key, &rt, &secret),
        403,
        &ErrorType::Token,
        TOKEN_INVALID,
    );

    let rt = request_token(&sb, &sb.api_key);
    set_clock(&sb, 301);
    let clock: Value = http()
        .get(sb.at("_sandbox/clock"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(clock["offset_seconds"], 301);
    assert_api_error(
        kite(&sb).create_session(&key, &rt, &secret),
        403,
        &ErrorType::Token,
        TOKEN_INVALID,
    );

    assert_api_error(
        kite(&sb).create_session(&key, "neverissued", &secret),
        403,
        &ErrorType::Token,
        TOKEN_INVALID,
    );
}

#[test]
fn wrong_checksum_is_refused_and_burns_the_token() {
    let sb = SandboxProcess::auto_approve();
    let key = Secret::from(sb.api_key.as_str());
    let rt = request_token(&sb, &sb.api_key);
    assert_api_error(
        kite(&sb).create_session(&key, &rt, &Secret::from("wrongsecret")),
        403,
        &ErrorType::Token,
        BAD_CHECKSUM,
    );
    assert_api_error(
        kite(&sb).create_session(&key, &rt, &Secret::from(sb.api_secret.as_str())),
        403,
        &ErrorType::Token,
        TOKEN_INVALID,
    );
}

#[test]
fn lapsed_subscription_makes_every_call_403_but_login_works() {
    let sb = SandboxProcess::auto_approve();
    let s = demo_session(&sb);
    let key = Secret::from(sb.api_key.as_str());
    control(
        &sb,
        &format!("apps/{}/subscription", sb.api_key),
        &json!({"active": false}),
    );
    assert_api_error(
        kite(&sb).profile(&key, &s.access_token),
        403,
        &ErrorType::Token,
        BAD_KEY,
    );
    assert_api_error(
        session(&sb, &sb.api_key, &sb.api_secret),
        403,
        &ErrorType::Token,
        BAD_KEY,
    );
    control(
        &sb,
        &format!("apps/{}/subscription", sb.api_key),
        &json!({"active": true}),
    );
    kite(&sb).profile(&key, &s.access_token).unwrap();
}

#[test]
fn unknown_routes_and_missing_fields() {
    let sb = SandboxProcess::auto_approve();
    for (method, path) in [
        ("GET", "nope"),
        ("GET", "session/token"),
        ("PUT", "user/profile"),
        ("GET", ""),
    ] {
        let r = http()
            .request(method.parse().unwrap(), sb.at(path))
            .send()
            .unwrap();
        assert_eq!(r.status(), 404, "{method} /{path}");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert!(r.headers().contains_key("date"));
        let v: Value = r.json().unwrap();
        assert_eq!(
            (v["error_type"].as_str(), v["message"].as_str()),
            (Some("GeneralException"), Some("Route not found"))
        );
    }
    let r = http()
        .post(sb.at("session/token"))
        .form_body(&[("api_key", sb.api_key.as_str()), ("request_token", "x")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().unwrap();
    assert_eq!(v["error_type"], "InputException");
    assert!(v["message"].as_str().unwrap().contains("checksum"));
    let r = http().delete(sb.at("session/token")).send().unwrap();
    assert_eq!(r.status(), 400);
    let r = http()
        .post(sb.at("session/token"))
        .form_body(&[
            ("api_key", "unknownkey"),
            ("request_token", "x"),
            ("checksum", "y"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().unwrap()["message"], BAD_KEY);
    // The login page refuses an unknown key with an HTML page.
    let r = http()
        .get(format!("{}?v=3&api_key=unknownkey", sb.login_url))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

#[test]
fn time_travel_past_six_ist_kills_the_token() {
    let sb = SandboxProcess::auto_approve();
    let s = demo_session(&sb);
    let key = Secret::from(sb.api_key.as_str());
    let login = kite_setup::session::parse_login_time(&s.login_time).unwrap();
    let expiry = kite_setup::session::expiry_after(login);
    let left = expiry.duration_since(sandbox_now(&sb)).as_secs();
    assert!(left > 0 && left <= 24 * 3600, "{left}");
    set_clock(&sb, left - 30);
    kite(&sb).profile(&key, &s.access_token).unwrap();
    set_clock(&sb, left + 1);
    assert_api_error(
        kite(&sb).profile(&key, &s.access_token),
        403,
        &ErrorType::Token,
        BAD_KEY,
    );
    // The Date header follows the sandbox clock.
    let date = kite(&sb).server_time().unwrap();
    assert!(date >= expiry, "{date} < {expiry}");
    // A login after the flush works again.
    let s2 = demo_session(&sb);
    kite(&sb).profile(&key, &s2.access_token).unwrap();
}

#[test]
fn regenerated_secret_keeps_tokens_but_old_secret_fails() {
    let sb = SandboxProcess::auto_approve();
    let s = demo_session(&sb);
    let key = Secret::from(sb.api_key.as_str());
    let new = control(&sb, &format!("apps/{}/regenerate", sb.api_key), &json!({}));
    let new = new["api_secret"].as_str().unwrap().to_string();
    assert_ne!(new, sb.api_secret);
    kite(&sb).profile(&key, &s.access_token).unwrap();
    assert_api_error(
        session(&sb, &sb.api_key, &sb.api_secret),
        403,
        &ErrorType::Token,
        BAD_CHECKSUM,
    );
    session(&sb, &sb.api_key, &new).unwrap();
}

#[test]
fn faults_of_every_kind() {
    let sb = SandboxProcess::auto_approve();
    let s = demo_session(&sb);
    let key = Secret::from(sb.api_key.as_str());
    let k = kite(&sb);
    let fault = |f: Value| control(&sb, "faults", &f);

    fault(json!({"path": "/user/profile", "status": 503, "count": 2}));
    assert_eq!(state(&sb)["faults"][0]["count"], 2);
    for _ in 0..2 {
        assert_api_error(
            k.profile(&key, &s.access_token),
            503,
            &ErrorType::Network,
            "Service unavailable (injected fault).",
        );
    }
    k.profile(&key, &s.access_token).unwrap();
    assert_eq!(state(&sb)["faults"], json!([]));

    fault(json!({"path": "/user/profile", "status": 429}));
    assert_api_error(
        k.profile(&key, &s.access_token),
        429,
        &ErrorType::Network,
        "Too many requests",
    );
    fault(json!({"path": "/user/profile", "status": 502, "count": 1}));
    assert_api_error(
        k.profile(&key, &s.access_token),
        502,
        &ErrorType::Data,
        "Bad gateway (injected fault).",
    );

    fault(
        json!({"path": "/user/profile", "body": "<html>proxy error</html>", "status": 502, "count": 1}),
    );
    let r = signed_get(&sb, "user/profile", &sb.api_key, &s.access_token);
    assert_eq!(r.status(), 502);
    assert!(
        !r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("json")
    );
    assert_eq!(r.text().unwrap(), "<html>proxy error</html>");
    fault(json!({"path": "/user/profile", "body": "oops", "count": 1}));
    assert!(matches!(
        k.profile(&key, &s.access_token),
        Err(KiteError::UnexpectedError { status: 500, .. })
    ));

    // A delay holds that answer only, not the others.
    fault(json!({"path": "/user/profile", "delay_ms": 1500, "count": 1}));
    let url = sb.url.clone();
    let token = s.access_token.clone();
    let api_key = sb.api_key.clone();
    let slow = std::thread::spawn(move || {
        let t = Instant::now();
        let k = HttpKite::new(Endpoints::sandbox(&Url::parse(&url).unwrap())).unwrap();
        k.profile(&Secret::from(api_key.as_str()), &token).unwrap();
        t.elapsed()
    });
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    let _ = state(&sb);
    assert!(
        t.elapsed() < Duration::from_millis(700),
        "a delay blocked other requests"
    );
    assert!(slow.join().unwrap() >= Duration::from_millis(1500));

    fault(json!({"path": "/user/profile", "reset": true, "count": 1}));
    assert!(matches!(
        k.profile(&key, &s.access_token),
        Err(KiteError::Connect { .. })
    ));
    k.profile(&key, &s.access_token).unwrap();

    // Bad control input is a 400 with a JSON body.
    for bad in [
        json!({"path": "nope", "status": 500}),
        json!({"path": "/x"}),
        json!({"path": "/x", "status": 200}),
    ] {
        let r = http()
            .post(sb.at("_sandbox/faults"))
            .json(&bad)
            .send()
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(r.json::<Value>().unwrap()["error_type"], "InputException");
    }
    let r = http()
        .post(sb.at("_sandbox/clock"))
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// Finds `name="NAME" value="..."` in a page.
fn hidden_value(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_string()
}

fn submit_login(sb: &SandboxProcess, client_id: &str, password: &str, totp: &str) -> Response {
    let params = "state=abc";
    http()
        .post(&sb.login_url)
        .form_body(&[
            ("api_key", sb.api_key.as_str()),
            ("redirect_params", params),
            ("client_id", client_id),
            ("password", password),
            ("totp", totp),
        ])
        .send()
        .unwrap()
}

#[test]
fn login_form_authorisation_and_user_not_enabled() {
    let sb = SandboxProcess::with_login_form();
    let page = http()
        .get(format!(
            "{}?v=3&api_key={}&redirect_params=state%3Dabc",
            sb.login_url, sb.api_key
        ))
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let page = page.text().unwrap();
    assert_eq!(hidden_value(&page, "api_key"), sb.api_key);
    assert_eq!(hidden_value(&page, "redirect_params"), "state=abc");

    let wrong = submit_login(
        &sb,
        &sb.client_id,
        "wrong-password",
        &current_code(&sb, &sb.totp_secret),
    );
    assert_eq!(wrong.status(), 200);
    assert!(
        wrong
            .text()
            .unwrap()
            .contains("Invalid client ID, password or TOTP code.")
    );
    let wrong = submit_login(&sb, &sb.client_id, &sb.password, "000000x");
    assert!(wrong.text().unwrap().contains("id=\"error\""));

    let other = control(&sb, "accounts", &json!({}));
    let (cid, pw, totp) = (
        other["client_id"].as_str().unwrap(),
        other["password"].as_str().unwrap(),
        other["totp_secret"].as_str().unwrap(),
    );
    let r = submit_login(&sb, cid, pw, &current_code(&sb, totp));
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(
        r.text().unwrap(),
        r#"{"status":"error","message":"The user is not enabled for the app.","data":null,"error_type":"InputException"}"#
    );

    // The first time: the authorisation page; Cancel goes back with status=cancelled.
    let auth = submit_login(
        &sb,
        &sb.client_id.to_lowercase(),
        &sb.password,
        &current_code(&sb, &sb.totp_secret),
    );
    assert_eq!(auth.status(), 200);
    let auth = auth.text().unwrap();
    assert!(auth.contains("Authorize Demo app"), "{auth}");
    let r = http()
        .post(sb.at("connect/authorize"))
        .form_body(&[
            ("ticket", hidden_value(&auth, "ticket").as_str()),
            ("action", "cancel"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = location(&r);
    assert!(loc.starts_with(&sb.redirect_url));
    let q = query(&loc);
    assert_eq!(q["status"], "cancelled");
    assert_eq!(q["state"], "abc");
    assert!(!q.contains_key("request_token"));

    // Authorize: a success redirect; a used ticket is refused.
    let auth = submit_login(
        &sb,
        &sb.client_id,
        &sb.password,
        &current_code(&sb, &sb.totp_secret),
    )
    .text()
    .unwrap();
    let ticket = hidden_value(&auth, "ticket");
    let r = http()
        .post(sb.at("connect/authorize"))
        .form_body(&[("ticket", ticket.as_str()), ("action", "authorize")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 302);
    let q = query(&location(&r));
    assert_eq!(
        (q["status"].as_str(), q["state"].as_str()),
        ("success", "abc")
    );
    let key = Secret::from(sb.api_key.as_str());
    kite(&sb)
        .create_session(
            &key,
            &q["request_token"],
            &Secret::from(sb.api_secret.as_str()),
        )
        .unwrap();
    let r = http()
        .post(sb.at("connect/authorize"))
        .form_body(&[("ticket", ticket.as_str()), ("action", "authorize")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);

    // Already authorised: straight to the app.
    let r = submit_login(
        &sb,
        &sb.client_id,
        &sb.password,
        &current_code(&sb, &sb.totp_secret),
    );
    assert_eq!(r.status(), 302);
    assert_eq!(query(&location(&r))["status"], "success");
}

#[test]
fn state_view_and_log_carry_no_secrets() {
    let sb = SandboxProcess::auto_approve();
    let acc = control(&sb, "accounts", &json!({}));
    let app = control(
        &sb,
        "apps",
        &json!({"client_id": acc["client_id"], "redirect_url": "http://localhost:8080/cb", "plan": "personal"}),
    );
    let regen = control(
        &sb,
        &format!("apps/{}/regenerate", app["api_key"].as_str().unwrap()),
        &json!({}),
    );
    let s = demo_session(&sb);
    let pending_rt = request_token(&sb, &sb.api_key);
    kite(&sb)
        .invalidate(&Secret::from(sb.api_key.as_str()), &s.access_token)
        .unwrap();
    let view = state(&sb).to_string();
    let log = sb.stderr_log();
    let secrets = [
        acc["password"].as_str().unwrap(),
        acc["totp_secret"].as_str().unwrap(),
        app["api_secret"].as_str().unwrap(),
        regen["api_secret"].as_str().unwrap(),
        sb.api_secret.as_str(),
        sb.password.as_str(),
        sb.totp_secret.as_str(),
        s.access_token.expose(),
        pending_rt.as_str(),
    ];
    for secret in secrets {
        assert!(!view.contains(secret), "state view leaks a secret");
        assert!(!log.contains(secret), "log leaks a secret");
    }
    assert!(view.contains(app["api_key"].as_str().unwrap()));
    assert!(view.contains(acc["client_id"].as_str().unwrap()));
    assert!(log.contains("GET /connect/login -> 302"), "{log}");
    assert!(log.contains("DELETE /session/token -> 200"), "{log}");
    assert!(!log.contains('?'), "the log has a query string");
}

/// Reads the session cookie from a console login answer.
fn console_login(sb: &SandboxProcess) -> String {
    let r = http()
        .post(sb.at("console/login"))
        .form_body(&[
            ("client_id", sb.client_id.as_str()),
            ("password", sb.password.as_str()),
            ("totp", &current_code(sb, &sb.totp_secret)),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    cookie.split(';').next().unwrap().to_string()
}

fn console_get(sb: &SandboxProcess, cookie: &str, path: &str) -> Response {
    http()
        .get(sb.at(path))
        .header("Cookie", cookie)
        .send()
        .unwrap()
}

fn code_value(page: &str, id: &str) -> Option<String> {
    let marker = format!("<code id=\"{id}\">");
    let start = page.find(&marker)? + marker.len();
    Some(page[start..].split('<').next()?.to_string())
}

#[test]
fn console_login_create_app_secret_once_regenerate_and_billing() {
    let sb = SandboxProcess::auto_approve();
    let r = http().get(sb.at("console/apps")).send().unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/console".to_string())
    );
    let r = http().get(sb.at("console")).send().unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.text().unwrap().contains("name=\"totp\""));
    let r = http()
        .post(sb.at("console/login"))
        .form_body(&[
            ("client_id", sb.client_id.as_str()),
            ("password", sb.password.as_str()),
            ("totp", "123"),
        ])
        .send()
        .unwrap();
    assert!(
        r.text()
            .unwrap()
            .contains("Invalid client ID, password or TOTP code.")
    );

    let cookie = console_login(&sb);
    let list = console_get(&sb, &cookie, "console/apps");
    assert_eq!(list.headers()["cache-control"], "no-store");
    let list = list.text().unwrap();
    assert!(list.contains(&sb.api_key) && list.contains("personal") && list.contains("active"));

    // Form errors are shown inline and keep the typed values.
    let bad = http()
        .post(sb.at("console/apps/new"))
        .header("Cookie", &cookie)
        .form_body(&[
            ("name", "My <bot>"),
            ("client_id", sb.client_id.as_str()),
            ("redirect_url", "http://example.com/cb"),
            ("plan", "connect"),
        ])
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad = bad.text().unwrap();
    assert!(
        bad.contains("id=\"errors\"") && bad.contains("Redirect URL"),
        "{bad}"
    );
    assert!(bad.contains("My &lt;bot&gt;") && !bad.contains("My <bot>"));

    let created = http()
        .post(sb.at("console/apps/new"))
        .header("Cookie", &cookie)
        .form_body(&[
            ("name", "My bot"),
            ("client_id", sb.client_id.as_str()),
            ("redirect_url", "http://127.0.0.1:5124/cb"),
            ("postback_url", ""),
            ("description", "test"),
            ("plan", "connect"),
        ])
        .send()
        .unwrap();
    assert_eq!(created.status(), 303);
    let app_path = location(&created);
    let first = console_get(&sb, &cookie, &app_path).text().unwrap();
    let key = code_value(&first, "api_key").unwrap();
    let secret =
        code_value(&first, "api_secret").expect("the secret is shown right after creation");
    assert_eq!((key.len(), secret.len()), (16, 32));
    let again = console_get(&sb, &cookie, &app_path).text().unwrap();
    assert!(code_value(&again, "api_secret").is_none());
    assert!(again.contains("hidden — regenerate to see a new one"));
    assert_eq!(code_value(&again, "api_key").unwrap(), key);
    assert!(
        console_get(&sb, &cookie, "console/apps")
            .text()
            .unwrap()
            .contains("connect")
    );

    // The key and secret work.
    session(&sb, &key, &secret).unwrap();

    let r = http()
        .post(sb.at(&format!("{app_path}/regenerate")))
        .header("Cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = console_get(&sb, &cookie, &app_path).text().unwrap();
    let new_secret = code_value(&page, "api_secret").unwrap();
    assert_ne!(new_secret, secret);
    assert_api_error(
        session(&sb, &key, &secret),
        403,
        &ErrorType::Token,
        BAD_CHECKSUM,
    );
    session(&sb, &key, &new_secret).unwrap();

    // Billing: a lapsed subscription can be renewed.
    control(
        &sb,
        &format!("apps/{key}/subscription"),
        &json!({"active": false}),
    );
    let billing = console_get(&sb, &cookie, &format!("{app_path}/billing"))
        .text()
        .unwrap();
    assert!(billing.contains("<strong id=\"subscription\">lapsed</strong>"));
    let r = http()
        .post(sb.at(&format!("{app_path}/billing")))
        .header("Cookie", &cookie)
        .form_body(&[("action", "renew")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
    let billing = console_get(&sb, &cookie, &format!("{app_path}/billing"))
        .text()
        .unwrap();
    assert!(billing.contains("<strong id=\"subscription\">active</strong>"));

    // A forged session cookie gets the login page.
    let r = console_get(&sb, "kite_console=forged", &app_path);
    assert_eq!(r.status(), 303);
}

#[test]
fn state_persists_and_only_loopback_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("sb.json");
    let mut first = SandboxProcess::spawn(&["--auto-approve"], Some(&path));
    set_clock(&first, 42);
    first.kill();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let second = SandboxProcess::spawn(&[], Some(&path));
    assert_eq!(
        (second.api_key.as_str(), second.api_secret.as_str()),
        (first.api_key.as_str(), first.api_secret.as_str())
    );
    assert_eq!(state(&second)["clock_offset_seconds"], 42);

    // An existing directory keeps its mode (only a directory the sandbox creates is 0700).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let _third = SandboxProcess::spawn(&[], Some(&dir.path().join("flat.json")));
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        let nested = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(nested & 0o777, 0o700);
    }

    for addr in ["0.0.0.0:0", "192.0.2.1:5010", "localhost"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kite-setup"))
            .args(["sandbox", "--json", "--addr", addr, "--state"])
            .arg(dir.path().join("x.json"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{addr}");
        assert!(out.stdout.is_empty());
        assert!(String::from_utf8_lossy(&out.stderr).contains("error:"));
    }
}

#[test]
fn hostile_input_gets_proper_errors_and_the_server_lives_on() {
    let sb = SandboxProcess::auto_approve();
    let c = http();
    let post = |path: &str, ct: &str, body: Vec<u8>| {
        c.post(sb.at(path))
            .header("Content-Type", ct)
            .body(body)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let form = "application/x-www-form-urlencoded";
    assert_eq!(
        post("session/token", form, vec![0xff, 0xfe, b'=', 0x80]),
        400
    );
    assert_eq!(post("session/token", form, vec![b'a'; 100 * 1024]), 413);
    for bad in [
        r"[]",
        r#"{"client_id": 5}"#,
        r#"{"client_id": "ZZ9999", "redirect_url": "https://x.y/"}"#,
    ] {
        assert_eq!(
            post("_sandbox/apps", "application/json", bad.into()),
            400,
            "{bad}"
        );
    }
    let app = format!(
        r#"{{"client_id": "{}", "redirect_url": "javascript:alert(1)"}}"#,
        sb.client_id
    );
    assert_eq!(post("_sandbox/apps", "application/json", app.into()), 400);
    assert_eq!(
        post(
            "_sandbox/faults",
            "application/json",
            br#"{"path":"/x","status":"abc"}"#.to_vec()
        ),
        400
    );
    assert_eq!(
        post(
            "_sandbox/clock",
            "application/json",
            br#"{"offset_seconds":1e300}"#.to_vec()
        ),
        400
    );
    assert_eq!(
        post(
            "_sandbox/apps/nokey/regenerate",
            "application/json",
            b"{}".to_vec()
        ),
        400
    );
    assert_eq!(post("connect/login", form, b"api_key=%ff%fe".to_vec()), 400);
    assert_eq!(
        post(
            "connect/authorize",
            form,
            b"ticket=nope&action=authorize".to_vec()
        ),
        400
    );
    // (Non-ASCII header bytes never reach the handlers: tiny_http closes such connections.)
    for auth in [
        "token ",
        "token :",
        "token a:b:c",
        "Bearer x",
        "token k:t extra",
        "token%20a:b",
    ] {
        let r = c
            .get(sb.at("user/profile"))
            .header("Authorization", auth)
            .send()
            .unwrap();
        assert_eq!(r.status(), 403, "{auth}");
    }
    for path in [
        "console/apps/%00/billing",
        "connect/login?api_key=%ff",
        "_sandbox/",
        "user/margins/",
        "%2e%2e/etc",
    ] {
        let status = c.get(sb.at(path)).send().unwrap().status().as_u16();
        assert!((300..500).contains(&status), "{path}: {status}");
    }
    // Still serving, and nothing panicked.
    demo_session(&sb);
    assert!(!sb.stderr_log().contains("panicked"), "{}", sb.stderr_log());
}
