//! `kite-setup env` quoting, round-tripped through the real readers: hostile values are
//! rendered with `render` (the same function the binary prints with), read back by `sh`
//! (dash on Debian), `bash` and `fish`, and must come back byte-identical, both as shell
//! variables and in the environment of a child process.
//!
//! fish is required: `.ci/run` installs the Debian package `fish`, and a missing fish
//! fails the test with the command to install it (a silent skip would hide the one shell
//! whose quoting rules differ most). PowerShell is not installed on these machines and is
//! not checked here.
//!
//! dotenv has no single standard. The rules relied on are written out in `read_dotenv`
//! below (double quotes; `\\`, `\"`, `\n`, `\r`, `\$` are the only escapes; `$` is never
//! written unescaped) — the intersection of docker compose/godotenv and python-dotenv for
//! the values the binary accepts. A value with `$` (python-dotenv and compose disagree
//! about it) or ending in a backslash (python-dotenv misreads it) is refused by the binary. When python-dotenv is importable, it reads every file too.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use kite_setup::cli::EnvFormat;
use kite_setup::commands::env::{
    ACCESS_TOKEN, API_KEY, API_SECRET, dotenv_unportable, quote_dotenv, quote_fish, quote_sh,
    render,
};
use kite_setup::secret::Secret;

/// Values a shell or a dotenv reader could get wrong.
const HOSTILE: &[&str] = &[
    "plainAlnum123",
    "",
    "it's",
    "'",
    "''",
    r"'\''",
    r#"say "hi""#,
    "$HOME",
    "${HOME}",
    "$(touch /tmp/kite-setup-quoting-pwned)",
    "`touch /tmp/kite-setup-quoting-pwned`",
    r"back\slash",
    "\\",
    r"trailing\",
    r"\'",
    r"\n not a newline",
    "two\nlines",
    "trailing newline\n",
    "\n\nleading newlines",
    "carriage\rreturn",
    "tab\there",
    "  spaces  around  ",
    "100%d %s %% %n",
    "₹ नमस्ते 🚀 ünïcödé",
    "*?[a-z] ~ # ; & | < > ( ) { } !",
    "-n",
    "-e \\c",
    "a=b c=d",
    "; rm -rf / #",
    "\u{1}control\u{7f}",
];

const SEP: &str = "\n--kite-setup-separator--\n";

fn vars(v: &str) -> Vec<(&'static str, Secret)> {
    vec![
        (API_KEY, Secret::from(v)),
        (ACCESS_TOKEN, Secret::from(v)),
        (API_SECRET, Secret::from(format!("{v}|secret"))),
    ]
}

/// Runs `program ARGS` with `F` pointing at the rendered file; returns stdout bytes.
fn run_shell(program: &str, args: &[&str], file: &Path) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", "/nonexistent-kite-home")
        .env("F", file)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}): {}\nfile:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(file).unwrap_or_default()
    );
    assert!(
        out.stderr.is_empty(),
        "{program} complained: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The script (valid in sh, bash and fish) prints, for each variable: the shell's value,
/// then the value a child process sees (`printenv`, whose trailing newline is removed
/// here), separated by SEP.
fn script(load: &str) -> String {
    use std::fmt::Write as _;
    let sep = SEP.replace('\n', "\\n");
    let mut s = format!("{load}\n");
    for name in [API_KEY, ACCESS_TOKEN, API_SECRET] {
        let _ = writeln!(
            s,
            "printf '%s' \"${name}\"; printf '{sep}'; printenv {name}; printf '{sep}'"
        );
    }
    s
}

/// Checks the shell's output against the expected values, byte for byte.
fn check(shell: &str, how: &str, value: &str, out: &[u8]) {
    let text = String::from_utf8(out.to_vec()).expect("utf-8 output");
    let parts: Vec<&str> = text.split(SEP).collect();
    assert_eq!(parts.len(), 7, "{shell} ({how}) for {value:?}: {text:?}");
    let expected = vars(value);
    for (i, (name, v)) in expected.iter().enumerate() {
        let want = v.expose();
        assert_eq!(
            parts[2 * i],
            want,
            "{shell} ({how}): {name} as a shell variable for {value:?}"
        );
        let env = parts[2 * i + 1]
            .strip_suffix('\n')
            .expect("printenv ends with a newline");
        assert_eq!(
            env, want,
            "{shell} ({how}): {name} in a child's environment for {value:?}"
        );
    }
    assert_eq!(parts[6], "");
}

fn write_rendered(dir: &Path, format: EnvFormat, value: &str) -> std::path::PathBuf {
    let path = dir.join("rendered");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(render(format, &vars(value)).as_bytes())
        .unwrap();
    path
}

fn pwned() -> bool {
    Path::new("/tmp/kite-setup-quoting-pwned").exists()
}

#[test]
fn sh_and_bash_read_hostile_values_back_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    for value in HOSTILE {
        let file = write_rendered(dir.path(), EnvFormat::Sh, value);
        for shell in ["sh", "bash"] {
            // As a file sourced, and as people use it: eval "$(kite-setup env)".
            let sourced = run_shell(shell, &["-c", &script(". \"$F\"")], &file);
            check(shell, "sourced", value, &sourced);
            let evaled = run_shell(shell, &["-c", &script("eval \"$(cat \"$F\")\"")], &file);
            check(shell, "eval \"$(…)\"", value, &evaled);
        }
    }
    assert!(!pwned(), "a value was executed by a shell");
}

