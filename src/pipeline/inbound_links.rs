//! Linking inbound records to the Contact and Lead who wrote: by the customer's business-scoped
//! WhatsApp user id (BSUID) first, then by phone number, with batched lookups per flush.
//!
//! 1. **BSUID.** A message carrying `From_User_Id__c` is looked up with one SOQL query per object,
//!    `WHERE WhatsApp_User_Id__c IN (…)` — an External ID field, so indexed. Whoever holds the BSUID
//!    is the person, whatever their phone fields say: a message linked this way is not looked up
//!    by phone (customers with a username often come without a phone at all).
//! 2. **Phone.** The other messages' numbers go into one SOSL search per batch,
//!    `FIND {4155550101 OR …} IN PHONE FIELDS RETURNING Contact(…), Lead(… WHERE IsConverted =
//!    false)`: Salesforce's search index matches a number however it was typed (`(415) 555-0101`,
//!    `+1 415 555 0101`, `4155550101`), where SOQL could only scan the table with a leading-wildcard
//!    `LIKE`. The terms are the numbers' national significant digits; the candidates are then
//!    normalised locally with the same rules as outbound numbers ([`E164::parse`], default region
//!    from the settings) and only exact E.164 matches count. A search carries at most
//!    [`NUMBERS_PER_SEARCH`] numbers and [`MAX_SEARCH_QUERY_CHARS`] characters of terms (SOSL
//!    ignores `OR`s past 4,000): one search for a full batch of 200 ten-digit numbers.
//! 3. **Remembering the BSUID.** When a message linked by phone carries a BSUID nobody holds yet,
//!    the BSUID is written to the linked Contact / Lead (`WhatsApp_User_Id__c`, one collections
//!    update per object per flush: [`store_user_ids`]), so the person's next message links without
//!    a phone, and a `user_changed_user_id` (new BSUID, same phone) moves it along. That write
//!    is a courtesy: a refusal (the org's validation rule, a lock, no edit access under Private
//!    sharing) never holds the inbound record back; it is logged once per Contact / Lead and
//!    counted, and that record is not asked again while sfwa runs.
//!
//! Exactly one match sets `Contact__c` — and `Account__c` to that Contact's `AccountId`, read in
//! the same query (a Person Account's Contact has the person account as its `AccountId`, so the
//! same rule links a Person Account's messages to it) — exactly one (unconverted) Lead sets
//! `Lead__c`. Several
//! matches link nothing for that object — guessing would file a customer's message under someone
//! else — and the record says so in `Error_Message__c`, so a rep can link it by hand. No match links
//! nothing and writes nothing: an empty lookup never clears a link a rep set.
//!
//! Answers are cached per number and per BSUID on the pipeline's clock, in memory: a
//! conversation's later messages cost no lookup. A hit is kept [`CACHE_FOR`]; a miss at most
//! [`MISS_CACHE_FOR`] (15 min): SOSL's index can lag minutes behind a new Lead, and the relink job
//! ([`super::relink`]) links the records that matched nobody at first.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use phonenumber::country::Id as Country;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tracing::{error, info, warn};

use crate::domain::phone::E164;
use crate::salesforce::sosl::{find_any, MAX_SEARCH_QUERY_CHARS, MAX_SEARCH_RESULTS};
use crate::salesforce::{soql_string, SalesforceClient, SalesforceError};
use crate::store::outbox::{Operation, OutboxItem};

use super::inbound_records::WAMID_FIELD;
use super::record_update::{truncate, Fields};

/// Distinct customer numbers per SOSL search: a full write-back batch in one search.
pub const NUMBERS_PER_SEARCH: usize = 200;

/// BSUIDs per SOQL query. A BSUID is a country code, a dot and up to 128 characters; the
/// character budget below keeps the URL-encoded GET far inside the REST API's 16,384 bytes.
pub const USER_IDS_PER_QUERY: usize = 100;
const USER_ID_LITERAL_CHARS: usize = 6_000;

/// Ids listed in an ambiguity note per object (the note must fit Error_Message__c).
const IDS_IN_NOTE: usize = 10;

/// The inbound record's Account lookup: the linked Contact's `AccountId` (or, with no Contact,
/// the linked Case's: [`super::inbound_owner`]).
pub const ACCOUNT_FIELD: &str = crate::salesforce::contract::ACCOUNT;

