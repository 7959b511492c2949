//! The Composite resource of the Salesforce simulator (`POST composite`): its limits, one answer per
//! subrequest by referenceId, one API call in usage — and the client reading it
//! ([`SalesforceClient::write_composite`], [`SalesforceClient::query_many`]).
//!
//! [`SalesforceClient::write_composite`]: sfwa::salesforce::SalesforceClient::write_composite
//! [`SalesforceClient::query_many`]: sfwa::salesforce::SalesforceClient::query_many

use reqwest::Method;
use serde_json::{json, Map, Value};
use sfwa::salesforce::{CollectionWrite, SalesforceError};

use crate::helpers::{spawn_org, Org};

const MSG: &str = "WhatsApp_Message__c";

fn update_subrequest(reference: &str, ids: &[String], status: &str) -> Value {
    let records: Vec<Value> = ids
        .iter()
        .map(|id| json!({"attributes": {"type": MSG}, "id": id, "Status__c": status}))
        .collect();
    json!({
        "method": "PATCH",
        "url": "/services/data/v62.0/composite/sobjects",
        "referenceId": reference,
        "body": {"allOrNone": false, "records": records},
    })
}

fn query_subrequest(reference: &str) -> Value {
    json!({
        "method": "GET",
        "url": format!("/services/data/v62.0/query?q=SELECT+Id+FROM+{MSG}"),
        "referenceId": reference,
    })
}

async fn composite(org: &Org, token: &str, body: Value) -> (u16, Value) {
    let response = org
        .rest(Method::POST, token, "composite")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().expect("an object").clone()
}

#[tokio::test]
async fn each_subrequest_is_answered_by_its_reference_id_and_the_whole_counts_as_one_call() {
    // Arrange
    let org = spawn_org().await;
    let ids = org.seed(MSG, json!([{}, {}, {}])).await;
    let token = org.login().await;
    let before = org.stats().await["rest_calls"]["total"].as_u64().unwrap();

    // Act
    let (status, body) = composite(
        &org,
        &token,
        json!({"allOrNone": false, "compositeRequest": [
            update_subrequest("sent", &ids[..2], "Sent"),
            update_subrequest("bad", &ids[2..], "Not_A_Status"),
            query_subrequest("read"),
        ]}),
    )
    .await;

    // Assert
    assert_eq!(status, 200, "{body}");
    let answers = body["compositeResponse"].as_array().unwrap();
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0]["referenceId"], "sent");
    assert_eq!(answers[0]["httpStatusCode"], 200);
    assert_eq!(answers[0]["httpHeaders"], json!({}));
    assert_eq!(answers[0]["body"][1]["success"], true);
    assert_eq!(answers[1]["referenceId"], "bad");
    assert_eq!(answers[1]["body"][0]["success"], false);
    assert_eq!(
        answers[1]["body"][0]["errors"][0]["statusCode"],
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    );
    assert_eq!(answers[2]["referenceId"], "read");
    assert_eq!(answers[2]["body"]["totalSize"], 3);
    assert_eq!(
        org.sim.state().org().get(MSG, &ids[1]).unwrap()["Status__c"],
        "Sent"
    );
    let stats = org.stats().await;
    assert_eq!(stats["rest_calls"]["total"].as_u64().unwrap() - before, 1);
    assert_eq!(stats["rest_calls"]["by_endpoint"]["POST composite"], 1);
}

#[tokio::test]
async fn a_subrequest_refused_as_a_whole_carries_the_error_array_and_the_others_still_land() {
    let org = spawn_org().await;
    let ids = org.seed(MSG, json!([{}, {}])).await;
    let token = org.login().await;
    let unparseable = json!({
        "method": "PATCH",
        "url": "/services/data/v62.0/composite/sobjects",
        "referenceId": "poison",
        "body": {"allOrNone": false, "records": [
            {"attributes": {"type": MSG}, "id": ids[0], "Sent_At__c": "+58870-01-01T00:00:00.000Z"}
        ]},
    });

    let (status, body) = composite(
        &org,
        &token,
        json!({"allOrNone": false, "compositeRequest": [
            unparseable,
            update_subrequest("good", &ids[1..], "Sent"),
        ]}),
    )
    .await;

    assert_eq!(status, 200, "{body}");
    let answers = &body["compositeResponse"];
    assert_eq!(answers[0]["httpStatusCode"], 400);
    assert_eq!(answers[0]["body"][0]["errorCode"], "JSON_PARSER_ERROR");
    assert_eq!(answers[1]["httpStatusCode"], 200);
    assert_eq!(
        org.sim.state().org().get(MSG, &ids[1]).unwrap()["Status__c"],
        "Sent"
    );
}

