//! `sfwa doctor` against the simulators: a healthy setup passes every check; each kind of broken
//! setup is named with its fix, and what depends on it is skipped.

use std::net::SocketAddr;
use std::sync::Arc;

use sfwa::config::{IntakeMode, Secret, Settings};
use sfwa::doctor::{self, Check, Outcome};
use sfwa_sim::salesforce::schema::Schema;
use sfwa_sim::salesforce::SalesforceSimConfig;

use crate::daemon_support::{spawn_app, spawn_app_with, Options};
use crate::package_contract::{field_file, objects_copy};

/// The one check whose name starts with `name`.
fn find<'c>(checks: &'c [Check], name: &str) -> &'c Check {
    checks
        .iter()
        .find(|c| c.name.starts_with(name))
        .unwrap_or_else(|| panic!("no check named {name}: {checks:#?}"))
}

fn failure(check: &Check) -> (&str, &str) {
    match &check.outcome {
        Outcome::Fail { problem, fix } => (problem, fix),
        other => panic!("{} should have failed, got {other:?}", check.name),
    }
}

fn tuned(tune: impl FnOnce(&mut Settings) + 'static) -> Options {
    Options {
        tune: Box::new(tune),
        ..Options::default()
    }
}

#[tokio::test]
async fn a_healthy_setup_passes_every_check_and_reports_api_usage() {
    let app = spawn_app().await;

    let checks = doctor::check(&app.settings).await;

    assert!(doctor::all_passed(&checks), "{checks:#?}");
    for name in [
        "Configuration",
        "Store",
        "Salesforce login",
        "Message object fields",
        "Platform event channel",
        "WhatsApp number",
        "Webhook listener",
    ] {
        assert!(
            matches!(find(&checks, name).outcome, Outcome::Pass(_)),
            "{name}: {checks:#?}"
        );
    }
    assert!(matches!(
        &find(&checks, "Salesforce login").outcome,
        Outcome::Pass(detail) if detail.starts_with("jwt as ")
    ));
    assert!(matches!(
        &find(&checks, "Salesforce API usage").outcome,
        Outcome::Info(text) if text.contains("of 15000 calls")
    ));
}

#[tokio::test]
async fn a_field_missing_from_the_org_is_named_with_the_deploy_fix() {
    let (_dir, objects) = objects_copy();
    std::fs::remove_file(field_file(&objects, "Error_Message__c")).unwrap();
    let mut org = SalesforceSimConfig::for_tests();
    org.schema = Arc::new(Schema::from_dir(&objects).unwrap());
    let app = spawn_app_with(Options {
        org,
        ..Options::default()
    })
    .await;

    let checks = doctor::check(&app.settings).await;

    let (problem, fix) = failure(find(&checks, "Message object fields"));
    assert_eq!(problem, "WhatsApp_Message__c: missing Error_Message__c");
    assert!(fix.contains("sf project deploy start"), "{fix}");
    assert!(matches!(
        find(&checks, "Salesforce login").outcome,
        Outcome::Pass(_)
    ));
}

#[tokio::test]
async fn a_refused_whatsapp_token_is_reported_with_how_to_get_a_new_one() {
    let app = spawn_app_with(tuned(|s| {
        s.whatsapp.access_token = Secret::new("EAAnot-the-right-token");
    }))
    .await;

    let checks = doctor::check(&app.settings).await;

    let (problem, fix) = failure(find(&checks, "WhatsApp number"));
    assert!(problem.contains("(190)"), "{problem}");
    assert!(fix.contains("access token"), "{fix}");
    assert!(!doctor::all_passed(&checks));
}

#[tokio::test]
async fn an_unknown_event_channel_asks_for_the_event_and_flow_to_be_deployed() {
    let app = spawn_app_with(tuned(|s| {
        s.intake.mode = IntakeMode::Stream;
        s.intake.channel = "/event/Not_Deployed__e".into();
    }))
    .await;

    let checks = doctor::check(&app.settings).await;

    let (problem, fix) = failure(find(&checks, "Platform event channel"));
    assert!(problem.contains("/event/Not_Deployed__e"), "{problem}");
    assert!(
        fix.contains("WhatsApp_Outbound__e") && fix.contains("WhatsApp_Publish_Outbound"),
        "{fix}"
    );
}

