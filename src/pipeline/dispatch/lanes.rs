//! How many sends are in flight per business number, and the lanes they wait in.
//!
//! **Sized by Little's law.** To go at `rate` sends a second when each send holds its slot for
//! `latency` (from its pace slot to its outcome journaled: the Graph call and the two journal
//! commits around it), a number needs `rate × latency` sends in flight. [`concurrency`] doubles that for
//! jitter and adds a few spare, bounded to [`MIN_SENDS`]`..=`[`MAX_SENDS`]. The rate is
//! the number's pace now ([`crate::pipeline::pacing::Pacer::rate`]: its configured ceiling, lowered by
//! 130429s); the latency is the network's round trip, the **shortest** call of this number's in the
//! last [`WINDOW`]`..2×WINDOW` (as TCP's BBR takes the minimum RTT over 10 s): an average would also
//! count the time calls queue in a saturated server or client, and sizing from it feeds itself —
//! more in flight, longer queues, more in flight — up to the bound, holding a socket and memory
//! per extra send for no extra throughput (measured: 1,024 in flight and 2,500 sockets for 950/s).
//! Each send's start resizes the lane, so the limit follows both (a slower network grows it
//! within a window, a cut pace shrinks it at once). The slots
//! only bound how many wait: the [`Pacer`](crate::pipeline::pacing::Pacer) still decides when each
//! send leaves, so a bigger lane never bursts past Meta's limit.
//!
//! **Lanes outlive an intake step.** [`Lanes::admit`] waits only while the number already has
//! [`QUEUED_PER_NUMBER`] records waiting for a slot (backpressure: a 100 k backlog never sits in
//! memory); the caller (`worker::hand_over`) then spawns the send and reads the next page or
//! events while it is in flight. Every lane's tasks are counted: [`Lanes::idle`] waits for them
//! all (tests, shutdown), [`Lanes::stop`] makes records not yet sending give up their place —
//! their claims stay in the journal, and the orphan scan (`worker::retry_step`) resumes them.
//!
//! Each number has its own slots and queue, so a slow or held number never starves another.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Fewest sends in flight per number: with no network latency a send still holds its slot for
/// its two journal commits (an fsync each, a few ms), so 16 keep a number at Meta's 1,000/s with
/// a loopback or very near Graph endpoint (measured: 6 slots gave 573/s at 0 ms).
pub const MIN_SENDS: usize = 16;
/// Most sends in flight per number: Meta's highest tier (1,000/s) at a 800 ms round trip, about
/// the worst a healthy network gives. More would only hold sockets and memory for sends that wait
/// for their pace anyway.
pub const MAX_SENDS: usize = 1024;
/// Slots over `rate × latency`: room for calls up to twice the round trip, and [`SPARE_SENDS`]
/// more. The round trip is the shortest call's, and most calls take longer: 1.5 instead held
/// two numbers at 500 ms to 1,510–1,539 sends/s against 1,934–2,008 (docs/performance.md,
/// twenty-sixth measurement).
const HEADROOM: f64 = 2.0;
const SPARE_SENDS: usize = MIN_SENDS;
/// The latency assumed before a number's first send is measured: a real network's round trip.
pub const FIRST_LATENCY: Duration = Duration::from_millis(250);
/// The latency window: the round trip is the shortest call of the current window and the one
/// before, so a network that got slower is followed within two windows.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Records admitted per number that wait for a slot: half a second at Meta's highest tier, so a
/// lane does not run dry between two intake pages (as many sends a second as with 1,000, for one
/// number at 200 ms and two at 500 ms), yet a backlog stays in Salesforce. Each waiting record is
/// held whole, with its task (docs/performance.md, twenty-sixth measurement).
pub const QUEUED_PER_NUMBER: usize = 500;

/// Sends in flight a number needs to go at `rate` per second when each holds its slot `latency`
/// (Little's law, with headroom, bounded).
pub fn concurrency(rate: f64, latency: Duration) -> usize {
    let needed = (rate.max(0.0) * latency.as_secs_f64() * HEADROOM).ceil();
    // Saturating float → int: a NaN or huge product lands on a bound, never panics.
    let needed = if needed.is_finite() {
        needed as usize
    } else {
        MAX_SENDS
    };
    needed
        .saturating_add(SPARE_SENDS)
        .clamp(MIN_SENDS, MAX_SENDS)
}

