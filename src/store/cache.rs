//! The two lookups every request makes, presence by associate and credentials by login,
//! answered from memory, yet never stale.
//!
//! The database logs and numbers every change to a Service user in `user_change`, by the
//! associate and the login it was to (migrations 0004 and 0005; see each backend's
//! `changes.rs`). The cache knows the revision its entries reflect; before it answers, its
//! backend makes sure nothing was committed since (on SQLite by reading the wal-index, which
//! costs no system call; on PostgreSQL by one query shared among the requests waiting for one)
//! and otherwise applies every change after that revision. So a change by another process or
//! node is seen by the first request that starts after its commit.
//!
//! Entries are made on first use, not loaded up front, so start-up does not depend on the
//! number of associates and memory only on how many of them are asked about. Each kind is
//! bounded by entries and by bytes (a lookup of every associate id, or of logins as long as a
//! client cares to send, evicts older entries rather than grow the process).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use std::sync::Arc;

use super::{Credentials, folded};
use crate::bounded::{Bounded, WORD, Weigh, allocated};
use crate::domain::{AssociateId, Presence, UserPresenceStatus};

/// Entries of each kind beyond this many evict an arbitrary other one: room for every
/// associate a large help desk asks about.
const MAX_ENTRIES: usize = 1 << 18;

/// Bytes of each kind's entries beyond this evict arbitrary others: the entries' own size and
/// the texts they hold (messages, logins, password hashes).
const MAX_BYTES: usize = 64 << 20;

/// The same for presences, counted as allocated (see their `Weigh`): about 120 000 users with
/// a planned absence each. With what the allocator and the readers' page caches take beside
/// it, reading a million such users stays within 64 MB (BENCHMARKS.md).
const MAX_PRESENCE_BYTES: usize = 32 << 20;

/// More changed users than this at once (a bulk import, say) are not applied one by one:
/// the cache is emptied instead.
pub(super) const MAX_CHANGES: usize = 10_000;

/// A Service user as of some revision, as a change set carries it.
#[derive(Clone, Debug)]
pub(super) struct ChangedUser {
    pub login: String,
    pub credentials: Credentials,
    /// `None` when the row read is newer than the revision known for it (on PostgreSQL, a
    /// change committed but not yet numbered): its entry is dropped, to be read afresh.
    pub presence: Option<Arc<Presence>>,
}

/// A Set this process committed, as the cache applies it.
#[derive(Clone, Debug)]
pub(super) struct OwnSet {
    pub associate_id: AssociateId,
    pub presence: UserPresenceStatus,
    pub revision: i64,
    pub changed_at: i64,
}

/// A login that no longer names the associate it did.
#[derive(Clone, Debug)]
pub(super) struct RemovedLogin {
    pub login: String,
    pub associate_id: AssociateId,
}

/// Everything changed after one revision, up to and including `revision`.
#[derive(Debug, Default)]
pub(super) struct Changes {
    pub revision: i64,
    pub changed: Vec<ChangedUser>,
    pub removed: Vec<RemovedLogin>,
    /// More changed than is worth applying one by one: the cache starts afresh.
    pub too_many: bool,
}

/// The cache, and `M`: what the backend last saw of the database when it made sure the
/// entries were current (on SQLite, a reading of the wal-index).
pub(super) struct UserCache<M> {
    state: RwLock<State<M>>,
}

