//! The daily commands end to end: the real binary, a real headless Secret Service, a
//! sandbox process, the official `kiteconnect` Python SDK and real shells.
//!
//! Each test builds its own world (keyring, sandbox, config dirs, free ports), so they run
//! in parallel with each other and with other test binaries.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::support::cli::{BIN, Run, World, run_command};
use jiff::Timestamp;
use jiff::civil::Time;
use jiff::tz::TimeZone;

/// The session the keyring holds for the sandbox profile `default`.
fn stored_session(w: &World) -> serde_json::Value {
    let text = w
        .keyring
        .lookup("sandbox/default/session")
        .expect("a session entry in the Secret Service");
    serde_json::from_str(&text).expect("session JSON")
}

fn stored_token(w: &World) -> String {
    stored_session(w)["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// `GET /user/profile` at the sandbox as an SDK would send it: (status, body).
fn profile_call(w: &World, api_key: &str, token: &str) -> (u16, serde_json::Value) {
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let resp = client
        .get(format!("{}/user/profile", w.sandbox.api_url))
        .header("X-Kite-Version", "3")
        .header("Authorization", format!("token {api_key}:{token}"))
        .send()
        .expect("GET /user/profile");
    let status = resp.status().as_u16();
    (status, resp.json().expect("profile JSON"))
}

/// `sh -c SCRIPT` with the world's environment (so `$BIN` finds the keyring and sandbox).
fn sh(w: &World, script: &str, extra_env: &[(&str, &str)]) -> Run {
    let mut cmd = w.program("sh");
    cmd.arg("-c")
        .arg(script)
        .env("BIN", BIN)
        .env("SBX", &w.sandbox.url);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    run_command(cmd, "")
}

/// A private scratch directory inside the world (not in a git work tree).
fn scratch(w: &World, name: &str) -> PathBuf {
    let dir = w.keyring.path().join(name);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The first 06:00 Asia/Kolkata strictly after `t`, computed here independently of
/// `kite_setup::session` (which is what is under test).
fn next_six_ist(t: Timestamp) -> Timestamp {
    let tz = TimeZone::get("Asia/Kolkata").expect("tzdb");
    let local = t.to_zoned_datetime(tz.clone());
    let today = local.date().to_datetime(Time::constant(6, 0, 0, 0));
    let six = if local.datetime() < today {
        today
    } else {
        local
            .date()
            .tomorrow()
            .expect("date")
            .to_datetime(Time::constant(6, 0, 0, 0))
    };
    six.to_zoned_datetime(tz)
        .expect("06:00 IST exists")
        .timestamp()
}

/// Lines of the sandbox's request log that are Kite calls (not the control API that every
/// kite-setup run in sandbox mode reads its clock from).
fn kite_requests(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.starts_with("sandbox: ") && !l.contains(" /_sandbox/"))
        .map(str::to_string)
        .collect()
}

const SDK_SCRIPT: &str = r#"import os, sys
from kiteconnect import KiteConnect
kite = KiteConnect(api_key=os.environ["KITE_API_KEY"], root=sys.argv[1])
kite.set_access_token(os.environ["KITE_ACCESS_TOKEN"])
p = kite.profile()
print(p["user_id"])
print("secret" if "KITE_API_SECRET" in os.environ else "no-secret")
print(os.environ.get("KITE_STALE_EXTRA", "gone"))
"#;

#[test]
fn daily_chain_login_token_env_exec_sdk_logout() {
    let w = World::new();
    let app = w.set_up();

    // login --force: a new token, stored in the Secret Service, announced on stderr only.
    let before = stored_token(&w);
    let login = w
        .run(&["login", "--force", "--timeout", "20"], "")
        .expect(0);
    assert_eq!(login.stdout, "", "login prints nothing on stdout");
    let session = stored_session(&w);
    let token = session["access_token"].as_str().unwrap().to_string();
    assert_ne!(token, before, "login --force stores a new token");
    let (status, profile) = profile_call(&w, &app.api_key, &token);
    assert_eq!(status, 200, "the sandbox accepts the new token: {profile}");
    let user_name = profile["data"]["user_name"].as_str().unwrap();
    assert_eq!(profile["data"]["user_id"], w.sandbox.client_id.as_str());
    let expected = format!(
        "Logged in as {user_name} ({}) — valid until 06:00 IST (in ",
        w.sandbox.client_id
    );
    assert!(login.stderr.contains(&expected), "{}", login.stderr);
    assert!(!login.stderr.contains(&token), "the token on stderr");
    // The stored expiry is the next 06:00 IST after the login.
    let login_time: Timestamp = session["login_time"].as_str().unwrap().parse().unwrap();
    let expires: Timestamp = session["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires, next_six_ist(login_time));
    // The old token is not revoked by a new login in the sandbox, but the stored one is new.

    // token: the token and a newline, nothing else.
    let t = w.run(&["token"], "").expect(0);
    assert_eq!(t.stdout, format!("{token}\n"));
    assert_eq!(t.stderr, "");

    // env: exactly two export lines on stdout, nothing on stderr.
    let env = w.run(&["env"], "").expect(0);
    assert_eq!(
        env.stdout,
        format!(
            "export KITE_API_KEY='{}'\nexport KITE_ACCESS_TOKEN='{token}'\n",
            app.api_key
        )
    );
    assert_eq!(env.stderr, "");
    // json: the same two variables, plus (for programs building a Kite client) the client
    // ID, the token's expiry and the API root it belongs to; never the secret.
    let json = w.run(&["env", "--format", "json"], "").expect(0);
    assert_eq!(
        json.stdout,
        format!(
            "{}\n",
            serde_json::json!({
                "KITE_API_KEY": app.api_key,
                "KITE_ACCESS_TOKEN": token,
                "KITE_CLIENT_ID": w.sandbox.client_id,
                "KITE_ACCESS_TOKEN_EXPIRES_AT": next_six_ist(login_time).to_string(),
                "KITE_API_ROOT": w.sandbox.url,
            })
        )
    );
    assert!(!json.stdout.contains(&app.api_secret), "no secret in json");
    let global_json = w.run(&["--json", "env"], "").expect(0);
    assert_eq!(
        global_json.stdout, json.stdout,
        "--json env is --format json"
    );
    let with_secret = w.run(&["env", "--with-secret"], "").expect(0);
    assert!(
        with_secret
            .stdout
            .ends_with(&format!("export KITE_API_SECRET='{}'\n", app.api_secret)),
        "--with-secret adds the secret"
    );
    assert!(
        !env.stdout.contains(&app.api_secret),
        "no secret by default"
    );

    // eval "$(kite-setup env)" in sh gives the variables, replacing stale ones.
    let eval = sh(
        &w,
        r#"eval "$("$BIN" --sandbox-url "$SBX" env)" || exit 9; printf '%s\n%s\n' "$KITE_API_KEY" "$KITE_ACCESS_TOKEN""#,
        &[
            ("KITE_API_KEY", "stale-key"),
            ("KITE_ACCESS_TOKEN", "stale-token"),
        ],
    )
    .expect(0);
    assert_eq!(eval.stdout, format!("{}\n{token}\n", app.api_key));

    // exec: the official SDK gets the variables from kite-setup, not the stale parent ones.
    let dir = scratch(&w, "bot");
    let script = dir.join("script.py");
    std::fs::write(&script, SDK_SCRIPT).unwrap();
    let mut cmd = w.command(&["exec", "--", "python3"]);
    cmd.arg(&script)
        .arg(&w.sandbox.api_url)
        .env("KITE_API_KEY", "stale-key")
        .env("KITE_ACCESS_TOKEN", "stale-token")
        .env("KITE_API_SECRET", "stale-secret")
        .env("KITE_STALE_EXTRA", "kept-extra");
    let sdk = run_command(cmd, "").expect(0);
    assert_eq!(
        sdk.stdout,
        format!("{}\nno-secret\nkept-extra\n", w.sandbox.client_id),
        "exec's stdout is the child's, and nothing else; stderr: {}",
        sdk.stderr
    );
    // (stderr is the child's too: Python may warn there, so it is not asserted empty.)
    assert!(!sdk.stderr.contains(&token), "the token on stderr");

    // exec: stdout is exactly the child's; the exit code is the child's.
    let printed = w
        .run(
            &[
                "exec",
                "--",
                "sh",
                "-c",
                r#"printf %s "$KITE_ACCESS_TOKEN""#,
            ],
            "",
        )
        .expect(0);
    assert_eq!(printed.stdout, token);
    let seven = w.run(&["exec", "--", "sh", "-c", "exit 7"], "").expect(7);
    assert_eq!(seven.stdout, "");
    assert_eq!(seven.stderr, "");
    let missing = w.run(&["exec", "--", "no-such-command-kite-setup"], "");
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("command not found"),
        "{}",
        missing.stderr
    );

    // logout: revoked at Kite (the sandbox now rejects it), forgotten here.
    let logout = w.run(&["logout"], "").expect(0);
    assert_eq!(logout.stdout, "");
    assert!(
        logout.stderr.contains("Revoked the access token at Kite"),
        "{}",
        logout.stderr
    );
    assert!(
        logout.stderr.contains("Forgot the access token locally"),
        "{}",
        logout.stderr
    );
    let (status, body) = profile_call(&w, &app.api_key, &token);
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error_type"], "TokenException");
    assert!(w.keyring.lookup("sandbox/default/session").is_none());
    let gone = w.run(&["token"], "").expect(4);
    assert_eq!(gone.stdout, "", "no data when there is no token");
    assert!(
        gone.stderr.contains("hint:") && gone.stderr.contains("login"),
        "{}",
        gone.stderr
    );
    let env_gone = w.run(&["env"], "").expect(4);
    assert_eq!(env_gone.stdout, "");
    // A second logout has nothing to revoke and says so.
    let again = w.run(&["logout"], "").expect(0);
    assert!(
        again.stderr.contains("nothing to revoke"),
        "{}",
        again.stderr
    );
}

#[test]
fn time_travel_past_six_ist_expires_the_token_for_status_token_and_exec() {
    let w = World::new();
    let app = w.set_up();
    w.run(&["login", "--force", "--timeout", "20"], "")
        .expect(0);
    let session = stored_session(&w);
    let token = session["access_token"].as_str().unwrap().to_string();
    let expires: Timestamp = session["expires_at"].as_str().unwrap().parse().unwrap();

    // Before: usable.
    let status = w.run(&["status"], "").expect(0);
    assert_eq!(status.stdout, "", "status is for people unless --json");
    assert!(
        status.stderr.contains("token       valid until"),
        "{}",
        status.stderr
    );

    // One minute past the next 06:00 IST on the sandbox's clock (the offset is absolute,
    // from real time, so it is computed from the sandbox's own view of now).
    let view: serde_json::Value = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(w.sandbox.at("/_sandbox/clock"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let sandbox_now: Timestamp = view["now"].as_str().unwrap().parse().unwrap();
    let offset = view["offset_seconds"].as_i64().unwrap()
        + expires.duration_since(sandbox_now).as_secs()
        + 60;
    let clock = w.control(
        "/_sandbox/clock",
        &serde_json::json!({ "offset_seconds": offset }),
    );
    assert_eq!(clock["offset_seconds"], offset);
    let (code, body) = profile_call(&w, &app.api_key, &token);
    assert_eq!(
        code, 403,
        "the sandbox's clock killed the token too: {body}"
    );

    let status = w.run(&["status"], "").expect(4);
    assert!(status.stderr.contains("expired at"), "{}", status.stderr);
    assert!(status.stderr.contains("06:00:00 IST"), "{}", status.stderr);
    assert!(status.stderr.contains("hint:"), "{}", status.stderr);
    let json = w.run(&["--json", "status"], "").expect(4);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("status --json");
    assert_eq!(doc["usable"], false);
    assert_eq!(doc["profiles"][0]["token"]["state"], "expired");
    assert!(
        doc["profiles"][0]["token"]["expired_ist"]
            .as_str()
            .unwrap()
            .ends_with("06:00:00")
    );

    let t = w.run(&["token"], "").expect(4);
    assert_eq!(t.stdout, "");
    assert!(t.stderr.contains("expired"), "{}", t.stderr);
    assert!(
        // The hint repeats this run's --sandbox-url, so it reaches the same sandbox.
        t.stderr.contains(&format!(
            "hint: run `kite-setup --sandbox-url {} login`",
            w.sandbox.url
        )),
        "{}",
        t.stderr
    );

    // exec refuses before running the command: the marker file is never created.
    let dir = scratch(&w, "expired");
    let marker = dir.join("ran");
    let touch = format!("touch '{}'", marker.display());
    let refused = w.run(&["exec", "--", "sh", "-c", &touch], "").expect(4);
    assert_eq!(refused.stdout, "");
    assert!(
        !marker.exists(),
        "exec ran the command with an expired token"
    );
    assert!(refused.stderr.contains("expired"), "{}", refused.stderr);

    // --allow-expired runs it, without a token variable, and says so on stderr.
    let script = format!(
        r#"touch '{}'; printf '%s|%s' "$KITE_API_KEY" "${{KITE_ACCESS_TOKEN-unset}}""#,
        marker.display()
    );
    let allowed = w
        .run(&["exec", "--allow-expired", "--", "sh", "-c", &script], "")
        .expect(0);
    assert!(marker.exists(), "exec --allow-expired ran the command");
    assert_eq!(allowed.stdout, format!("{}|unset", app.api_key));
    assert!(allowed.stderr.contains("expired"), "{}", allowed.stderr);

    // A fresh login after 06:00 (sandbox time) makes the profile usable again.
    w.run(&["login", "--timeout", "20"], "").expect(0);
    w.run(&["status"], "").expect(0);
    let fresh = stored_session(&w);
    let login_time: Timestamp = fresh["login_time"].as_str().unwrap().parse().unwrap();
    assert!(
        login_time > expires,
        "the login happened on the sandbox's clock"
    );
}

#[test]
fn status_json_shape_and_check() {
    let w = World::new();
    let app = w.set_up();
    let run = w.run(&["--json", "status"], "").expect(0);
    assert_eq!(run.stderr, "", "--json: nothing for people");
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(doc["profile"], "default");
    assert_eq!(doc["sandbox"], true);
    assert_eq!(doc["usable"], true);
    let p = &doc["profiles"][0];
    assert_eq!(doc["profiles"].as_array().unwrap().len(), 1);
    assert_eq!(p["name"], "default");
    assert_eq!(p["selected"], true);
    assert_eq!(p["client_id"], w.sandbox.client_id.as_str());
    assert_eq!(p["api_secret_stored"], true);
    assert_eq!(p["token"]["state"], "valid");
    let left = p["token"]["seconds_left"].as_i64().unwrap();
    assert!(left > 0 && left <= 24 * 3600, "{left}");
    assert!(
        p["token"]["expires_ist"]
            .as_str()
            .unwrap()
            .ends_with(" 06:00:00")
    );
    assert_eq!(p["pending_rotation"], false);
    assert_eq!(p["redirect_url"], app.redirect_url.as_str());
    assert!(p["check"].is_null());
    let masked = p["api_key"].as_str().unwrap();
    assert_ne!(masked, app.api_key, "the api_key is masked");
    let token = stored_token(&w);
    for secret in [
        app.api_secret.as_str(),
        app.api_key.as_str(),
        token.as_str(),
    ] {
        assert!(!run.stdout.contains(secret), "a secret in status --json");
    }

    // --check asks Kite.
    let check = w.run(&["status", "--check"], "").expect(0);
    assert!(
        check.stderr.contains("check       Kite accepts the token"),
        "{}",
        check.stderr
    );
    let check = w.run(&["--json", "status", "--check"], "").expect(0);
    let doc: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
    assert_eq!(doc["profiles"][0]["check"]["ok"], true);

    // The token revoked behind kite-setup's back: only --check can know, and says so.
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let resp = client
        .delete(format!(
            "{}/session/token?api_key={}&access_token={token}",
            w.sandbox.api_url, app.api_key
        ))
        .header("X-Kite-Version", "3")
        .send()
        .unwrap();
    assert!(resp.status().is_success());
    w.run(&["status"], "").expect(0);
    let check = w.run(&["status", "--check"], "").expect(4);
    assert!(
        check.stderr.contains("check       FAILED"),
        "{}",
        check.stderr
    );
    assert!(!check.stderr.contains(&token));
}

#[test]
fn login_with_a_valid_token_says_so_and_makes_no_request() {
    let w = World::new();
    w.set_up(); // init's verification stored today's token
    let token = stored_token(&w);
    let before = kite_requests(&w.sandbox.stderr_log()).len();
    assert!(
        before > 0,
        "the sandbox logs requests: {}",
        w.sandbox.stderr_log()
    );
    let run = w.run(&["login", "--timeout", "20"], "").expect(0);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains("Already logged in as "),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(stored_token(&w), token, "the token was kept");
    // The sandbox logs each request as it answers it; give a late line a moment.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let after = kite_requests(&w.sandbox.stderr_log());
    assert_eq!(
        after.len(),
        before,
        "login made Kite requests: {:?}",
        &after[before..]
    );
}

#[test]
fn doctor_passes_in_a_clean_world_and_names_each_problem() {
    let w = World::new();
    let app = w.set_up();
    // A clean world includes this machine on the account's IP Whitelist (new accounts
    // have none, and doctor's `orders ipv4` probe fails on that).
    w.control(
        &format!("/_sandbox/accounts/{}/ips", w.sandbox.client_id),
        &serde_json::json!({"ips": ["127.0.0.1"]}),
    );
    let clean = scratch(&w, "clean-project");
    std::fs::write(
        clean.join("bot.py"),
        "import os\nkey = os.environ['KITE_API_KEY']\n",
    )
    .unwrap();
    let doctor = |cwd: &Path| {
        let mut cmd = w.command(&["doctor"]);
        cmd.current_dir(cwd);
        run_command(cmd, "")
    };

    let ok = doctor(&clean).expect(0);
    assert_eq!(ok.stdout, "");
    for probe in [
        "[ok  ] config",
        "[ok  ] keyring",
        "[ok  ] clock",
        "[ok  ] kite api",
        "[ok  ] kite login",
        "[ok  ] kite console",
        "[ok  ] redirect port",
        "[ok  ] plaintext copies none found (1 files checked)",
        "[ok  ] orders ipv4      orders from this machine: allowed over IPv4 127.0.0.1",
        "[skip] orders ipv6",
        "[ok  ] plan",
        "All checks passed",
    ] {
        assert!(ok.stderr.contains(probe), "{probe}:\n{}", ok.stderr);
    }
    assert!(!ok.stderr.contains("FAIL"), "{}", ok.stderr);

    // The redirect port taken by another program.
    let port = url::Url::parse(&app.redirect_url).unwrap().port().unwrap();
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).expect("occupy the port");
    let busy = doctor(&clean).expect(1);
    assert!(
        busy.stderr
            .contains(&format!("[FAIL] redirect port    port {port} is in use")),
        "{}",
        busy.stderr
    );
    assert!(
        busy.stderr.contains("login --paste"),
        "a fix is offered: {}",
        busy.stderr
    );
    drop(squatter);
    doctor(&clean).expect(0);

    // The api_secret pasted into a file here: file:line, never the value.
    let leaky = scratch(&w, "leaky-project");
    std::fs::write(
        leaky.join("config.py"),
        format!(
            "# settings\nAPI_KEY = 'x'\nAPI_SECRET = '{}'\n",
            app.api_secret
        ),
    )
    .unwrap();
    let leak = doctor(&leaky).expect(1);
    assert!(
        leak.stderr.contains("[FAIL] plaintext copies"),
        "{}",
        leak.stderr
    );
    assert!(
        leak.stderr.contains("config.py:3 (api_secret)"),
        "{}",
        leak.stderr
    );
    assert!(
        !leak.stderr.contains(&app.api_secret),
        "the secret was printed"
    );
    assert!(!leak.stdout.contains(&app.api_secret));
}

#[test]
fn remove_yes_revokes_and_deletes_entries_and_metadata() {
    let w = World::new();
    let app = w.set_up();
    let token = stored_token(&w);
    assert!(w.keyring.lookup("sandbox/apps/default/app").is_some());

    // Without --yes and without a terminal: refused, nothing changed.
    let refused = w.run(&["remove"], "").expect(2);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert!(w.keyring.lookup("sandbox/apps/default/app").is_some());

    let run = w.run(&["remove", "--yes"], "").expect(0);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains("Revoked the access token at Kite"),
        "{}",
        run.stderr
    );
    assert!(
        w.keyring.lookup("sandbox/apps/default/app").is_none(),
        "app entry left"
    );
    assert!(
        w.keyring.lookup("sandbox/default/session").is_none(),
        "session entry left"
    );
    let (code, _) = profile_call(&w, &app.api_key, &token);
    assert_eq!(code, 403, "the token was revoked at Kite");
    for (path, bytes) in w.files_on_disk() {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&w.sandbox.client_id) && !text.contains(&app.redirect_url),
            "metadata of the removed profile left in {}: {text}",
            path.display()
        );
    }
    let status = w.run(&["status"], "").expect(4);
    assert!(
        status.stderr.contains("No sandbox profiles yet"),
        "{}",
        status.stderr
    );
    w.run(&["token"], "").expect(4);
}

