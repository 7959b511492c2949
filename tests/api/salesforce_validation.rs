//! The package's validation rules: the XML files and the org simulator's model of them cannot
//! drift; the simulator answers as Salesforce does for reps and for an integration user without
//! the exempting custom permission; the daemon turns such a refusal into a dead letter.

use std::collections::BTreeMap;
use std::path::PathBuf;

use reqwest::Method;
use serde_json::{json, Value};
use sfwa_sim::salesforce::validation::{Binds, RULES};

use crate::daemon_support::{spawn_app, MSG};
use crate::helpers::spawn_org;

fn rules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("salesforce/force-app/main/default/objects/WhatsApp_Message__c/validationRules")
}

struct RuleFile {
    active: String,
    formula: String,
    display_field: String,
    message: String,
}

fn rule_files() -> BTreeMap<String, RuleFile> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(rules_dir()).expect("the validationRules folder exists") {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let name = file
            .strip_suffix(".validationRule-meta.xml")
            .unwrap_or_else(|| panic!("{file} is not a validation rule file"))
            .to_string();
        let xml = std::fs::read_to_string(&path).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let text = |tag: &str| {
            doc.root_element()
                .children()
                .find(|c| c.has_tag_name(tag))
                .and_then(|c| c.text())
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        assert_eq!(text("fullName"), name, "{file}");
        files.insert(
            name,
            RuleFile {
                active: text("active"),
                formula: text("errorConditionFormula"),
                display_field: text("errorDisplayField"),
                message: text("errorMessage"),
            },
        );
    }
    files
}

#[test]
fn every_validation_rule_file_has_a_model_with_its_name_message_and_field_and_no_model_lacks_a_file(
) {
    let files = rule_files();

    let modelled: Vec<&str> = RULES.iter().map(|r| r.name).collect();
    let filed: Vec<&str> = files.keys().map(String::as_str).collect();
    let mut sorted = modelled.clone();
    sorted.sort();
    assert_eq!(sorted, filed, "rules in the package vs rules modelled");
    for rule in RULES {
        let file = &files[rule.name];
        assert_eq!(file.message, rule.error_message, "{}", rule.name);
        assert_eq!(
            file.display_field, rule.error_display_field,
            "{}",
            rule.name
        );
        assert_eq!(file.active, "true", "{}", rule.name);
        let first = match rule.binds {
            Binds::People => "AND(\n    NOT($Permission.WhatsApp_Integration_Writes),",
            Binds::Integration => "AND(\n    $Permission.WhatsApp_Integration_Writes,",
        };
        assert!(
            file.formula.starts_with(first),
            "{} must say first whom it binds ({first}): {}",
            rule.name,
            file.formula
        );
        assert!(
            file.message.len() <= 255,
            "{}: errorMessage too long",
            rule.name
        );
    }
}

