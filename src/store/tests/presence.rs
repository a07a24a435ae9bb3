//! The presence API's storage on both backends: timed statuses, revisions, planned absences,
//! pages and batches.

use super::{fresh, presence, user};
use crate::domain::{Actor, AssociateId, Message, UserStatus};
use crate::store::{
    AbsencePlanned, MAX_PLANNED_ABSENCES, NewAbsence, StatusChange, StatusChanged, Store,
};

on_both_backends!(
    a_timed_status_is_stored_and_a_stale_revision_changes_nothing,
    revisions_grow_with_every_change_and_read_alike_everywhere,
    absences_are_planned_without_overlap_up_to_the_limit_and_cancelled,
    pages_and_batches_answer_in_associate_and_asked_order,
    upkeep_deletes_only_absences_that_ended_before_its_time,
);

const HOUR: i64 = 3_600_000;
const NOW: i64 = 1_800_000_000_000;

fn away_until(until: Option<i64>, if_revision: Option<i64>) -> StatusChange {
    StatusChange {
        presence: presence(UserStatus::StatusNotAvailable, Some("Back soon")),
        until,
        if_revision,
        at: NOW,
        actor: Actor::COMMAND_LINE,
    }
}

fn absence(from: i64, until: i64) -> NewAbsence {
    NewAbsence {
        from,
        until,
        message: Message::new(Some(format!("away from {from}"))).unwrap(),
        at: NOW,
        actor: Actor::COMMAND_LINE,
    }
}

async fn a_timed_status_is_stored_and_a_stale_revision_changes_nothing() {
    let t = fresh().await;
    let id = AssociateId::new(5);
    t.store.add_user(user(5, "dana")).await.unwrap();
    let before = t.store.presence(id).await.unwrap().unwrap();

    let stale = away_until(Some(NOW + HOUR), Some(before.revision + 1));
    assert_eq!(
        t.store.set_status(id, stale).await.unwrap(),
        StatusChanged::Stale
    );
    assert_eq!(
        t.store.read_presence(id).await.unwrap().unwrap().until,
        None
    );

    let current = away_until(Some(NOW + HOUR), Some(before.revision));
    assert_eq!(
        t.store.set_status(id, current).await.unwrap(),
        StatusChanged::Stored
    );
    let stored = t.store.presence(id).await.unwrap().unwrap();
    assert_eq!(stored.until, Some(NOW + HOUR));
    assert_eq!(stored.changed_at, NOW);
    assert!(stored.revision > before.revision);
    assert_eq!(*stored, *t.store.read_presence(id).await.unwrap().unwrap());
    assert_eq!(
        stored.at(NOW + HOUR).presence.status,
        UserStatus::StatusNormal
    );

    // SuperOffice's Set ends the timed status.
    t.store
        .set_presence(
            id,
            presence(UserStatus::StatusNotAvailable, Some("Lunch")),
            &Actor::COMMAND_LINE,
        )
        .await
        .unwrap();
    assert_eq!(t.store.presence(id).await.unwrap().unwrap().until, None);
    assert_eq!(
        t.store.read_presence(id).await.unwrap().unwrap().until,
        None
    );

    let nobody = away_until(None, None);
    assert_eq!(
        t.store
            .set_status(AssociateId::new(6), nobody)
            .await
            .unwrap(),
        StatusChanged::NoUser
    );
}

async fn revisions_grow_with_every_change_and_read_alike_everywhere() {
    let t = fresh().await;
    let other = Store::open(&t.url).unwrap();
    let id = AssociateId::new(5);
    t.store.add_user(user(5, "dana")).await.unwrap();
    t.store.add_user(user(6, "erik")).await.unwrap();
    let mut last = 0;
    for step in 0..6 {
        match step % 3 {
            0 => {
                t.store
                    .set_presence(
                        id,
                        presence(UserStatus::StatusNotAvailable, None),
                        &Actor::COMMAND_LINE,
                    )
                    .await
                    .unwrap();
            }
            1 => {
                let change = away_until(Some(NOW + HOUR), None);
                t.store.set_status(id, change).await.unwrap();
            }
            _ => {
                let from = NOW + i64::from(step) * HOUR;
                t.store
                    .plan_absence(id, absence(from, from + HOUR))
                    .await
                    .unwrap();
            }
        }
        // Another user's change between: a user's revision is its own last change's.
        t.store
            .set_presence(
                AssociateId::new(6),
                presence(UserStatus::StatusNormal, None),
                &Actor::COMMAND_LINE,
            )
            .await
            .unwrap();
        let here = t.store.presence(id).await.unwrap().unwrap();
        let there = other.presence(id).await.unwrap().unwrap();
        assert_eq!(here, there, "step {step}");
        assert!(here.revision > last, "step {step}");
        last = here.revision;
        let logged = t.store.user_changes_after(0, 1000).await.unwrap();
        let own_last = logged
            .iter()
            .filter(|c| c.associate_id == id)
            .map(|c| c.revision)
            .max();
        assert_eq!(own_last, Some(here.revision), "step {step}");
    }
}

