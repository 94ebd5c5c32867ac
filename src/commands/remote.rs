//! `kite-setup remote login HOST`: the daily login of a server's profile, with this
//! machine's browser, while the api_secret and the new token stay on the server. It asks
//! the server for the profile's registered redirect URL (`status --json`), then runs
//! `ssh -L PORT:127.0.0.1:PORT HOST kite-setup login --no-browser …`: the server prints
//! the login URL, this side opens it, and Kite's redirect to `127.0.0.1:PORT` enters the
//! tunnel here and reaches the server's listener. The server's lines are shown as
//! kite-setup's own and its exit code is this command's.

use crate::cli::RemoteLoginArgs;
use crate::error::{Error, Fix, Kind};
use crate::secret::Secret;
use crate::ssh::{SSH_FAILED, Ssh, last_line};

use super::Ctx;
use super::login_flow::say_opened;
use super::push::remote_argv_for;

/// What the person asked for about the run, beyond the context.
pub struct RemoteEnv<'a> {
    pub ssh: &'a dyn Ssh,
    /// Whether a loopback port can be bound here.
    pub is_port_free: &'a dyn Fn(u16) -> bool,
    /// `-v`: ssh's own messages are shown too.
    pub verbose: bool,
}

pub fn login(ctx: &Ctx<'_>, args: &RemoteLoginArgs, env: &RemoteEnv<'_>) -> Result<u8, Error> {
    let host = args.host.as_str();
    let port = redirect_port(ctx, host, env.ssh)?;
    if !(env.is_port_free)(port) {
        return Err(Error::failed(
            format!("port {port} on this machine is taken, and the tunnel to {host} needs it"),
            format!(
                "Kite redirects to 127.0.0.1:{port}: stop what listens on it here (`ss -ltnp 'sport = :{port}'` shows it) and try again"
            ),
        ));
    }
    let mut ssh_args = vec![
        "-L".to_string(),
        format!("{port}:127.0.0.1:{port}"),
        "-o".to_string(),
        "ExitOnForwardFailure=yes".to_string(),
    ];
    if !env.verbose {
        ssh_args.extend(["-o".to_string(), "LogLevel=ERROR".to_string()]);
    }
    let mut login = vec![
        "login".to_string(),
        "--no-browser".to_string(),
        "--via-tunnel".to_string(),
        "--timeout".to_string(),
        args.timeout.to_string(),
    ];
    if args.force {
        login.push("--force".to_string());
    }
    let remote = remote_argv_for(ctx, &login);
    ctx.ui.say(format!(
        "Logging in {host}'s profile {} through an SSH tunnel on 127.0.0.1:{port}.",
        ctx.profile_label()
    ));
    let mut expect_url = false;
    let mut last_ssh_line = String::new();
    let code = env
        .ssh
        .stream(host, &ssh_args, &remote, &mut |line| {
            if line.starts_with("ssh: ")
                || line.starts_with("bind")
                || line.contains("forwarding failed")
            {
                line.clone_into(&mut last_ssh_line);
                if !env.verbose {
                    return;
                }
            }
            ctx.ui.say(line);
            if expect_url {
                expect_url = false;
                if let Ok(url) = url::Url::parse(line.trim()) {
                    say_opened(ctx.ui, &ctx.ports.browser.open(&url), true);
                }
            }
            expect_url = line.trim() == "Log in to Kite at:";
        })
        .map_err(|e| {
            Error::failed(
                e.to_string(),
                "install OpenSSH's client, or point KITE_SETUP_SSH_COMMAND at one",
            )
        })?;
    match code {
        Some(0) => Ok(0),
        Some(SSH_FAILED) => Err(Error::failed(
            format!(
                "could not log in over SSH to {host}: {}",
                if last_ssh_line.is_empty() {
                    "ssh failed"
                } else {
                    &last_ssh_line
                }
            ),
            format!("check that `ssh {host} true` works, and that nothing here holds port {port}"),
        )),
        // The server already said what went wrong (its error and hint lines came through).
        Some(c) => Ok(u8::try_from(c).unwrap_or(1)),
        None => Err(Error::said(
            Kind::Interrupted,
            format!("the SSH session to {host} was killed"),
            Fix::default(),
        )),
    }
}

/// The port of the server profile's registered redirect URL, asked from the server.
fn redirect_port(ctx: &Ctx<'_>, host: &str, ssh: &dyn Ssh) -> Result<u16, Error> {
    let argv = remote_argv_for(ctx, &["--json".to_string(), "status".to_string()]);
    let out = ssh
        .run(host, &argv, &Secret::new(String::new()))
        .map_err(|e| Error::failed(e.to_string(), "install OpenSSH's client"))?;
    if out.code == Some(SSH_FAILED) {
        return Err(Error::failed(
            format!(
                "could not reach {host} over SSH: {}",
                last_line(&out.stderr).unwrap_or("ssh failed")
            ),
            format!("check that `ssh {host} true` works (host name, keys, known_hosts)"),
        ));
    }
    if out.code == Some(127) {
        return Err(Error::failed(
            format!("kite-setup is not installed on {host} (command not found)"),
            format!(
                "install kite-setup on {host} in a directory on the PATH of a non-interactive shell"
            ),
        ));
    }
    let doc: serde_json::Value = out
        .stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l.trim()).ok())
        .unwrap_or_default();
    let redirect = doc["profiles"]
        .as_array()
        .and_then(|list| list.iter().find(|p| p["name"] == ctx.profile.as_str()))
        .and_then(|p| p["redirect_url"].as_str())
        .ok_or_else(|| {
            Error::login_needed(
                format!("{host} has no profile {}", ctx.profile_label()),
                format!("set it up there first: `ssh -t {host} kite-setup init`"),
            )
        })?;
    url::Url::parse(redirect)
        .ok()
        .and_then(|u| u.port())
        .ok_or_else(|| {
            Error::failed(
                format!("{host}'s redirect URL {redirect} has no port to tunnel"),
                "register a redirect URL like http://127.0.0.1:5123/kite-setup/callback there",
            )
        })
}
