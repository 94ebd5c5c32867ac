//! The README's quick start on a fresh headless machine, as a newcomer meets it: no D-Bus
//! session (so no Secret Service), no browser, no display, empty home and XDG directories.
//! `kite-setup --sandbox init` runs in a real pseudo-terminal (expectrl) and the test answers
//! the wizard as a person would (accepting every default); then every command under
//! "Next:" is run as printed, through `sh`, with `kite-setup` on PATH, and each must
//! succeed. The profile is only usable if the later commands find the secrets where the
//! wizard put them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use expectrl::process::unix::WaitStatus;
use expectrl::{Eof, Expect, Session};

const BIN: &str = env!("CARGO_BIN_EXE_kite-setup");

/// A fresh machine's user: an empty home, XDG dirs inside it, a runtime dir with no bus.
struct Machine {
    root: tempfile::TempDir,
    bin_dir: PathBuf,
}

impl Machine {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        for d in ["home", "run", "bin", "work"] {
            std::fs::create_dir_all(root.path().join(d)).expect("mkdir");
        }
        let bin_dir = root.path().join("bin");
        #[cfg(unix)]
        std::os::unix::fs::symlink(BIN, bin_dir.join("kite-setup")).expect("symlink");
        // The README's `python bot.py`: the real python3 (not a version manager's shim,
        // which needs the real home) under the name a newcomer types.
        let py = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3");
        let py = String::from_utf8(py.stdout).expect("utf-8");
        #[cfg(unix)]
        std::os::unix::fs::symlink(py.trim(), bin_dir.join("python")).expect("symlink");
        Self { root, bin_dir }
    }

    fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    /// `program` with only this machine's environment: no DBUS_SESSION_BUS_ADDRESS, no
    /// BROWSER, no DISPLAY, no KITE_SETUP_* overrides.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        #[allow(clippy::disallowed_methods)] // sh, python3 and the system's tools
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.bin_dir.clone()];
        dirs.extend(std::env::split_paths(&path));
        cmd.env_clear()
            .env("PATH", std::env::join_paths(dirs).expect("PATH"))
            .env("HOME", self.home())
            .env("XDG_RUNTIME_DIR", self.root.path().join("run"))
            .env("XDG_CONFIG_HOME", self.home().join(".config"))
            .env("XDG_DATA_HOME", self.home().join(".local/share"))
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("TERM", "xterm")
            .current_dir(self.work());
        cmd
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else if c != '\r' {
            out.push(c);
        }
    }
    out
}

/// Runs the wizard in a PTY, pressing Enter at each question (every default), and returns
/// the whole screen.
fn run_wizard(m: &Machine) -> String {
    // `stty echo` first: the terminal a person has.
    let mut cmd = m.command("sh");
    cmd.arg("-c")
        .arg("stty echo && exec kite-setup --sandbox init");
    let mut pty = Session::spawn(cmd).expect("spawn kite-setup in a PTY");
    pty.set_expect_timeout(Some(Duration::from_secs(60)));
    let mut seen = String::new();
    let expect = |pty: &mut expectrl::session::OsSession, text: &str, seen: &mut String| match pty
        .expect(text)
    {
        Ok(c) => seen.push_str(&String::from_utf8_lossy(c.as_bytes())),
        Err(e) => panic!(
            "waiting for {text:?}: {e}\n--- screen so far:\n{}",
            strip_ansi(seen)
        ),
    };
    for question in [
        "play the browser's part",
        "Your Zerodha client ID",
        "Which plan",
        "Where will your bot send orders from?",
        "Register 127.0.0.1",
    ] {
        expect(&mut pty, question, &mut seen);
        pty.send("\r").expect("type into the PTY");
    }
    expect(&mut pty, "Next:", &mut seen);
    if let Ok(c) = pty.expect(Eof) {
        seen.push_str(&String::from_utf8_lossy(c.as_bytes()));
    }
    let code = match pty.get_process().wait().expect("wait") {
        WaitStatus::Exited(_, code) => code,
        other => panic!("kite-setup did not exit normally: {other:?}\n{seen}"),
    };
    let screen = strip_ansi(&seen);
    assert_eq!(code, 0, "the wizard failed:\n{screen}");
    screen
}

/// The commands under "Next:", comments cut off.
fn next_commands(screen: &str) -> Vec<String> {
    screen
        .split("Next:\n")
        .nth(1)
        .expect("the wizard printed Next:")
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split("   # ").next().unwrap_or(l).trim().to_string())
        .collect()
}

const BOT: &str = r#"import os
assert os.environ["KITE_API_KEY"], "no api key"
assert os.environ["KITE_ACCESS_TOKEN"], "no access token"
print("bot ran")
"#;

