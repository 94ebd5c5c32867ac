//! The bad-input corpus (a clear one-line error, a hint, the right exit code, and nothing
//! stored changes), through the real binary with a real keyring and a sandbox: malformed flags,
//! secrets on stdin, redirect URLs, `--sandbox-url`, pasted redirect URLs (`login --paste`),
//! a corrupt config file and bad profile names. Each case: the expected exit code, one
//! `error:` line with the expected words, a `hint:`, no panic, no echoed secret, and the
//! stored state (keyring entries of both profiles, every file) as it was.

use crate::support::cli;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::cli::{Run, Streaming, World, check_failure, nonce_of, run_command};

/// A profile name for `init` cases: it must still not exist afterwards.
const NEW: &str = "fresh";

#[derive(Default)]
struct Tally {
    cases: usize,
    panics: usize,
    problems: Vec<String>,
}

impl Tally {
    /// Checks one finished run against the expectations and the state before it.
    fn check(
        &mut self,
        w: &World,
        case: &str,
        run: &Run,
        (code, fragment): (i32, &str),
        before: &State,
        secrets: &[&str],
    ) {
        self.cases += 1;
        let mut problems = check_failure(run, code, fragment);
        if problems.iter().any(|p| p == "PANIC") {
            self.panics += 1;
        }
        for s in secrets {
            if !s.is_empty() && (run.stderr.contains(s) || run.stdout.contains(s)) {
                problems.push("a secret was echoed".into());
            }
        }
        let after = State::of(w);
        if &after != before {
            problems.push("the stored state changed".into());
        }
        println!(
            "{case}: exit {}: {}",
            run.code,
            run.stderr
                .lines()
                .find(|l| l.starts_with("error: "))
                .unwrap_or("(no error line)")
        );
        if !problems.is_empty() {
            self.problems.push(format!(
                "{case}: {}\n--- stderr:\n{}",
                problems.join("; "),
                run.stderr
            ));
        }
    }
}

/// Makes the pasted line from the login's nonce and the registered redirect URL.
type Make = Box<dyn Fn(&str, &str) -> String>;

#[derive(PartialEq, Eq)]
struct State(cli::StoredState, cli::StoredState);

impl State {
    fn of(w: &World) -> Self {
        Self(w.stored_state("default"), w.stored_state(NEW))
    }
}

fn init_args<'a>(client_id: &'a str, api_key: &'a str, redirect: &'a str) -> Vec<&'a str> {
    vec![
        "--profile",
        NEW,
        "init",
        "--no-input",
        "--client-id",
        client_id,
        "--api-key",
        api_key,
        "--redirect-url",
        redirect,
        "--plan",
        "personal",
        "--api-secret-stdin",
        "--timeout",
        "5",
    ]
}

/// Runs `login --paste --force`, reads the login URL from stderr, and answers with the
/// line `make(nonce, redirect_url)` on stdin.
fn paste_run(w: &World, make: &dyn Fn(&str, &str) -> String, redirect_url: &str) -> Run {
    let mut login = Streaming::spawn(w.command(&["login", "--paste", "--force"]), Stdio::piped());
    let nonce = login
        .login_url(Duration::from_secs(20))
        .and_then(|u| nonce_of(&u))
        .unwrap_or_default();
    let mut stdin = login.child.stdin.take().expect("stdin");
    let _ = writeln!(stdin, "{}", make(&nonce, redirect_url));
    drop(stdin);
    let mut stdout = String::new();
    let _ = login
        .child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout);
    let status = login.child.wait().expect("wait");
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr: login.stderr(),
    }
}

