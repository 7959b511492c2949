//! Opening the store file, migrating it, and the async wrapper the rest of sfwa uses.
//!
//! Why these settings:
//! - **WAL**: readers never block the writer and a commit is one append to the log, so the
//!   webhook receiver can commit a batch before answering 200 without stalling the dispatcher.
//! - **`synchronous = FULL`**: a commit is on disk when `write` returns. "Durable before 200"
//!   (guarantee 2) must hold through a power cut, not only a process crash; under WAL this costs one
//!   fsync per commit — so concurrent writes share commits ([`Store`]'s group commit): one fsync
//!   per batch instead of one per message step.
//! - **Checkpoints beside the writer** ([`super::checkpoint`]): the writer's connection never
//!   copies the log into the file inside a COMMIT (`wal_autocheckpoint = 0`); a thread of its
//!   own does, so no write (and no webhook's 200) waits for a checkpoint's page writes and fsync.
//! - **`busy_timeout`**: another process briefly holding the file (a backup, `sqlite3`) makes us wait
//!   instead of failing; past the timeout the error says the file is locked.
//! - **foreign keys on**: so any later schema that relies on them is enforced.
//! - **`temp_store = MEMORY`**: each write runs in its own savepoint of a shared transaction, and
//!   SQLite keeps a savepoint's undo pages (the statement journal) in a temporary file by
//!   default — written for every write, never needed after a crash. In memory it costs no I/O
//!   (`subjournalPageIfRequired` was 5 % of the daemon's CPU under status webhooks).
//!
//! Migrations are SQL files embedded at compile time and numbered; `PRAGMA user_version` records the
//! last one applied. Each runs in its own transaction together with the version bump, so a failed
//! migration leaves the file at the previous version. A file from a newer sfwa is refused rather than
//! guessed at.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, Row, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use super::checkpoint::Checkpointer;
use super::error::StoreError;

/// How long a statement waits for another process's lock before failing with
/// [`StoreError::Locked`].
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One embedded migration.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
    /// The migration edits a table's definition in `sqlite_schema` (`PRAGMA writable_schema`)
    /// instead of running DDL, so nothing tells other connections the schema changed: the runner
    /// increments `PRAGMA schema_version` after it, as SQLite's documentation requires.
    pub rewrites_schema_text: bool,
}

/// Every migration, in order; versions are 1, 2, 3, … with no gaps (a test checks).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("migrations/0001_initial.sql"),
        rewrites_schema_text: false,
    },
    Migration {
        version: 2,
        name: "rate_limits_and_orphans",
        sql: include_str!("migrations/0002_rate_limits_and_orphans.sql"),
        rewrites_schema_text: false,
    },
    Migration {
        version: 3,
        name: "webhook_rejects",
        sql: include_str!("migrations/0003_webhook_rejects.sql"),
        rewrites_schema_text: false,
    },
    Migration {
        version: 4,
        name: "journal_by_customer",
        sql: include_str!("migrations/0004_journal_by_customer.sql"),
        rewrites_schema_text: false,
    },
    Migration {
        version: 5,
        name: "customer_identity",
        sql: include_str!("migrations/0005_customer_identity.sql"),
        rewrites_schema_text: false,
    },
    Migration {
        version: 6,
        name: "inbound_media",
        sql: include_str!("migrations/0006_inbound_media.sql"),
        rewrites_schema_text: false,
    },
    Migration {
        version: 7,
        name: "template_catalog",
        sql: include_str!("migrations/0007_template_catalog.sql"),
        rewrites_schema_text: false,
    },
    Migration {
        version: 8,
        name: "marketing_consent",
        sql: include_str!("migrations/0008_marketing_consent.sql"),
        rewrites_schema_text: false,
    },
    Migration {
        version: 9,
        name: "waiting_for_reply",
        sql: include_str!("migrations/0009_waiting_for_reply.sql"),
        rewrites_schema_text: false,
    },
    Migration {
        version: 10,
        name: "uploaded_media",
        sql: include_str!("migrations/0010_uploaded_media.sql"),
        rewrites_schema_text: false,
    },
    Migration {
        version: 11,
        name: "journal_retention_by_created_at",
        sql: include_str!("migrations/0011_journal_retention_by_created_at.sql"),
        rewrites_schema_text: false,
    },
    Migration {
        version: 12,
        name: "statuses_seen_on_the_journal",
        sql: include_str!("migrations/0012_statuses_seen_on_the_journal.sql"),
        rewrites_schema_text: false,
    },
    Migration {
        version: 13,
        name: "journal_state_check_without_a_lookup_table",
        sql: include_str!("migrations/0013_journal_state_check_without_a_lookup_table.sql"),
        rewrites_schema_text: true,
    },
];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// At most this many writes share one transaction: it bounds how long a batch holds the write lock
/// (and so how long the first caller of the batch waits) and how many callers one failed COMMIT
/// answers with an error.
pub const MAX_BATCH: usize = 256;

/// Read-only connections a file store keeps beside its writer, so reads never queue behind a
/// batch's fsync (WAL lets them read the last committed state meanwhile).
const READERS: usize = 2;

/// Prepared statements kept per connection: the hot paths (journal, outbox, dedupe, identity,
/// inbound mirror, savepoints) use a few dozen distinct ones; rusqlite's default of 16 would evict
/// them in turn and re-parse each on every message.
const STATEMENT_CACHE: usize = 128;

/// A handle on the store, cheap to clone.
///
/// **Group commit.** SQLite allows one writer at a time and, with `synchronous = FULL`, every
/// COMMIT is an fsync. So one writer thread owns the writing connection: [`Store::write`] queues
/// its closure and waits; the writer takes everything queued (up to [`MAX_BATCH`]), opens ONE
/// `IMMEDIATE` transaction, runs each closure in its own savepoint (an `Err` or a panic rolls back
/// that closure alone and is that caller's answer), COMMITs once, and only then answers every
/// caller. Concurrent writers (webhook POSTs, journal transitions, outbox inserts) therefore share
/// one fsync, while each caller still hears back only once its data is durable (guarantees 1
/// and 2 are unchanged). If the COMMIT itself fails, every caller of the batch gets the error.
/// With a [`Linger`] ([`Store::open_lingering`]) a busy writer waits that long before taking its
/// batch — always, or only while a send backlog drains — so more writes share each COMMIT
/// ([`linger_before_commit`]).
///
/// **Reads** run on blocking threads on their own read-only connections (file stores), each in a
/// deferred transaction so a read sees one committed state even while a batch commits beside it.
/// An in-memory store has one connection, shared by the writer and the reads.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