#[tokio::test]
async fn more_than_five_collections_or_queries_or_25_subrequests_is_http_400() {
    let org = spawn_org().await;
    let ids = org.seed(MSG, json!([{}])).await;
    let token = org.login().await;
    let six: Vec<Value> = (0..6)
        .map(|n| {
            if n % 2 == 0 {
                query_subrequest(&format!("q{n}"))
            } else {
                update_subrequest(&format!("u{n}"), &ids, "Sent")
            }
        })
        .collect();
    let rows: Vec<Value> = (0..26)
        .map(|n| {
            json!({"method": "GET", "url": format!("/services/data/v62.0/sobjects/{MSG}/{}", ids[0]), "referenceId": format!("r{n}")})
        })
        .collect();

    let (six_status, six_body) = composite(
        &org,
        &token,
        json!({"allOrNone": false, "compositeRequest": six}),
    )
    .await;
    let (rows_status, rows_body) = composite(
        &org,
        &token,
        json!({"allOrNone": false, "compositeRequest": rows}),
    )
    .await;

    assert_eq!(six_status, 400);
    assert_eq!(six_body[0]["errorCode"], "LIMIT_EXCEEDED", "{six_body}");
    assert_eq!(rows_status, 400);
    assert_eq!(rows_body[0]["errorCode"], "LIMIT_EXCEEDED", "{rows_body}");
    assert_eq!(
        org.sim.state().org().get(MSG, &ids[0]).unwrap()["Status__c"],
        "Queued",
        "nothing of a refused composite request is written"
    );
}

#[tokio::test]
async fn all_or_none_true_is_refused_with_a_clear_400_instead_of_half_simulated() {
    let org = spawn_org().await;
    let ids = org.seed(MSG, json!([{}])).await;
    let token = org.login().await;

    let (status, body) = composite(
        &org,
        &token,
        json!({"allOrNone": true, "compositeRequest": [update_subrequest("u", &ids, "Sent")]}),
    )
    .await;

    assert_eq!(status, 400);
    assert!(
        body[0]["message"].as_str().unwrap().contains("allOrNone"),
        "{body}"
    );
}