#[test]
fn bad_input_corpus() {
    let w = World::new();
    let app = w.set_up();
    let mut t = Tally::default();
    let secret = app.api_secret.clone();
    let good_redirect = cli::redirect_url(cli::free_port());
    let cid = w.sandbox.client_id.clone();
    let key = app.api_key.clone();

    // --- init flags (a new profile; the secret on stdin) -------------------------------
    let client_ids: &[(&str, &str)] = &[
        ("", "--client-id"),
        ("A1234", "--client-id"),
        ("ABCD1234", "--client-id"),
        ("AB12", "--client-id"),
        ("AB123456", "--client-id"),
        ("12AB34", "--client-id"),
        ("AB 1234", "--client-id"),
        ("AB1234'", "--client-id"),
        ("ÅB1234", "--client-id"),
        ("AB\n1234", "--client-id"),
        ("AB1234; rm -rf ~", "--client-id"),
    ];
    for (id, frag) in client_ids {
        let before = State::of(&w);
        let args = init_args(id, &key, &good_redirect);
        let r = w.run(&args, &format!("{secret}\n"));
        t.check(
            &w,
            &format!("--client-id {id:?}"),
            &r,
            (2, frag),
            &before,
            &[&secret],
        );
    }
    let api_keys: &[(&str, &str)] = &[
        ("", "empty"),
        ("abc def1234567890", "spaces"),
        ("\"abcdefgh12345678\"", "quotes"),
        ("'abcdefgh12345678'", "quotes"),
        ("abcdefgh\n12345678", "line breaks"),
        ("abcdéfgh12345678", "other than letters and digits"),
        ("abcd-efgh-1234-56", "other than letters and digits"),
        ("abc", "characters"),
        (&"a".repeat(65), "characters"),
        ("abcdefgh12345678\u{200b}", "other than letters and digits"),
    ];
    for (k, frag) in api_keys {
        let before = State::of(&w);
        let args = init_args(&cid, k, &good_redirect);
        let r = w.run(&args, &format!("{secret}\n"));
        t.check(
            &w,
            &format!("--api-key {k:?}"),
            &r,
            (2, frag),
            &before,
            &[&secret],
        );
    }
    let quoted = format!("\"{secret}\"");
    let spaced = format!("{} {}", &secret[..10], &secret[10..]);
    let unicode = format!("{}é", &secret[..20]);
    let secrets: &[(&str, &str, &str)] = &[
        ("the api_key as the secret", &key, "that is the api_key"),
        ("a quoted secret", &quoted, "quotes"),
        ("a secret with a space", &spaced, "spaces"),
        ("a short secret", "abc123", "characters"),
        ("an empty line", "", "empty"),
        (
            "a unicode secret",
            &unicode,
            "other than letters and digits",
        ),
    ];
    for (name, s, frag) in secrets {
        let before = State::of(&w);
        let args = init_args(&cid, &key, &good_redirect);
        let r = w.run(&args, &format!("{s}\n"));
        t.check(
            &w,
            &format!("stdin: {name}"),
            &r,
            (2, frag),
            &before,
            &[s, &secret],
        );
    }
    let redirects: &[(&str, &str)] = &[
        (
            "https://127.0.0.1:5123/kite-setup/callback",
            "--redirect-url",
        ),
        (
            "http://example.com:5123/kite-setup/callback",
            "--redirect-url",
        ),
        ("http://10.0.0.1:5123/kite-setup/callback", "--redirect-url"),
        ("http://127.0.0.1/kite-setup/callback", "--redirect-url"),
        ("http://127.0.0.1:0/kite-setup/callback", "--redirect-url"),
        (
            "http://127.0.0.1:5123/kite-setup/callback?x=1",
            "--redirect-url",
        ),
        (
            "http://127.0.0.1:5123/kite-setup/callback#frag",
            "--redirect-url",
        ),
        (
            "http://user:pw@127.0.0.1:5123/kite-setup/callback",
            "--redirect-url",
        ),
        ("not a url", "--redirect-url"),
        ("", "--redirect-url"),
    ];
    for (u, frag) in redirects {
        let before = State::of(&w);
        let args = init_args(&cid, &key, u);
        let r = w.run(&args, &format!("{secret}\n"));
        t.check(
            &w,
            &format!("--redirect-url {u:?}"),
            &r,
            (2, frag),
            &before,
            &[&secret],
        );
    }
    {
        let before = State::of(&w);
        let mut args = init_args(&cid, &key, &good_redirect);
        args.retain(|a| *a != "--api-secret-stdin");
        let r = w.run(&args, &format!("{secret}\n"));
        t.check(
            &w,
            "no --api-secret-stdin",
            &r,
            (2, "--api-secret-stdin"),
            &before,
            &[&secret],
        );
        let before = State::of(&w);
        let args: Vec<&str> = vec!["init", "--no-input", "--client-id", &cid];
        let r = w.run(&args, "");
        t.check(
            &w,
            "init with --client-id only",
            &r,
            (2, "--api-key"),
            &before,
            &[],
        );
        let before = State::of(&w);
        let r = w.run(&w.init_args(&app), &format!("{secret}\n"));
        t.check(
            &w,
            "init over an existing profile",
            &r,
            (2, "already exists"),
            &before,
            &[&secret],
        );
    }

    // --- --sandbox-url ------------------------------------------------------------------
    for (u, code, frag) in [
        ("https://example.com:5010", 2, "loopback"),
        ("http://10.0.0.1:5010", 2, "loopback"),
        ("http://192.0.2.1:5010", 2, "loopback"),
        ("not a url", 2, "not a URL"),
        ("ftp://127.0.0.1:5010", 2, "--sandbox-url"),
    ] {
        let before = State::of(&w);
        let mut cmd: Command = w.live_command(&["--sandbox-url", u, "status"]);
        cmd.stdin(Stdio::null());
        let r = run_command(cmd, "");
        t.check(
            &w,
            &format!("--sandbox-url {u:?}"),
            &r,
            (code, frag),
            &before,
            &[],
        );
    }

    // --- login --paste --------------------------------------------------------------------
    let redirect = app.redirect_url.clone();
    let pastes: Vec<(&str, Make, i32, &str)> = vec![
        (
            "no request_token",
            Box::new(|n, r| format!("{r}?action=login&type=login&status=success&state={n}")),
            2,
            "no request_token",
        ),
        (
            "status=cancelled",
            Box::new(|n, r| format!("{r}?action=login&type=login&status=cancelled&state={n}")),
            1,
            "cancelled",
        ),
        (
            "wrong nonce",
            Box::new(|_, r| {
                format!(
                    "{r}?action=login&status=success&request_token=abcdefghijklmnop&state={}",
                    "0".repeat(32)
                )
            }),
            2,
            "nonce",
        ),
        (
            "no nonce",
            Box::new(|_, r| {
                format!("{r}?action=login&status=success&request_token=abcdefghijklmnop")
            }),
            2,
            "nonce",
        ),
        (
            "wrong host",
            Box::new(|n, r| {
                format!(
                    "{}?status=success&request_token=abcdefghijklmnop&state={n}",
                    r.replace("127.0.0.1", "evil.example")
                )
            }),
            2,
            "host",
        ),
        (
            "wrong port",
            Box::new(|n, r| {
                let mut u = url::Url::parse(r).unwrap();
                u.set_port(Some(1)).unwrap();
                format!("{u}?status=success&request_token=abcdefghijklmnop&state={n}")
            }),
            2,
            "port",
        ),
        (
            "wrong path",
            Box::new(|n, r| {
                format!(
                    "{}?status=success&request_token=abcdefghijklmnop&state={n}",
                    r.replace("/kite-setup/callback", "/other")
                )
            }),
            2,
            "path",
        ),
        (
            "https scheme",
            Box::new(|n, r| {
                format!(
                    "{}?status=success&request_token=abcdefghijklmnop&state={n}",
                    r.replace("http://", "https://")
                )
            }),
            2,
            "scheme",
        ),
        (
            "junk",
            Box::new(|_, _| "hello there".into()),
            2,
            "does not look like",
        ),
        (
            "an empty line",
            Box::new(|_, _| String::new()),
            2,
            "does not look like",
        ),
        (
            "status=error",
            Box::new(|n, r| format!("{r}?status=error&request_token=abcdefghijklmnop&state={n}")),
            2,
            "not \"success\"",
        ),
        (
            "malformed token",
            Box::new(|n, r| format!("{r}?status=success&request_token=%3Cscript%3E&state={n}")),
            2,
            "malformed",
        ),
        (
            "duplicate request_token",
            Box::new(|n, r| {
                format!(
                    "{r}?status=success&request_token=abcdefghijklmnop&request_token=qrstuvwxyz012345&state={n}"
                )
            }),
            2,
            "repeats",
        ),
    ];
    for (name, make, code, frag) in &pastes {
        let before = State::of(&w);
        let r = paste_run(&w, make.as_ref(), &redirect);
        t.check(
            &w,
            &format!("paste: {name}"),
            &r,
            (*code, frag),
            &before,
            &[],
        );
    }

    // --- bad profile names --------------------------------------------------------------
    for name in [
        "a/b",
        "../x",
        "",
        "a b",
        &"p".repeat(33),
        ".",
        "..",
        "défaut",
    ] {
        let before = State::of(&w);
        let r = w.run(&["--profile", name, "status"], "");
        t.check(
            &w,
            &format!("--profile {name:?} status"),
            &r,
            (2, "profile name"),
            &before,
            &[],
        );
    }
    {
        let before = State::of(&w);
        let mut args = vec!["--profile", "a/b"];
        args.extend(w.init_args(&app));
        let r = w.run(&args, &format!("{secret}\n"));
        t.check(
            &w,
            "--profile \"a/b\" init",
            &r,
            (2, "profile name"),
            &before,
            &[&secret],
        );
    }

    // --- a corrupt config file: every command says so, with the hint ----------------------
    let config = w.config_dir.join("config.toml");
    let good = std::fs::read(&config).expect("config written by set-up");
    for (i, junk) in [
        "this is not toml [[[",
        "[profiles.default]\nclient_id = 42\n",
        "\u{0}\u{1}binary",
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(&config, junk).unwrap();
        let commands: Vec<(Vec<&str>, String)> = vec![
            (vec!["status"], String::new()),
            (vec!["login"], String::new()),
            (vec!["token"], String::new()),
            (vec!["env"], String::new()),
            (vec!["exec", "--", "true"], String::new()),
            (vec!["logout"], String::new()),
            (vec!["remove", "--yes"], String::new()),
            (w.init_args(&app), format!("{secret}\n")),
        ];
        for (args, stdin) in commands {
            let before = State::of(&w);
            let r = w.run(&args, &stdin);
            let hint_ok = r
                .stderr
                .lines()
                .any(|l| l.starts_with("hint: ") && l.contains("config.toml"));
            t.check(
                &w,
                &format!("corrupt config #{i}: {}", args[0]),
                &r,
                (1, "config file"),
                &before,
                &[&secret],
            );
            if !hint_ok {
                t.problems.push(format!(
                    "corrupt config #{i}: {}: the hint does not name the file\n{}",
                    args[0], r.stderr
                ));
            }
        }
    }
    std::fs::write(&config, good).unwrap();
    w.run(&["status"], "").expect(0);

    crate::support::report_figure(
        "bad_input",
        &format!("bad input: {} cases, {} panics", t.cases, t.panics),
    );
    assert!(
        t.problems.is_empty(),
        "{} of {} cases failed:\n{}",
        t.problems.len(),
        t.cases,
        t.problems.join("\n\n")
    );
    assert!(t.cases >= 40, "the corpus has {} cases", t.cases);
}
