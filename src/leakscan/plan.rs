//! Where to look: the work tree around the current directory, the user's histories, and
//! the `--scan` paths.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::{ScanPlan, ScanRoot};

/// History files under the home directory, in the order they are listed.
const HOME_HISTORIES: &[&str] = &[
    ".bash_history",
    ".zsh_history",
    ".zhistory",
    ".local/share/fish/fish_history",
    ".python_history",
];

/// Directories of Jupyter's own state (notebook server and JupyterLab data), walked whole.
const JUPYTER_DIRS: &[&str] = &[".local/share/jupyter", ".jupyter"];

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

/// The history files that exist, in this order, without duplicates: `$HISTFILE` (passed
/// in), `~/.bash_history`, `~/.zsh_history`, `~/.zhistory`,
/// `~/.local/share/fish/fish_history`, `~/.python_history`, then each IPython profile's
/// `history.sqlite` with its `-wal` and `-journal` files (a SQLite database holds the
/// recent lines of a session in the write-ahead log until a checkpoint).
pub fn history_files(home: &Path, histfile: Option<&Path>) -> Vec<PathBuf> {
    let mut candidates: Vec<PathBuf> = histfile.map(Path::to_path_buf).into_iter().collect();
    candidates.extend(HOME_HISTORIES.iter().map(|rel| home.join(rel)));
    candidates.extend(ipython_databases(home));
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

/// `~/.ipython/profile_*/history.sqlite` and its companion files, profiles in name order.
fn ipython_databases(home: &Path) -> Vec<PathBuf> {
    let Ok(dir) = fs::read_dir(home.join(".ipython")) else {
        return Vec::new();
    };
    let mut profiles: Vec<PathBuf> = dir
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("profile_"))
        .map(|e| e.path())
        .collect();
    profiles.sort();
    profiles
        .iter()
        .flat_map(|p| {
            [
                "history.sqlite",
                "history.sqlite-wal",
                "history.sqlite-journal",
            ]
            .map(|name| p.join(name))
        })
        .collect()
}

/// The plan `regenerate` and `doctor` share: the git work tree around `cwd` (or `cwd`
/// itself as a `Path` when it is not in one), the history files, Jupyter's data
/// directories, then the `extra` paths from `--scan`; default limits, a progress line.
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
    roots.extend(
        JUPYTER_DIRS
            .iter()
            .map(|rel| home.join(rel))
            .filter(|p| p.is_dir())
            .map(ScanRoot::History),
    );
    roots.extend(extra.iter().cloned().map(ScanRoot::Path));
    let mut plan = ScanPlan::new(roots);
    plan.progress = true;
    plan
}
