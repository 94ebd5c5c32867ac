//! What the user sees and presses while the listener waits.
//!
//! [`TerminalWaitUi`]: a spinner and a countdown on stderr; `p` switches to pasting the
//! redirected URL, Ctrl-C aborts. Keys are read on a thread while the terminal is in a
//! non-canonical, no-echo, no-signal mode with a 100 ms read timeout (Unix), so the thread
//! can be stopped and the terminal restored on every exit path (`finish` and `Drop`),
//! instead of being left raw by a read that blocks forever.
//! [`NoTtyWaitUi`]: one line, no keys.

use std::io::Write;
use std::time::Duration;

/// What the user asked for during one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitControl {
    Continue,
    /// `p`: stop listening, ask for the redirected URL instead.
    Paste,
    /// Ctrl-C.
    Abort,
}

/// The wait's face. `tick` is called about every 100 ms with the time left; `finish` once
/// when the wait ends, however it ends.
pub trait WaitUi {
    fn tick(&mut self, remaining: Duration) -> WaitControl;
    fn finish(&mut self) {}
}

/// `4:59` (minutes:seconds, rounded up so a fresh 5-minute wait shows 5:00).
pub fn format_remaining(d: Duration) -> String {
    let secs = d.as_millis().div_ceil(1000);
    format!("{}:{:02}", secs / 60, secs % 60)
}

const FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// The interactive wait on stderr, reading keys from stdin (a terminal).
pub struct TerminalWaitUi {
    term: console::Term,
    color: bool,
    frame: usize,
    keys: Option<keys::KeyReader>,
    started: bool,
    finished: bool,
}

impl TerminalWaitUi {
    /// `color`: false when NO_COLOR is set or colours are off (app.rs decides).
    pub fn new(color: bool) -> Self {
        Self {
            term: console::Term::stderr(),
            color,
            frame: 0,
            keys: None,
            started: false,
            finished: false,
        }
    }

    fn line(&self, remaining: Duration) -> String {
        let frame = FRAMES[self.frame % FRAMES.len()];
        let spinner = if self.color {
            console::style(frame).cyan().force_styling(true).to_string()
        } else {
            frame.to_string()
        };
        let keys = if self.keys.is_some() {
            "p: paste URL · Ctrl-C: cancel"
        } else {
            "Ctrl-C: cancel"
        };
        let text = format!(
            "{spinner} Waiting for the browser login… {} left · {keys}",
            format_remaining(remaining)
        );
        match self.term.size_checked() {
            Some((_, cols)) if cols > 1 => {
                console::truncate_str(&text, usize::from(cols) - 1, "…").into_owned()
            }
            _ => text,
        }
    }
}

impl WaitUi for TerminalWaitUi {
    fn tick(&mut self, remaining: Duration) -> WaitControl {
        if !self.started {
            self.started = true;
            self.keys = keys::KeyReader::start();
            let _ = self.term.hide_cursor();
        }
        if let Some(keys) = &self.keys {
            while let Some(key) = keys.try_key() {
                match key {
                    b'p' | b'P' => return WaitControl::Paste,
                    0x03 => return WaitControl::Abort,
                    _ => {}
                }
            }
        }
        let line = self.line(remaining);
        self.frame = self.frame.wrapping_add(1);
        let _ = self.term.clear_line();
        let _ = self.term.write_str(&line);
        WaitControl::Continue
    }

    fn finish(&mut self) {
        if self.finished || !self.started {
            return;
        }
        self.finished = true;
        if let Some(mut keys) = self.keys.take() {
            keys.stop();
        }
        let _ = self.term.clear_line();
        let _ = self.term.show_cursor();
    }
}

impl Drop for TerminalWaitUi {
    fn drop(&mut self) {
        self.finish();
    }
}

/// No terminal: one line on the first tick, no keys (Ctrl-C is the default signal).
pub struct NoTtyWaitUi<W: Write> {
    out: W,
    printed: bool,
}

impl<W: Write> NoTtyWaitUi<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            printed: false,
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> WaitUi for NoTtyWaitUi<W> {
    fn tick(&mut self, remaining: Duration) -> WaitControl {
        if !self.printed {
            self.printed = true;
            let _ = writeln!(
                self.out,
                "Waiting up to {} for the login in your browser (Ctrl-C cancels)…",
                format_remaining(remaining)
            );
            let _ = self.out.flush();
        }
        WaitControl::Continue
    }
}

#[cfg(unix)]
mod keys {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::{self, Receiver};
    use std::thread::JoinHandle;

    use rustix::termios::{
        LocalModes, OptionalActions, SpecialCodeIndex, Termios, isatty, tcgetattr, tcsetattr,
    };

