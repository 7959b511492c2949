//! Meta's two send limits as token buckets: throughput per business number (130429) and the pair
//! rate per (business number, customer) (131056). Buckets allow bursts and refill continuously, which
//! is how Meta describes "bursts borrow from future quota".
//!
//! Buckets run on real (monotonic) time, not the shiftable [`SimClock`](crate::clock::SimClock):
//! shifting the clock by a day must not hand out a day's worth of quota.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A classic token bucket.
#[derive(Clone, Debug)]
struct TokenBucket {
    capacity: f64,
    tokens: f64,
    refill_per_second: f64,
    updated: Instant,
}

impl TokenBucket {
    fn full(capacity: u32, refill_per_second: f64, now: Instant) -> Self {
        Self {
            capacity: f64::from(capacity),
            tokens: f64::from(capacity),
            refill_per_second,
            updated: now,
        }
    }

    /// Takes one token if there is one.
    fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.refill_per_second).min(self.capacity);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Which limit refused a send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Throughput,
    PairRate,
}

/// All buckets of one simulator.
#[derive(Debug)]
pub struct SendLimits {
    throughput_per_second: u32,
    pair_burst: u32,
    pair_refill_every: Duration,
    /// Numbers granted another throughput than the account's (`/__sim/numbers`).
    number_rates: HashMap<String, u32>,
    throughput: HashMap<String, TokenBucket>,
    pairs: HashMap<(String, String), TokenBucket>,
}

impl SendLimits {
    pub fn new(throughput_per_second: u32, pair_burst: u32, pair_refill_every: Duration) -> Self {
        Self {
            throughput_per_second,
            pair_burst,
            pair_refill_every,
            number_rates: HashMap::new(),
            throughput: HashMap::new(),
            pairs: HashMap::new(),
        }
    }

    /// Grants `phone_number_id` its own throughput (`None`: the account's again); its bucket
    /// starts over full.
    pub fn set_number_throughput(&mut self, phone_number_id: &str, per_second: Option<u32>) {
        match per_second {
            Some(rate) => self
                .number_rates
                .insert(phone_number_id.to_owned(), rate.max(1)),
            None => self.number_rates.remove(phone_number_id),
        };
        self.throughput.remove(phone_number_id);
    }

    /// The throughput `phone_number_id` is granted.
    pub fn throughput_of(&self, phone_number_id: &str) -> u32 {
        self.number_rates
            .get(phone_number_id)
            .copied()
            .unwrap_or(self.throughput_per_second)
    }

    /// Changes the limits at run time (control API); existing buckets start over full. Numbers
    /// with their own throughput keep it.
    pub fn reconfigure(
        &mut self,
        throughput_per_second: u32,
        pair_burst: u32,
        pair_refill_every: Duration,
    ) {
        let number_rates = std::mem::take(&mut self.number_rates);
        *self = Self::new(throughput_per_second, pair_burst, pair_refill_every);
        self.number_rates = number_rates;
    }

    pub fn throughput_per_second(&self) -> u32 {
        self.throughput_per_second
    }

    pub fn pair_burst(&self) -> u32 {
        self.pair_burst
    }

    pub fn pair_refill_every(&self) -> Duration {
        self.pair_refill_every
    }

    /// Admits one message from `phone_number_id` to `wa_id`, or says which limit refused it.
    /// A refused message consumes nothing, as at Meta.
    pub fn admit(
        &mut self,
        phone_number_id: &str,
        wa_id: &str,
        now: Instant,
    ) -> Result<(), Refusal> {
        let capacity = self.throughput_of(phone_number_id);
        let rate = f64::from(capacity);
        let number = self
            .throughput
            .entry(phone_number_id.to_owned())
            .or_insert_with(|| TokenBucket::full(capacity, rate, now));
        // Peek the pair bucket first so a pair refusal does not spend throughput.
        let pair_refill = 1.0 / self.pair_refill_every.as_secs_f64().max(f64::MIN_POSITIVE);
        let burst = self.pair_burst;
        let pair = self
            .pairs
            .entry((phone_number_id.to_owned(), wa_id.to_owned()))
            .or_insert_with(|| TokenBucket::full(burst, pair_refill, now));
        let mut number_probe = number.clone();
        if !number_probe.try_take(now) {
            return Err(Refusal::Throughput);
        }
        if !pair.try_take(now) {
            return Err(Refusal::PairRate);
        }
        *number = number_probe;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_bucket_allows_a_burst_then_refuses() {
        let now = Instant::now();
        let mut limits = SendLimits::new(100, 2, Duration::from_secs(6));
        assert!(limits.admit("p", "c", now).is_ok());
        assert!(limits.admit("p", "c", now).is_ok());
        assert_eq!(limits.admit("p", "c", now), Err(Refusal::PairRate));
        assert!(limits.admit("p", "other", now).is_ok());
        assert!(limits.admit("p", "c", now + Duration::from_secs(6)).is_ok());
    }

    #[test]
    fn a_number_with_its_own_throughput_is_limited_by_it_and_the_others_by_the_accounts() {
        let now = Instant::now();
        let mut limits = SendLimits::new(2, 45, Duration::from_secs(6));
        limits.set_number_throughput("fast", Some(4));

        let fast = (0..5).filter(|i| limits.admit("fast", &format!("c{i}"), now).is_ok());
        assert_eq!(fast.count(), 4);
        let slow = (0..5).filter(|i| limits.admit("slow", &format!("c{i}"), now).is_ok());
        assert_eq!(slow.count(), 2);
    }

    #[test]
    fn throughput_bucket_refuses_past_the_per_second_rate() {
        let now = Instant::now();
        let mut limits = SendLimits::new(2, 45, Duration::from_secs(6));
        assert!(limits.admit("p", "a", now).is_ok());
        assert!(limits.admit("p", "b", now).is_ok());
        assert_eq!(limits.admit("p", "c", now), Err(Refusal::Throughput));
        assert!(limits
            .admit("p", "c", now + Duration::from_millis(600))
            .is_ok());
    }
}