/// The per-number lanes of one dispatcher.
#[derive(Debug, Default)]
pub struct Lanes {
    numbers: Mutex<HashMap<String, Arc<Lane>>>,
    /// Tasks handed a record and not finished.
    tasks: AtomicUsize,
    went_idle: Notify,
    /// Cancelled by [`finish`](Self::finish) for the time it waits; a fresh one after.
    stop: Mutex<CancellationToken>,
}

/// One number's lane: its slots (resizable), its queue, its latency.
#[derive(Debug)]
struct Lane {
    slots: Arc<Semaphore>,
    queue: Arc<Semaphore>,
    state: Mutex<LaneState>,
}

#[derive(Debug)]
struct LaneState {
    /// Slots the lane has now (given out or free).
    limit: usize,
    /// Slots to take back as they are returned (a shrink bigger than the free slots).
    debt: usize,
    /// The round trip the lane is sized by, seconds: the shortest of `window` and `previous`.
    latency: f64,
    window: MinWindow,
}

/// The shortest call of the current [`WINDOW`] and of the one before.
#[derive(Debug)]
struct MinWindow {
    current: f64,
    previous: f64,
    /// When the current window began (`None` until the first call).
    began: Option<Instant>,
}

impl MinWindow {
    fn new(first: f64) -> MinWindow {
        MinWindow {
            current: f64::INFINITY,
            previous: first,
            began: None,
        }
    }

    /// Adds one call's time, finished at `now`; returns the round trip now.
    fn add(&mut self, took: f64, now: Instant) -> f64 {
        let began = *self.began.get_or_insert(now);
        if now.saturating_duration_since(began) >= WINDOW {
            self.previous = self.current;
            self.current = f64::INFINITY;
            self.began = Some(now);
        }
        self.current = self.current.min(took);
        self.current.min(self.previous)
    }
}

