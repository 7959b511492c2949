//! Webhook delivery: a time-ordered outbox of pending updates and the background worker that emits
//! them, signed, to the configured URL — with batching, deliberate duplicates, random extra delays
//! and retries with exponential back-off up to a horizon, as Meta does. The duplicate rate, the
//! order, the delay and the retry bounds are read from the live faults (`POST /__sim/faults`) at
//! the moment they matter, so a test or a soak run can switch them while traffic flows.
//!
//! Delays (`delivered_after`, `read_after`, back-off) are real time so tests can wait on them with
//! short values; the timestamps inside payloads come from the sim clock (the moment of emission).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::header::CONTENT_TYPE;
use rand::Rng;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::state::{Inner, SimState, StatusRecord};
use super::webhook_payloads::{envelope, signature, statuses_value, StatusUpdate};

/// Something the simulated Meta has to tell the business.
#[derive(Clone, Debug)]
pub enum WebhookEvent {
    Status(StatusUpdate),
    /// A ready-made `value` of an inbound message.
    Inbound(Value),
}

#[derive(Debug)]
struct Scheduled {
    due: Instant,
    /// Ties broken by scheduling order, so "sent" precedes "delivered" scheduled for the same instant.
    sequence: u64,
    event: WebhookEvent,
}

/// Pending webhook events, ordered by due time.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: Mutex<Vec<Scheduled>>,
    /// Wakes the worker when something new is scheduled.
    wake: Notify,
    sequence: AtomicU64,
    /// `webhook_delay_ms`: each event gets a further uniform 0..=N ms. Kept here rather than in the
    /// faults because events are scheduled while the state lock is held.
    max_extra_delay_ms: AtomicU64,
}

impl Outbox {
    /// Sets the maximum random extra delay per event (0 = none).
    pub fn set_max_extra_delay(&self, millis: u64) {
        self.max_extra_delay_ms.store(millis, Ordering::Relaxed);
    }

