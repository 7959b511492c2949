//! Webhook delivery: a time-ordered outbox of pending updates and the background worker that emits
//! them, signed, to the configured URL — with batching, deliberate duplicates, random extra delays
//! and retries with exponential back-off up to a horizon, as Meta does. The duplicate rate, the
//! order, the delay and the retry bounds are read from the live faults (`POST /__sim/faults`) at
//! the moment they matter, so a test or a soak run can switch them while traffic flows.
//!
//! Delays (`delivered_after`, `read_after`, back-off) are real time; the timestamps inside payloads
//! come from the sim clock (the moment of emission). A test need not wait for those delays:
//! [`deliver_now`] (`WhatsAppSim::deliver_webhooks_now`, `POST /__sim/webhooks/deliver`) takes
//! what is scheduled out of the outbox and POSTs it as the worker would, returning once every
//! POST — its own and any the worker had already started — has been answered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::header::CONTENT_TYPE;
use bytes::Bytes;
use rand::Rng;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::state::{Inner, SimState, StatusRecord};
use super::webhook_payloads::{envelope_body, signature, StatusJson, StatusUpdate, StatusesValue};

/// Something the simulated Meta has to tell the business.
#[derive(Clone, Debug)]
pub enum WebhookEvent {
    /// `status` (`sent`, `delivered`, `read` or `failed`) of a message; its updates share `update`.
    Status {
        update: Arc<StatusUpdate>,
        status: &'static str,
    },
    /// A ready-made `value` of an inbound message (or a system message), with the webhook field
    /// it goes out on: `messages`, or `standby` for a customer handled by Meta's business agent.
    Inbound { field: &'static str, value: Value },
}

#[derive(Debug)]
struct Scheduled {
    due: Instant,
    /// Ties broken by scheduling order, so "sent" precedes "delivered" scheduled for the same instant.
    sequence: u64,
    event: WebhookEvent,
}

// Ordered by (due, sequence) only, the earliest greatest, so the outbox's `BinaryHeap` (a
// max-heap) hands out the next due event first: taking what is due costs O(k log n), not a pass
// over every pending event (at 1,000 sends/s thousands are pending, and the worker wakes per send).
impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.sequence) == (other.due, other.sequence)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.due, other.sequence).cmp(&(self.due, self.sequence))
    }
}

/// Pending webhook events, ordered by due time.
#[derive(Debug)]
pub struct Outbox {
    queue: Mutex<std::collections::BinaryHeap<Scheduled>>,
    /// Wakes the worker when something new is scheduled.
    wake: Notify,
    sequence: AtomicU64,
    /// `webhook_delay_ms`: each event gets a further uniform 0..=N ms. Kept here rather than in the
    /// faults because events are scheduled while the state lock is held.
    max_extra_delay_ms: AtomicU64,
    /// Events taken out of the queue whose POSTs have not all been answered yet: what
    /// [`deliver_now`] waits for so that, when it returns, nothing taken earlier is still on its way.
    in_flight: Arc<watch::Sender<usize>>,
    /// Cancelled when the simulator stops: ends the worker and every delivery in flight.
    stop: CancellationToken,
}

impl Default for Outbox {
    fn default() -> Self {
        Self {
            queue: Mutex::default(),
            wake: Notify::new(),
            sequence: AtomicU64::new(0),
            max_extra_delay_ms: AtomicU64::new(0),
            in_flight: Arc::new(watch::Sender::new(0)),
            stop: CancellationToken::new(),
        }
    }
}

/// Which scheduled events [`deliver_now`] takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// Every scheduled event, whatever its due time.
    Everything,
    /// Only those already due (what the worker would send next), e.g. `sent` but not a
    /// `delivered` still `delivered_after` away.
    Due,
}

