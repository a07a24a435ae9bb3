//! The addresses besides the presence API's in the document: SuperOffice's two operations,
//! the GETs that describe them, the sign-in, the health checks and the metrics. Their code has
//! no handler per operation to annotate, so each is described by a function of its own here.

use std::collections::BTreeMap;

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response as Answer, ResponseBuilder};
use utoipa::openapi::schema::{Ref, Schema};
use utoipa::openapi::{ContentBuilder, RefOr, Required};
use utoipa::{IntoParams, IntoResponses, PartialSchema, ToSchema};

use super::{StatusName, responses, retry_after, text_header};

/// SuperOffice's carrier of a presence.
#[derive(ToSchema)]
#[schema(rename_all = "PascalCase")]
#[expect(dead_code, reason = "describes what `encode::presence` writes")]
pub struct UserPresenceStatus {
    /// Null only when `$select` left it out.
    #[schema(value_type = Option<StatusName>, required = true)]
    status: (),
    /// Null when there is none, or when `$select` left it out.
    #[schema(max_length = 255, required = true)]
    message: Option<String>,
}

/// `GetUserPresenceStatus`'s body (member names in any case; XML and forms are read too).
#[derive(ToSchema)]
#[schema(rename_all = "PascalCase", example = json!({"AssociateId": 963}))]
#[expect(dead_code, reason = "describes a body that is read by `http::body`")]
pub struct GetUserPresenceStatusRequest {
    associate_id: i32,
}

/// `SetUserPresenceStatus`'s body (member names in any case; XML and forms are read too).
#[derive(ToSchema)]
#[schema(rename_all = "PascalCase", example = json!({
    "AssociateId": 963,
    "UserPresenceStatus": {"Status": "StatusNotAvailable", "Message": "Back at 14:00"}
}))]
#[expect(dead_code, reason = "describes a body that is read by `http::body`")]
pub struct SetUserPresenceStatusRequest {
    associate_id: i32,
    user_presence_status: UserPresenceStatus,
}

/// SuperOffice's error object.
#[derive(ToSchema)]
#[schema(rename_all = "PascalCase")]
#[expect(dead_code, reason = "describes what `ApiError::body` writes")]
pub struct SuperOfficeError {
    error: bool,
    error_type: String,
    error_message: String,
    /// The request's path, shortened.
    error_source: String,
}

/// ASP.NET's model-state error, SuperOffice's 400.
#[derive(ToSchema)]
#[schema(rename_all = "PascalCase")]
#[expect(dead_code, reason = "describes what `ApiError::body` writes")]
pub struct SuperOfficeInvalidRequest {
    message: String,
    message_detail: String,
}

/// The media types SuperOffice's operations answer in, by `Accept`.
const JSON_TYPES: [&str; 4] = [
    "application/json",
    "text/json",
    "application/json-patch+json",
    "application/merge-patch+json",
];
const XML_TYPES: [&str; 2] = ["application/xml", "text/xml"];

/// A SuperOffice response: JSON of `schema` in any of its JSON types, or its XML form.
fn superoffice(description: &str, schema: RefOr<Schema>) -> ResponseBuilder {
    let mut builder = ResponseBuilder::new().description(description);
    for media_type in JSON_TYPES {
        builder = builder.content(
            media_type,
            ContentBuilder::new().schema(Some(schema.clone())).build(),
        );
    }
    for media_type in XML_TYPES {
        builder = builder.content(media_type, ContentBuilder::new().build());
    }
    builder
}

/// The errors of SuperOffice's operations.
pub struct SuperOfficeErrors;

impl IntoResponses for SuperOfficeErrors {
    fn responses() -> BTreeMap<String, RefOr<Answer>> {
        let error = |description: &str| {
            superoffice(
                description,
                Ref::from_schema_name("SuperOfficeError").into(),
            )
        };
        responses([
            (
                400,
                superoffice(
                    "The body is missing or wrong, or a language header is",
                    Ref::from_schema_name("SuperOfficeInvalidRequest").into(),
                )
                .build(),
            ),
            (
                401,
                error("No credentials, or bad ones")
                    .header(
                        "WWW-Authenticate",
                        text_header("One challenge per enabled scheme"),
                    )
                    .build(),
            ),
            (403, error("The caller may not do this").build()),
            (
                408,
                error("The request did not arrive within the request timeout").build(),
            ),
            (413, error("The body is over the body limit").build()),
            (
                415,
                error("A Content-Type or charset the operation does not read").build(),
            ),
            (
                500,
                error("An unexpected error; the details are logged, not sent").build(),
            ),
            (501, error("A transfer coding other than chunked").build()),
            (
                503,
                error("The server is busy, or its database unavailable")
                    .header("Retry-After", retry_after())
                    .build(),
            ),
        ])
    }
}

/// The presence as SuperOffice answers it: the carrier, or `null` for an associate who is no
/// Service user.
pub struct SuperOfficePresence;

