use proptest::prelude::*;

use super::*;

const JSON: Option<&[u8]> = Some(b"application/json");
const XML: Option<&[u8]> = Some(b"application/xml");
const FORM: Option<&[u8]> = Some(b"application/x-www-form-urlencoded");

fn get(
    content_type: Option<&[u8]>,
    body: &str,
) -> Result<GetUserPresenceStatusRequest, DecodeError> {
    decode(content_type, body.as_bytes())
}

fn set(
    content_type: Option<&[u8]>,
    body: &str,
) -> Result<SetUserPresenceStatusRequest, DecodeError> {
    decode(content_type, body.as_bytes())
}

fn set_request(id: i32, status: UserStatus, message: Option<&str>) -> SetUserPresenceStatusRequest {
    SetUserPresenceStatusRequest {
        associate_id: AssociateId::new(id),
        user_presence_status: UserPresenceStatus {
            status,
            message: Message::new(message.map(str::to_owned)).unwrap(),
        },
    }
}

fn invalid_detail<T: std::fmt::Debug>(result: Result<T, DecodeError>) -> String {
    match result {
        Err(DecodeError::Invalid(detail)) => detail,
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[test]
fn reads_the_forms_official_clients_send() {
    let id = GetUserPresenceStatusRequest {
        associate_id: AssociateId::new(963),
    };
    for body in [
        r#"{"AssociateId": 963}"#,
        r#"{"associateId":963}"#,
        r#"{"ASSOCIATEID":"963"}"#,
        r#"{"AssociateId":" +963 ","Unknown":[1,{"x":null}]}"#,
        "\u{feff}{\"AssociateId\":963}",
    ] {
        assert_eq!(get(JSON, body), Ok(id.clone()), "{body}");
    }
    assert_eq!(get(None, r#"{"AssociateId":963}"#), Ok(id.clone()));
    assert_eq!(
        set(
            JSON,
            r#"{"associateId":963,"userPresenceStatus":{"status":"StatusNotAvailable","message":"x"}}"#
        ),
        Ok(set_request(963, UserStatus::StatusNotAvailable, Some("x")))
    );
}

#[test]
fn reads_xml_in_any_namespace() {
    let body = r#"<?xml version="1.0" encoding="utf-8"?>
        <SetUserPresenceStatusRequest xmlns="http://schemas.datacontract.org/2004/07/SuperOffice" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
          <!-- a comment -->
          <associateid>963</associateid>
          <Ignored><Deep>1</Deep></Ignored>
          <UserPresenceStatus>
            <Status>statusnotavailable</Status>
            <Message>Back &lt;soon&gt; &amp; &#233;<![CDATA[ <raw> ]]></Message>
          </UserPresenceStatus>
        </SetUserPresenceStatusRequest>"#;
    assert_eq!(
        set(XML, body),
        Ok(set_request(
            963,
            UserStatus::StatusNotAvailable,
            Some("Back <soon> & é <raw> ")
        ))
    );
    let nil_message = r#"<r xmlns:x="http://www.w3.org/2001/XMLSchema-instance"><AssociateId>1</AssociateId><UserPresenceStatus><Status>2</Status><Message x:nil="true"/></UserPresenceStatus></r>"#;
    assert_eq!(
        set(Some(b"text/xml"), nil_message),
        Ok(set_request(1, UserStatus::StatusNotAvailable, None))
    );
}

#[test]
fn reads_forms_with_dots_or_brackets() {
    assert_eq!(
        set(
            FORM,
            "AssociateId=963&UserPresenceStatus.Status=StatusNotAvailable&UserPresenceStatus.Message=Back+at+14%3A00"
        ),
        Ok(set_request(
            963,
            UserStatus::StatusNotAvailable,
            Some("Back at 14:00")
        ))
    );
    assert_eq!(
        set(FORM, "associateid=5&userpresencestatus%5Bstatus%5D=1"),
        Ok(set_request(5, UserStatus::StatusNormal, None))
    );
}

#[test]
fn errors_name_the_member() {
    let cases = [
        (get(JSON, ""), "empty"),
        (get(JSON, "  "), "empty"),
        (get(JSON, "{"), "not valid JSON"),
        (get(JSON, "null"), "JSON object"),
        (get(JSON, "[963]"), "JSON object"),
        (get(JSON, "{}"), "AssociateId is required"),
        (
            get(JSON, r#"{"AssociateId":null}"#),
            "AssociateId is required",
        ),
        (
            get(JSON, r#"{"AssociateId":2147483648}"#),
            "AssociateId must be a 32-bit integer",
        ),
        (get(JSON, r#"{"AssociateId":9.5}"#), "AssociateId"),
        (get(JSON, r#"{"AssociateId":"abc"}"#), "AssociateId"),
        (get(JSON, r#"{"AssociateId":true}"#), "AssociateId"),
        (get(JSON, r#"{"AssociateId":[1]}"#), "AssociateId"),
        (get(JSON, r#"{"AssociateId":1} trailing"#), "not valid JSON"),
        (
            get(XML, "<r><AssociateId>x</AssociateId></r>"),
            "AssociateId",
        ),
        (get(XML, "<r><AssociateId>1</r>"), "not valid XML"),
        (
            get(XML, "<r i:nil=\"true\" xmlns:i=\"x\"/>"),
            "The request body is null",
        ),
        (get(XML, "<r/>"), "AssociateId is required"),
        (get(XML, "<a/><b/>"), "more than one root"),
        (get(FORM, "associate=1"), "AssociateId is required"),
    ];
    for (result, wanted) in cases {
        let detail = invalid_detail(result);
        assert!(
            detail.contains(wanted),
            "{detail:?} should mention {wanted:?}"
        );
    }
    let set_cases = [
        (
            set(JSON, r#"{"AssociateId":1}"#),
            "UserPresenceStatus is required",
        ),
        (
            set(JSON, r#"{"AssociateId":1,"UserPresenceStatus":null}"#),
            "UserPresenceStatus is required",
        ),
        (
            set(JSON, r#"{"AssociateId":1,"UserPresenceStatus":"x"}"#),
            "must be an object",
        ),
        (
            set(JSON, r#"{"AssociateId":1,"UserPresenceStatus":{}}"#),
            "UserPresenceStatus.Status is required",
        ),
        (
            set(
                JSON,
                r#"{"AssociateId":1,"UserPresenceStatus":{"Status":"Away"}}"#,
            ),
            "UserPresenceStatus.Status must be one of",
        ),
        (
            set(
                JSON,
                r#"{"AssociateId":1,"UserPresenceStatus":{"Status":6}}"#,
            ),
            "UserPresenceStatus.Status",
        ),
        (
            set(
                JSON,
                r#"{"AssociateId":1,"UserPresenceStatus":{"Status":1,"Message":5}}"#,
            ),
            "UserPresenceStatus.Message must be a string",
        ),
        (
            set(
                JSON,
                r#"{"AssociateId":1,"UserPresenceStatus":{"Status":1,"Message":"\u0001"}}"#,
            ),
            "control character",
        ),
    ];
    for (result, wanted) in set_cases {
        let detail = invalid_detail(result);
        assert!(
            detail.contains(wanted),
            "{detail:?} should mention {wanted:?}"
        );
    }
    let long = format!(
        r#"{{"AssociateId":1,"UserPresenceStatus":{{"Status":1,"Message":"{}"}}}}"#,
        "x".repeat(256)
    );
    assert!(
        invalid_detail(set(JSON, &long)).contains("UserPresenceStatus.Message has 256 characters")
    );
}

#[test]
fn long_values_are_not_echoed_in_full() {
    let body = format!(r#"{{"AssociateId":"{}"}}"#, "9".repeat(10_000));
    assert!(invalid_detail(get(JSON, &body)).len() < 200);
}

#[test]
fn dtds_and_entities_are_refused() {
    let billion_laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>
<r><AssociateId>&lol2;</AssociateId></r>"#;
    assert!(invalid_detail(get(XML, billion_laughs)).contains("DTD"));
    let external = r#"<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r><AssociateId>&x;</AssociateId></r>"#;
    assert!(invalid_detail(get(XML, external)).contains("DTD"));
    assert!(
        invalid_detail(get(XML, "<r><AssociateId>&undeclared;</AssociateId></r>"))
            .contains("not declared")
    );
}

#[test]
fn other_encodings_are_unsupported() {
    assert!(matches!(
        get(XML, r#"<?xml version="1.0" encoding="utf-16"?><r/>"#),
        Err(DecodeError::Unsupported(_))
    ));
    assert!(matches!(
        get(Some(b"application/json; charset=latin1"), "{}"),
        Err(DecodeError::Unsupported(_))
    ));
    assert!(matches!(
        get(Some(b"text/plain"), "{}"),
        Err(DecodeError::Unsupported(_))
    ));
}

/// A member name in a random casing.
fn casing(name: &'static str) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<bool>(), name.len()).prop_map(move |upper| {
        name.chars()
            .zip(upper)
            .map(|(c, up)| {
                if up {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    })
}

fn status() -> impl Strategy<Value = UserStatus> {
    proptest::sample::select(UserStatus::ALL.to_vec())
}

/// Messages that every format can carry: XML characters, at most 255 of them.
fn message() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[^\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\u{fffe}\u{ffff}\r]{0,255}")
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn form_escape(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

proptest! {
    #[test]
    fn any_casing_decodes_the_same(
        id in any::<i32>(),
        status in status(),
        message in message(),
        names in (casing("AssociateId"), casing("UserPresenceStatus"), casing("Status"), casing("Message")),
    ) {
        let (associate, presence, status_name, message_name) = names;
        let expected = set_request(id, status, message.as_deref());
        let json = serde_json::json!({
            associate.clone(): id,
            presence.clone(): { status_name.clone(): status.name(), message_name.clone(): message },
        });
        prop_assert_eq!(set(JSON, &json.to_string()), Ok(expected.clone()));
        let xml_message = match &message {
            Some(text) => format!("<{message_name}>{}</{message_name}>", xml_escape(text)),
            None => format!(r#"<{message_name} i:nil="true"/>"#),
        };
        let xml = format!(
            r#"<R xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><{associate}>{id}</{associate}><{presence}><{status_name}>{}</{status_name}>{xml_message}</{presence}></R>"#,
            status.name()
        );
        prop_assert_eq!(set(XML, &xml), Ok(expected.clone()));
    }

    #[test]
    fn json_xml_and_form_carrying_the_same_values_decode_the_same(
        id in any::<i32>(),
        status in status(),
        message in message(),
        status_as_number in any::<bool>(),
    ) {
        let expected = set_request(id, status, message.as_deref());
        let status_text = if status_as_number { status.number().to_string() } else { status.name().to_owned() };
        let json = serde_json::json!({
            "AssociateId": id.to_string(),
            "UserPresenceStatus": { "Status": status_text, "Message": message },
        });
        let xml = format!(
            r#"<r xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><AssociateId>{id}</AssociateId><UserPresenceStatus><Status>{status_text}</Status>{}</UserPresenceStatus></r>"#,
            match &message {
                Some(text) => format!("<Message>{}</Message>", xml_escape(text)),
                None => r#"<Message i:nil="true"/>"#.to_owned(),
            }
        );
        let mut form = format!("AssociateId={id}&UserPresenceStatus.Status={}", form_escape(&status_text));
        if let Some(text) = &message {
            form.push_str(&format!("&UserPresenceStatus.Message={}", form_escape(text)));
        }
        let from_json = set(JSON, &json.to_string());
        prop_assert_eq!(&from_json, &Ok(expected));
        prop_assert_eq!(&set(XML, &xml), &from_json);
        prop_assert_eq!(&set(FORM, &form), &from_json);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        content_type in proptest::sample::select(vec![
            None,
            Some("application/json"),
            Some("text/xml"),
            Some("application/x-www-form-urlencoded"),
            Some("application/octet-stream"),
            Some("application/json; charset=utf-16"),
        ]),
    ) {
        let content_type = content_type.map(str::as_bytes);
        // Any outcome but a panic is fine; an error is always a 400 or a 415.
        let _ = decode::<GetUserPresenceStatusRequest>(content_type, &body);
        let _ = decode::<SetUserPresenceStatusRequest>(content_type, &body);
    }

    #[test]
    fn arbitrary_text_in_each_format_never_panics(text in "\\PC{0,200}", format in 0..3usize) {
        let content_type = [JSON, XML, FORM][format];
        let _ = decode::<SetUserPresenceStatusRequest>(content_type, text.as_bytes());
    }
}