/// What one [`deliver_now`] call did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Delivered {
    /// Events taken out of the outbox (statuses and inbound messages).
    pub events: usize,
    /// POSTs made: a batch of statuses is one, a deliberate duplicate one more; retries are not
    /// counted here.
    pub posts: usize,
    /// The last answer to each POST, in order; `None` when it was never answered (no connection,
    /// a timeout, or the simulator stopping).
    pub statuses: Vec<Option<u16>>,
}

/// Events taken out of the outbox, counted as in flight until this is dropped (once every POST
/// made of them has been answered or given up).
struct Taken {
    events: Vec<WebhookEvent>,
    count: usize,
    in_flight: Arc<watch::Sender<usize>>,
}

impl Taken {
    fn extend(&mut self, mut more: Taken) {
        self.events.append(&mut more.events);
        self.count += std::mem::take(&mut more.count);
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        let count = self.count;
        self.in_flight.send_modify(|in_flight| *in_flight -= count);
    }
}

impl Outbox {
    /// Sets the maximum random extra delay per event (0 = none).
    pub fn set_max_extra_delay(&self, millis: u64) {
        self.max_extra_delay_ms.store(millis, Ordering::Relaxed);
    }

    pub fn max_extra_delay_ms(&self) -> u64 {
        self.max_extra_delay_ms.load(Ordering::Relaxed)
    }

    /// Cancelled when the simulator stops.
    pub fn stop_token(&self) -> &CancellationToken {
        &self.stop
    }

    /// Emits `event` after `delay` (plus the random extra delay, when one is set).
    pub fn schedule(&self, delay: Duration, event: WebhookEvent) {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let max_extra = self.max_extra_delay_ms();
        let extra = if max_extra == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(rand::thread_rng().gen_range(0..=max_extra))
        };
        let scheduled = Scheduled {
            due: Instant::now() + delay + extra,
            sequence,
            event,
        };
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(scheduled);
        self.wake.notify_one();
    }

    /// Takes the events due at `now` (or all of them), in due order. They count as in flight from
    /// inside the queue's lock, so a [`deliver_now`] that finds the queue empty still sees them.
    fn take(&self, which: Take, now: Instant) -> Taken {
        let mut queue = self
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut taken = Vec::new();
        while let Some(next) = queue.peek() {
            if which == Take::Due && next.due > now {
                break;
            }
            taken.extend(queue.pop());
        }
        let count = taken.len();
        self.in_flight.send_modify(|in_flight| *in_flight += count);
        Taken {
            events: taken.into_iter().map(|item| item.event).collect(),
            count,
            in_flight: self.in_flight.clone(),
        }
    }

    fn next_due(&self) -> Option<Instant> {
        let queue = self
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        queue.peek().map(|item| item.due)
    }

    /// Returns once no taken event is waiting for an answer to its POST.
    async fn settled(&self) {
        let mut in_flight = self.in_flight.subscribe();
        // The sender lives as long as `self`, so this cannot fail while we borrow it.
        let _ = in_flight.wait_for(|count| *count == 0).await;
    }
}

/// Takes the scheduled events `which` says out of the outbox (so the worker never sends them) and
/// POSTs them at once as the worker would — same batching, signature, duplicates and retries, one
/// POST after the other in due order — then waits for any POST the worker had already started.
/// Returns what this call delivered.
pub async fn deliver_now(state: &Arc<SimState>, which: Take) -> Delivered {
    let taken = state.outbox.take(which, Instant::now());
    let mut delivered = Delivered {
        events: taken.events.len(),
        ..Delivered::default()
    };
    if let Some(posts) = prepare_posts(state, &taken.events) {
        for (url, body) in &posts.bodies {
            let answers = deliver(state, url, body, &state.outbox.stop).await;
            delivered.posts += answers.len();
            delivered.statuses.extend(answers);
        }
    }
    drop(taken);
    state.outbox.settled().await;
    delivered
}

