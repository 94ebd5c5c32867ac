//! The user record Kite sends in `POST /session/token` and `GET /user/profile`
//! (docs/kite-wire.md "Session and profile"): declared once, flattened into both.
//! Unknown fields are ignored on the way in; tokens are `Secret`s.

use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::Secret;

/// Who the user is: the fields the session and the profile share.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub user_id: String,
    #[serde(default)]
    pub user_type: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub user_name: String,
    #[serde(default)]
    pub user_shortname: String,
    #[serde(default)]
    pub broker: String,
    #[serde(default)]
    pub exchanges: Vec<String>,
    #[serde(default)]
    pub products: Vec<String>,
    #[serde(default)]
    pub order_types: Vec<String>,
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// Free-form extras (`{"demat_consent": "physical"}` today); kept as sent.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub meta: serde_json::Value,
}

/// `GET /user/profile`'s `data`: the user record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserProfile {
    #[serde(flatten)]
    pub user: User,
}

/// `POST /session/token`'s `data`: the user record plus today's tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    #[serde(flatten)]
    pub user: User,
    #[serde(default)]
    pub api_key: String,
    pub access_token: Secret,
    #[serde(default)]
    pub public_token: Secret,
    #[serde(default)]
    pub enctoken: Secret,
    #[serde(default)]
    pub refresh_token: Secret,
    #[serde(default)]
    pub silo: String,
    /// `yyyy-mm-dd hh:mm:ss`, IST wall time (`crate::time::format_ist`).
    #[serde(default)]
    pub login_time: String,
}

/// Both read like Kite's flat JSON object: `session.user_id`, `profile.user_name`.
impl Deref for UserProfile {
    type Target = User;
    fn deref(&self) -> &User {
        &self.user
    }
}

impl Deref for SessionData {
    type Target = User;
    fn deref(&self) -> &User {
        &self.user
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIX: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/kite-mocks"
    );

    fn data(name: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(format!("{FIX}/{name}")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["data"].clone()
    }

    #[test]
    fn the_fixtures_round_trip_through_one_record() {
        let fixture = data("generate_session.json");
        let s: SessionData = serde_json::from_value(fixture.clone()).unwrap();
        assert_eq!((s.user_id.as_str(), s.exchanges.len()), ("XX0000", 8));
        assert_eq!(s.access_token.expose(), "XXXXXX");
        assert_eq!(serde_json::to_value(&s).unwrap(), fixture);

        let fixture = data("profile.json");
        let p: UserProfile = serde_json::from_value(fixture.clone()).unwrap();
        assert_eq!(
            (p.user_id.as_str(), p.avatar_url.as_deref()),
            ("AB1234", None)
        );
        assert_eq!(serde_json::to_value(&p).unwrap(), fixture);
    }

    #[test]
    fn only_the_user_id_is_required() {
        let p: UserProfile = serde_json::from_str(r#"{"user_id":"AB1234","x":{"y":1}}"#).unwrap();
        assert_eq!(p.user_id, "AB1234");
        assert!(serde_json::from_str::<UserProfile>(r#"{"user_name":"x"}"#).is_err());
    }
}
