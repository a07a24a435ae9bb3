//! The presence API (`/presence/v1/`): batches and lists, one user with its revision, timed
//! statuses and planned absences, read through both APIs as the clock moves, and its errors as
//! problem details.

use std::collections::BTreeSet;
use std::time::Duration;

use presence::domain::{Actor, AssociateId, Message, UserPresenceStatus, UserStatus};
use presence::store::NewServiceUser;
use presence::timestamp;
use serde_json::{Value, json};

use crate::helpers::*;

both_backends!(
    a_timed_status_ends_at_its_until_on_both_apis,
    an_absence_rules_from_its_start_to_its_end_on_both_apis,
    a_superoffice_set_ends_a_timed_status_but_not_an_absence,
    a_batch_answers_the_users_found_and_lists_the_rest,
    a_client_pages_through_every_user_once_while_sets_run,
    the_revision_is_the_etag_and_a_stale_if_match_changes_nothing,
    until_goes_only_with_not_available_and_only_ahead,
    absences_are_checked_planned_listed_and_cancelled,
    who_may_change_what,
    errors_are_problem_details,
    an_absence_planned_on_one_node_governs_the_other_at_once,
);

const HOUR: Duration = Duration::from_secs(3600);

fn at(app: &TestApp, ahead: Duration) -> String {
    timestamp::format(app.clock.now_millis() + ahead.as_millis() as i64)
}

async fn get_json(app: &TestApp, path: &str) -> (u16, Value) {
    let response = app.send(Request::new("GET", path).basic(USER)).await;
    (response.status, json_of(&response))
}

/// The user's presence read alone and in a batch, which must agree: a batch answers from the
/// JSON it kept from an earlier batch, while that JSON holds.
///
/// A timer may record a change between the reads (an absence starting once the clock moved
/// on): the user then reads anew, at the newer revision.
async fn presence_of(app: &TestApp, id: i32) -> Value {
    'read: for _ in 0..5 {
        let (status, alone) = get_json(app, &format!("/presence/v1/users/{id}")).await;
        assert_eq!(status, 200);
        for _ in 0..2 {
            let (status, batch) = get_json(app, &format!("/presence/v1/users?ids={id}")).await;
            assert_eq!(status, 200);
            let batch = &batch["items"][0];
            if batch["revision"].as_i64() > alone["revision"].as_i64() {
                continue 'read;
            }
            assert_eq!(*batch, alone, "a batch answers as a read of the user");
        }
        return alone;
    }
    panic!("associate {id} kept changing");
}

fn json_of(response: &Response) -> Value {
    serde_json::from_slice(&response.body).unwrap_or(Value::Null)
}

