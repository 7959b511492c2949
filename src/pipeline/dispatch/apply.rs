//! What a [`Next`] does: one function, [`apply`], writes a decided record's journal row and its
//! write-back (in one transaction each) and says how the dispatch ended.

use chrono::{DateTime, Duration, Utc};

use crate::domain::ids::Wamid;
use crate::domain::message::QueuedRecord;
use crate::domain::sf_id::SfId;
use crate::pipeline::record_update::{self, Fields};
use crate::pipeline::Dispatcher;
use crate::store::{journal, outbox};
use crate::whatsapp::RateLimit;

use super::decide::{DispatchOutcome, NewHold, Next};

/// The record a [`Next`] is about, and where it was going.
pub struct Target<'a> {
    pub record: &'a QueuedRecord,
    /// The business number it goes from, and the customer (empty when the record was refused
    /// before either was known).
    pub number: &'a str,
    pub wa_id: &'a str,
    /// Attempts so far.
    pub attempt: u32,
    /// When the decision was taken.
    pub now: DateTime<Utc>,
}

/// Writes `next` to the journal and the outbox and says how the dispatch ended.
pub async fn apply(
    dispatcher: &Dispatcher,
    target: &Target<'_>,
    next: Next,
) -> anyhow::Result<DispatchOutcome> {
    let (id, now) = (&target.record.id, target.now);
    Ok(match next {
        Next::Sent {
            wamid,
            window_expires_at,
        } => {
            dispatcher.pacer.accepted(target.number);
            dispatcher.core.reporter.sent_from(target.number);
            if let Some(queued) = queued_at(target.record) {
                let waited = dispatcher.now() - queued;
                dispatcher.core.reporter.queued_to_sent(waited);
            }
            mark_sent(dispatcher, id, &wamid, window_expires_at, now).await?;
            DispatchOutcome::Sent { wamid }
        }
        Next::Refuse {
            code,
            message,
            window_expired_at,
        } => {
            finish_failed(dispatcher, id, &code, &message, now, window_expired_at).await?;
            DispatchOutcome::Refused { code }
        }
        Next::Fail {
            code,
            message,
            window_expires_at,
        } => {
            finish_failed(dispatcher, id, &code, &message, now, window_expires_at).await?;
            DispatchOutcome::Failed { code }
        }
        Next::Retry { at, attempts, code } => {
            schedule(dispatcher, id, attempts, at).await?;
            DispatchOutcome::RetryScheduled { at, code }
        }
        Next::Hold { until, hold } => {
            if let Some(hold) = hold {
                start_hold(dispatcher, target.number, until, hold);
            }
            schedule(dispatcher, id, target.attempt, until).await?;
            DispatchOutcome::Held
        }
        Next::Wait {
            limit,
            code,
            meta,
            held_until,
        } => {
            let waiting = Waiting {
                limit,
                code,
                meta,
                held_until,
            };
            rate_limited(dispatcher, target, waiting).await?
        }
        Next::Unknown => DispatchOutcome::OutcomeUnknown,
    })
}

/// Starts the hold Meta's refusal asks for: on everything (the token, the app) or on `number`
/// alone. Logged once per hold: the sends from that number already in flight meet the same
/// refusal, and only the first of them to come back says so.
fn start_hold(dispatcher: &Dispatcher, number: &str, until: DateTime<Utc>, hold: NewHold) {
    match hold {
        NewHold::All { reason } => {
            if dispatcher.hold_on_all().is_none() {
                tracing::warn!(
                    "WhatsApp refuses every send ({reason}); holding all sends until {until}"
                );
            }
            dispatcher.hold_until(until, reason);
        }
        NewHold::Number { reason } => {
            let already = dispatcher
                .held_numbers()
                .iter()
                .any(|(held, _)| held == number);
            if !already {
                tracing::warn!(
                    number,
                    "WhatsApp refuses sends from this business number ({reason}); holding its \
                     sends until {until}, the other numbers go on"
                );
            }
            dispatcher.hold_number(number, until, reason);
        }
    }
}

/// Journal Sent and queue the write-back. A status webhook can overtake the send's answer
/// (Delivered, or a 131047 Failed, already queued): then only the wamid is news, never the
/// status (guarantee 3).
async fn mark_sent(
    dispatcher: &Dispatcher,
    record_id: &SfId,
    wamid: &Wamid,
    window_expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let (id, wamid) = (record_id.clone(), wamid.clone());
    let object = dispatcher.core.message_object().to_string();
    dispatcher
        .core
        .store
        .write(move |tx| {
            let fields = if journal::mark_sent(tx, &id, &wamid, now)? {
                record_update::accepted(wamid.as_str(), window_expires_at)
            } else {
                // Errors a rate limit left on the record go, unless a `failed` webhook
                // wrote them just now.
                let failed = journal::get(tx, &id)?
                    .is_some_and(|e| e.state == journal::JournalState::Failed);
                record_update::accepted_after_status(wamid.as_str(), window_expires_at, !failed)
            };
            outbox::enqueue(tx, &object, id.as_str(), &fields, now)
        })
        .await?;
    dispatcher.core.flush.batch_ready();
    Ok(())
}

