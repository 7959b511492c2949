use super::*;
use crate::domain::phone::region;
use chrono::Utc;

fn number(wa_id: &str) -> E164 {
    E164::from_wa_id(wa_id).unwrap()
}

fn candidate(id: &str, phone: Option<&str>, mobile: Option<&str>) -> Candidate {
    Candidate {
        id: id.into(),
        phone: phone.map(String::from),
        mobile_phone: mobile.map(String::from),
        owner_id: None,
        account_id: None,
        user_id: None,
    }
}

fn by_phone(wa_id: &str) -> Sender {
    Sender {
        phone: Some(number(wa_id)),
        user_id: None,
        previous_user_id: None,
    }
}

fn matches(contacts: &[&str], leads: &[&str]) -> Matches {
    Matches {
        contacts: contacts.iter().map(|s| s.to_string()).collect(),
        leads: leads.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn the_phone_search_asks_both_objects_for_every_number_by_its_national_digits() {
    let numbers = [number("14155550101"), number("442079460958")];

    let sosl = phone_search(&numbers).unwrap();

    assert_eq!(
        sosl,
        "FIND {2079460958 OR 4155550101} IN PHONE FIELDS RETURNING \
         Contact(Id, Phone, MobilePhone, OwnerId, AccountId), \
         Lead(Id, Phone, MobilePhone, OwnerId WHERE IsConverted = false)"
    );
    assert_eq!(phone_search(&[]), None);
}

#[test]
fn the_user_id_lookup_is_one_indexed_in_list_per_object_with_quotes_escaped() {
    let ids = ["US.13491208655302741918".to_string(), "BR.x'y".to_string()];

    let contacts = user_id_soql(Person::Contact, &ids);
    let leads = user_id_soql(Person::Lead, &ids);

    assert_eq!(
        contacts,
        "SELECT Id, Phone, MobilePhone, OwnerId, AccountId, WhatsApp_User_Id__c FROM Contact WHERE \
         WhatsApp_User_Id__c IN ('US.13491208655302741918', 'BR.x\\'y')"
    );
    assert!(leads.contains("FROM Lead WHERE IsConverted = false AND WhatsApp_User_Id__c IN ("));
}

#[test]
fn a_full_batch_of_ten_digit_numbers_is_one_search_within_soqls_operator_and_uri_limits() {
    let numbers: Vec<E164> = (0..200)
        .map(|i| number(&format!("1415555{i:04}")))
        .collect();

    let chunks = search_chunks(&numbers);
    let sosl = phone_search(&chunks[0]).unwrap();
    let inside = &sosl[sosl.find('{').unwrap() + 1..sosl.find('}').unwrap()];
    let encoded: String = url::form_urlencoded::byte_serialize(sosl.as_bytes()).collect();

    assert_eq!(chunks.len(), 1);
    assert!(inside.len() <= MAX_SEARCH_QUERY_CHARS, "{}", inside.len());
    // 16,384 bytes is Salesforce's limit for the URI and the headers together.
    assert!(encoded.len() < 8_000, "{} bytes", encoded.len());
}

#[test]
fn long_numbers_and_long_user_ids_are_cut_into_several_lookups() {
    let numbers: Vec<E164> = (0..300)
        .map(|i| number(&format!("1415555{i:04}")))
        .collect();
    let long_ids: Vec<String> = (0..100).map(|i| format!("US.{i:0>120}")).collect();

    let searches = search_chunks(&numbers);
    let queries = chunks_by(
        &long_ids,
        USER_IDS_PER_QUERY,
        USER_ID_LITERAL_CHARS,
        String::len,
    );

    assert_eq!(searches.len(), 2);
    assert_eq!(searches.iter().map(Vec::len).sum::<usize>(), 300);
    assert!(searches.iter().all(|c| c.len() <= NUMBERS_PER_SEARCH));
    assert!(queries.len() > 1, "{} queries", queries.len());
    for chunk in &queries {
        let soql = user_id_soql(Person::Lead, chunk);
        assert!(soql.len() < USER_ID_LITERAL_CHARS + 200, "{}", soql.len());
    }
}

#[test]
fn only_candidates_whose_number_normalises_to_the_sender_match() {
    let sender = number("14155550101");
    let numbers = BTreeSet::from([sender.clone()]);
    let candidates = [
        candidate("003A", Some("(415) 555-0101"), None),
        candidate("003B", None, Some("+1 415 555 0101")),
        candidate("003C", Some("(415) 555-0101"), Some("415.555.0101")),
        // The same national digits in another country: the search finds it, E.164 does not.
        candidate("003D", Some("+44 415 555 0101"), None),
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
    let sender = by_phone("14155550101");
    let mut links = Links::default();
    links.add(
        Key::Phone(number("14155550101")),
        &matches(&["003A", "003B"], &["00QA"]),
    );

    let fields = links.fields_for(&sender, "wamid.IN1");
    let nobody = links.fields_for(&by_phone("14155550199"), "wamid.IN2");

    assert!(!fields.contains_key("Contact__c"));
    assert_eq!(fields["Lead__c"], "00QA");
    assert_eq!(
        fields["Error_Message__c"],
        "Not linked: 2 Contacts have this phone number (003A, 003B). Link the right one by hand."
    );
    assert!(nobody.is_empty());
}

#[test]
fn the_one_linked_contacts_account_is_linked_and_an_ambiguous_contact_links_no_account() {
    let mut links = Links::default();
    links.add(
        Key::Phone(number("14155550101")),
        &matches(&["003A"], &["00QA"]),
    );
    links.add(
        Key::Phone(number("14155550102")),
        &matches(&["003B", "003C"], &[]),
    );
    for (contact, account) in [("003A", "001A"), ("003B", "001B"), ("003C", "001C")] {
        links.accounts.insert(contact.into(), account.into());
    }

    let one = links.fields_for(&by_phone("14155550101"), "wamid.1");
    let several = links.fields_for(&by_phone("14155550102"), "wamid.2");

    assert_eq!(one["Account__c"], "001A");
    assert_eq!(links.account_for(&by_phone("14155550101")), Some("001A"));
    assert!(!several.contains_key("Account__c"));
    assert_eq!(links.account_for(&by_phone("14155550102")), None);
}

#[test]
fn the_user_id_wins_over_the_phone_and_a_phone_link_asks_to_store_the_user_id() {
    let both = Sender {
        phone: Some(number("14155550101")),
        user_id: Some("US.1".into()),
        previous_user_id: None,
    };
    let new_user = Sender {
        phone: Some(number("14155550102")),
        user_id: Some("US.2".into()),
        previous_user_id: None,
    };
    let mut links = Links::default();
    links.add(Key::user_id("us.1"), &matches(&["003BYID"], &[]));
    links.add(
        Key::Phone(number("14155550101")),
        &matches(&["003BYPHONE"], &[]),
    );
    links.add(Key::user_id("US.2"), &Matches::default());
    links.add(
        Key::Phone(number("14155550102")),
        &matches(&["003NEW"], &["00QNEW"]),
    );

    let linked = links.fields_for(&both, "wamid.1");
    let to_store = links.user_ids_to_store([&both, &new_user]);

    assert_eq!(linked["Contact__c"], "003BYID");
    assert_eq!(
        to_store,
        vec![
            (Person::Contact, "003NEW".to_string(), "US.2".to_string()),
            (Person::Lead, "00QNEW".to_string(), "US.2".to_string()),
        ]
    );
}

#[test]
fn several_records_with_one_user_id_say_so_in_words() {
    let sender = Sender {
        phone: None,
        user_id: Some("US.9".into()),
        previous_user_id: None,
    };
    let mut links = Links::default();
    links.add(Key::user_id("US.9"), &matches(&["003A", "003B"], &[]));

    let fields = links.fields_for(&sender, "wamid.9");

    assert_eq!(
        fields["Error_Message__c"],
        "Not linked: 2 Contacts have this WhatsApp user id (003A, 003B). Link the right one by hand."
    );
    assert!(links.user_ids_to_store([&sender]).is_empty());
}

#[test]
fn only_inbound_record_upserts_with_a_phone_or_a_user_id_are_linked() {
    let item = |operation: Operation, fields: Value| OutboxItem {
        operation,
        object: "WhatsApp_Message__c".into(),
        record_id: "wamid.IN1".into(),
        fields: fields.as_object().cloned().unwrap_or_default(),
        version: 1,
        attempts: 0,
        first_enqueued_at: Utc::now(),
        last_error: None,
    };
    let upsert = || Operation::Upsert {
        external_id_field: WAMID_FIELD.into(),
    };
    let inbound = json!({"Direction__c": "Inbound", "From_Phone__c": "+14155550101"});
    let username_only =
        json!({"Direction__c": "Inbound", "From_User_Id__c": "US.13491208655302741918"});

    assert_eq!(
        sender(&item(upsert(), inbound.clone()), "WhatsApp_Message__c"),
        Some(by_phone("14155550101"))
    );
    assert_eq!(
        sender(&item(upsert(), username_only), "WhatsApp_Message__c"),
        Some(Sender {
            phone: None,
            user_id: Some("US.13491208655302741918".into()),
            previous_user_id: None,
        })
    );
    assert_eq!(
        sender(&item(Operation::Update, inbound), "WhatsApp_Message__c"),
        None
    );
    assert_eq!(
        sender(
            &item(upsert(), json!({"Direction__c": "Inbound"})),
            "WhatsApp_Message__c"
        ),
        None
    );
}

#[test]
fn answers_found_or_not_are_reused_for_fifteen_minutes_then_asked_again() {
    let cache = LinkCache::default();
    let now = Utc::now();
    let (hit, miss) = (
        Key::Phone(number("14155550101")),
        Key::Phone(number("14155550102")),
    );
    let mut found = Links::default();
    found.add(hit.clone(), &matches(&["003A"], &[]));
    found.add(miss.clone(), &Matches::default());
    cache.remember(&found, now);
    let keys = BTreeSet::from([hit.clone(), miss.clone()]);

    let (_, soon) = cache.split(&keys, now + chrono::Duration::minutes(14));
    let (_, later) = cache.split(&keys, now + MISS_CACHE_FOR);

    assert!(soon.is_empty(), "{soon:?}");
    assert!(later.contains(&miss) && later.contains(&hit), "{later:?}");
}

#[test]
fn a_new_user_id_nobody_holds_links_by_the_previous_one_and_is_stored_there() {
    let changed = Sender {
        phone: None,
        user_id: Some("US.NEW".into()),
        previous_user_id: Some("US.OLD".into()),
    };
    let fields = serde_json::json!({"From_User_Id__c": "US.NEW", "$previous_user_id": "US.OLD"});
    let mut links = Links::default();
    links.add(Key::user_id("US.NEW"), &Matches::default());
    links.add(Key::user_id("US.OLD"), &matches(&["003OLD"], &[]));

    let linked = links.fields_for(&changed, "wamid.CHANGED");
    let to_store = links.user_ids_to_store([&changed]);

    assert_eq!(
        sender_of(fields.as_object().unwrap()),
        Some(changed.clone())
    );
    assert_eq!(linked["Contact__c"], "003OLD");
    assert_eq!(
        to_store,
        vec![(Person::Contact, "003OLD".to_string(), "US.NEW".to_string())]
    );
}
