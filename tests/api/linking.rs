//! Inbound records linked to the right Contact / Lead: by the customer's business-scoped WhatsApp
//! user id (BSUID) first, then by phone through one SOSL search; the BSUID stored on the record a
//! phone found; a refusal of that write never holding the message back; the relink job for
//! records that matched nobody while the search index lagged. The real daemon's write-back flush
//! against the org simulator, driven step by step.
//!
//! The inbound records are queued in the outbox as the webhook step queues them (an upsert on the
//! wamid), with `From_User_Id__c` set as the webhook parser sets it for a customer with a
//! username; the org simulator's message object gets that field here if the package in this
//! build does not have it yet.

use std::sync::Arc;

use chrono::Duration;
use serde_json::{json, Map, Value};
use sfwa::pipeline::inbound_records::WAMID_FIELD;
use sfwa::pipeline::relink;
use sfwa::store::outbox;
use sfwa_sim::salesforce::schema::Schema;
use sfwa_sim::salesforce::validation::OrgRule;

use crate::daemon_support::{spawn_app_with, Options, TestApp, MSG};

/// A customer with a username: Meta gives the BSUID, and the phone only sometimes.
const BSUID: &str = "US.13491208655302741918";
const PHONE: &str = "+14155550101";

/// The package's schema, with the inbound record's BSUID field whatever this build's package has.
fn options() -> Options {
    let mut options = Options {
        // The JWT's expiry is checked against the simulator's (shifted) clock.
        tune: Box::new(|s| s.salesforce.auth = sfwa::config::AuthMode::ClientCredentials),
        ..Options::default()
    };
    let schema = Schema::embedded()
        .unwrap()
        .with_text_field(MSG, "From_User_Id__c", 140);
    options.org.schema = Arc::new(schema);
    options
}

/// Queues the inbound record of message `wamid` from `phone` and/or `user_id`, as the webhook
/// step does.
async fn customer_writes(app: &TestApp, wamid: &str, phone: Option<&str>, user_id: Option<&str>) {
    let mut fields = Map::new();
    fields.insert("Direction__c".into(), json!("Inbound"));
    fields.insert("Status__c".into(), json!("Received"));
    fields.insert("Message_Type__c".into(), json!("Text"));
    fields.insert("Body__c".into(), json!("hello, it's me"));
    fields.insert(
        "Business_Number_Id__c".into(),
        json!(app.wa.phone_number_id()),
    );
    if let Some(phone) = phone {
        fields.insert("From_Phone__c".into(), json!(phone));
    }
    if let Some(user_id) = user_id {
        fields.insert("From_User_Id__c".into(), json!(user_id));
    }
    queue_inbound(app, wamid, fields).await;
}

/// Queues an inbound record's fields in the outbox, keyed by its wamid.
async fn queue_inbound(app: &TestApp, wamid: &str, fields: Map<String, Value>) {
    let (wamid, now) = (wamid.to_string(), app.clock.now());
    app.pipeline
        .core
        .store
        .write(move |tx| {
            outbox::enqueue_upsert(tx, MSG, WAMID_FIELD, &wamid, &fields, now)?;
            Ok(())
        })
        .await
        .unwrap();
}

/// The org's record of message `wamid`.
fn record_of(app: &TestApp, wamid: &str) -> Value {
    let guard = app.org.state().org();
    let record = guard
        .rows(MSG)
        .find(|r| r["WhatsApp_Message_Id__c"] == wamid)
        .unwrap_or_else(|| panic!("no record for {wamid}"));
    Value::Object(record.clone())
}

fn row(app: &TestApp, object: &str, id: &str) -> Value {
    Value::Object(app.org.state().org().get(object, id).unwrap().clone())
}

