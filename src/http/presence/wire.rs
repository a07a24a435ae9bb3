//! The presence API's bodies: the resources as written (camelCase JSON, times in RFC 3339 UTC
//! with milliseconds), and the request bodies as read, each wrong member named.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::domain::{Absence, AssociateId, Message, Presence, UserStatus};
use crate::http::error::ApiError;
use crate::timestamp;

/// A time, written in RFC 3339 UTC with milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct Timestamp(pub i64);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = String::with_capacity(24);
        timestamp::push(&mut text, self.0);
        serializer.serialize_str(&text)
    }
}

/// One Service user's presence at one moment.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Presence)]
pub struct PresenceBody<'a> {
    #[schema(minimum = 1)]
    pub associate_id: i32,
    pub login: &'a str,
    /// The effective status.
    #[schema(value_type = super::openapi::StatusName)]
    pub status: &'static str,
    #[serde(serialize_with = "message_text")]
    #[schema(value_type = Option<String>, required = true, max_length = 255)]
    pub message: Message,
    /// When a timed status ends.
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub until: Option<Timestamp>,
    /// The planned absence in force.
    #[schema(required = true)]
    pub absence: Option<AbsenceBody<'a>>,
    /// Whether the user takes tickets now: the effective status is StatusNormal.
    pub available: bool,
    /// The revision of the user's last change, also the `ETag`.
    pub revision: i64,
    #[schema(value_type = String, format = DateTime)]
    pub changed_at: Timestamp,
}

impl<'a> PresenceBody<'a> {
    /// The presence at `now` (Unix milliseconds).
    pub fn at(associate_id: AssociateId, presence: &'a Presence, now: i64) -> Self {
        let effective = presence.at(now);
        Self {
            associate_id: associate_id.get(),
            login: &presence.login,
            status: effective.presence.status.name(),
            available: effective.available(),
            message: effective.presence.message,
            until: effective.until.map(Timestamp),
            absence: effective.absence.map(AbsenceBody::new),
            revision: presence.revision,
            changed_at: Timestamp(presence.changed_at),
        }
    }
}

fn message_text<S: Serializer>(message: &Message, serializer: S) -> Result<S::Ok, S::Error> {
    message.as_deref().serialize(serializer)
}

/// A planned absence.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Absence)]
pub struct AbsenceBody<'a> {
    pub id: i64,
    #[schema(value_type = String, format = DateTime)]
    pub from: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub until: Timestamp,
    #[schema(required = true, max_length = 255)]
    pub message: Option<&'a str>,
}

impl<'a> AbsenceBody<'a> {
    pub fn new(absence: &'a Absence) -> Self {
        Self {
            id: absence.id,
            from: Timestamp(absence.from),
            until: Timestamp(absence.until),
            message: absence.message.as_deref(),
        }
    }
}

/// The answer to a batch read: the presences found, and the ids that are no Service user.
#[derive(Serialize, ToSchema)]
#[schema(as = Batch)]
pub struct BatchBody<'a> {
    pub items: Vec<PresenceBody<'a>>,
    pub missing: Vec<i32>,
}

/// A page of a list, and the cursor of the next page (null on the last).
#[derive(Serialize, ToSchema)]
pub struct PageBody<T> {
    pub items: Vec<T>,
    #[schema(required = true)]
    pub next: Option<String>,
}

/// A JSON body as an object, or a 400 naming the body.
pub fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(members)) => Ok(members),
        Ok(_) => Err(ApiError::InvalidRequest(
            "The body must be a JSON object".into(),
        )),
        Err(error) => Err(ApiError::InvalidRequest(format!(
            "The body is not valid JSON: {error}"
        ))),
    }
}

/// A member that must be a string.
pub fn required_string<'a>(
    members: &'a Map<String, Value>,
    member: &'static str,
) -> Result<&'a str, ApiError> {
    match members.get(member) {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(invalid(member, format!("{member} must be a string"))),
        None => Err(invalid(member, format!("{member} is required"))),
    }
}

/// A member that may be missing or null, or else must be a string.
pub fn optional_string<'a>(
    members: &'a Map<String, Value>,
    member: &'static str,
) -> Result<Option<&'a str>, ApiError> {
    match members.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(invalid(
            member,
            format!("{member} must be a string or null"),
        )),
    }
}

pub fn status(members: &Map<String, Value>) -> Result<UserStatus, ApiError> {
    required_string(members, "status")?
        .parse()
        .map_err(|e: crate::domain::UnknownStatus| invalid("status", e.to_string()))
}

pub fn message(members: &Map<String, Value>) -> Result<Message, ApiError> {
    let text = optional_string(members, "message")?;
    Message::new(text.map(str::to_owned)).map_err(|e| invalid("message", e.to_string()))
}

/// A time member, required or not.
pub fn time(
    members: &Map<String, Value>,
    member: &'static str,
    required: bool,
) -> Result<Option<i64>, ApiError> {
    let text = if required {
        Some(required_string(members, member)?)
    } else {
        optional_string(members, member)?
    };
    text.map(|text| timestamp::parse(text).map_err(|e| invalid(member, format!("{member}: {e}"))))
        .transpose()
}

pub fn invalid(member: &'static str, detail: String) -> ApiError {
    ApiError::InvalidMember { member, detail }
}
