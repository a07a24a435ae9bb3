//! The embedded default backend: one SQLite file in WAL mode.
//!
//! No SQLite work runs on the async runtime's worker threads: reads run on tokio's blocking
//! pool, on pooled connections; every write goes to the writer thread, which owns the one
//! writing connection (`writer.rs`); checkpoints run on a thread of their own. What runs
//! inline is memory only: the user cache, and the reading of the wal-index that says whether
//! the cache is current.

mod wal_index;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLockReadGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use self::wal_index::{Reading, WalIndex};
use self::writer::Writer;
use super::cache::{self, ChangedUser, Changes, RemovedLogin, UserCache};
use super::migrations::{self, AppliedMigration, MigrationReport};
use super::{
    Application, Credentials, LoginKey, NewServiceUser, ServiceUser, StoreError, TokenKind,
    TokenOwner, UserChange, message_from_column, status_from_column, unix_millis,
};
use crate::config::DatabaseSettings;
use crate::domain::{AssociateId, UserPresenceStatus};
use crate::language::{self, Language, Resource};
use crate::secret::SecretHash;

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

/// The checkpoint thread's restart waits at most this long for writers and readers to make
/// way, and tries again at the next checkpoint, rather than hold up every Set behind it.
fn wait_briefly_to_restart(tries: i32) -> bool {
    std::thread::sleep(Duration::from_millis(1));
    tries < 10
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
    /// Every write goes through it; SQLite admits one writer at a time anyway.
    writer: Writer,
    /// Dropped with the store, which tells the checkpoint thread to stop.
    _checkpoints: std::sync::mpsc::Sender<()>,
    /// Shared with the writer thread, which applies its own commits to it.
    users: Arc<Users>,
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

/// How many of the newest changes the change log keeps (see `trim_user_changes`).
const KEPT_CHANGES: i64 = 100_000;

/// The oldest changes are trimmed this many at a time, once every checkpoint at most: a
/// delete holds the write lock, and Sets wait for it. 100 000 rows at once took about 60 ms,
/// 10 000 about 5 ms; ten a second keeps up with 100 000 Sets a second.
const TRIM_STEP: i64 = 10_000;

/// The page size of a database this program creates; one made elsewhere keeps its own.
const PAGE_SIZE: i64 = 1024;

/// A write-ahead log longer than this many pages is restarted (see `checkpoint`). Each restart
/// holds Sets up for a moment, so not too often: at 10 000 pages (10 MiB of [`PAGE_SIZE`])
/// rather than SQLite's own 1000, a steady stream of Sets restarts the log about twice a
/// second instead of ten times, which raised Set throughput by about 5 % and lowered its p99
/// (BENCHMARKS.md). The file keeps the largest size it reached.
const WAL_RESTART_FRAMES: i64 = 10_000;

/// How often the checkpoint thread copies the write-ahead log into the database file. Often,
/// because a restart of the log (see `checkpoint`) holds Sets up while it syncs what was
/// written since the previous checkpoint: at 100 ms rather than 1 s, Set's p99 under load
/// fell from 36–213 ms to 13–27 ms at the same throughput (BENCHMARKS.md). Idle, each turn is
/// a few system calls.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);

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
        // into the statement journal, checksummed and appended to the WAL. At 1 KiB rather
        // than SQLite's 4 KiB, Set throughput rose by about a tenth (BENCHMARKS.md); a row
        // is a few dozen bytes, so pages hold plenty still.
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
            .spawn(move || checkpoint_until_stopped(&mut checkpointer, &stop))
            .map_err(|_| StoreError::TaskFailed)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                synchronous,
                readers: Mutex::new(Vec::new()),
                reading: tokio::sync::Semaphore::new(MAX_READERS),
                writer,
                _checkpoints: checkpoints,
                users,
            }),
        })
    }

    /// Runs a read on the blocking pool, on a pooled connection.
    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let _reading = self
            .inner
            .reading
            .acquire()
            .await
            .map_err(|_| StoreError::TaskFailed)?;
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
                upsert_resources(&tx, &language::starter_resources())?;
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

    /// From memory; from the database only the first time the associate is asked about (or
    /// after its entry was evicted).
    pub(super) async fn presence(
        &self,
        associate_id: AssociateId,
    ) -> Result<Option<UserPresenceStatus>, StoreError> {
        if let Some(cached) = self.current_users().await?.presence(associate_id) {
            return Ok(cached);
        }
        let (revision, status, message) = self
            .read(move |conn| {
                // Not a join: a parameter in a LEFT JOIN's ON makes SQLite prepare the statement
                // again on every run. The aggregate makes exactly one row, user or not.
                Ok(conn
                    .prepare_cached(
                        "SELECT coalesce(max(revision), 0),
                            (SELECT status FROM service_user WHERE associate_id = ?1),
                            (SELECT message FROM service_user WHERE associate_id = ?1)
                     FROM user_change",
                    )?
                    .query_row([associate_id.get()], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, Option<i64>>(1)?,
                            row.get::<_, Option<String>>(2)?,
                        ))
                    })?)
            })
            .await?;
        let presence = status
            .map(|status| {
                Ok::<_, StoreError>(UserPresenceStatus {
                    status: status_from_column(status)?,
                    message: message_from_column(message)?,
                })
            })
            .transpose()?;
        self.inner
            .users
            .cache
            .insert_presence(associate_id, presence.clone(), revision);
        Ok(presence)
    }

    /// The cached users, first brought up to date if anything was committed since they last
    /// were.
    async fn current_users(
        &self,
    ) -> Result<RwLockReadGuard<'_, cache::State<Reading>>, StoreError> {
        let users = &*self.inner.users;
        if let Some(state) = users.cache.current(users.look()) {
            return Ok(state);
        }
        self.refresh_users().await?;
        Ok(users.cache.entries())
    }

    /// Applies every change committed since the cache's revision.
    async fn refresh_users(&self) -> Result<(), StoreError> {
        let users = &*self.inner.users;
        let _one_at_a_time = users.refreshing.lock().await;
        // Read before the changes are: a commit in between is then both applied and seen
        // as a change next time, never missed.
        let mark = users.look();
        if users.cache.current(mark).is_some() {
            return Ok(());
        }
        let since = users.cache.revision();
        let changes = self.read(move |conn| user_changes(conn, since)).await?;
        users.cache.apply(changes, mark);
        Ok(())
    }

    /// Stores a presence through the writer thread, answering once its commit is done.
    pub(super) async fn set_presence(
        &self,
        associate_id: AssociateId,
        presence: UserPresenceStatus,
    ) -> Result<Option<UserPresenceStatus>, StoreError> {
        self.inner.writer.set_presence(associate_id, presence).await
    }

    /// From memory, like [`SqliteStore::presence`].
    pub(super) async fn credentials(&self, login: &str) -> Result<Option<Credentials>, StoreError> {
        if let Some(cached) = self.current_users().await?.credentials(login) {
            return Ok(cached);
        }
        let owned = login.to_owned();
        let (revision, credentials) = self
            .read(move |conn| {
                in_transaction(conn, "BEGIN", |conn| {
                    let revision = latest_revision(conn)?;
                    let statement = conn.prepare_cached(
                        "SELECT associate_id, password_hash, is_admin, status
                         FROM service_user WHERE login = ?1",
                    )?;
                    Ok((revision, credentials_row(statement, &owned)?))
                })
            })
            .await?;
        self.inner
            .users
            .cache
            .insert_credentials(login, credentials.clone(), revision);
        Ok(credentials)
    }

    pub(super) async fn credentials_of(
        &self,
        associate_id: AssociateId,
    ) -> Result<Option<Credentials>, StoreError> {
        self.read(move |conn| {
            let statement = conn.prepare_cached(
                "SELECT associate_id, password_hash, is_admin, status
                 FROM service_user WHERE associate_id = ?1",
            )?;
            credentials_row(statement, associate_id.get())
        })
        .await
    }

    pub(super) async fn add_user(&self, user: NewServiceUser) -> Result<(), StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Checked first so the error names which of the two is taken.
            let login_taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM service_user WHERE login = ?1)",
                [&user.login],
                |row| row.get(0),
            )?;
            if login_taken {
                return Err(StoreError::DuplicateLogin(user.login.clone()));
            }
            let associate_taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM service_user WHERE associate_id = ?1)",
                [user.associate_id.get()],
                |row| row.get(0),
            )?;
            if associate_taken {
                return Err(StoreError::DuplicateAssociate(user.associate_id));
            }
            tx.execute(
                "INSERT INTO service_user
                     (associate_id, login, password_hash, is_admin, status, message, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    user.associate_id.get(),
                    user.login,
                    user.password_hash,
                    user.is_admin,
                    user.presence.status.number(),
                    user.presence.message.as_deref(),
                    unix_millis()
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    pub(super) async fn list_users(&self) -> Result<Vec<ServiceUser>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare(
                "SELECT associate_id, login, is_admin, password_hash IS NOT NULL, status, message
                 FROM service_user ORDER BY associate_id",
            )?;
            let rows = statement.query_map([], |row| {
                Ok((
                    row.get::<_, i32>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, bool>(2)?,
                    row.get::<_, bool>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, Option<String>>(5)?,
                ))
            })?;
            rows.map(|row| {
                let (associate_id, login, is_admin, has_password, status, message) = row?;
                Ok(ServiceUser {
                    associate_id: AssociateId::new(associate_id),
                    login,
                    is_admin,
                    has_password,
                    presence: UserPresenceStatus {
                        status: status_from_column(status)?,
                        message: message_from_column(message)?,
                    },
                })
            })
            .collect()
        })
        .await
    }

    pub(super) async fn set_password(
        &self,
        login: String,
        password_hash: String,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            let changed = conn.execute(
                "UPDATE service_user SET password_hash = ?2 WHERE login = ?1",
                params![login, password_hash],
            )?;
            if changed == 0 {
                return Err(StoreError::UnknownLogin(login));
            }
            Ok(())
        })
        .await
    }

    pub(super) async fn remove_user(&self, login: String) -> Result<(), StoreError> {
        self.write(move |conn| {
            let changed = conn.execute("DELETE FROM service_user WHERE login = ?1", [&login])?;
            if changed == 0 {
                return Err(StoreError::UnknownLogin(login));
            }
            Ok(())
        })
        .await
    }
}