pub(super) struct State<M> {
    mark: Option<M>,
    revision: i64,
    /// `None`: the associate is no Service user. Hashed by foldhash rather than SipHash: a
    /// batch read looks up a thousand associates, and SipHash was 7 % of its instructions
    /// (BENCHMARKS.md). foldhash is seeded at random and, by its authors' account, minimally
    /// resistant to collisions chosen by a client; the keys here are 32-bit associate ids,
    /// which a client can choose but not aim without learning the seed first.
    presence: Bounded<AssociateId, Option<Arc<Presence>>, foldhash::fast::RandomState>,
    /// By login in ASCII lower case, as logins match in any case. SipHash: the logins are
    /// strings of any length a client sends.
    credentials: Bounded<Box<str>, Option<Credentials>>,
    /// The key in `credentials` of each associate cached there as a user: a Set names the
    /// associate, not the login, and changes the status the credentials carry.
    logins: HashMap<AssociateId, Box<str>, foldhash::fast::RandomState>,
    /// Lookups answered from the entries, and lookups that found nothing, for the metrics.
    /// Counted under the read lock, which every lookup takes anyway.
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<M: Copy + PartialEq> UserCache<M> {
    pub fn new(revision: i64) -> Self {
        Self {
            state: RwLock::new(State {
                mark: None,
                revision,
                presence: Bounded::new(MAX_ENTRIES, MAX_PRESENCE_BYTES),
                credentials: Bounded::new(MAX_ENTRIES, MAX_BYTES),
                logins: HashMap::default(),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
        }
    }

    /// Lookups answered from memory and lookups that were not, since the cache was made.
    pub fn lookups(&self) -> (u64, u64) {
        let state = self.entries();
        (
            state.hits.load(Ordering::Relaxed),
            state.misses.load(Ordering::Relaxed),
        )
    }

    /// The entries, if they are current as of `mark` (a fresh look at the database).
    pub fn current(&self, mark: Option<M>) -> Option<RwLockReadGuard<'_, State<M>>> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        (mark.is_some() && state.mark == mark).then_some(state)
    }

    /// The entries as they are, for a caller that has just applied the latest changes but
    /// has no mark to show for it.
    pub fn entries(&self) -> RwLockReadGuard<'_, State<M>> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The revision the entries reflect: fetch the changes after it.
    pub fn revision(&self) -> i64 {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .revision
    }

    /// Applies the changes after [`UserCache::revision`], read after the database looked
    /// like `mark`; the entries are then current as of `mark`.
    pub fn apply(&self, changes: Changes, mark: Option<M>) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        // Revisions going back means another database took this one's place (a restored
        // backup): nothing cached is known to hold.
        if changes.too_many || changes.revision < state.revision {
            state.presence.clear();
            state.credentials.clear();
            state.logins.clear();
        }
        // Removals first: a login removed and then given to someone else arrives as both.
        for removed in changes.removed {
            state.presence.remove(&removed.associate_id);
            state.remove_credentials(&folded(&removed.login));
        }
        state.apply_changes(changes.changed);
        state.revision = changes.revision;
        state.mark = mark;
    }

    /// Applies a commit of Sets this process made, from revision `before` to `after`:
    /// `presences` holds every presence it changed, as the commit wrote them, so nothing need
    /// be read back. With `marks`, the marks just before and just after the
    /// commit, between which it was the only one: entries current as of the first are then
    /// current as of the second.
    ///
    /// Entries not at `before` are left for the next refresh, which reads the commit back.
    pub fn apply_own(
        &self,
        before: i64,
        after: i64,
        presences: Vec<OwnSet>,
        marks: Option<(M, M)>,
    ) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.revision != before {
            return;
        }
        let current = marks.filter(|(mark_before, _)| state.mark == Some(*mark_before));
        for set in presences {
            state.set_presence(set);
        }
        state.revision = after;
        if let Some((_, mark_after)) = current {
            state.mark = Some(mark_after);
        }
    }

    /// Keeps what a lookup read from the database at `revision`, unless changes after that
    /// revision were applied meanwhile, which the entry might not reflect.
    pub fn insert_presence(
        &self,
        associate_id: AssociateId,
        presence: Option<Arc<Presence>>,
        revision: i64,
    ) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if revision >= state.revision {
            state.presence.insert(associate_id, presence);
        }
    }

    /// The same for credentials.
    pub fn insert_credentials(&self, login: &str, credentials: Option<Credentials>, revision: i64) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if revision >= state.revision {
            state.put_credentials(folded(login).into(), credentials);
        }
    }
}

impl<M> State<M> {
    /// Updates the entries of changed users that are cached; the others are read on first
    /// use.
    fn apply_changes(&mut self, changed: Vec<ChangedUser>) {
        for user in changed {
            let associate_id = user.credentials.associate_id;
            if self.presence.contains_key(&associate_id) {
                match user.presence {
                    Some(presence) => {
                        self.presence.insert(associate_id, Some(presence));
                    }
                    None => {
                        self.presence.remove(&associate_id);
                    }
                }
            }
            let login = folded(&user.login);
            if self.credentials.contains_key(&*login) {
                self.put_credentials(login.into(), Some(user.credentials));
            }
        }
    }

    /// A Set's change: the presence (a Set ends any timed status), and the status the
    /// associate's credentials carry.
    fn set_presence(&mut self, set: OwnSet) {
        let associate_id = set.associate_id;
        if let Some(login) = self.logins.get(&associate_id)
            && let Some(Some(credentials)) = self.credentials.get_mut(login)
        {
            // The status is a number: the entry's size does not change.
            credentials.status = set.presence.status;
        }
        if let Some(Some(cached)) = self.presence.get(&associate_id) {
            let presence = Presence {
                login: cached.login.clone(),
                stored: set.presence,
                until: None,
                absences: cached.absences.clone(),
                revision: set.revision,
                changed_at: set.changed_at,
            };
            self.presence.insert(associate_id, Some(Arc::new(presence)));
        } else {
            // Cached as no Service user, yet a Set stored a presence: read it afresh.
            self.presence.remove(&associate_id);
        }
    }

