//! The leak scan through the real binary: `kite-setup doctor --scan` in a real git work
//! tree (with a local bare "remote"), a real IPython SQLite history, a binary file and a
//! notebook checkpoint, against a profile made by `init` in a real Secret Service. Every
//! copy is reported with the right label, and no value is ever printed.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::cli::{World, run_command};

/// Real git with a fixed identity and no user or system config.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git (installed by .ci/run)");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, content).expect("write");
}

/// Commits everything with `path` set to `content`; returns git's short hash.
fn commit(dir: &Path, path: &str, content: &str, message: &str) -> String {
    write(&dir.join(path), content.as_bytes());
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "--short", "HEAD"])
        .trim()
        .to_string()
}

/// An IPython history database written by SQLite (python3's sqlite3), `line` in it.
fn ipython_history(path: &Path, line: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let script = "import sqlite3, sys\n\
        db = sqlite3.connect(sys.argv[1])\n\
        db.execute('CREATE TABLE history (session integer, line integer, source text, source_raw text, PRIMARY KEY (session, line))')\n\
        db.execute('INSERT INTO history VALUES (1, 1, ?, ?)', (sys.stdin.read(), ''))\n\
        db.commit()\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("python3 (installed by .ci/run)");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), line.as_bytes())
        .expect("feed python3");
    assert!(child.wait().expect("python3").success());
}

#[test]
fn doctor_finds_copies_in_files_binaries_sqlite_checkpoints_and_git_history() {
    let w = World::new();
    let app = w.set_up();
    let secret = app.api_secret.clone();
    let token = w.run(&["token"], "").expect(0).stdout.trim().to_string();
    assert_eq!(token.len(), 32, "a sandbox token");

    let base = w.keyring.path().join("leakscan");
    let remote = base.join("remote.git");
    let repo = base.join("bot");
    let home = base.join("home");
    let extra = base.join("elsewhere");
    for d in [&remote, &repo, &home, &extra] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    git(&remote, &["init", "-q", "--bare"]);
    git(&repo, &["init", "-q"]);
    git(
        &repo,
        &["remote", "add", "origin", &remote.to_string_lossy()],
    );
    commit(&repo, "bot.py", "import os\n", "start");
    let pushed = commit(
        &repo,
        ".env",
        &format!("KITE_API_SECRET={secret}\n"),
        "add .env",
    );
    commit(&repo, ".env", "KITE_API_SECRET=\n", "empty .env");
    git(&repo, &["push", "-q", "origin", "main"]);
    let local = commit(
        &repo,
        "notes.txt",
        &format!("token for today: {token}\n"),
        "notes",
    );
    git(&repo, &["rm", "-q", "notes.txt"]);
    git(&repo, &["commit", "-q", "-m", "drop notes"]);
    // On disk now, never committed: a binary and a notebook checkpoint.
    let mut pickle = b"\x80\x04\x95\x00\x00\x00\x00".to_vec();
    pickle.extend_from_slice(b"api_secret");
    let offset = pickle.len();
    pickle.extend_from_slice(secret.as_bytes());
    write(&repo.join("model.pkl"), &pickle);
    write(
        &repo.join("notebooks/.ipynb_checkpoints/run-checkpoint.ipynb"),
        format!("{{\n \"cells\": [\n  \"kite.set_access_token('{token}')\"\n ]\n}}\n").as_bytes(),
    );
    let db = home.join(".ipython/profile_default/history.sqlite");
    ipython_history(&db, &format!("kite = KiteConnect(api_key, '{secret}')"));
    write(
        &extra.join("leak.txt"),
        format!("one\ntwo {token}\n").as_bytes(),
    );

    let scan = extra.to_string_lossy().to_string();
    let mut cmd = w.command(&["doctor", "--scan", &scan]);
    cmd.current_dir(repo.join("notebooks")).env("HOME", &home);
    let run = run_command(cmd, "").expect(1);
    let err = &run.stderr;
    assert!(err.contains("[FAIL] plaintext copies"), "{err}");
    for place in [
        format!(".env in commit {pushed} (pushed) (api_secret)"),
        format!("notes.txt in commit {local} (not pushed) (access_token)"),
        format!("model.pkl (binary, offset {offset}) (api_secret)"),
        "notebooks/.ipynb_checkpoints/run-checkpoint.ipynb:3 (access_token)".to_string(),
        format!("{} (binary, offset ", db.display()),
        format!("{}:2 (access_token)", extra.join("leak.txt").display()),
    ] {
        assert!(err.contains(&place), "{place}:\n{err}");
    }
    assert!(err.contains("regenerate"), "a fix is offered: {err}");
    assert!(err.contains("pushed one is public"), "{err}");
    for output in [&run.stdout, &run.stderr] {
        assert!(
            !output.contains(&secret),
            "the secret was printed:\n{output}"
        );
        assert!(!output.contains(&token), "the token was printed:\n{output}");
    }

    // The same in JSON, on stdout.
    let mut cmd = w.command(&["--json", "doctor", "--scan", &scan]);
    cmd.current_dir(&repo).env("HOME", &home);
    let json = run_command(cmd, "").expect(1);
    let probes: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    let copies = probes
        .as_array()
        .expect("array")
        .iter()
        .find(|p| p["probe"] == "plaintext copies")
        .expect("the probe");
    assert_eq!(copies["verdict"], "fail");
    let detail = copies["detail"].as_str().expect("detail");
    assert!(
        detail.contains(&format!(".env in commit {pushed} (pushed)")),
        "{detail}"
    );
    assert!(!json.stdout.contains(&secret) && !json.stdout.contains(&token));

    // A clean repository: the probe passes and says the history was searched too.
    let clean = base.join("clean");
    let clean_home = base.join("clean-home");
    std::fs::create_dir_all(&clean_home).expect("mkdir");
    std::fs::create_dir_all(&clean).expect("mkdir");
    git(&clean, &["init", "-q"]);
    commit(&clean, "bot.py", "import os\n", "one");
    commit(&clean, "bot.py", "import os, sys\n", "two");
    // Orders from this machine allowed too (new accounts have no IPs on the whitelist), so
    // the whole doctor passes.
    w.control(
        &format!("/_sandbox/accounts/{}/ips", w.sandbox.client_id),
        &serde_json::json!({"ips": ["127.0.0.1"]}),
    );
    let mut cmd = w.command(&["doctor"]);
    cmd.current_dir(&clean).env("HOME", &clean_home);
    let ok = run_command(cmd, "").expect(0);
    assert!(
        ok.stderr.contains(
            "[ok  ] plaintext copies none found (1 files and 2 file versions in git history checked)"
        ),
        "{}",
        ok.stderr
    );
}
