//! The intake's health as the workers report it (stream connected, last successful poll), and
//! the org's platform-event delivery allocation as [`super::limits`] last read it; read by
//! readiness ([`super::readiness`]) and the metrics. It is one of the pipeline's observers
//! ([`Reporter`]): `app` passes it in, the pipeline never names it.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::pipeline::report::Reporter;
use crate::salesforce::Limit;

/// Intake state the workers report and the probes read. Lock-free: updated on every poll.
#[derive(Debug)]
pub struct Health {
    /// Stream mode: the last CometD long poll succeeded (handshaken, subscribed, connected).
    stream_connected: AtomicBool,
    /// Poll mode: when the last successful poll ended, in milliseconds since the epoch (by the
    /// pipeline's clock); `i64::MIN` until the first one.
    last_poll_ok_millis: AtomicI64,
    /// `DailyDeliveredPlatformEvents` as last read; `None` until read, or when the org does not
    /// report it.
    platform_events: Mutex<Option<Limit>>,
}

impl Default for Health {
    fn default() -> Health {
        Health::new()
    }
}

impl Health {
    pub fn new() -> Health {
        Health {
            stream_connected: AtomicBool::new(false),
            last_poll_ok_millis: AtomicI64::new(i64::MIN),
            platform_events: Mutex::new(None),
        }
    }

    pub fn stream_connected(&self) -> bool {
        self.stream_connected.load(Ordering::Acquire)
    }

    pub fn last_poll_ok(&self) -> Option<DateTime<Utc>> {
        match self.last_poll_ok_millis.load(Ordering::Acquire) {
            i64::MIN => None,
            millis => DateTime::from_timestamp_millis(millis),
        }
    }

    /// The org's platform-event delivery allocation, as last read.
    pub fn platform_events(&self) -> Option<Limit> {
        *self
            .platform_events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the allocation just read (`None`: the org does not report it).
    pub fn set_platform_events(&self, limit: Option<Limit>) {
        *self
            .platform_events
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = limit;
    }
}

/// The intake's state, as the stream and the poll report it.
impl Reporter for Health {
    /// Called by the stream intake after every long poll (and at disconnect).
    fn stream_connected(&self, connected: bool) {
        self.stream_connected.store(connected, Ordering::Release);
    }

    /// Called by the poll step when Salesforce answered the poll.
    fn poll_succeeded(&self, at: DateTime<Utc>) {
        self.last_poll_ok_millis
            .store(at.timestamp_millis(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_health_has_neither_a_connection_nor_a_poll() {
        let health = Health::new();
        assert!(!health.stream_connected());
        assert_eq!(health.last_poll_ok(), None);
    }

    #[test]
    fn the_last_successful_poll_is_kept_to_the_millisecond() {
        let health = Health::new();
        let at = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        health.poll_succeeded(at);
        assert_eq!(health.last_poll_ok(), Some(at));
    }
}
