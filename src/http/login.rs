//! The server's own sign-in for browsers: `GET /login` (the sign-in page), `POST /login` (sets
//! the session cookies) and `POST /logout`.

use axum::extract::{Request, State};

use axum::http::header::{CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::auth::PasswordCheck;
use super::auth::session::{self, clearing_cookies, session_cookies};
use super::body::{BodyFormat, form_pairs};
use super::error::ApiError;
use crate::http::access::Associate;
use crate::http::state::AppState;
use crate::secret::SecretHash;
use crate::store::TokenKind;
use crate::tickets;

pub const LOGIN: &str = "/login";
pub const LOGOUT: &str = "/logout";

/// The sign-in page, which is also the board's (`http::board`) for a browser without a
/// session.
pub async fn sign_in_page(State(state): State<AppState>, request: Request) -> Response {
    super::board::to_canonical(&request, &state.settings().base_path, LOGIN)
        .unwrap_or_else(super::board::sign_in_page)
}

/// Signs in with `login` and `password` (a form or JSON) and starts a session.
pub async fn sign_in(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let auth = state.auth();
    if !auth.accepts_passwords() || !auth.settings().ticket {
        return Err(ApiError::Forbidden(
            "This server does not accept passwords for browser sessions".into(),
        ));
    }
    session::ensure_same_origin(request.headers(), auth.settings().secure_cookies)
        .map_err(|_| ApiError::Forbidden("Sign-in from another site is not allowed".into()))?;
    let (login, password) = read_credentials(&state, request).await?;
    let user = match auth
        .basic()
        .check_password(state.store(), auth.clock(), &login, &password)
        .await?
    {
        PasswordCheck::Valid(user) => user,
        PasswordCheck::Invalid | PasswordCheck::LockedOut => {
            crate::metrics::authentication_failure(crate::metrics::Scheme::SignIn);
            return Err(ApiError::Unauthorized);
        }
    };
    let ticket = tickets::issue_ticket(state.store(), auth.clock(), user.associate_id).await?;
    tracing::info!(%login, associate_id = %user.associate_id, "signed in");
    let mut response = (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        format!("{{\"AssociateId\":{}}}", user.associate_id),
    )
        .into_response();
    for cookie in session_cookies(&ticket, cookie_path(&state), auth.settings().secure_cookies) {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
        .extensions_mut()
        .insert(Associate(user.associate_id));
    Ok(response)
}

/// Ends the session the cookies carry; the XSRF token must come along, as for any call.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let auth = state.auth();
    let ticket = session::session_ticket(&headers, auth.settings().secure_cookies)?;
    let owner = tickets::check_ticket(state.store(), auth.clock(), &ticket)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    state
        .store()
        .revoke_token(
            TokenKind::Ticket,
            owner.associate_id,
            SecretHash::of(&ticket),
        )
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .extensions_mut()
        .insert(Associate(owner.associate_id));
    for cookie in clearing_cookies(cookie_path(&state), auth.settings().secure_cookies) {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    Ok(response)
}

pub(crate) fn cookie_path(state: &AppState) -> &str {
    match state.settings().base_path.as_str() {
        "" => "/",
        base => base,
    }
}

async fn read_credentials(
    state: &AppState,
    request: Request,
) -> Result<(String, String), ApiError> {
    let format = BodyFormat::from_content_type(
        request
            .headers()
            .get(CONTENT_TYPE)
            .map(HeaderValue::as_bytes),
    )
    .map_err(|e| ApiError::UnsupportedMediaType(e.to_string()))?;
    let limit = state.settings().body_limit;
    let body = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })?;
    let (mut login, mut password) = (None, None);
    let mut take = |name: &str, value: String| {
        if name.eq_ignore_ascii_case("login") {
            login = Some(value);
        } else if name.eq_ignore_ascii_case("password") {
            password = Some(value);
        }
    };
    match format {
        BodyFormat::Form => {
            for (name, value) in form_pairs(&body)? {
                take(&name, value.into_owned());
            }
        }
        BodyFormat::Json => {
            let Ok(Value::Object(members)) = serde_json::from_slice::<Value>(&body) else {
                return Err(ApiError::InvalidRequest(
                    "The body must be a JSON object with login and password".into(),
                ));
            };
            for (name, value) in members {
                if let Value::String(value) = value {
                    take(&name, value);
                }
            }
        }
        BodyFormat::Xml => {
            return Err(ApiError::UnsupportedMediaType(
                "Sign in with a form or JSON".into(),
            ));
        }
    }
    match (login, password) {
        (Some(login), Some(password)) if !login.is_empty() => Ok((login, password)),
        _ => Err(ApiError::InvalidRequest(
            "login and password are required".into(),
        )),
    }
}