#[test]
fn exec_stdout_and_stdin_belong_to_the_child() {
    let w = World::new();
    w.set_up();
    // The child reads kite-setup's stdin (exec replaces the process) and owns stdout.
    let mut cmd = w.command(&["exec", "--", "cat"]);
    cmd.stderr(Stdio::piped());
    let run = run_command(cmd, "line one\nline two\n").expect(0);
    assert_eq!(run.stdout, "line one\nline two\n");
    assert_eq!(run.stderr, "");
}

#[test]
fn a_hostile_token_in_the_keyring_survives_the_shells_and_is_refused_for_dotenv() {
    let w = World::new();
    let app = w.set_up();
    // A token no real Kite issues, planted in the keyring entry kite-setup reads.
    let hostile = "it's $(touch pwned) `x` \"q\" \\ $HOME\nline2 ₹";
    let mut session = stored_session(&w);
    session["access_token"] = serde_json::Value::String(hostile.into());
    w.keyring
        .store("sandbox/default/session", &session.to_string());
    assert_eq!(
        w.run(&["token"], "").expect(0).stdout,
        format!("{hostile}\n")
    );

    let dir = scratch(&w, "hostile");
    let mut cmd = w.program("sh");
    cmd.current_dir(&dir)
        .arg("-c")
        .arg(r#"eval "$("$BIN" --sandbox-url "$SBX" env)" || exit 9; printf %s "$KITE_ACCESS_TOKEN""#)
        .env("BIN", BIN)
        .env("SBX", &w.sandbox.url);
    let sh = run_command(cmd, "").expect(0);
    assert_eq!(sh.stdout, hostile);
    assert!(!dir.join("pwned").exists(), "sh ran part of the token");

    let fish_script = format!(
        r#"{BIN} --sandbox-url {} env --format fish | source; or exit 9; printf %s "$KITE_ACCESS_TOKEN""#,
        w.sandbox.url
    );
    let mut cmd = w.program("fish");
    cmd.current_dir(&dir)
        .args(["--no-config", "-c", &fish_script]);
    let fish = run_command(cmd, "").expect(0);
    assert_eq!(fish.stdout, hostile);
    assert!(!dir.join("pwned").exists(), "fish ran part of the token");

    // dotenv readers disagree about `$`: refused, exit 1, and the value is not shown.
    for args in [
        &["env", "--format", "dotenv"][..],
        &["env", "--dotenv", dir.join(".env").to_str().unwrap()][..],
    ] {
        let refused = w.run(args, "").expect(1);
        assert_eq!(refused.stdout, "");
        assert!(
            refused
                .stderr
                .contains("KITE_ACCESS_TOKEN cannot be written to a dotenv file"),
            "{}",
            refused.stderr
        );
        assert!(!refused.stderr.contains(hostile) && !refused.stderr.contains("pwned"));
    }
    assert!(!dir.join(".env").exists());

    // An ordinary token: --dotenv writes the documented double-quoted form, mode 0600.
    w.run(&["login", "--force", "--timeout", "20"], "")
        .expect(0);
    let token = stored_token(&w);
    let path = dir.join(".env");
    w.run(&["env", "--dotenv", path.to_str().unwrap()], "")
        .expect(0);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!(
            "KITE_API_KEY=\"{}\"\nKITE_ACCESS_TOKEN=\"{token}\"\n",
            app.api_key
        )
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[test]
fn dotenv_file_is_refused_in_a_git_work_tree_unless_ignored_or_forced() {
    let w = World::new();
    w.set_up();
    let repo = scratch(&w, "repo");
    let git = |args: &[&str]| {
        let ok = w
            .program("git")
            .current_dir(&repo)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("git")
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    let env_path = repo.join(".env");
    let target = env_path.to_str().unwrap();

    let refused = w.run(&["env", "--dotenv", target], "").expect(2);
    assert!(refused.stderr.contains("not ignored"), "{}", refused.stderr);
    assert!(!env_path.exists(), "nothing written");

    w.run(&["env", "--dotenv", target, "--force"], "").expect(0);
    assert!(env_path.exists());
    std::fs::remove_file(&env_path).unwrap();

    std::fs::write(repo.join(".gitignore"), ".env\n").unwrap();
    let ok = w.run(&["env", "--dotenv", target], "").expect(0);
    assert_eq!(ok.stdout, "", "the file, not stdout, gets the values");
    assert!(ok.stderr.contains("mode 0600"), "{}", ok.stderr);
    let token = stored_token(&w);
    assert!(std::fs::read_to_string(&env_path).unwrap().contains(&token));
}

#[test]
fn profiles_are_kept_apart_and_a_dead_token_is_still_forgotten_on_logout() {
    let w = World::new();
    let app = w.set_up();
    // Another profile, by flag and by environment: nothing there, exit 4 with the init hint.
    let other = w.run(&["--profile", "other", "token"], "").expect(4);
    assert_eq!(other.stdout, "");
    assert!(
        other.stderr.contains("--profile other init"),
        "{}",
        other.stderr
    );
    let mut cmd = w.command(&["token"]);
    cmd.env("KITE_SETUP_PROFILE", "other");
    run_command(cmd, "").expect(4);
    w.run(&["--profile", "default", "token"], "").expect(0);

    // Kite already rejects the token (revoked elsewhere): logout still forgets it here.
    let token = stored_token(&w);
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let resp = client
        .delete(format!(
            "{}/session/token?api_key={}&access_token={token}",
            w.sandbox.api_url, app.api_key
        ))
        .header("X-Kite-Version", "3")
        .send()
        .unwrap();
    assert!(resp.status().is_success());
    let logout = w.run(&["logout"], "").expect(0);
    assert!(
        logout.stderr.contains("already rejects"),
        "{}",
        logout.stderr
    );
    assert!(
        logout.stderr.contains("Forgot the access token locally"),
        "{}",
        logout.stderr
    );
    assert!(w.keyring.lookup("sandbox/default/session").is_none());
    assert!(
        w.keyring.lookup("sandbox/apps/default/app").is_some(),
        "logout keeps the app credentials"
    );
}

#[test]
fn exec_of_a_command_that_cannot_start_exits_127_or_126_as_shells_do() {
    let w = World::new();
    w.set_up();
    let dir = scratch(&w, "exec-codes");
    let not_exec = dir.join("not-executable.sh");
    std::fs::write(&not_exec, "#!/bin/sh\necho hi\n").expect("write script");
    let missing = w.run(&["exec", "--", "kite-setup-no-such-command"], "");
    let problems = crate::support::cli::check_failure(&missing, 127, "command not found");
    assert!(problems.is_empty(), "{problems:?}\n{}", missing.stderr);
    for target in [&not_exec, &dir] {
        let run = w.run(&["exec", "--", target.to_str().expect("utf-8")], "");
        let problems = crate::support::cli::check_failure(&run, 126, "cannot run");
        assert!(
            problems.is_empty(),
            "{target:?}: {problems:?}\n{}",
            run.stderr
        );
    }
    // The child's own exit code still passes through.
    w.run(&["exec", "--", "sh", "-c", "exit 7"], "").expect(7);
}

#[test]
fn exec_keeps_the_users_kite_variables_and_core_limit() {
    let w = World::new();
    w.set_up();
    // The outer shell sets the limits the user has; the child reports what it got.
    let run = sh(
        &w,
        r#"ulimit -S -c 4096 || exit 90
hard=$(ulimit -H -c)
echo "hard $hard"
exec "$BIN" --sandbox-url "$SBX" exec -- sh -c 'echo "soft $(ulimit -S -c)"; echo "hard $(ulimit -H -c)"; echo "log ${KITE_LOG_LEVEL:-gone}"; echo "key ${KITE_API_SECRET:-gone}"'"#,
        &[
            ("KITE_LOG_LEVEL", "debug"),
            ("KITE_API_SECRET", "stale-secret"),
        ],
    )
    .expect(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(lines[1], "soft 4096", "{}", run.stdout);
    assert_eq!(
        lines[2], lines[0],
        "the hard limit is the user's: {}",
        run.stdout
    );
    assert_eq!(lines[3], "log debug", "{}", run.stdout);
    assert_eq!(lines[4], "key gone", "a stale secret is still removed");
}

#[test]
fn sigterm_exits_143_and_sigint_130() {
    use rustix::process::{Pid, Signal, kill_process};
    let w = World::new();
    w.set_up();
    for (signal, name, code) in [(Signal::TERM, "TERM", 143), (Signal::INT, "INT", 130)] {
        let mut login = crate::support::cli::Streaming::spawn(
            w.command(&["login", "--paste", "--force"]),
            Stdio::piped(),
        );
        assert!(
            login
                .login_url(std::time::Duration::from_secs(20))
                .is_some(),
            "the login is waiting"
        );
        // Held until the end: `wait` would close it, and the EOF could beat the signal.
        let _stdin = login.child.stdin.take();
        let pid = i32::try_from(login.child.id())
            .ok()
            .and_then(Pid::from_raw)
            .expect("pid");
        kill_process(pid, signal).expect("kill");
        let status = login.child.wait().expect("wait");
        let stderr = login.stderr();
        assert_eq!(status.code(), Some(code), "SIG{name}: {stderr}");
        assert!(
            stderr.contains("interrupted: no partial changes were made"),
            "{stderr}"
        );
    }
}

/// Runs `cmd` and kills it if it has not ended within `secs` (a hang is a failure here,
/// not a stuck test run).
fn run_bounded(mut cmd: std::process::Command, secs: u64) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while child.try_wait().expect("try_wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {secs} s: it hangs");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(made.success());
}

#[cfg(unix)]
fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

#[cfg(unix)]
#[test]
fn dotenv_refuses_a_fifo_or_a_symlink_and_leaves_it_as_it_was() {
    let w = World::new();
    w.set_up();
    let dir = scratch(&w, "targets");
    let fifo = dir.join("fifo.env");
    mkfifo(&fifo);
    let real = dir.join("real.env");
    std::fs::write(&real, "KEEP=1\n").expect("write");
    let link = dir.join("link.env");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    for (target, kind) in [(&fifo, "a FIFO"), (&link, "a symbolic link")] {
        let mut cmd = w.command(&["env", "--dotenv", target.to_str().expect("utf-8")]);
        cmd.current_dir(&dir);
        let run = run_bounded(cmd, 30);
        let problems = crate::support::cli::check_failure(&run, 2, kind);
        assert!(problems.is_empty(), "{problems:?}\n{}", run.stderr);
        assert!(run.stderr.contains("--format dotenv"), "{}", run.stderr);
    }
    assert!(is_fifo(&fifo), "the FIFO is still a FIFO");
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("link")
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(&real).expect("real"), "KEEP=1\n");
}

#[cfg(unix)]
#[test]
fn a_shared_config_dir_is_refused_and_never_chmod_ed() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let app = w.create_app();
    let shared = scratch(&w, "shared-tmp");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let mut cmd = w.command(&w.init_args(&app));
    cmd.env("KITE_SETUP_CONFIG_DIR", &shared);
    let run = run_command(cmd, &format!("{}\n", app.api_secret));
    let problems = crate::support::cli::check_failure(&run, 1, "is not private");
    assert!(problems.is_empty(), "{problems:?}\n{}", run.stderr);
    assert!(run.stderr.contains("chmod go-w"), "{}", run.stderr);
    let mode = std::fs::metadata(&shared)
        .expect("dir")
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o1777, "the shared directory was chmod-ed");
    assert_eq!(
        std::fs::read_dir(&shared).expect("dir").count(),
        0,
        "nothing written there"
    );
    // A readable (not writable) existing dir is used as it is: not chmod-ed to 0700.
    let open = scratch(&w, "readable-config");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut cmd = w.command(&w.init_args(&app));
    cmd.env("KITE_SETUP_CONFIG_DIR", &open);
    run_command(cmd, &format!("{}\n", app.api_secret)).expect(0);
    let mode = std::fs::metadata(&open).expect("dir").permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755);
}

