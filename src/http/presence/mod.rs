//! The presence API under `{base}/presence/v1/`: many associates at once, one associate with
//! its revision as `ETag`, statuses that end by themselves, and planned absences. JSON only;
//! errors as problem details (`problem.rs`); the same credentials and rules as SuperOffice's
//! operations. Every read answers the presence at the moment of the request
//! (`Presence::at`), from the same cached users as SuperOffice's Get.

mod changes;
mod feed;
mod me;
mod openapi;
pub mod problem;
mod query;
mod rendered;
mod webhooks;
mod wire;

pub use self::changes::change_json;
pub use self::rendered::Renderings;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, ETAG, IF_MATCH, IF_NONE_MATCH, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use self::openapi::{NoAbsence, NoUser, NotJson, Overlaps, Refusals, Stale, UsersQuery};
use self::query::{Filter, Query, batch_ids};
use self::rendered::Rendering;
use self::wire::{AbsenceBody, BatchWriter, PageBody, PresenceBody, invalid};
use crate::domain::{AssociateId, Presence, UserPresenceStatus, UserStatus};
use crate::http::access::{self, Associate};
use crate::http::auth::Caller;
use crate::http::body::BodyFormat;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::{AbsencePlanned, NewAbsence, StatusChange, StatusChanged};

/// Where the API lives under the base path.
pub const PREFIX: &str = "/presence/v1";

pub const ME: &str = "/presence/v1/me";
pub const USERS: &str = "/presence/v1/users";
pub const USER: &str = "/presence/v1/users/{associate_id}";
pub const STATUS: &str = "/presence/v1/users/{associate_id}/status";
pub const ABSENCES: &str = "/presence/v1/users/{associate_id}/absences";
pub const ABSENCE: &str = "/presence/v1/users/{associate_id}/absences/{absence_id}";
pub const CHANGES: &str = "/presence/v1/changes";
pub const CHANGE_STREAM: &str = "/presence/v1/changes/stream";
pub const WEBHOOKS: &str = "/presence/v1/webhooks";
pub const WEBHOOK: &str = "/presence/v1/webhooks/{webhook_id}";
pub const WEBHOOK_DELIVERIES: &str = "/presence/v1/webhooks/{webhook_id}/deliveries";

/// Ids in one batch read at most.
pub const MAX_IDS: usize = 1000;

/// Items in one page at most, and by default.
pub const MAX_LIMIT: usize = 1000;
pub const DEFAULT_LIMIT: usize = 100;

/// Users one page of a filtered list reads at most: a filter few users pass answers a short
/// page (with a cursor to go on from) rather than read every user in one request.
const MAX_SCANNED: usize = 10_000;

/// The longest absence: a year, a leap year's day included.
const MAX_ABSENCE_MILLIS: i64 = 366 * 24 * 3_600_000;

/// The API's routes, on lower-case paths (see `http::service`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            openapi::OPENAPI,
            get(openapi::openapi_json).fallback(only("GET")),
        )
        .route(ME, get(me::me).fallback(only("GET")))
        .route(USERS, get(users).fallback(only("GET")))
        .route(USER, get(user).fallback(only("GET")))
        .route(STATUS, axum::routing::put(put_status).fallback(only("PUT")))
        .route(
            ABSENCES,
            get(absences).post(plan_absence).fallback(only("GET, POST")),
        )
        .route(
            ABSENCE,
            axum::routing::delete(cancel_absence).fallback(only("DELETE")),
        )
        .route(CHANGES, get(changes::changes).fallback(only("GET")))
        .route(CHANGE_STREAM, get(feed::stream).fallback(only("GET")))
        .route(
            WEBHOOKS,
            get(webhooks::list)
                .post(webhooks::add)
                .fallback(only("GET, POST")),
        )
        .route(
            WEBHOOK,
            axum::routing::delete(webhooks::remove).fallback(only("DELETE")),
        )
        .route(
            WEBHOOK_DELIVERIES,
            get(webhooks::deliveries).fallback(only("GET")),
        )
}

/// The answer to a method an address does not take, naming those it does.
fn only(allow: &'static str) -> impl Fn() -> std::future::Ready<ApiError> + Clone {
    move || std::future::ready(ApiError::MethodNotAllowed { allow })
}

