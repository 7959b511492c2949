//! The loops: each wakes on its interval (or a nudge), runs its one-step function, and stops when
//! the shutdown token is cancelled. Tests call the step functions directly.
//!
//! The loops hand claimed records to their numbers' lanes ([`hand_over`], sized and bounded by
//! [`dispatch::lanes`]) and read on while the sends are in flight; the one-step functions
//! ([`dispatch_step`], [`retry_step`], [`dispatch_all`]) wait for every outcome they started, so
//! a test (or `sfwa sync`) sees what its step did. A loop that stops finishes the lanes: the
//! sends in flight end, the records still waiting for a slot stay claimed in the journal.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::domain::message::QueuedRecord;
use crate::domain::sf_id::SfId;
use crate::progress::{Progress, Spinner};
use crate::store::{journal, outbox};

use super::claim::scheduled_later;
use super::context::InFlightGuard;
use super::dispatch::lanes::{self, Lanes};
use super::dispatch::{self, DispatchOutcome, OUTCOME_UNKNOWN};
use super::flush::Wake;
use super::pacing::Pacer;
use super::report::Dispatched;
use super::{intake, writeback, Dispatcher, Intake, Pipeline, WriteBack};

/// Runs `send` for each item in its number's lane ([`Lanes`]): returns once every item is
/// admitted, with a handle per item that yields its result (`None`: the lanes were finished
/// before it had a slot). Within a number at most its lane's limit at once, sized from
/// `pacer`'s rate for it; the numbers side by side. Items whose lane has room are admitted
/// first, so one number's full queue does not hold back the others' items of this batch.
pub async fn spawn_in_lanes<T, R, F, Fut>(
    lanes: &Arc<Lanes>,
    pacer: &Arc<Pacer>,
    work: Vec<(String, T)>,
    send: F,
) -> Vec<JoinHandle<Option<R>>>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = R> + Send + 'static,
{
    let mut handles = Vec::with_capacity(work.len());
    let mut waiting = Vec::new();
    for (number, item) in work {
        match lanes.try_admit(&number) {
            Some(admitted) => handles.push(spawn_one(
                lanes,
                pacer,
                number,
                admitted,
                item,
                send.clone(),
            )),
            None => waiting.push((number, item)),
        }
    }
    for (number, item) in waiting {
        // `None`: the lanes are finishing (shutdown); the rest stay claimed in the journal.
        let Some(admitted) = lanes.admit(&number).await else {
            break;
        };
        handles.push(spawn_one(
            lanes,
            pacer,
            number,
            admitted,
            item,
            send.clone(),
        ));
    }
    handles
}

/// One admitted item's task: a slot in its lane (sized for its number's pace now), then `send`.
fn spawn_one<T, R, F, Fut>(
    lanes: &Arc<Lanes>,
    pacer: &Arc<Pacer>,
    number: String,
    admitted: lanes::Admitted,
    item: T,
    send: F,
) -> JoinHandle<Option<R>>
where
    T: Send + 'static,
    R: Send + 'static,
    F: FnOnce(T) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = R> + Send + 'static,
{
    let task = lanes.task();
    let (lanes, pacer) = (lanes.clone(), pacer.clone());
    tokio::spawn(async move {
        let _task = task;
        let slot = lanes.slot(admitted, pacer.rate(&number)).await?;
        // Boxed once the slot is granted: a task waiting for its slot (up to a lane's whole
        // admission, five hundred per number) then holds a few words, not the send's whole state.
        let result = Box::pin(send(item)).await;
        drop(slot);
        Some(result)
    })
}

/// What one dispatch step did.
#[derive(Debug, Default)]
pub struct DispatchStep {
    pub outcomes: Vec<DispatchOutcome>,
    pub resolved_unknown: usize,
    /// Queued records the poll returned (including ones already claimed).
    pub polled: usize,
    /// Records handed to the lanes.
    pub handed: usize,
    /// Where the next page starts when the poll returned a full page (a backlog drains).
    pub next_page: Option<intake::PollCursor>,
}

/// Retries that are due, unknown outcomes past their grace period, then a fresh poll; returns
/// once every send it started has its outcome.
pub async fn dispatch_step(pipeline: &Pipeline) -> anyhow::Result<DispatchStep> {
    let (handed, mut step) = poll_step(pipeline, None).await?;
    step.outcomes = outcomes_of(handed).await;
    Ok(step)
}

