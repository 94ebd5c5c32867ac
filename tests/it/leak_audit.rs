//! The secret-leak audit: every command and failure path runs against a real
//! keyring and the sandbox, and for each run we capture stdout, stderr, every file the
//! tool wrote (config dir, data dir, its private TMPDIR), its own `/proc/<pid>/cmdline` and
//! `/proc/<pid>/environ` while it runs, and the sandbox's log. The api_secret and the
//! access token (the canaries: unique random values the sandbox issued) may appear only
//! where the user asked for them: the token on `token`/`env`/`exec` stdout, the secret
//! only with `--with-secret`. The api_key is part of every login URL, so it may be shown
//! on stderr, but never lands in a file or the sandbox log.
#![cfg(target_os = "linux")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::support::cli::{App, World};
use crate::support::keyring::KeyringSession;
use crate::support::sandbox::SandboxProcess;

/// Where a canary may legitimately appear in one scenario.
#[derive(Clone, Copy, Default)]
struct Allowed {
    token_on_stdout: bool,
    secret_on_stdout: bool,
}

/// Everything one run left behind.
struct Captured {
    name: String,
    code: i32,
    stdout: String,
    stderr: String,
    proc_cmdline: Vec<u8>,
    proc_environ: Vec<u8>,
}

struct Audit {
    world: World,
    tmp: PathBuf,
    scenarios: usize,
    places_checked: usize,
    leaks: Vec<String>,
}

impl Audit {
    fn new(world: World) -> Self {
        let tmp = world.keyring.path().join("tool-tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        Self {
            world,
            tmp,
            scenarios: 0,
            places_checked: 0,
            leaks: Vec::new(),
        }
    }

    /// Runs one scenario and returns what it captured (for scenario-specific asserts).
    fn run(&mut self, name: &str, args: &[&str], stdin: &str, allowed: Allowed) -> Captured {
        let mut cmd = self.world.command(args);
        cmd.env("TMPDIR", &self.tmp);
        let cap = capture(name, cmd, stdin);
        self.check(&cap, allowed);
        cap
    }

    fn run_cmd(&mut self, name: &str, cmd: Command, stdin: &str, allowed: Allowed) -> Captured {
        let cap = capture(name, cmd, stdin);
        self.check(&cap, allowed);
        cap
    }

    fn canaries(&self, app: &App) -> Vec<(&'static str, String)> {
        let mut c = vec![("api_secret", app.api_secret.clone())];
        if let Some(s) = self.world.keyring.lookup("sandbox/default/session") {
            let v: serde_json::Value = serde_json::from_str(&s).unwrap();
            c.push((
                "access_token",
                v["access_token"].as_str().unwrap().to_string(),
            ));
        }
        c
    }

    fn check(&mut self, cap: &Captured, allowed: Allowed) {
        self.scenarios += 1;
        assert!(
            !cap.stderr.contains("panicked"),
            "{}: panic\n{}",
            cap.name,
            cap.stderr
        );
        assert_ne!(cap.code, 101, "{}: panic exit", cap.name);
        let _ = allowed;
    }

