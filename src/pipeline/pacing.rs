//! How fast sends go to Meta: one adaptive pace per business number, and the waits Meta imposes on
//! a single customer (pair rate) or a whole number (spam limit, app limits).
//!
//! This module owns the **rate** (DESIGN.md guarantee 6): `whatsapp.throughput_per_second` (or
//! the number's own `whatsapp.throughput_per_number`) is a ceiling, the number's throughput level (`GET /{phone_number_id}?fields=throughput`) lowers it as
//! a hint, and Meta's refusals are the truth:
//! - **130429** (throughput) cuts the number's rate to 90 % of what Meta actually accepted over the
//!   last two seconds (and at least 5 % below the rate that was refused). Refusals from sends
//!   already in flight when the first one came back belong to the same episode: one cut per second.
//! - Each second without a refusal raises the rate again: quickly (+25 %, up to 90 % of the rate
//!   last refused) while well below it, then by 1 % a second, so probing above Meta's grant costs
//!   a refusal every half minute or so instead of one per send. A refusal is remembered for a
//!   minute; the ceiling is never passed.
//! - **131056** (pair rate) delays only that customer: 6 s, then Meta's advice of 4^n seconds.
//! - **131048** (spam rate limit) and **4 / 80007** (app or account call limits) pause the number;
//!   records meant for it wait without calling Meta.
//!
//! Slots are handed out GCRA-style (a "next free slot" that advances by 1/rate per send, with a
//! burst of a tenth of a second's worth after a quiet spell). A cut pauses the number for half a
//! second and voids the slots already given out, so the sends queued behind the refused one do
//! not go out at the refused pace. It is written here rather than with
//! `governor` because the rate changes every second: a governor limiter's quota is fixed, and a
//! fresh limiter starts with a full burst, which each adjustment would hand out again.
//!
//! A send whose slot is still ahead sleeps until the next step of a 10 ms grid at or after it
//! ([`WAKE_GRID`], [`wake_at`]), never before its slot: the sends whose slots fall in one step
//! wake together (at 1,000/s, ten at a time instead of one every millisecond, each wake-up of the
//! runtime costing more than the timer it serves; docs/performance.md, twenty-eighth
//! measurement). That is at most rate/100 at once, a tenth of the burst the pace itself allows
//! after a quiet spell; a send whose slot is now goes at once.
//!
//! Pacing is local to one process, as are Meta's refusals it learns from. Slots run on tokio's
//! clock (tests can pause it); waits that end up in the journal use the pipeline's clock.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::whatsapp::{pair_rate_backoff, RateLimit, PAIR_RATE_BACKOFF};

/// Lowest rate a number is cut to: Meta never grants less than this to a registered number.
const MIN_RATE: f64 = 1.0;
/// How far back accepted sends are counted to estimate what Meta grants.
const MEASURE_OVER: Duration = Duration::from_secs(2);
/// Refusals within this long of a cut belong to the same episode (sends already in flight).
const EPISODE: Duration = Duration::from_secs(1);
/// How long the rate that Meta refused slows the probing above it.
const REMEMBER_REFUSAL: Duration = Duration::from_secs(60);
/// After a cut, no send for this long: Meta's bucket refills a little before sending resumes.
const AFTER_A_CUT: Duration = Duration::from_millis(500);
/// How often the rate may rise.
const RAISE_EVERY: Duration = Duration::from_secs(1);

/// Per-number pacing and per-customer waits.
#[derive(Debug)]
pub struct Pacer {
    /// `whatsapp.throughput_per_second`: never exceeded.
    configured: f64,
    /// `whatsapp.throughput_per_number`: these numbers' own ceilings instead.
    configured_per_number: HashMap<String, f64>,
    numbers: Mutex<HashMap<String, NumberPace>>,
    /// (number, customer) → not before (131056).
    recipients: Mutex<HashMap<(String, String), DateTime<Utc>>>,
    /// Where [`WAKE_GRID`]'s steps are counted from.
    grid_origin: Instant,
}

