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
use crate::whatsapp::{Action, SendError};
use crate::window::{self, Decision};

use super::Pipeline;

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
    /// Will be tried again at this time; `code` says why (e.g. `WA_UNREACHABLE`, `WA_130429`).
    RetryScheduled {
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

/// The code and sentence written when the window is closed.
pub const OUTSIDE_WINDOW: &str = "OUTSIDE_SESSION_WINDOW";
pub const OUTSIDE_WINDOW_MESSAGE: &str = "Not sent: the customer has not written to this WhatsApp number in the last 24 hours, so WhatsApp only allows an approved template. Send a template (Message Type = Template) instead.";
pub const OUTCOME_UNKNOWN: &str = "SEND_OUTCOME_UNKNOWN";

#[tracing::instrument(skip_all, fields(record_id = %record.id))]
pub async fn dispatch_record(
    pipeline: &Pipeline,
    record: MessageRecord,
    attempt: u32,
) -> anyhow::Result<DispatchOutcome> {
    let now = pipeline.now();
    let message = match OutboundMessage::from_record(&record, pipeline.default_region) {
        Ok(message) => message,
        Err(problem) => {
            info!(
                code = problem.code.as_str(),
                field = problem.field,
                "record refused: {}",
                problem.message
            );
            let code = problem.code.as_str().to_string();
            finish_failed(pipeline, &record.id, &code, &problem.message, now, None).await?;
            return Ok(DispatchOutcome::Refused { code });
        }
    };
    if let Some(hold) = pipeline.current_hold() {
        schedule(pipeline, &record.id, attempt, hold.until).await?;
        return Ok(DispatchOutcome::Held);
    }
    let number = pipeline
        .business_number(message.business_number_id.as_deref())
        .to_string();
    pipeline.throttle(&number).await;

    // The window is checked here, right before the send, not when the batch was fetched.
    let now = pipeline.now();
    let (pair_number, wa_id) = (number.clone(), message.to.wa_id().to_string());
    let last_inbound = pipeline
        .store
        .read(move |conn| crate::store::inbound::last_inbound(conn, &pair_number, &wa_id))
        .await?;
    let margin =
        Duration::from_std(pipeline.settings.window.margin).unwrap_or(Duration::minutes(2));
    let window_expires_at =
        match window::decide(message.kind.is_template(), last_inbound, now, margin) {
            Decision::Allowed { window_expires_at } => window_expires_at,
            Decision::Refused { window_expired_at } => {
                info!("outside the customer-service window; not sent");
                finish_failed(
                    pipeline,
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
    let object = pipeline.settings.salesforce.message_object.clone();
    let marked = pipeline
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
    let sent = pipeline.whatsapp.send(&number, &message).await;
    pipeline.metrics.whatsapp_send(started.elapsed());
    match sent {
        Ok(accepted) => {
            if let Some(queued) = queued_at(&record) {
                pipeline.metrics.queued_to_sent(pipeline.now() - queued);
            }
            let (id, wamid) = (record.id.clone(), accepted.wamid.clone());
            let object = pipeline.settings.salesforce.message_object.clone();
            pipeline
                .store
                .write(move |tx| {
                    // A status webhook can overtake this response (Delivered, or a 131047 Failed,
                    // already queued): then only the wamid is news, never the status (guarantee 3).
                    let fields = if journal::mark_sent(tx, &id, &wamid, now)? {
                        record_update::accepted(&wamid, window_expires_at)
                    } else {
                        record_update::accepted_after_status(&wamid, window_expires_at)
                    };
                    outbox::enqueue(tx, &object, &id, &fields, now)
                })
                .await?;
            pipeline.outbox_ready.notify_one();
            Ok(DispatchOutcome::Sent {
                wamid: accepted.wamid,
            })
        }
        Err(SendError::Meta(error)) => {
            let code = if error.is_window_closed() {
                OUTSIDE_WINDOW.to_string()
            } else {
                error.error_code()
            };
            match error.action() {
                Action::Fail => {
                    warn!(code = %code, "WhatsApp refused the message: {}", error.message);
                    let message = if error.is_window_closed() {
                        OUTSIDE_WINDOW_MESSAGE.to_string()
                    } else {
                        error.rep_message()
                    };
                    finish_failed(
                        pipeline,
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
                    pipeline.hold_until(until, error.rep_message());
                    schedule(pipeline, &record.id, attempt, until).await?;
                    Ok(DispatchOutcome::Held)
                }
                Action::Retry => {
                    retry_or_fail(
                        pipeline,
                        &record.id,
                        attempt,
                        None,
                        &code,
                        &error.rep_message(),
                    )
                    .await
                }
                Action::RetryLater(wait) => {
                    retry_or_fail(
                        pipeline,
                        &record.id,
                        attempt,
                        Some(wait),
                        &code,
                        &error.rep_message(),
                    )
                    .await
                }
            }
        }
        Err(SendError::NotSent(reason)) => {
            warn!("WhatsApp unreachable, nothing was sent: {reason}");
            retry_or_fail(
                pipeline,
                &record.id,
                attempt,
                None,
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
pub fn backoff(pipeline: &Pipeline, attempt: u32) -> Duration {
    let settings = &pipeline.settings.dispatch;
    let base = settings.initial_backoff.as_secs_f64()
        * 2f64.powi(attempt.saturating_sub(1).min(20) as i32);
    let capped = base.min(settings.max_backoff.as_secs_f64());
    let jittered = capped * rand::thread_rng().gen_range(0.8..1.2);
    Duration::milliseconds((jittered * 1000.0) as i64)
}

async fn retry_or_fail(
    pipeline: &Pipeline,
    record_id: &str,
    attempt: u32,
    at_least: Option<std::time::Duration>,
    code: &str,
    message: &str,
) -> anyhow::Result<DispatchOutcome> {
    let now = pipeline.now();
    let next_attempt = attempt + 1;
    if next_attempt >= pipeline.settings.dispatch.max_attempts {
        let message = format!("{message} (gave up after {next_attempt} attempts)");
        finish_failed(pipeline, record_id, code, &message, now, None).await?;
        return Ok(DispatchOutcome::Failed {
            code: code.to_string(),
        });
    }
    let mut wait = backoff(pipeline, next_attempt);
    if let Some(at_least) = at_least.and_then(|d| Duration::from_std(d).ok()) {
        wait = wait.max(at_least);
    }
    let at = now + wait;
    schedule(pipeline, record_id, next_attempt, at).await?;
    Ok(DispatchOutcome::RetryScheduled {
        at,
        code: code.to_string(),
    })
}

async fn schedule(
    pipeline: &Pipeline,
    record_id: &str,
    attempts: u32,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let id = record_id.to_string();
    let now = pipeline.now();
    pipeline
        .store
        .write(move |tx| journal::schedule_retry(tx, &id, attempts, at, now))
        .await?;
    Ok(())
}

/// Journal Failed and queue the write-back in one transaction.
pub async fn finish_failed(
    pipeline: &Pipeline,
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
        pipeline.settings.salesforce.message_object.clone(),
    );
    pipeline
        .store
        .write(move |tx| {
            journal::mark_failed(tx, &id, &code, now)?;
            outbox::enqueue(tx, &object, &id, &fields, now)
        })
        .await?;
    pipeline.outbox_ready.notify_one();
    Ok(())
}
