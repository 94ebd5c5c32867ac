//! Helpers shared by the integration tests: the real binary in a world of its own
//! (`cli`), a private Secret Service (`keyring`, also used by `tests/keyring_store.rs`), a
//! sandbox process (`sandbox`) and a headless Chromium over WebDriver (`webdriver`).

pub mod cli;
pub mod keyring;
pub mod sandbox;
pub mod webdriver;

/// Prints a hardening suite's figure line and keeps it in `target/tmp/figures/<suite>.txt`,
/// where `.ci/run` reads it after its one test run (cargo captures a passing test's output).
pub fn report_figure(suite: &str, line: &str) {
    println!("{line}");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("figures");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{suite}.txt")), format!("{line}\n"));
}
