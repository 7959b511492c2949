//! The webhook receiver (axum): Meta's verification handshake, signed status and message POSTs,
//! `/healthz` (alive: always "ok" while serving), and [`crate::observe::routes`]: `/metrics`,
//! `/readyz`.
//!
//! A POST is checked on its raw bytes (401 and no side effects when the signature is wrong or
//! missing), parsed, and applied in ONE SQLite transaction — dedupe keys, journal statuses (only
//! forward), write-backs, the inbound mirror and the inbound record for Salesforce (an upsert on
//! the wamid, [`inbound_records`]) — before the 200 goes out. Meta retries anything but
//! 200 for days, so a crash before the commit loses nothing (guarantee 2).
//!
//! One bad event never costs the others: events the parser refused (and any event whose apply
//! step fails unexpectedly — each runs in its own savepoint, a panic caught and rolled back) are
//! dead-lettered in [`webhook_rejects`] in the same transaction, counted in
//! `sfwa_webhook_events_rejected_total{reason}` and logged in one bounded WARN line each, while
//! the rest of the POST applies and is answered 200. Nothing echoed from the payload into an
//! answer or a log line is longer than [`payload::ECHO_CHARS`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tracing::{info, warn};

use crate::domain::status::MessageStatus;
use crate::observe::metrics::WebhookResult;
use crate::pipeline::dispatch::{OUTSIDE_WINDOW, OUTSIDE_WINDOW_MESSAGE};
use crate::pipeline::inbound_records::{self, WAMID_FIELD};
use crate::pipeline::record_update;
use crate::pipeline::Pipeline;
use crate::store::{dedupe, inbound, journal, outbox, webhook_rejects, StoreError};
use crate::webhook::{
    self as payload, echo, verify_signature, ParsedWebhook, RejectReason, StatusUpdate,
    WebhookEvent,
};

/// What one accepted POST changed (for logs and tests).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub statuses: usize,
    pub duplicates: usize,
    pub inbound: usize,
    /// Events refused (by the parser, or while being applied) and stored in [`webhook_rejects`].
    pub rejected: Vec<Rejected>,
}

/// One refused event of an applied POST.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejected {
    pub reason: RejectReason,
    /// Bounded: where in the POST and what was wrong.
    pub detail: String,
}

/// At most this many "part ignored" lines are logged per POST (then one line with the rest's count).
const SKIPPED_LINES: usize = 10;
/// A reason or detail line is built from fixed words and at most two values cut to
/// [`payload::ECHO_CHARS`]; this cap only makes the bound independent of how it was built.
const LINE_CHARS: usize = 600;

pub fn router(pipeline: Pipeline) -> Router {
    let path = pipeline.settings.webhook.path.clone();
    let limit = pipeline.settings.webhook.max_body_bytes;
    Router::new()
        .route(&path, get(verify).post(receive))
        .route("/healthz", get(|| async { "ok" }))
        .merge(crate::observe::routes::routes())
        .layer(DefaultBodyLimit::max(limit))
        .with_state(Arc::new(pipeline))
}

