use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::LengthLimitError;

use super::{BodyFormat, DecodeError, FromWireFields, decode_fields};
use crate::http::error::ApiError;

impl From<DecodeError> for ApiError {
    fn from(error: DecodeError) -> Self {
        match error {
            DecodeError::Invalid(detail) => Self::InvalidRequest(detail),
            DecodeError::Unsupported(detail) => Self::UnsupportedMediaType(detail),
        }
    }
}

/// Reads an operation's request from the body, in whichever format `Content-Type` names, up
/// to `limit` bytes.
pub async fn read_body<T: FromWireFields>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<T, ApiError> {
    let format = BodyFormat::from_content_type(headers.get(CONTENT_TYPE).map(|v| v.as_bytes()))
        .map_err(|e| ApiError::UnsupportedMediaType(e.to_string()))?;
    let too_large = ApiError::PayloadTooLarge { limit };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Refused before reading a byte when the client says up front that it is too large.
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large);
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|error| {
        let error = error.into_inner();
        if error.is::<LengthLimitError>() {
            too_large.clone()
        } else {
            tracing::debug!(%error, "reading the request body failed");
            ApiError::InvalidRequest("The request body could not be read".into())
        }
    })?;
    let fields = decode_fields(format, &bytes)?;
    Ok(T::from_wire_fields(fields)?)
}
