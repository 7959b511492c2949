//! Intake by SOQL poll: Outbound + Queued + (no Scheduled_At__c or due), oldest first; the SOQL
//! every intake reads message records with ([`by_id_query`] for the stream and the retry loop;
//! [`query_by_ids`] reads any number of Ids, five queries of 200 per composite call).
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
//!
//! **Served numbers only.** Every SOQL here selects only the records of the business numbers this
//! instance serves ([`ServedNumbers`]: `Settings::business_numbers`, and blank-number records only
//! where `shard.takes_blank_numbers`), so instances with disjoint sets on one org never claim the
//! same record (their leases, [`super::lease`], make sure the sets are disjoint). [`query_records`]
//! drops any other row as well, whatever the SOQL asked (the stream's fetch by Id reads the records
//! an event names, and a shared channel delivers other shards' events too).

use crate::domain::message::QueuedRecord;
use crate::domain::sf_id::SfId;
use anyhow::Context;
use tracing::{info, warn};

use crate::config::Settings;
use crate::salesforce::rows::MessageRow;
use crate::salesforce::{soql_datetime, soql_id_list, soql_string, SalesforceError};
use crate::store::{journal, outbox};

use super::claim::claim_new;
use super::{record_update, Intake};

/// The business numbers whose records this instance takes: its numbers
/// (`Settings::business_numbers`) and, where `shard.takes_blank_numbers`, the records whose
/// `Business_Number_Id__c` is blank (sent from the default number).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedNumbers {
    numbers: Vec<String>,
    blank: bool,
}

impl ServedNumbers {
    pub fn new(numbers: Vec<String>, blank: bool) -> ServedNumbers {
        ServedNumbers { numbers, blank }
    }

    pub fn of(settings: &Settings) -> ServedNumbers {
        ServedNumbers::new(
            settings.business_numbers(),
            settings.shard.takes_blank_numbers,
        )
    }

    /// The numbers, without the blank.
    pub fn numbers(&self) -> &[String] {
        &self.numbers
    }

    pub fn takes_blank(&self) -> bool {
        self.blank
    }

    /// The SOQL condition, in parentheses: `(Business_Number_Id__c IN ('111','222') OR
    /// Business_Number_Id__c = null)`, the `OR` only when blank records are taken. Each number goes
    /// through the SOQL string quoting (they come from configuration).
    pub fn soql(&self) -> String {
        let field = crate::salesforce::contract::BUSINESS_NUMBER_ID;
        let quoted: Vec<String> = self.numbers.iter().map(|n| soql_string(n)).collect();
        let listed = format!("{field} IN ({})", quoted.join(","));
        if self.blank {
            format!("({listed} OR {field} = null)")
        } else {
            format!("({listed})")
        }
    }

    /// Whether a record naming `number` (blank or absent: the default number's blank records) is
    /// taken here.
    pub fn takes(&self, number: Option<&str>) -> bool {
        match number.map(str::trim).filter(|n| !n.is_empty()) {
            None => self.blank,
            Some(number) => self.numbers.iter().any(|n| n == number),
        }
    }
}

/// The SOQL for due Queued outbound records of the served numbers.
pub fn queued_query(
    object: &str,
    served: &ServedNumbers,
    now: chrono::DateTime<chrono::Utc>,
    limit: usize,
) -> String {
    queued_query_after(object, served, now, limit, None)
}

/// Where the previous page of a draining poll ended: the last record's `CreatedDate` and Id (the
/// poll's order). The next page starts after it, so records still Queued in Salesforce only
/// because their write-back has not landed are not read again while the backlog drains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollCursor {
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub id: SfId,
}

impl PollCursor {
    /// The cursor after `record`; `None` without its `CreatedDate`.
    pub fn after(record: &QueuedRecord) -> Option<PollCursor> {
        Some(PollCursor {
            created_at: record.created_at?,
            id: record.id.clone(),
        })
    }

