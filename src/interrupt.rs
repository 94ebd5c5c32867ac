//! What Ctrl-C or SIGTERM does, and the one line it ends a run with, kept true.
//!
//! Outside a critical section an interruption ends the process at once: nothing is being
//! written then. Inside one (a few keyring writes and one rename, e.g. `init` storing a
//! profile), the interruption is deferred until the section ends, so the section finishes
//! or rolls back as it would have, and the line then says which. A section that changes
//! stored state records what is now true ([`note`]); the record outlives the section, so
//! a Ctrl-C later in the same run does not claim "no partial changes were made".
//!
//! A `kill -9` cannot be deferred: for that, every section is ordered so that the state
//! a kill leaves is whole or finished by the next command (`commands::txn`).

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use crate::error::exit;

/// The line when nothing was stored by this run.
pub const NOTHING_CHANGED: &str = "no partial changes were made";

struct State {
    /// Critical sections open now.
    depth: u32,
    /// An interruption arrived during a section and waits for its end.
    requested: bool,
    /// What this run has stored, if anything.
    stored: Option<String>,
}

impl State {
    const fn new() -> Self {
        Self {
            depth: 0,
            requested: false,
            stored: None,
        }
    }

    fn line(&self) -> String {
        format!(
            "interrupted: {}",
            self.stored.as_deref().unwrap_or(NOTHING_CHANGED)
        )
    }

    fn enter(&mut self) {
        self.depth += 1;
    }

    /// Leaves a section; `true` when the process must end now.
    fn leave(&mut self) -> bool {
        self.depth = self.depth.saturating_sub(1);
        self.depth == 0 && self.requested
    }

    /// An interruption; `true` when the process must end now (no section open).
    fn signal(&mut self) -> bool {
        if self.depth > 0 {
            self.requested = true;
            false
        } else {
            true
        }
    }
}

static STATE: Mutex<State> = Mutex::new(State::new());

fn state() -> std::sync::MutexGuard<'static, State> {
    // A panic while holding this lock cannot leave the state inconsistent (plain fields).
    STATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `interrupted: <what is true>`.
pub fn line() -> String {
    state().line()
}

/// Records what this run has stored (replacing an earlier note), for the interruption line.
pub fn note(stored: impl Into<String>) {
    state().stored = Some(stored.into());
}

/// A critical section: an interruption during it waits for its end. Keep it short (no
/// prompt, no browser, at most one bounded network call).
#[must_use = "the section ends when this is dropped"]
pub struct Critical(());

pub fn critical() -> Critical {
    state().enter();
    Critical(())
}

impl Drop for Critical {
    fn drop(&mut self) {
        let exit_now = state().leave();
        if exit_now {
            exit_interrupted();
        }
    }
}

/// The exit code the interruption asked for: 128 + the signal (130 Ctrl-C, 143 SIGTERM,
/// 129 SIGHUP), as shells report it.
static EXIT_CODE: AtomicU8 = AtomicU8::new(exit::INTERRUPTED);

/// How long an interrupted run waits for its keyring probe entry to be deleted.
const PROBE_CLEANUP_WAIT: Duration = Duration::from_secs(2);

/// For the signal handler: ends the process now with the true line and `code`, unless a
/// critical section is open, in which case the section's end does it.
pub fn on_signal(code: u8) {
    EXIT_CODE.store(code, Ordering::SeqCst);
    let exit_now = state().signal();
    if exit_now {
        exit_interrupted();
    }
}

/// Deletes a keyring probe entry in flight, shows the cursor again, prints the line and
/// exits with the signal's code (130 when a prompt saw Ctrl-C).
pub fn exit_interrupted() -> ! {
    crate::store::backends::remove_interrupted_probe(PROBE_CLEANUP_WAIT);
    let line = line();
    let mut err = std::io::stderr();
    let _ = write!(err, "\x1b[?25h\n{line}\n");
    let _ = err.flush();
    std::process::exit(i32::from(EXIT_CODE.load(Ordering::SeqCst)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_in_a_section_waits_for_its_end_and_the_line_stays_true() {
        let mut s = State::new();
        assert_eq!(s.line(), format!("interrupted: {NOTHING_CHANGED}"));
        assert!(s.signal(), "outside a section: end now");
        let mut s = State::new();
        s.enter();
        s.enter();
        assert!(!s.signal(), "inside a section: wait");
        assert!(!s.leave(), "still inside the outer section");
        s.stored = Some("profile default was stored completely".into());
        assert!(s.leave(), "the outer section's end ends the process");
        assert_eq!(
            s.line(),
            "interrupted: profile default was stored completely"
        );
    }
}
