//! The writer thread: the one connection that writes, owned by one thread. No write runs on the
//! async runtime's workers and no lock is held across one, so a slow disk or another process
//! holding the database's write lock stalls only the writes waiting here, never a request that
//! needs no write.
//!
//! Sets are gathered into batches on the runtime, by a task that lets every other request ready
//! to run go first (so that their Sets join the batch), and each batch is committed by the
//! thread in one transaction: under load many Sets share one commit (one WAL append, one round
//! of locks, one wake-up of the thread) while alone a Set is committed at once. Each is answered
//! only after its commit, so durability is what a commit of its own would give. At most so many
//! Sets wait for their commit; past that a Set is refused as busy (a 503) and nothing is stored.
//! Any other write is a job of its own, run in turn.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};

use rusqlite::{Connection, params};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::changes::latest_revision;
use super::{Users, in_transaction};
use crate::domain::{AssociateId, UserPresenceStatus};
use crate::store::cache::OwnSet;
use crate::store::history::WrittenBy;
use crate::store::{StoreError, unix_millis};

/// At most this many Sets share one commit.
const MAX_BATCH: usize = 256;

/// Jobs waiting for the thread at most: batches of Sets and other writes. A caller waits for
/// room; the Sets in them are bounded by the Set queue besides.
const JOB_QUEUE: usize = 64;

/// Sends writes to the writer thread; the thread ends when the last sender is dropped.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
    /// Sets, to the task that gathers them into batches: started by the first Set, on the
    /// runtime that Set runs on, as opening a store needs no runtime.
    sets: OnceLock<mpsc::UnboundedSender<PresenceWrite>>,
    /// One permit per Set waiting for its commit, held until it is answered.
    waiting: Arc<Semaphore>,
    /// The permits there are in all.
    set_queue: usize,
}

enum Job {
    Sets(Vec<PresenceWrite>),
    /// Any other write; it answers its caller itself.
    Other(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// A Set waiting for its commit.
struct PresenceWrite {
    associate_id: AssociateId,
    presence: UserPresenceStatus,
    /// Who the Set is by, and through what, as the history records it.
    by: WrittenBy,
    reply: oneshot::Sender<Result<Option<UserPresenceStatus>, StoreError>>,
    /// Given back when the Set is answered (or dropped).
    _waiting: OwnedSemaphorePermit,
}

impl Writer {
    /// Starts the thread that owns `connection`. At most `set_queue` Sets wait for their
    /// commit at once.
    pub fn start(
        connection: Connection,
        users: Arc<Users>,
        set_queue: usize,
    ) -> std::io::Result<Self> {
        let (jobs, waiting) = mpsc::channel(JOB_QUEUE);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(connection, &users, waiting))?;
        Ok(Self {
            jobs,
            sets: OnceLock::new(),
            waiting: Arc::new(Semaphore::new(set_queue.max(1))),
            set_queue: set_queue.max(1),
        })
    }

    /// Sets waiting for their commit now.
    pub fn sets_waiting(&self) -> usize {
        self.set_queue
            .saturating_sub(self.waiting.available_permits())
    }

    /// Runs `work` on the writing connection and answers what it returns. Waits for room in
    /// the queue: the callers are administration and sign-ins, bounded by the requests in
    /// flight.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Other(Box::new(move |connection| {
            let _ = reply.send(work(connection));
        }));
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::TaskFailed)?;
        answer.await.map_err(|_| StoreError::TaskFailed)?
    }

    /// Stores a presence, answering once its commit is done; [`StoreError::Busy`] at once, with
    /// nothing stored, when the Set queue is full.
    pub async fn set_presence(
        &self,
        associate_id: AssociateId,
        presence: UserPresenceStatus,
        by: WrittenBy,
    ) -> Result<Option<UserPresenceStatus>, StoreError> {
        let waiting = self
            .waiting
            .clone()
            .try_acquire_owned()
            .map_err(|_| StoreError::Busy)?;
        let (reply, answer) = oneshot::channel();
        let write = PresenceWrite {
            associate_id,
            presence,
            by,
            reply,
            _waiting: waiting,
        };
        self.sets
            .get_or_init(|| {
                let (sets, gathered) = mpsc::unbounded_channel();
                tokio::spawn(gather_sets(gathered, self.jobs.clone()));
                sets
            })
            .send(write)
            .map_err(|_| StoreError::TaskFailed)?;
        answer.await.map_err(|_| StoreError::TaskFailed)?
    }
}