#[cfg(unix)]
#[test]
fn a_fifo_or_non_utf8_config_file_is_one_clear_error_not_a_hang() {
    let w = World::new();
    w.set_up();
    let config = w.config_dir.join("config.toml");
    let good = std::fs::read(&config).expect("config");
    std::fs::remove_file(&config).expect("rm");
    mkfifo(&config);
    for args in [&["status"][..], &["token"], &["doctor"]] {
        let run = run_bounded(w.command(args), 30);
        if args == ["doctor"] {
            assert_eq!(run.code, 1, "{}", run.stderr);
            assert!(run.stderr.contains("is a FIFO"), "{}", run.stderr);
        } else {
            let problems = crate::support::cli::check_failure(&run, 1, "is a FIFO (named pipe)");
            assert!(
                problems.is_empty(),
                "{args:?}: {problems:?}\n{}",
                run.stderr
            );
        }
    }
    assert!(is_fifo(&config), "left as it was");
    std::fs::remove_file(&config).expect("rm");
    let mut bad = good.clone();
    bad.extend_from_slice(b"\n# \xff\xfe\n");
    std::fs::write(&config, &bad).expect("write");
    let run = run_bounded(w.command(&["status"]), 30);
    let problems = crate::support::cli::check_failure(&run, 1, "not UTF-8");
    assert!(problems.is_empty(), "{problems:?}\n{}", run.stderr);
    assert_eq!(std::fs::read(&config).expect("config"), bad, "unchanged");
}

