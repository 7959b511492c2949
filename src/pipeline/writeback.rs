//! The write-back outbox flush: pending record updates and inbound records go to Salesforce in
//! collections of ≤ 200 with `allOrNone=false`, up to five collections per composite call. Updates
//! were coalesced on enqueue (only the latest value of each field is written); with the composite
//! call that keeps API use under 0.005 calls per message.
//!
//! One batch of due items (up to 1,000) becomes one collections request per kind of write and
//! 200 records: updates by Id (`PATCH composite/sobjects`), and upserts grouped by object and
//! external id field (`PATCH composite/sobjects/{object}/{field}`) — the inbound records, keyed by
//! wamid, so a flush whose answer was lost and is sent again updates the record it created instead
//! of adding one. Up to five such requests go in one composite call (`POST composite`, one API
//! call for 1,000 records); a single one goes as a plain collections call. Each subrequest's
//! answer is handled exactly as its own call's would be, below.
//! Inbound records are linked to their Contact / Lead first, with one lookup per object for the
//! whole batch ([`inbound_links`]).
//!
//! One item never blocks another. Per-record failures are classified: row locks retry later (up to
//! [`MAX_RECORD_ATTEMPTS`]), deleted records are forgotten, values Salesforce refuses go to the
//! dead letters. A call Salesforce refuses *as a whole* for its data (400: JSON_PARSER_ERROR for a
//! timestamp it cannot parse, say) is split by halving until the refused item is alone; that item
//! becomes a dead letter and everything else is written. Each dead letter gets one log line naming
//! the record, the field and the fix, a metric, a `sfwa doctor` line, and `sfwa dead-letters` to
//! retry or drop it ([`super::dead_letters`]). A Salesforce outage only delays the flush: nothing
//! leaves the outbox until Salesforce confirms it (guarantee 2).

use std::collections::{BTreeSet, VecDeque};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};
use tracing::{debug, error, info, warn};

use crate::salesforce::collections::{Blame, CallRefusal};
use crate::salesforce::{
    CollectionWrite, Disposition, RecordResult, SalesforceError, MAX_COLLECTION_RECORDS,
    MAX_COMPOSITE_BATCHES,
};
use crate::store::outbox::{self, Operation, OutboxItem};

use super::flush::Asked;
use super::inbound_links::{self, LinkLookup, Links, Sender, LINK_FIELDS};
use super::inbound_owner::{self, OWNER_FIELDS};
use super::record_update::Fields;
use super::WriteBack;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct FlushOutcome {
    /// Records Salesforce confirmed.
    pub written: usize,
    /// Records to try again later (locks, outage).
    pub retried: usize,
    /// Records given up (deleted, refused for good).
    pub dropped: usize,
    /// Of `dropped`, those moved to the dead letters (refused for good, not deleted).
    pub dead_lettered: usize,
    /// Write calls made (a composite call of several collections counts once, as Salesforce
    /// counts it).
    pub calls: usize,
    /// SOQL queries and SOSL searches made to link inbound records to Contacts and Leads (and
    /// to find their owners).
    pub lookups: usize,
    /// Collections calls that stored customers' WhatsApp user ids on linked Contacts / Leads.
    pub user_id_writes: usize,
}

impl FlushOutcome {
    fn add(&mut self, other: &FlushOutcome) {
        self.written += other.written;
        self.retried += other.retried;
        self.dropped += other.dropped;
        self.dead_lettered += other.dead_lettered;
        self.calls += other.calls;
        self.lookups += other.lookups;
        self.user_id_writes += other.user_id_writes;
    }

    fn count(&mut self, decision: &Decision) {
        match decision {
            Decision::Ack => self.written += 1,
            Decision::Retry { .. } | Decision::Wait { .. } => self.retried += 1,
            Decision::Discard | Decision::DeadLetter(_) => self.dropped += 1,
        }
    }
}

/// Flushes what is due, in batches, until nothing due is left or Salesforce fails.
///
/// At most as many batches as the outbox held when the flush began: a status webhook landing
/// during a batch keeps its item due (newer values), and without the cap a steady stream of them
/// would have the same records written again and again within one flush (guarantee 5).
pub async fn flush_once(write_back: &WriteBack) -> anyhow::Result<FlushOutcome> {
    let pending = write_back.core.store.read(outbox::depth).await? as usize;
    flush_batches(write_back, pending.div_ceil(batch_limit(write_back))).await
}

/// The write-back worker's early flush, `pending` records in the outbox: only the full batches
/// (at least one), so what is left over waits to fill a batch instead of costing a call of its
/// own; the interval's flush ([`flush_once`]) takes everything.
pub async fn flush_full_batches(
    write_back: &WriteBack,
    pending: u64,
) -> anyhow::Result<FlushOutcome> {
    let pending = usize::try_from(pending).unwrap_or(usize::MAX);
    flush_batches(write_back, pending / batch_limit(write_back)).await
}

