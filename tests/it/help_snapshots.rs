//! The help texts as people read them: `kite-setup --help` and `kite-setup <cmd> --help`
//! for every command, from the real binary, 100 columns, no colour. A change in wording
//! shows up as a snapshot diff to review (`cargo insta review`).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kite-setup");

const COMMANDS: [&str; 15] = [
    "init",
    "login",
    "token",
    "env",
    "exec",
    "status",
    "doctor",
    "regenerate",
    "logout",
    "remove",
    "push",
    "import",
    "remote",
    "sandbox",
    "completions",
];

/// `kite-setup ARGS --help` in a clean environment (no KITE_SETUP_PROFILE to leak into
/// the `[env: ...]` notes), stdout only.
fn help(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .env_clear()
        .env("COLUMNS", "100")
        .env("NO_COLOR", "1")
        .args(args)
        .arg("--help")
        .output()
        .expect("run kite-setup --help");
    assert!(out.status.success(), "{args:?}: {:?}", out.status);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 help")
}

#[test]
fn top_level_help() {
    insta::assert_snapshot!("help", help(&[]));
}

#[test]
fn every_command_has_its_help() {
    for cmd in COMMANDS {
        let text = help(&[cmd]);
        assert!(text.contains(&format!("kite-setup {cmd}")), "{text}");
        insta::assert_snapshot!(format!("help_{cmd}"), text);
    }
}

/// `remote login` is a subcommand of `remote`: its own snapshot.
#[test]
fn remote_login_has_its_help() {
    let text = help(&["remote", "login"]);
    assert!(text.contains("kite-setup remote login"), "{text}");
    insta::assert_snapshot!("help_remote_login", text);
}

/// The command list above is complete: a new command needs its snapshot.
#[test]
fn the_list_covers_every_command() {
    let top = help(&[]);
    let listed: Vec<&str> = top
        .split("Commands:")
        .nth(1)
        .expect("a command list")
        .split("\n\n")
        .next()
        .expect("the list")
        .lines()
        .filter(|l| !l.starts_with("   ")) // continuation lines of a wrapped description
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert_eq!(listed, COMMANDS, "{top}");
}
