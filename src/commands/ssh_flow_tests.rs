//! Flow tests of `push`, `import` and `remote login` over a fake ssh (the real one is
//! tested in tests/ssh_cli.rs): what goes on argv and on stdin, one line per host, the
//! exit codes, and what the server side stores or refuses.

use std::sync::Mutex;

use crate::cli::{InitArgs, Plan, RemoteLoginArgs};
use crate::secret::Secret;
use crate::session::StoredSession;
use crate::ssh::{Ssh, SshOutput, SshSpawnError};
use crate::store::{Entries, Store, set_json_verified};
use crate::testkit::RecordingBrowser;
use crate::testkit::ScriptedPrompter;
use crate::testkit::{Harness, with_ctx};

const KEY: &str = "abcd1234efgh5678";
const SECRET: &str = "s3cr3tS3CR3Ts3cr3tS3CR3Ts3cr3t12";
const TOKEN: &str = "pushedtoken0123456789abcdef";

/// Answers per host; records every call.
struct FakeSsh {
    answers: Vec<(&'static str, SshOutput)>,
    calls: Mutex<Vec<(String, Vec<String>, String)>>,
    /// What `stream` emits and its exit code.
    streamed: Vec<&'static str>,
    stream_code: std::cell::Cell<i32>,
}

impl FakeSsh {
    fn new(answers: Vec<(&'static str, SshOutput)>) -> Self {
        Self {
            answers,
            calls: Mutex::default(),
            streamed: vec![],
            stream_code: std::cell::Cell::new(0),
        }
    }
}

impl Ssh for FakeSsh {
    fn run(&self, host: &str, argv: &[String], input: &Secret) -> Result<SshOutput, SshSpawnError> {
        self.calls.lock().unwrap().push((
            host.to_string(),
            argv.to_vec(),
            input.expose().to_string(),
        ));
        Ok(self
            .answers
            .iter()
            .find(|(h, _)| *h == host)
            .map(|(_, o)| o.clone())
            .expect("an answer for the host"))
    }

