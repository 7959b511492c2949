//! The real `sfwa` binary and its environment: variables the README and `--help` advertise work.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::daemon_support::spawn_app;
use crate::doctor::config_file;

#[tokio::test]
async fn sfwa_run_starts_with_sfwa_log_format_json_and_logs_one_json_object_per_line() {
    // Arrange: a valid config for the simulators, its own store.
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = app.settings.clone();
    settings.store.path = dir.path().join("sfwa.db");
    let config = dir.path().join("sfwa.toml");
    config_file(&settings, &config);

    // Act
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sfwa"))
        .args(["run", "--config"])
        .arg(&config)
        .env("SFWA_LOG_FORMAT", "json")
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sfwa run starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let running = tokio::time::timeout(Duration::from_secs(15), async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push(line.clone());
            if let Ok(log) = serde_json::from_str::<Value>(&line) {
                if log["fields"]["message"] == "sfwa running" {
                    return Some(log);
                }
            }
        }
        None
    })
    .await;
    let _ = child.start_kill();

    // Assert
    let log = running
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no JSON 'sfwa running' line: {seen:#?}"));
    assert_eq!(log["level"], "INFO");
    assert!(
        !seen.iter().any(|l| l.contains("does not name a setting")),
        "{seen:#?}"
    );
}
