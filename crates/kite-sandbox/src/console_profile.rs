//! The console's profile page (docs/sandbox.md "Console"): the developer account's IP
//! Whitelist, with the console's rules: one or two IPv4 or IPv6 addresses, the
//! immediate-family declaration, and one change per calendar week (Monday to Sunday, IST,
//! sandbox clock). The control API sets the list without the weekly rule.

use std::fmt::Write as _;

use jiff::civil::Time;
use jiff::{SignedDuration, Timestamp};
use kite_wire::time::{format_ist, ist};

use super::Shared;
use super::html::{esc, page};
use super::http::{Reply, Req};
use super::orders::parse_whitelist;

/// The text the console asks the user to confirm when saving.
pub const DECLARATION: &str =
    "The above static IPs will be used exclusively by me and/or my immediate family.";

/// When the list may change again after a change at `changed`: the next Monday 00:00 IST.
pub fn next_change_allowed(changed: Timestamp) -> Timestamp {
    let local = changed.to_zoned_datetime(ist());
    let days_left = 7 - i64::from(local.date().weekday().to_monday_zero_offset());
    let monday = local
        .date()
        .checked_add(SignedDuration::from_hours(24 * days_left))
        .unwrap_or(local.date());
    monday
        .to_datetime(Time::midnight())
        .to_zoned_datetime(ist())
        .map_or(changed, |z| z.timestamp())
}

/// `GET /console/profile`.
pub fn show(shared: &Shared, user: &str, req: &Req) -> Reply {
    let note = if req.query.contains_key("saved") {
        "<p class=\"note\" id=\"saved\">Saved.</p>"
    } else {
        ""
    };
    render(shared, user, 200, note, None)
}

/// `POST /console/profile`: the form's rules, then the save.
pub fn save(shared: &Shared, user: &str, req: &Req) -> Reply {
    let f = req.form();
    let text = f.get("ips").cloned().unwrap_or_default();
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let mut errors = Vec::new();
    let ips = match parse_whitelist(&lines) {
        Ok(ips) if ips.is_empty() => {
            errors.push("Enter at least one IP (the primary IP).".to_string());
            Vec::new()
        }
        Ok(ips) => ips,
        Err(e) => {
            errors.push(format!("IP Whitelist: {e}."));
            Vec::new()
        }
    };
    if f.get("declaration").map(String::as_str) != Some("yes") {
        errors.push(format!("Confirm: \u{201c}{DECLARATION}\u{201d}"));
    }
    let (now, changed) =
        shared.read(|s, now| (now, s.account(user).and_then(|a| a.ips_changed_at)));
    if let Some(next) = changed.map(next_change_allowed).filter(|n| now < *n) {
        errors.push(format!(
            "The IP Whitelist can be changed once per calendar week: the next change is allowed from {} IST.",
            format_ist(next)
        ));
    }
    if !errors.is_empty() {
        return render(shared, user, 400, "", Some((&errors, &text)));
    }
    shared.mutate(|s, now| {
        if let Some(a) = s.accounts.iter_mut().find(|a| a.client_id == user) {
            a.ips = ips;
            a.ips_changed_at = Some(now);
        }
    });
    Reply::redirect(303, "/console/profile?saved=1")
}

fn render(
    shared: &Shared,
    user: &str,
    status: u16,
    note: &str,
    failed: Option<(&[String], &str)>,
) -> Reply {
    let (ips, changed, now) = shared.read(|s, now| {
        let a = s.account(user);
        (
            a.map(|a| a.ips.clone()).unwrap_or_default(),
            a.and_then(|a| a.ips_changed_at),
            now,
        )
    });
    let current = if ips.is_empty() {
        "<p id=\"current\">No IPs configured: orders from every address are refused.</p>"
            .to_string()
    } else {
        let list: Vec<String> = ips.iter().map(|ip| format!("<code>{ip}</code>")).collect();
        format!("<p id=\"current\">Whitelisted: {}</p>", list.join(", "))
    };
    let rule = match changed.map(next_change_allowed) {
        Some(next) if now < next => format!(
            "<p class=\"note\" id=\"next_change\">Changed {}; the next change is allowed from {} IST.</p>",
            format_ist(changed.unwrap_or(now)),
            format_ist(next)
        ),
        _ => "<p class=\"note\" id=\"next_change\">A change is allowed now (one per calendar week).</p>".to_string(),
    };
    let (errors, typed) = match failed {
        Some((errors, typed)) => (
            errors.iter().fold(String::new(), |mut out, e| {
                let _ = write!(out, "<p class=\"error\">{}</p>", esc(e));
                out
            }),
            typed.to_string(),
        ),
        None => (
            String::new(),
            ips.iter().fold(String::new(), |mut out, ip| {
                let _ = writeln!(out, "{ip}");
                out
            }),
        ),
    };
    let body = format!(
        "<p>Client ID <code>{user}</code>. <a href=\"/console/apps\">Your apps</a></p>\
         <h2>IP Whitelist</h2><p>Orders from every app of this account are accepted only \
         from these addresses: one or two IPv4 or IPv6 addresses, one per line, the first \
         is the primary.</p>{current}{rule}{note}{errors}\
         <form method=\"post\" action=\"/console/profile\">\
         <label for=\"ips\">Static IPs</label><textarea id=\"ips\" name=\"ips\" rows=\"2\">{typed}</textarea>\
         <label><input type=\"checkbox\" id=\"declaration\" name=\"declaration\" value=\"yes\" style=\"width:auto\"> {decl}</label>\
         <button type=\"submit\" id=\"update\">Update</button></form>",
        user = esc(user),
        typed = esc(&typed),
        decl = esc(DECLARATION),
    );
    Reply::html(status, page("Profile", &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kite_wire::time::parse_login_time;

    #[test]
    fn the_next_change_is_the_next_monday_ist() {
        // 2026-12-01 is a Tuesday.
        let at = |s: &str| parse_login_time(s).unwrap();
        let next = "2026-12-07 00:00:00";
        assert_eq!(
            format_ist(next_change_allowed(at("2026-12-01 10:00:00"))),
            next
        );
        assert_eq!(
            format_ist(next_change_allowed(at("2026-12-06 23:59:59"))),
            next
        );
        assert_eq!(
            format_ist(next_change_allowed(at("2026-11-30 00:00:00"))),
            next
        );
        assert_eq!(
            format_ist(next_change_allowed(at("2026-12-07 00:00:00"))),
            "2026-12-14 00:00:00"
        );
    }
}
