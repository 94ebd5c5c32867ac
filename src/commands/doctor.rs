//! `kite-setup doctor`: each probe with a verdict and, when something is wrong, the fix.
//! Exits 1 when any probe fails. Network probes are bounded by the client's timeouts.
//! Besides the machine (keyring, clock, Kite, port, files) it checks the profile: its
//! credentials in the store it records, today's token (and Kite accepting it, when Kite
//! answers) and no pending rotation, so "All checks passed" means the profile is usable.

use crate::cli::{DoctorArgs, StoreChoice};
use crate::error::{Error, Fix};
use crate::leakscan::{Needle, default_plan, scan};
use crate::profile::ProfileMeta;
use crate::redirect::validate_redirect_url;
use crate::store::load_app;

use super::{Ctx, Machine};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    Warn,
    Fail,
    Info,
    /// Not checked, with the reason in the detail.
    Skip,
}

struct Probe {
    name: &'static str,
    verdict: Verdict,
    detail: String,
    fix: Option<String>,
}

fn probe(
    name: &'static str,
    verdict: Verdict,
    detail: impl Into<String>,
    fix: Option<String>,
) -> Probe {
    Probe {
        name,
        verdict,
        detail: detail.into(),
        fix,
    }
}

pub fn run(ctx: &Ctx<'_>, args: &DoctorArgs, machine: &dyn Machine) -> Result<u8, Error> {
    let mut probes = Vec::new();

    // Config file.
    let meta: Option<ProfileMeta> = match ctx.config.load() {
        Ok(c) => {
            probes.push(config_modes(ctx));
            c.get(&ctx.profile, ctx.sandbox).cloned()
        }
        Err(e) => {
            probes.push(probe(
                "config",
                Verdict::Fail,
                e.to_string(),
                Some(ctx.render(&e.fix())),
            ));
            None
        }
    };

    // Keyring round trip.
    // A profile's own store (never a fallback in its place), or the one a new one gets.
    let opened = match &meta {
        Some(m) => ctx.open_recorded(m),
        None => ctx
            .stores
            .open(ctx.store_flag.unwrap_or(StoreChoice::Auto))
            .map(|(s, _)| s),
    }
    .and_then(|s| {
        crate::store::backends::probe(&s)?;
        Ok(s)
    });
    let store = match opened {
        Ok(s) => {
            probes.push(probe(
                "keyring",
                Verdict::Pass,
                format!("write/read/delete round trip in the {} works", s.describe()),
                None,
            ));
            // Entries left by probes that were killed before they could delete them.
            match crate::store::backends::remove_stale_probes(s.as_ref()) {
                Ok(Some(n)) if n > 0 => probes.push(probe(
                    "stale probes",
                    Verdict::Info,
                    format!(
                        "removed {n} probe entr{} left by interrupted runs",
                        if n == 1 { "y" } else { "ies" }
                    ),
                    None,
                )),
                Ok(_) => {}
                Err(e) => probes.push(probe(
                    "stale probes",
                    Verdict::Warn,
                    format!("could not look for probe entries left by interrupted runs: {e}"),
                    Some(ctx.render(&e.fix())),
                )),
            }
            Some(s)
        }
        Err(e) => {
            probes.push(probe(
                "keyring",
                Verdict::Fail,
                e.to_string(),
                Some(ctx.render(&e.fix())),
            ));
            None
        }
    };

    // Clock and API host.
    let kite_answers = ctx.kite.server_time();
    let kite_up = kite_answers.is_ok();
    match kite_answers {
        Ok(server) => {
            let skew = ctx.clock.now().duration_since(server).as_secs();
            let verdict = if skew.abs() <= 30 {
                Verdict::Pass
            } else {
                Verdict::Fail
            };
            let fix = (verdict == Verdict::Fail).then(|| {
                "sync the clock (e.g. `timedatectl set-ntp true`); TOTP codes fail beyond ±30 s"
                    .to_string()
            });
            probes.push(probe(
                "clock",
                verdict,
                format!("off by {skew} s from Kite's clock"),
                fix,
            ));
            probes.push(probe(
                "kite api",
                Verdict::Pass,
                format!("{} answers", ctx.endpoints.api),
                None,
            ));
        }
        Err(e) => {
            probes.push(probe(
                "kite api",
                Verdict::Fail,
                format!("{}: {e}", ctx.endpoints.api),
                Some(ctx.render(&e.fix())),
            ));
            probes.push(probe(
                "clock",
                Verdict::Warn,
                "not checked (Kite unreachable)",
                None,
            ));
        }
    }
    for (name, url) in [
        ("kite login", &ctx.endpoints.login),
        ("kite console", &ctx.endpoints.console),
    ] {
        match ctx.kite.reachable(url) {
            Ok(()) => probes.push(probe(name, Verdict::Pass, format!("{url} answers"), None)),
            Err(e) => probes.push(probe(
                name,
                Verdict::Fail,
                format!("{url}: {e}"),
                Some(ctx.render(&e.fix())),
            )),
        }
    }

    // Redirect port.
    if let Some(m) = &meta {
        match validate_redirect_url(&m.redirect_url) {
            Ok(t) if machine.is_port_free(t.port()) => {
                probes.push(probe(
                    "redirect port",
                    Verdict::Pass,
                    format!("port {} is free for the login redirect", t.port()),
                    None,
                ));
            }
            Ok(t) => probes.push(probe(
                "redirect port",
                Verdict::Fail,
                format!("port {} is in use by another program", t.port()),
                Some(
                    ctx.render(
                        &Fix::text(
                            "stop the program using it, or register a new redirect URL with ",
                        )
                        .and_run("init")
                        .and("; ")
                        .and_run("login --paste")
                        .and(" works meanwhile"),
                    ),
                ),
            )),
            Err(e) => probes.push(probe(
                "redirect port",
                Verdict::Warn,
                e.to_string(),
                Some(ctx.render(&e.fix())),
            )),
        }
    } else {
        probes.push(probe(
            "profile",
            Verdict::Info,
            format!("no profile {} yet", ctx.profile_label()),
            Some(ctx.render(&Fix::text("run ").and_run("init"))),
        ));
    }

    // The profile itself: usable only with its credentials and today's token.
    if let (Some(store), Some(_)) = (&store, &meta) {
        profile_probes(ctx, store.as_ref(), kite_up, &mut probes);
    }

    // Plaintext copies of the current credentials here.
    if let (Some(store), Some(_)) = (&store, &meta) {
        if let Ok(Some(app)) = load_app(store.as_ref(), &ctx.entries()) {
            let mut needles = vec![Needle {
                kind: "api_secret",
                value: app.api_secret.clone(),
            }];
            if let Ok(Some(s)) = crate::store::load_session(store.as_ref(), &ctx.entries()) {
                needles.push(Needle {
                    kind: "access_token",
                    value: s.access_token.clone(),
                });
            }
            let plan = default_plan(
                machine.cwd(),
                machine.home().unwrap_or(machine.cwd()),
                machine.histfile(),
                &args.scan,
            );
            let report = scan(&plan, &needles);
            if report.findings.is_empty() {
                probes.push(probe(
                    "plaintext copies",
                    Verdict::Pass,
                    match report.history_blobs {
                        0 => format!("none found ({} files checked)", report.files_scanned),
                        n => format!(
                            "none found ({} files and {n} file versions in git history checked)",
                            report.files_scanned
                        ),
                    },
                    None,
                ));
            } else {
                let places: Vec<String> = report
                    .findings
                    .iter()
                    .map(|f| format!("{} ({})", f.place(), f.kind))
                    .collect();
                probes.push(probe(
                    "plaintext copies",
                    Verdict::Fail,
                    format!("found at {}", places.join(", ")),
                    Some(ctx.render(&if report.in_history() {
                        Fix::text("run ").and_run("regenerate").and(
                            " (a copy in git history outlives any file fix; a pushed one is public), then delete the copies",
                        )
                    } else {
                        Fix::text("delete those copies; if one was ever shared or committed, run ")
                            .and_run("regenerate")
                    })),
                ));
            }
        }
        if matches!(store.get(&ctx.entries().pending()), Ok(Some(_))) {
            probes.push(probe(
                "rotation",
                Verdict::Fail,
                "a secret rotation was interrupted",
                Some(
                    ctx.render(
                        &Fix::text("run ")
                            .and_run("regenerate --resume")
                            .and(" (or --abort)"),
                    ),
                ),
            ));
        }
    }

    // Orders from this machine (static IP rule, per address family) and the plan.
    for l in super::orders_probe::doctor_lines(ctx, store.as_deref(), meta.as_ref()) {
        let verdict = match l.verdict {
            "pass" => Verdict::Pass,
            "fail" => Verdict::Fail,
            _ => Verdict::Skip,
        };
        probes.push(probe(l.name, verdict, l.detail, l.fix));
    }

    report(ctx, &probes, meta.is_some());
    Ok(u8::from(probes.iter().any(|p| p.verdict == Verdict::Fail)))
}

