//! Intake by SOQL poll: Outbound + Queued + (no Scheduled_At__c or due), oldest first; the SOQL
//! every intake reads message records with ([`by_id_query`] for the stream and the retry loop).
//!
//! A poll may return a record many times (until its write-back lands); the journal's claim
//! ([`super::claim`]) makes sure it is dispatched once.
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

use crate::domain::message::QueuedRecord;
use crate::domain::sf_id::SfId;
use anyhow::Context;
use tracing::{info, warn};

use crate::salesforce::rows::MessageRow;
use crate::salesforce::{soql_datetime, soql_id_list, SalesforceError};
use crate::store::{journal, outbox};

use super::claim::claim_new;
use super::{record_update, Intake};

/// The SOQL for due Queued outbound records.
pub fn queued_query(object: &str, now: chrono::DateTime<chrono::Utc>, limit: usize) -> String {
    format!(
        "SELECT {fields} FROM {object} WHERE Direction__c = 'Outbound' AND Status__c = 'Queued' \
         AND (Scheduled_At__c = null OR Scheduled_At__c <= {now}) ORDER BY CreatedDate ASC LIMIT {limit}",
        fields = MessageRow::FIELDS.join(", "),
        now = soql_datetime(now),
    )
}

/// The SOQL for Queued outbound records whose `Scheduled_At__c` has come, earliest first: the
/// stream delivered their event when they were created, too early to send.
pub fn scheduled_query(object: &str, now: chrono::DateTime<chrono::Utc>, limit: usize) -> String {
    format!(
        "SELECT {fields} FROM {object} WHERE Direction__c = 'Outbound' AND Status__c = 'Queued' \
         AND Scheduled_At__c != null AND Scheduled_At__c <= {now} ORDER BY Scheduled_At__c ASC LIMIT {limit}",
        fields = MessageRow::FIELDS.join(", "),
        now = soql_datetime(now),
    )
}

/// Which records a read by Id returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ById {
    /// Whatever their state now (the retry loop looks at it itself).
    Any,
    /// Only those still Outbound and Queued.
    QueuedOutbound,
}

/// The SOQL reading message records by Id. It goes in the URL: keep it to ≤ 300 Ids (about 8 KB
/// URL-encoded, within Salesforce's 16 KB for the request line and headers).
pub fn by_id_query<'a>(
    object: &str,
    ids: impl IntoIterator<Item = &'a SfId>,
    which: ById,
) -> String {
    let filter = match which {
        ById::Any => "",
        ById::QueuedOutbound => " AND Direction__c = 'Outbound' AND Status__c = 'Queued'",
    };
    format!(
        "SELECT {fields} FROM {object} WHERE Id IN {ids}{filter}",
        fields = MessageRow::FIELDS.join(", "),
        ids = soql_id_list(ids),
    )
}

/// Runs a SOQL over message records and converts each row into the domain, once, here where it
/// arrives ([`MessageRow::into_record`]). A row whose Id is not a Salesforce Id (Salesforce never
/// returns one) can be neither journaled nor written back: it is logged and passed over.
pub async fn query_records(
    intake: &Intake,
    soql: &str,
) -> Result<Vec<QueuedRecord>, SalesforceError> {
    let rows: Vec<MessageRow> = intake.salesforce.query(soql).await?;
    let records = rows
        .into_iter()
        .filter_map(|row| {
            row.into_record()
                .inspect_err(|error| warn!(%error, "message row without a valid Id passed over"))
                .ok()
        })
        .collect();
    Ok(records)
}

/// One poll: how many Queued records Salesforce returned, and those to dispatch now.
#[derive(Debug, Default)]
pub struct Polled {
    /// A full page means more are waiting: the worker drains instead of sleeping.
    pub fetched: usize,
    pub fresh: Vec<QueuedRecord>,
}

/// Fetches due Queued records and returns those this process must dispatch now.
pub async fn poll_once(intake: &Intake) -> anyhow::Result<Polled> {
    let settings = &intake.core.settings;
    let soql = queued_query(
        &settings.salesforce.message_object,
        intake.core.now(),
        settings.intake.batch_size,
    );
    poll_with(intake, &soql).await
}

