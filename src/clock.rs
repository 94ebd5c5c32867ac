//! Time as a dependency: commands ask a `Clock`, so the 06:00 IST rule, request-token ages
//! and countdowns are testable with a fixed time. `SystemClock` is the one place that
//! reads the system time.

use jiff::{SignedDuration, Timestamp};

/// Where "now" comes from (shared with the sandbox, which takes the same clock in-process).
pub use kite_wire::time::Clock;

/// The real time, optionally shifted (the sandbox's clock offset in sandbox mode, so
/// that time travel in the sandbox is seen by the tool's own expiry checks).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock {
    pub offset: SignedDuration,
}

impl SystemClock {
    pub fn shifted(offset: SignedDuration) -> Self {
        Self { offset }
    }
}

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one adapter allowed to read the system time
    fn now(&self) -> Timestamp {
        Timestamp::now()
            .checked_add(self.offset)
            .unwrap_or_else(|_| Timestamp::now())
    }
}

/// Monotonic time for deadlines and waits (the wall clock can jump; a deadline must not).
/// Commands ask this port, so a flow test decides how long a wait lasted.
pub trait Monotonic {
    fn now(&self) -> std::time::Instant;
}

/// The OS's monotonic clock: the one place that reads it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemMonotonic;

impl Monotonic for SystemMonotonic {
    #[allow(clippy::disallowed_methods)] // the one adapter allowed to read the monotonic clock
    fn now(&self) -> std::time::Instant {
        std::time::Instant::now()
    }
}
