//! Storage: one [`Store`] facade whose backend is chosen by the database URL's scheme. This
//! module owns the facade and the types that cross it; `cache.rs` the users kept in memory by
//! both backends; `migrations.rs` the schema histories; `sqlite/` and `postgres/` the
//! backends, each split by idea into files of the same names (`presence.rs`, `users.rs`,
//! `changes.rs`, `tokens.rs`, `lockout.rs`, `resources.rs`, `backup.rs`, `webhooks.rs`), so
//! that where an idea is stored has one answer per backend, side by side; `history.rs` and
//! `webhooks.rs` here hold their ideas' facades and types.
//!
//! An enum rather than a trait object or generics, so the HTTP code compiles once and every
//! call is a direct match.
//!
//! # Adding an operation
//!
//! 1. Write it on both backends, as `pub(in crate::store) async fn` in the file of its idea
//!    (`sqlite/<idea>.rs`, `postgres/<idea>.rs`; a new idea gets a new file in each), taking
//!    the same arguments. On SQLite a read goes through `SqliteStore::read` (the blocking
//!    pool) and a write through `SqliteStore::write` (the writer thread); on PostgreSQL a
//!    connection comes from `PostgresStore::client`. A new table is a migration in each of
//!    `migrations/sqlite/` and `migrations/postgres/`, under the same number and name, listed
//!    in `migrations.rs`.
//! 2. Add it to the facade below, in the `impl Store` of its idea, with its doc comment:
//!    `on_backend!(self, operation(arguments))`. The macro calls the same method with the
//!    same arguments on either backend, so the compiler refuses the facade until both
//!    backends have it, with one signature.
//! 3. Test it in `tests.rs`: an `async fn` that uses `fresh()`, named in `on_both_backends!`,
//!    which runs it on SQLite and, when built with `PRESENCE_TEST_POSTGRES_URL`, on
//!    PostgreSQL.
//!
//! A trait declaring every operation would repeat each signature a third time and check
//! nothing the facade's calls do not already check; a macro generating trait, facade and
//! calls from one list would save a few lines per operation and hide the facade, the one
//! place a reader looks for what the store can do. Neither would change the hot path (the
//! calls are direct either way), so the choice is for the reader.

mod cache;
mod error;
mod history;
mod migrations;
mod postgres;
mod sqlite;
pub mod testing;
mod webhooks;

use std::sync::Arc;

use crate::config::DatabaseSettings;
use crate::domain::{
    Absence, Actor, AssociateId, Message, Presence, UserPresenceStatus, UserStatus,
};
use crate::language::{Language, Resource};
use crate::secret::SecretHash;

pub use error::StoreError;
pub use history::{ChangePage, HistoryQuery};
pub use migrations::{AppliedMigration, MigrationReport};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use webhooks::{
    ClaimedWebhook, Delivery, DeliveryOutcome, KEPT_DELIVERIES, MAX_WEBHOOKS, NewWebhook, Webhook,
    WebhookAdded, WebhookClaim, WebhookProgress,
};

/// Where the data lives when nothing else is configured: a file beside the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://presence.db";

#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// What authentication needs to know about a login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub associate_id: AssociateId,
    /// Argon2id PHC string; `None` when the user has no password. Shared: the Basic check
    /// copies the cached credentials on every request.
    pub password_hash: Option<Arc<str>>,
    pub is_admin: bool,
    pub status: UserStatus,
}

/// A Service user as the administration commands see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceUser {
    pub associate_id: AssociateId,
    pub login: String,
    pub is_admin: bool,
    pub has_password: bool,
    pub presence: UserPresenceStatus,
}

/// What the lockout counts a login's password checks by: a hash of the login in ASCII lower
/// case, so that what a client sends as a login is stored at a fixed size, and two spellings of
/// one login count together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginKey(pub [u8; 32]);

impl LoginKey {
    pub fn of(login: &str) -> Self {
        use sha2::{Digest, Sha256};
        Self(
            Sha256::new()
                .chain_update(b"presence login\0")
                .chain_update(folded(login).as_bytes())
                .finalize()
                .into(),
        )
    }
}

