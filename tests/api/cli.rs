//! The administration commands, run as a person runs them.

use std::path::PathBuf;
use std::process::{Command, Output};

use presence::domain::{AssociateId, Message, UserStatus};
use presence::store::{NewServiceUser, Store};

use crate::helpers::*;

both_backends!(
    migrate_says_what_it_did,
    users_are_added_listed_changed_and_removed,
    status_is_read_and_set_as_the_wire_shows_it,
    the_cli_and_a_running_server_share_the_database,
    tickets_tokens_and_applications_from_the_command_line,
    resources_are_set_listed_and_imported,
    a_backup_under_sets_holds_every_set_acknowledged_before_it,
);

/// Runs commands on a fresh database of the test's backend.
struct Cli {
    database: TestDatabase,
    /// For the files a test writes (imports).
    dir: tempfile::TempDir,
}

impl Cli {
    async fn new() -> Self {
        Self {
            database: fresh_database().await,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn database_url(&self) -> String {
        self.database.url.clone()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, "")
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        run_presence(&self.database.url, args, stdin)
    }
}

async fn migrate_says_what_it_did() {
    let cli = Cli::new().await;
    let first = stdout(&cli.run(&["migrate"]));
    let lines: Vec<&str> = first.lines().collect();
    let applied = lines.len() - 1;
    assert!(applied >= 2, "{first}");
    assert_eq!(lines[0], "applied 0001_service_users");
    assert!(lines[..applied].iter().all(|l| l.starts_with("applied 00")));
    assert_eq!(
        lines[applied],
        format!("schema is now at version {applied}")
    );
    assert_eq!(
        stdout(&cli.run(&["migrate"])),
        format!("schema is up to date at version {applied}\n")
    );
}

async fn users_are_added_listed_changed_and_removed() {
    let cli = Cli::new().await;
    assert_eq!(
        stdout(&cli.run_with_stdin(
            &[
                "user",
                "add",
                "anna",
                "--associate-id",
                "7",
                "--password-stdin"
            ],
            "s3cret\n"
        )),
        "added anna (associate 7)\n"
    );
    stdout(&cli.run_with_stdin(
        &[
            "user",
            "add",
            "boss",
            "--associate-id",
            "1",
            "--admin",
            "--password-stdin",
        ],
        "boss-pw\n",
    ));
    let list = stdout(&cli.run(&["user", "list"]));
    let rows: Vec<Vec<&str>> = list
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["ASSOCIATE", "LOGIN", "ADMIN", "STATUS", "MESSAGE"]
    );
    assert_eq!(rows[1], ["1", "boss", "yes", "StatusNormal"]);
    assert_eq!(rows[2], ["7", "anna", "no", "StatusNormal"]);

    assert!(
        error(&cli.run_with_stdin(
            &[
                "user",
                "add",
                "ANNA",
                "--associate-id",
                "8",
                "--password-stdin"
            ],
            "x\n"
        ))
        .contains("the login 'ANNA' is already taken")
    );
    assert!(
        error(&cli.run_with_stdin(
            &[
                "user",
                "add",
                "carl",
                "--associate-id",
                "7",
                "--password-stdin"
            ],
            "x\n"
        ))
        .contains("associate 7 already has a Service user")
    );
    assert!(
        error(&cli.run_with_stdin(
            &[
                "user",
                "add",
                "dora",
                "--associate-id",
                "9",
                "--password-stdin"
            ],
            "\n"
        ))
        .contains("the password is empty")
    );

    stdout(&cli.run_with_stdin(&["user", "passwd", "anna", "--password-stdin"], "n3w\n"));
    assert!(
        error(&cli.run_with_stdin(&["user", "passwd", "nobody", "--password-stdin"], "x\n"))
            .contains("no Service user has the login 'nobody'")
    );
    assert_eq!(
        stdout(&cli.run(&["user", "remove", "anna"])),
        "removed anna\n"
    );
    assert!(
        error(&cli.run(&["user", "remove", "anna"]))
            .contains("no Service user has the login 'anna'")
    );
}

