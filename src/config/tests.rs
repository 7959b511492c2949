//! The config unit tests: layering, validation, secrets, the example file.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const MINIMAL: &str = r#"
    [salesforce]
    auth = "client_credentials"
    login_url = "https://acme.my.salesforce.com"
    client_id = "3MVG9abc"
    client_secret = "s3cret"
    [whatsapp]
    access_token = "EAAtoken"
    default_phone_number_id = "106540352242922"
    app_secret = "appsecret"
    verify_token = "vErIfY-t0k3n"
"#;

#[test]
fn a_minimal_file_with_defaults_validates() {
    let settings = Settings::from_layers(MINIMAL, &BTreeMap::new()).unwrap();
    settings.validate().unwrap();
    assert_eq!(settings.intake.interval, Duration::from_secs(10));
    assert_eq!(settings.window.margin, Duration::from_secs(120));
    assert_eq!(settings.writeback.batch_size, 200);
}

#[test]
fn the_log_format_variable_is_left_to_the_command_line_not_refused_as_a_setting() {
    let settings = Settings::from_layers(MINIMAL, &env(&[("SFWA_LOG_FORMAT", "json")])).unwrap();
    settings.validate().unwrap();
}

#[test]
fn environment_variables_override_the_file_with_typed_values() {
    let settings = Settings::from_layers(
        MINIMAL,
        &env(&[
            ("SFWA_WHATSAPP__ACCESS_TOKEN", "from-env"),
            ("SFWA_WHATSAPP__THROUGHPUT_PER_SECOND", "250"),
            ("SFWA_INTAKE__INTERVAL", "30s"),
            ("SFWA_WHATSAPP__DEFAULT_PHONE_NUMBER_ID", "123456"),
        ]),
    )
    .unwrap();
    assert_eq!(settings.whatsapp.access_token.expose(), "from-env");
    assert_eq!(settings.whatsapp.throughput_per_second, 250);
    assert_eq!(settings.intake.interval, Duration::from_secs(30));
    assert_eq!(settings.whatsapp.default_phone_number_id, "123456");
}

#[test]
fn an_unknown_key_is_refused_by_name() {
    let error =
        Settings::from_layers("[whatsapp]\naccess_tokn = \"x\"", &BTreeMap::new()).unwrap_err();
    assert!(error.to_string().contains("access_tokn"), "{error}");
}

#[test]
fn validation_names_every_bad_key_with_a_fix() {
    let settings = Settings::from_layers(
        "[writeback]\nbatch_size = 500\n[salesforce]\nauth = \"jwt\"",
        &BTreeMap::new(),
    )
    .unwrap();
    let problems = settings.validate().unwrap_err();
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    for expected in [
        "salesforce.client_id",
        "salesforce.username",
        "salesforce.private_key_path",
        "whatsapp.access_token",
        "whatsapp.default_phone_number_id",
        "whatsapp.app_secret",
        "writeback.batch_size",
    ] {
        assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
    }
    assert!(problems.iter().all(|p| !p.fix.is_empty()));
}

#[test]
fn a_case_link_window_of_zero_or_past_the_journal_retention_is_refused_and_seven_days_is_the_default(
) {
    let default = Settings::from_layers(MINIMAL, &BTreeMap::new()).unwrap();
    let zero = Settings::from_layers(
        MINIMAL,
        &env(&[("SFWA_SALESFORCE__CASE_LINK_WINDOW", "0s")]),
    )
    .unwrap();
    let too_long = Settings::from_layers(
        MINIMAL,
        &env(&[("SFWA_SALESFORCE__CASE_LINK_WINDOW", "45d")]),
    )
    .unwrap();

    let keys = |settings: &Settings| -> Vec<String> {
        settings
            .validate()
            .err()
            .unwrap_or_default()
            .iter()
            .map(|p| p.key.clone())
            .collect()
    };

    assert_eq!(
        default.salesforce.case_link_window,
        Duration::from_secs(7 * 86_400)
    );
    assert!(keys(&default).is_empty());
    assert_eq!(keys(&zero), vec!["salesforce.case_link_window"]);
    assert_eq!(keys(&too_long), vec!["salesforce.case_link_window"]);
}

