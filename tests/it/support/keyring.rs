//! A real, private, headless Secret Service for tests: its own `dbus-daemon` (no service
//! activation, so nothing else can start on it) and a `gnome-keyring-daemon` with a
//! throwaway home, data and runtime directory. Each test starts its own session; `Drop`
//! kills both daemons by PID.
//!
//! Pass `envs()` to child processes (the library reads the bus address from the
//! environment, which a test cannot change in-process). Needs the apt packages
//! `dbus gnome-keyring libsecret-tools` (and `keyutils` for the kernel keyring tests).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PACKAGES: &str =
    "apt-get install -y --no-install-recommends dbus gnome-keyring libsecret-tools keyutils";

/// The password of every test keyring (only ever a test value).
pub const PASSWORD: &str = "kite-setup-test-keyring";

/// How long to wait for `org.freedesktop.secrets` to get an owner.
const OWNER_DEADLINE: Duration = Duration::from_secs(5);

pub struct KeyringSession {
    dir: tempfile::TempDir,
    address: String,
    dbus: Option<Child>,
    keyring: Option<Child>,
}

/// A command that names the packages to install when the program is missing.
fn spawn(cmd: &mut Command) -> Child {
    let program = cmd.get_program().to_string_lossy().to_string();
    match cmd.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`{program}` is not installed; install the test packages: {PACKAGES}")
        }
        Err(e) => panic!("could not start `{program}`: {e}"),
    }
}

fn private_dir(path: &Path) -> PathBuf {
    std::fs::create_dir_all(path).expect("create test dir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).expect("chmod 0700");
    }
    path.to_path_buf()
}

impl KeyringSession {
    /// A bus with an unlocked `login` collection (the default alias), ready for writes.
    pub fn start() -> Self {
        let mut s = Self::bus_only();
        s.start_keyring(Some(PASSWORD));
        s
    }

    /// A bus whose Secret Service has a **locked** `login` collection: the keyring is
    /// created (with one item, so the file exists) and unlocked, the daemon stopped, and a
    /// new daemon started without `--unlock`. Any unlock needs a prompt, which fails here
    /// (no `org.gnome.keyring.SystemPrompter` on this bus).
    pub fn start_locked() -> Self {
        let mut s = Self::start();
        s.store("_setup/locked-marker", "marker");
        s.kill_keyring();
        s.wait_owner(false);
        s.start_keyring(None);
        s
    }

    /// A D-Bus session bus with no Secret Service on it (and none activatable).
    pub fn bus_only() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("kite-keyring-")
            .tempdir()
            .expect("temp dir");
        for sub in ["run", "data", "home", "config", "cache"] {
            private_dir(&dir.path().join(sub));
        }
        let socket = dir.path().join("run").join("bus");
        let config = dir.path().join("bus.conf");
        // A session bus with no <servicedir>: nothing is D-Bus-activated on it (the
        // system's gnome-keyring .service file would start a daemon nobody unlocked).
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .expect("write bus config");
        let mut dbus = spawn(
            Command::new("dbus-daemon")
                .arg(format!("--config-file={}", config.display()))
                .args(["--nofork", "--print-address"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                // Only the harmless "Failed to set fd limit" line goes there.
                .stderr(Stdio::null()),
        );
        let mut line = String::new();
        let stdout = dbus.stdout.take().expect("dbus-daemon stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the bus address");
        let address = line.trim().to_string();
        if address.is_empty() {
            let _ = dbus.kill();
            let _ = dbus.wait();
            panic!("dbus-daemon printed no address (is the `dbus` package installed? {PACKAGES})");
        }
        Self {
            dir,
            address,
            dbus: Some(dbus),
            keyring: None,
        }
    }

    /// No D-Bus at all: the session bus address points at a socket nobody listens on.
    pub fn no_dbus() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("kite-keyring-")
            .tempdir()
            .expect("temp dir");
        for sub in ["run", "data", "home", "config", "cache"] {
            private_dir(&dir.path().join(sub));
        }
        let address = format!(
            "unix:path={}",
            dir.path().join("run").join("no-bus-here").display()
        );
        Self {
            dir,
            address,
            dbus: None,
            keyring: None,
        }
    }

    /// A stale bus: the socket file is there but nobody listens (connection refused), as
    /// after a crashed session bus.
    #[cfg(unix)]
    #[allow(dead_code)] // tests/keyring_store.rs uses it, tests/it does not
    pub fn dead_dbus() -> Self {
        let s = Self::no_dbus();
        let socket = s.dir.path().join("run").join("no-bus-here");
        drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind a socket"));
        s
    }

