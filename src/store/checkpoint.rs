//! WAL checkpoints on a thread of their own, beside the writer rather than inside its commits.
//!
//! SQLite's default (`wal_autocheckpoint`) runs a checkpoint inside the COMMIT that takes the log
//! past 1,000 pages: the writer copies the log's pages into the database file and fsyncs it
//! before that COMMIT returns. Under a send backlog that was a checkpoint every half second, a
//! few thousand page writes each, and now and then an fsync of the database file of 300 ms
//! (`strace -T` of `sfwa bench backlog --records 100000 --journal-rows 1000000`). Every write
//! waited behind it — webhook answers included, so Meta's POSTs piled up on new connections and
//! the daemon's memory with them.
//!
//! Here the writer's connection never checkpoints (`wal_autocheckpoint = 0`). A commit marks the
//! log dirty (waking this thread only if it was idle); at most every [`CHECKPOINT_EVERY`] it runs a
//! `PASSIVE` checkpoint on its own connection, which copies what it can without waiting for or
//! blocking the writer or the readers. A passive checkpoint racing a steady stream of commits
//! never catches the log's end, and SQLite only starts the log over once it is fully copied, so
//! past [`RESTART_FRAMES`] pages it follows with a `RESTART` checkpoint: it waits for the writer's
//! current batch, copies the few pages written since the passive one and lets the next write
//! start the log from the beginning. Durability is unchanged: a commit is durable once its log
//! pages are synced, which the writer still does before answering.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// The least time between two checkpoints: each copies a few hundred milliseconds of commits,
/// so a page written many times in that span (an index page, the outbox's) is copied once.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Log pages (4 KB each) past which a checkpoint makes the log start over (16 MB).
pub const RESTART_FRAMES: i64 = 4096;

/// The checkpoint thread of a file store, stopped when dropped.
pub struct Checkpointer {
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

struct State {
    /// A commit since the last checkpoint.
    dirty: AtomicBool,
    closed: AtomicBool,
}

/// What one checkpoint did: `PRAGMA wal_checkpoint`'s three numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpointed {
    /// Whether it could not finish because another connection held a lock it needed.
    pub busy: bool,
    /// Pages in the log.
    pub log_frames: i64,
    /// Of those, pages copied into the database file.
    pub copied_frames: i64,
}

impl Checkpointer {
    /// Starts the thread on `conn`, a read-write connection to the store file of its own;
    /// `checkpointed` is called after each checkpoint that ran (a metric counts them).
    pub fn start(
        conn: Connection,
        checkpointed: impl Fn() + Send + 'static,
    ) -> std::io::Result<Checkpointer> {
        let state = Arc::new(State {
            dirty: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        let thread = {
            let state = Arc::clone(&state);
            std::thread::Builder::new()
                .name("sfwa-store-checkpoint".into())
                .spawn(move || run(&conn, &state, &checkpointed))?
        };
        Ok(Checkpointer {
            state,
            thread: Some(thread),
        })
    }

    /// Called by the writer after each COMMIT: wakes the thread only for the first commit since
    /// its last checkpoint, so a busy writer does not pay a wake-up per batch.
    pub fn committed(&self) {
        if !self.state.dirty.swap(true, Ordering::AcqRel) {
            if let Some(thread) = &self.thread {
                thread.thread().unpark();
            }
        }
    }
}

impl Drop for Checkpointer {
    /// Stops the thread and waits for it (it closes its connection); SQLite checkpoints what is
    /// left when the store's last connection closes.
    fn drop(&mut self) {
        self.state.closed.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// Waits for a commit, lets [`CHECKPOINT_EVERY`] pass since the last checkpoint, checkpoints;
/// until the store closes.
fn run(conn: &Connection, state: &State, checkpointed: &dyn Fn()) {
    let mut last = Instant::now();
    loop {
        while !state.dirty.load(Ordering::Acquire) {
            if state.closed.load(Ordering::Acquire) {
                return;
            }
            std::thread::park();
        }
        let due = last + CHECKPOINT_EVERY;
        while let Some(left) = due.checked_duration_since(Instant::now()) {
            if state.closed.load(Ordering::Acquire) {
                return;
            }
            std::thread::park_timeout(left);
        }
        state.dirty.store(false, Ordering::Release);
        match checkpoint(conn) {
            Ok(_) => checkpointed(),
            // The next commit tries again; the log only grows meanwhile.
            Err(error) => tracing::warn!(%error, "a store checkpoint failed"),
        }
        last = Instant::now();
    }
}

/// A passive checkpoint, followed by a restarting one when the log has grown past
/// [`RESTART_FRAMES`] (see the module docs).
pub fn checkpoint(conn: &Connection) -> rusqlite::Result<Checkpointed> {
    let passive = wal_checkpoint(conn, "PASSIVE")?;
    if passive.log_frames < RESTART_FRAMES {
        return Ok(passive);
    }
    wal_checkpoint(conn, "RESTART")
}

fn wal_checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<Checkpointed> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok(Checkpointed {
            busy: row.get::<_, i64>(0)? != 0,
            log_frames: row.get(1)?,
            copied_frames: row.get(2)?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store file in WAL mode after `setup`: its writing connection (never checkpointing on
    /// its own) and a second one to checkpoint with; the directory lives as long as the first.
    fn store_file(setup: &str) -> (tempfile::TempDir, Connection, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let writer = Connection::open(&path).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer.execute_batch(setup).unwrap();
        let checkpointer = Connection::open(&path).unwrap();
        (dir, writer, checkpointer)
    }

    #[test]
    fn a_log_grown_past_the_restart_size_starts_over_after_a_checkpoint() {
        let (_dir, writer, checkpointer) = store_file("CREATE TABLE t (x BLOB); BEGIN;");
        // About 6,000 pages of log, in one transaction.
        for _ in 0..6000 {
            writer
                .execute("INSERT INTO t VALUES (zeroblob(3000))", [])
                .unwrap();
        }
        writer.execute_batch("COMMIT;").unwrap();

        let done = checkpoint(&checkpointer).unwrap();

        assert!(done.log_frames > RESTART_FRAMES, "{done:?}");
        assert_eq!(done.copied_frames, done.log_frames, "{done:?}");
        assert!(!done.busy);
        writer.execute("INSERT INTO t VALUES (x'00')", []).unwrap();
        let after = wal_checkpoint(&checkpointer, "PASSIVE").unwrap();
        assert!(
            after.log_frames < 10,
            "the log did not start over: {after:?}"
        );
    }

    #[test]
    fn a_log_under_the_restart_size_is_copied_without_waiting_for_the_writer() {
        let (_dir, writer, checkpointer) =
            store_file("CREATE TABLE t (x); INSERT INTO t VALUES (1);");
        // The writer holds the write lock: a passive checkpoint still copies what is committed.
        writer
            .execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (2);")
            .unwrap();

        let done = checkpoint(&checkpointer).unwrap();

        assert!(done.log_frames > 0 && done.log_frames < RESTART_FRAMES);
        assert_eq!(done.copied_frames, done.log_frames);
        writer.execute_batch("COMMIT;").unwrap();
    }
}
