//! The history: every change to a Service user, with what it was and who made it, read from
//! the change log in revision order; and the timers that record a timed status's end and an
//! absence's start and end as changes of their own.

use serde_json::json;

use super::{Store, StoreError, UserChange, on_backend};
use crate::domain::{
    Absence, Actor, AssociateId, Change, ChangeKind, Effective, Presence, RecordedStatus,
    UserPresenceStatus, by_json, via_json,
};

/// Changes a filtered page (by associate or time) reads at most: such a page answers what it
/// found in this many revisions after its cursor, and reaches the window's end, so that a
/// filter few changes pass costs each request a bounded read of the log rather than the whole
/// log, and no index by associate costs every Set a write.
pub const FILTER_WINDOW: i64 = 100_000;

/// Changes the log keeps at most, however young: a client that sets the same status over and
/// over makes a row each time (the caches follow every write), and the disk is bounded by
/// this as well as by the history's days. About 0.6 GB of rows of Sets like the benchmarks'
/// (62 bytes a change, `benches/load/log_size.sh`).
pub const MAX_CHANGES_KEPT: i64 = 10_000_000;

/// Which changes to read.
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery {
    /// Changes numbered after this revision; `None`: from the oldest kept.
    pub after: Option<i64>,
    /// One associate's changes only.
    pub associate: Option<AssociateId>,
    /// Changes made at or after this moment (Unix milliseconds) only.
    pub since: Option<i64>,
    pub limit: usize,
}

/// A page of the history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangePage {
    /// Oldest first.
    pub changes: Vec<Change>,
    /// The revision the page reaches: its last change's, or, when the page is not full, the
    /// last revision read (the newest, or the end of a filtered page's window). A reader goes
    /// on after it.
    pub reached: i64,
    /// Whether changes after the cursor have been trimmed: the reader must start afresh.
    pub expired: bool,
}

/// The history.
impl Store {
    /// A page of the history (see [`HistoryQuery`]). On PostgreSQL every change committed
    /// before the call is numbered first, so a page never lacks one that a later page could
    /// show below its cursor.
    pub async fn history(&self, query: HistoryQuery) -> Result<ChangePage, StoreError> {
        on_backend!(self, history(query))
    }

    /// Whether the database tells of changes as they commit ([`Store::listen_for_changes`]):
    /// PostgreSQL does; SQLite's changes are found by looking.
    pub fn notifies_changes(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// Calls `on_change` whenever another node tells of changes it made, and tells the other
    /// nodes each time `changed_here` is signalled, until the listening connection fails or
    /// closes. Only a wake-up: a notification lost meanwhile is made up for by looking at the
    /// log. On SQLite it returns at once.
    pub async fn listen_for_changes(
        &self,
        on_change: impl Fn() + Send + 'static,
        changed_here: &tokio::sync::Notify,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(_) => Ok(()),
            Store::Postgres(p) => p.listen_for_changes(on_change, changed_here).await,
        }
    }

    /// The newest revision of the change log: where a feed that starts now begins.
    pub async fn latest_revision(&self) -> Result<i64, StoreError> {
        on_backend!(self, latest_change())
    }

    /// Records, as changes by the timer, every timed status that ended and every absence
    /// that started or ended at or before `now` (Unix milliseconds) and is not recorded yet,
    /// each with the moment it was due. Exactly once across nodes: each is claimed in the
    /// transaction that records it. Says how many it recorded.
    pub async fn record_due_timers(&self, now: i64) -> Result<usize, StoreError> {
        on_backend!(self, record_due_timers(now))
    }

    /// Deletes the changes made before `before` (Unix milliseconds), and any beyond the newest
    /// [`MAX_CHANGES_KEPT`], oldest first, in steps that each hold the write lock briefly. The
    /// newest change always stays: numbering goes on from it.
    pub async fn trim_history(&self, before: i64) -> Result<(), StoreError> {
        on_backend!(self, trim_history(before))
    }

    /// The changes numbered after revision `after`, oldest first, at most `limit`: every
    /// change the caches follow, those outside the history included.
    pub async fn user_changes_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<UserChange>, StoreError> {
        on_backend!(self, user_changes_after(after, limit))
    }
}

/// Where a page of `query` starts and ends, in revisions: after `after` up to `through`, given
/// the oldest change the log keeps and the newest. `Err` with the page to answer when the
/// cursor is older than what is kept.
pub(super) fn page_window(
    query: &HistoryQuery,
    oldest: i64,
    latest: i64,
) -> Result<(i64, i64), ChangePage> {
    let after = match query.after {
        // Anything below the oldest change kept may have been trimmed.
        Some(after) if after < oldest - 1 => {
            return Err(ChangePage {
                changes: Vec::new(),
                reached: after,
                expired: true,
            });
        }
        Some(after) => after,
        None => (oldest - 1).max(0),
    };
    let latest = latest.max(after);
    let through = if query.associate.is_some() || query.since.is_some() {
        latest.min(after.saturating_add(FILTER_WINDOW))
    } else {
        latest
    };
    Ok((after, through))
}

