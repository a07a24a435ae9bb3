//! The OpenAPI 3.1 document of every address the server answers, served at
//! `{base}/presence/v1/openapi.json`.
//!
//! The presence API's operations are described by the `#[utoipa::path]` annotations on their
//! handlers (`mod.rs`) and their bodies by the `ToSchema` derives on the types that write them
//! (`wire.rs`, `problem.rs`), so the document changes with the code. The other addresses are
//! answered by code that has no handler per operation (SuperOffice's two operations run
//! through one `user::call`, the service in front of the router writes the 408s, 413s, 501s
//! and 503s of every address), so they are described here, next to the responses every
//! address shares. `tests/api/openapi.rs` checks the document against what the server sends,
//! and `scripts/schemathesis.sh` against a live server.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn, ParameterStyle};
use utoipa::openapi::response::{Response as Answer, ResponseBuilder};
use utoipa::openapi::schema::{
    ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, Header, KnownFormat, RefOr, Required, ServerBuilder, schema::Ref,
};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, PartialSchema, ToSchema};

use self::others::*;
use crate::domain::UserStatus;
use crate::http::state::AppState;

mod others;

pub const OPENAPI: &str = "/presence/v1/openapi.json";

/// Response headers that every response documenting them carries. utoipa's header object has
/// no `required`, so it is added to the document afterwards.
const ALWAYS_SENT_HEADERS: [&str; 3] = ["ETag", "Location", "Retry-After"];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "presence",
        description = "SuperOffice's user presence WebAPI (GetUserPresenceStatus and \
            SetUserPresenceStatus) and the presence API under /presence/v1. Every path is \
            relative to the server's base path, and matches in any case. Errors under \
            /presence/ are RFC 9457 problem details; SuperOffice's operations answer \
            SuperOffice's error object. An address answers 405, with Allow, to a method it \
            does not take."
    ),
    paths(
        super::me::me,
        super::users,
        super::user,
        super::put_status,
        super::absences,
        super::plan_absence,
        super::cancel_absence,
        super::changes::changes,
        super::feed::stream,
        super::webhooks::list,
        super::webhooks::add,
        super::webhooks::remove,
        super::webhooks::deliveries,
        openapi_json,
        get_user_presence_status,
        set_user_presence_status,
        describe_get_user_presence_status,
        describe_set_user_presence_status,
        board_page,
        board_file,
        sign_in_page,
        sign_in,
        sign_out,
        health_live,
        health_ready,
        metrics,
    ),
    components(schemas(
        StatusName,
        super::me::MeBody,
        super::wire::PresenceBody,
        super::wire::AbsenceBody,
        super::wire::BatchBody,
        super::webhooks::WebhookBody,
        super::webhooks::DeliveryBody,
        super::webhooks::WebhookRequest,
        super::problem::Problem,
        super::problem::MemberError,
        StatusRequest,
        AbsenceRequest,
        UserPresenceStatus,
        GetUserPresenceStatusRequest,
        SetUserPresenceStatusRequest,
        SuperOfficeError,
        SuperOfficeInvalidRequest,
        SignInRequest,
    )),
    modifiers(&SecuritySchemes),
    security(
        ("basic" = []),
        ("soTicket" = []),
        ("soTicket" = [], "soAppToken" = []),
        ("bearer" = []),
        ("session" = [], "xsrfToken" = []),
    ),
)]
struct Document;

/// The document as served when the server has no base path.
static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
    let mut document =
        serde_json::to_value(Document::openapi()).expect("the OpenAPI document serializes");
    require_always_sent_headers(&mut document);
    document
});

static DOCUMENT_BYTES: LazyLock<Bytes> = LazyLock::new(|| {
    Bytes::from(serde_json::to_vec(&*DOCUMENT).expect("the OpenAPI document serializes"))
});

fn require_always_sent_headers(document: &mut Value) {
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for operation in paths.values_mut().flat_map(|item| {
        item.as_object_mut()
            .into_iter()
            .flat_map(|methods| methods.values_mut())
    }) {
        let Some(responses) = operation["responses"].as_object_mut() else {
            continue;
        };
        for response in responses.values_mut() {
            let Some(headers) = response.get_mut("headers").and_then(Value::as_object_mut) else {
                continue;
            };
            for (name, header) in headers.iter_mut() {
                if ALWAYS_SENT_HEADERS.contains(&name.as_str()) {
                    header["required"] = Value::Bool(true);
                }
            }
        }
    }
}