#[test]
fn doctor_removes_probe_entries_that_killed_probes_left_behind() {
    let w = World::new();
    w.set_up();
    // What a probe killed with -9 leaves: its process (here: a pid no process has) in the
    // name; and an older kite-setup's name with no process in it.
    w.keyring
        .store("_probe/2000000000-0123456789abcdef", "kite-setup-probe-x");
    w.keyring
        .store("_probe/fedcba9876543210", "kite-setup-probe-y");
    let run = w.run(&["doctor"], "");
    assert!(
        run.stderr
            .contains("removed 2 probe entries left by interrupted runs"),
        "{}",
        run.stderr
    );
    assert!(
        w.keyring
            .lookup("_probe/2000000000-0123456789abcdef")
            .is_none()
    );
    assert!(w.keyring.lookup("_probe/fedcba9876543210").is_none());
    assert!(
        w.keyring.lookup("sandbox/apps/default/app").is_some(),
        "the profile's entries stay"
    );
    // Nothing left to remove: no such line.
    let again = w.run(&["doctor"], "");
    assert!(!again.stderr.contains("probe entr"), "{}", again.stderr);
}

#[test]
fn doctor_checks_the_profile_not_only_the_machine() {
    let w = World::new();
    w.set_up();
    // Orders from this machine allowed too (new accounts have no IPs on the whitelist).
    w.control(
        &format!("/_sandbox/accounts/{}/ips", w.sandbox.client_id),
        &serde_json::json!({"ips": ["127.0.0.1"]}),
    );
    let ok = w.run(&["doctor"], "").expect(0);
    assert!(ok.stderr.contains("[ok  ] credentials"), "{}", ok.stderr);
    assert!(
        ok.stderr
            .contains("[ok  ] session          Kite accepts today's token"),
        "{}",
        ok.stderr
    );
    // The token revoked behind kite-setup's back: Kite is asked, and says no.
    let session: serde_json::Value = serde_json::from_str(
        &w.keyring
            .lookup("sandbox/default/session")
            .expect("session"),
    )
    .expect("json");
    let app: serde_json::Value =
        serde_json::from_str(&w.keyring.lookup("sandbox/apps/default/app").expect("app"))
            .expect("json");
    let revoked = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .delete(format!(
            "{}/session/token?api_key={}&access_token={}",
            w.sandbox.api_url,
            app["api_key"].as_str().expect("key"),
            session["access_token"].as_str().expect("token")
        ))
        .header("X-Kite-Version", "3")
        .send()
        .expect("DELETE /session/token");
    assert!(revoked.status().is_success());
    let rejected = w.run(&["doctor"], "").expect(1);
    assert!(
        rejected
            .stderr
            .contains("[FAIL] session          Kite rejects the stored token"),
        "{}",
        rejected.stderr
    );
    assert!(
        !rejected.stderr.contains("All checks passed"),
        "{}",
        rejected.stderr
    );
    // The credentials gone from the store the profile records.
    let cleared = w
        .keyring
        .command("secret-tool")
        .args([
            "clear",
            "service",
            "kite-setup",
            "username",
            "sandbox/apps/default/app",
        ])
        .status()
        .expect("secret-tool");
    assert!(cleared.success());
    let missing = w.run(&["doctor"], "").expect(1);
    assert!(
        missing
            .stderr
            .contains("[FAIL] credentials      no api_key/api_secret stored"),
        "{}",
        missing.stderr
    );
    assert!(
        !missing.stderr.contains("All checks passed"),
        "{}",
        missing.stderr
    );
}

