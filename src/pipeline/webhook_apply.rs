//! Applying what a webhook POST said: the step between the receiver's parse and its 200.
//!
//! `webhook::server` verifies the signature, parses the body into
//! [`crate::domain::webhook_event`] events and calls [`apply`]; everything below happens in ONE
//! SQLite transaction — dedupe keys, journal statuses (only forward), write-backs, the inbound
//! mirror and the inbound record for Salesforce (an upsert on the wamid, [`inbound_records`]) —
//! and only after it commits does the receiver answer 200. Meta retries anything but 200 for days,
//! so a crash before the commit loses nothing (guarantee 2).
//!
//! One bad event never costs the others: events the parser refused (and any event whose apply
//! step fails unexpectedly — each runs in its own savepoint, a panic caught and rolled back) are
//! dead-lettered in [`webhook_rejects`] in the same transaction and reported in [`Applied`], for
//! the receiver to count and log, while the rest of the POST applies.
//!
//! What a failed status's Meta code means on the record (and that 131047 closes the window in
//! the mirror) is asked of `whatsapp::error`, the one place that says it.

use chrono::{DateTime, Utc};
use tracing::info;

use crate::domain::phone::E164;
use crate::domain::sf_id::SfId;
use crate::domain::status::MessageStatus;
use crate::domain::webhook_event::{
    echo, EventSource, ParsedWebhook, RejectReason, SkipReason, StatusUpdate, WebhookEvent,
};
use crate::pipeline::consent;
use crate::pipeline::inbound_records::{self, WAMID_FIELD};
use crate::pipeline::record_update;
use crate::pipeline::Core;
use crate::store::db::{panic_message, Savepoint};
use crate::store::{dedupe, identity, inbound, journal, outbox, webhook_rejects, StoreError};

/// Each event's savepoint inside the POST's write.
const EVENT: Savepoint = Savepoint {
    begin: "SAVEPOINT webhook_event",
    rollback_to: "ROLLBACK TO webhook_event",
    release: "RELEASE webhook_event",
};

/// What one applied POST changed (for logs, metrics and tests).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub statuses: usize,
    pub duplicates: usize,
    pub inbound: usize,
    /// Marketing stops / resumes stored (`user_preferences`).
    pub preferences: usize,
    /// Events acknowledged that knowingly changed nothing (statuses of messages this instance
    /// did not send), by reason: the receiver counts them.
    pub ignored: Vec<SkipReason>,
    /// Events refused (by the parser, or while being applied) and stored in [`webhook_rejects`].
    pub rejected: Vec<Rejected>,
    /// Messages delivered with Meta's `pricing`, each once (the receiver counts them by number,
    /// category and type).
    pub priced: Vec<Priced>,
}

/// One message Meta delivered, with what it bills for it: counted once per message, when its
/// first status at or past `delivered` applies (Meta bills delivered messages; its `sent`,
/// `delivered` and `read` repeat the same `pricing`, and `delivered` may be skipped).
#[derive(Debug, PartialEq, Eq)]
pub struct Priced {
    /// The business number it was sent from.
    pub number: String,
    /// [`crate::domain::webhook_event::Pricing::category_label`]: bounded.
    pub category: &'static str,
    /// [`crate::domain::webhook_event::Pricing::type_label`]: bounded.
    pub pricing_type: &'static str,
}

impl Applied {
    /// Whether the POST queued anything for Salesforce (a status or an inbound record).
    pub fn queued_any(&self) -> bool {
        self.statuses > 0 || self.inbound > 0
    }
}

/// One refused event of an applied POST.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejected {
    pub reason: RejectReason,
    /// Bounded: where in the POST and what was wrong.
    pub detail: String,
}

/// What applying one event did.
enum EventApplied {
    Status(Option<Priced>),
    Inbound,
    Duplicate,
    /// A marketing stop / resume (`user_preferences`), stored.
    Preference,
    /// Acknowledged, changed nothing, counted by reason (a status that is not ours).
    Ignored(SkipReason),
}

