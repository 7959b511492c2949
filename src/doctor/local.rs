//! The checks on this host: the store file (and what it holds: dead letters, refused webhook
//! events) and the webhook listener's address and secrets.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::http::http_client;
use super::report::{Check, Outcome};
use crate::config::Settings;
use crate::store::db::latest_version;

pub(super) const STORE: &str = "Store";
pub(super) const WEBHOOK_REJECTS: &str = "Refused webhook events";
pub(super) const DEAD_LETTERS: &str = "Write-back dead letters";
pub(super) const WEBHOOK: &str = "Webhook listener";

/// The store file can be opened for writing; nothing in it is changed (no migration, no rows), so
/// a running daemon is not disturbed — SQLite in WAL mode lets a second connection in.
pub(super) async fn check_store(path: &Path) -> Check {
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

/// Write-backs Salesforce refused for good, read from the store file (read-only, so a running
/// daemon is not disturbed): none is a pass; any is a failure naming the newest and the command.
pub(super) async fn check_dead_letters(path: &Path) -> Check {
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

/// Webhook events answered 200 but refused (values Salesforce cannot store): worth knowing, not a
/// setup failure. Nothing when there are none.
pub(super) async fn check_webhook_rejects(path: &Path) -> Option<Check> {
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

/// The webhook address can be bound (or a running sfwa holds it), and the secrets are set.
pub(super) async fn check_webhook(settings: &Settings) -> Check {
    let addr = settings.webhook.listen;
    let path = &settings.webhook.path;
    let mut missing = Vec::new();
    if settings.whatsapp.app_secret.is_empty() {
        missing.push("whatsapp.app_secret");
    }
    if settings.whatsapp.verify_token.is_empty() {
        missing.push("whatsapp.verify_token");
    }
    if !missing.is_empty() {
        return Check::fail(
            WEBHOOK,
            format!(
                "{} not set, so Meta's webhooks cannot be verified",
                missing.join(" and ")
            ),
            "set the Meta app's secret (App settings → Basic) and a verify token of \
                your choice, the same one entered when registering the webhook",
        );
    }
    let listening = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            drop(listener);
            format!("{addr} is free for sfwa run")
        }
        Err(error) if error.kind() == ErrorKind::AddrInUse => {
            if answers_healthz(addr).await {
                format!("{addr} is in use: a running sfwa answers /healthz there")
            } else {
                return Check::fail(
                    WEBHOOK,
                    format!("{addr} is in use by another program (nothing answers /healthz)"),
                    "stop that program, or set webhook.listen to a free port and route \
                        Meta's webhooks there",
                );
            }
        }
        Err(error) if error.kind() == ErrorKind::PermissionDenied => {
            return Check::fail(
                WEBHOOK,
                format!("not allowed to listen on {addr}: {error}"),
                "use a port above 1023 behind the TLS proxy, or grant CAP_NET_BIND_SERVICE",
            )
        }
        Err(error) => {
            return Check::fail(
                WEBHOOK,
                format!("cannot listen on {addr}: {error}"),
                "set webhook.listen to an address of this host, e.g. 0.0.0.0:8080",
            )
        }
    };
    Check::pass(
        WEBHOOK,
        format!("{listening}; webhooks on {path}; app secret and verify token set"),
    )
}

/// Whether something at `addr` answers `GET /healthz` with 2xx, as sfwa does.
async fn answers_healthz(addr: SocketAddr) -> bool {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let url = format!("http://{}/healthz", SocketAddr::new(ip, addr.port()));
    http_client()
        .get(url)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}
