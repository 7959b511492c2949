//! The org's platform-event delivery allocation (`DailyDeliveredPlatformEvents`), read from
//! Salesforce's `GET limits` on a slow timer into [`Health`] for the metrics
//! (`sfwa_platform_events_delivered_remaining` / `_max`). Every instance subscribed to a channel
//! draws on it, so running out stops the stream of every shard at once; the alert wants hours of
//! warning, not seconds, so one call every [`READ_EVERY`] is plenty (the API allowance is what an
//! org runs out of first, and this costs 288 calls a day at most).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::pipeline::Pipeline;
use crate::salesforce::limits::DAILY_DELIVERED_PLATFORM_EVENTS;
use crate::salesforce::SalesforceError;

use super::health::Health;

/// How often the allocation is read.
pub const READ_EVERY: Duration = Duration::from_secs(5 * 60);

/// One read: keeps the allocation in `health` (`None` when the org does not report it). On an
/// error the previous reading stays: the gauge goes stale rather than absent during an outage.
pub async fn read_once(pipeline: &Pipeline, health: &Health) -> Result<(), SalesforceError> {
    let limit = pipeline
        .intake
        .salesforce
        .limit(DAILY_DELIVERED_PLATFORM_EVENTS)
        .await?;
    debug!(?limit, "platform-event delivery allocation read");
    health.set_platform_events(limit);
    Ok(())
}

/// Reads the allocation now and every [`READ_EVERY`] until `shutdown` (stream mode only: a
/// polling instance subscribes to nothing).
pub async fn run_limits(pipeline: Pipeline, health: Arc<Health>, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(READ_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(error) = read_once(&pipeline, &health).await {
            warn!(%error, "could not read the org's DailyDeliveredPlatformEvents; keeping the last reading");
        }
    }
}
