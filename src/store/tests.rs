//! Behaviour every backend must show. Each test runs twice, as `sqlite::name` and
//! `postgres::name`, on a fresh database each time; the PostgreSQL variants need
//! `PRESENCE_TEST_POSTGRES_URL` when they are built, and are reported as skipped without it.

use super::*;
use crate::language::{Language, Resource};
use crate::secret::SecretHash;

#[derive(Clone, Debug)]
enum Backend {
    Sqlite,
    /// The server to create a database on.
    Postgres(String),
}

tokio::task_local! {
    static BACKEND: Backend;
}

/// Declares `sqlite::NAME` and `postgres::NAME` tests that run each named `async fn NAME()`
/// on that backend. (A list of names rather than the bodies, so rustfmt still formats them.)
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::store::tests::BACKEND.scope(crate::store::tests::Backend::Sqlite, super::$name()).await
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test]
                #[cfg_attr(not(postgres_tests), ignore = "built without PRESENCE_TEST_POSTGRES_URL")]
                async fn $name() {
                    let url = crate::store::testing::postgres_admin_url();
                    crate::store::tests::BACKEND.scope(crate::store::tests::Backend::Postgres(url), super::$name()).await
                }
            )+
        }
    };
}

on_both_backends!(
    migrating_twice_applies_nothing_the_second_time,
    presence_is_none_for_an_unknown_associate,
    set_then_get_returns_what_was_stored,
    logins_are_unique_in_any_case_and_associates_are_unique,
    credentials_follow_password_changes_and_removal,
    list_users_is_ordered_by_associate,
    tokens_are_found_until_they_expire_or_are_revoked,
    applications_are_unique_by_name_in_any_case,
    login_checks_are_recorded_per_login_in_any_case_up_to_the_limit,
    checks_sent_at_once_from_two_nodes_pass_the_count_at_most_the_limit,
    changes_are_numbered_without_gaps_filled_in_late_under_concurrent_writers,
    resources_come_with_the_starter_set_and_fall_back_to_english,
    a_database_from_a_newer_program_is_refused,
    another_store_on_the_database_sees_each_change_on_its_next_lookup,
    an_import_adds_all_or_nothing_and_leaves_users_found_as_they_are,
);

mod history;
mod presence;

/// A SQLite database at `path` migrated only up to `version`, as an older program left it, and
/// a connection to it.
pub(in crate::store) fn sqlite_at_version(
    path: &std::path::Path,
    version: i64,
) -> rusqlite::Connection {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection
        .execute_batch(
            "CREATE TABLE schema_migration (
                 version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL
             ) STRICT;",
        )
        .unwrap();
    for m in migrations::SQLITE.iter().filter(|m| m.version <= version) {
        connection.execute_batch(m.sql).unwrap();
        connection
            .execute(
                "INSERT INTO schema_migration VALUES (?1, ?2, 0)",
                rusqlite::params![m.version, m.name],
            )
            .unwrap();
    }
    connection
}

struct TestStore {
    store: Store,
    url: String,
    /// Keeps a SQLite database file alive for the test.
    _dir: tempfile::TempDir,
}

async fn fresh() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let (url, history) = match BACKEND.try_with(Backend::clone).unwrap_or(Backend::Sqlite) {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("presence.db").display()),
            migrations::SQLITE,
        ),
        Backend::Postgres(server) => (
            testing::fresh_postgres_database(&server).await.unwrap(),
            migrations::POSTGRES,
        ),
    };
    let (store, report) = Store::open_and_migrate(&url).await.unwrap();
    assert_eq!(report.applied.len(), history.len());
    TestStore {
        store,
        url,
        _dir: dir,
    }
}

/// The newest version of the test's backend.
fn report_version(t: &TestStore) -> i64 {
    let history = match t.store {
        Store::Sqlite(_) => migrations::SQLITE,
        Store::Postgres(_) => migrations::POSTGRES,
    };
    history.last().unwrap().version
}

