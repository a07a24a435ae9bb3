//! The JSON of presences, kept from one batch read to the next.
//!
//! A presence reads the same from one moment up to its next change by itself, a timed status
//! ending or an absence starting or ending (`Presence::steady_until`); for most users, who
//! have neither, for good. Its JSON is written once, by the first batch that asks for it, and
//! copied into every later batch while the moment lies in that span, rather than written
//! afresh, a thousand times a batch (BENCHMARKS.md).
//!
//! What is kept is kept until its associate's JSON is written again; when the bounds are
//! reached, nothing more is kept, and the presences of other associates are written for each
//! request. Evicting instead would cost a help desk larger than the bounds more than keeping
//! saves: each batch would write, keep and evict a thousand JSONs, twice the work of writing
//! them (BENCHMARKS.md).
//!
//! A kept JSON belongs to one version of one presence: the cached `Arc<Presence>` it was
//! written from. A change, here or on another node, gives the store's cache a new `Arc`, and
//! the JSON of the old one no longer matches it. The JSON holds a `Weak` to its presence, so
//! that the allocation, and with it the address compared, cannot pass to another presence
//! while the JSON is kept.

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, TryLockError, Weak};

use super::wire::PresenceBody;
use crate::bounded::{Bounded, WORD, Weigh, allocated};
use crate::domain::{AssociateId, Presence};

/// Kept JSONs at most: as many as the store's cache keeps presences. The bytes below bound them
/// first.
const MAX_ENTRIES: usize = 1 << 18;

/// Bytes of kept JSON at most, counted as allocated: about 37 000 presences without a message.
const MAX_BYTES: usize = 16 << 20;

/// What a kept JSON of a presence with a short message weighs, about, and more.
const USUAL_WEIGHT: usize = 1024;

/// The kept JSON of presences, by associate.
pub struct Renderings {
    kept: RwLock<Bounded<AssociateId, Rendering, foldhash::fast::RandomState>>,
}

/// One presence's JSON, the presence it was written from, the moments between which it holds,
/// and the status it shows, for the filters.
pub struct Rendering {
    of: Weak<Presence>,
    from: i64,
    until: i64,
    status: &'static str,
    available: bool,
    json: Box<[u8]>,
}

impl Rendering {
    /// Writes the presence's JSON at `now`.
    pub fn of(associate_id: AssociateId, presence: &Arc<Presence>, now: i64) -> Self {
        let body = PresenceBody::at(associate_id, presence, now);
        let mut json = Vec::with_capacity(256);
        body.write(&mut json);
        Self {
            of: Arc::downgrade(presence),
            from: now,
            until: presence.steady_until(now),
            status: body.status,
            available: body.available,
            json: json.into_boxed_slice(),
        }
    }

    pub fn json(&self) -> &[u8] {
        &self.json
    }

    /// The status it shows, by name.
    pub fn status(&self) -> &'static str {
        self.status
    }

    pub fn available(&self) -> bool {
        self.available
    }
}

impl Weigh for Rendering {
    /// Its slot in the map (twice over, as the map doubles as it grows), its JSON, and the
    /// presence's own allocation, which the `Weak` keeps after the store has let it go.
    fn weight(&self) -> usize {
        2 * (std::mem::size_of::<AssociateId>() + std::mem::size_of::<Self>() + 1)
            + allocated(self.json.len())
            + allocated(2 * WORD + std::mem::size_of::<Presence>())
    }
}

impl Default for Renderings {
    fn default() -> Self {
        Self {
            kept: RwLock::new(Bounded::new(MAX_ENTRIES, MAX_BYTES)),
        }
    }
}