#[tokio::test]
async fn a_webhook_port_held_by_a_running_sfwa_counts_as_a_pass() {
    let app = spawn_app().await;
    let running: SocketAddr = app
        .wa
        .webhook_url()
        .unwrap()
        .trim_start_matches("http://")
        .trim_end_matches("/webhook")
        .parse()
        .unwrap();
    let mut settings = app.settings.clone();
    settings.webhook.listen = running;
    // A running sfwa is recognised by its observe listener's /healthz.
    settings.observe.listen = app
        .observe_base
        .trim_start_matches("http://")
        .parse()
        .unwrap();

    let checks = doctor::check(&settings).await;

    assert!(
        matches!(
            &find(&checks, "Webhook listener").outcome,
            Outcome::Pass(detail) if detail.contains("a running sfwa answers http://127.0.0.1:")
        ),
        "{:?}",
        find(&checks, "Webhook listener").outcome
    );
}

#[tokio::test]
async fn a_bad_config_file_is_reported_by_key_and_the_checks_needing_it_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sfwa.toml");
    let store = dir.path().join("sfwa.db");
    std::fs::write(
        &config,
        format!(
            "[salesforce]\nauth = \"jwt\"\n[whatsapp]\ndefault_phone_number_id = \"123\"\n[store]\npath = {:?}\n",
            store.display().to_string()
        ),
    )
    .unwrap();

    let checks = doctor::run(&config).await;

    let problems: Vec<(&str, &str)> = checks
        .iter()
        .filter(|c| c.name == "Configuration")
        .map(failure)
        .collect();
    for key in [
        "salesforce.client_id",
        "salesforce.username",
        "whatsapp.access_token",
    ] {
        assert!(
            problems
                .iter()
                .any(|(problem, fix)| problem.starts_with(key) && !fix.is_empty()),
            "{key} not reported: {problems:?}"
        );
    }
    assert!(matches!(
        &find(&checks, "Salesforce login").outcome,
        Outcome::Skipped(reason) if reason.contains("salesforce.")
    ));
    assert!(matches!(
        &find(&checks, "Message object fields").outcome,
        Outcome::Skipped(_)
    ));
    assert!(matches!(find(&checks, "Store").outcome, Outcome::Pass(_)));
    assert!(!store.exists(), "the doctor creates nothing");
}

/// The settings as a file `sfwa doctor --config` reads (secrets included, unlike `Serialize`).
pub(crate) fn config_file(settings: &Settings, path: &std::path::Path) {
    let (sf, wa) = (&settings.salesforce, &settings.whatsapp);
    let text = format!(
        "[salesforce]\nlogin_url = {:?}\nauth = \"jwt\"\nclient_id = {:?}\nusername = {:?}\nprivate_key_path = {:?}\n\
         [whatsapp]\napi_base = {:?}\naccess_token = {:?}\ndefault_phone_number_id = {:?}\napp_secret = {:?}\nverify_token = {:?}\n\
         [webhook]\nlisten = \"127.0.0.1:0\"\n[observe]\nlisten = \"{}\"\n[store]\npath = {:?}\n",
        sf.login_url,
        sf.client_id,
        sf.username,
        sf.private_key_path.as_ref().unwrap().display().to_string(),
        wa.api_base,
        wa.access_token.expose(),
        wa.default_phone_number_id,
        wa.app_secret.expose(),
        wa.verify_token.expose(),
        settings.observe.listen,
        settings.store.path.display().to_string(),
    );
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn the_sfwa_doctor_command_exits_zero_when_healthy_and_one_on_a_failure() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sfwa.toml");
    let doctor = || async {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_sfwa"))
            .args(["doctor", "--config"])
            .arg(&config)
            .env_remove("RUST_LOG")
            .output()
            .await
            .expect("sfwa doctor runs")
    };

    config_file(&app.settings, &config);
    let healthy = doctor().await;
    let mut broken_settings = app.settings.clone();
    broken_settings.whatsapp.access_token = Secret::new("EAAwrong");
    config_file(&broken_settings, &config);
    let broken = doctor().await;

    let healthy_out = String::from_utf8_lossy(&healthy.stdout);
    assert!(healthy.status.success(), "{healthy_out}");
    assert!(healthy_out.contains("All checks passed."), "{healthy_out}");
    let broken_out = String::from_utf8_lossy(&broken.stdout);
    assert_eq!(broken.status.code(), Some(1), "{broken_out}");
    assert!(
        broken_out.contains("[FAIL] WhatsApp number") && broken_out.contains("fix:"),
        "{broken_out}"
    );
}

