//! The leak scan: finds copies of a secret (an old api_secret, an old access token) on
//! disk and in git history, and reports where they are — `file:line`, `file (binary,
//! offset N)` or a commit, and the kind of value, never the value itself.
//!
//! `regenerate` runs it for the old secret and token after a rotation; `doctor` runs it for
//! the current ones. Both build the same plan ([`default_plan`]): the git work tree around
//! the current directory (or the directory itself), the shell, Python, IPython and Jupyter
//! histories of the user, and the `--scan` paths. This module reads files and asks git; it
//! reads no environment (home, `$HISTFILE` and the current directory are parameters).
//!
//! Matching is a byte search for all values at once (Aho-Corasick). Kite api_secrets and
//! access tokens are ASCII alphanumerics, so their JSON-escaped, URL-encoded, shell-quoted
//! and zsh-"metafied" forms are the raw bytes: no decoding is needed to find them inside
//! `KITE_API_SECRET="…"`, a JSON string, a notebook cell, a history line or a SQLite page.
//!
//! The rules:
//! - every file is searched, text or binary (a NUL byte in the first 8 KiB makes it
//!   binary, reported by byte offset since lines mean nothing there);
//! - hidden files, ignored files and `.ipynb_checkpoints` are searched like any other;
//! - `.git` directories are not walked: the history is searched through git instead
//!   (blobs are compressed on disk), see [`git`];
//! - symlinks met while walking are never followed (no loops, no leaving the tree); a root
//!   named explicitly (a history file linked from a dotfiles repo, a `--scan` path) is;
//! - anything that is not a regular file or a directory is skipped (a FIFO would block);
//! - files over `max_file_bytes` are listed, not read; there is no file-count limit, but a
//!   time budget: when it runs out the scan stops and the report says it is incomplete.
//!   Single-file roots (histories, `--scan FILE`) go first so a huge tree cannot starve them.
//!
//! Values shorter than [`MIN_NEEDLE_CHARS`] (and empty ones) are ignored: an empty needle
//! would match everything, and a short one would match by chance.

use std::path::PathBuf;
use std::time::Duration;

use crate::secret::Secret;

pub mod git;
mod plan;
mod report;
mod search;
mod walk;

#[cfg(test)]
mod tests;

pub use git::{GitCli, GitRunner};
pub use plan::{default_plan, find_git_work_tree, history_files};

/// Default limit on the size of one file: 64 MiB, far above any history database, notebook
/// or dotenv file. Larger files (build artefacts, data sets) are listed by path rather than
/// read, so a project's `target/` or `data/` does not eat the time budget.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Default time budget of one scan (files and history together).
pub const DEFAULT_TIME_BUDGET: Duration = Duration::from_secs(60);
/// Needles shorter than this many characters are ignored (too many chance matches).
/// Real Kite values are 32 characters.
pub const MIN_NEEDLE_CHARS: usize = 8;

/// A value to look for, and what to call it in the report.
#[derive(Debug, Clone)]
pub struct Needle {
    /// What the value is, e.g. `"api_secret"` or `"access_token"`: the only thing about
    /// it that is ever shown.
    pub kind: &'static str,
    pub value: Secret,
}

/// What to scan, and the limits.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    pub roots: Vec<ScanRoot>,
    /// Files larger than this are not read; they are listed in the report.
    pub max_file_bytes: u64,
    /// The scan stops after this long and the report is marked `truncated`.
    pub time_budget: Duration,
    /// Show a progress line on stderr while scanning, when stderr is a terminal.
    pub progress: bool,
    /// kite-setup's own stores (the file store, the sandbox's state): the one place the
    /// values are meant to be, so never reported as copies.
    pub own_files: Vec<PathBuf>,
}

impl ScanPlan {
    /// A plan over `roots` with the default limits and no progress line.
    pub fn new(roots: Vec<ScanRoot>) -> Self {
        Self {
            roots,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            time_budget: DEFAULT_TIME_BUDGET,
            progress: false,
            own_files: Vec::new(),
        }
    }
}

/// One place to scan. Files are read and directories walked the same way for all three;
/// they differ in how paths are shown and in the history search: findings under a
/// `WorkTree` are shown relative to it (`.env:3`) and its git history is searched;
/// findings under a `History` or `Path` root keep the root's spelling
/// (`notebooks/a.ipynb:12`), so the output matches what the user typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanRoot {
    /// A git work tree: every file, tracked, untracked and ignored, and its history.
    WorkTree(PathBuf),
    /// A history file or directory of the user's tools (shell, Python, IPython, Jupyter).
    History(PathBuf),
    /// A file or a directory (recursive), from `--scan`.
    Path(PathBuf),
}

impl ScanRoot {
    fn path(&self) -> &std::path::Path {
        match self {
            ScanRoot::WorkTree(p) | ScanRoot::History(p) | ScanRoot::Path(p) => p,
        }
    }
}

/// Where in a file (or in history) a copy sits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Location {
    /// 1-based line of a text file.
    Line(usize),
    /// Byte offset in a binary file (a SQLite database, a pickle, an executable).
    Offset(u64),
    /// A file as committed: the commit that added this content (git's short hash) and
    /// whether a remote-tracking branch contains it (pushed: assume it is public).
    Commit { commit: String, pushed: bool },
}

/// One copy of a needle. Holds no part of the value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// The file; for a [`Location::Commit`] the path inside that commit.
    pub path: PathBuf,
    pub at: Location,
    pub kind: &'static str,
}

/// The outcome of a scan. Holds no part of any value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Sorted by path, then location, then kind.
    pub findings: Vec<Finding>,
    /// Files read to the end (text and binary).
    pub files_scanned: usize,
    /// Of those, binary files (searched, reported by offset).
    pub binary_scanned: usize,
    /// Files over `max_file_bytes`, not searched, sorted.
    pub skipped_large: Vec<PathBuf>,
    /// Files and directories that could not be read (permission denied, vanished, a
    /// `--scan` path that does not exist).
    pub unreadable: usize,
    /// Distinct file versions (blobs) searched in git history.
    pub history_blobs: usize,
    /// Work trees whose history could not be searched (git missing or failing).
    pub history_failed: Vec<PathBuf>,
    /// The time budget ran out: some files were not looked at.
    pub truncated: bool,
}

/// Scans every root of `plan` for every usable needle, asking real git for the history of
/// work trees. Never fails: what cannot be read is counted. With no usable needle (all
/// empty or shorter than [`MIN_NEEDLE_CHARS`]) nothing is read and the report is empty.
pub fn scan(plan: &ScanPlan, needles: &[Needle]) -> ScanReport {
    scan_with(plan, needles, &GitCli)
}

/// [`scan`] with the git adapter given (tests pass a failing one).
pub fn scan_with(plan: &ScanPlan, needles: &[Needle], git: &dyn GitRunner) -> ScanReport {
    let Some(matcher) = search::Matcher::new(needles) else {
        return ScanReport::default();
    };
    let deadline = crate::clock::Monotonic::now(&crate::clock::SystemMonotonic) + plan.time_budget;
    let mut report = walk::scan_files(plan, &matcher, deadline);
    for root in &plan.roots {
        if let ScanRoot::WorkTree(tree) = root {
            if report.truncated {
                break;
            }
            git::scan_history(git, tree, &matcher, deadline, &mut report);
        }
    }
    report.findings.sort();
    report.findings.dedup();
    report.skipped_large.sort();
    report
}
