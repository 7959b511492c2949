//! Linking inbound records to the Contact and Lead who wrote, by phone number, with one batched
//! lookup per object per flush.
//!
//! Orgs store phone numbers as people type them (`(415) 555-0101`, `+1 415-555-0101`,
//! `4155550101`), so an exact SOQL match on `+14155550101` finds nothing. Instead each lookup asks
//! for records whose Phone or MobilePhone ends with the number's last seven national digits, in
//! order, with anything between them (`LIKE '%5%5%5%0%1%0%1'`): that tolerates every separator and
//! any prefix (country code or not, trunk `0` or not). The candidates are then normalised locally
//! with the same rules as outbound numbers ([`E164::parse`], default region from the settings) and
//! only exact E.164 matches count.
//!
//! Exactly one matching Contact sets `Contact__c`, exactly one matching (unconverted) Lead sets
//! `Lead__c`. Several matches link nothing for that object — guessing would file a customer's
//! message under someone else — and the record says so in `Error_Message__c`, so a rep can link it
//! by hand. No match links nothing and writes nothing: an empty lookup never clears a link a rep
//! set.
//!
//! Answers are cached per number for [`CACHE_FOR`] (15 min, on the pipeline's clock, in memory):
//! a conversation's later messages cost no lookup. A Contact created meanwhile is linked from the
//! first message after that.
//!
//! Limits: a query carries at most [`NUMBERS_PER_QUERY`] numbers. Its text is then about 3.5 KB
//! (≈ 5.3 KB once URL-encoded into the GET), well inside SOQL's 100,000 characters and the REST
//! API's 16,384 bytes for URI plus headers (Salesforce Help 000386264; a longer URI is refused with
//! 414 / 431). A flush with more distinct numbers makes one more query per object per 50 numbers
//! (at most 4 per object for a full batch of 200 messages from 200 different customers). The
//! leading-wildcard LIKE scans the object; that is fine for the REST API (selectivity is only
//! enforced in triggers) and costs one call however many records the org has.

use std::collections::{BTreeSet, HashMap};

use phonenumber::country::Id as Country;
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::warn;

use crate::domain::phone::E164;
use crate::salesforce::soql_string;
use crate::salesforce::{SalesforceClient, SalesforceError};
use crate::store::outbox::{Operation, OutboxItem};

use super::inbound_records::WAMID_FIELD;
use super::record_update::{truncate, Fields};

/// Distinct customer numbers per lookup query (see the module docs for the arithmetic).
pub const NUMBERS_PER_QUERY: usize = 50;

/// How many trailing national digits the LIKE pattern pins down. Seven is the subscriber part in
/// most numbering plans: enough to keep the candidate list short, few enough that numbers stored
/// without their area or country code still match.
const PATTERN_DIGITS: usize = 7;

/// Ids listed in an ambiguity note per object (the note must fit Error_Message__c).
const IDS_IN_NOTE: usize = 10;

/// The lookups an inbound record can get.
pub const LINK_FIELDS: [&str; 2] = ["Contact__c", "Lead__c"];

/// The people a message can be linked to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Person {
    Contact,
    Lead,
}

impl Person {
    fn object(self) -> &'static str {
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
}

/// A Contact or Lead the lookup returned.
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
}

/// Who has each customer number: matching record Ids per number, per object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Links {
    contacts: HashMap<E164, BTreeSet<String>>,
    leads: HashMap<E164, BTreeSet<String>>,
    /// Contact / Lead Id → its OwnerId.
    owners: HashMap<String, String>,
}

impl Links {
    fn of(&self, person: Person) -> &HashMap<E164, BTreeSet<String>> {
        match person {
            Person::Contact => &self.contacts,
            Person::Lead => &self.leads,
        }
    }

    fn of_mut(&mut self, person: Person) -> &mut HashMap<E164, BTreeSet<String>> {
        match person {
            Person::Contact => &mut self.contacts,
            Person::Lead => &mut self.leads,
        }
    }

    /// The owner of the one Contact with `number`, else of the one Lead (several or none: `None`,
    /// as no link is made then either).
    pub fn owner_for(&self, number: &E164) -> Option<&str> {
        [Person::Contact, Person::Lead]
            .into_iter()
            .find_map(|person| {
                let ids = self.of(person).get(number)?;
                match ids.iter().collect::<Vec<_>>().as_slice() {
                    [only] => self.owners.get(*only).map(String::as_str),
                    _ => None,
                }
            })
    }