/// Applies a parsed POST in one transaction (see [`apply_in`]) at the pipeline's time, then wakes
/// the write-back if anything was queued for Salesforce. A store error fails the whole POST (not
/// durable → not acknowledged → Meta retries).
pub async fn apply(core: &Core, parsed: ParsedWebhook) -> Result<Applied, StoreError> {
    let now = core.now();
    let object = core.settings.salesforce.message_object.clone();
    let keywords = consent::keyword_changes(&core.settings.consent, &parsed.events);
    // New customers' wa_ids parsed here, so the store's writer finds them in the memo instead of
    // waiting on the phone thread inside the write every other write waits for.
    E164::parse_ahead(parsed.events.iter().filter_map(|event| match event {
        WebhookEvent::Inbound(message) => message.from.wa_id(),
        _ => None,
    }))
    .await;
    let applied = core
        .store
        .write(move |tx| {
            let applied = apply_in(tx, &object, parsed, now)?;
            consent::apply_keywords(tx, &keywords)?;
            Ok(applied)
        })
        .await?;
    core.reporter.webhook_applied(now, applied.statuses);
    for priced in &applied.priced {
        core.reporter
            .message_priced(&priced.number, priced.category, priced.pricing_type);
    }
    if applied.queued_any() {
        core.flush.batch_ready();
    }
    Ok(applied)
}

/// Applies a parsed POST inside `tx`: its refused events into [`webhook_rejects`], then each
/// event in its own savepoint, so an event whose apply step fails unexpectedly (a bug; it must
/// not happen, and the property tests look for it) is rolled back alone and dead-lettered as
/// [`RejectReason::Internal`] instead of costing the whole POST a 500 on every redelivery.
/// `object` is the message object's API name (write-backs and inbound upserts go to it).
pub fn apply_in(
    tx: &rusqlite::Transaction,
    object: &str,
    parsed: ParsedWebhook,
    now: DateTime<Utc>,
) -> Result<Applied, StoreError> {
    let ParsedWebhook {
        events,
        sources,
        rejected,
        templates,
        ..
    } = parsed;
    let mut applied = Applied::default();
    crate::pipeline::catalog_sync::apply_updates(tx, &templates, now)?;
    for reject in rejected {
        dead_letter(
            tx,
            reject.reason,
            reject.detail,
            &reject.event,
            now,
            &mut applied,
        )?;
    }
    for (i, event) in events.iter().enumerate() {
        EVENT.begin(tx)?;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            apply_event(tx, object, event, now)
        }));
        match outcome {
            Ok(Ok(done)) => {
                EVENT.end(tx, true)?;
                match done {
                    EventApplied::Status(priced) => {
                        applied.statuses += 1;
                        applied.priced.extend(priced);
                    }
                    EventApplied::Inbound => applied.inbound += 1,
                    EventApplied::Duplicate => applied.duplicates += 1,
                    EventApplied::Preference => applied.preferences += 1,
                    EventApplied::Ignored(reason) => applied.ignored.push(reason),
                }
            }
            Ok(Err(error)) => return Err(error),
            Err(panic) => {
                EVENT.end(tx, false)?;
                let message = panic_message(panic.as_ref());
                tracing::error!(panic = %echo(&message), key = %echo(&event.dedupe_key()), "applying a webhook event failed; it is dead-lettered and the rest of the POST applies");
                let source = sources
                    .get(i)
                    .map(EventSource::to_json)
                    .unwrap_or_else(|| serde_json::Value::String(format!("{event:?}")));
                dead_letter(
                    tx,
                    RejectReason::Internal,
                    format!(
                        "applying {} failed: {}",
                        echo(&event.dedupe_key()),
                        echo(&message)
                    ),
                    &source,
                    now,
                    &mut applied,
                )?;
            }
        }
    }
    Ok(applied)
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
    match event {
        // A status is deduplicated by the journal, on its message's row (`journal::apply_status`);
        // the others by their key in `webhook_seen`.
        WebhookEvent::Status(update) => apply_status(tx, object, update, now),
        _ if !dedupe::first_seen(tx, &event.dedupe_key(), now)? => Ok(EventApplied::Duplicate),
        WebhookEvent::Preference(update) => {
            consent::apply_preference(tx, update)?;
            Ok(EventApplied::Preference)
        }
        WebhookEvent::Inbound(message) => {
            let mut fields = inbound_records::inbound_record(message);
            let person = crate::pipeline::identity::apply_inbound(tx, message)?;
            if message.opens_window() {
                match person {
                    // The person `from` names, as the identity step just left them.
                    Some(person) => identity::touch_window(tx, person, message.timestamp)?,
                    None => inbound::record_inbound(
                        tx,
                        &message.business_number_id,
                        &message.from,
                        message.timestamp,
                    )?,
                }
                // The reply opens the window: messages waiting for it go now.
                crate::pipeline::reengage::on_reply(
                    tx,
                    message.business_number_id.as_str(),
                    message.from.as_str(),
                    now,
                )?;
            } else if message.group_id.is_none() {
                // A group message says nothing of the 1:1 window (so its record names none);
                // a reaction leaves the window as it was: say when that one closes
                // (or that it is closed), so the record never suggests it reopened.
                let last = inbound::last_inbound(tx, &message.business_number_id, &message.from)?;
                fields.extend(inbound_records::window_unchanged(last, message.timestamp));
            }
            outbox::enqueue_upsert(
                tx,
                object,
                WAMID_FIELD,
                message.wamid.as_str(),
                &fields,
                now,
            )?;
            // Its file, if any, for the media worker (durable with the record; see `media`).
            crate::pipeline::media::enqueue(tx, message, now)?;
            Ok(EventApplied::Inbound)
        }
    }
}

