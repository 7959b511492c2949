//! The simulator's shared state: what Meta would know about the account at any moment.
//!
//! One `std::sync::Mutex` guards it all; it is never held across an `.await`, and every critical
//! section is a few map operations, so contention is not a concern at simulator scale.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::WhatsAppSimConfig;
use super::customers::Customers;
use super::rate_limit::SendLimits;
use super::templates::{default_templates, TemplateDefinition};
use super::webhooks::Outbox;
use crate::clock::SimClock;

/// How long an inbound message keeps the customer-service window open.
pub const SERVICE_WINDOW: Duration = Duration::hours(24);

/// How long a `timeout`-mode lost answer is held unless the control API says otherwise: past the
/// daemon's default 20 s client timeout.
pub const DEFAULT_LOST_HOLD_MS: u64 = 30_000;

fn duration_ms(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Everything handlers and the webhook worker share.
#[derive(Debug)]
pub struct SimState {
    pub config: WhatsAppSimConfig,
    pub clock: SimClock,
    pub outbox: Outbox,
    /// One client for all webhook POSTs (connection reuse keeps retries cheap).
    pub http: reqwest::Client,
    /// Customers' media files (see `media`).
    pub media: super::media_store::MediaStore,
    /// The account's business numbers (see `numbers`); their own lock, never held with `inner`'s
    /// the other way round.
    pub numbers: super::numbers::Numbers,
    inner: Mutex<Inner>,
}

/// The mutable part.
#[derive(Debug)]
pub struct Inner {
    pub webhook_url: Option<String>,
    pub templates: Vec<TemplateDefinition>,
    /// Last inbound message time per (phone_number_id, wa_id): the customer-service window. It is
    /// the person's window whatever key their message or the business's send used (a BSUID is
    /// resolved to the customer's number first), and it moves with them when they change number.
    pub last_inbound: HashMap<(String, String), DateTime<Utc>>,
    /// The customers Meta knows: numbers, BSUIDs, usernames (`customers`).
    pub customers: Customers,
    /// Customers (wa_id) who never open their messages: no `read` status for them.
    pub non_readers: std::collections::HashSet<String>,
    pub messages: Vec<SentMessage>,
    /// wamid → index into `messages`.
    pub message_index: HashMap<String, usize>,
    pub faults: Faults,
    pub limits: SendLimits,
    pub stats: Stats,
    /// Every send attempt, accepted or not, oldest first; at most `config.attempts_kept`.
    pub attempts: VecDeque<Attempt>,
    /// The `seq` the next attempt gets (1-based, never reused, so `?since=` pages stay stable).
    pub next_attempt_seq: u64,
    /// The app's webhook subscription as Meta keeps it (`subscribed_apps`, `/{app_id}/subscriptions`).
    pub subscription: Subscription,
    /// Who stopped marketing, who is over Meta's marketing cap, the US rule (`marketing`).
    pub marketing: super::marketing::Marketing,
}

/// Whether the app receives this account's webhooks, and which fields. The callback URL is
/// `webhook_url`. By default the app is subscribed to every field sfwa needs or will need; tests
/// take some away with `PUT /__sim/subscriptions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The app is subscribed to the WhatsApp Business Account (`POST /{waba_id}/subscribed_apps`).
    pub app_subscribed: bool,
    /// Field name → the Graph version it was subscribed at.
    pub fields: BTreeMap<String, String>,
}

/// The fields a new simulator's app is subscribed to.
pub const DEFAULT_FIELDS: &[&str] = &[
    "messages",
    "message_template_status_update",
    "template_category_update",
    "message_template_quality_update",
    "user_preferences",
    "standby",
];

impl Default for Subscription {
    fn default() -> Self {
        Subscription {
            app_subscribed: true,
            fields: DEFAULT_FIELDS
                .iter()
                .map(|f| (f.to_string(), "v23.0".to_string()))
                .collect(),
        }
    }
}

