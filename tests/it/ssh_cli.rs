//! `push` and `import` over a real OpenSSH: a throwaway `sshd` on a free loopback port
//! (its own host key, one authorized key, `UsePAM no`), a client with its own
//! `ssh_config` and known_hosts through `KITE_SETUP_SSH_COMMAND`. The laptop side is the
//! usual world (a real Secret Service, a sandbox process); the server side has its own
//! HOME, config and data dirs, no D-Bus, so a new profile lands in the kernel user
//! keyring, as on a headless server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cli::{BIN, Run, World, free_port, run_command};

/// A throwaway sshd and the ssh client setup that reaches it (plus one host that is down).
struct SshServer {
    dir: tempfile::TempDir,
    child: Child,
    addr: String,
    port: u16,
    /// The server side's own config and data dirs.
    server_config: PathBuf,
}

impl SshServer {
    /// On 127.0.0.1 in this network namespace.
    fn start() -> Self {
        Self::start_at(None, "127.0.0.1", free_port())
    }

    /// On `addr:port`, inside network namespace `netns` when given (its sshd is started
    /// with `ip netns exec`).
    fn start_at(netns: Option<&str>, addr: &str, port: u16) -> Self {
        std::fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        for key in ["hostkey", "userkey"] {
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", ""])
                .arg("-f")
                .arg(d.join(key))
                .status()
                .expect("ssh-keygen (openssh-client)");
            assert!(ok.success(), "ssh-keygen failed");
        }
        std::fs::copy(d.join("userkey.pub"), d.join("authorized_keys")).expect("authorized_keys");
        let home = d.join("server-home");
        let server_config = d.join("server-config");
        let server_data = d.join("server-data");
        for p in [&home, &server_config, &server_data] {
            std::fs::create_dir_all(p).expect("server dirs");
        }
        let bin_dir = Path::new(BIN).parent().expect("bin dir");
        let user = whoami();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress {addr}\nHostKey {d}/hostkey\n\
                 AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
                 PermitRootLogin yes\nPidFile none\nAllowUsers {user}\n\
                 SetEnv HOME={home} KITE_SETUP_CONFIG_DIR={cfg} KITE_SETUP_DATA_DIR={data} \
                 PATH={bin}:/usr/local/bin:/usr/bin:/bin NO_PROXY=127.0.0.1 NO_COLOR=1\n",
                d = d.display(),
                home = home.display(),
                cfg = server_config.display(),
                data = server_data.display(),
                bin = bin_dir.display(),
            ),
        )
        .expect("sshd_config");
        let host_pub = std::fs::read_to_string(d.join("hostkey.pub")).expect("host key");
        std::fs::write(d.join("known_hosts"), format!("[{addr}]:{port} {host_pub}"))
            .expect("known_hosts");
        let down_port = free_port();
        let host = |name: &str, port: u16| {
            format!(
                "Host {name}\n  HostName {addr}\n  Port {port}\n  User {user}\n  \
                 IdentityFile {d}/userkey\n  IdentitiesOnly yes\n  \
                 UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking yes\n  \
                 BatchMode yes\n  LogLevel ERROR\n  ConnectTimeout 5\n",
                d = d.display()
            )
        };
        std::fs::write(
            d.join("ssh_config"),
            format!("{}{}", host("srv", port), host("down", down_port)),
        )
        .expect("ssh_config");
        // A wrapper that records every argv ssh is started with and what it is given on
        // standard input, then runs the real client.
        std::fs::write(
            d.join("ssh-wrapper"),
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >> {d}/argv.log\n\
                 tee -a {d}/stdin.log | ssh -F {d}/ssh_config \"$@\"\n",
                d = d.display()
            ),
        )
        .expect("wrapper");
        chmod_x(&d.join("ssh-wrapper"));
        let mut sshd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "/usr/sbin/sshd"]);
                c
            }
            None => Command::new("/usr/sbin/sshd"),
        };
        let child = sshd
            .arg("-D")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start /usr/sbin/sshd (openssh-server)");
        let server = Self {
            dir,
            child,
            addr: addr.to_string(),
            port,
            server_config,
        };
        server.wait_ready();
        server
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn wait_ready(&self) {
        let start = Instant::now();
        while std::net::TcpStream::connect((self.addr.as_str(), self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "sshd did not listen: {}",
                std::fs::read_to_string(self.path().join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `KITE_SETUP_SSH_COMMAND` for the laptop side.
    fn ssh_command(&self) -> String {
        self.path().join("ssh-wrapper").display().to_string()
    }

    /// A new SSH session on `srv` running `command` (a shell line), with `stdin`.
    fn session(&self, command: &str, stdin: &str) -> Run {
        let mut cmd = self.ssh();
        cmd.args(["-T", "srv", command]);
        run_command(cmd, stdin)
    }

    /// `ssh -F CONFIG` for this server.
    fn ssh(&self) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-F").arg(self.path().join("ssh_config"));
        cmd
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).unwrap_or_default()
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python with the official SDK, by its absolute path: the server side has its own
/// HOME, so version-manager shims there would not find it.
fn python() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn chmod_x(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A profile name of its own: the kernel user keyring is shared by every process of the
/// user, so two test runs must never file entries under the same name.
/// Made from the server's (unique) temp dir name.
fn unique_profile(server: &SshServer) -> String {
    let tag: String = server
        .path()
        .file_name()
        .expect("temp dir name")
        .to_string_lossy()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    format!("ssh{}{tag}", std::process::id())
}

/// Removes the server-side profile (its kernel keyring entries) even when a test fails.
struct ServerProfile<'a> {
    server: &'a SshServer,
    line: String,
}

impl Drop for ServerProfile<'_> {
    fn drop(&mut self) {
        let _ = self
            .server
            .session(&format!("{} remove --yes", self.line), "");
    }
}

const SDK_SCRIPT: &str = r#"import os, sys
from kiteconnect import KiteConnect
kite = KiteConnect(api_key=os.environ["KITE_API_KEY"], root=sys.argv[1])
kite.set_access_token(os.environ["KITE_ACCESS_TOKEN"])
print(kite.profile()["user_id"])
"#;

#[test]
fn push_to_two_hosts_one_down_then_the_server_runs_the_sdk_in_a_new_session() {
    let w = World::new();
    let server = SshServer::start();
    let profile = unique_profile(&server);
    let app = w.create_app();
    let mut init = vec!["--profile", profile.as_str()];
    init.extend(w.init_args(&app));
    w.run(&init, &format!("{}\n", app.api_secret)).expect(0);
    let line = format!(
        "kite-setup --profile {profile} --sandbox-url {}",
        w.sandbox.url
    );
    let _cleanup = ServerProfile {
        server: &server,
        line: line.clone(),
    };

    let push = w
        .run_env(
            &["--profile", &profile, "push", "srv", "down"],
            "",
            &[("KITE_SETUP_SSH_COMMAND", &server.ssh_command())],
        )
        .expect(1);
    assert!(
        push.stderr.contains(&format!(
            "✓ srv: stored as profile {profile} ({})",
            w.sandbox.client_id
        )),
        "{}",
        push.stderr
    );
    assert!(
        push.stderr.contains("kernel keyring"),
        "the server chose the kernel keyring: {}",
        push.stderr
    );
    assert!(
        push.stderr
            .contains("✗ down: could not reach down over SSH: ssh: connect to host 127.0.0.1"),
        "{}",
        push.stderr
    );
    assert_eq!(
        push.stderr.lines().filter(|l| l.starts_with('✓')).count(),
        1
    );

    // The wire: argv never carries a secret or the token; stdin carries the token but
    // not the api_secret (no --with-app).
    let token = server
        .session(&format!("{line} token"), "")
        .expect(0)
        .stdout
        .trim()
        .to_string();
    assert!(token.len() > 8, "a token on the server: {token:?}");
    let argv = server.log("argv.log");
    assert_eq!(argv.lines().count(), 2, "one ssh per host: {argv}");
    for secret in [&token, &app.api_secret, &app.api_key] {
        assert!(
            !argv.contains(secret.as_str()),
            "a secret in ssh's argv: {argv}"
        );
    }
    assert!(argv.contains(&format!("kite-setup --profile {profile} --sandbox-url")));
    let sent = server.log("stdin.log");
    assert!(sent.contains(&token), "the token travels on stdin");
    assert!(
        !sent.contains(&app.api_secret),
        "the api_secret crossed the wire"
    );

    // A new session, after the push's session ended: the store still has it, the SDK
    // works through exec, status says where it came from, doctor names the lifetime.
    let sdk = server
        .session(
            &format!(
                "{line} exec -- {} -c '{SDK_SCRIPT}' {}",
                python(),
                w.sandbox.api_url
            ),
            "",
        )
        .expect(0);
    assert_eq!(sdk.stdout.trim(), w.sandbox.client_id);
    let status = server.session(&format!("{line} status"), "").expect(0);
    assert!(
        status.stderr.contains("session     pushed from "),
        "{}",
        status.stderr
    );
    assert!(
        status.stderr.contains("(SSH 127.0.0.1) at "),
        "{}",
        status.stderr
    );
    assert!(
        status.stderr.contains("api_secret  not stored"),
        "{}",
        status.stderr
    );
    let doctor = server.session(&format!("{line} doctor"), "");
    let said = format!("{}{}", doctor.stdout, doctor.stderr);
    assert!(
        said.lines().any(|l| l.contains("lifetime")
            && l.contains("kept until reboot: outlives SSH sessions")
            && l.contains("lost at reboot")),
        "{said}"
    );
    // The server never saw the api_secret: not in its files.
    for file in walk(&server.server_config) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(!text.contains(&app.api_secret), "{}", file.display());
        assert!(!text.contains(&token), "{}", file.display());
    }
    // A login there is refused with the way out (the secret stayed on the laptop).
    let login = server.session(&format!("{line} login --force"), "");
    assert_eq!(login.code, 4, "{}", login.stderr);
    assert!(
        login.stderr.contains("holds a pushed session only"),
        "{}",
        login.stderr
    );
}

#[test]
fn import_refuses_a_token_that_is_not_the_profiles_client() {
    let w = World::new();
    let server = SshServer::start();
    let profile = unique_profile(&server);
    let app = w.set_up();
    let session: serde_json::Value = serde_json::from_str(
        &w.keyring
            .lookup("sandbox/default/session")
            .expect("a session on the laptop"),
    )
    .unwrap();
    let payload = serde_json::json!({
        "kite_setup_push": 1,
        "client_id": "ZZ9999",
        "plan": "personal",
        "redirect_url": app.redirect_url,
        "api_key": app.api_key,
        "access_token": session["access_token"],
        "user_id": "ZZ9999",
        "login_time": session["login_time"],
        "expires_at": session["expires_at"],
        "from": "laptop",
    });
    let line = format!(
        "kite-setup --profile {profile} --sandbox-url {}",
        w.sandbox.url
    );
    let _cleanup = ServerProfile {
        server: &server,
        line: line.clone(),
    };
    let import = server.session(&format!("{line} import"), &format!("{payload}\n"));
    assert_eq!(import.code, 1, "{}", import.stderr);
    let reply: serde_json::Value =
        serde_json::from_str(import.stdout.trim()).expect("one JSON line");
    assert_eq!(reply["ok"], false);
    let error = reply["error"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "belongs to {}, not to client ZZ9999",
            w.sandbox.client_id
        )),
        "{error}"
    );
    // Nothing stored: the profile does not exist on the server.
    let status = server.session(&format!("{line} token"), "");
    assert_eq!(status.code, 4, "{}", status.stderr);
    // Garbage on stdin is a usage error that does not echo it.
    let junk = server.session(&format!("{line} import"), "not-json-SECRETISH\n");
    assert_eq!(junk.code, 2, "{}", junk.stderr);
    assert!(!junk.stderr.contains("SECRETISH") && !junk.stdout.contains("SECRETISH"));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A second host on this machine: a network namespace (its own loopback) joined to this
