//! Reading Kite's JSON answers (docs/kite-wire.md "Envelope"): the envelope and payload
//! types are kite-wire's; this is the client's parser. `decode` is pure, so every
//! fixture and every hostile body can be fed to it without a server.

use serde::de::DeserializeOwned;

use super::error::{ErrorType, KiteError};
pub use kite_wire::envelope::data_error;
use kite_wire::envelope::{Envelope as RawEnvelope, sanitize};
pub use kite_wire::user::{SessionData, User, UserProfile};

/// Reads one HTTP answer from Kite: the status, the `Content-Type` and the body.
/// Success envelopes give `data` as `T`; Kite's error envelope gives `KiteError::Api`;
/// anything else (HTML, empty, JSON without `error_type`) gives a typed error that says
/// what arrived without repeating it.
pub fn decode<T: DeserializeOwned>(
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<T, KiteError> {
    let looks_json = content_type.is_some_and(|c| c.to_ascii_lowercase().contains("json"))
        || body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let envelope: Option<RawEnvelope> = if looks_json {
        serde_json::from_slice(body).ok()
    } else {
        None
    };

    if (200..300).contains(&status) {
        let Some(env) = envelope else {
            return Err(KiteError::Malformed(describe_body(content_type, body)));
        };
        if env.status.as_deref() == Some("error") {
            return Err(api_error(status, &env));
        }
        let data = env
            .data
            .ok_or_else(|| KiteError::Malformed("a success answer without data".into()))?;
        return serde_json::from_value(data)
            .map_err(|e| KiteError::Malformed(format!("unexpected data: {}", data_error(&e))));
    }

    if (300..400).contains(&status) {
        return Err(KiteError::Redirected { status });
    }

    match envelope {
        Some(env) if env.error_type.is_some() => Err(api_error(status, &env)),
        Some(_) => Err(KiteError::UnexpectedError {
            status,
            what: "JSON without an error_type".into(),
        }),
        None => Err(KiteError::UnexpectedError {
            status,
            what: describe_body(content_type, body),
        }),
    }
}

fn api_error(status: u16, env: &RawEnvelope) -> KiteError {
    let error_type = env
        .error_type
        .as_deref()
        .map_or_else(|| ErrorType::for_status(status), ErrorType::parse);
    KiteError::api(
        status,
        error_type,
        sanitize(env.message.as_deref().unwrap_or("(no message)")),
    )
}

/// What kind of body this was, in a few words, never the body itself.
fn describe_body(content_type: Option<&str>, body: &[u8]) -> String {
    if body.iter().all(u8::is_ascii_whitespace) {
        return "an empty body".into();
    }
    let ct = content_type
        .unwrap_or("no content type")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    let head = String::from_utf8_lossy(&body[..body.len().min(512)]).to_ascii_lowercase();
    if head.contains("<html") || head.contains("<!doctype") || ct.contains("html") {
        format!("an HTML page ({} bytes)", body.len())
    } else {
        format!("a {ct} body of {} bytes", body.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/kite-mocks");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIX}/{name}")).unwrap()
    }

    #[test]
    fn session_fixture_decodes() {
        let s: SessionData = decode(
            200,
            Some("application/json"),
            &fixture("generate_session.json"),
        )
        .unwrap();
        assert_eq!(s.user_id, "XX0000");
        assert_eq!(s.access_token.expose(), "XXXXXX");
        assert_eq!(s.login_time, "2021-01-01 16:15:14");
        assert_eq!(s.refresh_token.expose(), "");
        assert_eq!(s.avatar_url.as_deref(), Some("abc"));
    }

    #[test]
    fn profile_fixture_with_null_avatar_decodes() {
        let p: UserProfile =
            decode(200, Some("application/json"), &fixture("profile.json")).unwrap();
        assert_eq!(p.user_id, "AB1234");
        assert_eq!(p.avatar_url, None);
        assert_eq!(p.exchanges.len(), 8);
    }

    #[test]
    fn margins_and_logout_fixtures_decode() {
        let m: serde_json::Value =
            decode(200, Some("application/json"), &fixture("margins.json")).unwrap();
        assert!(m["equity"]["enabled"].as_bool().unwrap());
        let ok: bool = decode(
            200,
            Some("application/json"),
            &fixture("session_logout.json"),
        )
        .unwrap();
        assert!(ok);
    }

    #[test]
    fn investor_user_type_and_unknown_fields_are_fine() {
        let body = br#"{"status":"success","data":{"user_id":"AB1234","user_type":"investor","brand_new_field":{"x":1},"avatar_url":null}}"#;
        let p: UserProfile = decode(200, Some("application/json"), body).unwrap();
        assert_eq!(p.user_type, "investor");
    }

    #[test]
    fn every_error_fixture_maps_to_its_type_and_message() {
        let cases = [
            (
                "errors/docs_example_general_exception.json",
                500,
                ErrorType::General,
                "Error message",
            ),
            (
                "errors/general_exception_route_not_found.json",
                404,
                ErrorType::General,
                "Route not found",
            ),
            (
                "errors/input_exception_user_not_enabled.json",
                400,
                ErrorType::Input,
                "The user is not enabled for the app.",
            ),
            (
                "errors/network_exception_too_many_requests.json",
                429,
                ErrorType::Network,
                "Too many requests",
            ),
            (
                "errors/permission_exception_insufficient_permission.json",
                403,
                ErrorType::Permission,
                "Insufficient permission for that call.",
            ),
            (
                "errors/token_exception_invalid_access_token.json",
                403,
                ErrorType::Token,
                "Incorrect `api_key` or `access_token`.",
            ),
            (
                "errors/token_exception_invalid_checksum.json",
                403,
                ErrorType::Token,
                "Invalid `checksum`.",
            ),
            (
                "errors/token_exception_token_invalid_or_expired.json",
                403,
                ErrorType::Token,
                "Token is invalid or has expired.",
            ),
        ];
        for (file, status, ty, msg) in cases {
            let err = decode::<serde_json::Value>(status, Some("application/json"), &fixture(file))
                .unwrap_err();
            match err {
                KiteError::Api {
                    status: s,
                    error_type,
                    message,
                    ..
                } => {
                    assert_eq!(
                        (s, &error_type, message.as_str()),
                        (status, &ty, msg),
                        "{file}"
                    );
                }
                other => panic!("{file}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_error_type_is_kept() {
        let body =
            br#"{"status":"error","message":"m","error_type":"ShinyNewException","data":null}"#;
        let err = decode::<serde_json::Value>(400, Some("application/json"), body).unwrap_err();
        assert!(
            matches!(err, KiteError::Api { error_type: ErrorType::Other(ref s), .. } if s == "ShinyNewException")
        );
    }

    #[test]
    fn non_envelope_bodies_are_described_not_echoed() {
        let html = b"<html><body>502 Bad Gateway secret-ish</body></html>";
        let err = decode::<serde_json::Value>(502, Some("text/html"), html).unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains("HTML page"), "{shown}");
        assert!(!shown.contains("secret-ish"));

        let err = decode::<serde_json::Value>(503, None, b"").unwrap_err();
        assert!(err.to_string().contains("empty body"));

        let err = decode::<serde_json::Value>(
            500,
            Some("application/json"),
            br#"{"status":"error","message":"x"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("without an error_type"));

        let err = decode::<UserProfile>(200, Some("text/html"), b"<html>captive portal</html>")
            .unwrap_err();
        assert!(matches!(err, KiteError::Malformed(_)));

        let err = decode::<UserProfile>(302, None, b"").unwrap_err();
        assert!(matches!(err, KiteError::Redirected { status: 302 }));
    }

    #[test]
    fn mistyped_data_is_described_without_its_value() {
        let body =
            br#"{"status":"success","data":{"user_id":"AB1234","access_token":12345678901234}}"#;
        let e = decode::<SessionData>(200, Some("application/json"), body).unwrap_err();
        let shown = e.to_string();
        assert!(!shown.contains("12345678901234"), "{shown}");
        assert!(shown.contains("invalid type: integer"), "{shown}");
        let body = br#"{"status":"success","data":"tok3nVALUEabc"}"#;
        let e = decode::<UserProfile>(200, Some("application/json"), body).unwrap_err();
        let shown = e.to_string();
        assert!(!shown.contains("tok3nVALUEabc"), "{shown}");
        assert!(shown.contains("expected struct UserProfile"), "{shown}");
        let body = br#"{"status":"success","data":{"user_name":"x"}}"#;
        let e = decode::<UserProfile>(200, Some("application/json"), body).unwrap_err();
        assert!(e.to_string().contains("missing field `user_id`"), "{e}");
    }

    #[test]
    fn error_message_is_one_line() {
        let body = "{\"status\":\"error\",\"message\":\"a\\nb\",\"error_type\":\"InputException\"}";
        let err = decode::<serde_json::Value>(400, Some("application/json"), body.as_bytes())
            .unwrap_err();
        assert_eq!(err.kite_message(), Some("a b"));
    }
}