/// The step on which sends waiting for their slots wake (see the module's documentation).
pub const WAKE_GRID: Duration = Duration::from_millis(10);

/// When a send whose slot is `slot` wakes: at once if the slot is not ahead of `now`, else at the
/// first step of [`WAKE_GRID`] from `origin` at or after the slot.
pub fn wake_at(slot: Instant, now: Instant, origin: Instant) -> Instant {
    if slot <= now {
        return slot;
    }
    let step = WAKE_GRID.as_nanos();
    let steps = slot
        .saturating_duration_since(origin)
        .as_nanos()
        .div_ceil(step);
    let after_origin = u64::try_from(steps * step).unwrap_or(u64::MAX);
    origin + Duration::from_nanos(after_origin)
}

/// One business number's pace.
#[derive(Debug)]
struct NumberPace {
    /// Sends per second allowed now.
    rate: f64,
    /// The configured rate, lowered by the number's throughput level if that is lower.
    ceiling: f64,
    /// The next free send slot (GCRA's "theoretical arrival time").
    next_slot: Instant,
    /// When the rate was last cut, and the rate that was refused then.
    last_cut: Option<(Instant, f64)>,
    last_raise: Instant,
    /// Accepted sends within [`MEASURE_OVER`], oldest first.
    accepted: VecDeque<Instant>,
    /// 131048 / 4 / 80007: no send from this number before then.
    paused_until: Option<(DateTime<Utc>, RateLimit)>,
    /// Bumped by every cut: a slot given out before it is void.
    epoch: u64,
}

impl NumberPace {
    fn new(ceiling: f64, now: Instant) -> NumberPace {
        NumberPace {
            rate: ceiling,
            ceiling,
            next_slot: now,
            last_cut: None,
            last_raise: now,
            accepted: VecDeque::new(),
            paused_until: None,
            epoch: 0,
        }
    }

    /// Reserves the next slot; returns when it is, and the epoch it was given out in.
    fn reserve(&mut self, now: Instant) -> (Instant, u64) {
        let interval = Duration::from_secs_f64(1.0 / self.rate.max(MIN_RATE));
        // After a quiet spell up to a tenth of a second's worth may go at once, no more: Meta's
        // bucket allows a burst too, but a small one keeps the rate honest while adapting.
        let burst = (self.rate / 10.0).floor().max(1.0) - 1.0;
        let earliest = now.checked_sub(interval.mul_f64(burst)).unwrap_or(now);
        let slot = self.next_slot.max(earliest);
        self.next_slot = slot + interval;
        (slot, self.epoch)
    }

    fn forget_old(&mut self, now: Instant) {
        while self
            .accepted
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) > MEASURE_OVER)
        {
            self.accepted.pop_front();
        }
    }

    /// Accepted sends per second recently: over the span they cover, at least a second (so the
    /// burst Meta allows after a quiet spell is not mistaken for its rate).
    fn measured(&self, now: Instant) -> f64 {
        let span = self
            .accepted
            .front()
            .map_or(Duration::ZERO, |first| {
                now.saturating_duration_since(*first)
            })
            .max(Duration::from_secs(1));
        self.accepted.len() as f64 / span.as_secs_f64()
    }

    fn accepted(&mut self, now: Instant) {
        self.accepted.push_back(now);
        self.forget_old(now);
        let since_cut = self
            .last_cut
            .map_or(Duration::MAX, |(at, _)| now.saturating_duration_since(at));
        if self.rate >= self.ceiling
            || now.saturating_duration_since(self.last_raise) < RAISE_EVERY
            || since_cut < RAISE_EVERY
        {
            return;
        }
        self.last_raise = now;
        // A refusal is remembered for a minute: long enough to span the slow probe above it, short
        // enough that a number Meta upgraded meanwhile is found out fast.
        let refused = self
            .last_cut
            .filter(|_| since_cut < REMEMBER_REFUSAL)
            .map(|(_, refused)| refused);
        self.rate = match refused {
            Some(refused) if self.rate >= refused * 0.85 => self.rate * 1.01,
            Some(refused) => (self.rate * 1.25 + 1.0).min(refused * 0.9),
            None => self.rate * 1.25 + 1.0,
        }
        .min(self.ceiling);
    }

    /// Returns whether this refusal cut the rate (the first of an episode).
    fn throttled(&mut self, now: Instant) -> bool {
        self.forget_old(now);
        if self
            .last_cut
            .is_some_and(|(at, _)| now.saturating_duration_since(at) < EPISODE)
        {
            return false;
        }
        let refused = self.rate;
        let measured = self.measured(now);
        self.rate = (measured * 0.9).min(refused * 0.95).max(MIN_RATE);
        self.last_cut = Some((now, measured.max(MIN_RATE)));
        self.last_raise = now;
        // Meta's bucket is empty: give it a moment to refill before the next send, and make every
        // send waiting for a slot given out at the old rate take a new one (see `Pacer::slot`).
        self.next_slot = now + AFTER_A_CUT;
        self.epoch += 1;
        true
    }
}

