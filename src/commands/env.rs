//! `kite-setup env`: the variables scripts read, quoted for each shell, or a dotenv file.

use std::path::Path;

use jiff::Timestamp;

use crate::cli::{EnvArgs, EnvFormat};
use crate::error::{Error, Fix};
use crate::secret::Secret;

use super::Ctx;

pub const API_KEY: &str = "KITE_API_KEY";
pub const ACCESS_TOKEN: &str = "KITE_ACCESS_TOKEN";
pub const API_SECRET: &str = "KITE_API_SECRET";

/// Only in `--format json`, for programs that build a Kite client from it (the Python
/// `kite_setup` module): the account, when the token dies (RFC 3339, UTC), and the API
/// root the token belongs to (the sandbox's URL for sandbox profiles). None is a secret.
pub const CLIENT_ID: &str = "KITE_CLIENT_ID";
pub const EXPIRES_AT: &str = "KITE_ACCESS_TOKEN_EXPIRES_AT";
pub const API_ROOT: &str = "KITE_API_ROOT";

/// The variables for a script: key and token, and the secret only when asked for.
pub fn variables(
    ctx: &Ctx<'_>,
    with_secret: bool,
    allow_expired: bool,
) -> Result<Vec<(&'static str, Secret)>, Error> {
    Ok(gather(ctx, with_secret, allow_expired)?.vars)
}