#[test]
fn a_keyring_profile_without_its_keyring_says_so_and_never_falls_back() {
    let w = World::new();
    w.set_up();
    let gone = w.keyring.path().join("no-bus-here");
    let bus = format!("unix:path={}", gone.display());
    for args in [&["status"][..], &["exec", "--", "true"], &["token"]] {
        let run = w.run_env(args, "", &[("DBUS_SESSION_BUS_ADDRESS", bus.as_str())]);
        let problems = crate::support::cli::check_failure(&run, 1, "is not available");
        assert!(
            problems.is_empty() || args == ["status"],
            "{args:?}: {problems:?}\n{}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("no api_key/api_secret stored"),
            "{args:?}: the secrets are in the keyring, not missing:\n{}",
            run.stderr
        );
        assert!(!run.stderr.contains("No OS keyring here"), "{}", run.stderr);
    }
    let doctor = w.run_env(
        &["doctor"],
        "",
        &[("DBUS_SESSION_BUS_ADDRESS", bus.as_str())],
    );
    assert_eq!(doctor.code, 1, "{}", doctor.stderr);
    assert!(
        doctor.stderr.contains("[FAIL] keyring"),
        "{}",
        doctor.stderr
    );
    assert!(
        !w.config_dir.join("sandbox-store").exists(),
        "nothing written to the sandbox-only store"
    );
}