/// The lookups an inbound record can get here.
pub const LINK_FIELDS: [&str; 3] = ["Contact__c", "Lead__c", ACCOUNT_FIELD];

/// The BSUID field on Contact and Lead (Text 140, External ID, not unique).
pub const USER_ID_FIELD: &str = crate::salesforce::contract::WHATSAPP_USER_ID;

/// The inbound record's BSUID field (written by [`super::inbound_records`]).
pub const FROM_USER_ID_FIELD: &str = "From_User_Id__c";

pub use super::inbound_records::PREVIOUS_USER_ID_KEY;

/// How long a lookup's answer that found someone is reused.
pub const CACHE_FOR: chrono::Duration = chrono::Duration::minutes(15);

/// How long "nobody has this number / BSUID" is reused: at most this, as the search index may
/// simply not have caught up with a new Contact or Lead yet.
pub const MISS_CACHE_FOR: chrono::Duration = chrono::Duration::minutes(15);

/// The people a message can be linked to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Person {
    Contact,
    Lead,
}

impl Person {
    pub const BOTH: [Person; 2] = [Person::Contact, Person::Lead];

    pub fn object(self) -> &'static str {
        match self {
            Person::Contact => "Contact",
            Person::Lead => "Lead",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Person::Contact => "Contacts",
            Person::Lead => "Leads",
        }
    }

    fn link_field(self) -> &'static str {
        match self {
            Person::Contact => "Contact__c",
            Person::Lead => "Lead__c",
        }
    }

    /// Converted Leads live on as Contacts; linking to the dead Lead would hide the message.
    fn filter(self) -> Option<&'static str> {
        match self {
            Person::Contact => None,
            Person::Lead => Some("IsConverted = false"),
        }
    }

    fn fields(self) -> &'static str {
        match self {
            Person::Contact => CONTACT_FIELDS,
            Person::Lead => LEAD_FIELDS,
        }
    }

    fn of_type(object: &str) -> Option<Person> {
        Person::BOTH
            .into_iter()
            .find(|p| p.object().eq_ignore_ascii_case(object))
    }
}

/// The fields read of each Contact / Lead found: a Contact's `AccountId` too, so the Account
/// costs no query of its own (a Lead has none).
const CONTACT_FIELDS: &str = "Id, Phone, MobilePhone, OwnerId, AccountId";
const LEAD_FIELDS: &str = "Id, Phone, MobilePhone, OwnerId";

/// A Contact or Lead a lookup returned.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Candidate {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Phone", default)]
    pub phone: Option<String>,
    #[serde(rename = "MobilePhone", default)]
    pub mobile_phone: Option<String>,
    /// Read in the same query: the owner of an inbound record linked to this person
    /// ([`super::inbound_owner`]).
    #[serde(rename = "OwnerId", default)]
    pub owner_id: Option<String>,
    /// A Contact's Account (a Lead has none): the inbound record's `Account__c`.
    #[serde(rename = "AccountId", default)]
    pub account_id: Option<String>,
    #[serde(rename = "WhatsApp_User_Id__c", default)]
    pub user_id: Option<String>,
}

/// Who wrote an inbound record: the phone Meta gave, the BSUID, or both.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sender {
    pub phone: Option<E164>,
    pub user_id: Option<String>,
    /// The BSUID before a `user_changed_user_id` ([`PREVIOUS_USER_ID_KEY`]).
    pub previous_user_id: Option<String>,
}

/// What a customer is looked up by.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Phone(E164),
    /// Lower-cased: SOQL compares text case-insensitively, so the cache does too.
    UserId(String),
}

impl Key {
    fn user_id(user_id: &str) -> Key {
        Key::UserId(user_id.to_lowercase())
    }
}

/// The Contacts and Leads found for one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Matches {
    contacts: BTreeSet<String>,
    leads: BTreeSet<String>,
}

impl Matches {
    fn of(&self, person: Person) -> &BTreeSet<String> {
        match person {
            Person::Contact => &self.contacts,
            Person::Lead => &self.leads,
        }
    }

