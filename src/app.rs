//! The composition root: the one place that reads the environment, decides whether
//! prompting is possible, builds the real adapters, dispatches, and renders errors
//! (`error:` + `hint:` on stderr) and exit codes.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};
use crate::error::{Error, exit};

/// Parses `args` and runs the command. Keeps no global state besides the process-wide
/// core-dump limit and TLS provider, so it can be called more than once (tests).
pub fn run<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    harden_process();
    match dispatch(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            render_error(&e, cli.global.verbose);
            ExitCode::from(e.exit_code())
        }
    }
}

/// No core dumps: a crash must not write the secrets in memory to disk.
fn harden_process() {
    #[cfg(unix)]
    {
        let _ = rlimit::setrlimit(rlimit::Resource::CORE, 0, 0);
    }
}

fn render_error(e: &Error, _verbose: u8) {
    let mut err = std::io::stderr().lock();
    if matches!(e, Error::Interrupted) {
        let _ = writeln!(err, "\ninterrupted: nothing was changed");
        return;
    }
    let _ = writeln!(err, "error: {e}");
    if let Some(hint) = e.hint() {
        let _ = writeln!(err, "hint: {hint}");
    }
}

fn dispatch(cli: &Cli) -> Result<u8, Error> {
    match &cli.command {
        Command::Completions(a) => {
            let mut cmd = Cli::command();
            clap_complete::generate(a.shell, &mut cmd, "kite-setup", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Sandbox(a) => {
            // The default state file lives in the platform data dir (XDG on Linux).
            let default_state = dirs::data_dir()
                .unwrap_or_else(|| std::path::PathBuf::from("."))
                .join("kite-setup")
                .join("sandbox.json");
            crate::sandbox::run(a, cli.global.json, default_state).map(|()| exit::OK)
        }
        Command::Init(_) => Err(Error::NotImplemented("init")),
        Command::Login(_) => Err(Error::NotImplemented("login")),
        Command::Token => Err(Error::NotImplemented("token")),
        Command::Env(_) => Err(Error::NotImplemented("env")),
        Command::Exec(_) => Err(Error::NotImplemented("exec")),
        Command::Status(_) => Err(Error::NotImplemented("status")),
        Command::Doctor => Err(Error::NotImplemented("doctor")),
        Command::Regenerate(_) => Err(Error::NotImplemented("regenerate")),
        Command::Logout => Err(Error::NotImplemented("logout")),
        Command::Remove(_) => Err(Error::NotImplemented("remove")),
    }
}
