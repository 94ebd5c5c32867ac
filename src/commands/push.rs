//! `kite-setup push HOST…`: hands today's session to servers. For each host it runs
//! `ssh HOST kite-setup [--profile NAME] [--sandbox-url URL] import` and writes the
//! session as one JSON line to its standard input (never to an argument: the remote
//! command line is in both machines' process lists). The server checks it with Kite
//! before storing and answers one JSON line ([`Reply`]). One result line per host; a
//! host that fails does not stop the others; exit 0 only when every host took it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::cli::{Plan, PushArgs};
use crate::error::{Error, Fix, exit};
use crate::secret::Secret;
use crate::session::format_ist;
use crate::ssh::{SSH_FAILED, Ssh, last_line};

use super::Ctx;

/// The version of the wire format below; `import` refuses any other.
pub const WIRE_VERSION: u32 = 1;

/// What travels on ssh's standard input: today's session and what the server needs to
/// file it under the same profile. The api_secret only with `--with-app`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Pushed {
    pub kite_setup_push: u32,
    pub client_id: String,
    pub plan: Plan,
    pub redirect_url: String,
    pub api_key: Secret,
    pub access_token: Secret,
    pub user_id: String,
    #[serde(default)]
    pub user_name: String,
    pub login_time: Timestamp,
    pub expires_at: Timestamp,
    /// The sending machine's host name, for the server's `status`.
    #[serde(default)]
    pub from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_secret: Option<Secret>,
}

/// `import`'s one-line answer on stdout.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reply {
    pub ok: bool,
    #[serde(default)]
    pub profile: String,
    #[serde(default)]
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ist: Option<String>,
    /// Where the server keeps it ("kernel keyring", …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// One host's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostResult {
    Stored(Reply),
    Failed { error: String, hint: String },
}

/// `push`: the hosts in order, one line each.
pub fn run(ctx: &Ctx<'_>, args: &PushArgs, ssh: &dyn Ssh, from: &str) -> Result<u8, Error> {
    push_to(ctx, &args.hosts, args.with_app, ssh, from)
}

/// The push itself, also run by `login --push` after a login.
pub fn push_to(
    ctx: &Ctx<'_>,
    hosts: &[String],
    with_app: bool,
    ssh: &dyn Ssh,
    from: &str,
) -> Result<u8, Error> {
    let profile = ctx.open_profile()?;
    let app = profile.require_app()?;
    let session = profile.require_session(ctx.ports.clock.now())?;
    if with_app && app.api_secret.is_empty() {
        return Err(Error::failed(
            "no api_secret is stored here to send with --with-app",
            Fix::text("push without --with-app, or set the secret up with ").and_run("init"),
        ));
    }
    let pushed = Pushed {
        kite_setup_push: WIRE_VERSION,
        client_id: profile.meta.client_id.clone(),
        plan: profile.meta.plan,
        redirect_url: profile.meta.redirect_url.clone(),
        api_key: app.api_key.clone(),
        access_token: session.access_token.clone(),
        user_id: session.user_id.clone(),
        user_name: session.user_name.clone(),
        login_time: session.login_time,
        expires_at: session.expires_at,
        from: from.to_string(),
        api_secret: with_app.then(|| app.api_secret.clone()),
    };
    let line = Secret::new(serde_json::to_string(&pushed).expect("plain data serializes"));
    drop(pushed);
    let argv = remote_argv(ctx);
    let mut all_ok = true;
    for host in hosts {
        let result = push_one(ctx, ssh, host, &argv, &line);
        all_ok &= matches!(result, HostResult::Stored(_));
        report(ctx, host, &result);
    }
    Ok(if all_ok { exit::OK } else { exit::ERROR })
}

/// `kite-setup [--profile NAME] [--sandbox-url URL | --sandbox] --no-input import`: only
/// non-secret flags; the same profile name (and sandbox-ness) on the server.
pub fn remote_argv(ctx: &Ctx<'_>) -> Vec<String> {
    remote_argv_for(ctx, &["import".to_string()])
}

