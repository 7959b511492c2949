//! Intake by platform event (`intake.mode = "stream"`): the package's Flow publishes
//! `WhatsApp_Outbound__e {Message_Id__c, Business_Number_Id__c}` when an outbound record is created
//! Queued or set back to Queued (at `Scheduled_At__c` when that is ahead); sfwa listens on
//! the channel over CometD ([`crate::salesforce::cometd`]) and fetches the records the events name,
//! one SOQL `WHERE Id IN (…)` per ≤ 300 events. No REST call is spent while nothing happens.
//!
//! **A shard's channel.** Where several instances share an org, each subscribes to its own custom
//! channel (`intake.channel = "/event/Sfwa_Shard_A__chn"`) whose member filters
//! `WhatsApp_Outbound__e` on `Business_Number_Id__c`, so Salesforce delivers each shard only its
//! numbers' events and each delivery spends the org's daily allocation once
//! (`salesforce/shards/README.md`). The fetch by Id still selects only served numbers
//! ([`intake::by_id_query`]), so a filter that admits too much never makes two shards send one
//! record. A channel that does not exist is [`CometdError::NoSuchChannel`], which says how to
//! create it; the loop keeps retrying with back-off (an admin may create it meanwhile).
//!
//! **Durable replay.** The replay id of the last event handled is stored in the `cursors` table,
//! keyed by channel (`replay:/event/…`, so moving to a shard channel starts that channel from
//! `intake.initial_replay`), in the same transaction as the journal claims of the records those
//! events named. A crash before
//! that commit replays the events (their records are then claimed once, by the journal); a crash
//! after it resumes after them. Events are never skipped, and a record is never sent twice.
//!
//! **Recovery.** `403::Unknown client` → handshake again and resubscribe from the stored replay id;
//! `401` → a new token, then handshake; a stale replay id (older than Salesforce's 72 h retention)
//! → resubscribe from `-2` (everything retained) and run the reconcile poll at once for whatever
//! fell out of retention; network trouble → back off (1 s doubling to 60 s) and resume.
//!
//! **Batching.** The first event after a quiet spell is fetched at once. In a burst, after handling
//! a batch the loop waits `intake.batch_window` (default 2 s) before the next connect, which
//! then returns every event that arrived meanwhile: one SOQL per ≤ 300 events instead of one per
//! connect, for at most that much added latency. For latency (a trickle of records, each wanted
//! on WhatsApp within tens of milliseconds) set it low, e.g. `5ms`: the window is then the only
//! wait between an event and its fetch.
//!
//! **Sends flow across batches.** A batch's records, once claimed, are handed to their numbers'
//! lanes ([`crate::pipeline::dispatch::lanes`], `worker::hand_over`) and the loop reads the next
//! events while they are in flight; it waits only while a number's queue is full
//! (backpressure). The order of guarantees is unchanged: claimed, with the replay id, before
//! anything is sent. At shutdown the sends in flight finish and the records still waiting for a
//! slot stay claimed, for the orphan scan of the next start.
//!
//! Records whose `Scheduled_At__c` is still ahead are left for the scheduled-sends job; events whose
//! record is no longer Queued (sent by a poll, edited, deleted) are passed over. A record set back to
//! Queued after sfwa finished it is settled by [`intake::settle_requeued`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::domain::message::QueuedRecord;
use crate::domain::sf_id::SfId;
use crate::salesforce::cometd::{CometdClient, CometdError, ReplayFrom, StreamEvent};
use crate::store::cursors;

use super::claim::{self, scheduled_later, Claimed};
use super::dispatch::DispatchOutcome;
use super::report::Reporter;
use super::{intake, jobs, worker, Intake, Pipeline};

/// Event records fetched per step: one composite call of five 200-Id queries
/// ([`intake::query_by_ids`]), so a burst of 1,000 events costs one API call. Each query's Ids
/// stay about 5 KB URL-encoded, within Salesforce's 16 KB for a request line.
const FETCH_BATCH: usize =
    intake::IDS_PER_QUERY * crate::salesforce::composite::MAX_COMPOSITE_BATCHES;
