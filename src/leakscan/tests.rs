//! The leak scan's unit tests: real files, a real SQLite database, real git.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// A git that always fails, for trees whose `.git` is a stand-in.
struct NoGit;

impl GitRunner for NoGit {
    fn run(
        &self,
        _dir: &Path,
        _args: &[&str],
        _input: &[u8],
        _read: &mut dyn FnMut(&mut dyn std::io::BufRead) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        Err(std::io::Error::other("no git here"))
    }
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
        at: Location::Line(line),
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
    // Jupyter's autosave copy, in a hidden directory.
    write(
        &t.join(".ipynb_checkpoints/analysis-checkpoint.ipynb"),
        notebook.as_bytes(),
    );
    write(
        &t.join("bots/deep/run.sh"),
        format!("#!/bin/sh\n# token\nexport KITE_ACCESS_TOKEN={TOKEN} KITE_API_SECRET={SECRET}\n")
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
        std::os::unix::fs::symlink(outside.path().join("leak.txt"), t.join("leak-link")).unwrap();
        // A loop: followed, it would never end.
        std::os::unix::fs::symlink(t, t.join("bots/loop")).unwrap();
    }
    (tree, outside)
}

#[test]
fn work_tree_scan_finds_every_copy_and_skips_the_rest() {
    let (tree, _outside) = work_tree();
    let plan = ScanPlan {
        max_file_bytes: 64 * 1024,
        ..ScanPlan::new(vec![ScanRoot::WorkTree(tree.path().to_path_buf())])
    };
    // The `.git` here is a bare directory, not a repository: git fails on it.
    let report = scan_with(&plan, &needles(), &NoGit);
    assert_eq!(
        report.findings,
        vec![
            finding(".env", 2, "api_secret"),
            finding(
                ".ipynb_checkpoints/analysis-checkpoint.ipynb",
                7,
                "access_token"
            ),
            finding("analysis.ipynb", 7, "access_token"),
            Finding {
                path: PathBuf::from("bin/tool"),
                at: Location::Offset(7),
                kind: "api_secret"
            },
            finding("bots/deep/run.sh", 3, "access_token"),
            finding("bots/deep/run.sh", 3, "api_secret"),
            finding("config.py", 3, "api_secret"),
        ],
        "{:?}",
        report.summary_lines()
    );
    // .env, the checkpoint, analysis.ipynb, bin/tool, clean.txt, config.py, run.sh; not
    // .git/config, not the symlinked file or dir.
    assert_eq!(report.files_scanned, 7);
    assert_eq!(report.binary_scanned, 1);
    assert_eq!(report.skipped_large, vec![PathBuf::from("data/big.log")]);
    assert_eq!(report.unreadable, 0);
    assert!(!report.truncated);
    assert_eq!(report.history_failed, vec![tree.path().to_path_buf()]);

    let summary = report.summary_lines();
    assert_eq!(summary[0], "found 7 plain-text copies in 7 files scanned:");
    assert!(summary.contains(&"  .env:2  api_secret".to_string()));
    assert!(summary.contains(&"  config.py:3  api_secret".to_string()));
    assert!(summary.contains(&"  bin/tool (binary, offset 7)  api_secret".to_string()));
    assert!(
        summary
            .iter()
            .any(|l| l.starts_with("could not search the git history of "))
    );
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
        format!(": 1700000000:0;cd\n: 1700000001:0;export KITE_API_SECRET={SECRET}\n").as_bytes(),
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
                at: Location::Line(2),
                kind: "api_secret"
            },
            Finding {
                path: shown(".local/share/fish/fish_history"),
                at: Location::Line(3),
                kind: "access_token"
            },
            Finding {
                path: shown(".zsh_history"),
                at: Location::Line(2),
                kind: "api_secret"
            },
            Finding {
                path: custom,
                at: Location::Line(1),
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
    assert!(
        plan.progress,
        "doctor and regenerate show progress on a terminal"
    );
    assert_eq!(
        plan.roots,
        vec![
            ScanRoot::WorkTree(tree.path().to_path_buf()),
            ScanRoot::History(home.path().join(".bash_history")),
            ScanRoot::Path(outside.path().to_path_buf()),
        ]
    );
    assert_eq!(plan.max_file_bytes, DEFAULT_MAX_FILE_BYTES);
    assert_eq!(plan.time_budget, DEFAULT_TIME_BUDGET);
    let report = scan_with(&plan, &needles(), &NoGit);
    assert!(report.findings.contains(&Finding {
        path: home.path().join(".bash_history"),
        at: Location::Line(1),
        kind: "access_token"
    }));
    assert!(report.findings.contains(&Finding {
        path: outside.path().join("leak.txt"),
        at: Location::Line(1),
        kind: "api_secret"
    }));
    assert!(
        report
            .findings
            .contains(&finding("config.py", 3, "api_secret"))
    );
    // The default limit is 64 MiB: big.log is small enough now.
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
    let report = scan_with(&plan, &needles(), &NoGit);
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
        at: Location::Line(3),
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
            at: Location::Line(1),
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
                at: Location::Line(1),
                kind: "access_token"
            },
            Finding {
                path: dir.path().join("min.json"),
                at: Location::Line(1),
                kind: "api_secret"
            },
        ]
    );
}