/// What every clone of a [`Store`] shares; dropping the last one stops the writer thread.
struct Shared {
    /// The writer's queue; `None` only while dropping.
    jobs: Option<mpsc::Sender<Job>>,
    /// The writing connection; the writer thread holds it for one batch at a time.
    conn: Arc<Mutex<Connection>>,
    /// Read-only connections; empty for an in-memory store (reads then use `conn`).
    readers: Vec<Mutex<Connection>>,
    /// Which reader a read waits for when all are busy.
    next_reader: AtomicUsize,
    /// How long the writer lingers before each COMMIT, and whether a backlog drains now.
    lingering: Arc<Lingering>,
    counts: Arc<CommitCounts>,
    writer: Option<std::thread::JoinHandle<()>>,
}

/// How the writer has done since the store opened (`sfwa_store_*` metrics, tests).
#[derive(Debug, Default)]
pub struct CommitCounts {
    /// Transactions committed (each one fsync under WAL with `synchronous = FULL`).
    pub commits: AtomicU64,
    /// `write` calls run (whatever their outcome).
    pub writes: AtomicU64,
    /// Checkpoints run by a file store's checkpoint thread ([`super::checkpoint`]).
    pub checkpoints: AtomicU64,
}

/// A queued write: given its batch's transaction (or why the transaction could not begin), runs
/// the caller's closure in its own savepoint and returns how to answer the caller once the
/// batch's COMMIT is known.
type Job = Box<dyn FnOnce(Result<&Transaction<'_>, &rusqlite::Error>) -> Answer + Send>;
/// Answers one caller: `None` when the batch committed, else the COMMIT's error.
type Answer = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Drop for Shared {
    /// Closes the queue and waits for the writer to finish what was queued, so the file is
    /// closed (and its write lock free) once the last handle is gone.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(writer) = self.writer.take() {
            // A queued closure that owned the last handle is dropped on the writer thread itself.
            if writer.thread().id() != std::thread::current().id() {
                let _ = writer.join();
            }
        }
    }
}

impl Store {
    /// Opens (creating if needed) the store file at `path` and its parent directory, switches it to
    /// WAL and applies pending migrations. Commits as soon as a write is queued (no
    /// [`Linger`], even while a backlog drains).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_lingering(path, Linger::default())
    }

    /// [`open`](Store::open), with the writer waiting for more writes before each COMMIT while
    /// the store is busy, as `linger` says (`store.commit_linger`, `store.backlog_commit_linger`;
    /// see [`linger_before_commit`]).
    #[tracing::instrument(skip_all, fields(path = %path.display()))]
    pub fn open_lingering(path: &Path, linger: Linger) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let open_error = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_error)?;
        // The first statements to touch the file are where "not a database" or a lock shows up.
        let mode = configure(&conn)
            .and_then(|()| {
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| {
                    row.get::<_, String>(0)
                })
            })
            .map_err(|e| match StoreError::from(e) {
                StoreError::Sqlite(source) => open_error(source),
                locked => locked,
            })?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(journal_mode = %mode, "store file system does not support WAL; continuing without it");
        }
        migrate(&mut conn)?;
        let counts = Arc::new(CommitCounts::default());
        let (readers, checkpointer) = if mode.eq_ignore_ascii_case("wal") {
            let readers = open_readers(path).map_err(|e| match StoreError::from(e) {
                StoreError::Sqlite(source) => open_error(source),
                locked => locked,
            })?;
            (readers, Some(start_checkpointer(&conn, path, &counts)?))
        } else {
            // Without WAL a reader would block the writer: everything goes through one connection.
            (Vec::new(), None)
        };
        Store::from_connections(conn, readers, counts, checkpointer, linger)
    }

    /// A private in-memory store (tests, `sfwa demo`).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let mut conn = Connection::open_in_memory()?;
        configure(&conn)?;
        migrate(&mut conn)?;
        let counts = Arc::new(CommitCounts::default());
        Store::from_connections(conn, Vec::new(), counts, None, Linger::default())
    }

    fn from_connections(
        conn: Connection,
        readers: Vec<Connection>,
        counts: Arc<CommitCounts>,
        checkpointer: Option<Checkpointer>,
        linger: Linger,
    ) -> Result<Store, StoreError> {
        let conn = Arc::new(Mutex::new(conn));
        let lingering = Arc::new(Lingering::new(linger, Instant::now()));
        let (jobs, queue) = mpsc::channel();
        let writer = {
            let (conn, counts) = (Arc::clone(&conn), Arc::clone(&counts));
            let lingering = Arc::clone(&lingering);
            std::thread::Builder::new()
                .name("sfwa-store-writer".into())
                .spawn(move || {
                    let writer = Writer {
                        conn: &conn,
                        counts: &counts,
                        checkpointer: checkpointer.as_ref(),
                        lingering: &lingering,
                    };
                    writer.run(&queue);
                })
                .map_err(|e| StoreError::Worker(format!("cannot start the store writer: {e}")))?
        };
        Ok(Store {
            shared: Arc::new(Shared {
                jobs: Some(jobs),
                conn,
                readers: readers.into_iter().map(Mutex::new).collect(),
                next_reader: AtomicUsize::new(0),
                lingering,
                counts,
                writer: Some(writer),
            }),
        })
    }

    /// Runs `f` in a transaction shared with the other writes queued at the same time (see
    /// [`Store`]); answers once that transaction committed. If `f` returns `Err` (or panics) its
    /// changes alone are rolled back and the error is the answer. The transaction is `IMMEDIATE`:
    /// it takes the write lock up front, so it cannot fail half-way with "busy" when upgrading
    /// from a read. The write is queued when this is called, not when the future is first polled.
    pub fn write<T, F>(&self, f: F) -> impl Future<Output = Result<T, StoreError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&Transaction) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |tx| run_job(tx, f, answer));
        let queued = self
            .shared
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok());
        async move {
            if !queued {
                return Err(StoreError::Worker("the store writer has stopped".into()));
            }
            answered.await.map_err(|_| {
                StoreError::Worker("the store writer stopped before answering".into())
            })?
        }
    }

    /// Runs `f` over `items` in writes of at most `per_write` items, one after another: each is
    /// answered before the next is queued, so other writes run between them. For work whose items
    /// stand alone (each decided or checked by itself), so that no one write holds the writer,
    /// which every webhook's answer waits for, for long. The answers of the writes that committed,
    /// in order, and how it ended: at an error the writes before it stay committed and none after
    /// it runs.
    pub async fn write_in_chunks<I, T, F>(
        &self,
        items: Vec<I>,
        per_write: usize,
        f: F,
    ) -> (Vec<T>, Result<(), StoreError>)
    where
        I: Send + Sync + 'static,
        T: Send + 'static,
        F: Fn(&Transaction, &[I]) -> Result<T, StoreError> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let mut answers = Vec::new();
        // Taken from the front as they go: each item is moved once, not once per chunk before it.
        let mut items = items.into_iter();
        loop {
            let these: Vec<I> = items.by_ref().take(per_write.max(1)).collect();
            if these.is_empty() {
                break;
            }
            let f = Arc::clone(&f);
            match self.write(move |tx| f(tx, &these)).await {
                Ok(answer) => answers.push(answer),
                Err(error) => return (answers, Err(error)),
            }
        }
        (answers, Ok(()))
    }

    /// Runs `f` on a blocking thread against a read connection, in a deferred transaction (one
    /// consistent committed state), outside any write.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        run_blocking(move || in_read_transaction(&shared.reader(), f)).await
    }

    /// A read by key (a few indexed rows: a customer's identity, their last inbound message, a
    /// template, a consent choice): run right here on the caller's thread when a read connection
    /// is free this moment, else as [`Store::read`]. The send path asks several such reads per
    /// message; each handed to a blocking thread cost two thread wake-ups for a few microseconds
    /// of SQLite work (docs/performance.md, eleventh measurement). Not for scans: a read that can
    /// touch many rows goes through [`Store::read`].
    pub async fn lookup<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let Some(conn) = self.shared.free_reader() else {
            return self.read(f).await;
        };
        // A panic is the caller's error, as it is from a blocking thread.
        catch_unwind(AssertUnwindSafe(|| in_read_transaction(&conn, f))).unwrap_or_else(|panic| {
            Err(StoreError::Worker(format!(
                "a store read panicked: {}",
                panic_message(panic.as_ref())
            )))
        })
    }

    /// A send backlog drains now (a number's sends wait for their pace): for the next
    /// [`BACKLOG_SPELL`] the writer lingers [`Linger::backlog`] before each COMMIT while busy.
    pub fn backlog_draining(&self) {
        self.shared.lingering.draining_seen(Instant::now());
    }

    /// Transactions committed and writes run since the store opened.
    pub fn commit_counts(&self) -> &CommitCounts {
        &self.shared.counts
    }
}

