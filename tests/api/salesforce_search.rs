//! SOSL `GET search` on the org simulator, through the daemon's own client
//! ([`SalesforceClient::search`]): phone fields matched by digits however they were typed,
//! RETURNING filters, Salesforce's errors, and the search index's lag on the simulator's clock.

use serde_json::{json, Value};
use sfwa::salesforce::sosl::sosl_term;
use sfwa::salesforce::{SalesforceClient, SalesforceError};

use crate::helpers::{seed_records, spawn_org, Org};

fn client(org: &Org) -> SalesforceClient {
    org.salesforce_client()
}

async fn seed(org: &Org, object: &str, records: Value) -> Vec<String> {
    seed_records(&org.http, &org.sim.url(), object, records).await
}

fn ids_of(records: &[Value], object: &str) -> Vec<String> {
    let mut ids: Vec<String> = records
        .iter()
        .filter(|r| r["attributes"]["type"] == object)
        .map(|r| r["Id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

const PHONE_SEARCH: &str = "FIND {4155550101} IN PHONE FIELDS RETURNING \
    Contact(Id, Phone, MobilePhone), Lead(Id, Phone WHERE IsConverted = false)";

#[tokio::test]
async fn a_phone_search_finds_the_number_however_it_was_typed_and_applies_the_returning_filter() {
    let org = spawn_org().await;
    let mut contacts = seed(
        &org,
        "Contact",
        json!([
            {"LastName": "Parens", "Phone": "(415) 555-0101"},
            {"LastName": "Intl", "MobilePhone": "+1 415 555 0101"},
            {"LastName": "Digits", "Phone": "4155550101"},
            {"LastName": "Other area", "Phone": "(650) 555-0101"},
        ]),
    )
    .await;
    let leads = seed(
        &org,
        "Lead",
        json!([
            {"LastName": "Open", "Company": "Acme", "Phone": "415.555.0101"},
            {"LastName": "Converted", "Company": "Acme", "Phone": "415.555.0101"},
        ]),
    )
    .await;
    org.sim
        .state()
        .org()
        .convert_lead(&leads[1], org.sim.clock().now())
        .unwrap();

    let records = client(&org).search(PHONE_SEARCH).await.unwrap();

    contacts.truncate(3);
    contacts.sort();
    assert_eq!(ids_of(&records, "Contact"), contacts);
    assert_eq!(ids_of(&records, "Lead"), vec![leads[0].clone()]);
    let first = &records[0];
    assert_eq!(first["attributes"]["type"], "Contact");
    assert_eq!(
        first["attributes"]["url"],
        format!(
            "/services/data/v{}/sobjects/Contact/{}",
            sfwa::salesforce::API_VERSION,
            first["Id"].as_str().unwrap()
        )
    );
    assert!(first.get("Phone").is_some() && first.get("LastName").is_none());
}

#[tokio::test]
async fn a_search_without_braces_is_malformed_and_an_unknown_returning_field_is_invalid() {
    let org = spawn_org().await;
    let client = client(&org);

    let no_braces = client
        .search("FIND 4155550101 IN PHONE FIELDS")
        .await
        .unwrap_err();
    let unknown_field = client
        .search("FIND {4155550101} IN PHONE FIELDS RETURNING Contact(Id, Fax__c)")
        .await
        .unwrap_err();
    let unescaped = client
        .search("FIND {+14155550101} IN PHONE FIELDS")
        .await
        .unwrap_err();
    let escaped = client
        .search(&format!(
            "FIND {{{}}} IN PHONE FIELDS",
            sosl_term("+14155550101")
        ))
        .await;

    let code = |error: &SalesforceError| match error {
        SalesforceError::Api {
            status, error_code, ..
        } => (*status, error_code.clone()),
        other => panic!("not an API error: {other:?}"),
    };
    assert_eq!(code(&no_braces), (400, "MALFORMED_SEARCH".to_string()));
    assert_eq!(code(&unknown_field), (400, "INVALID_FIELD".to_string()));
    assert_eq!(code(&unescaped), (400, "MALFORMED_SEARCH".to_string()));
    assert!(escaped.is_ok(), "{escaped:?}");
}

#[tokio::test]
async fn a_new_record_is_searchable_only_once_the_index_has_caught_up() {
    let org = spawn_org().await;
    org.sim
        .state()
        .set_search_index_lag(chrono::Duration::seconds(90));
    let lead = seed(
        &org,
        "Lead",
        json!([{"LastName": "Rivera", "Company": "Acme", "MobilePhone": "+14155550101"}]),
    )
    .await;
    let client = client(&org);

    let at_once = client.search(PHONE_SEARCH).await.unwrap();
    org.sim.clock().shift(chrono::Duration::seconds(91));
    let later = client.search(PHONE_SEARCH).await.unwrap();

    assert!(at_once.is_empty(), "{at_once:?}");
    assert_eq!(ids_of(&later, "Lead"), lead);
}