#[test]
fn time_budget_truncates_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        write(
            &dir.path().join(format!("f{i}.txt")),
            format!("{SECRET}\n").as_bytes(),
        );
    }
    let single = dir.path().join("f0.txt");
    let plan = ScanPlan {
        time_budget: Duration::ZERO,
        ..ScanPlan::new(vec![
            ScanRoot::Path(dir.path().to_path_buf()),
            ScanRoot::History(single.clone()),
        ])
    };
    let report = scan(&plan, &needles());
    assert!(report.truncated);
    // The single-file root goes first and is read whatever the budget; the walk is not.
    assert_eq!(report.files_scanned, 1);
    assert_eq!(
        report.findings,
        vec![Finding {
            path: single,
            at: Location::Line(1),
            kind: "api_secret"
        }]
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
fn values_across_chunk_boundaries_are_found_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    // Line 1 is long, line 2 starts just before the first chunk ends, so the value sits
    // across the boundary; a second copy lies three chunks in, on line 4.
    let mut text = vec![b'a'; search::CHUNK_BYTES - 40];
    text.push(b'\n');
    text.extend_from_slice(&[b'b'; 20]);
    text.extend_from_slice(SECRET.as_bytes());
    text.extend_from_slice(b"\nline three\n");
    text.resize(3 * search::CHUNK_BYTES + 7, b'c');
    text.push(b'\n');
    text.extend_from_slice(TOKEN.as_bytes());
    text.push(b'\n');
    write(&dir.path().join("long.txt"), &text);
    let mut binary = vec![0u8; 2 * search::CHUNK_BYTES - 10];
    binary.extend_from_slice(TOKEN.as_bytes());
    write(&dir.path().join("blob.bin"), &binary);
    let plan = ScanPlan::new(vec![ScanRoot::WorkTree(dir.path().to_path_buf())]);
    let report = scan_with(&plan, &needles(), &NoGit);
    assert_eq!(
        report.findings,
        vec![
            Finding {
                path: PathBuf::from("blob.bin"),
                at: Location::Offset(2 * search::CHUNK_BYTES as u64 - 10),
                kind: "access_token"
            },
            finding("long.txt", 2, "api_secret"),
            finding("long.txt", 5, "access_token"),
        ]
    );
    assert_eq!(report.binary_scanned, 1);
}

#[test]
fn one_value_under_two_names_reports_both() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("a.txt"),
        format!("x\n{SECRET}\n").as_bytes(),
    );
    let twice = vec![
        Needle {
            kind: "old api_secret",
            value: Secret::from(SECRET),
        },
        Needle {
            kind: "api_secret",
            value: Secret::from(SECRET),
        },
    ];
    let plan = ScanPlan::new(vec![ScanRoot::WorkTree(dir.path().to_path_buf())]);
    let report = scan_with(&plan, &twice, &NoGit);
    assert_eq!(
        report.findings,
        vec![
            finding("a.txt", 2, "api_secret"),
            finding("a.txt", 2, "old api_secret"),
        ]
    );
}

