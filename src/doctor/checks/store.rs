//! "Store": the store file opens for writing, and its schema is one `sfwa run` can use or update.
//! Nothing in it is changed (no migration, no rows).

use std::path::Path;

use crate::doctor::report::Check;
use crate::store::db::latest_version;

pub(in crate::doctor) const STORE: &str = "Store";

/// The store file can be opened for writing; nothing in it is changed (no migration, no rows), so
/// a running daemon is not disturbed — SQLite in WAL mode lets a second connection in.
pub(in crate::doctor) async fn check_store(path: &Path) -> Check {
    let path = path.to_path_buf();
    let checked = tokio::task::spawn_blocking(move || store_state(&path)).await;
    match checked {
        Ok(Ok(detail)) => Check::pass(STORE, detail),
        Ok(Err((problem, fix))) => Check::fail(STORE, problem, fix),
        Err(error) => Check::fail(
            STORE,
            format!("the check itself failed: {error}"),
            "run sfwa doctor again",
        ),
    }
}

fn store_state(path: &Path) -> Result<String, (String, String)> {
    use rusqlite::{Connection, OpenFlags};
    let shown = path.display();
    if !path.exists() {
        // sfwa run creates the file and any missing directories: the nearest existing ancestor
        // must take a new file.
        let mut dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        while !dir.exists() {
            dir = dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
        }
        let probe = dir.join(format!(".sfwa-doctor-{}", std::process::id()));
        return match std::fs::File::create(&probe) {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
                Ok(format!(
                    "{shown} does not exist yet; sfwa run creates it in {}, which is \
                    writable",
                    dir.display()
                ))
            }
            Err(error) => Err((
                format!(
                    "{shown} cannot be created: {} is not writable ({error})",
                    dir.display()
                ),
                "set store.path to a writable location on persistent storage, or give \
                    this user write access"
                    .into(),
            )),
        };
    }
    let fix = "give this user read and write access to the file and its directory \
        (SQLite writes -wal and -shm files beside it)";
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(|e| {
            (
                format!("{shown} cannot be opened for writing: {e}"),
                fix.to_string(),
            )
        })?;
    let _ = conn.busy_timeout(crate::store::db::BUSY_TIMEOUT);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| {
            (
                format!("{shown} is not a readable SQLite file: {e}"),
                "point store.path at sfwa's store, or move this file away so sfwa run \
                    creates a new one"
                    .to_string(),
            )
        })?;
    if version > latest_version() {
        return Err((
            format!(
                "{shown} was written by a newer sfwa (schema {version}, this one knows {})",
                latest_version()
            ),
            "run the newer sfwa, or restore a store from before the upgrade".into(),
        ));
    }
    // Taking the write lock and letting it go changes nothing but proves writes can happen (and
    // waits politely if a running daemon is mid-commit).
    conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
        .map_err(|e| (format!("{shown} cannot be written: {e}"), fix.to_string()))?;
    let state = if version < latest_version() {
        "sfwa run will update its schema"
    } else {
        "schema up to date"
    };
    Ok(format!("{shown} opens for writing; {state}"))
}
