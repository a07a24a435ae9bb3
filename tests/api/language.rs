//! Messages in the caller's language: multi-language values, resource references, and the
//! culture and time-zone headers.

use crate::helpers::*;

both_backends!(
    one_stored_message_reads_in_each_language,
    set_stores_as_given_and_answers_translated,
    translation_follows_select_and_xml,
    resource_references_are_replaced_with_fallbacks,
    time_zones_are_accepted_or_refused_and_cultures_never_fail,
);

const MULTI: &str = r#"US:"Out of office";NO:"Ikke til stede";SW:"Inte på kontoret""#;

async fn with_message(message: &str) -> TestApp {
    let app = spawn_app().await;
    let body = serde_json::json!({
        "AssociateId": USER_ID,
        "UserPresenceStatus": { "Status": "StatusNotAvailable", "Message": message },
    });
    let response = app
        .send(Request::post(SET).basic(ADMIN).json(&body.to_string()))
        .await;
    assert_eq!(response.status, 200);
    app
}

fn get_user() -> Request {
    Request::post(GET)
        .basic(ADMIN)
        .json(&format!(r#"{{"AssociateId":{USER_ID}}}"#))
}

async fn message_in(app: &TestApp, request: Request) -> (Option<String>, serde_json::Value) {
    let response = app.send(request).await;
    assert_eq!(response.status, 200, "{}", response.text());
    (
        response.header("content-language").map(str::to_owned),
        response.json()["Message"].clone(),
    )
}

async fn one_stored_message_reads_in_each_language() {
    let app = with_message(MULTI).await;
    let cases = [
        (Some("nb"), None, Some("nb"), "Ikke til stede"),
        (Some("no"), None, Some("nb"), "Ikke til stede"),
        (None, Some("sv-SE,en;q=0.5"), Some("sv"), "Inte på kontoret"),
        (None, Some("nb-NO"), Some("nb"), "Ikke til stede"),
        (None, Some("en-US"), Some("en"), "Out of office"),
        // German is supported but missing from the value: English.
        (Some("de"), None, Some("de"), "Out of office"),
        // SO-Language wins over Accept-Language.
        (Some("sv"), Some("nb"), Some("sv"), "Inte på kontoret"),
        // No language: untouched, and no Content-Language.
        (None, None, None, MULTI),
        // Translation switched off.
        (Some("*"), Some("nb"), None, MULTI),
        (Some("x"), None, None, MULTI),
        // Nothing the server supports.
        (None, Some("tlh"), None, MULTI),
    ];
    for (so_language, accept_language, content_language, message) in cases {
        let mut request = get_user();
        if let Some(value) = so_language {
            request = request.header("SO-Language", value);
        }
        if let Some(value) = accept_language {
            request = request.header("Accept-Language", value);
        }
        let (got_language, got_message) = message_in(&app, request).await;
        assert_eq!(
            got_language.as_deref(),
            content_language,
            "{so_language:?} {accept_language:?}"
        );
        assert_eq!(got_message, message, "{so_language:?} {accept_language:?}");
    }
}

async fn set_stores_as_given_and_answers_translated() {
    let app = spawn_app().await;
    let body = serde_json::json!({
        "AssociateId": USER_ID,
        "UserPresenceStatus": { "Status": "StatusNotAvailable", "Message": MULTI },
    });
    let response = app
        .send(
            Request::post(SET)
                .basic(ADMIN)
                .header("SO-Language", "sv")
                .json(&body.to_string()),
        )
        .await;
    assert_eq!(response.json()["Message"], "Inte på kontoret");
    assert_eq!(
        app.presence(USER_ID).await.unwrap().message.as_deref(),
        Some(MULTI)
    );
}

async fn translation_follows_select_and_xml() {
    let app = with_message(MULTI).await;
    let status_only = app
        .send(
            Request::post(&format!("{GET}?$select=Status"))
                .basic(ADMIN)
                .header("SO-Language", "nb")
                .json(r#"{"AssociateId":2}"#),
        )
        .await;
    assert_eq!(
        status_only.text(),
        r#"{"Status":"StatusNotAvailable","Message":null}"#
    );
    let xml = app
        .send(
            Request::post(&format!("{GET}?$select=message"))
                .basic(ADMIN)
                .header("Accept", "text/xml")
                .header("Accept-Language", "nb")
                .json(r#"{"AssociateId":2}"#),
        )
        .await;
    assert_eq!(xml.header("content-language"), Some("nb"));
    assert_eq!(
        xml.text(),
        r#"<UserPresenceStatus xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Status i:nil="true"/><Message>Ikke til stede</Message></UserPresenceStatus>"#
    );
}

async fn resource_references_are_replaced_with_fallbacks() {
    let app = with_message("[SR_PRESENCE_OUT_OF_OFFICE] – [SR_ONLY_ENGLISH] – [SR_MISSING]").await;
    app.store
        .import_resources(vec![presence::language::Resource {
            name: "SR_ONLY_ENGLISH".into(),
            language: presence::language::Language::En,
            text: "back <soon>".into(),
        }])
        .await
        .unwrap();
    let (_, nb) = message_in(&app, get_user().header("SO-Language", "nb")).await;
    assert_eq!(nb, "Ikke på kontoret – back <soon> – [SR_MISSING]");
    let (_, en) = message_in(&app, get_user().header("SO-Language", "en")).await;
    assert_eq!(en, "Out of office – back <soon> – [SR_MISSING]");
    let (_, untouched) = message_in(&app, get_user()).await;
    assert_eq!(
        untouched,
        "[SR_PRESENCE_OUT_OF_OFFICE] – [SR_ONLY_ENGLISH] – [SR_MISSING]"
    );
    let xml = app
        .send(
            get_user()
                .header("SO-Language", "en")
                .header("Accept", "application/xml"),
        )
        .await;
    assert!(
        xml.text()
            .contains("<Message>Out of office – back &lt;soon&gt; – [SR_MISSING]</Message>")
    );

    // References inside a multi-language value: the entry first, then its references.
    let app = with_message(
        r#"US:"[SR_PRESENCE_AT_LUNCH] until 13:00";SW:"[SR_PRESENCE_AT_LUNCH] till 13.00""#,
    )
    .await;
    let (_, sv) = message_in(&app, get_user().header("SO-Language", "sv")).await;
    assert!(sv.as_str().unwrap().ends_with(" till 13.00"), "{sv}");
    assert!(!sv.as_str().unwrap().contains("SR_"), "{sv}");
}

async fn time_zones_are_accepted_or_refused_and_cultures_never_fail() {
    let app = with_message(MULTI).await;
    for zone in ["UTC", "NO", "US-NY", "utc, includeTZOffset", "0"] {
        let response = app.send(get_user().header("SO-TimeZone", zone)).await;
        assert_eq!(response.status, 200, "{zone}");
    }
    for zone in ["Mars/Olympus", "US-NY, sometimes", "", "-1"] {
        let response = app.send(get_user().header("SO-TimeZone", zone)).await;
        assert_eq!(response.status, 400, "{zone:?}");
        let detail = response.json()["MessageDetail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(detail.starts_with("SO-TimeZone"), "{detail}");
    }
    for culture in ["nb-NO", "not a culture", "*"] {
        let response = app
            .send(
                get_user()
                    .header("SO-Language", "nb")
                    .header("SO-Culture", culture),
            )
            .await;
        assert_eq!(response.status, 200, "{culture}");
    }
    // The time zone is read after authentication, like every other header.
    let anonymous = app
        .send(
            Request::post(GET)
                .header("SO-TimeZone", "Mars/Olympus")
                .json(r#"{"AssociateId":2}"#),
        )
        .await;
    assert_eq!(anonymous.status, 401);
}