/// `kite-setup FLAGS --no-input TAIL…` for this run's profile on a server.
pub fn remote_argv_for(ctx: &Ctx<'_>, tail: &[String]) -> Vec<String> {
    let mut argv = vec!["kite-setup".to_string()];
    if ctx.profile != "default" {
        argv.extend(["--profile".to_string(), ctx.profile.clone()]);
    }
    match (&ctx.sandbox_url, ctx.sandbox) {
        (Some(url), _) => argv.extend(["--sandbox-url".to_string(), url.clone()]),
        (None, true) => argv.push("--sandbox".to_string()),
        (None, false) => {}
    }
    // No --store: the server picks its own (the laptop's choice says nothing about it).
    argv.push("--no-input".to_string());
    argv.extend(tail.iter().cloned());
    argv
}

fn push_one(
    ctx: &Ctx<'_>,
    ssh: &dyn Ssh,
    host: &str,
    argv: &[String],
    line: &Secret,
) -> HostResult {
    let out = match ssh.run(host, argv, line) {
        Ok(out) => out,
        Err(e) => {
            return HostResult::Failed {
                error: e.to_string(),
                hint: "install OpenSSH's client, or point KITE_SETUP_SSH_COMMAND at one".into(),
            };
        }
    };
    let reply = out
        .stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Reply>(l.trim()).ok());
    match (out.code, reply) {
        (Some(0), Some(r)) if r.ok => HostResult::Stored(r),
        (_, Some(r)) => HostResult::Failed {
            error: r
                .error
                .unwrap_or_else(|| "the server refused the session".into()),
            hint: r.hint.unwrap_or_default(),
        },
        (Some(SSH_FAILED), None) => HostResult::Failed {
            error: format!(
                "could not reach {host} over SSH: {}",
                last_line(&out.stderr).unwrap_or("ssh failed")
            ),
            hint: format!("check that `ssh {host} true` works (host name, keys, known_hosts)"),
        },
        (Some(127), None) => HostResult::Failed {
            error: format!("kite-setup is not installed on {host} (command not found)"),
            hint: format!(
                "install kite-setup on {host} in a directory on the PATH of a non-interactive shell"
            ),
        },
        (code, None) => HostResult::Failed {
            error: format!(
                "{host} gave no answer{}: {}",
                code.map(|c| format!(" (exit {c})")).unwrap_or_default(),
                last_line(&out.stderr).unwrap_or("no output")
            ),
            hint: format!(
                "run `{}` on {host} to see what it says",
                ctx.command("status")
            ),
        },
    }
}

fn report(ctx: &Ctx<'_>, host: &str, result: &HostResult) {
    if ctx.json {
        let value = match result {
            HostResult::Stored(r) => serde_json::json!({
                "host": host, "ok": true, "profile": r.profile, "user_id": r.user_id,
                "expires_ist": r.expires_ist, "store": r.store,
            }),
            HostResult::Failed { error, hint } => serde_json::json!({
                "host": host, "ok": false, "error": error, "hint": hint,
            }),
        };
        ctx.ui.data(&format!("{value}\n"));
        return;
    }
    match result {
        HostResult::Stored(r) => ctx.ui.ok(format!(
            "{host}: stored as profile {} ({}), valid until {} IST{}",
            r.profile,
            r.user_id,
            r.expires_ist.as_deref().unwrap_or("06:00"),
            r.store
                .as_deref()
                .map(|s| format!(", in the {s}"))
                .unwrap_or_default()
        )),
        HostResult::Failed { error, hint } if hint.is_empty() => {
            ctx.ui.say(format!("✗ {host}: {error}"));
        }
        HostResult::Failed { error, hint } => {
            ctx.ui.say(format!("✗ {host}: {error} (hint: {hint})"));
        }
    }
}

/// The answer `import` prints for a stored session.
pub fn stored_reply(profile: &str, user_id: &str, expires_at: Timestamp, store: String) -> Reply {
    Reply {
        ok: true,
        profile: profile.to_string(),
        user_id: user_id.to_string(),
        expires_ist: Some(format_ist(expires_at)),
        store: Some(store),
        error: None,
        hint: None,
    }
}