/// An IPython history database made by SQLite itself (python3's sqlite3 module), with
/// IPython's schema; the value in one `source` cell.
fn ipython_history(path: &Path, line: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let script = "import sqlite3, sys\n\
        db = sqlite3.connect(sys.argv[1])\n\
        db.execute('CREATE TABLE sessions (session integer primary key autoincrement, start timestamp, end timestamp, num_cmds integer, remark text)')\n\
        db.execute('CREATE TABLE history (session integer, line integer, source text, source_raw text, PRIMARY KEY (session, line))')\n\
        db.execute(\"INSERT INTO sessions VALUES (1, '2026-01-01', NULL, 3, '')\")\n\
        for i, src in enumerate(['import kiteconnect', sys.stdin.read(), 'kite.profile()'], 1):\n\
        \x20   db.execute('INSERT INTO history VALUES (1, ?, ?, ?)', (i, src, src))\n\
        db.commit()\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (installed by .ci/run)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(line.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let head = fs::read(path).unwrap();
    assert!(head.starts_with(b"SQLite format 3\0"), "a real SQLite file");
}

#[test]
fn ipython_sqlite_history_and_jupyter_data_are_searched_as_binary() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let db = h.join(".ipython/profile_default/history.sqlite");
    ipython_history(&db, &format!("kite.set_access_token('{TOKEN}')"));
    // Another profile with nothing in it, and a directory that is not a profile.
    ipython_history(&h.join(".ipython/profile_work/history.sqlite"), "1 + 1");
    write(&h.join(".ipython/extensions/history.sqlite"), b"not listed");
    write(
        &h.join(".local/share/jupyter/runtime/kernel-1.json"),
        format!("{{\"key\": \"x\", \"note\": \"{SECRET}\"}}\n").as_bytes(),
    );
    assert_eq!(
        history_files(h, None),
        vec![db.clone(), h.join(".ipython/profile_work/history.sqlite")]
    );
    let cwd = tempfile::tempdir().unwrap();
    let plan = default_plan(cwd.path(), h, None, &[]);
    assert!(
        plan.roots
            .contains(&ScanRoot::History(h.join(".local/share/jupyter")))
    );
    let report = scan(&plan, &needles());
    // IPython keeps each line twice (`source` and `source_raw`): two copies.
    let in_db: Vec<&Finding> = report.findings.iter().filter(|f| f.path == db).collect();
    assert_eq!(in_db.len(), 2, "{:?}", report.findings);
    let bytes = fs::read(&db).unwrap();
    let mut offsets = Vec::new();
    for f in in_db {
        let Location::Offset(offset) = f.at else {
            panic!("a binary offset: {f:?}");
        };
        // The offset is where the value really is.
        let at = usize::try_from(offset).unwrap();
        assert_eq!(&bytes[at..at + TOKEN.len()], TOKEN.as_bytes());
        assert_eq!(f.kind, "access_token");
        offsets.push(offset);
    }
    let offset = offsets[0];
    assert!(report.findings.contains(&Finding {
        path: h.join(".local/share/jupyter/runtime/kernel-1.json"),
        at: Location::Line(1),
        kind: "api_secret"
    }));
    let summary = report.summary_lines().join("\n");
    assert!(
        summary.contains(&format!(
            "{} (binary, offset {offset})  access_token",
            db.display()
        )),
        "{summary}"
    );
    assert_no_values(&report, &plan);
}

/// Runs real git in `dir` with a fixed identity and no user or system config.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git (installed by .ci/run)");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn commit_file(dir: &Path, path: &str, content: &str, message: &str) -> String {
    write(&dir.join(path), content.as_bytes());
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "--short", "HEAD"])
        .trim()
        .to_string()
}

