//! The file part of the scan: single-file roots first, then each directory root walked in
//! parallel on every core, every file searched by one reused buffer per thread.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::clock::{Monotonic, SystemMonotonic};

use ignore::{WalkBuilder, WalkState};

use super::search::{Hit, Matcher};
use super::{Finding, ScanPlan, ScanReport, ScanRoot};

/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// What the walking threads share. Counters are atomics; the lists are locked only to
/// add a finding or a skipped file, and `seen` once per file (roots may overlap).
struct Shared<'a> {
    plan: &'a ScanPlan,
    matcher: &'a Matcher,
    deadline: Instant,
    seen: Mutex<HashSet<PathBuf>>,
    findings: Mutex<Vec<Finding>>,
    large: Mutex<Vec<PathBuf>>,
    files: AtomicUsize,
    binary: AtomicUsize,
    unreadable: AtomicUsize,
    truncated: AtomicBool,
}

/// One thread's reused buffers.
#[derive(Default)]
struct Scratch {
    buf: Vec<u8>,
    hits: Vec<Hit>,
}

pub(super) fn scan_files(plan: &ScanPlan, matcher: &Matcher, deadline: Instant) -> ScanReport {
    let shared = Shared {
        plan,
        matcher,
        deadline,
        seen: Mutex::new(
            plan.own_files
                .iter()
                .map(|p| fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
                .collect(),
        ),
        findings: Mutex::new(Vec::new()),
        large: Mutex::new(Vec::new()),
        files: AtomicUsize::new(0),
        binary: AtomicUsize::new(0),
        unreadable: AtomicUsize::new(0),
        truncated: AtomicBool::new(false),
    };
    std::thread::scope(|scope| {
        let (done, stopped) = mpsc::channel::<()>();
        if plan.progress && std::io::stderr().is_terminal() {
            let files = &shared.files;
            scope.spawn(move || progress_line(files, &stopped));
        }
        let mut scratch = Scratch::default();
        let mut dirs = Vec::new();
        for root in &plan.roots {
            let path = root.path();
            match fs::metadata(path) {
                Ok(meta) if meta.is_file() => {
                    let key = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
                    shared.visit(path, key, || path.to_path_buf(), &mut scratch);
                }
                Ok(meta) if meta.is_dir() => dirs.push(root),
                Ok(_) => {} // a FIFO, socket or device named as a root: nothing to read
                Err(_) => {
                    shared.unreadable.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        for root in dirs {
            if shared.truncated.load(Ordering::Relaxed) {
                break;
            }
            shared.walk(root);
        }
        drop(done);
    });
    ScanReport {
        findings: shared
            .findings
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        files_scanned: shared.files.into_inner(),
        binary_scanned: shared.binary.into_inner(),
        skipped_large: shared
            .large
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        unreadable: shared.unreadable.into_inner(),
        truncated: shared.truncated.into_inner(),
        ..ScanReport::default()
    }
}

/// `scanning… N files` on a terminal's stderr until the walk ends, then erased.
fn progress_line(files: &AtomicUsize, stopped: &mpsc::Receiver<()>) {
    let mut err = std::io::stderr();
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(PROGRESS_EVERY) {
        let n = files.load(Ordering::Relaxed);
        let _ = write!(err, "\r\x1b[2Kscanning for copies… {n} files");
        let _ = err.flush();
    }
    let _ = write!(err, "\r\x1b[2K");
    let _ = err.flush();
}

impl Shared<'_> {
    /// Walks one directory root with every filter off (hidden, ignore files, parents),
    /// never following a symlink, never entering `.git`.
    fn walk(&self, root: &ScanRoot) {
        let base = root.path();
        // Walk the canonical directory (a root that is itself a symlink is followed, since
        // the user named it); paths below it are canonical because links are not followed.
        let Ok(canonical) = fs::canonicalize(base) else {
            self.unreadable.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        WalkBuilder::new(&canonical)
            .standard_filters(false)
            .follow_links(false)
            .threads(threads)
            .filter_entry(|e| e.file_name() != ".git")
            .build_parallel()
            .run(|| {
                let mut scratch = Scratch::default();
                let canonical = &canonical;
                Box::new(move |entry| {
                    if SystemMonotonic.now() >= self.deadline {
                        self.truncated.store(true, Ordering::Relaxed);
                        return WalkState::Quit;
                    }
                    let Ok(entry) = entry else {
                        self.unreadable.fetch_add(1, Ordering::Relaxed);
                        return WalkState::Continue;
                    };
                    // Not following links, a symlink is its own type here and is skipped.
                    if !entry.file_type().is_some_and(|t| t.is_file()) {
                        return WalkState::Continue;
                    }
                    let path = entry.path();
                    let rel = path.strip_prefix(canonical).unwrap_or(path);
                    let shown = || match root {
                        ScanRoot::WorkTree(_) => rel.to_path_buf(),
                        ScanRoot::History(_) | ScanRoot::Path(_) => base.join(rel),
                    };
                    self.visit(path, path.to_path_buf(), shown, &mut scratch);
                    WalkState::Continue
                })
            });
    }

    /// Searches one regular file once (`key`: its canonical path), recording what it holds.
    fn visit(&self, path: &Path, key: PathBuf, shown: impl FnOnce() -> PathBuf, s: &mut Scratch) {
        if !self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key)
        {
            return;
        }
        let Ok(file) = File::open(path) else {
            self.unreadable.fetch_add(1, Ordering::Relaxed);
            return;
        };
        // The size of what was opened, not of what the name pointed to a moment ago.
        let Ok(meta) = file.metadata() else {
            self.unreadable.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if !meta.is_file() {
            return;
        }
        let limit = self.plan.max_file_bytes;
        if meta.len() > limit {
            let shown = self.matcher.redact_path(shown());
            self.large
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(shown);
            return;
        }
        s.hits.clear();
        // A file growing while it is read is cut at the limit.
        match self.matcher.search_stream(
            file.take(limit),
            Some(meta.len()),
            &mut s.buf,
            &mut s.hits,
        ) {
            Ok(binary) => {
                self.files.fetch_add(1, Ordering::Relaxed);
                if binary {
                    self.binary.fetch_add(1, Ordering::Relaxed);
                }
            }
            // Copies found before a read error are still reported.
            Err(_) => {
                self.unreadable.fetch_add(1, Ordering::Relaxed);
            }
        }
        if s.hits.is_empty() {
            return;
        }
        let shown = self.matcher.redact_path(shown());
        let mut findings = self
            .findings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        findings.extend(s.hits.drain(..).map(|(at, kind)| Finding {
            path: shown.clone(),
            at,
            kind,
        }));
    }
}