/// [`dispatch_step`] from after `page` that returns once its records are handed to the lanes,
/// before their sends finish (the poll loop's step).
pub async fn poll_step(
    pipeline: &Pipeline,
    page: Option<intake::PollCursor>,
) -> anyhow::Result<(Vec<Handed>, DispatchStep)> {
    let (mut work, resolved_unknown) = due_work(&pipeline.intake, &pipeline.dispatcher).await?;
    let polled = intake::poll_after(&pipeline.intake, page.as_ref()).await?;
    pipeline.core.reporter.poll_succeeded(pipeline.core.now());
    for record in polled.fresh {
        if !work.iter().any(|(r, _)| r.id == record.id) {
            work.push((record, 0));
        }
    }
    let full = polled.fetched >= pipeline.core.settings.intake.batch_size;
    let handed = hand_over(&pipeline.dispatcher, work).await;
    let step = DispatchStep {
        resolved_unknown,
        polled: polled.fetched,
        handed: handed.len(),
        next_page: polled.last.filter(|_| full),
        ..DispatchStep::default()
    };
    Ok((handed, step))
}

/// Stream mode's local step: due retries and unknown outcomes only (new records come as events);
/// returns once every send it started has its outcome.
pub async fn retry_step(pipeline: &Pipeline) -> anyhow::Result<DispatchStep> {
    let (handed, mut step) = retries_handed_over(pipeline).await?;
    step.outcomes = outcomes_of(handed).await;
    Ok(step)
}

/// [`retry_step`] that returns once its records are handed to the lanes (the retry loop's).
pub async fn retries_handed_over(
    pipeline: &Pipeline,
) -> anyhow::Result<(Vec<Handed>, DispatchStep)> {
    let (work, resolved_unknown) = due_work(&pipeline.intake, &pipeline.dispatcher).await?;
    let handed = hand_over(&pipeline.dispatcher, work).await;
    let step = DispatchStep {
        resolved_unknown,
        handed: handed.len(),
        ..DispatchStep::default()
    };
    Ok((handed, step))
}

/// Waits for the outcomes of records handed to the lanes.
pub async fn outcomes_of(handed: Vec<Handed>) -> Vec<DispatchOutcome> {
    let mut outcomes = Vec::with_capacity(handed.len());
    for handed in handed {
        outcomes.extend(handed.outcome().await);
    }
    outcomes
}

/// How long a fresh claim may go without a dispatch registering it before the orphan scan takes it:
/// covers the moment between the stream committing its claims and handing them to
/// [`dispatch_all`] (in this process or a `sfwa sync` beside it).
const ORPHAN_AFTER: chrono::Duration = chrono::Duration::seconds(2);

/// Work for the retry step: records whose retry is due, and **orphaned claims** — claimed, never
/// sent, and no dispatch working on them (sfwa was killed between the stream's claim and the send,
/// or a dispatch failed before `Sending`). Without the orphan scan only the reconcile poll would
/// find those, minutes later, and never with the reconcile switched off.
///
/// Each is re-read from Salesforce (a record changed, canceled or deleted meanwhile is not sent),
/// after resolving sends stuck without an echo. One query per 200 records; none when there is no
/// work.
async fn due_work(
    intake: &Intake,
    dispatcher: &Dispatcher,
) -> anyhow::Result<(Vec<(QueuedRecord, u32)>, usize)> {
    let resolved_unknown = give_up_or_resend_unknown(dispatcher).await?;
    let due = due_entries(dispatcher).await?;
    let work = reread_due(intake, due).await?;
    Ok((work, resolved_unknown))
}

/// Journal rows whose retry is due, and orphaned claims no dispatch here works on (≤ 200).
async fn due_entries(dispatcher: &Dispatcher) -> anyhow::Result<Vec<journal::JournalEntry>> {
    let now = dispatcher.now();
    // A claim older than this process is nobody's here; a younger one gets a short grace.
    let orphaned_before = dispatcher.started_at.max(now - ORPHAN_AFTER);
    let (mut due, orphans) = dispatcher
        .core
        .store
        .read(move |conn| {
            Ok((
                journal::due_retries(conn, now, 200)?,
                journal::orphaned_claims(conn, orphaned_before, 200)?,
            ))
        })
        .await?;
    // A record already in a lane here (handed over, not finished) is neither read again nor
    // handed twice.
    let not_here =
        |entry: &journal::JournalEntry| !dispatcher.in_flight.contains(entry.record_id.as_str());
    due.retain(not_here);
    let orphans: Vec<journal::JournalEntry> = orphans.into_iter().filter(not_here).collect();
    if !orphans.is_empty() {
        info!(
            count = orphans.len(),
            "resuming claimed records that were never sent (sfwa stopped or failed between claim and send)"
        );
        due.extend(orphans);
    }
    due.truncate(200);
    Ok(due)
}

