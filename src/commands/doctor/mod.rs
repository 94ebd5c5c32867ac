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

mod profile_probes;
use profile_probes::{config_modes, profile_probes};

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
            .ports
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
            probes.push(probe(
                "lifetime",
                Verdict::Info,
                crate::store::lifetime::describe(
                    meta.as_ref()
                        .map_or(ctx.store_flag.unwrap_or(StoreChoice::Auto), |m| {
                            ctx.store_flag.unwrap_or(m.store)
                        }),
                ),
                None,
            ));
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
    let kite_answers = ctx.ports.kite.server_time();
    let kite_up = kite_answers.is_ok();
    match kite_answers {
        Ok(server) => {
            let skew = ctx.ports.clock.now().duration_since(server).as_secs();
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
        match ctx.ports.kite.reachable(url) {
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
            let plan = ctx.skip_own_files(plan, machine);
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