/// Flushes up to `max_batches` batches (at least one) while items are due and Salesforce takes
/// them.
async fn flush_batches(write_back: &WriteBack, max_batches: usize) -> anyhow::Result<FlushOutcome> {
    let max_batches = max_batches.max(1);
    let mut total = FlushOutcome::default();
    let mut batches = 0;
    while let Some(batch) = flush_batch(write_back).await? {
        batches += 1;
        total.add(&batch);
        if batch.retried > 0 && batch.written == 0 || batches >= max_batches {
            break;
        }
    }
    write_back
        .core
        .reporter
        .flushed(total.written, total.retried, total.dropped);
    Ok(total)
}

/// The items one batch reads from the outbox: [`MAX_COMPOSITE_BATCHES`] collections of
/// `writeback.batch_size` (≤ 200) — 1,000 records in one composite call.
fn batch_limit(write_back: &WriteBack) -> usize {
    collection_size(write_back) * MAX_COMPOSITE_BATCHES
}

/// Records per collections call: `writeback.batch_size`, within Salesforce's 200.
fn collection_size(write_back: &WriteBack) -> usize {
    write_back
        .core
        .settings
        .writeback
        .batch_size
        .clamp(1, MAX_COLLECTION_RECORDS)
}

/// Where a group of items goes: one collections call (or composite subrequest) each.
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

/// One batch of due items ([`batch_limit`]): the link and owner lookups if inbound records are
/// in it, then one collections request per target and 200 records, up to
/// [`MAX_COMPOSITE_BATCHES`] of them per call. `None` when nothing is due.
async fn flush_batch(write_back: &WriteBack) -> anyhow::Result<Option<FlushOutcome>> {
    let now = write_back.core.now();
    let limit = batch_limit(write_back);
    let items: Vec<OutboxItem> = write_back
        .core
        .store
        .read(move |conn| outbox::due(conn, now, limit))
        .await?;
    if items.is_empty() {
        return Ok(None);
    }
    let mut outcome = FlushOutcome::default();
    let (links, owners) = match look_up(write_back, &items, now, &mut outcome).await {
        Ok(found) => found,
        Err((error, what)) => {
            return wait_for_salesforce(write_back, items, &error, what, outcome, now).await;
        }
    };
    let object = write_back.core.message_object();
    let slices = slices_of(items, &links, &owners, object, collection_size(write_back));
    let decisions = write_slices(write_back, slices, now, &mut outcome).await;
    outcome.dead_lettered = record_decisions(write_back, decisions, now).await?;
    Ok(Some(outcome))
}

/// Inbound records' owners, by outbox record id.
type Owners = std::collections::HashMap<String, Fields>;

/// The Contact / Lead links and the owners of the inbound records among `items` (nothing to look
/// up without any), counting the queries in `outcome`. `Err` (what failed, and while doing what)
/// when the whole batch must wait for Salesforce.
async fn look_up(
    write_back: &WriteBack,
    items: &[OutboxItem],
    now: DateTime<Utc>,
    outcome: &mut FlushOutcome,
) -> Result<(Links, Owners), (SalesforceError, &'static str)> {
    let senders: Vec<Sender> = items
        .iter()
        .filter_map(|item| inbound_links::sender(item, write_back.core.message_object()))
        .collect::<BTreeSet<Sender>>()
        .into_iter()
        .collect();
    if senders.is_empty() {
        return Ok((Links::default(), Owners::new()));
    }
    let lookup = LinkLookup {
        salesforce: &write_back.salesforce,
        cache: &write_back.link_cache,
        default_region: write_back.core.default_region,
        now,
    };
    let links = look_up_links(&lookup, &senders, outcome).await?;
    let stored = inbound_links::store_user_ids(&lookup, &links, &senders).await;
    outcome.user_id_writes += stored.calls;
    if stored.stored + stored.refused > 0 {
        write_back
            .core
            .reporter
            .user_ids_stored(stored.stored, stored.refused);
    }
    match inbound_owner::resolve(write_back, items, &links, now).await {
        Ok((owners, queries)) => {
            outcome.lookups += queries;
            Ok((links, owners))
        }
        // As for the links: an inbound record is never created unowned (invisible to reps under
        // Private sharing) just because Salesforce could not be asked.
        Err(error) => Err((error, "looking up the owners of inbound messages")),
    }
}

