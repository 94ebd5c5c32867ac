//! The command-line contract (README "Commands"), as clap types only: no logic here.
//! `app.rs` turns these into the resolved settings the commands run with.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
  0    ok
  1    error
  2    usage error, or input missing in --no-input mode
  4    login needed (no credentials, no token, token expired or rejected)
  126  exec: the command cannot be run (not executable)
  127  exec: the command is not found
  130  interrupted (Ctrl-C); 143 terminated (SIGTERM); 129 hangup (SIGHUP)
  exec passes on the child's exit code.";

const INIT_EXAMPLES: &str = "\
Examples:
  kite-setup init                  the wizard, step by step, in a terminal
  kite-setup --sandbox init        the same against a local emulated Kite, to try it out
  pass show kite/api_secret |
    kite-setup init --no-input --client-id AB1234 --api-key KEY --plan personal \\
      --redirect-url http://127.0.0.1:5123/kite-setup/callback --api-secret-stdin";

/// Sets up Zerodha Kite Connect API credentials safely: a guided wizard, verification
/// against Kite, secrets only in the OS keyring, a daily browser login, hand-off to scripts.
#[derive(Debug, Parser)]
#[command(name = "kite-setup", version, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes (listed after each command's own options in its help).
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Profile to use: one Kite app and client ID each.
    #[arg(
        long,
        global = true,
        env = "KITE_SETUP_PROFILE",
        hide_env_values = true,
        default_value = "default",
        value_name = "NAME"
    )]
    pub profile: String,
    /// Use the local sandbox (an emulated Kite), starting one in-process if none answers at
    /// 127.0.0.1:5010. Sandbox profiles never mix with live ones.
    #[arg(long, global = true)]
    pub sandbox: bool,
    /// Use a running sandbox at URL (a loopback http address); implies --sandbox.
    #[arg(long, global = true, value_name = "URL")]
    pub sandbox_url: Option<String>,
    /// Never prompt; fail with exit code 2 naming the missing flag. Implied when stdin is
    /// not a terminal.
    #[arg(long, global = true)]
    pub no_input: bool,
    /// Machine-readable JSON on stdout, where the command has output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Where secrets are kept: auto = the OS credential store (Keychain, Credential
    /// Manager, Secret Service); keyutils = the Linux kernel user keyring (lost at reboot);
    /// file = plaintext file, mode 0600 (only when you choose it). Remembered per profile.
    #[arg(long, global = true, value_enum, value_name = "STORE")]
    pub store: Option<StoreChoice>,
    /// More detail on errors and progress (never secrets).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Where secrets are kept.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum StoreChoice {
    /// The OS credential store.
    Auto,
    /// The Linux kernel keyring (your user keyring, shared by your processes; lost at reboot).
    Keyutils,
    /// A plaintext file with mode 0600 in the config directory (explicit choice only).
    File,
    /// The sandbox-only plaintext file in `<config>/sandbox-store`, which sandbox mode falls
    /// back to when there is no OS keyring. Never a `--store` value: it is recorded by
    /// that fallback so later commands open the same file.
    #[value(skip)]
    #[serde(rename = "sandbox-file")]
    SandboxFile,
}

impl StoreChoice {
    /// The name used on the command line and in the metadata file.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreChoice::Auto => "auto",
            StoreChoice::Keyutils => "keyutils",
            StoreChoice::File => "file",
            StoreChoice::SandboxFile => "sandbox-file",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// First-time setup: a guided wizard over the developer console, credentials verified
    /// by a real login, then stored in the OS keyring.
    #[command(after_help = INIT_EXAMPLES)]
    Init(InitArgs),
    /// Daily login in the browser; stores today's access token (valid until 06:00 IST).
    Login(LoginArgs),
    /// Print today's access token, nothing else (for `$(kite-setup token)`).
    Token,
    /// Print KITE_API_KEY and KITE_ACCESS_TOKEN for a shell or a dotenv file.
    Env(EnvArgs),
    /// Run a command with KITE_API_KEY and KITE_ACCESS_TOKEN in its environment.
    // The usage shows the `--` the README writes (clap would print `<CMD>...` alone).
    #[command(override_usage = "kite-setup exec [OPTIONS] -- <CMD>...")]
    Exec(ExecArgs),
    /// Show profiles, what is stored (masked) and how long the token lives.
    Status(StatusArgs),
    /// Check the keyring, the clock, the redirect port, Kite's hosts, file permissions and
    /// plaintext copies of credentials in this directory.
    Doctor(DoctorArgs),
    /// The leak playbook: a new api_secret, verified, swapped in without ever losing the old
    /// one, the old token revoked, and a scan for copies of the old secret. Also the fix for
    /// a lost secret (the console shows a secret only once).
    Regenerate(RegenerateArgs),
    /// Revoke today's access token at Kite, then forget it.
    Logout,
    /// Forget a profile: revoke its token, delete its keyring entries and its metadata.
    Remove(RemoveArgs),
    /// Send today's session to servers over SSH (`ssh HOST kite-setup import`, on standard
    /// input); one result line per host.
    Push(PushArgs),
    /// Receive a session sent by `kite-setup push` on standard input, check it with Kite and
    /// store it (run on the server by push, over SSH).
    Import(ImportArgs),
    /// Work on a server's profile from here over SSH (`remote login HOST`).
    #[command(subcommand)]
    Remote(RemoteCommand),
    /// Run the emulated Kite (console, login page, API) on a loopback address.
    Sandbox(SandboxArgs),
    /// Print shell completions.
    Completions(CompletionsArgs),
}

