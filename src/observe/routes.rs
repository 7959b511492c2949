//! `GET /metrics`, `GET /healthz` and `GET /readyz`: the observe listener's routes
//! (`observe.listen`, default 127.0.0.1:9464), apart from Meta's public webhook port, which serves
//! `webhook.path` alone. Scrapes and probes then never share a port (or an Ingress) with Meta.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tracing::warn;

use crate::config::IntakeMode;
use crate::pipeline::stream::cursor_name;
use crate::pipeline::Pipeline;

use super::health::Health;
use super::metrics::Metrics;
use crate::store::{cursors, journal, outbox, StoreError};

use super::metrics::{Snapshot, StreamSnapshot, CONTENT_TYPE};
use super::readiness;

/// What the probes read: the pipeline's state, and what its observers kept.
#[derive(Clone)]
pub struct Probed {
    pub pipeline: Pipeline,
    pub metrics: Metrics,
    pub health: Arc<Health>,
}

pub fn routes(probed: Probed) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(probed))
}

/// The metrics; 500 only if the store cannot be read (the scrape then shows as failed, which is
/// what an alert on `up` should catch).
async fn metrics(State(probed): State<Arc<Probed>>) -> Response {
    let ready = readiness::readiness(&probed.pipeline, &probed.health)
        .await
        .ready;
    match snapshot(&probed.pipeline, &probed.health, ready).await {
        Ok(snapshot) => (
            [(header::CONTENT_TYPE, CONTENT_TYPE)],
            probed.metrics.render(&snapshot),
        )
            .into_response(),
        Err(error) => {
            warn!(%error, "metrics: the store could not be read");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the store could not be read: {error}\n"),
            )
                .into_response()
        }
    }
}

/// 200 while the store accepts writes, else 503; the body is [`readiness::Readiness`] as JSON
/// either way (Salesforce, the intake and held numbers reported, not refused).
async fn readyz(State(probed): State<Arc<Probed>>) -> Response {
    let readiness = readiness::readiness(&probed.pipeline, &probed.health).await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness)).into_response()
}

/// The state gauges, read in one go on the store's thread; `ready` as the probe found it.
pub async fn snapshot(
    pipeline: &Pipeline,
    health: &Health,
    ready: bool,
) -> Result<Snapshot, StoreError> {
    let now = pipeline.core.now();
    let replay_cursor = (pipeline.core.settings.intake.mode == IntakeMode::Stream)
        .then(|| cursor_name(&pipeline.core.settings.intake.channel));
    let (claimed, sending, outbox_depth, outbox_oldest_age, dead_letters, replay_updated_at) =
        pipeline
            .core
            .store
            .read(move |conn| {
                let (claimed, sending) = journal::unfinished(conn)?;
                let replay_updated_at = match &replay_cursor {
                    Some(name) => cursors::updated_at(conn, name)?,
                    None => None,
                };
                Ok((
                    claimed,
                    sending,
                    outbox::depth(conn)?,
                    outbox::oldest_age(conn, now)?,
                    outbox::dead_letter_count(conn)?,
                    replay_updated_at,
                ))
            })
            .await?;
    let media_waiting = pipeline
        .core
        .store
        .read(crate::store::media::waiting_count)
        .await?;
    let stream =
        (pipeline.core.settings.intake.mode == IntakeMode::Stream).then(|| StreamSnapshot {
            connected: health.stream_connected(),
            replay_updated_at,
            now,
        });
    let counts = pipeline.core.store.commit_counts();
    Ok(Snapshot {
        claimed,
        sending,
        outbox_depth,
        outbox_oldest_age,
        dead_letters,
        media_waiting,
        stream,
        salesforce_api: pipeline.intake.salesforce.api_usage(),
        send_rates: pipeline.dispatcher.pacer.rates(),
        send_concurrency: pipeline.dispatcher.lanes.limits(),
        ready,
        platform_events: health.platform_events(),
        numbers_held: numbers_held(&pipeline.dispatcher),
        store_commits: counts.commits.load(Ordering::Relaxed),
        store_writes: counts.writes.load(Ordering::Relaxed),
        store_checkpoints: counts.checkpoints.load(Ordering::Relaxed),
    })
}

/// Every served business number (and any other on hold), with whether its sends are on hold now:
/// a hold on everything holds each of them.
fn numbers_held(dispatcher: &crate::pipeline::Dispatcher) -> Vec<(String, bool)> {
    let all = dispatcher.hold_on_all().is_some();
    let held = dispatcher.held_numbers();
    let mut numbers: Vec<(String, bool)> = dispatcher
        .core
        .settings
        .business_numbers()
        .into_iter()
        .map(|number| {
            let on_hold = all || held.iter().any(|(n, _)| *n == number);
            (number, on_hold)
        })
        .collect();
    for (number, _) in held {
        if !numbers.iter().any(|(n, _)| *n == number) {
            numbers.push((number, true));
        }
    }
    numbers
}