/// one by a veth pair. Everything is deleted on drop, also when the test fails.
struct Netns {
    name: String,
    veth: String,
    /// This side's and the namespace's address on the pair.
    here: String,
    there: String,
}

impl Netns {
    fn create() -> Self {
        let id = std::process::id() % 100_000;
        let octet = 1 + id % 250;
        let ns = Self {
            name: format!("kstest{id}"),
            veth: format!("ksa{id}"),
            here: format!("10.213.{octet}.1"),
            there: format!("10.213.{octet}.2"),
        };
        let peer = format!("ksb{id}");
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), ns.name.clone()],
            vec![
                "link".into(),
                "add".into(),
                ns.veth.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                peer.clone(),
            ],
            vec![
                "link".into(),
                "set".into(),
                peer.clone(),
                "netns".into(),
                ns.name.clone(),
            ],
            vec![
                "addr".into(),
                "add".into(),
                format!("{}/30", ns.here),
                "dev".into(),
                ns.veth.clone(),
            ],
            vec!["link".into(), "set".into(), ns.veth.clone(), "up".into()],
        ];
        for step in steps {
            ip(&step);
        }
        for step in [
            vec![
                "addr".to_string(),
                "add".into(),
                format!("{}/30", ns.there),
                "dev".into(),
                peer.clone(),
            ],
            vec!["link".into(), "set".into(), peer.clone(), "up".into()],
            vec!["link".into(), "set".into(), "lo".into(), "up".into()],
        ] {
            let mut all = vec![
                "netns".to_string(),
                "exec".into(),
                ns.name.clone(),
                "ip".into(),
            ];
            all.extend(step);
            ip(&all);
        }
        ns
    }
}