    /// Bytes from stdin, read with a 100 ms timeout so the thread can be stopped.
    pub(super) struct KeyReader {
        stop: Arc<AtomicBool>,
        rx: Receiver<u8>,
        handle: Option<JoinHandle<()>>,
        saved: Termios,
    }

    impl KeyReader {
        /// None when stdin is not a terminal or its mode cannot be changed.
        pub(super) fn start() -> Option<Self> {
            let stdin = std::io::stdin();
            if !isatty(&stdin) {
                return None;
            }
            let saved = tcgetattr(&stdin).ok()?;
            let mut raw = saved.clone();
            // Keys one at a time, no echo, Ctrl-C as a byte (0x03) rather than SIGINT.
            raw.local_modes
                .remove(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG);
            raw.special_codes[SpecialCodeIndex::VMIN] = 0;
            raw.special_codes[SpecialCodeIndex::VTIME] = 1;
            tcsetattr(&stdin, OptionalActions::Now, &raw).ok()?;
            let stop = Arc::new(AtomicBool::new(false));
            let (tx, rx) = mpsc::channel();
            let flag = Arc::clone(&stop);
            let handle = std::thread::Builder::new()
                .name("kite-setup-keys".into())
                .spawn(move || {
                    let stdin = std::io::stdin();
                    let mut byte = [0u8; 1];
                    while !flag.load(Ordering::Relaxed) {
                        match rustix::io::read(&stdin, &mut byte) {
                            // 0 bytes: the 100 ms read timeout passed with no key.
                            Ok(0) | Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                            Ok(_) => {
                                if tx.send(byte[0]).is_err() {
                                    break;
                                }
                            }
                            Err(_) => break,
                        }
                    }
                });
            if let Ok(handle) = handle {
                Some(Self {
                    stop,
                    rx,
                    handle: Some(handle),
                    saved,
                })
            } else {
                let _ = tcsetattr(&stdin, OptionalActions::Now, &saved);
                None
            }
        }

        pub(super) fn try_key(&self) -> Option<u8> {
            self.rx.try_recv().ok()
        }

        /// Stops the thread (within one read timeout) and restores the terminal mode.
        pub(super) fn stop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(handle) = self.handle.take() {
                let _ = handle.join();
            }
            let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
        }
    }

    impl Drop for KeyReader {
        fn drop(&mut self) {
            self.stop();
        }
    }
}

#[cfg(not(unix))]
mod keys {
    //! Elsewhere (Windows), console's key read does not leave the console in a raw
    //! mode between reads, so a thread blocked in it needs no restoring; it dies with
    //! the process.
    use std::sync::mpsc::{self, Receiver};

    pub(super) struct KeyReader {
        rx: Receiver<u8>,
    }

    impl KeyReader {
        pub(super) fn start() -> Option<Self> {
            let term = console::Term::stderr();
            if !term.is_term() {
                return None;
            }
            let (tx, rx) = mpsc::channel();
            std::thread::Builder::new()
                .name("kite-setup-keys".into())
                .spawn(move || {
                    while let Ok(key) = term.read_key_raw() {
                        let byte = match key {
                            console::Key::Char(c @ ('p' | 'P')) => c as u8,
                            console::Key::CtrlC => 0x03,
                            _ => continue,
                        };
                        if tx.send(byte).is_err() {
                            break;
                        }
                    }
                })
                .ok()?;
            Some(Self { rx })
        }

        pub(super) fn try_key(&self) -> Option<u8> {
            self.rx.try_recv().ok()
        }

        pub(super) fn stop(&mut self) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_is_minutes_and_seconds_rounded_up() {
        assert_eq!(format_remaining(Duration::from_secs(300)), "5:00");
        assert_eq!(format_remaining(Duration::from_millis(299_001)), "5:00");
        assert_eq!(format_remaining(Duration::from_secs(299)), "4:59");
        assert_eq!(format_remaining(Duration::from_secs(61)), "1:01");
        assert_eq!(format_remaining(Duration::ZERO), "0:00");
    }

    #[test]
    fn no_tty_ui_prints_one_line_once_and_never_stops_the_wait() {
        let mut ui = NoTtyWaitUi::new(Vec::new());
        for _ in 0..5 {
            assert_eq!(ui.tick(Duration::from_secs(300)), WaitControl::Continue);
        }
        ui.finish();
        let out = String::from_utf8(ui.into_inner()).unwrap();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains("5:00"), "{out}");
    }

    #[test]
    fn terminal_ui_line_has_countdown_and_no_color_when_asked() {
        let ui = TerminalWaitUi::new(false);
        let line = ui.line(Duration::from_secs(299));
        assert!(line.contains("4:59 left"), "{line}");
        assert!(!line.contains('\u{1b}'), "{line}");
        let colored = TerminalWaitUi::new(true).line(Duration::from_secs(1));
        assert!(colored.contains('\u{1b}'), "{colored}");
    }
}