    /// The SOQL condition "after this cursor" in `CreatedDate ASC, Id ASC` order (keyset paging).
    /// Milliseconds are kept: SOQL accepts them, and a cursor rounded down would read the same
    /// second's records again.
    fn soql(&self) -> String {
        let at = self
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        format!(
            "(CreatedDate > {at} OR (CreatedDate = {at} AND Id > {id}))",
            id = soql_string(self.id.as_str())
        )
    }
}

/// [`queued_query`], from after `after` when a backlog drains (see [`PollCursor`]).
pub fn queued_query_after(
    object: &str,
    served: &ServedNumbers,
    now: chrono::DateTime<chrono::Utc>,
    limit: usize,
    after: Option<&PollCursor>,
) -> String {
    let after = after
        .map(|c| format!(" AND {}", c.soql()))
        .unwrap_or_default();
    format!(
        "SELECT {fields} FROM {object} WHERE Direction__c = 'Outbound' AND Status__c = 'Queued' \
         AND (Scheduled_At__c = null OR Scheduled_At__c <= {now}) AND {served}{after} \
         ORDER BY CreatedDate ASC, Id ASC LIMIT {limit}",
        fields = MessageRow::FIELDS.join(", "),
        now = soql_datetime(now),
        served = served.soql(),
    )
}

/// The SOQL for Queued outbound records whose `Scheduled_At__c` has come, earliest first: the
/// stream delivered their event when they were created, too early to send. Served numbers only.
pub fn scheduled_query(
    object: &str,
    served: &ServedNumbers,
    now: chrono::DateTime<chrono::Utc>,
    limit: usize,
) -> String {
    format!(
        "SELECT {fields} FROM {object} WHERE Direction__c = 'Outbound' AND Status__c = 'Queued' \
         AND Scheduled_At__c != null AND Scheduled_At__c <= {now} AND {served} \
         ORDER BY Scheduled_At__c ASC LIMIT {limit}",
        fields = MessageRow::FIELDS.join(", "),
        now = soql_datetime(now),
        served = served.soql(),
    )
}

/// Which records a read by Id returns. Whatever the SOQL, [`query_records`] keeps only the served
/// numbers' records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ById<'a> {
    /// Whatever their state now.
    Any,
    /// Only those still Outbound and Queued.
    QueuedOutbound,
    /// Whatever their state now, of the served numbers only (the retry loop looks at the state
    /// itself; a record moved to another shard's number is let go).
    Served(&'a ServedNumbers),
    /// Only those still Outbound and Queued, of the served numbers.
    QueuedServed(&'a ServedNumbers),
}

/// The SOQL reading message records by Id. It goes in the URL: keep it to ≤ 300 Ids (about 8 KB
/// URL-encoded, within Salesforce's 16 KB for the request line and headers).
pub fn by_id_query<'a>(
    object: &str,
    ids: impl IntoIterator<Item = &'a SfId>,
    which: ById<'_>,
) -> String {
    const QUEUED: &str = " AND Direction__c = 'Outbound' AND Status__c = 'Queued'";
    let filter = match which {
        ById::Any => String::new(),
        ById::QueuedOutbound => QUEUED.to_string(),
        ById::Served(served) => format!(" AND {}", served.soql()),
        ById::QueuedServed(served) => format!("{QUEUED} AND {}", served.soql()),
    };
    format!(
        "SELECT {fields} FROM {object} WHERE Id IN {ids}{filter}",
        fields = MessageRow::FIELDS.join(", "),
        ids = soql_id_list(ids),
    )
}

/// Runs a SOQL over message records and converts each row into the domain, once, here where it
/// arrives ([`MessageRow::into_record`]). A row whose Id is not a Salesforce Id (Salesforce never
/// returns one) can be neither journaled nor written back: it is logged and passed over. So is a
/// record of a business number another instance serves (see the module docs): this instance must
/// never claim it.
pub async fn query_records(
    intake: &Intake,
    soql: &str,
) -> Result<Vec<QueuedRecord>, SalesforceError> {
    let rows: Vec<MessageRow> = intake.salesforce.query(soql).await?;
    Ok(served_records(intake, rows))
}

/// Ids per query of a read by Id ([`by_id_query`]): well within the URL's limit.
pub const IDS_PER_QUERY: usize = 200;