impl Renderings {
    /// The kept JSONs, to look up while a batch is written.
    pub fn kept(&self) -> Kept<'_> {
        Kept(self.kept.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Keeps JSONs written for a batch, for the batches after it: each in place of its
    /// associate's, where there is room, and never by evicting others. Not those whose presence
    /// is no longer in the store's cache (read past its bounds, or not kept there), which could
    /// never be matched again. Skipped when batches hold the lock: keeping can wait for the
    /// next batch, a batch should not wait for keeping.
    pub fn keep(&self, fresh: Vec<(AssociateId, Rendering)>) {
        if fresh.is_empty() {
            return;
        }
        let mut kept = match self.kept.try_write() {
            Ok(kept) => kept,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        for (associate_id, rendering) in fresh {
            if rendering.of.strong_count() == 0 {
                continue;
            }
            // The JSON it replaces is of another version or span, never to be answered again.
            kept.remove(&associate_id);
            if kept.has_room(associate_id.weight() + rendering.weight()) {
                kept.insert(associate_id, rendering);
            }
        }
    }
}

/// The kept JSONs, under the read lock.
pub struct Kept<'a>(
    RwLockReadGuard<'a, Bounded<AssociateId, Rendering, foldhash::fast::RandomState>>,
);

impl Kept<'_> {
    /// Whether a JSON written for the associate now would be kept, as far as this lock tells:
    /// in place of the associate's, or in room for a JSON of a usual size.
    pub fn would_keep(&self, associate_id: AssociateId) -> bool {
        self.0.contains_key(&associate_id) || self.0.has_room(USUAL_WEIGHT)
    }

