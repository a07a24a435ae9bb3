//! The SQLite backend's own behaviour: what another program beside the server does to the file,
//! migrations of old databases, a full disk, and writes that wait.

use super::*;
use crate::domain::{Actor, AssociateId, Message, UserPresenceStatus, UserStatus};
use crate::secret::SecretHash;
use crate::store::cache;
use crate::store::{NewServiceUser, Store, TokenKind};

/// A store with one user, `erik` (associate 1), and a plain connection to the same file
/// standing for any other program writing to it.
async fn store_and_outsider() -> (tempfile::TempDir, Store, Connection) {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("presence.db");
    let (store, _) = Store::open_and_migrate(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store
        .add_user(NewServiceUser::present(AssociateId::new(1), "erik"))
        .await
        .unwrap();
    (directory, store, Connection::open(path).unwrap())
}

/// A transaction large enough to spill pages into the write-ahead log before it ends, rolled
/// back beside another connection (the command line beside the server) that then commits
/// as many pages of another table, at the same offsets of the log: every committed row must
/// survive, whatever the first connection does next. (The log starts empty, so that the
/// rollback reads nothing back from it.)
#[test]
fn a_large_rolled_back_transaction_beside_another_writer_loses_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("presence.db");
    let first = open_connection(&path, Synchronous::Normal).unwrap();
    first
        .execute_batch(&format!(
            "PRAGMA page_size = {PAGE_SIZE};
             PRAGMA journal_mode = WAL;
             CREATE TABLE rolled_back (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
             CREATE TABLE committed (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
             PRAGMA wal_checkpoint(TRUNCATE);"
        ))
        .unwrap();
    let second = open_connection(&path, Synchronous::Normal).unwrap();
    let insert_200 = |table: &str| {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
             INSERT INTO {table} (data) SELECT randomblob(900) FROM n"
        )
    };
    // A small page cache makes the transaction write pages to the log before it ends.
    first.pragma_update(None, "cache_size", 20).unwrap();
    first.execute_batch("BEGIN").unwrap();
    first.execute(&insert_200("rolled_back"), []).unwrap();
    first.execute_batch("ROLLBACK").unwrap();

    second.execute(&insert_200("committed"), []).unwrap();

    let count = |connection: &Connection, table: &str| {
        connection
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get::<_, i64>(0)
            })
            .unwrap()
    };
    assert_eq!(count(&first, "committed"), 200);
    assert_eq!(count(&first, "rolled_back"), 0);
    drop(first);
    drop(second);

    let check = Connection::open(&path).unwrap();
    let integrity: String = check
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    assert_eq!(count(&check, "committed"), 200);
    assert_eq!(count(&check, "rolled_back"), 0);
}

/// The writer's connection limited to the pages the database has, as a full disk would
/// limit it: what cannot be stored is a `DiskFull`, named as such, and the server goes on.
#[tokio::test]
async fn a_full_disk_is_named_as_one() {
    let directory = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}",
        directory.path().join("presence.db").display()
    );
    let (store, _) = Store::open_and_migrate(&url).await.unwrap();
    let Store::Sqlite(sqlite) = &store else {
        unreachable!("a SQLite URL")
    };
    sqlite
        .write(|conn| {
            let pages: i64 = conn.query_row("PRAGMA page_count", [], |row| row.get(0))?;
            conn.pragma_update(None, "max_page_count", pages)?;
            Ok(())
        })
        .await
        .unwrap();
    let mut outcome = Ok(());
    for id in 1..1000 {
        outcome = store
            .add_user(NewServiceUser::present(
                AssociateId::new(id),
                format!("user-{id}-{}", "x".repeat(200)),
            ))
            .await;
        if outcome.is_err() {
            break;
        }
    }
    assert!(
        matches!(outcome, Err(StoreError::DiskFull(_))),
        "{outcome:?}"
    );
    // Reads go on, and so does the writer once there is room.
    store.ping().await.unwrap();
    sqlite
        .write(|conn| Ok(conn.pragma_update(None, "max_page_count", 1 << 30)?))
        .await
        .unwrap();
    store
        .add_user(NewServiceUser::present(
            AssociateId::new(5000),
            "room-again",
        ))
        .await
        .unwrap();
}

