use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;

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
    let bytes = collect(body, limit).await.map_err(|error| match error {
        Collected::TooLarge => too_large,
        Collected::Failed(error) => {
            tracing::debug!(%error, "reading the request body failed");
            ApiError::InvalidRequest("The request body could not be read".into())
        }
    })?;
    let fields = decode_fields(format, &bytes)?;
    Ok(T::from_wire_fields(fields)?)
}

/// Why [`collect`] stopped short of the whole body.
enum Collected {
    TooLarge,
    Failed(axum::Error),
}

/// The whole body, refused once it passes `limit` bytes. A body that arrives in one piece,
/// as a small request's does, is kept as it came, without a copy.
async fn collect(mut body: Body, limit: usize) -> Result<Bytes, Collected> {
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(Collected::Failed)?.into_data() else {
            // Trailers carry nothing an operation reads.
            continue;
        };
        let received = joined.as_ref().map_or(first.len(), BytesMut::len);
        if received + data.len() > limit {
            return Err(Collected::TooLarge);
        }
        match &mut joined {
            Some(joined) => joined.extend_from_slice(&data),
            None if first.is_empty() => first = data,
            None => {
                let mut both = BytesMut::with_capacity(first.len() + data.len());
                both.extend_from_slice(&first);
                both.extend_from_slice(&data);
                joined = Some(both);
            }
        }
    }
    Ok(joined.map_or(first, BytesMut::freeze))
}
