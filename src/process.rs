//! Running another program: the port `exec` hands its command to, and the real adapter,
//! the one place that starts a process for a command. (The leak scan's `git` and the
//! browser opener start their own helpers inside their adapters.)

use std::ffi::OsString;

use crate::secret::Secret;

/// A program to run with kite-setup's variables.
pub struct Child {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// Variables removed from the inherited environment first.
    pub env_remove: Vec<OsString>,
    /// Variables set for the child (never logged: `Secret` redacts itself).
    pub env_set: Vec<(&'static str, Secret)>,
}

/// Runs a child in place of this run.
pub trait Process {
    /// Runs `child` and returns its exit code; on Unix the real adapter replaces this
    /// process and returns only when the program could not be started.
    fn exec(&self, child: Child) -> std::io::Result<u8>;
}

/// The real adapter: `execvp` on Unix (signals and the exit code belong to the child),
/// spawn-and-wait elsewhere. `before_exec` runs right before (it gives back the user's
/// core-dump limit).
pub struct SystemProcess<'a> {
    pub before_exec: &'a dyn Fn(),
}

impl Process for SystemProcess<'_> {
    fn exec(&self, child: Child) -> std::io::Result<u8> {
        #[allow(clippy::disallowed_methods)] // the one place a command starts a program
        let mut cmd = std::process::Command::new(&child.program);
        cmd.args(&child.args);
        for name in &child.env_remove {
            cmd.env_remove(name);
        }
        for (k, v) in &child.env_set {
            cmd.env(k, v.expose());
        }
        drop(child);
        (self.before_exec)();
        run(cmd)
    }
}

#[cfg(unix)]
fn run(mut cmd: std::process::Command) -> std::io::Result<u8> {
    use std::os::unix::process::CommandExt;
    Err(cmd.exec())
}

#[cfg(not(unix))]
fn run(mut cmd: std::process::Command) -> std::io::Result<u8> {
    let status = cmd.status()?;
    Ok(u8::try_from(status.code().unwrap_or(1) & 0xff).unwrap_or(1))
}