    fn of_mut(&mut self, person: Person) -> &mut BTreeSet<String> {
        match person {
            Person::Contact => &mut self.contacts,
            Person::Lead => &mut self.leads,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.contacts.is_empty() && self.leads.is_empty()
    }

    /// The one record of `person`, if exactly one matched.
    fn only(&self, person: Person) -> Option<&String> {
        let ids = self.of(person);
        (ids.len() == 1).then(|| ids.iter().next()).flatten()
    }
}

/// How a sender was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    UserId,
    /// By the BSUID the customer had before a `user_changed_user_id`.
    PreviousUserId,
    Phone,
}

/// Who has each customer number and BSUID, and the owners of those records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Links {
    by_key: HashMap<Key, Matches>,
    /// Contact / Lead Id → its OwnerId.
    owners: HashMap<String, String>,
    /// Contact Id → its AccountId (Contacts without an Account are not here).
    accounts: HashMap<String, String>,
}

impl Links {
    fn add(&mut self, key: Key, matches: &Matches) {
        let entry = self.by_key.entry(key).or_default();
        for person in Person::BOTH {
            entry
                .of_mut(person)
                .extend(matches.of(person).iter().cloned());
        }
    }

    /// The records `sender` links to: those holding its BSUID if any does, else its previous
    /// BSUID, else those with its phone number. `None` when nobody was found.
    pub fn matches_for(&self, sender: &Sender) -> Option<(&Matches, Via)> {
        let by = |id: &Option<String>, via: Via| {
            id.as_deref()
                .and_then(|id| self.by_key.get(&Key::user_id(id)))
                .filter(|m| !m.is_empty())
                .map(|m| (m, via))
        };
        let by_user_id = by(&sender.user_id, Via::UserId)
            .or_else(|| by(&sender.previous_user_id, Via::PreviousUserId));
        by_user_id.or_else(|| {
            let phone = sender.phone.clone()?;
            self.by_key
                .get(&Key::Phone(phone))
                .filter(|m| !m.is_empty())
                .map(|m| (m, Via::Phone))
        })
    }

    /// The owner of the one Contact `sender` links to, else of the one Lead (several or none:
    /// `None`, as no link is made then either).
    pub fn owner_for(&self, sender: &Sender) -> Option<&str> {
        let (matches, _) = self.matches_for(sender)?;
        Person::BOTH
            .into_iter()
            .find_map(|person| self.owners.get(matches.only(person)?).map(String::as_str))
    }

    /// The one Contact `sender` links to (several or none: `None`, as no link is made then).
    pub fn contact_for(&self, sender: &Sender) -> Option<&str> {
        let (matches, _) = self.matches_for(sender)?;
        matches.only(Person::Contact).map(String::as_str)
    }

    /// The Account of the one Contact `sender` links to, if it has one.
    pub fn account_for(&self, sender: &Sender) -> Option<&str> {
        self.accounts
            .get(self.contact_for(sender)?)
            .map(String::as_str)
    }

    /// The fields that link the record of message `wamid` from `sender`: a lookup per object with
    /// exactly one match, and an `Error_Message__c` note naming the candidates where there were
    /// several (also logged). Empty when nobody was found.
    pub fn fields_for(&self, sender: &Sender, wamid: &str) -> Fields {
        let mut fields = Fields::new();
        let Some((matches, via)) = self.matches_for(sender) else {
            return fields;
        };
        let mut ambiguous = Vec::new();
        for person in Person::BOTH {
            let ids: Vec<&String> = matches.of(person).iter().collect();
            match ids.as_slice() {
                [] => {}
                [only] => {
                    fields.insert(person.link_field().into(), json!(only));
                    if let Some(account) = self.accounts.get(*only) {
                        if person == Person::Contact {
                            fields.insert(ACCOUNT_FIELD.into(), json!(account));
                        }
                    }
                }
                several => {
                    warn!(%wamid, object = person.object(), candidates = ?several, "inbound message not linked: several records match the sender");
                    ambiguous.push(ambiguity(person, several, via));
                }
            }
        }
        if !ambiguous.is_empty() {
            let note = format!(
                "Not linked: {}. Link the right one by hand.",
                ambiguous.join("; ")
            );
            fields.insert("Error_Message__c".into(), json!(truncate(&note, 1024)));
        }
        fields
    }

