//! The history part of the scan: every file version reachable from any ref, the stash and
//! the reflog, searched for the values; each copy reported with the commit that added it
//! and whether a remote-tracking branch contains that commit.
//!
//! Why git itself, in three steps, rather than a crate or one command:
//! - `git rev-list --objects --all --reflog` lists exactly the reachable blobs with a path
//!   each, the stash (`refs/stash` and its reflog) and detached reflog entries included;
//!   `git cat-file --batch-all-objects` would also find blobs, but not their commits, and
//!   would add unreachable garbage the user cannot push anyway;
//! - `git cat-file --batch` streams each blob once (history repeats a blob in every commit
//!   that keeps it; `git log -p` would search the same bytes again per diff), so the search
//!   costs one pass over the distinct contents;
//! - only for the few blobs that hold a value, `git log --find-object` names the commits
//!   that added them, and `git rev-list --remotes` which commits are pushed.
//!
//! git reads packfiles, alternates, partial clones and every repository format it knows,
//! which a pure-Rust reader would have to keep up with (and gix is a large tree). git is
//! a process spawn, so it sits behind [`GitRunner`]; tests can hand in one that fails.

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::clock::{Monotonic, SystemMonotonic};

use super::search::{Hit, Matcher};
use super::{Finding, Location, ScanReport};

/// The one place the leak scan starts a process.
pub trait GitRunner: Sync {
    /// Runs `git -C dir args…` with `input` on its stdin and hands its stdout to `read` as
    /// it arrives. An error when git cannot start, exits non-zero, or `read` fails (git is
    /// then stopped).
    fn run(
        &self,
        dir: &Path,
        args: &[&str],
        input: &[u8],
        read: &mut dyn FnMut(&mut dyn BufRead) -> io::Result<()>,
    ) -> io::Result<()>;
}

/// The real git on `PATH`.
pub struct GitCli;

impl GitRunner for GitCli {
    fn run(
        &self,
        dir: &Path,
        args: &[&str],
        input: &[u8],
        read: &mut dyn FnMut(&mut dyn BufRead) -> io::Result<()>,
    ) -> io::Result<()> {
        #[allow(clippy::disallowed_methods)] // the git adapter of the leak scan
        let mut child = Command::new("git")
            .arg("-C")
            .arg(dir)
            // Quoted paths would not match the tree's spelling; no pager, no prompts.
            .args(["-c", "core.quotePath=false", "--no-pager"])
            .args(args)
            // `-C dir` decides the repository, not a GIT_DIR left by a hook.
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let result = std::thread::scope(|scope| {
            // Written from another thread: git answers while it reads, and a full stdout
            // pipe would otherwise block both sides.
            scope.spawn(move || {
                if let Some(mut stdin) = stdin.take() {
                    let _ = stdin.write_all(input);
                }
            });
            let mut out = BufReader::with_capacity(256 * 1024, stdout.expect("piped stdout"));
            let result = read(&mut out);
            if result.is_err() {
                let _ = child.kill();
            }
            // Drain what is left so git is never blocked on a full pipe while we wait.
            let _ = io::copy(&mut out, &mut io::sink());
            result
        });
        let status = child.wait()?;
        result?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "git {} failed: {status}",
                args[0]
            )))
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "leak scan time budget")
}

/// Searches the history of the work tree `tree`, adding to `report`. A git that is missing
/// or fails adds the tree to `history_failed`; a spent time budget sets `truncated`.
pub(super) fn scan_history(
    git: &dyn GitRunner,
    tree: &Path,
    matcher: &Matcher,
    deadline: Instant,
    report: &mut ScanReport,
) {
    match search_history(git, tree, matcher, deadline, report) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::TimedOut => report.truncated = true,
        Err(_) => report.history_failed.push(tree.to_path_buf()),
    }
}