/// Reads the due records again from Salesforce (one call): those still Queued or Sending are the
/// work (with their attempts); one whose `Scheduled_At__c` moved later waits for it; the journal
/// lets go of the others.
async fn reread_due(
    intake: &Intake,
    due: Vec<journal::JournalEntry>,
) -> anyhow::Result<Vec<(QueuedRecord, u32)>> {
    let ids: Vec<SfId> = due.iter().map(|e| e.record_id.clone()).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let now = intake.core.now();
    let served = intake::ServedNumbers::of(&intake.core.settings);
    let records = intake::query_by_ids(intake, &ids, intake::ById::Served(&served)).await?;
    let mut work: Vec<(QueuedRecord, u32)> = Vec::new();
    let mut postponed = Vec::new();
    // Claims whose record is no longer waiting in Salesforce (canceled, edited, deleted): the
    // journal lets go of them, or they would be fetched again at every step.
    let mut withdrawn: Vec<SfId> = due
        .iter()
        .filter(|e| !records.iter().any(|r| r.id == e.record_id))
        .map(|e| e.record_id.clone())
        .collect();
    for record in records {
        // Waiting for Reply: woken by the customer's answer, or due to expire (`reengage`).
        let still_wanted = matches!(
            record.status.as_deref(),
            Some("Queued" | "Sending" | "Waiting for Reply")
        );
        let attempts = due
            .iter()
            .find(|e| e.record_id == record.id)
            .map_or(0, |e| e.attempts);
        if !still_wanted {
            withdrawn.push(record.id);
            continue;
        }
        // Scheduled_At__c moved later since the timer was set: wait for the new time.
        match scheduled_later(&record, now) {
            Some(at) => postponed.push((record.id, attempts, at)),
            None => work.push((record, attempts)),
        }
    }
    postpone_and_withdraw(&intake.core, postponed, withdrawn).await?;
    one_woken_message_per_customer(&mut work, &due);
    Ok(work)
}

/// Messages that waited for a customer's reply go in the order they were created
/// (`reengage::on_reply` makes them due one pair-rate pace apart). A step that finds several of
/// one customer's due at once (the steps are further apart than the pace) hands over only the
/// first, by when it became due: sends in one step run concurrently and could overtake each
/// other. The others stay due for the next step.
fn one_woken_message_per_customer(
    work: &mut Vec<(QueuedRecord, u32)>,
    due: &[journal::JournalEntry],
) {
    let due_at = |record: &QueuedRecord| {
        due.iter()
            .position(|entry| entry.record_id == record.id)
            .unwrap_or(usize::MAX)
    };
    work.sort_by_key(|(record, _)| due_at(record));
    let mut customers = std::collections::HashSet::new();
    work.retain(|(record, _)| {
        if record.status.as_deref() != Some("Waiting for Reply") {
            return true;
        }
        let to = record
            .to_phone
            .clone()
            .or_else(|| record.to_user_id.clone());
        customers.insert((record.business_number_id.clone(), to))
    });
}

/// Sets the new timers of postponed claims and lets go of withdrawn ones, in one transaction.
async fn postpone_and_withdraw(
    core: &super::Core,
    postponed: Vec<(SfId, u32, chrono::DateTime<chrono::Utc>)>,
    withdrawn: Vec<SfId>,
) -> anyhow::Result<()> {
    if postponed.is_empty() && withdrawn.is_empty() {
        return Ok(());
    }
    if !withdrawn.is_empty() {
        info!(count = withdrawn.len(), "claimed records no longer Queued in Salesforce (canceled, changed or deleted); not sent");
    }
    let now = core.now();
    core.store
        .write(move |tx| {
            for (id, attempts, at) in &postponed {
                journal::schedule_retry(tx, id, *attempts, *at, now)?;
            }
            for id in &withdrawn {
                // What the record shows now (Canceled by a rep, edited, deleted) is the
                // truth: a pending write-back (Sending, a rate-limit wait) would
                // overwrite it, so it goes too.
                if journal::withdraw(tx, id, now)? {
                    outbox::discard(tx, id.as_str())?;
                }
            }
            Ok(())
        })
        .await?;
    Ok(())
}

