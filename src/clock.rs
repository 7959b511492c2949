//! Where the daemon gets "now". Injected everywhere time matters (the window policy, scheduling,
//! grace periods) so tests and the demo can set it.

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The simulators' shiftable clock doubles as the daemon's clock in tests and the demo, so
/// "25 hours later" is the same instant on both sides.
impl Clock for crate::sim::clock::SimClock {
    fn now(&self) -> DateTime<Utc> {
        crate::sim::clock::SimClock::now(self)
    }
}

pub type SharedClock = Arc<dyn Clock>;