/// The one payload field intake reads: the record the event names. Events keep nothing else
/// (a backlog's 100,000 events are held until handled).
const MESSAGE_ID: &str = "Message_Id__c";
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Pending events' room kept beyond what is pending before it is given back (32 KB).
const SPARE_EVENTS: usize = 1024;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The name of the cursor holding the channel's last handled replay id.
pub fn cursor_name(channel: &str) -> String {
    format!("replay:{channel}")
}

/// The stream intake's state: the CometD client, where to resubscribe from, events received but
/// not yet journaled.
pub struct StreamIntake {
    client: CometdClient,
    channel: String,
    resume: ReplayFrom,
    pending: VecDeque<PendingEvent>,
    backoff: Duration,
    /// Where the connection state is reported (`/readyz`, `sfwa_stream_connected`).
    reporter: Arc<dyn Reporter>,
}

/// What one [`StreamIntake::step`] did.
#[derive(Debug, Default)]
pub struct StreamStep {
    /// Events handled (journaled and their replay id stored).
    pub events: usize,
    /// Records fetched for them that were Queued and due.
    pub fetched: usize,
    pub outcomes: Vec<DispatchOutcome>,
}

impl StreamIntake {
    /// Resumes after the stored replay id, or starts from `intake.initial_replay`.
    pub async fn open(intake: &Intake) -> anyhow::Result<StreamIntake> {
        let settings = &intake.core.settings;
        let channel = settings.intake.channel.clone();
        let name = cursor_name(&channel);
        let stored = intake
            .core
            .store
            .read(move |conn| cursors::get(conn, &name))
            .await?;
        let resume = match stored.as_deref().map(str::parse::<i64>) {
            Some(Ok(id)) => ReplayFrom::After(id),
            _ => match settings.intake.initial_replay {
                crate::config::InitialReplay::All => ReplayFrom::All,
                crate::config::InitialReplay::New => ReplayFrom::New,
            },
        };
        let client = CometdClient::new(intake.salesforce.clone(), channel.clone())
            .context("setting up the streaming client")?
            .keeping_fields(&[MESSAGE_ID]);
        Ok(StreamIntake {
            client,
            channel,
            resume,
            pending: VecDeque::new(),
            backoff: INITIAL_BACKOFF,
            reporter: intake.core.reporter.clone(),
        })
    }

    /// Events received but not yet journaled (a fetch failed; the next step retries them).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Where the next subscription starts.
    pub fn resume_point(&self) -> ReplayFrom {
        self.resume
    }

    /// One step: if events are waiting to be journaled (an earlier fetch failed), those;
    /// otherwise one long poll for new events. Then fetch, claim + store the replay id, dispatch;
    /// returns once every send it started has its outcome (in `outcomes`).
    pub async fn step(&mut self, pipeline: &Pipeline) -> Result<StreamStep, StepError> {
        let never = CancellationToken::new();
        let mut handed = Vec::new();
        let step = self
            .step_handing_over(pipeline, &never, Some(&mut handed))
            .await?;
        let mut step = step.unwrap_or_default();
        step.outcomes = worker::outcomes_of(handed).await;
        Ok(step)
    }

    /// The step [`run_stream`] runs: like [`step`](Self::step), but it returns once the records
    /// are handed to their numbers' lanes, while their sends are in flight (`outcomes` stays
    /// empty), so the next events are read and claimed meanwhile. `None` when `shutdown` came
    /// during the long poll (which is cancelled: nothing is lost, the events come again from the
    /// stored replay id). Handling received events is never cancelled midway.
    ///
    /// The sends it starts are not waited for, nor are their handles kept: a finished task's
    /// handle holds the task's memory (kilobytes each), and one long poll after a pause can bring
    /// a backlog of 100,000 events, handed over one batch at a time for minutes.
    pub async fn step_until(
        &mut self,
        pipeline: &Pipeline,
        shutdown: &CancellationToken,
    ) -> Result<Option<StreamStep>, StepError> {
        self.step_handing_over(pipeline, shutdown, None).await
    }