#[test]
fn git_history_copies_are_found_with_their_commit_and_push_state() {
    let remote = tempfile::tempdir().unwrap();
    git(remote.path(), &["init", "-q", "--bare"]);
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path();
    git(r, &["init", "-q"]);
    git(
        r,
        &["remote", "add", "origin", &remote.path().to_string_lossy()],
    );
    commit_file(r, "README", "hello\n", "start");
    let pushed = commit_file(
        r,
        ".env",
        &format!("KITE_API_KEY=abc\nKITE_API_SECRET={SECRET}\n"),
        "add env",
    );
    commit_file(r, ".env", "KITE_API_KEY=abc\n", "remove the secret");
    git(r, &["push", "-q", "origin", "main"]);
    let local = commit_file(
        r,
        "notebooks/run.ipynb",
        &format!("{{\"source\": [\"kite.set_access_token('{TOKEN}')\"]}}\n"),
        "notebook",
    );
    git(r, &["rm", "-q", "notebooks/run.ipynb"]);
    git(r, &["commit", "-q", "-m", "drop notebook"]);
    // A stash holding a value that is in no commit of any branch (a work-tree change).
    write(&r.join("README"), format!("hello {SECRET}\n").as_bytes());
    git(r, &["stash", "-q"]);
    let stash = git(r, &["rev-parse", "--short", "stash@{0}"])
        .trim()
        .to_string();
    // A commit only the reflog remembers (amended away).
    commit_file(r, "tmp.txt", &format!("{TOKEN} again\n"), "oops");
    let amended = git(r, &["rev-parse", "--short", "HEAD"]).trim().to_string();
    git(r, &["rm", "-q", "tmp.txt"]);
    git(
        r,
        &[
            "commit",
            "-q",
            "--amend",
            "--allow-empty",
            "-m",
            "oops, fixed",
        ],
    );

    let plan = default_plan(r, &r.join("no-home"), None, &[]);
    assert_eq!(plan.roots, vec![ScanRoot::WorkTree(r.to_path_buf())]);
    let report = scan(&plan, &needles());
    let commit = |path: &str, commit: &str, pushed: bool, kind| Finding {
        path: PathBuf::from(path),
        at: Location::Commit {
            commit: commit.to_string(),
            pushed,
        },
        kind,
    };
    for expected in [
        commit(".env", &pushed, true, "api_secret"),
        commit("notebooks/run.ipynb", &local, false, "access_token"),
        commit("README", &stash, false, "api_secret"),
        commit("tmp.txt", &amended, false, "access_token"),
    ] {
        assert!(
            report.findings.contains(&expected),
            "{expected:?} in {:#?}",
            report.findings
        );
    }
    // Nothing on disk holds a value any more: every finding is in history.
    assert!(
        report
            .findings
            .iter()
            .all(|f| matches!(f.at, Location::Commit { .. })),
        "{:#?}",
        report.findings
    );
    assert!(report.history_blobs >= 6, "{}", report.history_blobs);
    assert!(report.history_failed.is_empty());
    assert!(report.pushed());
    let summary = report.summary_lines().join("\n");
    assert!(
        summary.contains(&format!(".env in commit {pushed} (pushed)  api_secret")),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "notebooks/run.ipynb in commit {local} (not pushed)  access_token"
        )),
        "{summary}"
    );
    assert!(summary.contains("burned"), "{summary}");
    assert!(summary.contains("git filter-repo"), "{summary}");
    assert_no_values(&report, &plan);

    // Without a pushed copy the advice does not call the value burned.
    let only_local = ScanReport {
        findings: vec![commit("a", "1234567", false, "api_secret")],
        ..ScanReport::default()
    };
    let fix = only_local.history_fix_lines().join("\n");
    assert!(
        !fix.contains("burned") && fix.contains("filter-repo"),
        "{fix}"
    );
}

#[test]
fn a_failing_git_is_reported_not_fatal() {
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q"]);
    commit_file(repo.path(), "a.txt", &format!("{SECRET}\n"), "one");
    let plan = ScanPlan::new(vec![ScanRoot::WorkTree(repo.path().to_path_buf())]);
    let report = scan_with(&plan, &needles(), &NoGit);
    assert_eq!(report.findings, vec![finding("a.txt", 1, "api_secret")]);
    assert_eq!(report.history_failed, vec![repo.path().to_path_buf()]);
    assert_eq!(report.history_blobs, 0);
}

/// kite-setup's own stores (the file store, the sandbox's state) hold the values by
/// design: a scan over a directory that contains them reports only the real copies.
#[test]
fn kite_setups_own_stores_are_not_reported_as_copies() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir
        .path()
        .join(".config/kite-setup/sandbox-store/secrets.json");
    let state = dir.path().join(".local/share/kite-setup/sandbox.json");
    let leak = dir.path().join("bot.py");
    write(&store, format!("{{\"p/app\": \"{SECRET}\"}}\n").as_bytes());
    write(&state, format!("{{\"token\": \"{TOKEN}\"}}\n").as_bytes());
    write(&leak, format!("secret = '{SECRET}'\n").as_bytes());
    let mut plan = ScanPlan::new(vec![ScanRoot::Path(dir.path().to_path_buf())]);
    plan.own_files = vec![store, state];
    let report = scan_with(&plan, &needles(), &NoGit);
    let places: Vec<String> = report.findings.iter().map(Finding::place).collect();
    assert_eq!(places.len(), 1, "{places:?}");
    assert!(places[0].ends_with("bot.py:1"), "{places:?}");
}
