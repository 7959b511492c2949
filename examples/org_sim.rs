//! Runs only the Salesforce org simulator and prints `sfwa sim`'s connection line for its half.
//! `cargo run --example org_sim [STATE_DIR]` — for trying Salesforce clients against the org alone.

use serde_json::json;
use sfwa_sim::salesforce::{self, SalesforceSimConfig, TrustedKey};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| ".sfwa-sim".into());
    let key = TrustedKey::load_or_create(std::path::Path::new(&dir))?;
    let sim = salesforce::start(SalesforceSimConfig::new(key)?).await?;
    let config = sim.config();
    println!(
        "{}",
        json!({"salesforce_url": sim.url(), "salesforce": {"client_id": config.client_id,
            "client_secret": config.client_secret, "username": config.username,
            "private_key_path": config.trusted_key.private_key_path}})
    );
    tokio::signal::ctrl_c().await?;
    sim.stop().await;
    Ok(())
}