/// The profile's credentials in the store it records, and today's token: present, not
/// expired, and accepted by Kite when Kite answers (one `GET /user/profile`).
fn profile_probes(
    ctx: &Ctx<'_>,
    store: &dyn crate::store::Store,
    kite_up: bool,
    probes: &mut Vec<Probe>,
) {
    let entries = ctx.entries();
    let app = match load_app(store, &entries) {
        Ok(Some(app)) => {
            probes.push(probe(
                "credentials",
                Verdict::Pass,
                format!(
                    "api_key {} and api_secret are in the {}",
                    app.api_key.masked(),
                    store.describe()
                ),
                None,
            ));
            app
        }
        Ok(None) => {
            let e = Error::NoAppCredentials {
                label: ctx.profile_label(),
            };
            probes.push(probe(
                "credentials",
                Verdict::Fail,
                format!("{e} in the {} this profile records", store.describe()),
                e.fix().map(|f| ctx.render(&f)),
            ));
            return;
        }
        Err(e) => {
            probes.push(probe(
                "credentials",
                Verdict::Fail,
                e.to_string(),
                Some(ctx.render(&e.fix())),
            ));
            return;
        }
    };
    let now = ctx.clock.now();
    let session = match crate::store::load_session(store, &entries) {
        Ok(Some(s)) if s.is_valid_at(now) => s,
        Ok(found) => {
            let e = Error::NoValidToken {
                expired_at: found.map(|s| crate::session::format_ist(s.expires_at)),
            };
            probes.push(probe(
                "session",
                Verdict::Fail,
                e.to_string(),
                e.fix().map(|f| ctx.render(&f)),
            ));
            return;
        }
        Err(e) => {
            probes.push(probe(
                "session",
                Verdict::Fail,
                e.to_string(),
                Some(ctx.render(&e.fix())),
            ));
            return;
        }
    };
    let left = crate::session::humanize_until(session.time_left(now));
    if !kite_up {
        probes.push(probe(
            "session",
            Verdict::Warn,
            format!("today's token is stored ({left}); not checked with Kite (unreachable)"),
            None,
        ));
        return;
    }
    match ctx.kite.profile(&app.api_key, &session.access_token) {
        Ok(_) if session.dies_soon(now) => probes.push(probe(
            "session",
            Verdict::Warn,
            format!("Kite accepts today's token, but it dies at 06:00 IST, {left}"),
            Some(ctx.render(&Fix::text("after 06:00 IST run ").and_run("login"))),
        )),
        Ok(p) => probes.push(probe(
            "session",
            Verdict::Pass,
            format!("Kite accepts today's token for {} ({left})", p.user_id),
            None,
        )),
        Err(e) if e.is_token_error() => probes.push(probe(
            "session",
            Verdict::Fail,
            format!("Kite rejects the stored token: {e}"),
            Some(ctx.render(&Fix::text("run ").and_run("login --force"))),
        )),
        Err(e) => probes.push(probe(
            "session",
            Verdict::Warn,
            format!("today's token is stored ({left}); Kite could not check it: {e}"),
            Some(ctx.render(&e.fix())),
        )),
    }
}