async fn superoffice_get(app: &TestApp, id: i32) -> Value {
    let response = app
        .send(
            Request::post(GET)
                .basic(USER)
                .json(&format!(r#"{{"AssociateId":{id}}}"#)),
        )
        .await;
    assert_eq!(response.status, 200);
    json_of(&response)
}

async fn put_status(app: &TestApp, who: (&str, &str), id: i32, body: Value) -> Response {
    app.send(
        Request::new("PUT", &format!("/presence/v1/users/{id}/status"))
            .basic(who)
            .json(&body.to_string()),
    )
    .await
}

async fn plan(app: &TestApp, who: (&str, &str), id: i32, body: Value) -> Response {
    app.send(
        Request::post(&format!("/presence/v1/users/{id}/absences"))
            .basic(who)
            .json(&body.to_string()),
    )
    .await
}

async fn a_timed_status_ends_at_its_until_on_both_apis() {
    let app = spawn_app().await;
    presence_of(&app, USER_ID).await;
    let until = at(&app, HOUR);
    let response = put_status(
        &app,
        USER,
        USER_ID,
        json!({"status": "StatusNotAvailable", "message": "Back at two", "until": until}),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let stored = json_of(&response);
    assert_eq!(stored["status"], "StatusNotAvailable");
    assert_eq!(stored["until"], until);
    assert_eq!(stored["available"], false);
    assert_eq!(
        superoffice_get(&app, USER_ID).await,
        json!({"Status": "StatusNotAvailable", "Message": "Back at two"})
    );

    app.clock.advance(HOUR - Duration::from_millis(1));
    let before = presence_of(&app, USER_ID).await;
    assert_eq!(
        before["status"], "StatusNotAvailable",
        "a millisecond before"
    );

    app.clock.advance(Duration::from_millis(1));
    let after = presence_of(&app, USER_ID).await;
    assert_eq!(after["status"], "StatusNormal");
    assert_eq!(after["message"], Value::Null);
    assert_eq!(after["until"], Value::Null);
    assert_eq!(after["available"], true);
    assert_eq!(
        superoffice_get(&app, USER_ID).await,
        json!({"Status": "StatusNormal", "Message": null})
    );
    // The timer changed nothing stored: the revision is the Set's.
    assert_eq!(after["revision"], stored["revision"]);
}

async fn an_absence_rules_from_its_start_to_its_end_on_both_apis() {
    let app = spawn_app().await;
    let (from, until) = (at(&app, HOUR), at(&app, 3 * HOUR));
    let response = plan(
        &app,
        USER,
        USER_ID,
        json!({"from": from, "until": until, "message": "Holiday"}),
    )
    .await;
    assert_eq!(response.status, 201, "{}", response.text());
    let absence = json_of(&response);
    assert_eq!(absence["from"], from);
    assert_eq!(absence["message"], "Holiday");
    let location = response.header("location").unwrap().to_owned();
    assert_eq!(
        location,
        format!("/presence/v1/users/2/absences/{}", absence["id"])
    );

    let now = presence_of(&app, USER_ID).await;
    assert_eq!(now["status"], "StatusNormal");
    assert_eq!(now["absence"], Value::Null);

    app.clock.advance(HOUR - Duration::from_millis(1));
    assert_eq!(presence_of(&app, USER_ID).await, now);
    app.clock.advance(Duration::from_millis(1));
    let during = presence_of(&app, USER_ID).await;
    assert_eq!(during["status"], "StatusNotAvailable");
    assert_eq!(during["message"], "Holiday");
    assert_eq!(during["absence"], absence);
    assert_eq!(during["available"], false);
    assert_eq!(
        superoffice_get(&app, USER_ID).await,
        json!({"Status": "StatusNotAvailable", "Message": "Holiday"})
    );

    app.clock.advance(2 * HOUR - Duration::from_millis(1));
    assert_eq!(
        superoffice_get(&app, USER_ID).await["Status"],
        "StatusNotAvailable"
    );
    app.clock.advance(Duration::from_millis(1));
    let after = presence_of(&app, USER_ID).await;
    assert_eq!(after["status"], "StatusNormal");
    assert_eq!(after["absence"], Value::Null);
    assert_eq!(
        superoffice_get(&app, USER_ID).await,
        json!({"Status": "StatusNormal", "Message": null})
    );
    let (_, listed) = get_json(&app, "/presence/v1/users/2/absences").await;
    assert_eq!(
        listed,
        json!({"items": [], "next": null}),
        "ended absences are not listed"
    );
}

async fn a_superoffice_set_ends_a_timed_status_but_not_an_absence() {
    let app = spawn_app().await;
    let response = put_status(
        &app,
        USER,
        USER_ID,
        json!({"status": "StatusNotAvailable", "message": "Lunch", "until": at(&app, HOUR)}),
    )
    .await;
    assert_eq!(response.status, 200);
    let planned = plan(
        &app,
        USER,
        USER_ID,
        json!({"from": at(&app, 2 * HOUR), "until": at(&app, 3 * HOUR), "message": "Dentist"}),
    )
    .await;
    assert_eq!(planned.status, 201);
    assert_eq!(presence_of(&app, USER_ID).await["message"], "Lunch");
    let set = app
        .send(Request::post(SET).basic(USER).json(&format!(
            r#"{{"AssociateId":{USER_ID},"UserPresenceStatus":{{"Status":"StatusNotAvailable","Message":"Meeting"}}}}"#
        )))
        .await;
    assert_eq!(set.status, 200);
    let now = presence_of(&app, USER_ID).await;
    assert_eq!(now["until"], Value::Null, "the Set ended the timed status");
    assert_eq!(now["message"], "Meeting");
    app.clock.advance(HOUR);
    assert_eq!(superoffice_get(&app, USER_ID).await["Message"], "Meeting");
    app.clock.advance(HOUR);
    assert_eq!(superoffice_get(&app, USER_ID).await["Message"], "Dentist");
    assert_eq!(presence_of(&app, USER_ID).await["message"], "Dentist");
    app.clock.advance(HOUR);
    assert_eq!(superoffice_get(&app, USER_ID).await["Message"], "Meeting");
}

async fn a_batch_answers_the_users_found_and_lists_the_rest() {
    let app = spawn_app().await;
    let (status, body) = get_json(&app, "/presence/v1/users?ids=963,1,2,5000,1").await;
    assert_eq!(status, 200);
    let ids: Vec<i64> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["associateId"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [963, 1, 2], "in the order asked, each once");
    assert_eq!(body["missing"], json!([5000]));
    let sample = &body["items"][0];
    assert_eq!(sample["status"], "StatusDeleted");
    assert_eq!(sample["message"], "ut");
    assert!(sample["changedAt"].as_str().unwrap().ends_with('Z'));

    let (_, available) = get_json(&app, "/presence/v1/users?ids=963,1,2&available=true").await;
    assert_eq!(available["items"].as_array().unwrap().len(), 2);
    let (_, deleted) = get_json(&app, "/presence/v1/users?ids=963,1,2&status=StatusDeleted").await;
    assert_eq!(deleted["items"][0]["associateId"], 963);

    let too_many: Vec<String> = (1..=1001).map(|i| i.to_string()).collect();
    let response = app
        .send(
            Request::new(
                "GET",
                &format!("/presence/v1/users?ids={}", too_many.join(",")),
            )
            .basic(USER),
        )
        .await;
    assert_eq!(response.status, 400);
    assert_eq!(json_of(&response)["errors"][0]["member"], "ids");
    let thousand: Vec<String> = (1..=1000).map(|i| i.to_string()).collect();
    let response = app
        .send(
            Request::new(
                "GET",
                &format!("/presence/v1/users?ids={}", thousand.join(",")),
            )
            .basic(USER),
        )
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(json_of(&response)["missing"].as_array().unwrap().len(), 997);
    // Three users: a page of exactly three is the last, with no empty page after it.
    let (_, all) = get_json(&app, "/presence/v1/users?limit=3").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    assert_eq!(all["next"], Value::Null);
    let (_, first) = get_json(&app, "/presence/v1/users?limit=2").await;
    let cursor = first["next"].as_str().unwrap();
    let (_, rest) = get_json(&app, &format!("/presence/v1/users?limit=2&after={cursor}")).await;
    assert_eq!(rest["items"][0]["associateId"], 963);
    assert_eq!(rest["next"], Value::Null);
    for bad in [
        "ids=1,x",
        "ids=",
        "ids=0",
        "limit=0",
        "limit=1001",
        "after=nonsense",
        "colour=red",
    ] {
        let (status, body) = get_json(&app, &format!("/presence/v1/users?{bad}")).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["status"], 400, "{bad}");
    }
}

async fn a_client_pages_through_every_user_once_while_sets_run() {
    const USERS: i32 = 100_000;
    const FIRST: i32 = 10_000;
    let app = spawn_app().await;
    let users = (FIRST..FIRST + USERS)
        .map(|id| NewServiceUser::present(AssociateId::new(id), format!("user{id}")))
        .collect();
    app.store.import_users(users).await.unwrap();

    // Sets on users on every page while the client pages.
    let writer = {
        let store = app.store.clone();
        tokio::spawn(async move {
            for round in 0.. {
                let id = FIRST + (round * 7919) % USERS;
                let status = if round % 2 == 0 {
                    UserStatus::StatusNotAvailable
                } else {
                    UserStatus::StatusNormal
                };
                store
                    .set_presence(
                        AssociateId::new(id),
                        UserPresenceStatus {
                            status,
                            message: Message::none(),
                        },
                        &Actor::COMMAND_LINE,
                    )
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let mut seen = Vec::new();
    let mut next = None::<String>;
    loop {
        let path = match &next {
            Some(cursor) => format!("/presence/v1/users?limit=1000&after={cursor}"),
            None => "/presence/v1/users?limit=1000".into(),
        };
        let (status, page) = get_json(&app, &path).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| item["associateId"].as_i64().unwrap()),
        );
        match page["next"].as_str() {
            Some(cursor) => next = Some(cursor.to_owned()),
            None => break,
        }
    }
    writer.abort();
    let expected: Vec<i64> = [1, 2, 963]
        .into_iter()
        .chain((FIRST..FIRST + USERS).map(i64::from))
        .collect::<BTreeSet<i64>>()
        .into_iter()
        .collect();
    assert_eq!(seen.len(), expected.len(), "no duplicate, no gap");
    assert_eq!(seen, expected, "in associate order");

    // A filter few pass pages too.
    let (_, deleted) = get_json(&app, "/presence/v1/users?status=StatusDeleted&limit=5").await;
    assert_eq!(deleted["items"].as_array().unwrap().len(), 1);
}

async fn the_revision_is_the_etag_and_a_stale_if_match_changes_nothing() {
    let app = spawn_app().await;
    let response = app
        .send(Request::new("GET", "/presence/v1/users/2").basic(USER))
        .await;
    let etag = response.header("etag").unwrap().to_owned();
    let revision = json_of(&response)["revision"].as_i64().unwrap();
    assert_eq!(etag, format!("\"{revision}\""));
    let unchanged = app
        .send(
            Request::new("GET", "/presence/v1/users/2")
                .basic(USER)
                .header("If-None-Match", &etag),
        )
        .await;
    assert_eq!(unchanged.status, 304);
    assert!(unchanged.body.is_empty());
    assert_eq!(unchanged.header("etag"), Some(etag.as_str()));

    let changed = app
        .send(
            Request::new("PUT", "/presence/v1/users/2/status")
                .basic(USER)
                .header("If-Match", &etag)
                .json(r#"{"status":"StatusNotAvailable","message":"Away"}"#),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text());
    let new_etag = changed.header("etag").unwrap().to_owned();
    assert_ne!(new_etag, etag);
    assert!(json_of(&changed)["revision"].as_i64().unwrap() > revision);

    let stale = app
        .send(
            Request::new("PUT", "/presence/v1/users/2/status")
                .basic(USER)
                .header("If-Match", &etag)
                .json(r#"{"status":"StatusNormal"}"#),
        )
        .await;
    assert_eq!(stale.status, 412);
    assert_eq!(
        stale.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(
        app.presence(USER_ID).await.unwrap().message.as_deref(),
        Some("Away")
    );
    let (_, now) = get_json(&app, "/presence/v1/users/2").await;
    assert_eq!(format!("\"{}\"", now["revision"]), new_etag);
    let modified = app
        .send(
            Request::new("GET", "/presence/v1/users/2")
                .basic(USER)
                .header("If-None-Match", &etag),
        )
        .await;
    assert_eq!(modified.status, 200);

    // Planning an absence is a change of the user: a new revision.
    let planned = plan(
        &app,
        USER,
        USER_ID,
        json!({"from": at(&app, HOUR), "until": at(&app, 2 * HOUR)}),
    )
    .await;
    assert_eq!(planned.status, 201);
    let (_, after) = get_json(&app, "/presence/v1/users/2").await;
    assert!(after["revision"].as_i64() > now["revision"].as_i64());
}

async fn until_goes_only_with_not_available_and_only_ahead() {
    let app = spawn_app().await;
    let past = timestamp::format(app.clock.now_millis() - 1);
    let cases = [
        json!({"status": "StatusNormal", "until": at(&app, HOUR)}),
        json!({"status": "StatusNotAvailable", "until": past}),
        json!({"status": "StatusNotAvailable", "until": "tomorrow"}),
        json!({"status": "StatusNotAvailable", "until": 12}),
    ];
    for body in cases {
        let response = put_status(&app, ADMIN, USER_ID, body.clone()).await;
        assert_eq!(response.status, 400, "{body}");
        let problem = json_of(&response);
        assert_eq!(problem["errors"][0]["member"], "until", "{body}");
        assert_eq!(problem["title"], "Bad Request");
    }
    for (body, member) in [
        (json!({"message": "x"}), "status"),
        (json!({"status": "Away"}), "status"),
        (
            json!({"status": "StatusNormal", "message": "x".repeat(256)}),
            "message",
        ),
    ] {
        let response = put_status(&app, ADMIN, USER_ID, body.clone()).await;
        assert_eq!(response.status, 400, "{body}");
        assert_eq!(json_of(&response)["errors"][0]["member"], member, "{body}");
    }
    let (_, now) = get_json(&app, "/presence/v1/users/2").await;
    assert_eq!(now["status"], "StatusNormal");
    assert_eq!(now["until"], Value::Null, "nothing was stored");
}

async fn absences_are_checked_planned_listed_and_cancelled() {
    let app = spawn_app().await;
    let year_and_two_days = 368 * 24 * HOUR;
    for (body, member) in [
        (
            json!({"from": at(&app, 2 * HOUR), "until": at(&app, HOUR)}),
            "until",
        ),
        (
            json!({"from": at(&app, HOUR), "until": at(&app, HOUR)}),
            "until",
        ),
        (
            json!({"from": at(&app, HOUR), "until": at(&app, year_and_two_days)}),
            "until",
        ),
        (
            json!({"from": timestamp::format(0), "until": timestamp::format(1)}),
            "until",
        ),
        (json!({"until": at(&app, HOUR)}), "from"),
        (json!({"from": "soon", "until": at(&app, HOUR)}), "from"),
    ] {
        let response = plan(&app, USER, USER_ID, body.clone()).await;
        assert_eq!(response.status, 400, "{body}");
        assert_eq!(json_of(&response)["errors"][0]["member"], member, "{body}");
    }
    let first = plan(
        &app,
        USER,
        USER_ID,
        json!({"from": at(&app, HOUR), "until": at(&app, 3 * HOUR), "message": "A"}),
    )
    .await;
    assert_eq!(first.status, 201);
    let first = json_of(&first);
    let overlapping = plan(
        &app,
        USER,
        USER_ID,
        json!({"from": at(&app, 2 * HOUR), "until": at(&app, 4 * HOUR)}),
    )
    .await;
    assert_eq!(overlapping.status, 409);
    assert!(
        json_of(&overlapping)["detail"]
            .as_str()
            .unwrap()
            .contains(&first["id"].to_string())
    );
    // Touching is no overlap.
    let second = plan(
        &app,
        USER,
        USER_ID,
        json!({"from": at(&app, 3 * HOUR), "until": at(&app, 4 * HOUR), "message": "B"}),
    )
    .await;
    assert_eq!(second.status, 201);
    let second = json_of(&second);
    let (_, listed) = get_json(&app, "/presence/v1/users/2/absences").await;
    assert_eq!(listed["items"], json!([first.clone(), second.clone()]));

    let path = format!("/presence/v1/users/2/absences/{}", first["id"]);
    let cancelled = app.send(Request::new("DELETE", &path).basic(USER)).await;
    assert_eq!(cancelled.status, 204);
    let again = app.send(Request::new("DELETE", &path).basic(USER)).await;
    assert_eq!(again.status, 404);
    let (_, listed) = get_json(&app, "/presence/v1/users/2/absences").await;
    assert_eq!(listed["items"], json!([second]));
    let (status, _) = get_json(&app, "/presence/v1/users/5000/absences").await;
    assert_eq!(status, 404);
}

async fn who_may_change_what() {
    let app = spawn_app().await;
    // A user changes only their own presence, and only to present or not present.
    let others = put_status(
        &app,
        USER,
        ADMIN_ID,
        json!({"status": "StatusNotAvailable"}),
    )
    .await;
    assert_eq!(others.status, 403);
    let system = put_status(&app, USER, USER_ID, json!({"status": "StatusSystem"})).await;
    assert_eq!(system.status, 403);
    let absence = json!({"from": at(&app, HOUR), "until": at(&app, 2 * HOUR)});
    assert_eq!(
        plan(&app, USER, ADMIN_ID, absence.clone()).await.status,
        403
    );
    // An administrator changes anyone's.
    let by_admin = put_status(&app, ADMIN, USER_ID, json!({"status": "StatusSystem"})).await;
    assert_eq!(by_admin.status, 200);
    let planned = plan(&app, ADMIN, USER_ID, absence).await;
    assert_eq!(planned.status, 201);
    let path = format!("/presence/v1/users/2/absences/{}", json_of(&planned)["id"]);
    let other = app.send(Request::new("DELETE", &path).basic(ADMIN)).await;
    assert_eq!(other.status, 204);
    assert_eq!(
        put_status(&app, ADMIN, 5000, json!({"status": "StatusNormal"}))
            .await
            .status,
        404
    );
}

async fn errors_are_problem_details() {
    let app = spawn_app().await;
    let anonymous = app.send(Request::new("GET", "/presence/v1/users/2")).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.header("content-type"),
        Some("application/problem+json")
    );
    assert!(anonymous.header("www-authenticate").is_some());
    let problem = json_of(&anonymous);
    assert_eq!(problem["type"], "about:blank");
    assert_eq!(problem["title"], "Unauthorized");
    assert_eq!(problem["status"], 401);
    assert!(problem["detail"].is_string());

    let cases = [
        (Request::new("GET", "/presence/v1/users/5000"), 404),
        (Request::new("GET", "/presence/v1/users/abc"), 400),
        (Request::new("GET", "/presence/v1/nothing"), 404),
        (Request::new("DELETE", "/presence/v1/users/2"), 405),
        (
            Request::new("PUT", "/presence/v1/users/2/status").body("application/xml", "<status/>"),
            415,
        ),
        (
            Request::new("PUT", "/presence/v1/users/2/status").json("{not json"),
            400,
        ),
        (
            Request::new("PUT", "/presence/v1/users/2/status").json("[]"),
            400,
        ),
    ];
    for (request, status) in cases {
        let response = app.send(request.basic(USER)).await;
        assert_eq!(response.status, status, "{}", response.text());
        assert_eq!(
            response.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(json_of(&response)["status"], status);
    }
    let wrong_method = app
        .send(Request::new("DELETE", "/presence/v1/users/2").basic(USER))
        .await;
    assert_eq!(wrong_method.header("allow"), Some("GET"));
    // SuperOffice's operations keep their own error shape.
    let superoffice = app.send(Request::post(GET).json("{}")).await;
    assert_eq!(superoffice.status, 401);
    assert_ne!(
        superoffice.header("content-type"),
        Some("application/problem+json")
    );
}

async fn an_absence_planned_on_one_node_governs_the_other_at_once() {
    let first = spawn_app().await;
    let second = spawn_app_with(TestSettings {
        clock: first.clock.clone(),
        database_url: Some(first.database_url.clone()),
        ..TestSettings::default()
    })
    .await;
    // The second node has the user cached, and its batch JSON kept, before the absence is
    // planned on the first.
    assert_eq!(
        superoffice_get(&second, USER_ID).await["Status"],
        "StatusNormal"
    );
    assert_eq!(
        presence_of(&second, USER_ID).await["status"],
        "StatusNormal"
    );
    let planned = plan(
        &first,
        USER,
        USER_ID,
        json!({"from": at(&first, Duration::ZERO), "until": at(&first, HOUR), "message": "Out"}),
    )
    .await;
    assert_eq!(planned.status, 201, "{}", planned.text());
    assert_eq!(
        superoffice_get(&second, USER_ID).await,
        json!({"Status": "StatusNotAvailable", "Message": "Out"})
    );
    let on_second = presence_of(&second, USER_ID).await;
    assert_eq!(on_second["absence"], json_of(&planned));

    // A timed status set on the second ends on the first at its time.
    let response = put_status(
        &second,
        USER,
        USER_ID,
        json!({"status": "StatusNotAvailable", "until": at(&second, 2 * HOUR)}),
    )
    .await;
    assert_eq!(response.status, 200);
    first.clock.advance(HOUR);
    assert_eq!(
        superoffice_get(&first, USER_ID).await["Status"],
        "StatusNotAvailable"
    );
    assert_eq!(
        presence_of(&first, USER_ID).await["status"],
        "StatusNotAvailable"
    );
    first.clock.advance(HOUR);
    assert_eq!(
        superoffice_get(&first, USER_ID).await["Status"],
        "StatusNormal"
    );
    assert_eq!(presence_of(&first, USER_ID).await["status"], "StatusNormal");
    assert_eq!(
        presence_of(&second, USER_ID).await["status"],
        "StatusNormal"
    );
}
