//! Prometheus metrics, in the text exposition format (0.0.4) at `GET /metrics`.
//!
//! **Why `prometheus-client`.** It is the Prometheus project's own Rust client, and its
//! [`Registry`] is a plain value: each daemon (`app::App`) owns one, so the
//! tests (many daemons in one process) each read their own numbers, and nothing is global. The
//! `metrics` facade with `metrics-exporter-prometheus` would record into one process-wide recorder
//! and bring an HTTP listener sfwa does not want (the webhook port already serves `/metrics`).
//!
//! Counters and histograms are recorded where things happen, through the typed helpers below, so
//! the business logic never sees a label string. Gauges that describe state (queue and outbox
//! depth, replay lag, Salesforce API usage, stream connection) are computed at scrape time
//! ([`Metrics::render`]): one store read on the store's own thread, never on the async workers.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `sfwa_messages_total` | counter | `outcome` = sent, failed, refused, retry, rate_limited, held, unknown; `code` (Error_Code__c or Meta's `WA_<code>`, empty for sent/held/unknown) |
//! | `sfwa_send_rate_per_second` | gauge | `number` (phone_number_id): the pace sends go at now, adapted to Meta's 130429 refusals |
//! | `sfwa_send_concurrency` | gauge | `number`: sends that may be in flight at once now (the pace × the measured send latency, `pipeline::dispatch::lanes`) |
//! | `sfwa_business_number_held` | gauge | `number`: 1 while sends from that served number are on hold (Meta blocked or locked it, or a hold on everything), else 0 |
//! | `sfwa_messages_sent_by_number_total` | counter | `number`: sends WhatsApp accepted, per business number they went from |
//! | `sfwa_whatsapp_send_duration_seconds` | histogram | — |
//! | `sfwa_queued_to_sent_seconds` | histogram | — (record created, or its Scheduled_At__c if later, → WhatsApp accepted it) |
//! | `sfwa_queue_depth` | gauge | `state` = claimed, sending (journal rows not finished) |
//! | `sfwa_outbox_depth`, `sfwa_outbox_oldest_age_seconds` | gauge | — |
//! | `sfwa_webhook_requests_total` | counter | `result` = accepted, duplicate, unauthorized, bad_request, error |
//! | `sfwa_webhook_events_rejected_total` | counter | `reason` = a `domain::webhook_event::RejectReason` label (events of a 200'd POST dead-lettered in `webhook_rejects`) |
//! | `sfwa_webhook_parts_ignored_total` | counter | `reason` = a `domain::webhook_event::SkipReason` label: field_not_handled, messaging_handover, status_not_tracked, system_error, unknown_message, untrusted_callback (parts of a 200'd POST that knowingly changed nothing) |
//! | `sfwa_webhook_foreign_number_parts_total` | counter | — (parts for a `phone_number_id` this instance does not serve; no number label: the set is Meta's, unbounded here, and each number is logged once) |
//! | `sfwa_salesforce_api_used`, `sfwa_salesforce_api_max` | gauge | — |
//! | `sfwa_stream_connected`, `sfwa_stream_replay_lag_seconds` | gauge | — (stream mode only) |
//! | `sfwa_writeback_flushes_total` | counter | — |
//! | `sfwa_writeback_records_total` | counter | `result` = written, retried, dropped |
//! | `sfwa_writeback_dead_lettered_total` | counter | `reason` = Salesforce's error code (JSON_PARSER_ERROR, STRING_TOO_LONG…) or ATTEMPTS_EXHAUSTED |
//! | `sfwa_media_files_total` | counter | `outcome` = saved, too_large, failed, retried, disabled (customers' files copied into Salesforce Files, `pipeline::media`) |
//! | `sfwa_media_waiting` | gauge | — (customers' files not copied yet) |
//! | `sfwa_media_uploads_total` | counter | `number`, `outcome` = uploaded, reused, too_large, unsupported_type, not_found, failed, retried (Salesforce Files sent by media id, `pipeline::media_upload`) |
//! | `sfwa_business_number_lease` | gauge | `number` (phone_number_id, or `BLANK` for blank-number records): 1 while this instance holds its lease in Salesforce, 0 when lost (`pipeline::lease`) |
//! | `sfwa_unknown_business_number_total` | counter | — (Queued records of a number no instance serves, failed `UNKNOWN_BUSINESS_NUMBER`) |
//! | `sfwa_unserved_records_total` | counter | — (claimed records of a number this instance does not serve, let go unsent: the intake filter should make this 0) |
//! | `sfwa_outbox_dead_letters` | gauge | — (write-backs refused for good, waiting for `sfwa dead-letters retry\|drop`) |
//! | `sfwa_build_info` | gauge | `version` (Cargo's), `git` (the commit the binary was built from, `SFWA_GIT_COMMIT` at build time, else `unknown`); always 1 |
//! | `sfwa_ready` | gauge | — 1 while the store accepts writes (what `/readyz` routes on), else 0 |
//! | `sfwa_webhook_last_received_timestamp_seconds` | gauge | — when the last signed webhook POST was stored (or this daemon started, if none since) |
//! | `sfwa_webhook_last_status_timestamp_seconds` | gauge | — when the last status of a message this instance sent arrived (or this daemon started, if none since) |
//! | `sfwa_platform_events_delivered_remaining`, `sfwa_platform_events_delivered_max` | gauge | — the org's `DailyDeliveredPlatformEvents` from `GET limits`, read every 5 minutes (`observe::limits`); absent until read and when the org does not report it |
//! | `sfwa_store_commits_total`, `sfwa_store_writes_total` | counter | — store transactions committed (one fsync each) and writes run in them since start: several writes share a commit under load (`store::db` group commit) |
//! | `sfwa_store_checkpoints_total` | counter | — checkpoints of the store's write-ahead log into its file, run on their own thread at most every 250 ms while the store is written (`store::checkpoint`); flat while commits rise means the log is not being copied and grows |
//! | `sfwa_messages_priced_total` | counter | `number`, `category` (marketing, utility, authentication, service…, `other`), `type` (regular, free_customer_service, free_entry_point, `other`): messages delivered with Meta's `pricing`, once each |
//! | `sfwa_inbound_links_total` | counter | `result` = user_id_stored, user_id_refused (a customer's WhatsApp user id written to, or refused by, the Contact / Lead a message linked to by phone), relinked (records the relink job linked after matching nobody at first) |

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::pipeline::report::{Dispatched, Reporter, WebhookResult};
use crate::salesforce::Limit;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// WhatsApp send calls: tens of milliseconds on a good day, the client timeout on a bad one.
const SEND_BUCKETS: [f64; 11] = [0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0];
/// Queue-to-send latency: from sub-second (stream) through poll intervals to retries after outages.
const QUEUED_BUCKETS: [f64; 12] = [
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabels {
    outcome: &'static str,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NumberLabel {
    number: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PricedLabels {
    number: String,
    category: &'static str,
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NumberOutcomeLabels {
    number: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    git: &'static str,
}

/// No labels: a gauge in a family of one, so it is absent until first set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NoLabels {}

/// The commit the binary was built from (`SFWA_GIT_COMMIT` in the build's environment, as the
/// Dockerfile passes it), else `unknown`.
pub const GIT_COMMIT: &str = match option_env!("SFWA_GIT_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

/// State read at scrape time (see [`Metrics::render`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub claimed: u64,
    pub sending: u64,
    pub outbox_depth: u64,
    pub outbox_oldest_age: Option<chrono::Duration>,
    /// Write-backs in the dead-letter table.
    pub dead_letters: u64,
    /// Customers' files not copied yet (`store::media`).
    pub media_waiting: u64,
    /// Stream mode only.
    pub stream: Option<StreamSnapshot>,
    pub salesforce_api: Option<crate::salesforce::ApiUsage>,
    /// Per business number: sends per second allowed now (`pipeline::pacing`).
    pub send_rates: Vec<(String, f64)>,
    /// Per business number: sends that may be in flight at once now (`pipeline::dispatch::lanes`).
    pub send_concurrency: Vec<(String, usize)>,
    /// The store accepts writes (`observe::readiness`).
    pub ready: bool,
    /// The org's `DailyDeliveredPlatformEvents`, if read and reported.
    pub platform_events: Option<Limit>,
    /// Per served business number: whether its sends are on hold now.
    pub numbers_held: Vec<(String, bool)>,
    /// Store transactions committed and writes run in them, since start (`store::CommitCounts`).
    pub store_commits: u64,
    pub store_writes: u64,
    /// Checkpoints of the store's write-ahead log run by its checkpoint thread.
    pub store_checkpoints: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamSnapshot {
    pub connected: bool,
    /// When the stored replay id last advanced; `None` before the first event.
    pub replay_updated_at: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

/// One pipeline's metrics. Cheap to clone; clones record into the same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    messages: Family<MessageLabels, Counter>,
    send_duration: Histogram,
    queued_to_sent: Histogram,
    queue_depth: Family<StateLabel, Gauge>,
    outbox_depth: Gauge,
    outbox_oldest_age: Gauge<f64, AtomicU64>,
    webhook_requests: Family<ResultLabel, Counter>,
    webhook_events_rejected: Family<ReasonLabel, Counter>,
    webhook_parts_ignored: Family<ReasonLabel, Counter>,
    webhook_foreign_number_parts: Counter,
    salesforce_api_used: Gauge,
    salesforce_api_max: Gauge,
    stream_connected: Gauge,
    stream_replay_lag: Gauge<f64, AtomicU64>,
    writeback_flushes: Counter,
    writeback_records: Family<ResultLabel, Counter>,
    send_rate: Family<NumberLabel, Gauge<f64, AtomicU64>>,
    send_concurrency: Family<NumberLabel, Gauge>,
    writeback_dead_lettered: Family<ReasonLabel, Counter>,
    outbox_dead_letters: Gauge,
    inbound_links: Family<ResultLabel, Counter>,
    media_files: Family<OutcomeLabel, Counter>,
    media_waiting: Gauge,
    media_uploads: Family<NumberOutcomeLabels, Counter>,
    build_info: Family<BuildLabels, Gauge>,
    ready: Gauge,
    webhook_last_received: Gauge<f64, AtomicU64>,
    webhook_last_status: Gauge<f64, AtomicU64>,
    platform_events_remaining: Family<NoLabels, Gauge>,
    platform_events_max: Family<NoLabels, Gauge>,
    number_held: Family<NumberLabel, Gauge>,
    sent_by_number: Family<NumberLabel, Counter>,
    priced: Family<PricedLabels, Counter>,
    store_commits: Counter,
    store_writes: Counter,
    store_checkpoints: Counter,
    shards: ShardMetrics,
}

/// Sharding by business number (`pipeline::lease`, the intake's number filter).
#[derive(Default)]
struct ShardMetrics {
    lease: Family<NumberLabel, Gauge>,
    unknown_numbers: Counter,
    unserved: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh registry with every sfwa metric; the stream gauges only when `streaming`.
    pub fn new(streaming: bool) -> Metrics {
        let mut inner = Inner {
            registry: Registry::with_prefix("sfwa"),
            messages: Family::default(),
            send_duration: Histogram::new(SEND_BUCKETS),
            queued_to_sent: Histogram::new(QUEUED_BUCKETS),
            queue_depth: Family::default(),
            outbox_depth: Gauge::default(),
            outbox_oldest_age: Gauge::default(),
            webhook_requests: Family::default(),
            webhook_events_rejected: Family::default(),
            webhook_parts_ignored: Family::default(),
            webhook_foreign_number_parts: Counter::default(),
            salesforce_api_used: Gauge::default(),
            salesforce_api_max: Gauge::default(),
            stream_connected: Gauge::default(),
            stream_replay_lag: Gauge::default(),
            writeback_flushes: Counter::default(),
            writeback_records: Family::default(),
            send_rate: Family::default(),
            send_concurrency: Family::default(),
            writeback_dead_lettered: Family::default(),
            outbox_dead_letters: Gauge::default(),
            inbound_links: Family::default(),
            media_files: Family::default(),
            media_waiting: Gauge::default(),
            media_uploads: Family::default(),
            build_info: Family::default(),
            ready: Gauge::default(),
            webhook_last_received: Gauge::default(),
            webhook_last_status: Gauge::default(),
            platform_events_remaining: Family::default(),
            platform_events_max: Family::default(),
            shards: ShardMetrics::default(),
            number_held: Family::default(),
            sent_by_number: Family::default(),
            priced: Family::default(),
            store_commits: Counter::default(),
            store_writes: Counter::default(),
            store_checkpoints: Counter::default(),
        };
        inner.register_sends();
        inner.register_numbers();
        inner.register_state_and_webhooks();
        if streaming {
            inner.register_stream();
        }
        inner.register_writeback();
        inner.register_media();
        inner.register_operations();
        inner
            .build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                git: GIT_COMMIT,
            })
            .set(1);
        inner.register_shards();
        Metrics {
            inner: Arc::new(inner),
        }
    }

    fn message(&self, outcome: &'static str, code: &str) {
        self.inner
            .messages
            .get_or_create(&MessageLabels {
                outcome,
                code: code.to_string(),
            })
            .inc();
    }

    /// The daemon started at `at`: the "last webhook" gauges count from here until one comes, so a
    /// restart does not look like hours without webhooks.
    pub fn started(&self, at: DateTime<Utc>) {
        let at = timestamp(at);
        self.inner.webhook_last_received.set(at);
        self.inner.webhook_last_status.set(at);
    }

    /// Sets the state gauges from `snapshot` and encodes every metric.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let inner = &self.inner;
        inner.ready.set(i64::from(snapshot.ready));
        catch_up(&inner.store_commits, snapshot.store_commits);
        catch_up(&inner.store_writes, snapshot.store_writes);
        catch_up(&inner.store_checkpoints, snapshot.store_checkpoints);
        if let Some(limit) = snapshot.platform_events {
            let none = NoLabels {};
            inner
                .platform_events_remaining
                .get_or_create(&none)
                .set(gauge_value(limit.remaining));
            inner
                .platform_events_max
                .get_or_create(&none)
                .set(gauge_value(limit.max));
        }
        inner
            .queue_depth
            .get_or_create(&StateLabel { state: "claimed" })
            .set(gauge_value(snapshot.claimed));
        inner
            .queue_depth
            .get_or_create(&StateLabel { state: "sending" })
            .set(gauge_value(snapshot.sending));
        inner.outbox_depth.set(gauge_value(snapshot.outbox_depth));
        inner
            .outbox_dead_letters
            .set(gauge_value(snapshot.dead_letters));
        inner.media_waiting.set(gauge_value(snapshot.media_waiting));
        inner.outbox_oldest_age.set(
            snapshot
                .outbox_oldest_age
                .map_or(0.0, |age| seconds(age).max(0.0)),
        );
        for (number, rate) in &snapshot.send_rates {
            inner
                .send_rate
                .get_or_create(&NumberLabel {
                    number: number.clone(),
                })
                .set(*rate);
        }
        for (number, limit) in &snapshot.send_concurrency {
            let label = NumberLabel {
                number: number.clone(),
            };
            let limit = i64::try_from(*limit).unwrap_or(i64::MAX);
            inner.send_concurrency.get_or_create(&label).set(limit);
        }
        for (number, held) in &snapshot.numbers_held {
            inner
                .number_held
                .get_or_create(&NumberLabel {
                    number: number.clone(),
                })
                .set(i64::from(*held));
        }
        if let Some(usage) = snapshot.salesforce_api {
            inner.salesforce_api_used.set(gauge_value(usage.used));
            inner.salesforce_api_max.set(gauge_value(usage.max));
        }
        if let Some(stream) = &snapshot.stream {
            inner.stream_connected.set(i64::from(stream.connected));
            inner.stream_replay_lag.set(
                stream
                    .replay_updated_at
                    .map_or(0.0, |at| seconds(stream.now - at).max(0.0)),
            );
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &inner.registry);
        text
    }
}

/// The counters and histograms, recorded as the pipeline reports.
impl Reporter for Metrics {
    /// Counts one dispatch outcome.
    fn dispatched(&self, outcome: Dispatched<'_>) {
        let (outcome, code) = match outcome {
            Dispatched::Sent => ("sent", ""),
            Dispatched::Refused(code) => ("refused", code),
            Dispatched::Failed(code) => ("failed", code),
            Dispatched::Retry(code) => ("retry", code),
            Dispatched::RateLimited(code) => ("rate_limited", code),
            Dispatched::Held => ("held", ""),
            Dispatched::Unknown => ("unknown", ""),
        };
        self.message(outcome, code);
    }

    /// WhatsApp accepted a send from `number`.
    fn sent_from(&self, number: &str) {
        self.inner
            .sent_by_number
            .get_or_create(&NumberLabel {
                number: number.to_string(),
            })
            .inc();
    }

    /// A message given up outside a dispatch (no status echo within the grace period).
    fn failed_without_dispatch(&self, code: &str) {
        self.message("failed", code);
    }

    /// One WhatsApp send call took this long.
    fn whatsapp_send(&self, took: Duration) {
        self.inner.send_duration.observe(took.as_secs_f64());
    }

    /// A send WhatsApp accepted, `waited` after its record was queued (or due).
    fn queued_to_sent(&self, waited: chrono::Duration) {
        let seconds = waited.num_milliseconds().max(0) as f64 / 1000.0;
        self.inner.queued_to_sent.observe(seconds);
    }

    fn webhook(&self, result: WebhookResult) {
        self.inner
            .webhook_requests
            .get_or_create(&ResultLabel {
                result: result.label(),
            })
            .inc();
    }

    /// One webhook event refused and dead-lettered; `reason` is a `domain::webhook_event::RejectReason` label.
    fn webhook_event_rejected(&self, reason: &'static str) {
        self.inner
            .webhook_events_rejected
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// One part of a signed POST knowingly ignored; `reason` is a `SkipReason` label.
    fn webhook_part_ignored(&self, reason: &'static str) {
        self.inner
            .webhook_parts_ignored
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// One part of a signed POST for a number this instance does not serve.
    fn webhook_foreign_number_part(&self) {
        self.inner.webhook_foreign_number_parts.inc();
    }

    /// A signed POST stored at `at`, with `statuses` statuses of this instance's sends.
    fn webhook_applied(&self, at: DateTime<Utc>, statuses: usize) {
        self.inner.webhook_last_received.set(timestamp(at));
        if statuses > 0 {
            self.inner.webhook_last_status.set(timestamp(at));
        }
    }

    /// One flush ended; flushes that found nothing due are not counted.
    fn flushed(&self, written: usize, retried: usize, dropped: usize) {
        if written + retried + dropped == 0 {
            return;
        }
        self.inner.writeback_flushes.inc();
        for (result, n) in [
            ("written", written),
            ("retried", retried),
            ("dropped", dropped),
        ] {
            self.inner
                .writeback_records
                .get_or_create(&ResultLabel { result })
                .inc_by(n as u64);
        }
    }

    fn user_ids_stored(&self, stored: usize, refused: usize) {
        for (result, n) in [("user_id_stored", stored), ("user_id_refused", refused)] {
            self.inner
                .inbound_links
                .get_or_create(&ResultLabel { result })
                .inc_by(n as u64);
        }
    }

    fn relinked(&self, linked: usize) {
        self.inner
            .inbound_links
            .get_or_create(&ResultLabel { result: "relinked" })
            .inc_by(linked as u64);
    }

    /// One write-back moved to the dead letters; `reason` is a bounded error code.
    fn dead_lettered(&self, reason: &str) {
        self.inner
            .writeback_dead_lettered
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    fn unserved_record(&self) {
        self.inner.shards.unserved.inc();
    }

    fn unknown_business_numbers(&self, count: usize) {
        self.inner.shards.unknown_numbers.inc_by(count as u64);
    }

    fn business_number_lease(&self, number: &str, held: bool) {
        self.inner
            .shards
            .lease
            .get_or_create(&NumberLabel {
                number: number.to_string(),
            })
            .set(i64::from(held));
    }

    fn media(&self, outcome: crate::pipeline::report::MediaOutcome) {
        self.inner
            .media_files
            .get_or_create(&OutcomeLabel {
                outcome: outcome.label(),
            })
            .inc();
    }

    fn media_uploaded(&self, number: &str, outcome: &'static str) {
        self.inner
            .media_uploads
            .get_or_create(&NumberOutcomeLabels {
                number: number.to_string(),
                outcome,
            })
            .inc();
    }

    fn message_priced(&self, number: &str, category: &'static str, pricing_type: &'static str) {
        self.inner
            .priced
            .get_or_create(&PricedLabels {
                number: number.to_string(),
                category,
                r#type: pricing_type,
            })
            .inc();
    }
}

/// Moves a counter up to a total counted elsewhere (the store's own counts, read at scrape time).
fn catch_up(counter: &Counter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

/// `registry.register(name, help, field.clone())` for each `name => help, field;`.
macro_rules! register {
    ($inner:ident; $($name:literal => $help:literal, $field:ident;)*) => {
        $($inner.registry.register($name, $help, $inner.$field.clone());)*
    };
}

/// The registrations, by group (names, help texts and label sets as documented above).
impl Inner {
    /// Outbound messages: outcomes, send and queue latency, pace, journal depth.
    fn register_sends(&mut self) {
        register!(self;
            "messages" => "Outbound messages by dispatch outcome (sent, failed, refused, retry, rate_limited, held, unknown) and error code", messages;
            "whatsapp_send_duration_seconds" => "Duration of WhatsApp Cloud API send calls, answered or not", send_duration;
            "queued_to_sent_seconds" => "From a record's creation (or its Scheduled_At__c, if later) to WhatsApp accepting the send", queued_to_sent;
            "send_rate_per_second" => "Sends per second allowed now per business number, adapted to WhatsApp's rate-limit refusals", send_rate;
            "send_concurrency" => "Sends that may be in flight at once per business number: its pace times the measured send latency, bounded", send_concurrency;
            "queue_depth" => "Journal rows not finished: claimed (waiting to be sent or retried) and sending (outcome not yet known)", queue_depth;
        );
    }

    /// Per business number: holds and accepted sends.
    fn register_numbers(&mut self) {
        register!(self;
            "business_number_held" => "1 while sends from this business number are on hold (WhatsApp blocked or locked the number, or a hold on every send), else 0", number_held;
            "messages_sent_by_number" => "Outbound messages WhatsApp accepted, by the business number they went from", sent_by_number;
            "messages_priced" => "Outbound messages delivered with WhatsApp's pricing, once each, by business number, pricing category and type (regular is billed)", priced;
        );
    }

    /// The outbox, webhooks and Salesforce API usage.
    fn register_state_and_webhooks(&mut self) {
        register!(self;
            "outbox_depth" => "Write-backs waiting for Salesforce to confirm them", outbox_depth;
            "outbox_oldest_age_seconds" => "How long the oldest write-back in the outbox has waited (0 when empty)", outbox_oldest_age;
            "webhook_requests" => "Webhook POSTs by result (accepted, duplicate, unauthorized, bad_request, error)", webhook_requests;
            "webhook_events_rejected" => "Webhook events (statuses, inbound messages) refused and dead-lettered while their POST was answered 200, by reason", webhook_events_rejected;
            "webhook_parts_ignored" => "Parts of signed webhook POSTs acknowledged that knowingly changed nothing (fields not handled, handovers, untracked statuses, statuses of messages this instance did not send), by reason", webhook_parts_ignored;
            "webhook_foreign_number_parts" => "Parts of signed webhook POSTs for a business number this instance does not serve (whatsapp.default_phone_number_id and phone_number_ids): acknowledged, applied nowhere", webhook_foreign_number_parts;
            "salesforce_api_used" => "Salesforce API requests used in the last 24 h, from the latest Sforce-Limit-Info (0 before the first call)", salesforce_api_used;
            "salesforce_api_max" => "The org's daily Salesforce API allowance, from the latest Sforce-Limit-Info (0 before the first call)", salesforce_api_max;
        );
    }

    /// The stream's connection and replay lag (stream mode only).
    fn register_stream(&mut self) {
        register!(self;
            "stream_connected" => "1 while the platform-event subscription is connected (its last long poll succeeded), else 0", stream_connected;
            "stream_replay_lag_seconds" => "Seconds since the stored replay id last advanced, i.e. since the last platform event was handled (0 before the first); grows while no events come", stream_replay_lag;
        );
    }

    /// Customers' files copied into Salesforce Files (`pipeline::media`).
    fn register_media(&mut self) {
        register!(self;
            "media_files" => "Customers' files by outcome: saved to Salesforce Files, too_large, failed (given up), retried (one attempt failed), disabled", media_files;
            "media_waiting" => "Customers' files not copied yet (waiting for their turn, their record, or a retry)", media_waiting;
            "media_uploads" => "Salesforce Files sent by media id, by business number and outcome: uploaded to WhatsApp, reused (uploaded before), too_large, unsupported_type, not_found, failed, retried", media_uploads;
        );
    }

    /// What the alert rules (`deploy/prometheus/sfwa-alerts.yaml`) need beyond the rest.
    fn register_operations(&mut self) {
        register!(self;
            "build_info" => "Always 1; the version and git commit of this sfwa", build_info;
            "ready" => "1 while the store accepts writes (what /readyz routes Meta's webhooks on), else 0", ready;
            "webhook_last_received_timestamp_seconds" => "Unix time the last signed webhook POST was stored (this daemon's start, if none since)", webhook_last_received;
            "webhook_last_status_timestamp_seconds" => "Unix time the last status webhook of a message this instance sent was stored (this daemon's start, if none since)", webhook_last_status;
            "platform_events_delivered_remaining" => "Platform events the org may still deliver to subscribers in the last 24 h (GET limits DailyDeliveredPlatformEvents Remaining, read every 5 minutes)", platform_events_remaining;
            "platform_events_delivered_max" => "The org's daily platform-event delivery allocation (GET limits DailyDeliveredPlatformEvents Max)", platform_events_max;
            "store_commits" => "Store transactions committed (one fsync each); concurrent writes share one", store_commits;
            "store_writes" => "Store writes run, each in its own savepoint of a shared transaction", store_writes;
            "store_checkpoints" => "Checkpoints of the store's write-ahead log into its file, run beside the writer (never inside a commit)", store_checkpoints;
        );
    }

    /// Number leases and records of numbers served elsewhere or nowhere.
    fn register_shards(&mut self) {
        let shards = &self.shards;
        self.registry.register(
            "business_number_lease",
            "1 while this instance holds the lease on the business number in Salesforce, 0 when lost (BLANK: blank-number records)",
            shards.lease.clone(),
        );
        self.registry.register(
            "unknown_business_number",
            "Queued records of a business number no instance serves, failed UNKNOWN_BUSINESS_NUMBER",
            shards.unknown_numbers.clone(),
        );
        self.registry.register(
            "unserved_records",
            "Claimed records of a business number this instance does not serve, let go unsent",
            shards.unserved.clone(),
        );
    }

    /// Write-back flushes, records and dead letters.
    fn register_writeback(&mut self) {
        register!(self;
            "writeback_flushes" => "Write-back flushes that found due items", writeback_flushes;
            "writeback_records" => "Write-back records by result (written, retried, dropped)", writeback_records;
            "writeback_dead_lettered" => "Write-backs moved to the dead letters, by Salesforce's error code (or ATTEMPTS_EXHAUSTED)", writeback_dead_lettered;
            "outbox_dead_letters" => "Write-backs Salesforce refused for good, waiting for `sfwa dead-letters retry|drop`", outbox_dead_letters;
            "inbound_links" => "Contact/Lead linking: WhatsApp user ids stored on or refused by linked records, and records linked later by the relink job", inbound_links;
        );
    }
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Unix time in seconds, to the millisecond.
fn timestamp(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

fn seconds(duration: chrono::Duration) -> f64 {
    duration.num_milliseconds() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_counted_by_outcome_and_code() {
        let metrics = Metrics::new(false);
        metrics.dispatched(Dispatched::Sent);
        metrics.dispatched(Dispatched::Refused("INVALID_PHONE"));
        metrics.dispatched(Dispatched::Refused("INVALID_PHONE"));

        let text = metrics.render(&Snapshot::default());

        assert!(text.contains("# HELP sfwa_messages_total "), "{text}");
        assert!(
            text.contains(r#"sfwa_messages_total{outcome="sent",code=""} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"sfwa_messages_total{outcome="refused",code="INVALID_PHONE"} 2"#),
            "{text}"
        );
        assert!(!text.contains("sfwa_stream_connected"), "{text}");
    }

    #[test]
    fn build_info_names_the_version_and_the_platform_event_gauges_wait_for_a_reading() {
        let metrics = Metrics::new(true);

        let text = metrics.render(&Snapshot::default());

        let build = format!(
            r#"sfwa_build_info{{version="{}",git="{GIT_COMMIT}"}} 1"#,
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.lines().any(|l| l == build), "{build} missing:\n{text}");
        assert!(text.lines().any(|l| l == "sfwa_ready 0"), "{text}");
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("sfwa_platform_events_delivered_remaining ")),
            "no sample before a reading:\n{text}"
        );
    }

    #[test]
    fn the_last_webhook_gauges_start_at_the_start_and_statuses_move_only_their_own() {
        let metrics = Metrics::new(false);
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        metrics.started(start);

        metrics.webhook_applied(start + chrono::Duration::seconds(10), 0);
        let inbound_only = metrics.render(&Snapshot::default());
        metrics.webhook_applied(start + chrono::Duration::seconds(20), 2);
        let with_statuses = metrics.render(&Snapshot::default());

        let has = |text: &str, line: &str| text.lines().any(|l| l == line);
        assert!(
            has(
                &inbound_only,
                "sfwa_webhook_last_received_timestamp_seconds 1800000010.0"
            ),
            "{inbound_only}"
        );
        assert!(
            has(
                &inbound_only,
                "sfwa_webhook_last_status_timestamp_seconds 1800000000.0"
            ),
            "{inbound_only}"
        );
        assert!(
            has(
                &with_statuses,
                "sfwa_webhook_last_received_timestamp_seconds 1800000020.0"
            ),
            "{with_statuses}"
        );
        assert!(
            has(
                &with_statuses,
                "sfwa_webhook_last_status_timestamp_seconds 1800000020.0"
            ),
            "{with_statuses}"
        );
    }

    #[test]
    fn state_gauges_come_from_the_snapshot() {
        let metrics = Metrics::new(true);
        let now = Utc::now();
        let text = metrics.render(&Snapshot {
            claimed: 3,
            sending: 1,
            outbox_depth: 7,
            outbox_oldest_age: Some(chrono::Duration::seconds(42)),
            dead_letters: 2,
            media_waiting: 4,
            stream: Some(StreamSnapshot {
                connected: true,
                replay_updated_at: Some(now - chrono::Duration::seconds(5)),
                now,
            }),
            salesforce_api: Some(crate::salesforce::ApiUsage {
                used: 25,
                max: 15000,
            }),
            send_rates: vec![("106540352242922".into(), 18.5)],
            send_concurrency: vec![("106540352242922".into(), 29)],
            ready: true,
            platform_events: Some(Limit {
                max: 50000,
                remaining: 1200,
            }),
            numbers_held: vec![
                ("106540352242922".into(), true),
                ("106540352242923".into(), false),
            ],
            store_commits: 11,
            store_writes: 40,
            store_checkpoints: 2,
        });

        for line in [
            r#"sfwa_queue_depth{state="claimed"} 3"#,
            "sfwa_store_commits_total 11",
            "sfwa_store_writes_total 40",
            "sfwa_store_checkpoints_total 2",
            r#"sfwa_business_number_held{number="106540352242922"} 1"#,
            r#"sfwa_business_number_held{number="106540352242923"} 0"#,
            r#"sfwa_queue_depth{state="sending"} 1"#,
            "sfwa_outbox_depth 7",
            "sfwa_outbox_oldest_age_seconds 42",
            "sfwa_outbox_dead_letters 2",
            "sfwa_media_waiting 4",
            "sfwa_salesforce_api_used 25",
            "sfwa_salesforce_api_max 15000",
            "sfwa_stream_connected 1",
            "sfwa_stream_replay_lag_seconds 5",
            r#"sfwa_send_rate_per_second{number="106540352242922"} 18.5"#,
            r#"sfwa_send_concurrency{number="106540352242922"} 29"#,
            "sfwa_ready 1",
            "sfwa_platform_events_delivered_remaining 1200",
            "sfwa_platform_events_delivered_max 50000",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(line)),
                "{line} missing:\n{text}"
            );
        }
    }
}
