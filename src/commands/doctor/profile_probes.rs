//! Doctor's probes of the profile (credentials, session, rotation) and of the config file's modes and owner.

use super::{Ctx, Error, Fix, Probe, Verdict, load_app, probe};

pub(super) fn profile_probes(
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
    let now = ctx.ports.clock.now();
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
    match ctx.ports.kite.profile(&app.api_key, &session.access_token) {
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

pub(super) fn config_modes(ctx: &Ctx<'_>) -> Probe {
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
