//! A clock the test sets.

use jiff::{SignedDuration, Timestamp};

use crate::clock::Clock;

/// A clock that always says the same time (tests) or a time set by the test.
#[derive(Debug)]
pub struct FixedClock(pub std::sync::Mutex<Timestamp>);

impl FixedClock {
    pub fn at(t: Timestamp) -> Self {
        Self(std::sync::Mutex::new(t))
    }

    pub fn advance(&self, by: SignedDuration) {
        let mut t = self.0.lock().expect("clock lock");
        *t = t.checked_add(by).expect("time in range");
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("clock lock")
    }
}