impl Lane {
    fn new() -> Lane {
        let limit = MIN_SENDS;
        Lane {
            slots: Arc::new(Semaphore::new(limit)),
            queue: Arc::new(Semaphore::new(QUEUED_PER_NUMBER)),
            state: Mutex::new(LaneState {
                limit,
                debt: 0,
                latency: FIRST_LATENCY.as_secs_f64(),
                window: MinWindow::new(FIRST_LATENCY.as_secs_f64()),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LaneState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Grows or shrinks the slots to what `rate` and the measured latency need.
    fn resize(&self, rate: f64) {
        let mut state = self.state();
        let target = concurrency(rate, Duration::from_secs_f64(state.latency));
        if target > state.limit {
            let grow = target - state.limit;
            // Slots still owed back are simply kept instead.
            let repaid = grow.min(state.debt);
            state.debt -= repaid;
            self.slots.add_permits(grow - repaid);
        } else if target < state.limit {
            let shrink = state.limit - target;
            let taken = self.slots.forget_permits(shrink);
            state.debt += shrink - taken;
        }
        state.limit = target;
    }
}

/// A record's place in its number's queue, from admission until it has a send slot.
#[derive(Debug)]
pub struct Admitted {
    lane: Arc<Lane>,
    _queued: OwnedSemaphorePermit,
}

/// A send slot of one number, returned (or taken back by a shrink) when dropped.
#[derive(Debug)]
pub struct SendSlot {
    lane: Arc<Lane>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for SendSlot {
    fn drop(&mut self) {
        let mut state = self.lane.state();
        if state.debt > 0 {
            state.debt -= 1;
            if let Some(permit) = self.permit.take() {
                permit.forget();
            }
        }
    }
}

/// Counts a task handed to the lanes until dropped.
#[derive(Debug)]
pub struct Task {
    lanes: Arc<Lanes>,
}

impl Drop for Task {
    fn drop(&mut self) {
        if self.lanes.tasks.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.lanes.went_idle.notify_waiters();
        }
    }
}

impl Lanes {
    fn lane(&self, number: &str) -> Arc<Lane> {
        let mut numbers = self.numbers.lock().unwrap_or_else(|e| e.into_inner());
        numbers
            .entry(number.to_string())
            .or_insert_with(|| Arc::new(Lane::new()))
            .clone()
    }

    /// A place in `number`'s queue: waits while [`QUEUED_PER_NUMBER`] records already wait there.
    /// `None` once the lanes are stopped.
    pub async fn admit(&self, number: &str) -> Option<Admitted> {
        let lane = self.lane(number);
        let stop = self.stop_token();
        let queued = tokio::select! {
            biased;
            _ = stop.cancelled() => return None,
            queued = lane.queue.clone().acquire_owned() => queued.ok()?,
        };
        Some(Admitted {
            lane,
            _queued: queued,
        })
    }

    /// [`admit`](Self::admit) without waiting: `None` while `number`'s queue is full (or the
    /// lanes are stopped).
    pub fn try_admit(&self, number: &str) -> Option<Admitted> {
        if self.stop_token().is_cancelled() {
            return None;
        }
        let lane = self.lane(number);
        let queued = lane.queue.clone().try_acquire_owned().ok()?;
        Some(Admitted {
            lane,
            _queued: queued,
        })
    }

    /// Counts a task until the returned guard drops (see [`idle`](Self::idle)).
    pub fn task(self: &Arc<Self>) -> Task {
        self.tasks.fetch_add(1, Ordering::SeqCst);
        Task {
            lanes: self.clone(),
        }
    }

    /// A send slot for an admitted record, the lane first sized for `rate` (the number's pace
    /// now); the queue place is given up once the slot is had. `None` if the lanes are stopped
    /// first: the record is not sent here (its claim stays journaled).
    pub async fn slot(&self, admitted: Admitted, rate: f64) -> Option<SendSlot> {
        admitted.lane.resize(rate);
        let stop = self.stop_token();
        let permit = tokio::select! {
            biased;
            _ = stop.cancelled() => return None,
            permit = admitted.lane.slots.clone().acquire_owned() => permit.ok()?,
        };
        Some(SendSlot {
            lane: admitted.lane,
            permit: Some(permit),
        })
    }

    /// A send from `number` held its slot for `took` (after its pace): the lane's round trip
    /// follows it (see the module docs).
    pub fn observed(&self, number: &str, took: Duration) {
        let lane = self.lane(number);
        let mut state = lane.state();
        state.latency = state.window.add(took.as_secs_f64(), Instant::now());
    }

    /// Send slots per number now (for `/metrics`).
    pub fn limits(&self) -> Vec<(String, usize)> {
        let numbers = self.numbers.lock().unwrap_or_else(|e| e.into_inner());
        numbers
            .iter()
            .map(|(number, lane)| (number.clone(), lane.state().limit))
            .collect()
    }

    /// Tasks handed a record and not finished.
    pub fn busy(&self) -> usize {
        self.tasks.load(Ordering::SeqCst)
    }

    /// Waits until no task is left (sends finished, or given up after [`stop`](Self::stop)).
    pub async fn idle(&self) {
        loop {
            let notified = self.went_idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.busy() == 0 {
                return;
            }
            notified.await;
        }
    }

    fn stop_token(&self) -> CancellationToken {
        self.stop.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// For shutdown: records not yet sending give up their place (their claims stay journaled:
    /// the orphan scan of the next start resumes them), the sends in flight finish; returns when
    /// no task is left. The lanes take records again afterwards (a test's next step).
    pub async fn finish(&self) {
        let stop = self.stop_token();
        stop.cancel();
        self.idle().await;
        let mut current = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        if current.is_cancelled() {
            *current = CancellationToken::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_grows_with_the_latency_at_one_rate() {
        let fast = concurrency(1000.0, Duration::from_millis(5));
        let slow = concurrency(1000.0, Duration::from_millis(200));

        assert!(fast < slow, "{fast} vs {slow}");
        // 1,000/s × 0.2 s = 200 in flight, doubled for jitter, and the spare.
        assert_eq!(slow, 416);
    }

    #[test]
    fn the_limit_shrinks_when_the_pace_is_cut() {
        let before = concurrency(1000.0, Duration::from_millis(200));
        // Meta refused (130429) and the pace went to a tenth.
        let after = concurrency(100.0, Duration::from_millis(200));

        assert!(after < before / 5, "{after} vs {before}");
    }

    #[test]
    fn the_limit_stays_within_its_bounds() {
        assert_eq!(concurrency(0.0, Duration::ZERO), MIN_SENDS);
        assert_eq!(concurrency(1.0, Duration::from_millis(1)), MIN_SENDS + 1);
        assert_eq!(concurrency(10_000.0, Duration::from_secs(5)), MAX_SENDS);
        assert_eq!(
            concurrency(f64::INFINITY, Duration::from_secs(1)),
            MAX_SENDS
        );
        // No usable rate: the fewest.
        assert_eq!(concurrency(f64::NAN, Duration::from_secs(1)), MIN_SENDS);
    }

    #[tokio::test]
    async fn a_lane_follows_the_measured_latency_and_the_pace() {
        let lanes = Lanes::default();
        for _ in 0..200 {
            lanes.observed("PN1", Duration::from_millis(200));
        }
        let admitted = lanes.admit("PN1").await.expect("admitted");

        let slot = lanes.slot(admitted, 1000.0).await.expect("slot");
        let grown = lanes.limits();
        drop(slot);
        let admitted = lanes.admit("PN1").await.expect("admitted");
        let _slot = lanes.slot(admitted, 50.0).await.expect("slot");

        let limit = |limits: Vec<(String, usize)>| limits[0].1;
        assert!(limit(grown) >= 240);
        assert_eq!(
            limit(lanes.limits()),
            concurrency(50.0, Duration::from_millis(200))
        );
    }

    #[test]
    fn calls_queueing_behind_a_saturated_server_do_not_grow_the_lane() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut window = MinWindow::new(FIRST_LATENCY.as_secs_f64());
        window.add(0.2, at(0));
        // A saturated server or client: the same network, but most calls now wait 2 s in queues.
        let mut latency = 0.0;
        for ms in (10..15_000).step_by(10) {
            let took = if ms % 1000 == 0 { 0.2 } else { 2.0 };
            latency = window.add(took, at(ms));
        }

        assert_eq!(latency, 0.2);
    }

    #[test]
    fn a_network_that_got_slower_is_followed_within_two_windows() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut window = MinWindow::new(FIRST_LATENCY.as_secs_f64());
        for ms in (0..10_000).step_by(10) {
            window.add(0.1, at(ms));
        }
        let mut latency = 0.0;
        for ms in (10_000..30_000).step_by(10) {
            latency = window.add(0.4, at(ms));
        }

        assert_eq!(latency, 0.4);
        assert_eq!(concurrency(1000.0, Duration::from_secs_f64(latency)), 816);
    }

    #[tokio::test]
    async fn a_shrink_takes_back_slots_as_they_are_returned() {
        let lanes = Lanes::default();
        let mut held = Vec::new();
        for _ in 0..20 {
            let admitted = lanes.admit("PN1").await.expect("admitted");
            held.push(lanes.slot(admitted, 80.0).await.expect("slot"));
        }
        let lane = lanes.lane("PN1");
        // All 20+ out; a cut pace shrinks the lane below what is in flight.
        lane.resize(1.0);
        let owed = lane.state().debt;
        drop(held);

        assert!(owed > 0);
        assert_eq!(lane.state().debt, 0);
        assert_eq!(lane.slots.available_permits(), lane.state().limit);
    }

    #[tokio::test]
    async fn finishing_lanes_admit_nothing_until_the_last_task_ends_then_admit_again() {
        let lanes = Arc::new(Lanes::default());
        let task = lanes.task();
        let finishing = {
            let lanes = lanes.clone();
            tokio::spawn(async move { lanes.finish().await })
        };
        while lanes.try_admit("PN1").is_some() {
            tokio::task::yield_now().await;
        }

        let admitted_while_finishing = lanes.admit("PN1").await;
        drop(task);
        tokio::time::timeout(Duration::from_secs(5), finishing)
            .await
            .expect("finished after the last task")
            .expect("joined");

        assert!(admitted_while_finishing.is_none());
        assert!(lanes.try_admit("PN1").is_some());
    }
}