impl SqliteStore {
    pub(super) async fn insert_token(
        &self,
        kind: TokenKind,
        hash: SecretHash,
        associate_id: AssociateId,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction()?;
            // Housekeeping where it costs least: expired tokens go when new ones come.
            tx.execute("DELETE FROM token WHERE expires_at <= ?1", [now])?;
            tx.execute(
                "INSERT INTO token (hash, kind, associate_id, expires_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    &hash.0[..],
                    kind as i64,
                    associate_id.get(),
                    expires_at,
                    now
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    pub(super) async fn find_token(
        &self,
        kind: TokenKind,
        hash: SecretHash,
        now: i64,
    ) -> Result<Option<TokenOwner>, StoreError> {
        self.read(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT u.associate_id, u.is_admin, u.status, t.expires_at
                     FROM token t JOIN service_user u ON u.associate_id = t.associate_id
                     WHERE t.hash = ?1 AND t.kind = ?2 AND t.expires_at > ?3",
                )?
                .query_row(params![&hash.0[..], kind as i64, now], |row| {
                    Ok((
                        row.get::<_, i32>(0)?,
                        row.get::<_, bool>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })
                .optional()?;
            row.map(|(associate_id, is_admin, status, expires_at)| {
                Ok(TokenOwner {
                    associate_id: AssociateId::new(associate_id),
                    is_admin,
                    status: status_from_column(status)?,
                    expires_at,
                })
            })
            .transpose()
        })
        .await
    }

    pub(super) async fn extend_token(
        &self,
        hash: SecretHash,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE token SET expires_at = ?2 WHERE hash = ?1 AND expires_at < ?2",
            )?
            .execute(params![&hash.0[..], expires_at])?;
            Ok(())
        })
        .await
    }

    pub(super) async fn revoke_tokens(
        &self,
        kind: TokenKind,
        associate_id: AssociateId,
    ) -> Result<usize, StoreError> {
        self.write(move |conn| {
            Ok(conn.execute(
                "DELETE FROM token WHERE associate_id = ?1 AND kind = ?2",
                params![associate_id.get(), kind as i64],
            )?)
        })
        .await
    }

    pub(super) async fn revoke_token(
        &self,
        kind: TokenKind,
        associate_id: AssociateId,
        hash: SecretHash,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let removed = conn.execute(
                "DELETE FROM token WHERE hash = ?1 AND kind = ?2 AND associate_id = ?3",
                params![&hash.0[..], kind as i64, associate_id.get()],
            )?;
            Ok(removed == 1)
        })
        .await
    }

    pub(super) async fn add_application(
        &self,
        application: Application,
        token_hash: SecretHash,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            let inserted = conn.execute(
                "INSERT INTO application (name, token_hash, is_partner, grants_user_agent, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO NOTHING",
                params![
                    application.name,
                    &token_hash.0[..],
                    application.is_partner,
                    application.grants_user_agent,
                    now
                ],
            )?;
            if inserted == 0 {
                return Err(StoreError::DuplicateApplication(application.name));
            }
            Ok(())
        })
        .await
    }

    pub(super) async fn list_applications(&self) -> Result<Vec<Application>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare(
                "SELECT name, is_partner, grants_user_agent FROM application ORDER BY name",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(Application {
                    name: row.get(0)?,
                    is_partner: row.get(1)?,
                    grants_user_agent: row.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    pub(super) async fn remove_application(&self, name: String) -> Result<(), StoreError> {
        self.write(move |conn| {
            if conn.execute("DELETE FROM application WHERE name = ?1", [&name])? == 0 {
                return Err(StoreError::UnknownApplication(name));
            }
            Ok(())
        })
        .await
    }

    pub(super) async fn find_application(
        &self,
        token_hash: SecretHash,
    ) -> Result<Option<Application>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT name, is_partner, grants_user_agent FROM application WHERE token_hash = ?1",
                )?
                .query_row([&token_hash.0[..]], |row| {
                    Ok(Application {
                        name: row.get(0)?,
                        is_partner: row.get(1)?,
                        grants_user_agent: row.get(2)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    /// One step on the writer thread, so no other check of the login can come between the
    /// count and the insert.
    pub(super) async fn reserve_login_attempt(
        &self,
        login: LoginKey,
        at: i64,
        since: i64,
        max_failures: u32,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            in_transaction(conn, "BEGIN IMMEDIATE", |tx| {
                let failures: u32 = tx
                    .prepare_cached(
                        "SELECT count(*) FROM login_failure WHERE login_key = ?1 AND failed_at > ?2",
                    )?
                    .query_row(params![&login.0[..], since], |row| row.get(0))?;
                if failures >= max_failures {
                    return Ok(false);
                }
                tx.prepare_cached("INSERT INTO login_failure (login_key, failed_at) VALUES (?1, ?2)")?
                    .execute(params![&login.0[..], at])?;
                Ok(true)
            })
        })
        .await
    }

    pub(super) async fn clear_login_failures(&self, login: LoginKey) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM login_failure WHERE login_key = ?1")?
                .execute([&login.0[..]])?;
            Ok(())
        })
        .await
    }

    pub(super) async fn expire_login_failures(&self, before: i64) -> Result<u64, StoreError> {
        self.write(move |conn| {
            let removed = conn
                .prepare_cached("DELETE FROM login_failure WHERE failed_at <= ?1")?
                .execute([before])?;
            Ok(removed as u64)
        })
        .await
    }

    /// Changes numbered after `after`, oldest first. One writer at a time numbers them in
    /// commit order, so a change never appears below one already seen.
    pub(super) async fn user_changes_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<UserChange>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT revision, associate_id FROM user_change
                 WHERE revision > ?1 ORDER BY revision LIMIT ?2",
            )?;
            let rows = statement.query_map(params![after, limit], |row| {
                Ok(UserChange {
                    revision: row.get(0)?,
                    associate_id: AssociateId::new(row.get(1)?),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}

impl SqliteStore {
    pub(super) async fn import_resources(
        &self,
        resources: Vec<Resource>,
    ) -> Result<usize, StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let count = upsert_resources(&tx, &resources)?;
            tx.commit()?;
            Ok(count)
        })
        .await
    }

    pub(super) async fn list_resources(
        &self,
        language: Option<Language>,
    ) -> Result<Vec<Resource>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare(
                "SELECT name, language, text FROM resource
                 WHERE ?1 IS NULL OR language = ?1 ORDER BY name, language",
            )?;
            let rows = statement.query_map([language.map(Language::iso)], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })?;
            rows.map(|row| {
                let (name, code, text) = row?;
                resource_from_row(name, &code, text)
            })
            .collect()
        })
        .await
    }

    pub(super) async fn resources(
        &self,
        names: Vec<String>,
        language: Language,
    ) -> Result<Vec<Resource>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT name, language, text FROM resource
                 WHERE name = ?1 AND language IN (?2, 'en')",
            )?;
            let mut found = Vec::new();
            for name in &names {
                let rows = statement.query_map(params![name, language.iso()], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })?;
                for row in rows {
                    let (name, code, text) = row?;
                    found.push(resource_from_row(name, &code, text)?);
                }
            }
            Ok(found)
        })
        .await
    }
}

