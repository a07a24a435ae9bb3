//! Who is calling: the one extractor that knows every authentication scheme. Handlers take a
//! [`Caller`] and never learn which scheme produced it.

mod basic;
pub mod cache;

use axum::extract::FromRequestParts;
use axum::http::HeaderValue;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use tracing::debug;

pub use basic::BasicAuthenticator;

use super::error::ApiError;
use crate::app::AppState;
use crate::domain::AssociateId;

/// An authenticated caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub associate_id: AssociateId,
    pub is_admin: bool,
}

/// The schemes this server accepts, for the `WWW-Authenticate` headers of a 401.
pub fn challenges() -> Vec<HeaderValue> {
    vec![HeaderValue::from_static(
        r#"Basic realm="SuperOffice", charset="UTF-8""#,
    )]
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    #[tracing::instrument(name = "authenticate", skip_all)]
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            debug!("no Authorization header");
            return Err(ApiError::Unauthorized);
        };
        let Some((scheme, credentials)) = header
            .to_str()
            .ok()
            .and_then(|value| value.trim().split_once(' '))
        else {
            debug!("malformed Authorization header");
            return Err(ApiError::Unauthorized);
        };
        if scheme.eq_ignore_ascii_case("Basic") {
            return state
                .basic()
                .authenticate(state.store(), credentials.trim())
                .await;
        }
        debug!(scheme, "unsupported authentication scheme");
        Err(ApiError::Unauthorized)
    }
}
