use axum::http::HeaderMap;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use bytes::Bytes;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};

use super::{BodyFormat, DecodeError, FromWireFields, RequestBody, decode_fields};
use crate::http::error::ApiError;

impl From<DecodeError> for ApiError {
    fn from(error: DecodeError) -> Self {
        match error {
            DecodeError::Invalid(detail) => Self::InvalidRequest(detail),
            DecodeError::Unsupported(detail) => Self::UnsupportedMediaType(detail),
        }
    }
}

/// Reads a request's whole body, up to `limit` bytes. An error means some of it was left
/// unread: a 413 when it is (or says it is) larger, a 400 when it could not be read.
pub async fn collect_body(
    headers: &HeaderMap,
    body: impl RequestBody,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = ApiError::PayloadTooLarge { limit };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Refused before reading a byte when the client says up front that it is too large.
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large);
    }
    // `Collected::to_bytes` keeps a body that arrived in one frame, as a small request's
    // does, without a copy.
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(too_large),
        Err(error) => {
            tracing::debug!(%error, "reading the request body failed");
            Err(ApiError::InvalidRequest(
                "The request body could not be read".into(),
            ))
        }
    }
}

/// Decodes an operation's request from its body as [`collect_body`] read it, in whichever
/// format `Content-Type` names: an unsupported one is a 415 before anything about the body.
pub fn decode_body<T: FromWireFields>(
    headers: &HeaderMap,
    body: Result<Bytes, ApiError>,
) -> Result<T, ApiError> {
    let format = BodyFormat::from_content_type(headers.get(CONTENT_TYPE).map(|v| v.as_bytes()))
        .map_err(|e| ApiError::UnsupportedMediaType(e.to_string()))?;
    let fields = decode_fields(format, &body?)?;
    Ok(T::from_wire_fields(fields)?)
}
