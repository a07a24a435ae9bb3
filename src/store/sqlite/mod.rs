//! The embedded default backend: one SQLite file in WAL mode. This module owns opening the
//! file, the connections (a pool for reads, one writer), migrations and transactions; each
//! idea the store holds has a file of its own, named as in the PostgreSQL backend:
//!
//! - `presence.rs`: presence reads and Sets;
//! - `users.rs`: the cached users made current, credentials, and the users' administration;
//! - `changes.rs`: the change log the cache follows, and its trimming;
//! - `tokens.rs`: tickets, access tokens and applications;
//! - `lockout.rs`: the records of password checks;
//! - `resources.rs`: the texts of `[SR_NAME]` references;
//! - `backup.rs`: a consistent copy of the file while it is in use;
//!
//! and, SQLite's own: `writer.rs` (the writer thread), `checkpoint.rs` (the checkpoint thread)
//! and `wal_index.rs` (has anything been committed?).
//!
//! No SQLite work runs on the async runtime's worker threads: reads run on tokio's blocking
//! pool, on pooled connections ([`SqliteStore::read`]); every write goes to the writer thread
//! ([`SqliteStore::write`]), which owns the one writing connection; checkpoints run on a
//! thread of their own. What runs inline is memory only: the user cache, and the reading of
//! the wal-index that says whether the cache is current.

mod backup;
mod changes;
mod checkpoint;
mod history;
mod lockout;
mod presence;
mod resources;
#[cfg(test)]
mod tests;
mod tokens;
mod users;
mod wal_index;
mod webhooks;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use self::wal_index::{Reading, WalIndex};
use self::writer::Writer;
use super::cache::UserCache;
use super::migrations::{self, AppliedMigration, MigrationReport};
use super::{StoreError, unix_millis};
use crate::config::DatabaseSettings;
use crate::language;
use crate::metrics::StoreStats;

/// How many milliseconds a statement waits for another connection's lock (the CLI beside a
/// running server, a checkpoint) before it fails: five seconds.
const BUSY_TRIES: i32 = 5000;

/// Waits for a lock in steps of a millisecond. SQLite's own busy timeout sleeps ever longer
/// between tries (up to 100 ms), so a writer that a checkpoint held up for a few milliseconds
/// would stay waiting for tens more.
fn wait_a_millisecond(tries: i32) -> bool {
    std::thread::sleep(Duration::from_millis(1));
    tries < BUSY_TRIES
}

/// Reads run at once at most, each on a connection of its own: connections are opened lazily
/// and kept, so this also bounds the connections (and their files) reads hold.
const MAX_READERS: usize = 64;

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

