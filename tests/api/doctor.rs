//! `sfwa doctor` against the simulators: a healthy setup passes every check; each kind of broken
//! setup is named with its fix, and what depends on it is skipped.

use std::net::SocketAddr;
use std::sync::Arc;

use sfwa::config::{IntakeMode, Secret, Settings};
use sfwa::doctor::{self, Check, Outcome};
use sfwa::sim::salesforce::schema::Schema;
use sfwa::sim::salesforce::SalesforceSimConfig;

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

    let checks = doctor::check(&settings).await;

    assert!(matches!(
        &find(&checks, "Webhook listener").outcome,
        Outcome::Pass(detail) if detail.contains("a running sfwa answers /healthz")
    ));
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
         [webhook]\nlisten = \"127.0.0.1:0\"\n[store]\npath = {:?}\n",
        sf.login_url,
        sf.client_id,
        sf.username,
        sf.private_key_path.as_ref().unwrap().display().to_string(),
        wa.api_base,
        wa.access_token.expose(),
        wa.default_phone_number_id,
        wa.app_secret.expose(),
        wa.verify_token.expose(),
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

    sfwa::app::read_throughput_levels(app.pipeline.clone()).await;

    assert_eq!(app.pipeline.pacer.rate(&number), 80.0);
}

#[tokio::test]
async fn a_number_granted_a_thousand_a_second_reads_as_level_high_and_keeps_its_pace() {
    let mut options = tuned(|s| s.whatsapp.throughput_per_second = 1000);
    options.wa.throughput_per_second = 1000;
    let app = spawn_app_with(options).await;
    let number = app.wa.phone_number_id().to_string();

    sfwa::app::read_throughput_levels(app.pipeline.clone()).await;
    let checks = doctor::check(&app.settings).await;

    assert_eq!(app.pipeline.pacer.rate(&number), 1000.0);
    assert!(matches!(
        &find(&checks, "WhatsApp number").outcome,
        Outcome::Pass(detail) if detail.contains("throughput HIGH")
    ));
    assert!(!checks.iter().any(|c| c.name.ends_with("throughput")));
}