fn config_modes(ctx: &Ctx<'_>) -> Probe {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let path = ctx.config.path();
        let Some((fm, dm)) = ctx.config.modes() else {
            return probe(
                "config",
                Verdict::Info,
                format!("{} does not exist yet", path.display()),
                None,
            );
        };
        // Another owner, or a directory others can write to: not private whatever the
        // permission bits of the file say.
        let me = rustix::process::geteuid().as_raw();
        let dir_problem = std::fs::metadata(&ctx.config.dir)
            .ok()
            .and_then(|m| crate::profile::dir_problem(m.mode(), m.uid(), me));
        let file_owner = std::fs::metadata(&path)
            .ok()
            .map(|m| m.uid())
            .filter(|&uid| uid != me);
        if let Some(why) = dir_problem {
            return probe(
                "config",
                Verdict::Fail,
                format!(
                    "the directory {} is not private: {why}",
                    ctx.config.dir.display()
                ),
                Some(format!(
                    "move the profiles to a directory only you own and can write (set KITE_SETUP_CONFIG_DIR), or fix {} (`chown`, `chmod go-w`)",
                    ctx.config.dir.display()
                )),
            );
        }
        if let Some(uid) = file_owner {
            return probe(
                "config",
                Verdict::Fail,
                format!(
                    "{} is owned by user id {uid}, not by you ({me})",
                    path.display()
                ),
                Some(
                    ctx.render(
                        &Fix::text("check who wrote it, then `chown` it or run ")
                            .and_run("init")
                            .and(" again"),
                    ),
                ),
            );
        }
        // No permission bits for group or others (the low six bits).
        if (fm | dm).trailing_zeros() >= 6 {
            probe(
                "config",
                Verdict::Pass,
                format!(
                    "{} is private (file {fm:o}, directory {dm:o}, owned by you)",
                    path.display()
                ),
                None,
            )
        } else {
            probe(
                "config",
                Verdict::Warn,
                format!(
                    "{} is readable by others (file {fm:o}, directory {dm:o})",
                    path.display()
                ),
                Some(format!(
                    "chmod 700 {} && chmod 600 {}",
                    ctx.config.dir.display(),
                    path.display()
                )),
            )
        }
    }
    #[cfg(not(unix))]
    {
        probe(
            "config",
            Verdict::Pass,
            format!("{}", ctx.config.path().display()),
            None,
        )
    }
}