    /// The fields that link the record of message `wamid` from `number`: a lookup per object with
    /// exactly one match, and an `Error_Message__c` note naming the candidates where there were
    /// several (also logged). Empty when nobody has the number.
    pub fn fields_for(&self, number: &E164, wamid: &str) -> Fields {
        let mut fields = Fields::new();
        let mut ambiguous = Vec::new();
        for person in [Person::Contact, Person::Lead] {
            let ids: Vec<&String> = self
                .of(person)
                .get(number)
                .map(|ids| ids.iter().collect())
                .unwrap_or_default();
            match ids.as_slice() {
                [] => {}
                [only] => {
                    fields.insert(person.link_field().into(), json!(only));
                }
                several => {
                    warn!(%wamid, object = person.object(), candidates = ?several, "inbound message not linked: several records have the sender's number");
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
                    ambiguous.push(format!(
                        "{} {} have this phone number ({}{more})",
                        several.len(),
                        person.plural(),
                        listed.join(", ")
                    ));
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
}

/// The customer number of an outbox item that is an inbound record to link: an upsert of
/// `message_object` on the wamid that carries a parseable `From_Phone__c`.
pub fn customer_number(item: &OutboxItem, message_object: &str) -> Option<E164> {
    let is_inbound_record = matches!(&item.operation, Operation::Upsert { external_id_field } if external_id_field == WAMID_FIELD)
        && item.object == message_object
        && item.fields.get("Direction__c") == Some(&json!("Inbound"));
    if !is_inbound_record {
        return None;
    }
    let from = item.fields.get("From_Phone__c").and_then(Value::as_str)?;
    E164::parse(from, None).ok()
}

/// `%5%5%5%0%1%0%1` for `+14155550101`: the last seven national digits, in order, anything
/// between and before them, nothing after the last one.
pub fn like_pattern(number: &E164) -> String {
    let national = number.national_number();
    let digits: Vec<char> = national.chars().filter(char::is_ascii_digit).collect();
    let tail = &digits[digits.len().saturating_sub(PATTERN_DIGITS)..];
    tail.iter().map(|digit| format!("%{digit}")).collect()
}

/// One lookup query for up to [`NUMBERS_PER_QUERY`] numbers (the caller chunks).
pub fn lookup_soql(person: Person, numbers: &[E164]) -> String {
    let patterns: BTreeSet<String> = numbers.iter().map(like_pattern).collect();
    let any_number = patterns
        .iter()
        .flat_map(|pattern| {
            let literal = soql_string(pattern);
            [
                format!("Phone LIKE {literal}"),
                format!("MobilePhone LIKE {literal}"),
            ]
        })
        .collect::<Vec<_>>()
        .join(" OR ");
    let condition = match person.filter() {
        Some(filter) => format!("{filter} AND ({any_number})"),
        None => any_number,
    };
    format!(
        "SELECT Id, Phone, MobilePhone, OwnerId FROM {} WHERE {condition}",
        person.object()
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

/// Looks up who has each of `numbers`: one query per object per [`NUMBERS_PER_QUERY`] numbers.
/// Returns the links and the number of queries made; any failed query fails the whole lookup
/// (the caller retries the records later rather than link half of them).
#[tracing::instrument(skip_all, fields(numbers = numbers.len()))]
pub async fn find(
    salesforce: &SalesforceClient,
    numbers: &BTreeSet<E164>,
    default_region: Option<Country>,
) -> Result<(Links, usize), SalesforceError> {
    let mut links = Links::default();
    let mut queries = 0;
    let numbers_list: Vec<E164> = numbers.iter().cloned().collect();
    for chunk in numbers_list.chunks(NUMBERS_PER_QUERY) {
        for person in [Person::Contact, Person::Lead] {
            let candidates: Vec<Candidate> = salesforce.query(&lookup_soql(person, chunk)).await?;
            queries += 1;
            for (number, ids) in exact_matches(&candidates, numbers, default_region) {
                for id in &ids {
                    let owner = candidates.iter().find(|c| &c.id == id);
                    if let Some(owner) = owner.and_then(|c| c.owner_id.clone()) {
                        links.owners.insert(id.clone(), owner);
                    }
                }
                links.of_mut(person).entry(number).or_default().extend(ids);
            }
        }
    }
    Ok((links, queries))
}

/// How long a lookup's answer for a number is reused. A conversation's later messages then cost no
/// lookup; a Contact created meanwhile is linked from the next message after this.
pub const CACHE_FOR: chrono::Duration = chrono::Duration::minutes(15);

/// Recent lookup answers per number (including "nobody has it"), timed by the pipeline's clock.
#[derive(Debug, Default)]
pub struct LinkCache {
    entries: std::sync::Mutex<HashMap<E164, Cached>>,
}

#[derive(Clone, Debug)]
struct Cached {
    at: chrono::DateTime<chrono::Utc>,
    contacts: BTreeSet<String>,
    leads: BTreeSet<String>,
    /// The owners of those Contacts and Leads.
    owners: HashMap<String, String>,
}

impl LinkCache {
    /// Splits `numbers` into the links still cached at `now` and the numbers to look up.
    fn split(
        &self,
        numbers: &BTreeSet<E164>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> (Links, BTreeSet<E164>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, cached| now - cached.at < CACHE_FOR);
        let mut links = Links::default();
        let mut missing = BTreeSet::new();
        for number in numbers {
            match entries.get(number) {
                Some(cached) => links.add(number, cached),
                None => {
                    missing.insert(number.clone());
                }
            }
        }
        (links, missing)
    }

    fn remember(
        &self,
        numbers: &BTreeSet<E164>,
        found: &Links,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for number in numbers {
            let ids = |person| found.of(person).get(number).cloned().unwrap_or_default();
            let (contacts, leads) = (ids(Person::Contact), ids(Person::Lead));
            let owners = contacts
                .iter()
                .chain(&leads)
                .filter_map(|id| Some((id.clone(), found.owners.get(id)?.clone())))
                .collect();
            entries.insert(
                number.clone(),
                Cached {
                    at: now,
                    contacts,
                    leads,
                    owners,
                },
            );
        }
    }
}

impl Links {
    fn add(&mut self, number: &E164, cached: &Cached) {
        self.owners.extend(cached.owners.clone());
        for (person, ids) in [
            (Person::Contact, &cached.contacts),
            (Person::Lead, &cached.leads),
        ] {
            if !ids.is_empty() {
                self.of_mut(person)
                    .entry(number.clone())
                    .or_default()
                    .extend(ids.iter().cloned());
            }
        }
    }
}

/// [`find`] for the numbers `cache` has no recent answer for; the rest come from the cache.
pub async fn find_cached(
    salesforce: &SalesforceClient,
    cache: &LinkCache,
    numbers: &BTreeSet<E164>,
    default_region: Option<Country>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Links, usize), SalesforceError> {
    let (mut links, missing) = cache.split(numbers, now);
    if missing.is_empty() {
        return Ok((links, 0));
    }
    let (found, queries) = find(salesforce, &missing, default_region).await?;
    cache.remember(&missing, &found, now);
    links.owners.extend(found.owners.clone());
    for person in [Person::Contact, Person::Lead] {
        for (number, ids) in found.of(person) {
            links
                .of_mut(person)
                .entry(number.clone())
                .or_default()
                .extend(ids.iter().cloned());
        }
    }
    Ok((links, queries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::region;
    use chrono::Utc;
    use serde_json::Map;

    fn number(wa_id: &str) -> E164 {
        E164::from_wa_id(wa_id).unwrap()
    }

    fn candidate(id: &str, phone: Option<&str>, mobile: Option<&str>) -> Candidate {
        Candidate {
            id: id.into(),
            phone: phone.map(String::from),
            mobile_phone: mobile.map(String::from),
            owner_id: None,
        }
    }

    #[test]
    fn the_pattern_is_the_last_seven_national_digits_with_anything_between() {
        assert_eq!(like_pattern(&number("14155550101")), "%5%5%5%0%1%0%1");
        assert_eq!(like_pattern(&number("442079460958")), "%9%4%6%0%9%5%8");
    }

    #[test]
    fn the_lookup_asks_both_phone_fields_for_every_number_and_only_unconverted_leads() {
        let numbers = [number("14155550101"), number("14155550102")];

        let contacts = lookup_soql(Person::Contact, &numbers);
        let leads = lookup_soql(Person::Lead, &numbers);

        assert_eq!(
            contacts,
            "SELECT Id, Phone, MobilePhone, OwnerId FROM Contact WHERE \
             Phone LIKE '%5%5%5%0%1%0%1' OR MobilePhone LIKE '%5%5%5%0%1%0%1' OR \
             Phone LIKE '%5%5%5%0%1%0%2' OR MobilePhone LIKE '%5%5%5%0%1%0%2'"
        );
        assert!(leads.starts_with(
            "SELECT Id, Phone, MobilePhone, OwnerId FROM Lead WHERE IsConverted = false AND (Phone LIKE"
        ));
        assert!(leads.ends_with("'%5%5%5%0%1%0%2')"), "{leads}");
    }

    #[test]
    fn a_full_chunk_of_numbers_stays_far_below_salesforces_uri_limit() {
        let numbers: Vec<E164> = (0..NUMBERS_PER_QUERY)
            .map(|i| number(&format!("1415555{i:04}")))
            .collect();

        let soql = lookup_soql(Person::Lead, &numbers);
        let encoded: String = url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();

        // 16,384 bytes is Salesforce's limit for the URI and the headers together.
        assert!(encoded.len() < 6_000, "{} bytes", encoded.len());
    }

    #[test]
    fn only_candidates_whose_number_normalises_to_the_sender_match() {
        let sender = number("14155550101");
        let numbers = BTreeSet::from([sender.clone()]);
        let candidates = [
            candidate("003A", Some("(415) 555-0101"), None),
            candidate("003B", None, Some("+1 415 555 0101")),
            candidate("003C", Some("(415) 555-0101"), Some("415.555.0101")),
            // The same last seven digits in another area code: the LIKE finds it, E.164 does not.
            candidate("003D", Some("(650) 555-0101"), None),
            candidate("003E", Some("call reception"), None),
        ];

        let matches = exact_matches(&candidates, &numbers, Some(region("US").unwrap()));

        assert_eq!(
            matches.get(&sender),
            Some(&BTreeSet::from([
                "003A".into(),
                "003B".into(),
                "003C".into()
            ]))
        );
    }

    #[test]
    fn one_match_links_several_matches_leave_a_note_and_no_match_writes_nothing() {
        let sender = number("14155550101");
        let mut links = Links::default();
        links.contacts.insert(
            sender.clone(),
            BTreeSet::from(["003A".into(), "003B".into()]),
        );
        links
            .leads
            .insert(sender.clone(), BTreeSet::from(["00QA".into()]));

        let fields = links.fields_for(&sender, "wamid.IN1");
        let nobody = links.fields_for(&number("14155550199"), "wamid.IN2");

        assert!(!fields.contains_key("Contact__c"));
        assert_eq!(fields["Lead__c"], "00QA");
        assert_eq!(
            fields["Error_Message__c"],
            "Not linked: 2 Contacts have this phone number (003A, 003B). Link the right one by hand."
        );
        assert!(nobody.is_empty());
    }

    #[test]
    fn only_inbound_record_upserts_with_a_sender_are_linked() {
        let item = |operation: Operation, fields: Value| OutboxItem {
            operation,
            object: "WhatsApp_Message__c".into(),
            record_id: "wamid.IN1".into(),
            fields: fields.as_object().cloned().unwrap_or_else(Map::new),
            version: 1,
            attempts: 0,
            first_enqueued_at: Utc::now(),
            last_error: None,
        };
        let upsert = || Operation::Upsert {
            external_id_field: WAMID_FIELD.into(),
        };
        let inbound = json!({"Direction__c": "Inbound", "From_Phone__c": "+14155550101"});

        assert_eq!(
            customer_number(&item(upsert(), inbound.clone()), "WhatsApp_Message__c"),
            Some(number("14155550101"))
        );
        assert_eq!(
            customer_number(&item(Operation::Update, inbound), "WhatsApp_Message__c"),
            None
        );
        assert_eq!(
            customer_number(
                &item(upsert(), json!({"Direction__c": "Inbound"})),
                "WhatsApp_Message__c"
            ),
            None
        );
    }
}
