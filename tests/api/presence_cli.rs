//! Timed statuses, the list of presences and planned absences from the command line, run as a
//! person runs them.

use std::process::Output;

use presence::domain::{Actor, AssociateId, Message};
use presence::store::{AbsencePlanned, MAX_PLANNED_ABSENCES, NewAbsence, NewServiceUser, Store};
use presence::timestamp;

use crate::helpers::*;

both_backends!(
    a_timed_status_is_set_read_and_listed,
    a_timed_status_is_refused_unless_it_is_not_available_and_ahead,
    absences_are_planned_listed_and_cancelled,
    an_absence_is_refused_when_it_overlaps_or_is_malformed,
    the_list_holds_every_user_across_its_pages,
);

const HOUR: i64 = 3_600_000;

/// A fresh database of the test's backend with Service users, each given as (login, id).
struct Users {
    database: TestDatabase,
}

impl Users {
    async fn new(users: &[(&str, i32)]) -> Self {
        let this = Self {
            database: fresh_database().await,
        };
        for (login, id) in users {
            let id = id.to_string();
            let added = [
                "user",
                "add",
                login,
                "--associate-id",
                &id,
                "--password-stdin",
            ];
            stdout(&this.run_with_stdin(&added, "pw\n"));
        }
        this
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, "")
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        run_presence(&self.database.url, args, stdin)
    }

    /// `status list`'s rows under its header, each split at blanks.
    fn list(&self, filters: &[&str]) -> Vec<Vec<String>> {
        let args: Vec<&str> = ["status", "list"].iter().chain(filters).copied().collect();
        let text = stdout(&self.run(&args));
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(header, ["ASSOCIATE", "LOGIN", "STATUS", "UNTIL", "MESSAGE"]);
        lines
            .map(|line| line.split_whitespace().map(str::to_owned).collect())
            .collect()
    }

    /// `status list --json`, a value a line.
    fn list_json(&self) -> Vec<serde_json::Value> {
        stdout(&self.run(&["status", "list", "--json"]))
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

fn now() -> i64 {
    presence::clock::Clock::System.now_millis()
}

/// Asserts that `text` is a time within a minute before `expected`, or at it: a time a
/// command worked out from its own now, a little after the test's.
fn assert_about(text: &str, expected: i64) {
    let at = timestamp::parse(text).unwrap();
    assert!(
        (expected - 60_000..=expected + 60_000).contains(&at),
        "{text} is not about {}",
        timestamp::format(expected)
    );
}

async fn a_timed_status_is_set_read_and_listed() {
    let users = Users::new(&[("anna", 7), ("bob", 8)]).await;
    let before = now();
    let away = "{\"Status\":\"StatusNotAvailable\",\"Message\":\"Lunch\"}\n";
    assert_eq!(
        stdout(&users.run(&[
            "status",
            "set",
            "7",
            "StatusNotAvailable",
            "--message",
            "Lunch",
            "--until",
            "2h"
        ])),
        away
    );
    assert_eq!(stdout(&users.run(&["status", "get", "7"])), away);

    let rows = users.list(&[]);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0][..3], ["7", "anna", "StatusNotAvailable"]);
    assert_about(&rows[0][3], before + 2 * HOUR);
    assert_eq!(rows[0][4..], ["Lunch"]);
    assert_eq!(rows[1], ["8", "bob", "StatusNormal"]);

    let json = users.list_json();
    assert_eq!(json.len(), 2);
    assert_eq!(json[0]["associateId"], 7);
    assert_eq!(json[0]["login"], "anna");
    assert_eq!(json[0]["status"], "StatusNotAvailable");
    assert_eq!(json[0]["message"], "Lunch");
    assert_eq!(json[0]["available"], false);
    assert_about(json[0]["until"].as_str().unwrap(), before + 2 * HOUR);
    assert_about(json[0]["changedAt"].as_str().unwrap(), before);
    assert!(json[0]["revision"].is_i64() && json[1]["revision"].is_i64());
    assert_eq!(json[1]["until"], serde_json::Value::Null);
    assert_eq!(json[1]["message"], serde_json::Value::Null);
    assert_eq!(json[1]["available"], true);

    let available = users.list(&["--available"]);
    assert_eq!(available, [["8", "bob", "StatusNormal"]]);
    let away_only = users.list(&["--status", "statusnotavailable"]);
    assert_eq!(away_only.len(), 1);
    assert_eq!(away_only[0][..2], ["7", "anna"]);
    assert!(users.list(&["--available", "--status", "4"]).is_empty());

    // A status set without --until is not timed: the old end goes.
    stdout(&users.run(&["status", "set", "7", "StatusNotAvailable"]));
    assert_eq!(users.list(&[])[0], ["7", "anna", "StatusNotAvailable"]);
    let until = timestamp::format(before + 3 * HOUR);
    stdout(&users.run(&[
        "status",
        "set",
        "7",
        "StatusNotAvailable",
        "--until",
        &until,
    ]));
    assert_eq!(
        users.list(&[])[0],
        ["7", "anna", "StatusNotAvailable", until.as_str()]
    );
}