/// The Contacts and Leads holding the customers' BSUIDs or numbers (see [`inbound_links`]).
async fn look_up_links(
    lookup: &LinkLookup<'_>,
    senders: &[Sender],
    outcome: &mut FlushOutcome,
) -> Result<Links, (SalesforceError, &'static str)> {
    match lookup.find_cached(senders).await {
        Ok((links, queries)) => {
            outcome.lookups = queries;
            Ok(links)
        }
        Err(error) if !matches!(error, SalesforceError::Api { .. }) => {
            // Most likely Salesforce is down or out of API calls: everything in the batch
            // would fail the same way, so it all waits (an inbound record is never written
            // unlinked just because the lookup could not run).
            outcome.lookups = 1;
            Err((error, "looking up Contacts and Leads for inbound messages"))
        }
        Err(error) => {
            // The org refuses the query itself (a field not visible to the integration user,
            // say): retrying will not help, and the messages matter more than the links.
            error!(%error, "Salesforce refused the Contact/Lead lookup; inbound messages are recorded without links (check the integration user's access to Contact and Lead, Phone and MobilePhone)");
            outcome.lookups = 1;
            Ok(Links::default())
        }
    }
}

/// The items grouped by target, with their bodies built, cut into slices of one collections
/// request each (`size` records, ≤ 200): a group is cut here, not inside the client, so a
/// whole-call refusal is always about the items of one slice.
fn slices_of(
    items: Vec<OutboxItem>,
    links: &Links,
    owners: &Owners,
    object: &str,
    size: usize,
) -> VecDeque<Slice> {
    let mut groups: Vec<(Target, Vec<OutboxItem>)> = Vec::new();
    for item in items {
        let target = Target::of(&item);
        match groups.iter_mut().find(|(t, _)| *t == target) {
            Some((_, group)) => group.push(item),
            None => groups.push((target, vec![item])),
        }
    }
    let mut slices: VecDeque<Slice> = VecDeque::new();
    for (target, group) in groups {
        let (records, linked) = records_for(&target, &group, links, owners, object);
        let mut entries: Vec<Entry> = group
            .into_iter()
            .zip(records)
            .zip(linked)
            .map(|((item, record), linked)| Entry {
                item,
                record,
                linked,
            })
            .collect();
        while !entries.is_empty() {
            let rest = entries.split_off(entries.len().min(size));
            slices.push_back(Slice {
                target: target.clone(),
                entries,
            });
            entries = rest;
        }
    }
    slices
}

/// Writes the slices, up to [`MAX_COMPOSITE_BATCHES`] per call ([`write_calls`]), and decides
/// what becomes of every item.
///
/// Finding the refused items by halving: a slice Salesforce refuses as a whole for its data is
/// cut in two and each half written on its own, recursively, until each refused item is alone
/// (then it is dead-lettered) and everything else is written. For k bad items among n that
/// costs at most 1 + 2·k·⌈log₂ n⌉ slices (17 for one bad item among 200), fewer calls as the
/// halves share composite calls, and only once per bad item: what is refused alone leaves the
/// outbox, so nothing is split again at the next flush.
async fn write_slices(
    write_back: &WriteBack,
    mut slices: VecDeque<Slice>,
    now: DateTime<Utc>,
    outcome: &mut FlushOutcome,
) -> Vec<(OutboxItem, Decision)> {
    let mut decisions: Vec<(OutboxItem, Decision)> = Vec::new();
    let mut composite = true;
    while !slices.is_empty() {
        let take = if composite { MAX_COMPOSITE_BATCHES } else { 1 };
        let call: Vec<Slice> = slices.drain(..take.min(slices.len())).collect();
        outcome.calls += 1;
        let answers = match write_call(write_back, &call).await {
            Ok(answers) => answers,
            Err(error) if CallRefusal::of(&error) != CallRefusal::Transient => {
                // Salesforce refuses the composite request itself (it never does for a
                // well-formed one): the same writes as plain collections calls still go through.
                warn!(%error, "Salesforce refused a composite write-back call; writing its collections one call each for the rest of this flush");
                composite = false;
                call.into_iter()
                    .rev()
                    .for_each(|slice| slices.push_front(slice));
                continue;
            }
            // An outage or the like: every slice of the call waits, like the calls not made.
            Err(error) => call.iter().map(|_| Err(error.clone())).collect(),
        };
        for (slice, answer) in call.into_iter().zip(answers) {
            let decided = match answer {
                Ok(results) => slice
                    .entries
                    .into_iter()
                    .zip(results)
                    .map(|(entry, result)| {
                        let decision = decide(&entry, &result, now);
                        (entry.item, decision)
                    })
                    .collect(),
                Err(error) => refused_call(slice, &mut slices, &error, now),
            };
            for (item, decision) in decided {
                outcome.count(&decision);
                decisions.push((item, decision));
            }
        }
    }
    decisions
}