/// Switchable failure modes (`POST /__sim/faults`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Faults {
    /// Every Graph call answers 401 / 190 (subcode 463).
    pub token_expired: bool,
    /// Share (0.0–1.0) of sends answered with `error_status`.
    pub error_rate: f64,
    /// 500 (131000 Something went wrong) or 503 (131016 Service unavailable).
    pub error_status: u16,
    /// Extra delay before every Graph answer.
    pub latency_ms: u64,
    /// Numbers (digits) that are not on WhatsApp, in addition to the configured suffix rule.
    pub not_on_whatsapp: HashSet<String>,
    /// Free-form sends outside the window fail synchronously (400) instead of by webhook.
    pub window_violation_sync: bool,
    /// Probability (0.0–1.0) that a webhook POST is delivered a second time.
    pub webhook_duplicate_rate: f64,
    /// `read` is scheduled before `delivered` (Meta does not guarantee order).
    pub webhook_out_of_order: bool,
    /// Each webhook event is held back a further uniform 0..=N ms, so events overtake each other.
    pub webhook_delay_ms: u64,
    /// POSTs per webhook before giving up (the first one included).
    pub webhook_retry_max_attempts: u32,
    /// How long after its first attempt a webhook is still retried (Meta: 7 days).
    pub webhook_retry_horizon_ms: u64,
    /// Share (0.0–1.0) of accepted sends whose answer the client never reads.
    pub accepted_then_lost_rate: f64,
    /// How the answer is lost: the connection cut mid-body, or held past the client's timeout.
    pub accepted_then_lost_mode: LostMode,
    /// How long a `timeout`-mode answer is held back.
    pub accepted_then_lost_hold_ms: u64,
    /// Real time between `sent` and `delivered` (starts as the config's `delivered_after`): a
    /// benchmark shortens it so a backlog ends when the daemon is done, not when customers are.
    pub delivered_after_ms: u64,
    /// Real time between `delivered` and `read` (starts as the config's `read_after`).
    pub read_after_ms: u64,
    /// No status webhooks at all for accepted sends (`sfwa bench webhooks --kind status` posts
    /// its own, so the daemon must not have received them already).
    pub status_webhooks_off: bool,
}

/// How an accepted send's answer is lost (`accepted_then_lost_mode`).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LostMode {
    /// Status line and headers go out, then the body stream fails and the connection is dropped.
    #[default]
    Cut,
    /// The whole answer is held for `accepted_then_lost_hold_ms`, past the client's timeout.
    Timeout,
}

/// What became of one send attempt.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// HTTP 200 with a wamid (whatever webhooks follow).
    Accepted,
    /// A synchronous Graph error; `code` says which.
    Rejected,
}

/// One `POST …/messages`, as `GET /__sim/attempts` lists it. Fields the request did not carry (or
/// that could not be read from it) are `null`.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    pub seq: u64,
    /// Sim-clock Unix milliseconds when the simulator decided the outcome.
    pub at_ms: i64,
    pub phone_number_id: String,
    pub wa_id: Option<String>,
    /// The BSUID a send addressed by `recipient`.
    pub user_id: Option<String>,
    #[serde(rename = "type")]
    pub message_type: Option<String>,
    pub template_name: Option<String>,
    pub biz_opaque_callback_data: Option<String>,
    pub outcome: AttemptOutcome,
    /// Meta's error code of a rejected attempt.
    pub code: Option<u32>,
    pub wamid: Option<String>,
    /// The message was accepted but its answer was cut or held (`accepted_then_lost_*`).
    pub answer_lost: bool,
    /// Whether the customer's window was open at the time, for free-form types; `null` for
    /// templates and unreadable requests.
    pub window_open: Option<bool>,
}

/// Counters for `GET /__sim/stats`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Accepted (HTTP 200) sends by message type.
    pub messages_by_type: BTreeMap<String, u64>,
    /// `accepted`, `failed_async` (200 then a failed webhook) and `rejected` (synchronous error).
    pub messages_by_outcome: BTreeMap<String, u64>,
    /// Synchronous errors by Meta code.
    pub rejected_by_code: BTreeMap<String, u64>,
    /// Status updates emitted by status (`sent`, `delivered`, `read`, `failed`).
    pub statuses: BTreeMap<String, u64>,
    pub inbound_messages: u64,
    pub webhooks: WebhookStats,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct WebhookStats {
    /// POSTs answered 2xx.
    pub delivered: u64,
    /// POSTs given up after the last retry.
    pub failed: u64,
    /// Attempts that were answered non-2xx or not at all and will be retried.
    pub retried: u64,
    /// Extra copies sent on purpose (`webhook_duplicate_rate`).
    pub duplicated: u64,
    /// Payloads dropped because no webhook URL was set.
    pub skipped_no_url: u64,
    /// Payloads Meta would not send: the app is not subscribed to the account or to the change's
    /// field (`messages`; `standby` for a standby customer's messages) (`PUT /__sim/subscriptions`).
    pub skipped_unsubscribed: u64,
}

/// One accepted send, as `GET /__sim/messages` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct SentMessage {
    pub wamid: String,
    pub phone_number_id: String,
    /// `to` (or `recipient`) as the client gave it.
    pub to: String,
    /// The customer's number (for a send that reaches nobody: what was given).
    pub wa_id: String,
    /// The customer's BSUID when the send addressed them by `recipient`.
    pub recipient_user_id: Option<String>,
    #[serde(rename = "type")]
    pub message_type: String,
    pub template_name: Option<String>,
    pub template_language: Option<String>,
    pub biz_opaque_callback_data: Option<String>,
    /// Sim-clock Unix seconds of acceptance.
    pub accepted_at: i64,
    /// The same instant in milliseconds (latency measurements).
    pub accepted_at_ms: i64,
    /// Status updates in the order they were emitted.
    pub statuses: Vec<StatusRecord>,
    /// The request body as received.
    pub request: Value,
}