    /// The BSUIDs to store: for each sender linked **by phone** (or by its previous BSUID) that
    /// carries a BSUID nobody holds, the one linked Contact and the one linked Lead.
    pub fn user_ids_to_store<'a>(
        &self,
        senders: impl IntoIterator<Item = &'a Sender>,
    ) -> Vec<(Person, String, String)> {
        let mut out: Vec<(Person, String, String)> = Vec::new();
        for sender in senders {
            let Some(user_id) = sender.user_id.as_deref() else {
                continue;
            };
            let Some((matches, Via::Phone | Via::PreviousUserId)) = self.matches_for(sender) else {
                continue;
            };
            for person in Person::BOTH {
                if let Some(id) = matches.only(person) {
                    if !out.iter().any(|(_, known, _)| known == id) {
                        out.push((person, id.clone(), user_id.to_string()));
                    }
                }
            }
        }
        out
    }
}

/// "2 Contacts have this phone number (003A, 003B)".
fn ambiguity(person: Person, several: &[&String], via: Via) -> String {
    let listed: Vec<&str> = several
        .iter()
        .take(IDS_IN_NOTE)
        .map(|id| id.as_str())
        .collect();
    let more = several.len().saturating_sub(IDS_IN_NOTE);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let what = match via {
        Via::UserId => "this WhatsApp user id",
        Via::PreviousUserId => "this customer's previous WhatsApp user id",
        Via::Phone => "this phone number",
    };
    format!(
        "{} {} have {what} ({}{more})",
        several.len(),
        person.plural(),
        listed.join(", ")
    )
}

/// The sender of an outbox item that is an inbound record to link: an upsert of `message_object`
/// on the wamid with a parseable `From_Phone__c` or a `From_User_Id__c`.
pub fn sender(item: &OutboxItem, message_object: &str) -> Option<Sender> {
    let is_inbound_record = matches!(&item.operation, Operation::Upsert { external_id_field } if external_id_field == WAMID_FIELD)
        && item.object == message_object
        && item.fields.get("Direction__c") == Some(&json!("Inbound"));
    if !is_inbound_record {
        return None;
    }
    sender_of(&item.fields)
}

/// The sender named by an inbound record's fields (`From_Phone__c`, `From_User_Id__c`).
pub fn sender_of(fields: &Map<String, Value>) -> Option<Sender> {
    let text = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
    };
    let sender = Sender {
        phone: text("From_Phone__c").and_then(|from| E164::parse(from, None).ok()),
        user_id: text(FROM_USER_ID_FIELD).map(str::to_string),
        previous_user_id: text(PREVIOUS_USER_ID_KEY).map(str::to_string),
    };
    (sender.phone.is_some() || sender.user_id.is_some()).then_some(sender)
}

/// The customer number of an inbound record to link (see [`sender`]), when it has one.
pub fn customer_number(item: &OutboxItem, message_object: &str) -> Option<E164> {
    sender(item, message_object)?.phone
}

/// One query for the records of `person` holding any of `user_ids` (the caller chunks).
pub fn user_id_soql(person: Person, user_ids: &[String]) -> String {
    let listed: Vec<String> = user_ids.iter().map(|id| soql_string(id)).collect();
    let condition = format!("{USER_ID_FIELD} IN ({})", listed.join(", "));
    let condition = match person.filter() {
        Some(filter) => format!("{filter} AND {condition}"),
        None => condition,
    };
    format!(
        "SELECT {}, {USER_ID_FIELD} FROM {} WHERE {condition}",
        person.fields(),
        person.object()
    )
}

/// One SOSL search for the Contacts and (unconverted) Leads with any of `numbers` in a phone
/// field (the caller chunks, [`search_chunks`]). `None` for no numbers.
pub fn phone_search(numbers: &[E164]) -> Option<String> {
    let terms: BTreeSet<&str> = numbers.iter().map(E164::national_number).collect();
    let find = find_any(terms.iter().copied())?;
    let returning: Vec<String> = Person::BOTH
        .into_iter()
        .map(|person| match person.filter() {
            Some(filter) => format!("{}({} WHERE {filter})", person.object(), person.fields()),
            None => format!("{}({})", person.object(), person.fields()),
        })
        .collect();
    Some(format!(
        "{find} IN PHONE FIELDS RETURNING {}",
        returning.join(", ")
    ))
}

