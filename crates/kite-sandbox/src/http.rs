//! The small HTTP vocabulary the handlers speak: a read request (`Req`) and an answer
//! (`Reply`), Kite's JSON envelopes, form and cookie parsing. No tiny_http types here,
//! so handlers stay plain functions.

use std::collections::HashMap;

use kite_wire::ErrorType;

/// A request, read in full (bodies are small; larger ones are refused).
#[derive(Debug, Default)]
pub struct Req {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    pub query: HashMap<String, String>,
    /// The raw query string (for repeated names such as `/quote`'s `i`).
    pub query_string: String,
    pub authorization: Option<String>,
    pub cookie: Option<String>,
    /// The TCP peer's address (the static IP rule looks at it).
    pub peer: Option<std::net::IpAddr>,
    pub body: Vec<u8>,
}

impl Req {
    /// The body as form fields (`application/x-www-form-urlencoded`); first value wins.
    pub fn form(&self) -> HashMap<String, String> {
        parse_pairs(&self.body)
    }

    /// The body as a typed JSON request (an empty body reads as `{}`). The error names
    /// what did not fit, never a value from the body.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &self.body
        };
        serde_json::from_slice(body).map_err(|e| {
            if e.is_data() {
                format!("bad request: {}", kite_wire::envelope::data_error(&e))
            } else {
                "the body is not valid JSON".into()
            }
        })
    }

    /// A cookie's value by name.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookie.as_deref()?.split(';').find_map(|part| {
            let (k, v) = part.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    }
}

/// Parses `a=1&b=2` (URL-encoded); the first value of a repeated name wins.
pub fn parse_pairs(bytes: &[u8]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(bytes) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

/// An answer before it goes on the wire.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

pub const JSON: &str = "application/json";
pub const HTML: &str = "text/html; charset=utf-8";

impl Reply {
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: Some(JSON),
            headers: Vec::new(),
            body: value.to_string().into_bytes(),
        }
    }

    /// A JSON answer from text already serialized.
    fn json_text(status: u16, body: String) -> Self {
        Self {
            status,
            content_type: Some(JSON),
            headers: Vec::new(),
            body: body.into_bytes(),
        }
    }

    /// Kite's success envelope, keys in Kite's order.
    pub fn success(data: &serde_json::Value) -> Self {
        Self::json_text(200, kite_wire::envelope::success_json(data))
    }

    /// Kite's error envelope, keys in Kite's order, always with an `error_type`.
    pub fn error(status: u16, error_type: &ErrorType, message: &str) -> Self {
        Self::json_text(status, kite_wire::envelope::error_json(error_type, message))
    }

    pub fn token_error(message: &str) -> Self {
        Self::error(403, &ErrorType::Token, message)
    }

    pub fn input_error(message: &str) -> Self {
        Self::error(400, &ErrorType::Input, message)
    }

    pub fn not_found() -> Self {
        Self::error(404, &ErrorType::General, "Route not found")
    }

    /// An HTML page that must not be cached (it may carry a secret or a form).
    pub fn html(status: u16, body: String) -> Self {
        Self {
            status,
            content_type: Some(HTML),
            headers: vec![("Cache-Control", "no-store".into())],
            body: body.into_bytes(),
        }
    }

    /// A redirect (302 for the login flow, 303 after a console form).
    pub fn redirect(status: u16, location: &str) -> Self {
        Self {
            status,
            content_type: Some(HTML),
            headers: vec![
                ("Location", location.to_string()),
                ("Cache-Control", "no-store".into()),
                ("Referrer-Policy", "no-referrer".into()),
            ],
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_envelope_is_kites() {
        let r = Reply::token_error("Invalid `checksum`.");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(r.status, 403);
        assert_eq!(v["error_type"], "TokenException");
        assert_eq!(v["message"], "Invalid `checksum`.");
        assert!(v["data"].is_null());
        assert_eq!(v["status"], "error");
        // Byte for byte as Kite writes it.
        assert_eq!(
            String::from_utf8(
                Reply::error(
                    400,
                    &ErrorType::Input,
                    "The user is not enabled for the app."
                )
                .body
            )
            .unwrap(),
            r#"{"status":"error","message":"The user is not enabled for the app.","data":null,"error_type":"InputException"}"#
        );
        let ok = Reply::success(&serde_json::Value::Bool(true));
        assert_eq!(ok.body, br#"{"status":"success","data":true}"#);
    }

    #[test]
    fn cookies_and_forms_parse() {
        let req = Req {
            cookie: Some("a=1; kite_console=abc; b=2".into()),
            body: b"x=1&y=a%20b&x=2".to_vec(),
            ..Req::default()
        };
        assert_eq!(req.cookie("kite_console").as_deref(), Some("abc"));
        assert_eq!(req.cookie("nope"), None);
        let f = req.form();
        assert_eq!(f["x"], "1");
        assert_eq!(f["y"], "a b");
    }
}
