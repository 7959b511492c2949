//! `sfwa plan` (the dry run) against both simulators and a real daemon's store: every Queued
//! record's verdict, from the send path's own decisions, with nothing changed anywhere — the
//! org's write counters, the WhatsApp simulator's sends and the store stay as they were. And the
//! cost on the record: a status webhook's `pricing` written onto the record and counted.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration;
use serde_json::{json, Value};
use sfwa::domain::message::{format_salesforce_datetime, parse_salesforce_datetime};
use sfwa::pipeline::plan::{self, Entry, PlanOptions, Planner, Verdict};

use crate::daemon_support::{spawn_app, spawn_app_with, Options, TestApp};

const IN_WINDOW: &str = "+16505551234";
const WINDOW_CLOSED: &str = "+16505550002";

fn planner(app: &TestApp) -> Planner {
    Planner {
        settings: Arc::new(app.settings.clone()),
        clock: Arc::new(app.clock.clone()),
        salesforce: app.pipeline.intake.salesforce.clone(),
        whatsapp: app.pipeline.dispatcher.whatsapp.clone(),
    }
}

/// The four kinds of record the issue names, oldest first: a text in the window, a text whose
/// window closed, a scheduled template, a text to a number that is no phone number.
async fn queue_a_mix(app: &TestApp) -> Vec<String> {
    app.customer_wrote(IN_WINDOW.trim_start_matches('+'), 1)
        .await;
    app.customer_wrote(WINDOW_CLOSED.trim_start_matches('+'), 30)
        .await;
    let later = app.clock.now() + Duration::hours(2);
    app.queue(json!([
        {"To_Phone__c": IN_WINDOW, "Message_Type__c": "Text", "Body__c": "Your order shipped"},
        {"To_Phone__c": WINDOW_CLOSED, "Message_Type__c": "Text", "Body__c": "Still there?"},
        {"To_Phone__c": IN_WINDOW, "Message_Type__c": "Template", "Template_Name__c": "hello_world",
         "Template_Language__c": "en_US", "Scheduled_At__c": format_salesforce_datetime(later)},
        {"To_Phone__c": "call me maybe", "Message_Type__c": "Text", "Body__c": "Hi"}
    ]))
    .await
}

/// What can change: the org's REST calls by endpoint, the WhatsApp simulator's counters and
/// sent messages, the store's journal and outbox.
struct Counters {
    org_calls: BTreeMap<String, u64>,
    wa_stats: Value,
    wa_messages: usize,
    journal_rows: i64,
    outbox_rows: i64,
}

async fn counters(app: &TestApp) -> Counters {
    let stats = app.org_stats().await;
    let org_calls = stats["rest_calls"]["by_endpoint"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(endpoint, n)| (endpoint.clone(), n.as_u64().unwrap()))
        .collect();
    let (journal_rows, outbox_rows) = app
        .pipeline
        .core
        .store
        .read(|c| {
            let count = |table: &str| {
                c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            };
            Ok((count("journal")?, count("outbox")?))
        })
        .await
        .unwrap();
    Counters {
        org_calls,
        wa_stats: app.wa_stats().await,
        wa_messages: app.wa_messages().await.len(),
        journal_rows,
        outbox_rows,
    }
}

/// The endpoints called more often after than before, and how many more times.
fn calls_made(before: &Counters, after: &Counters) -> BTreeMap<String, u64> {
    after
        .org_calls
        .iter()
        .filter_map(|(endpoint, n)| {
            let more = n - before.org_calls.get(endpoint).copied().unwrap_or(0);
            (more > 0).then(|| (endpoint.clone(), more))
        })
        .collect()
}

fn assert_nothing_changed(before: &Counters, after: &Counters) {
    let made = calls_made(before, after);
    assert!(
        made.keys().all(|endpoint| endpoint.starts_with("GET ")),
        "only reads of the org: {made:?}"
    );
    assert_eq!(after.wa_stats, before.wa_stats, "WhatsApp's counters");
    assert_eq!(after.wa_messages, before.wa_messages, "messages sent");
    assert_eq!(after.journal_rows, before.journal_rows, "journal rows");
    assert_eq!(after.outbox_rows, before.outbox_rows, "outbox rows");
}

fn verdict_of<'a>(entries: &'a [Entry], id: &str) -> &'a Verdict {
    &entries
        .iter()
        .find(|e| e.record_id == id)
        .unwrap_or_else(|| panic!("{id} is not in the plan: {entries:?}"))
        .verdict
}

