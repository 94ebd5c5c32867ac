//! How a report reads on a terminal: places and kinds, what was skipped, and for copies in
//! git history what to do about them. Never a value.

use super::{Finding, Location, ScanReport};

/// How many skipped-large paths `summary_lines` names before "and N more".
const LARGE_LIST_MAX: usize = 5;

impl Finding {
    /// Where the copy is, as shown: `config.py:3`, `history.sqlite (binary, offset 4096)`,
    /// `.env in commit 1a2b3c4 (pushed)`.
    pub fn place(&self) -> String {
        let path = self.path.display();
        match &self.at {
            Location::Line(n) => format!("{path}:{n}"),
            Location::Offset(o) => format!("{path} (binary, offset {o})"),
            Location::Commit { commit, pushed } => {
                let state = if *pushed { "pushed" } else { "not pushed" };
                format!("{path} in commit {commit} ({state})")
            }
        }
    }
}

impl ScanReport {
    /// Whether some copy sits in git history.
    pub fn in_history(&self) -> bool {
        self.findings
            .iter()
            .any(|f| matches!(f.at, Location::Commit { .. }))
    }

    /// Whether some copy sits in a commit a remote-tracking branch contains.
    pub fn pushed(&self) -> bool {
        self.findings
            .iter()
            .any(|f| matches!(f.at, Location::Commit { pushed: true, .. }))
    }

    /// What to do about copies in git history: rotation is the fix that always works; a
    /// rewrite only helps while nobody else has the commits.
    pub fn history_fix_lines(&self) -> Vec<String> {
        if !self.in_history() {
            return Vec::new();
        }
        // The command is not named here: the caller knows this run's --profile/--sandbox.
        let mut lines = vec![
            "Copies in git history stay there after the files are fixed: rotating the secret is"
                .to_string(),
            "the fix that always works.".to_string(),
        ];
        if self.pushed() {
            lines.push(
                "A pushed commit is public as far as you can tell: that value is burned, whatever"
                    .to_string(),
            );
            lines.push("you rewrite.".to_string());
        }
        lines.push(
            "If the repository is private, also rewrite its history (`git filter-repo --replace-text`)"
                .to_string(),
        );
        lines.push(
            "and force-push; a commit never pushed can simply be dropped before it is.".to_string(),
        );
        lines
    }

    /// Human lines for the terminal: one `  place  kind` line per finding (or `nothing
    /// found in N files`), then what was skipped, then the history fix. Never a value.
    pub fn summary_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let history = if self.history_blobs > 0 {
            format!(
                " and {} in git history",
                plural(self.history_blobs, "file version", "file versions")
            )
        } else {
            String::new()
        };
        if self.findings.is_empty() {
            lines.push(format!(
                "nothing found in {}{history}",
                plural(self.files_scanned, "file", "files")
            ));
        } else {
            lines.push(format!(
                "found {} in {} scanned{history}:",
                plural(self.findings.len(), "plain-text copy", "plain-text copies"),
                plural(self.files_scanned, "file", "files")
            ));
            for f in &self.findings {
                lines.push(format!("  {}  {}", f.place(), f.kind));
            }
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
        for tree in &self.history_failed {
            lines.push(format!(
                "could not search the git history of {} (is git installed?)",
                tree.display()
            ));
        }
        if self.truncated {
            lines.push(
                "stopped at the time limit: the scan is incomplete, some files were not searched"
                    .to_string(),
            );
        }
        lines.extend(self.history_fix_lines());
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