async fn a_timed_status_is_refused_unless_it_is_not_available_and_ahead() {
    let users = Users::new(&[("anna", 7)]).await;
    let present = "{\"Status\":\"StatusNormal\",\"Message\":null}\n";
    assert!(
        error(&users.run(&["status", "set", "7", "StatusNormal", "--until", "2h"]))
            .contains("--until is for StatusNotAvailable only, not StatusNormal")
    );
    let past = "2020-01-01T00:00:00Z";
    assert!(
        error(&users.run(&[
            "status",
            "set",
            "7",
            "StatusNotAvailable",
            "--message",
            "Gone",
            "--until",
            past
        ]))
        .contains("--until 2020-01-01T00:00:00.000Z is not in the future")
    );
    assert!(
        error(&users.run(&["status", "set", "7", "StatusNotAvailable", "--until", "0s"]))
            .contains("is not in the future")
    );
    assert_eq!(stdout(&users.run(&["status", "get", "7"])), present);
    assert_eq!(users.list(&["--available"]).len(), 1);

    // A time that is no time is a command line that cannot be used.
    let unreadable = users.run(&[
        "status",
        "set",
        "7",
        "StatusNotAvailable",
        "--until",
        "soon",
    ]);
    assert_eq!(unreadable.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unreadable.stderr).contains("'soon' is neither a time"));
    assert!(
        error(&users.run(&["status", "set", "9", "StatusNotAvailable", "--until", "1h"]))
            .contains("associate 9 is not a Service user")
    );
    assert_eq!(stdout(&users.run(&["status", "get", "7"])), present);
}

/// The id that `absence add` printed.
fn planned_id(output: &Output) -> String {
    let text = stdout(output);
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(words[..2], ["planned", "absence"], "{text}");
    words[2].to_owned()
}

async fn absences_are_planned_listed_and_cancelled() {
    let users = Users::new(&[("anna", 7), ("bob", 8)]).await;
    let start = now();
    let christmas = stdout(&users.run(&[
        "absence",
        "add",
        "7",
        "--from",
        "2099-12-24T00:00:00Z",
        "--until",
        "2099-12-27T00:00:00+01:00",
        "--message",
        "Christmas",
    ]));
    let words: Vec<&str> = christmas.split_whitespace().collect();
    let christmas_id = words[2].to_owned();
    assert_eq!(
        words,
        [
            "planned",
            "absence",
            &christmas_id,
            "of",
            "associate",
            "7",
            "from",
            "2099-12-24T00:00:00.000Z",
            "until",
            "2099-12-26T23:00:00.000Z"
        ]
    );
    // One that is on now makes the user not available, with its message.
    let dentist_id = planned_id(&users.run(&[
        "absence",
        "add",
        "7",
        "--from",
        "0s",
        "--until",
        "1h",
        "--message",
        "Dentist",
    ]));
    assert_ne!(dentist_id, christmas_id);
    assert_eq!(
        stdout(&users.run(&["status", "get", "7"])),
        "{\"Status\":\"StatusNotAvailable\",\"Message\":\"Dentist\"}\n"
    );
    assert_eq!(users.list(&["--available"]), [["8", "bob", "StatusNormal"]]);

    let listed = stdout(&users.run(&["absence", "list", "7"]));
    let rows: Vec<Vec<&str>> = listed
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 3, "{listed}");
    assert_eq!(rows[0], ["ID", "FROM", "UNTIL", "MESSAGE"]);
    assert_eq!(rows[1][0], dentist_id);
    assert_about(rows[1][1], start);
    assert_about(rows[1][2], start + HOUR);
    assert_eq!(rows[1][3], "Dentist");
    assert_eq!(
        rows[2],
        [
            christmas_id.as_str(),
            "2099-12-24T00:00:00.000Z",
            "2099-12-26T23:00:00.000Z",
            "Christmas"
        ]
    );
    assert_eq!(
        stdout(&users.run(&["absence", "list", "8"]))
            .lines()
            .count(),
        1
    );
    assert!(
        error(&users.run(&["absence", "list", "9"])).contains("associate 9 is not a Service user")
    );

    assert_eq!(
        stdout(&users.run(&["absence", "remove", "7", &dentist_id])),
        format!("cancelled absence {dentist_id} of associate 7\n")
    );
    assert!(
        error(&users.run(&["absence", "remove", "7", &dentist_id]))
            .contains(&format!("associate 7 has no absence {dentist_id}"))
    );
    assert!(
        error(&users.run(&["absence", "remove", "8", &christmas_id]))
            .contains(&format!("associate 8 has no absence {christmas_id}"))
    );
    assert_eq!(
        stdout(&users.run(&["status", "get", "7"])),
        "{\"Status\":\"StatusNormal\",\"Message\":null}\n"
    );
    let listed = stdout(&users.run(&["absence", "list", "7"]));
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(listed.contains("Christmas"), "{listed}");
}