/// Inserts resources, replacing texts already there; says how many.
fn upsert_resources(
    tx: &rusqlite::Transaction<'_>,
    resources: &[Resource],
) -> Result<usize, StoreError> {
    let mut statement = tx.prepare(
        "INSERT INTO resource (name, language, text) VALUES (?1, ?2, ?3)
         ON CONFLICT (name, language) DO UPDATE SET text = excluded.text",
    )?;
    for resource in resources {
        statement.execute(params![
            resource.name,
            resource.language.iso(),
            resource.text
        ])?;
    }
    Ok(resources.len())
}

fn resource_from_row(name: String, code: &str, text: String) -> Result<Resource, StoreError> {
    let language = Language::from_tag(code)
        .ok_or_else(|| StoreError::Corrupt(format!("resource language {code:?}")))?;
    Ok(Resource {
        name,
        language,
        text,
    })
}

/// Runs `work` in a transaction opened with `begin` (`BEGIN` or `BEGIN IMMEDIATE`): committed
/// if it succeeds, rolled back if not. Unlike rusqlite's `Transaction`, which parses `BEGIN`
/// and `COMMIT` anew every time, the statements stay prepared on the connection: that parsing
/// was a measurable part of the small transactions on the hot path.
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

/// The revision of the latest change to a Service user; 0 before the first.
fn latest_revision(connection: &Connection) -> rusqlite::Result<i64> {
    connection
        .prepare_cached("SELECT coalesce(max(revision), 0) FROM user_change")?
        .query_row([], |row| row.get(0))
}

