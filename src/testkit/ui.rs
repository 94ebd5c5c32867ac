//! Capturing what a command writes to stdout and stderr.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::ui::Ui;

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
