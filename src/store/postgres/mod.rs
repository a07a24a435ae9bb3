//! The backend for several nodes: PostgreSQL through a connection pool. This module owns the
//! pool, migrations and the sorting of errors; each idea the store holds has a file of its
//! own, named as in the SQLite backend: `presence.rs`, `users.rs`, `changes.rs`, `tokens.rs`,
//! `lockout.rs`, `resources.rs`, `backup.rs` (which points to PostgreSQL's own tools); and, PostgreSQL's own, `rounds.rs` (one look at the database
//! shared by the requests waiting for one).
//!
//! Every wait is bounded: taking a connection (connecting included) by the acquire timeout,
//! every statement by PostgreSQL's `statement_timeout`. An unreachable database therefore
//! turns into [`StoreError::Unavailable`] (a 503) within a known time, and the pool connects
//! again by itself once the database is back.

mod backup;
mod changes;
mod history;
mod listen;
mod lockout;
mod presence;
mod resources;
mod rounds;
mod tokens;
mod users;
mod webhooks;

use std::sync::Arc;

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

use self::rounds::Rounds;
use super::cache::UserCache;
use super::migrations::{self, AppliedMigration, MigrationReport};
use super::{StoreError, message_from_column, status_from_column, unix_millis};
use crate::config::DatabaseSettings;
use crate::domain::UserPresenceStatus;
use crate::language;
use crate::metrics::StoreStats;

/// Serialises `presence migrate` across nodes: any constant will do, as long as it is ours.
const MIGRATION_LOCK: i64 = 0x7072_6573_656e_6365; // "presence"

#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// Presence and credentials as of the latest round (see `store/cache.rs`). No mark: a
    /// round is the only proof of being current.
    users: Arc<UserCache<()>>,
    rounds: Arc<Rounds>,
    /// One per Set that may wait for a connection and its commit at once; a Set that finds
    /// none left is refused as busy.
    sets: Arc<tokio::sync::Semaphore>,
    /// The permits of `sets` in all.
    set_queue: usize,
    /// How to connect, for the listening connection outside the pool (`listen.rs`).
    config: Arc<tokio_postgres::Config>,
}

impl PostgresStore {
    pub fn open(url: &str, settings: &DatabaseSettings) -> Result<Self, StoreError> {
        let bad_url =
            |reason: String| StoreError::UnsupportedUrl(format!("{}: {reason}", redact(url)));
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| bad_url(e.to_string()))?;
        config.connect_timeout(settings.acquire_timeout);
        config.keepalives(true);
        config.application_name("presence");
        config.options(format!(
            "-c statement_timeout={}",
            settings.statement_timeout.as_millis()
        ));
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let listen_config = Arc::new(config.clone());
        let manager = match config.get_ssl_mode() {
            SslMode::Disable => Manager::from_config(config, NoTls, manager_config),
            _ => Manager::from_config(config, tls()?, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(settings.acquire_timeout))
            .create_timeout(Some(settings.acquire_timeout))
            .recycle_timeout(Some(settings.acquire_timeout))
            .build()
            .map_err(|e| bad_url(e.to_string()))?;
        Ok(Self {
            pool,
            // Revision -1: nothing cached yet, so the first round only learns the current
            // revision.
            users: Arc::new(UserCache::new(-1)),
            rounds: Arc::default(),
            sets: Arc::new(tokio::sync::Semaphore::new(settings.set_queue.max(1))),
            set_queue: settings.set_queue.max(1),
            config: listen_config,
        })
    }

    /// What the metrics report of the store now.
    pub(super) fn stats(&self) -> StoreStats {
        let (cache_hits, cache_misses) = self.users.lookups();
        let pool = self.pool.status();
        let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        StoreStats {
            cache_hits,
            cache_misses,
            connections_in_use: as_u64(pool.size.saturating_sub(pool.available)),
            connections_waiting: as_u64(pool.waiting),
            sets_waiting: as_u64(self.set_queue.saturating_sub(self.sets.available_permits())),
        }
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|error| match error {
            PoolError::Backend(e) => unavailable(&e),
            other => StoreError::Unavailable(other.to_string()),
        })
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(classify)?;
        Ok(())
    }

    pub(super) async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        // A migration may rewrite a whole table (0009 rewrites every change the log keeps), so
        // it runs without the pool's statement timeout, and so does the wait for it below.
        tx.batch_execute("SET LOCAL statement_timeout = 0")
            .await
            .map_err(classify)?;
        // Nodes started together all migrate; the lock makes them take turns, and the later
        // ones find nothing to do.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(classify)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migration (
                 version    BIGINT PRIMARY KEY,
                 name       TEXT   NOT NULL,
                 applied_at BIGINT NOT NULL
             )",
        )
        .await
        .map_err(classify)?;
        let current: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migration",
                &[],
            )
            .await
            .map_err(classify)?
            .get(0);
        let (steps, known) = migrations::pending(migrations::POSTGRES, current)?;
        let mut applied = Vec::new();
        for m in steps {
            tx.batch_execute(m.sql).await.map_err(classify)?;
            if m.loads_starter_resources {
                resources::upsert_resources(&tx, &language::starter_resources()).await?;
            }
            tx.execute(
                "INSERT INTO schema_migration (version, name, applied_at) VALUES ($1, $2, $3)",
                &[&m.version, &m.name, &unix_millis()],
            )
            .await
            .map_err(classify)?;
            applied.push(AppliedMigration {
                version: m.version,
                name: m.name,
            });
        }
        tx.commit().await.map_err(classify)?;
        Ok(MigrationReport {
            applied,
            version: known,
        })
    }
}

fn stored_from_row(row: &Row, first: usize) -> Result<UserPresenceStatus, StoreError> {
    Ok(UserPresenceStatus {
        status: status_from_column(i64::from(row.get::<_, i16>(first)))?,
        message: message_from_column(row.get(first + 1))?,
    })
}

fn status_column(presence: &UserPresenceStatus) -> i16 {
    i16::try_from(presence.status.number()).expect("status numbers fit a SMALLINT")
}

/// Tells an unreachable or overloaded database (a 503, worth retrying) and a full disk (named
/// as one) from everything else.
fn classify(error: tokio_postgres::Error) -> StoreError {
    if error.code() == Some(&SqlState::DISK_FULL) {
        return StoreError::DiskFull(error.to_string());
    }
    let transient = error.is_closed()
        || error.code().is_none_or(|code| {
            matches!(
                *code,
                SqlState::QUERY_CANCELED
                    | SqlState::ADMIN_SHUTDOWN
                    | SqlState::CRASH_SHUTDOWN
                    | SqlState::CANNOT_CONNECT_NOW
                    | SqlState::TOO_MANY_CONNECTIONS
                    | SqlState::CONNECTION_EXCEPTION
                    | SqlState::CONNECTION_FAILURE
                    | SqlState::T_R_SERIALIZATION_FAILURE
                    | SqlState::T_R_DEADLOCK_DETECTED
            )
        });
    if transient {
        unavailable(&error)
    } else {
        StoreError::Postgres(error)
    }
}

fn unavailable(error: &tokio_postgres::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// The URL without its password, for messages.
pub(super) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// TLS for `sslmode=prefer|require`, verifying the server against the Mozilla root
/// certificates.
fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StoreError::UnsupportedUrl(format!("TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_passwords() {
        assert_eq!(
            redact("postgres://me:secret@db/presence"),
            "postgres://me:***@db/presence"
        );
        assert_eq!(
            redact("postgres://me@db/presence"),
            "postgres://me@db/presence"
        );
        assert_eq!(redact("postgres://db/presence"), "postgres://db/presence");
    }
}