    /// What is kept for this very presence at `now`, if anything: not for another version of
    /// it, nor for another span of its moments. The presence's address alone is compared, so
    /// that a batch need not read the presence.
    pub fn get(
        &self,
        associate_id: AssociateId,
        presence: &Arc<Presence>,
        now: i64,
    ) -> Option<&Rendering> {
        self.0.get(&associate_id).filter(|rendering| {
            rendering.of.as_ptr() == Arc::as_ptr(presence)
                && (rendering.from..rendering.until).contains(&now)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Absence, Message, UserPresenceStatus, UserStatus};

    const NOW: i64 = 1_796_220_000_000;

    fn presence(login: &str, status: UserStatus, revision: i64) -> Arc<Presence> {
        Arc::new(Presence {
            login: login.into(),
            stored: UserPresenceStatus {
                status,
                message: Message::none(),
            },
            until: None,
            absences: None,
            revision,
            changed_at: NOW - 1000,
        })
    }

    fn written(id: AssociateId, presence: &Presence, now: i64) -> Vec<u8> {
        let mut json = Vec::new();
        PresenceBody::at(id, presence, now).write(&mut json);
        json
    }

    #[test]
    fn a_kept_json_answers_only_for_the_presence_it_was_written_from() {
        let renderings = Renderings::default();
        let id = AssociateId::new(7);
        let first = presence("anna", UserStatus::StatusNormal, 1);
        renderings.keep(vec![(id, Rendering::of(id, &first, NOW))]);
        let kept = renderings
            .kept()
            .get(id, &first, NOW + 5)
            .map(|r| r.json().to_vec());
        assert_eq!(kept, Some(written(id, &first, NOW + 5)));
        let status = renderings
            .kept()
            .get(id, &first, NOW)
            .map(Rendering::status);
        assert_eq!(status, Some("StatusNormal"));

        // Another version, even one equal in every member, is not answered the old JSON.
        let changed = presence("anna", UserStatus::StatusNotAvailable, 2);
        let same_again = presence("anna", UserStatus::StatusNormal, 1);
        assert!(renderings.kept().get(id, &changed, NOW).is_none());
        assert!(renderings.kept().get(id, &same_again, NOW).is_none());
        assert!(
            renderings
                .kept()
                .get(AssociateId::new(8), &first, NOW)
                .is_none()
        );
        // Nor is a moment before it was written, should the clock go back.
        assert!(renderings.kept().get(id, &first, NOW - 1).is_none());

        // Let go by the store, the presence's address stays taken while its JSON is kept.
        let address = Arc::as_ptr(&first);
        drop(first);
        let others: Vec<_> = (0..1000)
            .map(|i| presence("anna", UserStatus::StatusNormal, i))
            .collect();
        assert!(others.iter().all(|other| Arc::as_ptr(other) != address));
    }

    #[test]
    fn a_kept_json_holds_until_the_presence_changes_by_itself() {
        let renderings = Renderings::default();
        let id = AssociateId::new(3);
        let hour = 3_600_000;
        let mut timed = (*presence("bob", UserStatus::StatusNotAvailable, 1)).clone();
        timed.until = Some(NOW + hour);
        timed.absences = Some(Arc::from(vec![Absence {
            id: 1,
            from: NOW + 2 * hour,
            until: NOW + 3 * hour,
            message: Message::new(Some("Holiday".into())).unwrap(),
        }]));
        let timed = Arc::new(timed);
        for now in [NOW, NOW + hour, NOW + 2 * hour, NOW + 3 * hour] {
            renderings.keep(vec![(id, Rendering::of(id, &timed, now))]);
            let kept = renderings.kept();
            let rendering = kept.get(id, &timed, now).expect("kept");
            // The same JSON as written afresh, up to the next change and not at it.
            assert_eq!(rendering.json(), written(id, &timed, now + hour - 1));
            assert!(kept.get(id, &timed, now + hour - 1).is_some());
            let lasts = now < NOW + 3 * hour;
            assert_eq!(
                kept.get(id, &timed, now + hour).is_none(),
                lasts,
                "at {now}"
            );
        }
    }

    #[test]
    fn the_kept_json_stays_within_its_bytes() {
        let renderings = Renderings::default();
        let presences: Vec<_> = (1..=100_000)
            .map(|i| {
                let login = format!("user-{i}");
                (
                    AssociateId::new(i),
                    presence(&login, UserStatus::StatusNormal, 1),
                )
            })
            .collect();
        for chunk in presences.chunks(1000) {
            let fresh = chunk
                .iter()
                .map(|(id, p)| (*id, Rendering::of(*id, p, NOW)))
                .collect();
            renderings.keep(fresh);
        }
        let kept = renderings.kept();
        assert!(kept.0.bytes() <= MAX_BYTES);
        assert!(kept.0.len() < 100_000, "{} kept", kept.0.len());
        // The first kept stay; the last are not kept, and not promised to be.
        let (first, first_presence) = &presences[0];
        let (last, last_presence) = &presences[99_999];
        assert!(kept.get(*first, first_presence, NOW).is_some());
        assert!(kept.get(*last, last_presence, NOW).is_none());
        assert!(kept.would_keep(*first) && !kept.would_keep(*last));
        drop(kept);
        // A new version of a kept presence takes its place, if it fits, evicting no other.
        let entries = renderings.kept().0.len();
        let changed = presence("user-1", UserStatus::StatusNotAvailable, 2);
        renderings.keep(vec![(*first, Rendering::of(*first, &changed, NOW))]);
        assert!(renderings.kept().get(*first, &changed, NOW).is_some());
        let (second, _) = &presences[1];
        let mut longer = (*presence("user-2", UserStatus::StatusNotAvailable, 2)).clone();
        longer.stored.message = Message::new(Some("x".repeat(255))).unwrap();
        let longer = Arc::new(longer);
        renderings.keep(vec![(*second, Rendering::of(*second, &longer, NOW))]);
        assert!(
            renderings.kept().0.len() >= entries - 1,
            "nothing else evicted"
        );
        assert!(renderings.kept().0.bytes() <= MAX_BYTES);
    }

    #[test]
    fn the_json_of_a_presence_no_one_holds_is_not_kept() {
        let renderings = Renderings::default();
        let id = AssociateId::new(9);
        let gone = presence("gone", UserStatus::StatusNormal, 1);
        let rendering = Rendering::of(id, &gone, NOW);
        drop(gone);
        renderings.keep(vec![(id, rendering)]);
        assert_eq!(renderings.kept().0.len(), 0);
    }
}
