//! Customers' files kept: an inbound image, document, audio or video is downloaded from Meta and
//! saved as a Salesforce File on its `WhatsApp_Message__c` record, and the record's Body says
//! what the file is and where it went.
//!
//! Where it sits in the pipeline: the webhook's apply step ([`super::webhook_apply`]) queues the
//! file ([`enqueue`], into `store::media`) in the transaction that queues the inbound record, so a
//! file Meta had its 200 for is never forgotten. The media worker then runs [`media_step`] (driven
//! by `app`, like the other workers; tests call it directly):
//! 1. it waits until the message record exists in Salesforce — its inbound upsert no longer in the
//!    outbox, then its Id found by `WhatsApp_Message_Id__c` (one query per step, with `IN`);
//! 2. asks Meta where the file is (`GET /{media_id}`: a URL valid minutes, needing the token),
//!    downloads it (at most `media.max_bytes`, sha256 checked) and uploads it as a ContentVersion
//!    whose `FirstPublishLocationId` is the record;
//! 3. updates the record through the outbox (Body in words, `Media_Filename__c`), in the same
//!    transaction that ends the queue row.
//!
//! A failed attempt is retried with back-off ([`backoff`]); after [`MAX_ATTEMPTS`], or once Meta
//! no longer has the file (media ids expire [`META_KEEPS_MEDIA`] after the message), the record
//! says so in words. Trouble that is not the file's (Meta refusing sfwa's token, Salesforce's
//! allowance spent, the send path's hold) makes files wait without using their attempts. A file
//! over the limit is not downloaded, and the record says that too. Neither the token nor Meta's
//! signed URL is ever logged.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use tracing::{info, warn};

use crate::domain::ids::Wamid;
use crate::domain::sf_id::SfId;
use crate::domain::webhook_event::{InboundKind, InboundMessage};
use crate::salesforce::error::SalesforceError;
use crate::salesforce::soql::soql_string;
use crate::store::media::{self as queue, MediaState, QueuedMedia};
use crate::store::{outbox, StoreError};
use crate::whatsapp::media::MediaError;

use super::inbound_records::WAMID_FIELD;
use super::record_update::Fields;
use super::report::MediaOutcome;
use super::Pipeline;

use super::media_body::{
    body_fields, disabled_body, failed_body, file_name, gone_body, saved_fields, too_large_body,
};
pub use super::media_body::{first_body, META_KEEPS_MEDIA};

/// Failed attempts before a file is given up and the record says so.
pub const MAX_ATTEMPTS: u32 = 6;

/// Files handled per step (each is a download and an upload; a step stays short).
const FILES_PER_STEP: usize = 10;

/// How long a file waits when the trouble is not the file's (see [`Ended::NotCounted`]).
const NOT_COUNTED_WAIT: Duration = Duration::minutes(15);

/// Graph's code for an access token it refuses (expired, revoked).
const GRAPH_AUTH: i64 = 190;

/// How soon to look again for a record Salesforce does not have yet.
const RECORD_WAIT: Duration = Duration::seconds(30);

/// What one step did, for the loop's log and the tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MediaStep {
    pub saved: usize,
    pub too_large: usize,
    pub failed: usize,
    pub retried: usize,
    pub disabled: usize,
    /// Files whose record is not in Salesforce yet (looked at again shortly, not an attempt).
    pub waiting_for_record: usize,
}

impl MediaStep {
    /// Whether the step did anything (the loop runs again at once while it does).
    pub fn did_work(&self) -> bool {
        self.saved + self.too_large + self.failed + self.retried + self.disabled > 0
    }

    fn count(&mut self, outcome: MediaOutcome) {
        match outcome {
            MediaOutcome::Saved => self.saved += 1,
            MediaOutcome::TooLarge => self.too_large += 1,
            MediaOutcome::Failed => self.failed += 1,
            MediaOutcome::Retried => self.retried += 1,
            MediaOutcome::Disabled => self.disabled += 1,
        }
    }
}

/// Queues the file of `message`, if it carries one, in the webhook's transaction. A duplicate
/// webhook queues nothing new.
pub fn enqueue(
    tx: &rusqlite::Transaction,
    message: &InboundMessage,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let InboundKind::Media {
        kind,
        media_id,
        mime_type,
        caption,
        filename,
    } = &message.kind
    else {
        return Ok(());
    };
    let mut media = QueuedMedia::new(
        message.wamid.clone(),
        media_id,
        *kind,
        message.timestamp,
        now,
    );
    media.mime_type = mime_type.clone();
    media.caption = caption.clone();
    media.filename = filename.clone();
    queue::enqueue(tx, &media, now)?;
    Ok(())
}