#[derive(Debug, Args, Clone, Default)]
pub struct InitArgs {
    /// Zerodha client ID (like AB1234).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// The app's api_key (from the developer console).
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// The redirect URL registered for the app (http://127.0.0.1:PORT/PATH).
    #[arg(long, value_name = "URL")]
    pub redirect_url: Option<String>,
    /// The app's plan.
    #[arg(long, value_enum)]
    pub plan: Option<Plan>,
    /// Read the api_secret from standard input (one line). Secrets are never flags.
    #[arg(long)]
    pub api_secret_stdin: bool,
    /// Use the app of existing profile PROFILE (a family member's: one app serves your
    /// client ID and your immediate family's); its key, secret, redirect URL and plan are
    /// used, so none is asked for. Add --client-id to the app's client IDs on the console.
    #[arg(long, value_name = "PROFILE")]
    pub app: Option<String>,
    /// Store without a verifying login: nothing is checked against Kite, so a wrong value
    /// only shows up at the first `kite-setup login`.
    #[arg(long)]
    pub skip_verify: bool,
    /// Replace an existing profile without asking.
    #[arg(long)]
    pub force: bool,
    /// Seconds to wait for the login redirect.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub timeout: u64,
    /// Where the bot sends orders from: `here` probes this machine's IPs against the IP
    /// Whitelist (no order is placed); `elsewhere` skips it (run `kite-setup doctor` there).
    #[arg(long, value_enum, default_value_t = OrdersFrom::Here, value_name = "WHERE")]
    pub orders_from: OrdersFrom,
    /// Look up this machine's public IP through a public echo service (the sandbox's in
    /// sandbox mode) when an order probe is refused. Never done without this or a yes.
    #[arg(long)]
    pub lookup_public_ip: bool,
}

/// Where `init` checks orders from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OrdersFrom {
    /// This machine.
    #[default]
    Here,
    /// Another machine: skip the probe.
    Elsewhere,
}

/// The Kite Connect plans: one type with the sandbox and the metadata file.
pub use kite_wire::Plan;
#[derive(Debug, Args, Clone, Default)]
pub struct LoginArgs {
    /// Log in even if today's token is still valid.
    #[arg(long)]
    pub force: bool,
    /// Print the login URL instead of opening a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Skip the listener and paste the redirected URL from the browser (SSH, WSL, containers).
    #[arg(long)]
    pub paste: bool,
    /// Seconds to wait for the login redirect.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub timeout: u64,
    /// After the login, send the session to these servers (as `kite-setup push HOST…`).
    #[arg(long, value_name = "HOST", num_args = 1..)]
    pub push: Vec<String>,
    /// Set by `remote login`: the redirect arrives through its tunnel, so the `ssh -L`
    /// advice for SSH sessions is not printed.
    #[arg(long, hide = true)]
    pub via_tunnel: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct PushArgs {
    /// SSH destinations (`host`, `user@host`, or a `Host` from ~/.ssh/config).
    #[arg(required = true, value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Also send the api_secret, for a server that is to log in by itself later.
    #[arg(long)]
    pub with_app: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ImportArgs {}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Log in a server's profile with this machine's browser: `ssh -L PORT:127.0.0.1:PORT
    /// HOST kite-setup login --no-browser`; the secret and the token stay on the server.
    Login(RemoteLoginArgs),
}

#[derive(Debug, Args, Clone)]
pub struct RemoteLoginArgs {
    /// The SSH destination (`host`, `user@host`, or a `Host` from ~/.ssh/config).
    #[arg(value_name = "HOST")]
    pub host: String,
    /// Log in even if the server's token is still valid.
    #[arg(long)]
    pub force: bool,
    /// Seconds the server waits for the login redirect.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub timeout: u64,
}

#[derive(Debug, Args, Clone)]
pub struct EnvArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = EnvFormat::Sh)]
    pub format: EnvFormat,
    /// Also print KITE_API_SECRET (only if a script really needs it).
    #[arg(long)]
    pub with_secret: bool,
    /// Write a dotenv file (mode 0600) instead of printing.
    #[arg(long, value_name = "PATH")]
    pub dotenv: Option<PathBuf>,
    /// Write the dotenv file even inside a git work tree that does not ignore it.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnvFormat {
    Sh,
    Fish,
    Powershell,
    Dotenv,
    Json,
}