/// Another program holds the write lock, so a Set waits for it on the writer thread:
/// meanwhile every read is answered, from the cache or from the database.
#[tokio::test]
async fn a_write_waiting_for_a_lock_stalls_no_read() {
    let (_directory, store, outsider) = store_and_outsider().await;
    let id = AssociateId::new(1);
    outsider.execute_batch("BEGIN IMMEDIATE").unwrap();
    let waiting = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .set_presence(
                    id,
                    UserPresenceStatus {
                        status: UserStatus::StatusNotAvailable,
                        message: Message::none(),
                    },
                    &Actor::COMMAND_LINE,
                )
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let reads = async {
        store.ping().await.unwrap();
        assert!(store.credentials("erik").await.unwrap().is_some());
        assert_eq!(
            store.presence(id).await.unwrap().unwrap().stored.status,
            UserStatus::StatusNormal
        );
        assert_eq!(store.presence(AssociateId::new(2)).await.unwrap(), None);
        store
            .find_token(TokenKind::Ticket, SecretHash([7; 32]), 0)
            .await
            .unwrap();
    };
    tokio::time::timeout(Duration::from_secs(2), reads)
        .await
        .expect("the reads are answered while the write waits");
    assert!(!waiting.is_finished(), "the Set waits for the lock");
    outsider.execute_batch("COMMIT").unwrap();
    assert!(waiting.await.unwrap().unwrap().is_some());
    assert_eq!(
        store.presence(id).await.unwrap().unwrap().stored.status,
        UserStatus::StatusNotAvailable
    );
}