/// One change to a Service user, as numbered in the change log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserChange {
    /// Grows with every change; a reader that has seen one never later finds a lower one
    /// appear.
    pub revision: i64,
    pub associate_id: AssociateId,
}

/// The kinds of server-issued bearer secrets kept in the `token` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// `SOTicket 7T:...`, and browser sessions: six hours, sliding.
    Ticket = 1,
    /// `Bearer 8A:...`: a fixed lifetime.
    AccessToken = 2,
}

/// Who a stored ticket or token belongs to, and until when it is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenOwner {
    pub associate_id: AssociateId,
    pub is_admin: bool,
    pub status: UserStatus,
    /// Unix milliseconds.
    pub expires_at: i64,
}

/// A registered application, identified on the wire by its `SO-AppToken`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Application {
    pub name: String,
    pub is_partner: bool,
    /// Whether a partner application may use the User agent online.
    pub grants_user_agent: bool,
}

#[derive(Clone, Debug)]
pub struct NewServiceUser {
    pub associate_id: AssociateId,
    pub login: String,
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub presence: UserPresenceStatus,
}

impl NewServiceUser {
    /// A user who is present (`StatusNormal`, no message), no administrator, and has no
    /// password: one that signs in by ticket, token or identity provider only.
    pub fn present(associate_id: AssociateId, login: impl Into<String>) -> Self {
        Self {
            associate_id,
            login: login.into(),
            password_hash: None,
            is_admin: false,
            presence: UserPresenceStatus {
                status: UserStatus::StatusNormal,
                message: Message::none(),
            },
        }
    }
}

/// A status set through the presence API: it may end by itself, and it may be stored only if
/// the user is still at the revision the caller saw.
#[derive(Clone, Debug)]
pub struct StatusChange {
    pub presence: UserPresenceStatus,
    /// When a timed `StatusNotAvailable` ends (Unix milliseconds); the caller has checked it
    /// lies ahead.
    pub until: Option<i64>,
    /// Stored only if the user's revision is this one (`If-Match`).
    pub if_revision: Option<i64>,
    /// Now, as the user's time of change (Unix milliseconds).
    pub at: i64,
    pub actor: Actor,
}

/// What [`Store::set_status`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusChanged {
    Stored,
    /// The associate is no Service user; nothing was stored.
    NoUser,
    /// The user is no longer at the revision asked for; nothing was stored.
    Stale,
}

/// An absence to plan; the caller has checked it is well formed (it starts before it ends).
#[derive(Clone, Debug)]
pub struct NewAbsence {
    pub from: i64,
    pub until: i64,
    pub message: Message,
    /// Now (Unix milliseconds): absences that have ended by then count neither as overlapping
    /// nor toward [`MAX_PLANNED_ABSENCES`].
    pub at: i64,
    pub actor: Actor,
}

/// What [`Store::plan_absence`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AbsencePlanned {
    Planned(Absence),
    NoUser,
    /// Another planned absence covers part of the same time; nothing was stored.
    Overlaps(Absence),
    /// The user has [`MAX_PLANNED_ABSENCES`] planned already; nothing was stored.
    TooMany,
}

/// Planned absences a user may have that have not ended: what keeps one user's absences, read
/// with their presence on every change, small.
pub const MAX_PLANNED_ABSENCES: usize = 50;

/// What [`Store::import_users`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportedUsers {
    pub added: usize,
    /// Found already, as the same login and associate, and left as they were.
    pub unchanged: usize,
}

/// Calls one method, with the same arguments, on whichever backend the store is: the compiler
/// then demands the method of both, taking what the facade passes.
macro_rules! on_backend {
    ($store:expr, $method:ident($($argument:expr),* $(,)?)) => {
        match $store {
            Store::Sqlite(backend) => backend.$method($($argument),*).await,
            Store::Postgres(backend) => backend.$method($($argument),*).await,
        }
    };
}
use on_backend;