/// `ip ARGS`, which must succeed (iproute2, as root).
fn ip(args: &[String]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .output();
    }
}

#[test]
fn remote_login_through_a_tunnel_into_another_network_namespace() {
    let w = World::new();
    let ns = Netns::create();
    let server = SshServer::start_at(Some(&ns.name), &ns.there, 2222);
    let profile = unique_profile(&server);
    let sandbox_port = url::Url::parse(&w.sandbox.url).unwrap().port().unwrap();
    // The server's "Kite": the namespace has its own loopback, so a session that stays
    // open forwards 127.0.0.1:PORT there to the sandbox here (as Kite is reached from
    // a real server).
    let kite_link = server
        .ssh()
        .args(["-N", "-o", "ExitOnForwardFailure=yes", "-R"])
        .arg(format!("{sandbox_port}:127.0.0.1:{sandbox_port}"))
        .arg("srv")
        .stdin(Stdio::null())
        .spawn()
        .expect("ssh -R");
    let kite_link = Kill(kite_link);
    let line = format!(
        "kite-setup --profile {profile} --sandbox-url {}",
        w.sandbox.url
    );
    let start = Instant::now();
    while !Command::new("ip")
        .args(["netns", "exec", &ns.name, "bash", "-c"])
        .arg(format!("echo > /dev/tcp/127.0.0.1/{sandbox_port}"))
        .stderr(Stdio::null())
        .status()
        .expect("bash")
        .success()
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the Kite link did not come up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The app and the profile live on the server; the secret goes there on stdin.
    let app = w.create_app();
    let init = server.session(
        &format!(
            "{line} --store keyutils init --no-input --skip-verify --client-id {} --api-key {} \
             --redirect-url {} --plan personal --api-secret-stdin",
            w.sandbox.client_id, app.api_key, app.redirect_url
        ),
        &format!("{}\n", app.api_secret),
    );
    assert_eq!(init.code, 0, "{}", init.stderr);
    let _cleanup = ServerProfile {
        server: &server,
        line: line.clone(),
    };

    // The laptop: its browser follows the login URL; the redirect to 127.0.0.1:PORT is
    // the tunnel here and the server's listener there.
    let login = w
        .run_env(
            &[
                "--profile",
                &profile,
                "remote",
                "login",
                "srv",
                "--timeout",
                "20",
            ],
            "",
            &[("KITE_SETUP_SSH_COMMAND", &server.ssh_command())],
        )
        .expect(0);
    assert!(
        login.stderr.contains("Logged in as ") && login.stderr.contains(&w.sandbox.client_id),
        "{}",
        login.stderr
    );
    assert!(
        login.stderr.contains("Log in to Kite at:"),
        "{}",
        login.stderr
    );
    assert!(
        !login.stderr.contains("ssh -N -L"),
        "no tunnel advice through the tunnel: {}",
        login.stderr
    );
    let token = server
        .session(&format!("{line} token"), "")
        .expect(0)
        .stdout
        .trim()
        .to_string();
    assert!(token.len() > 8);
    // Nothing secret on the laptop (its files, its keyring) or in ssh's argv.
    for (path, bytes) in w.files_on_disk() {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&app.api_secret) && !text.contains(&token),
            "{}",
            path.display()
        );
    }
    assert_eq!(
        w.keyring.lookup(&format!("sandbox/{profile}/session")),
        None
    );
    let argv = server.log("argv.log");
    assert!(
        argv.contains(&format!(
            "-L {0}:127.0.0.1:{0}",
            url::Url::parse(&app.redirect_url).unwrap().port().unwrap()
        )),
        "{argv}"
    );
    for secret in [&token, &app.api_secret] {
        assert!(!argv.contains(secret.as_str()), "{argv}");
        assert!(!server.log("stdin.log").contains(secret.as_str()));
    }

    // `login` started in an SSH session on the server prints the tunnel command for the
    // laptop (this server, as the laptop reaches it), then waits as usual.
    let redirect_port = url::Url::parse(&app.redirect_url).unwrap().port().unwrap();
    let direct = server.session(
        &format!("{line} login --force --no-browser --timeout 1"),
        "",
    );
    assert!(
        direct.stderr.contains(&format!(
            "  ssh -N -L {redirect_port}:127.0.0.1:{redirect_port} -p 2222 {}@{}\n",
            whoami(),
            ns.there
        )),
        "{}",
        direct.stderr
    );
    assert!(
        direct.stderr.contains("Log in to Kite at:"),
        "{}",
        direct.stderr
    );
    assert_ne!(direct.code, 0, "no redirect came: {}", direct.stderr);

    // A taken local port is refused with the fix, before any SSH login.
    let port = url::Url::parse(&app.redirect_url).unwrap().port().unwrap();
    let _busy = std::net::TcpListener::bind(("127.0.0.1", port)).expect("hold the port");
    let refused = w.run_env(
        &["--profile", &profile, "remote", "login", "srv", "--force"],
        "",
        &[("KITE_SETUP_SSH_COMMAND", &server.ssh_command())],
    );
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains(&format!("error: port {port} on this machine is taken")),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("hint: Kite redirects to 127.0.0.1:"),
        "{}",
        refused.stderr
    );
    drop(kite_link);
}