/// Runs until `stop` is cancelled: takes due events, emits them, sleeps until the next one.
pub async fn run_worker(state: Arc<SimState>, stop: CancellationToken, deliveries: TaskTracker) {
    loop {
        // Armed before looking at the queue so a schedule() in between is not missed.
        let wake = state.outbox.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();

        let mut due = state.outbox.take(Take::Due, Instant::now());
        if !due.events.is_empty() {
            let batch = &state.config.webhook_batch;
            if batch.max_statuses > 1 && !batch.linger.is_zero() {
                // Let updates that fall due shortly after join the same POST.
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(batch.linger) => {}
                }
                due.extend(state.outbox.take(Take::Due, Instant::now()));
            }
            emit(&state, due, &stop, &deliveries);
            continue;
        }
        let next = state
            .outbox
            .next_due()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = &mut wake => {}
            _ = tokio::time::sleep_until(next) => {}
        }
    }
}

/// Spawns the delivery of taken events; they stay in flight until the last of their POSTs ends.
fn emit(state: &Arc<SimState>, taken: Taken, stop: &CancellationToken, deliveries: &TaskTracker) {
    let Some(posts) = prepare_posts(state, &taken.events) else {
        return;
    };
    let taken = Arc::new(taken);
    for (url, body) in posts.bodies {
        let (state, stop, taken) = (state.clone(), stop.clone(), taken.clone());
        deliveries.spawn(async move {
            deliver(&state, &url, &body, &stop).await;
            drop(taken);
        });
    }
}

/// The POSTs a set of events makes, ready to send.
struct Posts {
    /// Where each goes (the app's callback URL, or its number's override) and its enveloped JSON
    /// body, in order.
    bodies: Vec<(String, Bytes)>,
}

/// Turns events into POST bodies (statuses batched up to `webhook_batch.max_statuses` per business
/// number, each inbound message alone) and records the status timelines. Each goes to the app's
/// callback URL, or to its number's override (`number_api`). `None` when nothing is to be
/// posted; a change with no URL to go to is counted in the stats. Events of a field the app is not
/// subscribed to (or all, when the app is not subscribed to the account) are counted and dropped:
/// Meta sends statuses and messages only on `messages`, business-agent messages only on `standby`.
fn prepare_posts(state: &SimState, events: &[WebhookEvent]) -> Option<Posts> {
    let now = state.clock.now().timestamp();
    let mut inner = state.lock();
    let changes = changes(state, &mut inner, events, now);
    let app_url = inner.webhook_url.clone();
    let subscription = &inner.subscription;
    let (wanted, unsubscribed): (Vec<_>, Vec<_>) = changes.into_iter().partition(|change| {
        subscription.app_subscribed && subscription.fields.contains_key(change.field())
    });
    inner.stats.webhooks.skipped_unsubscribed += unsubscribed.len() as u64;
    drop(inner);
    let mut bodies = Vec::with_capacity(wanted.len());
    let mut no_url = 0;
    for change in wanted {
        match callback_for(state, app_url.as_deref(), change.field(), change.number()) {
            Some(url) => bodies.push((url, change.body(state))),
            None => no_url += 1,
        }
    }
    if no_url > 0 {
        state.lock().stats.webhooks.skipped_no_url += no_url;
    }
    (!bodies.is_empty()).then_some(Posts { bodies })
}

/// The fields whose webhooks follow a number's override (Meta's "Webhook overrides" list, those
/// the simulator sends; see `number_api`).
pub const OVERRIDABLE_FIELDS: [&str; 2] = ["messages", "standby"];

/// Where webhooks of `field` about `phone_number_id` go: the number's override for the fields
/// it applies to, else the app's callback URL.
pub fn callback_for(
    state: &SimState,
    app_url: Option<&str>,
    field: &str,
    phone_number_id: Option<&str>,
) -> Option<String> {
    let overridden = phone_number_id
        .filter(|_| OVERRIDABLE_FIELDS.contains(&field))
        .and_then(|id| state.numbers.get(id))
        .and_then(|number| number.webhook_override)
        .map(|o| o.uri);
    overridden.or_else(|| app_url.map(str::to_owned))
}

