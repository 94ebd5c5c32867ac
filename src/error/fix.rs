//! What to do about a failure, as a value. Errors of every layer carry a [`Fix`]: plain
//! words and kite-setup invocations in one sentence. It becomes text in one place,
//! [`Fix::render`], which writes every invocation with this run's `--profile` and
//! `--sandbox`/`--sandbox-url` flags, so that a hint always sends the person back to the
//! profile (and the sandbox) they were working on, whichever layer it came from.

use std::borrow::Cow;

/// Which Kite a run talked to, as the person chose it on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SandboxFlag {
    /// The real Kite: no flag.
    #[default]
    Live,
    /// `--sandbox`.
    Default,
    /// `--sandbox-url URL`.
    Url(String),
}

/// The flags a suggested command must repeat to act on the same profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFlags {
    pub profile: String,
    pub sandbox: SandboxFlag,
}

impl Default for RunFlags {
    /// The default live profile: invocations render with no flags.
    fn default() -> Self {
        Self {
            profile: "default".into(),
            sandbox: SandboxFlag::Live,
        }
    }
}

impl RunFlags {
    /// From the global arguments: `--sandbox-url` wins over `--sandbox`, as it does for
    /// the run itself.
    pub fn new(profile: &str, sandbox: bool, sandbox_url: Option<&str>) -> Self {
        let sandbox = match sandbox_url {
            Some(u) => SandboxFlag::Url(u.to_string()),
            None if sandbox => SandboxFlag::Default,
            None => SandboxFlag::Live,
        };
        Self {
            profile: profile.to_string(),
            sandbox,
        }
    }

    /// ` --sandbox --profile NAME` as needed (empty for the default live profile).
    pub fn prefix(&self) -> String {
        let mut out = match &self.sandbox {
            SandboxFlag::Live => String::new(),
            SandboxFlag::Default => " --sandbox".to_string(),
            SandboxFlag::Url(u) => format!(" --sandbox-url {u}"),
        };
        if self.profile != "default" {
            out.push_str(" --profile ");
            out.push_str(&self.profile);
        }
        out
    }

    /// `kite-setup{prefix} ARGS`: a command line to show a person.
    pub fn command(&self, args: &str) -> String {
        format!("kite-setup{} {args}", self.prefix())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Cow<'static, str>),
    /// A kite-setup invocation: the subcommand and its arguments, without global flags.
    Run(Cow<'static, str>),
    /// An invocation fed by a shell pipeline (`before` ends in `| `).
    Piped {
        before: &'static str,
        args: &'static str,
    },
}

/// What to do about a failure: words, kite-setup invocations, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fix {
    pieces: Vec<Piece>,
}

impl Fix {
    /// Plain words.
    pub fn text(words: impl Into<Cow<'static, str>>) -> Self {
        Self {
            pieces: vec![Piece::Text(words.into())],
        }
    }

    /// Run kite-setup with `args` (e.g. `"regenerate --resume"`); rendered in backticks
    /// with the run's flags.
    pub fn run(args: impl Into<Cow<'static, str>>) -> Self {
        Self {
            pieces: vec![Piece::Run(args.into())],
        }
    }

    /// Appends words.
    #[must_use]
    pub fn and(mut self, words: impl Into<Cow<'static, str>>) -> Self {
        self.pieces.push(Piece::Text(words.into()));
        self
    }

    /// Appends an invocation.
    #[must_use]
    pub fn and_run(mut self, args: impl Into<Cow<'static, str>>) -> Self {
        self.pieces.push(Piece::Run(args.into()));
        self
    }

    /// Appends an invocation that reads from a pipe: `` `{before}kite-setup FLAGS ARGS` ``.
    #[must_use]
    pub fn and_piped(mut self, before: &'static str, args: &'static str) -> Self {
        self.pieces.push(Piece::Piped { before, args });
        self
    }

    /// Both fixes in one hint: `first; second`.
    #[must_use]
    pub fn also(mut self, other: Fix) -> Self {
        if self.pieces.is_empty() {
            return other;
        }
        if !other.pieces.is_empty() {
            self.pieces.push(Piece::Text("; ".into()));
            self.pieces.extend(other.pieces);
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The one renderer: words as they are, invocations as `` `kite-setup FLAGS ARGS` ``.
    pub fn render(&self, flags: &RunFlags) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Run(args) => {
                    out.push('`');
                    out.push_str(&flags.command(args));
                    out.push('`');
                }
                Piece::Piped { before, args } => {
                    out.push('`');
                    out.push_str(before);
                    out.push_str(&flags.command(args));
                    out.push('`');
                }
            }
        }
        out
    }
}

impl From<&'static str> for Fix {
    fn from(words: &'static str) -> Self {
        Self::text(words)
    }
}

impl From<String> for Fix {
    fn from(words: String) -> Self {
        Self::text(words)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(profile: &str, sandbox: bool, url: Option<&str>) -> RunFlags {
        RunFlags::new(profile, sandbox, url)
    }

    #[test]
    fn invocations_carry_exactly_the_flags_that_choose_the_profile() {
        let fix = Fix::text("run ").and_run("login").and(" first");
        assert_eq!(
            fix.render(&RunFlags::default()),
            "run `kite-setup login` first"
        );
        assert_eq!(
            fix.render(&flags("work", false, None)),
            "run `kite-setup --profile work login` first"
        );
        assert_eq!(
            fix.render(&flags("default", true, None)),
            "run `kite-setup --sandbox login` first"
        );
        assert_eq!(
            fix.render(&flags("mum", true, Some("http://127.0.0.1:6000"))),
            "run `kite-setup --sandbox-url http://127.0.0.1:6000 --profile mum login` first"
        );
    }

    #[test]
    fn two_fixes_join_with_a_semicolon_and_empty_ones_vanish() {
        let a = Fix::text("retry");
        let b = Fix::run("regenerate --resume").and(" continues");
        assert_eq!(
            a.clone().also(b.clone()).render(&RunFlags::default()),
            "retry; `kite-setup regenerate --resume` continues"
        );
        assert_eq!(Fix::default().also(a.clone()), a);
        assert_eq!(a.clone().also(Fix::default()), a);
        assert!(Fix::default().is_empty());
    }

    #[test]
    fn a_piped_invocation_keeps_its_pipeline_and_gets_the_flags() {
        let f = Fix::text("e.g. ")
            .and_piped("... | ", "regenerate --no-input --yes --api-secret-stdin")
            .and("; secrets are never flags");
        assert_eq!(
            f.render(&flags("work", true, None)),
            "e.g. `... | kite-setup --sandbox --profile work regenerate --no-input --yes --api-secret-stdin`; secrets are never flags"
        );
    }

    #[test]
    fn words_are_never_touched() {
        // Backticks and braces in words are text, not templates.
        let f = Fix::text("e.g. `secret-tool lookup ... | kite-setup init` {x}");
        assert_eq!(
            f.render(&flags("p", true, None)),
            "e.g. `secret-tool lookup ... | kite-setup init` {x}"
        );
    }
}