#[derive(Deserialize)]
struct Verification {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` → the challenge, or 403.
async fn verify(
    State(pipeline): State<Arc<Pipeline>>,
    Query(query): Query<Verification>,
) -> Response {
    let expected = pipeline.settings.whatsapp.verify_token.expose();
    let token_ok = query
        .verify_token
        .as_deref()
        .is_some_and(|t| subtle::ConstantTimeEq::ct_eq(t.as_bytes(), expected.as_bytes()).into());
    match (query.mode.as_deref(), token_ok, query.challenge) {
        (Some("subscribe"), true, Some(challenge)) => (StatusCode::OK, challenge).into_response(),
        _ => {
            warn!("webhook verification refused: wrong hub.verify_token or hub.mode");
            StatusCode::FORBIDDEN.into_response()
        }
    }
}

async fn receive(
    State(pipeline): State<Arc<Pipeline>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if !verify_signature(
        pipeline.settings.whatsapp.app_secret.expose(),
        &body,
        signature,
    ) {
        warn!(
            bytes = body.len(),
            "webhook refused: missing or wrong X-Hub-Signature-256 (check whatsapp.app_secret)"
        );
        pipeline.metrics.webhook(WebhookResult::Unauthorized);
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let parsed = match payload::parse_received(&body, pipeline.now()) {
        Ok(parsed) => parsed,
        Err(error) => {
            // Already bounded by the parser; cut again so no future message can echo unbounded.
            let error = echo(&error.to_string());
            warn!(%error, "webhook refused: not a WhatsApp Business Account envelope");
            pipeline.metrics.webhook(WebhookResult::BadRequest);
            return (StatusCode::BAD_REQUEST, error).into_response();
        }
    };
    for reason in parsed.skipped.iter().take(SKIPPED_LINES) {
        info!(
            "webhook part ignored: {}",
            payload::fit_salesforce(reason, LINE_CHARS)
        );
    }
    if parsed.skipped.len() > SKIPPED_LINES {
        info!(
            "webhook parts ignored: {} more",
            parsed.skipped.len() - SKIPPED_LINES
        );
    }
    match apply(&pipeline, parsed).await {
        Ok(applied) => {
            for rejected in &applied.rejected {
                warn!(
                    reason = rejected.reason.label(),
                    detail = %payload::fit_salesforce(&rejected.detail, LINE_CHARS),
                    "webhook event refused and dead-lettered (store table webhook_rejects); the rest of the POST applies"
                );
                pipeline
                    .metrics
                    .webhook_event_rejected(rejected.reason.label());
            }
            if applied.statuses > 0 || applied.inbound > 0 {
                pipeline.outbox_ready.notify_one();
                pipeline.metrics.webhook(WebhookResult::Accepted);
            } else if applied.duplicates > 0 {
                pipeline.metrics.webhook(WebhookResult::Duplicate);
            } else {
                // Signed and well-formed, with nothing sfwa acts on (e.g. only skipped parts).
                pipeline.metrics.webhook(WebhookResult::Accepted);
            }
            StatusCode::OK.into_response()
        }
        Err(error) => {
            // Not durable, so not acknowledged: Meta will deliver it again.
            warn!(%error, "webhook not stored; answering 500 so Meta retries");
            pipeline.metrics.webhook(WebhookResult::Error);
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// What applying one event did.
enum EventApplied {
    Status,
    Inbound,
    Duplicate,
}

/// Applies a parsed POST in one transaction: its refused events into [`webhook_rejects`], then
/// each event in its own savepoint, so an event whose apply step fails unexpectedly (a bug; it
/// must not happen, and the property tests look for it) is rolled back alone and dead-lettered
/// as [`RejectReason::Internal`] instead of costing the whole POST a 500 on every redelivery.
/// A store error still fails the whole POST (not durable → not acknowledged → Meta retries).
pub async fn apply(pipeline: &Pipeline, parsed: ParsedWebhook) -> Result<Applied, StoreError> {
    let now = pipeline.now();
    let object = pipeline.settings.salesforce.message_object.clone();
    let ParsedWebhook {
        events,
        sources,
        rejected,
        ..
    } = parsed;
    pipeline
        .store
        .write(move |tx| {
            let mut applied = Applied::default();
            for reject in rejected {
                dead_letter(tx, reject.reason, reject.detail, &reject.event, now, &mut applied)?;
            }
            for (i, event) in events.iter().enumerate() {
                tx.execute_batch("SAVEPOINT webhook_event")?;
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    apply_event(tx, &object, event, now)
                }));
                match outcome {
                    Ok(Ok(done)) => {
                        tx.execute_batch("RELEASE webhook_event")?;
                        match done {
                            EventApplied::Status => applied.statuses += 1,
                            EventApplied::Inbound => applied.inbound += 1,
                            EventApplied::Duplicate => applied.duplicates += 1,
                        }
                    }
                    Ok(Err(error)) => return Err(error),
                    Err(panic) => {
                        tx.execute_batch("ROLLBACK TO webhook_event; RELEASE webhook_event")?;
                        let message = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "a panic".to_string());
                        tracing::error!(panic = %echo(&message), key = %echo(&event.dedupe_key()), "applying a webhook event failed; it is dead-lettered and the rest of the POST applies");
                        let source = sources.get(i).cloned().unwrap_or_else(|| {
                            serde_json::Value::String(format!("{event:?}"))
                        });
                        dead_letter(
                            tx,
                            RejectReason::Internal,
                            format!("applying {} failed: {}", echo(&event.dedupe_key()), echo(&message)),
                            &source,
                            now,
                            &mut applied,
                        )?;
                    }
                }
            }
            Ok(applied)
        })
        .await
}

fn dead_letter(
    tx: &rusqlite::Transaction,
    reason: RejectReason,
    detail: String,
    event: &serde_json::Value,
    now: DateTime<Utc>,
    applied: &mut Applied,
) -> Result<(), StoreError> {
    webhook_rejects::record(tx, reason.label(), &detail, &event.to_string(), now)?;
    applied.rejected.push(Rejected { reason, detail });
    Ok(())
}

fn apply_event(
    tx: &rusqlite::Transaction,
    object: &str,
    event: &WebhookEvent,
    now: DateTime<Utc>,
) -> Result<EventApplied, StoreError> {
    if !dedupe::first_seen(tx, &event.dedupe_key(), now)? {
        return Ok(EventApplied::Duplicate);
    }
    match event {
        WebhookEvent::Status(update) => {
            apply_status(tx, object, update, now)?;
            Ok(EventApplied::Status)
        }
        WebhookEvent::Inbound(message) => {
            let mut fields = inbound_records::inbound_record(message);
            if message.opens_window() {
                inbound::record_inbound(
                    tx,
                    &message.business_number_id,
                    &message.from,
                    message.timestamp,
                )?;
            } else {
                // A reaction leaves the window as it was: say when that one closes
                // (or that it is closed), so the record never suggests it reopened.
                let last = inbound::last_inbound(tx, &message.business_number_id, &message.from)?;
                fields.extend(inbound_records::window_unchanged(last, message.timestamp));
            }
            outbox::enqueue_upsert(tx, object, WAMID_FIELD, &message.wamid, &fields, now)?;
            Ok(EventApplied::Inbound)
        }
    }
}

fn apply_status(
    tx: &rusqlite::Transaction,
    object: &str,
    update: &StatusUpdate,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let echo = update.record_id.as_ref().map(|id| id.as_str().to_string());
    // Found only through the echo: the send's response never told us the wamid (timeout, crash),
    // so the record learns it from here.
    let wamid_from_echo = journal::find_by_wamid(tx, &update.wamid)?.is_none();
    let result = journal::apply_status(
        tx,
        &update.wamid,
        echo.as_deref(),
        update.status,
        update.timestamp,
        now,
    )?;
    let (record_id, advanced) = match result {
        journal::StatusApplied::Applied { record_id, .. } => (record_id, true),
        journal::StatusApplied::Ignored { record_id, .. } => (record_id, false),
        journal::StatusApplied::Unknown => match echo {
            // Not in our journal (a store restored from backup, another instance's message):
            // record the time Meta reported, never a status that might move the record back.
            Some(record_id) if same_object_as_journal(tx, &record_id)? => {
                info!(wamid = %update.wamid, %record_id, "status for a message missing from the journal; only its time is recorded");
                (record_id, false)
            }
            Some(record_id) => {
                // An Id of another object (another tool on the number puts its own Ids in the
                // callback): writing to it would only earn a refusal from Salesforce.
                info!(wamid = %update.wamid, %record_id, "status echoes an Id that is not one of our message records; ignored");
                return Ok(());
            }
            None => {
                info!(wamid = %update.wamid, "status for a message sfwa did not send; ignored");
                return Ok(());
            }
        },
    };
    let mut fields = record_update::status_reported(update.status, update.timestamp, advanced);
    let wamid_learned = wamid_from_echo
        && journal::get(tx, &record_id)?.is_some_and(|e| e.wamid.as_deref() == Some(&update.wamid));
    if wamid_learned {
        fields.extend(record_update::wamid_known(&update.wamid));
    }
    if update.status == MessageStatus::Failed {
        if !advanced {
            // A failure after delivery (or a repeat) changes nothing on the record.
            return Ok(());
        }
        let (code, message) = match update.errors.first() {
            Some(error) if error.code == WINDOW_CLOSED => {
                // Our mirror thought the window open; Meta knows better. Close it for this pair.
                if let Some(entry) = journal::get(tx, &record_id)? {
                    if let (Some(number), Some(wa_id)) = (entry.business_number_id, entry.wa_id) {
                        inbound::close_window(tx, &number, &wa_id, update.timestamp)?;
                    }
                }
                (
                    OUTSIDE_WINDOW.to_string(),
                    OUTSIDE_WINDOW_MESSAGE.to_string(),
                )
            }
            Some(error) => (error.error_code(), error.rep_message()),
            None => (
                "WA_UNKNOWN".to_string(),
                "WhatsApp reported the message as failed without a reason.".to_string(),
            ),
        };
        fields.extend(record_update::failed(
            &code,
            &message,
            update.timestamp,
            None,
        ));
    }
    outbox::enqueue(tx, object, &record_id, &fields, now)
}

/// Whether `record_id` has the key prefix of a record in our journal, i.e. names the same object
/// as the messages sfwa sends (the object's prefix differs per org, so it is learned from there).
/// A range on the primary key, so it stays an index lookup however large the journal grows.
fn same_object_as_journal(tx: &rusqlite::Transaction, record_id: &str) -> Result<bool, StoreError> {
    let prefix = record_id.get(..3).unwrap_or(record_id);
    // Ids are ASCII letters and digits, all below `~`.
    let end = format!("{prefix}~");
    Ok(tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM journal WHERE record_id >= ?1 AND record_id < ?2)",
        )?
        .query_row([prefix, end.as_str()], |row| row.get::<_, bool>(0))?)
}

/// Meta's "re-engagement message" error: the customer-service window was closed.
const WINDOW_CLOSED: i64 = 131047;