impl Store {
    /// Opens (creating if need be) the database a URL names, with the default settings. The
    /// schema is not touched: call [`Store::migrate`]. Blocks while it opens a SQLite file:
    /// async code calls [`Store::open_and_migrate`].
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, &DatabaseSettings::default())
    }

    /// Opens the database a URL names: `sqlite://` or `postgres://` (`postgresql://`).
    pub fn open_with(url: &str, settings: &DatabaseSettings) -> Result<Self, StoreError> {
        if let Some(location) = sqlite_location(url) {
            return Ok(Self::Sqlite(SqliteStore::open(location, settings)?));
        }
        if is_postgres_url(url) {
            return Ok(Self::Postgres(PostgresStore::open(url, settings)?));
        }
        Err(StoreError::UnsupportedUrl(postgres::redact(url)))
    }

    /// Opens the database and brings its schema up to date: what every command does first.
    pub async fn open_and_migrate(url: &str) -> Result<(Self, MigrationReport), StoreError> {
        Self::open_and_migrate_with(url, &DatabaseSettings::default()).await
    }

    pub async fn open_and_migrate_with(
        url: &str,
        settings: &DatabaseSettings,
    ) -> Result<(Self, MigrationReport), StoreError> {
        let (url, settings) = (url.to_owned(), settings.clone());
        let store = tokio::task::spawn_blocking(move || Self::open_with(&url, &settings))
            .await
            .map_err(|_| StoreError::TaskFailed)??;
        let report = store.migrate().await?;
        Ok((store, report))
    }

    /// Opens a database that exists already, as it is, its schema untouched: for a command that
    /// copies it (a backup), which must neither make an empty file where a path is mistyped
    /// nor change a schema that servers of an older version use.
    pub async fn open_existing(url: &str, settings: &DatabaseSettings) -> Result<Self, StoreError> {
        if let Some(location) = sqlite_location(url) {
            let path = location.split_once('?').map_or(location, |(path, _)| path);
            if !std::path::Path::new(path).is_file() {
                return Err(StoreError::NoDatabase(path.to_owned()));
            }
        }
        let (url, settings) = (url.to_owned(), settings.clone());
        tokio::task::spawn_blocking(move || Self::open_with(&url, &settings))
            .await
            .map_err(|_| StoreError::TaskFailed)?
    }

    /// Whether the database answers: what `/health/ready` reports.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_backend!(self, ping())
    }

    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        on_backend!(self, migrate())
    }

    /// What the metrics report of the store now: its cache's lookups, its connections, the
    /// Sets waiting. Reads counters only; it never waits.
    pub fn stats(&self) -> crate::metrics::StoreStats {
        match self {
            Self::Sqlite(s) => s.stats(),
            Self::Postgres(p) => p.stats(),
        }
    }
}

/// Presence: the hot path of every ticket assignment.
impl Store {
    /// The associate's presence as stored, with what decides it at any moment
    /// ([`Presence::at`]), or `None` when the associate is no Service user. Answered from
    /// memory once the backend has made sure nothing changed (`store/cache.rs`).
    pub async fn presence(
        &self,
        associate_id: AssociateId,
    ) -> Result<Option<Arc<Presence>>, StoreError> {
        // PostgreSQL's futures are boxed, here and in the two below: the hot path's future is
        // then no larger than SQLite's, whichever backend runs.
        match self {
            Self::Sqlite(s) => s.presence(associate_id).await,
            Self::Postgres(p) => Box::pin(p.presence(associate_id)).await,
        }
    }

    /// Many associates' presences at once, in the order asked, from memory like
    /// [`Store::presence`]; those not in memory are read together.
    pub async fn presences(
        &self,
        associate_ids: &[AssociateId],
    ) -> Result<Vec<Option<Arc<Presence>>>, StoreError> {
        on_backend!(self, presences(associate_ids))
    }

    /// Hands `visit` the presences of [`Store::presences`], by reference. While every one of
    /// them is in memory, as in a help desk's steady state, they are lent from the cache under
    /// its read lock rather than copied out: a batch read then costs no two atomic reference
    /// counts per presence, which were a sixth of its time (BENCHMARKS.md). `visit` then runs
    /// under that lock: it must not reach the store, and should be brief, as a change to the
    /// cache waiting for the lock holds up the lookups that come after it (for a batch of
    /// 1000 presences whose JSON is kept, about 100 µs). Otherwise `visit` gets copies.
    pub async fn with_presences<T, F>(
        &self,
        associate_ids: &[AssociateId],
        visit: F,
    ) -> Result<T, StoreError>
    where
        F: FnOnce(&[Option<&Arc<Presence>>]) -> T,
    {
        let visit = match on_backend!(self, visit_cached_presences(associate_ids, visit))? {
            Ok(visited) => return Ok(visited),
            Err(visit) => visit,
        };
        let presences = self.presences(associate_ids).await?;
        Ok(visit(
            &presences.iter().map(Option::as_ref).collect::<Vec<_>>(),
        ))
    }