/// What becomes of a slice Salesforce refused as a whole: split (its halves go to the front of
/// `slices`, nothing decided yet), dead-lettered when alone, or waiting (the org is refusing
/// every call of its shape, or Salesforce is failing calls: then every slice not yet sent waits
/// too, without spending attempts, guarantee 2).
fn refused_call(
    slice: Slice,
    slices: &mut VecDeque<Slice>,
    error: &SalesforceError,
    now: DateTime<Utc>,
) -> Vec<(OutboxItem, Decision)> {
    match CallRefusal::of(error) {
        CallRefusal::Data if slice.entries.len() > 1 => {
            let Slice {
                target,
                mut entries,
            } = slice;
            let second = entries.split_off(entries.len() / 2);
            debug!(%error, records = entries.len() + second.len(), "Salesforce refused a write-back call for its data; splitting it to find the refused record");
            slices.push_front(Slice {
                target: target.clone(),
                entries: second,
            });
            slices.push_front(Slice { target, entries });
            Vec::new()
        }
        CallRefusal::Data => slice
            .entries
            .into_iter()
            .map(|entry| {
                let decision = refused_alone(&entry, error);
                (entry.item, decision)
            })
            .collect(),
        CallRefusal::Org => {
            // Every call of this shape is refused (a missing object or external id field,
            // no access): the later groups may well go through, these wait for an admin.
            error!(%error, pending = slice.entries.len(), "Salesforce refused the write-back call as a whole; an admin must fix the org or the package (the object, the external id field or the integration user's access); retrying in {}s", ORG_BACKOFF.num_seconds());
            let reason = bounded(&error.to_string());
            slice
                .entries
                .into_iter()
                .map(|entry| {
                    (
                        entry.item,
                        Decision::wait(reason.clone(), now + ORG_BACKOFF),
                    )
                })
                .collect()
        }
        CallRefusal::Transient => {
            let wait = backoff(error);
            let pending =
                slice.entries.len() + slices.iter().map(|s| s.entries.len()).sum::<usize>();
            warn!(%error, pending, "write-back to Salesforce failed; will retry in {}s", wait.num_seconds());
            let reason = bounded(&error.to_string());
            slice
                .entries
                .into_iter()
                .chain(slices.drain(..).flat_map(|s| s.entries))
                .map(|entry| (entry.item, Decision::wait(reason.clone(), now + wait)))
                .collect()
        }
    }
}

/// The items of one collections call, with the record bodies built for them.
struct Slice {
    target: Target,
    entries: Vec<Entry>,
}

struct Entry {
    item: OutboxItem,
    /// The body sent: the item's fields, its external id for upserts, its links.
    record: Map<String, Value>,
    /// Whether this flush added Contact / Lead links (or a Case and an owner) to it.
    linked: bool,
}

/// One call for `call`: a plain collections call for one slice (cheaper for Salesforce to
/// serve and for a reader of its logs to follow), one composite call for several. `Err` when the
/// call failed as a whole; otherwise each slice's own answer, as a collections call's would be.
async fn write_call(
    write_back: &WriteBack,
    call: &[Slice],
) -> Result<Vec<Result<Vec<RecordResult>, SalesforceError>>, SalesforceError> {
    let writes: Vec<Result<CollectionWrite, SalesforceError>> =
        call.iter().map(collection_write).collect();
    if let [write] = writes.as_slice() {
        let answer = match write {
            Ok(write) => write_back.salesforce.write(write).await,
            Err(error) => Err(error.clone()),
        };
        return Ok(vec![answer]);
    }
    // A slice whose object or field name is refused before sending is answered with that
    // refusal, as its own call would be; the others go in the composite call (moved there, not
    // copied: they hold every record of the call).
    let mut ready: Vec<CollectionWrite> = Vec::with_capacity(writes.len());
    let refusals: Vec<Option<SalesforceError>> = writes
        .into_iter()
        .map(|write| match write {
            Ok(write) => {
                ready.push(write);
                None
            }
            Err(error) => Some(error),
        })
        .collect();
    let mut answers = write_back
        .salesforce
        .write_composite(ready)
        .await?
        .into_iter();
    Ok(refusals
        .into_iter()
        .map(|refusal| match refusal {
            None => answers.next().unwrap_or_else(|| {
                Err(SalesforceError::BadResponse(
                    "a subrequest went unanswered".into(),
                ))
            }),
            Some(error) => Err(error),
        })
        .collect())
}

/// The collections request for `slice`: updates by Id, or upserts by external id.
fn collection_write(slice: &Slice) -> Result<CollectionWrite, SalesforceError> {
    match &slice.target {
        Target::Update { object } => {
            let records = slice
                .entries
                .iter()
                .map(|entry| (entry.item.record_id.as_str(), &entry.record));
            CollectionWrite::update(object, records)
        }
        Target::Upsert {
            object,
            external_id_field,
        } => {
            let records = slice.entries.iter().map(|entry| &entry.record);
            CollectionWrite::upsert(object, external_id_field, records)
        }
    }
}

