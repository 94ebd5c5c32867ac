//! `kite-setup exec -- CMD ARGS…`: runs CMD with fresh KITE_* variables. On Unix the
//! process is replaced (signals and the exit code belong to the child); elsewhere the
//! child is spawned and its exit code passed on. A command that cannot be started exits
//! 127 (not found) or 126 (not executable), as shells and `env` do.

use std::ffi::OsString;

use crate::cli::ExecArgs;
use crate::error::{Error, Fix};
use crate::process::{Child, Process};

use super::Ctx;
use super::env::{ACCESS_TOKEN, API_KEY, API_SECRET, variables};

/// The environment variables to remove before injecting: stale values of the variables
/// kite-setup itself sets (from an earlier session, or a secret the child was not given
/// this time). Every other variable, `KITE_LOG_LEVEL` say, belongs to the user and stays.
pub fn stale_names(env_names: impl Iterator<Item = OsString>) -> Vec<OsString> {
    env_names
        .filter(|n| [API_KEY, ACCESS_TOKEN, API_SECRET].iter().any(|v| n == *v))
        .collect()
}

/// Runs the command through `process` (the real one replaces this process on Unix).
pub fn run(
    ctx: &Ctx<'_>,
    args: &ExecArgs,
    current_env_names: Vec<OsString>,
    process: &dyn Process,
) -> Result<u8, Error> {
    // clap requires CMD; checked again before the keyring is read, as a usage error.
    let (program, rest) = args.command.split_first().ok_or_else(|| {
        Error::usage(
            "no command to run",
            Fix::text("put the command after --, e.g. ").and_run("exec -- python bot.py"),
        )
    })?;
    let vars = variables(ctx, args.with_secret, args.allow_expired)?;
    let child = Child {
        program: program.clone(),
        args: rest.to_vec(),
        env_remove: stale_names(current_env_names.into_iter()),
        env_set: vars,
    };
    process.exec(child).map_err(|e| spawn_error(&e, program))
}

fn spawn_error(e: &std::io::Error, program: &OsString) -> Error {
    use crate::error::Kind;
    let name = program.to_string_lossy();
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::said(
            Kind::CommandNotFound,
            format!("command not found: {name}"),
            "check the command name and your PATH",
        )
    } else {
        Error::said(
            Kind::CannotExecute,
            format!("cannot run {name}: {e}"),
            "check that the file is a program and executable (`chmod +x`)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_variables_kite_setup_sets_are_removed() {
        let names = [
            "KITE_API_KEY",
            "KITE_ACCESS_TOKEN",
            "KITE_API_SECRET",
            "KITE_OTHER",
            "KITE_LOG_LEVEL",
            "KITE_SETUP_PROFILE",
            "PATH",
            "MY_KITE_X",
            "KITE_API_KEY_2",
        ];
        let stale = stale_names(names.iter().map(OsString::from));
        let stale: Vec<String> = stale
            .iter()
            .map(|s| s.to_string_lossy().to_string())
            .collect();
        assert_eq!(
            stale,
            ["KITE_API_KEY", "KITE_ACCESS_TOKEN", "KITE_API_SECRET"]
        );
    }

    #[test]
    fn a_command_that_cannot_start_exits_as_shells_do() {
        let program = OsString::from("nope");
        let not_found = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(spawn_error(&not_found, &program).exit_code(), 127);
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(spawn_error(&denied, &program).exit_code(), 126);
    }
}