/// Applies a status, once: of one of our messages, [`EventApplied::Status`] with the message to
/// count as priced if this status is its first delivery with Meta's `pricing`; a repeat,
/// [`EventApplied::Duplicate`]; not ours, [`EventApplied::Ignored`] (nothing changed).
fn apply_status(
    tx: &rusqlite::Transaction,
    object: &str,
    update: &StatusUpdate,
    now: DateTime<Utc>,
) -> Result<EventApplied, StoreError> {
    let applied = write_status(tx, object, update, now)?;
    if let EventApplied::Status(_) = applied {
        crate::pipeline::identity::apply_status(tx, update)?;
    }
    Ok(applied)
}

/// The journal and the record's write-back for a status (see [`apply_status`]).
fn write_status(
    tx: &rusqlite::Transaction,
    object: &str,
    update: &StatusUpdate,
    now: DateTime<Utc>,
) -> Result<EventApplied, StoreError> {
    let journal::StatusOutcome {
        applied: result,
        wamid_learned,
    } = journal::apply_status_learning(
        tx,
        &update.wamid,
        update.record_id.as_ref(),
        update.status,
        update.timestamp,
        now,
    )?;
    let (record_id, advanced, priced) = match result {
        journal::StatusApplied::Applied {
            record_id,
            previous,
        } => (record_id, true, first_delivery_priced(update, previous)),
        journal::StatusApplied::Ignored { record_id, .. } => (record_id, false, None),
        // Neither the wamid nor the echoed Id is in our journal: not a message this instance
        // sent. The callback is the sender's own data — another tool on the same number may put
        // any Id-looking text there, of any object, or a message record of another instance —
        // so it is trusted only when the journal knows the record (found above), never written
        // to on its looks (a foreign Id earns the admin a MALFORMED_ID or a write to a record
        // someone else owns).
        journal::StatusApplied::Unknown => return Ok(EventApplied::Ignored(not_ours(tx, update)?)),
        journal::StatusApplied::Repeated => return Ok(EventApplied::Duplicate),
    };
    let mut fields = record_update::status_reported(update.status, update.timestamp, advanced);
    // Found only through the echo: the send's response never told us the wamid (timeout, crash),
    // so the record learns it from here.
    if wamid_learned {
        fields.extend(record_update::wamid_known(update.wamid.as_str()));
    }
    if let Some(pricing) = &update.pricing {
        // The same on every status of the message: written each time (idempotent), so the
        // record has it whichever status arrives first.
        fields.extend(record_update::priced(pricing));
    }
    if update.status == MessageStatus::Failed {
        if !advanced {
            // A failure after delivery changes nothing on the record.
            return Ok(EventApplied::Status(None));
        }
        let failed = failure(tx, &record_id, update)?;
        // A failed re-engagement template fails the messages waiting on it.
        let text = |field: &str| failed.get(field).and_then(|v| v.as_str()).unwrap_or("");
        let reason = (
            text(crate::salesforce::contract::ERROR_CODE),
            text(crate::salesforce::contract::ERROR_MESSAGE),
        );
        crate::pipeline::reengage::on_failed(tx, object, &record_id, reason, now)?;
        fields.extend(failed);
    }
    outbox::enqueue(tx, object, record_id.as_str(), &fields, now)?;
    Ok(EventApplied::Status(priced))
}