/// Reads message records by Id, any number of them: one [`by_id_query`] per 200 Ids, up to five
/// of them in one composite call (so 1,000 records per API call; 200 or fewer are one plain
/// query), each followed to its last page. Rows are converted and kept as [`query_records`] does.
pub async fn query_by_ids(
    intake: &Intake,
    ids: &[SfId],
    which: ById<'_>,
) -> Result<Vec<QueuedRecord>, SalesforceError> {
    let object = intake.core.message_object();
    let soqls: Vec<String> = ids
        .chunks(IDS_PER_QUERY)
        .map(|chunk| by_id_query(object, chunk, which))
        .collect();
    let rows: Vec<MessageRow> = intake.salesforce.query_many(&soqls).await?;
    Ok(served_records(intake, rows))
}

/// The rows as domain records, without those of other instances' numbers or without a valid Id.
fn served_records(intake: &Intake, rows: Vec<MessageRow>) -> Vec<QueuedRecord> {
    let served = ServedNumbers::of(&intake.core.settings);
    rows
        .into_iter()
        .filter_map(|row| {
            row.into_record()
                .inspect_err(|error| warn!(%error, "message row without a valid Id passed over"))
                .ok()
        })
        .filter(|record| {
            let number = record.business_number_id.as_deref();
            let ours = served.takes(number);
            if !ours {
                tracing::debug!(record_id = %record.id, number, "record of a business number another instance serves; left alone");
            }
            ours
        })
        .collect()
}

/// One poll: how many Queued records Salesforce returned, and those to dispatch now.
#[derive(Debug, Default)]
pub struct Polled {
    /// A full page means more are waiting: the worker drains instead of sleeping.
    pub fetched: usize,
    pub fresh: Vec<QueuedRecord>,
    /// Where this page ended (its last record), for the next page of a drain.
    pub last: Option<PollCursor>,
}

/// Fetches due Queued records and returns those this process must dispatch now.
pub async fn poll_once(intake: &Intake) -> anyhow::Result<Polled> {
    poll_after(intake, None).await
}

/// [`poll_once`] from after `after` (the next page of a draining backlog, see [`PollCursor`]).
pub async fn poll_after(intake: &Intake, after: Option<&PollCursor>) -> anyhow::Result<Polled> {
    let settings = &intake.core.settings;
    let soql = queued_query_after(
        &settings.salesforce.message_object,
        &ServedNumbers::of(settings),
        intake.core.now(),
        settings.intake.batch_size,
        after,
    );
    poll_with(intake, &soql).await
}

