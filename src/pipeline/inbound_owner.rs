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
//! sfwa sent that customer from that number (journal `wa_id`). The inbound record gets that
//! `Case__c` too, so the reply shows on the Case.
//!
//! API calls (guarantee 5): Contact / Lead owners come with the link lookup (`OwnerId` in the same
//! SELECT). Cases cost one query for the outbound records' `Case__c` and one for the Cases'
//! owners, per flush, only when inbound records answer messages sfwa sent, and both answers are
//! cached for [`CACHE_FOR`] (a conversation's later replies cost nothing). The queue's Id is
//! resolved with `SELECT Id FROM Group WHERE Type = 'Queue' AND DeveloperName = '…'` and kept for
//! [`CACHE_FOR`]; a queue that does not exist is one clear error line (per [`CACHE_FOR`]) naming the
//! key and the fix, and the records are still created.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{error, info, warn};

use crate::domain::ids::Wamid;
use crate::domain::sf_id::SfId;
use crate::salesforce::{soql_id_list, soql_string, SalesforceError};
use crate::store::journal;
use crate::store::outbox::OutboxItem;

use super::inbound_links::{self, Links, Sender};
use super::inbound_records::CONTEXT_KEY;
use super::record_update::Fields;
use super::WriteBack;

/// How long a Case lookup or a missing queue is remembered.
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

#[derive(Deserialize)]
struct CaseOwner {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "OwnerId", default)]
    owner: Option<String>,
}

/// An inbound record to own: its outbox item's key (the wamid) and what is known about it.
struct Inbound {
    wamid: String,
    sender: Sender,
    business_number_id: Option<String>,
    /// `context.id`, when it is a wamid.
    context: Option<Wamid>,
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
            })
        })
        .collect();
    let mut queries = 0;
    let mut out = HashMap::new();
    if inbound.is_empty() {
        return Ok((out, queries));
    }
    let replied_to = replied_to(write_back, &inbound).await;
    let (cases, case_queries) = cases_of(write_back, replied_to.values(), now).await?;
    queries += case_queries;
    let needs_queue = inbound.iter().any(|message| {
        let case = replied_to
            .get(&message.wamid)
            .and_then(|record| cases.get(record));
        case.is_none() && links.owner_for(&message.sender).is_none()
    });
    let queue = if needs_queue {
        let (queue, queue_queries) = queue_id(write_back, now).await?;
        queries += queue_queries;
        queue
    } else {
        None
    };
    for message in &inbound {
        let case = replied_to
            .get(&message.wamid)
            .and_then(|record| cases.get(record));
        let mut fields = Fields::new();
        let owner = match case {
            Some((case_id, owner)) => {
                fields.insert("Case__c".into(), json!(case_id));
                owner.clone()
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

/// Inbound wamid → the record Id of the outbound message it answers, from the journal: by
/// `context.id`, else the latest message accepted for that customer on that number. A store
/// error only loses the Case (logged).
async fn replied_to(write_back: &WriteBack, inbound: &[Inbound]) -> HashMap<String, String> {
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
                    Some(context) => {
                        journal::find_by_wamid(conn, context)?.map(|e| e.record_id.to_string())
                    }
                    None => None,
                };
                let record =
                    by_context.or_else(|| pair.as_ref().and_then(|p| latest.get(p).cloned()));
                if let Some(record) = record {
                    found.insert(wamid.clone(), record);
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

/// Outbound record Id → (its Case, the Case's owner), for the records that have a Case.
async fn cases_of<'a>(
    write_back: &WriteBack,
    records: impl Iterator<Item = &'a String>,
    now: DateTime<Utc>,
) -> Result<(HashMap<String, (String, Option<String>)>, usize), SalesforceError> {
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
    let owners = learn_case_owners(write_back, &wanted, now).await?;
    let queries = cases.queries + owners.queries;
    if owners.refused {
        return Ok((HashMap::new(), queries));
    }
    let cache = write_back.owner_cache.lock();
    let found = records
        .iter()
        .filter_map(|record| {
            let case = cache.cases.get(record)?.0.clone()?;
            let owner = cache.case_owners.get(&case).map(|(o, _)| o.clone());
            Some((record.clone(), (case, owner)))
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

/// Reads the owners of the `cases` the cache does not know (or knew too long ago).
async fn learn_case_owners(
    write_back: &WriteBack,
    cases: &BTreeSet<String>,
    now: DateTime<Utc>,
) -> Result<Asked, SalesforceError> {
    let unknown: Vec<SfId> = {
        let cache = write_back.owner_cache.lock();
        not_known(&cache.case_owners, cases, now)
    };
    let soql = |ids: &str| format!("SELECT Id, OwnerId FROM Case WHERE Id IN {ids}");
    ask_in_chunks(
        write_back,
        &unknown,
        soql,
        "owners of Cases",
        |_, rows: Vec<CaseOwner>| {
            let mut cache = write_back.owner_cache.lock();
            for row in rows {
                if let (Ok(id), Some(owner)) = (SfId::parse(&row.id), row.owner) {
                    cache
                        .case_owners
                        .insert(id.as_str().to_string(), (owner, now));
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
