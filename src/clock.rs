//! Where the daemon gets "now". Injected everywhere time matters (the window policy, scheduling,
//! grace periods) so tests and the demo can set it: they share the simulators' shiftable clock
//! with the daemon through a small adapter of their own (the simulator crate knows nothing of
//! this trait), so "25 hours later" is the same instant on both sides.

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

pub type SharedClock = Arc<dyn Clock>;