    /// The presence as the database holds it now, not from memory: what a write just stored.
    pub async fn read_presence(
        &self,
        associate_id: AssociateId,
    ) -> Result<Option<Arc<Presence>>, StoreError> {
        on_backend!(self, read_presence(associate_id))
    }

    /// Up to `limit` Service users after associate `after`, in associate order, read from the
    /// database: a page of a list that a client walks with the last id it saw.
    pub async fn presence_page(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(AssociateId, Arc<Presence>)>, StoreError> {
        on_backend!(self, presence_page(after, limit))
    }

    /// Stores a status set through the presence API (see [`StatusChange`]). Durable when it
    /// returns.
    pub async fn set_status(
        &self,
        associate_id: AssociateId,
        change: StatusChange,
    ) -> Result<StatusChanged, StoreError> {
        on_backend!(self, set_status(associate_id, change))
    }

    /// Plans an absence, unless it overlaps another that has not ended or the user has too
    /// many planned. Atomic across nodes: two absences planned at once for one user cannot
    /// both pass the check.
    pub async fn plan_absence(
        &self,
        associate_id: AssociateId,
        absence: NewAbsence,
    ) -> Result<AbsencePlanned, StoreError> {
        on_backend!(self, plan_absence(associate_id, absence))
    }

    /// Cancels one of the associate's absences; says whether there was one of that id.
    pub async fn cancel_absence(
        &self,
        associate_id: AssociateId,
        absence_id: i64,
        at: i64,
        actor: &Actor,
    ) -> Result<bool, StoreError> {
        on_backend!(self, cancel_absence(associate_id, absence_id, at, actor))
    }

    /// Stores a presence and returns it as stored, or `None` (and changes nothing) when the
    /// associate is no Service user. Durable when it returns. [`StoreError::Busy`], with
    /// nothing stored, when too many Sets wait for their commit already.
    pub async fn set_presence(
        &self,
        associate_id: AssociateId,
        presence: UserPresenceStatus,
        actor: &Actor,
    ) -> Result<Option<UserPresenceStatus>, StoreError> {
        match self {
            Self::Sqlite(s) => s.set_presence(associate_id, presence, actor).await,
            Self::Postgres(p) => Box::pin(p.set_presence(associate_id, presence, actor)).await,
        }
    }
}

/// Service users and their credentials.
impl Store {
    /// Looked up on every authenticated request, so answered from memory like
    /// [`Store::presence`].
    pub async fn credentials(&self, login: &str) -> Result<Option<Credentials>, StoreError> {
        match self {
            Self::Sqlite(s) => s.credentials(login).await,
            Self::Postgres(p) => Box::pin(p.credentials(login)).await,
        }
    }

    /// The same, looked up by associate: for callers whose identity provider names the
    /// associate rather than the login.
    pub async fn credentials_of(
        &self,
        associate_id: AssociateId,
    ) -> Result<Option<Credentials>, StoreError> {
        on_backend!(self, credentials_of(associate_id))
    }

    pub async fn add_user(&self, user: NewServiceUser) -> Result<(), StoreError> {
        on_backend!(self, add_user(user))
    }

