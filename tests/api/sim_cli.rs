//! `sfwa sim` as an operator runs it: the real binary, its JSON line, both services usable, clean stop.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

/// Kills the child if a test fails before stopping it.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sim(state_dir: &std::path::Path) -> (Child, Value) {
    start_sim_on(state_dir, "127.0.0.1:0")
}

fn start_sim_on(state_dir: &std::path::Path, addr: &str) -> (Child, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sfwa"))
        .args([
            "sim",
            "--salesforce-addr",
            addr,
            "--whatsapp-addr",
            addr,
            "--state-dir",
        ])
        .arg(state_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sfwa builds and starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("first line is JSON ({e}): {line}"));
    (Child(child), info)
}

#[tokio::test]
async fn sfwa_sim_prints_a_json_line_with_working_credentials_for_both_services() {
    let state = tempfile::tempdir().unwrap();
    let (_child, info) = start_sim(state.path());
    let http = reqwest::Client::new();

    let sf = &info["salesforce"];
    let key_path = std::path::Path::new(sf["private_key_path"].as_str().unwrap());
    assert!(
        key_path.is_absolute(),
        "usable from any working directory: {key_path:?}"
    );
    let key = std::fs::read(key_path).unwrap();
    let claims = json!({"iss": sf["client_id"], "sub": sf["username"], "aud": "https://login.salesforce.com",
                        "exp": chrono::Utc::now().timestamp() + 120});
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(&key).unwrap(),
    )
    .unwrap();
    let salesforce_url = info["salesforce_url"].as_str().unwrap();
    let token = http
        .post(format!("{salesforce_url}/services/oauth2/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", jwt.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);

    let wa = &info["whatsapp"];
    let sent = http
        .post(format!(
            "{}/v23.0/{}/messages",
            info["whatsapp_url"].as_str().unwrap(),
            wa["phone_number_id"].as_str().unwrap()
        ))
        .bearer_auth(wa["access_token"].as_str().unwrap())
        .json(
            &json!({"messaging_product": "whatsapp", "to": "16505551234", "type": "template",
                      "template": {"name": "hello_world", "language": {"code": "en_US"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    for key in ["app_secret", "verify_token"] {
        assert!(
            wa[key].as_str().is_some_and(|v| !v.is_empty()),
            "whatsapp.{key} present"
        );
    }
}

#[tokio::test]
async fn sfwa_sim_writes_a_daemon_config_that_sfwa_sync_uses_against_it() {
    let state = tempfile::tempdir().unwrap();
    let (_child, info) = start_sim(state.path());
    let config = std::path::PathBuf::from(info["config_path"].as_str().expect("config_path"));
    assert_eq!(
        config,
        state.path().canonicalize().unwrap().join("sfwa.toml")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&config).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "owner-only: it holds secrets");
    }

    // The file alone is a complete, valid configuration (secrets read, every key validated).
    let settings = sfwa::config::Settings::load(&config).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        settings.salesforce.login_url,
        info["salesforce_url"].as_str().unwrap()
    );
    assert_eq!(
        settings.whatsapp.api_base,
        info["whatsapp_url"].as_str().unwrap()
    );
    assert_eq!(
        settings.whatsapp.default_phone_number_id,
        info["whatsapp"]["phone_number_id"].as_str().unwrap()
    );
    assert_eq!(
        settings.salesforce.private_key_path.as_deref(),
        Some(std::path::Path::new(
            info["salesforce"]["private_key_path"].as_str().unwrap()
        ))
    );

    // A Queued record, created as the package's Flow-backed DML would, is sent by one `sfwa sync`.
    let salesforce_url = info["salesforce_url"].as_str().unwrap();
    let http = reqwest::Client::new();
    let created = http
        .post(format!(
            "{salesforce_url}/__sim/records/WhatsApp_Message__c"
        ))
        .json(
            &json!({"Status__c": "Queued", "Message_Type__c": "Template",
                      "To_Phone__c": "+1 415 555 0101", "Template_Name__c": "hello_world"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let sync = Command::new(env!("CARGO_BIN_EXE_sfwa"))
        .args(["sync", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .output()
        .expect("sfwa sync runs");
    assert!(
        sync.status.success(),
        "sfwa sync failed:\n{}\n{}",
        String::from_utf8_lossy(&sync.stdout),
        String::from_utf8_lossy(&sync.stderr)
    );
    let records: Value = http
        .get(format!(
            "{salesforce_url}/__sim/records/WhatsApp_Message__c"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(records["records"][0]["Status__c"], "Sent", "{records}");
}

/// As in deploy/compose.yaml: the sim listens on every interface and the daemon reaches it by a
/// name of its own (`http://sim:7701`), so the org must send it back to that name, not 0.0.0.0.
#[tokio::test]
async fn sfwa_sim_on_every_interface_gives_each_client_the_instance_url_it_reached() {
    let state = tempfile::tempdir().unwrap();
    let (_child, info) = start_sim_on(state.path(), "0.0.0.0:0");
    let listening = info["salesforce_url"].as_str().unwrap();
    let port = listening.rsplit(':').next().unwrap();
    assert!(listening.starts_with("http://0.0.0.0:"), "{listening}");

    let sf = &info["salesforce"];
    let key = std::fs::read(sf["private_key_path"].as_str().unwrap()).unwrap();
    let claims = json!({"iss": sf["client_id"], "sub": sf["username"], "aud": "https://login.salesforce.com",
                        "exp": chrono::Utc::now().timestamp() + 120});
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(&key).unwrap(),
    )
    .unwrap();
    let reached = format!("http://localhost:{port}");
    let token: Value = reqwest::Client::new()
        .post(format!("{reached}/services/oauth2/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", jwt.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(token["instance_url"], reached.as_str(), "{token}");
    // The written config names a connectable address, not 0.0.0.0.
    let config = std::fs::read_to_string(info["config_path"].as_str().unwrap()).unwrap();
    assert!(
        config.contains(&format!("login_url = \"http://127.0.0.1:{port}\"")),
        "{config}"
    );
}

#[tokio::test]
async fn sfwa_sim_keeps_its_credentials_across_restarts_with_the_same_state_dir() {
    let state = tempfile::tempdir().unwrap();

    let (first_child, first) = start_sim(state.path());
    drop(first_child);
    let (_second_child, second) = start_sim(state.path());

    assert_eq!(first["salesforce"], second["salesforce"]);
    assert_eq!(first["whatsapp"], second["whatsapp"]);
}

#[cfg(unix)]
#[test]
fn sfwa_sim_exits_zero_on_sigterm() {
    let state = tempfile::tempdir().unwrap();
    let (mut child, _) = start_sim(state.path());

    let pid = child.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.0.wait().unwrap();

    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn sfwa_demo_ends_with_every_record_as_a_rep_should_see_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_sfwa"))
        .arg("demo")
        .output()
        .expect("sfwa demo runs");

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("8 outbound records: all as expected"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Priya's linked to her Contact: yes"),
        "the customer's reply arrived on Salesforce, linked: {stdout}"
    );
    assert!(
        stdout.contains("linked to his Contact by the BSUID on it: yes; the rep's reply sent by BSUID with no phone number: yes"),
        "the username customer's message linked by BSUID, the reply sent by BSUID: {stdout}"
    );
    assert!(
        stdout.contains("@sam.lee (no number)"),
        "the inbound table shows the username, not a number: {stdout}"
    );
    for code in ["OUTSIDE_SESSION_WINDOW", "INVALID_PHONE", "WA_132000"] {
        assert!(stdout.contains(code), "{code} shown in the table");
    }
}
