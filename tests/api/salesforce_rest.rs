//! REST API of the Salesforce simulator: rows, describe, collections, limits, usage and faults.

use reqwest::Method;
use serde_json::{json, Value};
use sfwa_sim::salesforce::SalesforceSimConfig;

use crate::helpers::{spawn_org, spawn_org_with};

const MSG: &str = "WhatsApp_Message__c";

#[tokio::test]
async fn create_read_update_delete_a_record_through_sobject_rows() {
    let org = spawn_org().await;
    let token = org.login().await;

    let created = org
        .rest(Method::POST, &token, &format!("sobjects/{MSG}"))
        .json(
            &json!({"To_Phone__c": "+1 650 555 1234", "Message_Type__c": "Text", "Body__c": "hi"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["success"], true);
    assert_eq!(created["errors"], json!([]));
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 18);
    assert!(id.starts_with("a00"));

    let patched = org
        .rest(Method::PATCH, &token, &format!("sobjects/{MSG}/{id}"))
        .json(&json!({"Status__c": "Sent"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 204);
    assert!(patched.bytes().await.unwrap().is_empty());

    let read: Value = org
        .rest(
            Method::GET,
            &token,
            &format!("sobjects/{MSG}/{}", &id[..15]),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["attributes"]["type"], MSG);
    assert_eq!(
        read["attributes"]["url"],
        format!(
            "/services/data/v{}/sobjects/{MSG}/{id}",
            sfwa::salesforce::API_VERSION
        )
    );
    assert_eq!(read["Status__c"], "Sent");
    assert_eq!(read["Direction__c"], "Outbound");
    assert!(read["CreatedDate"].as_str().unwrap().ends_with("+0000"));

    let deleted = org
        .rest(Method::DELETE, &token, &format!("sobjects/{MSG}/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = org
        .rest(Method::GET, &token, &format!("sobjects/{MSG}/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let body: Value = gone.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "ENTITY_IS_DELETED");
}

#[tokio::test]
async fn single_row_errors_use_error_code_at_top_level() {
    let org = spawn_org().await;
    let token = org.login().await;

    let response = org
        .rest(Method::POST, &token, &format!("sobjects/{MSG}"))
        .json(&json!({"Status__c": "Bogus"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!([{"message": "Status: bad value for restricted picklist field: Bogus",
                "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "fields": ["Status__c"]}])
    );
}

#[tokio::test]
async fn a_datetime_that_cannot_be_parsed_fails_the_request_as_json_parser_error() {
    let org = spawn_org().await;
    let token = org.login().await;

    let response = org
        .rest(Method::POST, &token, &format!("sobjects/{MSG}"))
        .json(&json!({"Scheduled_At__c": "tomorrow"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "JSON_PARSER_ERROR");
    assert!(body[0]["message"].as_str().unwrap().contains("datetime"));
}

#[tokio::test]
async fn an_unknown_object_is_404_not_found() {
    let org = spawn_org().await;
    let token = org.login().await;

    let response = org
        .rest(Method::GET, &token, "sobjects/Nope__c/describe")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!([{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}])
    );
}

#[tokio::test]
async fn describe_lists_fields_types_lengths_and_picklist_values_from_the_metadata() {
    let org = spawn_org().await;
    let token = org.login().await;

    let body: Value = org
        .rest(Method::GET, &token, &format!("sobjects/{MSG}/describe"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let field = |name: &str| {
        body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(body["keyPrefix"], "a00");
    assert_eq!(field("Status__c")["type"], "picklist");
    assert_eq!(field("Status__c")["restrictedPicklist"], true);
    let status_field = field("Status__c");
    let statuses: Vec<&str> = status_field["picklistValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "Queued",
            "Waiting for Reply",
            "Sending",
            "Sent",
            "Delivered",
            "Read",
            "Failed",
            "Canceled",
            "Received"
        ]
    );
    assert_eq!(field("Body__c")["type"], "textarea");
    assert_eq!(field("Body__c")["length"], 4096);
    assert_eq!(field("WhatsApp_Message_Id__c")["externalId"], true);
    assert_eq!(field("Scheduled_At__c")["type"], "datetime");
    assert_eq!(field("Contact__c")["referenceTo"], json!(["Contact"]));
    assert_eq!(field("Name")["autoNumber"], true);
}

#[tokio::test]
async fn query_pages_follow_next_records_url_until_done() {
    let mut config = SalesforceSimConfig::for_tests();
    config.query_page_size = 2;
    let org = spawn_org_with(config).await;
    let seeded = org
        .seed(MSG, json!([{"Body__c": "1"}, {"Body__c": "2"}, {"Body__c": "3"}, {"Body__c": "4"}, {"Body__c": "5"}]))
        .await;
    let token = org.login().await;

    let (status, first) = org
        .query(&token, &format!("SELECT Id, Body__c FROM {MSG}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(first["totalSize"], 5);
    assert_eq!(first["done"], false);
    let mut ids: Vec<String> = Vec::new();
    let mut page = first;
    loop {
        for record in page["records"].as_array().unwrap() {
            assert_eq!(record["attributes"]["type"], MSG);
            ids.push(record["Id"].as_str().unwrap().to_string());
        }
        if page["done"] == true {
            assert!(page.get("nextRecordsUrl").is_none());
            break;
        }
        let next = page["nextRecordsUrl"].as_str().unwrap();
        assert!(next.starts_with(&format!(
            "/services/data/v{}/query/01g",
            sfwa::salesforce::API_VERSION
        )));
        page = org
            .http
            .get(org.url(next))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    }

    assert_eq!(ids, seeded);
    assert_eq!(
        org.stats().await["rest_calls"]["by_endpoint"]["GET query/{locator}"],
        2
    );
}

#[tokio::test]
async fn an_empty_query_result_has_the_reference_shape() {
    let org = spawn_org().await;
    let token = org.login().await;

    let (status, body) = org.query(&token, &format!("SELECT Id FROM {MSG}")).await;

    assert_eq!(status, 200);
    assert_eq!(body, json!({"totalSize": 0, "done": true, "records": []}));
}

#[tokio::test]
async fn an_unknown_query_locator_is_invalid_query_locator() {
    let org = spawn_org().await;
    let token = org.login().await;

    let response = org
        .rest(Method::GET, &token, "query/01gXXXXXXXXXXXXAAA-2000")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "INVALID_QUERY_LOCATOR");
}

#[tokio::test]
async fn collection_update_accepts_lowercase_and_uppercase_id_and_reports_each_record() {
    let org = spawn_org().await;
    let ids = org.seed(MSG, json!([{}, {}])).await;
    let token = org.login().await;

    let response = org
        .rest(Method::PATCH, &token, "composite/sobjects")
        .json(&json!({"allOrNone": false, "records": [
            {"attributes": {"type": MSG}, "id": ids[0], "Status__c": "Sent"},
            {"attributes": {"type": MSG}, "Id": ids[1], "Status__c": "Delivered"},
        ]}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!([{"id": ids[0], "success": true, "errors": []}, {"id": ids[1], "success": true, "errors": []}])
    );
    let stored = org.sim.state().org();
    assert_eq!(stored.get(MSG, &ids[0]).unwrap()["Status__c"], "Sent");
    assert_eq!(stored.get(MSG, &ids[1]).unwrap()["Status__c"], "Delivered");
}

#[tokio::test]
async fn collection_update_reports_per_record_errors_in_order_without_stopping_the_others() {
    let org = spawn_org().await;
    let ids = org
        .seed(
            MSG,
            json!([{}, {}, {}, {"WhatsApp_Message_Id__c": "wamid.TAKEN"}]),
        )
        .await;
    let deleted = &ids[2];
    let token = org.login().await;
    org.rest(Method::DELETE, &token, &format!("sobjects/{MSG}/{deleted}"))
        .send()
        .await
        .unwrap();
    let long_code = "X".repeat(33);

    let body: Value = org.call(Method::PATCH, &token, "composite/sobjects", json!({"allOrNone": false, "records": [
            {"attributes": {"type": MSG}, "id": ids[0], "Nope__c": "x"},
            {"attributes": {"type": MSG}, "id": ids[0], "Status__c": "Bogus"},
            {"attributes": {"type": MSG}, "id": ids[0], "Error_Code__c": long_code},
            {"attributes": {"type": MSG}, "id": deleted, "Status__c": "Sent"},
            {"attributes": {"type": MSG}, "id": "a00notanid", "Status__c": "Sent"},
            {"attributes": {"type": MSG}, "id": ids[1], "WhatsApp_Message_Id__c": "wamid.TAKEN"},
            {"attributes": {"type": MSG}, "id": ids[1], "Status__c": "Read"},
        ]})).await.1;

    let codes: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["errors"]
                .get(0)
                .map_or("OK", |e| e["statusCode"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        codes,
        [
            "INVALID_FIELD",
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "STRING_TOO_LONG",
            "ENTITY_IS_DELETED",
            "MALFORMED_ID",
            "DUPLICATE_VALUE",
            "OK"
        ]
    );
    assert_eq!(
        body[3]["errors"][0],
        json!({"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []})
    );
    assert_eq!(
        body[2]["errors"][0]["message"],
        "Error Code: data value too large: XXXXXXXXXXXXXXXXX... (max length=32)"
    );
    assert_eq!(
        body[5]["errors"][0]["message"],
        format!(
            "duplicate value found: WhatsApp_Message_Id__c duplicates value on record with id: {}",
            ids[3]
        )
    );
    assert_eq!(
        org.sim.state().org().get(MSG, &ids[1]).unwrap()["Status__c"],
        "Read"
    );
}

#[tokio::test]
async fn a_datetime_the_api_cannot_parse_refuses_the_whole_collection_and_an_out_of_range_year_only_its_record(
) {
    let org = spawn_org().await;
    let ids = org.seed(MSG, json!([{}, {}])).await;
    let token = org.login().await;

    let (unparseable_status, unparseable) = org
        .call(
            Method::PATCH,
            &token,
            "composite/sobjects",
            json!({"allOrNone": false, "records": [
                {"attributes": {"type": MSG}, "id": ids[0], "Status__c": "Sent"},
                {"attributes": {"type": MSG}, "id": ids[1], "Sent_At__c": "+58870-01-01T00:00:00.000Z"},
            ]}),
        )
        .await;
    let after_refusal = org.sim.state().org().get(MSG, &ids[0]).unwrap()["Status__c"].clone();
    let (out_of_range_status, out_of_range) = org
        .call(
            Method::PATCH,
            &token,
            "composite/sobjects",
            json!({"allOrNone": false, "records": [
                {"attributes": {"type": MSG}, "id": ids[0], "Status__c": "Delivered"},
                {"attributes": {"type": MSG}, "id": ids[1], "Sent_At__c": "5000-01-01T00:00:00.000Z"},
            ]}),
        )
        .await;

    assert_eq!(unparseable_status, 400);
    assert_eq!(unparseable[0]["errorCode"], "JSON_PARSER_ERROR");
    let message = unparseable[0]["message"].as_str().unwrap();
    assert!(
        message.contains("datetime") && message.contains("+58870-01-01T00:00:00.000Z"),
        "{message}"
    );
    assert_eq!(out_of_range_status, 200);
    assert_eq!(out_of_range[0]["success"], true);
    assert_eq!(
        out_of_range[1]["errors"][0]["statusCode"],
        "FIELD_INTEGRITY_EXCEPTION"
    );
    assert_eq!(
        out_of_range[1]["errors"][0]["fields"],
        json!(["Sent_At__c"])
    );
    assert_eq!(after_refusal, "Queued", "the refused call wrote nothing");
    let stored = org.sim.state().org();
    assert_eq!(stored.get(MSG, &ids[0]).unwrap()["Status__c"], "Delivered");
    assert!(stored.get(MSG, &ids[1]).unwrap()["Sent_At__c"].is_null());
}

#[tokio::test]
async fn all_or_none_rolls_back_every_record_when_one_fails() {
    let org = spawn_org().await;
    let ids = org.seed(MSG, json!([{}, {}])).await;
    let token = org.login().await;

    let body: Value = org
        .call(
            Method::PATCH,
            &token,
            "composite/sobjects",
            json!({"allOrNone": true, "records": [
                {"attributes": {"type": MSG}, "id": ids[0], "Status__c": "Sent"},
                {"attributes": {"type": MSG}, "id": ids[1], "Status__c": "Bogus"},
            ]}),
        )
        .await
        .1;

    assert_eq!(body[0]["success"], false);
    assert_eq!(
        body[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(
        body[1]["errors"][0]["statusCode"],
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    );
    assert_eq!(
        org.sim.state().org().get(MSG, &ids[0]).unwrap()["Status__c"],
        "Queued"
    );
}

#[tokio::test]
async fn collection_create_returns_new_ids_and_with_all_or_none_creates_nothing_on_failure() {
    let org = spawn_org().await;
    let token = org.login().await;
    let records = |status: &str| {
        json!([
            {"attributes": {"type": MSG}, "Direction__c": "Inbound", "Status__c": "Received"},
            {"attributes": {"type": MSG}, "Direction__c": "Inbound", "Status__c": status},
        ])
    };

    let ok: Value = org
        .call(
            Method::POST,
            &token,
            "composite/sobjects",
            json!({"allOrNone": true, "records": records("Received")}),
        )
        .await
        .1;
    let rolled_back: Value = org
        .call(
            Method::POST,
            &token,
            "composite/sobjects",
            json!({"allOrNone": true, "records": records("Nope")}),
        )
        .await
        .1;

    assert!(ok
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["success"] == true && r["id"].is_string()));
    assert!(rolled_back
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["success"] == false));
    assert_eq!(org.stats().await["records"][MSG], 2);
}

#[tokio::test]
async fn upsert_by_external_id_creates_then_updates_and_says_which() {
    let org = spawn_org().await;
    let token = org.login().await;
    let upsert = |body: &'static str| {
        org.rest(Method::PATCH, &token, &format!("composite/sobjects/{MSG}/WhatsApp_Message_Id__c"))
            .json(&json!({"allOrNone": false, "records": [
                {"attributes": {"type": MSG}, "WhatsApp_Message_Id__c": "wamid.IN1", "Direction__c": "Inbound",
                 "Status__c": "Received", "Body__c": body}
            ]}))
            .send()
    };

    let first: Value = upsert("first").await.unwrap().json().await.unwrap();
    let second: Value = upsert("second").await.unwrap().json().await.unwrap();

    assert_eq!(first[0]["created"], true);
    assert_eq!(second[0]["created"], false);
    assert_eq!(first[0]["id"], second[0]["id"]);
    assert_eq!(org.stats().await["records"][MSG], 1);
}

#[tokio::test]
async fn more_than_200_records_in_a_collection_is_http_400() {
    let org = spawn_org().await;
    let token = org.login().await;
    let records: Vec<Value> = (0..201)
        .map(|_| json!({"attributes": {"type": MSG}}))
        .collect();

    let response = org
        .rest(Method::POST, &token, "composite/sobjects")
        .json(&json!({"allOrNone": false, "records": records}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "EXCEEDED_ID_LIMIT");
    assert_eq!(org.stats().await["records"][MSG], 0);
}

#[tokio::test]
async fn every_rest_response_carries_sforce_limit_info_and_limits_agree() {
    let org = spawn_org().await;
    let token = org.login().await;

    let first = org
        .rest(Method::GET, &token, &format!("sobjects/{MSG}/describe"))
        .send()
        .await
        .unwrap();
    let limits = org
        .rest(Method::GET, &token, "limits")
        .send()
        .await
        .unwrap();

    assert_eq!(first.headers()["sforce-limit-info"], "api-usage=1/15000");
    assert_eq!(limits.headers()["sforce-limit-info"], "api-usage=2/15000");
    let body: Value = limits.json().await.unwrap();
    assert_eq!(
        body["DailyApiRequests"],
        json!({"Max": 15000, "Remaining": 14998})
    );
}

#[tokio::test]
async fn usage_is_counted_per_endpoint_and_one_collection_call_counts_once() {
    let org = spawn_org().await;
    let ids = org.seed(MSG, json!([{}, {}, {}])).await;
    let token = org.login().await;
    let records: Vec<Value> = ids
        .iter()
        .map(|id| json!({"attributes": {"type": MSG}, "id": id, "Status__c": "Sent"}))
        .collect();

    org.rest(Method::PATCH, &token, "composite/sobjects")
        .json(&json!({"allOrNone": false, "records": records}))
        .send()
        .await
        .unwrap();
    org.query(&token, &format!("SELECT Id FROM {MSG}")).await;

    let stats = org.stats().await;
    assert_eq!(stats["rest_calls"]["total"], 2);
    assert_eq!(
        stats["rest_calls"]["by_endpoint"]["PATCH composite/sobjects"],
        1
    );
    assert_eq!(stats["rest_calls"]["by_endpoint"]["GET query"], 1);
}

#[tokio::test]
async fn a_spent_daily_allowance_answers_403_request_limit_exceeded() {
    let mut config = SalesforceSimConfig::for_tests();
    config.daily_api_allowance = 2;
    let org = spawn_org_with(config).await;
    let token = org.login().await;

    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            org.rest(Method::GET, &token, "limits")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    let over = org
        .rest(Method::GET, &token, "limits")
        .send()
        .await
        .unwrap();

    assert_eq!(statuses, [200, 200, 403]);
    assert_eq!(over.status(), 403);
    let body: Value = over.json().await.unwrap();
    assert_eq!(
        body,
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    );
}

#[tokio::test]
async fn an_unsupported_api_version_is_404() {
    let org = spawn_org().await;
    let token = org.login().await;

    let response = org
        .http
        .get(org.url("/services/data/v99.0/limits"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn injected_500_and_503_faults_use_salesforce_error_shapes() {
    let org = spawn_org().await;
    let token = org.login().await;

    org.control("faults", json!({"error_500_rate": 1.0})).await;
    let failing = org
        .rest(Method::GET, &token, "limits")
        .send()
        .await
        .unwrap();
    org.control("faults", json!({"error_503_rate": 1.0})).await;
    let unavailable = org
        .rest(Method::GET, &token, "limits")
        .send()
        .await
        .unwrap();
    org.control("faults", json!({})).await;
    let healthy = org
        .rest(Method::GET, &token, "limits")
        .send()
        .await
        .unwrap();

    assert_eq!(failing.status(), 500);
    assert_eq!(
        failing.json::<Value>().await.unwrap()[0]["errorCode"],
        "UNKNOWN_EXCEPTION"
    );
    assert_eq!(unavailable.status(), 503);
    assert_eq!(
        unavailable.json::<Value>().await.unwrap()[0]["errorCode"],
        "SERVER_UNAVAILABLE"
    );
    assert_eq!(healthy.status(), 200);
}

#[tokio::test]
async fn lock_row_faults_fail_records_with_unable_to_lock_row() {
    let org = spawn_org().await;
    let ids = org.seed(MSG, json!([{}])).await;
    let token = org.login().await;
    org.control("faults", json!({"lock_row_rate": 1.0})).await;

    let body: Value = org.call(Method::PATCH, &token, "composite/sobjects", json!({"allOrNone": false, "records": [{"attributes": {"type": MSG}, "id": ids[0], "Status__c": "Sent"}]})).await.1;

    assert_eq!(
        body[0]["errors"][0],
        json!({"statusCode": "UNABLE_TO_LOCK_ROW",
               "message": format!("unable to obtain exclusive access to this record or 1 records: {}", ids[0]), "fields": []})
    );
}

#[tokio::test]
async fn a_dropped_connection_fails_the_client_after_the_write_took_effect() {
    let org = spawn_org().await;
    let ids = org.seed(MSG, json!([{}])).await;
    let token = org.login().await;
    org.control("faults", json!({"drop_connection_rate": 1.0}))
        .await;

    let outcome = async {
        org.rest(Method::PATCH, &token, &format!("sobjects/{MSG}/{}", ids[0]))
            .json(&json!({"Status__c": "Sent"}))
            .send()
            .await?
            .bytes()
            .await
    }
    .await;

    assert!(
        outcome.is_err(),
        "the client must see a broken response, got {outcome:?}"
    );
    assert_eq!(
        org.sim.state().org().get(MSG, &ids[0]).unwrap()["Status__c"],
        "Sent"
    );
}

#[tokio::test]
async fn added_latency_delays_responses() {
    let org = spawn_org().await;
    let token = org.login().await;
    org.control("faults", json!({"latency_ms": 150})).await;

    let started = std::time::Instant::now();
    org.rest(Method::GET, &token, "limits")
        .send()
        .await
        .unwrap();

    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
}

#[tokio::test]
async fn the_control_api_counts_records_by_the_values_of_the_fields_asked_and_refuses_an_unknown_field(
) {
    // Arrange
    let org = spawn_org().await;
    let record = |status: &str| json!({"To_Phone__c": "+16505551234", "Message_Type__c": "Text", "Body__c": "hi", "Status__c": status});
    crate::helpers::seed_records(
        &org.http,
        &org.sim.url(),
        MSG,
        json!([record("Queued"), record("Read"), record("Queued")]),
    )
    .await;

    // Act
    let counted: Value = org
        .http
        .get(org.url(&format!("/__sim/records/{MSG}?group_by=status__c")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let unknown = org
        .http
        .get(org.url(&format!("/__sim/records/{MSG}?group_by=No_Such__c")))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(
        counted["counts"],
        json!([{"Status__c": "Queued", "count": 2}, {"Status__c": "Read", "count": 1}])
    );
    assert_eq!(unknown.status(), 400);
}