/// When a commit counts as done.
#[derive(Clone, Copy, Debug)]
enum Synchronous {
    /// The commit is in the WAL file (the operating system's cache) before it is acknowledged:
    /// it survives the process being killed; an operating-system crash or power loss can lose
    /// the last commits. Fast: no fsync per commit.
    Normal,
    /// Every commit is fsynced before it is acknowledged: survives power loss too.
    Full,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

struct Inner {
    path: PathBuf,
    synchronous: Synchronous,
    /// Idle connections for reads, taken and given back on the blocking pool. The lock is held
    /// only to take or give back one, never while it is used.
    readers: Mutex<Vec<Connection>>,
    /// One permit per read running: a read waits for one before it takes a blocking thread.
    reading: tokio::sync::Semaphore,
    /// Reads waiting for a permit, for the metrics.
    waiting_to_read: AtomicUsize,
    /// Every write goes through it; SQLite admits one writer at a time anyway.
    writer: Writer,
    /// Dropped with the store, which tells the checkpoint thread to stop.
    _checkpoints: std::sync::mpsc::Sender<()>,
    /// Shared with the writer thread, which applies its own commits to it.
    users: Arc<Users>,
}

/// One read waiting for a permit, counted for the metrics until it stops waiting: with the
/// permit, or dropped with its request (a timeout, a client gone).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn count(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::Relaxed);
        Self(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Presence and credentials in memory (see `store/cache.rs`), and how to tell whether they
/// are current.
struct Users {
    /// As of the last commit seen in `wal_index`.
    cache: UserCache<Reading>,
    /// `None` when the file has no readable wal-index: then every lookup first asks the
    /// database what changed.
    wal_index: Option<WalIndex>,
    /// One refresh of `cache` at a time: lookups wait for a refresh rather than repeat it, and
    /// the writer thread applies its own commits only while none runs. An async lock, as a
    /// refresh holds it across a read on the blocking pool.
    refreshing: tokio::sync::Mutex<()>,
}

impl Users {
    /// The wal-index header now.
    fn look(&self) -> Option<Reading> {
        self.wal_index.as_ref().and_then(WalIndex::read)
    }
}

/// The page size of a database this program creates; one made elsewhere keeps its own.
const PAGE_SIZE: i64 = 1024;

impl SqliteStore {
    /// Opens `PATH[?synchronous=normal|full]`, creating the file if need be. Blocks while it
    /// opens the file: call it where blocking is allowed.
    pub fn open(location: &str, settings: &DatabaseSettings) -> Result<Self, StoreError> {
        let (path, query) = location.split_once('?').unwrap_or((location, ""));
        let mut synchronous = Synchronous::Normal;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            synchronous = match (&*key, &*value.to_ascii_lowercase()) {
                ("synchronous", "normal") => Synchronous::Normal,
                ("synchronous", "full") => Synchronous::Full,
                _ => return Err(StoreError::UnsupportedUrl(format!("sqlite://{location}"))),
            };
        }
        let path = PathBuf::from(path);
        let open_error = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let writer = open_connection(&path, synchronous).map_err(open_error)?;
        // Takes effect only on a new file, before anything (the switch to WAL below) writes
        // its first page. A Set rewrites whole pages: its row's and the change log's, copied
        // into the statement journal, checksummed and appended to the WAL; a row is a few
        // dozen bytes, so small pages hold plenty and make every Set copy less.
        writer
            .pragma_update(None, "page_size", PAGE_SIZE)
            .map_err(open_error)?;
        // WAL lets readers proceed while a write commits.
        writer
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(open_error)?;
        // Checkpoints happen on their own thread (below), not inside whichever commit crosses
        // the threshold: a Set never waits for a checkpoint's fsync.
        writer
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(open_error)?;
        // A read makes SQLite set up the wal-index, which is then mapped.
        writer
            .query_row("PRAGMA schema_version", [], |_| Ok(()))
            .map_err(open_error)?;
        let wal_index = WalIndex::open(&path)
            .inspect_err(|error| {
                tracing::warn!(%error, "cannot watch the database for changes; every lookup will read it");
            })
            .ok();
        // Revision -1: nothing cached yet, so the first refresh only learns the current
        // revision.
        let users = Arc::new(Users {
            cache: UserCache::new(-1),
            wal_index,
            refreshing: tokio::sync::Mutex::new(()),
        });
        let writer = Writer::start(writer, users.clone(), settings.set_queue)
            .map_err(|_| StoreError::TaskFailed)?;
        let mut checkpointer = open_connection(&path, synchronous).map_err(open_error)?;
        let (checkpoints, stop) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || checkpoint::checkpoint_until_stopped(&mut checkpointer, &stop))
            .map_err(|_| StoreError::TaskFailed)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                synchronous,
                readers: Mutex::new(Vec::new()),
                reading: tokio::sync::Semaphore::new(MAX_READERS),
                waiting_to_read: AtomicUsize::new(0),
                writer,
                _checkpoints: checkpoints,
                users,
            }),
        })
    }

    /// What the metrics report of the store now.
    pub(super) fn stats(&self) -> StoreStats {
        let inner = &self.inner;
        let (cache_hits, cache_misses) = inner.users.cache.lookups();
        let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        StoreStats {
            cache_hits,
            cache_misses,
            connections_in_use: as_u64(
                MAX_READERS.saturating_sub(inner.reading.available_permits()),
            ),
            connections_waiting: as_u64(inner.waiting_to_read.load(Ordering::Relaxed)),
            sets_waiting: as_u64(inner.writer.sets_waiting()),
        }
    }

    /// Runs a read on the blocking pool, on a pooled connection.
    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reading = &self.inner.reading;
        let _reading = match reading.try_acquire() {
            Ok(permit) => permit,
            Err(_) => {
                let _waiting = Waiting::count(&self.inner.waiting_to_read);
                reading
                    .acquire()
                    .await
                    .map_err(|_| StoreError::TaskFailed)?
            }
        };
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_here(query))
            .await
            .map_err(|_| StoreError::TaskFailed)?
    }

    /// Runs a read on this thread, which must be one that may block.
    fn read_here<T>(
        &self,
        query: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let connection = match pooled {
            Some(connection) => connection,
            None => open_connection(&self.inner.path, self.inner.synchronous)?,
        };
        let result = query(&connection);
        let mut readers = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if readers.len() < MAX_READERS {
            readers.push(connection);
        }
        result
    }

    /// Runs a write on the writer thread.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.inner.writer.run(work).await
    }

    pub(super) async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        self.write(|conn| {
            // A migration may copy a table to change it (SQLite's way to alter a constraint):
            // with foreign keys on, dropping the original would delete the rows that refer to
            // it. Off for the migration (the pragma has no effect inside a transaction), and
            // every reference checked before it commits.
            conn.pragma_update(None, "foreign_keys", "OFF")?;
            let migrated = Self::migrate_without_foreign_keys(conn);
            conn.pragma_update(None, "foreign_keys", "ON")?;
            migrated
        })
        .await
    }

    fn migrate_without_foreign_keys(conn: &mut Connection) -> Result<MigrationReport, StoreError> {
        // IMMEDIATE takes the write lock up front, so two processes migrating at once run
        // one after the other and the second finds nothing to do.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migration (
                 version    INTEGER PRIMARY KEY,
                 name       TEXT    NOT NULL,
                 applied_at INTEGER NOT NULL
             ) STRICT;",
        )?;
        let current: i64 = tx.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migration",
            [],
            |row| row.get(0),
        )?;
        let (steps, known) = migrations::pending(migrations::SQLITE, current)?;
        let mut applied = Vec::new();
        for m in steps {
            tx.execute_batch(m.sql)?;
            if m.loads_starter_resources {
                resources::upsert_resources(&tx, &language::starter_resources())?;
            }
            tx.execute(
                "INSERT INTO schema_migration (version, name, applied_at) VALUES (?1, ?2, ?3)",
                params![m.version, m.name, unix_millis()],
            )?;
            applied.push(AppliedMigration {
                version: m.version,
                name: m.name,
            });
        }
        let dangling: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |row| row.get(0))
            .optional()?;
        if let Some(table) = dangling {
            return Err(StoreError::Corrupt(format!(
                "after migrating, a row of {table} refers to a row that does not exist"
            )));
        }
        tx.commit()?;
        Ok(MigrationReport {
            applied,
            version: known,
        })
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }
}