    fn stream(
        &self,
        host: &str,
        ssh_args: &[String],
        argv: &[String],
        on_line: &mut dyn FnMut(&str),
    ) -> Result<Option<i32>, SshSpawnError> {
        let mut all = ssh_args.to_vec();
        all.extend(argv.iter().cloned());
        self.calls
            .lock()
            .unwrap()
            .push((host.to_string(), all, String::new()));
        for line in &self.streamed {
            on_line(line);
        }
        Ok(Some(self.stream_code.get()))
    }
}

fn out(code: i32, stdout: &str, stderr: &str) -> SshOutput {
    SshOutput {
        code: Some(code),
        stdout: stdout.into(),
        stderr: stderr.into(),
    }
}

/// A laptop profile `default` with app credentials and today's session.
fn laptop(h: &Harness) {
    let args = InitArgs {
        client_id: Some("AB1234".into()),
        api_key: Some(KEY.into()),
        redirect_url: Some("http://127.0.0.1:5123/kite-setup/callback".into()),
        plan: Some(Plan::Personal),
        api_secret_stdin: true,
        skip_verify: true,
        timeout: 5,
        ..InitArgs::default()
    };
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::new();
    let (r, _, _) = with_ctx(h, &p, &b, false, &format!("{SECRET}\n"), |ctx| {
        super::init::run(ctx, &args, &|_| true)
    });
    r.unwrap();
    let session = StoredSession {
        access_token: Secret::new(TOKEN.into()),
        user_id: "AB1234".into(),
        user_name: "Test Trader".into(),
        login_time: h.now,
        expires_at: crate::session::expiry_after(h.now),
    };
    set_json_verified(
        h.store.as_ref(),
        &Entries::new("default", false, Some("default")).session(),
        &session,
    )
    .unwrap();
}

#[test]
fn push_sends_the_session_on_stdin_to_every_host_and_fails_if_one_did_not_take_it() {
    let h = Harness::new("AB1234");
    laptop(&h);
    let ok = r#"{"ok":true,"profile":"default","user_id":"AB1234","expires_ist":"2026-11-27 06:00:00","store":"kernel keyring"}"#;
    let ssh = FakeSsh::new(vec![
        ("a", out(0, &format!("{ok}\n"), "")),
        (
            "b",
            out(
                255,
                "",
                "ssh: connect to host b port 22: Connection refused\n",
            ),
        ),
        ("c", out(127, "", "sh: kite-setup: not found\n")),
        (
            "d",
            out(
                1,
                "{\"ok\":false,\"error\":\"Kite says the token sent belongs to ZZ9999, not to client AB1234\",\"hint\":\"nothing was stored\"}\n",
                "",
            ),
        ),
    ]);
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::new();
    let hosts: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
    let (r, stdout, err) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::push::push_to(ctx, &hosts, false, &ssh, "laptop")
    });
    assert_eq!(r.unwrap(), 1, "{err}");
    assert_eq!(stdout, "");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(lines[0].starts_with("✓ a: stored as profile default (AB1234), valid until 2026-11-27 06:00:00 IST, in the kernel keyring"), "{err}");
    assert!(
        lines[1].starts_with(
            "✗ b: could not reach b over SSH: ssh: connect to host b port 22: Connection refused"
        ),
        "{err}"
    );
    assert!(
        lines[2].starts_with("✗ c: kite-setup is not installed on c"),
        "{err}"
    );
    assert!(
        lines[3].starts_with("✗ d: Kite says the token sent belongs to ZZ9999"),
        "{err}"
    );
    let calls = ssh.calls.lock().unwrap();
    assert_eq!(calls.len(), 4, "every host was tried");
    for (_, argv, input) in calls.iter() {
        assert_eq!(argv, &["kite-setup", "--no-input", "import"]);
        let joined = argv.join(" ");
        assert!(!joined.contains(TOKEN) && !joined.contains(KEY) && !joined.contains(SECRET));
        let sent: serde_json::Value = serde_json::from_str(input).unwrap();
        assert_eq!(sent["access_token"], TOKEN);
        assert_eq!(sent["api_key"], KEY);
        assert_eq!(sent["client_id"], "AB1234");
        assert_eq!(sent["from"], "laptop");
        assert!(sent.get("api_secret").is_none(), "{input}");
    }
    drop(calls);

    // --with-app adds the secret; all hosts taking it is exit 0.
    let ssh = FakeSsh::new(vec![("a", out(0, &format!("{ok}\n"), ""))]);
    let (r, _, err) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::push::push_to(ctx, &["a".to_string()], true, &ssh, "laptop")
    });
    assert_eq!(r.unwrap(), 0, "{err}");
    let sent: serde_json::Value = serde_json::from_str(&ssh.calls.lock().unwrap()[0].2).unwrap();
    assert_eq!(sent["api_secret"], SECRET);
}

#[test]
fn push_without_todays_session_is_login_needed_and_runs_no_ssh() {
    let h = Harness::new("AB1234");
    laptop(&h);
    h.store
        .delete(&Entries::new("default", false, Some("default")).session())
        .unwrap();
    let ssh = FakeSsh::new(vec![]);
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::new();
    let (r, _, _) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::push::push_to(ctx, &["a".to_string()], false, &ssh, "laptop")
    });
    assert_eq!(r.unwrap_err().exit_code(), 4);
    assert!(ssh.calls.lock().unwrap().is_empty());
}

fn payload(client_id: &str, expires: jiff::Timestamp, now: jiff::Timestamp) -> String {
    serde_json::json!({
        "kite_setup_push": 1, "client_id": client_id, "plan": "personal",
        "redirect_url": "http://127.0.0.1:5123/kite-setup/callback",
        "api_key": KEY, "access_token": TOKEN, "user_id": client_id,
        "login_time": now, "expires_at": expires, "from": "laptop",
    })
    .to_string()
}

