//! The reference page's sample exchange and the forms SuperOffice's own clients send.

use presence::config::HttpSettings;

use crate::helpers::*;

both_backends!(
    the_reference_page_sample_gets_the_sample_response,
    the_official_typescript_client_forms_work,
    set_then_get_returns_the_new_value,
    an_associate_with_nothing_to_return_is_null,
    paths_match_in_any_case_and_with_a_trailing_slash,
    a_base_path_prefixes_every_address,
    get_describes_the_call_and_invokes_nothing,
    requests_are_answered_on_one_keep_alive_connection,
);

/// The sample request, byte for byte as the reference page shows it.
const SAMPLE_REQUEST: &str = "POST /api/v1/Agents/User/GetUserPresenceStatus HTTP/1.1\r\n\
    Host: localhost\r\n\
    Authorization: Basic dGplMDpUamUw\r\n\
    Accept: application/json; charset=utf-8\r\n\
    Accept-Language: sv\r\n\
    Content-Type: application/json; charset=utf-8\r\n\
    Content-Length: 24\r\n\
    Connection: close\r\n\
    \r\n\
    {\n  \"AssociateId\": 963\n}";

async fn the_reference_page_sample_gets_the_sample_response() {
    let app = spawn_app().await;
    let response = send_raw(app.address, SAMPLE_REQUEST.as_bytes()).await;
    insta::assert_snapshot!(response.wire(), @r#"
    HTTP/1.1 200
    content-type: application/json; charset=utf-8
    content-language: sv
    content-length: 41

    {"Status":"StatusDeleted","Message":"ut"}
    "#);
}

async fn the_official_typescript_client_forms_work() {
    let app = spawn_app().await;
    let response = app
        .send(
            Request::post(GET)
                .basic(ADMIN)
                .json(r#"{"associateId":963}"#),
        )
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.text(),
        r#"{"Status":"StatusDeleted","Message":"ut"}"#
    );

    let response = app
        .send(Request::post(SET).basic(ADMIN).json(
            r#"{"associateId":963,"userPresenceStatus":{"status":"StatusNotAvailable","message":"x"}}"#,
        ))
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.text(),
        r#"{"Status":"StatusNotAvailable","Message":"x"}"#
    );
}

async fn set_then_get_returns_the_new_value() {
    let app = spawn_app().await;
    let set = app
        .send(Request::post(SET).basic(USER).json(&format!(
            r#"{{"AssociateId":{USER_ID},"UserPresenceStatus":{{"Status":"StatusNotAvailable","Message":"Back at 14:00"}}}}"#
        )))
        .await;
    assert_eq!(set.status, 200);
    let get = app
        .send(
            Request::post(GET)
                .basic(ADMIN)
                .json(&format!(r#"{{"AssociateId":{USER_ID}}}"#)),
        )
        .await;
    assert_eq!(
        get.text(),
        r#"{"Status":"StatusNotAvailable","Message":"Back at 14:00"}"#
    );
    assert_eq!(get.text(), set.text());
}

async fn an_associate_with_nothing_to_return_is_null() {
    let app = spawn_app().await;
    let json = app
        .send(
            Request::post(GET)
                .basic(ADMIN)
                .json(r#"{"AssociateId":424242}"#),
        )
        .await;
    insta::assert_snapshot!(json.wire(), @r#"
    HTTP/1.1 200
    content-type: application/json; charset=utf-8
    content-length: 4

    null
    "#);
    let xml = app
        .send(
            Request::post(GET)
                .basic(ADMIN)
                .header("Accept", "application/xml")
                .json(r#"{"AssociateId":-1}"#),
        )
        .await;
    insta::assert_snapshot!(xml.wire(), @r#"
    HTTP/1.1 200
    content-type: application/xml; charset=utf-8
    content-length: 86

    <UserPresenceStatus i:nil="true" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"/>
    "#);
}

async fn paths_match_in_any_case_and_with_a_trailing_slash() {
    let app = spawn_app().await;
    for path in [
        "/API/V1/AGENTS/USER/GETUSERPRESENCESTATUS",
        "/api/v1/agents/user/getuserpresencestatus/",
        "/Api/V1/Agents/User/GetUserPresenceStatus?$select=Status",
    ] {
        let response = app
            .send(
                Request::post(path)
                    .basic(ADMIN)
                    .json(r#"{"AssociateId":963}"#),
            )
            .await;
        assert_eq!(response.status, 200, "{path}");
    }
}

async fn a_base_path_prefixes_every_address() {
    let app = spawn_app_with(TestSettings {
        http: HttpSettings {
            base_path: "/cust12345".into(),
            ..HttpSettings::default()
        },
        ..TestSettings::default()
    })
    .await;
    let with_base = app
        .send(
            Request::post(&format!("/Cust12345{GET}"))
                .basic(ADMIN)
                .json(r#"{"AssociateId":963}"#),
        )
        .await;
    assert_eq!(with_base.status, 200);
    let without = app
        .send(
            Request::post(GET)
                .basic(ADMIN)
                .json(r#"{"AssociateId":963}"#),
        )
        .await;
    assert_eq!(without.status, 404);
}

async fn get_describes_the_call_and_invokes_nothing() {
    let app = spawn_app().await;
    for (path, wanted) in [
        (GET, "GetUserPresenceStatus"),
        (SET, "SetUserPresenceStatus"),
    ] {
        let response = app.send(Request::new("GET", path)).await;
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert!(
            response
                .text()
                .starts_with(&format!("POST /api/v1/Agents/User/{wanted}"))
        );
    }
    // The sample associate is untouched.
    assert_eq!(
        app.presence(SAMPLE_ID).await.unwrap().message.as_deref(),
        Some("ut")
    );
}

async fn requests_are_answered_on_one_keep_alive_connection() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let app = spawn_app().await;
    let stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let mut stream = BufReader::new(stream);
    let body = r#"{"AssociateId":963}"#;
    for _ in 0..3 {
        let request = format!(
            "POST {GET} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dGplMDpUamUw\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            stream.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
        }
        let mut response = vec![0; length];
        stream.read_exact(&mut response).await.unwrap();
        assert_eq!(response, br#"{"Status":"StatusDeleted","Message":"ut"}"#);
    }
}