/// Every change to Service users after revision `since`, read in one transaction.
fn user_changes(connection: &Connection, since: i64) -> Result<Changes, StoreError> {
    in_transaction(connection, "BEGIN", |tx| user_changes_in(tx, since))
}

fn user_changes_in(tx: &Connection, since: i64) -> Result<Changes, StoreError> {
    let (revision, oldest): (i64, i64) = tx
        // Each aggregate in a subquery of its own: SQLite reads only the end of the table for
        // a lone max() or min(), but the whole table for both together.
        .prepare_cached(
            "SELECT coalesce((SELECT max(revision) FROM user_change), 0),
                    coalesce((SELECT min(revision) FROM user_change), 0)",
        )?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let mut changes = Changes {
        revision,
        ..Changes::default()
    };
    // Nothing cached yet (since -1), nothing new, or a database whose revisions went back.
    if since < 0 || revision <= since {
        return Ok(changes);
    }
    let mut log = tx.prepare_cached(
        "SELECT c.associate_id, c.login,
                u.associate_id, u.login, u.password_hash, u.is_admin, u.status, u.message
         FROM user_change c LEFT JOIN service_user u ON u.associate_id = c.associate_id
         WHERE c.revision > ?1 ORDER BY c.revision",
    )?;
    // No LIMIT ?: a bound LIMIT makes SQLite prepare the statement again on every run.
    let mut rows = log.query([since])?;
    let mut logged = 0;
    while let Some(row) = rows.next()? {
        logged += 1;
        if logged > cache::MAX_CHANGES {
            break;
        }
        let (changed_id, changed_login): (i32, String) = (row.get(0)?, row.get(1)?);
        let now: Option<(i32, String)> = match row.get::<_, Option<i32>>(2)? {
            Some(id) => Some((id, row.get(3)?)),
            None => None,
        };
        let still_named = now
            .as_ref()
            .is_some_and(|(_, login)| login.eq_ignore_ascii_case(&changed_login));
        if !still_named {
            changes.removed.push(RemovedLogin {
                login: changed_login,
                associate_id: AssociateId::new(changed_id),
            });
        }
        if let Some((associate_id, login)) = now {
            let status = status_from_column(row.get(6)?)?;
            changes.changed.push(ChangedUser {
                login,
                credentials: Credentials {
                    associate_id: AssociateId::new(associate_id),
                    password_hash: row.get(4)?,
                    is_admin: row.get(5)?,
                    status,
                },
                presence: UserPresenceStatus {
                    status,
                    message: message_from_column(row.get(7)?)?,
                },
            });
        }
    }
    // The log's old end is trimmed (see `trim_user_changes`): changes older than what is
    // left cannot be told apart, so the cache starts afresh.
    changes.too_many = logged > cache::MAX_CHANGES || oldest > since + 1;
    Ok(changes)
}

