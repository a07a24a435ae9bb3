//! Every content type in and out, `Accept` negotiation, and `$select`.

use crate::helpers::*;

both_backends!(
    every_consumed_content_type_is_read,
    set_reads_every_format,
    every_produced_type_is_written,
    xml_response_bytes,
    select_nulls_the_members_not_selected,
    headers_of_later_features_are_accepted_and_ignored,
    a_body_in_several_chunks_is_read_whole,
);

async fn every_consumed_content_type_is_read() {
    let app = spawn_app().await;
    let json = r#"{"AssociateId":963}"#;
    let xml = "<GetUserPresenceStatusRequest><AssociateId>963</AssociateId></GetUserPresenceStatusRequest>";
    let cases = [
        ("application/json", json),
        ("text/json", json),
        ("application/json-patch+json", json),
        ("application/merge-patch+json", json),
        ("application/xml", xml),
        ("text/xml", xml),
        ("application/x-www-form-urlencoded", "AssociateId=963"),
        ("Application/JSON; charset=UTF-8", json),
        ("text/xml; charset=utf-8", xml),
    ];
    for (content_type, body) in cases {
        let response = app
            .send(Request::post(GET).basic(ADMIN).body(content_type, body))
            .await;
        assert_eq!(response.status, 200, "{content_type}: {}", response.text());
        assert_eq!(
            response.text(),
            r#"{"Status":"StatusDeleted","Message":"ut"}"#,
            "{content_type}"
        );
    }
    let no_content_type = app
        .send(Request::post(GET).basic(ADMIN).raw_body(json))
        .await;
    assert_eq!(no_content_type.status, 200);
}

