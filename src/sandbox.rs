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

/// Starts a sandbox in this process; it serves until the handle is dropped.
pub fn start(opts: SandboxOptions, clock: Arc<dyn Clock>) -> Result<SandboxHandle, Error> {
    kite_sandbox::start(opts, clock).map_err(|e| to_error(&e))
}

/// `kite-setup sandbox`: start, print the banner, serve until killed.
pub fn run(args: &SandboxArgs, json: bool, default_state: PathBuf) -> Result<(), Error> {
    let opts = SandboxOptions {
        addr: args.addr.clone(),
        state_path: Some(args.state.clone().unwrap_or(default_state)),
        auto_approve: args.auto_approve,
    };
    let handle = start(opts, Arc::new(WallClock))?;
    if json {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", handle.banner_json());
        let _ = out.flush();
    } else {
        eprintln!("{}", handle.banner_text());
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
    use super::*;

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