/// Dispatches records concurrently in their numbers' lanes and waits for every outcome; a record
/// whose dispatch errs stays journaled (and is picked up again by the orphan scan of
/// [`retry_step`]). The one-step functions (and `sfwa sync`) use it; the loops use [`hand_over`].
pub async fn dispatch_all(
    dispatcher: &Dispatcher,
    work: Vec<(QueuedRecord, u32)>,
) -> Vec<DispatchOutcome> {
    outcomes_of(hand_over(dispatcher, work).await).await
}

/// A record handed to its lane: its outcome, for whoever waits for it.
#[derive(Debug)]
pub struct Handed(JoinHandle<Option<Option<DispatchOutcome>>>);

impl Handed {
    /// The dispatch's outcome once it is journaled; `None` when it failed (logged; the record
    /// stays journaled) or never had a slot (the lanes were finished for shutdown).
    pub async fn outcome(self) -> Option<DispatchOutcome> {
        match self.0.await {
            Ok(outcome) => outcome.flatten(),
            Err(error) => {
                error!(%error, "dispatch task ended abnormally; the record stays journaled and is retried");
                None
            }
        }
    }
}

/// Hands records to their numbers' lanes ([`spawn_in_lanes`]) and returns once each is admitted,
/// before the sends finish: the intake reads on while they are in flight (waiting here only while
/// a number's queue is full). Each record is registered in [`Dispatcher::in_flight`] from here
/// until its dispatch ends; one already registered (another dispatch in this process has it) is
/// skipped. Outcomes are reported as they come; the handles yield them for whoever waits.
pub async fn hand_over(dispatcher: &Dispatcher, work: Vec<(QueuedRecord, u32)>) -> Vec<Handed> {
    let work: Vec<_> = work
        .into_iter()
        .filter_map(|(record, attempts)| {
            let guard = dispatcher.in_flight.enter(record.id.as_str())?;
            Some((
                sending_number(dispatcher, &record),
                (record, attempts, guard),
            ))
        })
        .collect();
    let sender = dispatcher.clone();
    let send = move |(record, attempts, guard): (QueuedRecord, u32, InFlightGuard)| {
        let dispatcher = sender.clone();
        async move {
            let result = dispatch::dispatch_record(&dispatcher, record, attempts).await;
            drop(guard);
            reported(&dispatcher, result)
        }
    };
    let handles = spawn_in_lanes(&dispatcher.lanes, &dispatcher.pacer, work, send).await;
    handles.into_iter().map(Handed).collect()
}

/// Loads the phone number rules ([`crate::domain::phone::load_rules`]) on a blocking thread,
/// before the intake reads its first record, so the first sends do not load them on the runtime's
/// threads (the trickle scenario's p99 was its first ten records).
pub async fn warm_up(core: &super::Core) {
    let region = core.default_region;
    let started = std::time::Instant::now();
    let loaded =
        tokio::task::spawn_blocking(move || crate::domain::phone::load_rules(region)).await;
    if loaded.is_ok() {
        tracing::debug!(
            took_ms = started.elapsed().as_millis() as u64,
            "phone number rules loaded"
        );
    }
}

/// Counts a dispatch's outcome in the metrics, or logs why it failed.
fn reported(
    dispatcher: &Dispatcher,
    result: anyhow::Result<DispatchOutcome>,
) -> Option<DispatchOutcome> {
    match result {
        Ok(outcome) => {
            if let Some(counted) = counted_as(&outcome) {
                dispatcher.core.reporter.dispatched(counted);
            }
            Some(outcome)
        }
        Err(error) => {
            error!(error = %format!("{error:#}"), "dispatch failed; the record stays journaled and is retried");
            None
        }
    }
}

/// The business number a record goes from, for its send slot: its `Business_Number_Id__c`, or
/// the default number when blank (as [`Dispatcher::business_number`] decides for the send; a
/// malformed one is refused by the dispatch without a call, in whichever lane).
fn sending_number(dispatcher: &Dispatcher, record: &QueuedRecord) -> String {
    let requested = record
        .business_number_id
        .as_deref()
        .map(str::trim)
        .filter(|number| !number.is_empty());
    dispatcher.business_number(requested).to_string()
}

