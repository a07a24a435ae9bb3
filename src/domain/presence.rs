use std::sync::Arc;

use super::{Message, UserStatus};

/// The `UserPresenceStatus` carrier: what both operations return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPresenceStatus {
    pub status: UserStatus,
    pub message: Message,
}

impl UserPresenceStatus {
    /// Present, with no message: what a timed status turns into when its time is up.
    pub const fn present() -> Self {
        Self {
            status: UserStatus::StatusNormal,
            message: Message::none(),
        }
    }
}

/// A planned absence: the user is not present from `from` up to (not including) `until`, both
/// Unix milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Absence {
    pub id: i64,
    pub from: i64,
    pub until: i64,
    pub message: Message,
}

impl Absence {
    pub fn covers(&self, at: i64) -> bool {
        self.from <= at && at < self.until
    }

    pub fn overlaps(&self, from: i64, until: i64) -> bool {
        self.from < until && from < self.until
    }
}

/// A Service user's presence as stored, with everything that decides what it is at a given
/// moment: whatever the time, [`Presence::at`] answers from this alone, so every node answers
/// the same at the same moment without waiting for a timer to fire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presence {
    pub login: Arc<str>,
    pub stored: UserPresenceStatus,
    /// When a timed `StatusNotAvailable` ends (Unix milliseconds).
    pub until: Option<i64>,
    /// The user's planned absences, by start: those current and to come, and perhaps some that
    /// ended lately. Shared, and `None` for the many users who plan none, so that copying a
    /// presence out of the cache costs no allocation.
    pub absences: Option<Arc<[Absence]>>,
    /// The revision of the user's last change.
    pub revision: i64,
    /// When the user last changed (Unix milliseconds).
    pub changed_at: i64,
}

/// What a presence is at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective<'a> {
    pub presence: UserPresenceStatus,
    /// The end of the timed status, while it has not passed.
    pub until: Option<i64>,
    /// The planned absence in force.
    pub absence: Option<&'a Absence>,
}

impl Effective<'_> {
    /// Whether tickets are assigned to the user now.
    pub fn available(&self) -> bool {
        self.presence.status == UserStatus::StatusNormal
    }
}

