//! The access token's life: it dies at the first 06:00 Asia/Kolkata after the login
//! (the rule and the IST formats live in kite-wire, docs/kite-wire.md "Lifetimes"). Pure:
//! time comes in as arguments.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;
pub use kite_wire::time::{expiry_after, format_ist, ist, parse_login_time};

/// A token with less time than this left is treated as dead by `login` (it logs in again
/// rather than keep it), and a login that leaves less than this before 06:00 IST warns:
/// a script started with it would fail within minutes.
pub const DIES_SOON: SignedDuration = SignedDuration::from_secs(5 * 60);

/// "in 14 h 3 m" for the time left, or "expired" when none is (never "in expired").
pub fn humanize_until(left: SignedDuration) -> String {
    if left.as_secs() <= 0 {
        "expired".to_string()
    } else {
        format!("in {}", humanize_left(left))
    }
}

/// A human "14 h 3 m" / "3 m" for the time left; "expired" when none is.
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

    /// Less than [`DIES_SOON`] left (or none): not worth keeping or handing to a script.
    pub fn dies_soon(&self, now: Timestamp) -> bool {
        self.time_left(now) < DIES_SOON
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_ist(s: &str) -> Timestamp {
        parse_login_time(s).unwrap()
    }

    #[test]
    fn humanized_time_left() {
        assert_eq!(
            humanize_left(SignedDuration::from_secs(14 * 3600 + 180)),
            "14 h 3 m"
        );
        assert_eq!(humanize_left(SignedDuration::from_secs(59)), "59 s");
        assert_eq!(humanize_left(SignedDuration::from_secs(0)), "expired");
        assert_eq!(humanize_until(SignedDuration::from_secs(59)), "in 59 s");
        assert_eq!(humanize_until(SignedDuration::from_secs(0)), "expired");
        assert_eq!(humanize_until(SignedDuration::from_secs(-3)), "expired");
    }

    #[test]
    fn a_token_with_under_five_minutes_left_dies_soon() {
        let login = at_ist("2026-11-26 05:59:59");
        let s = StoredSession {
            access_token: Secret::from("t"),
            user_id: "AB1234".into(),
            user_name: String::new(),
            login_time: login,
            expires_at: expiry_after(login),
        };
        assert!(s.is_valid_at(login) && s.dies_soon(login));
        let early = at_ist("2026-11-26 05:54:59");
        assert!(!s.dies_soon(early));
        assert!(s.dies_soon(at_ist("2026-11-26 05:55:01")));
    }
}
