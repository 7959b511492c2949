//! Readiness: whether this sfwa can do its job right now, as `GET /readyz` reports it (the intake
//! part from [`super::health`]).
//!
//! Ready means all of:
//! - **store** — the SQLite store answers a trivial query (within [`STORE_PROBE_TIMEOUT`]);
//! - **salesforce** — a session was obtained and the last Salesforce call did not fail
//!   authentication ([`crate::salesforce::AuthState::Valid`]); tracked by the client, so a probe
//!   never costs an API call;
//! - **intake** — stream mode: the CometD subscription is connected (its last long poll
//!   succeeded); poll mode: a poll succeeded within the last 3 × `intake.interval` (one or two
//!   failed polls are a blip, three in a row are an outage).
//!
//! Liveness (`/healthz`) is separate and always "ok" while the process serves: restarting sfwa
//! does not bring Salesforce back. Webhooks are accepted (and stored) whether or not it is ready.

use std::time::Duration;

use crate::config::IntakeMode;
use crate::pipeline::Pipeline;

use super::health::Health;
use crate::salesforce::AuthState;

/// How long the store may take to answer the readiness query (it is busy, not broken, below this).
pub const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Polls that may fail in a row before poll-mode intake counts as not ready.
const POLL_INTERVALS_TOLERATED: i32 = 3;

/// What is not ready, one line each; empty when ready.
pub async fn not_ready(pipeline: &Pipeline, health: &Health) -> Vec<String> {
    let mut problems = Vec::new();
    let probe = pipeline.core.store.read(|conn| {
        conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))?;
        Ok(())
    });
    match tokio::time::timeout(STORE_PROBE_TIMEOUT, probe).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => problems.push(format!("store: {error}")),
        Err(_) => problems.push(format!(
            "store: no answer within {}s",
            STORE_PROBE_TIMEOUT.as_secs()
        )),
    }
    match pipeline.intake.salesforce.auth_state() {
        AuthState::Valid => {}
        AuthState::NoSession => {
            problems.push("salesforce: not logged in yet".to_string());
        }
        AuthState::Refused => problems.push(
            "salesforce: the last login or call was refused authentication (check the credentials)"
                .to_string(),
        ),
    }
    match pipeline.core.settings.intake.mode {
        IntakeMode::Stream => {
            if !health.stream_connected() {
                problems.push("stream: not connected to the platform-event channel".to_string());
            }
        }
        IntakeMode::Poll => {
            let interval = chrono::Duration::from_std(pipeline.core.settings.intake.interval)
                .unwrap_or(chrono::Duration::seconds(10));
            let limit = interval * POLL_INTERVALS_TOLERATED;
            match health.last_poll_ok() {
                None => problems.push("poll: no successful poll yet".to_string()),
                Some(at) if pipeline.core.now() - at > limit => problems.push(format!(
                    "poll: no successful poll for {}s (more than {} × intake.interval)",
                    (pipeline.core.now() - at).num_seconds(),
                    POLL_INTERVALS_TOLERATED
                )),
                Some(_) => {}
            }
        }
    }
    problems
}