async fn absences_are_planned_without_overlap_up_to_the_limit_and_cancelled() {
    let t = fresh().await;
    let id = AssociateId::new(5);
    t.store.add_user(user(5, "dana")).await.unwrap();
    let AbsencePlanned::Planned(first) = t
        .store
        .plan_absence(id, absence(NOW + HOUR, NOW + 3 * HOUR))
        .await
        .unwrap()
    else {
        panic!("planned")
    };
    assert_eq!(
        t.store
            .plan_absence(id, absence(NOW + 2 * HOUR, NOW + 4 * HOUR))
            .await
            .unwrap(),
        AbsencePlanned::Overlaps(first.clone())
    );
    // An absence that has ended overlaps nothing and counts toward nothing.
    let ended = NewAbsence {
        at: NOW + 5 * HOUR,
        ..absence(NOW + 5 * HOUR, NOW + 6 * HOUR)
    };
    assert!(matches!(
        t.store.plan_absence(id, ended).await.unwrap(),
        AbsencePlanned::Planned(_)
    ));
    let mut planned = 2;
    let mut from = NOW + 10 * HOUR;
    while planned < MAX_PLANNED_ABSENCES {
        let result = t
            .store
            .plan_absence(id, absence(from, from + HOUR))
            .await
            .unwrap();
        assert!(matches!(result, AbsencePlanned::Planned(_)), "{planned}");
        planned += 1;
        from += HOUR;
    }
    assert_eq!(
        t.store
            .plan_absence(id, absence(from, from + HOUR))
            .await
            .unwrap(),
        AbsencePlanned::TooMany
    );
    let stored = t.store.presence(id).await.unwrap().unwrap();
    assert_eq!(
        stored.absences.as_deref().unwrap().len(),
        MAX_PLANNED_ABSENCES
    );
    assert_eq!(stored.absences.as_deref().unwrap()[0], first);

    assert!(
        t.store
            .cancel_absence(id, first.id, NOW, &Actor::COMMAND_LINE)
            .await
            .unwrap()
    );
    assert!(
        !t.store
            .cancel_absence(id, first.id, NOW, &Actor::COMMAND_LINE)
            .await
            .unwrap()
    );
    assert!(
        !t.store
            .cancel_absence(AssociateId::new(6), 1, NOW, &Actor::COMMAND_LINE)
            .await
            .unwrap(),
        "another user's"
    );
    let after = t.store.presence(id).await.unwrap().unwrap();
    assert!(
        after
            .absences
            .as_deref()
            .unwrap()
            .iter()
            .all(|a| a.id != first.id)
    );
    assert_eq!(
        t.store
            .plan_absence(AssociateId::new(6), absence(NOW, NOW + HOUR))
            .await
            .unwrap(),
        AbsencePlanned::NoUser
    );
}

async fn pages_and_batches_answer_in_associate_and_asked_order() {
    let t = fresh().await;
    for id in [7, 3, 9, 5] {
        t.store
            .add_user(user(id, &format!("user{id}")))
            .await
            .unwrap();
    }
    let ids = |page: &[(AssociateId, _)]| page.iter().map(|(id, _)| id.get()).collect::<Vec<_>>();
    assert_eq!(
        ids(&t.store.presence_page(0, 10).await.unwrap()),
        [3, 5, 7, 9]
    );
    assert_eq!(ids(&t.store.presence_page(3, 2).await.unwrap()), [5, 7]);
    assert!(t.store.presence_page(9, 10).await.unwrap().is_empty());

    let asked = [9, 4, 3].map(AssociateId::new);
    let found = t.store.presences(&asked).await.unwrap();
    let logins: Vec<Option<&str>> = found
        .iter()
        .map(|p| p.as_deref().map(|p| &*p.login))
        .collect();
    assert_eq!(logins, [Some("user9"), None, Some("user3")]);
    // Again, from memory.
    assert_eq!(t.store.presences(&asked).await.unwrap(), found);
}

async fn upkeep_deletes_only_absences_that_ended_before_its_time() {
    let t = fresh().await;
    let id = AssociateId::new(5);
    t.store.add_user(user(5, "dana")).await.unwrap();
    for from in [NOW, NOW + 2 * HOUR] {
        t.store
            .plan_absence(id, absence(from, from + HOUR))
            .await
            .unwrap();
    }
    let starts = async || -> Vec<i64> {
        let left = t.store.read_presence(id).await.unwrap().unwrap();
        left.absences
            .as_deref()
            .unwrap()
            .iter()
            .map(|a| a.from)
            .collect()
    };
    // An end the timer has not recorded yet is kept for it.
    t.store.housekeeping(0, NOW + 2 * HOUR, 0).await.unwrap();
    assert_eq!(starts().await, [NOW, NOW + 2 * HOUR]);
    t.store.record_due_timers(NOW + 2 * HOUR).await.unwrap();
    t.store.housekeeping(0, NOW + 2 * HOUR, 0).await.unwrap();
    assert_eq!(starts().await, [NOW + 2 * HOUR]);
}