/// `items` cut into runs of at most `max_items` whose `size`s (plus a separator each) add up
/// to at most `max_chars`.
fn chunks_by<T: Clone>(
    items: &[T],
    max_items: usize,
    max_chars: usize,
    size: impl Fn(&T) -> usize,
) -> Vec<Vec<T>> {
    let mut chunks: Vec<Vec<T>> = Vec::new();
    let mut chars = 0;
    for item in items {
        let cost = size(item) + 4;
        let full = chunks
            .last()
            .is_none_or(|c| c.len() >= max_items || chars + cost > max_chars);
        if full {
            chunks.push(Vec::new());
            chars = 0;
        }
        chars += cost;
        if let Some(last) = chunks.last_mut() {
            last.push(item.clone());
        }
    }
    chunks
}

/// The numbers cut into searches: at most [`NUMBERS_PER_SEARCH`] each, and terms joined by ` OR `
/// within [`MAX_SEARCH_QUERY_CHARS`].
pub fn search_chunks(numbers: &[E164]) -> Vec<Vec<E164>> {
    chunks_by(
        numbers,
        NUMBERS_PER_SEARCH,
        MAX_SEARCH_QUERY_CHARS,
        |number| number.national_number().len(),
    )
}

/// Which of `numbers` each candidate really has, after normalising its Phone and MobilePhone.
pub fn exact_matches(
    candidates: &[Candidate],
    numbers: &BTreeSet<E164>,
    default_region: Option<Country>,
) -> HashMap<E164, BTreeSet<String>> {
    let mut matches: HashMap<E164, BTreeSet<String>> = HashMap::new();
    for candidate in candidates {
        for raw in [&candidate.phone, &candidate.mobile_phone]
            .into_iter()
            .flatten()
        {
            if let Ok(number) = E164::parse(raw, default_region) {
                if numbers.contains(&number) {
                    matches
                        .entry(number)
                        .or_default()
                        .insert(candidate.id.clone());
                }
            }
        }
    }
    matches
}

/// What one lookup found: the matches per key asked (empty ones included) and the owners.
#[derive(Debug, Default)]
struct Found {
    links: Links,
    queries: usize,
}

impl Found {
    /// Remembers the owner (and a Contact's Account) of a record a lookup returned.
    fn owner(&mut self, candidate: &Candidate) {
        if let Some(owner) = &candidate.owner_id {
            self.links
                .owners
                .insert(candidate.id.clone(), owner.clone());
        }
        if let Some(account) = &candidate.account_id {
            self.links
                .accounts
                .insert(candidate.id.clone(), account.clone());
        }
    }
}

/// Looks up who holds each of `user_ids`: one SOQL query per object per chunk.
async fn find_by_user_id(
    salesforce: &SalesforceClient,
    user_ids: &BTreeSet<String>,
) -> Result<Found, SalesforceError> {
    let mut found = Found::default();
    for id in user_ids {
        found
            .links
            .by_key
            .insert(Key::user_id(id), Matches::default());
    }
    let list: Vec<String> = user_ids.iter().cloned().collect();
    for chunk in chunks_by(
        &list,
        USER_IDS_PER_QUERY,
        USER_ID_LITERAL_CHARS,
        String::len,
    ) {
        for person in Person::BOTH {
            let candidates: Vec<Candidate> =
                salesforce.query(&user_id_soql(person, &chunk)).await?;
            found.queries += 1;
            for candidate in &candidates {
                let Some(user_id) = candidate.user_id.as_deref() else {
                    continue;
                };
                if let Some(matches) = found.links.by_key.get_mut(&Key::user_id(user_id)) {
                    matches.of_mut(person).insert(candidate.id.clone());
                }
                found.owner(candidate);
            }
        }
    }
    Ok(found)
}

/// Looks up who has each of `numbers`: one SOSL search per [`search_chunks`] chunk.
async fn find_by_phone(
    salesforce: &SalesforceClient,
    numbers: &BTreeSet<E164>,
    default_region: Option<Country>,
) -> Result<Found, SalesforceError> {
    let mut found = Found::default();
    for number in numbers {
        found
            .links
            .by_key
            .insert(Key::Phone(number.clone()), Matches::default());
    }
    let list: Vec<E164> = numbers.iter().cloned().collect();
    for chunk in search_chunks(&list) {
        let Some(sosl) = phone_search(&chunk) else {
            continue;
        };
        let records = salesforce.search(&sosl).await?;
        found.queries += 1;
        if records.len() >= MAX_SEARCH_RESULTS {
            warn!(
                numbers = chunk.len(),
                "the phone search hit SOSL's {MAX_SEARCH_RESULTS}-record cap; some customers may be linked later than their first message"
            );
        }
        for (person, candidates) in candidates_by_person(records) {
            for (number, ids) in exact_matches(&candidates, numbers, default_region) {
                let key = Key::Phone(number);
                found
                    .links
                    .by_key
                    .entry(key)
                    .or_default()
                    .of_mut(person)
                    .extend(ids);
            }
            candidates.iter().for_each(|c| found.owner(c));
        }
    }
    Ok(found)
}

