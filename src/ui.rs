//! Output as a dependency: data goes to `out` (stdout), everything meant for a person to
//! `err` (stderr), so `$(kite-setup token)` and `eval "$(kite-setup env)"` stay clean.
//! Tests capture both.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Where a command writes.
pub struct Ui {
    out: RefCell<Box<dyn Write>>,
    err: RefCell<Box<dyn Write>>,
    /// Colour and emphasis allowed (a terminal, and NO_COLOR unset).
    pub color: bool,
}

impl Ui {
    pub fn new(out: Box<dyn Write>, err: Box<dyn Write>, color: bool) -> Self {
        Self {
            out: RefCell::new(out),
            err: RefCell::new(err),
            color,
        }
    }

    /// The process's stdout and stderr.
    pub fn stdio(color: bool) -> Self {
        Self::new(
            Box::new(std::io::stdout()),
            Box::new(std::io::stderr()),
            color,
        )
    }

    /// A line for the person at the terminal (stderr).
    pub fn say(&self, line: impl AsRef<str>) {
        let mut e = self.err.borrow_mut();
        let _ = writeln!(e, "{}", line.as_ref());
        let _ = e.flush();
    }

    /// A blank line on stderr.
    pub fn gap(&self) {
        self.say("");
    }

    /// A step heading, e.g. `Step 2 of 6 — Plan`.
    pub fn heading(&self, text: &str) {
        let shown = if self.color {
            console::style(text).bold().to_string()
        } else {
            text.to_string()
        };
        self.say("");
        self.say(shown);
    }

    /// A success mark line.
    pub fn ok(&self, text: impl AsRef<str>) {
        let mark = if self.color {
            console::style("✓").green().to_string()
        } else {
            "✓".to_string()
        };
        self.say(format!("{mark} {}", text.as_ref()));
    }

    /// A warning line.
    pub fn warn(&self, text: impl AsRef<str>) {
        let mark = if self.color {
            console::style("!").yellow().bold().to_string()
        } else {
            "!".to_string()
        };
        self.say(format!("{mark} {}", text.as_ref()));
    }

    /// Data for the caller (stdout), exactly as given.
    pub fn data(&self, text: &str) {
        let mut o = self.out.borrow_mut();
        let _ = o.write_all(text.as_bytes());
        let _ = o.flush();
    }
}

/// A shared byte buffer for tests (and for capturing a transcript).
#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<u8>>>);

impl Capture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Ui {
    /// A Ui writing into two captures (stdout, stderr) for tests.
    pub fn captured() -> (Self, Capture, Capture) {
        let out = Capture::default();
        let err = Capture::default();
        (
            Self::new(Box::new(out.clone()), Box::new(err.clone()), false),
            out,
            err,
        )
    }
}

/// `s` with its first letter upper-cased (for a sentence made from a phrase).
pub fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| {
        f.to_uppercase().collect::<String>() + c.as_str()
    })
}
