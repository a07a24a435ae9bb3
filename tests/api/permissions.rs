//! Who may do what: anyone authenticated reads; users set their own presence to present or not
//! present; administrators set anything for anyone.

use presence::domain::UserStatus;

use crate::helpers::*;

both_backends!(
    any_user_reads_anyones_status,
    users_set_their_own_status_to_present_or_not_present_only,
    users_cannot_set_anyone_elses_status,
    administrators_set_any_status_for_anyone,
    a_deleted_user_cannot_authenticate_even_after_a_cached_sign_in,
    a_password_change_or_removal_ends_the_cached_sign_in,
    logins_match_in_any_case,
);

fn set_body(associate_id: i32, status: &str) -> String {
    format!(
        r#"{{"AssociateId":{associate_id},"UserPresenceStatus":{{"Status":"{status}","Message":"m"}}}}"#
    )
}

async fn any_user_reads_anyones_status() {
    let app = spawn_app().await;
    for id in [ADMIN_ID, USER_ID, SAMPLE_ID] {
        let response = app
            .send(
                Request::post(GET)
                    .basic(USER)
                    .json(&format!(r#"{{"AssociateId":{id}}}"#)),
            )
            .await;
        assert_eq!(response.status, 200);
        assert_ne!(response.text(), "null");
    }
}

async fn users_set_their_own_status_to_present_or_not_present_only() {
    let app = spawn_app().await;
    for status in [
        "StatusNotAvailable",
        "StatusNormal",
        "statusnotavailable",
        "1",
    ] {
        let response = app
            .send(
                Request::post(SET)
                    .basic(USER)
                    .json(&set_body(USER_ID, status)),
            )
            .await;
        assert_eq!(response.status, 200, "{status}");
    }
    for status in [
        "StatusNone",
        "StatusDeleted",
        "StatusReadOnly",
        "StatusSpm",
        "StatusSystem",
    ] {
        let response = app
            .send(
                Request::post(SET)
                    .basic(USER)
                    .json(&set_body(USER_ID, status)),
            )
            .await;
        assert_eq!(response.status, 403, "{status}");
        assert_eq!(
            app.presence(USER_ID).await.unwrap().status,
            UserStatus::StatusNormal
        );
    }
}

async fn users_cannot_set_anyone_elses_status() {
    let app = spawn_app().await;
    for id in [ADMIN_ID, SAMPLE_ID, 424242] {
        let response = app
            .send(
                Request::post(SET)
                    .basic(USER)
                    .json(&set_body(id, "StatusNotAvailable")),
            )
            .await;
        assert_eq!(response.status, 403, "{id}");
    }
    assert_eq!(
        app.presence(ADMIN_ID).await.unwrap().status,
        UserStatus::StatusNormal
    );
}

async fn administrators_set_any_status_for_anyone() {
    let app = spawn_app().await;
    for status in UserStatus::ALL {
        let response = app
            .send(
                Request::post(SET)
                    .basic(ADMIN)
                    .json(&set_body(SAMPLE_ID, status.name())),
            )
            .await;
        assert_eq!(response.status, 200);
        assert_eq!(app.presence(SAMPLE_ID).await.unwrap().status, status);
    }
    // Nothing to set for an associate who is no Service user: null, and nothing is created.
    let response = app
        .send(
            Request::post(SET)
                .basic(ADMIN)
                .json(&set_body(5000, "StatusNormal")),
        )
        .await;
    assert_eq!((response.status, response.text()), (200, "null"));
    assert_eq!(app.presence(5000).await, None);
}

async fn a_deleted_user_cannot_authenticate_even_after_a_cached_sign_in() {
    let app = spawn_app().await;
    let own = Request::post(GET).basic(USER).json(r#"{"AssociateId":2}"#);
    assert_eq!(app.send(own.clone()).await.status, 200);
    let delete = app
        .send(
            Request::post(SET)
                .basic(ADMIN)
                .json(&set_body(USER_ID, "StatusDeleted")),
        )
        .await;
    assert_eq!(delete.status, 200);
    assert_eq!(app.send(own.clone()).await.status, 401);
    app.send(
        Request::post(SET)
            .basic(ADMIN)
            .json(&set_body(USER_ID, "StatusNormal")),
    )
    .await;
    assert_eq!(app.send(own).await.status, 200);
}

async fn a_password_change_or_removal_ends_the_cached_sign_in() {
    let app = spawn_app().await;
    let old = Request::post(GET).basic(USER).json(r#"{"AssociateId":2}"#);
    assert_eq!(app.send(old.clone()).await.status, 200);
    let new_hash = tokio::task::spawn_blocking(|| presence::password::hash("new-secret"))
        .await
        .unwrap()
        .unwrap();
    app.store.set_password(USER.0, new_hash).await.unwrap();
    assert_eq!(app.send(old).await.status, 401);
    let new = Request::post(GET)
        .basic((USER.0, "new-secret"))
        .json(r#"{"AssociateId":2}"#);
    assert_eq!(app.send(new.clone()).await.status, 200);
    app.store.remove_user(USER.0).await.unwrap();
    assert_eq!(app.send(new).await.status, 401);
}

async fn logins_match_in_any_case() {
    let app = spawn_app().await;
    let response = app
        .send(
            Request::post(GET)
                .basic(("TJE0", ADMIN.1))
                .json(r#"{"AssociateId":963}"#),
        )
        .await;
    assert_eq!(response.status, 200);
    let response = app
        .send(
            Request::post(GET)
                .basic(("tje0", "TJE0"))
                .json(r#"{"AssociateId":963}"#),
        )
        .await;
    assert_eq!(response.status, 401, "passwords are case-sensitive");
}