fn search_history(
    git: &dyn GitRunner,
    tree: &Path,
    matcher: &Matcher,
    deadline: Instant,
    report: &mut ScanReport,
) -> io::Result<()> {
    // Step 1: reachable objects, each with the first path it was seen at.
    let mut objects: Vec<(String, String)> = Vec::new();
    git.run(
        tree,
        &["rev-list", "--objects", "--all", "--reflog"],
        b"",
        &mut |out| {
            let mut line = String::new();
            while out.read_line(&mut line)? > 0 {
                if SystemMonotonic.now() >= deadline {
                    return Err(timed_out());
                }
                // Commits come alone, the root tree with an empty path: neither is a file.
                if let Some((id, path)) = line.trim_end_matches('\n').split_once(' ')
                    && !path.is_empty()
                {
                    objects.push((id.to_string(), path.to_string()));
                }
                line.clear();
            }
            Ok(())
        },
    )?;

    // Step 2: every object once through cat-file; trees are skipped by type.
    let input: Vec<u8> = objects
        .iter()
        .flat_map(|(id, _)| id.bytes().chain(std::iter::once(b'\n')))
        .collect();
    let paths: HashMap<&str, &str> = objects
        .iter()
        .map(|(id, p)| (id.as_str(), p.as_str()))
        .collect();
    let mut hit_blobs: Vec<(String, Vec<&'static str>)> = Vec::new();
    let mut blobs = 0usize;
    git.run(tree, &["cat-file", "--batch"], &input, &mut |out| {
        let (mut header, mut buf, mut hits) = (Vec::new(), Vec::new(), Vec::<Hit>::new());
        loop {
            header.clear();
            if out.read_until(b'\n', &mut header)? == 0 {
                return Ok(());
            }
            if SystemMonotonic.now() >= deadline {
                return Err(timed_out());
            }
            let text = String::from_utf8_lossy(&header);
            let mut fields = text.split_whitespace();
            let (Some(id), Some(kind), Some(size)) = (fields.next(), fields.next(), fields.next())
            else {
                continue; // `<id> missing`: nothing follows
            };
            let size: u64 = size.parse().map_err(io::Error::other)?;
            let mut body = (&mut *out).take(size);
            if kind == "blob" {
                blobs += 1;
                hits.clear();
                matcher.search_stream(&mut body, Some(size), &mut buf, &mut hits)?;
                if !hits.is_empty() {
                    let mut kinds: Vec<&'static str> = hits.iter().map(|h| h.1).collect();
                    kinds.sort_unstable();
                    kinds.dedup();
                    hit_blobs.push((id.to_string(), kinds));
                }
            }
            io::copy(&mut body, &mut io::sink())?;
            let mut newline = [0u8; 1];
            out.read_exact(&mut newline)?;
        }
    })?;
    report.history_blobs += blobs;
    if hit_blobs.is_empty() {
        return Ok(());
    }

    // Step 3: which commits added those blobs, and which commits are pushed.
    let mut pushed: HashSet<String> = HashSet::new();
    git.run(tree, &["rev-list", "--remotes"], b"", &mut |out| {
        for line in out.lines() {
            pushed.insert(line?);
        }
        Ok(())
    })?;
    for (blob, kinds) in hit_blobs {
        let mut added = added_by(git, tree, &blob)?;
        if added.is_empty() {
            // Added by a merge resolution only: the path is known, the commit is not.
            let path = paths.get(blob.as_str()).copied().unwrap_or("?");
            added.push(("unknown".into(), String::new(), path.to_string()));
        }
        for (short, full, path) in added {
            let path = matcher.redact_path(PathBuf::from(path));
            for kind in &kinds {
                report.findings.push(Finding {
                    path: path.clone(),
                    at: Location::Commit {
                        commit: short.clone(),
                        pushed: pushed.contains(&full),
                    },
                    kind,
                });
            }
        }
    }
    Ok(())
}

/// The commits (short hash, full hash, path) whose change set `blob` as a file's content.
/// `-m` shows merges (the stash's work-tree commit is one) against each parent.
fn added_by(
    git: &dyn GitRunner,
    tree: &Path,
    blob: &str,
) -> io::Result<Vec<(String, String, String)>> {
    let find = format!("--find-object={blob}");
    let args = [
        "log",
        "--all",
        "--reflog",
        "-m",
        "--raw",
        "--format=%x01%H %h",
        &find,
    ];
    let mut added = Vec::new();
    git.run(tree, &args, b"", &mut |out| {
        let mut commit: Option<(String, String)> = None;
        for line in out.lines() {
            let line = line?;
            if let Some(rest) = line.strip_prefix('\u{1}') {
                commit = rest
                    .split_once(' ')
                    .map(|(full, short)| (full.to_string(), short.to_string()));
            } else if let (Some(raw), Some((full, short))) = (line.strip_prefix(':'), &commit) {
                // `:old_mode new_mode old_id new_id status<TAB>path`
                let Some((meta, path)) = raw.split_once('\t') else {
                    continue;
                };
                // Raw ids are abbreviated like `%h`, to a prefix git keeps unique.
                if meta
                    .split(' ')
                    .nth(3)
                    .is_some_and(|id| id.len() >= 7 && blob.starts_with(id))
                {
                    let entry = (short.clone(), full.clone(), path.to_string());
                    if !added.contains(&entry) {
                        added.push(entry);
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok(added)
}
