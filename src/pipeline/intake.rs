//! Intake by SOQL poll: Outbound + Queued + (no Scheduled_At__c or due), oldest first.
//!
//! A poll may return a record many times (until its write-back lands); the journal's claim makes
//! sure it is dispatched once. A claimed record that never reached `Sending` (a crash between claim
//! and send) is dispatched again: nothing was sent for it.

use crate::domain::message::MessageRecord;
use anyhow::Context;

use crate::salesforce::soql_datetime;
use crate::store::journal::{self, Claim, JournalState};

use super::Pipeline;

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
    Ok(Polled {
        fetched,
        fresh: claim_new(pipeline, records).await?,
    })
}

/// Keeps the records that are new to the journal (claiming them) or claimed but never sent.
pub async fn claim_new(
    pipeline: &Pipeline,
    records: Vec<MessageRecord>,
) -> anyhow::Result<Vec<MessageRecord>> {
    if records.is_empty() {
        return Ok(records);
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
) -> Result<Vec<MessageRecord>, crate::store::StoreError> {
    let mut fresh = Vec::new();
    for record in records {
        let dispatch = match journal::claim(tx, &record.id, now)? {
            Claim::New => true,
            Claim::Existing(entry) => {
                entry.state == JournalState::Claimed
                    && entry.next_attempt_at.is_none_or(|due| due <= now)
            }
        };
        if dispatch {
            fresh.push(record);
        }
    }
    Ok(fresh)
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
