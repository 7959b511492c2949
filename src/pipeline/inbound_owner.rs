//! Who owns an inbound record, decided at flush time beside the Contact / Lead links
//! ([`super::inbound_links`]): under the package's Private sharing model a record owned by the
//! integration user is invisible to every rep, so a customer's reply must be owned by someone who
//! works the conversation.
//!
//! In order: the owner of the **linked Case**, else of the linked **Contact**, else of the linked
//! **Lead**, else the **queue** named by `salesforce.inbound_queue` (blank: no `OwnerId` is written
//! and the integration user keeps the record, as before).
//!
//! The linked Case is the `Case__c` of the outbound message the customer replied to — Meta's
//! `context.id` is a wamid, which the journal maps to our record — or else of the latest message
//! sfwa sent that customer **from the same business number** (the journal, per business number and
//! customer: [`journal::latest_accepted_to`]). The inbound record gets that `Case__c` too, so the
//! reply shows on the Case — but only while the conversation is the Case's:
//! - the Case is **open** (`IsClosed = false`): a reply after the Case was closed is a new matter,
//!   and filing it under the closed Case would hide it from whoever works the customer now;
//! - a message replying to no particular message came within `salesforce.case_link_window`
//!   (default 7 days, the time a re-engagement waits) of the message sfwa sent — Meta's time of
//!   the customer's message against the moment sfwa sent its own — else it starts a new
//!   conversation. A reply to a specific message (`context.id`) names its conversation itself,
//!   so only the open-Case rule applies to it.
//!
//! A Case left out for either reason is logged at debug (no metric counts Case links); the
//! Contact / Lead links and the owner order above apply as if there were no Case.
//!
//! The record's `Account__c` is the linked Contact's Account ([`super::inbound_links`]), else,
//! when a Case is linked and no Contact is, the Case's `AccountId`.
//!
//! API calls (guarantee 5): Contact / Lead owners (and a Contact's Account) come with the link
//! lookup (`OwnerId`, `AccountId` in the same SELECT). Cases cost one query for the outbound
//! records' `Case__c` and one for the Cases' owner, open state and Account, per flush, only when
//! inbound records answer messages sfwa sent within the window, and both answers are cached for
//! [`CACHE_FOR`] (a conversation's later replies cost nothing). So a Case closed less than
//! [`CACHE_FOR`] (15 min) ago may still be linked by a reply in that time. The queue's Id is
//! resolved with `SELECT Id FROM Group WHERE Type = 'Queue' AND DeveloperName = '…'` and kept for
//! [`CACHE_FOR`]; a queue that does not exist is one clear error line (per [`CACHE_FOR`]) naming the
//! key and the fix, and the records are still created.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{debug, error, info, warn};

use crate::domain::ids::Wamid;
use crate::domain::message::parse_salesforce_datetime;
use crate::domain::sf_id::SfId;
use crate::salesforce::{soql_id_list, soql_string, SalesforceError};
use crate::store::journal;
use crate::store::outbox::OutboxItem;

use super::inbound_links::{self, Links, Sender, ACCOUNT_FIELD};
use super::inbound_records::CONTEXT_KEY;
use super::owner_cache::CaseState;
use super::record_update::Fields;
use super::WriteBack;

/// How long a Case lookup (its owner and whether it is open) or a missing queue is remembered.
pub const CACHE_FOR: chrono::Duration = chrono::Duration::minutes(15);

/// The fields this module adds to inbound records.
pub const OWNER_FIELDS: [&str; 2] = ["Case__c", "OwnerId"];

#[derive(Deserialize)]
struct IdOnly {
    #[serde(rename = "Id")]
    id: String,
}

#[derive(Deserialize)]
struct MessageCase {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "Case__c", default)]
    case: Option<String>,
}

/// A row of `SELECT Id, OwnerId, IsClosed, AccountId FROM Case`.
#[derive(Deserialize)]
struct CaseRow {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "OwnerId", default)]
    owner: Option<String>,
    #[serde(rename = "IsClosed", default)]
    is_closed: bool,
    #[serde(rename = "AccountId", default)]
    account: Option<String>,
}

/// An inbound record to own: its outbox item's key (the wamid) and what is known about it.
struct Inbound {
    wamid: String,
    sender: Sender,
    business_number_id: Option<String>,
    /// `context.id`, when it is a wamid.
    context: Option<Wamid>,
    /// Meta's time of the message (`Received_At__c`); the flush's time when it has none.
    received_at: DateTime<Utc>,
}