/// The records to send for one group, in order, and whether each carries links added here.
/// Upserts carry their external id as a field (Salesforce matches on it); inbound records get
/// their Contact / Lead links.
fn records_for(
    target: &Target,
    group: &[OutboxItem],
    links: &Links,
    owners: &std::collections::HashMap<String, Fields>,
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
        // `$` keys (the replied-to wamid, CONTEXT_KEY) are kept with the item for the flush's
        // lookups only; no API name contains `$`, so none is ever a field of the record.
        fields.retain(|name, _| !name.starts_with('$'));
        let mut link_fields = inbound_links::sender(item, message_object)
            .map(|sender| links.fields_for(&sender, &item.record_id))
            .unwrap_or_default();
        if let Some(owner) = owners.get(&item.record_id) {
            link_fields.extend(owner.clone());
        }
        linked.push(
            LINK_FIELDS
                .iter()
                .chain(OWNER_FIELDS.iter())
                .any(|f| link_fields.contains_key(*f)),
        );
        fields.extend(link_fields);
        records.push(fields);
    }
    (records, linked)
}

/// What to do with one item after Salesforce answered for its record.
fn decide(entry: &Entry, result: &RecordResult, now: DateTime<Utc>) -> Decision {
    let item = &entry.item;
    let Some(disposition) = result.disposition() else {
        return Decision::Ack;
    };
    let reason = bounded(
        &result
            .errors
            .iter()
            .map(|e| format!("{}: {} {:?}", e.status_code, e.message, e.fields))
            .collect::<Vec<_>>()
            .join("; "),
    );
    // A link this flush added points at a record deleted since the lookup: the next flush looks
    // again, rather than the message being dropped for a stale link.
    let stale_link = entry.linked
        && result.errors.iter().any(|e| {
            e.fields
                .iter()
                .any(|f| LINK_FIELDS.contains(&f.as_str()) || OWNER_FIELDS.contains(&f.as_str()))
        });
    // A person canceled the record: the package's Canceled_Is_Final rule keeps sfwa's write off
    // it, and the rep's Canceled is the truth (not a dead letter).
    let canceled = result
        .errors
        .iter()
        .any(|e| crate::domain::status::is_canceled_is_final(&e.status_code, &e.message));
    match disposition {
        _ if canceled => {
            info!(record_id = %item.record_id, "record canceled in Salesforce; sfwa's write-back let go (Canceled is final)");
            Decision::Discard
        }
        _ if stale_link => {
            info!(key = %item.key(), "a Contact/Lead link went stale during the flush; retrying: {reason}");
            retry_or_give_up(item, reason, now)
        }
        Disposition::Retry => retry_or_give_up(item, reason, now),
        Disposition::Drop => {
            info!(record_id = %item.record_id, "record gone from Salesforce, write-back dropped: {reason}");
            Decision::Discard
        }
        Disposition::Surface => {
            let first = result
                .errors
                .iter()
                .find(|e| e.disposition() == Disposition::Surface);
            let (code, field, blame) = match first {
                Some(e) => (e.status_code.clone(), e.fields.first().cloned(), e.blame()),
                None => ("UNKNOWN".to_string(), None, Blame::Org),
            };
            Decision::DeadLetter(DeadLetterNote::new(item, code, field, blame, reason))
        }
    }
}

/// A per-record refusal that may pass (a row lock): retried with a growing back-off, until
/// [`MAX_RECORD_ATTEMPTS`] failures say it will not pass on its own.
fn retry_or_give_up(item: &OutboxItem, reason: String, now: DateTime<Utc>) -> Decision {
    let attempts = item.attempts.saturating_add(1);
    if attempts >= MAX_RECORD_ATTEMPTS {
        let reason = format!("gave up after {attempts} attempts: {reason}");
        return Decision::DeadLetter(DeadLetterNote::new(
            item,
            GAVE_UP.to_string(),
            None,
            Blame::Org,
            reason,
        ));
    }
    let wait = RECORD_BACKOFF * 2i32.saturating_pow(item.attempts.min(7));
    Decision::retry(reason, now + wait.min(MAX_RECORD_BACKOFF))
}