/// One read of the profile and its store: the variables, and what `--format json` adds.
struct Gathered {
    vars: Vec<(&'static str, Secret)>,
    client_id: String,
    /// When today's token dies (none when running without one).
    expires_at: Option<Timestamp>,
}

fn gather(ctx: &Ctx<'_>, with_secret: bool, allow_expired: bool) -> Result<Gathered, Error> {
    let profile = ctx.open_profile()?;
    ctx.mention_pending_rotation(profile.store());
    let creds = profile.require_app()?;
    let mut vars = vec![(API_KEY, creds.api_key.clone())];
    let mut expires_at = None;
    match profile.require_session(ctx.ports.clock.now()) {
        Ok(s) => {
            expires_at = Some(s.expires_at);
            // Handed over all the same (it still works), but the script should know.
            if s.dies_soon(ctx.ports.clock.now()) {
                ctx.ui.warn(format!(
                    "the access token dies at 06:00 IST, {}: run {} after 06:00 IST for today's",
                    crate::session::humanize_until(s.time_left(ctx.ports.clock.now())),
                    ctx.render(&Fix::run("login"))
                ));
            }
            vars.push((ACCESS_TOKEN, s.access_token));
        }
        Err(e) if allow_expired => ctx.ui.warn(format!("{e}; running without {ACCESS_TOKEN}")),
        Err(e) => return Err(e),
    }
    if with_secret {
        vars.push((API_SECRET, creds.api_secret.clone()));
    }
    Ok(Gathered {
        vars,
        client_id: profile.meta.client_id,
        expires_at,
    })
}

pub fn run(
    ctx: &Ctx<'_>,
    args: &EnvArgs,
    in_git_worktree_unignored: &dyn Fn(&Path) -> Option<bool>,
) -> Result<u8, Error> {
    let format = if ctx.json {
        EnvFormat::Json
    } else {
        args.format
    };
    let Gathered {
        mut vars,
        client_id,
        expires_at,
    } = gather(ctx, args.with_secret, false)?;
    if format == EnvFormat::Json && args.dotenv.is_none() {
        vars.push((CLIENT_ID, Secret::new(client_id)));
        if let Some(t) = expires_at {
            vars.push((EXPIRES_AT, Secret::new(t.to_string())));
        }
        vars.push((API_ROOT, Secret::new(ctx.endpoints.api.to_string())));
    }
    if (format == EnvFormat::Dotenv || args.dotenv.is_some())
        && let Some((name, why)) = dotenv_unportable(&vars)
    {
        return Err(Error::failed(
            format!("{name} cannot be written to a dotenv file: {why}"),
            Fix::text("use ")
                .and_run("exec -- CMD")
                .and(", or ")
                .and_run("env --format sh|fish|json"),
        ));
    }
    if let Some(path) = &args.dotenv {
        // Only a regular file (or a new one): a rename would replace a FIFO, a symlink or
        // a device such as /dev/stdout with a file holding the secrets.
        if let Err(e) = crate::profile::check_writable_target(path) {
            return Err(Error::usage(
                e.to_string(),
                Fix::text(
                    "--dotenv writes a regular file only; to print the variables instead use ",
                )
                .and_run("env --format dotenv"),
            ));
        }
        if !args.force && in_git_worktree_unignored(path) == Some(true) {
            return Err(Error::usage(
                format!(
                    "{} is inside a git work tree and not ignored: it could be committed",
                    path.display()
                ),
                format!(
                    "add {} to .gitignore, choose another path, or pass --force",
                    path.file_name().map_or_else(
                        || path.display().to_string(),
                        |n| n.to_string_lossy().to_string()
                    )
                ),
            ));
        }
        // The rendered text holds the secrets: wrapped, so it is wiped when dropped.
        let text = Secret::new(render(EnvFormat::Dotenv, &vars));
        crate::profile::write_private_atomic(path, text.expose().as_bytes())?;
        ctx.ui.ok(format!(
            "Wrote {} (mode 0600) with {}",
            path.display(),
            names(&vars)
        ));
        return Ok(0);
    }
    ctx.ui.data(Secret::new(render(format, &vars)).expose());
    Ok(0)
}

fn names(vars: &[(&str, Secret)]) -> String {
    vars.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// The variables in one format, each value quoted so the shell reads it back verbatim.
pub fn render(format: EnvFormat, vars: &[(&str, Secret)]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    match format {
        EnvFormat::Sh => {
            for (k, v) in vars {
                let _ = writeln!(out, "export {k}={}", quote_sh(v.expose()));
            }
        }
        EnvFormat::Fish => {
            for (k, v) in vars {
                let _ = writeln!(out, "set -gx {k} {}", quote_fish(v.expose()));
            }
        }
        EnvFormat::Powershell => {
            for (k, v) in vars {
                let _ = writeln!(out, "$env:{k} = {}", quote_powershell(v.expose()));
            }
        }
        EnvFormat::Dotenv => {
            for (k, v) in vars {
                let _ = writeln!(out, "{k}={}", quote_dotenv(v.expose()));
            }
        }
        EnvFormat::Json => {
            let map: serde_json::Map<String, serde_json::Value> = vars
                .iter()
                .map(|(k, v)| {
                    (
                        (*k).to_string(),
                        serde_json::Value::String(v.expose().to_string()),
                    )
                })
                .collect();
            out.push_str(&serde_json::Value::Object(map).to_string());
            out.push('\n');
        }
    }
    out
}

/// POSIX sh: single quotes, with `'` written as `'\''`.
pub fn quote_sh(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

/// fish: single quotes, where only `\` and `'` are escaped.
pub fn quote_fish(v: &str) -> String {
    format!("'{}'", v.replace('\\', r"\\").replace('\'', r"\'"))
}

/// PowerShell: single quotes, `'` doubled.
pub fn quote_powershell(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

/// The first variable whose value no dotenv spelling carries verbatim to every common
/// reader, and why. Inside double quotes python-dotenv keeps `\$` as two characters (and
/// expands `${X}` however the value is quoted) while docker compose and Go's godotenv
/// expand `$X` and read `\$` as `$`; and python-dotenv cannot read a quoted value that
/// ends in a backslash (its `\"` swallows the closing quote). Such a value is refused
/// rather than written for one reader to get wrong. (Kite's keys, secrets and tokens are
/// letters and digits: this guards against the unexpected.)
pub fn dotenv_unportable(vars: &[(&'static str, Secret)]) -> Option<(&'static str, &'static str)> {
    vars.iter().find_map(|(k, v)| {
        let v = v.expose();
        if v.contains('$') {
            Some((*k, "it contains `$`, which dotenv readers do not read back alike (python-dotenv keeps `\\$`, docker compose expands `$`)"))
        } else if v.ends_with('\\') {
            Some((*k, "it ends with a backslash, which python-dotenv misreads"))
        } else {
            None
        }
    })
}

/// dotenv: double quotes with `\`, `"`, `$` and newlines escaped. python-dotenv, docker
/// compose and godotenv read this back verbatim for every value `dotenv_unportable`
/// accepts; tests/env_quoting.rs checks python-dotenv and these rules.
pub fn quote_dotenv(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '\\' => s.push_str(r"\\"),
            '"' => s.push_str("\\\""),
            '$' => s.push_str(r"\$"),
            '\n' => s.push_str(r"\n"),
            '\r' => s.push_str(r"\r"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sh_quoting_of_hostile_values() {
        assert_eq!(quote_sh("abc"), "'abc'");
        assert_eq!(quote_sh("a'b"), r"'a'\''b'");
        assert_eq!(quote_sh("$(rm -rf /)`x`"), "'$(rm -rf /)`x`'");
    }

    #[test]
    fn other_formats() {
        assert_eq!(quote_fish(r"a\b'c"), r"'a\\b\'c'");
        assert_eq!(quote_powershell("a'b$c"), "'a''b$c'");
        assert_eq!(quote_dotenv("a\"b$c\nd"), r#""a\"b\$c\nd""#);
        let vars = vec![
            (API_KEY, Secret::from("k")),
            (ACCESS_TOKEN, Secret::from("t\"x")),
        ];
        let json = render(EnvFormat::Json, &vars);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v[ACCESS_TOKEN], "t\"x");
    }
}