    /// Looks for every canary in every place this scenario touched.
    fn audit(
        &mut self,
        cap: &Captured,
        allowed: Allowed,
        canaries: &[(&'static str, String)],
        api_key: &str,
    ) {
        let mut places: Vec<(String, Vec<u8>)> = vec![
            ("stderr".into(), cap.stderr.clone().into_bytes()),
            ("/proc/pid/cmdline".into(), cap.proc_cmdline.clone()),
            ("/proc/pid/environ".into(), cap.proc_environ.clone()),
            (
                "sandbox log".into(),
                self.world.sandbox.stderr_log().into_bytes(),
            ),
        ];
        for (path, bytes) in self.world.files_on_disk() {
            places.push((path.display().to_string(), bytes));
        }
        for (path, bytes) in files_under(&self.tmp) {
            places.push((path.display().to_string(), bytes));
        }
        for (kind, value) in canaries {
            let stdout_ok = match *kind {
                "access_token" => allowed.token_on_stdout,
                "api_secret" => allowed.secret_on_stdout,
                _ => false,
            };
            if !stdout_ok && cap.stdout.contains(value.as_str()) {
                self.leaks.push(format!("{}: {kind} on stdout", cap.name));
            }
            for (place, bytes) in &places {
                self.places_checked += 1;
                if contains(bytes, value.as_bytes()) {
                    self.leaks.push(format!("{}: {kind} in {place}", cap.name));
                }
            }
        }
        // The api_key: shown in login URLs on stderr, but never in a file or the sandbox log.
        for (place, bytes) in places
            .iter()
            .filter(|(p, _)| p != "stderr" && !p.starts_with("/proc"))
        {
            self.places_checked += 1;
            if contains(bytes, api_key.as_bytes()) {
                self.leaks.push(format!("{}: api_key in {place}", cap.name));
            }
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
    out
}

/// Runs `cmd`, reading its /proc entries while it runs, and collects its output.
fn capture(name: &str, mut cmd: Command, stdin: &str) -> Captured {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn kite-setup");
    let pid = child.id();
    // Sample /proc while the process lives, keeping the fullest reading taken while it was
    // still kite-setup (after `exec` the same pid is the child, whose environment is meant
    // to carry the token).
    let sampler = std::thread::spawn(move || {
        let (mut cmdline, mut environ) = (Vec::new(), Vec::new());
        let mut seen = false;
        for _ in 0..400 {
            let c = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let e = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            if c.is_empty() && e.is_empty() {
                if seen {
                    break; // gone
                }
            } else {
                seen = true;
                let argv0 = c.split(|b| *b == 0).next().unwrap_or_default();
                if !argv0.ends_with(b"kite-setup") {
                    if cmdline.is_empty() {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        continue; // not kite-setup yet (between fork and exec)
                    }
                    break; // exec'd into the child
                }
                if c.len() > cmdline.len() {
                    cmdline = c;
                }
                if e.len() > environ.len() {
                    environ = e;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        (cmdline, environ)
    });
    let mut input = child.stdin.take().unwrap();
    let text = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    let (proc_cmdline, proc_environ) = sampler.join().unwrap();
    Captured {
        name: name.into(),
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        proc_cmdline,
        proc_environ,
    }
}

fn fault(w: &World, path: &str, spec: serde_json::Value) {
    let mut body = spec;
    body["path"] = path.into();
    body["count"] = body.get("count").cloned().unwrap_or(1.into());
    w.control("/_sandbox/faults", &body);
}

#[test]
fn no_secret_leaks_in_any_scenario() {
    let started = Instant::now();
    let mut a = Audit::new(World::new());
    let app = a.world.create_app();
    let key = app.api_key.clone();
    let none = Allowed::default();
    let token_ok = Allowed {
        token_on_stdout: true,
        secret_on_stdout: false,
    };

    // The detector itself: a planted canary on stderr, stdout and in /proc must be caught.
    let planted = Captured {
        name: "self-check".into(),
        code: 0,
        stdout: app.api_secret.clone(),
        stderr: format!("x{}x", app.api_secret),
        proc_cmdline: Vec::new(),
        proc_environ: format!("K={}", app.api_secret).into_bytes(),
    };
    a.audit(
        &planted,
        none,
        &[("api_secret", app.api_secret.clone())],
        &key,
    );
    assert_eq!(
        a.leaks.len(),
        3,
        "the audit must see planted canaries: {:?}",
        a.leaks
    );
    a.leaks.clear();

    // Failures of init first (nothing stored yet), then a working profile.
    let wrong = a
        .world
        .init_args(&app)
        .iter()
        .map(|s| (*s).to_string())
        .collect::<Vec<_>>();
    let args: Vec<&str> = wrong.iter().map(String::as_str).collect();
    let bad_secret = "WRONGsecretWRONGsecretWRONGsecr1";
    let cases: Vec<(&str, String, i32)> = vec![
        ("init: wrong secret", format!("{bad_secret}\n"), 1),
        ("init: secret equal to the key", format!("{key}\n"), 2),
        (
            "init: secret with quotes",
            format!("'{}'\n", app.api_secret),
            2,
        ),
    ];
    for (name, stdin, code) in cases {
        let cap = a.run(name, &args, &stdin, none);
        assert_eq!(cap.code, code, "{name}: {}", cap.stderr);
        let canaries = vec![
            ("api_secret", app.api_secret.clone()),
            ("api_secret", bad_secret.to_string()),
        ];
        a.audit(&cap, none, &canaries, &key);
    }
    a.world.control(
        &format!("/_sandbox/apps/{key}/subscription"),
        &serde_json::json!({"active": false}),
    );
    let cap = a.run(
        "init: lapsed subscription",
        &args,
        &format!("{}\n", app.api_secret),
        none,
    );
    assert_eq!(cap.code, 1, "{}", cap.stderr);
    a.audit(&cap, none, &[("api_secret", app.api_secret.clone())], &key);
    a.world.control(
        &format!("/_sandbox/apps/{key}/subscription"),
        &serde_json::json!({"active": true}),
    );
    let cap = a.run(
        "init: --skip-verify",
        &[&args[..], &["--skip-verify", "--profile", "unverified"]].concat(),
        &format!("{}\n", app.api_secret),
        none,
    );
    assert_eq!(cap.code, 0, "{}", cap.stderr);
    a.audit(&cap, none, &[("api_secret", app.api_secret.clone())], &key);

    let cap = a.run(
        "init: verified",
        &args,
        &format!("{}\n", app.api_secret),
        none,
    );
    assert_eq!(cap.code, 0, "{}", cap.stderr);
    let canaries = a.canaries(&app);
    assert_eq!(canaries.len(), 2, "a session was stored");
    a.audit(&cap, none, &canaries, &key);

    // The daily commands.
    let daily: Vec<(&str, Vec<&str>, Allowed, i32)> = vec![
        ("login: already valid", vec!["login"], none, 0),
        ("token", vec!["token"], token_ok, 0),
        ("env sh", vec!["env"], token_ok, 0),
        ("env fish", vec!["env", "--format", "fish"], token_ok, 0),
        ("env json", vec!["env", "--format", "json"], token_ok, 0),
        (
            "env powershell",
            vec!["env", "--format", "powershell"],
            token_ok,
            0,
        ),
        (
            "env --with-secret",
            vec!["env", "--with-secret"],
            Allowed {
                token_on_stdout: true,
                secret_on_stdout: true,
            },
            0,
        ),
        (
            "exec printenv",
            vec!["exec", "--", "printenv", "KITE_ACCESS_TOKEN"],
            token_ok,
            0,
        ),
        (
            "exec exit 3",
            vec!["exec", "--", "sh", "-c", "exit 3"],
            none,
            3,
        ),
        (
            "exec missing command",
            vec!["exec", "--", "no-such-command-kite"],
            none,
            127,
        ),
        ("status", vec!["status"], none, 0),
        ("status --json", vec!["status", "--json"], none, 0),
        ("status --check", vec!["status", "--check"], none, 0),
        ("doctor", vec!["doctor"], none, 0),
        ("doctor --json", vec!["--json", "doctor"], none, 0),
        ("completions bash", vec!["completions", "bash"], none, 0),
        ("help", vec!["--help"], none, 0),
        (
            "login --paste: junk",
            vec!["login", "--force", "--paste"],
            none,
            2,
        ),
    ];
    // This machine on the account's IP Whitelist: doctor's order probe passes (exit 0),
    // and its output is audited like the rest.
    a.world.control(
        &format!("/_sandbox/accounts/{}/ips", a.world.sandbox.client_id),
        &serde_json::json!({"ips": ["127.0.0.1"]}),
    );
    for (name, argv, allowed, code) in daily {
        let stdin = if name.contains("paste") {
            "http://127.0.0.1:1/nope?request_token=abc\n"
        } else {
            ""
        };
        let cap = a.run(name, &argv, stdin, allowed);
        assert_eq!(cap.code, code, "{name}: {}", cap.stderr);
        let canaries = a.canaries(&app);
        a.audit(&cap, allowed, &canaries, &key);
    }

    // A dotenv file is where the user asked the token to go; nowhere else.
    let dotenv = a.world.keyring.path().join("outside").join(".env");
    std::fs::create_dir_all(dotenv.parent().unwrap()).unwrap();
    let cap = a.run(
        "env --dotenv",
        &["env", "--dotenv", dotenv.to_str().unwrap()],
        "",
        none,
    );
    assert_eq!(cap.code, 0, "{}", cap.stderr);
    let canaries = a.canaries(&app);
    a.audit(&cap, none, &canaries, &key);
    assert!(
        std::fs::read_to_string(&dotenv)
            .unwrap()
            .contains(&canaries[1].1),
        "the dotenv file has the token"
    );
    assert!(
        !std::fs::read_to_string(&dotenv)
            .unwrap()
            .contains(&app.api_secret)
    );

    // A login that waits for the redirect: /proc is read while it waits.
    {
        let mut cmd = a.world.command(&["login", "--force", "--timeout", "2"]);
        cmd.env("BROWSER", "true").env("TMPDIR", &a.tmp);
        let cap = a.run_cmd("login: waiting, then no redirect", cmd, "", none);
        assert_eq!(cap.code, 1, "{}", cap.stderr);
        assert!(
            !cap.proc_environ.is_empty(),
            "environ was read while the tool ran (cmdline {} bytes: {:?})",
            cap.proc_cmdline.len(),
            String::from_utf8_lossy(&cap.proc_cmdline)
        );
        let canaries = a.canaries(&app);
        a.audit(&cap, none, &canaries, &key);
    }

    // Faults while logging in and checking.
    for (name, path, spec, argv, code) in [
        (
            "login: 503",
            "/session/token",
            serde_json::json!({"status": 503}),
            vec!["login", "--force"],
            1,
        ),
        (
            "login -v: 403 checksum (verbose detail)",
            "/session/token",
            serde_json::json!({"status": 403}),
            vec!["-v", "login", "--force"],
            4,
        ),
        (
            "login: HTML body",
            "/session/token",
            serde_json::json!({"status": 502, "body": "<html>bad gateway</html>"}),
            vec!["login", "--force"],
            1,
        ),
        (
            "login: reset",
            "/session/token",
            serde_json::json!({"reset": true}),
            vec!["login", "--force"],
            1,
        ),
        (
            "status --check: 500",
            "/user/profile",
            serde_json::json!({"status": 500}),
            vec!["status", "--check"],
            1,
        ),
        (
            "logout: 503",
            "/session/token",
            serde_json::json!({"status": 503}),
            vec!["logout"],
            1,
        ),
    ] {
        fault(&a.world, path, spec);
        let cap = a.run(name, &argv, "", none);
        assert_eq!(cap.code, code, "{name}: {}", cap.stderr);
        let canaries = a.canaries(&app);
        a.audit(&cap, none, &canaries, &key);
    }

    // The leak playbook: the console issues a new secret; regenerate swaps it in. Old and
    // new secrets and tokens are all canaries (the scan reports places, never values).
    let before = a.canaries(&app);
    let v = a.world.control(
        &format!("/_sandbox/apps/{key}/regenerate"),
        &serde_json::json!({}),
    );
    let new_secret = v["api_secret"].as_str().unwrap().to_string();
    let cap = a.run(
        "regenerate: no --yes",
        &["regenerate", "--no-input", "--api-secret-stdin"],
        &format!("{new_secret}\n"),
        none,
    );
    assert_eq!(cap.code, 2, "{}", cap.stderr);
    let cap = a.run(
        "regenerate: old secret again",
        &[
            "regenerate",
            "--no-input",
            "--yes",
            "--api-secret-stdin",
            "--no-scan",
        ],
        &format!("{}\n", app.api_secret),
        none,
    );
    assert_eq!(cap.code, 2, "{}", cap.stderr);
    let mut canaries = before.clone();
    canaries.push(("api_secret", new_secret.clone()));
    a.audit(&cap, none, &canaries, &key);
    let history = a.world.keyring.path().join("home").join(".bash_history");
    std::fs::create_dir_all(history.parent().unwrap()).unwrap();
    std::fs::write(
        &history,
        format!("export KITE_API_SECRET={}\n", app.api_secret),
    )
    .unwrap();
    let cap = a.run(
        "regenerate: swap and scan",
        &["regenerate", "--no-input", "--yes", "--api-secret-stdin"],
        &format!("{new_secret}\n"),
        none,
    );
    assert_eq!(cap.code, 0, "{}", cap.stderr);
    assert!(
        cap.stderr.contains(".bash_history:1"),
        "the scan reports the old copy: {}",
        cap.stderr
    );
    std::fs::remove_file(&history).unwrap();
    let rotated = App {
        api_key: key.clone(),
        api_secret: new_secret.clone(),
        redirect_url: app.redirect_url.clone(),
    };
    let mut canaries = a.canaries(&rotated);
    canaries.extend(before.iter().cloned());
    a.audit(&cap, none, &canaries, &key);
    let cap = a.run(
        "regenerate --abort: nothing pending",
        &["regenerate", "--abort", "--no-input", "--yes"],
        "",
        none,
    );
    a.audit(&cap, none, &canaries, &key);
    let app = rotated;

    let old_canaries = a.canaries(&app);
    let cap = a.run("login --force", &["login", "--force"], "", none);
    assert_eq!(cap.code, 0, "{}", cap.stderr);
    let mut canaries = a.canaries(&app);
    canaries.extend(
        old_canaries
            .into_iter()
            .filter(|(k, _)| *k == "access_token"),
    );
    a.audit(&cap, none, &canaries, &key);

    let cap = a.run("logout", &["logout"], "", none);
    assert_eq!(cap.code, 0, "{}", cap.stderr);
    a.audit(&cap, none, &canaries, &key);
    let cap = a.run("token after logout", &["token"], "", none);
    assert_eq!(cap.code, 4);
    a.audit(&cap, none, &canaries, &key);
    let cap = a.run("remove --yes", &["remove", "--yes"], "", none);
    assert_eq!(cap.code, 0, "{}", cap.stderr);
    a.audit(&cap, none, &canaries, &key);

    // Keyring unavailable: nothing may fall back to disk.
    let b = World::with(KeyringSession::no_dbus(), SandboxProcess::auto_approve());
    let app_b = b.create_app();
    let mut audit_b = Audit::new(b);
    let args_b: Vec<String> = audit_b
        .world
        .init_args(&app_b)
        .iter()
        .map(|s| (*s).to_string())
        .collect();
    let args_b: Vec<&str> = args_b.iter().map(String::as_str).collect();
    let mut live = audit_b.world.live_command(&args_b);
    live.env("TMPDIR", &audit_b.tmp);
    let cap = audit_b.run_cmd(
        "init: no keyring (live)",
        live,
        &format!("{}\n", app_b.api_secret),
        none,
    );
    assert_eq!(cap.code, 1, "{}", cap.stderr);
    assert!(cap.stderr.contains("--store keyutils"), "{}", cap.stderr);
    audit_b.audit(
        &cap,
        none,
        &[("api_secret", app_b.api_secret.clone())],
        &app_b.api_key,
    );
    assert!(
        audit_b.world.files_on_disk().is_empty(),
        "nothing written without a keyring"
    );

    let scenarios = a.scenarios + audit_b.scenarios;
    let places = a.places_checked + audit_b.places_checked;
    let leaks: Vec<String> = a
        .leaks
        .iter()
        .chain(audit_b.leaks.iter())
        .cloned()
        .collect();
    crate::support::report_figure(
        "leak_audit",
        &format!(
            "leak audit: {scenarios} scenarios, {places} places checked, {} leaks ({:.1} s)",
            leaks.len(),
            started.elapsed().as_secs_f64()
        ),
    );
    assert!(scenarios >= 25, "only {scenarios} scenarios");
    assert!(leaks.is_empty(), "leaks:\n{}", leaks.join("\n"));
}