/// The `searchRecords` of a search, by object (`attributes.type`); others are ignored.
fn candidates_by_person(records: Vec<Value>) -> Vec<(Person, Vec<Candidate>)> {
    let mut out: Vec<(Person, Vec<Candidate>)> =
        Person::BOTH.into_iter().map(|p| (p, Vec::new())).collect();
    for record in records {
        let object = record["attributes"]["type"].as_str().unwrap_or_default();
        let Some(person) = Person::of_type(object) else {
            continue;
        };
        match serde_json::from_value::<Candidate>(record) {
            Ok(candidate) => {
                if let Some((_, list)) = out.iter_mut().find(|(p, _)| *p == person) {
                    list.push(candidate);
                }
            }
            Err(error) => warn!(%error, "a search result that is not a Contact or Lead row"),
        }
    }
    out
}

/// Recent lookup answers per number and BSUID (including "nobody"), timed by the pipeline's
/// clock; and the Contacts / Leads that refused their BSUID, asked no more.
#[derive(Debug, Default)]
pub struct LinkCache {
    entries: std::sync::Mutex<HashMap<Key, Cached>>,
    refused: std::sync::Mutex<HashSet<String>>,
    /// When the org last refused the BSUID query (no WhatsApp_User_Id__c field deployed):
    /// the BSUID step is skipped for [`CACHE_FOR`] after it.
    user_ids_refused_at: std::sync::Mutex<Option<DateTime<Utc>>>,
    /// When [`LinkCache::split`] last dropped the expired entries (see [`SWEEP_EVERY`]).
    swept_at: std::sync::Mutex<Option<DateTime<Utc>>>,
}

/// How often the expired entries are dropped from the cache. Every flush used to walk all of it
/// (one entry per customer heard from in the last 15 minutes: tens of thousands at 5,000 inbound
/// messages a minute) to find the few that expired; an expired entry is never used whether it
/// was dropped or not ([`Cached::fresh`]), so dropping them once a minute only bounds the memory.
const SWEEP_EVERY: chrono::Duration = chrono::Duration::minutes(1);

#[derive(Clone, Debug)]
struct Cached {
    at: DateTime<Utc>,
    matches: Matches,
    /// The owners of those Contacts and Leads.
    owners: HashMap<String, String>,
    /// The Accounts of those Contacts.
    accounts: HashMap<String, String>,
}

