//! The write-back outbox flush: pending record updates and inbound records go to Salesforce in
//! collections of ≤ 200 with `allOrNone=false`. Updates were coalesced on enqueue (only the latest
//! value of each field is written), which is what keeps API use near 0.01 calls per message.
//!
//! One batch of due items becomes one collections call per kind of write: updates by Id
//! (`PATCH composite/sobjects`), and upserts grouped by object and external id field
//! (`PATCH composite/sobjects/{object}/{field}`) — the inbound records, keyed by wamid, so a flush
//! whose answer was lost and is sent again updates the record it created instead of adding one.
//! Inbound records are linked to their Contact / Lead first, with one lookup per object for the
//! whole batch ([`inbound_links`]).
//!
//! Per-record failures are classified: row locks retry later, deleted records are dropped, field
//! errors are an admin's to fix (logged, kept in the dead-letter table). A Salesforce outage only
//! delays the flush: nothing leaves the outbox until Salesforce confirms it (guarantee 2).

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};
use tracing::{error, info, warn};

use crate::domain::phone::E164;
use crate::salesforce::{Disposition, RecordResult, SalesforceError};
use crate::store::outbox::{self, Operation, OutboxItem};

use super::inbound_links::{self, Links, LINK_FIELDS};
use super::Pipeline;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct FlushOutcome {
    /// Records Salesforce confirmed.
    pub written: usize,
    /// Records to try again later (locks, outage).
    pub retried: usize,
    /// Records given up (deleted, field errors).
    pub dropped: usize,
    /// Collections calls made.
    pub calls: usize,
    /// SOQL queries made to link inbound records to Contacts and Leads.
    pub lookups: usize,
}

impl FlushOutcome {
    fn add(&mut self, other: &FlushOutcome) {
        self.written += other.written;
        self.retried += other.retried;
        self.dropped += other.dropped;
        self.calls += other.calls;
        self.lookups += other.lookups;
    }
}

/// Flushes what is due, in batches, until nothing due is left or Salesforce fails.
///
/// At most as many batches as the outbox held when the flush began: a status webhook landing
/// during a batch keeps its item due (newer values), and without the cap a steady stream of them
/// would have the same records written again and again within one flush (guarantee 5).
pub async fn flush_once(pipeline: &Pipeline) -> anyhow::Result<FlushOutcome> {
    let mut total = FlushOutcome::default();
    let pending = pipeline.store.read(outbox::depth).await? as usize;
    let max_batches = pending
        .div_ceil(pipeline.settings.writeback.batch_size.max(1))
        .max(1);
    let mut batches = 0;
    while let Some(batch) = flush_batch(pipeline).await? {
        batches += 1;
        total.add(&batch);
        if batch.retried > 0 && batch.written == 0 || batches >= max_batches {
            break;
        }
    }
    pipeline.metrics.flushed(&total);
    Ok(total)
}

/// Where a group of items goes: one collections call each.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Update {
        object: String,
    },
    Upsert {
        object: String,
        external_id_field: String,
    },
}

impl Target {
    fn of(item: &OutboxItem) -> Target {
        match &item.operation {
            Operation::Update => Target::Update {
                object: item.object.clone(),
            },
            Operation::Upsert { external_id_field } => Target::Upsert {
                object: item.object.clone(),
                external_id_field: external_id_field.clone(),
            },
        }
    }
}