    /// A step; the handles of the sends it starts go into `handed` when given, else are dropped
    /// (the sends go on).
    async fn step_handing_over(
        &mut self,
        pipeline: &Pipeline,
        shutdown: &CancellationToken,
        handed: Option<&mut Vec<worker::Handed>>,
    ) -> Result<Option<StreamStep>, StepError> {
        if self.pending.is_empty() {
            tokio::select! {
                // A shutdown already asked for wins over events already waiting.
                biased;
                _ = shutdown.cancelled() => return Ok(None),
                received = self.receive() => received.map_err(StepError::Stream)?,
            }
        }
        let step = self
            .handle_pending(pipeline, handed)
            .await
            .map_err(StepError::Intake)?;
        self.backoff = INITIAL_BACKOFF;
        Ok(Some(step))
    }

    /// One long poll (may be cancelled: nothing is lost, the events come again from the stored
    /// replay id). Its events wait in `pending`.
    async fn receive(&mut self) -> Result<(), CometdError> {
        let polled = self.client.poll_as(self.resume, PendingEvent::of).await;
        // Every error has reset the connection; a success leaves it subscribed (unless the server
        // asked for a new handshake).
        self.reporter.stream_connected(self.client.is_connected());
        self.pending = polled?.into();
        give_back_drained(&mut self.pending);
        Ok(())
    }

    /// Fetches and journals the pending events, ≤ 300 at a time, and hands their records to the
    /// lanes (their handles into `handed` when given; a batch's sends do not hold back the next
    /// batch's fetch and claim). Not to be cancelled midway (claims are being handed over), so the
    /// worker only cancels [`receive`](Self::receive).
    async fn handle_pending(
        &mut self,
        pipeline: &Pipeline,
        mut handed: Option<&mut Vec<worker::Handed>>,
    ) -> anyhow::Result<StreamStep> {
        let mut step = StreamStep::default();
        while !self.pending.is_empty() {
            let take = self.pending.len().min(FETCH_BATCH);
            let batch: Vec<PendingEvent> = self.pending.range(..take).copied().collect();
            let records = fetch(&pipeline.intake, &batch).await?;
            tracing::debug!(
                events = take,
                records = records.len(),
                "fetched the records of a batch of events"
            );
            step.fetched += records.len();
            let last = batch.last().map(|e| e.replay_id);
            let claimed = claim_and_advance(&pipeline.intake, records, &self.channel, last).await?;
            self.pending.drain(..take);
            give_back_drained(&mut self.pending);
            step.events += take;
            if let Some(id) = last {
                self.resume = ReplayFrom::After(id);
            }
            let mut fresh = claimed.fresh;
            // The replay id is stored: if this fails, the reconcile poll finds them still Queued.
            match intake::settle_requeued(&pipeline.intake, claimed.requeued).await {
                Ok(rearmed) => fresh.extend(rearmed),
                Err(error) => {
                    warn!(error = %format!("{error:#}"), "re-queued records not settled; the reconcile poll will")
                }
            }
            let work = fresh.into_iter().map(|r| (r, 0)).collect();
            let started = worker::hand_over(&pipeline.dispatcher, work).await;
            if let Some(handed) = handed.as_deref_mut() {
                handed.extend(started);
            }
        }
        Ok(step)
    }

    pub async fn disconnect(&mut self) {
        self.reporter.stream_connected(false);
        self.client.disconnect().await;
    }
}

/// Why a step stopped.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Stream(CometdError),
    /// Fetching or journaling the events' records failed; they are kept and tried again.
    #[error("{0:#}")]
    Intake(anyhow::Error),
}

/// An event received and not yet journaled, as the intake keeps it: its replay id and the
/// record it names, inline. One `/meta/connect` after a pause brings a whole backlog, held until
/// each batch is journaled: 100,000 events are 3.2 MB this way, against 8 MB as
/// [`StreamEvent`]s (a payload buffer and a field table each). Each is made as the answer is read
/// ([`CometdClient::poll_as`]), so the backlog is never held both ways.
#[derive(Clone, Copy, Debug)]
struct PendingEvent {
    replay_id: i64,
    /// `Message_Id__c` as received, unchecked; `None` when absent or too long for an Id.
    message_id: Option<IdText>,
}

/// Up to 18 bytes of text (a Salesforce Id is 15 or 18 characters), held inline.
#[derive(Clone, Copy, Debug)]
struct IdText {
    bytes: [u8; 18],
    len: u8,
}