/// The document with the server's base path as its server, so that its paths resolve.
fn document(base_path: &str) -> Bytes {
    if base_path.is_empty() {
        return DOCUMENT_BYTES.clone();
    }
    let mut document = DOCUMENT.clone();
    let server = ServerBuilder::new().url(base_path).build();
    document["servers"] = serde_json::json!([server]);
    Bytes::from(serde_json::to_vec(&document).expect("the OpenAPI document serializes"))
}

/// `GET /presence/v1/openapi.json`: this document, to anyone.
#[utoipa::path(
    get,
    path = "/presence/v1/openapi.json",
    tag = "presence",
    security(()),
    responses(
        (status = 200, description = "This document", content_type = "application/json",
            body = Object),
        Unlimited,
        Busy,
    )
)]
pub async fn openapi_json(State(state): State<AppState>) -> Response {
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        document(&state.settings().base_path),
    )
        .into_response()
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let api_key = |key: ApiKey| SecurityScheme::ApiKey(key);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "A user's login and password (refused on online installations)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access token the server issued (8A:...), or a JWT from a \
                         configured identity provider",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "soTicket",
            api_key(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`SOTicket 7T:...`: a ticket the server issued (scheme name in any case)",
            ))),
        );
        components.add_security_scheme(
            "soAppToken",
            api_key(ApiKey::Header(ApiKeyValue::with_description(
                "SO-AppToken",
                "A registered application's token; with a ticket, required online",
            ))),
        );
        components.add_security_scheme(
            "session",
            api_key(ApiKey::Cookie(ApiKeyValue::with_description(
                "SO-Session",
                "The browser session from POST /login, with no Authorization header",
            ))),
        );
        components.add_security_scheme(
            "xsrfToken",
            api_key(ApiKey::Header(ApiKeyValue::with_description(
                "X-XSRF-TOKEN",
                "Equal to the XSRF-TOKEN cookie POST /login set",
            ))),
        );
    }
}

/// A status by its `EjUserStatus` name, as the wire carries it.
pub struct StatusName;

impl PartialSchema for StatusName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(UserStatus::ALL.map(UserStatus::name)))
            .description(Some("An EjUserStatus name"))
            .into()
    }
}

impl ToSchema for StatusName {}

fn problem(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        super::problem::PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    )
}

fn header(description: &str, schema: impl Into<RefOr<Schema>>) -> Header {
    let mut header = Header::new(schema);
    header.description = Some(description.to_owned());
    header
}

fn text_header(description: &str) -> Header {
    header(description, ObjectBuilder::new().schema_type(Type::String))
}

fn retry_after() -> Header {
    header(
        "Seconds to wait before trying again",
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0)),
    )
}

fn responses(list: impl IntoIterator<Item = (u16, Answer)>) -> BTreeMap<String, RefOr<Answer>> {
    list.into_iter()
        .map(|(status, answer)| (status.to_string(), RefOr::T(answer)))
        .collect()
}

/// What the service in front of the router answers at any address, before the address's
/// handler sees the request: a body that arrives too slowly (408), one over the body limit
/// (413), a transfer coding other than chunked (501). The presence API writes them as problem
/// details.
pub struct Unlimited;

impl IntoResponses for Unlimited {
    fn responses() -> BTreeMap<String, RefOr<Answer>> {
        responses([
            (
                408,
                problem("The request did not arrive within the request timeout").build(),
            ),
            (413, problem("The body is over the body limit").build()),
            (
                500,
                problem("An unexpected error; the details are logged, not sent").build(),
            ),
            (501, problem("A transfer coding other than chunked").build()),
        ])
    }
}

/// The 503 of a server at its limit of requests in flight, or whose database is unavailable.
pub struct Busy;

impl IntoResponses for Busy {
    fn responses() -> BTreeMap<String, RefOr<Answer>> {
        responses([(
            503,
            problem("The server is busy, or its database unavailable")
                .header("Retry-After", retry_after())
                .build(),
        )])
    }
}

/// What every authenticated request to the presence API can meet besides [`Unlimited`] and
/// [`Busy`]: a wrong parameter or path segment (400), no or bad credentials (401), a caller
/// not allowed (403).
pub struct Refusals;

