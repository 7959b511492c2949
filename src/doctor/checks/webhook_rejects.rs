//! "Refused webhook events": events answered 200 but refused (values Salesforce cannot store).

use std::path::Path;

use crate::doctor::report::{Check, Outcome};

pub(in crate::doctor) const WEBHOOK_REJECTS: &str = "Refused webhook events";

/// Webhook events answered 200 but refused (values Salesforce cannot store): worth knowing, not a
/// setup failure. Nothing when there are none.
pub(in crate::doctor) async fn check_webhook_rejects(path: &Path) -> Option<Check> {
    let path = path.to_path_buf();
    let counted = tokio::task::spawn_blocking(move || -> Result<Vec<(String, u64)>, String> {
        use rusqlite::{Connection, OpenFlags};
        if !path.exists() {
            return Ok(Vec::new());
        }
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| e.to_string())?;
        let _ = conn.busy_timeout(crate::store::db::BUSY_TIMEOUT);
        let has_table: bool = conn
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'webhook_rejects'",
                [],
                |row| row.get(0),
            )
            .map_err(|e| e.to_string())?;
        if !has_table {
            return Ok(Vec::new());
        }
        crate::store::webhook_rejects::counts_by_reason(&conn).map_err(|e| e.to_string())
    })
    .await;
    let counts = match counted {
        Ok(Ok(counts)) if !counts.is_empty() => counts,
        _ => return None,
    };
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let reasons = counts
        .iter()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(Check::new(
        WEBHOOK_REJECTS,
        Outcome::Info(format!(
            "{total} event(s) Meta sent were answered 200 but not applied ({reasons}); see them \
             with `sfwa dead-letters list`"
        )),
    ))
}