/// An outcome in the metrics' terms; `None` for one another worker owns (not counted).
fn counted_as(outcome: &DispatchOutcome) -> Option<Dispatched<'_>> {
    Some(match outcome {
        DispatchOutcome::Sent { .. } => Dispatched::Sent,
        DispatchOutcome::Refused { code } => Dispatched::Refused(code),
        DispatchOutcome::Failed { code } => Dispatched::Failed(code),
        DispatchOutcome::RetryScheduled { code, .. } => Dispatched::Retry(code),
        DispatchOutcome::RateLimited { code, .. } => Dispatched::RateLimited(code),
        DispatchOutcome::Held => Dispatched::Held,
        DispatchOutcome::OutcomeUnknown => Dispatched::Unknown,
        DispatchOutcome::AlreadySending | DispatchOutcome::WaitingForReply { .. } => return None,
    })
}

/// Sends still `Sending` after the grace period got no status echo: Meta most likely never took
/// them. Try again (counted as an attempt), or give up as SEND_OUTCOME_UNKNOWN.
async fn give_up_or_resend_unknown(dispatcher: &Dispatcher) -> anyhow::Result<usize> {
    let now = dispatcher.now();
    let grace = chrono::Duration::from_std(dispatcher.core.settings.dispatch.unknown_outcome_grace)
        .unwrap_or(chrono::Duration::minutes(10));
    let stuck: Vec<_> = dispatcher
        .core
        .store
        .read(move |conn| journal::stuck_sending(conn, now - grace))
        .await?
        .into_iter()
        .filter(|entry| resend_due(entry, grace, now))
        .collect();
    let max_attempts = dispatcher.core.settings.dispatch.max_attempts;
    for entry in &stuck {
        if entry.attempts + 1 >= max_attempts {
            dispatch::finish_failed(
                dispatcher,
                &entry.record_id,
                OUTCOME_UNKNOWN,
                "WhatsApp did not confirm this message and sfwa could not find out whether it was sent. Check with the customer before sending it again.",
                now,
                None,
            )
            .await?;
            dispatcher
                .core
                .reporter
                .failed_without_dispatch(OUTCOME_UNKNOWN);
        } else {
            warn!(record_id = %entry.record_id, "no status echo within the grace period; sending again");
            let (id, attempts) = (entry.record_id.clone(), entry.attempts + 1);
            dispatcher
                .core
                .store
                .write(move |tx| journal::schedule_retry(tx, &id, attempts, now, now))
                .await?;
        }
    }
    Ok(stuck.len())
}

/// Whether a send still `Sending` has waited out its grace. Each record waits the grace plus a
/// spread of up to a quarter of it, fixed per record (a hash of its Id): sends whose answers were
/// lost together (a network stall, a kill mid-request) are sent again spread out, not all at once
/// exactly one grace later — where a periodic disturbance would meet them again (the faults soak
/// met its own 30 s latency spikes twice that way) and where Meta would see them as one burst.
fn resend_due(entry: &journal::JournalEntry, grace: chrono::Duration, now: DateTime<Utc>) -> bool {
    use std::hash::{Hash, Hasher};
    let Some(since) = entry.sending_since else {
        return true;
    };
    let mut hasher = std::hash::DefaultHasher::new();
    entry.record_id.as_str().hash(&mut hasher);
    let spread = grace * i32::try_from(hasher.finish() % 1_000).unwrap_or(0) / 4_000;
    now >= since + grace + spread
}

