//! The history on both backends: what each change records, the timers, trimming by age.

use super::{fresh, presence, user};
use crate::domain::{
    Actor, AssociateId, Change, ChangeKind, Message, RecordedStatus, UserPresenceStatus,
    UserStatus, Via,
};
use crate::store::{HistoryQuery, NewAbsence, StatusChange, Store, migrations};

on_both_backends!(
    every_change_is_recorded_with_what_it_was_and_who_made_it,
    timers_are_recorded_once_across_nodes_with_the_time_they_were_due,
    history_is_trimmed_by_age_and_an_older_cursor_has_expired,
    a_filtered_page_reaches_past_the_changes_it_left_out,
    who_made_each_change_survives_the_move_to_columns,
);

const HOUR: i64 = 3_600_000;
const NOW: i64 = 1_800_000_000_000;

async fn all(store: &Store) -> Vec<Change> {
    store
        .history(HistoryQuery {
            limit: 1000,
            ..HistoryQuery::default()
        })
        .await
        .unwrap()
        .changes
}

fn status(status: UserStatus, message: Option<&str>, until: Option<i64>) -> RecordedStatus {
    RecordedStatus {
        presence: presence(status, message),
        until,
    }
}

fn agent(associate_id: i32) -> Actor {
    Actor::user(
        AssociateId::new(associate_id),
        Via {
            scheme: "basic",
            application: Some("Desk".into()),
        },
    )
}

fn away(until: Option<i64>, at: i64, actor: Actor) -> StatusChange {
    StatusChange {
        presence: presence(UserStatus::StatusNotAvailable, Some("Back soon")),
        until,
        if_revision: None,
        at,
        actor,
    }
}

fn absence(from: i64, until: i64, actor: Actor) -> NewAbsence {
    NewAbsence {
        from,
        until,
        message: Message::new(Some("Holiday".into())).unwrap(),
        at: NOW,
        actor,
    }
}

