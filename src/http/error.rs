//! Every failure a request can meet, and how each is written on the wire.
//!
//! Handlers return [`ApiError`]; its `IntoResponse` only marks the response, and the response
//! middleware ([`super::respond`]) writes the body in the format the caller's `Accept` asked
//! for, with the headers that belong to it. The two operations, which run without the
//! middleware, write theirs with the same code. Internal causes are logged where they happen
//! and never echoed.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};

use super::encode::{json_string, xml_element};
use super::negotiate::ResponseFormat;
use crate::store::StoreError;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The body is missing, unparseable or of the wrong shape; the detail names the member.
    #[error("The request is invalid: {0}")]
    InvalidRequest(String),
    #[error("Authentication is required: no valid credentials were given")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("The request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("There is no resource at this address")]
    NotFound,
    /// `allow` lists the methods the address does answer, as the `Allow` header says.
    #[error("This address answers only {allow}")]
    MethodNotAllowed { allow: &'static str },
    #[error("The server met an unexpected error")]
    Internal,
    /// The database cannot be reached just now; the client may retry.
    #[error("The service is unavailable: its database cannot be reached; try again shortly")]
    Unavailable,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `ErrorType` of SuperOffice's error object: the name of the .NET exception its
    /// server would have thrown.
    fn error_type(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "ArgumentException",
            Self::Unauthorized | Self::Forbidden(_) => "SoAccessDeniedException",
            Self::UnsupportedMediaType(_) => "UnsupportedMediaTypeException",
            Self::PayloadTooLarge { .. } => "RequestEntityTooLargeException",
            Self::NotFound => "NotFoundException",
            Self::MethodNotAllowed { .. } => "MethodNotAllowedException",
            Self::Internal => "Exception",
            Self::Unavailable => "ServiceUnavailableException",
        }
    }

    /// Writes the error body. A 400 is ASP.NET's model-state error
    /// (`Message` and `MessageDetail`); everything else is SuperOffice's error object.
    /// `source` is the request path, the `ErrorSource`.
    pub fn body(&self, format: ResponseFormat, source: &str) -> Bytes {
        let mut out = BytesMut::with_capacity(256);
        let message = self.to_string();
        match (self, format.is_xml()) {
            (Self::InvalidRequest(detail), false) => {
                out.put_slice(b"{\"Message\":\"The request is invalid.\",\"MessageDetail\":");
                json_string(&mut out, Some(detail));
                out.put_u8(b'}');
            }
            (Self::InvalidRequest(detail), true) => {
                out.put_slice(b"<Error><Message>The request is invalid.</Message>");
                xml_element(&mut out, "MessageDetail", Some(detail));
                out.put_slice(b"</Error>");
            }
            (_, false) => {
                out.put_slice(b"{\"Error\":true,\"ErrorType\":");
                json_string(&mut out, Some(self.error_type()));
                out.put_slice(b",\"ErrorMessage\":");
                json_string(&mut out, Some(&message));
                out.put_slice(b",\"ErrorSource\":");
                json_string(&mut out, Some(source));
                out.put_u8(b'}');
            }
            (_, true) => {
                out.put_slice(b"<Error><Error>true</Error>");
                xml_element(&mut out, "ErrorType", Some(self.error_type()));
                xml_element(&mut out, "ErrorMessage", Some(&message));
                xml_element(&mut out, "ErrorSource", Some(source));
                out.put_slice(b"</Error>");
            }
        }
        out.freeze()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status().into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            // The health monitor logs the outage once; each failed request only at debug.
            StoreError::Unavailable(reason) => {
                tracing::debug!(%reason, "the database is unavailable");
                Self::Unavailable
            }
            error => {
                tracing::error!(%error, "storage failed");
                Self::Internal
            }
        }
    }
}
