//! `TerminalWaitUi` in a real pseudo-terminal: `p` asks to paste, Ctrl-C aborts (as a key,
//! not a signal), and on every exit the terminal is back in canonical, echoing,
//! signalling mode with the cursor shown and no thread left reading stdin.
//!
//! The parent tests re-run this test binary, filtered to `terminal_ui_child`, with a marker
//! argument in a PTY; the marker makes that test act as the program under test (without
//! the marker it returns at once).
#![cfg(unix)]

use std::io::{BufRead, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use expectrl::session::OsSession as Session;
use expectrl::{Expect, Regex};
use kite_setup::redirect::{Listener, TerminalWaitUi, WaitError, validate_redirect_url};

const MARKER: &str = "kite-setup-terminal-child";
const NONCE: &str = "abcdefabcdefabcdefabcdefabcdef01";
const PATH: &str = "/cb";

fn modes() -> String {
    use rustix::termios::LocalModes as L;
    let t = rustix::termios::tcgetattr(std::io::stdin()).expect("stdin is a terminal");
    let on = |m| u8::from(t.local_modes.contains(m));
    format!(
        "icanon={} echo={} isig={}",
        on(L::ICANON),
        on(L::ECHO),
        on(L::ISIG)
    )
}

#[test]
fn terminal_ui_child() {
    if !std::env::args().any(|a| a == MARKER) {
        return;
    }
    // expectrl's PTY starts with echo off; turn it on so its restoration is checked too.
    let stdin = std::io::stdin();
    let mut t = rustix::termios::tcgetattr(&stdin).unwrap();
    t.local_modes.insert(rustix::termios::LocalModes::ECHO);
    rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &t).unwrap();
    // An 80-column terminal: the spinner line must fit it whole (it is cut at 79).
    rustix::termios::tcsetwinsize(
        &stdin,
        rustix::termios::Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .unwrap();
    println!("BEFORE {}", modes());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = validate_redirect_url(&format!("http://127.0.0.1:{port}{PATH}")).unwrap();
    let listener = Listener::bind(&target, NONCE.into()).unwrap();
    println!("PORT {port}");
    let mut ui = TerminalWaitUi::new(false);
    let result = listener.wait(Instant::now() + Duration::from_secs(20), &mut ui);
    drop(ui);
    let word = match result {
        Ok(_) => "ok",
        Err(WaitError::PasteRequested) => "paste",
        Err(WaitError::Aborted) => "abort",
        Err(_) => "other",
    };
    println!("RESULT {word}");
    println!("AFTER {}", modes());
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    println!("LINE {}", line.trim());
}

fn child() -> (Session, u16, String) {
    // The child test's name in this binary: `listener_terminal::terminal_ui_child`.
    let (_, module) = module_path!()
        .split_once("::")
        .expect("a module of the test crate");
    let child_test = format!("{module}::terminal_ui_child");
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        &child_test,
        "--nocapture",
        "--test-threads=1",
        MARKER,
    ]);
    let mut s = Session::spawn(cmd).unwrap();
    s.set_expect_timeout(Some(Duration::from_secs(10)));
    // The PTY's own modes (expectrl turns echo off); they must be the same afterwards.
    let caps = s
        .expect(Regex("BEFORE (icanon=1 echo=[01] isig=1)"))
        .unwrap();
    let before = String::from_utf8_lossy(caps.get(1).unwrap()).into_owned();
    let caps = s.expect(Regex("PORT ([0-9]+)")).unwrap();
    let port = std::str::from_utf8(caps.get(1).unwrap())
        .unwrap()
        .parse()
        .unwrap();
    // The first spinner line is drawn after the key reader switched the mode; at 80
    // columns it is whole, countdown and both keys (not cut with "…").
    s.expect(Regex(
        "Waiting for the browser login… 0:[0-9]{2} left · p: paste URL · Ctrl-C: cancel",
    ))
    .unwrap();
    (s, port, before)
}

fn ends_restored(mut s: Session, result: &str, before: &str) {
    let out = s.expect(format!("RESULT {result}")).unwrap();
    // The cursor was shown again before the result line.
    assert!(
        out.before().windows(6).any(|w| w == b"\x1b[?25h"),
        "{:?}",
        String::from_utf8_lossy(out.before())
    );
    s.expect(format!("AFTER {before}")).unwrap();
    // No key thread is left stealing input: a line typed now reaches the program.
    s.send_line("hello").unwrap();
    s.expect("LINE hello").unwrap();
}

#[test]
fn p_switches_to_paste_and_restores_the_terminal() {
    let (mut s, _, before) = child();
    s.send("p").unwrap();
    ends_restored(s, "paste", &before);
}

#[test]
fn ctrl_c_is_a_key_that_aborts_and_restores_the_terminal() {
    let (mut s, _, before) = child();
    s.send("x").unwrap(); // other keys are ignored
    s.send("\x03").unwrap();
    ends_restored(s, "abort", &before);
}

#[test]
fn callback_ends_the_wait_and_restores_the_terminal() {
    let (s, port, before) = child();
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        c,
        "GET {PATH}?status=success&request_token=abc123&state={NONCE} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    ends_restored(s, "ok", &before);
}