async fn searches(app: &TestApp) -> u64 {
    app.org_stats().await["rest_calls"]["by_endpoint"]["GET search"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_message_with_only_a_user_id_links_to_the_contact_holding_it_without_a_search() {
    let app = spawn_app_with(options()).await;
    let contacts = app
        .seed(
            "Contact",
            json!([
                {"LastName": "Rivera", "WhatsApp_User_Id__c": BSUID},
                {"LastName": "Someone else", "Phone": "(415) 555-0101"},
            ]),
        )
        .await;

    customer_writes(&app, "wamid.USERNAME1", None, Some(BSUID)).await;
    let flushed = app.flush().await;

    let record = record_of(&app, "wamid.USERNAME1");
    assert_eq!(record["Contact__c"], contacts[0].as_str(), "{record}");
    assert!(record["Lead__c"].is_null(), "{record}");
    assert!(record["From_Phone__c"].is_null(), "{record}");
    assert_eq!(
        record["OwnerId"],
        row(&app, "Contact", &contacts[0])["OwnerId"]
    );
    assert_eq!(
        (flushed.written, flushed.lookups, flushed.user_id_writes),
        (1, 2, 0),
        "one indexed query each for Contact and Lead, nothing stored: {flushed:?}"
    );
    assert_eq!(searches(&app).await, 0);
}

#[tokio::test]
async fn a_phone_match_is_found_by_one_search_and_the_user_id_is_stored_for_the_next_message() {
    let app = spawn_app_with(options()).await;
    let contact = app
        .seed(
            "Contact",
            json!([{"LastName": "Rivera", "Phone": "(415) 555-0101"}]),
        )
        .await;

    customer_writes(&app, "wamid.PHONE1", Some(PHONE), Some(BSUID)).await;
    let first = app.flush().await;
    customer_writes(&app, "wamid.NOPHONE2", None, Some(BSUID)).await;
    let second = app.flush().await;

    assert_eq!(
        record_of(&app, "wamid.PHONE1")["Contact__c"],
        contact[0].as_str()
    );
    assert_eq!(
        row(&app, "Contact", &contact[0])["WhatsApp_User_Id__c"],
        BSUID
    );
    assert_eq!(first.user_id_writes, 1, "{first:?}");
    assert_eq!(searches(&app).await, 1, "one SOSL search, no LIKE scan");
    let later = record_of(&app, "wamid.NOPHONE2");
    assert_eq!(later["Contact__c"], contact[0].as_str(), "{later}");
    assert_eq!(second.user_id_writes, 0, "{second:?}");
}

#[tokio::test]
async fn a_validation_rule_refusing_the_contact_update_does_not_hold_the_inbound_record_back() {
    let app = spawn_app_with(options()).await;
    let contact = app
        .seed(
            "Contact",
            json!([{"LastName": "Rivera", "MobilePhone": "+1 415 555 0101"}]),
        )
        .await;
    app.org.state().org().add_org_rule(OrgRule {
        object: "Contact".into(),
        field: "WhatsApp_User_Id__c".into(),
        error_message: "Only the data team edits WhatsApp ids.".into(),
    });

    customer_writes(&app, "wamid.REFUSED1", Some(PHONE), Some(BSUID)).await;
    let first = app.flush().await;
    app.clock.shift(Duration::minutes(16));
    customer_writes(&app, "wamid.REFUSED2", Some(PHONE), Some(BSUID)).await;
    let second = app.flush().await;

    assert_eq!(first.written, 1, "{first:?}");
    let record = record_of(&app, "wamid.REFUSED1");
    assert_eq!(record["Contact__c"], contact[0].as_str(), "{record}");
    assert_eq!(record["Status__c"], "Received");
    assert!(row(&app, "Contact", &contact[0])["WhatsApp_User_Id__c"].is_null());
    assert_eq!(first.user_id_writes, 1, "{first:?}");
    assert_eq!(
        (second.written, second.user_id_writes),
        (1, 0),
        "a refused Contact is not asked again: {second:?}"
    );
    assert_eq!(
        record_of(&app, "wamid.REFUSED2")["Contact__c"],
        contact[0].as_str()
    );
    let metrics = app.metrics.render(&Default::default());
    assert!(
        metrics.contains("sfwa_inbound_links_total{result=\"user_id_refused\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_lead_created_after_the_message_is_linked_by_the_relink_job_once_the_index_has_it() {
    let app = spawn_app_with(options()).await;
    app.org_control("search", json!({"index_lag_seconds": 120}))
        .await;
    customer_writes(&app, "wamid.EARLY", Some(PHONE), None).await;
    let flushed = app.flush().await;
    let lead = app
        .seed(
            "Lead",
            json!([{"LastName": "Rivera", "Company": "Acme", "Phone": "415-555-0101"}]),
        )
        .await;

    let too_soon = relink::relink(&app.pipeline.write_back).await.unwrap();
    app.clock.shift(Duration::minutes(3));
    let indexed = relink::relink(&app.pipeline.write_back).await.unwrap();
    let again = relink::relink(&app.pipeline.write_back).await.unwrap();

    assert_eq!(flushed.written, 1, "{flushed:?}");
    assert_eq!((too_soon.checked, too_soon.linked), (1, 0), "{too_soon:?}");
    assert_eq!((indexed.checked, indexed.linked), (1, 1), "{indexed:?}");
    assert_eq!(
        again.checked, 0,
        "a linked record is not read again: {again:?}"
    );
    let record = record_of(&app, "wamid.EARLY");
    assert_eq!(record["Lead__c"], lead[0].as_str(), "{record}");
    assert!(record["Contact__c"].is_null(), "{record}");
}

#[tokio::test]
async fn a_number_change_record_links_by_the_old_number_and_the_new_number_links_by_user_id() {
    let app = spawn_app_with(options()).await;
    let contact = app
        .seed(
            "Contact",
            json!([{"LastName": "Rivera", "Phone": "(415) 555-0101"}]),
        )
        .await;

    // Meta's `user_changed_number` system message comes from the old number, with the BSUID.
    customer_writes(&app, "wamid.CHANGED", Some(PHONE), Some(BSUID)).await;
    app.flush().await;
    customer_writes(&app, "wamid.NEWNUMBER", Some("+16505550199"), Some(BSUID)).await;
    app.flush().await;

    assert_eq!(
        record_of(&app, "wamid.CHANGED")["Contact__c"],
        contact[0].as_str()
    );
    assert_eq!(
        record_of(&app, "wamid.NEWNUMBER")["Contact__c"],
        contact[0].as_str(),
        "the new number is unknown to the org; the stored BSUID links it"
    );
}

#[tokio::test]
async fn a_user_id_change_without_a_phone_links_by_the_previous_user_id_and_moves_it_to_the_new_one(
) {
    let app = spawn_app_with(options()).await;
    let contact = app
        .seed(
            "Contact",
            json!([{"LastName": "Rivera", "WhatsApp_User_Id__c": BSUID}]),
        )
        .await;
    let new_user_id = "US.99999999999999999999";
    let mut change = Map::new();
    change.insert("Direction__c".into(), json!("Inbound"));
    change.insert("Status__c".into(), json!("Received"));
    change.insert("Body__c".into(), json!("Their WhatsApp user id changed."));
    change.insert("From_User_Id__c".into(), json!(new_user_id));
    change.insert("$previous_user_id".into(), json!(BSUID));

    queue_inbound(&app, "wamid.USERIDCHANGE", change).await;
    let flushed = app.flush().await;
    customer_writes(&app, "wamid.AFTERCHANGE", None, Some(new_user_id)).await;
    app.flush().await;

    assert_eq!(flushed.written, 1, "{flushed:?}");
    let record = record_of(&app, "wamid.USERIDCHANGE");
    assert_eq!(record["Contact__c"], contact[0].as_str(), "{record}");
    assert!(record.get("$previous_user_id").is_none(), "{record}");
    assert_eq!(
        row(&app, "Contact", &contact[0])["WhatsApp_User_Id__c"],
        new_user_id
    );
    assert_eq!(
        record_of(&app, "wamid.AFTERCHANGE")["Contact__c"],
        contact[0].as_str()
    );
}

/// The package's `objects/` folder copied, without `Lead`'s WhatsApp user id field.
fn objects_without_the_lead_user_id() -> (tempfile::TempDir, std::path::PathBuf) {
    fn copy(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap().flatten() {
            let target = to.join(entry.file_name());
            if entry.path().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("objects");
    let package = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("salesforce/force-app/main/default/objects");
    copy(&package, &objects);
    std::fs::remove_file(objects.join("Lead/fields/WhatsApp_User_Id__c.field-meta.xml")).unwrap();
    (dir, objects)
}

fn check<'a>(checks: &'a [sfwa::doctor::Check], name: &str) -> &'a sfwa::doctor::Outcome {
    &checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}: {checks:#?}"))
        .outcome
}

#[tokio::test]
async fn doctor_says_the_lead_conversion_step_and_names_a_missing_user_id_field() {
    let healthy = spawn_app_with(options()).await;
    let (_dir, objects) = objects_without_the_lead_user_id();
    let mut without = options();
    without.org.schema = Arc::new(Schema::from_dir(&objects).unwrap());
    let broken = spawn_app_with(without).await;

    let passed = sfwa::doctor::check(&healthy.settings).await;
    let failed = sfwa::doctor::check(&broken.settings).await;

    assert!(matches!(
        check(&passed, "Contact/Lead user id fields"),
        sfwa::doctor::Outcome::Pass(text) if text.contains("Map Lead Fields")
    ));
    match check(&failed, "Contact/Lead user id fields") {
        sfwa::doctor::Outcome::Fail { problem, fix } => {
            assert!(
                problem.contains("Lead.WhatsApp_User_Id__c is missing"),
                "{problem}"
            );
            assert!(fix.contains("deploy the package"), "{fix}");
        }
        other => panic!("not a failure: {other:?}"),
    }
}

#[test]
fn the_package_ships_the_user_id_field_on_contact_and_lead_writable_by_the_integration_user() {
    use sfwa::salesforce::contract::{USER_ID_LENGTH, USER_ID_OBJECTS, WHATSAPP_USER_ID};
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("salesforce/force-app/main/default");
    let permset = std::fs::read_to_string(
        root.join("permissionsets/WhatsApp_Integration.permissionset-meta.xml"),
    )
    .unwrap();
    let permset = roxmltree::Document::parse(&permset).unwrap();
    let text = |node: roxmltree::Node, tag: &str| {
        node.children()
            .find(|c| c.has_tag_name(tag))
            .and_then(|c| c.text())
            .map(str::to_string)
    };

    for object in USER_ID_OBJECTS {
        let xml = std::fs::read_to_string(root.join(format!(
            "objects/{object}/fields/{WHATSAPP_USER_ID}.field-meta.xml"
        )))
        .unwrap();
        let field = roxmltree::Document::parse(&xml).unwrap();
        let field = field.root_element();
        assert_eq!(
            text(field, "externalId").as_deref(),
            Some("true"),
            "{object}"
        );
        assert_eq!(text(field, "unique").as_deref(), Some("false"), "{object}");
        assert_eq!(text(field, "type").as_deref(), Some("Text"), "{object}");
        let length: usize = text(field, "length").unwrap().parse().unwrap();
        assert!(length >= USER_ID_LENGTH, "{object}: {length}");
        let editable = permset.root_element().children().any(|p| {
            p.has_tag_name("fieldPermissions")
                && text(p, "field") == Some(format!("{object}.{WHATSAPP_USER_ID}"))
                && text(p, "editable").as_deref() == Some("true")
        });
        let object_edit = permset.root_element().children().any(|p| {
            p.has_tag_name("objectPermissions")
                && text(p, "object").as_deref() == Some(object)
                && text(p, "allowEdit").as_deref() == Some("true")
        });
        assert!(
            editable && object_edit,
            "{object}: the integration user cannot write it"
        );
    }
}