/// One batch of due items (≤ `writeback.batch_size`): the link lookup if inbound records are in
/// it, then one collections call per target. `None` when nothing is due.
async fn flush_batch(pipeline: &Pipeline) -> anyhow::Result<Option<FlushOutcome>> {
    let now = pipeline.now();
    let limit = pipeline.settings.writeback.batch_size;
    let items: Vec<OutboxItem> = pipeline
        .store
        .read(move |conn| outbox::due(conn, now, limit))
        .await?;
    if items.is_empty() {
        return Ok(None);
    }
    let mut outcome = FlushOutcome::default();
    let object = &pipeline.settings.salesforce.message_object;
    let numbers: BTreeSet<E164> = items
        .iter()
        .filter_map(|item| inbound_links::customer_number(item, object))
        .collect();
    let mut links = Links::default();
    if !numbers.is_empty() {
        match inbound_links::find_cached(
            &pipeline.salesforce,
            &pipeline.link_cache,
            &numbers,
            pipeline.default_region,
            now,
        )
        .await
        {
            Ok((found, queries)) => {
                links = found;
                outcome.lookups = queries;
            }
            Err(error) if !matches!(error, SalesforceError::Api { .. }) => {
                // Most likely Salesforce is down or out of API calls: everything in the batch
                // would fail the same way, so it all waits (an inbound record is never written
                // unlinked just because the lookup could not run).
                let wait = backoff(&error);
                warn!(%error, pending = items.len(), "looking up Contacts and Leads for inbound messages failed; the write-back will retry in {}s", wait.num_seconds());
                outcome.lookups = 1;
                outcome.retried = items.len();
                let reason = error.to_string();
                let decisions = items
                    .into_iter()
                    .map(|item| (item, Decision::retry(reason.clone(), now + wait)))
                    .collect();
                record_decisions(pipeline, decisions, now).await?;
                return Ok(Some(outcome));
            }
            Err(error) => {
                // The org refuses the query itself (a field not visible to the integration user,
                // say): retrying will not help, and the messages matter more than the links.
                error!(%error, "Salesforce refused the Contact/Lead lookup; inbound messages are recorded without links (check the integration user's access to Phone and MobilePhone)");
                outcome.lookups = 1;
            }
        }
    }

    let mut groups: Vec<(Target, Vec<OutboxItem>)> = Vec::new();
    for item in items {
        let target = Target::of(&item);
        match groups.iter_mut().find(|(t, _)| *t == target) {
            Some((_, group)) => group.push(item),
            None => groups.push((target, vec![item])),
        }
    }
    let mut decisions: Vec<(OutboxItem, Decision)> = Vec::new();
    let mut groups = groups.into_iter();
    while let Some((target, group)) = groups.next() {
        let (records, linked) = records_for(&target, &group, &links, object);
        outcome.calls += group
            .len()
            .div_ceil(crate::salesforce::MAX_COLLECTION_RECORDS);
        let answer = match &target {
            Target::Update { object } => {
                let records: Vec<(String, Map<String, Value>)> = group
                    .iter()
                    .zip(records)
                    .map(|(item, fields)| (item.record_id.clone(), fields))
                    .collect();
                pipeline.salesforce.update(object, &records).await
            }
            Target::Upsert {
                object,
                external_id_field,
            } => {
                pipeline
                    .salesforce
                    .upsert(object, external_id_field, &records)
                    .await
            }
        };
        match answer {
            Ok(results) => {
                for ((item, result), linked) in group.into_iter().zip(results).zip(linked) {
                    let decision = decide(&item, &result, linked, now);
                    match &decision {
                        Decision::Ack => outcome.written += 1,
                        Decision::Retry { .. } => outcome.retried += 1,
                        Decision::Drop(_) => outcome.dropped += 1,
                    }
                    decisions.push((item, decision));
                }
            }
            Err(error) => {
                // This group and every group not yet sent wait: Salesforce is failing whole calls.
                let wait = backoff(&error);
                let pending = group.len()
                    + groups
                        .as_slice()
                        .iter()
                        .map(|(_, g)| g.len())
                        .sum::<usize>();
                warn!(%error, pending, "write-back to Salesforce failed; will retry in {}s", wait.num_seconds());
                let reason = error.to_string();
                for item in group
                    .into_iter()
                    .chain(groups.by_ref().flat_map(|(_, g)| g))
                {
                    outcome.retried += 1;
                    decisions.push((item, Decision::retry(reason.clone(), now + wait)));
                }
            }
        }
    }
    record_decisions(pipeline, decisions, now).await?;
    Ok(Some(outcome))
}