#[derive(Clone, Debug, Serialize)]
pub struct StatusRecord {
    pub status: String,
    pub timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u32>,
}

impl SimState {
    pub fn new(config: WhatsAppSimConfig, http: reqwest::Client) -> Self {
        let limits = SendLimits::new(
            config.throughput_per_second,
            config.pair_rate.burst,
            config.pair_rate.refill_every,
        );
        let inner = Inner {
            webhook_url: config.webhook_url.clone(),
            templates: default_templates(),
            last_inbound: HashMap::new(),
            customers: Customers::new(&config.waba_id),
            non_readers: std::collections::HashSet::new(),
            messages: Vec::new(),
            message_index: HashMap::new(),
            faults: Faults {
                error_status: 500,
                window_violation_sync: config.window_violation_sync,
                webhook_duplicate_rate: config.webhook_duplicate_rate,
                webhook_out_of_order: config.webhook_out_of_order,
                webhook_retry_max_attempts: config.webhook_retry.max_attempts,
                webhook_retry_horizon_ms: duration_ms(config.webhook_retry.horizon),
                accepted_then_lost_hold_ms: DEFAULT_LOST_HOLD_MS,
                delivered_after_ms: duration_ms(config.delivered_after),
                read_after_ms: duration_ms(config.read_after),
                ..Faults::default()
            },
            limits,
            stats: Stats::default(),
            attempts: VecDeque::new(),
            next_attempt_seq: 1,
            subscription: Subscription::default(),
            marketing: super::marketing::Marketing::default(),
        };
        let outbox = Outbox::default();
        outbox.set_max_extra_delay(duration_ms(config.webhook_delay_max));
        Self {
            clock: config.clock.clone(),
            numbers: super::numbers::Numbers::from_config(&config),
            config,
            outbox,
            http,
            media: Default::default(),
            inner: Mutex::new(inner),
        }
    }

    /// Locks the mutable state. A poisoned lock (a handler panicked) is recovered: the data is
    /// counters and maps that stay consistent per operation.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    /// Whether `wa_id` can receive messages at all.
    pub fn is_on_whatsapp(&self, wa_id: &str, suffix_rule: Option<&str>) -> bool {
        let by_suffix =
            suffix_rule.is_some_and(|suffix| !suffix.is_empty() && wa_id.ends_with(suffix));
        !(by_suffix || self.faults.not_on_whatsapp.contains(wa_id))
    }

    /// Whether a free-form message may be delivered now: an inbound message less than 24 h ago.
    pub fn window_open(&self, phone_number_id: &str, wa_id: &str, now: DateTime<Utc>) -> bool {
        self.last_inbound
            .get(&(phone_number_id.to_owned(), wa_id.to_owned()))
            .is_some_and(|last| now - *last < SERVICE_WINDOW)
    }

    /// Records an inbound message time; the window is measured from the latest one.
    pub fn record_inbound(&mut self, phone_number_id: &str, wa_id: &str, at: DateTime<Utc>) {
        let entry = self
            .last_inbound
            .entry((phone_number_id.to_owned(), wa_id.to_owned()))
            .or_insert(at);
        if at > *entry {
            *entry = at;
        }
    }

    /// Moves a customer's windows from their old number to their new one.
    pub fn move_windows(&mut self, old: &str, new: &str) {
        let keys: Vec<_> = self
            .last_inbound
            .keys()
            .filter(|(_, wa_id)| wa_id == old)
            .cloned()
            .collect();
        for key in keys {
            if let Some(at) = self.last_inbound.remove(&key) {
                self.record_inbound(&key.0, new, at);
            }
        }
        if self.non_readers.remove(old) {
            self.non_readers.insert(new.to_owned());
        }
    }

    /// Appends an attempt (numbering it), dropping the oldest beyond `kept`.
    pub fn record_attempt(&mut self, mut attempt: Attempt, kept: usize) {
        attempt.seq = self.next_attempt_seq;
        self.next_attempt_seq += 1;
        self.attempts.push_back(attempt);
        while self.attempts.len() > kept.max(1) {
            self.attempts.pop_front();
        }
    }

    pub fn count(map: &mut BTreeMap<String, u64>, key: &str) {
        *map.entry(key.to_owned()).or_insert(0) += 1;
    }

    /// Appends a status to a message's timeline (no-op for unknown wamids).
    pub fn record_status(&mut self, wamid: &str, record: StatusRecord) {
        Self::count(&mut self.stats.statuses, &record.status);
        if let Some(&index) = self.message_index.get(wamid) {
            if let Some(message) = self.messages.get_mut(index) {
                message.statuses.push(record);
            }
        }
    }
}
