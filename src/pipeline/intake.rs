//! Intake by SOQL poll: Outbound + Queued + (no Scheduled_At__c or due), oldest first; and the
//! claim every intake (poll or stream) goes through.
//!
//! A poll may return a record many times (until its write-back lands); the journal's claim makes
//! sure it is dispatched once. A claimed record that never reached `Sending` (a crash between claim
//! and send) is dispatched again: nothing was sent for it.
//!
//! **Re-queued records.** A record the journal has finished but Salesforce shows Queued, with no
//! write-back pending for it, was set back to Queued by a person (an admin retrying a Failed
//! message) — or was read just before its last write-back landed. [`settle_requeued`] tells the
//! two apart by reading the record again (the write-back has landed by then, so a record still
//! Queued was re-queued), then:
//! - WhatsApp never accepted it (no wamid): the journal row is re-armed ([`journal::rearm`]) and the
//!   record dispatched like a new one;
//! - WhatsApp accepted it (a wamid, in the journal or on the record): never sent again; the record
//!   gets Error_Code__c `ALREADY_SENT` and a sentence ([`record_update::already_sent`]).
//!
//! The second read costs one query per batch, only when such records turn up.

use crate::domain::message::MessageRecord;
use crate::domain::sf_id::SfId;
use anyhow::Context;
use tracing::info;

use crate::salesforce::{soql_datetime, soql_id_list};
use crate::store::journal::{self, Claim, JournalState};
use crate::store::outbox;

use super::{record_update, Pipeline};

/// The SOQL for due Queued outbound records.
pub fn queued_query(object: &str, now: chrono::DateTime<chrono::Utc>, limit: usize) -> String {
    format!(
        "SELECT {fields} FROM {object} WHERE Direction__c = 'Outbound' AND Status__c = 'Queued' \
         AND (Scheduled_At__c = null OR Scheduled_At__c <= {now}) ORDER BY CreatedDate ASC LIMIT {limit}",
        fields = MessageRecord::FIELDS.join(", "),
        now = soql_datetime(now),
    )
}

/// The SOQL for Queued outbound records whose `Scheduled_At__c` has come, earliest first: the
/// stream delivered their event when they were created, too early to send.
pub fn scheduled_query(object: &str, now: chrono::DateTime<chrono::Utc>, limit: usize) -> String {
    format!(
        "SELECT {fields} FROM {object} WHERE Direction__c = 'Outbound' AND Status__c = 'Queued' \
         AND Scheduled_At__c != null AND Scheduled_At__c <= {now} ORDER BY Scheduled_At__c ASC LIMIT {limit}",
        fields = MessageRecord::FIELDS.join(", "),
        now = soql_datetime(now),
    )
}

/// One poll: how many Queued records Salesforce returned, and those to dispatch now.
#[derive(Debug, Default)]
pub struct Polled {
    /// A full page means more are waiting: the worker drains instead of sleeping.
    pub fetched: usize,
    pub fresh: Vec<MessageRecord>,
}

/// Fetches due Queued records and returns those this process must dispatch now.
pub async fn poll_once(pipeline: &Pipeline) -> anyhow::Result<Polled> {
    let settings = &pipeline.settings;
    let soql = queued_query(
        &settings.salesforce.message_object,
        pipeline.now(),
        settings.intake.batch_size,
    );
    poll_with(pipeline, &soql).await
}

/// Runs a query for Queued records and claims what this process must dispatch now.
pub async fn poll_with(pipeline: &Pipeline, soql: &str) -> anyhow::Result<Polled> {
    let records: Vec<MessageRecord> = pipeline
        .salesforce
        .query(soql)
        .await
        .context("polling Salesforce for Queued messages")?;
    let fetched = records.len();
    let claimed = claim_new(pipeline, records).await?;
    let mut fresh = claimed.fresh;
    fresh.extend(settle_requeued(pipeline, claimed.requeued).await?);
    Ok(Polled { fetched, fresh })
}

/// What claiming a batch of Queued records found.
#[derive(Debug, Default)]
pub struct Claimed {
    /// New to the journal, or claimed and never sent: dispatch them.
    pub fresh: Vec<MessageRecord>,
    /// Finished in the journal (or carrying a wamid the journal no longer knows) with no
    /// write-back pending: re-queued by a person, or read just before a write-back landed.
    /// [`settle_requeued`] decides.
    pub requeued: Vec<MessageRecord>,
}

/// Claims the records that are new to the journal and keeps those claimed but never sent.
pub async fn claim_new(
    pipeline: &Pipeline,
    records: Vec<MessageRecord>,
) -> anyhow::Result<Claimed> {
    if records.is_empty() {
        return Ok(Claimed::default());
    }
    let now = pipeline.now();
    let result = pipeline
        .store
        .write(move |tx| claim_in(tx, records, now))
        .await;
    result.context("claiming records in the journal")
}