/// Each probe, then the verdict: "All checks passed" only for a profile that is set up
/// (and, the probes having passed, usable now).
fn report(ctx: &Ctx<'_>, probes: &[Probe], profile_set_up: bool) {
    if ctx.json {
        let list: Vec<_> = probes
            .iter()
            .map(|p| serde_json::json!({"probe": p.name, "verdict": format!("{:?}", p.verdict).to_lowercase(), "detail": p.detail, "fix": p.fix}))
            .collect();
        ctx.ui
            .data(&format!("{}\n", serde_json::Value::Array(list)));
        return;
    }
    for p in probes {
        let mark = match p.verdict {
            Verdict::Pass => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
            Verdict::Info => "info",
            Verdict::Skip => "skip",
        };
        ctx.ui.say(format!("[{mark}] {:<16} {}", p.name, p.detail));
        if let Some(fix) = &p.fix {
            ctx.ui.say(format!("       {:<16} fix: {fix}", ""));
        }
    }
    let failed = probes.iter().filter(|p| p.verdict == Verdict::Fail).count();
    if failed == 0 && profile_set_up {
        ctx.ui.ok("All checks passed");
    } else if failed == 0 {
        ctx.ui.ok(format!(
            "The machine checks passed; profile {} is not set up yet: run {}",
            ctx.profile_label(),
            ctx.render(&Fix::run("init"))
        ));
    } else {
        ctx.ui.warn(format!("{failed} check(s) failed"));
    }
}