/// Every handler's frame: authenticates the caller by any scheme SuperOffice's operations
/// take, under the same online rules, runs `work` for them, and gives the answer, error or
/// not, the caller's associate for the access log.
async fn as_caller<Work>(
    state: &AppState,
    headers: &HeaderMap,
    work: impl FnOnce(Caller) -> Work,
) -> Response
where
    Work: Future<Output = Result<Response, ApiError>>,
{
    let caller = match state.auth().authenticate(state.store(), headers).await {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
    };
    let associate_id = caller.associate_id;
    let answered = match caller.ensure_user_agent(state.auth().settings().installation) {
        Ok(()) => work(caller).await,
        Err(error) => Err(error),
    };
    let mut response = answered.unwrap_or_else(IntoResponse::into_response);
    if access::is_on() {
        response.extensions_mut().insert(Associate(associate_id));
    }
    response
}

/// Writes go to one's own presence, or, for an administrator, anyone's.
fn ensure_may_change(caller: &Caller, associate_id: AssociateId) -> Result<(), ApiError> {
    if caller.is_admin || caller.associate_id == associate_id {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "Only an administrator may change another user's presence".into(),
        ))
    }
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> Response {
    json_bytes(
        status,
        serde_json::to_vec(body).expect("the API's bodies serialize"),
    )
}

fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    (
        status,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        bytes,
    )
        .into_response()
}

fn now(state: &AppState) -> i64 {
    state.auth().clock().now_millis()
}

/// The path's segment `back` places from its end: the ids in the path, read by hand rather
/// than by axum's extractor, whose refusals (of a segment that is not UTF-8, say) would not be
/// problem details.
fn segment(uri: &Uri, back: usize) -> &str {
    uri.path()
        .trim_end_matches('/')
        .rsplit('/')
        .nth(back)
        .unwrap_or("")
}

fn associate_in_path(text: &str) -> Result<AssociateId, ApiError> {
    text.parse::<i32>()
        .ok()
        .filter(|id| *id > 0)
        .map(AssociateId::new)
        .ok_or_else(|| {
            invalid(
                "associateId",
                format!("'{text}' is not an associate id (a positive 32-bit integer)"),
            )
        })
}

/// `GET /presence/v1/users`: with `ids`, those associates; without, every Service user, paged.
#[utoipa::path(
    get,
    path = "/presence/v1/users",
    tag = "presence",
    params(UsersQuery),
    responses(openapi::Users, Refusals)
)]
async fn users(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let (state, headers, uri) = (&state, &headers, &uri);
    as_caller(state, headers, |_| async move {
        let query = Query::of(uri.query())?;
        let filter = Filter::of(&query)?;
        match query.get("ids") {
            Some(ids) => {
                query.only(&["ids", "status", "available"])?;
                batch(state, ids, &filter).await
            }
            None => {
                query.only(&["status", "available", "limit", "after"])?;
                page(state, &query, &filter).await
            }
        }
    })
    .await
}

/// The presences of a batch, in the order asked, copied from the JSON kept for them, or
/// written, and kept if there is room (`rendered.rs`).
async fn batch(state: &AppState, ids: &str, filter: &Filter) -> Result<Response, ApiError> {
    let wanted = batch_ids(ids)?;
    let now = now(state);
    let (body, fresh) = state
        .store()
        .with_presences(&wanted, |presences| {
            let mut body = BatchWriter::new(presences.len());
            let mut missing = Vec::new();
            let mut fresh = Vec::new();
            let kept = state.renderings().kept();
            for (&id, presence) in wanted.iter().zip(presences) {
                let Some(presence) = presence else {
                    missing.push(id.get());
                    continue;
                };
                let mut answer = |rendering: &Rendering| {
                    if filter.admits(rendering.status(), rendering.available()) {
                        body.json(rendering.json());
                    }
                };
                match kept.get(id, presence, now) {
                    Some(rendering) => answer(rendering),
                    None if kept.would_keep(id) => {
                        let rendering = Rendering::of(id, presence, now);
                        answer(&rendering);
                        fresh.push((id, rendering));
                    }
                    None => {
                        let item = PresenceBody::at(id, presence, now);
                        if filter.passes(&item) {
                            body.item(&item);
                        }
                    }
                }
            }
            (body.finish(&missing), fresh)
        })
        .await?;
    state.renderings().keep(fresh);
    Ok(json_bytes(StatusCode::OK, body))
}