/// Runs a query for Queued records and claims what this process must dispatch now.
pub async fn poll_with(intake: &Intake, soql: &str) -> anyhow::Result<Polled> {
    let records = query_records(intake, soql)
        .await
        .context("polling Salesforce for Queued messages")?;
    let fetched = records.len();
    let claimed = claim_new(&intake.core, records).await?;
    let mut fresh = claimed.fresh;
    fresh.extend(settle_requeued(intake, claimed.requeued).await?);
    Ok(Polled { fetched, fresh })
}

/// Settles records [`claim_in`](super::claim::claim_in) found finished yet Queued (see the
/// module docs): returns those to dispatch again (never accepted by WhatsApp) and queues
/// `ALREADY_SENT` for the others.
///
/// The records are read again first: every write-back owed to them had landed when they were
/// claimed (nothing was pending), so a record still Queued now was set back by a person, not read
/// before our own write. If this fails, the records stay Queued and the next poll or reconcile
/// finds them again.
pub async fn settle_requeued(
    intake: &Intake,
    candidates: Vec<QueuedRecord>,
) -> anyhow::Result<Vec<QueuedRecord>> {
    let confirmed = still_queued(intake, &candidates).await?;
    if confirmed.is_empty() {
        return Ok(confirmed);
    }
    let now = intake.core.now();
    let object = intake.core.message_object().to_string();
    let (dispatch, refused) = intake
        .core
        .store
        .write(move |tx| settle_in(tx, &object, confirmed, now))
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
        intake.core.flush.batch_ready();
    }
    Ok(dispatch)
}

/// The `candidates` Salesforce still shows Queued, read again (one query per 200).
async fn still_queued(
    intake: &Intake,
    candidates: &[QueuedRecord],
) -> anyhow::Result<Vec<QueuedRecord>> {
    let ids: Vec<SfId> = candidates.iter().map(|r| r.id.clone()).collect();
    let mut confirmed: Vec<QueuedRecord> = Vec::new();
    for chunk in ids.chunks(200) {
        let soql = by_id_query(intake.core.message_object(), chunk, ById::QueuedOutbound);
        let records = query_records(intake, &soql)
            .await
            .context("reading re-queued records again")?;
        confirmed.extend(records);
    }
    Ok(confirmed)
}

/// In one transaction: re-arms the re-queued records WhatsApp never accepted (returned, to
/// dispatch) and queues `ALREADY_SENT` for the others (counted). Records with a write-back still
/// pending, or claimed again meanwhile, are left alone.
fn settle_in(
    tx: &rusqlite::Transaction<'_>,
    object: &str,
    confirmed: Vec<QueuedRecord>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Vec<QueuedRecord>, usize), crate::store::StoreError> {
    let mut dispatch = Vec::new();
    let mut refused = 0usize;
    for record in confirmed {
        if outbox::is_pending(tx, record.id.as_str())? {
            continue;
        }
        let fields = match journal::get(tx, &record.id)? {
            None => match &record.wamid {
                Some(wamid) => record_update::already_sent(
                    crate::domain::status::MessageStatus::Failed,
                    wamid.as_str(),
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
        outbox::enqueue(tx, object, record.id.as_str(), &fields, now)?;
        refused += 1;
    }
    Ok((dispatch, refused))
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

    #[test]
    fn a_read_by_id_names_every_id_and_filters_only_when_asked() {
        let ids = [
            SfId::parse("a005g00002BLnMZAA1").unwrap(),
            SfId::parse("a005g00002BLnMaAAL").unwrap(),
        ];
        let any = by_id_query("WhatsApp_Message__c", &ids, ById::Any);
        let queued = by_id_query("WhatsApp_Message__c", &ids, ById::QueuedOutbound);
        assert!(any.ends_with("WHERE Id IN ('a005g00002BLnMZAA1','a005g00002BLnMaAAL')"));
        assert!(queued.ends_with(
            "WHERE Id IN ('a005g00002BLnMZAA1','a005g00002BLnMaAAL') AND Direction__c = 'Outbound' AND Status__c = 'Queued'"
        ));
    }
}