async fn rep_write(
    org: &crate::helpers::Org,
    method: Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let response = org
        .http
        .request(method, org.url(&format!("/__sim/{path}?as=rep")))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_rep_may_create_queued_messages_requeue_failed_ones_and_cancel_queued_ones_only() {
    let org = spawn_org().await;

    let (created, ids) = rep_write(
        &org,
        Method::POST,
        &format!("records/{MSG}"),
        json!([{"Status__c": "Queued"}, {"Status__c": "Queued"}]),
    )
    .await;
    let (as_read, refused) = rep_write(
        &org,
        Method::POST,
        &format!("records/{MSG}"),
        json!({"Status__c": "Read", "WhatsApp_Message_Id__c": "wamid.X"}),
    )
    .await;
    let failed = org.seed(MSG, json!([{"Status__c": "Failed"}, {"Status__c": "Delivered", "WhatsApp_Message_Id__c": "wamid.D"}])).await;
    let (requeue_failed, _) = rep_write(
        &org,
        Method::PATCH,
        &format!("records/{MSG}/{}", failed[0]),
        json!({"Status__c": "Queued"}),
    )
    .await;
    let (requeue_delivered, requeue_refused) = rep_write(
        &org,
        Method::PATCH,
        &format!("records/{MSG}/{}", failed[1]),
        json!({"Status__c": "Queued"}),
    )
    .await;
    let (cancel, _) = rep_write(
        &org,
        Method::PATCH,
        &format!("records/{MSG}/{}", ids["ids"][0].as_str().unwrap()),
        json!({"Status__c": "Canceled"}),
    )
    .await;

    assert_eq!(created, 201);
    assert_eq!(as_read, 400);
    assert_eq!(
        refused["detail"],
        json!({"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
               "message": RULES[0].error_message, "fields": ["Status__c"]})
    );
    assert_eq!(requeue_failed, 200);
    assert_eq!(requeue_delivered, 400);
    assert_eq!(
        requeue_refused["detail"]["message"],
        "Only a Failed or Canceled message can be set back to Queued: to send this one again, create a new message."
    );
    assert_eq!(cancel, 200);
}

#[tokio::test]
async fn without_the_custom_permission_the_integration_user_meets_the_rules_on_every_kind_of_write()
{
    let org = spawn_org().await;
    let token = org.login().await;
    let ids = org.seed(MSG, json!([{"Status__c": "Queued"}])).await;
    org.control("permissions", json!({"integration_writes": false}))
        .await;

    let (single, single_body) = org
        .call(
            Method::PATCH,
            &token,
            &format!("sobjects/{MSG}/{}", ids[0]),
            json!({"Status__c": "Sending"}),
        )
        .await;
    let (collection, results) = org
        .call(
            Method::PATCH,
            &token,
            "composite/sobjects",
            json!({"allOrNone": false, "records": [
                {"attributes": {"type": MSG}, "id": ids[0], "Status__c": "Sent", "WhatsApp_Message_Id__c": "wamid.1"},
            ]}),
        )
        .await;
    let (upsert, upserted) = org
        .call(
            Method::PATCH,
            &token,
            &format!("composite/sobjects/{MSG}/WhatsApp_Message_Id__c"),
            json!({"allOrNone": false, "records": [
                {"attributes": {"type": MSG}, "WhatsApp_Message_Id__c": "wamid.in", "Direction__c": "Inbound", "Status__c": "Received"},
            ]}),
        )
        .await;

    assert_eq!(single, 400);
    assert_eq!(
        single_body,
        json!([{"message": RULES[2].error_message, "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "fields": ["Status__c"]}])
    );
    assert_eq!(collection, 200);
    assert_eq!(results[0]["success"], false);
    assert_eq!(
        results[0]["errors"][0]["statusCode"],
        "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    );
    assert_eq!(upsert, 200);
    assert_eq!(
        upserted[0]["errors"][0]["message"],
        "Inbound WhatsApp messages are created by sfwa when a customer writes; to write to a customer, create an Outbound message."
    );
}

#[tokio::test]
async fn a_write_back_a_validation_rule_refuses_becomes_one_dead_letter_naming_the_rule() {
    // Arrange: the integration user lost the exempting permission.
    let app = spawn_app().await;
    app.org_control("permissions", json!({"integration_writes": false}))
        .await;
    let ids = app
        .queue(json!([{"To_Phone__c": "+16505551234", "Message_Type__c": "Template", "Template_Name__c": "hello_world"}]))
        .await;
    app.dispatch().await;
    app.deliver_webhooks().await;
    let entry = app.journal(&ids[0]).await;
    assert!(
        entry
            .as_ref()
            .is_some_and(|e| e.state == sfwa::store::journal::JournalState::Read),
        "the customer has read it: {entry:?}"
    );

    // Act: two flushes; the second must not try the refused write again.
    app.flush().await;
    app.flush().await;

    // Assert
    let store = app.pipeline.core.store.clone();
    let (letters, pending) = store
        .read(|c| {
            Ok((
                sfwa::store::outbox::dead_letters(c, 10)?,
                sfwa::store::outbox::depth(c)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].item.record_id, ids[0]);
    assert!(
        letters[0]
            .reason
            .contains("FIELD_CUSTOM_VALIDATION_EXCEPTION")
            && letters[0].reason.contains(RULES[2].error_message),
        "{}",
        letters[0].reason
    );
    assert_eq!(pending, 0);
    assert_eq!(app.record(&ids[0])["Status__c"], "Queued");
    assert_eq!(app.wa_messages().await.len(), 1);
}