/// Kills a helper process on drop (also when the test fails).
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `remove --yes` through a command runner on drop (also when the test fails).
struct Forget<'a>(&'a dyn Fn(&[&str], &str) -> Run);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        let _ = (self.0)(&["remove", "--yes"], "");
    }
}

/// Whether any process runs as `uid` now (from /proc).
fn processes_of(uid: u32) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let real = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|u| u.parse::<u32>().ok());
        n += usize::from(real == Some(uid));
    }
    n
}

/// What a server relies on: a session imported by a user's short-lived process (an SSH
/// session) is still in the kernel user keyring after that user's LAST process has
/// exited, and a later process of the same user reads it (the bot, started later).
#[test]
fn an_import_outlives_the_users_last_process_in_the_kernel_keyring() {
    let w = World::new();
    let app = w.set_up();
    let session: serde_json::Value = serde_json::from_str(
        &w.keyring
            .lookup("sandbox/default/session")
            .expect("a session on the laptop"),
    )
    .unwrap();
    let token = session["access_token"].as_str().unwrap().to_string();
    let payload = serde_json::json!({
        "kite_setup_push": 1,
        "client_id": w.sandbox.client_id,
        "plan": "personal",
        "redirect_url": app.redirect_url,
        "api_key": app.api_key,
        "access_token": token,
        "user_id": w.sandbox.client_id,
        "login_time": session["login_time"],
        "expires_at": session["expires_at"],
        "from": "laptop",
    });
    // A UID with no process and no account: nothing else keeps its keyring alive.
    let uid = 40_000 + std::process::id() % 20_000;
    assert_eq!(processes_of(uid), 0, "uid {uid} is in use");
    let home = tempfile::tempdir().expect("temp dir");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
    }
    let as_user = |args: &[&str], stdin: &str| {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .arg("--clear-groups")
            .arg(BIN)
            .args(["--profile", "lasting", "--sandbox-url", &w.sandbox.url])
            .args(args)
            .env_clear()
            .env("HOME", home.path())
            .env("KITE_SETUP_CONFIG_DIR", home.path().join("config"))
            .env("KITE_SETUP_DATA_DIR", home.path().join("data"))
            .env("NO_PROXY", "127.0.0.1")
            .env("NO_COLOR", "1");
        run_command(cmd, stdin)
    };
    let _cleanup = Forget(&as_user);
    let import = as_user(&["import"], &format!("{payload}\n"));
    assert_eq!(import.code, 0, "{}", import.stderr);
    assert!(
        import.stdout.contains("\"store\":\"Linux kernel keyring"),
        "{}",
        import.stdout
    );
    let start = Instant::now();
    while processes_of(uid) > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "uid {uid} still runs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let read = as_user(&["token"], "");
    assert_eq!(read.code, 0, "{}", read.stderr);
    assert_eq!(read.stdout.trim(), token);
}
