//! Readiness: whether Meta's webhooks should be routed to this sfwa, as `GET /readyz` reports it
//! (the intake part from [`super::health`]).
//!
//! **Ready means the store accepts writes** — an `IMMEDIATE` transaction takes the write lock and
//! commits within [`STORE_PROBE_TIMEOUT`]. That is all a webhook needs: it is stored durably
//! before the 200, whatever Salesforce does, and the window mirror lives on it. Refusing Meta
//! because Salesforce is down would lose nothing but freeze the mirror and pile up Meta's retries,
//! so the rest is reported, not refused — an alert, not a routing decision:
//! - **salesforce** — a session was obtained and the last Salesforce call did not fail
//!   authentication ([`crate::salesforce::AuthState::Valid`]); tracked by the client, so a probe
//!   never costs an API call;
//! - **intake** — stream mode: the CometD subscription is connected (its last long poll
//!   succeeded); poll mode: a poll succeeded within the last 3 × `intake.interval` (one or two
//!   failed polls are a blip, three in a row are an outage);
//! - **held** — business numbers whose sends are on hold, with until when and why.
//!
//! Liveness (`/healthz`) is separate and always "ok" while the process serves: restarting sfwa
//! does not bring Salesforce back.

use std::time::Duration;

use serde::Serialize;

use crate::config::IntakeMode;
use crate::pipeline::Pipeline;

use super::health::Health;
use crate::salesforce::AuthState;

/// How long the store may take to take and release the write lock (it is busy, not broken, below
/// this).
pub const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Polls that may fail in a row before poll-mode intake counts as an outage.
const POLL_INTERVALS_TOLERATED: i32 = 3;

/// What `/readyz` answers, as JSON. `ready` is the store's word alone; `problems` lists the rest
/// (empty when all is well), one line each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Readiness {
    pub ready: bool,
    /// `"writable"`, or why not.
    pub store: String,
    /// `"ok"`, or what is wrong with the session.
    pub salesforce: String,
    /// `"ok"`, or what is wrong with the intake.
    pub intake: String,
    /// Business numbers on hold now.
    pub held: Vec<HeldNumber>,
    /// Every line above that is not fine, prefixed with what it is about (`store: …`).
    pub problems: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeldNumber {
    pub number: String,
    pub until: String,
    pub reason: String,
}

/// Probes the store and reads the rest.
pub async fn readiness(pipeline: &Pipeline, health: &Health) -> Readiness {
    let store = store_writable(pipeline).await;
    let salesforce = salesforce(pipeline);
    let intake = intake(pipeline, health);
    let held: Vec<HeldNumber> = pipeline
        .dispatcher
        .held_numbers()
        .into_iter()
        .map(|(number, hold)| HeldNumber {
            number,
            until: hold.until.to_rfc3339(),
            reason: hold.reason,
        })
        .collect();
    let mut problems = Vec::new();
    for (what, state) in [
        ("store", &store),
        ("salesforce", &salesforce),
        ("intake", &intake),
    ] {
        if let Err(problem) = state {
            problems.push(format!("{what}: {problem}"));
        }
    }
    for hold in &held {
        problems.push(format!(
            "held: {} until {}: {}",
            hold.number, hold.until, hold.reason
        ));
    }
    Readiness {
        ready: store.is_ok(),
        store: store.map_or_else(|e| e, |()| "writable".into()),
        salesforce: salesforce.map_or_else(|e| e, |()| "ok".into()),
        intake: intake.map_or_else(|e| e, |()| "ok".into()),
        held,
        problems,
    }
}

/// An empty `IMMEDIATE` transaction: the write lock taken and released, as a webhook would.
async fn store_writable(pipeline: &Pipeline) -> Result<(), String> {
    let probe = pipeline.core.store.write(|_| Ok(()));
    match tokio::time::timeout(STORE_PROBE_TIMEOUT, probe).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!(
            "no write within {}s",
            STORE_PROBE_TIMEOUT.as_secs()
        )),
    }
}

fn salesforce(pipeline: &Pipeline) -> Result<(), String> {
    match pipeline.intake.salesforce.auth_state() {
        AuthState::Valid => Ok(()),
        AuthState::NoSession => Err("not logged in yet".into()),
        AuthState::Refused => {
            Err("the last login or call was refused authentication (check the credentials)".into())
        }
    }
}

fn intake(pipeline: &Pipeline, health: &Health) -> Result<(), String> {
    match pipeline.core.settings.intake.mode {
        IntakeMode::Stream if health.stream_connected() => Ok(()),
        IntakeMode::Stream => Err("stream not connected to the platform-event channel".into()),
        IntakeMode::Poll => {
            let interval = chrono::Duration::from_std(pipeline.core.settings.intake.interval)
                .unwrap_or(chrono::Duration::seconds(10));
            let limit = interval * POLL_INTERVALS_TOLERATED;
            match health.last_poll_ok() {
                None => Err("no successful poll yet".into()),
                Some(at) if pipeline.core.now() - at > limit => Err(format!(
                    "no successful poll for {}s (more than {} × intake.interval)",
                    (pipeline.core.now() - at).num_seconds(),
                    POLL_INTERVALS_TOLERATED
                )),
                Some(_) => Ok(()),
            }
        }
    }
}