/// The page of the changes read in a window ending at `through`, at most `limit` of them: a
/// full page reaches its last change, one that is not full read the whole window.
pub(super) fn page_of(changes: Vec<Change>, limit: usize, through: i64) -> ChangePage {
    let reached = match changes.last() {
        Some(last) if changes.len() >= limit => last.revision,
        _ => through,
    };
    ChangePage {
        changes,
        reached,
        expired: false,
    }
}

/// A status as a change records it.
pub(super) fn recorded(effective: &Effective<'_>) -> RecordedStatus {
    RecordedStatus {
        presence: effective.presence.clone(),
        until: effective.until,
    }
}

/// The record of an absence's start or end (`edge`): the presence just before it and at it,
/// or `None` when the edge changes nothing the user's presence shows.
pub(super) fn edge_change(
    presence: &Presence,
    edge: i64,
) -> Option<(RecordedStatus, RecordedStatus)> {
    let before = recorded(&presence.at(edge - 1));
    let after = recorded(&presence.at(edge));
    (before != after).then_some((before, after))
}

/// An absence as the history shows it.
pub(super) fn absence_json(absence: &Absence) -> String {
    json!({
        "id": absence.id,
        "from": crate::timestamp::format(absence.from),
        "until": crate::timestamp::format(absence.until),
        "message": absence.message.as_deref(),
    })
    .to_string()
}

/// What a planned or cancelled absence did to the presence at `at`: the record's from and to.
pub(super) fn absence_change(
    before: &Presence,
    after: &Presence,
    at: i64,
) -> (RecordedStatus, RecordedStatus) {
    (recorded(&before.at(at)), recorded(&after.at(at)))
}

/// The columns a change's record is read from, of `user_change c`, in [`change_from_row`]'s
/// order.
macro_rules! change_columns {
    () => {
        "c.revision, c.at, c.associate_id, c.kind, c.from_status, c.from_message, c.from_until,
         c.to_status, c.to_message, c.to_until, c.absence, c.by_kind, c.by_associate,
         c.via_scheme, c.via_application"
    };
}
pub(super) use change_columns;

/// The values of [`change_columns`], however a backend reads them.
pub(super) struct ChangeColumns {
    pub revision: i64,
    pub at: i64,
    pub associate_id: i32,
    pub kind: String,
    pub from: (Option<i64>, Option<String>, Option<i64>),
    pub to: (Option<i64>, Option<String>, Option<i64>),
    pub absence: Option<String>,
    pub by_kind: Option<String>,
    pub by_associate: Option<i32>,
    pub via_scheme: Option<String>,
    pub via_application: Option<String>,
}

impl ChangeColumns {
    pub fn into_change(self) -> Result<Change, StoreError> {
        let status = |(number, message, until): (Option<i64>, Option<String>, Option<i64>)| {
            number
                .map(|number| {
                    Ok::<_, StoreError>(RecordedStatus {
                        presence: UserPresenceStatus {
                            status: super::status_from_column(number)?,
                            message: super::message_from_column(message)?,
                        },
                        until,
                    })
                })
                .transpose()
        };
        Ok(Change {
            revision: self.revision,
            at: self.at,
            associate_id: AssociateId::new(self.associate_id),
            kind: ChangeKind::from_name(&self.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("change kind {}", self.kind)))?,
            from: status(self.from)?,
            to: status(self.to)?,
            absence: self.absence,
            by: self
                .by_kind
                .map(|kind| by_json(&kind, self.by_associate.map(AssociateId::new))),
            via: self
                .via_scheme
                .map(|scheme| via_json(&scheme, self.via_application.as_deref())),
        })
    }
}

/// Who a write is by and through what, as the row and the log keep it: four short columns
/// (`by_kind`, `by_associate`, `via_scheme`, `via_application`) rather than JSON text, as every
/// Set writes them twice, on the row and into the log.
pub(super) struct WrittenBy {
    pub kind: &'static str,
    pub associate: Option<i32>,
    pub scheme: Option<&'static str>,
    pub application: Option<String>,
}

impl WrittenBy {
    pub fn of(actor: &Actor) -> Self {
        Self {
            kind: actor.by.kind(),
            associate: actor.by.associate().map(AssociateId::get),
            scheme: actor.via.as_ref().map(|via| via.scheme),
            application: actor.via.as_ref().and_then(|via| via.application.clone()),
        }
    }
}