fn presence(status: UserStatus, message: Option<&str>) -> UserPresenceStatus {
    UserPresenceStatus {
        status,
        message: Message::new(message.map(str::to_owned)).unwrap(),
    }
}

fn user(associate_id: i32, login: &str) -> NewServiceUser {
    NewServiceUser {
        associate_id: AssociateId::new(associate_id),
        login: login.into(),
        password_hash: Some(format!("$hash-of-{login}")),
        is_admin: false,
        presence: presence(UserStatus::StatusNormal, None),
    }
}

async fn migrating_twice_applies_nothing_the_second_time() {
    let t = fresh().await;
    let again = t.store.migrate().await.unwrap();
    assert!(again.applied.is_empty());
    assert_eq!(again.version, report_version(&t));
}

async fn presence_is_none_for_an_unknown_associate() {
    let t = fresh().await;
    assert_eq!(
        t.store
            .presence(AssociateId::new(42))
            .await
            .unwrap()
            .map(|p| p.stored.clone()),
        None
    );
    let set = t
        .store
        .set_presence(
            AssociateId::new(42),
            presence(UserStatus::StatusNotAvailable, None),
            &Actor::COMMAND_LINE,
        )
        .await
        .unwrap();
    assert_eq!(set, None);
    assert!(t.store.list_users().await.unwrap().is_empty());
}

async fn set_then_get_returns_what_was_stored() {
    let t = fresh().await;
    t.store.add_user(user(7, "anna")).await.unwrap();
    let id = AssociateId::new(7);
    assert_eq!(
        t.store
            .presence(id)
            .await
            .unwrap()
            .map(|p| p.stored.clone()),
        Some(presence(UserStatus::StatusNormal, None))
    );
    for wanted in [
        presence(UserStatus::StatusNotAvailable, Some("Back at 14:00 – ø")),
        presence(UserStatus::StatusSystem, Some("")),
        presence(UserStatus::StatusNormal, None),
    ] {
        let stored = t
            .store
            .set_presence(id, wanted.clone(), &Actor::COMMAND_LINE)
            .await
            .unwrap();
        assert_eq!(stored, Some(wanted.clone()));
        assert_eq!(
            t.store
                .presence(id)
                .await
                .unwrap()
                .map(|p| p.stored.clone()),
            Some(wanted)
        );
    }
}

async fn logins_are_unique_in_any_case_and_associates_are_unique() {
    let t = fresh().await;
    t.store.add_user(user(1, "Anna")).await.unwrap();
    assert!(matches!(
        t.store.add_user(user(2, "ANNA")).await,
        Err(StoreError::DuplicateLogin(login)) if login == "ANNA"
    ));
    assert!(matches!(
        t.store.add_user(user(1, "bert")).await,
        Err(StoreError::DuplicateAssociate(id)) if id == AssociateId::new(1)
    ));
    assert!(!t.store.add_user_if_missing(user(1, "anna")).await.unwrap());
    assert_eq!(t.store.list_users().await.unwrap().len(), 1);
}

async fn an_import_adds_all_or_nothing_and_leaves_users_found_as_they_are() {
    let t = fresh().await;
    let other = Store::open(&t.url).unwrap();
    assert_eq!(other.credentials("bert").await.unwrap(), None);
    t.store.add_user(user(1, "Anna")).await.unwrap();
    let mut bert = user(2, "bert");
    bert.is_admin = true;
    let imported = t
        .store
        .import_users(vec![user(1, "ANNA"), bert, user(3, "carl")])
        .await
        .unwrap();
    assert_eq!(
        imported,
        ImportedUsers {
            added: 2,
            unchanged: 1
        }
    );
    let listed: Vec<(i32, String, bool)> = t
        .store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.associate_id.get(), u.login, u.is_admin))
        .collect();
    let expected = vec![
        (1, "Anna".to_owned(), false),
        (2, "bert".to_owned(), true),
        (3, "carl".to_owned(), false),
    ];
    assert_eq!(listed, expected, "Anna kept her spelling");
    // Another store (a server beside the command) sees them through the change log.
    let found = other.credentials("BERT").await.unwrap().unwrap();
    assert_eq!(found.password_hash.as_deref(), Some("$hash-of-bert"));
    assert!(found.is_admin);

    for (conflicting, taken) in [(user(9, "anna"), "login"), (user(1, "dora"), "associate")] {
        let error = t
            .store
            .import_users(vec![user(4, "erik"), conflicting])
            .await
            .unwrap_err();
        match (taken, error) {
            ("login", StoreError::DuplicateLogin(login)) => assert_eq!(login, "anna"),
            ("associate", StoreError::DuplicateAssociate(id)) => {
                assert_eq!(id, AssociateId::new(1));
            }
            (_, other) => panic!("{taken}: {other}"),
        }
    }
    assert_eq!(
        t.store.list_users().await.unwrap().len(),
        3,
        "erik was not added"
    );
    assert_eq!(other.credentials("erik").await.unwrap(), None);
}