impl Cached {
    /// Whether this entry may still be used at `now` (a miss is kept as long as a match: see
    /// [`MISS_CACHE_FOR`]).
    fn fresh(&self, now: DateTime<Utc>) -> bool {
        let keep_for = if self.matches.is_empty() {
            MISS_CACHE_FOR
        } else {
            CACHE_FOR
        };
        now - self.at < keep_for
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl LinkCache {
    /// Splits `keys` into the links still cached at `now` and the keys to look up.
    fn split(&self, keys: &BTreeSet<Key>, now: DateTime<Utc>) -> (Links, BTreeSet<Key>) {
        let mut entries = lock(&self.entries);
        {
            let mut swept_at = lock(&self.swept_at);
            // A clock set back sweeps too, so the entries stamped "later" are judged again.
            if swept_at.is_none_or(|at| now - at >= SWEEP_EVERY || now < at) {
                entries.retain(|_, cached| cached.fresh(now));
                *swept_at = Some(now);
            }
        }
        let mut links = Links::default();
        let mut missing = BTreeSet::new();
        for key in keys {
            match entries.get(key).filter(|cached| cached.fresh(now)) {
                Some(cached) => {
                    links.add(key.clone(), &cached.matches);
                    links.owners.extend(cached.owners.clone());
                    links.accounts.extend(cached.accounts.clone());
                }
                None => {
                    missing.insert(key.clone());
                }
            }
        }
        (links, missing)
    }

    fn remember(&self, found: &Links, now: DateTime<Utc>) {
        let mut entries = lock(&self.entries);
        for (key, matches) in &found.by_key {
            let owners = matches
                .contacts
                .iter()
                .chain(&matches.leads)
                .filter_map(|id| Some((id.clone(), found.owners.get(id)?.clone())))
                .collect();
            let accounts = matches
                .contacts
                .iter()
                .filter_map(|id| Some((id.clone(), found.accounts.get(id)?.clone())))
                .collect();
            let matches = matches.clone();
            entries.insert(
                key.clone(),
                Cached {
                    at: now,
                    matches,
                    owners,
                    accounts,
                },
            );
        }
    }

    /// `user_id` was just stored on `id` (a `person`, owned by `owner`): the next message with
    /// it links there without asking Salesforce again.
    fn remember_holder(
        &self,
        user_id: &str,
        (person, id): (Person, &str),
        links: &Links,
        now: DateTime<Utc>,
    ) {
        let mut matches = Matches::default();
        matches.of_mut(person).insert(id.to_string());
        let of = |map: &HashMap<String, String>| {
            map.get(id)
                .map(|value| HashMap::from([(id.to_string(), value.clone())]))
                .unwrap_or_default()
        };
        lock(&self.entries).insert(
            Key::user_id(user_id),
            Cached {
                at: now,
                matches,
                owners: of(&links.owners),
                accounts: of(&links.accounts),
            },
        );
    }

    fn user_ids_usable(&self, now: DateTime<Utc>) -> bool {
        lock(&self.user_ids_refused_at).is_none_or(|at| now - at >= CACHE_FOR)
    }
}

/// Everything [`LinkLookup::find_cached`] needs besides the senders.
pub struct LinkLookup<'a> {
    pub salesforce: &'a SalesforceClient,
    pub cache: &'a LinkCache,
    pub default_region: Option<Country>,
    pub now: DateTime<Utc>,
}

impl LinkLookup<'_> {
    /// Who each of `senders` is: BSUIDs first (cached, then one query per object), then the
    /// phone numbers of the senders no BSUID found (cached, then one search). Returns the links
    /// and the queries made; a failed query fails the whole lookup (the caller retries the
    /// records later rather than link half of them), except the org refusing the BSUID query
    /// itself (the field not deployed): then phones alone are used, said once per [`CACHE_FOR`].
    pub async fn find_cached(&self, senders: &[Sender]) -> Result<(Links, usize), SalesforceError> {
        let mut queries = 0;
        let user_ids: BTreeSet<Key> = senders
            .iter()
            .flat_map(|s| [&s.user_id, &s.previous_user_id])
            .filter_map(|id| id.as_deref().map(Key::user_id))
            .collect();
        let mut links = Links::default();
        if !user_ids.is_empty() && self.cache.user_ids_usable(self.now) {
            let (cached, missing) = self.cache.split(&user_ids, self.now);
            links = cached;
            queries += self.look_up_user_ids(&missing, &mut links).await?;
        }
        let numbers: BTreeSet<Key> = senders
            .iter()
            .filter(|s| links.matches_for(s).is_none())
            .filter_map(|s| s.phone.clone().map(Key::Phone))
            .collect();
        let (cached, missing) = self.cache.split(&numbers, self.now);
        merge(&mut links, cached);
        let missing: BTreeSet<E164> = missing
            .into_iter()
            .filter_map(|key| match key {
                Key::Phone(number) => Some(number),
                Key::UserId(_) => None,
            })
            .collect();
        if !missing.is_empty() {
            let found = find_by_phone(self.salesforce, &missing, self.default_region).await?;
            queries += found.queries;
            self.cache.remember(&found.links, self.now);
            merge(&mut links, found.links);
        }
        Ok((links, queries))
    }

    /// The BSUID step for the `missing` keys (already split from the cache).
    async fn look_up_user_ids(
        &self,
        missing: &BTreeSet<Key>,
        links: &mut Links,
    ) -> Result<usize, SalesforceError> {
        let ids: BTreeSet<String> = missing
            .iter()
            .filter_map(|key| match key {
                Key::UserId(id) => Some(id.clone()),
                Key::Phone(_) => None,
            })
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        match find_by_user_id(self.salesforce, &ids).await {
            Ok(found) => {
                self.cache.remember(&found.links, self.now);
                merge(links, found.links);
                Ok(found.queries)
            }
            Err(error @ SalesforceError::Api { .. }) => {
                error!(%error, "Salesforce refused the lookup by WhatsApp user id; messages are linked by phone only for {} min (deploy the package's Contact and Lead field {USER_ID_FIELD} and give the integration user access to it)", CACHE_FOR.num_minutes());
                *lock(&self.cache.user_ids_refused_at) = Some(self.now);
                Ok(1)
            }
            Err(error) => Err(error),
        }
    }
}

