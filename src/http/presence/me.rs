//! `GET /presence/v1/me`: who the caller is. A page signed in by cookie cannot read its own
//! session, yet must know whose row is the user's and whether they may change the others.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use super::openapi::Refusals;
use super::{as_caller, json};
use crate::http::auth::{Scheme, session};
use crate::http::error::ApiError;
use crate::http::login;
use crate::http::state::AppState;

/// The caller.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Me)]
pub struct MeBody {
    #[schema(minimum = 1)]
    pub associate_id: i32,
    pub login: String,
    /// Whether the caller may change every user's presence, not only their own.
    pub administrator: bool,
}

#[utoipa::path(get, path = "/presence/v1/me", tag = "presence",
    responses(
        (status = 200, description = "The caller", body = MeBody),
        Refusals))]
pub async fn me(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let state = &state;
    let headers = &headers;
    as_caller(state, headers, |caller| async move {
        // A caller is a Service user; one removed since their credentials were checked is
        // no longer anyone.
        let presence = state
            .store()
            .presence(caller.associate_id)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        let mut response = json(
            StatusCode::OK,
            &MeBody {
                associate_id: caller.associate_id.get(),
                login: presence.login.to_string(),
                administrator: caller.is_admin,
            },
        );
        // A session's cookies last the ticket's lifetime from when they were set, while the
        // ticket's own lifetime starts again at each use: a page that asks who is signed in
        // now and then (the board does) keeps its cookies as long as the ticket.
        if caller.scheme == Scheme::Session
            && let Some(ticket) = session::session_cookie(headers)
        {
            let secure = state.auth().settings().secure_cookies;
            for cookie in session::session_cookies(&ticket, login::cookie_path(state), secure) {
                response.headers_mut().append(SET_COOKIE, cookie);
            }
        }
        Ok(response)
    })
    .await
}