#[test]
fn import_stores_only_what_kite_confirms_for_the_profiles_client() {
    let h = Harness::new("AB1234");
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::new();
    let expires = crate::session::expiry_after(h.now);
    let entries = Entries::new("default", false, Some("default"));

    // Kite says the token is someone else's: refused, nothing stored, one JSON line.
    let line = payload("ZZ9999", expires, h.now);
    let (r, stdout, _) = with_ctx(&h, &p, &b, false, &line, |ctx| {
        super::import::run(ctx, Some("10.0.0.5"))
    });
    assert_eq!(r.unwrap_err().exit_code(), 1);
    let reply: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(reply["ok"], false);
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("belongs to AB1234, not to client ZZ9999"),
        "{reply}"
    );
    assert!(h.store.get(&entries.session()).unwrap().is_none());
    assert!(h.store.get(&entries.app()).unwrap().is_none());

    // An expired one is refused before Kite is asked.
    let calls = h.kite.calls().len();
    let line = payload("AB1234", h.now, h.now);
    let (r, _, _) = with_ctx(&h, &p, &b, false, &line, |ctx| {
        super::import::run(ctx, None)
    });
    assert_eq!(r.unwrap_err().exit_code(), 4);
    assert_eq!(h.kite.calls().len(), calls);

    // Junk is a usage error that does not echo the input.
    let (r, stdout, _) = with_ctx(&h, &p, &b, false, "{\"SECRETISH", |ctx| {
        super::import::run(ctx, None)
    });
    let junk = r.unwrap_err();
    assert_eq!(junk.exit_code(), 2);
    assert!(!stdout.contains("SECRETISH") && !junk.to_string().contains("SECRETISH"));

    // The right client: stored with its origin, no api_secret, metadata written.
    let line = payload("AB1234", expires, h.now);
    let (r, stdout, _) = with_ctx(&h, &p, &b, false, &line, |ctx| {
        super::import::run(ctx, Some("10.0.0.5"))
    });
    assert_eq!(r.unwrap(), 0);
    let reply: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(reply["ok"], true, "{reply}");
    let session = h.store.get(&entries.session()).unwrap().unwrap();
    assert!(session.expose().contains(TOKEN));
    let app = h.store.get(&entries.app()).unwrap().unwrap();
    assert!(app.expose().contains(KEY) && !app.expose().contains(SECRET));
    let origin = super::import::load_origin(h.store.as_ref(), &entries)
        .unwrap()
        .unwrap();
    assert_eq!(origin.from, "laptop");
    assert_eq!(origin.via.as_deref(), Some("10.0.0.5"));
    let cfg = crate::profile::ConfigFile::new(h.config_dir.path().to_path_buf())
        .load()
        .unwrap();
    let meta = cfg.get("default", false).unwrap();
    assert_eq!(meta.client_id, "AB1234");
    assert_eq!(meta.store, super::import::server_default_store());

    // A profile here for another client is not overwritten.
    let other = payload("CD5678", expires, h.now);
    let (r, _, _) = with_ctx(&h, &p, &b, false, &other, |ctx| {
        super::import::run(ctx, None)
    });
    let refused = r.unwrap_err();
    assert!(
        refused.to_string().contains("is for client AB1234"),
        "{refused}"
    );
}