/// `f` in a deferred transaction on `conn`: one consistent committed state. Its BEGIN and COMMIT
/// are cached statements (the send path's reads by key run here; parsing both each time was
/// 2.4 % of the runtime threads' CPU in a backlog, docs/performance.md, twelfth measurement); on
/// an error or a panic in `f` the transaction is rolled back.
fn in_read_transaction<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.prepare_cached("BEGIN DEFERRED")?.execute([])?;
    let open = ReadTransaction(conn);
    let value = f(open.0)?;
    open.0.prepare_cached("COMMIT")?.execute([])?;
    Ok(value)
}

/// A read transaction begun by [`in_read_transaction`]: rolled back when dropped before its
/// COMMIT (an error or a panic in the read), so the connection goes back to its pool idle.
struct ReadTransaction<'a>(&'a Connection);

impl Drop for ReadTransaction<'_> {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            let _ = self
                .0
                .prepare_cached("ROLLBACK")
                .and_then(|mut rollback| rollback.execute([]));
        }
    }
}

impl Shared {
    /// A free read connection, else the next one in turn (waiting for it); the writing connection
    /// for an in-memory store.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        if let Some(conn) = self.free_reader() {
            return conn;
        }
        if self.readers.is_empty() {
            return lock(&self.conn);
        }
        let turn = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        lock(&self.readers[turn])
    }

    /// A read connection no one holds this moment (the writing connection for an in-memory
    /// store, when the writer is not in a batch), without waiting.
    fn free_reader(&self) -> Option<MutexGuard<'_, Connection>> {
        if self.readers.is_empty() {
            return try_lock(&self.conn);
        }
        self.readers.iter().find_map(try_lock)
    }
}

/// What the writer thread works with.
struct Writer<'a> {
    conn: &'a Mutex<Connection>,
    counts: &'a CommitCounts,
    /// A file store's checkpoint thread, told of each COMMIT; stopped when the writer ends.
    checkpointer: Option<&'a Checkpointer>,
    lingering: &'a Lingering,
}

impl Writer<'_> {
    /// Takes what is queued, one batch at a time, until every handle is dropped. While busy it
    /// first lets its linger pass ([`Lingering::linger`]), so the writes queued meanwhile share
    /// the COMMIT.
    fn run(&self, queue: &mpsc::Receiver<Job>) {
        let mut last_commit = None;
        while let Ok(first) = queue.recv() {
            let now = Instant::now();
            let wait = linger_before_commit(last_commit, now, self.lingering.linger(now));
            if !wait.is_zero() {
                // A plain sleep, not a wait on the queue: a thread woken by every arriving write
                // would spend on wake-ups what the shared COMMIT saves.
                std::thread::sleep(wait);
            }
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let full = batch.len() == MAX_BATCH;
            commit_batch(&mut lock(self.conn), batch, self.counts);
            if let Some(checkpointer) = self.checkpointer {
                checkpointer.committed();
            }
            last_commit = Some(Committed {
                at: Instant::now(),
                full,
            });
        }
    }
}

/// How long the writer waits for more writes before each COMMIT while the store is busy
/// ([`linger_before_commit`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Linger {
    /// Always (`store.commit_linger`).
    pub always: Duration,
    /// While a send backlog drains ([`Store::backlog_draining`], `store.backlog_commit_linger`):
    /// sends then wait for their number's pace, so writes that wait a little longer cost no
    /// throughput, and a backlog's steady stream of writes shares fewer COMMITs.
    pub backlog: Duration,
}

/// How long after the last sign of a draining backlog the writer goes on lingering for it.
pub const BACKLOG_SPELL: Duration = Duration::from_secs(1);

/// The writer's [`Linger`], and until when a backlog is known to drain.
#[derive(Debug)]
struct Lingering {
    linger: Linger,
    /// What `draining_until` counts from.
    epoch: Instant,
    /// Nanoseconds after `epoch` until which a backlog drains (0: never since opening).
    draining_until: AtomicU64,
}

impl Lingering {
    fn new(linger: Linger, epoch: Instant) -> Lingering {
        Lingering {
            linger,
            epoch,
            draining_until: AtomicU64::new(0),
        }
    }

    /// A backlog was seen draining at `now`: it counts as draining for [`BACKLOG_SPELL`] more.
    fn draining_seen(&self, now: Instant) {
        if self.linger.backlog.is_zero() {
            return;
        }
        // Already marked past `now` + half a spell: no write to the shared word per send.
        if self.draining_until.load(Ordering::Relaxed) > self.nanos(now + BACKLOG_SPELL / 2) {
            return;
        }
        self.draining_until
            .fetch_max(self.nanos(now + BACKLOG_SPELL), Ordering::Relaxed);
    }

