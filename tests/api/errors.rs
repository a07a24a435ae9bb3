//! Every row of the contract's error table, in its shape, and that a failed request changes
//! nothing.

use presence::config::HttpSettings;

use crate::helpers::*;

both_backends!(
    bad_bodies_are_400_naming_the_member,
    error_bytes_in_json_and_xml,
    missing_or_bad_credentials_are_401_with_a_challenge,
    authentication_comes_before_the_body,
    unsupported_content_types_and_charsets_are_415,
    bodies_over_the_limit_are_413,
    unknown_addresses_and_methods_answer_in_the_error_shape,
    xml_entity_expansion_is_refused_and_the_server_stays_healthy,
    arbitrary_bodies_get_400_or_415_and_never_break_the_server,
);

const SAMPLE_SET: &str =
    r#"{"AssociateId":963,"UserPresenceStatus":{"Status":"StatusNormal","Message":null}}"#;

async fn bad_bodies_are_400_naming_the_member() {
    let app = spawn_app().await;
    let long_message = format!(
        r#"{{"AssociateId":963,"UserPresenceStatus":{{"Status":"StatusNormal","Message":"{}"}}}}"#,
        "x".repeat(256)
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (GET, String::new(), "The request body is empty"),
        (GET, "{\"AssociateId\":".into(), "not valid JSON"),
        (GET, "[1,2]".into(), "JSON object"),
        (GET, "{}".into(), "AssociateId is required"),
        (
            GET,
            r#"{"AssociateId":"x963"}"#.into(),
            "AssociateId must be a 32-bit integer",
        ),
        (
            GET,
            r#"{"AssociateId":4294967296}"#.into(),
            "AssociateId must be a 32-bit integer",
        ),
        (
            SET,
            r#"{"AssociateId":963}"#.into(),
            "UserPresenceStatus is required",
        ),
        (
            SET,
            r#"{"AssociateId":963,"UserPresenceStatus":null}"#.into(),
            "UserPresenceStatus is required",
        ),
        (
            SET,
            r#"{"AssociateId":963,"UserPresenceStatus":{"Status":"StatusAway"}}"#.into(),
            "UserPresenceStatus.Status must be one of",
        ),
        (
            SET,
            long_message,
            "UserPresenceStatus.Message has 256 characters",
        ),
    ];
    for (path, body, detail) in cases {
        let response = app.send(Request::post(path).basic(ADMIN).json(&body)).await;
        assert_eq!(response.status, 400, "{body}");
        assert_eq!(
            response.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        let error = response.json();
        assert_eq!(error["Message"], "The request is invalid.");
        let got = error["MessageDetail"].as_str().unwrap();
        assert!(got.contains(detail), "{got:?} should contain {detail:?}");
    }
    assert_eq!(
        app.presence(SAMPLE_ID).await.unwrap().message.as_deref(),
        Some("ut")
    );
}

async fn error_bytes_in_json_and_xml() {
    let app = spawn_app().await;
    let json = app
        .send(
            Request::post(GET)
                .basic(ADMIN)
                .json(r#"{"AssociateId":"abc"}"#),
        )
        .await;
    insta::assert_snapshot!(json.wire(), @r#"
    HTTP/1.1 400
    content-type: application/json; charset=utf-8
    content-length: 108

    {"Message":"The request is invalid.","MessageDetail":"AssociateId must be a 32-bit integer; \"abc\" is not"}
    "#);
    let xml = app
        .send(
            Request::post(GET)
                .basic(ADMIN)
                .header("Accept", "application/xml")
                .json(r#"{"AssociateId":"abc"}"#),
        )
        .await;
    insta::assert_snapshot!(xml.wire(), @r#"
    HTTP/1.1 400
    content-type: application/xml; charset=utf-8
    content-length: 138

    <Error><Message>The request is invalid.</Message><MessageDetail>AssociateId must be a 32-bit integer; "abc" is not</MessageDetail></Error>
    "#);
    let unauthorized = app
        .send(
            Request::post(GET)
                .header("Accept", "text/xml")
                .json(r#"{"AssociateId":963}"#),
        )
        .await;
    insta::assert_snapshot!(unauthorized.wire(), @r#"
    HTTP/1.1 401
    content-type: text/xml; charset=utf-8
    www-authenticate: Basic realm="SuperOffice", charset="UTF-8"
    www-authenticate: SOTicket realm="SuperOffice"
    www-authenticate: Bearer realm="SuperOffice"
    content-length: 236

    <Error><Error>true</Error><ErrorType>SoAccessDeniedException</ErrorType><ErrorMessage>Authentication is required: no valid credentials were given</ErrorMessage><ErrorSource>/api/v1/Agents/User/GetUserPresenceStatus</ErrorSource></Error>
    "#);
    let forbidden = app
        .send(Request::post(SET).basic(USER).json(SAMPLE_SET))
        .await;
    insta::assert_snapshot!(forbidden.wire(), @r#"
    HTTP/1.1 403
    content-type: application/json; charset=utf-8
    content-length: 188

    {"Error":true,"ErrorType":"SoAccessDeniedException","ErrorMessage":"Only an administrator may set another user's presence status","ErrorSource":"/api/v1/Agents/User/SetUserPresenceStatus"}
    "#);
}

async fn missing_or_bad_credentials_are_401_with_a_challenge() {
    let app = spawn_app().await;
    add_user(&app.store, 50, "gone", "gone-secret", false).await;
    app.send(
        Request::post(SET)
            .basic(ADMIN)
            .json(r#"{"AssociateId":50,"UserPresenceStatus":{"Status":"StatusDeleted"}}"#),
    )
    .await;
    let body = r#"{"AssociateId":963}"#;
    let cases = [
        ("none", Request::post(GET).json(body)),
        (
            "wrong password",
            Request::post(GET).basic((ADMIN.0, "wrong")).json(body),
        ),
        (
            "unknown login",
            Request::post(GET).basic(("nobody", "x")).json(body),
        ),
        (
            "no password",
            Request::post(GET).basic(("associate963", "")).json(body),
        ),
        (
            "deleted user",
            Request::post(GET).basic(("gone", "gone-secret")).json(body),
        ),
        (
            "not base64",
            Request::post(GET)
                .header("Authorization", "Basic !!!")
                .json(body),
        ),
        (
            "no colon",
            Request::post(GET)
                .header("Authorization", "Basic dGplMA==")
                .json(body),
        ),
        (
            "no credentials",
            Request::post(GET)
                .header("Authorization", "Basic")
                .json(body),
        ),
        (
            "unknown scheme",
            Request::post(GET)
                .header("Authorization", "Digest x")
                .json(body),
        ),
    ];
    for (case, request) in cases {
        let response = app.send(request).await;
        assert_eq!(response.status, 401, "{case}");
        assert_eq!(
            response.header_all("www-authenticate"),
            [
                r#"Basic realm="SuperOffice", charset="UTF-8""#,
                r#"SOTicket realm="SuperOffice""#,
                r#"Bearer realm="SuperOffice""#
            ],
            "{case}"
        );
        let error = response.json();
        assert_eq!(error["Error"], true, "{case}");
        assert_eq!(error["ErrorType"], "SoAccessDeniedException", "{case}");
    }
    // The scheme name matches in any case.
    let response = app
        .send(
            Request::post(GET)
                .header("Authorization", "bAsIc dGplMDpUamUw")
                .json(body),
        )
        .await;
    assert_eq!(response.status, 200);
}

async fn authentication_comes_before_the_body() {
    let app = spawn_app().await;
    let response = app
        .send(Request::post(GET).body("text/plain", "junk"))
        .await;
    assert_eq!(response.status, 401);
}

async fn unsupported_content_types_and_charsets_are_415() {
    let app = spawn_app().await;
    for content_type in [
        "text/plain",
        "application/octet-stream",
        "application/json; charset=utf-16",
        "text/xml; charset=iso-8859-1",
    ] {
        let response = app
            .send(
                Request::post(GET)
                    .basic(ADMIN)
                    .body(content_type, r#"{"AssociateId":963}"#),
            )
            .await;
        assert_eq!(response.status, 415, "{content_type}");
        assert_eq!(
            response.json()["ErrorType"],
            "UnsupportedMediaTypeException"
        );
    }
    let declared = app
        .send(Request::post(GET).basic(ADMIN).body(
            "text/xml",
            r#"<?xml version="1.0" encoding="utf-16"?><r><AssociateId>963</AssociateId></r>"#,
        ))
        .await;
    assert_eq!(declared.status, 415);
}

async fn bodies_over_the_limit_are_413() {
    let app = spawn_app_with(TestSettings {
        http: HttpSettings {
            body_limit: 1024,
            ..HttpSettings::default()
        },
        ..TestSettings::default()
    })
    .await;
    let padding = " ".repeat(2000);
    let large = format!(r#"{{"AssociateId":963}}{padding}"#);
    let response = app.send(Request::post(GET).basic(ADMIN).json(&large)).await;
    assert_eq!(response.status, 413);
    assert_eq!(
        response.json()["ErrorType"],
        "RequestEntityTooLargeException"
    );

    // Without a Content-Length the limit holds while reading.
    let response = send_raw(app.address, chunked_get(&[&large]).as_bytes()).await;
    assert_eq!(response.status, 413);

    // And when each chunk is under the limit but together they are over it.
    let (head, tail) = large.split_at(large.len() / 2);
    let response = send_raw(app.address, chunked_get(&[head, tail]).as_bytes()).await;
    assert_eq!(response.status, 413);

    let small = app
        .send(
            Request::post(GET)
                .basic(ADMIN)
                .json(r#"{"AssociateId":963}"#),
        )
        .await;
    assert_eq!(small.status, 200);
}

async fn unknown_addresses_and_methods_answer_in_the_error_shape() {
    let app = spawn_app().await;
    let missing = app
        .send(
            Request::post("/api/v1/Agents/User/GetNothing")
                .basic(ADMIN)
                .json("{}"),
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["Error"], true);
    let method = app.send(Request::new("DELETE", GET).basic(ADMIN)).await;
    assert_eq!(method.status, 405);
    assert_eq!(method.header("allow"), Some("GET, POST"));
    assert_eq!(method.json()["ErrorSource"], GET);
}

async fn xml_entity_expansion_is_refused_and_the_server_stays_healthy() {
    let app = spawn_app().await;
    let mut entities = String::from(r#"<!ENTITY lol0 "lol">"#);
    for i in 1..10 {
        let previous = format!("&lol{};", i - 1).repeat(10);
        entities.push_str(&format!(r#"<!ENTITY lol{i} "{previous}">"#));
    }
    let bomb = format!(
        r#"<?xml version="1.0"?><!DOCTYPE r [{entities}]><r><AssociateId>&lol9;</AssociateId></r>"#
    );
    let started = std::time::Instant::now();
    let response = app
        .send(
            Request::post(GET)
                .basic(ADMIN)
                .body("application/xml", bomb),
        )
        .await;
    assert_eq!(response.status, 400);
    assert!(
        response.json()["MessageDetail"]
            .as_str()
            .unwrap()
            .contains("DTD")
    );
    let external = r#"<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r><AssociateId>&x;</AssociateId></r>"#;
    let response = app
        .send(Request::post(GET).basic(ADMIN).body("text/xml", external))
        .await;
    assert_eq!(response.status, 400);
    let healthy = app
        .send(
            Request::post(GET)
                .basic(ADMIN)
                .json(r#"{"AssociateId":963}"#),
        )
        .await;
    assert_eq!(healthy.status, 200);
    // Not a timing assertion on the server's speed: a bound on what would be a hang.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

async fn arbitrary_bodies_get_400_or_415_and_never_break_the_server() {
    let app = spawn_app().await;
    // A fixed, varied set of hostile bodies (the property tests cover arbitrary bytes in the
    // decoder itself; this checks the path through the server).
    let bodies: [&[u8]; 8] = [
        b"\xff\xfe\x00{",
        b"{\"AssociateId\":1e999}",
        b"<",
        b"<r><AssociateId>1</AssociateId>",
        b"AssociateId=%ZZ",
        b"{\"AssociateId\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]}",
        b"\x00\x00\x00",
        b"null",
    ];
    for body in bodies {
        for content_type in [
            "application/json",
            "text/xml",
            "application/x-www-form-urlencoded",
        ] {
            let response = app
                .send(
                    Request::post(SET)
                        .basic(ADMIN)
                        .body(content_type, body.to_vec()),
                )
                .await;
            assert!(
                [400, 415].contains(&response.status),
                "{content_type} {body:?}: {}",
                response.status
            );
        }
    }
    assert_eq!(
        app.presence(SAMPLE_ID).await.unwrap().message.as_deref(),
        Some("ut")
    );
}