/// Trims the [`TRIM_STEP`] oldest rows of the change log once it holds that many more than
/// [`KEPT_CHANGES`]. A cache further behind than what is left starts afresh.
fn trim_user_changes(connection: &Connection) -> rusqlite::Result<()> {
    // Before the first migration there is no log to trim.
    let migrated = connection
        .prepare_cached(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'user_change'",
        )?
        .exists([])?;
    if !migrated {
        return Ok(());
    }
    let (oldest, latest): (i64, i64) = connection
        .prepare_cached(
            "SELECT coalesce((SELECT min(revision) FROM user_change), 0),
                    coalesce((SELECT max(revision) FROM user_change), 0)",
        )?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    // The newest row always stays: revisions are never handed out twice.
    if latest - oldest >= KEPT_CHANGES + TRIM_STEP {
        connection
            .prepare_cached("DELETE FROM user_change WHERE revision < ?1")?
            .execute([oldest + TRIM_STEP])?;
    }
    Ok(())
}

/// Copies what the write-ahead log holds into the database file, without blocking anyone
/// (PASSIVE). Under a steady stream of Sets that never lets the log start over, as new
/// commits always follow the pages just copied, so a log longer than
/// [`WAL_RESTART_FRAMES`] is restarted (RESTART): writers wait the moment that takes (and
/// the restart waits only briefly for them), and the log is then written from its start again
/// instead of growing without end.
fn checkpoint(connection: &mut Connection) -> rusqlite::Result<()> {
    let frames: i64 =
        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))?;
    if frames > WAL_RESTART_FRAMES {
        connection.busy_handler(Some(wait_briefly_to_restart))?;
        let restarted = connection.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()));
        connection.busy_handler(Some(wait_a_millisecond))?;
        match restarted {
            // Busy: someone did not make way in time; the next checkpoint tries again.
            Err(error) if is_busy(&error) => {}
            other => other?,
        }
    }
    Ok(())
}

