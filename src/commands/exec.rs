//! `kite-setup exec -- CMD ARGS…`: runs CMD with fresh KITE_* variables. On Unix the
//! process is replaced (signals and the exit code belong to the child); elsewhere the
//! child is spawned and its exit code passed on.

use std::ffi::OsString;
use std::process::Command;

use crate::cli::ExecArgs;
use crate::error::{Error, Fix};

use super::Ctx;
use super::env::variables;

/// The environment variables to remove before injecting: stale `KITE_*` values from an
/// earlier session, but not kite-setup's own `KITE_SETUP_*` settings.
pub fn stale_names(env_names: impl Iterator<Item = OsString>) -> Vec<OsString> {
    env_names
        .filter(|n| {
            let s = n.to_string_lossy();
            s.starts_with("KITE_") && !s.starts_with("KITE_SETUP_")
        })
        .collect()
}

pub fn run(ctx: &Ctx<'_>, args: &ExecArgs, current_env_names: Vec<OsString>) -> Result<u8, Error> {
    // clap requires CMD; checked again before the keyring is read, as a usage error.
    let (program, rest) = args.command.split_first().ok_or_else(|| {
        Error::usage(
            "no command to run",
            Fix::text("put the command after --, e.g. ").and_run("exec -- python bot.py"),
        )
    })?;
    let vars = variables(ctx, args.with_secret, args.allow_expired)?;
    let mut cmd = Command::new(program);
    cmd.args(rest);
    for name in stale_names(current_env_names.into_iter()) {
        cmd.env_remove(name);
    }
    for (k, v) in &vars {
        cmd.env(k, v.expose());
    }
    drop(vars);
    run_child(cmd, program)
}

#[cfg(unix)]
fn run_child(mut cmd: Command, program: &OsString) -> Result<u8, Error> {
    use std::os::unix::process::CommandExt;
    let e = cmd.exec();
    Err(spawn_error(&e, program))
}

#[cfg(not(unix))]
fn run_child(mut cmd: Command, program: &OsString) -> Result<u8, Error> {
    let status = cmd.status().map_err(|e| spawn_error(&e, program))?;
    Ok(u8::try_from(status.code().unwrap_or(1) & 0xff).unwrap_or(1))
}

fn spawn_error(e: &std::io::Error, program: &OsString) -> Error {
    let name = program.to_string_lossy();
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::failed(
            format!("command not found: {name}"),
            "check the command name and your PATH",
        )
    } else {
        Error::failed(
            format!("cannot run {name}: {e}"),
            "check that the file exists and is executable",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stale_kite_variables_are_removed() {
        let names = [
            "KITE_API_KEY",
            "KITE_ACCESS_TOKEN",
            "KITE_API_SECRET",
            "KITE_OTHER",
            "KITE_SETUP_PROFILE",
            "PATH",
            "MY_KITE_X",
        ];
        let stale = stale_names(names.iter().map(OsString::from));
        let stale: Vec<String> = stale
            .iter()
            .map(|s| s.to_string_lossy().to_string())
            .collect();
        assert_eq!(
            stale,
            [
                "KITE_API_KEY",
                "KITE_ACCESS_TOKEN",
                "KITE_API_SECRET",
                "KITE_OTHER"
            ]
        );
    }
}