async fn every_change_is_recorded_with_what_it_was_and_who_made_it() {
    let t = fresh().await;
    let id = AssociateId::new(5);
    t.store.add_user(user(5, "dana")).await.unwrap();
    let lunch = presence(UserStatus::StatusNotAvailable, Some("Lunch"));
    t.store
        .set_presence(id, lunch.clone(), &agent(5))
        .await
        .unwrap();
    // The same status again is no change the history shows.
    t.store.set_presence(id, lunch, &agent(5)).await.unwrap();
    t.store
        .set_status(id, away(Some(NOW + HOUR), NOW, agent(1)))
        .await
        .unwrap();
    let planned = match t
        .store
        .plan_absence(id, absence(NOW - HOUR, NOW + 2 * HOUR, agent(5)))
        .await
        .unwrap()
    {
        crate::store::AbsencePlanned::Planned(planned) => planned,
        other => panic!("{other:?}"),
    };
    t.store
        .cancel_absence(id, planned.id, NOW + 1, &Actor::COMMAND_LINE)
        .await
        .unwrap();
    t.store.remove_user("dana").await.unwrap();

    let history = all(&t.store).await;
    let kinds: Vec<ChangeKind> = history.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            ChangeKind::UserAdded,
            ChangeKind::Status,
            ChangeKind::Status,
            ChangeKind::AbsencePlanned,
            ChangeKind::AbsenceCancelled,
            ChangeKind::UserRemoved,
        ]
    );
    assert!(history.windows(2).all(|w| w[0].revision < w[1].revision));
    assert!(history.iter().all(|c| c.associate_id == id));
    let command_line = Some(r#"{"kind":"commandLine"}"#.to_owned());
    let by_agent = |id: i32| Some(format!(r#"{{"kind":"user","associateId":{id}}}"#));
    let via_desk = Some(r#"{"scheme":"basic","application":"Desk"}"#.to_owned());

    let [added, set, timed, plan, cancel, removed] = &history[..] else {
        unreachable!()
    };
    assert_eq!(added.from, None);
    assert_eq!(added.to, Some(status(UserStatus::StatusNormal, None, None)));
    assert_eq!((&added.by, &added.via), (&command_line, &None));

    assert_eq!(set.from, Some(status(UserStatus::StatusNormal, None, None)));
    assert_eq!(
        set.to,
        Some(status(UserStatus::StatusNotAvailable, Some("Lunch"), None))
    );
    assert_eq!((&set.by, &set.via), (&by_agent(5), &via_desk));

    assert_eq!(timed.at, NOW);
    assert_eq!(
        timed.to,
        Some(status(
            UserStatus::StatusNotAvailable,
            Some("Back soon"),
            Some(NOW + HOUR)
        ))
    );
    assert_eq!(timed.by, by_agent(1));

    // Planned to start an hour ago: the user was away with the timed status, and is now away
    // for the holiday.
    assert_eq!(plan.at, NOW);
    assert_eq!(
        plan.from,
        Some(status(
            UserStatus::StatusNotAvailable,
            Some("Back soon"),
            Some(NOW + HOUR)
        ))
    );
    assert_eq!(
        plan.to,
        Some(status(
            UserStatus::StatusNotAvailable,
            Some("Holiday"),
            Some(NOW + HOUR)
        ))
    );
    let absence: serde_json::Value = serde_json::from_str(plan.absence.as_ref().unwrap()).unwrap();
    assert_eq!(absence["id"], planned.id);
    assert_eq!(absence["message"], "Holiday");
    assert_eq!(absence["from"], crate::timestamp::format(NOW - HOUR));
    assert_eq!(cancel.absence, plan.absence);
    assert_eq!(
        (cancel.from.clone(), cancel.to.clone()),
        (plan.to.clone(), plan.from.clone())
    );
    assert_eq!(cancel.by, command_line);

    assert_eq!(
        removed.from,
        Some(status(
            UserStatus::StatusNotAvailable,
            Some("Back soon"),
            Some(NOW + HOUR)
        ))
    );
    assert_eq!((removed.to.clone(), &removed.by), (None, &command_line));
}

async fn timers_are_recorded_once_across_nodes_with_the_time_they_were_due() {
    let t = fresh().await;
    let other = Store::open_and_migrate(&t.url).await.unwrap().0;
    let users = 20;
    for n in 1..=users {
        t.store.add_user(user(n, &format!("u{n}"))).await.unwrap();
        let id = AssociateId::new(n);
        t.store
            .set_status(id, away(Some(NOW + HOUR), NOW, agent(n)))
            .await
            .unwrap();
        t.store
            .plan_absence(id, absence(NOW + 2 * HOUR, NOW + 3 * HOUR, agent(n)))
            .await
            .unwrap();
    }
    assert_eq!(t.store.record_due_timers(NOW + HOUR - 1).await.unwrap(), 0);
    // Two nodes at once, as after a restart that finds everything due: each timer once.
    let (a, b) = tokio::join!(
        t.store.record_due_timers(NOW + 4 * HOUR),
        other.record_due_timers(NOW + 4 * HOUR)
    );
    let per_user = 3;
    assert_eq!(a.unwrap() + b.unwrap(), (per_user * users) as usize);
    assert_eq!(t.store.record_due_timers(NOW + 5 * HOUR).await.unwrap(), 0);

    let timers: Vec<Change> = all(&t.store)
        .await
        .into_iter()
        .filter(|c| c.by.as_deref() == Some(r#"{"kind":"timer"}"#))
        .collect();
    assert_eq!(timers.len(), (per_user * users) as usize);
    let of_one: Vec<&Change> = timers
        .iter()
        .filter(|c| c.associate_id == AssociateId::new(7))
        .collect();
    let ats: Vec<i64> = of_one.iter().map(|c| c.at).collect();
    assert_eq!(ats, [NOW + HOUR, NOW + 2 * HOUR, NOW + 3 * HOUR]);
    let back = status(UserStatus::StatusNormal, None, None);
    let holiday = status(UserStatus::StatusNotAvailable, Some("Holiday"), None);
    assert_eq!(of_one[0].to, Some(back.clone()));
    assert_eq!(
        (&of_one[1].from, &of_one[1].to),
        (&Some(back.clone()), &Some(holiday.clone()))
    );
    assert_eq!(
        (&of_one[2].from, &of_one[2].to),
        (&Some(holiday), &Some(back))
    );
    assert!(
        of_one
            .iter()
            .all(|c| c.kind == ChangeKind::Status && c.via.is_none())
    );
    // The timed status's end was stored: the row reads as it has since the time came.
    let stored = t
        .store
        .read_presence(AssociateId::new(7))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.stored, UserPresenceStatus::present());
    assert_eq!(stored.until, None);
}

async fn history_is_trimmed_by_age_and_an_older_cursor_has_expired() {
    let t = fresh().await;
    // Added now, long before NOW.
    for n in 1..=3 {
        t.store.add_user(user(n, &format!("u{n}"))).await.unwrap();
    }
    let first = all(&t.store).await[0].revision;
    for n in 1..=2 {
        t.store
            .set_status(AssociateId::new(n), away(None, NOW, agent(n)))
            .await
            .unwrap();
    }
    t.store.trim_history(NOW).await.unwrap();
    let left = all(&t.store).await;
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|c| c.at == NOW));
    let page = |after| {
        t.store.history(HistoryQuery {
            after: Some(after),
            limit: 10,
            ..HistoryQuery::default()
        })
    };
    assert!(page(first - 1).await.unwrap().expired);
    assert!(page(first).await.unwrap().expired);
    let last_trimmed = left[0].revision - 1;
    let resumed = page(last_trimmed).await.unwrap();
    assert!(!resumed.expired);
    assert_eq!(resumed.changes, left);
    // However old, the newest change stays: revisions go on from it.
    t.store.trim_history(i64::MAX).await.unwrap();
    assert_eq!(all(&t.store).await, left[1..]);
    t.store.add_user(user(9, "u9")).await.unwrap();
    assert!(all(&t.store).await.last().unwrap().revision > left[1].revision);
}

async fn a_filtered_page_reaches_past_the_changes_it_left_out() {
    let t = fresh().await;
    for n in 1..=3 {
        t.store.add_user(user(n, &format!("u{n}"))).await.unwrap();
    }
    let page = t
        .store
        .history(HistoryQuery {
            associate: Some(AssociateId::new(1)),
            limit: 10,
            ..HistoryQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.changes.len(), 1);
    let newest = all(&t.store).await.last().unwrap().revision;
    assert_eq!(page.reached, newest);
    // A full page reaches its last change, and the next goes on after it.
    let first = t
        .store
        .history(HistoryQuery {
            limit: 2,
            ..HistoryQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(first.reached, first.changes[1].revision);
    let rest = t
        .store
        .history(HistoryQuery {
            after: Some(first.reached),
            limit: 2,
            ..HistoryQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.changes.len(), 1);
    assert_eq!(rest.reached, newest);
}

/// Who made each change of a version-8 history, and through what, as it wrote them (JSON text).
const VERSION_8_AUTHORS: [(i32, &str, Option<&str>); 3] = [
    (
        2,
        r#"{"kind":"user","associateId":7}"#,
        Some(r#"{"scheme":"basic","application":"Desk \"2\""}"#),
    ),
    (1, r#"{"kind":"timer"}"#, None),
    (
        2,
        r#"{"kind":"user","associateId":7}"#,
        Some(r#"{"scheme":"bearer","application":null}"#),
    ),
];

/// A database whose history was written by version 8, who and through what as JSON text,
/// migrated: each change still says who made it and through what, byte for byte as before, and
/// the user's row says who made its last change in the new columns.
async fn who_made_each_change_survives_the_move_to_columns() {
    let dir = tempfile::tempdir().unwrap();
    let added_by = r#"{"kind":"commandLine"}"#;
    let last_author: (Option<String>, Option<i32>, Option<String>, Option<String>) = (
        Some("user".to_owned()),
        Some(7),
        Some("bearer".to_owned()),
        None,
    );
    let store = match super::BACKEND.try_with(super::Backend::clone).unwrap() {
        super::Backend::Sqlite => {
            let path = dir.path().join("presence.db");
            let connection = super::sqlite_at_version(&path, 8);
            connection
                .execute(
                    "INSERT INTO service_user (associate_id, login, status, updated_at, changed_by)
                     VALUES (7, 'gina', 1, 1, ?1)",
                    [added_by],
                )
                .unwrap();
            for (at, (status, by, via)) in (2..).zip(VERSION_8_AUTHORS) {
                connection
                    .execute(
                        "UPDATE service_user SET status = ?1, updated_at = ?2, changed_by = ?3,
                                                 changed_via = ?4
                         WHERE associate_id = 7",
                        rusqlite::params![status, at, by, via],
                    )
                    .unwrap();
            }
            let (store, report) = Store::open_and_migrate(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            assert_eq!(report.applied.len(), 1);
            let columns = connection
                .query_row(
                    "SELECT by_kind, by_associate, via_scheme, via_application
                     FROM service_user WHERE associate_id = 7",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                )
                .unwrap();
            assert_eq!(columns, last_author);
            store
        }
        super::Backend::Postgres(server) => {
            let url = crate::store::testing::fresh_postgres_database(&server)
                .await
                .unwrap();
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            let connection = tokio::spawn(connection);
            client
                .batch_execute(
                    "CREATE TABLE schema_migration (
                         version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL
                     );",
                )
                .await
                .unwrap();
            for m in &migrations::POSTGRES[..8] {
                client.batch_execute(m.sql).await.unwrap();
                client
                    .execute(
                        "INSERT INTO schema_migration VALUES ($1, $2, 0)",
                        &[&m.version, &m.name],
                    )
                    .await
                    .unwrap();
            }
            client
                .execute(
                    "INSERT INTO service_user
                         (associate_id, login, login_folded, status, updated_at, changed_by)
                     VALUES (7, 'gina', 'gina', 1, 1, $1)",
                    &[&added_by],
                )
                .await
                .unwrap();
            for (at, (status, by, via)) in (2_i64..).zip(VERSION_8_AUTHORS) {
                client
                    .execute(
                        "UPDATE service_user SET status = $1, updated_at = $2, changed_by = $3,
                                                 changed_via = $4
                         WHERE associate_id = 7",
                        &[&i16::try_from(status).unwrap(), &at, &by, &via],
                    )
                    .await
                    .unwrap();
            }
            let (store, report) = Store::open_and_migrate(&url).await.unwrap();
            assert_eq!(report.applied.len(), 1);
            let row = client
                .query_one(
                    "SELECT by_kind, by_associate, via_scheme, via_application
                     FROM service_user WHERE associate_id = 7",
                    &[],
                )
                .await
                .unwrap();
            assert_eq!(
                (row.get(0), row.get(1), row.get(2), row.get(3)),
                last_author
            );
            drop(client);
            let _ = connection.await;
            store
        }
    };

    let who = |c: &Change| (c.kind, c.by.clone(), c.via.clone());
    let expected = std::iter::once((ChangeKind::UserAdded, Some(added_by.to_owned()), None))
        .chain(VERSION_8_AUTHORS.iter().map(|(_, by, via)| {
            (
                ChangeKind::Status,
                Some((*by).to_owned()),
                via.map(str::to_owned),
            )
        }))
        .collect::<Vec<_>>();
    assert_eq!(
        all(&store).await.iter().map(who).collect::<Vec<_>>(),
        expected
    );
    // And what is written after it is recorded the same way.
    store
        .set_presence(
            AssociateId::new(7),
            presence(UserStatus::StatusNormal, None),
            &agent(7),
        )
        .await
        .unwrap();
    let last = all(&store).await.pop().unwrap();
    assert_eq!(
        (last.by, last.via),
        (
            Some(r#"{"kind":"user","associateId":7}"#.to_owned()),
            Some(r#"{"scheme":"basic","application":"Desk"}"#.to_owned())
        )
    );
}
