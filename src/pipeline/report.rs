//! What the pipeline reports as it works, in its own vocabulary: [`Reporter`]. The
//! pipeline (and the webhook receiver) call it where things happen; `observe`'s metrics and health
//! implement it, and `app` wires them in. So nothing below `observe` imports it: the pipeline does
//! not know whether anyone counts.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// How a dispatch ended, as it is counted: the pipeline's `DispatchOutcome` without its details.
/// An outcome another worker owns (already sending) is not counted and has no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatched<'a> {
    Sent,
    Refused(&'a str),
    Failed(&'a str),
    Retry(&'a str),
    RateLimited(&'a str),
    Held,
    Unknown,
}

/// How one accepted or refused webhook POST ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookResult {
    /// Stored (at least one event was new).
    Accepted,
    /// Every event in it had been seen before (Meta redelivers).
    Duplicate,
    /// Signature missing or wrong: 401.
    Unauthorized,
    /// Signed, but not a WhatsApp Business Account envelope: 400.
    BadRequest,
    /// Not stored (the store failed): 500, Meta retries.
    Error,
}

impl WebhookResult {
    pub fn label(self) -> &'static str {
        match self {
            WebhookResult::Accepted => "accepted",
            WebhookResult::Duplicate => "duplicate",
            WebhookResult::Unauthorized => "unauthorized",
            WebhookResult::BadRequest => "bad_request",
            WebhookResult::Error => "error",
        }
    }
}

/// The events the pipeline reports. Every method has a do-nothing default, so an observer
/// implements only what it keeps (the metrics count, the health remembers the intake's state).
pub trait Reporter: Send + Sync {
    /// One dispatch ended so.
    fn dispatched(&self, _outcome: Dispatched<'_>) {}
    /// A message given up outside a dispatch (no status echo within the grace period).
    fn failed_without_dispatch(&self, _code: &str) {}
    /// One WhatsApp send call took this long.
    fn whatsapp_send(&self, _took: Duration) {}
    /// A send WhatsApp accepted, `waited` after its record was queued (or due).
    fn queued_to_sent(&self, _waited: chrono::Duration) {}
    /// WhatsApp accepted a send from business number `number`.
    fn sent_from(&self, _number: &str) {}
    /// One flush ended having written, retried and dropped so many records.
    fn flushed(&self, _written: usize, _retried: usize, _dropped: usize) {}
    /// One write-back moved to the dead letters; `reason` is a bounded error code.
    fn dead_lettered(&self, _reason: &str) {}
    /// One webhook POST was answered so.
    fn webhook(&self, _result: WebhookResult) {}
    /// One webhook event refused and dead-lettered; `reason` is a `RejectReason` label.
    fn webhook_event_rejected(&self, _reason: &'static str) {}
    /// One part of a signed POST acknowledged and knowingly ignored; `reason` is a
    /// `SkipReason` label.
    fn webhook_part_ignored(&self, _reason: &'static str) {}
    /// One part of a signed POST for a business number this instance does not serve.
    fn webhook_foreign_number_part(&self) {}
    /// A signed POST was stored at `at`, holding `statuses` statuses of this instance's sends.
    fn webhook_applied(&self, _at: DateTime<Utc>, _statuses: usize) {}
    /// A claimed record of a business number this instance does not serve was let go unsent
    /// (`pipeline::dispatch`'s defence behind the intake's number filter).
    fn unserved_record(&self) {}
    /// Queued records of a number no instance serves failed `UNKNOWN_BUSINESS_NUMBER`.
    fn unknown_business_numbers(&self, _count: usize) {}
    /// This instance holds (or lost) the lease on `number` (`BLANK` for blank-number records).
    fn business_number_lease(&self, _number: &str, _held: bool) {}
    /// The stream intake's last long poll left it connected (or not).
    fn stream_connected(&self, _connected: bool) {}
    /// Salesforce answered the poll at `at`.
    fn poll_succeeded(&self, _at: DateTime<Utc>) {}
    /// Customers' WhatsApp user ids written to the Contacts / Leads their messages linked to by
    /// phone: `stored`, and `refused` by the org (a validation rule, no edit access).
    fn user_ids_stored(&self, _stored: usize, _refused: usize) {}
    /// The relink job linked `linked` inbound records that had matched nobody at first.
    fn relinked(&self, _linked: usize) {}
    /// One customer's file ended (or failed one attempt) so (see `pipeline::media`).
    fn media(&self, _outcome: MediaOutcome) {}
    /// A Salesforce File to send from `number` ended one step so (see `pipeline::media_upload`):
    /// `outcome` is one of its bounded labels (uploaded, reused, too_large, …).
    fn media_uploaded(&self, _number: &str, _outcome: &'static str) {}
    /// A message from `number` was delivered, priced by Meta in `category` as `pricing_type`
    /// (bounded labels: `domain::webhook_event::Pricing`); once per message.
    fn message_priced(&self, _number: &str, _category: &'static str, _pricing_type: &'static str) {}
}

/// What became of one customer's file in one media step, as it is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaOutcome {
    /// Downloaded and saved as a Salesforce File on its record.
    Saved,
    /// Over `media.max_bytes`: not downloaded, the record says so.
    TooLarge,
    /// Given up (attempts spent, or Meta no longer has it), the record says so.
    Failed,
    /// One attempt failed; tried again later.
    Retried,
    /// `media.enabled = false`: not downloaded, the record says so.
    Disabled,
}

impl MediaOutcome {
    pub fn label(self) -> &'static str {
        match self {
            MediaOutcome::Saved => "saved",
            MediaOutcome::TooLarge => "too_large",
            MediaOutcome::Failed => "failed",
            MediaOutcome::Retried => "retried",
            MediaOutcome::Disabled => "disabled",
        }
    }
}

/// Reports to several observers in turn (the metrics and the health).
pub struct Reporters(pub Vec<std::sync::Arc<dyn Reporter>>);

impl Reporter for Reporters {
    fn dispatched(&self, outcome: Dispatched<'_>) {
        self.0.iter().for_each(|o| o.dispatched(outcome));
    }
    fn failed_without_dispatch(&self, code: &str) {
        self.0.iter().for_each(|o| o.failed_without_dispatch(code));
    }
    fn whatsapp_send(&self, took: Duration) {
        self.0.iter().for_each(|o| o.whatsapp_send(took));
    }
    fn queued_to_sent(&self, waited: chrono::Duration) {
        self.0.iter().for_each(|o| o.queued_to_sent(waited));
    }
    fn sent_from(&self, number: &str) {
        self.0.iter().for_each(|o| o.sent_from(number));
    }
    fn flushed(&self, written: usize, retried: usize, dropped: usize) {
        self.0
            .iter()
            .for_each(|o| o.flushed(written, retried, dropped));
    }
    fn dead_lettered(&self, reason: &str) {
        self.0.iter().for_each(|o| o.dead_lettered(reason));
    }
    fn webhook(&self, result: WebhookResult) {
        self.0.iter().for_each(|o| o.webhook(result));
    }
    fn webhook_event_rejected(&self, reason: &'static str) {
        self.0.iter().for_each(|o| o.webhook_event_rejected(reason));
    }
    fn webhook_part_ignored(&self, reason: &'static str) {
        self.0.iter().for_each(|o| o.webhook_part_ignored(reason));
    }
    fn webhook_foreign_number_part(&self) {
        self.0.iter().for_each(|o| o.webhook_foreign_number_part());
    }
    fn webhook_applied(&self, at: DateTime<Utc>, statuses: usize) {
        self.0.iter().for_each(|o| o.webhook_applied(at, statuses));
    }
    fn unserved_record(&self) {
        self.0.iter().for_each(|o| o.unserved_record());
    }
    fn unknown_business_numbers(&self, count: usize) {
        self.0
            .iter()
            .for_each(|o| o.unknown_business_numbers(count));
    }
    fn business_number_lease(&self, number: &str, held: bool) {
        self.0
            .iter()
            .for_each(|o| o.business_number_lease(number, held));
    }
    fn stream_connected(&self, connected: bool) {
        self.0.iter().for_each(|o| o.stream_connected(connected));
    }
    fn poll_succeeded(&self, at: DateTime<Utc>) {
        self.0.iter().for_each(|o| o.poll_succeeded(at));
    }
    fn user_ids_stored(&self, stored: usize, refused: usize) {
        self.0
            .iter()
            .for_each(|o| o.user_ids_stored(stored, refused));
    }
    fn relinked(&self, linked: usize) {
        self.0.iter().for_each(|o| o.relinked(linked));
    }
    fn media(&self, outcome: MediaOutcome) {
        self.0.iter().for_each(|o| o.media(outcome));
    }
    fn media_uploaded(&self, number: &str, outcome: &'static str) {
        self.0
            .iter()
            .for_each(|o| o.media_uploaded(number, outcome));
    }
    fn message_priced(&self, number: &str, category: &'static str, pricing_type: &'static str) {
        self.0
            .iter()
            .for_each(|o| o.message_priced(number, category, pricing_type));
    }
}

/// Nobody listens (`sfwa sync`, `sfwa dead-letters`: one-shot commands without `/metrics`).
pub struct Silent;

impl Reporter for Silent {}
