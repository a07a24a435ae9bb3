//! The backend for several nodes: PostgreSQL through a connection pool.
//!
//! Every wait is bounded: taking a connection (connecting included) by the acquire timeout,
//! every statement by PostgreSQL's `statement_timeout`. An unreachable database therefore
//! turns into [`StoreError::Unavailable`] (a 503) within a known time, and the pool connects
//! again by itself once the database is back.

mod rounds;

use std::cell::Cell;
use std::sync::{Arc, RwLockReadGuard};

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

use self::rounds::Rounds;
use super::cache::{self, ChangedUser, Changes, RemovedLogin, UserCache};
use super::migrations::{self, AppliedMigration, MigrationReport};
use super::{
    Application, Credentials, LoginKey, NewServiceUser, ServiceUser, StoreError, TokenKind,
    TokenOwner, UserChange, folded, message_from_column, status_from_column, unix_millis,
};
use crate::config::DatabaseSettings;
use crate::domain::{AssociateId, UserPresenceStatus};
use crate::language::{self, Language, Resource};
use crate::secret::SecretHash;

/// Serialises `presence migrate` across nodes: any constant will do, as long as it is ours.
const MIGRATION_LOCK: i64 = 0x7072_6573_656e_6365; // "presence"

/// How many of the newest changes the change log keeps; older ones are trimmed by
/// [`PostgresStore::trim_user_changes`]. A cache further behind starts afresh.
const KEPT_CHANGES: i64 = 100_000;

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
        })
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
                upsert_resources(&tx, &language::starter_resources()).await?;
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

    /// From memory once a round has shown it current; from the database only the first time
    /// the associate is asked about (or after its entry was evicted).
    pub(super) async fn presence(
        &self,
        associate_id: AssociateId,
    ) -> Result<Option<UserPresenceStatus>, StoreError> {
        if let Some(cached) = self.current_users().await?.presence(associate_id) {
            return Ok(cached);
        }
        let client = self.client().await?;
        // The row, and the latest revision numbered when it was read: it reflects every change
        // up to that revision, as a change is committed before it is numbered.
        let statement = client
            .prepare_cached(
                "SELECT (SELECT coalesce(max(revision), 0) FROM user_change), u.status, u.message
                 FROM (SELECT 1) AS one LEFT JOIN service_user u ON u.associate_id = $1",
            )
            .await
            .map_err(classify)?;
        let row = client
            .query_one(&statement, &[&associate_id.get()])
            .await
            .map_err(classify)?;
        let presence = match row.get::<_, Option<i16>>(1) {
            Some(_) => Some(presence_from_row(&row, 1)?),
            None => None,
        };
        self.users
            .insert_presence(associate_id, presence.clone(), row.get(0));
        Ok(presence)
    }

    /// The cached users, after a round that began after this call.
    ///
    /// Within one request (see [`super::one_request`]) only the first lookup waits: the round
    /// it waited for began after the request arrived, which is all the later ones need too.
    async fn current_users(&self) -> Result<RwLockReadGuard<'_, cache::State<()>>, StoreError> {
        if !super::REQUEST_SAW_A_ROUND
            .try_with(Cell::get)
            .unwrap_or(false)
        {
            let store = self.clone();
            self.rounds
                .join(move || {
                    let store = store.clone();
                    async move { store.refresh_users().await }
                })
                .await?;
            // Outside a request there is nothing to remember it in, and nothing to reuse it.
            let _ = super::REQUEST_SAW_A_ROUND.try_with(|saw| saw.set(true));
        }
        Ok(self.users.entries())
    }

    /// Applies every change to Service users since the cache's revision: first numbers what
    /// was committed (see migration 0005), then reads the changes numbered after the cache's
    /// revision and those not numbered yet, which are committed all the same.
    async fn refresh_users(&self) -> Result<(), StoreError> {
        let since = self.users.revision();
        let client = self.client().await?;
        let (latest, oldest, complete) = number_user_changes(&client).await?;
        let mut changes = Changes {
            revision: latest,
            ..Changes::default()
        };
        // Nothing cached yet (since -1), a database whose revisions went back, or, with every
        // committed change numbered, nothing new.
        if since < 0 || latest < since || (complete && latest == since) {
            self.users.apply(changes, None);
            return Ok(());
        }
        let statement = client
            .prepare_cached(
                "SELECT c.associate_id, c.login,
                        u.associate_id, u.login, u.password_hash, u.is_admin, u.status, u.message
                 FROM user_change c LEFT JOIN service_user u ON u.associate_id = c.associate_id
                 WHERE c.revision > $1 OR c.revision IS NULL
                 ORDER BY c.revision NULLS LAST, c.id
                 LIMIT $2",
            )
            .await
            .map_err(classify)?;
        let limit = i64::try_from(cache::MAX_CHANGES).unwrap_or(i64::MAX);
        // Rows may reflect changes numbered after `latest`, or not numbered yet: applying
        // them is harmless, and a later refresh applies them again.
        let rows = client
            .query(&statement, &[&since, &limit])
            .await
            .map_err(classify)?;
        changes.too_many = rows.len() >= cache::MAX_CHANGES || oldest > since + 1;
        for row in rows {
            let changed_login: String = row.get(1);
            let now: Option<i32> = row.get(2);
            let still_named =
                now.is_some() && row.get::<_, &str>(3).eq_ignore_ascii_case(&changed_login);
            if !still_named {
                changes.removed.push(RemovedLogin {
                    login: changed_login,
                    associate_id: AssociateId::new(row.get(0)),
                });
            }
            if let Some(associate_id) = now {
                let presence = presence_from_row(&row, 6)?;
                changes.changed.push(ChangedUser {
                    login: row.get(3),
                    credentials: Credentials {
                        associate_id: AssociateId::new(associate_id),
                        password_hash: row.get::<_, Option<&str>>(4).map(Arc::from),
                        is_admin: row.get(5),
                        status: presence.status,
                    },
                    presence,
                });
            }
        }
        self.users.apply(changes, None);
        Ok(())
    }

    /// Changes numbered after `after`, oldest first: numbered first, as far as no other
    /// numbering is under way.
    pub(super) async fn user_changes_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<UserChange>, StoreError> {
        let client = self.client().await?;
        number_user_changes(&client).await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let statement = client
            .prepare_cached(
                "SELECT revision, associate_id FROM user_change
                 WHERE revision > $1 ORDER BY revision LIMIT $2",
            )
            .await
            .map_err(classify)?;
        let rows = client
            .query(&statement, &[&after, &limit])
            .await
            .map_err(classify)?;
        Ok(rows
            .iter()
            .map(|row| UserChange {
                revision: row.get(0),
                associate_id: AssociateId::new(row.get(1)),
            })
            .collect())
    }

    /// Trims the change log to its [`KEPT_CHANGES`] newest numbered rows. Any node may run it,
    /// at any time: the newest row always stays, so numbering goes on from it.
    pub(super) async fn trim_user_changes(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM user_change
                 WHERE revision <= (SELECT max(revision) FROM user_change) - $1",
                &[&KEPT_CHANGES],
            )
            .await
            .map_err(classify)?;
        Ok(())
    }

    pub(super) async fn set_presence(
        &self,
        associate_id: AssociateId,
        presence: &UserPresenceStatus,
    ) -> Result<Option<UserPresenceStatus>, StoreError> {
        let _waiting = self.sets.try_acquire().map_err(|_| StoreError::Busy)?;
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "UPDATE service_user SET status = $2, message = $3, updated_at = $4
                 WHERE associate_id = $1",
            )
            .await
            .map_err(classify)?;
        let changed = client
            .execute(
                &statement,
                &[
                    &associate_id.get(),
                    &status_column(presence),
                    &presence.message.as_deref(),
                    &unix_millis(),
                ],
            )
            .await
            .map_err(classify)?;
        Ok((changed == 1).then(|| presence.clone()))
    }

    /// From memory, like [`PostgresStore::presence`].
    pub(super) async fn credentials(&self, login: &str) -> Result<Option<Credentials>, StoreError> {
        if let Some(cached) = self.current_users().await?.credentials(login) {
            return Ok(cached);
        }
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT (SELECT coalesce(max(revision), 0) FROM user_change),
                        u.associate_id, u.password_hash, u.is_admin, u.status
                 FROM (SELECT 1) AS one LEFT JOIN service_user u ON u.login_folded = $1",
            )
            .await
            .map_err(classify)?;
        let row = client
            .query_one(&statement, &[&folded(login)])
            .await
            .map_err(classify)?;
        let credentials = match row.get::<_, Option<i32>>(1) {
            Some(associate_id) => Some(Credentials {
                associate_id: AssociateId::new(associate_id),
                password_hash: row.get::<_, Option<&str>>(2).map(Arc::from),
                is_admin: row.get(3),
                status: status_from_column(i64::from(row.get::<_, i16>(4)))?,
            }),
            None => None,
        };
        self.users
            .insert_credentials(login, credentials.clone(), row.get(0));
        Ok(credentials)
    }

    pub(super) async fn credentials_of(
        &self,
        associate_id: AssociateId,
    ) -> Result<Option<Credentials>, StoreError> {
        self.credentials_where("associate_id = $1", &associate_id.get())
            .await
    }

    async fn credentials_where(
        &self,
        condition: &str,
        key: &(dyn tokio_postgres::types::ToSql + Sync),
    ) -> Result<Option<Credentials>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT associate_id, password_hash, is_admin, status FROM service_user WHERE {condition}"
            ))
            .await
            .map_err(classify)?;
        let row = client
            .query_opt(&statement, &[key])
            .await
            .map_err(classify)?;
        row.map(|row| {
            Ok(Credentials {
                associate_id: AssociateId::new(row.get(0)),
                password_hash: row.get::<_, Option<&str>>(1).map(Arc::from),
                is_admin: row.get(2),
                status: status_from_column(i64::from(row.get::<_, i16>(3)))?,
            })
        })
        .transpose()
    }

    pub(super) async fn add_user(&self, user: &NewServiceUser) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        // Checked first so the error names which of the two is taken; the unique constraints
        // still decide a race between two nodes.
        let login_taken = tx
            .query_opt(
                "SELECT 1 FROM service_user WHERE login_folded = $1",
                &[&folded(&user.login)],
            )
            .await
            .map_err(classify)?
            .is_some();
        if login_taken {
            return Err(StoreError::DuplicateLogin(user.login.clone()));
        }
        let associate_taken = tx
            .query_opt(
                "SELECT 1 FROM service_user WHERE associate_id = $1",
                &[&user.associate_id.get()],
            )
            .await
            .map_err(classify)?
            .is_some();
        if associate_taken {
            return Err(StoreError::DuplicateAssociate(user.associate_id));
        }
        tx.execute(
            "INSERT INTO service_user
                 (associate_id, login, login_folded, password_hash, is_admin, status, message, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &user.associate_id.get(),
                &user.login,
                &folded(&user.login),
                &user.password_hash,
                &user.is_admin,
                &status_column(&user.presence),
                &user.presence.message.as_deref(),
                &unix_millis(),
            ],
        )
        .await
        .map_err(|e| match e.code() {
            Some(&SqlState::UNIQUE_VIOLATION) => StoreError::DuplicateLogin(user.login.clone()),
            _ => classify(e),
        })?;
        tx.commit().await.map_err(classify)?;
        Ok(())
    }

    pub(super) async fn list_users(&self) -> Result<Vec<ServiceUser>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT status, message, associate_id, login, is_admin, password_hash IS NOT NULL
                 FROM service_user ORDER BY associate_id",
                &[],
            )
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|row| {
                Ok(ServiceUser {
                    presence: presence_from_row(row, 0)?,
                    associate_id: AssociateId::new(row.get(2)),
                    login: row.get(3),
                    is_admin: row.get(4),
                    has_password: row.get(5),
                })
            })
            .collect()
    }

    pub(super) async fn set_password(
        &self,
        login: &str,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE service_user SET password_hash = $2 WHERE login_folded = $1",
                &[&folded(login), &password_hash],
            )
            .await
            .map_err(classify)?;
        if changed == 0 {
            return Err(StoreError::UnknownLogin(login.to_owned()));
        }
        Ok(())
    }

    pub(super) async fn remove_user(&self, login: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "DELETE FROM service_user WHERE login_folded = $1",
                &[&folded(login)],
            )
            .await
            .map_err(classify)?;
        if changed == 0 {
            return Err(StoreError::UnknownLogin(login.to_owned()));
        }
        Ok(())
    }

    pub(super) async fn insert_token(
        &self,
        kind: TokenKind,
        hash: SecretHash,
        associate_id: AssociateId,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        // Housekeeping where it costs least: expired tokens go when new ones come.
        tx.execute("DELETE FROM token WHERE expires_at <= $1", &[&now])
            .await
            .map_err(classify)?;
        tx.execute(
            "INSERT INTO token (hash, kind, associate_id, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &&hash.0[..],
                &(kind as i16),
                &associate_id.get(),
                &expires_at,
                &now,
            ],
        )
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(())
    }

    pub(super) async fn find_token(
        &self,
        kind: TokenKind,
        hash: SecretHash,
        now: i64,
    ) -> Result<Option<TokenOwner>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT u.associate_id, u.is_admin, u.status, t.expires_at
                 FROM token t JOIN service_user u ON u.associate_id = t.associate_id
                 WHERE t.hash = $1 AND t.kind = $2 AND t.expires_at > $3",
            )
            .await
            .map_err(classify)?;
        let row = client
            .query_opt(&statement, &[&&hash.0[..], &(kind as i16), &now])
            .await
            .map_err(classify)?;
        row.map(|row| {
            Ok(TokenOwner {
                associate_id: AssociateId::new(row.get(0)),
                is_admin: row.get(1),
                status: status_from_column(i64::from(row.get::<_, i16>(2)))?,
                expires_at: row.get(3),
            })
        })
        .transpose()
    }

    pub(super) async fn extend_token(
        &self,
        hash: SecretHash,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE token SET expires_at = $2 WHERE hash = $1 AND expires_at < $2",
                &[&&hash.0[..], &expires_at],
            )
            .await
            .map_err(classify)?;
        Ok(())
    }

    pub(super) async fn revoke_tokens(
        &self,
        kind: TokenKind,
        associate_id: AssociateId,
    ) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let removed = client
            .execute(
                "DELETE FROM token WHERE associate_id = $1 AND kind = $2",
                &[&associate_id.get(), &(kind as i16)],
            )
            .await
            .map_err(classify)?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    pub(super) async fn revoke_token(
        &self,
        kind: TokenKind,
        associate_id: AssociateId,
        hash: SecretHash,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let removed = client
            .execute(
                "DELETE FROM token WHERE hash = $1 AND kind = $2 AND associate_id = $3",
                &[&&hash.0[..], &(kind as i16), &associate_id.get()],
            )
            .await
            .map_err(classify)?;
        Ok(removed == 1)
    }

    pub(super) async fn add_application(
        &self,
        application: &Application,
        token_hash: SecretHash,
        now: i64,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let inserted = client
            .execute(
                "INSERT INTO application (name, name_folded, token_hash, is_partner, grants_user_agent, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name_folded) DO NOTHING",
                &[
                    &application.name,
                    &folded(&application.name),
                    &&token_hash.0[..],
                    &application.is_partner,
                    &application.grants_user_agent,
                    &now,
                ],
            )
            .await
            .map_err(classify)?;
        if inserted == 0 {
            return Err(StoreError::DuplicateApplication(application.name.clone()));
        }
        Ok(())
    }

    pub(super) async fn list_applications(&self) -> Result<Vec<Application>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT name, is_partner, grants_user_agent FROM application ORDER BY name_folded",
                &[],
            )
            .await
            .map_err(classify)?;
        Ok(rows.iter().map(application_from_row).collect())
    }

    pub(super) async fn remove_application(&self, name: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        let removed = client
            .execute(
                "DELETE FROM application WHERE name_folded = $1",
                &[&folded(name)],
            )
            .await
            .map_err(classify)?;
        if removed == 0 {
            return Err(StoreError::UnknownApplication(name.to_owned()));
        }
        Ok(())
    }

    pub(super) async fn find_application(
        &self,
        token_hash: SecretHash,
    ) -> Result<Option<Application>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT name, is_partner, grants_user_agent FROM application WHERE token_hash = $1",
            )
            .await
            .map_err(classify)?;
        let row = client
            .query_opt(&statement, &[&&token_hash.0[..]])
            .await
            .map_err(classify)?;
        Ok(row.as_ref().map(application_from_row))
    }

    /// One statement: the function takes a lock on the login's key for its transaction
    /// (migration 0005), so the count and the insert are one step across nodes.
    pub(super) async fn reserve_login_attempt(
        &self,
        login: LoginKey,
        at: i64,
        since: i64,
        max_failures: u32,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let max_failures = i32::try_from(max_failures).unwrap_or(i32::MAX);
        let statement = client
            .prepare_cached("SELECT reserve_login_attempt($1, $2, $3, $4)")
            .await
            .map_err(classify)?;
        let row = client
            .query_one(&statement, &[&&login.0[..], &at, &since, &max_failures])
            .await
            .map_err(classify)?;
        Ok(row.get(0))
    }

    pub(super) async fn clear_login_failures(&self, login: LoginKey) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM login_failure WHERE login_key = $1",
                &[&&login.0[..]],
            )
            .await
            .map_err(classify)?;
        Ok(())
    }

    pub(super) async fn expire_login_failures(&self, before: i64) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM login_failure WHERE failed_at <= $1",
                &[&before],
            )
            .await
            .map_err(classify)
    }

    pub(super) async fn import_resources(
        &self,
        resources: &[Resource],
    ) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        let count = upsert_resources(&tx, resources).await?;
        tx.commit().await.map_err(classify)?;
        Ok(count)
    }

    pub(super) async fn list_resources(
        &self,
        language: Option<Language>,
    ) -> Result<Vec<Resource>, StoreError> {
        let client = self.client().await?;
        let code = language.map(Language::iso);
        let rows = client
            .query(
                "SELECT name, language, text FROM resource
                 WHERE $1::TEXT IS NULL OR language = $1 ORDER BY name, language",
                &[&code],
            )
            .await
            .map_err(classify)?;
        rows.iter().map(resource_from_row).collect()
    }

    pub(super) async fn resources(
        &self,
        names: &[String],
        language: Language,
    ) -> Result<Vec<Resource>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT name, language, text FROM resource
                 WHERE name = ANY($1) AND language IN ($2, 'en')",
            )
            .await
            .map_err(classify)?;
        let rows = client
            .query(&statement, &[&names, &language.iso()])
            .await
            .map_err(classify)?;
        rows.iter().map(resource_from_row).collect()
    }
}