async fn status_is_read_and_set_as_the_wire_shows_it() {
    let cli = Cli::new().await;
    stdout(&cli.run_with_stdin(
        &[
            "user",
            "add",
            "anna",
            "--associate-id",
            "7",
            "--password-stdin",
        ],
        "pw\n",
    ));
    assert_eq!(
        stdout(&cli.run(&["status", "get", "7"])),
        "{\"Status\":\"StatusNormal\",\"Message\":null}\n"
    );
    assert_eq!(
        stdout(&cli.run(&[
            "status",
            "set",
            "7",
            "statusnotavailable",
            "--message",
            "Back at 14:00"
        ])),
        "{\"Status\":\"StatusNotAvailable\",\"Message\":\"Back at 14:00\"}\n"
    );
    assert_eq!(
        stdout(&cli.run(&["status", "get", "7"])),
        "{\"Status\":\"StatusNotAvailable\",\"Message\":\"Back at 14:00\"}\n"
    );
    assert!(
        error(&cli.run(&["status", "set", "7", "Away"])).contains("'Away' is not a user status")
    );
    assert!(error(&cli.run(&["status", "get", "8"])).contains("associate 8 is not a Service user"));
    assert!(
        error(&cli.run(&["status", "set", "8", "StatusNormal"]))
            .contains("associate 8 is not a Service user")
    );
}

/// SQLite only: its subject is a file that is not a database.
#[test]
fn an_unreadable_database_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        "plain text, long enough to fill a database header and then some more",
    )
    .unwrap();
    let output = Command::new(presence_binary())
        .args([
            "--database",
            &format!("sqlite://{}", path.display()),
            "migrate",
        ])
        .output()
        .unwrap();
    let message = error(&output);
    assert!(
        message.starts_with("error: cannot open the database"),
        "{message}"
    );
    let output = Command::new(presence_binary())
        .args(["--database", "mysql://db", "migrate"])
        .output()
        .unwrap();
    assert!(error(&output).contains("unsupported database URL"));
}

