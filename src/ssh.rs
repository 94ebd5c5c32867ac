//! The `ssh` client as a dependency: `push` runs `kite-setup import` on a server through
//! it. The port is one call ("run this kite-setup command line on HOST, with this on its
//! standard input"); the real adapter runs OpenSSH from PATH, or the command in
//! `KITE_SETUP_SSH_COMMAND` (split like git's `GIT_SSH_COMMAND`), so the user's keys,
//! agent, `~/.ssh/config` and known_hosts apply. Secrets only ever travel on standard
//! input: the remote command line is built from non-secret flags and is visible in the
//! process list on both ends.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::secret::Secret;

/// OpenSSH's exit code for its own failures (connection, authentication, host key).
pub const SSH_FAILED: i32 = 255;

/// What one remote run gave back.
#[derive(Debug, Clone, Default)]
pub struct SshOutput {
    /// The remote command's exit code (255: ssh itself failed); `None` when killed.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Why ssh could not be run at all.
#[derive(Debug, Clone, thiserror::Error)]
#[error("could not run `{program}`: {detail}")]
pub struct SshSpawnError {
    pub program: String,
    pub detail: String,
}

/// Runs a kite-setup command line on a host.
pub trait Ssh {
    /// Runs `argv` (a kite-setup command line, no secrets in it) on `host`, writes `input`
    /// (one line) to its standard input and waits for it to end.
    fn run(&self, host: &str, argv: &[String], input: &Secret) -> Result<SshOutput, SshSpawnError>;

    /// Runs `argv` on `host` with `ssh_args` for ssh itself (a port forward), standard
    /// input closed, and hands each line of its stderr to `on_line` as it arrives (its
    /// stdout goes to ours); the exit code when it ends.
    fn stream(
        &self,
        host: &str,
        ssh_args: &[String],
        argv: &[String],
        on_line: &mut dyn FnMut(&str),
    ) -> Result<Option<i32>, SshSpawnError>;
}

/// The real client: `ssh` or `KITE_SETUP_SSH_COMMAND`.
#[derive(Debug, Clone)]
pub struct SystemSsh {
    /// The program and its leading arguments.
    command: Vec<String>,
}

impl SystemSsh {
    /// From `KITE_SETUP_SSH_COMMAND` when set (a shell-words string), else `ssh`.
    pub fn from_setting(setting: Option<&str>) -> Result<Self, String> {
        let command = match setting.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => shell_words::split(s)
                .map_err(|e| format!("KITE_SETUP_SSH_COMMAND is not a valid command line: {e}"))?,
            None => vec!["ssh".to_string()],
        };
        if command.is_empty() {
            return Err("KITE_SETUP_SSH_COMMAND names no program".into());
        }
        Ok(Self { command })
    }

    /// The whole argv ssh is started with: `-T` (no terminal: the payload is data), `--`,
    /// the host, and the remote command as one quoted string (ssh hands it to the
    /// server's shell).
    pub fn argv(&self, host: &str, argv: &[String]) -> Vec<String> {
        self.argv_with(host, &[], argv)
    }

    /// [`SystemSsh::argv`] with options for ssh itself before the host.
    pub fn argv_with(&self, host: &str, ssh_args: &[String], argv: &[String]) -> Vec<String> {
        let mut all = self.command.clone();
        all.push("-T".to_string());
        all.extend(ssh_args.iter().cloned());
        all.extend(["--".to_string(), host.to_string()]);
        all.push(shell_words::join(argv));
        all
    }
}

impl Ssh for SystemSsh {
    fn run(&self, host: &str, argv: &[String], input: &Secret) -> Result<SshOutput, SshSpawnError> {
        let all = self.argv(host, argv);
        let spawn_error = |e: std::io::Error| SshSpawnError {
            program: all[0].clone(),
            detail: e.to_string(),
        };
        #[allow(clippy::disallowed_methods)] // the ssh adapter runs the user's OpenSSH
        let mut child = Command::new(&all[0])
            .args(&all[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        if let Some(mut stdin) = child.stdin.take() {
            // A host that hangs up early (refused connection) closes the pipe: the
            // exit code and stderr below say why, so a write error is not the story.
            let _ = stdin.write_all(input.expose().as_bytes());
            let _ = stdin.write_all(b"\n");
        }
        let out = child.wait_with_output().map_err(spawn_error)?;
        Ok(SshOutput {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    fn stream(
        &self,
        host: &str,
        ssh_args: &[String],
        argv: &[String],
        on_line: &mut dyn FnMut(&str),
    ) -> Result<Option<i32>, SshSpawnError> {
        use std::io::BufRead;
        let all = self.argv_with(host, ssh_args, argv);
        let spawn_error = |e: std::io::Error| SshSpawnError {
            program: all[0].clone(),
            detail: e.to_string(),
        };
        #[allow(clippy::disallowed_methods)] // the ssh adapter runs the user's OpenSSH
        let mut child = Command::new(&all[0])
            .args(&all[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        if let Some(err) = child.stderr.take() {
            for line in std::io::BufReader::new(err).lines() {
                match line {
                    Ok(line) => on_line(&line),
                    Err(_) => break,
                }
            }
        }
        let status = child.wait().map_err(spawn_error)?;
        Ok(status.code())
    }
}

/// The last line of ssh's own complaint, for a one-line error (`ssh: connect to host …
/// port 22: Connection refused`).
pub fn last_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rfind(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_split_like_a_shell_and_the_remote_line_is_quoted() {
        let ssh =
            SystemSsh::from_setting(Some("ssh -F '/tmp/a b/config' -o BatchMode=yes")).unwrap();
        let argv = ssh.argv(
            "srv",
            &[
                "kite-setup".into(),
                "--sandbox-url".into(),
                "http://127.0.0.1:5010/x y".into(),
                "import".into(),
            ],
        );
        assert_eq!(
            argv,
            [
                "ssh",
                "-F",
                "/tmp/a b/config",
                "-o",
                "BatchMode=yes",
                "-T",
                "--",
                "srv",
                "kite-setup --sandbox-url 'http://127.0.0.1:5010/x y' import"
            ]
        );
        assert_eq!(SystemSsh::from_setting(None).unwrap().command, ["ssh"]);
        assert_eq!(
            SystemSsh::from_setting(Some("  ")).unwrap().command,
            ["ssh"]
        );
        assert!(SystemSsh::from_setting(Some("ssh 'unclosed")).is_err());
    }

    #[test]
    fn last_line_skips_blank_lines() {
        assert_eq!(last_line("a\nssh: refused\n\n"), Some("ssh: refused"));
        assert_eq!(last_line(""), None);
    }
}