/// Runs `work` in a transaction opened with `begin` (`BEGIN` or `BEGIN IMMEDIATE`): committed
/// if it succeeds, rolled back if not. Unlike rusqlite's `Transaction`, which parses `BEGIN`
/// and `COMMIT` anew every time, the statements stay prepared on the connection, as the small
/// transactions of the hot path run them over and over.
fn in_transaction<T, E: From<rusqlite::Error>>(
    connection: &Connection,
    begin: &str,
    work: impl FnOnce(&Connection) -> Result<T, E>,
) -> Result<T, E> {
    connection.prepare_cached(begin)?.execute([])?;
    let outcome = work(connection).and_then(|value| {
        connection.prepare_cached("COMMIT")?.execute([])?;
        Ok(value)
    });
    if outcome.is_err()
        && !connection.is_autocommit()
        && let Err(error) = connection
            .prepare_cached("ROLLBACK")
            .and_then(|mut rollback| rollback.execute([]))
    {
        tracing::warn!(%error, "cannot roll back a failed transaction");
    }
    outcome
}

fn open_connection(path: &Path, synchronous: Synchronous) -> rusqlite::Result<Connection> {
    // Each connection is used by one thread at a time, so SQLite's own mutexes are not needed.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)?;
    conn.busy_handler(Some(wait_a_millisecond))?;
    conn.pragma_update(None, "synchronous", synchronous.pragma())?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // No `mmap_size`: every commit by another connection makes SQLite unmap and map the
    // whole file again on a connection's next read, and fault its pages back in, while reads
    // are few once users are answered from memory.
    // Statements stay prepared per connection; a handful covers every hot query.
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}