/// The wait after the `attempts`-th failure: 1 min, 4 min, 16 min, ~1 h, ~4 h, then 6 h — six
/// attempts spread over about five hours, well inside Meta's 7 days.
pub fn backoff(attempts: u32) -> Duration {
    let minutes = 4_i64.saturating_pow(attempts.saturating_sub(1).min(10));
    Duration::minutes(minutes.min(6 * 60))
}

/// One pass: the due files (≤ `FILES_PER_STEP`), each copied, refused or retried. See the module.
pub async fn media_step(pipeline: &Pipeline) -> anyhow::Result<MediaStep> {
    let core = &pipeline.core;
    if let Some(hold) = pipeline.dispatcher.hold_on_all() {
        // Meta refuses everything for now (token, account): the files wait with the sends.
        tracing::debug!(until = %hold.until, "media waits out the hold on WhatsApp calls");
        return Ok(MediaStep::default());
    }
    let now = core.now();
    let object = core.message_object().to_string();
    let due = core
        .store
        .read(move |conn| {
            let due = queue::due(conn, now, FILES_PER_STEP)?;
            // A record whose inbound upsert is still in the outbox is not (all) in Salesforce yet.
            let mut ready = Vec::new();
            for media in due {
                let key = outbox::upsert_key(&object, WAMID_FIELD, media.wamid.as_str());
                ready.push((outbox::is_pending(conn, &key)?, media));
            }
            Ok(ready)
        })
        .await?;
    let mut step = MediaStep::default();
    if due.is_empty() {
        return Ok(step);
    }
    let found = find_records(pipeline, &due).await?;
    let mut ready = Vec::new();
    for (pending, mut media) in due {
        if media.record_id.is_none() && !pending {
            media.record_id = found
                .iter()
                .find(|(w, _)| *w == media.wamid)
                .map(|(_, id)| id.clone());
        }
        match media.record_id.clone() {
            Some(record_id) => ready.push((media, record_id)),
            None => {
                step.waiting_for_record += 1;
                wait_for_record(pipeline, &media, pending).await?;
            }
        }
    }
    for (media, record_id) in ready {
        let outcome = copy_one(pipeline, &media, &record_id).await?;
        core.reporter.media(outcome);
        step.count(outcome);
    }
    if step.did_work() {
        core.flush.batch_ready();
    }
    Ok(step)
}

/// How often the worker looks for due files when the last step found none.
pub const MEDIA_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// How long shutdown waits for a step copying files (a download may take minutes).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs [`media_step`] until shutdown: again at once while it copies files, else every
/// [`MEDIA_INTERVAL`]. A failed step (Salesforce or the store unavailable) is logged and tried
/// again next interval. At shutdown the step in progress gets `SHUTDOWN_GRACE` to finish; a file
/// cut off is still waiting in the store and is copied after the restart (if its upload had
/// already reached Salesforce, the record then has it twice).
pub async fn run_media(pipeline: Pipeline, shutdown: tokio_util::sync::CancellationToken) {
    loop {
        let step = media_step(&pipeline);
        let finish_or_give_up = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        let result = tokio::select! {
            result = step => result,
            () = finish_or_give_up => {
                warn!("stopping the media step mid-file; it is copied again after the restart");
                return;
            }
        };
        let busy = match result {
            Ok(step) => step.did_work(),
            Err(error) => {
                warn!(error = %format!("{error:#}"), "media step failed; trying again next interval");
                false
            }
        };
        if shutdown.is_cancelled() {
            return;
        }
        if !busy {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(MEDIA_INTERVAL) => {}
            }
        }
    }
}

#[derive(Deserialize)]
struct MessageId {
    #[serde(rename = "Id")]
    id: SfId,
    #[serde(rename = "WhatsApp_Message_Id__c")]
    wamid: Wamid,
}

/// The record Ids of the due files whose record is in Salesforce and not known yet: one query.
async fn find_records(
    pipeline: &Pipeline,
    due: &[(bool, QueuedMedia)],
) -> anyhow::Result<Vec<(Wamid, SfId)>> {
    let wamids: Vec<String> = due
        .iter()
        .filter(|(pending, media)| !pending && media.record_id.is_none())
        .map(|(_, media)| soql_string(media.wamid.as_str()))
        .collect();
    if wamids.is_empty() {
        return Ok(Vec::new());
    }
    let soql = format!(
        "SELECT Id, {WAMID_FIELD} FROM {} WHERE {WAMID_FIELD} IN ({})",
        pipeline.core.message_object(),
        wamids.join(",")
    );
    let rows: Vec<MessageId> = pipeline.write_back.salesforce.query(&soql).await?;
    let found: Vec<(Wamid, SfId)> = rows.into_iter().map(|r| (r.wamid, r.id)).collect();
    let now = pipeline.core.now();
    let remembered = found.clone();
    pipeline
        .core
        .store
        .write(move |tx| {
            for (wamid, id) in &remembered {
                queue::set_record(tx, wamid, id, now)?;
            }
            Ok(())
        })
        .await?;
    Ok(found)
}