/// Runs a query for Queued records and claims what this process must dispatch now.
pub async fn poll_with(intake: &Intake, soql: &str) -> anyhow::Result<Polled> {
    let records = query_records(intake, soql)
        .await
        .context("polling Salesforce for Queued messages")?;
    let fetched = records.len();
    let last = records.last().and_then(PollCursor::after);
    let claimed = claim_new(&intake.core, records).await?;
    let mut fresh = claimed.fresh;
    fresh.extend(settle_requeued(intake, claimed.requeued).await?);
    Ok(Polled {
        fetched,
        fresh,
        last,
    })
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

/// The `candidates` Salesforce still shows Queued, read again ([`query_by_ids`]: one call per
/// 1,000).
async fn still_queued(
    intake: &Intake,
    candidates: &[QueuedRecord],
) -> anyhow::Result<Vec<QueuedRecord>> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<SfId> = candidates.iter().map(|r| r.id.clone()).collect();
    let served = ServedNumbers::of(&intake.core.settings);
    query_by_ids(intake, &ids, ById::QueuedServed(&served))
        .await
        .context("reading re-queued records again")
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

    fn served() -> ServedNumbers {
        ServedNumbers::new(vec!["111".into(), "222".into()], true)
    }

    #[test]
    fn the_poll_query_selects_due_outbound_queued_records_oldest_first() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T15:00:00Z")
            .unwrap()
            .to_utc();
        let soql = queued_query("WhatsApp_Message__c", &served(), now, 200);
        assert!(soql.contains("Status__c = 'Queued'"));
        assert!(soql.contains("Scheduled_At__c <= 2026-11-24T15:00:00"));
        assert!(soql.ends_with("ORDER BY CreatedDate ASC, Id ASC LIMIT 200"));
    }

    #[test]
    fn the_next_page_of_a_drain_starts_after_the_last_record_in_the_polls_order() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T15:00:00Z")
            .unwrap()
            .to_utc();
        let cursor = PollCursor {
            created_at: chrono::DateTime::parse_from_rfc3339("2026-11-24T14:59:58.250Z")
                .unwrap()
                .to_utc(),
            id: SfId::parse("a005g00002BLnMZAA1").unwrap(),
        };

        let soql = queued_query_after("WhatsApp_Message__c", &served(), now, 200, Some(&cursor));

        assert!(soql.contains(
            " AND (CreatedDate > 2026-11-24T14:59:58.250Z OR (CreatedDate = 2026-11-24T14:59:58.250Z AND Id > 'a005g00002BLnMZAA1')) "
        ), "{soql}");
        assert!(soql.ends_with("ORDER BY CreatedDate ASC, Id ASC LIMIT 200"));
    }

    #[test]
    fn the_scheduled_query_selects_only_records_whose_time_has_come() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T15:00:00Z")
            .unwrap()
            .to_utc();
        let soql = scheduled_query("WhatsApp_Message__c", &served(), now, 50);
        assert!(soql.contains("Scheduled_At__c != null AND Scheduled_At__c <= 2026-11-24T15:00:00"));
        assert!(soql.contains(
            " AND (Business_Number_Id__c IN ('111','222') OR Business_Number_Id__c = null) "
        ));
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

    #[test]
    fn the_poll_query_selects_only_the_served_numbers_and_the_blank_ones_only_when_taken() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T15:00:00Z")
            .unwrap()
            .to_utc();
        let without_blank = ServedNumbers::new(vec!["333".into()], false);

        let with = queued_query("WhatsApp_Message__c", &served(), now, 200);
        let without = queued_query("WhatsApp_Message__c", &without_blank, now, 200);

        assert!(with.contains(
            " AND (Business_Number_Id__c IN ('111','222') OR Business_Number_Id__c = null) "
        ));
        assert!(without.contains(" AND (Business_Number_Id__c IN ('333')) "));
        assert!(!without.contains("= null)"));
    }

    #[test]
    fn a_number_from_the_configuration_is_quoted_in_the_soql() {
        let odd = ServedNumbers::new(vec!["1' OR Id != null OR '".into()], false);

        let soql = odd.soql();

        assert_eq!(
            soql,
            "(Business_Number_Id__c IN ('1\\' OR Id != null OR \\''))"
        );
    }

    #[test]
    fn a_read_by_id_for_the_retry_loop_or_settling_keeps_to_the_served_numbers() {
        let ids = [SfId::parse("a005g00002BLnMZAA1").unwrap()];
        let served = served();

        let any = by_id_query("WhatsApp_Message__c", &ids, ById::Served(&served));
        let queued = by_id_query("WhatsApp_Message__c", &ids, ById::QueuedServed(&served));

        assert!(any.ends_with(
            "WHERE Id IN ('a005g00002BLnMZAA1') AND (Business_Number_Id__c IN ('111','222') OR Business_Number_Id__c = null)"
        ));
        assert!(queued.ends_with(
            "AND Status__c = 'Queued' AND (Business_Number_Id__c IN ('111','222') OR Business_Number_Id__c = null)"
        ));
    }

    #[test]
    fn a_record_is_taken_only_for_a_served_number_or_blank_where_blank_is_taken() {
        let taking_blank = served();
        let not_blank = ServedNumbers::new(vec!["111".into()], false);

        assert!(taking_blank.takes(Some("222")));
        assert!(taking_blank.takes(None));
        assert!(taking_blank.takes(Some("  ")));
        assert!(!taking_blank.takes(Some("999")));
        assert!(!not_blank.takes(None));
        assert!(not_blank.takes(Some("111")));
    }
}
