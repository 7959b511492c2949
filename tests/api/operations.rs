//! What operators run against a daemon: `sfwa healthcheck` (the image's HEALTHCHECK), every metric
//! the alert rules (`deploy/prometheus/sfwa-alerts.yaml`) and the dashboard
//! (`deploy/grafana/sfwa.json`) query present on a running daemon's `/metrics`, and the org's
//! platform-event allocation read from `GET limits` into its gauges, and the image built with the
//! checkout's cargo settings.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::json;
use sfwa::observe::limits;
use sfwa::salesforce::limits::DAILY_DELIVERED_PLATFORM_EVENTS;

use crate::daemon_support::{spawn_app, spawn_app_with, Options, TestApp};
use crate::doctor::config_file;

/// Every `sfwa_…` metric name in `text` (a rules file or a dashboard): identifiers starting with
/// `sfwa_` that are not part of a longer word.
fn metric_names(text: &str) -> BTreeSet<String> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut names = BTreeSet::new();
    for (start, _) in text.match_indices("sfwa_") {
        if text[..start].chars().next_back().is_some_and(is_word) {
            continue;
        }
        let rest = &text[start..];
        let end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
        names.insert(rest[..end].to_string());
    }
    names
}

/// Whether `/metrics` exposes `name`: as a sample, or declared by its `# TYPE` line (a counter or
/// histogram family before its first observation; `_total`, `_bucket`, `_sum`, `_count` are
/// series of the declared family).
fn exposes(metrics: &str, name: &str) -> bool {
    let family = ["_total", "_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name);
    metrics.lines().any(|line| {
        line.starts_with(&format!("{name} "))
            || line.starts_with(&format!("{name}{{"))
            || line.starts_with(&format!("# TYPE {family} "))
    })
}

fn read_repo_file(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn run_healthcheck(args: &[&str]) -> (Option<i32>, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_sfwa"))
        .arg("healthcheck")
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("sfwa healthcheck runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test]
async fn sfwa_healthcheck_exits_0_for_a_live_daemon_and_1_with_one_line_when_nothing_answers() {
    // Arrange: a daemon, a config naming its observe listener, and a port nothing listens on.
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = app.settings.clone();
    settings.observe.listen = app
        .observe_base
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let config = dir.path().join("sfwa.toml");
    config_file(&settings, &config);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/healthz", closed.local_addr().unwrap());
    drop(closed);

    // Act
    let by_config = run_healthcheck(&["--config", config.to_str().unwrap()]).await;
    let by_url = run_healthcheck(&["--url", &format!("{}/healthz", app.observe_base)]).await;
    let nothing = run_healthcheck(&["--url", &dead]).await;
    let not_found = run_healthcheck(&["--url", &format!("{}/nope", app.observe_base)]).await;

    // Assert
    assert_eq!(by_config.0, Some(0), "{}", by_config.1);
    assert_eq!(by_url.0, Some(0), "{}", by_url.1);
    assert_eq!(nothing.0, Some(1), "{}", nothing.1);
    assert_eq!(nothing.1.lines().count(), 1, "{}", nothing.1);
    assert!(nothing.1.contains("nothing answers at"), "{}", nothing.1);
    assert_eq!(not_found.0, Some(1), "{}", not_found.1);
    assert!(not_found.1.contains("404"), "{}", not_found.1);
}

#[tokio::test]
async fn every_metric_the_alert_rules_and_the_dashboard_query_appears_on_a_running_daemons_metrics()
{
    // Arrange: a streaming daemon (the stream gauges exist only there) that has sent a message,
    // had its status webhook, read the org's limits and taken its number leases.
    let rules = read_repo_file("deploy/prometheus/sfwa-alerts.yaml");
    let dashboard = read_repo_file("deploy/grafana/sfwa.json");
    let app = spawn_app_with(Options::default()).await;
    let ids = app
        .queue(json!([{"To_Phone__c": "+16505551301", "Message_Type__c": "Template", "Template_Name__c": "hello_world"}]))
        .await;
    app.dispatch().await;
    app.status_after_webhooks(&ids[0], "Read").await;
    limits::read_once(&app.pipeline, &app.health).await.unwrap();
    sfwa::pipeline::lease::acquire(&app.pipeline).await.unwrap();
    let named: BTreeSet<String> = metric_names(&rules)
        .union(&metric_names(&dashboard))
        .cloned()
        .collect();

    // Act
    let metrics = app.scrape().await;

    // Assert
    assert!(named.len() >= 20, "the files name their metrics: {named:?}");
    let missing: Vec<&String> = named
        .iter()
        .filter(|name| !exposes(&metrics, name))
        .collect();
    assert!(
        missing.is_empty(),
        "not on /metrics: {missing:?}\n{metrics}"
    );
}

/// The index of the Dockerfile's first instruction line containing `needle`. Instructions only:
/// a comment naming it must not decide the order.
fn instruction_line(dockerfile: &str, needle: &str) -> Option<usize> {
    dockerfile
        .lines()
        .position(|line| !line.trim_start().starts_with('#') && line.contains(needle))
}

#[test]
fn the_image_compiles_its_dependencies_with_the_checkouts_cargo_settings() {
    // `.cargo/config.toml` sets SQLite's build flags (fdatasync); an image built without it
    // would sync the store differently from every other build.
    let dockerfile = read_repo_file("deploy/Dockerfile");
    let settings = instruction_line(&dockerfile, "COPY .cargo/config.toml")
        .expect("the Dockerfile copies .cargo/config.toml");
    let first_build =
        instruction_line(&dockerfile, "cargo build").expect("the Dockerfile runs cargo build");

    assert!(settings < first_build, "{dockerfile}");
}

#[test]
fn the_image_has_the_build_script_that_splits_the_phone_rules_before_it_builds() {
    // `src/domain/phone_rules.rs` includes what `build.rs` writes; an image without the script
    // (or the file it includes, `build/phone_rules.rs`) does not compile.
    let dockerfile = read_repo_file("deploy/Dockerfile");
    let first_build =
        instruction_line(&dockerfile, "cargo build").expect("the Dockerfile runs cargo build");
    for copy in ["COPY build.rs ", "COPY build ./build"] {
        let line = instruction_line(&dockerfile, copy)
            .unwrap_or_else(|| panic!("no `{copy}`:\n{dockerfile}"));
        assert!(
            line < first_build,
            "`{copy}` after the first build:\n{dockerfile}"
        );
    }
}

#[test]
fn the_name_scan_finds_metrics_and_not_longer_words() {
    let text =
        r#"expr: sum(rate(sfwa_messages_total{outcome="sent"}[5m])) / x_sfwa_not 'sfwa_ready'"#;

    let names = metric_names(text);

    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["sfwa_messages_total", "sfwa_ready"]
    );
}

/// The allocation as the org reports it (`None` when its `GET limits` does not list it), read the
/// way sfwa reads it, then compared with what the gauges show.
async fn platform_events_on_metrics(app: &TestApp) -> (Option<(f64, f64)>, String) {
    let metrics = app.scrape().await;
    let sample = |name: &str| {
        metrics.lines().find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            (series == name).then(|| value.parse::<f64>().unwrap())
        })
    };
    let remaining = sample("sfwa_platform_events_delivered_remaining");
    let max = sample("sfwa_platform_events_delivered_max");
    (remaining.zip(max), metrics)
}

#[tokio::test]
async fn the_platform_event_allocation_is_read_from_get_limits_into_its_gauges() {
    // Arrange
    let app = spawn_app().await;
    let salesforce = &app.pipeline.intake.salesforce;
    let api = salesforce.limit("DailyApiRequests").await.unwrap();
    let reported = salesforce
        .limit(DAILY_DELIVERED_PLATFORM_EVENTS)
        .await
        .unwrap();
    let (before, _) = platform_events_on_metrics(&app).await;

    // Act
    limits::read_once(&app.pipeline, &app.health).await.unwrap();
    let (after, metrics) = platform_events_on_metrics(&app).await;

    // Assert: GET limits is read (the API allocation is the simulator's 15,000 a day); the
    // platform-event gauges show exactly what the org reports, and nothing when it reports nothing.
    assert_eq!(api.map(|l| l.max), Some(15000));
    assert_eq!(before, None, "no reading yet");
    assert_eq!(app.health.platform_events(), reported);
    assert_eq!(
        after,
        reported.map(|l| (l.remaining as f64, l.max as f64)),
        "{metrics}"
    );
}
