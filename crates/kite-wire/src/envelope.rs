//! Kite's JSON envelope (docs/kite-wire.md "Envelope"): `{"status":"success","data":…}`
//! or `{"status":"error","message":…,"data":null,"error_type":…}`. The writers give
//! Kite's key order byte for byte; `Envelope` is what a reader gets before it looks at
//! `data`. `data_error` describes a JSON mismatch without quoting a value from it.

use serde::Deserialize;

use crate::ErrorType;

/// Any envelope, as read (every field optional: hostile bodies must not fail here).
#[derive(Debug, Default, Deserialize)]
pub struct Envelope {
    pub status: Option<String>,
    pub message: Option<String>,
    pub error_type: Option<String>,
    pub data: Option<serde_json::Value>,
}

/// The success envelope around `data`, in Kite's key order.
pub fn success_json(data: &serde_json::Value) -> String {
    format!("{{\"status\":\"success\",\"data\":{data}}}")
}

/// The error envelope, in Kite's key order, always with an `error_type` (pykiteconnect
/// crashes on an error without one).
pub fn error_json(error_type: &ErrorType, message: &str) -> String {
    let message = serde_json::Value::from(message);
    let error_type = serde_json::Value::from(error_type.as_str());
    format!(
        "{{\"status\":\"error\",\"message\":{message},\"data\":null,\"error_type\":{error_type}}}"
    )
}

/// What was wrong with JSON that did not fit our type, naming our fields and types but
/// never a value from it: serde quotes the offending value (`invalid type: string "…"`),
/// which may be a token in the wrong place, or a password in the sandbox's state file.
pub fn data_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if text.starts_with("missing field") || text.starts_with("duplicate field") {
        // The field name is ours.
        return sanitize(&text);
    }
    let (head, expected) = match text.split_once(", expected ") {
        Some((h, x)) => (h, Some(x)),
        None => (text.as_str(), None),
    };
    let kind = head
        .split(['"', '`', '\''])
        .next()
        .unwrap_or_default()
        .trim();
    let kind = kind.trim_end_matches(':');
    match expected {
        Some(x) if !x.contains(['"', '`']) => sanitize(&format!("{kind}, expected {x}")),
        _ => sanitize(kind),
    }
}

/// Keeps a message to one printable line of reasonable length.
pub fn sanitize(s: &str) -> String {
    let one: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    one.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_give_kites_bytes() {
        assert_eq!(
            error_json(&ErrorType::Input, "The user is not enabled for the app."),
            r#"{"status":"error","message":"The user is not enabled for the app.","data":null,"error_type":"InputException"}"#
        );
        assert_eq!(
            success_json(&serde_json::Value::Bool(true)),
            r#"{"status":"success","data":true}"#
        );
    }

    #[test]
    fn error_envelopes_match_the_official_fixtures() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/kite-mocks/errors/"
        );
        for (file, status) in [
            ("general_exception_route_not_found.json", 404),
            ("input_exception_user_not_enabled.json", 400),
            ("network_exception_too_many_requests.json", 429),
            ("token_exception_invalid_access_token.json", 403),
            ("token_exception_invalid_checksum.json", 403),
            ("token_exception_token_invalid_or_expired.json", 403),
        ] {
            let fixture: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(format!("{dir}{file}")).unwrap())
                    .unwrap();
            let ty = ErrorType::parse(fixture["error_type"].as_str().unwrap());
            let ours = error_json(&ty, fixture["message"].as_str().unwrap());
            let ours: serde_json::Value = serde_json::from_str(&ours).unwrap();
            assert_eq!(ours, fixture, "{file}");
            assert_eq!(ErrorType::for_status(status), ty, "{file}");
            let read: Envelope = serde_json::from_value(fixture).unwrap();
            assert_eq!(read.status.as_deref(), Some("error"));
        }
    }

    #[test]
    fn data_errors_never_quote_values() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct T {
            n: u32,
        }
        let e = serde_json::from_str::<T>(r#"{"n":"canary-token"}"#).unwrap_err();
        let said = data_error(&e);
        assert!(!said.contains("canary"), "{said}");
        assert!(said.contains("invalid type"), "{said}");
        let e = serde_json::from_str::<T>("{}").unwrap_err();
        assert!(data_error(&e).contains("missing field `n`"));
        assert_eq!(sanitize(" a\nb "), "a b");
    }
}
