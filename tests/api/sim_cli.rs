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
    let mut child = Command::new(env!("CARGO_BIN_EXE_sfwa"))
        .args([
            "sim",
            "--salesforce-addr",
            "127.0.0.1:0",
            "--whatsapp-addr",
            "127.0.0.1:0",
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
        stdout.contains("6 outbound records: all as expected"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Priya's linked to her Contact: yes"),
        "the customer's reply arrived on Salesforce, linked: {stdout}"
    );
    for code in ["OUTSIDE_SESSION_WINDOW", "INVALID_PHONE", "WA_132000"] {
        assert!(stdout.contains(code), "{code} shown in the table");
    }
}