impl PendingEvent {
    fn of(event: StreamEvent) -> PendingEvent {
        let message_id = event.field(MESSAGE_ID).and_then(|text| {
            let mut bytes = [0; 18];
            bytes
                .get_mut(..text.len())?
                .copy_from_slice(text.as_bytes());
            Some(IdText {
                bytes,
                len: text.len() as u8,
            })
        });
        PendingEvent {
            replay_id: event.replay_id,
            message_id,
        }
    }

    fn message_id(&self) -> Option<&str> {
        let id = self.message_id.as_ref()?;
        // Copied from a `&str` whole, so always UTF-8.
        std::str::from_utf8(&id.bytes[..usize::from(id.len)]).ok()
    }
}

/// The Queued outbound records the events name.
async fn fetch(intake: &Intake, events: &[PendingEvent]) -> anyhow::Result<Vec<QueuedRecord>> {
    let mut ids: Vec<SfId> = Vec::with_capacity(events.len());
    for event in events {
        match event.message_id().map(SfId::parse) {
            Some(Ok(id)) => {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            _ => warn!(
                replay_id = event.replay_id,
                "platform event without a valid Message_Id__c passed over; check the Flow that publishes it"
            ),
        }
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // A burst of events can name more Ids than one query's URL holds: 200 per query, five
    // queries per composite call.
    let records = intake::query_by_ids(intake, &ids, intake::ById::QueuedOutbound)
        .await
        .context("fetching the records named by platform events")?;
    Ok(records)
}

/// Claims the records and stores the replay id in one transaction (see the module docs). Records
/// whose `Scheduled_At__c` is ahead are claimed with a local timer at that time instead: the retry
/// loop fetches them again (by Id, one query) when it comes, at no cost meanwhile.
async fn claim_and_advance(
    intake: &Intake,
    records: Vec<QueuedRecord>,
    channel: &str,
    replay_id: Option<i64>,
) -> anyhow::Result<Claimed> {
    let now = intake.core.now();
    let name = cursor_name(channel);
    let (later, due): (Vec<_>, Vec<_>) = records
        .into_iter()
        .partition(|record| scheduled_later(record, now).is_some());
    let fresh = intake
        .core
        .store
        .write(move |tx| {
            for record in &later {
                if let Some(at) = scheduled_later(record, now) {
                    claim::claim_for_later(tx, &record.id, at, now)?;
                }
            }
            let fresh = claim::claim_in(tx, due, now)?;
            if let Some(id) = replay_id {
                cursors::set(tx, &name, &id.to_string(), now)?;
            }
            Ok(fresh)
        })
        .await
        .context("journaling event records")?;
    Ok(fresh)
}

/// Listens on the channel until shutdown, recovering from every stream error: the loop around
/// [`StreamIntake::step_until`].
pub async fn run_stream(pipeline: Pipeline, shutdown: CancellationToken) {
    // Before the first event: the first record must not pay for loading the phone rules.
    worker::warm_up(&pipeline.core).await;
    let mut intake = match StreamIntake::open(&pipeline.intake).await {
        Ok(intake) => intake,
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "stream intake could not start; records are found by the reconcile poll only");
            return;
        }
    };
    let settings = &pipeline.core.settings;
    info!(channel = %settings.intake.channel, from = ?intake.resume_point(), "listening for platform events");
    loop {
        let wait = match intake.step_until(&pipeline, &shutdown).await {
            Ok(None) => break,
            Ok(Some(step)) => {
                // In a burst, let events gather server-side so the next connect brings them all
                // and one SOQL fetches up to 300 (a quiet stream's first event still goes at once).
                let window = settings.intake.batch_window;
                if step.events == 0 || step.events >= FETCH_BATCH || window.is_zero() {
                    continue;
                }
                Some(window)
            }
            Err(error) => intake.recover(&pipeline, error).await,
        };
        if let Some(wait) = wait {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
    intake.disconnect().await;
    // Sends in flight finish; records still waiting for a slot stay claimed (orphan scan).
    pipeline.dispatcher.lanes.finish().await;
    info!("stream intake stopped");
}

impl StreamIntake {
    /// Reacts to a failed step; returns how long to wait before the next (None: at once).
    /// A stale replay id falls back to everything retained and runs the reconcile poll here.
    pub async fn recover(&mut self, pipeline: &Pipeline, error: StepError) -> Option<Duration> {
        match error {
            StepError::Stream(CometdError::UnknownClient) => {
                info!("streaming client forgotten by Salesforce; handshaking again");
                None
            }
            StepError::Stream(CometdError::AuthInvalid) => {
                info!("streaming session expired; logging in again");
                None
            }
            StepError::Stream(CometdError::StaleReplay { replay_id, .. }) => {
                warn!(replay_id, "the stored replay id is older than Salesforce keeps events; replaying every retained event and reconciling");
                self.resume = ReplayFrom::All;
                match jobs::reconcile(pipeline).await {
                    Ok(summary) => info!("reconcile after a stale replay id: {summary}"),
                    Err(error) => {
                        warn!(error = %format!("{error:#}"), "reconcile after a stale replay id failed; the scheduled reconcile catches up")
                    }
                }
                None
            }
            error => {
                let wait = self.backoff;
                warn!(%error, "stream intake interrupted; resuming in {}s", wait.as_secs());
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                Some(wait)
            }
        }
    }
}

/// Stream mode's local loop: due retries and unknown outcomes every `intake.interval`, handed to
/// the lanes (not waited for: a slow retry never delays the next).
pub async fn run_retries(pipeline: Pipeline, shutdown: CancellationToken) {
    let interval = pipeline.core.settings.intake.interval;
    loop {
        if let Err(error) = worker::retries_handed_over(&pipeline).await {
            warn!(error = %format!("{error:#}"), "retry step failed; trying again next interval");
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
    pipeline.dispatcher.lanes.finish().await;
}

/// Gives back the room of events already handled once it exceeds a quarter of those still
/// pending (and [`SPARE_EVENTS`]). A connect answer can carry a whole backlog — 100,000 events
/// are 3.2 MB, in a 4.2 MB allocation after the answer's doublings — and a deque keeps its
/// allocation as it drains: without this the backlog's whole size is held until the next answer.
/// Each shrink moves what is left, about a fifth less each time, so the copying adds up to a few
/// times the answer once.
fn give_back_drained<T>(pending: &mut VecDeque<T>) {
    if pending.capacity() > pending.len() + pending.len() / 4 + SPARE_EVENTS {
        pending.shrink_to(pending.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(message_id: Option<&str>) -> StreamEvent {
        StreamEvent {
            replay_id: 42,
            fields: message_id.map(|id| (MESSAGE_ID, id)).into_iter().collect(),
        }
    }

    #[test]
    fn a_pending_event_keeps_its_replay_id_and_the_record_id_as_received() {
        for id in ["a0B5g000001AbCd", "a0B5g000001AbCdEAF", "not an id", ""] {
            let pending = PendingEvent::of(event(Some(id)));
            assert_eq!(pending.replay_id, 42);
            assert_eq!(pending.message_id(), Some(id));
        }
    }

    #[test]
    fn a_value_too_long_for_an_id_or_none_at_all_is_kept_as_no_id() {
        assert_eq!(
            PendingEvent::of(event(Some("a0B5g000001AbCdEAFX"))).message_id(),
            None
        );
        assert_eq!(PendingEvent::of(event(None)).message_id(), None);
    }

    #[test]
    fn a_draining_backlog_gives_its_memory_back_as_it_goes() {
        let answer: Vec<PendingEvent> = (0..100_000)
            .map(|n| PendingEvent {
                replay_id: n,
                message_id: None,
            })
            .collect();
        let mut pending: VecDeque<PendingEvent> = answer.into();
        assert!(pending.capacity() >= 100_000);

        give_back_drained(&mut pending);
        let mut handled = Vec::new();
        while !pending.is_empty() {
            let take = pending.len().min(FETCH_BATCH);
            handled.extend(pending.drain(..take).map(|e| e.replay_id));
            give_back_drained(&mut pending);
            let allowed = pending.len() + pending.len() / 4 + SPARE_EVENTS;
            assert!(
                pending.capacity() <= allowed,
                "{} > {allowed}",
                pending.capacity()
            );
        }

        // Every event handled once, in order.
        assert_eq!(handled, (0..100_000).collect::<Vec<i64>>());
    }

    #[test]
    fn a_pending_event_is_small_and_holds_no_allocation() {
        assert!(std::mem::size_of::<PendingEvent>() <= 32);
        assert!(!std::mem::needs_drop::<PendingEvent>());
    }
}