/// The owner (and Case) fields of every inbound record among `items`, by wamid. An error means
/// Salesforce could not be asked (an outage): the caller lets the batch wait, so no record is
/// created unowned for it. A query the org refuses is logged and the records go without.
pub async fn resolve(
    write_back: &WriteBack,
    items: &[OutboxItem],
    links: &Links,
    now: DateTime<Utc>,
) -> Result<(HashMap<String, Fields>, usize), SalesforceError> {
    let object = &write_back.core.settings.salesforce.message_object;
    let inbound: Vec<Inbound> = items
        .iter()
        .filter_map(|item| {
            let sender = inbound_links::sender(item, object)?;
            Some(Inbound {
                wamid: item.record_id.clone(),
                sender,
                business_number_id: item
                    .fields
                    .get("Business_Number_Id__c")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                context: item
                    .fields
                    .get(CONTEXT_KEY)
                    .and_then(Value::as_str)
                    .and_then(|context| context.parse().ok()),
                received_at: item
                    .fields
                    .get("Received_At__c")
                    .and_then(Value::as_str)
                    .and_then(parse_salesforce_datetime)
                    .unwrap_or(now),
            })
        })
        .collect();
    let mut queries = 0;
    let mut out = HashMap::new();
    if inbound.is_empty() {
        return Ok((out, queries));
    }
    let window = chrono::Duration::from_std(write_back.core.settings.salesforce.case_link_window)
        .unwrap_or(chrono::Duration::MAX);
    let replied_to = within_window(replied_to(write_back, &inbound).await, &inbound, window);
    let (cases, case_queries) =
        cases_of(write_back, replied_to.values().map(|r| &r.record), now).await?;
    queries += case_queries;
    let linked_case = |message: &Inbound| -> Option<&(String, CaseState)> {
        let record = &replied_to.get(&message.wamid)?.record;
        let case = cases.get(record)?;
        if case.1.is_closed {
            debug!(wamid = %message.wamid, case = %case.0, "inbound message not linked to the Case of the message it follows: the Case is closed");
            return None;
        }
        Some(case)
    };
    let needs_queue = inbound.iter().any(|message| {
        linked_case(message).is_none() && links.owner_for(&message.sender).is_none()
    });
    let queue = if needs_queue {
        let (queue, queue_queries) = queue_id(write_back, now).await?;
        queries += queue_queries;
        queue
    } else {
        None
    };
    for message in &inbound {
        let mut fields = Fields::new();
        let owner = match linked_case(message) {
            Some((case_id, case)) => {
                fields.insert("Case__c".into(), json!(case_id));
                // The Contact's Account wins (set with the Contact link); with no Contact, the
                // Case says whose conversation it is.
                if let (Some(account), None) = (&case.account, links.contact_for(&message.sender)) {
                    fields.insert(ACCOUNT_FIELD.into(), json!(account));
                }
                case.owner.clone()
            }
            None => None,
        }
        .or_else(|| links.owner_for(&message.sender).map(str::to_string))
        .or_else(|| queue.clone());
        if let Some(owner) = owner {
            fields.insert("OwnerId".into(), json!(owner));
        }
        out.insert(message.wamid.clone(), fields);
    }
    Ok((out, queries))
}

/// An inbound wamid, its `context.id`, and its (business number, wa_id) pair.
type ReplyAsk = (String, Option<Wamid>, Option<(String, String)>);

/// The outbound message an inbound one follows.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RepliedTo {
    /// Its record Id.
    record: String,
    /// Found by the inbound message's `context.id` (else: the latest sent to that customer).
    by_context: bool,
    /// When its send started (journal `sending_since`).
    sent_at: Option<DateTime<Utc>>,
}

/// Keeps the messages whose Case may still be theirs: a reply by `context.id`, or a message
/// that came at most `window` after the latest message sent to its customer (one sfwa sent
/// after it arrived counts as within). A message sent at an unknown time links no Case.
fn within_window(
    replied_to: HashMap<String, RepliedTo>,
    inbound: &[Inbound],
    window: chrono::Duration,
) -> HashMap<String, RepliedTo> {
    let received: HashMap<&str, DateTime<Utc>> = inbound
        .iter()
        .map(|m| (m.wamid.as_str(), m.received_at))
        .collect();
    replied_to
        .into_iter()
        .filter(|(wamid, replied)| {
            if replied.by_context {
                return true;
            }
            let received = received.get(wamid.as_str()).copied();
            let within = match (received, replied.sent_at) {
                (Some(received), Some(sent)) => received - sent <= window,
                _ => false,
            };
            if !within {
                debug!(%wamid, record = %replied.record, window_hours = window.num_hours(), "inbound message not linked to the Case of the latest message sent to the customer: it came later than salesforce.case_link_window after it");
            }
            within
        })
        .collect()
}

