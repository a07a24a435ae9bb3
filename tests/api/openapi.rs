//! The OpenAPI document at `/presence/v1/openapi.json`: an OpenAPI 3.1 document naming every
//! address the router serves, whose schemas match what the server actually answers. (The
//! property-based run against a live server is `scripts/schemathesis.sh`.)

use std::time::Duration;

use presence::http::presence as api;
use presence::timestamp;
use serde_json::{Value, json};

use crate::helpers::*;

both_backends!(
    the_document_is_openapi_3_1_and_names_every_address,
    the_document_is_served_under_the_base_path,
    real_answers_match_the_documented_schemas,
);

const DOCUMENT: &str = "/presence/v1/openapi.json";

async fn document(app: &TestApp, path: &str) -> Value {
    // No credentials: the document is for anyone.
    let response = app.send(Request::new("GET", path)).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    response.json()
}

/// A path with its parameters' names left out and in lower case: the router's paths name
/// parameters in Rust, the document's on the wire.
fn shape(path: &str) -> String {
    let mut shape = String::new();
    let mut in_parameter = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_parameter = true;
                shape.push('{');
            }
            '}' => {
                in_parameter = false;
                shape.push('}');
            }
            _ if in_parameter => {}
            _ => shape.push(c.to_ascii_lowercase()),
        }
    }
    shape
}

async fn the_document_is_openapi_3_1_and_names_every_address() {
    let app = spawn_app().await;
    let document = document(&app, DOCUMENT).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = document["paths"].as_object().unwrap();
    let documented = |path: &str, method: &str| {
        paths
            .iter()
            .any(|(at, item)| shape(at) == shape(path) && item.get(method).is_some())
    };
    let served = [
        (api::USERS, "get"),
        (api::USER, "get"),
        (api::STATUS, "put"),
        (api::ABSENCES, "get"),
        (api::ABSENCES, "post"),
        (api::ABSENCE, "delete"),
        (api::CHANGES, "get"),
        (api::CHANGE_STREAM, "get"),
        (api::WEBHOOKS, "get"),
        (api::WEBHOOKS, "post"),
        (api::WEBHOOK, "delete"),
        (api::WEBHOOK_DELIVERIES, "get"),
        (DOCUMENT, "get"),
        (GET, "post"),
        (SET, "post"),
        (GET, "get"),
        (SET, "get"),
        (api::ME, "get"),
        ("/", "get"),
        ("/board/{file}", "get"),
        ("/login", "get"),
        ("/login", "post"),
        ("/logout", "post"),
        ("/health/live", "get"),
        ("/health/ready", "get"),
        ("/metrics", "get"),
    ];
    for (path, method) in served {
        assert!(
            documented(path, method),
            "{method} {path} is not documented"
        );
    }
    // And nothing more: every documented operation is one the server serves.
    let operations: usize = paths
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(operations, served.len());
    // OpenAPI requires a description of every response.
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            for (status, answer) in operation["responses"].as_object().unwrap() {
                let description = answer["description"].as_str().unwrap_or("");
                assert!(!description.is_empty(), "{method} {path} {status}");
            }
        }
    }
    // The presence API's operations all name their 401, with its challenge.
    let unauthorized = &paths["/presence/v1/users/{associateId}"]["get"]["responses"]["401"];
    assert!(unauthorized["headers"]["WWW-Authenticate"].is_object());
    let busy = &paths["/presence/v1/users/{associateId}"]["get"]["responses"]["503"];
    assert_eq!(busy["headers"]["Retry-After"]["required"], true);
    for scheme in [
        "basic",
        "bearer",
        "soTicket",
        "soAppToken",
        "session",
        "xsrfToken",
    ] {
        assert!(
            document["components"]["securitySchemes"][scheme].is_object(),
            "{scheme}"
        );
    }
}

async fn the_document_is_served_under_the_base_path() {
    let mut settings = TestSettings::default();
    settings.http.base_path = presence::config::parse_base_path("/Cust12345").unwrap();
    let app = spawn_app_with(settings).await;
    let document = document(&app, &format!("/Cust12345{DOCUMENT}")).await;
    // Kept in lower case, as every address matches in any case.
    assert_eq!(document["servers"], json!([{"url": "/cust12345"}]));
    assert!(document["paths"]["/presence/v1/users"].is_object());
}