/// What a rate-limit refusal did to the pace.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Refused {
    /// When the refused record may be tried again.
    pub retry_at: DateTime<Utc>,
    /// The number's new rate, if this refusal cut it (store it: [`pace_cursor`]).
    pub cut_to: Option<f64>,
}

/// The `cursors` row holding the rate a number was last cut to: a restarted sfwa starts there
/// instead of at the configured rate, so a kill does not cost another round of 130429s. Trusted
/// for [`LEARNED_PACE_KEPT`] after it was written.
pub fn pace_cursor(number: &str) -> String {
    format!("pace:{number}")
}

/// How long a learned rate outlives the process that learned it.
pub const LEARNED_PACE_KEPT: chrono::Duration = chrono::Duration::minutes(10);

/// Why a send must wait without calling Meta.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldBack {
    pub until: DateTime<Utc>,
    pub limit: RateLimit,
}

impl Pacer {
    pub fn new(throughput_per_second: u32) -> Pacer {
        Pacer {
            configured: f64::from(throughput_per_second.max(1)),
            configured_per_number: HashMap::new(),
            numbers: Mutex::new(HashMap::new()),
            recipients: Mutex::new(HashMap::new()),
            grid_origin: Instant::now(),
        }
    }

    /// Gives the numbers of `whatsapp.throughput_per_number` their own ceilings.
    pub fn with_number_ceilings(
        mut self,
        per_number: &std::collections::BTreeMap<String, u32>,
    ) -> Pacer {
        self.configured_per_number = per_number
            .iter()
            .map(|(number, rate)| (number.clone(), f64::from((*rate).max(1))))
            .collect();
        self
    }

    /// The configured ceiling of `number`: its own, else `whatsapp.throughput_per_second`.
    fn configured_for(&self, number: &str) -> f64 {
        self.configured_per_number
            .get(number)
            .copied()
            .unwrap_or(self.configured)
    }

    fn with_number<T>(&self, number: &str, f: impl FnOnce(&mut NumberPace) -> T) -> T {
        let mut numbers = self.numbers.lock().unwrap_or_else(|e| e.into_inner());
        let pace = numbers
            .entry(number.to_string())
            .or_insert_with(|| NumberPace::new(self.configured_for(number), Instant::now()));
        f(pace)
    }

    /// The number's throughput level as Meta reports it (messages per second): the rate never
    /// goes above it. Only a hint: refusals still decide.
    pub fn set_level(&self, number: &str, per_second: u32) {
        let ceiling = self
            .configured_for(number)
            .min(f64::from(per_second.max(1)));
        self.with_number(number, |pace| {
            pace.ceiling = ceiling;
            pace.rate = pace.rate.min(ceiling);
        });
    }