/// Polls and hands records to the lanes every `intake.interval` until shutdown; at shutdown the
/// sends in flight finish (the records still waiting for a slot stay claimed) before it returns.
///
/// A full page means a backlog: the next page is read at once, from after this one's last record
/// ([`intake::PollCursor`], keyset paging), while this page's sends are in flight — neither the
/// sends nor their write-back are waited for (the lanes' bounded queues are the backpressure).
/// Reading on from the cursor matters because records stay Queued in Salesforce until their
/// write-back lands: from the start, the poll would return the same page again. A short page ends
/// the drain and the cursor resets, so the next poll reads from the start again and finds any
/// record set back to Queued meanwhile. (A full page whose last record has no `CreatedDate`
/// falls back to waiting for a flush and polling from the start.)
///
/// While a backlog drains, a [`Spinner`] counts it for a person at the terminal (hidden otherwise).
pub async fn run_dispatch(pipeline: Pipeline, shutdown: CancellationToken) {
    warm_up(&pipeline.core).await;
    let interval = pipeline.core.settings.intake.interval;
    let mut backlog: Option<Spinner> = None;
    let mut page = None;
    while !shutdown.is_cancelled() {
        let step = match poll_step(&pipeline, page.take()).await {
            Ok((_handed, step)) => step,
            Err(error) => {
                warn!(error = %format!("{error:#}"), "dispatch step failed; trying again next interval");
                DispatchStep::default()
            }
        };
        if step.polled >= pipeline.core.settings.intake.batch_size {
            let spinner = backlog.get_or_insert_with(|| Spinner::start("backlog"));
            spinner.fetched(step.polled);
            spinner.dispatched(step.handed);
            spinner.phase("sending");
            if step.next_page.is_some() {
                page = step.next_page;
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                // A flush that cannot finish (Salesforce down) falls back to the normal pace.
                flushed = writeback::request_flush(&pipeline.write_back, interval) => if flushed.is_some() { continue },
            }
        }
        // Drained (or a flush failed): the spinner leaves the screen.
        backlog = None;
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
    pipeline.dispatcher.lanes.finish().await;
    info!("intake stopped");
}

/// Pending records (in batches) that trigger a flush before `writeback.flush_interval` is up. Not
/// one batch: waiting for the interval lets a record's Sent, Delivered and Read merge into fewer
/// writes (guarantee 5); this only bounds the outbox during very high rates.
const EARLY_FLUSH_BATCHES: u64 = 5;

/// How often, at most, queued records make the write-back worker count the outbox (an early
/// flush is up to this much later than the count that would have started it). Every status
/// webhook and every send queues a record: counted on each, the count (a scan of the outbox on a
/// blocking thread) ran thousands of times a second under a backlog (docs/performance.md,
/// eleventh measurement).
pub const DEPTH_CHECK_EVERY: Duration = Duration::from_millis(100);

/// When the write-back worker next counts the outbox for an early flush.
#[derive(Debug, Default)]
pub struct DepthChecks {
    /// When it last counted.
    last: Option<tokio::time::Instant>,
    /// Records were queued since, too soon after `last` to count: count at this time.
    due: Option<tokio::time::Instant>,
}

impl DepthChecks {
    /// Records were queued at `now`: `true` to count the outbox now (then say so with
    /// [`counted`](DepthChecks::counted)); else a count is due at [`due`](DepthChecks::due), at
    /// most [`DEPTH_CHECK_EVERY`] after the last.
    pub fn queued(&mut self, now: tokio::time::Instant) -> bool {
        match self.last {
            Some(last) if now < last + DEPTH_CHECK_EVERY => {
                self.due.get_or_insert(last + DEPTH_CHECK_EVERY);
                false
            }
            _ => true,
        }
    }

    /// When the deferred count is due, if one is.
    pub fn due(&self) -> Option<tokio::time::Instant> {
        self.due
    }

    /// The outbox was counted (or flushed) at `now`: nothing is left to count.
    pub fn counted(&mut self, now: tokio::time::Instant) {
        (self.last, self.due) = (Some(now), None);
    }
}

/// Flushes the outbox every `writeback.flush_interval`, or early once five full batches are
/// pending (counted at most every [`DEPTH_CHECK_EVERY`] while records are queued).
pub async fn run_writeback(write_back: WriteBack, shutdown: CancellationToken) {
    let mut requests = write_back.core.flush.serve();
    let interval = write_back.core.settings.writeback.flush_interval;
    let early = write_back.core.settings.writeback.batch_size as u64 * EARLY_FLUSH_BATCHES;
    let mut next = tokio::time::Instant::now() + interval;
    let mut checks = DepthChecks::default();
    loop {
        let woken = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep_until(next) => Woken::Flush,
            _ = sleep_until_some(checks.due()) => Woken::Count,
            wake = requests.next() => match wake {
                Wake::Now => Woken::Flush,
                Wake::BatchReady if checks.queued(tokio::time::Instant::now()) => Woken::Count,
                Wake::BatchReady => Woken::Nothing,
            },
        };
        let flushed = match woken {
            Woken::Nothing => continue,
            Woken::Count => {
                checks.counted(tokio::time::Instant::now());
                let depth = write_back.core.store.read(outbox::depth).await.unwrap_or(0);
                if depth < early {
                    continue;
                }
                writeback::flush_full_batches(&write_back, depth).await
            }
            Woken::Flush => writeback::flush_once(&write_back).await,
        };
        if let Err(error) = flushed {
            warn!(error = %format!("{error:#}"), "write-back flush failed; trying again next interval");
        }
        requests.flushed();
        let now = tokio::time::Instant::now();
        next = now + interval;
        checks.counted(now);
    }
}