    /// Caches `credentials` under `login` (folded), keeping `logins` in step.
    fn put_credentials(&mut self, login: Box<str>, credentials: Option<Credentials>) {
        let owner = credentials.as_ref().map(|c| c.associate_id);
        let (previous, evicted) = self.credentials.insert(login.clone(), credentials);
        if let Some(Some(previous)) = previous
            && Some(previous.associate_id) != owner
        {
            self.forget_login(previous.associate_id, &login);
        }
        for (victim, entry) in evicted {
            if let Some(evicted) = entry {
                self.forget_login(evicted.associate_id, &victim);
            }
        }
        if let Some(owner) = owner {
            self.logins.insert(owner, login);
        }
    }

    fn remove_credentials(&mut self, login: &str) {
        if let Some(Some(removed)) = self.credentials.remove(login) {
            self.forget_login(removed.associate_id, login);
        }
    }

    fn forget_login(&mut self, associate_id: AssociateId, login: &str) {
        if self
            .logins
            .get(&associate_id)
            .is_some_and(|known| **known == *login)
        {
            self.logins.remove(&associate_id);
        }
    }

    /// `None` when not cached; `Some(None)` when cached as no Service user.
    pub fn presence(&self, associate_id: AssociateId) -> Option<Option<Arc<Presence>>> {
        self.counted(self.presence.get(&associate_id).cloned())
    }

    /// [`State::presence`] of each associate, in order, and the associates not cached, whose
    /// presences the backend reads and hands to [`merged`]. Counted once for the batch: an
    /// atomic addition for each of a thousand lookups was 3 % of a batch's time.
    pub fn presences(&self, associate_ids: &[AssociateId]) -> (Vec<Cached>, Vec<AssociateId>) {
        let mut missing = Vec::new();
        let cached = associate_ids
            .iter()
            .map(|&associate_id| {
                let cached = self.presence.get(&associate_id).cloned();
                if cached.is_none() {
                    missing.push(associate_id);
                }
                cached
            })
            .collect();
        let hits = associate_ids.len() - missing.len();
        self.hits.fetch_add(hits as u64, Ordering::Relaxed);
        self.misses
            .fetch_add(missing.len() as u64, Ordering::Relaxed);
        (cached, missing)
    }

    /// Hands `visit` [`State::presence`] of each associate, in order, by reference, if every
    /// one of them is cached; gives `visit` back otherwise.
    pub fn visit_presences<T, F>(&self, associate_ids: &[AssociateId], visit: F) -> Result<T, F>
    where
        F: FnOnce(&[Option<&Arc<Presence>>]) -> T,
    {
        let found: Option<Vec<Option<&Arc<Presence>>>> = associate_ids
            .iter()
            .map(|associate_id| self.presence.get(associate_id).map(Option::as_ref))
            .collect();
        match found {
            Some(found) => {
                self.hits.fetch_add(found.len() as u64, Ordering::Relaxed);
                Ok(visit(&found))
            }
            None => Err(visit),
        }
    }

    pub fn credentials(&self, login: &str) -> Option<Option<Credentials>> {
        self.counted(self.credentials.get(&*folded(login)).cloned())
    }

    fn counted<T>(&self, found: Option<T>) -> Option<T> {
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }
}

/// A presence as the cache holds it: `None` when not cached, `Some(None)` when cached as no
/// Service user.
pub(super) type Cached = Option<Option<Arc<Presence>>>;

/// The presences of [`State::presences`], with those that were not cached filled in, in
/// order, from `read` (the presences of its missing associates, in the same order).
pub(super) fn merged(
    cached: Vec<Cached>,
    read: Vec<Option<Arc<Presence>>>,
) -> Vec<Option<Arc<Presence>>> {
    let mut read = read.into_iter();
    cached
        .into_iter()
        .map(|cached| cached.unwrap_or_else(|| read.next().flatten()))
        .collect()
}

