//! The scheduled jobs (run by [`crate::scheduler`] on the `[schedule]` cron expressions) and the
//! one-shot pass of `sfwa sync`. Each job is an ordinary async function returning what it did.
//!
//! - [`reconcile`] — stream mode's safety net: a poll for any Queued record whose event the stream
//!   missed (events retained for 72 h only, a channel misconfigured for a while, a Flow turned off).
//! - [`scheduled_sends`] — Queued records whose `Scheduled_At__c` has come.
//! - [`inbound_mirror`] — inbound records other tools created in Salesforce, folded into the window
//!   mirror so the window is right even when another system receives some webhooks (its own
//!   module, [`super::inbound_mirror`]: it reads what was saved since its last run).
//! - [`retention`] — deletes finished journal rows and old webhook dedupe keys.
//! - [`sync_once`] — `sfwa sync`: poll, send, flush, summarise ([`sync_once_with`] reports its
//!   progress as it goes).
//!
//! Every query selects only the served business numbers' records
//! ([`intake::ServedNumbers`]): another instance serves the others.
//!
//! The journal's claim → sending step admits one sender per record, so these may overlap the
//! stream, each other, or a `sfwa sync` in another process without a double send.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use crate::progress::{Progress, Silent};
use crate::store::{dedupe, journal, media, outbox, webhook_rejects, Store, StoreError};

use super::dispatch::DispatchOutcome;
pub use super::inbound_mirror::{inbound_mirror, MirrorSummary, MIRROR_LOOKBACK};
use super::{intake, worker, writeback, Core, Pipeline, WriteBack};

/// Poll rounds one job run may make while draining a backlog (× `intake.batch_size` records).
const MAX_DRAIN_ROUNDS: usize = 50;

/// What a poll-and-send pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SendSummary {
    /// Queued records Salesforce returned (a record may be counted once per round).
    pub fetched: usize,
    pub sent: usize,
    /// Failed before sending (bad record, closed window) or refused by WhatsApp for good.
    pub failed: usize,
    /// To be tried again later (WhatsApp busy or unreachable) or on hold.
    pub waiting: usize,
    /// Sent, but WhatsApp's answer was lost: its status echo decides.
    pub unknown: usize,
    /// Already being sent by another worker or process.
    pub skipped: usize,
    /// Records written back between pages while draining (`sfwa sync` flushes itself).
    pub written: usize,
    /// WhatsApp could not be reached or refused every send (token, account): operators must look.
    pub whatsapp_trouble: bool,
}

impl SendSummary {
    fn count(&mut self, outcomes: &[DispatchOutcome]) {
        for outcome in outcomes {
            match outcome {
                DispatchOutcome::Sent { .. } => self.sent += 1,
                DispatchOutcome::Refused { .. } | DispatchOutcome::Failed { .. } => {
                    self.failed += 1
                }
                DispatchOutcome::RetryScheduled { code, .. } => {
                    self.waiting += 1;
                    self.whatsapp_trouble |= code == "WA_UNREACHABLE";
                }
                // Meta asked for less speed: the records wait, nothing is wrong with WhatsApp.
                DispatchOutcome::RateLimited { .. } | DispatchOutcome::WaitingForReply { .. } => {
                    self.waiting += 1
                }
                DispatchOutcome::Held => {
                    self.waiting += 1;
                    self.whatsapp_trouble = true;
                }
                DispatchOutcome::OutcomeUnknown => {
                    self.unknown += 1;
                    self.whatsapp_trouble = true;
                }
                DispatchOutcome::AlreadySending => self.skipped += 1,
            }
        }
    }
}

impl fmt::Display for SendSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} queued found, {} sent, {} failed, {} waiting to retry, {} awaiting WhatsApp's confirmation, {} already in progress elsewhere",
            self.fetched, self.sent, self.failed, self.waiting, self.unknown, self.skipped
        )
    }
}

