//! Behaviour every backend must show. Each test opens a fresh database; PostgreSQL joins the
//! list of backends when it exists.

use super::*;

struct TestStore {
    store: Store,
    /// Keeps the database file alive for the test.
    _dir: tempfile::TempDir,
}

async fn fresh() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("presence.db").display());
    let (store, report) = Store::open_and_migrate(&url).await.unwrap();
    assert_eq!(report.applied.len(), migrations::SQLITE.len());
    TestStore { store, _dir: dir }
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

#[tokio::test]
async fn migrating_twice_applies_nothing_the_second_time() {
    let t = fresh().await;
    let again = t.store.migrate().await.unwrap();
    assert!(again.applied.is_empty());
    assert_eq!(again.version, migrations::SQLITE.last().unwrap().version);
}

#[tokio::test]
async fn presence_is_none_for_an_unknown_associate() {
    let t = fresh().await;
    assert_eq!(t.store.presence(AssociateId::new(42)).await.unwrap(), None);
    let set = t
        .store
        .set_presence(
            AssociateId::new(42),
            presence(UserStatus::StatusNotAvailable, None),
        )
        .await
        .unwrap();
    assert_eq!(set, None);
    assert!(t.store.list_users().await.unwrap().is_empty());
}

#[tokio::test]
async fn set_then_get_returns_what_was_stored() {
    let t = fresh().await;
    t.store.add_user(user(7, "anna")).await.unwrap();
    let id = AssociateId::new(7);
    assert_eq!(
        t.store.presence(id).await.unwrap(),
        Some(presence(UserStatus::StatusNormal, None))
    );
    for wanted in [
        presence(UserStatus::StatusNotAvailable, Some("Back at 14:00 – ø")),
        presence(UserStatus::StatusSystem, Some("")),
        presence(UserStatus::StatusNormal, None),
    ] {
        let stored = t.store.set_presence(id, wanted.clone()).await.unwrap();
        assert_eq!(stored, Some(wanted.clone()));
        assert_eq!(t.store.presence(id).await.unwrap(), Some(wanted));
    }
}

#[tokio::test]
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

#[tokio::test]
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

#[tokio::test]
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

#[tokio::test]
async fn a_database_from_a_newer_program_is_refused() {
    let t = fresh().await;
    let Store::Sqlite(sqlite) = &t.store;
    sqlite
        .clone()
        .blocking(|s| {
            s.write(|conn| {
                conn.execute(
                    "INSERT INTO schema_migration (version, name, applied_at) VALUES (999, 'future', 0)",
                    [],
                )?;
                Ok(())
            })
        })
        .await
        .unwrap();
    assert!(matches!(
        t.store.migrate().await,
        Err(StoreError::SchemaTooNew { found: 999, .. })
    ));
}

#[test]
fn unsupported_urls_are_refused() {
    for url in ["mysql://x", "presence.db", "sqlite://x.db?journal=off"] {
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
