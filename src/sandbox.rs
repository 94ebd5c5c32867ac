//! The tool's side of the emulated Kite, which lives in the kite-sandbox crate
//! (docs/sandbox.md): clap arguments become its options, its errors become the tool's with
//! the flag to change, and `run` is the foreground `kite-setup sandbox` command.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

pub use kite_sandbox::{DemoInfo, SandboxHandle, SandboxOptions, WallClock, state};

use crate::cli::SandboxArgs;
use crate::clock::Clock;
use crate::error::Error;

/// Starts a sandbox in this process (`--sandbox`); it serves until the handle is dropped.
/// It also answers on `[::1]` (same port) when the machine has IPv6 loopback, so a bot's
/// address family shows in the static IP rule as it would at Kite.
pub fn start(opts: SandboxOptions, clock: Arc<dyn Clock>) -> Result<SandboxHandle, Error> {
    let ipv6 = [String::from("[::1]:0")];
    match kite_sandbox::start_on(opts.clone(), &ipv6, clock.clone()) {
        Ok(handle) => Ok(handle),
        Err(kite_sandbox::Error::Bind { addr, .. }) if addr.starts_with("[::1]") => {
            kite_sandbox::start(opts, clock).map_err(|e| to_error(&e))
        }
        Err(e) => Err(to_error(&e)),
    }
}

/// The options and the extra addresses of `kite-setup sandbox`: the first `--addr`, then
/// the others (served on the same port when theirs is 0).
fn options(args: &SandboxArgs, default_state: PathBuf) -> (SandboxOptions, Vec<String>) {
    let mut addrs = args.addr.iter();
    let opts = SandboxOptions {
        addr: addrs
            .next()
            .cloned()
            .unwrap_or_else(|| "127.0.0.1:5010".into()),
        state_path: Some(args.state.clone().unwrap_or(default_state)),
        auto_approve: args.auto_approve,
    };
    (opts, addrs.cloned().collect())
}

/// `kite-setup sandbox`: start, print the banner, serve until killed.
pub fn run(args: &SandboxArgs, json: bool, default_state: PathBuf) -> Result<(), Error> {
    let (opts, extra) = options(args, default_state);
    let handle =
        kite_sandbox::start_on(opts, &extra, Arc::new(WallClock)).map_err(|e| to_error(&e))?;
    if json {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", handle.banner_json());
        let _ = out.flush();
    } else {
        let _ = writeln!(std::io::stderr().lock(), "{}", handle.banner_text());
    }
    handle.join();
    Ok(())
}

/// The sandbox's failure with the fix in this tool's flags.
fn to_error(e: &kite_sandbox::Error) -> Error {
    use kite_sandbox::Error as E;
    let another_file = "run `kite-setup sandbox --state FILE` with another file";
    let hint = match e {
        E::BadAddress(_) => "use --addr 127.0.0.1:PORT (port 0 picks a free one)".into(),
        E::NotLoopback(_) => "use --addr 127.0.0.1:PORT or [::1]:PORT".into(),
        E::StateUnreadable { .. } => {
            format!("move it away (a new demo world is created), or {another_file}")
        }
        E::StateRead { .. } => format!("check the file's permissions, or {another_file}"),
        E::StateWrite { .. } => {
            "run `kite-setup sandbox --state FILE` with a file in a directory you can write".into()
        }
        E::Bind { .. } => "another program uses the port: pick another with --addr 127.0.0.1:PORT (0 = any free port)".into(),
        E::NoAddress => "try again".to_string(),
    };
    if e.is_usage() {
        Error::usage(e.to_string(), hint)
    } else {
        Error::failed(e.to_string(), hint)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn sandbox_args(argv: &[&str]) -> SandboxArgs {
        let cli = Cli::try_parse_from(argv).unwrap();
        match cli.command {
            Command::Sandbox(a) => a,
            _ => unreachable!("a sandbox command line"),
        }
    }

    #[test]
    fn addr_given_twice_serves_both_on_one_port() {
        let (opts, extra) = options(&sandbox_args(&["kite-setup", "sandbox"]), "d.json".into());
        assert_eq!((opts.addr.as_str(), extra.len()), ("127.0.0.1:5010", 0));
        let args = sandbox_args(&[
            "kite-setup",
            "sandbox",
            "--addr",
            "127.0.0.1:0",
            "--addr",
            "[::1]:0",
        ]);
        let (opts, extra) = options(&args, "d.json".into());
        assert_eq!(opts.addr, "127.0.0.1:0");
        assert_eq!(extra, vec!["[::1]:0".to_string()]);
    }

    #[test]
    fn the_in_process_sandbox_answers_on_ipv6_loopback_when_there_is_one() {
        let clock: Arc<dyn Clock> = Arc::new(WallClock);
        let sb = start(SandboxOptions::default(), clock).unwrap();
        sb.quiet();
        assert_eq!(sb.url.host_str(), Some("127.0.0.1"));
        let has_ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
        assert_eq!(sb.urls.len(), if has_ipv6 { 2 } else { 1 });
        if has_ipv6 {
            assert_eq!(sb.urls[1].host_str(), Some("[::1]"));
            assert_eq!(sb.urls[1].port(), sb.url.port());
        }
    }

    #[test]
    fn address_mistakes_are_usage_errors_with_the_flag_to_fix() {
        let e = to_error(&kite_sandbox::Error::NotLoopback("0.0.0.0:1".into()));
        assert_eq!(e.exit_code(), 2);
        let e = to_error(&kite_sandbox::Error::Bind {
            addr: "127.0.0.1:1".into(),
            detail: "in use".into(),
        });
        assert_eq!(e.exit_code(), 1);
    }
}