#[tokio::test]
async fn the_client_reads_each_composite_write_as_its_own_collections_call() {
    // Arrange: one good collection and one with an Id of no record, in one composite call.
    let org = spawn_org().await;
    let ids = org.seed(MSG, json!([{}, {}])).await;
    let client = org.salesforce_client();
    let sent = fields(json!({"Status__c": "Sent"}));
    let good = CollectionWrite::update(MSG, [(ids[0].as_str(), &sent)]).unwrap();
    let upsert_on_missing_field = CollectionWrite::upsert(
        MSG,
        "Not_A_Field__c",
        &[fields(json!({"Not_A_Field__c": "x"}))],
    )
    .unwrap();
    let deleted = CollectionWrite::update(MSG, [(ids[1].as_str(), &sent)]).unwrap();
    let token = org.login().await;
    let removed = org
        .rest(
            Method::DELETE,
            &token,
            &format!("sobjects/{MSG}/{}", ids[1]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);

    // Act
    let answers = client
        .write_composite(vec![good, upsert_on_missing_field, deleted])
        .await
        .unwrap();

    // Assert
    assert_eq!(client.calls_made(), 1);
    assert_eq!(answers.len(), 3);
    assert!(answers[0].as_ref().unwrap()[0].success);
    assert!(matches!(
        answers[1],
        Err(SalesforceError::Api { status: 404, .. })
    ));
    let gone = &answers[2].as_ref().unwrap()[0];
    assert_eq!(gone.errors[0].status_code, "ENTITY_IS_DELETED");
}

#[tokio::test]
async fn the_client_reads_five_queries_in_one_call_and_follows_their_pages() {
    // Arrange: pages of 2 records, so each query has a nextRecordsUrl to follow.
    let mut config = sfwa_sim::salesforce::SalesforceSimConfig::for_tests();
    config.query_page_size = 2;
    let org = crate::helpers::spawn_org_with(config).await;
    let ids = org.seed(MSG, json!([{}, {}, {}, {}, {}, {}])).await;
    let client = org.salesforce_client();
    let soqls: Vec<String> = ids
        .chunks(1)
        .map(|chunk| {
            let ids: Vec<String> = chunk.iter().map(|id| format!("'{id}'")).collect();
            format!("SELECT Id FROM {MSG} WHERE Id IN ({})", ids.join(","))
        })
        .chain([format!("SELECT Id FROM {MSG}")])
        .collect();

    // Act
    let rows: Vec<Value> = client.query_many(&soqls).await.unwrap();

    // Assert: 7 queries are two composite calls (5, then 2); the full query's 6 rows take 3
    // pages, so 2 more GETs.
    assert_eq!(rows.len(), 6 + 6);
    let stats = org.stats().await;
    assert_eq!(stats["rest_calls"]["by_endpoint"]["POST composite"], 2);
    assert_eq!(stats["rest_calls"]["by_endpoint"]["GET query/{locator}"], 2);
}

#[tokio::test]
async fn the_records_of_a_thousand_events_are_read_in_one_call() {
    // Arrange: 1,000 records named by events (the stream's fetch, the retry loop's re-read).
    let app = crate::daemon_support::spawn_app().await;
    let records: Vec<Value> = (0..1000).map(|_| json!({"Status__c": "Queued"})).collect();
    let ids: Vec<sfwa::domain::sf_id::SfId> = app
        .seed(MSG, Value::Array(records))
        .await
        .iter()
        .map(|id| sfwa::domain::sf_id::SfId::parse(id).unwrap())
        .collect();
    let calls_before = app.org_stats().await["rest_calls"]["total"]
        .as_u64()
        .unwrap();

    // Act
    let read = sfwa::pipeline::intake::query_by_ids(
        &app.pipeline.intake,
        &ids,
        sfwa::pipeline::intake::ById::Any,
    )
    .await
    .unwrap();

    // Assert
    assert_eq!(read.len(), 1000);
    let stats = app.org_stats().await;
    assert_eq!(
        stats["rest_calls"]["total"].as_u64().unwrap() - calls_before,
        1
    );
    assert_eq!(stats["rest_calls"]["by_endpoint"]["POST composite"], 1);
}

#[tokio::test]
async fn an_expired_session_or_a_503_applies_to_the_composite_call_as_a_whole() {
    // Arrange
    let org = spawn_org().await;
    let ids = org.seed(MSG, json!([{}, {}])).await;
    let client = org.salesforce_client();
    let writes = |status: &str| {
        ids.iter()
            .map(|id| {
                let fields = fields(json!({"Status__c": status}));
                CollectionWrite::update(MSG, [(id.as_str(), &fields)]).unwrap()
            })
            .collect::<Vec<_>>()
    };
    client.session().await.unwrap();

    // Act: the session expires, then every request fails with 503.
    org.control("sessions/expire", json!({})).await;
    let after_expiry = client.write_composite(writes("Sent")).await;
    org.control("faults", json!({"error_503_rate": 1.0})).await;
    let during_outage = client.write_composite(writes("Read")).await;

    // Assert
    let answers = after_expiry.expect("one login more, then the call succeeds");
    assert!(answers.iter().all(|a| a.as_ref().unwrap()[0].success));
    assert_eq!(org.stats().await["token_requests"], 2);
    assert!(
        matches!(during_outage, Err(SalesforceError::Unavailable(_))),
        "{during_outage:?}"
    );
    assert_eq!(
        org.sim.state().org().get(MSG, &ids[0]).unwrap()["Status__c"],
        "Sent"
    );
}
