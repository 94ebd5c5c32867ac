//! `kite-setup doctor`: each probe with a verdict and, when something is wrong, the fix.
//! Exits 1 when any probe fails. Network probes are bounded by the client's timeouts.

use crate::cli::StoreChoice;
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

pub fn run(ctx: &Ctx<'_>, machine: &dyn Machine) -> Result<u8, Error> {
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
    let choice = ctx
        .store_flag
        .or(meta.as_ref().map(|m| m.store))
        .unwrap_or(StoreChoice::Auto);
    let opened = ctx.stores.open(choice).and_then(|(s, _)| {
        crate::store::backends::probe(s.as_ref())?;
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
            probes.push(probe(
                "lifetime",
                Verdict::Info,
                crate::store::lifetime::describe(choice),
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
    match ctx.kite.server_time() {
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
                &[],
            );
            let report = scan(&plan, &needles);
            if report.findings.is_empty() {
                probes.push(probe(
                    "plaintext copies",
                    Verdict::Pass,
                    format!("none found ({} files checked)", report.files_scanned),
                    None,
                ));
            } else {
                let places: Vec<String> = report
                    .findings
                    .iter()
                    .map(|f| format!("{}:{} ({})", f.path.display(), f.line, f.kind))
                    .collect();
                probes.push(probe(
                    "plaintext copies",
                    Verdict::Fail,
                    format!("found at {}", places.join(", ")),
                    Some(
                        ctx.render(
                            &Fix::text(
                                "delete those copies; if one was ever shared or committed, run ",
                            )
                            .and_run("regenerate"),
                        ),
                    ),
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

    if !ctx.sandbox {
        probes.push(probe("static IP", Verdict::Info, "since 1 April 2026 Kite needs a registered static IP to place orders; login and profile calls are not affected", None));
    }

    report(ctx, &probes);
    Ok(u8::from(probes.iter().any(|p| p.verdict == Verdict::Fail)))
}

fn config_modes(ctx: &Ctx<'_>) -> Probe {
    #[cfg(unix)]
    {
        let path = ctx.config.path();
        let Some((fm, dm)) = ctx.config.modes() else {
            return probe(
                "config",
                Verdict::Info,
                format!("{} does not exist yet", path.display()),
                None,
            );
        };
        // No permission bits for group or others (the low six bits).
        if (fm | dm).trailing_zeros() >= 6 {
            probe(
                "config",
                Verdict::Pass,
                format!(
                    "{} is private (file {fm:o}, directory {dm:o})",
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

fn report(ctx: &Ctx<'_>, probes: &[Probe]) {
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
        };
        ctx.ui.say(format!("[{mark}] {:<16} {}", p.name, p.detail));
        if let Some(fix) = &p.fix {
            ctx.ui.say(format!("       {:<16} fix: {fix}", ""));
        }
    }
    let failed = probes.iter().filter(|p| p.verdict == Verdict::Fail).count();
    if failed == 0 {
        ctx.ui.ok("All checks passed");
    } else {
        ctx.ui.warn(format!("{failed} check(s) failed"));
    }
}
