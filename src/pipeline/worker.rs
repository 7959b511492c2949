//! The loops: each wakes on its interval (or a nudge), runs its one-step function, and stops when
//! the shutdown token is cancelled. Tests call the step functions directly.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::domain::message::MessageRecord;
use crate::domain::sf_id::SfId;
use crate::progress::{Progress, Spinner};
use crate::salesforce::soql_id_list;
use crate::store::{journal, outbox};

use super::dispatch::{self, DispatchOutcome, OUTCOME_UNKNOWN};
use super::{intake, writeback, Pipeline};

/// Sends in flight at once: enough to keep Meta's per-number throughput busy over a real network
/// (~200 ms per call) without flooding it.
const CONCURRENT_SENDS: usize = 16;

/// What one dispatch step did.
#[derive(Debug, Default)]
pub struct DispatchStep {
    pub outcomes: Vec<DispatchOutcome>,
    pub resolved_unknown: usize,
    /// Queued records the poll returned (including ones already claimed).
    pub polled: usize,
}

/// Retries that are due, unknown outcomes past their grace period, then a fresh poll.
pub async fn dispatch_step(pipeline: &Pipeline) -> anyhow::Result<DispatchStep> {
    let (mut work, resolved_unknown) = due_work(pipeline).await?;
    let polled = intake::poll_once(pipeline).await?;
    pipeline.health.poll_succeeded(pipeline.now());
    for record in polled.fresh {
        if !work.iter().any(|(r, _)| r.id == record.id) {
            work.push((record, 0));
        }
    }
    Ok(DispatchStep {
        outcomes: dispatch_all(pipeline, work).await,
        resolved_unknown,
        polled: polled.fetched,
    })
}

/// Stream mode's local step: due retries and unknown outcomes only (new records come as events).
pub async fn retry_step(pipeline: &Pipeline) -> anyhow::Result<DispatchStep> {
    let (work, resolved_unknown) = due_work(pipeline).await?;
    Ok(DispatchStep {
        outcomes: dispatch_all(pipeline, work).await,
        resolved_unknown,
        polled: 0,
    })
}

/// Records whose retry is due (re-read from Salesforce, so a record changed or deleted meanwhile
/// is not sent), after resolving sends stuck without an echo. One query per 200 due retries; none
/// when nothing is due.
async fn due_work(pipeline: &Pipeline) -> anyhow::Result<(Vec<(MessageRecord, u32)>, usize)> {
    let resolved_unknown = give_up_or_resend_unknown(pipeline).await?;
    let now = pipeline.now();
    let due = pipeline
        .store
        .read(move |conn| journal::due_retries(conn, now, 200))
        .await?;
    let mut work: Vec<(MessageRecord, u32)> = Vec::new();
    let ids: Vec<SfId> = due
        .iter()
        .filter_map(|e| SfId::parse(&e.record_id).ok())
        .collect();
    if !ids.is_empty() {
        let soql = format!(
            "SELECT {} FROM {} WHERE Id IN {}",
            MessageRecord::FIELDS.join(", "),
            pipeline.settings.salesforce.message_object,
            soql_id_list(ids.iter())
        );
        let records: Vec<MessageRecord> = pipeline.salesforce.query(&soql).await?;
        let mut postponed = Vec::new();
        for record in records {
            let still_wanted = matches!(record.status.as_deref(), Some("Queued" | "Sending"));
            let attempts = due
                .iter()
                .find(|e| e.record_id == record.id)
                .map_or(0, |e| e.attempts);
            if !still_wanted {
                continue;
            }
            // Scheduled_At__c moved later since the timer was set: wait for the new time.
            match super::stream::scheduled_later(&record, now) {
                Some(at) => postponed.push((record.id, attempts, at)),
                None => work.push((record, attempts)),
            }
        }
        if !postponed.is_empty() {
            pipeline
                .store
                .write(move |tx| {
                    for (id, attempts, at) in &postponed {
                        journal::schedule_retry(tx, id, *attempts, *at, now)?;
                    }
                    Ok(())
                })
                .await?;
        }
    }
    Ok((work, resolved_unknown))
}

/// Dispatches records concurrently (bounded); a record whose dispatch errs stays journaled.
pub async fn dispatch_all(
    pipeline: &Pipeline,
    work: Vec<(MessageRecord, u32)>,
) -> Vec<DispatchOutcome> {
    let results: Vec<anyhow::Result<DispatchOutcome>> = futures_util::stream::iter(work)
        .map(|(record, attempts)| dispatch::dispatch_record(pipeline, record, attempts))
        .buffer_unordered(CONCURRENT_SENDS)
        .collect()
        .await;
    let mut outcomes = Vec::with_capacity(results.len());
    for result in results {
        match result {
            Ok(outcome) => {
                pipeline.metrics.dispatched(&outcome);
                outcomes.push(outcome);
            }
            Err(error) => {
                error!(error = %format!("{error:#}"), "dispatch failed; the record stays journaled and is retried")
            }
        }
    }
    outcomes
}