impl IntoResponses for SuperOfficePresence {
    fn responses() -> BTreeMap<String, RefOr<Answer>> {
        let schema = Option::<UserPresenceStatus>::schema();
        responses([(
            200,
            superoffice(
                "The carrier, or null when the associate is no Service user",
                schema,
            )
            .header(
                "Content-Language",
                text_header("The language translated into"),
            )
            .build(),
        )])
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/Agents/User/GetUserPresenceStatus",
    tag = "SuperOffice",
    operation_id = "GetUserPresenceStatus",
    description = "A Service user's presence status; any authenticated user may read anyone's.",
    params(SuperOfficeQuery),
    request_body(content = GetUserPresenceStatusRequest, content_type = "application/json"),
    responses(SuperOfficePresence, SuperOfficeErrors)
)]
#[expect(dead_code, reason = "describes an address answered by `user::call`")]
fn get_user_presence_status() {}

#[utoipa::path(
    post,
    path = "/api/v1/Agents/User/SetUserPresenceStatus",
    tag = "SuperOffice",
    operation_id = "SetUserPresenceStatus",
    description = "Stores a Service user's presence status and answers it as stored. Users \
        set their own to StatusNormal or StatusNotAvailable; administrators any, for anyone.",
    params(SuperOfficeQuery),
    request_body(content = SetUserPresenceStatusRequest, content_type = "application/json"),
    responses(SuperOfficePresence, SuperOfficeErrors)
)]
#[expect(dead_code, reason = "describes an address answered by `user::call`")]
fn set_user_presence_status() {}

/// `$select` and the language headers, which SuperOffice's operations read.
pub struct SuperOfficeQuery;

impl IntoParams for SuperOfficeQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let optional = |name: &str, place: ParameterIn, description: &str, example: &str| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(place)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(String::schema()))
                .example(Some(example.into()))
                .build()
        };
        vec![
            optional(
                "$select",
                ParameterIn::Query,
                "Members to answer, comma-separated; the others come back null",
                "Status,Message",
            ),
            optional(
                "SO-Language",
                ParameterIn::Header,
                "The language to translate Message into; overrides Accept-Language",
                "en",
            ),
            optional(
                "SO-TimeZone",
                ParameterIn::Header,
                "A location code or zone id for date-times; an unknown zone is a 400",
                "UTC",
            ),
        ]
    }
}

fn describe_responses() -> BTreeMap<String, RefOr<Answer>> {
    let mut all = responses([(
        200,
        ResponseBuilder::new()
            .description("A short description of the call; nothing is invoked")
            .content("text/plain", ContentBuilder::new().build())
            .build(),
    )]);
    let mut errors = SuperOfficeErrors::responses();
    for status in ["408", "413", "500", "501", "503"] {
        if let Some(answer) = errors.remove(status) {
            all.insert(status.to_owned(), answer);
        }
    }
    all
}

/// The answers to a `GET` on an operation's address.
pub struct Describe;

impl IntoResponses for Describe {
    fn responses() -> BTreeMap<String, RefOr<Answer>> {
        describe_responses()
    }
}

#[utoipa::path(get, path = "/api/v1/Agents/User/GetUserPresenceStatus", tag = "SuperOffice",
    security(()), responses(Describe))]
#[expect(
    dead_code,
    reason = "describes `user::describe_get_user_presence_status`"
)]
fn describe_get_user_presence_status() {}

#[utoipa::path(get, path = "/api/v1/Agents/User/SetUserPresenceStatus", tag = "SuperOffice",
    security(()), responses(Describe))]
#[expect(
    dead_code,
    reason = "describes `user::describe_set_user_presence_status`"
)]
fn describe_set_user_presence_status() {}

/// The answers of the server's own addresses (sign-in, health, metrics): plain text, or
/// SuperOffice's error object in the format `Accept` asks for.
fn own(
    list: impl IntoIterator<Item = (u16, &'static str, &'static str)>,
) -> BTreeMap<String, RefOr<Answer>> {
    let mut all = describe_responses();
    all.remove("200");
    for (status, description, media_type) in list {
        let answer = if media_type.is_empty() {
            superoffice(
                description,
                Ref::from_schema_name("SuperOfficeError").into(),
            )
        } else {
            ResponseBuilder::new()
                .description(description)
                .content(media_type, ContentBuilder::new().build())
        };
        all.insert(status.to_string(), RefOr::T(answer.build()));
    }
    all
}

pub struct SignInPage;
impl IntoResponses for SignInPage {
    fn responses() -> BTreeMap<String, RefOr<Answer>> {
        own([(200, "The sign-in page", "text/html")])
    }
}

pub struct SignIn;
impl IntoResponses for SignIn {
    fn responses() -> BTreeMap<String, RefOr<Answer>> {
        let mut all = own([
            (
                200,
                "Signed in: the session cookies are set; the body is {\"AssociateId\": n}",
                "application/json",
            ),
            (400, "login or password missing", ""),
            (401, "Wrong login or password", ""),
            (
                403,
                "Passwords are not accepted, or the request came from another site",
                "",
            ),
            (415, "A body neither a form nor JSON", ""),
        ]);
        if let Some(RefOr::T(invalid)) = all.get_mut("400") {
            *invalid = SuperOfficeErrors::responses()
                .remove("400")
                .and_then(|answer| match answer {
                    RefOr::T(answer) => Some(answer),
                    RefOr::Ref(_) => None,
                })
                .expect("SuperOffice's 400 is written out");
        }
        all
    }
}