#[test]
fn client_credentials_against_the_shared_login_host_is_flagged() {
    let text = MINIMAL.replace(
        "https://acme.my.salesforce.com",
        "https://login.salesforce.com",
    );
    let problems = Settings::from_layers(&text, &BTreeMap::new())
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(problems[0].key, "salesforce.login_url");
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let settings = Settings::from_layers(MINIMAL, &BTreeMap::new()).unwrap();
    let printed = format!("{settings:?}");
    for secret in ["s3cret", "EAAtoken", "appsecret", "vErIfY-t0k3n"] {
        assert!(!printed.contains(secret), "{secret} leaked");
    }
}

#[test]
fn secret_files_replace_inline_values() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "EAAfromfile\n").unwrap();
    let mut settings = Settings::from_layers(MINIMAL, &BTreeMap::new()).unwrap();
    settings.whatsapp.access_token_file = Some(file);
    settings.read_secret_files().unwrap();
    assert_eq!(settings.whatsapp.access_token.expose(), "EAAfromfile");
}

#[test]
fn the_jwt_audience_follows_the_login_url() {
    let mut sf = SalesforceSettings::default();
    assert_eq!(sf.jwt_audience(), "https://login.salesforce.com");
    sf.login_url = "https://test.salesforce.com".into();
    assert_eq!(sf.jwt_audience(), "https://test.salesforce.com");
}

#[test]
fn the_annotated_example_file_parses_with_every_key_known() {
    let text = include_str!("../../sfwa.example.toml");
    let settings = Settings::from_layers(text, &BTreeMap::new()).unwrap();
    assert_eq!(settings.intake.interval, Duration::from_secs(10));
    assert_eq!(
        settings.dispatch.unknown_outcome_grace,
        Duration::from_secs(600)
    );
}

#[test]
fn a_missing_config_file_is_named_first_among_the_problems() {
    let missing = std::env::temp_dir().join("sfwa-no-such-config.toml");
    match Settings::load(&missing) {
        Err(ConfigError::Invalid(problems)) => assert_eq!(problems[0].key, "--config"),
        other => panic!("expected the missing file to be reported, got {other:?}"),
    }
}

#[test]
fn a_variable_without_the_double_underscore_is_refused_with_the_naming_rule() {
    let error = Settings::from_layers(MINIMAL, &env(&[("SFWA_WHATSAPP_TOKEN", "x")])).unwrap_err();

    assert_eq!(
        error.to_string(),
        "environment variable SFWA_WHATSAPP_TOKEN does not name a setting (missing the double \
         underscore between section and key); use SFWA_<SECTION>__<KEY>, e.g. \
         SFWA_WHATSAPP__ACCESS_TOKEN"
    );
}

#[test]
fn a_variable_for_a_section_the_file_sets_to_a_value_is_refused() {
    let error =
        Settings::from_layers("intake = 5", &env(&[("SFWA_INTAKE__MODE", "poll")])).unwrap_err();

    assert!(
        matches!(&error, ConfigError::Env { message, .. } if message == "that section is not a table"),
        "{error}"
    );
}

#[test]
fn an_unknown_key_from_the_environment_is_named_with_its_layer() {
    let error =
        Settings::from_layers(MINIMAL, &env(&[("SFWA_WHATSAPP__ACCES_TOKEN", "x")])).unwrap_err();

    let message = error.to_string();
    assert!(message.contains("acces_token"), "{message}");
    assert!(
        message.contains("SFWA_* environment variables"),
        "{message}"
    );
}