/// [`claim_new`] inside the caller's transaction (the stream stores its replay id in the same one).
pub fn claim_in(
    tx: &rusqlite::Transaction,
    records: Vec<MessageRecord>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Claimed, crate::store::StoreError> {
    let mut claimed = Claimed::default();
    for record in records {
        // A wamid on the record but no journal row: retention deleted the row of a message
        // WhatsApp accepted long ago. Claiming it as new would send it twice.
        if record.wamid.is_some() && journal::get(tx, &record.id)?.is_none() {
            claimed.requeued.push(record);
            continue;
        }
        match journal::claim(tx, &record.id, now)? {
            Claim::New => claimed.fresh.push(record),
            Claim::Existing(entry) => {
                if entry.state == JournalState::Claimed
                    && entry.next_attempt_at.is_none_or(|due| due <= now)
                {
                    claimed.fresh.push(record);
                } else if entry.state.is_finished() && !outbox::is_pending(tx, &record.id)? {
                    claimed.requeued.push(record);
                }
                // Otherwise it is being sent, waiting for its retry, or its write-back has not
                // landed yet (Salesforce still shows the Queued it had): nothing to do.
            }
        }
    }
    Ok(claimed)
}

/// Settles records [`claim_in`] found finished yet Queued (see the module docs): returns those
/// to dispatch again (never accepted by WhatsApp) and queues `ALREADY_SENT` for the others.
///
/// The records are read again first: every write-back owed to them had landed when they were
/// claimed (nothing was pending), so a record still Queued now was set back by a person, not read
/// before our own write. If this fails, the records stay Queued and the next poll or reconcile
/// finds them again.
pub async fn settle_requeued(
    pipeline: &Pipeline,
    candidates: Vec<MessageRecord>,
) -> anyhow::Result<Vec<MessageRecord>> {
    let ids: Vec<SfId> = candidates
        .iter()
        .filter_map(|r| SfId::parse(&r.id).ok())
        .collect();
    let mut confirmed: Vec<MessageRecord> = Vec::new();
    for chunk in ids.chunks(200) {
        let soql = format!(
            "SELECT {} FROM {} WHERE Id IN {} AND Direction__c = 'Outbound' AND Status__c = 'Queued'",
            MessageRecord::FIELDS.join(", "),
            pipeline.settings.salesforce.message_object,
            soql_id_list(chunk.iter())
        );
        let records: Vec<MessageRecord> = pipeline
            .salesforce
            .query(&soql)
            .await
            .context("reading re-queued records again")?;
        confirmed.extend(records);
    }
    if confirmed.is_empty() {
        return Ok(confirmed);
    }
    let now = pipeline.now();
    let object = pipeline.settings.salesforce.message_object.clone();
    let (dispatch, refused) = pipeline
        .store
        .write(move |tx| {
            let mut dispatch = Vec::new();
            let mut refused = 0usize;
            for record in confirmed {
                if outbox::is_pending(tx, &record.id)? {
                    continue;
                }
                let fields = match journal::get(tx, &record.id)? {
                    None => match &record.wamid {
                        Some(wamid) => record_update::already_sent(
                            crate::domain::status::MessageStatus::Failed,
                            wamid,
                            None,
                            now,
                        ),
                        None => continue,
                    },
                    // Claimed or sending meanwhile (another intake re-armed it first).
                    Some(entry) if !entry.state.is_finished() => continue,
                    Some(entry) => match &entry.wamid {
                        None => {
                            if journal::rearm(tx, &record.id, now)? {
                                dispatch.push(record);
                            }
                            continue;
                        }
                        Some(wamid) => record_update::already_sent(
                            entry.state.as_status(),
                            wamid,
                            entry.sending_since,
                            now,
                        ),
                    },
                };
                outbox::enqueue(tx, &object, &record.id, &fields, now)?;
                refused += 1;
            }
            Ok((dispatch, refused))
        })
        .await
        .context("settling re-queued records in the journal")?;
    if !dispatch.is_empty() {
        info!(
            count = dispatch.len(),
            "records set back to Queued after failing before WhatsApp accepted them; sending them again"
        );
    }
    if refused > 0 {
        info!(
            count = refused,
            "records set back to Queued after WhatsApp accepted them; not sent again (ALREADY_SENT)"
        );
        pipeline.outbox_ready.notify_one();
    }
    Ok(dispatch)
}

/// Claims a record (or keeps its existing claim) to be sent at `at`, not before: a message whose
/// `Scheduled_At__c` is ahead. A record already sending or sent is left alone.
pub fn claim_for_later(
    tx: &rusqlite::Transaction,
    record_id: &str,
    at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), crate::store::StoreError> {
    let attempts = match journal::claim(tx, record_id, now)? {
        Claim::New => 0,
        Claim::Existing(entry) if entry.state == JournalState::Claimed => entry.attempts,
        Claim::Existing(_) => return Ok(()),
    };
    journal::schedule_retry(tx, record_id, attempts, at, now)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_query_selects_due_outbound_queued_records_oldest_first() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T15:00:00Z")
            .unwrap()
            .to_utc();
        let soql = queued_query("WhatsApp_Message__c", now, 200);
        assert!(soql.contains("Status__c = 'Queued'"));
        assert!(soql.contains("Scheduled_At__c <= 2026-11-24T15:00:00"));
        assert!(soql.ends_with("ORDER BY CreatedDate ASC LIMIT 200"));
    }

    #[test]
    fn the_scheduled_query_selects_only_records_whose_time_has_come() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T15:00:00Z")
            .unwrap()
            .to_utc();
        let soql = scheduled_query("WhatsApp_Message__c", now, 50);
        assert!(soql.contains("Scheduled_At__c != null AND Scheduled_At__c <= 2026-11-24T15:00:00"));
        assert!(soql.ends_with("ORDER BY Scheduled_At__c ASC LIMIT 50"));
    }
}