#[tokio::test]
async fn a_throughput_setting_above_the_numbers_level_is_pointed_out() {
    let app = spawn_app_with(tuned(|s| s.whatsapp.throughput_per_second = 1000)).await;

    let checks = doctor::check(&app.settings).await;

    assert!(doctor::all_passed(&checks), "{checks:#?}");
    assert!(matches!(
        &find(&checks, "WhatsApp number").outcome,
        Outcome::Pass(detail) if detail.contains("throughput STANDARD")
    ));
    let warning = checks
        .iter()
        .find(|c| c.name.ends_with("throughput"))
        .unwrap_or_else(|| panic!("no throughput line: {checks:#?}"));
    assert!(matches!(
        &warning.outcome,
        Outcome::Info(text) if text.contains("is 1000, above the 80 messages a second of level STANDARD")
    ));
}

#[tokio::test]
async fn at_start_the_pace_is_capped_at_the_numbers_throughput_level() {
    let app = spawn_app_with(tuned(|s| s.whatsapp.throughput_per_second = 1000)).await;
    let number = app.wa.phone_number_id().to_string();

    sfwa::app::read_throughput_levels(app.pipeline.dispatcher.clone()).await;

    assert_eq!(app.pipeline.dispatcher.pacer.rate(&number), 80.0);
}

#[tokio::test]
async fn a_number_granted_a_thousand_a_second_reads_as_level_high_and_keeps_its_pace() {
    let mut options = tuned(|s| s.whatsapp.throughput_per_second = 1000);
    options.wa.throughput_per_second = 1000;
    let app = spawn_app_with(options).await;
    let number = app.wa.phone_number_id().to_string();

    sfwa::app::read_throughput_levels(app.pipeline.dispatcher.clone()).await;
    let checks = doctor::check(&app.settings).await;

    assert_eq!(app.pipeline.dispatcher.pacer.rate(&number), 1000.0);
    assert!(matches!(
        &find(&checks, "WhatsApp number").outcome,
        Outcome::Pass(detail) if detail.contains("throughput HIGH")
    ));
    assert!(!checks.iter().any(|c| c.name.ends_with("throughput")));
}

/// The healthy app's settings with the optional Meta ids the subscription checks need.
fn with_meta_ids(app: &crate::daemon_support::TestApp) -> Settings {
    let mut settings = app.settings.clone();
    settings.whatsapp.business_account_id = app.wa.waba_id().to_string();
    settings.whatsapp.app_id = app.wa.app_id().to_string();
    settings
}

async fn change_subscription(app: &crate::daemon_support::TestApp, change: serde_json::Value) {
    let response = app
        .http
        .put(format!("{}/__sim/subscriptions", app.wa.url()))
        .json(&change)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}

/// Sets the shared simulated clock to noon UTC on `date` (YYYY-MM-DD): the doctor's "today" and
/// the WhatsApp simulator's calendar of Graph versions move together.
fn set_date(app: &crate::daemon_support::TestApp, date: &str) {
    let target = chrono::DateTime::parse_from_rfc3339(&format!("{date}T12:00:00Z"))
        .unwrap()
        .to_utc();
    app.clock.shift(target - app.clock.now());
}

#[tokio::test]
async fn a_healthy_meta_setup_shows_the_subscribed_app_and_the_webhook_callback() {
    let app = spawn_app().await;
    let settings = with_meta_ids(&app);

    let checks = doctor::check(&settings).await;

    assert!(doctor::all_passed(&checks), "{checks:#?}");
    assert!(matches!(
        &find(&checks, "WhatsApp subscribed apps").outcome,
        Outcome::Pass(detail) if detail.contains(app.wa.app_id())
    ));
    let callback = app.wa.webhook_url().unwrap();
    assert!(matches!(
        &find(&checks, "Webhook subscription").outcome,
        Outcome::Pass(detail) if detail.contains(&callback) && detail.contains("messages")
    ));
    assert!(!checks.iter().any(|c| c.name.starts_with("Webhook field")));
}

#[tokio::test]
async fn without_the_account_and_app_ids_the_subscription_checks_are_skipped_naming_the_keys() {
    let app = spawn_app().await;

    let checks = doctor::check(&app.settings).await;

    assert!(matches!(
        &find(&checks, "WhatsApp subscribed apps").outcome,
        Outcome::Skipped(reason) if reason.contains("whatsapp.business_account_id")
    ));
    assert!(matches!(
        &find(&checks, "Webhook subscription").outcome,
        Outcome::Skipped(reason) if reason.contains("whatsapp.app_id")
    ));
}

