//! The integration tests, one binary: each module was once its own test binary, and each
//! one linked the whole crate again. Helpers are in `support`. Run one suite with a
//! filter, e.g. `cargo test --test it -- leak_audit::`.
//!
//! `tests/keyring_store.rs` stays a binary of its own (`harness = false`): it re-executes
//! itself once per scenario with the environment of a private Secret Service.

// Tests reach files, processes, sockets, time and the terminal directly: clippy.toml's
// bans are for the product code.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod support;

mod bad_input;
mod concurrency;
mod daily_cli;
mod env_quoting;
mod family_cli;
mod fault_matrix;
mod help_snapshots;
mod hostile_callbacks;
mod init_cli;
mod init_pty;
mod init_transcript;
mod keyring_failures;
mod leak_audit;
mod leakscan_cli;
mod listener_redirect;
mod listener_terminal;
mod migration_cli;
mod orders_cli;
mod prop_parsers;
mod quickstart;
mod real_browser;
mod regenerate_cli;
mod sandbox_api;
mod sandbox_inprocess;
mod sdk_conformance;
mod shared_app_cli;
mod ssh_cli;