/// The cursor after an associate: opaque to clients, so that its form may change.
fn cursor(after: AssociateId) -> String {
    URL_SAFE_NO_PAD.encode(format!("a{}", after.get()))
}

fn after_cursor(text: &str) -> Result<i64, ApiError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix('a')?.parse::<i32>().ok())
        .map(i64::from)
        .ok_or_else(|| invalid("after", "after is not a cursor this server gave".into()))
}

fn limit(query: &Query<'_>) -> Result<usize, ApiError> {
    match query.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                invalid(
                    "limit",
                    format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                )
            }),
    }
}

/// One page of every Service user in associate order, after the cursor. Walking the pages by
/// associate sees every user that exists throughout exactly once, whatever changes meanwhile.
async fn page(state: &AppState, query: &Query<'_>, filter: &Filter) -> Result<Response, ApiError> {
    let limit = limit(query)?;
    let mut after = query
        .get("after")
        .map(after_cursor)
        .transpose()?
        .unwrap_or(0);
    let now = now(state);
    let mut found: Vec<(AssociateId, Arc<Presence>)> = Vec::with_capacity(limit);
    let mut scanned = 0;
    let mut more = true;
    while found.len() < limit && scanned < MAX_SCANNED && more {
        let chunk = state.store().presence_page(after, MAX_LIMIT).await?;
        // A full chunk may have users after it; a short one is the end of the table.
        let full = chunk.len() == MAX_LIMIT;
        let read = chunk.len();
        more = full;
        for (i, (id, presence)) in chunk.into_iter().enumerate() {
            scanned += 1;
            after = i64::from(id.get());
            if filter.passes(&PresenceBody::at(id, &presence, now)) {
                found.push((id, presence));
                if found.len() == limit {
                    // Those after it in this chunk are the next page's.
                    more = full || i + 1 < read;
                    break;
                }
            }
        }
    }
    let next = more.then(|| cursor(AssociateId::new(i32::try_from(after).unwrap_or(i32::MAX))));
    let body = PageBody {
        items: found
            .iter()
            .map(|(id, presence)| PresenceBody::at(*id, presence, now))
            .collect(),
        next,
    };
    Ok(json_bytes(StatusCode::OK, body.to_json()))
}

/// The entity tag of a revision.
fn etag(revision: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{revision}\"")).expect("digits and quotes")
}

/// Whether an `If-None-Match` names the revision (weakly: `W/` is ignored), or is `*`.
fn none_match_hits(headers: &HeaderMap, revision: i64) -> bool {
    let wanted = format!("\"{revision}\"");
    headers.get_all(IF_NONE_MATCH).iter().any(|value| {
        value.to_str().is_ok_and(|text| {
            text.split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == wanted)
        })
    })
}

/// The revision an `If-Match` requires: `None` without one or with `*` (any revision of an
/// existing user); a tag that names no revision this server gives is stale by definition.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    // Strong comparison, as RFC 9110 asks of If-Match: a weak tag never matches.
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| ApiError::PreconditionFailed(text.to_owned()))
}

fn presence_response(
    status: StatusCode,
    associate_id: AssociateId,
    presence: &Presence,
    now: i64,
) -> Response {
    let mut bytes = Vec::with_capacity(256);
    PresenceBody::at(associate_id, presence, now).write(&mut bytes);
    let mut response = json_bytes(status, bytes);
    response.headers_mut().insert(ETAG, etag(presence.revision));
    response
}

fn no_user(associate_id: AssociateId) -> ApiError {
    tracing::trace!(%associate_id, "no Service user");
    ApiError::NotFound
}

