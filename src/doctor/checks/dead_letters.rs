//! "Write-back dead letters": write-backs Salesforce refused for good, read from the store file.

use std::path::Path;

use crate::doctor::report::Check;

pub(in crate::doctor) const DEAD_LETTERS: &str = "Write-back dead letters";

/// Write-backs Salesforce refused for good, read from the store file (read-only, so a running
/// daemon is not disturbed): none is a pass; any is a failure naming the newest and the command.
pub(in crate::doctor) async fn check_dead_letters(path: &Path) -> Check {
    let path = path.to_path_buf();
    let checked = tokio::task::spawn_blocking(move || dead_letter_state(&path)).await;
    match checked {
        Ok(Ok(None)) => Check::pass(DEAD_LETTERS, "none"),
        Ok(Ok(Some((count, newest)))) => Check::fail(
            DEAD_LETTERS,
            format!(
                "{count} write-back(s) Salesforce refused for good; newest: {}",
                newest.join("; ")
            ),
            "see them with `sfwa dead-letters list`; once the cause is fixed, \
             `sfwa dead-letters retry KEY…` (or --all), or give up with `sfwa dead-letters drop KEY…`",
        ),
        // The store check above already says what is wrong with the file.
        Ok(Err(reason)) => Check::skipped(DEAD_LETTERS, reason),
        Err(error) => Check::skipped(DEAD_LETTERS, format!("the check itself failed: {error}")),
    }
}

/// `None` when there are no dead letters; else their count and the newest three as `key: reason`.
fn dead_letter_state(path: &Path) -> Result<Option<(u64, Vec<String>)>, String> {
    use rusqlite::{Connection, OpenFlags};
    if !path.exists() {
        return Ok(None);
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("the store cannot be read: {e}"))?;
    let _ = conn.busy_timeout(crate::store::db::BUSY_TIMEOUT);
    let has_table: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'outbox_dead'",
            [],
            |row| row.get(0),
        )
        .map_err(|e| format!("the store cannot be read: {e}"))?;
    if !has_table {
        return Ok(None);
    }
    let count = crate::store::outbox::dead_letter_count(&conn).map_err(|e| e.to_string())?;
    if count == 0 {
        return Ok(None);
    }
    let newest = crate::store::outbox::dead_letters(&conn, 3)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|letter| {
            let reason: String = letter.reason.chars().take(120).collect();
            format!("{}: {reason}", letter.key)
        })
        .collect();
    Ok(Some((count, newest)))
}