/// The records to send for one group, in order, and whether each carries links added here.
/// Upserts carry their external id as a field (Salesforce matches on it); inbound records get
/// their Contact / Lead links.
fn records_for(
    target: &Target,
    group: &[OutboxItem],
    links: &Links,
    message_object: &str,
) -> (Vec<Map<String, Value>>, Vec<bool>) {
    let mut records = Vec::with_capacity(group.len());
    let mut linked = Vec::with_capacity(group.len());
    for item in group {
        let mut fields = item.fields.clone();
        if let Target::Upsert {
            external_id_field, ..
        } = target
        {
            fields.insert(
                external_id_field.clone(),
                Value::String(item.record_id.clone()),
            );
        }
        let link_fields = inbound_links::customer_number(item, message_object)
            .map(|number| links.fields_for(&number, &item.record_id))
            .unwrap_or_default();
        linked.push(LINK_FIELDS.iter().any(|f| link_fields.contains_key(*f)));
        fields.extend(link_fields);
        records.push(fields);
    }
    (records, linked)
}

/// What to do with one item after Salesforce answered for its record.
fn decide(item: &OutboxItem, result: &RecordResult, linked: bool, now: DateTime<Utc>) -> Decision {
    let Some(disposition) = result.disposition() else {
        return Decision::Ack;
    };
    let reason = result
        .errors
        .iter()
        .map(|e| format!("{}: {} {:?}", e.status_code, e.message, e.fields))
        .collect::<Vec<_>>()
        .join("; ");
    // A link this flush added points at a record deleted since the lookup: the next flush looks
    // again, rather than the message being dropped for a stale link.
    let stale_link = linked
        && result
            .errors
            .iter()
            .any(|e| e.fields.iter().any(|f| LINK_FIELDS.contains(&f.as_str())));
    match disposition {
        _ if stale_link => {
            info!(key = %item.key(), "a Contact/Lead link went stale during the flush; retrying: {reason}");
            Decision::retry(reason, now + Duration::seconds(5))
        }
        Disposition::Retry => Decision::retry(reason, now + Duration::seconds(5)),
        Disposition::Drop => {
            info!(record_id = %item.record_id, "record gone from Salesforce, write-back dropped: {reason}");
            Decision::Drop(reason)
        }
        Disposition::Surface => {
            error!(record_id = %item.record_id, "Salesforce refused the write-back; an admin must fix the field or the package: {reason}");
            Decision::Drop(reason)
        }
    }
}

/// How long to leave Salesforce alone after a whole call failed.
fn backoff(error: &SalesforceError) -> Duration {
    match error {
        SalesforceError::LimitExceeded => Duration::minutes(15),
        SalesforceError::Auth { .. } => Duration::minutes(1),
        _ => Duration::seconds(10),
    }
}

/// Acks, retries and drops in one transaction, each version-checked by the outbox.
async fn record_decisions(
    pipeline: &Pipeline,
    decisions: Vec<(OutboxItem, Decision)>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    pipeline
        .store
        .write(move |tx| {
            for (item, decision) in &decisions {
                let key = item.key();
                match decision {
                    Decision::Ack => outbox::ack(tx, &key, item.version)?,
                    Decision::Retry { reason, at } => {
                        outbox::retry_later(tx, &key, item.version, *at, reason, now)?
                    }
                    Decision::Drop(reason) => outbox::drop_item(tx, &key, reason, now)?,
                };
            }
            Ok(())
        })
        .await?;
    Ok(())
}

enum Decision {
    Ack,
    Retry { reason: String, at: DateTime<Utc> },
    Drop(String),
}

impl Decision {
    fn retry(reason: String, at: DateTime<Utc>) -> Decision {
        Decision::Retry { reason, at }
    }
}
