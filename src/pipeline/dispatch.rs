//! The send path, one record at a time:
//! validate → hold? → rate limit → **window check, now** → journal `Sending` → Cloud API → outcome.
//!
//! The journal row is committed *before* the HTTP send and every send carries the record Id as
//! `biz_opaque_callback_data`, so a send whose outcome is unknown is resolved by Meta's status echo
//! (see `store::journal::apply_status`) and only re-sent after the grace period (guarantee 1).

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use tracing::{info, warn};

use crate::domain::message::{MessageRecord, OutboundMessage};
use crate::pipeline::record_update::{self, Fields};
use crate::store::{journal, outbox};
use crate::whatsapp::{Action, RateLimit, SendError, OUTSIDE_WINDOW, OUTSIDE_WINDOW_MESSAGE};
use crate::window::{self, Decision};

use super::Dispatcher;

/// What happened to one record.
#[derive(Debug, PartialEq, Eq)]
pub enum DispatchOutcome {
    Sent {
        wamid: String,
    },
    /// Refused before sending (bad record or closed window): Failed with this code.
    Refused {
        code: String,
    },
    /// Meta refused it for good: Failed with this code.
    Failed {
        code: String,
    },
    /// Will be tried again at this time; `code` says why (e.g. `WA_UNREACHABLE`, `WA_131000`).
    RetryScheduled {
        at: DateTime<Utc>,
        code: String,
    },
    /// Meta asked to slow down (or sfwa knows it would): waits until `at`, not counted as an
    /// attempt; `code` is Meta's (`WA_130429`, `WA_131056`, …).
    RateLimited {
        at: DateTime<Utc>,
        code: String,
    },
    /// Another worker or process had already started sending it (the journal let only one in).
    AlreadySending,
    /// Sending is on hold (auth / account problem); the message waits.
    Held,
    /// Meta may or may not have it; the status echo or the grace period will tell.
    OutcomeUnknown,
}

pub const OUTCOME_UNKNOWN: &str = "SEND_OUTCOME_UNKNOWN";

