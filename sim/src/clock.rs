//! The simulators' clock: wall time plus an offset that tests, the demo and the control API can shift.
//!
//! Shifting instead of freezing keeps long-polls, webhook delays and read receipts moving at human
//! speed while letting a test make a customer's last message 25 h old in one call.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

/// A cheaply cloned handle; every clone sees the same offset.
#[derive(Clone, Debug, Default)]
pub struct SimClock {
    /// Milliseconds added to the system clock. Atomic so every request handler can read it lock-free.
    offset_ms: Arc<AtomicI64>,
}

impl SimClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// The simulated "now".
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves simulated time forward (or back, with a negative duration).
    pub fn shift(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.num_milliseconds(), Ordering::Relaxed);
    }

    /// The total shift applied so far.
    pub fn offset(&self) -> Duration {
        Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifting_one_clone_moves_every_clone() {
        let clock = SimClock::new();
        let other = clock.clone();
        clock.shift(Duration::hours(25));
        assert_eq!(other.offset(), Duration::hours(25));
        assert!(other.now() - Utc::now() >= Duration::hours(25) - Duration::seconds(1));
    }
}