#[tokio::test]
async fn doctor_reports_a_missing_webhook_field_with_its_fix() {
    let app = spawn_app().await;
    change_subscription(
        &app,
        serde_json::json!({"fields": ["message_template_status_update", "standby"]}),
    )
    .await;

    let checks = doctor::check(&with_meta_ids(&app)).await;

    let (problem, fix) = failure(find(&checks, "Webhook field messages"));
    assert!(
        problem.contains(&app.wa.webhook_url().unwrap()),
        "{problem}"
    );
    assert!(
        fix.contains("App Dashboard → WhatsApp → Configuration → Webhook fields → Subscribe"),
        "{fix}"
    );
    assert!(
        fix.contains(&format!("/{}/subscriptions", app.wa.app_id())),
        "{fix}"
    );
    // sfwa handles marketing opt-out: its field is required like `messages`.
    let (problem, _) = failure(find(&checks, "Webhook field user_preferences"));
    assert!(problem.contains("marketing opt-out"), "{problem}");
    assert!(!checks.iter().any(|c| c.name == "Webhook field standby"));
    assert!(!doctor::all_passed(&checks));
}

#[tokio::test]
async fn the_webhook_field_fix_the_doctor_gives_makes_it_pass() {
    let app = spawn_app().await;
    let settings = with_meta_ids(&app);
    change_subscription(&app, serde_json::json!({"fields": ["standby"]})).await;
    let broken = doctor::check(&settings).await;
    let (_, fix) = failure(find(&broken, "Webhook field messages"));
    let fields = fix
        .split(" -d fields=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no fields in the command: {fix}"))
        .to_string();

    // The command from the fix, with the secrets it leaves out filled in.
    let answer = app
        .http
        .post(format!(
            "{}/{}/{}/subscriptions",
            app.wa.url(),
            settings.whatsapp.api_version,
            app.wa.app_id()
        ))
        .form(&[
            ("object", "whatsapp_business_account".to_string()),
            ("callback_url", app.wa.webhook_url().unwrap()),
            ("fields", fields),
            ("verify_token", app.wa.verify_token().to_string()),
            (
                "access_token",
                format!("{}|{}", app.wa.app_id(), app.wa.app_secret()),
            ),
        ])
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let fixed = doctor::check(&settings).await;

    assert!(status.is_success(), "{}", answer.text().await.unwrap());
    assert!(doctor::all_passed(&fixed), "{fixed:#?}");
    assert!(!fixed.iter().any(|c| c.name.starts_with("Webhook field")));
}

#[tokio::test]
async fn doctor_reports_an_unsubscribed_app_and_passes_once_the_fix_is_applied() {
    let app = spawn_app().await;
    let settings = with_meta_ids(&app);
    change_subscription(&app, serde_json::json!({"app_subscribed": false})).await;

    let broken = doctor::check(&settings).await;
    // The fix, as the doctor words it: POST /{waba_id}/subscribed_apps with the system-user token.
    let subscribed = app
        .http
        .post(format!(
            "{}/{}/{}/subscribed_apps",
            app.wa.url(),
            settings.whatsapp.api_version,
            app.wa.waba_id()
        ))
        .bearer_auth(app.wa.access_token())
        .send()
        .await
        .unwrap();
    let fixed = doctor::check(&settings).await;

    let (problem, fix) = failure(find(&broken, "WhatsApp subscribed apps"));
    assert!(problem.contains("no app is subscribed"), "{problem}");
    assert!(
        fix.contains(&format!("/{}/subscribed_apps", app.wa.waba_id())),
        "{fix}"
    );
    assert!(
        !fix.contains(app.wa.access_token()),
        "the token is never printed"
    );
    assert!(subscribed.status().is_success());
    assert!(doctor::all_passed(&fixed), "{fixed:#?}");
}

#[tokio::test]
async fn a_wrong_app_secret_is_reported_on_the_webhook_subscription_with_the_keys_to_check() {
    let app = spawn_app().await;
    let mut settings = with_meta_ids(&app);
    settings.whatsapp.app_secret = Secret::new("not-the-app-secret");

    let checks = doctor::check(&settings).await;

    let (problem, fix) = failure(find(&checks, "Webhook subscription"));
    assert!(problem.contains("(190)"), "{problem}");
    assert!(
        fix.contains("whatsapp.app_id") && fix.contains("whatsapp.app_secret"),
        "{fix}"
    );
    assert!(!problem.contains("not-the-app-secret") && !fix.contains("not-the-app-secret"));
}