#[tracing::instrument(skip_all, fields(record_id = %record.id))]
pub async fn dispatch_record(
    dispatcher: &Dispatcher,
    record: MessageRecord,
    attempt: u32,
) -> anyhow::Result<DispatchOutcome> {
    let now = dispatcher.now();
    let message = match OutboundMessage::from_record(&record, dispatcher.core.default_region) {
        Ok(message) => message,
        Err(problem) => {
            info!(
                code = problem.code.as_str(),
                field = problem.field,
                "record refused: {}",
                problem.message
            );
            let code = problem.code.as_str().to_string();
            finish_failed(dispatcher, &record.id, &code, &problem.message, now, None).await?;
            return Ok(DispatchOutcome::Refused { code });
        }
    };
    if let Some(hold) = dispatcher.current_hold() {
        schedule(dispatcher, &record.id, attempt, hold.until).await?;
        return Ok(DispatchOutcome::Held);
    }
    let number = dispatcher
        .business_number(message.business_number_id.as_deref())
        .to_string();
    let wa_id = message.to.wa_id().to_string();
    if let Some(held) = dispatcher.pacer.held_back(&number, &wa_id, now) {
        // Meta told us this number (or this customer) must wait: no call that would only be
        // refused again.
        let waiting = Waiting {
            number: &number,
            wa_id: &wa_id,
            limit: held.limit,
            code: held_back_code(held.limit),
            meta: None,
            held_until: Some(held.until),
        };
        return rate_limited(dispatcher, &record.id, waiting).await;
    }
    dispatcher.throttle(&number).await;

    // The window is checked here, right before the send, not when the batch was fetched.
    let now = dispatcher.now();
    let (pair_number, pair_wa_id) = (number.clone(), wa_id.clone());
    let last_inbound = dispatcher
        .core
        .store
        .read(move |conn| crate::store::inbound::last_inbound(conn, &pair_number, &pair_wa_id))
        .await?;
    let margin =
        Duration::from_std(dispatcher.core.settings.window.margin).unwrap_or(Duration::minutes(2));
    let window_expires_at =
        match window::decide(message.kind.is_template(), last_inbound, now, margin) {
            Decision::Allowed { window_expires_at } => window_expires_at,
            Decision::Refused { window_expired_at } => {
                info!("outside the customer-service window; not sent");
                finish_failed(
                    dispatcher,
                    &record.id,
                    OUTSIDE_WINDOW,
                    OUTSIDE_WINDOW_MESSAGE,
                    now,
                    window_expired_at,
                )
                .await?;
                return Ok(DispatchOutcome::Refused {
                    code: OUTSIDE_WINDOW.into(),
                });
            }
        };

    let (id, sending_number, to) = (
        record.id.clone(),
        number.clone(),
        message.to.wa_id().to_string(),
    );
    let object = dispatcher.core.settings.salesforce.message_object.clone();
    let marked = dispatcher
        .core
        .store
        .write(move |tx| {
            journal::mark_sending(tx, &id, &sending_number, &to, now)?;
            outbox::enqueue(tx, &object, &id, &record_update::sending(), now)
        })
        .await;
    match marked {
        Ok(()) => {}
        Err(crate::store::StoreError::NotClaimed { state, .. }) => {
            // The reconcile poll, the stream and `sfwa sync` can all see one record; the
            // journal's claim → sending step admits exactly one of them.
            info!(%state, "already being sent elsewhere; skipped");
            return Ok(DispatchOutcome::AlreadySending);
        }
        Err(error) => return Err(error.into()),
    }

    let started = std::time::Instant::now();
    let sent = dispatcher.whatsapp.send(&number, &message).await;
    dispatcher.core.reporter.whatsapp_send(started.elapsed());
    match sent {
        Ok(accepted) => {
            dispatcher.pacer.accepted(&number);
            if let Some(queued) = queued_at(&record) {
                dispatcher
                    .core
                    .reporter
                    .queued_to_sent(dispatcher.now() - queued);
            }
            let (id, wamid) = (record.id.clone(), accepted.wamid.clone());
            let object = dispatcher.core.settings.salesforce.message_object.clone();
            dispatcher
                .core
                .store
                .write(move |tx| {
                    // A status webhook can overtake this response (Delivered, or a 131047 Failed,
                    // already queued): then only the wamid is news, never the status (guarantee 3).
                    let fields = if journal::mark_sent(tx, &id, &wamid, now)? {
                        record_update::accepted(&wamid, window_expires_at)
                    } else {
                        // Errors a rate limit left on the record go, unless a `failed` webhook
                        // wrote them just now.
                        let failed = journal::get(tx, &id)?
                            .is_some_and(|e| e.state == journal::JournalState::Failed);
                        record_update::accepted_after_status(&wamid, window_expires_at, !failed)
                    };
                    outbox::enqueue(tx, &object, &id, &fields, now)
                })
                .await?;
            dispatcher.core.flush.batch_ready();
            Ok(DispatchOutcome::Sent {
                wamid: accepted.wamid,
            })
        }
        Err(SendError::Meta(error)) => {
            // What a code means on the record (131047 reads as a window sfwa itself found
            // closed) is said by `whatsapp::error` alone.
            let code = error.error_code();
            match error.action() {
                Action::Fail => {
                    warn!(code = %code, "WhatsApp refused the message: {}", error.message);
                    let message = error.failure_message();
                    finish_failed(
                        dispatcher,
                        &record.id,
                        &code,
                        &message,
                        now,
                        window_expires_at,
                    )
                    .await?;
                    Ok(DispatchOutcome::Failed { code })
                }
                Action::HoldAll => {
                    let until = now + Duration::seconds(60);
                    warn!(code = %code, "WhatsApp refuses every send ({}); holding all sends until {until}", error.message);
                    dispatcher.hold_until(until, error.rep_message());
                    schedule(dispatcher, &record.id, attempt, until).await?;
                    Ok(DispatchOutcome::Held)
                }
                Action::Retry => {
                    retry_or_fail(dispatcher, &record.id, attempt, &code, &error.rep_message())
                        .await
                }
                Action::SlowDown(limit) => {
                    let meta = error.rep_message();
                    let waiting = Waiting {
                        number: &number,
                        wa_id: &wa_id,
                        limit,
                        code,
                        meta: Some(meta),
                        held_until: None,
                    };
                    rate_limited(dispatcher, &record.id, waiting).await
                }
            }
        }
        Err(SendError::NotSent(reason)) => {
            warn!("WhatsApp unreachable, nothing was sent: {reason}");
            retry_or_fail(
                dispatcher,
                &record.id,
                attempt,
                "WA_UNREACHABLE",
                &format!("WhatsApp could not be reached: {reason}"),
            )
            .await
        }
        Err(SendError::OutcomeUnknown(reason) | SendError::BadResponse(reason)) => {
            // Left in Sending: Meta's status echo (biz_opaque_callback_data) or the grace period decides.
            warn!("send outcome unknown ({reason}); waiting for WhatsApp's status echo");
            Ok(DispatchOutcome::OutcomeUnknown)
        }
    }
}

/// When the record became due: its creation, or its `Scheduled_At__c` if that is later.
fn queued_at(record: &MessageRecord) -> Option<DateTime<Utc>> {
    let parse = |v: &Option<String>| {
        v.as_deref()
            .and_then(crate::domain::message::parse_salesforce_datetime)
    };
    match (parse(&record.created_date), parse(&record.scheduled_at)) {
        (Some(created), Some(scheduled)) => Some(created.max(scheduled)),
        (created, scheduled) => created.or(scheduled),
    }
}

