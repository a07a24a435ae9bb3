//! Schema migrations, embedded in the binary: one folder of numbered SQL files per backend.

use std::fmt;

/// One step of a backend's schema history.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
    /// Whether applying it also loads the starter resources (once, so an operator's later
    /// edits and deletions stay).
    pub loads_starter_resources: bool,
}

/// Both backends' histories have the same versions and names; only the SQL dialect differs.
pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "service_users",
        sql: include_str!("../../migrations/sqlite/0001_service_users.sql"),
        loads_starter_resources: false,
    },
    Migration {
        version: 2,
        name: "tokens_applications_login_failures",
        sql: include_str!("../../migrations/sqlite/0002_tokens_applications_login_failures.sql"),
        loads_starter_resources: false,
    },
    Migration {
        version: 3,
        name: "resources",
        sql: include_str!("../../migrations/sqlite/0003_resources.sql"),
        loads_starter_resources: true,
    },
    Migration {
        version: 4,
        name: "user_revisions",
        sql: include_str!("../../migrations/sqlite/0004_user_revisions.sql"),
        loads_starter_resources: false,
    },
    Migration {
        version: 5,
        name: "login_keys_and_change_log",
        sql: include_str!("../../migrations/sqlite/0005_login_keys_and_change_log.sql"),
        loads_starter_resources: false,
    },
    Migration {
        version: 6,
        name: "timed_statuses_and_absences",
        sql: include_str!("../../migrations/sqlite/0006_timed_statuses_and_absences.sql"),
        loads_starter_resources: false,
    },
    Migration {
        version: 7,
        name: "history",
        sql: include_str!("../../migrations/sqlite/0007_history.sql"),
        loads_starter_resources: false,
    },
    Migration {
        version: 8,
        name: "webhooks",
        sql: include_str!("../../migrations/sqlite/0008_webhooks.sql"),
        loads_starter_resources: false,
    },
    Migration {
        version: 9,
        name: "actor_columns",
        sql: include_str!("../../migrations/sqlite/0009_actor_columns.sql"),
        loads_starter_resources: false,
    },
];

pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "service_users",
        sql: include_str!("../../migrations/postgres/0001_service_users.sql"),
        loads_starter_resources: false,
    },
    Migration {
        version: 2,
        name: "tokens_applications_login_failures",
        sql: include_str!("../../migrations/postgres/0002_tokens_applications_login_failures.sql"),
        loads_starter_resources: false,
    },
    Migration {
        version: 3,
        name: "resources",
        sql: include_str!("../../migrations/postgres/0003_resources.sql"),
        loads_starter_resources: true,
    },
    Migration {
        version: 4,
        name: "user_revisions",
        sql: include_str!("../../migrations/postgres/0004_user_revisions.sql"),
        loads_starter_resources: false,
    },
    Migration {
        version: 5,
        name: "login_keys_and_change_log",
        sql: include_str!("../../migrations/postgres/0005_login_keys_and_change_log.sql"),
        loads_starter_resources: false,
    },
    Migration {
        version: 6,
        name: "timed_statuses_and_absences",
        sql: include_str!("../../migrations/postgres/0006_timed_statuses_and_absences.sql"),
        loads_starter_resources: false,
    },
    Migration {
        version: 7,
        name: "history",
        sql: include_str!("../../migrations/postgres/0007_history.sql"),
        loads_starter_resources: false,
    },
    Migration {
        version: 8,
        name: "webhooks",
        sql: include_str!("../../migrations/postgres/0008_webhooks.sql"),
        loads_starter_resources: false,
    },
    Migration {
        version: 9,
        name: "actor_columns",
        sql: include_str!("../../migrations/postgres/0009_actor_columns.sql"),
        loads_starter_resources: false,
    },
];

/// The steps of `history` (in version order) that a database at version `current` still
/// needs, and the version it reaches after them. A database newer than this program is refused
/// rather than touched.
pub(crate) fn pending(
    history: &'static [Migration],
    current: i64,
) -> Result<(&'static [Migration], i64), super::StoreError> {
    let known = history.last().map_or(0, |m| m.version);
    if current > known {
        return Err(super::StoreError::SchemaTooNew {
            found: current,
            known,
        });
    }
    let first = history.partition_point(|m| m.version <= current);
    Ok((&history[first..], known))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedMigration {
    pub version: i64,
    pub name: &'static str,
}

/// What a migration run did, for `presence migrate` to tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationReport {
    pub applied: Vec<AppliedMigration>,
    /// The schema version after the run.
    pub version: i64,
}

impl fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.applied.is_empty() {
            return write!(f, "schema is up to date at version {}", self.version);
        }
        for m in &self.applied {
            writeln!(f, "applied {:04}_{}", m.version, m.name)?;
        }
        write!(f, "schema is now at version {}", self.version)
    }
}