/// Whether SQLite refused because another connection held a lock it needed.
fn is_busy(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
}

/// Copies committed pages from the write-ahead log into the database file every
/// [`CHECKPOINT_INTERVAL`], without blocking writers (PASSIVE), and trims the change log,
/// until the store is dropped.
fn checkpoint_until_stopped(connection: &mut Connection, stop: &std::sync::mpsc::Receiver<()>) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
        stop.recv_timeout(CHECKPOINT_INTERVAL)
    {
        if let Err(error) = checkpoint(connection) {
            tracing::warn!(%error, "checkpoint failed; will try again");
        }
        if let Err(error) = trim_user_changes(connection) {
            tracing::warn!(%error, "trimming the change log failed; will try again");
        }
    }
}

fn credentials_row(
    mut statement: rusqlite::CachedStatement<'_>,
    key: impl rusqlite::ToSql,
) -> Result<Option<Credentials>, StoreError> {
    let row = statement
        .query_row([key], |row| {
            Ok((
                row.get::<_, i32>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, bool>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })
        .optional()?;
    row.map(|(associate_id, password_hash, is_admin, status)| {
        Ok(Credentials {
            associate_id: AssociateId::new(associate_id),
            password_hash: password_hash.map(Arc::from),
            is_admin,
            status: status_from_column(status)?,
        })
    })
    .transpose()
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
    // whole file again on a connection's next read, and then fault its pages back in, which
    // cost more than it saved once users are answered from memory (BENCHMARKS.md).
    // Statements stay prepared per connection; a handful covers every hot query.
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Message, UserStatus};
    use crate::secret::SecretHash;
    use crate::store::{NewServiceUser, Store, TokenKind};

    /// A store with one user, `erik` (associate 1), and a plain connection to the same file
    /// standing for any other program writing to it.
    async fn store_and_outsider() -> (tempfile::TempDir, Store, Connection) {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("presence.db");
        let (store, _) = Store::open_and_migrate(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        store
            .add_user(NewServiceUser {
                associate_id: AssociateId::new(1),
                login: "erik".into(),
                password_hash: None,
                is_admin: false,
                presence: UserPresenceStatus {
                    status: UserStatus::StatusNormal,
                    message: Message::none(),
                },
            })
            .await
            .unwrap();
        (directory, store, Connection::open(path).unwrap())
    }

    /// A transaction large enough to spill pages into the write-ahead log before it ends, rolled
    /// back beside another connection (the command line beside the server) that then commits
    /// as many pages of another table, at the same offsets of the log: every committed row must
    /// survive, whatever the first connection does next. (The log starts empty, so that the
    /// rollback reads nothing back from it.)
    #[test]
    fn a_large_rolled_back_transaction_beside_another_writer_loses_nothing() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("presence.db");
        let first = open_connection(&path, Synchronous::Normal).unwrap();
        first
            .execute_batch(&format!(
                "PRAGMA page_size = {PAGE_SIZE};
                 PRAGMA journal_mode = WAL;
                 CREATE TABLE rolled_back (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
                 CREATE TABLE committed (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
                 PRAGMA wal_checkpoint(TRUNCATE);"
            ))
            .unwrap();
        let second = open_connection(&path, Synchronous::Normal).unwrap();
        let insert_200 = |table: &str| {
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
                 INSERT INTO {table} (data) SELECT randomblob(900) FROM n"
            )
        };
        // A small page cache makes the transaction write pages to the log before it ends.
        first.pragma_update(None, "cache_size", 20).unwrap();
        first.execute_batch("BEGIN").unwrap();
        first.execute(&insert_200("rolled_back"), []).unwrap();
        first.execute_batch("ROLLBACK").unwrap();

        second.execute(&insert_200("committed"), []).unwrap();

        let count = |connection: &Connection, table: &str| {
            connection
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                    row.get::<_, i64>(0)
                })
                .unwrap()
        };
        assert_eq!(count(&first, "committed"), 200);
        assert_eq!(count(&first, "rolled_back"), 0);
        drop(first);
        drop(second);

        let check = Connection::open(&path).unwrap();
        let integrity: String = check
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        assert_eq!(count(&check, "committed"), 200);
        assert_eq!(count(&check, "rolled_back"), 0);
    }

    /// The writer's connection limited to the pages the database has, as a full disk would
    /// limit it: what cannot be stored is a `DiskFull`, named as such, and the server goes on.
    #[tokio::test]
    async fn a_full_disk_is_named_as_one() {
        let directory = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}",
            directory.path().join("presence.db").display()
        );
        let (store, _) = Store::open_and_migrate(&url).await.unwrap();
        let Store::Sqlite(sqlite) = &store else {
            unreachable!("a SQLite URL")
        };
        sqlite
            .write(|conn| {
                let pages: i64 = conn.query_row("PRAGMA page_count", [], |row| row.get(0))?;
                conn.pragma_update(None, "max_page_count", pages)?;
                Ok(())
            })
            .await
            .unwrap();
        let mut outcome = Ok(());
        for id in 1..1000 {
            outcome = store
                .add_user(NewServiceUser {
                    associate_id: AssociateId::new(id),
                    login: format!("user-{id}-{}", "x".repeat(200)),
                    password_hash: None,
                    is_admin: false,
                    presence: UserPresenceStatus {
                        status: UserStatus::StatusNormal,
                        message: Message::none(),
                    },
                })
                .await;
            if outcome.is_err() {
                break;
            }
        }
        assert!(
            matches!(outcome, Err(StoreError::DiskFull(_))),
            "{outcome:?}"
        );
        // Reads go on, and so does the writer once there is room.
        store.ping().await.unwrap();
        sqlite
            .write(|conn| Ok(conn.pragma_update(None, "max_page_count", 1 << 30)?))
            .await
            .unwrap();
        store
            .add_user(NewServiceUser {
                associate_id: AssociateId::new(5000),
                login: "room-again".into(),
                password_hash: None,
                is_admin: false,
                presence: UserPresenceStatus {
                    status: UserStatus::StatusNormal,
                    message: Message::none(),
                },
            })
            .await
            .unwrap();
    }

    /// Another program holds the write lock, so a Set waits for it on the writer thread:
    /// meanwhile every read is answered, from the cache or from the database.
    #[tokio::test]
    async fn a_write_waiting_for_a_lock_stalls_no_read() {
        let (_directory, store, outsider) = store_and_outsider().await;
        let id = AssociateId::new(1);
        outsider.execute_batch("BEGIN IMMEDIATE").unwrap();
        let waiting = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .set_presence(
                        id,
                        UserPresenceStatus {
                            status: UserStatus::StatusNotAvailable,
                            message: Message::none(),
                        },
                    )
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let reads = async {
            store.ping().await.unwrap();
            assert!(store.credentials("erik").await.unwrap().is_some());
            assert_eq!(
                store.presence(id).await.unwrap().unwrap().status,
                UserStatus::StatusNormal
            );
            assert_eq!(store.presence(AssociateId::new(2)).await.unwrap(), None);
            store
                .find_token(TokenKind::Ticket, SecretHash([7; 32]), 0)
                .await
                .unwrap();
        };
        tokio::time::timeout(Duration::from_secs(2), reads)
            .await
            .expect("the reads are answered while the write waits");
        assert!(!waiting.is_finished(), "the Set waits for the lock");
        outsider.execute_batch("COMMIT").unwrap();
        assert!(waiting.await.unwrap().unwrap().is_some());
        assert_eq!(
            store.presence(id).await.unwrap().unwrap().status,
            UserStatus::StatusNotAvailable
        );
    }

    #[tokio::test]
    async fn migrating_a_version_3_database_keeps_its_users_and_their_tickets() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("presence.db");
        let connection = Connection::open(&path).unwrap();
        connection
            .pragma_update(None, "foreign_keys", "ON")
            .unwrap();
        connection
            .execute_batch(
                "CREATE TABLE schema_migration (
                     version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL
                 ) STRICT;",
            )
            .unwrap();
        for m in &migrations::SQLITE[..3] {
            connection.execute_batch(m.sql).unwrap();
            connection
                .execute(
                    "INSERT INTO schema_migration VALUES (?1, ?2, 0)",
                    params![m.version, m.name],
                )
                .unwrap();
        }
        connection
            .execute_batch(
                "INSERT INTO service_user (associate_id, login, status, message, updated_at)
                     VALUES (7, 'gina', 2, 'Away', 0);
                 INSERT INTO token (hash, kind, associate_id, expires_at, created_at)
                     VALUES (zeroblob(32), 1, 7, 9000000000000, 0);",
            )
            .unwrap();
        drop(connection);

        let (store, report) = Store::open_and_migrate(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        assert_eq!(report.applied.len(), migrations::SQLITE.len() - 3);
        let presence = store.presence(AssociateId::new(7)).await.unwrap().unwrap();
        assert_eq!(presence.status, UserStatus::StatusNotAvailable);
        assert_eq!(presence.message.as_deref(), Some("Away"));
        let owner = store
            .find_token(TokenKind::Ticket, SecretHash([0; 32]), 0)
            .await
            .unwrap();
        assert_eq!(owner.map(|o| o.associate_id), Some(AssociateId::new(7)));
        // Foreign keys are back on: removing the user still removes the ticket.
        store.remove_user("gina").await.unwrap();
        let owner = store
            .find_token(TokenKind::Ticket, SecretHash([0; 32]), 0)
            .await
            .unwrap();
        assert_eq!(owner, None);
    }

    #[tokio::test]
    async fn a_new_database_gets_small_pages_and_an_existing_one_keeps_its_own() {
        let directory = tempfile::tempdir().unwrap();
        let page_size = |path: &Path| {
            Connection::open(path)
                .unwrap()
                .query_row("PRAGMA page_size", [], |row| row.get::<_, i64>(0))
                .unwrap()
        };
        let new = directory.path().join("new.db");
        Store::open_and_migrate(&format!("sqlite://{}", new.display()))
            .await
            .unwrap();
        assert_eq!(page_size(&new), PAGE_SIZE);

        let existing = directory.path().join("existing.db");
        Connection::open(&existing)
            .unwrap()
            .execute_batch("PRAGMA page_size = 8192; CREATE TABLE t (x);")
            .unwrap();
        let (store, _) = Store::open_and_migrate(&format!("sqlite://{}", existing.display()))
            .await
            .unwrap();
        assert_eq!(page_size(&existing), 8192);
        store.presence(AssociateId::new(1)).await.unwrap();
    }

    #[tokio::test]
    async fn a_login_renamed_by_another_program_is_seen_at_once() {
        let (_directory, store, outsider) = store_and_outsider().await;
        assert!(store.credentials("erik").await.unwrap().is_some());
        assert_eq!(store.credentials("frida").await.unwrap(), None);
        outsider
            .execute(
                "UPDATE service_user SET login = 'Frida' WHERE associate_id = 1",
                [],
            )
            .unwrap();
        assert_eq!(store.credentials("erik").await.unwrap(), None);
        let found = store.credentials("frida").await.unwrap().unwrap();
        assert_eq!(found.associate_id, AssociateId::new(1));
    }

    #[tokio::test]
    async fn a_change_whose_log_entry_was_trimmed_is_still_seen() {
        let (_directory, store, outsider) = store_and_outsider().await;
        let id = AssociateId::new(1);
        assert!(store.presence(id).await.unwrap().is_some());
        // As if the server had been far behind when the log's old end was trimmed.
        outsider
            .execute_batch(
                "UPDATE service_user SET status = 2 WHERE associate_id = 1;
                 INSERT INTO user_change (associate_id, login) VALUES (99, 'nobody');
                 DELETE FROM user_change WHERE revision < (SELECT max(revision) FROM user_change);",
            )
            .unwrap();
        assert_eq!(
            store.presence(id).await.unwrap().unwrap().status,
            UserStatus::StatusNotAvailable
        );
    }

    #[tokio::test]
    async fn the_change_log_is_trimmed_to_its_newest_rows() {
        let (directory, _store, outsider) = store_and_outsider().await;
        // Trimmed as the store trims: on a connection opened as its own are, in one transaction.
        let own =
            open_connection(&directory.path().join("presence.db"), Synchronous::Normal).unwrap();
        let count_and_latest = || {
            outsider
                .query_row(
                    "SELECT count(*), max(revision) FROM user_change",
                    [],
                    |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
                )
                .unwrap()
        };
        let unmigrated = Connection::open_in_memory().unwrap();
        trim_user_changes(&unmigrated).expect("no log yet is nothing to trim");
        trim_user_changes(&own).unwrap();
        assert_eq!(count_and_latest(), (1, 1), "a short log is left alone");
        // Revisions 1 to KEPT_CHANGES + TRIM_STEP + 1.
        outsider
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                 INSERT INTO user_change (associate_id, login) SELECT i, 'u' || i FROM n",
                [KEPT_CHANGES + TRIM_STEP],
            )
            .unwrap();
        let latest = KEPT_CHANGES + TRIM_STEP + 1;
        trim_user_changes(&own).unwrap();
        assert_eq!(count_and_latest(), (KEPT_CHANGES + 1, latest));
        trim_user_changes(&own).unwrap();
        assert_eq!(
            count_and_latest(),
            (KEPT_CHANGES + 1, latest),
            "fewer than a step more than kept"
        );
    }

    #[tokio::test]
    async fn a_bulk_change_by_another_program_is_seen_at_once() {
        let (_directory, store, outsider) = store_and_outsider().await;
        let id = AssociateId::new(1);
        assert_eq!(
            store.presence(id).await.unwrap().unwrap().status,
            UserStatus::StatusNormal
        );
        outsider
            .execute_batch(&format!(
                "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < {})
                 INSERT INTO service_user (associate_id, login, status, updated_at)
                 SELECT i, 'u' || i, 0, 0 FROM n;
                 UPDATE service_user SET status = 2;",
                cache::MAX_CHANGES + 10
            ))
            .unwrap();
        assert_eq!(
            store.presence(id).await.unwrap().unwrap().status,
            UserStatus::StatusNotAvailable
        );
    }
}