#[tokio::test]
async fn a_graph_version_near_its_end_is_pointed_out_with_the_fix() {
    let app = spawn_app_with(tuned(|s| s.whatsapp.api_version = "v21.0".into())).await;
    set_date(&app, "2026-12-01");

    let checks = doctor::check_at(&app.settings, &app.clock).await;

    // Only Meta's lines are judged: days ahead in simulated time, the org simulator refuses the
    // JWT the doctor signs on the host's clock.
    assert!(matches!(
        find(&checks, "WhatsApp number").outcome,
        Outcome::Pass(_)
    ));
    assert!(
        matches!(
            &find(&checks, "Graph API version").outcome,
            Outcome::Info(text) if text.contains("v21.0 ends on 2027-01-21, in 51 days")
                && text.contains("whatsapp.api_version = \"v26.0\"")
        ),
        "{checks:#?}"
    );
}

#[tokio::test]
async fn a_graph_version_past_its_end_fails_though_meta_still_answers_it_as_a_newer_one() {
    let app = spawn_app_with(tuned(|s| s.whatsapp.api_version = "v20.0".into())).await;
    set_date(&app, "2026-12-01");

    let checks = doctor::check_at(&app.settings, &app.clock).await;

    assert!(matches!(
        find(&checks, "WhatsApp number").outcome,
        Outcome::Pass(_)
    ));
    let (problem, fix) = failure(find(&checks, "Graph API version"));
    assert!(
        problem.contains("v20.0 ended on 2026-09-24; Meta answered it as v21.0"),
        "{problem}"
    );
    assert!(
        fix.contains("set whatsapp.api_version = \"v26.0\" after checking Meta's changelog"),
        "{fix}"
    );
}

#[tokio::test]
async fn the_default_graph_version_passes_with_its_end_date() {
    let app = spawn_app().await;

    let checks = doctor::check(&app.settings).await;

    assert_eq!(
        app.settings.whatsapp.api_version,
        sfwa::whatsapp::versions::DEFAULT_VERSION
    );
    assert!(matches!(
        &find(&checks, "Graph API version").outcome,
        Outcome::Pass(detail) if detail == "v25.0, available until 2028-07-29"
    ));
}

#[tokio::test]
async fn doctor_reports_an_inactive_publish_flow_with_both_ways_to_activate_it() {
    let app = spawn_app_with(tuned(|s| s.intake.mode = IntakeMode::Stream)).await;
    let deactivated = app
        .http
        .post(format!("{}/__sim/flows", app.org.url()))
        .json(&serde_json::json!({"api_name": "WhatsApp_Publish_Outbound", "active": false}))
        .send()
        .await
        .unwrap();
    assert!(deactivated.status().is_success());

    let checks = doctor::check(&app.settings).await;

    let (problem, fix) = failure(find(&checks, "Publish Flow"));
    assert!(problem.contains("inactive"), "{problem}");
    assert!(
        fix.contains("Deploy processes and flows as active")
            && fix.contains(&format!(
                "--test-level RunSpecifiedTests --tests {}",
                sfwa::doctor::flow::PUBLISH_FLOW_TEST_CLASS
            ))
            && fix.contains("Setup → Flows → WhatsApp: Publish Outbound → Activate"),
        "{fix}"
    );
}

#[tokio::test]
async fn the_packaged_inbound_queue_passes_and_a_missing_one_is_named_with_its_fix() {
    let app = spawn_app_with(tuned(|_| {})).await;
    let mut missing = app.settings.clone();
    missing.salesforce.inbound_queue = "No_Such_Queue".into();

    let found = doctor::check(&app.settings).await;
    let not_found = doctor::check(&missing).await;

    let queue = find(&found, "Inbound queue");
    assert!(
        matches!(&queue.outcome, Outcome::Pass(detail) if detail.contains("WhatsApp_Inbound")),
        "{queue:?}"
    );
    let (problem, fix) = failure(find(&not_found, "Inbound queue"));
    assert!(
        problem.contains("No_Such_Queue") && problem.contains("salesforce.inbound_queue"),
        "{problem}"
    );
    assert!(
        fix.contains("Setup → Queues") && fix.contains("WhatsApp_Inbound"),
        "{fix}"
    );
}