    /// Adds the user unless its login or associate is taken; says whether it did.
    pub async fn add_user_if_missing(&self, user: NewServiceUser) -> Result<bool, StoreError> {
        match self.add_user(user).await {
            Ok(()) => Ok(true),
            Err(StoreError::DuplicateLogin(_) | StoreError::DuplicateAssociate(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds many users in one transaction: all of them, or none. A user whose login (in any
    /// case) and associate both belong to one user already is left exactly as that user is,
    /// and counted as unchanged; one whose login or associate belongs to another user fails
    /// the whole import with [`StoreError::DuplicateLogin`] or
    /// [`StoreError::DuplicateAssociate`]. The users must differ from each other in login and
    /// in associate. Running servers learn of the new users as of any other (the change log).
    pub async fn import_users(
        &self,
        users: Vec<NewServiceUser>,
    ) -> Result<ImportedUsers, StoreError> {
        on_backend!(self, import_users(users))
    }

    pub async fn list_users(&self) -> Result<Vec<ServiceUser>, StoreError> {
        on_backend!(self, list_users())
    }

    pub async fn set_password(&self, login: &str, password_hash: String) -> Result<(), StoreError> {
        on_backend!(self, set_password(login, password_hash))
    }

    pub async fn remove_user(&self, login: &str) -> Result<(), StoreError> {
        on_backend!(self, remove_user(login))
    }
}

/// What a backup copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackupReport {
    pub bytes: u64,
}

/// Backups.
impl Store {
    /// Copies the database, as of one commit, to a new file at `to`, while servers go on
    /// using it. SQLite only: PostgreSQL's are made with its own tools
    /// ([`StoreError::BackupWithPgDump`]).
    pub async fn backup(&self, to: std::path::PathBuf) -> Result<BackupReport, StoreError> {
        on_backend!(self, backup(to))
    }
}

/// Tickets, access tokens and applications.
impl Store {
    /// Stores a ticket or token by its hash.
    pub async fn insert_token(
        &self,
        kind: TokenKind,
        hash: SecretHash,
        associate_id: AssociateId,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        on_backend!(
            self,
            insert_token(kind, hash, associate_id, expires_at, now)
        )
    }

    /// The owner of a ticket or token that is still valid at `now`.
    pub async fn find_token(
        &self,
        kind: TokenKind,
        hash: SecretHash,
        now: i64,
    ) -> Result<Option<TokenOwner>, StoreError> {
        on_backend!(self, find_token(kind, hash, now))
    }

    /// Moves a token's expiry to `expires_at` (later only).
    pub async fn extend_token(&self, hash: SecretHash, expires_at: i64) -> Result<(), StoreError> {
        on_backend!(self, extend_token(hash, expires_at))
    }

    /// Ends every token of a kind that an associate holds; says how many.
    pub async fn revoke_tokens(
        &self,
        kind: TokenKind,
        associate_id: AssociateId,
    ) -> Result<usize, StoreError> {
        on_backend!(self, revoke_tokens(kind, associate_id))
    }

    /// Ends one token, if the associate holds it; says whether it did.
    pub async fn revoke_token(
        &self,
        kind: TokenKind,
        associate_id: AssociateId,
        hash: SecretHash,
    ) -> Result<bool, StoreError> {
        on_backend!(self, revoke_token(kind, associate_id, hash))
    }

    pub async fn add_application(
        &self,
        application: Application,
        token_hash: SecretHash,
        now: i64,
    ) -> Result<(), StoreError> {
        on_backend!(self, add_application(application, token_hash, now))
    }

    pub async fn list_applications(&self) -> Result<Vec<Application>, StoreError> {
        on_backend!(self, list_applications())
    }

    pub async fn remove_application(&self, name: &str) -> Result<(), StoreError> {
        on_backend!(self, remove_application(name))
    }

    /// The application an `SO-AppToken` identifies. Read on every online request.
    pub async fn find_application(
        &self,
        token_hash: SecretHash,
    ) -> Result<Option<Application>, StoreError> {
        on_backend!(self, find_application(token_hash))
    }
}

/// The lockout's records of password checks.
impl Store {
    /// Records a password check of `login` at `at` (Unix milliseconds) before it runs, as a
    /// failure until it succeeds, unless `max_failures` were recorded after `since`: then
    /// records nothing and answers `false` (locked out). The count and the record are one
    /// atomic step on every backend, across nodes, so checks sent at once cannot all pass.
    pub async fn reserve_login_attempt(
        &self,
        login: LoginKey,
        at: i64,
        since: i64,
        max_failures: u32,
    ) -> Result<bool, StoreError> {
        on_backend!(self, reserve_login_attempt(login, at, since, max_failures))
    }

    /// Forgets a login's recorded checks, after a successful one.
    pub async fn clear_login_failures(&self, login: LoginKey) -> Result<(), StoreError> {
        on_backend!(self, clear_login_failures(login))
    }

    /// The store's periodic upkeep: forgets password checks made at or before
    /// `failures_before`, absences that ended before `absences_ended_before` (once their end
    /// is recorded), and changes made before `history_before` (Unix milliseconds). The server
    /// calls it every half minute. Deleting an ended absence is no change of its user: it
    /// decides nothing any more.
    pub async fn housekeeping(
        &self,
        failures_before: i64,
        absences_ended_before: i64,
        history_before: i64,
    ) -> Result<(), StoreError> {
        on_backend!(self, expire_login_failures(failures_before))?;
        on_backend!(self, delete_ended_absences(absences_ended_before))?;
        self.trim_history(history_before).await
    }
}

/// The texts `[SR_NAME]` references are replaced with.
impl Store {
    /// Stores resource texts, replacing those already there; says how many.
    pub async fn import_resources(&self, resources: Vec<Resource>) -> Result<usize, StoreError> {
        on_backend!(self, import_resources(resources))
    }

    /// Every resource text, or those of one language, by name.
    pub async fn list_resources(
        &self,
        language: Option<Language>,
    ) -> Result<Vec<Resource>, StoreError> {
        on_backend!(self, list_resources(language))
    }

    /// The texts of the named resources in `language` and in English (the fallback): what one
    /// message's references need.
    pub async fn resources(
        &self,
        names: &[String],
        language: Language,
    ) -> Result<Vec<Resource>, StoreError> {
        on_backend!(self, resources(names, language))
    }
}

tokio::task_local! {
    /// Whether the request being answered has waited for a look at the database that began
    /// after it arrived (see `postgres::rounds`).
    static REQUEST_SAW_A_ROUND: std::cell::Cell<bool>;
}

/// Runs one request's work: its lookups may all rely on the first one's look at whether the
/// cached users are current, as a look that began after the request arrived shows every
/// change committed before. Without it every lookup looks again (correct, only slower).
///
/// Not an `async fn`: that would hold `work` twice, as its argument and inside the scope.
pub fn one_request<F: std::future::Future>(
    work: F,
) -> impl std::future::Future<Output = F::Output> {
    REQUEST_SAW_A_ROUND.scope(std::cell::Cell::new(false), work)
}

/// The path and options of a SQLite database URL, or `None` when it names no SQLite database.
fn sqlite_location(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
}

/// Whether a database URL names a PostgreSQL database.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Logins and application names match in ASCII case only, as SQLite's NOCASE folds them:
/// PostgreSQL stores and looks them up folded, and the user cache keys them so. Borrowed when
/// already folded, as it is for nearly every request.
fn folded(text: &str) -> std::borrow::Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(text.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Now, in Unix milliseconds, for the columns that record when something changed.
fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Reads a stored status number, which the schema constrains to the known ones.
fn status_from_column(number: i64) -> Result<UserStatus, StoreError> {
    UserStatus::from_number(number)
        .ok_or_else(|| StoreError::Corrupt(format!("status number {number}")))
}

/// Reads a user's absences as both backends aggregate them: a JSON array of
/// `[id, starts_at, ends_at, message]`, by start (`None` or `[]` for none).
fn absences_from_column(json: Option<&str>) -> Result<Option<Arc<[Absence]>>, StoreError> {
    let Some(json) = json else { return Ok(None) };
    let rows: Vec<(i64, i64, i64, Option<String>)> = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("absences {json:?}: {e}")))?;
    if rows.is_empty() {
        return Ok(None);
    }
    rows.into_iter()
        .map(|(id, from, until, message)| {
            Ok(Absence {
                id,
                from,
                until,
                message: message_from_column(message)?,
            })
        })
        .collect::<Result<Arc<[Absence]>, StoreError>>()
        .map(Some)
}

/// Reads a stored message, which the schema constrains to the carrier's length.
fn message_from_column(text: Option<String>) -> Result<Message, StoreError> {
    Message::new(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests;
