//! `sfwa dead-letters list|retry|drop`: what an operator does with the write-backs Salesforce
//! refused for good (the dead letters the flush makes, see [`super::writeback`]).
//!
//! It works on the store file alone, beside a running `sfwa run` (SQLite WAL lets a second
//! connection in): `retry` moves dead letters back into the outbox, merged with whatever is pending
//! for the same record (the pending values are newer and win), due at once, so the daemon writes
//! them at its next flush; `drop` deletes them for good; `list` shows them, bounded.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use crate::store::outbox::{self, DeadLetter, Selection};
use crate::store::webhook_rejects::{self, WebhookReject};
use crate::store::{Store, StoreError};

/// Dead letters `list` shows without `--all`.
pub const LIST_LIMIT: usize = 50;
/// Refused webhook events `list` shows after the write-back dead letters.
const REJECTS_SHOWN: usize = 10;
/// Characters of a reason or of the fields shown per dead letter.
const SHOWN_CHARS: usize = 240;

/// What to do with the selected dead letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    List,
    Retry,
    Drop,
}

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("there is no store at {0} (store.path): sfwa has not run with these settings here")]
    NoStore(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Opens the store at `path` (never creating one) and runs `action`; returns what to print.
pub async fn run_on_file(
    path: &Path,
    action: Action,
    selection: Selection,
    now: DateTime<Utc>,
) -> Result<String, DeadLetterError> {
    if !path.exists() {
        return Err(DeadLetterError::NoStore(path.display().to_string()));
    }
    let store = Store::open(path)?;
    Ok(run(&store, action, selection, now).await?)
}

/// Runs `action` on the selected dead letters of `store`; returns what to print. For `list`, an
/// empty key list means the newest [`LIST_LIMIT`]; `retry` and `drop` act on exactly the keys.
pub async fn run(
    store: &Store,
    action: Action,
    selection: Selection,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    match action {
        Action::List => {
            // No key and no --all: the newest few, which is what an operator looks at first.
            let (letters, total, rejects, rejected) = store
                .read(move |conn| {
                    let letters = match &selection {
                        Selection::Keys(keys) if keys.is_empty() => {
                            outbox::dead_letters(conn, LIST_LIMIT)?
                        }
                        chosen => outbox::dead_letters_selected(conn, chosen, usize::MAX)?,
                    };
                    Ok((
                        letters,
                        outbox::dead_letter_count(conn)?,
                        webhook_rejects::list(conn, REJECTS_SHOWN)?,
                        webhook_rejects::count(conn)?,
                    ))
                })
                .await?;
            let mut out = render_list(&letters, total);
            out.push_str(&render_rejects(&rejects, rejected));
            Ok(out)
        }
        Action::Retry => {
            let (unknown, revived) = store
                .write(move |tx| {
                    Ok((
                        unknown_keys(tx, &selection)?,
                        outbox::revive(tx, &selection, now)?,
                    ))
                })
                .await?;
            Ok(format!(
                "{}{} dead letter(s) back in the outbox as {} write-back(s) ({} merged with one \
                 already pending); a running sfwa writes them at its next flush.\n",
                unknown, revived.dead_letters, revived.items, revived.merged
            ))
        }
        Action::Drop => {
            let (unknown, dropped) = store
                .write(move |tx| {
                    Ok((
                        unknown_keys(tx, &selection)?,
                        outbox::forget(tx, &selection)?,
                    ))
                })
                .await?;
            Ok(format!(
                "{unknown}{dropped} dead letter(s) dropped for good.\n"
            ))
        }
    }
}

/// The webhook events sfwa answered 200 but refused (`store::webhook_rejects`): nothing to retry —
/// they held values Salesforce cannot store — but an operator sees what Meta sent and why.
/// Retention deletes them with the webhook dedupe keys.
pub fn render_rejects(rejects: &[WebhookReject], total: u64) -> String {
    if total == 0 {
        return String::new();
    }
    let mut out = format!(
        "\n{total} webhook event(s) refused at the door (answered 200, not applied), newest {} \
         (reason, last seen, times seen, detail, event):\n",
        rejects.len()
    );
    for reject in rejects {
        let _ = writeln!(
            out,
            "{}\t{}\t{}x\t{}\n    event: {}",
            reject.reason,
            reject
                .last_seen_at
                .to_rfc3339_opts(SecondsFormat::Secs, true),
            reject.times_seen,
            shorten(&reject.detail),
            shorten(&reject.event),
        );
    }
    out
}

/// One line per named key that no dead letter has; empty when all were found.
fn unknown_keys(conn: &rusqlite::Connection, selection: &Selection) -> Result<String, StoreError> {
    let Selection::Keys(keys) = selection else {
        return Ok(String::new());
    };
    Ok(outbox::unknown_dead_letter_keys(conn, keys)?
        .into_iter()
        .map(|key| format!("No dead letter has the key {key} (see `sfwa dead-letters list`).\n"))
        .collect())
}

/// What `list` prints: one line per dead letter, its fields below, then how to act.
pub fn render_list(letters: &[DeadLetter], total: u64) -> String {
    let mut out = String::new();
    if letters.is_empty() {
        let _ = writeln!(out, "No dead letters ({total} in the store).");
        return out;
    }
    let _ = writeln!(
        out,
        "{} of {total} dead letter(s), newest first (key, record, dropped at, reason):",
        letters.len()
    );
    for letter in letters {
        let fields = Value::Object(letter.item.fields.clone()).to_string();
        let _ = writeln!(
            out,
            "{}\t{} {}\t{}\t{}\n    fields: {}",
            letter.key,
            letter.item.object,
            letter.item.record_id,
            letter.dropped_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            shorten(&letter.reason),
            shorten(&fields),
        );
    }
    let _ = writeln!(
        out,
        "Retry once the cause is fixed: sfwa dead-letters retry KEY… (or --all); \
         give up: sfwa dead-letters drop KEY… (or --all)."
    );
    out
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= SHOWN_CHARS {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(SHOWN_CHARS).collect();
    cut.push('…');
    cut
}