async fn credentials_follow_password_changes_and_removal() {
    let t = fresh().await;
    let mut admin = user(3, "Carl");
    admin.is_admin = true;
    t.store.add_user(admin).await.unwrap();
    let found = t.store.credentials("carl").await.unwrap().unwrap();
    assert_eq!(
        found,
        Credentials {
            associate_id: AssociateId::new(3),
            password_hash: Some("$hash-of-Carl".into()),
            is_admin: true,
            status: UserStatus::StatusNormal,
        }
    );
    t.store.set_password("CARL", "$new".into()).await.unwrap();
    let found = t.store.credentials("Carl").await.unwrap().unwrap();
    assert_eq!(found.password_hash.as_deref(), Some("$new"));
    t.store.remove_user("carl").await.unwrap();
    assert_eq!(t.store.credentials("Carl").await.unwrap(), None);
    assert!(matches!(
        t.store.remove_user("carl").await,
        Err(StoreError::UnknownLogin(_))
    ));
    assert!(matches!(
        t.store.set_password("carl", "$x".into()).await,
        Err(StoreError::UnknownLogin(_))
    ));
}

/// A second store on the same database stands for the command line beside a running server,
/// or another node: whatever it has cached, every change shows on the next lookup.
async fn another_store_on_the_database_sees_each_change_on_its_next_lookup() {
    let t = fresh().await;
    let other = Store::open(&t.url).unwrap();
    let id = AssociateId::new(5);
    // Cached as missing first.
    assert_eq!(
        other.presence(id).await.unwrap().map(|p| p.stored.clone()),
        None
    );
    assert_eq!(other.credentials("Dana").await.unwrap(), None);

    t.store.add_user(user(5, "dana")).await.unwrap();
    assert_eq!(
        other.presence(id).await.unwrap().map(|p| p.stored.clone()),
        Some(presence(UserStatus::StatusNormal, None))
    );
    let found = other.credentials("DANA").await.unwrap().unwrap();
    assert_eq!(found.password_hash.as_deref(), Some("$hash-of-dana"));

    let away = presence(UserStatus::StatusNotAvailable, Some("Lunch"));
    t.store
        .set_presence(id, away.clone(), &Actor::COMMAND_LINE)
        .await
        .unwrap();
    assert_eq!(
        other.presence(id).await.unwrap().map(|p| p.stored.clone()),
        Some(away.clone())
    );
    let found = other.credentials("dana").await.unwrap().unwrap();
    assert_eq!(found.status, UserStatus::StatusNotAvailable);

    // Its own writes show at once too.
    other
        .set_presence(
            id,
            presence(UserStatus::StatusNormal, None),
            &Actor::COMMAND_LINE,
        )
        .await
        .unwrap();
    assert_eq!(
        t.store
            .presence(id)
            .await
            .unwrap()
            .map(|p| p.stored.clone()),
        Some(presence(UserStatus::StatusNormal, None))
    );

    t.store.set_password("Dana", "$new".into()).await.unwrap();
    let found = other.credentials("dana").await.unwrap().unwrap();
    assert_eq!(found.password_hash.as_deref(), Some("$new"));

    t.store.remove_user("dana").await.unwrap();
    assert_eq!(
        other.presence(id).await.unwrap().map(|p| p.stored.clone()),
        None
    );
    assert_eq!(other.credentials("dana").await.unwrap(), None);

    // The login, given to someone else, names them.
    t.store.add_user(user(6, "DANA")).await.unwrap();
    let found = other.credentials("dana").await.unwrap().unwrap();
    assert_eq!(found.associate_id, AssociateId::new(6));
    assert_eq!(
        other.presence(id).await.unwrap().map(|p| p.stored.clone()),
        None
    );
}