/// `GET /presence/v1/users/{id}`.
#[utoipa::path(get, path = "/presence/v1/users/{associateId}", tag = "presence",
    params(("associateId" = i32, Path, minimum = 1, example = 963),
        ("If-None-Match" = Option<String>, Header, description = "A 304 if it names the revision")),
    responses(
        (status = 200, description = "The presence now", body = PresenceBody,
            headers(("ETag" = String, description = "The revision"))),
        (status = 304, description = "If-None-Match names the revision",
            headers(("ETag" = String, description = "The revision"))),
        NoUser, Refusals))]
async fn user(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let (state, headers, uri) = (&state, &headers, &uri);
    as_caller(state, headers, |_| async move {
        let associate_id = associate_in_path(segment(uri, 0))?;
        let presence = state
            .store()
            .presence(associate_id)
            .await?
            .ok_or_else(|| no_user(associate_id))?;
        if none_match_hits(headers, presence.revision) {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            response.headers_mut().insert(ETAG, etag(presence.revision));
            return Ok(response);
        }
        Ok(presence_response(
            StatusCode::OK,
            associate_id,
            &presence,
            now(state),
        ))
    })
    .await
}

/// A JSON body (a request without `Content-Type` is read as JSON, as SuperOffice's
/// operations read it), or a 415 for another media type.
fn json_body(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let content_type = headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes);
    match BodyFormat::from_content_type(content_type) {
        Ok(BodyFormat::Json) => wire::object(body),
        Ok(_) => Err(ApiError::UnsupportedMediaType(
            "The presence API reads JSON only; send application/json".into(),
        )),
        Err(error) => Err(ApiError::UnsupportedMediaType(error.to_string())),
    }
}

/// `PUT /presence/v1/users/{id}/status`.
#[utoipa::path(put, path = "/presence/v1/users/{associateId}/status", tag = "presence",
    params(("associateId" = i32, Path, minimum = 1, example = 963),
        ("If-Match" = Option<String>, Header, description = "The revision it must still be")),
    request_body = openapi::StatusRequest,
    responses(
        (status = 200, description = "The new presence", body = PresenceBody,
            headers(("ETag" = String, description = "The revision"))),
        NoUser, Stale, NotJson, Refusals))]
async fn put_status(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (state, headers, uri) = (&state, &headers, &uri);
    as_caller(state, headers, |caller| async move {
        let associate_id = associate_in_path(segment(uri, 1))?;
        let members = json_body(headers, &body)?;
        let status = wire::status(&members)?;
        let message = wire::message(&members)?;
        let until = wire::time(&members, "until", false)?;
        let now = now(state);
        if let Some(until) = until {
            if status != UserStatus::StatusNotAvailable {
                return Err(invalid(
                    "until",
                    "until is only for StatusNotAvailable: a status that ends by itself".into(),
                ));
            }
            if until <= now {
                return Err(invalid("until", "until must lie in the future".into()));
            }
        }
        ensure_may_change(&caller, associate_id)?;
        if !caller.is_admin && !status.is_self_service() {
            return Err(ApiError::Forbidden(format!(
                "Only an administrator may set the status {status}; users may set StatusNormal or StatusNotAvailable"
            )));
        }
        let change = StatusChange {
            presence: UserPresenceStatus { status, message },
            until,
            if_revision: if_match(headers)?,
            at: now,
            actor: caller.actor(),
        };
        let wanted = change.if_revision;
        match state.store().set_status(associate_id, change).await? {
            StatusChanged::Stored => state.feed().changed_here(),
            StatusChanged::NoUser => return Err(no_user(associate_id)),
            StatusChanged::Stale => {
                return Err(ApiError::PreconditionFailed(
                    wanted.map_or_else(String::new, |w| w.to_string()),
                ));
            }
        }
        let presence = state
            .store()
            .read_presence(associate_id)
            .await?
            .ok_or_else(|| no_user(associate_id))?;
        Ok(presence_response(StatusCode::OK, associate_id, &presence, now))
    })
    .await
}

/// `GET /presence/v1/users/{id}/absences`: those current and to come, by start.
#[utoipa::path(get, path = "/presence/v1/users/{associateId}/absences", tag = "presence",
    params(("associateId" = i32, Path, minimum = 1, example = 963)),
    responses((status = 200, description = "Those current and to come, by start; next is null",
        body = PageBody<AbsenceBody>), NoUser, Refusals))]