/// Gathers Sets into batches for the thread: after the first, every other request ready to run
/// goes first, so that its Set joins the batch. Moves values only; nothing here touches the
/// database.
async fn gather_sets(mut sets: mpsc::UnboundedReceiver<PresenceWrite>, jobs: mpsc::Sender<Job>) {
    while let Some(first) = sets.recv().await {
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        tokio::task::yield_now().await;
        while batch.len() < MAX_BATCH {
            match sets.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        if jobs.send(Job::Sets(batch)).await.is_err() {
            return;
        }
    }
}

/// The writer thread: every job in turn, until every sender is gone.
fn run(mut connection: Connection, users: &Users, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // A job taken while gathering Sets, to run after their commit.
    let mut next = None;
    loop {
        let Some(job) = next.take().or_else(|| jobs.blocking_recv()) else {
            return;
        };
        match job {
            Job::Other(work) => survive_panic(&mut connection, |connection| work(connection)),
            Job::Sets(sets) => {
                batch.extend(sets);
                // Batches that queued up while the last commit ran share this one.
                loop {
                    match jobs.try_recv() {
                        Ok(Job::Sets(sets)) if batch.len() + sets.len() <= MAX_BATCH => {
                            batch.extend(sets);
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                survive_panic(&mut connection, |connection| {
                    commit_and_answer(connection, users, &mut batch);
                });
                // Answered, or, after a panic, dropped: their callers learn it either way.
                batch.clear();
            }
        }
    }
}

/// Runs a job so that a panic in it ends the job, not the thread: its callers learn it as
/// their replies are dropped, any transaction it left open is rolled back, and every later
/// write is taken as before.
fn survive_panic(connection: &mut Connection, job: impl FnOnce(&mut Connection)) {
    if std::panic::catch_unwind(AssertUnwindSafe(|| job(connection))).is_err() {
        tracing::error!("a database write panicked");
        if !connection.is_autocommit()
            && let Err(error) = connection.execute_batch("ROLLBACK")
        {
            tracing::error!(%error, "cannot roll back after a panicked write");
        }
    }
}

/// Commits a batch of Sets and answers each.
fn commit_and_answer(connection: &Connection, users: &Users, batch: &mut Vec<PresenceWrite>) {
    match commit_presence_batch(connection, users, batch) {
        Ok(stored) => {
            for (write, stored) in batch.drain(..).zip(stored) {
                let _ = write.reply.send(Ok(stored));
            }
        }
        Err(error) => {
            let error = StoreError::from(error);
            crate::repeated::COMMIT_FAILED.report(|more| {
                tracing::error!(%error, sets = batch.len(), more, "committing Sets failed");
            });
            for write in batch.drain(..) {
                let _ = write.reply.send(Err(error.for_each_caller()));
            }
        }
    }
}

/// One transaction for a batch of Sets: each stored as given (`None` for an associate who is
/// no Service user), or, if any statement or the commit fails, none. A failed statement fails
/// the batch, as SQLite may already have rolled the transaction back (a full disk, an I/O
/// error), leaving the statements after it to commit one by one.
fn commit_presence_batch(
    connection: &Connection,
    users: &Users,
    batch: &[PresenceWrite],
) -> Result<Vec<Option<UserPresenceStatus>>, rusqlite::Error> {
    let now = unix_millis();
    let mut presences = Vec::with_capacity(batch.len());
    // Read with the write lock held: nobody else can commit until this transaction has.
    let (before, after, mark_before, stored) =
        in_transaction(connection, "BEGIN IMMEDIATE", |tx| {
            let before = latest_revision(tx)?;
            let mark_before = users.look();
            // Nothing is returned or read back: the cache finds the associate's login, whose
            // cached credentials carry the status, itself (`UserCache::apply_own`).
            // A SuperOffice Set ends any timed status. It writes the revision its change is
            // about to get, so that the trigger need not write the row again to put it there
            // (the trigger still would, were it wrong).
            let mut update = tx.prepare_cached(
                "UPDATE service_user SET status = ?2, message = ?3, until = NULL, updated_at = ?4,
                                         by_kind = ?5, by_associate = ?6, via_scheme = ?7,
                                         via_application = ?8, revision = ?9
                 WHERE associate_id = ?1",
            )?;
            let mut stored = Vec::with_capacity(batch.len());
            for write in batch {
                // A Set whose caller is gone (its request timed out, its client left) is not
                // stored: a failed request changes nothing.
                if write.reply.is_closed() {
                    stored.push(None);
                    continue;
                }
                // The trigger logs one change, numbered one past the last (a log row's
                // revision is its rowid), and this transaction holds the write lock.
                let revision = before + presences.len() as i64 + 1;
                let updated = update.execute(params![
                    write.associate_id.get(),
                    write.presence.status.number(),
                    write.presence.message.as_deref(),
                    now,
                    write.by.kind,
                    write.by.associate,
                    write.by.scheme,
                    write.by.application,
                    revision
                ])?;
                if updated == 0 {
                    stored.push(None);
                    continue;
                }
                presences.push(OwnSet {
                    associate_id: write.associate_id,
                    presence: write.presence.clone(),
                    revision,
                    changed_at: now,
                });
                stored.push(Some(write.presence.clone()));
            }
            // The trigger logged one change per updated row, each numbered one past the
            // largest revision (a log row's revision is its rowid): no need to ask again.
            let after = before + presences.len() as i64;
            debug_assert_eq!(latest_revision(tx)?, after);
            Ok::<_, rusqlite::Error>((before, after, mark_before, stored))
        })?;
    // This commit is the only one since `mark_before` if the header counts exactly one more.
    let marks = mark_before
        .zip(users.look())
        .filter(|(before, after)| after.follows(before));
    // A refresh of the cache in progress reads this commit back itself, or is followed by one
    // that does (the wal-index moved on from the mark it took); applying this commit beside it
    // could mix two revisions, so it is left to the refresh.
    if let Ok(_no_refresh_meanwhile) = users.refreshing.try_lock() {
        users.cache.apply_own(before, after, presences, marks);
    }
    Ok(stored)
}
