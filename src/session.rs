//! The access token's life: it dies at the first 06:00 Asia/Kolkata after the login
//! (the rule and the IST formats live in kite-wire, docs/kite-wire.md "Lifetimes"). Pure:
//! time comes in as arguments.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;
pub use kite_wire::time::{expiry_after, format_ist, ist, parse_login_time};

/// A human "in 14 h 3 m" / "3 m" for the time left; "expired" when none is.
pub fn humanize_left(left: SignedDuration) -> String {
    let secs = left.as_secs();
    if secs <= 0 {
        return "expired".to_string();
    }
    let h = secs / 3600;
    let m = (secs % 3600) / 60;
    if h > 0 {
        format!("{h} h {m} m")
    } else if m > 0 {
        format!("{m} m")
    } else {
        format!("{secs} s")
    }
}

/// Today's session as kept in the keyring's session entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSession {
    pub access_token: Secret,
    /// The user the token belongs to (checked against the profile's client ID).
    pub user_id: String,
    #[serde(default)]
    pub user_name: String,
    pub login_time: Timestamp,
    pub expires_at: Timestamp,
}

impl StoredSession {
    pub fn is_valid_at(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }

    pub fn time_left(&self, now: Timestamp) -> SignedDuration {
        self.expires_at.duration_since(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanized_time_left() {
        assert_eq!(
            humanize_left(SignedDuration::from_secs(14 * 3600 + 180)),
            "14 h 3 m"
        );
        assert_eq!(humanize_left(SignedDuration::from_secs(59)), "59 s");
        assert_eq!(humanize_left(SignedDuration::from_secs(0)), "expired");
    }
}