pub struct SignOut;
impl IntoResponses for SignOut {
    fn responses() -> BTreeMap<String, RefOr<Answer>> {
        let mut all = own([(401, "No session, or the XSRF token does not match", "")]);
        all.insert(
            "204".into(),
            RefOr::T(
                ResponseBuilder::new()
                    .description("Signed out; the cookies are cleared")
                    .build(),
            ),
        );
        all
    }
}

pub struct Live;
impl IntoResponses for Live {
    fn responses() -> BTreeMap<String, RefOr<Answer>> {
        let mut all = own([(200, "The process answers", "text/plain")]);
        all.remove("503");
        all
    }
}

pub struct Ready;
impl IntoResponses for Ready {
    fn responses() -> BTreeMap<String, RefOr<Answer>> {
        own([
            (200, "The database answers", "text/plain"),
            (503, "The database is unavailable", "text/plain"),
        ])
    }
}

pub struct Metrics;
impl IntoResponses for Metrics {
    fn responses() -> BTreeMap<String, RefOr<Answer>> {
        let mut all = own([(200, "OpenMetrics text", "application/openmetrics-text")]);
        all.remove("503");
        all
    }
}

pub struct BoardPage;
impl IntoResponses for BoardPage {
    fn responses() -> BTreeMap<String, RefOr<Answer>> {
        let mut all = own([(
            200,
            "The presence board to a browser with a session; the sign-in page to any other; \
             where no browser can sign in, a page saying how the board is reached",
            "text/html",
        )]);
        all.insert(
            "308".into(),
            RefOr::T(
                ResponseBuilder::new()
                    .description("The base path without its slash: the board is under it")
                    .header("Location", text_header("The address with its slash"))
                    .build(),
            ),
        );
        all
    }
}

pub struct BoardFile;
impl IntoResponses for BoardFile {
    fn responses() -> BTreeMap<String, RefOr<Answer>> {
        let mut file = ResponseBuilder::new().description(
            "The file; under its current version (`v`) it may be kept a year, else it is \
             revalidated with its ETag",
        );
        for media_type in ["text/javascript", "text/css", "image/svg+xml"] {
            file = file.content(media_type, ContentBuilder::new().build());
        }
        let mut all = own([(404, "No such file", "")]);
        all.insert(
            "200".into(),
            RefOr::T(file.header("ETag", text_header("The version")).build()),
        );
        all.insert(
            "304".into(),
            RefOr::T(
                ResponseBuilder::new()
                    .description("If-None-Match names the file's version")
                    .header("ETag", text_header("The version"))
                    .build(),
            ),
        );
        all
    }
}

#[utoipa::path(get, path = "/", tag = "server", security(()), responses(BoardPage))]
#[expect(dead_code, reason = "describes `board::page`")]
fn board_page() {}

#[utoipa::path(get, path = "/board/{file}", tag = "server", security(()),
    params(("file" = String, Path, description = "board.js, sign-in.js, texts.js, board.css or favicon.svg"),
        ("v" = Option<String>, Query, description = "The file's version, as the pages name it")),
    responses(BoardFile))]
#[expect(dead_code, reason = "describes `board::asset`")]
fn board_file() {}

#[utoipa::path(get, path = "/login", tag = "server", security(()), responses(SignInPage))]
#[expect(dead_code, reason = "describes `login::sign_in_page`")]
fn sign_in_page() {}

/// The sign-in's body.
#[derive(ToSchema)]
#[expect(dead_code, reason = "describes a body that `login::sign_in` reads")]
pub struct SignInRequest {
    #[schema(min_length = 1)]
    login: String,
    password: String,
}

#[utoipa::path(post, path = "/login", tag = "server", security(()),
    request_body(content = SignInRequest, content_type = "application/x-www-form-urlencoded",
        description = "login and password, as a form or as JSON"),
    responses(SignIn))]
#[expect(dead_code, reason = "describes `login::sign_in`")]
fn sign_in() {}

#[utoipa::path(post, path = "/logout", tag = "server", security(("session" = [], "xsrfToken" = [])),
    responses(SignOut))]
#[expect(dead_code, reason = "describes `login::sign_out`")]
fn sign_out() {}

#[utoipa::path(get, path = "/health/live", tag = "server", security(()), responses(Live))]
#[expect(dead_code, reason = "describes `health::live`")]
fn health_live() {}

#[utoipa::path(get, path = "/health/ready", tag = "server", security(()), responses(Ready))]
#[expect(dead_code, reason = "describes `health::ready`")]
fn health_ready() {}

#[utoipa::path(get, path = "/metrics", tag = "server", security(()), responses(Metrics))]
#[expect(dead_code, reason = "describes `metrics::metrics`")]
fn metrics() {}
