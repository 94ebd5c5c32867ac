//! The composition root: reads the environment once ([`settings`]), builds the real
//! adapters ([`adapters`], [`sandbox`]), dispatches, and renders errors (`error:` +
//! `hint:` on stderr, each fix with this run's flags) and exit codes.

mod adapters;
mod sandbox;
pub mod settings;

use std::cell::RefCell;
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command, GlobalArgs};
use crate::clock::SystemClock;
use crate::commands::{self, Ctx, Machine, Ports, SandboxControl};
use crate::error::{Error, RunFlags, exit};
use crate::kite::Endpoints;
use crate::profile::ConfigFile;
use crate::prompt::{NoInputPrompter, Prompter, TerminalPrompter};
use crate::redirect::{Browser, NoTtyWaitUi, SystemBrowser, TerminalWaitUi, WaitUi};
use crate::sandbox_client::SelfPlayBrowser;
use crate::ui::Ui;

use adapters::{LazyKite, RealMachine, RealStores, read_stdin_line};
use settings::{EnvSnapshot, Settings};

pub use sandbox::DEFAULT_SANDBOX_URL;

/// Parses `args` and runs the command. Keeps no global state besides the process-wide
/// core-dump limit, signal handler and TLS provider.
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
    let settings = settings::resolve(&cli.global, &EnvSnapshot::capture());
    harden_process();
    crate::lock::set_wait(settings.lock_wait);
    match dispatch(&cli, &settings) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            render_error(&e, cli.global.verbose, &settings.flags);
            ExitCode::from(e.exit_code())
        }
    }
}

/// The core-dump limits the user had (soft, hard), saved before kite-setup lowers its own,
/// so `exec` can give them back to the child.
#[cfg(unix)]
static USER_CORE_LIMIT: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();

/// No core dumps (a crash must not write secrets to disk), and Ctrl-C/SIGTERM/SIGHUP
/// restore the terminal (echo, cursor) and exit 128+signal (130, 143, 129) with a line that
/// says what is stored (see `interrupt`: a write in progress finishes first). Only the
/// soft core limit is lowered: the hard one stays, so `exec` can hand the child the limit
/// the user had.
fn harden_process() {
    #[cfg(unix)]
    {
        if let Ok((soft, hard)) = rlimit::getrlimit(rlimit::Resource::CORE) {
            let _ = USER_CORE_LIMIT.set((soft, hard));
            let _ = rlimit::setrlimit(rlimit::Resource::CORE, 0, hard);
        } else {
            let _ = rlimit::setrlimit(rlimit::Resource::CORE, 0, 0);
        }
    }
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let saved = rustix::termios::tcgetattr(rustix::stdio::stdin()).ok();
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        let _ = std::thread::Builder::new()
            .name("kite-setup-signals".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    if let Some(t) = &saved {
                        let _ = rustix::termios::tcsetattr(
                            rustix::stdio::stdin(),
                            rustix::termios::OptionalActions::Now,
                            t,
                        );
                    }
                    let code = if sig == SIGTERM {
                        exit::TERMINATED
                    } else if sig == SIGHUP {
                        exit::HANGUP
                    } else {
                        exit::INTERRUPTED
                    };
                    // Exits now with the true line, or at the end of the critical
                    // section in progress (a write finishes first).
                    crate::interrupt::on_signal(code);
                }
            });
    }
    #[cfg(not(unix))]
    let _ = ctrlc::set_handler(|| crate::interrupt::on_signal(exit::INTERRUPTED));
}

/// Gives this process back the core-dump limit the user had, right before `exec` replaces
/// it with the user's command (which should dump core as the user configured).
fn restore_core_limit() {
    #[cfg(unix)]
    if let Some(&(soft, hard)) = USER_CORE_LIMIT.get() {
        let _ = rlimit::setrlimit(rlimit::Resource::CORE, soft, hard);
    }
}