async fn absences(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let (state, headers, uri) = (&state, &headers, &uri);
    as_caller(state, headers, |_| async move {
        let associate_id = associate_in_path(segment(uri, 1))?;
        let presence = state
            .store()
            .presence(associate_id)
            .await?
            .ok_or_else(|| no_user(associate_id))?;
        let body = PageBody {
            items: presence.planned(now(state)).map(AbsenceBody::new).collect(),
            next: None,
        };
        Ok(json(StatusCode::OK, &body))
    })
    .await
}

/// `POST /presence/v1/users/{id}/absences`.
#[utoipa::path(post, path = "/presence/v1/users/{associateId}/absences", tag = "presence",
    params(("associateId" = i32, Path, minimum = 1, example = 963)),
    request_body = openapi::AbsenceRequest,
    responses(
        (status = 201, description = "Planned", body = AbsenceBody,
            headers(("Location" = String, description = "The absence's address"))),
        NoUser, Overlaps, NotJson, Refusals))]
async fn plan_absence(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (state, headers, uri) = (&state, &headers, &uri);
    as_caller(state, headers, |caller| async move {
        let associate_id = associate_in_path(segment(uri, 1))?;
        let members = json_body(headers, &body)?;
        let from = wire::time(&members, "from", true)?.expect("required");
        let until = wire::time(&members, "until", true)?.expect("required");
        let message = wire::message(&members)?;
        let now = now(state);
        if from >= until {
            return Err(invalid("until", "until must come after from".into()));
        }
        if until - from > MAX_ABSENCE_MILLIS {
            return Err(invalid(
                "until",
                "An absence lasts at most a year (366 days)".into(),
            ));
        }
        if until <= now {
            return Err(invalid(
                "until",
                "The absence would have ended already".into(),
            ));
        }
        ensure_may_change(&caller, associate_id)?;
        let planned = state
            .store()
            .plan_absence(
                associate_id,
                NewAbsence {
                    from,
                    until,
                    message,
                    at: now,
                    actor: caller.actor(),
                },
            )
            .await?;
        match planned {
            AbsencePlanned::Planned(absence) => {
                state.feed().changed_here();
                let mut response = json(StatusCode::CREATED, &AbsenceBody::new(&absence));
                let location = format!("{}/{}", uri.path().trim_end_matches('/'), absence.id);
                if let Ok(location) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(LOCATION, location);
                }
                Ok(response)
            }
            AbsencePlanned::NoUser => Err(no_user(associate_id)),
            AbsencePlanned::Overlaps(other) => Err(ApiError::Conflict(format!(
                "The absence overlaps absence {} ({} to {}); change or cancel that one first",
                other.id,
                crate::timestamp::format(other.from),
                crate::timestamp::format(other.until)
            ))),
            AbsencePlanned::TooMany => Err(ApiError::Conflict(format!(
                "The user has {} absences planned already; cancel one first",
                crate::store::MAX_PLANNED_ABSENCES
            ))),
        }
    })
    .await
}

/// `DELETE /presence/v1/users/{id}/absences/{absenceId}`.
#[utoipa::path(delete, path = "/presence/v1/users/{associateId}/absences/{absenceId}",
    tag = "presence",
    params(("associateId" = i32, Path, minimum = 1, example = 963), ("absenceId" = i64, Path)),
    responses((status = 204, description = "Cancelled"), NoAbsence, Refusals))]
async fn cancel_absence(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let (state, headers, uri) = (&state, &headers, &uri);
    as_caller(state, headers, |caller| async move {
        let associate_id = associate_in_path(segment(uri, 2))?;
        let absence_text = segment(uri, 0);
        let absence_id = absence_text.parse::<i64>().map_err(|_| {
            invalid(
                "absenceId",
                format!("'{absence_text}' is not an absence id"),
            )
        })?;
        ensure_may_change(&caller, associate_id)?;
        if state
            .store()
            .cancel_absence(associate_id, absence_id, now(state), &caller.actor())
            .await?
        {
            state.feed().changed_here();
            Ok(StatusCode::NO_CONTENT.into_response())
        } else {
            Err(ApiError::NotFound)
        }
    })
    .await
}
