//! The User agent's presence operations: `POST /api/v1/Agents/User/GetUserPresenceStatus` and
//! `POST /api/v1/Agents/User/SetUserPresenceStatus`.

use std::borrow::Cow;

use axum::body::Body;
use axum::http::HeaderValue;
use axum::http::Request;
use axum::http::header::{CONTENT_LANGUAGE, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::domain::{AssociateId, UserPresenceStatus};
use crate::http::access::{self, Associate};
use crate::http::auth::Caller;
use crate::http::body::{
    FromWireFields, GetUserPresenceStatusRequest, SetUserPresenceStatusRequest, collect_body,
    decode_body,
};
use crate::http::encode;
use crate::http::error::ApiError;
use crate::http::language::{self, RequestLanguage};
use crate::http::negotiate::ResponseFormat;
use crate::http::respond::{self, ClientUri};
use crate::http::select::Select;
use crate::http::state::AppState;
use crate::store;

pub const GET_USER_PRESENCE_STATUS: &str = "/api/v1/agents/user/getuserpresencestatus";
pub const SET_USER_PRESENCE_STATUS: &str = "/api/v1/agents/user/setuserpresencestatus";

/// The same addresses as SuperOffice's documentation and clients spell them. POSTs to them go
/// straight to [`call`], without the router (see `http::service`).
pub const GET_USER_PRESENCE_STATUS_AS_DOCUMENTED: &str =
    "/api/v1/Agents/User/GetUserPresenceStatus";
pub const SET_USER_PRESENCE_STATUS_AS_DOCUMENTED: &str =
    "/api/v1/Agents/User/SetUserPresenceStatus";

/// The two operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    GetUserPresenceStatus,
    SetUserPresenceStatus,
}

impl From<Operation> for crate::metrics::Operation {
    fn from(operation: Operation) -> Self {
        match operation {
            Operation::GetUserPresenceStatus => Self::GetUserPresenceStatus,
            Operation::SetUserPresenceStatus => Self::SetUserPresenceStatus,
        }
    }
}

/// Answers one call of an operation, its errors included, in the format `Accept` asks for
/// (`format`), given its body as the service read it (`http::service`).
///
/// This is the whole of an operation, with no extractors or middleware: the service calls it
/// directly for POSTs to the documented addresses, which is most of the traffic, and the
/// router, through [`route`], for any other spelling.
pub async fn call(
    state: AppState,
    operation: Operation,
    format: ResponseFormat,
    parts: &Parts,
    body: Result<Bytes, ApiError>,
) -> Response {
    // Who the caller turned out to be, for the access log, whatever the answer.
    let mut caller = None;
    let answered = store::one_request(async {
        match operation {
            Operation::GetUserPresenceStatus => {
                get_user_presence_status(&state, format, parts, body, &mut caller).await
            }
            Operation::SetUserPresenceStatus => {
                set_user_presence_status(&state, format, parts, body, &mut caller).await
            }
        }
    })
    .await;
    let mut response = answered.unwrap_or_else(|error| {
        let source = ClientUri::of(&parts.uri, &parts.extensions).path();
        let mut response = respond::error_response(&state, format, source, error);
        if respond::from_a_page(&parts.headers) {
            respond::without_basic_challenge(&mut response);
        }
        response
    });
    if let Some(associate_id) = caller
        && access::is_on()
    {
        response.extensions_mut().insert(Associate(associate_id));
    }
    response
}

/// [`call`] through the router: the body, read whole by the service already, is taken again.
pub async fn route(state: AppState, operation: Operation, request: Request<Body>) -> Response {
    let format = ResponseFormat::from_headers(request.headers());
    let (parts, body) = request.into_parts();
    let body = collect_body(&parts.headers, body, state.settings().body_limit).await;
    call(state, operation, format, &parts, body).await
}

/// What every call carries besides its format, checked in the order of the error table: the
/// credentials first, then the language headers, then the body.
struct Arguments<T> {
    caller: Caller,
    language: RequestLanguage,
    select: Select,
    request: T,
}

impl<T: FromWireFields> Arguments<T> {
    /// `caller_seen` is given the caller's associate as soon as the credentials are checked.
    async fn read(
        state: &AppState,
        parts: &Parts,
        body: Result<Bytes, ApiError>,
        caller_seen: &mut Option<AssociateId>,
    ) -> Result<Self, ApiError> {
        let caller = state
            .auth()
            .authenticate(state.store(), &parts.headers)
            .await?;
        *caller_seen = Some(caller.associate_id);
        let language = RequestLanguage::from_headers(&parts.headers)?;
        let select = Select::from_query(parts.uri.query());
        let request = decode_body(&parts.headers, body)?;
        caller.ensure_user_agent(state.auth().settings().installation)?;
        Ok(Self {
            caller,
            language,
            select,
            request,
        })
    }
}