/// The record is not in Salesforce yet: while its upsert is queued, look again shortly (not an
/// attempt); once the upsert is gone and the record still is not there (refused, dead-lettered,
/// deleted), count an attempt, so the file is given up in the end.
async fn wait_for_record(
    pipeline: &Pipeline,
    media: &QueuedMedia,
    upsert_pending: bool,
) -> anyhow::Result<()> {
    let now = pipeline.core.now();
    let wamid = media.wamid.clone();
    let attempts = media.attempts;
    pipeline
        .core
        .store
        .write(move |tx| {
            if upsert_pending {
                return queue::postpone(tx, &wamid, now + RECORD_WAIT, now);
            }
            if attempts + 1 >= MAX_ATTEMPTS {
                warn!(%wamid, "the message record never appeared in Salesforce; its file is not copied");
                let error = "the message record is not in Salesforce";
                return queue::finish(tx, &wamid, MediaState::Failed, None, Some(error), now);
            }
            let until = now + backoff(attempts + 1);
            queue::retry_later(tx, &wamid, until, "the message record is not in Salesforce", now)
                .map(|_| ())
        })
        .await?;
    Ok(())
}

/// How one file ended this step.
enum Ended {
    Saved {
        file_id: String,
        bytes: u64,
        mime: Option<String>,
    },
    TooLarge {
        bytes: u64,
    },
    Gone,
    Disabled,
    /// Not the file's fault (sfwa's credentials refused, Salesforce's daily API allowance
    /// spent): tried again after [`NOT_COUNTED_WAIT`] without counting an attempt.
    NotCounted(String),
    Error(String),
}

/// Copies one file whose record exists, and writes what became of it (store and record).
async fn copy_one(
    pipeline: &Pipeline,
    media: &QueuedMedia,
    record_id: &SfId,
) -> anyhow::Result<MediaOutcome> {
    let ended = if !pipeline.core.settings.media.enabled {
        Ended::Disabled
    } else if pipeline.core.now() >= media.received_at + META_KEEPS_MEDIA {
        Ended::Gone
    } else {
        fetch_and_upload(pipeline, media, record_id).await
    };
    record_outcome(pipeline, media, record_id, ended).await
}

/// Meta's info, the download and the upload; the first failure ends it.
async fn fetch_and_upload(pipeline: &Pipeline, media: &QueuedMedia, record_id: &SfId) -> Ended {
    let whatsapp = &pipeline.dispatcher.whatsapp;
    let max_bytes = pipeline.core.settings.media.max_bytes;
    let downloaded = match whatsapp.media_info(&media.media_id).await {
        Ok(info) => whatsapp
            .download(&info, max_bytes)
            .await
            .map(|file| (file, info.mime_type)),
        Err(error) => Err(error),
    };
    let (file, mime) = match downloaded {
        Ok(found) => found,
        Err(MediaError::TooLarge { got, .. }) => return Ended::TooLarge { bytes: got },
        Err(error) if error.is_gone() => return Ended::Gone,
        Err(MediaError::Meta(error)) if error.code == GRAPH_AUTH || error.http_status == 401 => {
            return Ended::NotCounted(format!("WhatsApp refused sfwa's access token: {error}"))
        }
        Err(error) => return Ended::Error(error.to_string()),
    };
    let mime = media.mime_type.clone().or(mime).or(file.content_type);
    let name = file_name(media, mime.as_deref());
    let bytes = file.bytes.len() as u64;
    match pipeline
        .write_back
        .salesforce
        .create_file(record_id, &name, &name, &file.bytes)
        .await
    {
        Ok(file_id) => Ended::Saved {
            file_id,
            bytes,
            mime,
        },
        Err(error @ (SalesforceError::Auth { .. } | SalesforceError::LimitExceeded)) => {
            Ended::NotCounted(format!("saving it to Salesforce Files failed: {error}"))
        }
        Err(error) => Ended::Error(format!("saving it to Salesforce Files failed: {error}")),
    }
}