/// An item Salesforce refused as a whole call with nothing else in it: it is the bad one.
fn refused_alone(entry: &Entry, error: &SalesforceError) -> Decision {
    let (code, message) = match error {
        SalesforceError::Api {
            error_code,
            message,
            ..
        } => (error_code.clone(), message.clone()),
        other => (String::new(), other.to_string()),
    };
    // A whole-call refusal names no field, but Salesforce quotes the value it could not read.
    let field = entry
        .record
        .iter()
        .find(|(_, value)| {
            value
                .as_str()
                .is_some_and(|text| text.len() >= 4 && message.contains(text))
        })
        .map(|(name, _)| name.clone());
    let blame = crate::salesforce::collections::blame(&code, field.is_some());
    let code = if code.is_empty() {
        "UNKNOWN".to_string()
    } else {
        code
    };
    let on_field = field
        .as_deref()
        .map(|f| format!(" on {f}"))
        .unwrap_or_default();
    let reason = bounded(&format!("{code}{on_field}: {message}"));
    Decision::DeadLetter(DeadLetterNote::new(&entry.item, code, field, blame, reason))
}

/// Everything the operator is told about one dead letter.
#[derive(Clone, Debug)]
struct DeadLetterNote {
    key: String,
    record_id: String,
    /// Salesforce's error code, or [`GAVE_UP`]; the metric's `reason` label.
    code: String,
    field: Option<String>,
    blame: Blame,
    /// What is stored with the dead letter.
    reason: String,
}

impl DeadLetterNote {
    fn new(
        item: &OutboxItem,
        code: String,
        field: Option<String>,
        blame: Blame,
        reason: String,
    ) -> DeadLetterNote {
        DeadLetterNote {
            key: item.key(),
            record_id: item.record_id.clone(),
            code: bounded_label(&code),
            field,
            blame,
            reason,
        }
    }

    /// One line per dead letter: the record, the field, the cause and the fix.
    fn log(&self) {
        let field = self.field.as_deref().unwrap_or("-");
        let (record, code) = (&self.record_id, &self.code);
        error!(record_id = %record, %field, %code, "{}", self.message());
    }

    /// What the operator reads. Only a refusal pointing at the org or the package asks an admin
    /// to fix something: a value from one webhook (a bad timestamp, an over-long wamid, a
    /// callback that is not one of our Ids) is nobody's setup mistake.
    fn message(&self) -> String {
        let (key, record, reason) = (&self.key, &self.record_id, &self.reason);
        if self.code == GAVE_UP {
            return format!(
                "Salesforce kept refusing the write-back to {record} for a reason that should \
                 pass; it is now a dead letter. Once the cause is gone, run `sfwa dead-letters \
                 retry {key}`: {reason}"
            );
        }
        match (self.blame, self.field.as_deref()) {
            (Blame::Data, field) => {
                let value = field.map_or("a value".to_string(), |f| format!("the {f} value"));
                let widen = match (self.code.as_str(), field) {
                    ("STRING_TOO_LONG", Some(f)) => format!(
                        " (if such values are legitimate, widen {f} in the package, then run \
                         `sfwa dead-letters retry {key}`)"
                    ),
                    _ => String::new(),
                };
                format!(
                    "Salesforce cannot store {value} that WhatsApp sent for {record}; nothing in \
                     the org needs fixing. The write-back is now a dead letter: drop it with \
                     `sfwa dead-letters drop {key}`{widen}: {reason}"
                )
            }
            (Blame::Org, _) if self.code == "FIELD_CUSTOM_VALIDATION_EXCEPTION" => format!(
                "A validation rule refused the write-back to {record}: the integration user lacks \
                 the WhatsApp_Integration_Writes custom permission that exempts sfwa from the \
                 package's rules (assign the WhatsApp_Integration permission set, or add the \
                 permission to the set it has), then run `sfwa dead-letters retry {key}`: {reason}"
            ),
            (Blame::Org, field) => {
                let on = field.map(|f| format!(" on {f}")).unwrap_or_default();
                format!(
                    "Salesforce refused the write-back to {record}{on}; an admin must fix the \
                     field or the package, then run `sfwa dead-letters retry {key}`: {reason}"
                )
            }
        }
    }
}

/// The `reason` of dead letters for items retried [`MAX_RECORD_ATTEMPTS`] times.
const GAVE_UP: &str = "ATTEMPTS_EXHAUSTED";

/// Per-record retries (row locks) before an item becomes a dead letter: with the back-off doubling
/// from 5 s to 10 min, about two hours of Salesforce refusing it.
pub const MAX_RECORD_ATTEMPTS: u32 = 20;
const RECORD_BACKOFF: Duration = Duration::seconds(5);
const MAX_RECORD_BACKOFF: Duration = Duration::minutes(10);
/// How long items of a call the org refuses as a whole wait before trying again.
const ORG_BACKOFF: Duration = Duration::minutes(5);