#[test]
fn a_list_and_a_boolean_like_text_come_through_the_environment_typed_as_their_keys_want() {
    let settings = Settings::from_layers(
        MINIMAL,
        &env(&[
            ("SFWA_WHATSAPP__PHONE_NUMBER_IDS", r#"["111", "222"]"#),
            ("SFWA_WHATSAPP__VERIFY_TOKEN", "true"),
        ]),
    )
    .unwrap();

    assert_eq!(settings.whatsapp.phone_number_ids, ["111", "222"]);
    assert_eq!(settings.whatsapp.verify_token.expose(), "true");
}

#[test]
fn a_toml_syntax_error_is_reported_before_any_variable() {
    let error =
        Settings::from_layers("[whatsapp\n", &env(&[("SFWA_NO_UNDERSCORES", "x")])).unwrap_err();

    assert!(matches!(error, ConfigError::Syntax { .. }), "{error}");
}

#[test]
fn webhook_forward_rules_are_read_from_the_file_and_checked() {
    // Arrange
    let good = format!(
        "{MINIMAL}\n[[webhook.forward]]\nnumbers = [\"222\"]\nurl = \"http://sfwa-b.sfwa.svc:8080/webhook\"\n"
    );
    let bad = format!(
        "{MINIMAL}\n[[webhook.forward]]\nnumbers = [\"106540352242922\", \"222\"]\nurl = \"sfwa-b\"\n\
         [[webhook.forward]]\nnumbers = [\"222\"]\nurl = \"http://sfwa-c/webhook\"\n"
    );

    // Act
    let good = Settings::from_layers(&good, &BTreeMap::new()).unwrap();
    let problems = Settings::from_layers(&bad, &BTreeMap::new())
        .unwrap()
        .validate()
        .unwrap_err();

    // Assert
    good.validate().unwrap();
    assert_eq!(good.webhook.forward[0].numbers, ["222"]);
    let said: Vec<String> = problems
        .iter()
        .map(|p| format!("{} {}", p.key, p.problem))
        .collect();
    assert!(
        said.iter().any(|p| p.contains("webhook.forward[0].url")),
        "{said:?}"
    );
    assert!(
        said.iter()
            .any(|p| p.contains("106540352242922, which this instance serves")),
        "{said:?}"
    );
    assert!(
        said.iter()
            .any(|p| p.contains("webhook.forward[1].numbers") && p.contains("earlier rule")),
        "{said:?}"
    );
}

#[test]
fn the_commit_linger_is_off_by_default_takes_a_duration_and_refuses_more_than_100_ms() {
    let default = Settings::from_layers(MINIMAL, &BTreeMap::new()).unwrap();
    assert_eq!(default.store.commit_linger, Duration::ZERO);
    let four =
        Settings::from_layers(MINIMAL, &env(&[("SFWA_STORE__COMMIT_LINGER", "4ms")])).unwrap();
    four.validate().unwrap();
    assert_eq!(four.store.commit_linger, Duration::from_millis(4));

    let long =
        Settings::from_layers(MINIMAL, &env(&[("SFWA_STORE__COMMIT_LINGER", "1s")])).unwrap();
    let problems = long.validate().unwrap_err();
    let problem = problems
        .iter()
        .find(|p| p.key == "store.commit_linger")
        .expect("store.commit_linger refused");
    assert!(problem.fix.contains("4ms"), "{}", problem.fix);
}

#[test]
fn the_backlog_commit_linger_is_20_ms_by_default_may_be_turned_off_and_refuses_more_than_100_ms() {
    let default = Settings::from_layers(MINIMAL, &BTreeMap::new()).unwrap();
    assert_eq!(
        default.store.backlog_commit_linger,
        Duration::from_millis(20)
    );
    let off = Settings::from_layers(
        MINIMAL,
        &env(&[("SFWA_STORE__BACKLOG_COMMIT_LINGER", "0s")]),
    )
    .unwrap();
    off.validate().unwrap();
    assert_eq!(off.store.backlog_commit_linger, Duration::ZERO);

    let long = Settings::from_layers(
        MINIMAL,
        &env(&[("SFWA_STORE__BACKLOG_COMMIT_LINGER", "1s")]),
    )
    .unwrap();
    let problems = long.validate().unwrap_err();
    let problem = problems
        .iter()
        .find(|p| p.key == "store.backlog_commit_linger")
        .expect("store.backlog_commit_linger refused");
    assert!(problem.fix.contains("0s"), "{}", problem.fix);
}