async fn list_users_is_ordered_by_associate() {
    let t = fresh().await;
    for (id, login) in [(30, "c"), (10, "a"), (20, "b")] {
        t.store.add_user(user(id, login)).await.unwrap();
    }
    let logins: Vec<_> = t
        .store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.login)
        .collect();
    assert_eq!(logins, ["a", "b", "c"]);
}

async fn tokens_are_found_until_they_expire_or_are_revoked() {
    let t = fresh().await;
    t.store.add_user(user(7, "anna")).await.unwrap();
    let id = AssociateId::new(7);
    let (hash, other) = (SecretHash::of("7T:a"), SecretHash::of("7T:b"));
    t.store
        .insert_token(TokenKind::Ticket, hash, id, 1_000, 0)
        .await
        .unwrap();
    t.store
        .insert_token(TokenKind::Ticket, other, id, 1_000, 0)
        .await
        .unwrap();
    let owner = t
        .store
        .find_token(TokenKind::Ticket, hash, 999)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((owner.associate_id, owner.expires_at), (id, 1_000));
    assert_eq!(
        t.store
            .find_token(TokenKind::AccessToken, hash, 0)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        t.store
            .find_token(TokenKind::Ticket, hash, 1_000)
            .await
            .unwrap(),
        None
    );
    t.store.extend_token(hash, 2_000).await.unwrap();
    t.store.extend_token(hash, 1_500).await.unwrap();
    let owner = t
        .store
        .find_token(TokenKind::Ticket, hash, 1_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owner.expires_at, 2_000, "expiry only moves forward");
    assert!(
        t.store
            .revoke_token(TokenKind::Ticket, id, hash)
            .await
            .unwrap()
    );
    assert!(
        !t.store
            .revoke_token(TokenKind::Ticket, id, hash)
            .await
            .unwrap()
    );
    assert_eq!(
        t.store.revoke_tokens(TokenKind::Ticket, id).await.unwrap(),
        1
    );
    // Removing the user removes its tokens.
    t.store
        .insert_token(TokenKind::AccessToken, hash, id, 5_000, 0)
        .await
        .unwrap();
    t.store.remove_user("anna").await.unwrap();
    assert_eq!(
        t.store
            .find_token(TokenKind::AccessToken, hash, 0)
            .await
            .unwrap(),
        None
    );
}

async fn applications_are_unique_by_name_in_any_case() {
    let t = fresh().await;
    let app = |name: &str| Application {
        name: name.into(),
        is_partner: true,
        grants_user_agent: false,
    };
    t.store
        .add_application(app("Partner"), SecretHash::of("a"), 0)
        .await
        .unwrap();
    assert!(matches!(
        t.store
            .add_application(app("PARTNER"), SecretHash::of("b"), 0)
            .await,
        Err(StoreError::DuplicateApplication(_))
    ));
    assert_eq!(
        t.store.find_application(SecretHash::of("a")).await.unwrap(),
        Some(app("Partner"))
    );
    assert_eq!(
        t.store.find_application(SecretHash::of("b")).await.unwrap(),
        None
    );
    assert_eq!(t.store.list_applications().await.unwrap(), [app("Partner")]);
    t.store.remove_application("partner").await.unwrap();
    assert!(matches!(
        t.store.remove_application("partner").await,
        Err(StoreError::UnknownApplication(_))
    ));
}

