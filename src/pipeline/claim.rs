//! The claim every intake goes through — the poll ([`super::intake`]), the platform events
//! ([`super::stream`]) — and when a record is due.
//!
//! The journal's claim admits a record to dispatch once. A claimed record that never reached
//! `Sending` (a crash between claim and send) is dispatched again: nothing was sent for it. One
//! finished yet Queued again is handed back to be settled ([`super::intake::settle_requeued`]);
//! one whose `Scheduled_At__c` is ahead is claimed with a timer instead ([`claim_for_later`]).
//!
//! Its own module so the poll, the stream and the retry loop ([`super::worker`]) share it without
//! importing one another.

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::domain::message::QueuedRecord;
use crate::domain::sf_id::SfId;
use crate::store::journal::{self, Claim, JournalState};
use crate::store::{outbox, StoreError};

use super::Core;

/// What claiming a batch of Queued records found.
#[derive(Debug, Default)]
pub struct Claimed {
    /// New to the journal, or claimed and never sent: dispatch them.
    pub fresh: Vec<QueuedRecord>,
    /// Finished in the journal (or carrying a wamid the journal no longer knows) with no
    /// write-back pending: re-queued by a person, or read just before a write-back landed.
    /// [`intake::settle_requeued`](super::intake::settle_requeued) decides.
    pub requeued: Vec<QueuedRecord>,
}

/// Claims the records that are new to the journal and keeps those claimed but never sent.
pub async fn claim_new(core: &Core, records: Vec<QueuedRecord>) -> anyhow::Result<Claimed> {
    if records.is_empty() {
        return Ok(Claimed::default());
    }
    let now = core.now();
    let result = core.store.write(move |tx| claim_in(tx, records, now)).await;
    result.context("claiming records in the journal")
}

/// [`claim_new`] inside the caller's transaction (the stream stores its replay id in the same one).
pub fn claim_in(
    tx: &rusqlite::Transaction,
    records: Vec<QueuedRecord>,
    now: DateTime<Utc>,
) -> Result<Claimed, StoreError> {
    let mut claimed = Claimed::default();
    for record in records {
        // A wamid on the record but no journal row: retention deleted the row of a message
        // WhatsApp accepted long ago. Claiming it as new would send it twice.
        if record.wamid.is_some() && journal::get(tx, &record.id)?.is_none() {
            claimed.requeued.push(record);
            continue;
        }
        match journal::claim(tx, &record.id, now)? {
            Claim::New => claimed.fresh.push(record),
            Claim::Existing(entry) => {
                if entry.state == JournalState::Claimed && due_later(&entry, now).is_none() {
                    claimed.fresh.push(record);
                } else if entry.state.is_finished() && !outbox::is_pending(tx, record.id.as_str())?
                {
                    claimed.requeued.push(record);
                }
                // Otherwise it is being sent, waiting for its retry, or its write-back has not
                // landed yet (Salesforce still shows the Queued it had): nothing to do.
            }
        }
    }
    Ok(claimed)
}

/// Claims a record (or keeps its existing claim) to be sent at `at`, not before: a message whose
/// `Scheduled_At__c` is ahead. A record already sending or sent is left alone.
pub fn claim_for_later(
    tx: &rusqlite::Transaction,
    record_id: &SfId,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let attempts = match journal::claim(tx, record_id, now)? {
        Claim::New => 0,
        Claim::Existing(entry) if entry.state == JournalState::Claimed => entry.attempts,
        Claim::Existing(_) => return Ok(()),
    };
    journal::schedule_retry(tx, record_id, attempts, at, now)?;
    Ok(())
}

/// When a claimed record is due again, if that is still ahead of `now` (a retry, a rate-limit
/// wait, a schedule): until then intake leaves it to its timer. Pure: `sfwa plan` asks it too.
pub fn due_later(entry: &journal::JournalEntry, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    entry.next_attempt_at.filter(|due| *due > now)
}

/// The record's `Scheduled_At__c`, if it is still ahead of `now`.
pub fn scheduled_later(record: &QueuedRecord, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    record.scheduled_at.filter(|at| *at > now)
}