/// Inbound wamid → the outbound message it answers, from the journal: by `context.id`, else the
/// latest message accepted for that customer on that business number. A store error only loses
/// the Case (logged).
async fn replied_to(write_back: &WriteBack, inbound: &[Inbound]) -> HashMap<String, RepliedTo> {
    let asks: Vec<ReplyAsk> = inbound
        .iter()
        .map(|m| {
            // The journal keys a customer by wa_id, or by BSUID when that is all sfwa had.
            let customer = match (&m.sender.phone, &m.sender.user_id) {
                (Some(phone), _) => Some(phone.wa_id().to_string()),
                (None, user_id) => user_id.clone(),
            };
            let pair = m.business_number_id.clone().zip(customer);
            (m.wamid.clone(), m.context.clone(), pair)
        })
        .collect();
    let result = write_back
        .core
        .store
        .read(move |conn| {
            let pairs: Vec<(String, String)> = asks
                .iter()
                .filter_map(|(_, _, pair)| pair.clone())
                .collect();
            let latest = journal::latest_accepted_to(conn, &pairs)?;
            let mut found = HashMap::new();
            for (wamid, context, pair) in &asks {
                let by_context = match context {
                    Some(context) => journal::find_by_wamid(conn, context)?.map(|e| RepliedTo {
                        record: e.record_id.to_string(),
                        by_context: true,
                        sent_at: e.sending_since,
                    }),
                    None => None,
                };
                let latest = || {
                    let latest = latest.get(pair.as_ref()?)?;
                    Some(RepliedTo {
                        record: latest.record_id.clone(),
                        by_context: false,
                        sent_at: latest.sent_at,
                    })
                };
                if let Some(replied) = by_context.or_else(latest) {
                    found.insert(wamid.clone(), replied);
                }
            }
            Ok(found)
        })
        .await;
    match result {
        Ok(found) => found,
        Err(error) => {
            warn!(error = %format!("{error:#}"), "could not read the journal for the messages inbound replies answer; they are owned without their Case");
            HashMap::new()
        }
    }
}

/// Outbound record Id → (its Case, the Case's owner, open state and Account), for the records
/// that have a Case Salesforce told us about.
async fn cases_of<'a>(
    write_back: &WriteBack,
    records: impl Iterator<Item = &'a String>,
    now: DateTime<Utc>,
) -> Result<(HashMap<String, (String, CaseState)>, usize), SalesforceError> {
    let records: BTreeSet<String> = records.cloned().collect();
    let cases = learn_cases(write_back, &records, now).await?;
    if cases.refused {
        return Ok((HashMap::new(), cases.queries));
    }
    let wanted: BTreeSet<String> = {
        let cache = write_back.owner_cache.lock();
        records
            .iter()
            .filter_map(|r| cache.cases.get(r).and_then(|(case, _)| case.clone()))
            .collect()
    };
    let states = learn_case_states(write_back, &wanted, now).await?;
    let queries = cases.queries + states.queries;
    if states.refused {
        return Ok((HashMap::new(), queries));
    }
    let cache = write_back.owner_cache.lock();
    // A Case the query did not return (deleted, or not visible) is not linked: whether it is open
    // is unknown, and a lookup to it would be refused.
    let found = records
        .iter()
        .filter_map(|record| {
            let case = cache.cases.get(record)?.0.clone()?;
            let state = cache.case_states.get(&case)?.0.clone();
            Some((record.clone(), (case, state)))
        })
        .collect();
    Ok((found, queries))
}

/// What filling the cache cost: the queries made, and whether the org refused one (then the
/// messages are owned without their Case).
struct Asked {
    queries: usize,
    refused: bool,
}

/// Reads the `Case__c` of the outbound `records` the cache does not know (or knew too long ago).
async fn learn_cases(
    write_back: &WriteBack,
    records: &BTreeSet<String>,
    now: DateTime<Utc>,
) -> Result<Asked, SalesforceError> {
    let unknown: Vec<SfId> = {
        let mut cache = write_back.owner_cache.lock();
        cache.forget_older_than(CACHE_FOR, now);
        not_known(&cache.cases, records, now)
    };
    let object = write_back.core.message_object();
    let soql = |ids: &str| format!("SELECT Id, Case__c FROM {object} WHERE Id IN {ids}");
    ask_in_chunks(
        write_back,
        &unknown,
        soql,
        "Case__c of outbound messages",
        |chunk, rows: Vec<MessageCase>| {
            let mut cache = write_back.owner_cache.lock();
            for id in chunk {
                let case = rows
                    .iter()
                    .find(|row| SfId::parse(&row.id).is_ok_and(|r| r == *id))
                    .and_then(|row| row.case.clone());
                cache.cases.insert(id.as_str().to_string(), (case, now));
            }
        },
    )
    .await
}

