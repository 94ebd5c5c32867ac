//! The leak scan: finds plain-text copies of a secret (an old api_secret, an old access
//! token) on disk and reports where they are — `file:line` and the kind of value, never
//! the value itself.
//!
//! `regenerate` runs it for the old secret and token after a rotation (product.md, the
//! leak playbook, step 5); `doctor` runs it for the current secret in the current
//! directory. This module only reads files: no environment, no network, no clock. The
//! home directory, `$HISTFILE` and the current directory come in as parameters.
//!
//! Matching is a plain byte substring search per line. Kite api_secrets and access
//! tokens are ASCII alphanumerics, so their JSON-escaped, URL-encoded, shell-quoted and
//! zsh-"metafied" forms are byte-for-byte the same as the raw value: no decoding is
//! needed to find them inside `KITE_API_SECRET="…"`, JSON strings, notebook cells or
//! history lines. Files are read as bytes, so invalid UTF-8 elsewhere in a file does
//! not hide a match.
//!
//! What is skipped, and why:
//! - `.git` entries at any depth (the object store is compressed and the config is not
//!   the user's to edit here; a secret committed to history needs a history rewrite,
//!   which is out of scope);
//! - symlinks found while walking (never followed: no loops, no leaving the tree); a
//!   root given explicitly (a history file that is a symlink into a dotfiles repo, a
//!   `--scan` path) is followed, since the user named it;
//! - binary files (a NUL byte in the first 8 KiB), counted;
//! - files over `max_file_bytes`, listed by path;
//! - anything that is not a regular file or directory (FIFOs would block a read);
//! - after `max_files` files the walk stops and the report says it is incomplete.
//!   Roots that are single files (history files, `--scan FILE`) are scanned before any
//!   directory is walked, so a huge work tree cannot crowd them out.
//!
//! Needles shorter than [`MIN_NEEDLE_CHARS`] characters (and empty ones) are ignored:
//! an empty needle would match every line, and a short one would match by chance.

use std::collections::{HashSet, VecDeque};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use crate::secret::Secret;

/// Default limit on the size of one scanned file: 5 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 5 * 1024 * 1024;
/// Default limit on the number of files looked at in one scan.
pub const DEFAULT_MAX_FILES: usize = 20_000;
/// Needles shorter than this many characters are ignored (too many chance matches).
/// Real Kite values are 32 characters.
pub const MIN_NEEDLE_CHARS: usize = 8;
/// How much of a file is inspected for a NUL byte to call it binary.
const BINARY_SNIFF_BYTES: u64 = 8 * 1024;
/// How many skipped-large paths `summary_lines` names before "and N more".
const LARGE_LIST_MAX: usize = 5;

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
    /// The walk stops after this many files (scanned or skipped) and the report is
    /// marked `truncated`.
    pub max_files: usize,
}

impl ScanPlan {
    /// A plan over `roots` with the default limits.
    pub fn new(roots: Vec<ScanRoot>) -> Self {
        Self {
            roots,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_files: DEFAULT_MAX_FILES,
        }
    }
}

/// One place to scan. All three are scanned the same way (a file is read, a directory
/// is walked recursively, skipping `.git`); they differ in how paths are shown:
/// findings under a `WorkTree` are shown relative to it (`.env:3`), findings under a
/// `History` or `Path` root keep the root's spelling (`notebooks/a.ipynb:12`), so the
/// output matches what the user typed and stays unambiguous across several roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanRoot {
    /// A git work tree: every file, tracked, untracked and ignored, never inside `.git/`.
    WorkTree(PathBuf),
    /// One shell history file.
    History(PathBuf),
    /// A file or a directory (recursive), from `--scan`.
    Path(PathBuf),
}

impl ScanRoot {
    fn path(&self) -> &Path {
        match self {
            ScanRoot::WorkTree(p) | ScanRoot::History(p) | ScanRoot::Path(p) => p,
        }
    }
}

/// One line that holds a copy of a needle. Holds no part of the value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
    pub kind: &'static str,
}

