//! The sandbox keeps the WhatsApp account's identity across restarts: the account id (which seeds
//! the customers' BSUIDs) and its second business number.

use std::net::SocketAddr;

use sfwa_sim::sandbox::{Sandbox, SandboxOptions};

fn options(state_dir: std::path::PathBuf) -> SandboxOptions {
    SandboxOptions {
        salesforce_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        whatsapp_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        webhook_url: None,
        state_dir,
    }
}

#[tokio::test]
async fn a_restarted_sandbox_keeps_its_account_id_and_second_number_so_bsuids_stay_the_same() {
    // Arrange
    let dir = std::env::temp_dir().join(format!("sfwa-sim-sandbox-{}", uuid::Uuid::new_v4()));
    let first = Sandbox::start(&options(dir.clone()))
        .await
        .expect("first start");
    let waba_id = first.whatsapp.waba_id().to_owned();
    let other = first.whatsapp.config().other_phone_numbers.clone();
    let listed = first.connection_info()["whatsapp"]["other_phone_number_ids"].clone();
    first.stop().await;

    // Act
    let second = Sandbox::start(&options(dir.clone()))
        .await
        .expect("restart");

    // Assert
    assert_eq!(second.whatsapp.waba_id(), waba_id);
    assert_eq!(second.whatsapp.config().other_phone_numbers, other);
    assert_eq!(listed, serde_json::json!([other[0].phone_number_id]));
    second.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}