/// Polls with `query` (given `now` and the batch size), sends what is fresh, and while pages come
/// back full, flushes the write-back (so the sent records leave the Queued set) and polls again.
async fn drain(
    pipeline: &Pipeline,
    query: impl Fn(chrono::DateTime<Utc>, usize) -> String,
    progress: &dyn Progress,
) -> anyhow::Result<SendSummary> {
    let batch = pipeline.core.settings.intake.batch_size;
    let mut summary = SendSummary::default();
    for _ in 0..MAX_DRAIN_ROUNDS {
        progress.phase("polling");
        let polled =
            intake::poll_with(&pipeline.intake, &query(pipeline.core.now(), batch)).await?;
        summary.fetched += polled.fetched;
        progress.fetched(polled.fetched);
        progress.phase("sending");
        let work = polled.fresh.into_iter().map(|r| (r, 0)).collect();
        let outcomes = worker::dispatch_all(&pipeline.dispatcher, work).await;
        progress.dispatched(outcomes.len());
        summary.count(&outcomes);
        if polled.fetched < batch {
            break;
        }
        progress.phase("writing back");
        match flush_before_next_page(&pipeline.write_back, progress).await {
            Some(written) => summary.written += written,
            None => break,
        }
    }
    Ok(summary)
}

/// Gets the sent records out of the Queued set (see [`writeback::request_flush`]) and counts
/// what was written here for `progress`.
async fn flush_before_next_page(write_back: &WriteBack, progress: &dyn Progress) -> Option<usize> {
    let written = writeback::request_flush(write_back, Duration::from_secs(30)).await?;
    progress.written(written);
    Some(written)
}

/// A poll for every due Queued record, whatever the stream delivered.
pub async fn reconcile(pipeline: &Pipeline) -> anyhow::Result<SendSummary> {
    reconcile_with(pipeline, &Silent).await
}

async fn reconcile_with(
    pipeline: &Pipeline,
    progress: &dyn Progress,
) -> anyhow::Result<SendSummary> {
    let object = pipeline.core.message_object().to_string();
    let served = intake::ServedNumbers::of(&pipeline.core.settings);
    drain(
        pipeline,
        |now, limit| intake::queued_query(&object, &served, now, limit),
        progress,
    )
    .await
}

/// Queued records whose `Scheduled_At__c` has come.
pub async fn scheduled_sends(pipeline: &Pipeline) -> anyhow::Result<SendSummary> {
    let object = pipeline.core.message_object().to_string();
    let served = intake::ServedNumbers::of(&pipeline.core.settings);
    drain(
        pipeline,
        |now, limit| intake::scheduled_query(&object, &served, now, limit),
        &Silent,
    )
    .await
}

/// What [`retention`] deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RetentionSummary {
    pub journal_rows: usize,
    pub webhook_keys: usize,
    /// Refused webhook events (`store::webhook_rejects`) not seen again for as long.
    pub webhook_rejects: usize,
    /// Customers' files finished (saved, refused or given up) longer ago than the journal keeps.
    pub media_rows: usize,
}

impl fmt::Display for RetentionSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "deleted {} finished journal rows, {} webhook dedupe keys, {} refused webhook events and {} finished media files",
            self.journal_rows, self.webhook_keys, self.webhook_rejects, self.media_rows
        )
    }
}

/// Rows one retention write deletes. A day of history deleted in one write held the store's
/// writer for as long as it took — on the bench's store of 1 M journal rows a day's 33,000 rows
/// and 100,000 dedupe keys took 0.75 s, and at 1,000 messages/s a day is 2,600 times that — while
/// every webhook's answer and every send's journal step waits for that writer; 500 rows take a
/// few milliseconds (docs/performance.md, fifteenth measurement).
pub const RETENTION_ROWS_PER_WRITE: usize = 500;

/// A store function deleting at most the given number of rows older than the cutoff.
type DeleteBefore = fn(&Connection, DateTime<Utc>, usize) -> Result<usize, StoreError>;

/// Deletes journal rows of finished messages, webhook dedupe keys and refused webhook events older
/// than `[retention]` (the refused events go with the dedupe keys: past Meta's redelivery), in
/// writes of [`RETENTION_ROWS_PER_WRITE`] rows, so the sends and webhooks' writes go on between
/// them.
pub async fn retention(core: &Core) -> anyhow::Result<RetentionSummary> {
    let now = core.now();
    let keep = &core.settings.retention;
    let journal_cutoff = now - chrono::Duration::from_std(keep.journal)?;
    let webhook_cutoff = now - chrono::Duration::from_std(keep.webhook_dedupe)?;
    let store = &core.store;
    Ok(RetentionSummary {
        journal_rows: delete_in_writes(store, journal::delete_finished_before, journal_cutoff)
            .await?,
        webhook_keys: delete_in_writes(store, dedupe::delete_seen_before, webhook_cutoff).await?,
        webhook_rejects: delete_in_writes(
            store,
            webhook_rejects::delete_seen_before,
            webhook_cutoff,
        )
        .await?,
        media_rows: delete_in_writes(store, media::delete_finished_before, journal_cutoff).await?,
    })
}