/// The outcome of a scan. Holds no part of any value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Sorted by path, then line, then kind.
    pub findings: Vec<Finding>,
    /// Text files read to the end.
    pub files_scanned: usize,
    /// Files with a NUL byte in their first 8 KiB, not searched.
    pub skipped_binary: usize,
    /// Files over `max_file_bytes`, not searched, sorted.
    pub skipped_large: Vec<PathBuf>,
    /// Files and directories that could not be read (permission denied, vanished, a
    /// `--scan` path that does not exist).
    pub unreadable: usize,
    /// The walk stopped at `max_files`: some files were not looked at.
    pub truncated: bool,
}

impl ScanReport {
    /// Human lines for the terminal: one `  path:line  kind` line per finding (or
    /// `nothing found in N files`), then what was skipped. Never a value.
    pub fn summary_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.findings.is_empty() {
            lines.push(format!(
                "nothing found in {}",
                plural(self.files_scanned, "file", "files")
            ));
        } else {
            lines.push(format!(
                "found {} in {} scanned:",
                plural(self.findings.len(), "plain-text copy", "plain-text copies"),
                plural(self.files_scanned, "file", "files")
            ));
            for f in &self.findings {
                lines.push(format!("  {}:{}  {}", f.path.display(), f.line, f.kind));
            }
        }
        if self.skipped_binary > 0 {
            lines.push(format!(
                "skipped {} (not searched)",
                plural(self.skipped_binary, "binary file", "binary files")
            ));
        }
        if !self.skipped_large.is_empty() {
            let mut names: Vec<String> = self
                .skipped_large
                .iter()
                .take(LARGE_LIST_MAX)
                .map(|p| p.display().to_string())
                .collect();
            if self.skipped_large.len() > LARGE_LIST_MAX {
                names.push(format!(
                    "and {} more",
                    self.skipped_large.len() - LARGE_LIST_MAX
                ));
            }
            lines.push(format!(
                "skipped {} over the size limit: {}",
                plural(self.skipped_large.len(), "file", "files"),
                names.join(", ")
            ));
        }
        if self.unreadable > 0 {
            lines.push(format!(
                "could not read {}",
                plural(self.unreadable, "file or directory", "files or directories")
            ));
        }
        if self.truncated {
            lines.push(
                "stopped at the file limit: the scan is incomplete, some files were not searched"
                    .to_string(),
            );
        }
        lines
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The git work tree containing `start`: the nearest ancestor (or `start` itself) that
/// has a `.git` entry, a directory or a file (linked worktrees, submodules). `start`
/// should be absolute; a relative path is only walked up as far as it goes.
pub fn find_git_work_tree(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .filter(|dir| !dir.as_os_str().is_empty())
        .find(|dir| fs::symlink_metadata(dir.join(".git")).is_ok())
        .map(Path::to_path_buf)
}

/// The shell and REPL history files that exist, in this order, without duplicates:
/// `$HISTFILE` (passed in), `~/.bash_history`, `~/.zsh_history`, `~/.zhistory`,
/// `~/.local/share/fish/fish_history`, `~/.python_history`. IPython's
/// `history.sqlite` is binary and not listed (the scan would skip it anyway).
pub fn history_files(home: &Path, histfile: Option<&Path>) -> Vec<PathBuf> {
    let candidates = histfile.map(Path::to_path_buf).into_iter().chain(
        [
            ".bash_history",
            ".zsh_history",
            ".zhistory",
            ".local/share/fish/fish_history",
            ".python_history",
        ]
        .iter()
        .map(|rel| home.join(rel)),
    );
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    for path in candidates {
        // Follows symlinks: a history file linked from a dotfiles repo still counts.
        if !fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let key = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if seen.insert(key) {
            found.push(path);
        }
    }
    found
}

/// The plan `regenerate` and `doctor` use: the git work tree around `cwd` (or `cwd`
/// itself as a `Path` when it is not in one), the history files, then the `extra`
/// paths from `--scan`, with the default limits.
pub fn default_plan(
    cwd: &Path,
    home: &Path,
    histfile: Option<&Path>,
    extra: &[PathBuf],
) -> ScanPlan {
    let mut roots = Vec::new();
    match find_git_work_tree(cwd) {
        Some(tree) => roots.push(ScanRoot::WorkTree(tree)),
        None => roots.push(ScanRoot::Path(cwd.to_path_buf())),
    }
    roots.extend(
        history_files(home, histfile)
            .into_iter()
            .map(ScanRoot::History),
    );
    roots.extend(extra.iter().cloned().map(ScanRoot::Path));
    ScanPlan::new(roots)
}

/// A needle as the search uses it: the borrowed bytes of the value.
struct Probe<'a> {
    kind: &'static str,
    bytes: &'a [u8],
}