async fn login_checks_are_recorded_per_login_in_any_case_up_to_the_limit() {
    let t = fresh().await;
    let reserve = |login: &str, at: i64, since: i64| {
        t.store
            .reserve_login_attempt(LoginKey::of(login), at, since, 5)
    };
    for at in [10, 20, 30] {
        assert!(reserve("Anna", at, 0).await.unwrap());
    }
    assert!(reserve("bert", 40, 0).await.unwrap());
    // Any spelling of a login counts with the others.
    assert!(reserve("ANNA", 50, 0).await.unwrap());
    assert!(reserve("anna", 60, 0).await.unwrap());
    assert!(
        !reserve("anna", 70, 0).await.unwrap(),
        "five recorded: locked"
    );
    // Only the checks after the window's start count: 30, 50 and 60 (70 was not recorded).
    assert!(reserve("anna", 80, 25).await.unwrap());
    assert!(reserve("anna", 90, 25).await.unwrap());
    assert!(!reserve("anna", 100, 25).await.unwrap());

    t.store
        .clear_login_failures(LoginKey::of("aNNa"))
        .await
        .unwrap();
    assert!(
        reserve("anna", 110, 0).await.unwrap(),
        "a success starts afresh"
    );
    // bert's one check is still counted: four more pass, the fifth is refused.
    for at in [120, 130, 140, 150] {
        assert!(reserve("bert", at, 0).await.unwrap());
    }
    assert!(!reserve("bert", 160, 0).await.unwrap());

    // Upkeep forgets checks at or before its time, whatever the login.
    t.store.housekeeping(140, 0, 0).await.unwrap();
    for at in [170, 180, 190, 195] {
        assert!(
            reserve("bert", at, 0).await.unwrap(),
            "150 is all that is left"
        );
    }
    assert!(!reserve("bert", 200, 0).await.unwrap());
}

/// Guesses sent at once, half of them through a second store on the database (another node):
/// each is counted and recorded in one step, so at most the limit are let through.
async fn checks_sent_at_once_from_two_nodes_pass_the_count_at_most_the_limit() {
    let t = fresh().await;
    let other = Store::open_and_migrate(&t.url).await.unwrap().0;
    let key = LoginKey::of("anna");
    let attempts: Vec<_> = (0..100)
        .map(|i| {
            let store = if i % 2 == 0 {
                t.store.clone()
            } else {
                other.clone()
            };
            tokio::spawn(async move { store.reserve_login_attempt(key, 1000 + i, 0, 5).await })
        })
        .collect();
    let mut let_through = 0;
    for attempt in attempts {
        if attempt.await.unwrap().unwrap() {
            let_through += 1;
        }
    }
    assert_eq!(let_through, 5);
}