/// The message to count as priced: this status carries `pricing` and is the first to move the
/// message to `delivered` or past it (from `previous`, below it).
fn first_delivery_priced(update: &StatusUpdate, previous: journal::JournalState) -> Option<Priced> {
    let pricing = update.pricing.as_ref()?;
    let first = matches!(
        update.status,
        MessageStatus::Delivered | MessageStatus::Read
    ) && previous.as_status().rank() < MessageStatus::Delivered.rank();
    first.then(|| Priced {
        number: update.business_number_id.to_string(),
        category: pricing.category_label(),
        pricing_type: pricing.type_label(),
    })
}

/// Why a status of a message this instance did not send is ignored, logged once per status. The
/// key prefix of the echoed Id tells a message record (the prefix of the Ids the journal holds:
/// they are all claimed from the message object, so no describe call is needed) from another
/// object's; either way nothing is written.
fn not_ours(tx: &rusqlite::Transaction, update: &StatusUpdate) -> Result<SkipReason, StoreError> {
    let wamid = &update.wamid;
    Ok(match &update.record_id {
        Some(record_id) if same_object_as_journal(tx, record_id.as_str())? => {
            info!(%wamid, %record_id, "status echoes a message record this instance did not send (not in its journal); not written");
            SkipReason::UntrustedCallback
        }
        Some(record_id) => {
            info!(%wamid, %record_id, "status echoes an Id that is not one of our message records; not written");
            SkipReason::UntrustedCallback
        }
        None => {
            info!(%wamid, "status for a message sfwa did not send; ignored");
            SkipReason::UnknownMessage
        }
    })
}