/// The scan state shared across roots.
struct Scanner<'a> {
    plan: &'a ScanPlan,
    probes: Vec<Probe<'a>>,
    /// Canonical paths of files already looked at (roots may overlap).
    seen: HashSet<PathBuf>,
    /// Files looked at, for `max_files`.
    considered: usize,
    report: ScanReport,
}

enum Outcome {
    Text,
    Binary,
    Large,
}

/// Scans every root of `plan` for every usable needle. Never fails: what cannot be read
/// is counted in `unreadable`. With no usable needle (all empty or shorter than
/// [`MIN_NEEDLE_CHARS`]) nothing is read and the report is empty.
pub fn scan(plan: &ScanPlan, needles: &[Needle]) -> ScanReport {
    let probes: Vec<Probe<'_>> = needles
        .iter()
        .filter(|n| n.value.expose().chars().count() >= MIN_NEEDLE_CHARS)
        .map(|n| Probe {
            kind: n.kind,
            // A call site where the value leaves its wrapper: borrowed for the byte
            // comparison only, never copied, never shown.
            bytes: n.value.expose().as_bytes(),
        })
        .collect();
    let mut scanner = Scanner {
        plan,
        probes,
        seen: HashSet::new(),
        considered: 0,
        report: ScanReport::default(),
    };
    if scanner.probes.is_empty() {
        return scanner.report;
    }

    // Single-file roots first, so a large tree cannot push them past `max_files`.
    let mut dirs = Vec::new();
    for root in &plan.roots {
        let path = root.path();
        match fs::metadata(path) {
            Ok(meta) if meta.is_file() => {
                if !scanner.visit_file(path, path.to_path_buf()) {
                    break;
                }
            }
            Ok(meta) if meta.is_dir() => dirs.push(root),
            Ok(_) => {} // a FIFO, socket or device named as a root: nothing to read
            Err(_) => scanner.report.unreadable += 1,
        }
    }
    if !scanner.report.truncated {
        for root in dirs {
            if !scanner.walk(root) {
                break;
            }
        }
    }

    let mut report = scanner.report;
    report.findings.sort();
    report.findings.dedup();
    report.skipped_large.sort();
    report
}

