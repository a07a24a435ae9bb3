//! The User agent's presence operations: `POST /api/v1/Agents/User/GetUserPresenceStatus` and
//! `POST /api/v1/Agents/User/SetUserPresenceStatus`.

use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::app::AppState;
use crate::domain::UserPresenceStatus;
use crate::http::auth::Caller;
use crate::http::body::{GetUserPresenceStatusRequest, SetUserPresenceStatusRequest, WireBody};
use crate::http::encode;
use crate::http::error::ApiError;
use crate::http::negotiate::ResponseFormat;
use crate::http::select::Select;

pub const GET_USER_PRESENCE_STATUS: &str = "/api/v1/agents/user/getuserpresencestatus";
pub const SET_USER_PRESENCE_STATUS: &str = "/api/v1/agents/user/setuserpresencestatus";

/// Reads any associate's presence: every authenticated user may.
pub async fn get_user_presence_status(
    State(state): State<AppState>,
    caller: Caller,
    format: ResponseFormat,
    select: Select,
    WireBody(request): WireBody<GetUserPresenceStatusRequest>,
) -> Result<Response, ApiError> {
    caller.ensure_user_agent(state.auth().settings().installation)?;
    let presence = state.store().presence(request.associate_id).await?;
    Ok(reply(format, select, presence.as_ref()))
}

/// Stores an associate's presence and answers it as stored.
///
/// A user may set their own status to present or not present; an administrator may set any
/// status for anyone.
pub async fn set_user_presence_status(
    State(state): State<AppState>,
    caller: Caller,
    format: ResponseFormat,
    select: Select,
    WireBody(request): WireBody<SetUserPresenceStatusRequest>,
) -> Result<Response, ApiError> {
    caller.ensure_user_agent(state.auth().settings().installation)?;
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
        .set_presence(request.associate_id, request.user_presence_status)
        .await?;
    if stored.is_some() {
        tracing::info!(
            associate_id = %request.associate_id,
            %status,
            by = %caller.associate_id,
            "presence status set"
        );
    }
    Ok(reply(format, select, stored.as_ref()))
}

fn reply(
    format: ResponseFormat,
    select: Select,
    presence: Option<&UserPresenceStatus>,
) -> Response {
    let view = presence.map(|p| select.apply(p));
    let body = encode::presence(format, view.as_ref());
    ([(CONTENT_TYPE, format.content_type())], body).into_response()
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