/// A Set whose caller gave up (its request timed out, its client left) before its commit began
/// is not stored: a failed request changes nothing.
#[tokio::test]
async fn a_set_whose_caller_is_gone_before_its_commit_is_not_stored() {
    let (_directory, store, outsider) = store_and_outsider().await;
    let id = AssociateId::new(1);
    outsider.execute_batch("BEGIN IMMEDIATE").unwrap();
    let away = UserPresenceStatus {
        status: UserStatus::StatusNotAvailable,
        message: Message::none(),
    };
    let given_up = {
        let store = store.clone();
        tokio::spawn(async move { store.set_presence(id, away, &Actor::COMMAND_LINE).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    given_up.abort();
    assert!(given_up.await.unwrap_err().is_cancelled());
    outsider.execute_batch("COMMIT").unwrap();
    // A later Set is committed after the one given up, and the one given up left no trace.
    let present = UserPresenceStatus {
        status: UserStatus::StatusReadOnly,
        message: Message::none(),
    };
    store
        .set_presence(AssociateId::new(99), present, &Actor::COMMAND_LINE)
        .await
        .unwrap();
    assert_eq!(
        store.presence(id).await.unwrap().unwrap().stored.status,
        UserStatus::StatusNormal
    );
    let changes = store.user_changes_after(0, 100).await.unwrap();
    assert!(
        changes
            .iter()
            .all(|change| change.associate_id != id || change.revision == 1)
    );
}

#[tokio::test]
async fn migrating_a_version_3_database_keeps_its_users_and_their_tickets() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("presence.db");
    let connection = crate::store::tests::sqlite_at_version(&path, 3);
    connection
        .pragma_update(None, "foreign_keys", "ON")
        .unwrap();
    connection
        .execute_batch(
            "INSERT INTO service_user (associate_id, login, status, message, updated_at)
                 VALUES (7, 'gina', 2, 'Away', 0);
             INSERT INTO token (hash, kind, associate_id, expires_at, created_at)
                 VALUES (zeroblob(32), 1, 7, 9000000000000, 0);",
        )
        .unwrap();
    drop(connection);

    let (store, report) = Store::open_and_migrate(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(report.applied.len(), migrations::SQLITE.len() - 3);
    let presence = store.presence(AssociateId::new(7)).await.unwrap().unwrap();
    assert_eq!(presence.stored.status, UserStatus::StatusNotAvailable);
    assert_eq!(presence.stored.message.as_deref(), Some("Away"));
    let owner = store
        .find_token(TokenKind::Ticket, SecretHash([0; 32]), 0)
        .await
        .unwrap();
    assert_eq!(owner.map(|o| o.associate_id), Some(AssociateId::new(7)));
    // Foreign keys are back on: removing the user still removes the ticket.
    store.remove_user("gina").await.unwrap();
    let owner = store
        .find_token(TokenKind::Ticket, SecretHash([0; 32]), 0)
        .await
        .unwrap();
    assert_eq!(owner, None);
}

#[tokio::test]
async fn a_new_database_gets_small_pages_and_an_existing_one_keeps_its_own() {
    let directory = tempfile::tempdir().unwrap();
    let page_size = |path: &Path| {
        Connection::open(path)
            .unwrap()
            .query_row("PRAGMA page_size", [], |row| row.get::<_, i64>(0))
            .unwrap()
    };
    let new = directory.path().join("new.db");
    Store::open_and_migrate(&format!("sqlite://{}", new.display()))
        .await
        .unwrap();
    assert_eq!(page_size(&new), PAGE_SIZE);

    let existing = directory.path().join("existing.db");
    Connection::open(&existing)
        .unwrap()
        .execute_batch("PRAGMA page_size = 8192; CREATE TABLE t (x);")
        .unwrap();
    let (store, _) = Store::open_and_migrate(&format!("sqlite://{}", existing.display()))
        .await
        .unwrap();
    assert_eq!(page_size(&existing), 8192);
    store.presence(AssociateId::new(1)).await.unwrap();
}

#[tokio::test]
async fn a_login_renamed_by_another_program_is_seen_at_once() {
    let (_directory, store, outsider) = store_and_outsider().await;
    assert!(store.credentials("erik").await.unwrap().is_some());
    assert_eq!(store.credentials("frida").await.unwrap(), None);
    outsider
        .execute(
            "UPDATE service_user SET login = 'Frida' WHERE associate_id = 1",
            [],
        )
        .unwrap();
    assert_eq!(store.credentials("erik").await.unwrap(), None);
    let found = store.credentials("frida").await.unwrap().unwrap();
    assert_eq!(found.associate_id, AssociateId::new(1));
}

#[tokio::test]
async fn a_change_whose_log_entry_was_trimmed_is_still_seen() {
    let (_directory, store, outsider) = store_and_outsider().await;
    let id = AssociateId::new(1);
    assert!(store.presence(id).await.unwrap().is_some());
    // As if the server had been far behind when the log's old end was trimmed.
    outsider
        .execute_batch(
            "UPDATE service_user SET status = 2 WHERE associate_id = 1;
             INSERT INTO user_change (associate_id, login) VALUES (99, 'nobody');
             DELETE FROM user_change WHERE revision < (SELECT max(revision) FROM user_change);",
        )
        .unwrap();
    assert_eq!(
        store.presence(id).await.unwrap().unwrap().stored.status,
        UserStatus::StatusNotAvailable
    );
}

#[tokio::test]
async fn a_bulk_change_by_another_program_is_seen_at_once() {
    let (_directory, store, outsider) = store_and_outsider().await;
    let id = AssociateId::new(1);
    assert_eq!(
        store.presence(id).await.unwrap().unwrap().stored.status,
        UserStatus::StatusNormal
    );
    outsider
        .execute_batch(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < {})
             INSERT INTO service_user (associate_id, login, status, updated_at)
             SELECT i, 'u' || i, 0, 0 FROM n;
             UPDATE service_user SET status = 2;",
            cache::MAX_CHANGES + 10
        ))
        .unwrap();
    assert_eq!(
        store.presence(id).await.unwrap().unwrap().stored.status,
        UserStatus::StatusNotAvailable
    );
}

#[tokio::test]
async fn the_log_keeps_its_newest_changes_however_young() {
    let (directory, _store, outsider) = store_and_outsider().await;
    let own = open_connection(&directory.path().join("presence.db"), Synchronous::Normal).unwrap();
    let count_and_latest = || {
        outsider
            .query_row(
                "SELECT count(*), max(revision) FROM user_change",
                [],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
            )
            .unwrap()
    };
    outsider
        .execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
             INSERT INTO user_change (associate_id, login, at, kind) SELECT i, 'u' || i, 9e15, 'status' FROM n",
            [],
        )
        .unwrap();
    let (rows, latest) = count_and_latest();
    assert!(rows >= 20);
    // Young all of them: only the bound on their number trims.
    super::history::trim_step(&own, 0, 5).unwrap();
    assert_eq!(count_and_latest(), (6, latest));
    super::history::trim_step(&own, 0, 5).unwrap();
    assert_eq!(count_and_latest(), (6, latest), "no more than the bound");
}