/// Runs `delete` in one write after another until a write deletes fewer rows than it may; the
/// rows deleted in all.
async fn delete_in_writes(
    store: &Store,
    delete: DeleteBefore,
    cutoff: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let mut deleted = 0;
    loop {
        let these = store
            .write(move |tx| delete(tx, cutoff, RETENTION_ROWS_PER_WRITE))
            .await?;
        deleted += these;
        if these < RETENTION_ROWS_PER_WRITE {
            return Ok(deleted);
        }
    }
}

/// What `sfwa sync` did.
#[derive(Debug, Default)]
pub struct SyncSummary {
    pub sends: SendSummary,
    /// Sends stuck without an echo that were resolved (re-sent or given up).
    pub resolved_unknown: usize,
    pub written: usize,
    /// Write-backs still pending in the outbox after the pass (Salesforce busy or down).
    pub pending_writebacks: u64,
    /// Why Salesforce could not be reached, if it could not.
    pub salesforce_error: Option<String>,
}

impl SyncSummary {
    /// Whether both services could be reached: the exit status of `sfwa sync`.
    pub fn healthy(&self) -> bool {
        self.salesforce_error.is_none() && !self.sends.whatsapp_trouble
    }
}

impl fmt::Display for SyncSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "sends: {}", self.sends)?;
        if self.resolved_unknown > 0 {
            writeln!(
                f,
                "unconfirmed sends resolved after the grace period: {}",
                self.resolved_unknown
            )?;
        }
        writeln!(
            f,
            "write-back: {} records updated in Salesforce, {} still pending",
            self.written, self.pending_writebacks
        )?;
        if let Some(error) = &self.salesforce_error {
            writeln!(f, "Salesforce could not be reached: {error}")?;
        }
        if self.sends.whatsapp_trouble {
            writeln!(f, "WhatsApp could not be reached or refused every send; messages wait and are retried on the next pass (see the log)")?;
        }
        Ok(())
    }
}

/// One pass for external schedulers: due retries, a poll of everything Queued (draining a backlog),
/// the sends, then write-back flushes until the outbox is empty or Salesforce stops taking them.
pub async fn sync_once(pipeline: &Pipeline) -> SyncSummary {
    sync_once_with(pipeline, &Silent).await
}

/// [`sync_once`], telling `progress` what it fetched, sent and wrote back as it goes.
pub async fn sync_once_with(pipeline: &Pipeline, progress: &dyn Progress) -> SyncSummary {
    let mut summary = SyncSummary::default();
    progress.phase("retrying");
    match worker::retry_step(pipeline).await {
        Ok(step) => {
            summary.resolved_unknown = step.resolved_unknown;
            progress.dispatched(step.outcomes.len());
            summary.sends.count(&step.outcomes);
        }
        Err(error) => summary.salesforce_error = Some(format!("{error:#}")),
    }
    if summary.salesforce_error.is_none() {
        match reconcile_with(pipeline, progress).await {
            Ok(sends) => {
                let retried = std::mem::take(&mut summary.sends);
                summary.sends = sends;
                summary.sends.merge(retried);
                summary.written = summary.sends.written;
            }
            Err(error) => summary.salesforce_error = Some(format!("{error:#}")),
        }
    }
    progress.phase("writing back");
    loop {
        match writeback::flush_once(&pipeline.write_back).await {
            Ok(flush) => {
                summary.written += flush.written;
                progress.written(flush.written);
                if flush.retried > 0 && flush.written == 0 {
                    summary.salesforce_error.get_or_insert_with(|| {
                        format!("Salesforce did not take {} write-backs (see the log); they stay in the store for the next pass", flush.retried)
                    });
                }
                if flush.calls == 0 || flush.written == 0 {
                    break;
                }
            }
            Err(error) => {
                summary.salesforce_error = Some(format!("{error:#}"));
                break;
            }
        }
    }
    summary.pending_writebacks = pipeline.core.store.read(outbox::depth).await.unwrap_or(0);
    summary
}

impl SendSummary {
    fn merge(&mut self, other: SendSummary) {
        self.fetched += other.fetched;
        self.sent += other.sent;
        self.failed += other.failed;
        self.waiting += other.waiting;
        self.unknown += other.unknown;
        self.skipped += other.skipped;
        self.written += other.written;
        self.whatsapp_trouble |= other.whatsapp_trouble;
    }
}