fn merge(links: &mut Links, other: Links) {
    links.owners.extend(other.owners);
    links.accounts.extend(other.accounts);
    for (key, matches) in other.by_key {
        links.add(key, &matches);
    }
}

/// What storing BSUIDs on Contacts and Leads did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stored {
    /// Collections calls made (one per object with something to store).
    pub calls: usize,
    pub stored: usize,
    /// Refused by the org (validation rule, access): not asked again while sfwa runs.
    pub refused: usize,
}

/// Writes each sender's BSUID to the Contact / Lead it was linked to by phone
/// ([`Links::user_ids_to_store`]), one collections update per object. Never fails: a refused
/// record is logged once and remembered; a failed call (an outage) is retried with the next
/// message. The inbound records are written whatever happens here.
pub async fn store_user_ids(lookup: &LinkLookup<'_>, links: &Links, senders: &[Sender]) -> Stored {
    let (salesforce, cache) = (lookup.salesforce, lookup.cache);
    let mut outcome = Stored::default();
    if !cache.user_ids_usable(lookup.now) {
        return outcome;
    }
    let wanted: Vec<(Person, String, String)> = {
        let refused = lock(&cache.refused);
        links
            .user_ids_to_store(senders)
            .into_iter()
            .filter(|(_, id, _)| !refused.contains(id))
            .collect()
    };
    for person in Person::BOTH {
        let records: Vec<(String, Map<String, Value>)> = wanted
            .iter()
            .filter(|(p, _, _)| *p == person)
            .map(|(_, id, user_id)| {
                let mut fields = Map::new();
                fields.insert(USER_ID_FIELD.into(), json!(user_id));
                (id.clone(), fields)
            })
            .collect();
        if records.is_empty() {
            continue;
        }
        outcome.calls += 1;
        match salesforce.update(person.object(), &records).await {
            Ok(results) => {
                let written = Written {
                    person,
                    records: &records,
                    links,
                    now: lookup.now,
                };
                note_results(cache, &written, &results, &mut outcome);
            }
            Err(error) => {
                warn!(%error, object = person.object(), records = records.len(), "could not store WhatsApp user ids on linked records; tried again with the next message");
            }
        }
    }
    outcome
}

/// One collections update of BSUIDs onto Contacts or Leads.
struct Written<'a> {
    person: Person,
    records: &'a [(String, Map<String, Value>)],
    /// The links the BSUIDs were found by (owners and Accounts to remember with them).
    links: &'a Links,
    now: DateTime<Utc>,
}

/// Counts and logs what the org said to each BSUID write.
fn note_results(
    cache: &LinkCache,
    written: &Written<'_>,
    results: &[crate::salesforce::RecordResult],
    outcome: &mut Stored,
) {
    let person = written.person;
    for ((id, fields), result) in written.records.iter().zip(results) {
        if result.success {
            outcome.stored += 1;
            if let Some(user_id) = fields.get(USER_ID_FIELD).and_then(Value::as_str) {
                // Next time the BSUID finds this record directly, without a query.
                cache.remember_holder(user_id, (person, id), written.links, written.now);
            }
            info!(object = person.object(), record_id = %id, "stored the customer's WhatsApp user id on the linked record");
            continue;
        }
        let reason = result
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.status_code, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        let retryable = result
            .errors
            .iter()
            .all(|e| e.disposition() == crate::salesforce::Disposition::Retry);
        if retryable {
            continue;
        }
        outcome.refused += 1;
        if lock(&cache.refused).insert(id.clone()) {
            warn!(object = person.object(), record_id = %id, "Salesforce refused storing the customer's WhatsApp user id on the linked {}; its messages are still recorded and linked by phone, and sfwa will not try this record again until it restarts: {reason}", person.object());
        }
    }
}

#[cfg(test)]
mod tests;