impl Presence {
    /// The presence at `now` (Unix milliseconds), by these rules in turn: a status only an
    /// administrator sets stands as stored; a planned absence in force makes the user not
    /// present, with its message; a timed status whose time is up is present with no message;
    /// otherwise the status stands as stored.
    pub fn at(&self, now: i64) -> Effective<'_> {
        let until = self.until.filter(|&until| now < until);
        if !self.stored.status.is_self_service() {
            return Effective {
                presence: self.stored.clone(),
                until,
                absence: None,
            };
        }
        let absence = self.absence_at(now);
        let presence = match (absence, self.until) {
            (Some(absence), _) => UserPresenceStatus {
                status: UserStatus::StatusNotAvailable,
                message: absence.message.clone(),
            },
            (None, Some(ends)) if ends <= now => UserPresenceStatus::present(),
            (None, _) => self.stored.clone(),
        };
        Effective {
            presence,
            until,
            absence,
        }
    }

    /// The first moment after `now` at which the presence may read otherwise than at `now`:
    /// when its timed status ends or one of its absences starts or ends. [`Presence::at`] is
    /// the same at every moment from `now` up to it (`i64::MAX`: for good).
    pub fn steady_until(&self, now: i64) -> i64 {
        let absences = self.absences.as_deref().unwrap_or_default();
        self.until
            .into_iter()
            .chain(absences.iter().flat_map(|a| [a.from, a.until]))
            .filter(|&edge| edge > now)
            .min()
            .unwrap_or(i64::MAX)
    }

    /// The planned absence in force at `now`, if any.
    pub fn absence_at(&self, now: i64) -> Option<&Absence> {
        self.absences.as_deref()?.iter().find(|a| a.covers(now))
    }

    /// The planned absences that have not ended at `now`.
    pub fn planned(&self, now: i64) -> impl Iterator<Item = &Absence> {
        self.absences
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter(move |a| now < a.until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn stored(status: UserStatus, message: Option<&str>) -> UserPresenceStatus {
        UserPresenceStatus {
            status,
            message: Message::new(message.map(str::to_owned)).unwrap(),
        }
    }

    fn presence(
        stored: UserPresenceStatus,
        until: Option<i64>,
        absences: &[(i64, i64)],
    ) -> Presence {
        let absences: Vec<Absence> = absences
            .iter()
            .enumerate()
            .map(|(i, &(from, until))| Absence {
                id: i as i64 + 1,
                from,
                until,
                message: Message::new(Some(format!("away {}", i + 1))).unwrap(),
            })
            .collect();
        Presence {
            login: "anna".into(),
            stored,
            until,
            absences: (!absences.is_empty()).then(|| absences.into()),
            revision: 1,
            changed_at: 0,
        }
    }

    #[test]
    fn a_timed_status_ends_exactly_at_its_until() {
        let away = stored(UserStatus::StatusNotAvailable, Some("Back at 14:00"));
        let p = presence(away.clone(), Some(10 * HOUR), &[]);
        assert_eq!(p.at(10 * HOUR - 1).presence, away);
        assert_eq!(p.at(10 * HOUR - 1).until, Some(10 * HOUR));
        let after = p.at(10 * HOUR);
        assert_eq!(after.presence, UserPresenceStatus::present());
        assert_eq!(after.until, None);
        assert!(after.available());
    }

    #[test]
    fn an_absence_rules_from_its_start_up_to_its_end() {
        let p = presence(
            stored(UserStatus::StatusNormal, None),
            None,
            &[(HOUR, 2 * HOUR)],
        );
        assert!(p.at(HOUR - 1).available());
        let during = p.at(HOUR);
        assert_eq!(during.presence.status, UserStatus::StatusNotAvailable);
        assert_eq!(during.presence.message.as_deref(), Some("away 1"));
        assert_eq!(during.absence.map(|a| a.id), Some(1));
        assert!(p.at(2 * HOUR).available());
        assert_eq!(p.planned(2 * HOUR).count(), 0);
        assert_eq!(p.planned(2 * HOUR - 1).count(), 1);
    }

    #[test]
    fn an_absence_outranks_a_timed_status_and_an_administrators_status_outranks_both() {
        let away = stored(UserStatus::StatusNotAvailable, Some("Lunch"));
        let p = presence(away, Some(3 * HOUR), &[(HOUR, 2 * HOUR)]);
        assert_eq!(p.at(HOUR).presence.message.as_deref(), Some("away 1"));
        assert_eq!(p.at(2 * HOUR).presence.message.as_deref(), Some("Lunch"));
        assert!(p.at(3 * HOUR).available());

        let system = stored(UserStatus::StatusSystem, Some("Robot"));
        let p = presence(system.clone(), None, &[(HOUR, 2 * HOUR)]);
        assert_eq!(p.at(HOUR).presence, system);
        assert_eq!(p.at(HOUR).absence, None);
    }

    #[test]
    fn absences_overlap_unless_one_ends_where_the_other_starts() {
        let a = Absence {
            id: 1,
            from: HOUR,
            until: 2 * HOUR,
            message: Message::none(),
        };
        assert!(a.overlaps(0, HOUR + 1));
        assert!(a.overlaps(HOUR + 1, HOUR + 2));
        assert!(!a.overlaps(0, HOUR));
        assert!(!a.overlaps(2 * HOUR, 3 * HOUR));
    }

    proptest::proptest! {
        #[test]
        fn a_presence_reads_the_same_until_it_is_no_longer_steady(
            status in 0_usize..3,
            until in proptest::option::of(0_i64..40),
            absences in proptest::collection::vec((0_i64..40, 1_i64..10), 0..4),
            now in 0_i64..40,
        ) {
            let status = [UserStatus::StatusNormal, UserStatus::StatusNotAvailable, UserStatus::StatusReadOnly][status];
            let absences: Vec<(i64, i64)> = absences.into_iter().map(|(from, length)| (from, from + length)).collect();
            let presence = presence(stored(status, Some("here")), until, &absences);
            let steady = presence.steady_until(now);
            proptest::prop_assert!(steady > now);
            for later in now..steady.min(50) {
                proptest::prop_assert_eq!(presence.at(later), presence.at(now), "at {}", later);
            }
        }
    }
}