impl IntoResponses for Refusals {
    fn responses() -> BTreeMap<String, RefOr<Answer>> {
        let mut all = responses([
            (
                400,
                problem("A parameter, path segment or body member is wrong; `errors` names it")
                    .build(),
            ),
            (
                401,
                problem("No credentials, or bad ones")
                    .header(
                        "WWW-Authenticate",
                        text_header("One challenge per enabled scheme"),
                    )
                    .build(),
            ),
            (
                403,
                problem("The caller may not do this (another user's presence, a status only administrators set, an application without the User agent)")
                    .build(),
            ),
        ]);
        all.append(&mut Unlimited::responses());
        all.append(&mut Busy::responses());
        all
    }
}

/// The parameters of `GET /presence/v1/users`: either `ids`, or the list's paging.
pub struct UsersQuery;

impl IntoParams for UsersQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let query = |name: &str, description: &str, schema: RefOr<Schema>| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(schema))
        };
        let associate_id = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
            .minimum(Some(1));
        vec![
            query(
                "ids",
                "Up to 1000 associate ids, comma-separated: a batch read. Not with limit or after.",
                ArrayBuilder::new()
                    .items(associate_id)
                    .min_items(Some(1))
                    .max_items(Some(super::MAX_IDS))
                    .into(),
            )
            .style(Some(ParameterStyle::Form))
            .explode(Some(false))
            .build(),
            query(
                "status",
                "Only users with this effective status",
                StatusName::schema(),
            )
            .build(),
            query(
                "available",
                "Only users who take tickets now (true) or do not (false)",
                bool::schema(),
            )
            .build(),
            query(
                "limit",
                "Users in one page (the list only)",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(super::MAX_LIMIT))
                    .default(Some(super::DEFAULT_LIMIT.into()))
                    .into(),
            )
            .build(),
            query(
                "after",
                "The cursor of the page to read: a previous page's `next` (the list only)",
                String::schema(),
            )
            .build(),
        ]
    }
}

/// `PUT /presence/v1/users/{associateId}/status`'s body. Read member by member (`wire.rs`);
/// this type only describes it.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase", example = json!({
    "status": "StatusNotAvailable", "message": "Back at 14:00", "until": "2030-12-02T14:00:00.000Z"
}))]
#[expect(dead_code, reason = "describes a body that is read member by member")]
pub struct StatusRequest {
    /// Matched in any case; the number is accepted too.
    #[schema(value_type = StatusName)]
    status: (),
    #[schema(required = false, max_length = 255)]
    message: Option<String>,
    /// Only with StatusNotAvailable, and in the future: the status then ends by itself.
    #[schema(required = false, format = DateTime)]
    until: Option<String>,
}

/// `POST /presence/v1/users/{associateId}/absences`'s body.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase", example = json!({
    "from": "2030-07-01T00:00:00.000Z", "until": "2030-07-22T00:00:00.000Z", "message": "On holiday"
}))]
#[expect(dead_code, reason = "describes a body that is read member by member")]
pub struct AbsenceRequest {
    #[schema(format = DateTime)]
    from: String,
    /// After `from`, at most 366 days later, and not in the past.
    #[schema(format = DateTime)]
    until: String,
    #[schema(required = false, max_length = 255)]
    message: Option<String>,
}

/// One problem response of the presence API, as a type its handlers' annotations name.
macro_rules! problem_response {
    ($name:ident, $status:literal, $description:literal) => {
        pub struct $name;
        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Answer>> {
                responses([($status, problem($description).build())])
            }
        }
    };
}

problem_response!(NoUser, 404, "The associate is no Service user");
problem_response!(NoAbsence, 404, "The associate has no such absence");
problem_response!(
    Overlaps,
    409,
    "The absence overlaps another, or too many are planned"
);
problem_response!(
    Stale,
    412,
    "If-Match names a revision that is no longer the user's"
);
problem_response!(NotJson, 415, "A body that is not JSON");
problem_response!(NoWebhook, 404, "There is no such webhook");
problem_response!(
    TooManyWebhooks,
    409,
    "There are as many webhooks as a server keeps (100)"
);

/// `GET /presence/v1/users`' answer: a batch with `ids`, a page without.
pub struct Users;

impl IntoResponses for Users {
    fn responses() -> BTreeMap<String, RefOr<Answer>> {
        let either = OneOfBuilder::new()
            .item(Ref::from_schema_name("Batch"))
            .item(super::wire::PageBody::<super::wire::PresenceBody>::schema());
        responses([(
            200,
            ResponseBuilder::new()
                .description(
                    "With ids, a Batch: those found, and the ids that are no Service user. \
                     Without, a page of every Service user that passes the filters.",
                )
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(either)).build(),
                )
                .build(),
        )])
    }
}
