//! The sandbox against the official Python SDK (kiteconnect 5.2.2): starts the sandbox
//! binary and runs tests/sdk/conformance.py with its banner. A missing SDK or python3 is
//! a failure with a clear message, never a skip: CI installs both.

use std::process::Command;

use crate::support::sandbox::SandboxProcess;

#[test]
fn official_python_sdk_conforms() {
    let sb = SandboxProcess::auto_approve();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/conformance.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(&sb.banner_line)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run python3 ({e}): install Python 3 and `pip install kiteconnect==5.2.2`"
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    match out.status.code() {
        Some(0) => {}
        Some(2) => panic!(
            "the kiteconnect Python SDK is missing: pip install kiteconnect==5.2.2\n{stdout}"
        ),
        other => panic!("SDK conformance failed (exit {other:?}):\n{stdout}\n{stderr}"),
    }
    assert!(
        stdout.contains(" checks passed, 0 failed"),
        "the script did not report its checks:\n{stdout}"
    );
}