impl Weigh for Option<Arc<Presence>> {
    /// What the entry takes from the allocator, as measured: its slot in the map, and each of
    /// its allocations (the presence, its login and message, its absences and theirs) as
    /// glibc's malloc rounds it. Counted as the allocations themselves, not their contents,
    /// the bound holds the process's memory to it (`benches/load/presence_api.sh --memory`).
    /// The presence is counted whole, though a Set's copy may share its login and absences
    /// with the entry it replaced: an estimate from above.
    fn weight(&self) -> usize {
        let text = |text: Option<&str>| text.map_or(0, |t| allocated(2 * WORD + t.len()));
        // The slot, and as much again: the map doubles as it grows, so up to half its slots
        // are empty.
        let slot = 2 * (std::mem::size_of::<AssociateId>() + std::mem::size_of::<Self>() + 1);
        slot + self.as_ref().map_or(0, |p| {
            let absences = p.absences.as_deref().map_or(0, |absences| {
                allocated(2 * WORD + std::mem::size_of_val(absences))
                    + absences
                        .iter()
                        .map(|a| text(a.message.as_deref()))
                        .sum::<usize>()
            });
            allocated(2 * WORD + std::mem::size_of::<Presence>())
                + text(Some(&p.login))
                + text(p.stored.message.as_deref())
                + absences
        })
    }
}