    /// Waits for this number's next send slot.
    /// A cut while waiting voids the slot: the send takes a new one at the new rate, after the
    /// pause the cut imposed, instead of going out at the pace Meta just refused.
    /// Returns how long the pace made the send wait: from the call to its slot (what waking on
    /// [`WAKE_GRID`] adds is not counted, so a send that was only just ahead of its slot does not
    /// read as a backlog).
    pub async fn slot(&self, number: &str) -> Duration {
        let asked = Instant::now();
        loop {
            let now = Instant::now();
            let (at, epoch) = self.with_number(number, |pace| pace.reserve(now));
            tokio::time::sleep_until(wake_at(at, now, self.grid_origin)).await;
            if self.with_number(number, |pace| pace.epoch == epoch) {
                return at.saturating_duration_since(asked);
            }
        }
    }

    /// Meta accepted a send from `number`.
    pub fn accepted(&self, number: &str) {
        self.with_number(number, |pace| pace.accepted(Instant::now()));
    }

    /// Meta refused a send with a rate limit. Adapts the pace and returns when the record may be
    /// tried again (`refusals`: this record's refusals so far, this one included).
    pub fn refused(
        &self,
        number: &str,
        wa_id: &str,
        limit: RateLimit,
        refusals: u32,
        now: DateTime<Utc>,
    ) -> Refused {
        let mut cut_to = None;
        let wait = match limit {
            RateLimit::Throughput => {
                let (cut, rate) =
                    self.with_number(number, |pace| (pace.throttled(Instant::now()), pace.rate));
                if cut {
                    tracing::warn!(
                        number,
                        rate = format!("{rate:.1}"),
                        "WhatsApp refused a send for throughput (130429); sending slower"
                    );
                    cut_to = Some(rate);
                }
                // The pace spaces the retries; a little jitter keeps them from arriving together.
                Duration::from_millis(1000 + rand::random::<u64>() % 2000)
            }
            RateLimit::Pair => {
                let wait = if refusals <= 1 {
                    PAIR_RATE_BACKOFF
                } else {
                    pair_rate_backoff(refusals).max(PAIR_RATE_BACKOFF)
                };
                let until = now + chrono::Duration::from_std(wait).unwrap_or_default();
                self.recipients
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((number.to_string(), wa_id.to_string()), until);
                wait
            }
            RateLimit::Spam | RateLimit::App => {
                let wait = limit.pause();
                let until = now + chrono::Duration::from_std(wait).unwrap_or_default();
                self.with_number(number, |pace| pace.paused_until = Some((until, limit)));
                tracing::warn!(number, %until, "WhatsApp limits this number ({limit:?}); its sends wait");
                wait
            }
        };
        Refused {
            retry_at: now + chrono::Duration::from_std(wait).unwrap_or_default(),
            cut_to,
        }
    }

    /// Starts `number` at a rate learned from Meta's refusals before a restart (see
    /// [`pace_cursor`]), probing slowly above it as if the refusal had just happened.
    pub fn resume_learned(&self, number: &str, rate: f64) {
        self.with_number(number, |pace| {
            pace.rate = rate.clamp(MIN_RATE, pace.ceiling);
            let now = Instant::now();
            pace.last_cut = Some((now, pace.rate / 0.9));
            pace.last_raise = now;
        });
    }

    /// Whether a send from `number` to `wa_id` must wait, without calling Meta: the number is
    /// paused, or that customer was sent to too fast.
    pub fn held_back(&self, number: &str, wa_id: &str, now: DateTime<Utc>) -> Option<HeldBack> {
        let paused = self.with_number(number, |pace| match pace.paused_until {
            Some((until, limit)) if until > now => Some(HeldBack { until, limit }),
            Some(_) => {
                pace.paused_until = None;
                None
            }
            None => None,
        });
        if paused.is_some() {
            return paused;
        }
        let mut recipients = self.recipients.lock().unwrap_or_else(|e| e.into_inner());
        let key = (number.to_string(), wa_id.to_string());
        match recipients.get(&key) {
            Some(until) if *until > now => Some(HeldBack {
                until: *until,
                limit: RateLimit::Pair,
            }),
            Some(_) => {
                recipients.remove(&key);
                None
            }
            None => None,
        }
    }

    /// The rate each number is paced at now (for `/metrics`).
    pub fn rates(&self) -> Vec<(String, f64)> {
        let numbers = self.numbers.lock().unwrap_or_else(|e| e.into_inner());
        numbers
            .iter()
            .map(|(number, pace)| (number.clone(), pace.rate))
            .collect()
    }