/// One change a POST carries, borrowed from the events it is made of.
enum Change<'e> {
    /// Statuses of messages one business number sent (on `messages`).
    Statuses {
        number: &'e str,
        statuses: Vec<StatusJson<'e>>,
    },
    /// A ready-made `value` (an inbound message, a template update…) on `field`.
    Value {
        field: &'static str,
        value: &'e Value,
    },
}

impl Change<'_> {
    fn field(&self) -> &'static str {
        match self {
            Change::Statuses { .. } => "messages",
            Change::Value { field, .. } => field,
        }
    }

    /// The business number the change is about, when it names one.
    fn number(&self) -> Option<&str> {
        match self {
            Change::Statuses { number, .. } => Some(number),
            Change::Value { value, .. } => value["metadata"]["phone_number_id"].as_str(),
        }
    }

    /// The enveloped JSON body.
    fn body(self, state: &SimState) -> Bytes {
        let field = self.field();
        match self {
            Change::Statuses { number, statuses } => envelope_body(
                &state.config,
                field,
                StatusesValue::new(&state.numbers, number, statuses),
            ),
            Change::Value { value, .. } => envelope_body(&state.config, field, value),
        }
    }
}

/// Each change the events make, in order: statuses batched up to `webhook_batch.max_statuses`
/// per business number, each other value alone. Records the status timelines.
fn changes<'e>(
    state: &SimState,
    inner: &mut Inner,
    events: &'e [WebhookEvent],
    now: i64,
) -> Vec<Change<'e>> {
    let max_statuses = state.config.webhook_batch.max_statuses.max(1);
    let mut changes = Vec::new();
    // Statuses of one business number waiting to fill a batch.
    let mut batch: Option<(&str, Vec<StatusJson<'e>>)> = None;
    let flush = |batch: Option<(&'e str, Vec<StatusJson<'e>>)>| {
        batch.map(|(number, statuses)| Change::Statuses { number, statuses })
    };
    for event in events {
        match event {
            WebhookEvent::Status { update, status } => {
                inner.record_status(
                    &update.wamid,
                    StatusRecord {
                        status: (*status).to_owned(),
                        timestamp: now,
                        error_code: update.error.as_ref().map(|error| error.code),
                    },
                );
                if batch
                    .as_ref()
                    .is_some_and(|(number, _)| *number != update.phone_number_id)
                {
                    changes.extend(flush(batch.take()));
                }
                let (_, statuses) =
                    batch.get_or_insert_with(|| (&update.phone_number_id, Vec::new()));
                statuses.push(update.to_json(status, now));
                if statuses.len() == max_statuses {
                    changes.extend(flush(batch.take()));
                }
            }
            WebhookEvent::Inbound { field, value } => changes.push(Change::Value { field, value }),
        }
    }
    changes.extend(flush(batch));
    changes
}

/// POSTs one body (twice when the duplicate dice say so); the last answer to each POST made.
async fn deliver(
    state: &SimState,
    url: &str,
    body: &Bytes,
    stop: &CancellationToken,
) -> Vec<Option<u16>> {
    let duplicate = {
        let rate = state.lock().faults.webhook_duplicate_rate;
        rate > 0.0 && rand::thread_rng().gen::<f64>() < rate
    };
    let copies = if duplicate { 2 } else { 1 };
    let mut answers = Vec::with_capacity(copies);
    for copy in 0..copies {
        let answer = post_with_retries(state, url, body, stop).await;
        answers.push(answer);
        if !accepted(answer) {
            break;
        }
        if copy > 0 {
            state.lock().stats.webhooks.duplicated += 1;
        }
    }
    answers
}

fn accepted(answer: Option<u16>) -> bool {
    answer.is_some_and(|status| (200..300).contains(&status))
}