    /// The linger at `now`: [`Linger::always`], or the longer backlog linger while one drains.
    fn linger(&self, now: Instant) -> Duration {
        if self.nanos(now) < self.draining_until.load(Ordering::Relaxed) {
            self.linger.always.max(self.linger.backlog)
        } else {
            self.linger.always
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Hands the log's checkpoints to their own thread and connection ([`super::checkpoint`]): the
/// writer's connection stops checkpointing inside its commits.
fn start_checkpointer(
    writer: &Connection,
    path: &Path,
    counts: &Arc<CommitCounts>,
) -> Result<Checkpointer, StoreError> {
    writer.pragma_update(None, "wal_autocheckpoint", 0)?;
    let conn = Connection::open(path)?;
    configure(&conn)?;
    let counts = Arc::clone(counts);
    Checkpointer::start(conn, move || {
        counts.checkpoints.fetch_add(1, Ordering::Relaxed);
    })
    .map_err(|e| StoreError::Worker(format!("cannot start the store checkpointer: {e}")))
}

/// The writer's last COMMIT: when it ended, and whether its batch was full ([`MAX_BATCH`]).
#[derive(Clone, Copy, Debug)]
pub struct Committed {
    pub at: Instant,
    pub full: bool,
}

/// How long the writer waits, once a write is queued, before it takes the batch and commits:
/// `commit_linger` while the store is busy — the last COMMIT ended less than `commit_linger`
/// before `now` — else nothing, so a write after a quiet spell commits at once. Nothing either
/// after a full batch: more writes were queued than one batch takes, so the next batch is full
/// already and waiting would only cap the writes per second (at [`MAX_BATCH`] per linger).
///
/// Each COMMIT is an fsync and a wake-up of the writer thread; under a steady stream of writes
/// (a send backlog: two journal writes per send, a write per status webhook) committing at once
/// makes batches of a few writes and spends most of the writer's CPU on the COMMIT itself. A
/// linger of a few ms makes batches of dozens (`sfwa bench backlog`: docs/performance.md). Its
/// price is latency: each write, and so each webhook's 200, waits up to that much longer; a
/// caller that waits for its answer before making the next write (a sender with few connections)
/// goes slower by as much.
pub fn linger_before_commit(
    last_commit: Option<Committed>,
    now: Instant,
    commit_linger: Duration,
) -> Duration {
    match last_commit {
        Some(Committed { at, full: false })
            if now.saturating_duration_since(at) < commit_linger =>
        {
            commit_linger
        }
        _ => Duration::ZERO,
    }
}

/// One transaction for the whole batch, one savepoint per write, one COMMIT, then the answers.
fn commit_batch(conn: &mut Connection, batch: Vec<Job>, counts: &CommitCounts) {
    counts
        .writes
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => {
            for job in batch {
                job(Err(&error))(None);
            }
            return;
        }
    };
    let answers: Vec<Answer> = batch.into_iter().map(|job| job(Ok(&tx))).collect();
    let committed = tx.commit();
    if committed.is_ok() {
        counts.commits.fetch_add(1, Ordering::Relaxed);
    } else {
        tracing::warn!(
            "a store commit failed; every write of its batch is answered with the error"
        );
    }
    for answer in answers {
        answer(committed.as_ref().err());
    }
}

/// Runs one caller's closure in its savepoint of the batch's transaction and holds its result
/// until the COMMIT is known.
fn run_job<T, F>(
    tx: Result<&Transaction<'_>, &rusqlite::Error>,
    f: F,
    answer: oneshot::Sender<Result<T, StoreError>>,
) -> Answer
where
    T: Send + 'static,
    F: FnOnce(&Transaction) -> Result<T, StoreError>,
{
    let result = match tx {
        Ok(tx) => in_savepoint(tx, f),
        Err(error) => Err(copy_error(error)),
    };
    Box::new(move |commit_error| {
        let result = match commit_error {
            None => result,
            Some(error) => Err(copy_error(error)),
        };
        // The caller may have stopped waiting (its task was cancelled); what it wrote stands.
        let _ = answer.send(result);
    })
}

/// `f` inside `SAVEPOINT … RELEASE`, rolled back to the savepoint on `Err` or panic, so a failing
/// write never undoes its neighbours in the batch.
fn in_savepoint<T>(
    tx: &Transaction<'_>,
    f: impl FnOnce(&Transaction) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    // SQLite rolls a whole transaction back on some errors (disk full, I/O): the batch is lost
    // and its COMMIT will fail; running more writes now would commit them one by one instead.
    if tx.is_autocommit() {
        return Err(StoreError::Worker(
            "the shared transaction was rolled back by an earlier error".into(),
        ));
    }
    WRITE.begin(tx)?;
    let outcome = catch_unwind(AssertUnwindSafe(|| f(tx)));
    let kept = matches!(outcome, Ok(Ok(_)));
    WRITE.end(tx, kept)?;
    outcome.unwrap_or_else(|panic| {
        Err(StoreError::Worker(format!(
            "a store write panicked and was rolled back: {}",
            panic_message(panic.as_ref())
        )))
    })
}

/// A named savepoint's three statements, run as cached prepared statements (they run for every
/// write, and for every event of a webhook POST).
pub struct Savepoint {
    pub begin: &'static str,
    pub rollback_to: &'static str,
    pub release: &'static str,
}

/// Each write's savepoint inside its batch's transaction.
const WRITE: Savepoint = Savepoint {
    begin: "SAVEPOINT sfwa_write",
    rollback_to: "ROLLBACK TO sfwa_write",
    release: "RELEASE sfwa_write",
};

impl Savepoint {
    pub fn begin(&self, conn: &Connection) -> rusqlite::Result<()> {
        conn.prepare_cached(self.begin)?.execute([])?;
        Ok(())
    }

    /// Ends the savepoint: keeps its changes, or (`kept` false) rolls them back first.
    pub fn end(&self, conn: &Connection, kept: bool) -> rusqlite::Result<()> {
        if !kept {
            conn.prepare_cached(self.rollback_to)?.execute([])?;
        }
        conn.prepare_cached(self.release)?.execute([])?;
        Ok(())
    }
}

pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

/// The same error again for each caller of a batch (rusqlite's error is not `Clone`); busy and
/// locked stay [`StoreError::Locked`].
fn copy_error(error: &rusqlite::Error) -> StoreError {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => {
            StoreError::from(rusqlite::Error::SqliteFailure(*code, message.clone()))
        }
        other => StoreError::Worker(format!("the store transaction failed: {other}")),
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|join| StoreError::Worker(join.to_string()))?
}

/// A panic inside a closure poisons the mutex, but the connection is still sound: the transaction
/// was rolled back when it was dropped during unwinding. So poisoning is ignored.
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// [`lock`] if no one holds `conn` now.
fn try_lock(conn: &Mutex<Connection>) -> Option<MutexGuard<'_, Connection>> {
    match conn.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// The read-only connections of a WAL store file.
fn open_readers(path: &Path) -> rusqlite::Result<Vec<Connection>> {
    (0..READERS)
        .map(|_| {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI;
            let conn = Connection::open_with_flags(path, flags)?;
            configure(&conn)?;
            Ok(conn)
        })
        .collect()
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// Brings the schema up to [`latest_version`]; a no-op on an up-to-date file.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    apply_migrations(conn, MIGRATIONS)
}

fn apply_migrations(conn: &mut Connection, migrations: &[Migration]) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let supported = migrations.last().map_or(0, |m| m.version);
    if current > supported {
        return Err(StoreError::NewerSchema {
            found: current,
            supported,
        });
    }
    for migration in migrations.iter().filter(|m| m.version > current) {
        let from = migration.version - 1;
        let failed = |source| StoreError::Migration {
            version: migration.version,
            name: migration.name,
            from,
            source,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        tx.execute_batch(migration.sql).map_err(failed)?;
        if migration.rewrites_schema_text {
            let schema_version: i64 = tx
                .pragma_query_value(None, "schema_version", |row| row.get(0))
                .map_err(failed)?;
            tx.pragma_update(None, "schema_version", schema_version + 1)
                .map_err(failed)?;
        }
        tx.pragma_update(None, "user_version", migration.version)
            .map_err(failed)?;
        tx.commit().map_err(failed)?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "store migrated"
        );
    }
    Ok(())
}