/// Reads any associate's presence: every authenticated user may.
async fn get_user_presence_status(
    state: &AppState,
    format: ResponseFormat,
    parts: &Parts,
    body: Result<Bytes, ApiError>,
    caller_seen: &mut Option<AssociateId>,
) -> Result<Response, ApiError> {
    let Arguments {
        language,
        select,
        request,
        ..
    } = Arguments::<GetUserPresenceStatusRequest>::read(state, parts, body, caller_seen).await?;
    let presence = state.store().presence(request.associate_id).await?;
    // The presence at this moment: a timed status or a planned absence may rule it.
    let now = state.auth().clock().now_millis();
    let effective = presence.as_ref().map(|p| p.at(now).presence);
    reply(state, format, select, language, effective.as_ref()).await
}

/// Stores an associate's presence and answers it as stored.
///
/// A user may set their own status to present or not present; an administrator may set any
/// status for anyone.
async fn set_user_presence_status(
    state: &AppState,
    format: ResponseFormat,
    parts: &Parts,
    body: Result<Bytes, ApiError>,
    caller_seen: &mut Option<AssociateId>,
) -> Result<Response, ApiError> {
    let Arguments {
        caller,
        language,
        select,
        request,
    } = Arguments::<SetUserPresenceStatusRequest>::read(state, parts, body, caller_seen).await?;
    let status = request.user_presence_status.status;
    if !caller.is_admin {
        if caller.associate_id != request.associate_id {
            return Err(ApiError::Forbidden(
                "Only an administrator may set another user's presence status".into(),
            ));
        }
        if !status.is_self_service() {
            return Err(ApiError::Forbidden(format!(
                "Only an administrator may set the status {status}; users may set StatusNormal or StatusNotAvailable"
            )));
        }
    }
    let stored = state
        .store()
        .set_presence(
            request.associate_id,
            request.user_presence_status,
            &caller.actor(),
        )
        .await?;
    if stored.is_some() {
        state.feed().changed_here();
        // Debug, not info: at info every Set would write a line to the log, synchronously,
        // on the hot path.
        tracing::debug!(
            associate_id = %request.associate_id,
            %status,
            by = %caller.associate_id,
            "presence status set"
        );
    }
    // Stored exactly as given; translated, like every answer, only on the way out.
    reply(state, format, select, language, stored.as_ref()).await
}

/// Writes the answer: `$select` first, then the message in the caller's language.
async fn reply(
    state: &AppState,
    format: ResponseFormat,
    select: Select,
    language: RequestLanguage,
    presence: Option<&UserPresenceStatus>,
) -> Result<Response, ApiError> {
    // The view borrows the stored message; translation replaces it only when it changes.
    let mut view = presence.map(|p| select.apply(p));
    if let (Some(target), Some(view)) = (language.language(), view.as_mut())
        && let Some(Cow::Borrowed(text)) = view.message
    {
        // Boxed: most calls ask for no language, and this future is larger than the rest of
        // the call's together.
        view.message = Some(Box::pin(language::translate(state.store(), text, target)).await?);
    }
    let body = encode::presence(format, view.as_ref());
    let mut response = ([(CONTENT_TYPE, format.content_type())], body).into_response();
    if let Some(code) = language.choice.content_language() {
        response
            .headers_mut()
            .insert(CONTENT_LANGUAGE, HeaderValue::from_static(code));
    }
    Ok(response)
}

/// `GET` on an operation's address describes the call and invokes nothing.
pub async fn describe_get_user_presence_status() -> Response {
    describe(
        "POST /api/v1/Agents/User/GetUserPresenceStatus\n\
         \n\
         Returns a Service user's presence status.\n\
         \n\
         Request body:  {\"AssociateId\": 963}\n\
         Response body: {\"Status\": \"StatusNotAvailable\", \"Message\": \"Back at 14:00\"},\n\
         \x20              or null when the associate is no Service user.\n\
         Query: $select=Status,Message selects members; the others come back null.\n",
    )
}

/// `GET` on an operation's address describes the call and invokes nothing.
pub async fn describe_set_user_presence_status() -> Response {
    describe(
        "POST /api/v1/Agents/User/SetUserPresenceStatus\n\
         \n\
         Sets a Service user's presence status and returns it as stored.\n\
         Users may set their own status to StatusNormal or StatusNotAvailable;\n\
         administrators may set any status for anyone.\n\
         \n\
         Request body:  {\"AssociateId\": 963, \"UserPresenceStatus\": {\"Status\": \"StatusNotAvailable\", \"Message\": \"Back at 14:00\"}}\n\
         Response body: the stored UserPresenceStatus, or null when the associate is no Service user.\n",
    )
}

fn describe(text: &'static str) -> Response {
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        Bytes::from_static(text.as_bytes()),
    )
        .into_response()
}