/// Back-off for attempt `n` (1-based): initial × 2^(n-1), capped, ±20 % jitter so a burst of
/// failures does not retry in lockstep.
pub fn backoff(dispatcher: &Dispatcher, attempt: u32) -> Duration {
    let settings = &dispatcher.core.settings.dispatch;
    let base = settings.initial_backoff.as_secs_f64()
        * 2f64.powi(attempt.saturating_sub(1).min(20) as i32);
    let capped = base.min(settings.max_backoff.as_secs_f64());
    let jittered = capped * rand::thread_rng().gen_range(0.8..1.2);
    Duration::milliseconds((jittered * 1000.0) as i64)
}

/// A send that must wait for one of Meta's rate limits.
struct Waiting<'a> {
    number: &'a str,
    wa_id: &'a str,
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

/// The code a send held back for `limit` would have met.
fn held_back_code(limit: RateLimit) -> String {
    match limit {
        RateLimit::Throughput => "WA_130429",
        RateLimit::Pair => "WA_131056",
        RateLimit::Spam => "WA_131048",
        RateLimit::App => "WA_80007",
    }
    .to_string()
}

/// Rate-limit refusals are Meta asking for less speed, not a verdict on the message: the record
/// waits — not counted towards `dispatch.max_attempts`, Status back to Queued in Salesforce with
/// Error_Message__c saying why — until `dispatch.max_rate_limited_wait` after its first refusal,
/// and only then fails.
async fn rate_limited(
    dispatcher: &Dispatcher,
    record_id: &str,
    waiting: Waiting<'_>,
) -> anyhow::Result<DispatchOutcome> {
    let now = dispatcher.now();
    let max_wait = Duration::from_std(dispatcher.core.settings.dispatch.max_rate_limited_wait)
        .unwrap_or(Duration::hours(24));
    let pacer = dispatcher.pacer.clone();
    let object = dispatcher.core.settings.salesforce.message_object.clone();
    let Waiting {
        number,
        wa_id,
        limit,
        code,
        meta,
        held_until,
    } = waiting;
    let (id, number, wa_id) = (record_id.to_string(), number.to_string(), wa_id.to_string());
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
                        let name = super::pacing::pace_cursor(&number);
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
                outbox::enqueue(tx, &object, &id, &fields, now)?;
                return Ok(Some(DispatchOutcome::Failed { code }));
            }
            let message = format!(
                "Waiting to send ({code}): {}. sfwa tries again by itself until {} UTC.",
                limit.waiting_sentence(),
                give_up_at.format("%Y-%m-%d %H:%M")
            );
            outbox::enqueue(tx, &object, &id, &record_update::waiting(&message), now)?;
            Ok(Some(DispatchOutcome::RateLimited { at, code }))
        })
        .await?;
    dispatcher.core.flush.batch_ready();
    Ok(decided.unwrap_or(DispatchOutcome::AlreadySending))
}

async fn retry_or_fail(
    dispatcher: &Dispatcher,
    record_id: &str,
    attempt: u32,
    code: &str,
    message: &str,
) -> anyhow::Result<DispatchOutcome> {
    let now = dispatcher.now();
    let next_attempt = attempt + 1;
    if next_attempt >= dispatcher.core.settings.dispatch.max_attempts {
        let message = format!("{message} (gave up after {next_attempt} attempts)");
        finish_failed(dispatcher, record_id, code, &message, now, None).await?;
        return Ok(DispatchOutcome::Failed {
            code: code.to_string(),
        });
    }
    let at = now + backoff(dispatcher, next_attempt);
    schedule(dispatcher, record_id, next_attempt, at).await?;
    Ok(DispatchOutcome::RetryScheduled {
        at,
        code: code.to_string(),
    })
}

async fn schedule(
    dispatcher: &Dispatcher,
    record_id: &str,
    attempts: u32,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let id = record_id.to_string();
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
    record_id: &str,
    code: &str,
    message: &str,
    now: DateTime<Utc>,
    window_expires_at: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    let fields: Fields = record_update::failed(code, message, now, window_expires_at);
    let (id, code, object) = (
        record_id.to_string(),
        code.to_string(),
        dispatcher.core.settings.salesforce.message_object.clone(),
    );
    dispatcher
        .core
        .store
        .write(move |tx| {
            journal::mark_failed(tx, &id, &code, now)?;
            outbox::enqueue(tx, &object, &id, &fields, now)
        })
        .await?;
    dispatcher.core.flush.batch_ready();
    Ok(())
}