/// What woke the write-back worker asks of it.
enum Woken {
    /// The interval is up, or someone asked for a flush.
    Flush,
    /// Records were queued: flush if five full batches are pending.
    Count,
    /// Records were queued too soon after the last count; a count is due later.
    Nothing,
}

/// Waits until `at`; forever when there is no `at`.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Final flush at shutdown, bounded so a Salesforce outage cannot hold the process forever (what
/// is not written stays in the outbox for the next start).
pub async fn final_flush(write_back: &WriteBack) {
    match tokio::time::timeout(Duration::from_secs(20), writeback::flush_once(write_back)).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::{Notify, Semaphore};

    #[test]
    fn records_queued_soon_after_a_count_are_counted_once_when_the_period_is_up() {
        let start = tokio::time::Instant::now();
        let mut checks = DepthChecks::default();

        assert!(
            checks.queued(start),
            "the first queued records are counted at once"
        );
        checks.counted(start);
        assert_eq!(checks.due(), None);
        let soon = start + DEPTH_CHECK_EVERY / 4;
        assert!(!checks.queued(soon));
        assert!(!checks.queued(soon + DEPTH_CHECK_EVERY / 4));
        assert_eq!(
            checks.due(),
            Some(start + DEPTH_CHECK_EVERY),
            "one count, due a period after the last"
        );

        checks.counted(start + DEPTH_CHECK_EVERY);
        assert_eq!(checks.due(), None, "nothing left to count");
        assert!(
            checks.queued(start + DEPTH_CHECK_EVERY * 2),
            "a period later, counted at once"
        );
    }

    /// The slots a number paced at 80/s gets before its latency is measured.
    fn first_limit() -> usize {
        lanes::concurrency(80.0, lanes::FIRST_LATENCY)
    }

    async fn results<R>(handles: Vec<JoinHandle<Option<R>>>) -> Vec<R> {
        let mut results = Vec::new();
        for handle in handles {
            results.push(handle.await.expect("joined").expect("had a slot"));
        }
        results
    }

    #[tokio::test]
    async fn a_number_whose_sends_cannot_finish_does_not_hold_back_another_numbers_sends() {
        // Number A's sends all wait on a gate that opens only once every send of number B is
        // done: with one pool of slots shared by all numbers, A's backlog (more than its slots)
        // would take every slot first and B would never start.
        let limit = first_limit();
        let (lanes, pacer) = (Arc::new(Lanes::default()), Arc::new(Pacer::new(80)));
        let gate = Arc::new(Semaphore::new(0));
        let b_done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let b_all_done = Arc::new(Notify::new());
        let mut work: Vec<(String, &str)> =
            (0..limit * 3).map(|_| ("A".to_string(), "A")).collect();
        work.extend((0..limit * 2).map(|_| ("B".to_string(), "B")));
        let send = {
            let (gate, b_done, b_all_done) = (gate.clone(), b_done.clone(), b_all_done.clone());
            move |number: &str| {
                let (gate, b_done, b_all_done) = (gate.clone(), b_done.clone(), b_all_done.clone());
                let number = number.to_string();
                async move {
                    if number == "A" {
                        let _open = gate.acquire().await.expect("gate");
                        return (number, b_done.load(std::sync::atomic::Ordering::SeqCst));
                    }
                    let done = b_done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    if done == limit * 2 {
                        b_all_done.notify_one();
                    }
                    (number, done)
                }
            }
        };
        let open_after_b = async {
            b_all_done.notified().await;
            gate.add_permits(limit * 3);
        };

        let (results, ()) = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            let handles = spawn_in_lanes(&lanes, &pacer, work, send).await;
            tokio::join!(results(handles), open_after_b)
        })
        .await
        .expect("number B's sends went through while number A's waited");

        assert_eq!(results.len(), limit * 5);
        assert!(results
            .iter()
            .filter(|(number, _)| number == "A")
            .all(|(_, b_done_before)| *b_done_before == limit * 2));
    }

    #[tokio::test]
    async fn each_number_has_its_own_bounded_slots() {
        let limit = first_limit();
        let (lanes, pacer) = (Arc::new(Lanes::default()), Arc::new(Pacer::new(80)));
        let in_flight: Arc<std::sync::Mutex<std::collections::HashMap<String, (usize, usize)>>> =
            Arc::default();
        let work: Vec<(String, String)> = ["A", "B", "C"]
            .iter()
            .flat_map(|n| (0..limit * 2).map(move |_| (n.to_string(), n.to_string())))
            .collect();
        let send = {
            let in_flight = in_flight.clone();
            move |number: String| {
                let in_flight = in_flight.clone();
                async move {
                    {
                        let mut map = in_flight.lock().unwrap();
                        let (now, max) = map.entry(number.clone()).or_default();
                        *now += 1;
                        *max = (*max).max(*now);
                    }
                    tokio::task::yield_now().await;
                    in_flight.lock().unwrap().get_mut(&number).unwrap().0 -= 1;
                }
            }
        };

        let handles = spawn_in_lanes(&lanes, &pacer, work, send).await;
        results(handles).await;

        let map = in_flight.lock().unwrap();
        for number in ["A", "B", "C"] {
            assert_eq!(map[number].1, limit, "number {number}");
        }
        assert_eq!(lanes.busy(), 0);
    }

    #[test]
    fn an_outcome_another_worker_owns_is_not_counted_and_the_others_keep_their_code() {
        assert_eq!(counted_as(&DispatchOutcome::AlreadySending), None);
        assert_eq!(
            counted_as(&DispatchOutcome::Refused {
                code: "INVALID_PHONE".into()
            }),
            Some(Dispatched::Refused("INVALID_PHONE"))
        );
    }

    fn sending_since(id: &str, since: DateTime<Utc>) -> journal::JournalEntry {
        journal::JournalEntry {
            record_id: SfId::parse(id).expect("id"),
            state: journal::JournalState::Sending,
            business_number_id: None,
            wa_id: None,
            wamid: None,
            attempts: 0,
            next_attempt_at: None,
            sending_since: Some(since),
            error_code: None,
            status_at: None,
            created_at: since,
            updated_at: since,
            rate_limited_since: None,
            rate_limited_count: 0,
        }
    }

    #[test]
    fn lost_sends_are_resent_between_one_grace_and_a_quarter_more_each_at_its_own_time() {
        let since = Utc::now();
        let grace = chrono::Duration::seconds(30);
        let entries: Vec<_> = (0..40)
            .map(|n| sending_since(&format!("a005g00002BLn{n:02}"), since))
            .collect();

        let due_at = |entry: &journal::JournalEntry| {
            (0..=grace.num_milliseconds() / 2)
                .map(|ms| since + chrono::Duration::milliseconds(ms * 10))
                .find(|now| resend_due(entry, grace, *now))
                .expect("due within 1.25 graces")
        };
        let times: Vec<_> = entries.iter().map(due_at).collect();

        assert!(times.iter().all(|t| *t >= since + grace));
        assert!(times.iter().all(|t| *t <= since + grace * 5 / 4));
        let distinct: std::collections::BTreeSet<_> = times.iter().collect();
        assert!(
            distinct.len() > 20,
            "spread out: {} distinct times",
            distinct.len()
        );
        assert!(entries.iter().all(|e| !resend_due(
            e,
            grace,
            since + grace - chrono::Duration::milliseconds(1)
        )));
    }

    #[test]
    fn of_one_customers_woken_messages_due_together_only_the_first_due_goes_in_a_step() {
        let now = Utc::now();
        let record = |n: u32, to: &str, status: &str| {
            let mut record =
                QueuedRecord::new(SfId::parse(&format!("a005g00002BLm{n:02}")).unwrap());
            record.to_phone = Some(to.to_string());
            record.status = Some(status.to_string());
            record
        };
        // Due order: 1, 2 (Waiting, one customer), 3 (Waiting, another), 4 (Queued, the first).
        let due: Vec<_> = (1..=4)
            .map(|n| sending_since(&format!("a005g00002BLm{n:02}"), now))
            .collect();
        let mut work = vec![
            (record(2, "+447911123456", "Waiting for Reply"), 0),
            (record(4, "+447911123456", "Queued"), 0),
            (record(1, "+447911123456", "Waiting for Reply"), 0),
            (record(3, "+447911123457", "Waiting for Reply"), 0),
        ];

        one_woken_message_per_customer(&mut work, &due);

        let kept: Vec<String> = work.iter().map(|(r, _)| r.id.to_string()).collect();
        let id = |n: u32| {
            SfId::parse(&format!("a005g00002BLm{n:02}"))
                .unwrap()
                .to_string()
        };
        assert_eq!(kept, vec![id(1), id(3), id(4)]);
    }
}