impl Scanner<'_> {
    /// Walks a directory root breadth-first (shallow files first, so a truncated scan
    /// still covers the top-level `.env`), entries in name order (deterministic).
    /// Returns false when the file limit was hit.
    fn walk(&mut self, root: &ScanRoot) -> bool {
        let base = root.path();
        let Ok(canonical_base) = fs::canonicalize(base) else {
            self.report.unreadable += 1;
            return true;
        };
        let mut queue: VecDeque<PathBuf> = VecDeque::from([PathBuf::new()]);
        while let Some(rel_dir) = queue.pop_front() {
            let dir = base.join(&rel_dir);
            let Ok(read) = fs::read_dir(&dir) else {
                self.report.unreadable += 1;
                continue;
            };
            let mut entries: Vec<(OsString, fs::FileType)> = Vec::new();
            for entry in read {
                match entry.and_then(|e| Ok((e.file_name(), e.file_type()?))) {
                    Ok(pair) => entries.push(pair),
                    Err(_) => self.report.unreadable += 1,
                }
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (name, file_type) in entries {
                if name == ".git" {
                    continue;
                }
                let rel = rel_dir.join(&name);
                // `DirEntry::file_type` does not follow symlinks, so a symlink is
                // neither a dir nor a file here and is skipped.
                if file_type.is_dir() {
                    queue.push_back(rel);
                } else if file_type.is_file() {
                    let shown = match root {
                        ScanRoot::WorkTree(_) => rel.clone(),
                        ScanRoot::History(_) | ScanRoot::Path(_) => base.join(&rel),
                    };
                    let path = base.join(&rel);
                    // Names below a canonical base, symlinks never followed: canonical.
                    let key = canonical_base.join(&rel);
                    if !self.visit_file_keyed(&path, shown, key) {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// A single-file root. Returns false when the file limit was hit.
    fn visit_file(&mut self, path: &Path, shown: PathBuf) -> bool {
        let key = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.visit_file_keyed(path, shown, key)
    }

    fn visit_file_keyed(&mut self, path: &Path, shown: PathBuf, key: PathBuf) -> bool {
        if self.seen.contains(&key) {
            return true;
        }
        if self.considered >= self.plan.max_files {
            self.report.truncated = true;
            return false;
        }
        self.considered += 1;
        self.seen.insert(key);
        let shown = self.redact_path(shown);
        let mut hits = Vec::new();
        match scan_file(path, self.plan.max_file_bytes, &self.probes, &mut hits) {
            Ok(Outcome::Text) => self.report.files_scanned += 1,
            Ok(Outcome::Binary) => self.report.skipped_binary += 1,
            Ok(Outcome::Large) => self.report.skipped_large.push(shown.clone()),
            // Lines found before a read error are still reported.
            Err(_) => self.report.unreadable += 1,
        }
        self.report
            .findings
            .extend(hits.into_iter().map(|(line, kind)| Finding {
                path: shown.clone(),
                line,
                kind,
            }));
        true
    }

    /// A file *name* can hold a value too (a token cached as `token_<value>.json`):
    /// the shown path then carries `<kind>` in place of the value.
    fn redact_path(&self, shown: PathBuf) -> PathBuf {
        let text = shown.to_string_lossy();
        if !self
            .probes
            .iter()
            .any(|p| contains(text.as_bytes(), p.bytes))
        {
            return shown;
        }
        let mut text = text.into_owned();
        for p in &self.probes {
            let value = String::from_utf8_lossy(p.bytes);
            text = text.replace(value.as_ref(), &format!("<{}>", p.kind));
        }
        PathBuf::from(text)
    }
}

/// Reads one regular file line by line and records `(line, kind)` for every line that
/// holds a probe. One line buffer, reused; a line may be as long as the file (minified
/// JSON), which `max_file_bytes` bounds.
fn scan_file(
    path: &Path,
    max_file_bytes: u64,
    probes: &[Probe<'_>],
    hits: &mut Vec<(usize, &'static str)>,
) -> io::Result<Outcome> {
    let mut file = File::open(path)?;
    // The size of what was opened, not of what the name pointed to a moment ago.
    if file.metadata()?.len() > max_file_bytes {
        return Ok(Outcome::Large);
    }
    let mut head = Vec::new();
    file.by_ref()
        .take(BINARY_SNIFF_BYTES)
        .read_to_end(&mut head)?;
    if head.contains(&0) {
        return Ok(Outcome::Binary);
    }
    // A file growing while it is read is cut at the limit.
    let rest = max_file_bytes.saturating_sub(head.len() as u64);
    let mut reader = BufReader::new(Cursor::new(head).chain(file.take(rest)));
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        for probe in probes {
            if contains(&line, probe.bytes) {
                hits.push((number, probe.kind));
            }
        }
    }
    Ok(Outcome::Text)
}

/// Whether `needle` occurs in `haystack` (non-empty needle).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return false;
    };
    if haystack.len() < needle.len() {
        return false;
    }
    let last_start = haystack.len() - needle.len();
    let mut from = 0;
    while from <= last_start {
        match haystack[from..=last_start].iter().position(|&b| b == first) {
            Some(offset) => {
                let at = from + offset;
                if &haystack[at + 1..at + needle.len()] == rest {
                    return true;
                }
                from = at + 1;
            }
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3tABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const TOKEN: &str = "t0kenabcdefghijklmnopqrstuvwxyz9";

    fn needles() -> Vec<Needle> {
        vec![
            Needle {
                kind: "api_secret",
                value: Secret::from(SECRET),
            },
            Needle {
                kind: "access_token",
                value: Secret::from(TOKEN),
            },
        ]
    }

    fn write(path: &Path, content: &[u8]) {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(path, content).unwrap();
    }

    fn finding(path: &str, line: usize, kind: &'static str) -> Finding {
        Finding {
            path: PathBuf::from(path),
            line,
            kind,
        }
    }

    /// Every text a user or a log could see of this report and plan.
    fn assert_no_values(report: &ScanReport, plan: &ScanPlan) {
        let shown = format!(
            "{}\n{report:?}\n{plan:?}\n{:?}",
            report.summary_lines().join("\n"),
            needles()
        );
        assert!(!shown.contains(SECRET), "secret shown: {shown}");
        assert!(!shown.contains(TOKEN), "token shown: {shown}");
        // Not even a long piece of one.
        assert!(!shown.contains(&SECRET[4..20]), "{shown}");
        assert!(!shown.contains(&TOKEN[4..20]), "{shown}");
    }

    /// A work tree (a `.git` dir is all it takes) with every kind of file the brief
    /// lists. Returns (tree, a dir outside it).
    fn work_tree() -> (tempfile::TempDir, tempfile::TempDir) {
        let tree = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let t = tree.path();
        fs::create_dir(t.join(".git")).unwrap();
        write(
            &t.join(".git/config"),
            format!("[kite]\n\tsecret = {SECRET}\n").as_bytes(),
        );
        write(
            &t.join("config.py"),
            format!("import os\n\nAPI_SECRET = '{SECRET}'\nAPI_KEY = 'abc'\n").as_bytes(),
        );
        write(
            &t.join(".env"),
            format!("KITE_API_KEY=abc\nKITE_API_SECRET=\"{SECRET}\"\n").as_bytes(),
        );
        let notebook = format!(
            "{{\n \"cells\": [\n  {{\n   \"cell_type\": \"code\",\n   \"source\": [\n    \"from kiteconnect import KiteConnect\\n\",\n    \"kite.set_access_token('{TOKEN}')\\n\"\n   ]\n  }}\n ]\n}}\n"
        );
        write(&t.join("analysis.ipynb"), notebook.as_bytes());
        write(
            &t.join("bots/deep/run.sh"),
            format!(
                "#!/bin/sh\n# token\nexport KITE_ACCESS_TOKEN={TOKEN} KITE_API_SECRET={SECRET}\n"
            )
            .as_bytes(),
        );
        let mut binary = b"\x7fELF\x00\x01\x02".to_vec();
        binary.extend_from_slice(SECRET.as_bytes());
        write(&t.join("bin/tool"), &binary);
        // Just over a 64 KiB limit used by the tests, with the secret on line 1.
        let mut large = format!("{SECRET}\n").into_bytes();
        large.resize(64 * 1024 + 1, b'x');
        write(&t.join("data/big.log"), &large);
        write(&t.join("clean.txt"), b"nothing here\n");
        write(
            &outside.path().join("leak.txt"),
            format!("{SECRET}\n").as_bytes(),
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(outside.path(), t.join("outside-dir")).unwrap();
            std::os::unix::fs::symlink(outside.path().join("leak.txt"), t.join("leak-link"))
                .unwrap();
            // A loop: followed, it would never end.
            std::os::unix::fs::symlink(t, t.join("bots/loop")).unwrap();
        }
        (tree, outside)
    }

    #[test]
    fn work_tree_scan_finds_every_copy_and_skips_the_rest() {
        let (tree, _outside) = work_tree();
        let plan = ScanPlan {
            roots: vec![ScanRoot::WorkTree(tree.path().to_path_buf())],
            max_file_bytes: 64 * 1024,
            max_files: 100,
        };
        let report = scan(&plan, &needles());
        assert_eq!(
            report.findings,
            vec![
                finding(".env", 2, "api_secret"),
                finding("analysis.ipynb", 7, "access_token"),
                finding("bots/deep/run.sh", 3, "access_token"),
                finding("bots/deep/run.sh", 3, "api_secret"),
                finding("config.py", 3, "api_secret"),
            ],
            "{:?}",
            report.summary_lines()
        );
        // .env, analysis.ipynb, clean.txt, config.py, run.sh; not .git/config, not the
        // symlinked file or dir.
        assert_eq!(report.files_scanned, 5);
        assert_eq!(report.skipped_binary, 1);
        assert_eq!(report.skipped_large, vec![PathBuf::from("data/big.log")]);
        assert_eq!(report.unreadable, 0);
        assert!(!report.truncated);

        let summary = report.summary_lines();
        assert_eq!(summary[0], "found 5 plain-text copies in 5 files scanned:");
        assert!(summary.contains(&"  .env:2  api_secret".to_string()));
        assert!(summary.contains(&"  config.py:3  api_secret".to_string()));
        assert!(summary.contains(&"skipped 1 binary file (not searched)".to_string()));
        assert!(summary.contains(&"skipped 1 file over the size limit: data/big.log".to_string()));
        assert_no_values(&report, &plan);
    }

    #[test]
    fn history_files_are_found_and_scanned() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        write(
            &h.join(".bash_history"),
            format!("ls\nexport KITE_API_SECRET={SECRET}\n").as_bytes(),
        );
        write(
            &h.join(".zsh_history"),
            format!(": 1700000000:0;cd\n: 1700000001:0;export KITE_API_SECRET={SECRET}\n")
                .as_bytes(),
        );
        write(
            &h.join(".local/share/fish/fish_history"),
            format!("- cmd: ls\n  when: 1700000000\n- cmd: set -x KITE_ACCESS_TOKEN {TOKEN}\n  when: 1700000001\n").as_bytes(),
        );
        let custom = h.join("custom_hist");
        write(&custom, format!("curl -d api_secret={SECRET}\n").as_bytes());

        let files = history_files(h, Some(&custom));
        assert_eq!(
            files,
            vec![
                custom.clone(),
                h.join(".bash_history"),
                h.join(".zsh_history"),
                h.join(".local/share/fish/fish_history"),
            ]
        );
        // $HISTFILE pointing at a file already listed is not listed twice.
        let zsh = h.join(".zsh_history");
        assert_eq!(history_files(h, Some(&zsh)).len(), 3);
        // Missing files are not listed.
        assert!(history_files(&h.join("nope"), None).is_empty());

        let plan = ScanPlan::new(files.into_iter().map(ScanRoot::History).collect());
        let report = scan(&plan, &needles());
        let shown = |p: &str| h.join(p);
        assert_eq!(
            report.findings,
            vec![
                Finding {
                    path: shown(".bash_history"),
                    line: 2,
                    kind: "api_secret"
                },
                Finding {
                    path: shown(".local/share/fish/fish_history"),
                    line: 3,
                    kind: "access_token"
                },
                Finding {
                    path: shown(".zsh_history"),
                    line: 2,
                    kind: "api_secret"
                },
                Finding {
                    path: custom,
                    line: 1,
                    kind: "api_secret"
                },
            ]
        );
        assert_eq!(report.files_scanned, 4);
        assert_no_values(&report, &plan);
    }

    #[test]
    fn default_plan_covers_tree_histories_and_extras() {
        let (tree, outside) = work_tree();
        let home = tempfile::tempdir().unwrap();
        write(
            &home.path().join(".bash_history"),
            format!("echo {TOKEN}\n").as_bytes(),
        );
        let nested = tree.path().join("bots/deep");
        let extra = vec![outside.path().to_path_buf()];
        let plan = default_plan(&nested, home.path(), None, &extra);
        assert_eq!(
            plan.roots,
            vec![
                ScanRoot::WorkTree(tree.path().to_path_buf()),
                ScanRoot::History(home.path().join(".bash_history")),
                ScanRoot::Path(outside.path().to_path_buf()),
            ]
        );
        assert_eq!(plan.max_file_bytes, DEFAULT_MAX_FILE_BYTES);
        assert_eq!(plan.max_files, DEFAULT_MAX_FILES);
        let report = scan(&plan, &needles());
        assert!(report.findings.contains(&Finding {
            path: home.path().join(".bash_history"),
            line: 1,
            kind: "access_token"
        }));
        assert!(report.findings.contains(&Finding {
            path: outside.path().join("leak.txt"),
            line: 1,
            kind: "api_secret"
        }));
        assert!(
            report
                .findings
                .contains(&finding("config.py", 3, "api_secret"))
        );
        // The default limit is 5 MiB: big.log is small enough now.
        assert!(report.skipped_large.is_empty());
        assert!(
            report
                .findings
                .contains(&finding("data/big.log", 1, "api_secret"))
        );
        assert_no_values(&report, &plan);

        // Outside a repo, cwd itself is scanned as a plain path.
        let not_a_repo = tempfile::tempdir().unwrap();
        let plan = default_plan(not_a_repo.path(), home.path(), None, &[]);
        assert_eq!(
            plan.roots[0],
            ScanRoot::Path(not_a_repo.path().to_path_buf())
        );
    }

    #[test]
    fn overlapping_roots_report_a_file_once() {
        let (tree, _outside) = work_tree();
        let plan = ScanPlan::new(vec![
            ScanRoot::WorkTree(tree.path().to_path_buf()),
            ScanRoot::Path(tree.path().join("config.py")),
            ScanRoot::Path(tree.path().join("bots")),
        ]);
        let report = scan(&plan, &needles());
        let config_hits = report
            .findings
            .iter()
            .filter(|f| f.path.ends_with("config.py"))
            .count();
        assert_eq!(config_hits, 1, "{:?}", report.findings);
        let run_hits = report
            .findings
            .iter()
            .filter(|f| f.path.ends_with("run.sh"))
            .count();
        assert_eq!(run_hits, 2, "{:?}", report.findings);
        // The explicit file root is scanned first and keeps its own spelling.
        assert!(report.findings.contains(&Finding {
            path: tree.path().join("config.py"),
            line: 3,
            kind: "api_secret"
        }));
    }

    #[test]
    fn find_git_work_tree_walks_up() {
        let (tree, outside) = work_tree();
        let nested = tree.path().join("bots/deep");
        assert_eq!(find_git_work_tree(&nested).as_deref(), Some(tree.path()));
        assert_eq!(
            find_git_work_tree(tree.path()).as_deref(),
            Some(tree.path())
        );
        // A `.git` file (linked worktree, submodule) counts too.
        let linked = tempfile::tempdir().unwrap();
        write(&linked.path().join(".git"), b"gitdir: /elsewhere\n");
        fs::create_dir(linked.path().join("src")).unwrap();
        assert_eq!(
            find_git_work_tree(&linked.path().join("src")).as_deref(),
            Some(linked.path())
        );
        // Outside any repo (assumes the temp dir is not inside one).
        if find_git_work_tree(&std::env::temp_dir()).is_none() {
            assert_eq!(find_git_work_tree(outside.path()), None);
        }
    }

    #[test]
    fn clean_scan_says_nothing_found() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("a.txt"), b"hello\n");
        write(&dir.path().join("sub/b.json"), b"{\"k\": 1}");
        let plan = ScanPlan::new(vec![ScanRoot::Path(dir.path().to_path_buf())]);
        let report = scan(&plan, &needles());
        assert!(report.findings.is_empty());
        assert_eq!(report.files_scanned, 2);
        assert_eq!(report.summary_lines(), vec!["nothing found in 2 files"]);
    }

    #[test]
    fn short_and_empty_needles_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("a.txt"), b"abc\nabcdefg\n\n");
        let plan = ScanPlan::new(vec![ScanRoot::Path(dir.path().to_path_buf())]);
        let ignored = vec![
            Needle {
                kind: "api_secret",
                value: Secret::from(""),
            },
            Needle {
                kind: "access_token",
                value: Secret::from("abcdefg"),
            },
        ];
        let report = scan(&plan, &ignored);
        assert!(report.findings.is_empty());
        assert_eq!(report.files_scanned, 0, "nothing is read without a needle");

        // Mixed: the usable needle still works, the empty one matches nothing.
        write(
            &dir.path().join("b.txt"),
            format!("x{SECRET}x\n").as_bytes(),
        );
        let mut mixed = ignored;
        mixed.push(needles().remove(0));
        let report = scan(&plan, &mixed);
        assert_eq!(
            report.findings,
            vec![Finding {
                path: dir.path().join("b.txt"),
                line: 1,
                kind: "api_secret"
            }]
        );
        assert_eq!(report.files_scanned, 2);
    }

    #[test]
    fn long_lines_and_invalid_utf8_are_searched() {
        let dir = tempfile::tempdir().unwrap();
        let mut minified = b"{\"a\":\"".to_vec();
        minified.extend(std::iter::repeat_n(b'y', 1024 * 1024));
        minified.extend_from_slice(b"\xff\xfe\",\"api_secret\":\"");
        minified.extend_from_slice(SECRET.as_bytes());
        minified.extend_from_slice(b"\"}");
        write(&dir.path().join("min.json"), &minified);
        // The value straddling the 8 KiB sniff boundary.
        let mut straddle = vec![b'z'; 8 * 1024 - 5];
        straddle.extend_from_slice(TOKEN.as_bytes());
        write(&dir.path().join("edge.txt"), &straddle);
        let plan = ScanPlan::new(vec![ScanRoot::Path(dir.path().to_path_buf())]);
        let report = scan(&plan, &needles());
        assert_eq!(
            report.findings,
            vec![
                Finding {
                    path: dir.path().join("edge.txt"),
                    line: 1,
                    kind: "access_token"
                },
                Finding {
                    path: dir.path().join("min.json"),
                    line: 1,
                    kind: "api_secret"
                },
            ]
        );
    }

    #[test]
    fn file_limit_truncates_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5 {
            write(
                &dir.path().join(format!("f{i}.txt")),
                format!("{SECRET}\n").as_bytes(),
            );
        }
        let plan = ScanPlan {
            roots: vec![ScanRoot::WorkTree(dir.path().to_path_buf())],
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_files: 2,
        };
        let report = scan(&plan, &needles());
        assert!(report.truncated);
        assert_eq!(report.files_scanned, 2);
        assert_eq!(
            report.findings,
            vec![
                finding("f0.txt", 1, "api_secret"),
                finding("f1.txt", 1, "api_secret")
            ]
        );
        let summary = report.summary_lines();
        assert!(
            summary.last().unwrap().contains("incomplete"),
            "{summary:?}"
        );
        assert_no_values(&report, &plan);
    }

    #[test]
    fn missing_paths_count_as_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let plan = ScanPlan::new(vec![ScanRoot::Path(dir.path().join("missing"))]);
        let report = scan(&plan, &needles());
        assert_eq!(report.unreadable, 1);
        assert!(
            report
                .summary_lines()
                .contains(&"could not read 1 file or directory".to_string())
        );
    }

    #[cfg(unix)]
    #[test]
    fn permission_denied_is_counted_not_fatal() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("ok.txt"), format!("{SECRET}\n").as_bytes());
        write(
            &dir.path().join("locked.txt"),
            format!("{SECRET}\n").as_bytes(),
        );
        write(&dir.path().join("closed/inner.txt"), b"x\n");
        fs::set_permissions(
            dir.path().join("locked.txt"),
            fs::Permissions::from_mode(0o000),
        )
        .unwrap();
        fs::set_permissions(dir.path().join("closed"), fs::Permissions::from_mode(0o000)).unwrap();
        let plan = ScanPlan::new(vec![ScanRoot::WorkTree(dir.path().to_path_buf())]);
        let report = scan(&plan, &needles());
        // Root reads through permissions; anyone else cannot.
        let privileged = File::open(dir.path().join("locked.txt")).is_ok();
        fs::set_permissions(dir.path().join("closed"), fs::Permissions::from_mode(0o755)).unwrap();
        assert!(
            report
                .findings
                .contains(&finding("ok.txt", 1, "api_secret"))
        );
        if privileged {
            assert_eq!(report.unreadable, 0);
            assert_eq!(report.files_scanned, 3);
        } else {
            assert_eq!(report.unreadable, 2, "{report:?}");
            assert_eq!(report.files_scanned, 1);
        }
    }

    #[test]
    fn a_value_in_a_file_name_is_redacted() {
        let dir = tempfile::tempdir().unwrap();
        write(
            &dir.path().join(format!("token_{TOKEN}.json")),
            format!("{{\"access_token\": \"{TOKEN}\"}}").as_bytes(),
        );
        let plan = ScanPlan::new(vec![ScanRoot::WorkTree(dir.path().to_path_buf())]);
        let report = scan(&plan, &needles());
        assert_eq!(
            report.findings,
            vec![finding("token_<access_token>.json", 1, "access_token")]
        );
        assert_no_values(&report, &plan);
    }

    #[test]
    fn contains_finds_substrings() {
        assert!(contains(b"abcdef", b"cde"));
        assert!(contains(b"abcdef", b"abcdef"));
        assert!(contains(b"aaab", b"aab"));
        assert!(!contains(b"abcdef", b"abd"));
        assert!(!contains(b"ab", b"abc"));
        assert!(!contains(b"abc", b""));
    }
}
