//! The access token's life (kite-api.md §6): it dies at the first 06:00 Asia/Kolkata
//! after the login. Pure: time comes in as arguments.

use jiff::civil::{DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Kite's time zone. Looked up in the bundled tz database rather than written as +05:30,
/// so the rule stays right if the zone ever changes.
pub fn ist() -> TimeZone {
    TimeZone::get("Asia/Kolkata").expect("Asia/Kolkata is in the bundled tz database")
}

/// The first 06:00 IST strictly after `login`: a login at 02:00 IST dies at 06:00 the
/// same morning, one at 06:00:00 or later at 06:00 the next day.
pub fn expiry_after(login: Timestamp) -> Timestamp {
    let tz = ist();
    let local = login.to_zoned_datetime(tz.clone());
    let six = Time::constant(6, 0, 0, 0);
    let today_six = local.date().to_datetime(six);
    let candidate = if local.datetime() < today_six {
        today_six
    } else {
        local
            .date()
            .tomorrow()
            .expect("date in range")
            .to_datetime(six)
    };
    candidate
        .to_zoned_datetime(tz)
        .expect("06:00 IST exists every day")
        .timestamp()
}

/// Parses Kite's `login_time` (`yyyy-mm-dd hh:mm:ss`, IST wall time).
pub fn parse_login_time(text: &str) -> Option<Timestamp> {
    let dt: DateTime = text.trim().parse().ok()?;
    dt.to_zoned_datetime(ist()).ok().map(|z| z.timestamp())
}

/// Formats a time as Kite does in `login_time`: IST wall time, `yyyy-mm-dd hh:mm:ss`.
pub fn format_ist(t: Timestamp) -> String {
    t.to_zoned_datetime(ist())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

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
    fn login_before_six_dies_same_morning() {
        assert_eq!(
            format_ist(expiry_after(at_ist("2026-11-26 02:00:00"))),
            "2026-11-26 06:00:00"
        );
        assert_eq!(
            format_ist(expiry_after(at_ist("2026-11-26 05:59:59"))),
            "2026-11-26 06:00:00"
        );
    }

    #[test]
    fn login_at_or_after_six_dies_next_morning() {
        assert_eq!(
            format_ist(expiry_after(at_ist("2026-11-26 06:00:00"))),
            "2026-11-27 06:00:00"
        );
        assert_eq!(
            format_ist(expiry_after(at_ist("2026-11-26 06:00:01"))),
            "2026-11-27 06:00:00"
        );
        assert_eq!(
            format_ist(expiry_after(at_ist("2026-11-26 23:59:59"))),
            "2026-11-27 06:00:00"
        );
    }

    #[test]
    fn around_midnight_and_month_and_year_ends() {
        assert_eq!(
            format_ist(expiry_after(at_ist("2026-11-27 00:00:00"))),
            "2026-11-27 06:00:00"
        );
        assert_eq!(
            format_ist(expiry_after(at_ist("2026-11-30 09:15:00"))),
            "2026-12-01 06:00:00"
        );
        assert_eq!(
            format_ist(expiry_after(at_ist("2026-12-31 18:00:00"))),
            "2027-01-01 06:00:00"
        );
        assert_eq!(
            format_ist(expiry_after(at_ist("2028-02-28 10:00:00"))),
            "2028-02-29 06:00:00"
        );
    }

    #[test]
    fn six_ist_is_half_past_midnight_utc() {
        let e = expiry_after(at_ist("2026-11-26 10:00:00"));
        assert_eq!(e.to_string(), "2026-11-27T00:30:00Z");
    }

    #[test]
    fn login_time_parsing_rejects_garbage() {
        assert!(parse_login_time("2026-13-01 00:00:00").is_none());
        assert!(parse_login_time("yesterday").is_none());
        assert!(parse_login_time("2026-11-26 10:00:00").is_some());
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
