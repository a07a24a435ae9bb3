//! Request bodies: JSON, XML and form, switched on `Content-Type`, all decoded into the same
//! [`WireFields`] and validated once into the operations' requests.
//!
//! Every format matches member names case-insensitively (the official TypeScript client sends
//! `associateId`), ignores unknown members, and accepts `AssociateId` as a number or a numeric
//! string, as SuperOffice's own server does.

mod extract;
mod fields;
mod form;
mod json;
mod media_type;
mod xml;

pub use extract::{collect_body, decode_body};
pub use fields::{Scalar, UserPresenceStatusFields, WireFields, WirePresence};
pub use form::pairs as form_pairs;
pub use media_type::{BodyFormat, MediaTypeError};

use axum::BoxError;
use bytes::Bytes;

use crate::domain::{AssociateId, Message, UserPresenceStatus, UserStatus};

/// A request's body as an operation reads it: hyper's own for a POST to a documented address,
/// with no box or error mapping around it, as every Get would pay for them; or axum's through
/// the router.
pub trait RequestBody: hyper::body::Body<Data = Bytes, Error: Into<BoxError>> + Send {}

impl<B> RequestBody for B where B: hyper::body::Body<Data = Bytes, Error: Into<BoxError>> + Send {}

/// Why a body could not be turned into a request: the 400 and 415 rows of the error table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not parseable or of the wrong shape: a 400 whose detail names the member.
    #[error("{0}")]
    Invalid(String),
    /// A media type or character set the server does not read: a 415.
    #[error("{0}")]
    Unsupported(String),
}

/// `GetUserPresenceStatus`'s request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetUserPresenceStatusRequest {
    pub associate_id: AssociateId,
}

/// `SetUserPresenceStatus`'s request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetUserPresenceStatusRequest {
    pub associate_id: AssociateId,
    pub user_presence_status: UserPresenceStatus,
}

/// A request that can be validated out of the decoded members.
pub trait FromWireFields: Sized {
    fn from_wire_fields(fields: WireFields) -> Result<Self, DecodeError>;
}

impl FromWireFields for GetUserPresenceStatusRequest {
    fn from_wire_fields(fields: WireFields) -> Result<Self, DecodeError> {
        Ok(Self {
            associate_id: associate_id(fields.associate_id)?,
        })
    }
}

impl FromWireFields for SetUserPresenceStatusRequest {
    fn from_wire_fields(fields: WireFields) -> Result<Self, DecodeError> {
        let associate_id = associate_id(fields.associate_id)?;
        let presence = match fields.user_presence_status {
            WirePresence::Object(presence) => presence,
            WirePresence::Absent | WirePresence::Null => {
                return Err(invalid("UserPresenceStatus is required"));
            }
            WirePresence::NotAnObject => {
                return Err(invalid(
                    "UserPresenceStatus must be an object with Status and Message",
                ));
            }
        };
        Ok(Self {
            associate_id,
            user_presence_status: UserPresenceStatus {
                status: status(presence.status)?,
                message: message(presence.message)?,
            },
        })
    }
}

/// Decodes a body of the given `Content-Type` (`None` when the header is missing, read as
/// JSON) into an operation's request.
pub fn decode<T: FromWireFields>(
    content_type: Option<&[u8]>,
    body: &[u8],
) -> Result<T, DecodeError> {
    let format = BodyFormat::from_content_type(content_type)
        .map_err(|e| DecodeError::Unsupported(e.to_string()))?;
    T::from_wire_fields(decode_fields(format, body)?)
}

/// Decodes a body into its members, before any validation.
pub fn decode_fields(format: BodyFormat, body: &[u8]) -> Result<WireFields, DecodeError> {
    // Windows tools like to start UTF-8 with a byte-order mark; .NET skips it, and so do we.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid("The request body is empty"));
    }
    match format {
        BodyFormat::Json => json::decode(body),
        BodyFormat::Xml => xml::decode(body),
        BodyFormat::Form => form::decode(body),
    }
}

fn invalid(detail: impl Into<String>) -> DecodeError {
    DecodeError::Invalid(detail.into())
}

fn associate_id(value: Option<Scalar>) -> Result<AssociateId, DecodeError> {
    let out_of_range = |shown: &dyn std::fmt::Display| {
        invalid(format!(
            "AssociateId must be a 32-bit integer; {shown} is not"
        ))
    };
    match value {
        None | Some(Scalar::Null) => Err(invalid("AssociateId is required")),
        Some(Scalar::Integer(n)) => i32::try_from(n)
            .map(AssociateId::new)
            .map_err(|_| out_of_range(&n)),
        Some(Scalar::Text(text)) => text.parse().map_err(|_| out_of_range(&Shown(&text))),
        Some(other) => Err(out_of_range(&other.kind())),
    }
}

fn status(value: Option<Scalar>) -> Result<UserStatus, DecodeError> {
    let unknown = |shown: &dyn std::fmt::Display| {
        invalid(format!(
            "UserPresenceStatus.Status must be one of {}; {shown} is not",
            UserStatus::NAMES.join(", ")
        ))
    };
    match value {
        None | Some(Scalar::Null) => Err(invalid("UserPresenceStatus.Status is required")),
        Some(Scalar::Integer(n)) => i64::try_from(n)
            .ok()
            .and_then(UserStatus::from_number)
            .ok_or_else(|| unknown(&n)),
        Some(Scalar::Text(text)) => text.parse().map_err(|_| unknown(&Shown(&text))),
        Some(other) => Err(unknown(&other.kind())),
    }
}

fn message(value: Option<Scalar>) -> Result<Message, DecodeError> {
    let text = match value {
        None | Some(Scalar::Null) => return Ok(Message::none()),
        Some(Scalar::Text(text)) => text,
        Some(other) => {
            return Err(invalid(format!(
                "UserPresenceStatus.Message must be a string or null, not {}",
                other.kind()
            )));
        }
    };
    if let Some(c) = text.chars().find(|&c| !is_xml_char(c)) {
        // Such a character could never be written back in an XML response.
        return Err(invalid(format!(
            "UserPresenceStatus.Message contains the control character U+{:04X}",
            u32::from(c)
        )));
    }
    Message::new(Some(text)).map_err(|e| invalid(format!("UserPresenceStatus.{e}")))
}

/// The characters XML 1.0 can carry.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Shows a client's value in an error detail: quoted, and cut short so a huge body is not
/// echoed back.
struct Shown<'a>(&'a str);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MAX: usize = 40;
        match self.0.char_indices().nth(MAX) {
            Some((cut, _)) => write!(f, "{:?}...", &self.0[..cut]),
            None => write!(f, "{:?}", self.0),
        }
    }
}

#[cfg(test)]
mod tests;