async fn an_absence_is_refused_when_it_overlaps_or_is_malformed() {
    let users = Users::new(&[("anna", 7)]).await;
    let add = |from: &str, until: &str| {
        users.run(&["absence", "add", "7", "--from", from, "--until", until])
    };
    let first = planned_id(&add("2099-01-10T00:00:00Z", "2099-01-20T00:00:00Z"));
    assert!(
        error(&add("2099-01-19T00:00:00Z", "2099-01-25T00:00:00Z")).contains(&format!(
            "the new absence overlaps absence {first}, from 2099-01-10T00:00:00.000Z until 2099-01-20T00:00:00.000Z"
        ))
    );
    // Absences are half-open: one may start where another ends.
    planned_id(&add("2099-01-20T00:00:00Z", "2099-01-25T00:00:00Z"));

    assert!(
        error(&add("2099-02-02T00:00:00Z", "2099-02-01T00:00:00Z"))
            .contains("an absence must start before it ends")
    );
    assert!(
        error(&add("2099-02-01T00:00:00Z", "2099-02-01T00:00:00Z"))
            .contains("an absence must start before it ends")
    );
    assert!(
        error(&add("2099-02-01T00:00:00Z", "2100-02-03T00:00:00Z"))
            .contains("an absence lasts at most 366 days")
    );
    planned_id(&add("2099-02-01T00:00:00Z", "2100-02-02T00:00:00Z"));
    assert!(
        error(&add("2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"))
            .contains("--until 2020-01-02T00:00:00.000Z is not in the future")
    );
    assert!(
        error(&users.run(&["absence", "add", "9", "--from", "1h", "--until", "2h"]))
            .contains("associate 9 is not a Service user")
    );
    let listed = stdout(&users.run(&["absence", "list", "7"]));
    assert_eq!(listed.lines().count(), 4, "{listed}");

    // A user has a bounded number of absences planned; those above were three of them.
    let (store, _) = Store::open_and_migrate(&users.database.url).await.unwrap();
    let at = now();
    for n in 3..MAX_PLANNED_ABSENCES as i64 {
        let from = timestamp::parse("2101-01-01T00:00:00Z").unwrap() + n * HOUR;
        let absence = NewAbsence {
            from,
            until: from + HOUR,
            message: Message::none(),
            at,
            actor: Actor::COMMAND_LINE,
        };
        let planned = store.plan_absence(AssociateId::new(7), absence).await;
        assert!(
            matches!(planned, Ok(AbsencePlanned::Planned(_))),
            "{planned:?}"
        );
    }
    drop(store);
    assert!(
        error(&add("2102-01-01T00:00:00Z", "2102-01-02T00:00:00Z")).contains(&format!(
            "associate 7 has {MAX_PLANNED_ABSENCES} absences planned already"
        ))
    );
}

async fn the_list_holds_every_user_across_its_pages() {
    let users = Users::new(&[]).await;
    let (store, _) = Store::open_and_migrate(&users.database.url).await.unwrap();
    // More than two of the list's pages of 1000, added out of order.
    let count = 2_345;
    let added = (1..=count)
        .rev()
        .map(|id| NewServiceUser::present(AssociateId::new(id * 3), format!("user{id}")))
        .collect();
    store.import_users(added).await.unwrap();
    drop(store);
    let rows = users.list(&[]);
    assert_eq!(rows.len(), count as usize);
    for (row, id) in rows.iter().zip(1..) {
        assert_eq!(
            row[..3],
            [
                (id * 3).to_string(),
                format!("user{id}"),
                "StatusNormal".into()
            ]
        );
    }
    assert_eq!(users.list_json().len(), count as usize);
}
