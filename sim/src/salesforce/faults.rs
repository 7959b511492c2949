//! Faults on demand, so clients can be tested against a bad day at Salesforce.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// What goes wrong, set through `POST /__sim/faults`. Rates are probabilities per request (or per
/// record for row locks); all default to "nothing goes wrong".
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Share of REST requests answered 500 UNKNOWN_EXCEPTION (before doing anything).
    pub error_500_rate: f64,
    /// Share of REST requests answered 503 SERVER_UNAVAILABLE (before doing anything).
    pub error_503_rate: f64,
    /// Added to every REST and token response.
    pub latency_ms: u64,
    /// Share of records in collection writes failing with UNABLE_TO_LOCK_ROW.
    pub lock_row_rate: f64,
    /// Share of REST requests whose connection is cut after the work was done: the client cannot
    /// know whether its write happened (the hardest case for exactly-once delivery).
    pub drop_connection_rate: f64,
    /// Cut only writes (any method but GET): reads such as queries still get their answers, so a
    /// client's lookups succeed and only the outcome of its writes is unknown.
    pub drop_writes_only: bool,
}

impl Faults {
    pub fn latency(&self) -> Option<Duration> {
        (self.latency_ms > 0).then(|| Duration::from_millis(self.latency_ms))
    }

    pub fn roll(rate: f64) -> bool {
        rate > 0.0 && rand::thread_rng().gen_bool(rate.clamp(0.0, 1.0))
    }
}
