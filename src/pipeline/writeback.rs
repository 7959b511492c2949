//! The write-back outbox flush: pending record updates go to Salesforce in collections of ≤ 200
//! with `allOrNone=false`, one call per batch. Updates were coalesced on enqueue (only the latest
//! value of each field is written), which is what keeps API use near 0.01 calls per message.
//!
//! Per-record failures are classified: row locks retry later, deleted records are dropped, field
//! errors are an admin's to fix (logged, kept in the dead-letter table). A Salesforce outage only
//! delays the flush: nothing leaves the outbox until Salesforce confirms it (guarantee 2).

use chrono::Duration;
use serde_json::{Map, Value};
use tracing::{error, info, warn};

use crate::salesforce::{Disposition, SalesforceError};
use crate::store::outbox::{self, OutboxItem};

use super::Pipeline;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct FlushOutcome {
    /// Records Salesforce confirmed.
    pub written: usize,
    /// Records to try again later (locks, outage).
    pub retried: usize,
    /// Records given up (deleted, field errors).
    pub dropped: usize,
    /// Collections calls made.
    pub calls: usize,
}

/// Flushes what is due, in batches, until nothing due is left or Salesforce fails.
///
/// At most as many batches as the outbox held when the flush began: a status webhook landing
/// during a batch keeps its item due (newer values), and without the cap a steady stream of them
/// would have the same records written again and again within one flush (guarantee 5).
pub async fn flush_once(pipeline: &Pipeline) -> anyhow::Result<FlushOutcome> {
    let mut total = FlushOutcome::default();
    let pending = pipeline.store.read(outbox::depth).await? as usize;
    let max_batches = pending
        .div_ceil(pipeline.settings.writeback.batch_size.max(1))
        .max(1);
    loop {
        let batch = flush_batch(pipeline).await?;
        let done = batch.calls == 0
            || batch.retried > 0 && batch.written == 0
            || total.calls + batch.calls >= max_batches;
        total.written += batch.written;
        total.retried += batch.retried;
        total.dropped += batch.dropped;
        total.calls += batch.calls;
        if done {
            return Ok(total);
        }
    }
}

/// One collections call's worth (or nothing, when nothing is due).
async fn flush_batch(pipeline: &Pipeline) -> anyhow::Result<FlushOutcome> {
    let now = pipeline.now();
    let limit = pipeline.settings.writeback.batch_size;
    let items: Vec<OutboxItem> = pipeline
        .store
        .read(move |conn| outbox::due(conn, now, limit))
        .await?;
    if items.is_empty() {
        return Ok(FlushOutcome::default());
    }
    let object = pipeline.settings.salesforce.message_object.clone();
    let records: Vec<(String, Map<String, Value>)> = items
        .iter()
        .map(|item| (item.record_id.clone(), item.fields.clone()))
        .collect();
    let mut outcome = FlushOutcome {
        calls: 1,
        ..Default::default()
    };
    let results = match pipeline.salesforce.update(&object, &records).await {
        Ok(results) => results,
        Err(error) => {
            let wait = match error {
                SalesforceError::LimitExceeded => Duration::minutes(15),
                SalesforceError::Auth { .. } => Duration::minutes(1),
                _ => Duration::seconds(10),
            };
            warn!(%error, pending = items.len(), "write-back to Salesforce failed; will retry in {}s", wait.num_seconds());
            let retry_at = now + wait;
            let reason = error.to_string();
            outcome.retried = items.len();
            pipeline
                .store
                .write(move |tx| {
                    for item in &items {
                        outbox::retry_later(tx, &item.key(), item.version, retry_at, &reason, now)?;
                    }
                    Ok(())
                })
                .await?;
            return Ok(outcome);
        }
    };
    let mut decisions = Vec::with_capacity(items.len());
    for (item, result) in items.into_iter().zip(results) {
        if result.success {
            outcome.written += 1;
            decisions.push((item, Decision::Ack));
            continue;
        }
        let disposition = result
            .errors
            .iter()
            .map(|e| e.disposition())
            .max_by_key(|d| match d {
                Disposition::Surface => 2,
                Disposition::Drop => 1,
                Disposition::Retry => 0,
            })
            .unwrap_or(Disposition::Retry);
        let reason = result
            .errors
            .iter()
            .map(|e| format!("{}: {} {:?}", e.status_code, e.message, e.fields))
            .collect::<Vec<_>>()
            .join("; ");
        match disposition {
            Disposition::Retry => {
                outcome.retried += 1;
                decisions.push((item, Decision::Retry(reason)));
            }
            Disposition::Drop => {
                info!(record_id = %item.record_id, "record gone from Salesforce, write-back dropped: {reason}");
                outcome.dropped += 1;
                decisions.push((item, Decision::Drop(reason)));
            }
            Disposition::Surface => {
                error!(record_id = %item.record_id, "Salesforce refused the write-back; an admin must fix the field or the package: {reason}");
                outcome.dropped += 1;
                decisions.push((item, Decision::Drop(reason)));
            }
        }
    }
    let retry_at = now + Duration::seconds(5);
    pipeline
        .store
        .write(move |tx| {
            for (item, decision) in &decisions {
                let key = item.key();
                match decision {
                    Decision::Ack => outbox::ack(tx, &key, item.version)?,
                    Decision::Retry(reason) => {
                        outbox::retry_later(tx, &key, item.version, retry_at, reason, now)?
                    }
                    Decision::Drop(reason) => outbox::drop_item(tx, &key, reason, now)?,
                };
            }
            Ok(())
        })
        .await?;
    Ok(outcome)
}

enum Decision {
    Ack,
    Retry(String),
    Drop(String),
}