#[test]
fn fish_reads_hostile_values_back_byte_identical() {
    let fish_present = Command::new("fish")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        fish_present,
        "fish is not installed; the quoting tests need it: apt-get install -y --no-install-recommends fish (.ci/run does this)"
    );
    let dir = tempfile::tempdir().unwrap();
    for value in HOSTILE {
        let file = write_rendered(dir.path(), EnvFormat::Fish, value);
        // As a file sourced, and as people use it: kite-setup env --format fish | source.
        let sourced = run_shell("fish", &["--no-config", "-c", &script("source $F")], &file);
        check("fish", "source", value, &sourced);
        let piped = run_shell(
            "fish",
            &["--no-config", "-c", &script("cat $F | source")],
            &file,
        );
        check("fish", "| source", value, &piped);
    }
    assert!(!pwned(), "a value was executed by fish");
}

#[test]
fn quoting_functions_match_their_documented_forms() {
    assert_eq!(quote_sh(""), "''");
    assert_eq!(quote_sh("a'b"), r"'a'\''b'");
    assert_eq!(quote_fish(r"a\'b"), r"'a\\\'b'");
    assert_eq!(quote_dotenv("a\\b\"c\nd\re$f"), r#""a\\b\"c\nd\re\$f""#);
    assert_eq!(
        render(EnvFormat::Sh, &vars("x")),
        "export KITE_API_KEY='x'\nexport KITE_ACCESS_TOKEN='x'\nexport KITE_API_SECRET='x|secret'\n"
    );
    assert_eq!(
        render(EnvFormat::Fish, &vars("x")),
        "set -gx KITE_API_KEY 'x'\nset -gx KITE_ACCESS_TOKEN 'x'\nset -gx KITE_API_SECRET 'x|secret'\n"
    );
    assert_eq!(
        render(EnvFormat::Powershell, &vars("it's")),
        "$env:KITE_API_KEY = 'it''s'\n$env:KITE_ACCESS_TOKEN = 'it''s'\n$env:KITE_API_SECRET = 'it''s|secret'\n"
    );
}

/// A dotenv reader for exactly the rules `quote_dotenv` relies on: `NAME="..."` per line;
/// inside the quotes `\\`, `\"`, `\n`, `\r` and `\$` are escapes; any other backslash
/// sequence, a raw `$` (which readers would expand), a raw `"` or a raw newline is a
/// violation of those rules and fails the test.
fn read_dotenv(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        if line.is_empty() {
            continue;
        }
        let (name, rest) = line.split_once('=').expect("NAME=VALUE");
        let body = rest
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .unwrap_or_else(|| panic!("value not in double quotes on one line: {line:?}"));
        let mut value = String::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    Some('r') => value.push('\r'),
                    Some('$') => value.push('$'),
                    other => panic!("undocumented escape \\{other:?} in {line:?}"),
                },
                '"' => panic!("raw double quote inside the value: {line:?}"),
                '$' => panic!("raw $ (readers expand it): {line:?}"),
                c => value.push(c),
            }
        }
        out.push((name.to_string(), value));
    }
    out
}

/// python-dotenv's reading of `text`, as JSON pairs, or None when it is not installed.
fn python_dotenv(text: &str) -> Option<Vec<(String, String)>> {
    let script = r#"
import io, json, sys
try:
    from dotenv import dotenv_values
except ImportError:
    sys.exit(3)
data = sys.stdin.buffer.read().decode("utf-8")
print(json.dumps(list(dotenv_values(stream=io.StringIO(data)).items())))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.code() == Some(3) {
        return None;
    }
    assert!(
        out.status.success(),
        "python-dotenv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("JSON from python"))
}

#[test]
fn dotenv_round_trips_every_value_it_accepts_and_refuses_the_rest() {
    let mut python_checked = 0;
    let mut python_missing = false;
    for value in HOSTILE {
        let v = vars(value);
        if value.contains('$') || value.ends_with('\\') {
            assert_eq!(
                dotenv_unportable(&v).map(|(name, _)| name),
                Some(API_KEY),
                "a value with $ or a trailing backslash is refused for dotenv: {value:?}"
            );
            continue;
        }
        assert_eq!(dotenv_unportable(&v), None, "{value:?}");
        let text = render(EnvFormat::Dotenv, &v);
        let want: Vec<(String, String)> = v
            .iter()
            .map(|(k, s)| ((*k).to_string(), s.expose().to_string()))
            .collect();
        assert_eq!(read_dotenv(&text), want, "documented rules, {value:?}");
        match python_dotenv(&text) {
            Some(got) => {
                assert_eq!(got, want, "python-dotenv read {text:?}");
                python_checked += 1;
            }
            None => python_missing = true,
        }
    }
    if python_missing {
        println!(
            "note: python-dotenv is not installed; dotenv checked against the documented rules only"
        );
    } else {
        assert!(python_checked > 20);
    }
}