/// Runs a retention `DELETE` whose `?1` is a cutoff time and `?2` the most rows it may delete
/// (`… WHERE key IN (SELECT key … LIMIT ?2)`); how many it deleted.
pub(crate) fn delete_before(
    conn: &Connection,
    sql: &str,
    cutoff: DateTime<Utc>,
    limit: usize,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(sql)?
        .execute(rusqlite::params![to_millis(cutoff), limit_param(limit)])?)
}

/// SQLite's LIMIT takes an i64; anything larger means "no limit".
pub(crate) fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The stored form of a timestamp: unix milliseconds, UTC.
pub fn to_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// The inverse of [`to_millis`].
pub fn from_millis(millis: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(millis)
}

/// Reads a timestamp column inside a row-mapping closure.
pub(crate) fn time_column(row: &Row<'_>, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    let millis: i64 = row.get(index)?;
    from_millis(millis).ok_or(rusqlite::Error::IntegralValueOutOfRange(index, millis))
}

/// Reads a nullable timestamp column inside a row-mapping closure.
pub(crate) fn optional_time_column(
    row: &Row<'_>,
    index: usize,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get::<_, Option<i64>>(index)? {
        None => Ok(None),
        Some(millis) => from_millis(millis)
            .map(Some)
            .ok_or(rusqlite::Error::IntegralValueOutOfRange(index, millis)),
    }
}

/// A migrated in-memory connection for the unit tests of the store's modules.
#[cfg(test)]
pub(crate) fn test_connection() -> Connection {
    let mut conn = Connection::open_in_memory().expect("in-memory SQLite");
    configure(&conn).expect("configure");
    migrate(&mut conn).expect("migrate");
    conn
}

