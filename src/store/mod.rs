//! Storage: one [`Store`] facade whose backend is chosen by the database URL's scheme.
//!
//! An enum rather than a trait object or generics, so the HTTP code compiles once and every
//! call is a direct match.

mod migrations;
mod sqlite;

use crate::domain::{AssociateId, Message, UserPresenceStatus, UserStatus};

pub use migrations::{AppliedMigration, MigrationReport};
pub use sqlite::SqliteStore;

/// Where the data lives when nothing else is configured: a file beside the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://presence.db";

#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
}

/// What authentication needs to know about a login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub associate_id: AssociateId,
    /// Argon2id PHC string; `None` when the user has no password.
    pub password_hash: Option<String>,
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

#[derive(Clone, Debug)]
pub struct NewServiceUser {
    pub associate_id: AssociateId,
    pub login: String,
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub presence: UserPresenceStatus,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL '{0}': expected sqlite://PATH[?synchronous=normal|full]")]
    UnsupportedUrl(String),
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("the login '{0}' is already taken")]
    DuplicateLogin(String),
    #[error("associate {0} already has a Service user")]
    DuplicateAssociate(AssociateId),
    #[error("no Service user has the login '{0}'")]
    UnknownLogin(String),
    #[error(
        "the database schema is at version {found}, newer than this program knows ({known}); upgrade the program"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("the database holds a value this program cannot read: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("a database task stopped unexpectedly")]
    TaskFailed,
}

impl Store {
    /// Opens (creating if need be) the database a URL names. The schema is not touched: call
    /// [`Store::migrate`].
    pub fn open(url: &str) -> Result<Self, StoreError> {
        if let Some(location) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            return Ok(Self::Sqlite(SqliteStore::open(location)?));
        }
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }

    /// Opens the database and brings its schema up to date: what every command does first.
    pub async fn open_and_migrate(url: &str) -> Result<(Self, MigrationReport), StoreError> {
        let store = Self::open(url)?;
        let report = store.migrate().await?;
        Ok((store, report))
    }

    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        match self {
            Self::Sqlite(s) => s.clone().blocking(|s| s.migrate()).await,
        }
    }

    /// The associate's presence, or `None` when the associate is no Service user.
    ///
    /// This is the hot path of every ticket assignment: SQLite answers it inline from a pooled
    /// connection in a few microseconds, cheaper than a hop to a blocking thread.
    pub async fn presence(
        &self,
        associate_id: AssociateId,
    ) -> Result<Option<UserPresenceStatus>, StoreError> {
        match self {
            Self::Sqlite(s) => s.presence(associate_id),
        }
    }

    /// Stores a presence and returns it as stored, or `None` (and changes nothing) when the
    /// associate is no Service user. Durable when it returns.
    pub async fn set_presence(
        &self,
        associate_id: AssociateId,
        presence: UserPresenceStatus,
    ) -> Result<Option<UserPresenceStatus>, StoreError> {
        match self {
            Self::Sqlite(s) => {
                s.clone()
                    .blocking(move |s| s.set_presence(associate_id, &presence))
                    .await
            }
        }
    }

    /// Looked up on every authenticated request, so answered inline like [`Store::presence`].
    pub async fn credentials(&self, login: &str) -> Result<Option<Credentials>, StoreError> {
        match self {
            Self::Sqlite(s) => s.credentials(login),
        }
    }

    pub async fn add_user(&self, user: NewServiceUser) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(s) => s.clone().blocking(move |s| s.add_user(&user)).await,
        }
    }

    /// Adds the user unless its login or associate is taken; says whether it did.
    pub async fn add_user_if_missing(&self, user: NewServiceUser) -> Result<bool, StoreError> {
        match self.add_user(user).await {
            Ok(()) => Ok(true),
            Err(StoreError::DuplicateLogin(_) | StoreError::DuplicateAssociate(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn list_users(&self) -> Result<Vec<ServiceUser>, StoreError> {
        match self {
            Self::Sqlite(s) => s.clone().blocking(|s| s.list_users()).await,
        }
    }

    pub async fn set_password(&self, login: &str, password_hash: String) -> Result<(), StoreError> {
        let login = login.to_owned();
        match self {
            Self::Sqlite(s) => {
                s.clone()
                    .blocking(move |s| s.set_password(&login, &password_hash))
                    .await
            }
        }
    }

    pub async fn remove_user(&self, login: &str) -> Result<(), StoreError> {
        let login = login.to_owned();
        match self {
            Self::Sqlite(s) => s.clone().blocking(move |s| s.remove_user(&login)).await,
        }
    }
}

/// Reads a stored status number, which the schema constrains to the known ones.
fn status_from_column(number: i64) -> Result<UserStatus, StoreError> {
    UserStatus::from_number(number)
        .ok_or_else(|| StoreError::Corrupt(format!("status number {number}")))
}

/// Reads a stored message, which the schema constrains to the carrier's length.
fn message_from_column(text: Option<String>) -> Result<Message, StoreError> {
    Message::new(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests;