#[tokio::test]
async fn sfwa_plan_says_what_each_queued_record_would_do_and_why_without_changing_anything() {
    let app = spawn_app().await;
    let ids = queue_a_mix(&app).await;
    let before = counters(&app).await;

    let planned = plan::plan(&planner(&app), &PlanOptions::default())
        .await
        .unwrap();

    let after = counters(&app).await;
    assert_eq!(planned.entries.len(), 4, "{:?}", planned.entries);
    assert!(
        matches!(verdict_of(&planned.entries, &ids[0]), Verdict::Send { window_expires_at: Some(at) } if *at > app.clock.now()),
        "{:?}",
        planned.entries[0]
    );
    assert!(
        matches!(verdict_of(&planned.entries, &ids[1]), Verdict::Refuse { code, .. } if code == "OUTSIDE_SESSION_WINDOW"),
        "{:?}",
        planned.entries[1]
    );
    let scheduled = app.record(&ids[2])["Scheduled_At__c"].clone();
    match verdict_of(&planned.entries, &ids[2]) {
        Verdict::Wait {
            until: Some(until), ..
        } => assert_eq!(
            Some(*until),
            parse_salesforce_datetime(scheduled.as_str().unwrap())
        ),
        other => panic!("the scheduled template waits: {other:?}"),
    }
    assert!(
        matches!(verdict_of(&planned.entries, &ids[3]), Verdict::Refuse { code, .. } if code == "INVALID_PHONE"),
        "{:?}",
        planned.entries[3]
    );
    assert_nothing_changed(&before, &after);
    assert!(
        !calls_made(&before, &after).is_empty(),
        "the records were read from the org"
    );
}

#[tokio::test]
async fn the_send_path_reaches_the_verdicts_sfwa_plan_showed() {
    let app = spawn_app().await;
    let ids = queue_a_mix(&app).await;
    let planned = plan::plan(&planner(&app), &PlanOptions::default())
        .await
        .unwrap();

    app.dispatch().await;
    app.flush().await;

    assert!(matches!(
        verdict_of(&planned.entries, &ids[0]),
        Verdict::Send { .. }
    ));
    assert_eq!(app.record(&ids[0])["Status__c"], "Sent");
    assert_eq!(app.record(&ids[1])["Status__c"], "Failed");
    assert_eq!(
        app.record(&ids[1])["Error_Code__c"],
        "OUTSIDE_SESSION_WINDOW"
    );
    assert_eq!(app.record(&ids[2])["Status__c"], "Queued");
    assert_eq!(app.record(&ids[3])["Error_Code__c"], "INVALID_PHONE");
}

#[tokio::test]
async fn sfwa_plan_where_narrows_the_records_to_those_the_soql_condition_selects() {
    let app = spawn_app().await;
    let ids = queue_a_mix(&app).await;
    let options = PlanOptions {
        filter: Some(format!("To_Phone__c = '{WINDOW_CLOSED}'")),
        ..PlanOptions::default()
    };

    let planned = plan::plan(&planner(&app), &options).await.unwrap();

    assert_eq!(planned.entries.len(), 1, "{:?}", planned.entries);
    assert_eq!(planned.entries[0].record_id, ids[1]);
}

#[tokio::test]
async fn the_sfwa_plan_command_prints_the_table_and_json_beside_a_running_daemon_and_changes_nothing(
) {
    let app = spawn_app().await;
    let ids = queue_a_mix(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sfwa.toml");
    std::fs::write(&config, app.config_toml(&app.settings.store.path)).unwrap();
    let before = counters(&app).await;
    let run = |json: bool| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sfwa"));
        command.args(["plan", "--config"]).arg(&config);
        if json {
            command.arg("--json");
        }
        command.env("RUST_LOG", "error").output()
    };

    let table = run(false).await.unwrap();
    let json = run(true).await.unwrap();

    let after = counters(&app).await;
    let stdout = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&table.stderr)
    );
    assert!(
        stdout.contains("4 records: 2 refuse, 1 send, 1 wait"),
        "{stdout}"
    );
    assert!(stdout.contains("OUTSIDE_SESSION_WINDOW"), "{stdout}");
    let parsed: Value = serde_json::from_slice(&json.stdout).expect("--json prints JSON");
    let actions: Vec<&str> = parsed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["verdict"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["send", "refuse", "wait", "refuse"]);
    assert_eq!(parsed["entries"][0]["record_id"], ids[0]);
    assert_nothing_changed(&before, &after);
}

#[tokio::test]
async fn a_delivered_message_carries_metas_pricing_on_its_record_and_in_the_metric() {
    let app = spawn_app().await;
    app.customer_wrote(IN_WINDOW.trim_start_matches('+'), 1)
        .await;
    let ids = app
        .queue(json!([
            {"To_Phone__c": WINDOW_CLOSED, "Message_Type__c": "Template", "Template_Name__c": "hello_world",
             "Template_Language__c": "en_US"},
            {"To_Phone__c": IN_WINDOW, "Message_Type__c": "Text", "Body__c": "Thanks for writing"}
        ]))
        .await;

    app.dispatch().await;
    app.flush().await;
    let template = app.status_after_webhooks(&ids[0], "Read").await;
    let text = app.record(&ids[1]);
    let metrics = app.scrape().await;

    assert_eq!(template["Pricing_Category__c"], "utility");
    assert_eq!(template["Pricing_Type__c"], "regular");
    assert_eq!(template["Pricing_Model__c"], "PMP");
    assert_eq!(template["Pricing_Billable__c"], true);
    assert_eq!(text["Pricing_Category__c"], "service");
    assert_eq!(text["Pricing_Type__c"], "free_customer_service");
    assert_eq!(text["Pricing_Billable__c"], false);
    let number = app.wa.phone_number_id();
    for (category, kind) in [("utility", "regular"), ("service", "free_customer_service")] {
        let line = format!(
            "sfwa_messages_priced_total{{number=\"{number}\",category=\"{category}\",type=\"{kind}\"}} 1"
        );
        assert!(metrics.contains(&line), "{line} missing from:\n{metrics}");
    }
}