#[derive(Debug, Args, Clone)]
pub struct ExecArgs {
    /// Run the command even if there is no valid access token.
    #[arg(long)]
    pub allow_expired: bool,
    /// Also pass KITE_API_SECRET.
    #[arg(long)]
    pub with_secret: bool,
    /// The command and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct StatusArgs {
    /// Also ask Kite whether the token is still accepted (GET /user/profile).
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct DoctorArgs {
    /// More paths to scan for copies of the current secret and token.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub scan: Vec<PathBuf>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct RegenerateArgs {
    /// Finish an interrupted rotation (verify the pending secret and swap it in).
    #[arg(long, conflicts_with = "abort")]
    pub resume: bool,
    /// Drop the pending secret of an interrupted rotation (asks first).
    #[arg(long)]
    pub abort: bool,
    /// Read the new api_secret from standard input (one line).
    #[arg(long)]
    pub api_secret_stdin: bool,
    /// More paths to scan for copies of the old secret and token.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub scan: Vec<PathBuf>,
    /// Skip the leak scan.
    #[arg(long)]
    pub no_scan: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Seconds to wait for the login redirect.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub timeout: u64,
}

#[derive(Debug, Args, Clone, Default)]
pub struct RemoveArgs {
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args, Clone)]
pub struct SandboxArgs {
    /// Loopback address to serve on (port 0 picks a free port).
    // Repeatable: `--addr 127.0.0.1:0 --addr [::1]:0` serves both loopbacks on one port
    // (docs/sandbox.md); the help text stays as it was.
    #[arg(long, default_value = "127.0.0.1:5010", value_name = "ADDR", action = clap::ArgAction::Append)]
    pub addr: Vec<String>,
    /// State file (default: sandbox.json in the platform data directory).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Make /connect/login redirect at once, as the app's user, without the login form.
    #[arg(long)]
    pub auto_approve: bool,
}

#[derive(Debug, Args, Clone)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_flag_takes_a_secret() {
        let cmd = Cli::command();
        let mut names = Vec::new();
        for sub in cmd.get_subcommands() {
            for arg in sub.get_arguments() {
                if let Some(l) = arg.get_long() {
                    names.push(l.to_string());
                }
            }
        }
        for n in &names {
            let takes_secret = (n.contains("secret") || n.contains("token"))
                && !n.ends_with("-stdin")
                && n != "with-secret";
            assert!(!takes_secret, "flag --{n} looks like it takes a secret");
        }
    }

    /// Parses `line` as a whole command line; the exec args and the child's argv.
    fn exec_argv(line: &[&str]) -> (ExecArgs, Vec<String>) {
        let cli = Cli::try_parse_from(line).expect("parses");
        let Command::Exec(e) = cli.command else {
            panic!("not exec: {line:?}");
        };
        let child = e
            .command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        (e, child)
    }

    #[test]
    fn exec_usage_shows_the_double_dash() {
        let mut cmd = Cli::command();
        let exec = cmd.find_subcommand_mut("exec").expect("exec");
        let usage = exec.render_usage().to_string();
        assert_eq!(usage, "Usage: kite-setup exec [OPTIONS] -- <CMD>...");
    }

    #[test]
    fn exec_takes_everything_after_the_double_dash() {
        let (_, argv) = exec_argv(&["kite-setup", "exec", "--", "python3", "-c", "print(1)"]);
        assert_eq!(argv, ["python3", "-c", "print(1)"]);
        // Arguments that look like options, even kite-setup's own, belong to the command.
        let (e, argv) = exec_argv(&[
            "kite-setup",
            "exec",
            "--",
            "-x",
            "--with-secret",
            "--help",
            "--",
        ]);
        assert_eq!(argv, ["-x", "--with-secret", "--help", "--"]);
        assert!(!e.with_secret);
        let (e, argv) = exec_argv(&["kite-setup", "exec", "--with-secret", "--", "env"]);
        assert_eq!(argv, ["env"]);
        assert!(e.with_secret);
        // Without `--` it still parses (usage shows the safe form).
        let (_, argv) = exec_argv(&["kite-setup", "exec", "python3", "-V"]);
        assert_eq!(argv, ["python3", "-V"]);
        assert!(Cli::try_parse_from(["kite-setup", "exec", "--"]).is_err());
    }
}