/// Sends still `Sending` after the grace period got no status echo: Meta most likely never took
/// them. Try again (counted as an attempt), or give up as SEND_OUTCOME_UNKNOWN.
async fn give_up_or_resend_unknown(pipeline: &Pipeline) -> anyhow::Result<usize> {
    let now = pipeline.now();
    let grace = chrono::Duration::from_std(pipeline.settings.dispatch.unknown_outcome_grace)
        .unwrap_or(chrono::Duration::minutes(10));
    let stuck = pipeline
        .store
        .read(move |conn| journal::stuck_sending(conn, now - grace))
        .await?;
    let max_attempts = pipeline.settings.dispatch.max_attempts;
    for entry in &stuck {
        if entry.attempts + 1 >= max_attempts {
            dispatch::finish_failed(
                pipeline,
                &entry.record_id,
                OUTCOME_UNKNOWN,
                "WhatsApp did not confirm this message and sfwa could not find out whether it was sent. Check with the customer before sending it again.",
                now,
                None,
            )
            .await?;
            pipeline.metrics.failed_without_dispatch(OUTCOME_UNKNOWN);
        } else {
            warn!(record_id = %entry.record_id, "no status echo within the grace period; sending again");
            let (id, attempts) = (entry.record_id.clone(), entry.attempts + 1);
            pipeline
                .store
                .write(move |tx| journal::schedule_retry(tx, &id, attempts, now, now))
                .await?;
        }
    }
    Ok(stuck.len())
}

/// Polls and dispatches every `intake.interval` until shutdown. The step in progress finishes
/// (its sends are journaled either way) before the loop returns.
///
/// A full page means a backlog: records stay Queued in Salesforce until their write-back lands, so
/// the next poll would return the same page. The loop asks for a flush, waits for it, and polls
/// again at once — draining at one poll and one collections call per `intake.batch_size` records.
///
/// While a backlog drains, a [`Spinner`] counts it for a person at the terminal (hidden otherwise).
pub async fn run_dispatch(pipeline: Pipeline, shutdown: CancellationToken) {
    let interval = pipeline.settings.intake.interval;
    let mut backlog: Option<Spinner> = None;
    loop {
        let (polled, handled) = match dispatch_step(&pipeline).await {
            Ok(step) => (step.polled, step.outcomes.len()),
            Err(error) => {
                warn!(error = %format!("{error:#}"), "dispatch step failed; trying again next interval");
                (0, 0)
            }
        };
        if polled >= pipeline.settings.intake.batch_size {
            let spinner = backlog.get_or_insert_with(|| Spinner::start("backlog"));
            spinner.fetched(polled);
            spinner.dispatched(handled);
            spinner.phase("writing back");
            tokio::select! {
                _ = shutdown.cancelled() => break,
                // A flush that cannot finish (Salesforce down) falls back to the normal pace.
                flushed = pipeline.request_flush(interval) => if flushed.is_some() { continue },
            }
        }
        // Drained (or a flush failed): the spinner leaves the screen.
        backlog = None;
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
    info!("intake stopped");
}

/// Pending records (in batches) that trigger a flush before `writeback.flush_interval` is up. Not
/// one batch: waiting for the interval lets a record's Sent, Delivered and Read merge into fewer
/// writes (guarantee 5); this only bounds the outbox during very high rates.
const EARLY_FLUSH_BATCHES: u64 = 5;

/// Flushes the outbox every `writeback.flush_interval`, or early once five full batches are pending.
pub async fn run_writeback(pipeline: Pipeline, shutdown: CancellationToken) {
    pipeline.writeback_running.store(true, Ordering::Release);
    let interval = pipeline.settings.writeback.flush_interval;
    let batch = pipeline.settings.writeback.batch_size as u64;
    let mut next = tokio::time::Instant::now() + interval;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep_until(next) => {}
            _ = pipeline.flush_requested.notified() => {}
            _ = pipeline.outbox_ready.notified() => {
                let depth = pipeline.store.read(outbox::depth).await.unwrap_or(0);
                if depth < batch * EARLY_FLUSH_BATCHES {
                    continue;
                }
            }
        }
        if let Err(error) = writeback::flush_once(&pipeline).await {
            warn!(error = %format!("{error:#}"), "write-back flush failed; trying again next interval");
        }
        pipeline.flushes.send_modify(|n| *n += 1);
        next = tokio::time::Instant::now() + interval;
    }
    pipeline.writeback_running.store(false, Ordering::Release);
}

/// Final flush at shutdown, bounded so a Salesforce outage cannot hold the process forever (what
/// is not written stays in the outbox for the next start).
pub async fn final_flush(pipeline: &Pipeline) {
    match tokio::time::timeout(Duration::from_secs(20), writeback::flush_once(pipeline)).await {
        Ok(Ok(outcome)) => info!(
            written = outcome.written,
            retried = outcome.retried,
            "outbox flushed"
        ),
        Ok(Err(error)) => {
            warn!(%error, "final flush failed; pending write-backs stay in the store")
        }
        Err(_) => warn!("final flush timed out; pending write-backs stay in the store"),
    }
}