    /// The environment a child process needs to use this session (and only it).
    pub fn envs(&self) -> Vec<(String, String)> {
        let p = |sub: &str| self.dir.path().join(sub).display().to_string();
        vec![
            ("DBUS_SESSION_BUS_ADDRESS".into(), self.address.clone()),
            ("XDG_RUNTIME_DIR".into(), p("run")),
            ("XDG_DATA_HOME".into(), p("data")),
            ("XDG_CONFIG_HOME".into(), p("config")),
            ("XDG_CACHE_HOME".into(), p("cache")),
            ("HOME".into(), p("home")),
        ]
    }

    /// A scratch directory inside the session (e.g. for a config dir).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The keyring file of the `login` collection (to prove nothing was written).
    pub fn login_keyring_file(&self) -> PathBuf {
        self.dir.path().join("data/keyrings/login.keyring")
    }

    /// PID of the running gnome-keyring-daemon, if any.
    pub fn keyring_pid(&self) -> Option<u32> {
        self.keyring.as_ref().map(Child::id)
    }

    /// `secret-tool lookup service kite-setup username <username>`.
    pub fn lookup(&self, username: &str) -> Option<String> {
        let out = self
            .command("secret-tool")
            .args(["lookup", "service", "kite-setup", "username", username])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("secret-tool: {e}; install: {PACKAGES}"));
        if out.status.success() {
            Some(String::from_utf8(out.stdout).expect("utf-8 secret"))
        } else {
            None
        }
    }

    /// `secret-tool store service kite-setup username <username>` with `value` on stdin.
    pub fn store(&self, username: &str, value: &str) {
        let mut child = spawn(
            self.command("secret-tool")
                .args(["store", "--label", &format!("test {username}")])
                .args(["service", "kite-setup", "username", username])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        );
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(value.as_bytes())
            .expect("write value");
        let out = child.wait_with_output().expect("secret-tool store");
        assert!(
            out.status.success(),
            "secret-tool store failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A command with this session's environment.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.envs(self.envs());
        cmd
    }

    /// Freezes the Secret Service daemon (SIGSTOP): it keeps its bus name and never
    /// answers, like a keyring waiting for a prompt nobody sees.
    pub fn freeze_keyring(&self) {
        let pid = self.keyring_pid().expect("a keyring daemon");
        let status = Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .expect("kill -STOP");
        assert!(status.success(), "kill -STOP {pid}");
    }

    fn start_keyring(&mut self, password: Option<&str>) {
        let log =
            std::fs::File::create(self.dir.path().join("gnome-keyring.log")).expect("keyring log");
        let mut cmd = self.command("gnome-keyring-daemon");
        cmd.args(["--foreground", "--components=secrets"])
            .stdout(Stdio::null())
            .stderr(log);
        if password.is_some() {
            cmd.arg("--unlock").stdin(Stdio::piped());
        } else {
            cmd.stdin(Stdio::null());
        }
        let mut child = spawn(&mut cmd);
        if let Some(password) = password {
            // The password on stdin creates and unlocks the `login` collection; closing
            // stdin ends the read.
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(password.as_bytes()).expect("password");
        }
        self.keyring = Some(child);
        self.wait_owner(true);
    }

    fn kill_keyring(&mut self) {
        if let Some(mut child) = self.keyring.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Polls `NameHasOwner(org.freedesktop.secrets)` every 5 ms until it is `owned`.
    fn wait_owner(&mut self, owned: bool) {
        let started = Instant::now();
        let want = if owned { "true" } else { "false" };
        loop {
            let out = self
                .command("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ])
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("dbus-send: {e}; install: {PACKAGES}"));
            if String::from_utf8_lossy(&out.stdout).contains(&format!("boolean {want}")) {
                return;
            }
            if let Some(child) = self.keyring.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(self.dir.path().join("gnome-keyring.log"))
                    .unwrap_or_default();
                panic!(
                    "gnome-keyring-daemon exited ({status}) before owning org.freedesktop.secrets: {log}"
                );
            }
            assert!(
                started.elapsed() < OWNER_DEADLINE,
                "org.freedesktop.secrets still {} after {OWNER_DEADLINE:?} on {}",
                if owned { "unowned" } else { "owned" },
                self.address
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for KeyringSession {
    fn drop(&mut self) {
        // SIGKILL works on a stopped (SIGSTOP) daemon too.
        self.kill_keyring();
        if let Some(mut child) = self.dbus.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
