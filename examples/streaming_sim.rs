//! Runs the Streaming API simulator alone, for poking at it with third-party clients
//! (e.g. `node tests/thirdparty/cometd_replay.mjs`, the official CometD client; token `good`).
//!
//! `cargo run --example streaming_sim [PORT]` (default 8765). Bearer token `good` is the only valid
//! session. Publishes three events on `/event/WhatsApp_Outbound__e` at start, then one every 2 s.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map};
use sfwa_sim::clock::SimClock;
use sfwa_sim::salesforce::streaming::{router, EventBus, StreamingConfig};
use sfwa_sim::server::RunningServer;
use tokio_util::sync::CancellationToken;

const CHANNEL: &str = "/event/WhatsApp_Outbound__e";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter("sfwa_sim=debug")
        .init();
    let port: u16 = std::env::args()
        .nth(1)
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(8765);
    let bus = EventBus::new(SimClock::new(), chrono::Duration::hours(72));
    bus.register_channel(CHANNEL);
    let shutdown = CancellationToken::new();
    let authorize = Arc::new(|headers: &axum::http::HeaderMap| {
        headers
            .get("authorization")
            .is_some_and(|v| v.as_bytes() == b"Bearer good")
    });
    let app = router(
        bus.clone(),
        StreamingConfig::default(),
        authorize,
        shutdown.clone(),
    );
    let server = RunningServer::bind(([127, 0, 0, 1], port).into(), app).await?;
    println!("streaming simulator at {}/cometd/62.0", server.url());

    let mut n = 0u32;
    let mut publish = move || {
        n += 1;
        let mut fields = Map::new();
        fields.insert("Message_Id__c".into(), json!(format!("a01Hs{n:013}")));
        bus.publish(CHANNEL, fields)
    };
    publish();
    publish();
    let mut ticks = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = ticks.tick() => { publish(); }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    shutdown.cancel();
    server.stop().await;
    Ok(())
}