    /// The rate `number` is paced at now.
    pub fn rate(&self, number: &str) -> f64 {
        self.with_number(number, |pace| pace.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, millis: u64) -> Instant {
        start + Duration::from_millis(millis)
    }

    #[test]
    fn slots_are_spaced_by_the_rate_after_a_small_burst() {
        let start = Instant::now();
        let mut pace = NumberPace::new(20.0, start);

        let slots: Vec<Instant> = (0..4).map(|_| pace.reserve(start).0).collect();

        // 20/s: a burst of 2 (a tenth of a second's worth), then 50 ms apart.
        assert_eq!(slots[1] - slots[0], Duration::from_millis(50));
        assert_eq!(slots[3] - slots[2], Duration::from_millis(50));
        assert!(slots[0] <= start);
    }

    #[test]
    fn a_throughput_refusal_cuts_to_what_meta_accepted_and_once_per_episode() {
        let start = Instant::now();
        let mut pace = NumberPace::new(80.0, start);
        // Meta accepted 25 sends within the last second, then refused.
        for i in 0..25 {
            pace.accepted(at(start, i * 40));
        }

        let first = pace.throttled(at(start, 1000));
        let same_episode = pace.throttled(at(start, 1200));

        assert!(first);
        assert!(!same_episode);
        assert!((pace.rate - 25.0 * 0.9).abs() < 0.5, "{}", pace.rate);
        let (next, epoch) = pace.reserve(at(start, 1200));
        assert_eq!(epoch, 1, "slots given out before the cut are void");
        assert!(next >= at(start, 1500), "sending resumes after a pause");
    }

    #[test]
    fn the_rate_recovers_quickly_far_below_the_refusal_and_slowly_near_it() {
        let start = Instant::now();
        let mut pace = NumberPace::new(80.0, start);
        pace.rate = 4.0;
        pace.last_cut = Some((start, 20.0));

        let mut t = 0;
        let mut rates = Vec::new();
        for _ in 0..30 {
            t += 1001;
            pace.accepted(at(start, t));
            rates.push(pace.rate);
        }

        // Fast while under 85 % of the refused rate (17/s), then about 1 % a second.
        assert!(rates[5] > 17.0, "{rates:?}");
        assert!(rates[29] < 20.0 * 1.25, "{rates:?}");
        assert!(rates.windows(2).all(|w| w[1] >= w[0]));
    }

    #[test]
    fn the_rate_never_passes_the_ceiling() {
        let start = Instant::now();
        let mut pace = NumberPace::new(10.0, start);
        pace.rate = 9.0;
        for i in 1..20 {
            pace.accepted(at(start, i * 1001));
        }
        assert_eq!(pace.rate, 10.0);
    }

    #[test]
    fn a_pair_rate_refusal_holds_back_only_that_customer() {
        let pacer = Pacer::new(80);
        let now = Utc::now();

        let retry_at = pacer
            .refused("PN1", "15550001", RateLimit::Pair, 1, now)
            .retry_at;

        assert!(retry_at >= now + chrono::Duration::seconds(6));
        let held = pacer.held_back("PN1", "15550001", now).expect("held back");
        assert_eq!(held.limit, RateLimit::Pair);
        assert_eq!(pacer.held_back("PN1", "15550002", now), None);
        assert_eq!(pacer.held_back("PN2", "15550001", now), None);
        assert_eq!(pacer.held_back("PN1", "15550001", retry_at), None);
        assert_eq!(pacer.rate("PN1"), 80.0);
    }

    #[test]
    fn a_spam_limit_pauses_the_whole_number() {
        let pacer = Pacer::new(80);
        let now = Utc::now();

        let retry_at = pacer
            .refused("PN1", "15550001", RateLimit::Spam, 1, now)
            .retry_at;

        let held = pacer
            .held_back("PN1", "15559999", now)
            .expect("number paused");
        assert_eq!(held.until, retry_at);
        assert_eq!(pacer.held_back("PN2", "15559999", now), None);
    }

    #[test]
    fn a_rate_learned_before_a_restart_is_resumed_and_probed_slowly() {
        let pacer = Pacer::new(80);

        pacer.resume_learned("PN1", 18.0);

        assert_eq!(pacer.rate("PN1"), 18.0);
        pacer.with_number("PN1", |pace| {
            let later = Instant::now() + Duration::from_millis(1100);
            pace.accepted(later);
            assert!(pace.rate <= 18.0 * 1.011, "{}", pace.rate);
        });
    }

    #[test]
    fn a_number_with_its_own_configured_ceiling_is_paced_to_it_and_the_others_to_the_default() {
        let ceilings = [("PN20".to_string(), 20), ("PN200".to_string(), 200)].into();
        let pacer = Pacer::new(80).with_number_ceilings(&ceilings);

        pacer.set_level("PN200", 1000);

        assert_eq!(pacer.rate("PN20"), 20.0);
        assert_eq!(pacer.rate("PN200"), 200.0);
        assert_eq!(pacer.rate("PN80"), 80.0);
    }

    #[tokio::test(start_paused = true)]
    async fn sends_asking_at_once_say_how_long_each_waited_for_its_slot() {
        let pacer = Pacer::new(20);

        let waits = futures_util::future::join_all((0..4).map(|_| pacer.slot("PN1"))).await;

        // 20/s: 50 ms apart.
        let ms = |millis| Duration::from_millis(millis);
        assert_eq!(waits, [ms(0), ms(50), ms(100), ms(150)]);
    }

    #[test]
    fn a_slot_ahead_wakes_on_the_next_grid_step_and_a_slot_now_at_once() {
        let origin = Instant::now();
        let now = at(origin, 3);
        assert_eq!(wake_at(now, now, origin), now, "a slot now goes at once");
        assert_eq!(
            wake_at(at(origin, 1), now, origin),
            at(origin, 1),
            "one past goes too"
        );
        assert_eq!(wake_at(at(origin, 4), now, origin), at(origin, 10));
        assert_eq!(
            wake_at(at(origin, 10), now, origin),
            at(origin, 10),
            "on a step"
        );
        assert_eq!(wake_at(at(origin, 11), now, origin), at(origin, 20));
    }

    #[tokio::test(start_paused = true)]
    async fn sends_paced_at_1000_per_second_wake_ten_at_a_time_and_none_before_its_slot() {
        let pacer = Pacer::new(1000);
        let start = Instant::now();
        // A new number's slots: now, then 1 ms apart.
        let woke = futures_util::future::join_all((0..30).map(|_| async {
            let waited = pacer.slot("PN1").await;
            (Instant::now().duration_since(start), waited)
        }))
        .await;

        let ms = |millis| Duration::from_millis(millis);
        let steps: std::collections::BTreeSet<_> = woke.iter().map(|(at, _)| *at).collect();
        assert_eq!(
            steps.into_iter().collect::<Vec<_>>(),
            [ms(0), ms(10), ms(20), ms(30)],
            "the first at once, the others on three steps"
        );
        for (i, (woke, _)) in woke.iter().enumerate() {
            let slot = ms(i as u64);
            assert!(
                *woke >= slot,
                "send {i} woke at {woke:?}, before its slot {slot:?}"
            );
            assert!(
                *woke < slot + WAKE_GRID,
                "send {i} woke at {woke:?}, a step late"
            );
        }
        let waited: Vec<_> = woke.iter().map(|(_, waited)| *waited).collect();
        assert_eq!(
            waited,
            (0..30).map(ms).collect::<Vec<_>>(),
            "each says the wait its slot imposed, not the grid's"
        );
    }

    #[test]
    fn the_throughput_level_lowers_the_ceiling() {
        let pacer = Pacer::new(80);
        pacer.set_level("PN1", 20);
        assert_eq!(pacer.rate("PN1"), 20.0);
        pacer.set_level("PN2", 1000);
        assert_eq!(pacer.rate("PN2"), 80.0);
    }
}
