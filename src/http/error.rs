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
use crate::repeated;
use crate::store::StoreError;

/// The most of the request's path an error body echoes as its `ErrorSource`, in bytes: a
/// client sending a 60 KB path gets a short answer, not its path back.
const MAX_SOURCE_BYTES: usize = 256;

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
    /// The client may retry: `Retry-After` says when.
    #[error("The service is unavailable: {0}")]
    Unavailable(Unavailability),
    /// The request, its body included, did not arrive within the request timeout.
    #[error("The request took too long to arrive")]
    RequestTimeout,
    /// A transfer coding other than chunked.
    #[error("The transfer coding {0:?} is not supported; send the body as it is, or chunked")]
    NotImplemented(String),
    /// One member of the request (body member or query parameter) is wrong: the presence
    /// API's 400, which names it.
    #[error("{detail}")]
    InvalidMember {
        member: &'static str,
        detail: String,
    },
    /// The request conflicts with what is stored (an absence overlapping another).
    #[error("{0}")]
    Conflict(String),
    /// What was asked for is no longer kept (a history cursor past retention).
    #[error("{0}")]
    Gone(String),
    /// `If-Match` named a revision that is no longer the resource's.
    #[error("The resource has changed since revision {0}; read it again")]
    PreconditionFailed(String),
}

/// Why a request is answered 503.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unavailability {
    /// The database cannot be reached or did not answer in time.
    Database,
    /// The disk holding the database is full.
    DiskFull,
    /// The server is at a limit it keeps against overload: too many requests in flight, or
    /// too many Sets waiting for their commit.
    Busy,
}

impl std::fmt::Display for Unavailability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Database => "its database cannot be reached; try again shortly",
            Self::DiskFull => "it cannot store anything just now; try again later",
            Self::Busy => "it has more requests than it can take; try again shortly",
        })
    }
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
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::InvalidMember { .. } => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Gone(_) => StatusCode::GONE,
            Self::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
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
            Self::Unavailable(_) => "ServiceUnavailableException",
            Self::RequestTimeout => "RequestTimeoutException",
            Self::NotImplemented(_) => "NotImplementedException",
            Self::InvalidMember { .. } => "ArgumentException",
            Self::Conflict(_) => "ConflictException",
            Self::Gone(_) => "GoneException",
            Self::PreconditionFailed(_) => "PreconditionFailedException",
        }
    }

    /// Writes the error body. A 400 is ASP.NET's model-state error
    /// (`Message` and `MessageDetail`); everything else is SuperOffice's error object.
    /// `source` is the request path, the `ErrorSource`.
    pub fn body(&self, format: ResponseFormat, source: &str) -> Bytes {
        let mut out = BytesMut::with_capacity(256);
        let message = self.to_string();
        let source = &*shortened(source);
        match (self, format.is_xml()) {
            (Self::InvalidMember { detail, .. }, false) | (Self::InvalidRequest(detail), false) => {
                out.put_slice(b"{\"Message\":\"The request is invalid.\",\"MessageDetail\":");
                json_string(&mut out, Some(detail));
                out.put_u8(b'}');
            }
            (Self::InvalidMember { detail, .. }, true) | (Self::InvalidRequest(detail), true) => {
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

/// At most [`MAX_SOURCE_BYTES`] of `source`, cut at a character boundary, with `...` when cut.
fn shortened(source: &str) -> std::borrow::Cow<'_, str> {
    if source.len() <= MAX_SOURCE_BYTES {
        return std::borrow::Cow::Borrowed(source);
    }
    let mut cut = MAX_SOURCE_BYTES;
    while !source.is_char_boundary(cut) {
        cut -= 1;
    }
    std::borrow::Cow::Owned(format!("{}...", &source[..cut]))
}

impl From<StoreError> for ApiError {
    /// Each failure that can repeat for every request is logged once, then counted (see
    /// `repeated`); a full disk is named as one.
    fn from(error: StoreError) -> Self {
        match error {
            // The health monitor logs the outage once; each failed request only at debug.
            StoreError::Unavailable(reason) => {
                tracing::debug!(%reason, "the database is unavailable");
                Self::Unavailable(Unavailability::Database)
            }
            StoreError::DiskFull(detail) => {
                repeated::DISK_FULL.report(|unlogged| {
                    tracing::error!(%detail, unlogged, "the disk is full: nothing can be stored until room is made");
                });
                Self::Unavailable(Unavailability::DiskFull)
            }
            StoreError::Busy => {
                repeated::OVERLOADED.report(|unlogged| {
                    tracing::warn!(
                        unlogged,
                        "a Set was refused: too many are waiting for a commit"
                    );
                });
                Self::Unavailable(Unavailability::Busy)
            }
            error => {
                repeated::STORAGE_FAILED.report(|unlogged| {
                    tracing::error!(%error, unlogged, "storage failed");
                });
                Self::Internal
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_and_a_full_queue_are_503s_named_apart() {
        let full = ApiError::from(StoreError::DiskFull("database or disk is full".into()));
        assert_eq!(full, ApiError::Unavailable(Unavailability::DiskFull));
        assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
        let busy = ApiError::from(StoreError::Busy);
        assert_eq!(busy, ApiError::Unavailable(Unavailability::Busy));
        assert_ne!(full.to_string(), busy.to_string());
        let unreachable = ApiError::from(StoreError::Unavailable("refused".into()));
        assert_eq!(unreachable, ApiError::Unavailable(Unavailability::Database));
    }

    #[test]
    fn the_error_source_is_cut_at_a_character_boundary() {
        let source = format!("/{}", "å".repeat(300));
        let body = ApiError::NotFound.body(ResponseFormat::ApplicationJson, &source);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let echoed = json["ErrorSource"].as_str().unwrap();
        assert!(echoed.len() <= MAX_SOURCE_BYTES + 3);
        assert!(echoed.ends_with("..."));
        assert_eq!(shortened("/short"), "/short");
    }
}