impl Weigh for Option<Credentials> {
    fn weight(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .as_ref()
                .and_then(|c| c.password_hash.as_deref())
                .map_or(0, str::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Message, UserStatus};

    fn user(id: i32, login: &str, status: UserStatus) -> ChangedUser {
        ChangedUser {
            login: login.into(),
            credentials: Credentials {
                associate_id: AssociateId::new(id),
                password_hash: Some("$hash".into()),
                is_admin: false,
                status,
            },
            presence: Some(present(login, status)),
        }
    }

    fn present(login: &str, status: UserStatus) -> Arc<Presence> {
        Arc::new(Presence {
            login: login.into(),
            stored: UserPresenceStatus {
                status,
                message: Message::none(),
            },
            until: None,
            absences: None,
            revision: 0,
            changed_at: 0,
        })
    }

    /// What an own commit of one Set passes to `apply_own`.
    fn set_to(id: i32, status: UserStatus) -> Vec<OwnSet> {
        vec![OwnSet {
            associate_id: AssociateId::new(id),
            presence: UserPresenceStatus {
                status,
                message: Message::none(),
            },
            revision: 0,
            changed_at: 0,
        }]
    }

    fn status_of(cache: &UserCache<u8>, mark: u8, id: i32) -> Option<Option<UserStatus>> {
        let state = cache.current(Some(mark)).expect("current");
        state
            .presence(AssociateId::new(id))
            .map(|p| p.map(|p| p.stored.status))
    }

    #[test]
    fn entries_count_only_while_the_mark_matches() {
        let cache = UserCache::<u8>::new(0);
        assert!(cache.current(Some(1)).is_none(), "never made current");
        cache.apply(Changes::default(), Some(1));
        assert!(cache.current(Some(1)).is_some());
        assert!(cache.current(Some(2)).is_none());
        assert!(
            cache.current(None).is_none(),
            "an unreadable mark is never current"
        );
    }

    #[test]
    fn changes_update_cached_entries_and_removals_evict_them() {
        let cache = UserCache::<u8>::new(0);
        cache.apply(Changes::default(), Some(1));
        cache.insert_presence(AssociateId::new(1), None, 0);
        cache.insert_credentials("Tje0", None, 0);
        assert_eq!(status_of(&cache, 1, 1), Some(None));

        let added = user(1, "tje0", UserStatus::StatusNormal);
        cache.apply(
            Changes {
                revision: 1,
                changed: vec![added, user(2, "other", UserStatus::StatusNormal)],
                ..Changes::default()
            },
            Some(2),
        );
        assert_eq!(
            status_of(&cache, 2, 1),
            Some(Some(UserStatus::StatusNormal))
        );
        assert_eq!(
            status_of(&cache, 2, 2),
            None,
            "only cached entries are updated"
        );
        let state = cache.current(Some(2)).unwrap();
        assert!(matches!(state.credentials("TJE0"), Some(Some(_))));
        drop(state);

        cache.apply(
            Changes {
                revision: 2,
                removed: vec![RemovedLogin {
                    login: "TJE0".into(),
                    associate_id: AssociateId::new(1),
                }],
                ..Changes::default()
            },
            Some(3),
        );
        let state = cache.current(Some(3)).unwrap();
        assert_eq!(state.presence(AssociateId::new(1)), None);
        assert_eq!(state.credentials("tje0"), None);
    }

    #[test]
    fn a_lookup_older_than_the_applied_changes_is_not_kept() {
        let cache = UserCache::<u8>::new(5);
        cache.apply(
            Changes {
                revision: 6,
                ..Changes::default()
            },
            Some(1),
        );
        // Read at revision 5, before a change the cache has applied: it might be stale.
        cache.insert_presence(AssociateId::new(1), None, 5);
        assert_eq!(status_of(&cache, 1, 1), None);
        cache.insert_presence(AssociateId::new(1), None, 6);
        assert_eq!(status_of(&cache, 1, 1), Some(None));
    }

    #[test]
    fn an_own_commit_keeps_entries_current_only_if_it_was_the_only_one() {
        let cache = UserCache::<u8>::new(0);
        cache.apply(
            Changes {
                revision: 3,
                ..Changes::default()
            },
            Some(1),
        );
        cache.insert_presence(
            AssociateId::new(1),
            Some(present("anna", UserStatus::StatusNormal)),
            3,
        );
        let set = |status| set_to(1, status);

        cache.apply_own(3, 4, set(UserStatus::StatusNotAvailable), Some((1, 2)));
        assert_eq!(
            status_of(&cache, 2, 1),
            Some(Some(UserStatus::StatusNotAvailable))
        );

        // Current as of mark 2, but the commit began at mark 5: someone committed between.
        cache.apply_own(4, 5, set(UserStatus::StatusNormal), Some((5, 6)));
        assert!(cache.current(Some(6)).is_none());
        assert_eq!(cache.revision(), 5);

        // Entries not at the revision the commit began from wait for a refresh.
        cache.apply_own(9, 10, set(UserStatus::StatusSystem), None);
        assert_eq!(cache.revision(), 5);
        let entries = cache.entries();
        let presence = entries.presence(AssociateId::new(1)).unwrap().unwrap();
        assert_eq!(presence.stored.status, UserStatus::StatusNormal);
    }

    #[test]
    fn an_own_set_changes_the_status_of_the_cached_credentials_by_associate() {
        let cache = UserCache::<u8>::new(0);
        cache.apply(Changes::default(), Some(1));
        let status_of_login = |login: &str| {
            cache
                .entries()
                .credentials(login)
                .map(|c| c.map(|c| c.status))
        };
        let away = |id| set_to(id, UserStatus::StatusNotAvailable);
        cache.insert_credentials(
            "Tje0",
            Some(user(1, "tje0", UserStatus::StatusNormal).credentials),
            0,
        );
        cache.apply_own(0, 1, away(1), None);
        assert_eq!(
            status_of_login("TJE0"),
            Some(Some(UserStatus::StatusNotAvailable))
        );

        // Renamed to "erik": the Set finds the new login, and the old one is gone.
        cache.apply(
            Changes {
                revision: 2,
                changed: vec![user(1, "erik", UserStatus::StatusNormal)],
                removed: vec![RemovedLogin {
                    login: "tje0".into(),
                    associate_id: AssociateId::new(1),
                }],
                ..Changes::default()
            },
            Some(2),
        );
        cache.insert_credentials(
            "erik",
            Some(user(1, "erik", UserStatus::StatusNormal).credentials),
            2,
        );
        cache.apply_own(2, 3, away(1), None);
        assert_eq!(status_of_login("tje0"), None);
        assert_eq!(
            status_of_login("erik"),
            Some(Some(UserStatus::StatusNotAvailable))
        );

        // The login given to associate 2: a Set of associate 1 no longer touches it.
        cache.apply(
            Changes {
                revision: 4,
                changed: vec![user(2, "erik", UserStatus::StatusNormal)],
                ..Changes::default()
            },
            Some(3),
        );
        cache.apply_own(4, 5, away(1), None);
        assert_eq!(
            status_of_login("erik"),
            Some(Some(UserStatus::StatusNormal))
        );
        cache.apply_own(5, 6, away(2), None);
        assert_eq!(
            status_of_login("erik"),
            Some(Some(UserStatus::StatusNotAvailable))
        );
    }

    #[test]
    fn logins_as_long_as_a_client_likes_keep_the_cache_within_its_bytes() {
        let cache = UserCache::<u8>::new(0);
        let long = "x".repeat(40 * 1024);
        for i in 0..2000 {
            cache.insert_credentials(&format!("{i}{long}"), None, 0);
        }
        let state = cache.entries();
        assert!(state.credentials.bytes() <= MAX_BYTES);
        assert!(state.credentials.len() < 2000);
    }

    #[test]
    fn too_many_changes_start_afresh() {
        let cache = UserCache::<u8>::new(0);
        cache.insert_presence(AssociateId::new(1), None, 0);
        cache.apply(
            Changes {
                revision: 9,
                too_many: true,
                ..Changes::default()
            },
            Some(1),
        );
        assert_eq!(status_of(&cache, 1, 1), None);
        assert_eq!(cache.revision(), 9);
    }
}