/// What a `failed` status writes onto record `record_id`: Meta's code and words as
/// `whatsapp::error` reads them; a closed window (131047) also closes it in the mirror.
fn failure(
    tx: &rusqlite::Transaction,
    record_id: &SfId,
    update: &StatusUpdate,
) -> Result<record_update::Fields, StoreError> {
    let (code, message) = match update.errors.first() {
        Some(error) => {
            if error.is_window_closed() {
                // Our mirror thought the window open; Meta knows better. Close it for this pair.
                // The mirror holds only parsed ids: a pair that does not parse has no window.
                if let Some(entry) = journal::get(tx, record_id)? {
                    let number = entry.business_number_id.and_then(|n| n.parse().ok());
                    let wa_id = entry.wa_id.and_then(|w| w.parse().ok());
                    if let (Some(number), Some(wa_id)) = (number, wa_id) {
                        inbound::close_window(tx, &number, &wa_id, update.timestamp)?;
                    }
                }
            }
            // 131050: the customer stopped marketing messages (`pipeline::consent`).
            consent::on_failed_status(tx, record_id, error.code, update.timestamp)?;
            (error.error_code(), error.failure_message())
        }
        None => (
            "WA_UNKNOWN".to_string(),
            "WhatsApp reported the message as failed without a reason.".to_string(),
        ),
    };
    Ok(record_update::failed(
        &code,
        &message,
        update.timestamp,
        None,
    ))
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

#[cfg(test)]
mod tests {
    //! The apply step driven on a bare SQLite transaction: no HTTP, no daemon, no clock but `now`.

    use chrono::{Duration, TimeZone};
    use rusqlite::Connection;
    use serde_json::json;

    use super::*;
    use crate::domain::ids::{BusinessNumberId, CustomerId};
    use crate::domain::webhook_event::{InboundKind, InboundMessage, RejectedEvent, StatusError};
    use crate::store::db::test_connection;
    use crate::whatsapp::{OUTSIDE_WINDOW, OUTSIDE_WINDOW_MESSAGE};

    const OBJECT: &str = "WhatsApp_Message__c";
    const RECORD: &str = "a005g0000012345AAA";
    const NUMBER: &str = "106540352242922";
    const CUSTOMER: &str = "16505551234";
    const WAMID: &str = "wamid.SENT";

    fn number() -> BusinessNumberId {
        NUMBER.parse().unwrap()
    }

    fn customer() -> CustomerId {
        CUSTOMER.parse().unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn apply_now(conn: &mut Connection, parsed: ParsedWebhook) -> Applied {
        let tx = conn.transaction().expect("transaction");
        let applied = apply_in(&tx, OBJECT, parsed, now()).expect("applied");
        tx.commit().expect("commit");
        applied
    }

    fn events(events: Vec<WebhookEvent>) -> ParsedWebhook {
        ParsedWebhook {
            events,
            ..ParsedWebhook::default()
        }
    }

    fn inbound_text(wamid: &str, at: DateTime<Utc>) -> WebhookEvent {
        WebhookEvent::Inbound(InboundMessage::new(
            wamid.parse().unwrap(),
            number(),
            customer(),
            at,
            InboundKind::Text { body: "Hi".into() },
        ))
    }

    /// A message sfwa sent to CUSTOMER from NUMBER, accepted by Meta as WAMID.
    fn sent_message(conn: &Connection) {
        let at = now() - Duration::minutes(5);
        journal::claim(conn, &RECORD.parse().unwrap(), at).unwrap();
        journal::mark_sending(conn, &RECORD.parse().unwrap(), NUMBER, CUSTOMER, at).unwrap();
        journal::mark_sent(conn, &RECORD.parse().unwrap(), &WAMID.parse().unwrap(), at).unwrap();
    }

    fn failed_with(code: i64) -> WebhookEvent {
        WebhookEvent::Status(StatusUpdate {
            wamid: WAMID.parse().unwrap(),
            status: MessageStatus::Failed,
            timestamp: now() - Duration::minutes(1),
            recipient_id: Some(customer()),
            recipient_user_id: None,
            business_number_id: number(),
            record_id: SfId::parse(RECORD).ok(),
            errors: vec![StatusError {
                code,
                title: "Re-engagement message".into(),
                message: None,
                details: None,
            }],
            pricing: None,
        })
    }

    fn queued_fields(conn: &Connection) -> Vec<serde_json::Map<String, serde_json::Value>> {
        outbox::due(conn, now(), 10)
            .unwrap()
            .into_iter()
            .map(|item| item.fields)
            .collect()
    }

    #[test]
    fn an_inbound_message_is_mirrored_and_queued_once_and_its_redelivery_is_a_duplicate() {
        let mut conn = test_connection();
        let written_at = now() - Duration::minutes(3);

        let first = apply_now(
            &mut conn,
            events(vec![inbound_text("wamid.IN", written_at)]),
        );
        let again = apply_now(
            &mut conn,
            events(vec![inbound_text("wamid.IN", written_at)]),
        );

        assert_eq!((first.inbound, first.duplicates), (1, 0));
        assert!(first.queued_any());
        assert_eq!((again.inbound, again.duplicates), (0, 1));
        assert!(!again.queued_any());
        assert_eq!(
            inbound::last_inbound(&conn, &number(), &customer()).unwrap(),
            Some(written_at)
        );
        assert_eq!(outbox::depth(&conn).unwrap(), 1);
    }

    #[test]
    fn a_131047_failure_reads_as_outside_the_window_and_closes_the_window_the_mirror_thought_open()
    {
        let mut conn = test_connection();
        sent_message(&conn);
        inbound::record_inbound(&conn, &number(), &customer(), now() - Duration::hours(2)).unwrap();

        let applied = apply_now(&mut conn, events(vec![failed_with(131047)]));

        assert_eq!(applied.statuses, 1);
        let fields = queued_fields(&conn);
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0]["Status__c"], "Failed");
        assert_eq!(fields[0]["Error_Code__c"], OUTSIDE_WINDOW);
        assert_eq!(fields[0]["Error_Message__c"], OUTSIDE_WINDOW_MESSAGE);
        let last = inbound::last_inbound(&conn, &number(), &customer())
            .unwrap()
            .unwrap();
        assert!(last <= now() - Duration::hours(24), "window closed: {last}");
    }

    #[test]
    fn another_failure_code_keeps_metas_words_and_leaves_the_window_alone() {
        let mut conn = test_connection();
        sent_message(&conn);
        let written_at = now() - Duration::hours(2);
        inbound::record_inbound(&conn, &number(), &customer(), written_at).unwrap();

        apply_now(&mut conn, events(vec![failed_with(131026)]));

        let fields = queued_fields(&conn);
        assert_eq!(fields[0]["Error_Code__c"], "WA_131026");
        assert_ne!(fields[0]["Error_Message__c"], OUTSIDE_WINDOW_MESSAGE);
        assert_eq!(
            inbound::last_inbound(&conn, &number(), &customer()).unwrap(),
            Some(written_at)
        );
    }

    fn delivered(wamid: &str, callback: Option<&str>) -> WebhookEvent {
        WebhookEvent::Status(StatusUpdate {
            wamid: wamid.parse().unwrap(),
            status: MessageStatus::Delivered,
            timestamp: now() - Duration::minutes(1),
            recipient_id: Some(customer()),
            recipient_user_id: None,
            business_number_id: number(),
            record_id: callback.and_then(|c| SfId::parse(c).ok()),
            errors: vec![],
            pricing: None,
        })
    }

    #[test]
    fn a_status_meta_delivers_twice_is_applied_once_and_the_repeat_queues_nothing() {
        let mut conn = test_connection();
        sent_message(&conn);

        let first = apply_now(&mut conn, events(vec![delivered(WAMID, Some(RECORD))]));
        let written = outbox::due(&conn, now(), 10).unwrap().remove(0);
        assert!(outbox::ack(&conn, &written.key(), written.version).unwrap());
        let again = apply_now(&mut conn, events(vec![delivered(WAMID, Some(RECORD))]));

        assert_eq!((first.statuses, first.duplicates), (1, 0));
        assert_eq!((again.statuses, again.duplicates), (0, 1));
        assert!(!again.queued_any());
        assert_eq!(outbox::depth(&conn).unwrap(), 0);
    }

    #[test]
    fn a_status_whose_callback_only_looks_like_one_of_our_records_writes_nothing_and_is_counted() {
        let mut conn = test_connection();
        sent_message(&conn);
        // Same key prefix as RECORD (a message record), but not one this instance claimed.
        let not_claimed = "a005g0000099999AAA";
        let contact = "003000000000001AAA";

        let applied = apply_now(
            &mut conn,
            events(vec![
                delivered("wamid.OTHER1", Some(not_claimed)),
                delivered("wamid.OTHER2", Some(contact)),
                delivered("wamid.OTHER3", None),
            ]),
        );

        assert_eq!(applied.statuses, 0);
        assert_eq!(
            applied.ignored,
            vec![
                SkipReason::UntrustedCallback,
                SkipReason::UntrustedCallback,
                SkipReason::UnknownMessage
            ]
        );
        assert!(!applied.queued_any());
        assert_eq!(outbox::depth(&conn).unwrap(), 0);
    }

    #[test]
    fn a_status_echoing_a_record_this_instance_sent_is_applied_even_without_its_wamid() {
        let mut conn = test_connection();
        let at = now() - Duration::minutes(5);
        journal::claim(&conn, &RECORD.parse().unwrap(), at).unwrap();
        journal::mark_sending(&conn, &RECORD.parse().unwrap(), NUMBER, CUSTOMER, at).unwrap();

        let applied = apply_now(
            &mut conn,
            events(vec![delivered("wamid.LEARNED", Some(RECORD))]),
        );

        assert_eq!(applied.statuses, 1);
        assert!(applied.ignored.is_empty());
        let fields = queued_fields(&conn);
        assert_eq!(fields[0]["Status__c"], "Delivered");
        assert_eq!(fields[0]["WhatsApp_Message_Id__c"], "wamid.LEARNED");
    }

    #[test]
    fn a_group_message_is_recorded_but_opens_and_reads_no_1to1_window() {
        let mut conn = test_connection();
        let WebhookEvent::Inbound(mut message) = inbound_text("wamid.GROUP", now()) else {
            unreachable!()
        };
        message.group_id = Some("120363025246125486".into());

        let applied = apply_now(&mut conn, events(vec![WebhookEvent::Inbound(message)]));

        assert_eq!(applied.inbound, 1);
        assert_eq!(
            inbound::last_inbound(&conn, &number(), &customer()).unwrap(),
            None
        );
        let fields = queued_fields(&conn);
        assert_eq!(fields[0]["Group_Id__c"], "120363025246125486");
        assert!(!fields[0].contains_key("Window_Expires_At__c"));
    }

    #[test]
    fn events_the_parser_refused_are_dead_lettered_beside_the_events_that_apply() {
        let mut conn = test_connection();
        let parsed = ParsedWebhook {
            events: vec![inbound_text("wamid.IN", now())],
            rejected: vec![RejectedEvent {
                reason: RejectReason::BadTimestamp,
                detail: "entry 0 change 0 message 1: timestamp out of range".into(),
                event: json!({"id": "wamid.BAD", "timestamp": "-1"}),
            }],
            ..ParsedWebhook::default()
        };

        let applied = apply_now(&mut conn, parsed);

        assert_eq!(applied.inbound, 1);
        assert_eq!(applied.rejected.len(), 1);
        assert_eq!(applied.rejected[0].reason, RejectReason::BadTimestamp);
        let stored = webhook_rejects::list(&conn, 10).unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].reason, "bad_timestamp");
        assert!(stored[0].event.contains("wamid.BAD"));
    }

    fn priced(status: MessageStatus, wamid: &str) -> WebhookEvent {
        WebhookEvent::Status(StatusUpdate {
            wamid: wamid.parse().unwrap(),
            status,
            timestamp: now() - Duration::minutes(1),
            recipient_id: Some(customer()),
            recipient_user_id: None,
            business_number_id: number(),
            record_id: SfId::parse(RECORD).ok(),
            errors: vec![],
            pricing: Some(crate::domain::webhook_event::Pricing {
                category: Some("marketing".into()),
                pricing_type: Some("regular".into()),
                model: Some("PMP".into()),
                billable: Some(true),
            }),
        })
    }

    #[test]
    fn pricing_is_written_on_the_record_and_counted_once_when_the_message_is_first_delivered() {
        let mut conn = test_connection();
        sent_message(&conn);

        let sent = apply_now(&mut conn, events(vec![priced(MessageStatus::Sent, WAMID)]));
        let fields = queued_fields(&conn);
        let delivered = apply_now(
            &mut conn,
            events(vec![priced(MessageStatus::Delivered, WAMID)]),
        );
        let read = apply_now(&mut conn, events(vec![priced(MessageStatus::Read, WAMID)]));

        assert_eq!(fields[0]["Pricing_Category__c"], "marketing");
        assert_eq!(fields[0]["Pricing_Type__c"], "regular");
        assert_eq!(fields[0]["Pricing_Model__c"], "PMP");
        assert_eq!(fields[0]["Pricing_Billable__c"], true);
        assert!(sent.priced.is_empty(), "sent is not billed: {sent:?}");
        assert_eq!(
            delivered.priced,
            vec![Priced {
                number: NUMBER.into(),
                category: "marketing",
                pricing_type: "regular"
            }]
        );
        assert!(read.priced.is_empty(), "counted once: {read:?}");
    }

    #[test]
    fn a_read_that_skips_delivered_counts_the_message_and_a_late_delivered_does_not() {
        let mut conn = test_connection();
        sent_message(&conn);

        let read = apply_now(&mut conn, events(vec![priced(MessageStatus::Read, WAMID)]));
        let late = apply_now(
            &mut conn,
            events(vec![priced(MessageStatus::Delivered, WAMID)]),
        );

        assert_eq!(read.priced.len(), 1);
        assert!(late.priced.is_empty(), "{late:?}");
    }
}