/// Stored reasons and log lines stay readable whatever Salesforce echoes back.
fn bounded(text: &str) -> String {
    const MAX: usize = 500;
    if text.chars().count() <= MAX {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(MAX).collect();
    cut.push('…');
    cut
}

/// A metric label from an error code: a short upper-case word, whatever came back.
fn bounded_label(code: &str) -> String {
    let clean: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect();
    if clean.is_empty() {
        "UNKNOWN".to_string()
    } else {
        clean
    }
}

/// How long to leave Salesforce alone after a whole call failed.
/// The whole batch waits for Salesforce (a lookup it needs could not run): every item is retried
/// after the back-off for `error`, none is written half-done.
async fn wait_for_salesforce(
    write_back: &WriteBack,
    items: Vec<OutboxItem>,
    error: &SalesforceError,
    what: &str,
    mut outcome: FlushOutcome,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<FlushOutcome>> {
    let wait = backoff(error);
    warn!(%error, pending = items.len(), "{what} failed; the write-back will retry in {}s", wait.num_seconds());
    outcome.retried = items.len();
    let reason = error.to_string();
    let decisions = items
        .into_iter()
        .map(|item| (item, Decision::wait(reason.clone(), now + wait)))
        .collect();
    record_decisions(write_back, decisions, now).await?;
    Ok(Some(outcome))
}

fn backoff(error: &SalesforceError) -> Duration {
    match error {
        SalesforceError::LimitExceeded => Duration::minutes(15),
        SalesforceError::Auth { .. } => Duration::minutes(1),
        _ => Duration::seconds(10),
    }
}

/// What one store write of [`record_decisions`] takes: a flush's 1,000 acks in one write held
/// the store's writer for milliseconds, and every webhook's answer waits for that writer
/// (docs/performance.md, fifteenth measurement).
const DECISIONS_PER_WRITE: usize = 100;

/// Acks, retries and drops, [`DECISIONS_PER_WRITE`] to a store write, each version-checked by the
/// outbox (each decision stands alone: a write that fails leaves its items and the later ones due,
/// to be flushed again). The dead letters actually made (an item changed during the flush stays
/// due instead) are counted and logged here, those of the writes before a failed one too.
async fn record_decisions(
    write_back: &WriteBack,
    decisions: Vec<(OutboxItem, Decision)>,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let (dead, ended) = write_back
        .core
        .store
        .write_in_chunks(decisions, DECISIONS_PER_WRITE, move |tx, these| {
            record_in(tx, these, now)
        })
        .await;
    let mut made = 0;
    for letter in dead.iter().flatten() {
        write_back.core.reporter.dead_lettered(&letter.code);
        letter.log();
        made += 1;
    }
    ended?;
    Ok(made)
}

/// [`record_decisions`]' writes for `decisions`, in the transaction `tx`.
fn record_in(
    tx: &rusqlite::Transaction,
    decisions: &[(OutboxItem, Decision)],
    now: DateTime<Utc>,
) -> Result<Vec<DeadLetterNote>, crate::store::StoreError> {
    let mut dead = Vec::new();
    for (item, decision) in decisions {
        let key = item.key();
        match decision {
            Decision::Ack => {
                outbox::ack(tx, &key, item.version)?;
            }
            Decision::Retry { reason, at } => {
                outbox::retry_later(tx, &key, item.version, *at, reason, now)?;
            }
            Decision::Wait { reason, at } => {
                outbox::postpone(tx, &key, item.version, *at, reason, now)?;
            }
            Decision::Discard => {
                outbox::discard(tx, &key)?;
            }
            Decision::DeadLetter(note) => {
                if outbox::dead_letter(tx, &key, item.version, &note.reason, now)? {
                    dead.push(note.clone());
                }
            }
        };
    }
    Ok(dead)
}

enum Decision {
    Ack,
    /// The record's own write failed for a reason that may pass: counts an attempt.
    Retry {
        reason: String,
        at: DateTime<Utc>,
    },
    /// Salesforce could not take the call: waits, no attempt counted.
    Wait {
        reason: String,
        at: DateTime<Utc>,
    },
    /// The record is gone: forget the write.
    Discard,
    /// Refused for good: to the dead letters, with what the operator is told.
    DeadLetter(DeadLetterNote),
}

impl Decision {
    fn retry(reason: String, at: DateTime<Utc>) -> Decision {
        Decision::Retry { reason, at }
    }

    fn wait(reason: String, at: DateTime<Utc>) -> Decision {
        Decision::Wait { reason, at }
    }
}

/// Gets the outbox flushed now: asks the write-back worker if it runs (and waits up to
/// `wait` for its flush), or flushes here when it does not (`sfwa sync`, tests). Once a flush
/// completed: the records written here (`Some(0)` when the worker wrote them); `None` if it
/// failed or timed out.
pub async fn request_flush(write_back: &WriteBack, wait: std::time::Duration) -> Option<usize> {
    match write_back.core.flush.ask(wait).await {
        Asked::Flushed => return Some(0),
        Asked::NoAnswer => return None,
        Asked::NoWorker => {}
    }
    match flush_once(write_back).await {
        Ok(flush) => Some(flush.written),
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "write-back flush failed; it is tried again later");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(fields: Value) -> OutboxItem {
        OutboxItem {
            operation: Operation::Update,
            object: "WhatsApp_Message__c".into(),
            record_id: "a015g00000AbCdEAAV".into(),
            fields: fields.as_object().cloned().unwrap_or_default(),
            version: 1,
            attempts: 0,
            first_enqueued_at: Utc::now(),
            last_error: None,
        }
    }

    fn entry(fields: Value) -> Entry {
        let item = item(fields);
        Entry {
            record: item.fields.clone(),
            item,
            linked: false,
        }
    }

    fn note(decision: Decision) -> DeadLetterNote {
        match decision {
            Decision::DeadLetter(note) => note,
            _ => panic!("not a dead letter"),
        }
    }

    fn refused(code: &str, fields: &[&str]) -> RecordResult {
        RecordResult {
            id: None,
            success: false,
            created: None,
            errors: vec![crate::salesforce::RecordError {
                status_code: code.into(),
                message: "refused".into(),
                fields: fields.iter().map(|f| f.to_string()).collect(),
            }],
        }
    }

    #[test]
    fn an_unparseable_timestamp_names_its_field_and_asks_no_admin_to_fix_anything() {
        let poison =
            entry(json!({"Status__c": "Sent", "Sent_At__c": "+58870-01-01T00:00:00.000Z"}));
        let error = SalesforceError::Api {
            status: 400,
            error_code: "JSON_PARSER_ERROR".into(),
            message: "Cannot deserialize instance of datetime from VALUE_STRING value \
                      +58870-01-01T00:00:00.000Z or request may be missing a required field"
                .into(),
        };

        let note = note(refused_alone(&poison, &error));

        assert_eq!(note.field.as_deref(), Some("Sent_At__c"));
        assert!(note.reason.starts_with("JSON_PARSER_ERROR on Sent_At__c: "));
        let message = note.message();
        assert!(message.contains("a015g00000AbCdEAAV"), "{message}");
        assert!(message.contains("the Sent_At__c value"), "{message}");
        assert!(
            message.contains("sfwa dead-letters drop a015g00000AbCdEAAV"),
            "{message}"
        );
        assert!(!message.contains("admin"), "{message}");
    }

    #[test]
    fn an_over_long_wamid_is_the_data_and_a_missing_picklist_value_is_the_org() {
        let now = Utc::now();
        let wamid = entry(json!({"WhatsApp_Message_Id__c": "wamid.".repeat(40)}));
        let picklist = entry(json!({"Status__c": "Bogus"}));

        let too_long = note(decide(
            &wamid,
            &refused("STRING_TOO_LONG", &["WhatsApp_Message_Id__c"]),
            now,
        ));
        let org = note(decide(
            &picklist,
            &refused("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", &["Status__c"]),
            now,
        ));

        let data_message = too_long.message();
        assert!(!data_message.contains("admin"), "{data_message}");
        assert!(
            data_message.contains("widen WhatsApp_Message_Id__c"),
            "{data_message}"
        );
        let org_message = org.message();
        assert!(
            org_message.contains("an admin must fix the field or the package"),
            "{org_message}"
        );
        assert!(org_message.contains("on Status__c"), "{org_message}");
        assert!(
            org_message.contains("sfwa dead-letters retry"),
            "{org_message}"
        );
    }

    #[test]
    fn a_row_lock_backs_off_longer_each_time_and_gives_up_at_the_cap() {
        let now = Utc::now();
        let mut locked = entry(json!({"Status__c": "Sent"}));
        let waits: Vec<Duration> = [0, 1, 2, 10]
            .into_iter()
            .map(|attempts| {
                locked.item.attempts = attempts;
                match decide(&locked, &refused("UNABLE_TO_LOCK_ROW", &[]), now) {
                    Decision::Retry { at, .. } => at - now,
                    _ => panic!("retried"),
                }
            })
            .collect();
        locked.item.attempts = MAX_RECORD_ATTEMPTS - 1;

        let last = note(decide(&locked, &refused("UNABLE_TO_LOCK_ROW", &[]), now));

        assert_eq!(
            waits,
            [
                Duration::seconds(5),
                Duration::seconds(10),
                Duration::seconds(20),
                Duration::minutes(10)
            ]
        );
        assert_eq!(last.code, GAVE_UP);
        assert!(last.message().contains("sfwa dead-letters retry"));
    }
}