/// Checks `response` against what the document says `method path` answers with its status:
/// the media type is documented, the documented headers that are required are there, and the
/// body matches the schema.
fn conforms(document: &Value, method: &str, path: &str, response: &Response) {
    let what = format!("{method} {path} {}", response.status);
    let answer = &document["paths"][path][method]["responses"][response.status.to_string()];
    assert!(answer.is_object(), "{what} is not documented");
    for (name, header) in answer["headers"].as_object().into_iter().flatten() {
        if header["required"] == true {
            assert!(response.header(name).is_some(), "{what} lacks {name}");
        }
    }
    let Some(content) = answer.get("content") else {
        assert!(
            response.body.is_empty(),
            "{what} has a body but documents none"
        );
        return;
    };
    let content_type = response.header("content-type").expect("a content type");
    let media_type = content_type.split(';').next().unwrap().trim();
    let schema = &content[media_type]["schema"];
    assert!(
        content.get(media_type).is_some(),
        "{what}: {media_type} is not documented"
    );
    let body = response.json();
    if let Err(error) = validate(document, schema, &body) {
        panic!("{what}: {error}\nbody: {body}\nschema: {schema}");
    }
}

/// The part of JSON Schema the document uses: `$ref`, `type` (one or several), `enum`,
/// `oneOf`, `properties` and `required`, `items`, the bounds, and `format: date-time`.
fn validate(document: &Value, schema: &Value, value: &Value) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .expect("a schema reference");
        let target = &document["components"]["schemas"][name];
        assert!(target.is_object(), "{reference} names no schema");
        return validate(document, target, value);
    }
    if let Some(choices) = schema["oneOf"].as_array() {
        let matching = choices
            .iter()
            .filter(|choice| validate(document, choice, value).is_ok())
            .count();
        if matching != 1 {
            return Err(format!("{value} matches {matching} of {}", schema["oneOf"]));
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one],
        Value::Array(several) => several.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let type_of = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if !types.is_empty()
        && !types
            .iter()
            .any(|t| *t == type_of || (*t == "number" && type_of == "integer"))
    {
        return Err(format!("{value} is not of type {types:?}"));
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{value} is not one of {allowed:?}"));
    }
    if let Some(minimum) = schema["minimum"].as_i64()
        && value.as_i64().is_some_and(|n| n < minimum)
    {
        return Err(format!("{value} is below {minimum}"));
    }
    if let Some(maximum) = schema["maximum"].as_i64()
        && value.as_i64().is_some_and(|n| n > maximum)
    {
        return Err(format!("{value} is above {maximum}"));
    }
    if let Value::String(text) = value {
        if let Some(longest) = schema["maxLength"].as_u64()
            && text.chars().count() as u64 > longest
        {
            return Err(format!("{value} is longer than {longest}"));
        }
        if schema["format"] == "date-time" && timestamp::parse(text).is_err() {
            return Err(format!("{value} is not a date-time"));
        }
    }
    if let Value::Array(items) = value {
        for item in items {
            validate(document, &schema["items"], item)?;
        }
    }
    if let Value::Object(members) = value {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap();
            if !members.contains_key(name) {
                return Err(format!("{value} lacks {name}"));
            }
        }
        for (name, member) in members {
            if let Some(member_schema) = schema["properties"].get(name) {
                validate(document, member_schema, member)
                    .map_err(|error| format!("{name}: {error}"))?;
            }
        }
    }
    Ok(())
}