    pub fn max_extra_delay_ms(&self) -> u64 {
        self.max_extra_delay_ms.load(Ordering::Relaxed)
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

    fn take_due(&self, now: Instant) -> Vec<WebhookEvent> {
        let mut queue = self
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (mut due, later): (Vec<_>, Vec<_>) = queue.drain(..).partition(|item| item.due <= now);
        *queue = later;
        due.sort_by_key(|item| (item.due, item.sequence));
        due.into_iter().map(|item| item.event).collect()
    }

    fn next_due(&self) -> Option<Instant> {
        let queue = self
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        queue.iter().map(|item| item.due).min()
    }
}

/// Runs until `stop` is cancelled: takes due events, emits them, sleeps until the next one.
pub async fn run_worker(state: Arc<SimState>, stop: CancellationToken, deliveries: TaskTracker) {
    loop {
        // Armed before looking at the queue so a schedule() in between is not missed.
        let wake = state.outbox.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();

        let mut due = state.outbox.take_due(Instant::now());
        if !due.is_empty() {
            let batch = &state.config.webhook_batch;
            if batch.max_statuses > 1 && !batch.linger.is_zero() {
                // Let updates that fall due shortly after join the same POST.
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(batch.linger) => {}
                }
                due.extend(state.outbox.take_due(Instant::now()));
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

/// Turns due events into POST bodies, records status timelines, and spawns their delivery.
fn emit(
    state: &Arc<SimState>,
    events: Vec<WebhookEvent>,
    stop: &CancellationToken,
    deliveries: &TaskTracker,
) {
    let max_statuses = state.config.webhook_batch.max_statuses.max(1);
    let now = state.clock.now().timestamp();
    let mut bodies = Vec::new();
    let mut statuses = Vec::new();
    let url = {
        let mut inner = state.lock();
        for event in events {
            match event {
                WebhookEvent::Status(update) => {
                    inner.record_status(
                        &update.wamid,
                        StatusRecord {
                            status: update.status.to_owned(),
                            timestamp: now,
                            error_code: update.error.as_ref().map(|error| error.code),
                        },
                    );
                    statuses.push(update.to_json(now));
                    if statuses.len() == max_statuses {
                        bodies.push(statuses_value(&state.config, std::mem::take(&mut statuses)));
                    }
                }
                WebhookEvent::Inbound(value) => bodies.push(value),
            }
        }
        if !statuses.is_empty() {
            bodies.push(statuses_value(&state.config, statuses));
        }
        let url = inner.webhook_url.clone();
        if url.is_none() {
            inner.stats.webhooks.skipped_no_url += bodies.len() as u64;
        }
        // Statuses and customer messages are the `messages` field: Meta sends them only to an app
        // subscribed to the account and to that field.
        let subscription = &inner.subscription;
        if url.is_some()
            && !(subscription.app_subscribed && subscription.fields.contains_key("messages"))
        {
            inner.stats.webhooks.skipped_unsubscribed += bodies.len() as u64;
            return;
        }
        url
    };
    let Some(url) = url else { return };
    for value in bodies {
        let body = envelope(&state.config, value).to_string();
        deliveries.spawn(deliver(state.clone(), url.clone(), body, stop.clone()));
    }
}

/// POSTs one body (twice when the duplicate dice say so).
async fn deliver(state: Arc<SimState>, url: String, body: String, stop: CancellationToken) {
    let duplicate = {
        let rate = state.lock().faults.webhook_duplicate_rate;
        rate > 0.0 && rand::thread_rng().gen::<f64>() < rate
    };
    let copies = if duplicate { 2 } else { 1 };
    for copy in 0..copies {
        if !post_with_retries(&state, &url, &body, &stop).await {
            return;
        }
        if copy > 0 {
            state.lock().stats.webhooks.duplicated += 1;
        }
    }
}

/// Returns whether the POST was eventually accepted (2xx). Gives up after the live
/// `webhook_retry_max_attempts` POSTs or once the next one would fall past
/// `webhook_retry_horizon_ms` after the first — whichever comes first.
async fn post_with_retries(
    state: &SimState,
    url: &str,
    body: &str,
    stop: &CancellationToken,
) -> bool {
    let retry = &state.config.webhook_retry;
    let signature = signature(body.as_bytes(), &state.config.app_secret);
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
            .body(body.to_owned())
            .send();
        let accepted = tokio::select! {
            _ = stop.cancelled() => return false,
            response = request => matches!(response, Ok(response) if response.status().is_success()),
        };
        {
            let mut inner = state.lock();
            if accepted {
                inner.stats.webhooks.delivered += 1;
                return true;
            }
            let max_attempts = inner.faults.webhook_retry_max_attempts.max(1);
            let horizon = Duration::from_millis(inner.faults.webhook_retry_horizon_ms);
            let past_horizon = Instant::now() + backoff > first + horizon;
            if attempt >= max_attempts || past_horizon {
                inner.stats.webhooks.failed += 1;
                tracing::warn!(url, attempts = attempt, "webhook delivery given up");
                return false;
            }
            inner.stats.webhooks.retried += 1;
        }
        tokio::select! {
            _ = stop.cancelled() => return false,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(retry.max_backoff);
    }
}

/// Schedules the lifecycle of an accepted message: `sent` now, `delivered` after `delivered_after`,
/// `read` after a further `read_after` (swapped when `out_of_order`, the live
/// `webhook_out_of_order`). `customer_reads` is false for customers set up never to open messages.
pub fn schedule_delivery(
    state: &SimState,
    base: StatusUpdate,
    customer_reads: bool,
    out_of_order: bool,
) {
    let config = &state.config;
    let outbox = &state.outbox;
    outbox.schedule(
        Duration::ZERO,
        WebhookEvent::Status(StatusUpdate {
            status: "sent",
            ..base.clone()
        }),
    );
    let mut delivered_at = config.delivered_after;
    let mut read_at = config.delivered_after + config.read_after;
    if out_of_order && config.customers_read {
        std::mem::swap(&mut delivered_at, &mut read_at);
    }
    outbox.schedule(
        delivered_at,
        WebhookEvent::Status(StatusUpdate {
            status: "delivered",
            ..base.clone()
        }),
    );
    if config.customers_read && customer_reads {
        outbox.schedule(
            read_at,
            WebhookEvent::Status(StatusUpdate {
                status: "read",
                ..base
            }),
        );
    }
}

/// Schedules the single `failed` update of a message Meta accepted but could not deliver.
pub fn schedule_failure(state: &SimState, base: StatusUpdate) {
    state.outbox.schedule(
        Duration::ZERO,
        WebhookEvent::Status(StatusUpdate {
            status: "failed",
            pricing: None,
            ..base
        }),
    );
}

/// Counts helper kept next to the worker so stats names stay in one vocabulary.
pub fn count_outcome(inner: &mut Inner, outcome: &str) {
    Inner::count(&mut inner.stats.messages_by_outcome, outcome);
}
