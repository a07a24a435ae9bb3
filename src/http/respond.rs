//! The response middleware: picks the response format once per request and writes every
//! error in it, so that extractors and handlers only say which error happened.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{ALLOW, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;
use super::negotiate::ResponseFormat;
use crate::app::AppState;

/// The request's path as the client sent it, before case normalisation: the `ErrorSource` of
/// error bodies.
#[derive(Clone, Debug)]
pub struct ClientUri(pub Uri);

pub async fn respond(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let format = ResponseFormat::from_headers(request.headers());
    request.extensions_mut().insert(format);
    let source = match request.extensions().get::<ClientUri>() {
        Some(ClientUri(uri)) => uri.clone(),
        None => request.uri().clone(),
    };
    let mut response = crate::store::one_request(next.run(request)).await;
    if let Some(error) = response.extensions_mut().remove::<ApiError>() {
        if error == ApiError::Internal {
            tracing::error!(path = source.path(), "request failed");
        }
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, format.content_type());
        match error {
            ApiError::Unauthorized => {
                for challenge in state.challenges() {
                    headers.append(WWW_AUTHENTICATE, challenge.clone());
                }
            }
            ApiError::MethodNotAllowed { allow } => {
                headers.insert(ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::Unavailable => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        *response.body_mut() = Body::from(error.body(format, source.path()));
    }
    response
}
