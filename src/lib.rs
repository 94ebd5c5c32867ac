//! kite-setup: from "I need an API key" to "my trading script runs with today's access
//! token", safely, for Zerodha Kite Connect.
//!
//! Shape: `main` → `app` (the composition root: environment, real adapters, rendering of
//! errors and exit codes) → `commands` (talk only to traits: `Prompter`, `Store`, `Kite`,
//! `Browser`, `Clock`) → pure modules (`session`, `validate`, `kite::wire`, `secret`,
//! `redirect::callback`). `profile` is the one file adapter commands use directly: the
//! non-secret metadata file (TOML, atomic write, 0600).
//! `sandbox` starts the emulated Kite (the kite-sandbox crate, which shares only the wire
//! knowledge in kite-wire with this one).

// Tests reach files, processes, sockets and time directly; the bans in clippy.toml are for
// the product code.
#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_macros))]

pub mod app;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod error;
pub mod interrupt;
pub mod kite;
pub mod leakscan;
pub mod lock;
pub mod process;
pub mod profile;
pub mod prompt;
pub mod random;
pub mod redirect;
pub mod sandbox;
pub mod sandbox_client;
pub mod secret;
pub mod session;
pub mod ssh;
pub mod store;
pub mod ui;
pub mod validate;

/// Test doubles: `cargo test` and the `testkit` feature only, never in a release build.
#[cfg(any(test, feature = "testkit"))]
#[allow(clippy::disallowed_methods, clippy::disallowed_macros)] // test doubles, never shipped
pub mod testkit;

/// Runs the command line and returns the process exit code.
pub fn main() -> std::process::ExitCode {
    app::run(std::env::args_os())
}