async fn set_reads_every_format() {
    let app = spawn_app().await;
    let cases = [
        (
            "text/json",
            r#"{"AssociateId":963,"UserPresenceStatus":{"Status":"StatusNotAvailable","Message":"json"}}"#.to_owned(),
            "json",
        ),
        (
            "text/xml",
            r#"<SetUserPresenceStatusRequest xmlns="http://schemas.datacontract.org/2004/07/SuperOffice"><AssociateId>963</AssociateId><UserPresenceStatus><Status>StatusNotAvailable</Status><Message>xml</Message></UserPresenceStatus></SetUserPresenceStatusRequest>"#.to_owned(),
            "xml",
        ),
        (
            "application/x-www-form-urlencoded",
            "AssociateId=963&UserPresenceStatus.Status=StatusNotAvailable&UserPresenceStatus.Message=form".to_owned(),
            "form",
        ),
        (
            "application/x-www-form-urlencoded",
            "AssociateId=963&UserPresenceStatus%5BStatus%5D=2&UserPresenceStatus%5BMessage%5D=brackets".to_owned(),
            "brackets",
        ),
    ];
    for (content_type, body, message) in cases {
        let response = app
            .send(Request::post(SET).basic(ADMIN).body(content_type, body))
            .await;
        assert_eq!(response.status, 200, "{content_type}: {}", response.text());
        assert_eq!(
            response.text(),
            format!(r#"{{"Status":"StatusNotAvailable","Message":"{message}"}}"#)
        );
        assert_eq!(
            app.presence(963).await.unwrap().message.as_deref(),
            Some(message)
        );
    }
}

async fn every_produced_type_is_written() {
    let app = spawn_app().await;
    let json = r#"{"Status":"StatusDeleted","Message":"ut"}"#;
    let xml = r#"<UserPresenceStatus xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Status>StatusDeleted</Status><Message>ut</Message></UserPresenceStatus>"#;
    let cases = [
        ("application/json", "application/json", json),
        ("text/json", "text/json", json),
        (
            "application/json-patch+json",
            "application/json-patch+json",
            json,
        ),
        (
            "application/merge-patch+json",
            "application/merge-patch+json",
            json,
        ),
        ("application/xml", "application/xml", xml),
        ("text/xml", "text/xml", xml),
        ("*/*", "application/json", json),
        ("text/html", "application/json", json),
        ("application/json;q=0.5, text/xml", "text/xml", xml),
        (
            "text/xml;q=0.2, application/xml;q=0.8",
            "application/xml",
            xml,
        ),
        ("text/*", "text/json", json),
    ];
    for (accept, content_type, body) in cases {
        let response = app
            .send(
                Request::post(GET)
                    .basic(ADMIN)
                    .header("Accept", accept)
                    .json(r#"{"AssociateId":963}"#),
            )
            .await;
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("content-type"),
            Some(format!("{content_type}; charset=utf-8").as_str()),
            "{accept}"
        );
        assert_eq!(response.text(), body, "{accept}");
    }
}

async fn xml_response_bytes() {
    let app = spawn_app().await;
    let response = app
        .send(
            Request::post(SET)
                .basic(ADMIN)
                .header("Accept", "text/xml")
                .json(r#"{"AssociateId":2,"UserPresenceStatus":{"Status":"StatusNotAvailable","Message":"<Back> & \"soon\""}}"#),
        )
        .await;
    insta::assert_snapshot!(response.wire(), @r#"
    HTTP/1.1 200
    content-type: text/xml; charset=utf-8
    content-length: 172

    <UserPresenceStatus xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Status>StatusNotAvailable</Status><Message>&lt;Back&gt; &amp; "soon"</Message></UserPresenceStatus>
    "#);
    let response = app
        .send(
            Request::post(GET)
                .basic(ADMIN)
                .header("Accept", "application/xml")
                .json(r#"{"AssociateId":1}"#),
        )
        .await;
    insta::assert_snapshot!(response.wire(), @r#"
    HTTP/1.1 200
    content-type: application/xml; charset=utf-8
    content-length: 145

    <UserPresenceStatus xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Status>StatusNormal</Status><Message i:nil="true"/></UserPresenceStatus>
    "#);
}

async fn select_nulls_the_members_not_selected() {
    let app = spawn_app().await;
    let cases = [
        ("", r#"{"Status":"StatusDeleted","Message":"ut"}"#),
        ("?$select=", r#"{"Status":"StatusDeleted","Message":"ut"}"#),
        (
            "?$select=Status",
            r#"{"Status":"StatusDeleted","Message":null}"#,
        ),
        ("?$select=message", r#"{"Status":null,"Message":"ut"}"#),
        (
            "?%24select=%20STATUS%20,%20message",
            r#"{"Status":"StatusDeleted","Message":"ut"}"#,
        ),
        (
            "?$select=status/x",
            r#"{"Status":"StatusDeleted","Message":null}"#,
        ),
        (
            "?$select=name,department,category/id",
            r#"{"Status":null,"Message":null}"#,
        ),
    ];
    for (query, body) in cases {
        let response = app
            .send(
                Request::post(&format!("{GET}{query}"))
                    .basic(ADMIN)
                    .json(r#"{"AssociateId":963}"#),
            )
            .await;
        assert_eq!(response.text(), body, "{query}");
    }
    let xml = app
        .send(
            Request::post(&format!("{GET}?$select=Message"))
                .basic(ADMIN)
                .header("Accept", "text/xml")
                .json(r#"{"AssociateId":963}"#),
        )
        .await;
    assert_eq!(
        xml.text(),
        r#"<UserPresenceStatus xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Status i:nil="true"/><Message>ut</Message></UserPresenceStatus>"#
    );
    // $select shapes Set's answer, never what is stored.
    let set = app
        .send(
            Request::post(&format!("{SET}?$select=Status"))
                .basic(ADMIN)
                .json(r#"{"AssociateId":963,"UserPresenceStatus":{"Status":"StatusNormal","Message":"kept"}}"#),
        )
        .await;
    assert_eq!(set.text(), r#"{"Status":"StatusNormal","Message":null}"#);
    assert_eq!(
        app.presence(963).await.unwrap().message.as_deref(),
        Some("kept")
    );
}

async fn headers_of_later_features_are_accepted_and_ignored() {
    let app = spawn_app().await;
    let response = app
        .send(
            Request::post(GET)
                .basic(ADMIN)
                .header("SO-Language", "nb")
                .header("SO-Culture", "nb-NO")
                .header("SO-TimeZone", "UTC")
                .header("SO-AppToken", "some-app")
                .header("X-XSRF-TOKEN", "anything")
                .json(r#"{"AssociateId":963}"#),
        )
        .await;
    assert_eq!(response.status, 200);
}

async fn a_body_in_several_chunks_is_read_whole() {
    let app = spawn_app().await;
    let whole = app
        .send(
            Request::post(GET)
                .basic(ADMIN)
                .json(r#"{"AssociateId":963}"#),
        )
        .await;
    assert_eq!(whole.status, 200);
    let request = chunked_get(&[r#"{"Assoc"#, r#"iateId""#, ":963}"]);
    let chunked = send_raw(app.address, request.as_bytes()).await;
    assert_eq!(chunked.status, 200);
    assert_eq!(chunked.body, whole.body);
}