/// Ends or reschedules the queue row and queues the record's update, in one transaction.
async fn record_outcome(
    pipeline: &Pipeline,
    media: &QueuedMedia,
    record_id: &SfId,
    ended: Ended,
) -> anyhow::Result<MediaOutcome> {
    let ended = match ended {
        Ended::Error(error) if media.attempts + 1 < MAX_ATTEMPTS => {
            info!(wamid = %media.wamid, %error, attempt = media.attempts + 1, "copying a customer's file failed; trying again later");
            return retry(pipeline, media, error).await;
        }
        Ended::NotCounted(error) => {
            warn!(wamid = %media.wamid, %error, "copying a customer's file is held up; trying again later");
            return wait_uncounted(pipeline, media).await;
        }
        ended => ended,
    };
    let now = pipeline.core.now();
    let done = finished(media, ended, pipeline.core.settings.media.max_bytes);
    if let Some(error) = &done.error {
        warn!(wamid = %media.wamid, %error, attempts = media.attempts + 1, "a customer's file is not copied; the record says why");
    } else {
        info!(wamid = %media.wamid, %record_id, outcome = done.outcome.label(), "a customer's file is done");
    }
    let object = pipeline.core.message_object().to_string();
    let (wamid, record_id) = (media.wamid.clone(), record_id.clone());
    let outcome = done.outcome;
    pipeline
        .core
        .store
        .write(move |tx| {
            let Finished {
                state,
                fields,
                file_id,
                error,
                ..
            } = done;
            queue::finish(tx, &wamid, state, file_id.as_deref(), error.as_deref(), now)?;
            outbox::enqueue(tx, &object, record_id.as_str(), &fields, now)
        })
        .await?;
    Ok(outcome)
}

/// How a file ended for good: its row's state, the count, the record's fields.
struct Finished {
    state: MediaState,
    outcome: MediaOutcome,
    fields: Fields,
    file_id: Option<String>,
    /// Why it is not a File (a given-up or gone file).
    error: Option<String>,
}

/// What a final [`Ended`] writes (`limit` is `media.max_bytes`, named on a file over it).
fn finished(media: &QueuedMedia, ended: Ended, limit: u64) -> Finished {
    let refused = |state, outcome, body: String, error: Option<String>| Finished {
        state,
        outcome,
        fields: body_fields(body),
        file_id: None,
        error,
    };
    match ended {
        Ended::Saved {
            file_id,
            bytes,
            mime,
        } => Finished {
            state: MediaState::Done,
            outcome: MediaOutcome::Saved,
            fields: saved_fields(media, mime.as_deref(), bytes),
            file_id: Some(file_id),
            error: None,
        },
        Ended::TooLarge { bytes } => refused(
            MediaState::TooLarge,
            MediaOutcome::TooLarge,
            too_large_body(media, bytes, limit),
            None,
        ),
        Ended::Disabled => refused(
            MediaState::Disabled,
            MediaOutcome::Disabled,
            disabled_body(media),
            None,
        ),
        Ended::Gone => refused(
            MediaState::Failed,
            MediaOutcome::Failed,
            gone_body(media),
            Some("Meta no longer has the file".into()),
        ),
        Ended::Error(error) | Ended::NotCounted(error) => refused(
            MediaState::Failed,
            MediaOutcome::Failed,
            failed_body(media, &error),
            Some(error),
        ),
    }
}

/// Looks again after [`NOT_COUNTED_WAIT`] without counting an attempt (Meta's 7 days still end it).
async fn wait_uncounted(pipeline: &Pipeline, media: &QueuedMedia) -> anyhow::Result<MediaOutcome> {
    let now = pipeline.core.now();
    let wamid = media.wamid.clone();
    pipeline
        .core
        .store
        .write(move |tx| queue::postpone(tx, &wamid, now + NOT_COUNTED_WAIT, now))
        .await?;
    Ok(MediaOutcome::Retried)
}

async fn retry(
    pipeline: &Pipeline,
    media: &QueuedMedia,
    error: String,
) -> anyhow::Result<MediaOutcome> {
    let now = pipeline.core.now();
    let until = now + backoff(media.attempts + 1);
    let wamid = media.wamid.clone();
    pipeline
        .core
        .store
        .write(move |tx| queue::retry_later(tx, &wamid, until, &error, now))
        .await?;
    Ok(MediaOutcome::Retried)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_back_off_grows_then_stays_at_six_hours_and_all_attempts_fit_in_metas_week() {
        let waits: Vec<i64> = (1..=8).map(|n| backoff(n).num_minutes()).collect();
        let total: Duration = (1..MAX_ATTEMPTS).map(backoff).sum();

        assert_eq!(waits, [1, 4, 16, 64, 256, 360, 360, 360]);
        assert!(total < META_KEEPS_MEDIA, "{total}");
    }
}