async fn the_cli_and_a_running_server_share_the_database() {
    let app = spawn_app().await;
    let output = Command::new(presence_binary())
        .args([
            "--database",
            &app.database_url,
            "status",
            "set",
            "2",
            "StatusNotAvailable",
            "--message",
            "cli",
        ])
        .output()
        .unwrap();
    stdout(&output);
    let response = app
        .send(Request::post(GET).basic(USER).json(r#"{"AssociateId":2}"#))
        .await;
    assert_eq!(
        response.text(),
        r#"{"Status":"StatusNotAvailable","Message":"cli"}"#
    );
}

async fn tickets_tokens_and_applications_from_the_command_line() {
    let cli = Cli::new().await;
    stdout(&cli.run_with_stdin(
        &[
            "user",
            "add",
            "anna",
            "--associate-id",
            "7",
            "--password-stdin",
        ],
        "pw\n",
    ));
    let ticket = stdout(&cli.run(&["ticket", "issue", "ANNA"]))
        .trim()
        .to_owned();
    assert!(ticket.starts_with("7T:") && ticket.len() > 40, "{ticket}");
    let other = stdout(&cli.run(&["ticket", "issue", "anna"]))
        .trim()
        .to_owned();
    let token = stdout(&cli.run(&["token", "issue", "anna", "--ttl", "60"]))
        .trim()
        .to_owned();
    assert!(token.starts_with("8A:"), "{token}");
    assert!(
        error(&cli.run(&["ticket", "issue", "nobody"]))
            .contains("no Service user has the login 'nobody'")
    );

    let app = spawn_app_with(TestSettings {
        database_url: Some(cli.database_url()),
        clock: presence::clock::Clock::System,
        ..TestSettings::default()
    })
    .await;
    let call = |authorization: String| {
        Request::post(GET)
            .header("Authorization", &authorization)
            .json(r#"{"AssociateId":7}"#)
    };
    assert_eq!(
        app.send(call(format!("SOTicket {ticket}"))).await.status,
        200
    );
    assert_eq!(app.send(call(format!("Bearer {token}"))).await.status, 200);

    assert_eq!(
        stdout(&cli.run(&["ticket", "revoke", "anna", "--ticket", &ticket])),
        "revoked the ticket\n"
    );
    assert_eq!(
        app.send(call(format!("SOTicket {ticket}"))).await.status,
        401
    );
    assert_eq!(
        app.send(call(format!("SOTicket {other}"))).await.status,
        200
    );
    assert!(
        error(&cli.run(&["ticket", "revoke", "anna", "--ticket", &ticket]))
            .contains("holds no such ticket")
    );
    assert_eq!(
        stdout(&cli.run(&["ticket", "revoke", "anna"])),
        "revoked 1 ticket(s) of anna\n"
    );
    assert_eq!(
        app.send(call(format!("SOTicket {other}"))).await.status,
        401
    );

    let app_token = stdout(&cli.run(&["app", "add", "Partner", "--partner"]))
        .trim()
        .to_owned();
    assert!(app_token.len() >= 43, "{app_token}");
    stdout(&cli.run(&["app", "add", "Trusted", "--partner", "--grant-user-agent"]));
    assert!(error(&cli.run(&["app", "add", "partner"])).contains("already registered"));
    let list = stdout(&cli.run(&["app", "list"]));
    let rows: Vec<Vec<&str>> = list
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[1], ["Partner", "yes", "refused", "online"]);
    assert_eq!(rows[2], ["Trusted", "yes", "allowed"]);
    assert_eq!(
        stdout(&cli.run(&["app", "remove", "PARTNER"])),
        "removed PARTNER\n"
    );
    assert!(error(&cli.run(&["app", "remove", "Partner"])).contains("no application is named"));
}

async fn resources_are_set_listed_and_imported() {
    let cli = Cli::new().await;
    stdout(&cli.run(&["migrate"]));
    let starter = stdout(&cli.run(&["resource", "list", "nb"]));
    assert!(
        starter.contains("SR_PRESENCE_OUT_OF_OFFICE\tnb\tIkke på kontoret\n"),
        "{starter}"
    );
    assert_eq!(
        stdout(&cli.run(&[
            "resource",
            "set",
            "SR_PRESENCE_OUT_OF_OFFICE",
            "nb",
            "Borte"
        ])),
        "set SR_PRESENCE_OUT_OF_OFFICE in nb\n"
    );
    assert!(
        stdout(&cli.run(&["resource", "list", "nb"]))
            .contains("SR_PRESENCE_OUT_OF_OFFICE\tnb\tBorte\n")
    );
    assert!(
        error(&cli.run(&["resource", "set", "SR_X", "tlh", "x"]))
            .contains("not a supported language")
    );
    assert!(
        error(&cli.run(&["resource", "set", "lowercase", "en", "x"]))
            .contains("not a resource name")
    );

    let csv = cli.dir.path().join("texts.csv");
    std::fs::write(&csv, "name,language,text\nSR_GONE_FISHING,en,Gone fishing\nSR_GONE_FISHING,nb,Dratt på fisketur\n").unwrap();
    assert_eq!(
        stdout(&cli.run(&["resource", "import", csv.to_str().unwrap()])),
        format!("imported 2 text(s) from {}\n", csv.display())
    );
    let json = cli.dir.path().join("texts.json");
    std::fs::write(
        &json,
        r#"[{"name":"SR_GONE_FISHING","language":"sv","text":"Ute och fiskar"}]"#,
    )
    .unwrap();
    stdout(&cli.run(&["resource", "import", json.to_str().unwrap()]));
    let bad = cli.dir.path().join("bad.csv");
    std::fs::write(&bad, "name,language,text\nSR_OK,en,Fine\nSR_BAD,xx,Nope\n").unwrap();
    let message = error(&cli.run(&["resource", "import", bad.to_str().unwrap()]));
    assert!(message.contains("line 3"), "{message}");
    assert!(
        !stdout(&cli.run(&["resource", "list"])).contains("SR_OK"),
        "a failed import changes nothing"
    );

    stdout(&cli.run_with_stdin(
        &[
            "user",
            "add",
            "anna",
            "--associate-id",
            "7",
            "--password-stdin",
        ],
        "pw\n",
    ));
    stdout(&cli.run(&[
        "status",
        "set",
        "7",
        "StatusNotAvailable",
        "--message",
        "[SR_GONE_FISHING]",
    ]));
    let app = spawn_app_with(TestSettings {
        database_url: Some(cli.database_url()),
        ..TestSettings::default()
    })
    .await;
    for (language, text) in [
        ("nb", "Dratt på fisketur"),
        ("sv", "Ute och fiskar"),
        ("de", "Gone fishing"),
    ] {
        let response = app
            .send(
                Request::post(GET)
                    .basic(("anna", "pw"))
                    .header("SO-Language", language)
                    .json(r#"{"AssociateId":7}"#),
            )
            .await;
        assert_eq!(response.json()["Message"], text, "{language}");
    }
}

/// Sets run against a server, one after another, while `presence backup` copies its database;
/// the copy, restored as a database of its own, holds every Set acknowledged before the backup
/// began. On PostgreSQL the command points to pg_dump and writes nothing.
async fn a_backup_under_sets_holds_every_set_acknowledged_before_it() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.db");
    let backup = |file: PathBuf, database_url: String| {
        tokio::task::spawn_blocking(move || {
            Command::new(presence_binary())
                .env("PRESENCE_LOG", "warn")
                .args(["--database", &database_url, "backup"])
                .arg(&file)
                .output()
                .unwrap()
        })
    };
    if matches!(Backend::current(), Backend::Postgres { .. }) {
        let output = backup(file.clone(), app.database_url.clone())
            .await
            .unwrap();
        assert!(error(&output).contains("pg_dump"));
        assert!(!file.exists());
        return;
    }

    const USERS: i32 = 1500;
    const FIRST: i32 = 10_000;
    for i in 0..USERS {
        app.store
            .add_user(NewServiceUser::present(
                AssociateId::new(FIRST + i),
                format!("backup{i}"),
            ))
            .await
            .unwrap();
    }
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let sets = tokio::spawn({
        let (acknowledged, stop, address) = (acknowledged.clone(), stop.clone(), app.address);
        async move {
            for i in 0..USERS {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let body = format!(
                    r#"{{"AssociateId":{},"UserPresenceStatus":{{"Status":"StatusNotAvailable","Message":"set {i}"}}}}"#,
                    FIRST + i
                );
                let response = send_to(address, Request::post(SET).basic(ADMIN).json(&body)).await;
                assert_eq!(response.status, 200, "{}", response.text());
                acknowledged.lock().unwrap().push(i);
            }
        }
    });
    while acknowledged.lock().unwrap().len() < 50 {
        assert!(!sets.is_finished(), "the Sets stopped early");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    let before = acknowledged.lock().unwrap().len();
    let output = backup(file.clone(), app.database_url.clone())
        .await
        .unwrap();
    let during = acknowledged.lock().unwrap().len() - before;
    stop.store(true, Ordering::Relaxed);
    sets.await.unwrap();
    assert!(stdout(&output).starts_with("backed up "));
    assert!(during > 0, "no Set was acknowledged while the backup ran");
    assert!(
        acknowledged.lock().unwrap().len() < USERS as usize,
        "the Sets ran out before the backup ended"
    );

    // Restored as the README says: the one file, put in place.
    let restored = dir.path().join("restored.db");
    std::fs::copy(&file, &restored).unwrap();
    let check: String = rusqlite::Connection::open(&restored)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let (store, _) = Store::open_and_migrate(&format!("sqlite://{}", restored.display()))
        .await
        .unwrap();
    // The Sets were made one after another: a copy as of one commit holds the first k of
    // them and none after, and k counts at least those acknowledged before it began.
    let mut held = Vec::new();
    for i in 0..USERS {
        let presence = store
            .presence(AssociateId::new(FIRST + i))
            .await
            .unwrap()
            .unwrap()
            .stored
            .clone();
        if presence.status == UserStatus::StatusNotAvailable {
            assert_eq!(
                presence.message,
                Message::new(Some(format!("set {i}"))).unwrap()
            );
            held.push(i);
        }
    }
    let k = held.len();
    assert_eq!(
        held,
        (0..k as i32).collect::<Vec<_>>(),
        "not one moment's copy"
    );
    assert!(
        k >= before,
        "{k} Sets in the copy, {before} acknowledged before it began"
    );

    // A backup is never written over a file, and one of no database makes none.
    let bytes = std::fs::read(&file).unwrap();
    let again = backup(file.clone(), app.database_url.clone())
        .await
        .unwrap();
    assert!(error(&again).contains("exists already"));
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
    let missing = dir.path().join("missing.db");
    let other = dir.path().join("other.db");
    let output = backup(other.clone(), format!("sqlite://{}", missing.display()))
        .await
        .unwrap();
    assert!(error(&output).contains("there is no database at"));
    assert!(!missing.exists() && !other.exists());
}