async fn real_answers_match_the_documented_schemas() {
    let app = spawn_app().await;
    let document = document(&app, DOCUMENT).await;
    // The checker does refuse what the schemas do not allow.
    let presence = json!({"$ref": "#/components/schemas/Presence"});
    let wrong_bodies = [
        json!({"associateId": 2}),
        json!({"associateId": 2, "login": "anna", "status": "Present", "message": null,
            "until": null, "absence": null, "available": true, "revision": 1,
            "changedAt": "2026-12-02T14:00:00.000Z"}),
    ];
    for body in wrong_bodies {
        assert!(validate(&document, &presence, &body).is_err(), "{body}");
    }
    let user = "/presence/v1/users/{associateId}";
    let users = "/presence/v1/users";
    let absences = "/presence/v1/users/{associateId}/absences";
    let get = |path: &str| Request::new("GET", path).basic(USER);

    let one = app
        .send(get(&format!("/presence/v1/users/{USER_ID}")))
        .await;
    assert_eq!(one.status, 200);
    conforms(&document, "get", user, &one);
    let etag = one.header("etag").unwrap().to_owned();
    let unchanged = app
        .send(get(&format!("/presence/v1/users/{USER_ID}")).header("If-None-Match", &etag))
        .await;
    assert_eq!(unchanged.status, 304);
    conforms(&document, "get", user, &unchanged);
    let nobody = app.send(get("/presence/v1/users/5000")).await;
    assert_eq!(nobody.status, 404);
    conforms(&document, "get", user, &nobody);
    let anonymous = app.send(Request::new("GET", "/presence/v1/users/2")).await;
    assert_eq!(anonymous.status, 401);
    conforms(&document, "get", user, &anonymous);

    let batch = app
        .send(get(&format!(
            "/presence/v1/users?ids={ADMIN_ID},{USER_ID},5000"
        )))
        .await;
    assert_eq!(batch.json()["missing"], json!([5000]));
    conforms(&document, "get", users, &batch);
    let page = app.send(get("/presence/v1/users?limit=1")).await;
    assert!(page.json()["next"].is_string());
    conforms(&document, "get", users, &page);
    let wrong = app.send(get("/presence/v1/users?limit=0")).await;
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.json()["errors"][0]["member"], "limit");
    conforms(&document, "get", users, &wrong);

    let from = timestamp::format(app.clock.now_millis() + 3_600_000);
    let until = timestamp::format(app.clock.now_millis() + 7_200_000);
    let absence = json!({"from": from, "until": until, "message": "Dentist"});
    let path = format!("/presence/v1/users/{USER_ID}/absences");
    let plan = || Request::post(&path).basic(USER).json(&absence.to_string());
    let planned = app.send(plan()).await;
    assert_eq!(planned.status, 201);
    conforms(&document, "post", absences, &planned);
    let overlapping = app.send(plan()).await;
    assert_eq!(overlapping.status, 409);
    conforms(&document, "post", absences, &overlapping);
    let listed = app.send(get(&path)).await;
    conforms(&document, "get", absences, &listed);
    // While the absence rules, the presence names it.
    app.clock.advance(Duration::from_secs(5400));
    let absent = app
        .send(get(&format!("/presence/v1/users/{USER_ID}")))
        .await;
    assert!(absent.json()["absence"].is_object());
    conforms(&document, "get", user, &absent);

    let webhooks = "/presence/v1/webhooks";
    let added = app
        .send(
            Request::post(webhooks)
                .basic(ADMIN)
                .json(r#"{"url": "https://example.com/hook", "associates": [963]}"#),
        )
        .await;
    assert_eq!(added.status, 201);
    conforms(&document, "post", webhooks, &added);
    let listed = app.send(Request::new("GET", webhooks).basic(ADMIN)).await;
    conforms(&document, "get", webhooks, &listed);
    let id = added.json()["id"].as_i64().unwrap();
    let attempts = app
        .send(Request::new("GET", &format!("{webhooks}/{id}/deliveries")).basic(ADMIN))
        .await;
    conforms(
        &document,
        "get",
        "/presence/v1/webhooks/{webhookId}/deliveries",
        &attempts,
    );
    let refused = app.send(get(webhooks)).await;
    assert_eq!(refused.status, 403);
    conforms(&document, "get", webhooks, &refused);

    let status = "/presence/v1/users/{associateId}/status";
    let stale = app
        .send(
            Request::new("PUT", &format!("/presence/v1/users/{USER_ID}/status"))
                .basic(USER)
                .header("If-Match", "\"1\"")
                .json(r#"{"status": "StatusNormal"}"#),
        )
        .await;
    assert_eq!(stale.status, 412);
    conforms(&document, "put", status, &stale);

    let superoffice = |id: i32| {
        Request::post(GET)
            .basic(USER)
            .json(&format!(r#"{{"AssociateId":{id}}}"#))
    };
    for id in [USER_ID, 5000] {
        let answer = app.send(superoffice(id)).await;
        assert_eq!(answer.status, 200);
        conforms(&document, "post", GET, &answer);
    }
    let selected = app
        .send(
            Request::post(&format!("{GET}?$select=Message"))
                .basic(USER)
                .json(&format!(r#"{{"AssociateId":{USER_ID}}}"#)),
        )
        .await;
    conforms(&document, "post", GET, &selected);
    let invalid = app.send(Request::post(GET).basic(USER).json("[]")).await;
    assert_eq!(invalid.status, 400);
    conforms(&document, "post", GET, &invalid);
    let forbidden = app
        .send(
            Request::post(SET)
                .basic(USER)
                .json(r#"{"AssociateId": 1, "UserPresenceStatus": {"Status": "StatusNormal"}}"#),
        )
        .await;
    assert_eq!(forbidden.status, 403);
    conforms(&document, "post", SET, &forbidden);
}