#[test]
fn remote_login_tunnels_the_servers_redirect_port_and_opens_the_url_here() {
    let h = Harness::new("AB1234");
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::new();
    let status = r#"{"profile":"default","profiles":[{"name":"default","redirect_url":"http://127.0.0.1:5123/kite-setup/callback"}]}"#;
    let mut ssh = FakeSsh::new(vec![("srv", out(4, &format!("{status}\n"), ""))]);
    ssh.streamed = vec![
        "Log in to Kite at:",
        "  https://kite.zerodha.com/connect/login?v=3&api_key=abcd1234efgh5678",
        "✓ Logged in as Test Trader (AB1234)",
    ];
    let args = RemoteLoginArgs {
        host: "srv".into(),
        force: false,
        timeout: 60,
    };
    let env = super::remote::RemoteEnv {
        ssh: &ssh,
        is_port_free: &|port| port == 5123,
        verbose: false,
    };
    let (r, _, err) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::remote::login(ctx, &args, &env)
    });
    assert_eq!(r.unwrap(), 0, "{err}");
    assert_eq!(b.urls().len(), 1, "{err}");
    assert!(
        b.urls()[0]
            .as_str()
            .starts_with("https://kite.zerodha.com/connect/login")
    );
    assert!(err.contains("✓ Logged in as Test Trader (AB1234)"), "{err}");
    let calls = ssh.calls.lock().unwrap();
    assert_eq!(calls[0].1, ["kite-setup", "--no-input", "--json", "status"]);
    let tunnel = calls[1].1.join(" ");
    assert!(
        tunnel.starts_with("-L 5123:127.0.0.1:5123 -o ExitOnForwardFailure=yes -o LogLevel=ERROR kite-setup --no-input login --no-browser --via-tunnel --timeout 60"),
        "{tunnel}"
    );
    drop(calls);

    // The server's exit code is ours; a taken port here stops before the tunnel.
    ssh.stream_code.set(4);
    let (r, _, _) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::remote::login(ctx, &args, &env)
    });
    assert_eq!(r.unwrap(), 4);
    let busy = super::remote::RemoteEnv {
        ssh: &ssh,
        is_port_free: &|_| false,
        verbose: false,
    };
    let before = ssh.calls.lock().unwrap().len();
    let (r, _, _) = with_ctx(&h, &p, &b, false, "", |ctx| {
        super::remote::login(ctx, &args, &busy)
    });
    let taken = r.unwrap_err();
    assert!(
        taken
            .to_string()
            .contains("port 5123 on this machine is taken"),
        "{taken}"
    );
    assert_eq!(
        ssh.calls.lock().unwrap().len(),
        before + 1,
        "only the status query ran"
    );
}

#[test]
fn import_onto_a_previous_releases_profile_keeps_its_secret_and_its_rotation() {
    let h = Harness::new("AB1234");
    let p = ScriptedPrompter::new(vec![]);
    let b = RecordingBrowser::new();
    // The server as the previous release left it: the api_secret (it logs in itself) and
    // an interrupted rotation under the profile's own name, no app in config.toml.
    let cfg = crate::profile::ConfigFile::new(h.config_dir.path().to_path_buf());
    cfg.update(|c| {
        c.profiles.insert(
            "default".into(),
            crate::profile::ProfileMeta {
                client_id: "AB1234".into(),
                app: None,
                plan: Plan::Personal,
                redirect_url: "http://127.0.0.1:5123/kite-setup/callback".into(),
                store: super::import::server_default_store(),
                app_name: None,
                user_name: None,
                verified: true,
                orders: None,
                created_at: h.now,
                updated_at: h.now,
            },
        );
    })
    .unwrap();
    let app = format!(r#"{{"api_key":"{KEY}","api_secret":"{SECRET}"}}"#);
    let pending = r#"{"api_secret":"n3wn3wN3WN3Wn3wn3wN3WN3Wn3wn3w99","step":"captured"}"#;
    h.store
        .set("default/app", &Secret::from(app.as_str()))
        .unwrap();
    h.store
        .set("default/pending", &Secret::from(pending))
        .unwrap();

    let line = payload("AB1234", crate::session::expiry_after(h.now), h.now);
    let (r, _, err) = with_ctx(&h, &p, &b, false, &line, |ctx| {
        super::import::run(ctx, None)
    });
    assert_eq!(r.unwrap(), 0, "{err}");
    let snap = h.store.snapshot();
    assert_eq!(
        snap.get("apps/default/app").map(String::as_str),
        Some(app.as_str()),
        "the server's own secret is kept, not replaced by an empty one"
    );
    assert_eq!(
        snap.get("apps/default/pending").map(String::as_str),
        Some(pending),
        "the rotation's new secret is moved, not deleted"
    );
    assert!(!snap.contains_key("default/app") && !snap.contains_key("default/pending"));
    assert!(snap["default/session"].contains(TOKEN));
}
