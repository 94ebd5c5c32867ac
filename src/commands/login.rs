//! `kite-setup login`: the daily browser login with the stored credentials.

use std::time::Duration;

use crate::cli::LoginArgs;
use crate::error::Error;
use crate::session::{StoredSession, format_ist, humanize_until};

use super::Ctx;
use super::login_flow::{LoginParams, browser_login};

pub fn run(ctx: &Ctx<'_>, args: &LoginArgs) -> Result<u8, Error> {
    run_here(ctx, args, &SshSession::default())
}

/// The SSH session a login runs in, from `SSH_CONNECTION` and `USER`.
#[derive(Debug, Clone, Default)]
pub struct SshSession<'a> {
    /// `CLIENT_IP CLIENT_PORT SERVER_IP SERVER_PORT`.
    pub connection: Option<&'a str>,
    pub user: Option<&'a str>,
}

impl SshSession<'_> {
    /// The command that tunnels `port` from the laptop to this machine:
    /// `ssh -N -L 5123:127.0.0.1:5123 -p 2222 me@203.0.113.7`.
    pub fn tunnel_command(&self, port: u16) -> Option<String> {
        let mut fields = self.connection?.split_whitespace().skip(2);
        let (server_ip, server_port) = (fields.next()?, fields.next()?);
        let host = if server_ip.contains(':') {
            format!("[{server_ip}]")
        } else {
            server_ip.to_string()
        };
        let dest = match self.user {
            Some(u) if !u.is_empty() => format!("{u}@{host}"),
            _ => host,
        };
        let port_flag = if server_port == "22" {
            String::new()
        } else {
            format!("-p {server_port} ")
        };
        Some(format!(
            "ssh -N -L {port}:127.0.0.1:{port} {port_flag}{dest}"
        ))
    }
}

/// `login`, told whether it runs in an SSH session (then it prints the tunnel command
/// for the laptop before waiting as usual).
pub fn run_here(ctx: &Ctx<'_>, args: &LoginArgs, ssh: &SshSession<'_>) -> Result<u8, Error> {
    let profile = ctx.open_profile()?;
    ctx.mention_pending_rotation(profile.store());
    let creds = profile.require_app()?;
    if creds.api_secret.is_empty() {
        // A profile made by `import`: the session was pushed, the secret stayed behind.
        return Err(Error::login_needed(
            format!(
                "profile {} here holds a pushed session only: no api_secret to log in with",
                ctx.profile_label()
            ),
            crate::error::Fix::text("log in on the machine with the secret and ")
                .and_run("push HOST")
                .and(" again (or push once with --with-app to log in here)"),
        ));
    }
    let meta = &profile.meta;
    if !args.force
        && let Some(s) = profile.valid_session(ctx.ports.clock.now())?
    {
        // A token about to die is as good as dead: log in again for a fresh one.
        if !s.dies_soon(ctx.ports.clock.now()) {
            ctx.ui.ok(format!(
                "Already logged in {} — use --force to log in again",
                describe(ctx, &s)
            ));
            return Ok(0);
        }
        ctx.ui.say(format!(
            "The stored token dies in under 5 minutes ({}): logging in again.",
            describe(ctx, &s)
        ));
    }
    if args.paste && !ctx.interactive {
        ctx.ui
            .say("Reading the redirected URL from standard input.");
    }
    if !args.paste
        && !args.via_tunnel
        && let Some(tunnel) = url::Url::parse(&meta.redirect_url)
            .ok()
            .and_then(|u| u.port())
            .and_then(|p| ssh.tunnel_command(p))
    {
        ctx.ui.say(
            "This is an SSH session: Kite's redirect has to reach this machine. On your laptop, run (and keep open):",
        );
        ctx.ui.say(format!("  {tunnel}"));
        ctx.ui.say(format!(
            "then open the login URL below in the laptop's browser (or use `{}`).",
            ctx.command("login --paste")
        ));
    }
    // With --no-browser someone else opens the page (`remote login`, a person).
    let ctx = &if args.no_browser {
        ctx.clone()
    } else {
        ctx.with_self_play()?
    };
    let params = LoginParams {
        client_id: &meta.client_id,
        creds: &creds,
        redirect_url: &meta.redirect_url,
        timeout: Duration::from_secs(args.timeout),
        paste: args.paste,
        no_browser: args.no_browser,
    };
    let out = browser_login(ctx, &params).map_err(|f| f.into_error(ctx, &meta.redirect_url))?;
    // Stored only if the profile is still the one logged in to; the token it replaces is
    // revoked (a forced login would otherwise leave it alive, held by nobody).
    profile.replace_session(ctx, &creds, &out.session)?;
    // The session is this machine's own now, not a pushed one.
    let _ = profile.store().delete(&profile.entries.origin());
    ctx.ui
        .ok(format!("Logged in {}", describe(ctx, &out.session)));
    warn_if_dies_soon(ctx, &out.session);
    Ok(0)
}

/// After a login: warns when the new token dies within minutes (a login just before
/// 06:00 IST gets a token that dies at 06:00), and says what to do.
pub fn warn_if_dies_soon(ctx: &Ctx<'_>, s: &StoredSession) {
    if s.dies_soon(ctx.ports.clock.now()) {
        ctx.ui.warn(format!(
            "this token dies at 06:00 IST, {}: log in again after 06:00 IST with {} for today's token",
            humanize_until(s.time_left(ctx.ports.clock.now())),
            ctx.render(&crate::error::Fix::run("login"))
        ));
    }
}

/// `as NAME (AB1234) — valid until 06:00 IST (in 14 h 3 m)`.
pub fn describe(ctx: &Ctx<'_>, s: &StoredSession) -> String {
    let name = if s.user_name.is_empty() {
        String::new()
    } else {
        format!("{} ", s.user_name)
    };
    let expiry = format_ist(s.expires_at);
    let time = expiry.split(' ').nth(1).unwrap_or("06:00:00");
    format!(
        "as {name}({}) — valid until {} IST ({})",
        s.user_id,
        &time[..5.min(time.len())],
        humanize_until(s.time_left(ctx.ports.clock.now()))
    )
}

#[cfg(test)]
mod tests {
    use super::SshSession;

    #[test]
    fn the_tunnel_command_names_this_server_as_the_laptop_reaches_it() {
        let s = SshSession {
            connection: Some("198.51.100.4 50122 203.0.113.7 2222"),
            user: Some("trader"),
        };
        assert_eq!(
            s.tunnel_command(5123).unwrap(),
            "ssh -N -L 5123:127.0.0.1:5123 -p 2222 trader@203.0.113.7"
        );
        let v6 = SshSession {
            connection: Some("2001:db8::1 50122 2001:db8::2 22"),
            user: None,
        };
        assert_eq!(
            v6.tunnel_command(5123).unwrap(),
            "ssh -N -L 5123:127.0.0.1:5123 [2001:db8::2]"
        );
        assert!(SshSession::default().tunnel_command(5123).is_none());
        let short = SshSession {
            connection: Some("1.2.3.4"),
            user: None,
        };
        assert!(short.tunnel_command(5123).is_none());
    }
}
