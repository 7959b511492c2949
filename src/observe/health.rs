//! The intake's health as the workers report it (stream connected, last successful poll), read
//! by readiness ([`super::readiness`]) and the metrics. A leaf: it imports nothing from the
//! pipeline that writes it, so `pipeline → observe::health` is the only direction.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// Intake state the workers report and the probes read. Lock-free: updated on every poll.
#[derive(Debug)]
pub struct Health {
    /// Stream mode: the last CometD long poll succeeded (handshaken, subscribed, connected).
    stream_connected: AtomicBool,
    /// Poll mode: when the last successful poll ended, in milliseconds since the epoch (by the
    /// pipeline's clock); `i64::MIN` until the first one.
    last_poll_ok_millis: AtomicI64,
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
        }
    }

    /// Called by the stream intake after every long poll (and at disconnect).
    pub fn set_stream_connected(&self, connected: bool) {
        self.stream_connected.store(connected, Ordering::Release);
    }

    pub fn stream_connected(&self) -> bool {
        self.stream_connected.load(Ordering::Acquire)
    }

    /// Called by the poll step when Salesforce answered the poll.
    pub fn poll_succeeded(&self, at: DateTime<Utc>) {
        self.last_poll_ok_millis
            .store(at.timestamp_millis(), Ordering::Release);
    }

    pub fn last_poll_ok(&self) -> Option<DateTime<Utc>> {
        match self.last_poll_ok_millis.load(Ordering::Acquire) {
            i64::MIN => None,
            millis => DateTime::from_timestamp_millis(millis),
        }
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