#[tokio::test]
async fn a_record_of_a_number_nobody_serves_is_refused_and_one_another_instance_serves_is_left_alone(
) {
    let app = spawn_app().await;
    let mut settings = app.settings.clone();
    settings.whatsapp.business_account_id = app.wa.waba_id().to_string();
    app.seed(
        "WhatsApp_Number_Lease__c",
        json!([{"Lease_Key__c": "555000111/1", "Phone_Number_Id__c": "555000111",
                "Generation__c": 1, "Holder__c": "elsewhere#1"}]),
    )
    .await;
    let ids = app
        .queue(json!([
            {"To_Phone__c": IN_WINDOW, "Message_Type__c": "Template", "Template_Name__c": "hello_world",
             "Business_Number_Id__c": "999000111"},
            {"To_Phone__c": IN_WINDOW, "Message_Type__c": "Template", "Template_Name__c": "hello_world",
             "Business_Number_Id__c": "555000111"}
        ]))
        .await;
    let planner = Planner {
        settings: Arc::new(settings),
        ..planner(&app)
    };

    let planned = plan::plan(&planner, &PlanOptions::default()).await.unwrap();

    assert!(
        matches!(verdict_of(&planned.entries, &ids[0]), Verdict::Refuse { code, .. } if code == "UNKNOWN_BUSINESS_NUMBER"),
        "{:?}",
        planned.entries
    );
    assert_eq!(verdict_of(&planned.entries, &ids[1]).action(), "skip");
}

/// A customer who wrote STOP, a template Meta paused, and a text to a customer whose window is
/// closed asking for re-engagement: the daemon knows the account's catalog.
#[tokio::test]
async fn sfwa_plan_shows_an_opt_out_a_paused_template_and_a_reengagement_without_changing_anything()
{
    // Arrange
    let options = Options::default();
    let waba_id = options.wa.waba_id.clone();
    let app = spawn_app_with(Options {
        tune: Box::new(move |s| s.whatsapp.business_account_id = waba_id),
        ..options
    })
    .await;
    app.wa_control(
        "templates",
        json!({"name": "weekly_offer", "language": "en_US", "status": "APPROVED",
               "category": "MARKETING", "body_params": 0}),
    )
    .await;
    app.wa_control(
        "templates",
        json!({"name": "hello_world", "language": "en_US", "status": "PAUSED",
               "category": "UTILITY", "quality": "RED"}),
    )
    .await;
    sfwa::pipeline::catalog_sync::sync(&app.pipeline.dispatcher)
        .await
        .unwrap();
    app.wa_control(
        "inbound",
        json!({"from": "447911123456", "type": "text", "text": "STOP"}),
    )
    .await;
    app.deliver_webhooks().await;
    app.flush().await;
    let template = |name: &str| {
        json!({"To_Phone__c": "+447911123456", "Message_Type__c": "Template",
               "Template_Name__c": name, "Template_Language__c": "en_US"})
    };
    let ids = app
        .queue(json!([
            template("weekly_offer"),
            template("hello_world"),
            {"To_Phone__c": "+447911123457", "Message_Type__c": "Text", "Body__c": "Still there?",
             "Reengagement_Template__c": "weekly_offer", "Reengagement_Language__c": "en_US"}
        ]))
        .await;
    let before = counters(&app).await;

    // Act
    let planned = plan::plan(&planner(&app), &PlanOptions::default())
        .await
        .unwrap();

    // Assert
    let after = counters(&app).await;
    assert!(
        matches!(verdict_of(&planned.entries, &ids[0]), Verdict::Refuse { code, .. } if code == "OPTED_OUT"),
        "{:?}",
        planned.entries
    );
    assert!(
        matches!(verdict_of(&planned.entries, &ids[1]),
            Verdict::Wait { until: Some(until), code: Some(code), .. }
                if code == "TEMPLATE_PAUSED" && *until > app.clock.now()),
        "{:?}",
        planned.entries
    );
    assert!(
        matches!(verdict_of(&planned.entries, &ids[2]),
            Verdict::Reengage { template, .. } if template == "weekly_offer"),
        "{:?}",
        planned.entries
    );
    assert_nothing_changed(&before, &after);
}