/// `error:` and `hint:` lines; with `-v`, also the typed error as the code sees it (its
/// `Debug` form: secrets inside are `Secret`s and print as `[REDACTED]`).
fn render_error(e: &Error, verbose: u8, flags: &RunFlags) {
    let mut err = std::io::stderr().lock();
    if matches!(e, Error::Interrupted) {
        let _ = writeln!(err, "\n{}", crate::interrupt::line());
        return;
    }
    let _ = writeln!(err, "error: {e}");
    if let Some(hint) = e.hint(flags) {
        let _ = writeln!(err, "hint: {hint}");
    }
    if verbose > 0 {
        let _ = writeln!(err, "detail: {e:?}");
    }
}
fn dispatch(cli: &Cli, settings: &Settings) -> Result<u8, Error> {
    match &cli.command {
        Command::Completions(a) => {
            let mut cmd = Cli::command();
            clap_complete::generate(a.shell, &mut cmd, "kite-setup", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Sandbox(a) => crate::sandbox::run(
            a,
            cli.global.json,
            settings.data_dir()?.join("sandbox.json"),
        )
        .map(|()| exit::OK),
        _ => with_context(&cli.global, settings, |ctx| {
            run_command(ctx, settings, &cli.command)
        }),
    }
}

fn run_command(ctx: &Ctx<'_>, settings: &Settings, command: &Command) -> Result<u8, Error> {
    let machine = RealMachine {
        cwd: settings.cwd.clone(),
        home: settings.home.clone(),
        histfile: settings.histfile.clone(),
        sandbox_state: settings.data_dir().ok().map(|d| d.join("sandbox.json")),
    };
    match command {
        Command::Init(a) => commands::init::run(ctx, a, &|p| machine.is_port_free(p)),
        Command::Login(a) => {
            let ssh = commands::login::SshSession {
                connection: settings.ssh_connection.as_deref(),
                user: settings.user.as_deref(),
            };
            let code = commands::login::run_here(ctx, a, &ssh)?;
            if a.push.is_empty() || code != exit::OK {
                return Ok(code);
            }
            commands::push::push_to(
                ctx,
                &a.push,
                false,
                &ssh_client(settings)?,
                &adapters::host_name(),
            )
        }
        Command::Token => commands::token::run(ctx),
        Command::Env(a) => commands::env::run(ctx, a, &|p| machine.in_git_worktree_unignored(p)),
        Command::Exec(a) => {
            let process = crate::process::SystemProcess {
                before_exec: &restore_core_limit,
            };
            commands::exec::run(ctx, a, settings.var_names.clone(), &process)
        }
        Command::Status(a) => commands::status::run(ctx, a),
        Command::Doctor(a) => commands::doctor::run(ctx, a, &machine),
        Command::Regenerate(a) => {
            let env = commands::regenerate::RegenerateEnv {
                machine: &machine,
                abort_after: settings.abort_after()?,
            };
            commands::regenerate::run(ctx, a, &env)
        }
        Command::Push(a) => {
            commands::push::run(ctx, a, &ssh_client(settings)?, &adapters::host_name())
        }
        Command::Import(_) => commands::import::run(ctx, settings.ssh_client()),
        Command::Remote(crate::cli::RemoteCommand::Login(a)) => {
            let ssh = ssh_client(settings)?;
            let env = commands::remote::RemoteEnv {
                ssh: &ssh,
                is_port_free: &|p| machine.is_port_free(p),
                verbose: settings.verbose,
            };
            commands::remote::login(ctx, a, &env)
        }
        Command::Logout => commands::logout::logout(ctx),
        Command::Remove(a) => commands::logout::remove(ctx, a),
        Command::Sandbox(_) | Command::Completions(_) => {
            unreachable!("dispatched before a context is built")
        }
    }
}

/// The ssh client `push` runs: `KITE_SETUP_SSH_COMMAND`, or `ssh` from PATH.
fn ssh_client(settings: &Settings) -> Result<crate::ssh::SystemSsh, Error> {
    crate::ssh::SystemSsh::from_setting(settings.ssh_command.as_deref()).map_err(|m| {
        Error::usage(
            m,
            "set KITE_SETUP_SSH_COMMAND to a command line like `ssh -F ~/.ssh/other_config`, or unset it",
        )
    })
}

fn with_context<T>(
    global: &GlobalArgs,
    settings: &Settings,
    f: impl FnOnce(&Ctx<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    // A usage error before anything else: no sandbox started (and its state file
    // seeded), no keyring or network touched, for a profile that cannot exist.
    crate::profile::validate_profile_name(&global.profile)?;
    let (stdin_tty, stderr_tty, color) = (settings.stdin_tty, settings.stderr_tty, settings.color);
    let ui = Ui::stdio(color);

    let sandbox = sandbox::resolve_sandbox(global, settings, &ui)?;
    let (endpoints, clock) = match &sandbox {
        Some(s) => (
            Endpoints::sandbox(s.client.base()),
            SystemClock::shifted(s.client.clock_offset()?),
        ),
        None => (Endpoints::live(), SystemClock::default()),
    };
    crate::kite::client::check_endpoint(&endpoints.api)?;
    let kite = LazyKite {
        endpoints: endpoints.clone(),
        timeout: settings.http_timeout,
        client: std::sync::OnceLock::new(),
    };
    let config = ConfigFile::new(settings.config_dir()?);

    let browser = SystemBrowser::new(settings.browser_env.clone());
    let self_browser = sandbox.as_ref().map(|s| SelfPlayBrowser(s.client.clone()));

    let prompter: Box<dyn Prompter> = if settings.interactive {
        Box::new(TerminalPrompter::new())
    } else {
        Box::new(NoInputPrompter)
    };
    let stores = RealStores {
        config_dir: config.dir.clone(),
        sandbox: sandbox.is_some(),
        cache: RefCell::default(),
        timeout: settings.keyring_timeout,
    };
    let wait_ui = move || -> Box<dyn WaitUi> {
        if stderr_tty && stdin_tty {
            Box::new(TerminalWaitUi::new(color))
        } else {
            Box::new(NoTtyWaitUi::new(std::io::stderr()))
        }
    };

    let readiness = crate::kite::probe::HttpReadiness {
        endpoints: endpoints.clone(),
        timeout: settings.http_timeout,
    };
    let ctx = Ctx {
        profile: global.profile.clone(),
        sandbox: sandbox.is_some(),
        sandbox_url: global.sandbox_url.clone(),
        interactive: settings.interactive,
        json: global.json,
        store_flag: global.store,
        endpoints,
        config,
        ui: &ui,
        browser_available: settings.browser_available,
        self_play: false,
        ports: Ports {
            prompter: prompter.as_ref(),
            kite: &kite,
            browser: &browser,
            clock: &clock,
            monotonic: &crate::clock::SystemMonotonic,
            redirect: &crate::redirect::LoopbackRedirect,
            stores: &stores,
            wait_ui: &wait_ui,
            sandbox_control: sandbox.as_ref().map(|s| &s.client as &dyn SandboxControl),
            read_stdin_line: &read_stdin_line,
            self_browser: self_browser.as_ref().map(|b| b as &dyn Browser),
            readiness: &readiness,
        },
    };
    f(&ctx)
}