/// Reads the owner, open state and Account of the `cases` the cache does not know (or knew too
/// long ago): one query, the one that read the owners alone before.
async fn learn_case_states(
    write_back: &WriteBack,
    cases: &BTreeSet<String>,
    now: DateTime<Utc>,
) -> Result<Asked, SalesforceError> {
    let unknown: Vec<SfId> = {
        let cache = write_back.owner_cache.lock();
        not_known(&cache.case_states, cases, now)
    };
    let soql =
        |ids: &str| format!("SELECT Id, OwnerId, IsClosed, AccountId FROM Case WHERE Id IN {ids}");
    ask_in_chunks(
        write_back,
        &unknown,
        soql,
        "owners and states of Cases",
        |_, rows: Vec<CaseRow>| {
            let mut cache = write_back.owner_cache.lock();
            for row in rows {
                if let Ok(id) = SfId::parse(&row.id) {
                    let state = CaseState {
                        owner: row.owner,
                        is_closed: row.is_closed,
                        account: row.account,
                    };
                    cache
                        .case_states
                        .insert(id.as_str().to_string(), (state, now));
                }
            }
        },
    )
    .await
}

/// The Ids among `ids` that `known` has no answer for, or one older than [`CACHE_FOR`].
fn not_known<T>(
    known: &HashMap<String, (T, DateTime<Utc>)>,
    ids: &BTreeSet<String>,
    now: DateTime<Utc>,
) -> Vec<SfId> {
    ids.iter()
        .filter(|id| known.get(*id).is_none_or(|(_, at)| now - *at >= CACHE_FOR))
        .filter_map(|id| SfId::parse(id).ok())
        .collect()
}

/// Asks Salesforce about `ids`, 200 to a query (`soql` is given the quoted Id list), and hands
/// each chunk's rows to `learn`. A refusal ends the asking: see [`refused_or_wait`].
async fn ask_in_chunks<R: serde::de::DeserializeOwned>(
    write_back: &WriteBack,
    ids: &[SfId],
    soql: impl Fn(&str) -> String,
    what: &str,
    mut learn: impl FnMut(&[SfId], Vec<R>),
) -> Result<Asked, SalesforceError> {
    let mut queries = 0;
    for chunk in ids.chunks(200) {
        queries += 1;
        match write_back
            .salesforce
            .query(&soql(&soql_id_list(chunk.iter())))
            .await
        {
            Ok(rows) => learn(chunk, rows),
            Err(error) => {
                return refused_or_wait(error, what).map(|()| Asked {
                    queries,
                    refused: true,
                })
            }
        }
    }
    Ok(Asked {
        queries,
        refused: false,
    })
}

/// The configured queue's Id, looked up at most once per [`CACHE_FOR`]. `None`: no queue
/// configured, or none found.
async fn queue_id(
    write_back: &WriteBack,
    now: DateTime<Utc>,
) -> Result<(Option<String>, usize), SalesforceError> {
    let name = write_back
        .core
        .settings
        .salesforce
        .inbound_queue
        .trim()
        .to_string();
    if name.is_empty() {
        return Ok((None, 0));
    }
    {
        let cache = write_back.owner_cache.lock();
        // Found or missing, the answer is asked again after CACHE_FOR: a queue created, renamed
        // or deleted since is picked up without a restart, for one query per quarter hour.
        if let (Some(queue), Some(at)) = (&cache.queue, cache.queue_checked) {
            if now - at < CACHE_FOR {
                return Ok((queue.clone(), 0));
            }
        }
    }
    let soql = format!(
        "SELECT Id FROM Group WHERE Type = 'Queue' AND DeveloperName = {}",
        soql_string(&name)
    );
    let rows: Vec<IdOnly> = match write_back.salesforce.query(&soql).await {
        Ok(rows) => rows,
        Err(error) => {
            refused_or_wait(error, "the inbound queue")?;
            return Ok((None, 1));
        }
    };
    let id = rows.into_iter().next().map(|row| row.id);
    match &id {
        Some(id) => {
            info!(queue = %name, queue_id = %id, "inbound records without a Case, Contact or Lead owner go to this queue")
        }
        None => error!(
            key = "salesforce.inbound_queue",
            queue = %name,
            "no queue with DeveloperName '{name}' in the org: inbound records linked to no Case, Contact or Lead stay owned by the integration user, which reps cannot see under Private sharing. Create the queue (Setup → Queues, supported object WhatsApp Message) or set salesforce.inbound_queue to an existing queue's API name (\"\" to keep the integration user)"
        ),
    }
    let mut cache = write_back.owner_cache.lock();
    cache.queue = Some(id.clone());
    cache.queue_checked = Some(now);
    Ok((id, 1))
}

/// A query the org refuses (no access to Case, say) is logged and skipped; anything else (an
/// outage, the allowance spent) is returned so the batch waits.
fn refused_or_wait(error: SalesforceError, what: &str) -> Result<(), SalesforceError> {
    match error {
        SalesforceError::Api { .. } => {
            error!(%error, "Salesforce refused the query for {what}; inbound records are written without that owner (check the integration user's access)");
            Ok(())
        }
        other => Err(other),
    }
}