/// The last answer's status (`None`: not answered). Gives up after the live
/// `webhook_retry_max_attempts` POSTs or once the next one would fall past
/// `webhook_retry_horizon_ms` after the first — whichever comes first.
async fn post_with_retries(
    state: &SimState,
    url: &str,
    body: &Bytes,
    stop: &CancellationToken,
) -> Option<u16> {
    let retry = &state.config.webhook_retry;
    let signature = signature(body, &state.config.app_secret);
    let mut backoff = retry.initial_backoff;
    let first = Instant::now();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let request = state
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header("X-Hub-Signature-256", &signature)
            // A shared handle on the same bytes: a retry re-sends them without a copy.
            .body(body.clone())
            .send();
        let answer = tokio::select! {
            _ = stop.cancelled() => return None,
            response = request => response.ok().map(|response| response.status().as_u16()),
        };
        {
            let mut inner = state.lock();
            if accepted(answer) {
                inner.stats.webhooks.delivered += 1;
                return answer;
            }
            let max_attempts = inner.faults.webhook_retry_max_attempts.max(1);
            let horizon = Duration::from_millis(inner.faults.webhook_retry_horizon_ms);
            let past_horizon = Instant::now() + backoff > first + horizon;
            if attempt >= max_attempts || past_horizon {
                inner.stats.webhooks.failed += 1;
                tracing::warn!(url, attempts = attempt, "webhook delivery given up");
                return answer;
            }
            inner.stats.webhooks.retried += 1;
        }
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(retry.max_backoff);
    }
}

/// When an accepted message's statuses fall due, read from the live faults at acceptance.
#[derive(Clone, Copy, Debug)]
pub struct Lifecycle {
    /// No status webhooks at all (`status_webhooks_off`).
    pub off: bool,
    pub delivered_after: Duration,
    pub read_after: Duration,
    /// `read` before `delivered` (`webhook_out_of_order`).
    pub out_of_order: bool,
    /// False for customers set up never to open messages.
    pub customer_reads: bool,
}

impl Lifecycle {
    pub fn of(faults: &super::state::Faults, customer_reads: bool) -> Lifecycle {
        Lifecycle {
            off: faults.status_webhooks_off,
            delivered_after: Duration::from_millis(faults.delivered_after_ms),
            read_after: Duration::from_millis(faults.read_after_ms),
            out_of_order: faults.webhook_out_of_order,
            customer_reads,
        }
    }
}

/// Schedules the lifecycle of an accepted message: `sent` now, `delivered` after `delivered_after`,
/// `read` after a further `read_after` (swapped when `out_of_order`); nothing when `off`.
pub fn schedule_delivery(state: &SimState, base: StatusUpdate, lifecycle: Lifecycle) {
    if lifecycle.off {
        return;
    }
    let config = &state.config;
    let outbox = &state.outbox;
    let update = Arc::new(base);
    let event = |status| WebhookEvent::Status {
        update: update.clone(),
        status,
    };
    outbox.schedule(Duration::ZERO, event("sent"));
    let mut delivered_at = lifecycle.delivered_after;
    let mut read_at = lifecycle.delivered_after + lifecycle.read_after;
    if lifecycle.out_of_order && config.customers_read {
        std::mem::swap(&mut delivered_at, &mut read_at);
    }
    outbox.schedule(delivered_at, event("delivered"));
    if config.customers_read && lifecycle.customer_reads {
        outbox.schedule(read_at, event("read"));
    }
}

/// Schedules the single `failed` update of a message Meta accepted but could not deliver.
pub fn schedule_failure(state: &SimState, base: StatusUpdate) {
    state.outbox.schedule(
        Duration::ZERO,
        WebhookEvent::Status {
            update: Arc::new(StatusUpdate {
                pricing: None,
                ..base
            }),
            status: "failed",
        },
    );
}

/// Counts helper kept next to the worker so stats names stay in one vocabulary.
pub fn count_outcome(inner: &mut Inner, outcome: &str) {
    Inner::count(&mut inner.stats.messages_by_outcome, outcome);
}
