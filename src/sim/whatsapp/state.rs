//! The simulator's shared state: what Meta would know about the account at any moment.
//!
//! One `std::sync::Mutex` guards it all; it is never held across an `.await`, and every critical
//! section is a few map operations, so contention is not a concern at simulator scale.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::WhatsAppSimConfig;
use super::rate_limit::SendLimits;
use super::templates::{default_templates, TemplateDefinition};
use super::webhooks::Outbox;
use crate::sim::clock::SimClock;

/// How long an inbound message keeps the customer-service window open.
pub const SERVICE_WINDOW: Duration = Duration::hours(24);

/// Everything handlers and the webhook worker share.
#[derive(Debug)]
pub struct SimState {
    pub config: WhatsAppSimConfig,
    pub clock: SimClock,
    pub outbox: Outbox,
    /// One client for all webhook POSTs (connection reuse keeps retries cheap).
    pub http: reqwest::Client,
    inner: Mutex<Inner>,
}

/// The mutable part.
#[derive(Debug)]
pub struct Inner {
    pub webhook_url: Option<String>,
    pub templates: Vec<TemplateDefinition>,
    /// Last inbound message time per (phone_number_id, wa_id): the customer-service window.
    pub last_inbound: HashMap<(String, String), DateTime<Utc>>,
    /// Customers (wa_id) who never open their messages: no `read` status for them.
    pub non_readers: std::collections::HashSet<String>,
    pub messages: Vec<SentMessage>,
    /// wamid → index into `messages`.
    pub message_index: HashMap<String, usize>,
    pub faults: Faults,
    pub limits: SendLimits,
    pub stats: Stats,
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
}

/// One accepted send, as `GET /__sim/messages` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct SentMessage {
    pub wamid: String,
    pub phone_number_id: String,
    /// `to` as the client gave it.
    pub to: String,
    pub wa_id: String,
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
            non_readers: std::collections::HashSet::new(),
            messages: Vec::new(),
            message_index: HashMap::new(),
            faults: Faults {
                error_status: 500,
                window_violation_sync: config.window_violation_sync,
                ..Faults::default()
            },
            limits,
            stats: Stats::default(),
        };
        Self {
            clock: config.clock.clone(),
            config,
            outbox: Outbox::default(),
            http,
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