/// SQLite's plan for `sql` on `conn`, one step a line (`EXPLAIN QUERY PLAN`'s detail column), for
/// the tests that a query uses its index.
#[cfg(test)]
pub(crate) fn query_plan(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> String {
    let steps: Vec<String> = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .expect("a query to explain")
        .query_map(params, |row| row.get::<_, String>(3))
        .expect("its plan")
        .collect::<Result<_, _>>()
        .expect("its plan's steps");
    steps.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_versions_are_contiguous_from_one() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, index as i64 + 1, "{}", migration.name);
        }
    }

    #[test]
    fn reopening_a_file_store_is_idempotent_and_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/sfwa.db");
        let first = Store::open(&path).unwrap();
        let conn = lock(&first.shared.conn);
        super::super::cursors::set(&conn, "replay", "42", Utc::now()).unwrap();
        drop(conn);
        drop(first);

        let second = Store::open(&path).unwrap();
        let conn = lock(&second.shared.conn);
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, latest_version());
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(
            super::super::cursors::get(&conn, "replay").unwrap(),
            Some("42".to_string())
        );
    }

    #[test]
    fn a_store_written_by_a_newer_sfwa_is_refused_with_both_versions_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sfwa.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", latest_version() + 7)
            .unwrap();
        drop(conn);

        let error = Store::open(&path).unwrap_err();

        assert!(
            matches!(error, StoreError::NewerSchema { found, supported } if found == latest_version() + 7 && supported == latest_version())
        );
        assert!(error.to_string().contains("newer sfwa"), "{error}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(
            &path,
            "this is not sqlite, just some text long enough to have a header",
        )
        .unwrap();

        let error = Store::open(&path).unwrap_err();

        assert!(error.to_string().contains("notes.txt"), "{error}");
    }

    #[test]
    fn a_failing_migration_leaves_the_store_at_the_previous_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        let migrations = [
            Migration {
                version: 1,
                name: "good",
                sql: "CREATE TABLE a (x INTEGER);",
                rewrites_schema_text: false,
            },
            Migration {
                version: 2,
                name: "bad",
                sql: "CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1);",
                rewrites_schema_text: false,
            },
        ];

        let error = apply_migrations(&mut conn, &migrations).unwrap_err();

        assert!(
            matches!(
                error,
                StoreError::Migration {
                    version: 2,
                    from: 1,
                    ..
                }
            ),
            "{error}"
        );
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, 1);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'b'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(
            tables, 0,
            "the failed migration's first statement was rolled back"
        );
    }

    fn insert_journal_row(
        conn: &Connection,
        record_id: &str,
        state: &str,
    ) -> rusqlite::Result<usize> {
        conn.execute(
            "INSERT INTO journal (record_id, state, created_at, updated_at) VALUES (?1, ?2, 1, 1)",
            [record_id, state],
        )
    }

    fn assert_state_refused(conn: &Connection, record_id: &str, state: &str) {
        let error = insert_journal_row(conn, record_id, state).unwrap_err();
        assert!(
            error.to_string().contains("CHECK constraint failed"),
            "{error}"
        );
    }

    fn journal_definition(conn: &Connection) -> String {
        conn.query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'journal'",
            [],
            |row| row.get(0),
        )
        .unwrap()
    }

    #[test]
    fn writing_a_journal_state_checks_it_without_building_a_lookup_table() {
        let conn = test_connection();

        let definition = journal_definition(&conn);
        assert!(!definition.contains("state IN ("), "{definition}");
        let program: Vec<String> = conn
            .prepare("EXPLAIN UPDATE journal SET state = ?1 WHERE rowid = ?2")
            .unwrap()
            .query_map(rusqlite::params!["sent", 1], |row| row.get(1))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(program.iter().any(|op| op == "Halt"), "{program:?}");
        assert!(
            !program.iter().any(|op| op == "OpenEphemeral"),
            "{program:?}"
        );
    }

    #[test]
    fn the_journal_still_accepts_exactly_the_six_states() {
        let conn = test_connection();

        for state in ["claimed", "sending", "sent", "failed", "delivered", "read"] {
            insert_journal_row(&conn, state, state).unwrap();
        }
        for state in ["queued", "Sent", ""] {
            assert_state_refused(&conn, &format!("bad {state}"), state);
        }
    }

    #[test]
    fn a_store_at_schema_12_keeps_its_rows_and_tells_other_connections_its_check_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let mut conn = Connection::open(&path).unwrap();
        apply_migrations(&mut conn, &MIGRATIONS[..12]).unwrap();
        insert_journal_row(&conn, "a005g00002BLnMZAA1", "delivered").unwrap();
        let other = Connection::open(&path).unwrap();
        assert!(journal_definition(&other).contains("state IN ("));
        let schema_version = |conn: &Connection| -> i64 {
            conn.pragma_query_value(None, "schema_version", |row| row.get(0))
                .unwrap()
        };
        let before = schema_version(&other);

        migrate(&mut conn).unwrap();

        assert!(schema_version(&other) > before);
        assert!(!journal_definition(&other).contains("state IN ("));
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        let state: String = other
            .query_row(
                "SELECT state FROM journal WHERE record_id = 'a005g00002BLnMZAA1'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(state, "delivered");
        assert_state_refused(&other, "a005g00002BLnMaAAL", "queued");
    }

    #[test]
    fn a_file_held_by_another_process_is_reported_as_locked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sfwa.db");
        drop(Store::open(&path).unwrap());
        let holder = Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let other = Connection::open(&path).unwrap();
        other.busy_timeout(Duration::ZERO).unwrap();

        let error = StoreError::from(
            other
                .execute_batch("BEGIN IMMEDIATE")
                .expect_err("the file is locked"),
        );

        assert!(matches!(error, StoreError::Locked(_)));
        assert!(
            error
                .to_string()
                .starts_with("database is locked by another process"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_webhook_batch_commits_dedupe_status_mirror_and_write_back_together() {
        use crate::domain::status::MessageStatus;
        use crate::store::{dedupe, inbound, journal, outbox};
        use std::str::FromStr;
        let store = Store::open_in_memory().unwrap();
        let now = Utc::now();
        let wamid = || crate::domain::ids::Wamid::from_str("wamid.A").unwrap();
        store
            .write(move |tx| {
                journal::claim(tx, &"a015g00000AbCdEAAV".parse().unwrap(), now)?;
                journal::mark_sending(
                    tx,
                    &"a015g00000AbCdEAAV".parse().unwrap(),
                    "PN1",
                    "15550001",
                    now,
                )?;
                journal::mark_sent(tx, &"a015g00000AbCdEAAV".parse().unwrap(), &wamid(), now)
            })
            .await
            .unwrap();

        let batch = move |tx: &Transaction| -> Result<bool, StoreError> {
            if !dedupe::first_seen(tx, "status:wamid.A:delivered", now)? {
                return Ok(false);
            }
            let applied =
                journal::apply_status(tx, &wamid(), None, MessageStatus::Delivered, now, now)?;
            if let journal::StatusApplied::Applied { record_id, .. } = applied {
                let mut fields = serde_json::Map::new();
                fields.insert("Status__c".into(), "Delivered".into());
                outbox::enqueue(tx, "WhatsApp_Message__c", record_id.as_str(), &fields, now)?;
            }
            let (number, customer) = ("1".parse().unwrap(), "15550001".parse().unwrap());
            inbound::record_inbound(tx, &number, &customer, now)?;
            Ok(true)
        };
        let first = store.write(batch).await.unwrap();
        let redelivery = store.write(batch).await.unwrap();

        assert!(first);
        assert!(!redelivery);
        let depth = store.read(outbox::depth).await.unwrap();
        assert_eq!(depth, 1);
    }

    #[tokio::test]
    async fn write_rolls_back_everything_when_the_closure_fails() {
        let store = Store::open_in_memory().unwrap();
        let now = Utc::now();

        let result = store
            .write(move |tx| {
                super::super::cursors::set(tx, "replay", "1", now)?;
                Err::<(), _>(StoreError::Worker("simulated failure".into()))
            })
            .await;

        assert!(result.is_err());
        let value = store
            .read(|conn| super::super::cursors::get(conn, "replay"))
            .await
            .unwrap();
        assert_eq!(value, None);
    }

    #[tokio::test]
    async fn write_commits_when_the_closure_succeeds() {
        let store = Store::open_in_memory().unwrap();
        let now = Utc::now();

        store
            .write(move |tx| super::super::cursors::set(tx, "replay", "7", now))
            .await
            .unwrap();

        let value = store
            .read(|conn| super::super::cursors::get(conn, "replay"))
            .await
            .unwrap();
        assert_eq!(value.as_deref(), Some("7"));
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn the_backlog_linger_applies_only_for_a_spell_after_a_backlog_is_seen_and_the_longer_wins() {
        let epoch = Instant::now();
        let lingering = Lingering::new(
            Linger {
                always: ms(1),
                backlog: ms(4),
            },
            epoch,
        );
        assert_eq!(lingering.linger(epoch), ms(1), "no backlog seen yet");

        lingering.draining_seen(epoch);

        assert_eq!(lingering.linger(epoch + BACKLOG_SPELL / 2), ms(4));
        assert_eq!(
            lingering.linger(epoch + BACKLOG_SPELL),
            ms(1),
            "the spell is over"
        );
    }

    #[test]
    fn a_backlog_seen_again_keeps_the_linger_a_spell_past_the_last_sighting() {
        let epoch = Instant::now();
        let lingering = Lingering::new(
            Linger {
                always: Duration::ZERO,
                backlog: ms(4),
            },
            epoch,
        );
        lingering.draining_seen(epoch);
        let later = epoch + BACKLOG_SPELL * 3 / 4;

        lingering.draining_seen(later);

        assert_eq!(lingering.linger(epoch + BACKLOG_SPELL * 3 / 2), ms(4));
        assert_eq!(lingering.linger(later + BACKLOG_SPELL), Duration::ZERO);
    }

    #[test]
    fn with_no_backlog_linger_a_draining_backlog_changes_nothing() {
        let epoch = Instant::now();
        let lingering = Lingering::new(Linger::default(), epoch);

        lingering.draining_seen(epoch);

        assert_eq!(lingering.linger(epoch), Duration::ZERO);
    }

    /// A lookup of the "replay" cursor that also says which thread ran it.
    fn looked_up(
        store: &Store,
    ) -> impl Future<Output = Result<(Option<String>, std::thread::ThreadId), StoreError>> + '_
    {
        store.lookup(|conn| {
            let value = super::super::cursors::get(conn, "replay")?;
            Ok((value, std::thread::current().id()))
        })
    }

    #[tokio::test]
    async fn a_lookup_runs_on_the_callers_thread_while_a_reader_is_free_and_sees_the_last_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sfwa.db")).unwrap();
        store
            .write(|tx| super::super::cursors::set(tx, "replay", "7", Utc::now()))
            .await
            .unwrap();

        let (value, thread) = looked_up(&store).await.unwrap();

        assert_eq!(value.as_deref(), Some("7"));
        assert_eq!(thread, std::thread::current().id());
    }

    #[tokio::test]
    async fn a_lookup_with_every_reader_busy_waits_for_one_on_a_blocking_thread() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sfwa.db")).unwrap();
        let held: Vec<_> = store.shared.readers.iter().map(lock).collect();
        assert!(!held.is_empty(), "a file store has read connections");

        let mut lookup = std::pin::pin!(looked_up(&store));
        assert!(
            futures_util::poll!(lookup.as_mut()).is_pending(),
            "no reader is free: the lookup waits"
        );
        drop(held);
        let (value, thread) = lookup.await.unwrap();

        assert_eq!(value, None);
        assert_ne!(thread, std::thread::current().id());
    }

    #[tokio::test]
    async fn a_read_that_fails_or_panics_is_rolled_back_and_its_connection_reads_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sfwa.db")).unwrap();

        let failed = store
            .lookup(|_| Err::<(), _>(StoreError::Worker("a failing read".into())))
            .await;
        let panicked = store
            .lookup(|_| -> Result<(), StoreError> { panic!("a read that panics") })
            .await;

        assert!(failed.is_err());
        assert!(matches!(panicked, Err(StoreError::Worker(message)) if message.contains("panics")));
        for reader in &store.shared.readers {
            assert!(lock(reader).is_autocommit(), "no transaction left open");
        }
        store
            .write(|tx| super::super::cursors::set(tx, "replay", "8", Utc::now()))
            .await
            .unwrap();
        let (value, _) = looked_up(&store).await.unwrap();
        assert_eq!(
            value.as_deref(),
            Some("8"),
            "the readers see the next commit"
        );
    }

    /// Holds the writer inside a first write until `release` is sent, so the writes queued
    /// meanwhile form the next batch; answers once the writer is inside.
    fn hold_writer(
        store: &Store,
    ) -> (
        std::sync::mpsc::Sender<()>,
        impl Future<Output = Result<(), StoreError>>,
    ) {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (inside, entered) = std::sync::mpsc::channel();
        let gate = store.write(move |_| {
            inside.send(()).ok();
            held.recv().ok();
            Ok(())
        });
        entered.recv().expect("the writer runs the gate");
        (release, gate)
    }

    fn set_cursor(
        store: &Store,
        name: &'static str,
    ) -> impl Future<Output = Result<(), StoreError>> {
        store.write(move |tx| super::super::cursors::set(tx, name, "1", Utc::now()))
    }

    async fn cursor(store: &Store, name: &'static str) -> Option<String> {
        store
            .read(move |conn| super::super::cursors::get(conn, name))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn work_written_in_chunks_is_one_write_per_chunk_answered_in_order() {
        let store = Store::open_in_memory().unwrap();
        let names: Vec<&'static str> = vec!["a", "b", "c", "d", "e"];

        let (answers, ended) = store
            .write_in_chunks(names.clone(), 2, |tx, these| {
                for name in these {
                    super::super::cursors::set(tx, name, "1", Utc::now())?;
                }
                Ok(these.len())
            })
            .await;

        assert!(ended.is_ok(), "{ended:?}");
        assert_eq!(answers, vec![2, 2, 1]);
        assert_eq!(store.commit_counts().writes.load(Ordering::Relaxed), 3);
        for name in names {
            assert_eq!(cursor(&store, name).await.as_deref(), Some("1"), "{name}");
        }
    }

    #[tokio::test]
    async fn a_failing_chunk_is_the_answer_and_the_chunks_before_it_stay_written() {
        let store = Store::open_in_memory().unwrap();

        let (answers, ended) = store
            .write_in_chunks(vec!["a", "b", "c"], 1, |tx, these| {
                if these == ["b"] {
                    return Err(StoreError::Worker("refused".into()));
                }
                super::super::cursors::set(tx, these[0], "1", Utc::now())
            })
            .await;

        assert!(matches!(ended, Err(StoreError::Worker(_))), "{ended:?}");
        assert_eq!(answers.len(), 1, "the first write's answer");
        assert_eq!(cursor(&store, "a").await.as_deref(), Some("1"));
        assert_eq!(cursor(&store, "c").await, None, "nothing after the failure");
    }

    #[tokio::test]
    async fn concurrent_writes_share_one_commit_and_each_caller_hears_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sfwa.db")).unwrap();
        let (release, gate) = hold_writer(&store);
        let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
        let writes: Vec<_> = names.iter().map(|name| set_cursor(&store, name)).collect();

        release.send(()).unwrap();
        gate.await.unwrap();
        let results = futures_util::future::join_all(writes).await;

        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let counts = store.commit_counts();
        assert_eq!(counts.writes.load(Ordering::Relaxed), 9);
        assert_eq!(
            counts.commits.load(Ordering::Relaxed),
            2,
            "the gate's batch and one for the eight queued behind it"
        );
        for name in names {
            assert_eq!(cursor(&store, name).await.as_deref(), Some("1"), "{name}");
        }
    }

    #[test]
    fn a_write_after_a_quiet_spell_commits_at_once_and_one_while_busy_waits_the_linger() {
        let linger = Duration::from_millis(4);
        let t0 = Instant::now();
        let after = |full| Some(Committed { at: t0, full });
        let wait = |last: Option<Committed>, now_ms: u64| {
            linger_before_commit(last, t0 + Duration::from_millis(now_ms), linger)
        };
        assert_eq!(wait(None, 0), Duration::ZERO, "the first write ever");
        assert_eq!(wait(after(false), 1), linger, "1 ms after a COMMIT: busy");
        assert_eq!(
            wait(after(false), 4),
            Duration::ZERO,
            "a linger after it: quiet"
        );
        assert_eq!(wait(after(false), 60_000), Duration::ZERO);
        assert_eq!(
            linger_before_commit(after(false), t0, Duration::ZERO),
            Duration::ZERO,
            "no linger configured"
        );
    }

    #[test]
    fn after_a_full_batch_the_next_commits_without_a_linger_so_it_never_caps_the_write_rate() {
        let linger = Duration::from_millis(20);
        let t0 = Instant::now();
        let full = Some(Committed { at: t0, full: true });
        assert_eq!(
            linger_before_commit(full, t0 + Duration::from_millis(1), linger),
            Duration::ZERO,
            "more than a batch was queued: the next batch is ready"
        );
    }

    #[tokio::test]
    async fn with_a_commit_linger_every_write_is_answered_after_its_commit_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sfwa.db");
        // Long enough that no stall of a busy test machine between the first write's answer and
        // the next writes makes the writer think the store went quiet.
        let linger = Linger {
            always: Duration::from_millis(200),
            backlog: Duration::ZERO,
        };
        let store = Store::open_lingering(&path, linger).unwrap();
        set_cursor(&store, "first").await.unwrap();
        // Right after a COMMIT: the writer lingers, and the writes queued meanwhile share one.
        let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
        let results =
            futures_util::future::join_all(names.iter().map(|name| set_cursor(&store, name))).await;

        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let counts = store.commit_counts();
        assert_eq!(counts.writes.load(Ordering::Relaxed), 9);
        assert!(counts.commits.load(Ordering::Relaxed) <= 2);
        drop(store);
        let reopened = Store::open(&path).unwrap();
        for name in names.into_iter().chain(["first"]) {
            assert_eq!(
                cursor(&reopened, name).await.as_deref(),
                Some("1"),
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn a_failing_write_is_rolled_back_alone_and_its_neighbours_commit() {
        let store = Store::open_in_memory().unwrap();
        let (release, gate) = hold_writer(&store);
        let before = set_cursor(&store, "before");
        let failing = store.write(|tx| {
            super::super::cursors::set(tx, "failing", "1", Utc::now())?;
            Err::<(), _>(StoreError::Worker("simulated failure".into()))
        });
        let after = set_cursor(&store, "after");

        release.send(()).unwrap();
        gate.await.unwrap();
        let (before, failing, after) = tokio::join!(before, failing, after);

        assert!(before.is_ok() && after.is_ok());
        assert!(failing
            .unwrap_err()
            .to_string()
            .contains("simulated failure"));
        assert_eq!(cursor(&store, "before").await.as_deref(), Some("1"));
        assert_eq!(cursor(&store, "failing").await, None);
        assert_eq!(cursor(&store, "after").await.as_deref(), Some("1"));
        assert_eq!(store.commit_counts().commits.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn a_panicking_write_answers_its_caller_with_an_error_and_the_writer_keeps_going() {
        let store = Store::open_in_memory().unwrap();
        let (release, gate) = hold_writer(&store);
        let neighbour = set_cursor(&store, "neighbour");
        let panicking = store.write(|tx| -> Result<(), StoreError> {
            super::super::cursors::set(tx, "panicking", "1", Utc::now())?;
            panic!("a bug in a write")
        });

        release.send(()).unwrap();
        gate.await.unwrap();
        let (neighbour, panicking) = tokio::join!(neighbour, panicking);
        let later = set_cursor(&store, "later").await;

        assert!(neighbour.is_ok() && later.is_ok());
        let error = panicking.unwrap_err().to_string();
        assert!(error.contains("a bug in a write"), "{error}");
        assert_eq!(cursor(&store, "panicking").await, None);
        assert_eq!(cursor(&store, "later").await.as_deref(), Some("1"));
    }

    #[tokio::test]
    async fn a_commit_that_fails_answers_every_caller_of_its_batch_with_the_error() {
        let store = Store::open_in_memory().unwrap();
        // A deferred foreign key is checked at COMMIT, after every closure returned Ok.
        store
            .write(|tx| {
                tx.execute_batch(
                    "CREATE TABLE parent (id INTEGER PRIMARY KEY);
                     CREATE TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let (release, gate) = hold_writer(&store);
        let neighbour = set_cursor(&store, "neighbour");
        let orphan = store.write(|tx| {
            tx.execute("INSERT INTO child (parent) VALUES (42)", [])?;
            Ok(())
        });

        release.send(()).unwrap();
        gate.await.unwrap();
        let (neighbour, orphan) = tokio::join!(neighbour, orphan);
        let later = set_cursor(&store, "later").await;

        for result in [neighbour, orphan] {
            let error = result.expect_err("the batch did not commit").to_string();
            assert!(error.contains("FOREIGN KEY"), "{error}");
        }
        assert_eq!(cursor(&store, "neighbour").await, None);
        assert!(later.is_ok(), "the writer goes on after a failed commit");
        assert_eq!(cursor(&store, "later").await.as_deref(), Some("1"));
    }

    #[tokio::test]
    async fn a_read_waits_for_no_batch_and_sees_only_committed_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sfwa.db")).unwrap();
        set_cursor(&store, "committed").await.unwrap();
        let (release, gate) = hold_writer(&store);
        let pending = set_cursor(&store, "pending");

        // The writer is inside a batch holding the write lock; the read answers anyway.
        let committed = cursor(&store, "committed").await;
        let not_yet = cursor(&store, "pending").await;
        release.send(()).unwrap();
        gate.await.unwrap();
        pending.await.unwrap();

        assert_eq!(committed.as_deref(), Some("1"));
        assert_eq!(not_yet, None);
        assert_eq!(cursor(&store, "pending").await.as_deref(), Some("1"));
    }

    #[test]
    fn timestamps_round_trip_through_millis() {
        let at = DateTime::parse_from_rfc3339("2026-03-01T12:34:56.789Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(from_millis(to_millis(at)), Some(at));
    }

    #[tokio::test]
    async fn a_file_store_checkpoints_its_log_on_its_own_thread_and_never_in_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.db")).unwrap();

        let autocheckpoint: i64 = store
            .write(|tx| Ok(tx.query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))?))
            .await
            .unwrap();

        assert_eq!(autocheckpoint, 0);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.commit_counts().checkpoints.load(Ordering::Relaxed) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint within 10 s of a commit"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
