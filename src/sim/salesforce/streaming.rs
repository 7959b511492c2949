//! TEMPORARY stand-in until the CometD branch merges (same public API).
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use crate::sim::clock::SimClock;

pub struct EventBus {
    events: Mutex<Vec<(String, Map<String, Value>)>>,
}

impl EventBus {
    pub fn new(_clock: SimClock, _retention: chrono::Duration) -> Arc<EventBus> {
        Arc::new(EventBus {
            events: Mutex::new(Vec::new()),
        })
    }
    pub fn register_channel(&self, _channel: &str) {}
    pub fn publish(&self, channel: &str, payload: Map<String, Value>) -> i64 {
        let mut events = self.events.lock().unwrap();
        events.push((channel.to_string(), payload));
        events.len() as i64
    }
    pub fn drop_all_clients(&self) {}
}

#[derive(Clone, Debug)]
pub struct StreamingConfig {
    pub connect_timeout: std::time::Duration,
    pub max_body_bytes: usize,
}

impl Default for StreamingConfig {
    fn default() -> Self {
        StreamingConfig {
            connect_timeout: std::time::Duration::from_secs(110),
            max_body_bytes: 32768,
        }
    }
}

pub fn router(
    _bus: Arc<EventBus>,
    _config: StreamingConfig,
    _authorize: Arc<dyn Fn(&axum::http::HeaderMap) -> bool + Send + Sync>,
    _shutdown: tokio_util::sync::CancellationToken,
) -> axum::Router {
    axum::Router::new()
}