/// Numbers every change committed and not yet numbered, unless another node is numbering just
/// then; the latest and oldest revision of the log, and whether this call numbered (so that
/// every change committed before it is numbered).
async fn number_user_changes(client: &Object) -> Result<(i64, i64, bool), StoreError> {
    let statement = client
        .prepare_cached("SELECT latest, oldest, complete FROM number_user_changes()")
        .await
        .map_err(classify)?;
    let row = client.query_one(&statement, &[]).await.map_err(classify)?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

fn status_column(presence: &UserPresenceStatus) -> i16 {
    i16::try_from(presence.status.number()).expect("status numbers fit a SMALLINT")
}

fn presence_from_row(row: &Row, first: usize) -> Result<UserPresenceStatus, StoreError> {
    Ok(UserPresenceStatus {
        status: status_from_column(i64::from(row.get::<_, i16>(first)))?,
        message: message_from_column(row.get(first + 1))?,
    })
}

fn application_from_row(row: &Row) -> Application {
    Application {
        name: row.get(0),
        is_partner: row.get(1),
        grants_user_agent: row.get(2),
    }
}

fn resource_from_row(row: &Row) -> Result<Resource, StoreError> {
    let code: &str = row.get(1);
    let language = Language::from_tag(code)
        .ok_or_else(|| StoreError::Corrupt(format!("resource language {code:?}")))?;
    Ok(Resource {
        name: row.get(0),
        language,
        text: row.get(2),
    })
}

async fn upsert_resources(
    tx: &deadpool_postgres::Transaction<'_>,
    resources: &[Resource],
) -> Result<usize, StoreError> {
    let statement = tx
        .prepare(
            "INSERT INTO resource (name, language, text) VALUES ($1, $2, $3)
             ON CONFLICT (name, language) DO UPDATE SET text = excluded.text",
        )
        .await
        .map_err(classify)?;
    for resource in resources {
        tx.execute(
            &statement,
            &[&resource.name, &resource.language.iso(), &resource.text],
        )
        .await
        .map_err(classify)?;
    }
    Ok(resources.len())
}

/// Tells an unreachable or overloaded database (a 503, worth retrying) from everything else.
fn classify(error: tokio_postgres::Error) -> StoreError {
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
