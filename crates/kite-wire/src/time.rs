//! Kite's time (docs/kite-wire.md "Lifetimes"): an access token dies at the first 06:00
//! Asia/Kolkata after the login, and `login_time` is IST wall time. Pure: time comes in
//! as arguments, or from a `Clock`.

use jiff::Timestamp;
use jiff::civil::{DateTime, Time};
use jiff::tz::TimeZone;

/// Where "now" comes from. The tool and the sandbox each have one wall-clock adapter;
/// tests give both the same fixed clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

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
}