/// Many writers on two stores on one database (two nodes, on PostgreSQL), and a reader beside
/// them: every read of the change log continues the last one with no gap, so no change ever
/// appears below a revision already seen, and in the end every change is numbered once.
async fn changes_are_numbered_without_gaps_filled_in_late_under_concurrent_writers() {
    const USERS: i32 = 20;
    const SETS_PER_WRITER: usize = 25;
    let t = fresh().await;
    let other = Store::open_and_migrate(&t.url).await.unwrap().0;
    for id in 1..=USERS {
        t.store
            .add_user(user(id, &format!("user{id}")))
            .await
            .unwrap();
    }
    let start = t
        .store
        .user_changes_after(0, usize::MAX)
        .await
        .unwrap()
        .last()
        .map_or(0, |change| change.revision);
    let writers: Vec<_> = (1..=USERS)
        .map(|id| {
            let store = if id % 2 == 0 {
                t.store.clone()
            } else {
                other.clone()
            };
            tokio::spawn(async move {
                for round in 0..SETS_PER_WRITER {
                    let status = if round % 2 == 0 {
                        UserStatus::StatusNotAvailable
                    } else {
                        UserStatus::StatusNormal
                    };
                    let message = format!("round {round}");
                    store
                        .set_presence(
                            AssociateId::new(id),
                            presence(status, Some(&message)),
                            &Actor::COMMAND_LINE,
                        )
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let expected = start + i64::from(USERS) * SETS_PER_WRITER as i64;
    let reader = {
        let store = t.store.clone();
        tokio::spawn(async move {
            let mut seen = start;
            let mut reads = 0;
            while seen < expected {
                let changes = store.user_changes_after(seen, 1000).await.unwrap();
                for change in changes {
                    assert_eq!(
                        change.revision,
                        seen + 1,
                        "a change numbered below or beside one already seen"
                    );
                    seen = change.revision;
                }
                reads += 1;
                tokio::task::yield_now().await;
            }
            reads
        })
    };
    for writer in writers {
        writer.await.unwrap();
    }
    let reads = reader.await.unwrap();
    assert!(reads > 1, "the reader read while the writers wrote");
    let all = other.user_changes_after(start, usize::MAX).await.unwrap();
    assert_eq!(all.len() as i64, expected - start);
    for id in 1..=USERS {
        let changes = all
            .iter()
            .filter(|change| change.associate_id.get() == id)
            .count();
        assert_eq!(changes, SETS_PER_WRITER, "associate {id}");
    }
}

async fn resources_come_with_the_starter_set_and_fall_back_to_english() {
    let t = fresh().await;
    let names = ["SR_PRESENCE_OUT_OF_OFFICE".to_owned(), "SR_MINE".to_owned()];
    let found = t.store.resources(&names, Language::Nb).await.unwrap();
    let mut languages: Vec<_> = found
        .iter()
        .map(|r| (r.name.as_str(), r.language))
        .collect();
    languages.sort_by_key(|&(name, language)| (name, language.iso()));
    assert_eq!(
        languages,
        [
            ("SR_PRESENCE_OUT_OF_OFFICE", Language::En),
            ("SR_PRESENCE_OUT_OF_OFFICE", Language::Nb)
        ]
    );
    let mine = Resource {
        name: "SR_MINE".into(),
        language: Language::En,
        text: "Mine".into(),
    };
    assert_eq!(
        t.store.import_resources(vec![mine.clone()]).await.unwrap(),
        1
    );
    let replaced = Resource {
        text: "Still mine".into(),
        ..mine
    };
    t.store
        .import_resources(vec![replaced.clone()])
        .await
        .unwrap();
    assert_eq!(
        t.store.resources(&names[1..], Language::Nb).await.unwrap(),
        std::slice::from_ref(&replaced)
    );
    let english = t.store.list_resources(Some(Language::En)).await.unwrap();
    assert!(english.contains(&replaced));
    assert!(english.iter().all(|r| r.language == Language::En));
}

async fn a_database_from_a_newer_program_is_refused() {
    let t = fresh().await;
    let future =
        "INSERT INTO schema_migration (version, name, applied_at) VALUES (999, 'future', 0)";
    if let Some(path) = t.url.strip_prefix("sqlite://") {
        rusqlite::Connection::open(path)
            .unwrap()
            .execute(future, [])
            .unwrap();
    } else {
        let (client, connection) = tokio_postgres::connect(&t.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let connection = tokio::spawn(connection);
        client.batch_execute(future).await.unwrap();
        drop(client);
        let _ = connection.await;
    }
    assert!(matches!(
        t.store.migrate().await,
        Err(StoreError::SchemaTooNew { found: 999, .. })
    ));
}

#[test]
fn unsupported_urls_are_refused() {
    for url in [
        "mysql://x",
        "presence.db",
        "sqlite://x.db?journal=off",
        "postgres://host:notaport/db",
    ] {
        assert!(
            matches!(Store::open(url), Err(StoreError::UnsupportedUrl(_))),
            "{url}"
        );
    }
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        "this is not a database, just text that is long enough to have a header",
    )
    .unwrap();
    let error = Store::open(&format!("sqlite://{}", path.display()))
        .err()
        .unwrap();
    assert!(matches!(error, StoreError::Open { .. }), "{error}");
}