/// When the record became due: its creation, or its `Scheduled_At__c` if that is later.
fn queued_at(record: &QueuedRecord) -> Option<DateTime<Utc>> {
    match (record.created_at, record.scheduled_at) {
        (Some(created), Some(scheduled)) => Some(created.max(scheduled)),
        (created, scheduled) => created.or(scheduled),
    }
}

/// A send that must wait for one of Meta's rate limits.
struct Waiting {
    limit: RateLimit,
    /// Error_Code__c if the wait runs out (`WA_130429`, …).
    code: String,
    /// Meta's words, when Meta refused this very send.
    meta: Option<String>,
    /// `Some`: sfwa held the send back itself, until then. `None`: Meta refused it (the pace
    /// adapts and says when to try again).
    held_until: Option<DateTime<Utc>>,
}

/// `24 h`, `90 min`, `45 s`: how long, for a rep.
fn spoken_duration(duration: Duration) -> String {
    let seconds = duration.num_seconds();
    if seconds >= 3600 && seconds % 3600 == 0 {
        format!("{} h", seconds / 3600)
    } else if seconds >= 60 && seconds % 60 == 0 {
        format!("{} min", seconds / 60)
    } else {
        format!("{seconds} s")
    }
}

/// Rate-limit refusals are Meta asking for less speed, not a verdict on the message: the record
/// waits — not counted towards `dispatch.max_attempts`, Status back to Queued in Salesforce with
/// Error_Message__c saying why — until `dispatch.max_rate_limited_wait` after its first refusal,
/// and only then fails.
async fn rate_limited(
    dispatcher: &Dispatcher,
    target: &Target<'_>,
    waiting: Waiting,
) -> anyhow::Result<DispatchOutcome> {
    let now = dispatcher.now();
    let max_wait = Duration::from_std(dispatcher.core.settings.dispatch.max_rate_limited_wait)
        .unwrap_or(Duration::hours(24));
    let pacer = dispatcher.pacer.clone();
    let object = dispatcher.core.settings.salesforce.message_object.clone();
    let Waiting {
        limit,
        code,
        meta,
        held_until,
    } = waiting;
    let (id, number, wa_id) = (
        target.record.id.clone(),
        target.number.to_string(),
        target.wa_id.to_string(),
    );
    let decided = dispatcher
        .core
        .store
        .write(move |tx| {
            let refusals = journal::get(tx, &id)?.map_or(0, |e| e.rate_limited_count) + 1;
            let at = match held_until {
                Some(until) => until,
                None => {
                    let refused = pacer.refused(&number, &wa_id, limit, refusals, now);
                    if let Some(rate) = refused.cut_to {
                        let name = crate::pipeline::pacing::pace_cursor(&number);
                        crate::store::cursors::set(tx, &name, &format!("{rate:.3}"), now)?;
                    }
                    refused.retry_at
                }
            };
            let Some(wait) = journal::schedule_rate_limited(tx, &id, at, now)? else {
                // A status echo resolved it meanwhile: it was sent after all.
                return Ok(None);
            };
            let give_up_at = wait.since + max_wait;
            if now >= give_up_at {
                let message = format!(
                    "{}, and kept doing so for {}; not sent. Queue it again later.{}",
                    limit.waiting_sentence(),
                    spoken_duration(max_wait),
                    meta.as_deref().map(|m| format!(" {m}")).unwrap_or_default()
                );
                let fields = record_update::failed(&code, &message, now, None);
                journal::mark_failed(tx, &id, &code, now)?;
                outbox::enqueue(tx, &object, id.as_str(), &fields, now)?;
                return Ok(Some(DispatchOutcome::Failed { code }));
            }
            let message = format!(
                "Waiting to send ({code}): {}. sfwa tries again by itself until {} UTC.",
                limit.waiting_sentence(),
                give_up_at.format("%Y-%m-%d %H:%M")
            );
            record_update::enqueue_waiting(tx, (&object, id.as_str()), &message, now)?;
            Ok(Some(DispatchOutcome::RateLimited { at, code }))
        })
        .await?;
    dispatcher.core.flush.batch_ready();
    Ok(decided.unwrap_or(DispatchOutcome::AlreadySending))
}

async fn schedule(
    dispatcher: &Dispatcher,
    record_id: &SfId,
    attempts: u32,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let id = record_id.clone();
    let now = dispatcher.now();
    dispatcher
        .core
        .store
        .write(move |tx| journal::schedule_retry(tx, &id, attempts, at, now))
        .await?;
    Ok(())
}

/// Journal Failed and queue the write-back in one transaction.
pub async fn finish_failed(
    dispatcher: &Dispatcher,
    record_id: &SfId,
    code: &str,
    message: &str,
    now: DateTime<Utc>,
    window_expires_at: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    let fields: Fields = record_update::failed(code, message, now, window_expires_at);
    let (id, code, object, message) = (
        record_id.clone(),
        code.to_string(),
        dispatcher.core.settings.salesforce.message_object.clone(),
        message.to_string(),
    );
    dispatcher
        .core
        .store
        .write(move |tx| {
            journal::mark_failed(tx, &id, &code, now)?;
            outbox::enqueue(tx, &object, id.as_str(), &fields, now)?;
            // A failed re-engagement template fails the messages waiting on it.
            crate::pipeline::reengage::on_failed(tx, &object, &id, (&code, &message), now)
        })
        .await?;
    dispatcher.core.flush.batch_ready();
    Ok(())
}