#[test]
fn the_readme_quick_start_works_on_a_headless_machine_with_no_secret_service() {
    let m = Machine::new();
    std::fs::write(m.work().join("bot.py"), BOT).expect("bot.py");
    let screen = run_wizard(&m);
    assert!(
        screen.contains("No OS keyring here"),
        "this machine has no Secret Service, and the wizard says so:\n{screen}"
    );
    let next = next_commands(&screen);
    assert_eq!(next.len(), 3, "{next:?}\n{screen}");
    for line in &next {
        assert!(line.contains("kite-setup --sandbox "), "{line}");
        // `eval "$(…)"` only proves itself if the shell then has the variables.
        let script = if line.starts_with("eval ") {
            format!("{line} && test -n \"$KITE_API_KEY\" && test -n \"$KITE_ACCESS_TOKEN\"")
        } else {
            line.clone()
        };
        let out = m
            .command("sh")
            .arg("-c")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .expect("run sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "`{line}` failed ({:?}):\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}",
            out.status.code()
        );
        if line.contains("bot.py") {
            assert_eq!(stdout, "bot ran\n", "{stderr}");
        }
    }
    // And the doctor agrees the profile is usable (its verdict on the redirect port is
    // left out: another test's wizard may hold that port at this moment).
    let doctor = m
        .command("kite-setup")
        .args(["--sandbox", "doctor"])
        .stdin(Stdio::null())
        .output()
        .expect("doctor");
    let report = String::from_utf8_lossy(&doctor.stderr);
    for line in ["[ok  ] credentials", "[ok  ] session          Kite accepts"] {
        assert!(report.contains(line), "{line}:\n{report}");
    }
    assert_no_secret_on_disk_outside_the_store(&m.home());
    a_family_member_joins_the_app(&m);
}

/// The same newcomer sets up a family member's profile: the wizard offers the app that is
/// there, plays the console's part (a sandbox account added to the app's client IDs) and
/// the browser's (the member's login); the member's bot then runs, and the app's secret
/// is still stored once.
fn a_family_member_joins_the_app(m: &Machine) {
    let mut cmd = m.command("sh");
    cmd.arg("-c")
        .arg("stty echo && exec kite-setup --sandbox --profile spouse init");
    let mut pty = Session::spawn(cmd).expect("spawn kite-setup in a PTY");
    pty.set_expect_timeout(Some(Duration::from_secs(60)));
    let mut seen = String::new();
    for question in [
        "Which app will this profile use?",
        "Which app?",
        "play the browser's part",
        "Create a family member's account in the sandbox",
    ] {
        match pty.expect(question) {
            Ok(c) => seen.push_str(&String::from_utf8_lossy(c.as_bytes())),
            Err(e) => panic!("waiting for {question:?}: {e}\n{}", strip_ansi(&seen)),
        }
        pty.send("\r").expect("type into the PTY");
    }
    // Step 7 asks only what this machine's orders need: Enter until the summary.
    pty.set_expect_timeout(Some(Duration::from_secs(3)));
    for _ in 0..20 {
        match pty.expect("Next:") {
            Ok(c) => {
                seen.push_str(&String::from_utf8_lossy(c.as_bytes()));
                break;
            }
            Err(expectrl::Error::ExpectTimeout) => pty.send("\r").expect("type"),
            Err(e) => panic!("{e}\n{}", strip_ansi(&seen)),
        }
    }
    pty.set_expect_timeout(Some(Duration::from_secs(30)));
    if let Ok(c) = pty.expect(Eof) {
        seen.push_str(&String::from_utf8_lossy(c.as_bytes()));
    }
    let code = match pty.get_process().wait().expect("wait") {
        WaitStatus::Exited(_, code) => code,
        other => panic!("kite-setup did not exit normally: {other:?}"),
    };
    let screen = strip_ansi(&seen);
    assert_eq!(code, 0, "the family wizard failed:\n{screen}");
    assert!(
        screen.contains("added it to the app's client IDs"),
        "{screen}"
    );

    let exec = next_commands(&screen)
        .into_iter()
        .find(|l| l.contains("bot.py"))
        .expect("an exec line");
    assert!(exec.contains("--profile spouse"), "{exec}");
    let out = m
        .command("sh")
        .arg("-c")
        .arg(&exec)
        .stdin(Stdio::null())
        .output()
        .expect("run sh");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bot ran\n");

    let config: toml::Value = toml::from_str(
        &std::fs::read_to_string(m.home().join(".config/kite-setup/config.toml")).unwrap(),
    )
    .unwrap();
    let profiles = &config["sandbox_profiles"];
    assert_eq!(profiles["default"]["app"].as_str(), Some("default"));
    assert_eq!(
        profiles["spouse"]["app"].as_str(),
        Some("default"),
        "one app"
    );
    assert_ne!(
        profiles["spouse"]["client_id"],
        profiles["default"]["client_id"]
    );
    let store: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            m.home()
                .join(".config/kite-setup/sandbox-store/secrets.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let names: Vec<&String> = store.as_object().unwrap().keys().collect();
    let app_entries = names.iter().filter(|n| n.ends_with("/app")).count();
    assert_eq!(app_entries, 1, "the secret is stored once: {names:?}");
    assert!(
        names.iter().any(|n| n.as_str() == "sandbox/spouse/session"),
        "{names:?}"
    );
    assert_no_secret_on_disk_outside_the_store(&m.home());
}

/// The plaintext sandbox store is the one place secrets may be on this machine; the
/// metadata file holds none.
fn assert_no_secret_on_disk_outside_the_store(home: &Path) {
    let config = home.join(".config/kite-setup/config.toml");
    let text = std::fs::read_to_string(&config).expect("config.toml");
    assert!(!text.contains("api_secret"), "{text}");
    assert!(!text.contains("access_token"), "{text}");
}
