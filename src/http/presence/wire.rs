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
        let digits = timestamp::digits(self.0);
        serializer.serialize_str(std::str::from_utf8(&digits).expect("ASCII digits"))
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

impl PresenceBody<'_> {
    /// Writes the presence as its derived `Serialize` does, byte for byte (a test holds the
    /// two together), without serde: a batch writes a thousand of these, and serde_json
    /// escapes every member name afresh and formats every time into a `String`
    /// (BENCHMARKS.md). Batches keep what it writes (`rendered.rs`).
    pub fn write(&self, out: &mut Vec<u8>) {
        let mut integers = itoa::Buffer::new();
        out.extend_from_slice(b"{\"associateId\":");
        out.extend_from_slice(integers.format(self.associate_id).as_bytes());
        out.extend_from_slice(b",\"login\":");
        write_string(out, Some(self.login));
        out.extend_from_slice(b",\"status\":\"");
        out.extend_from_slice(self.status.as_bytes());
        out.extend_from_slice(b"\",\"message\":");
        write_string(out, self.message.as_deref());
        out.extend_from_slice(b",\"until\":");
        write_time(out, self.until);
        out.extend_from_slice(b",\"absence\":");
        match &self.absence {
            None => out.extend_from_slice(b"null"),
            Some(absence) => {
                out.extend_from_slice(b"{\"id\":");
                out.extend_from_slice(integers.format(absence.id).as_bytes());
                out.extend_from_slice(b",\"from\":");
                write_time(out, Some(absence.from));
                out.extend_from_slice(b",\"until\":");
                write_time(out, Some(absence.until));
                out.extend_from_slice(b",\"message\":");
                write_string(out, absence.message);
                out.push(b'}');
            }
        }
        out.extend_from_slice(if self.available {
            b",\"available\":true,\"revision\":"
        } else {
            b",\"available\":false,\"revision\":"
        });
        out.extend_from_slice(integers.format(self.revision).as_bytes());
        out.extend_from_slice(b",\"changedAt\":");
        write_time(out, Some(self.changed_at));
        out.push(b'}');
    }
}

/// A JSON string, or `null`; escaped by serde_json only when it holds a character JSON
/// requires escaped, which logins and messages almost never do.
fn write_string(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        None => out.extend_from_slice(b"null"),
        Some(text) if !text.bytes().any(|b| ESCAPED[usize::from(b)]) => {
            out.push(b'"');
            out.extend_from_slice(text.as_bytes());
            out.push(b'"');
        }
        Some(text) => serde_json::to_writer(&mut *out, text).expect("writing to memory"),
    }
}

/// The bytes JSON requires escaped in a string: control characters, the quote and the
/// backslash. A table, as each byte of every login written is looked up.
const ESCAPED: [bool; 256] = {
    let mut escaped = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        escaped[byte] = byte < 0x20 || byte == b'"' as usize || byte == b'\\' as usize;
        byte += 1;
    }
    escaped
};

fn write_time(out: &mut Vec<u8>, time: Option<Timestamp>) {
    match time {
        None => out.extend_from_slice(b"null"),
        Some(Timestamp(millis)) => {
            out.push(b'"');
            out.extend_from_slice(&timestamp::digits(millis));
            out.push(b'"');
        }
    }
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

/// Room for one presence's JSON, about: what a body is first given, so that a batch's is not
/// copied again and again as it grows.
const PRESENCE_BYTES: usize = 200;

#[cfg(test)]
impl BatchBody<'_> {
    /// The body as its derived `Serialize` writes it (see [`PresenceBody::write`]), through
    /// the [`BatchWriter`] the handler writes with: how the test holds the two together.
    pub fn to_json(&self) -> Vec<u8> {
        let mut writer = BatchWriter::new(self.items.len());
        for (i, item) in self.items.iter().enumerate() {
            // Both ways the handler writes an item: whole, and from JSON written before.
            if i % 2 == 0 {
                writer.item(item);
            } else {
                let mut json = Vec::new();
                item.write(&mut json);
                writer.json(&json);
            }
        }
        writer.finish(&self.missing)
    }
}

/// Writes a [`BatchBody`] item by item, from each presence's JSON, rather than gather a
/// thousand items first and write them after.
pub struct BatchWriter {
    out: Vec<u8>,
    items: usize,
}

impl BatchWriter {
    /// A body with room for about `items` presences.
    pub fn new(items: usize) -> Self {
        let mut out = Vec::with_capacity((items + 1) * PRESENCE_BYTES);
        out.extend_from_slice(b"{\"items\":[");
        Self { out, items: 0 }
    }

    pub fn item(&mut self, item: &PresenceBody<'_>) {
        if self.items > 0 {
            self.out.push(b',');
        }
        self.items += 1;
        item.write(&mut self.out);
    }

    /// An item already written: the JSON [`PresenceBody::write`] wrote for it.
    pub fn json(&mut self, json: &[u8]) {
        if self.items > 0 {
            self.out.push(b',');
        }
        self.items += 1;
        self.out.extend_from_slice(json);
    }

    pub fn finish(mut self, missing: &[i32]) -> Vec<u8> {
        let out = &mut self.out;
        out.extend_from_slice(b"],\"missing\":[");
        let mut integers = itoa::Buffer::new();
        for (i, id) in missing.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(integers.format(*id).as_bytes());
        }
        out.extend_from_slice(b"]}");
        self.out
    }
}

impl PageBody<PresenceBody<'_>> {
    /// The body as its derived `Serialize` writes it (see [`PresenceBody::write`]).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity((self.items.len() + 1) * PRESENCE_BYTES);
        out.extend_from_slice(b"{\"items\":[");
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            item.write(&mut out);
        }
        out.extend_from_slice(b"],\"next\":");
        write_string(&mut out, self.next.as_deref());
        out.push(b'}');
        out
    }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::UserPresenceStatus;

    fn presence(message: Option<&str>, login: &str, absences: Option<Vec<Absence>>) -> Presence {
        Presence {
            login: login.into(),
            stored: UserPresenceStatus {
                status: UserStatus::StatusNotAvailable,
                message: Message::new(message.map(str::to_owned)).unwrap(),
            },
            until: Some(2_000_000_000_000),
            absences: absences.map(Arc::from),
            revision: 4711,
            changed_at: 1_796_220_000_123,
        }
    }

    #[test]
    fn the_hand_written_bodies_are_what_serde_writes() {
        let away = Absence {
            id: 7,
            from: 1_000,
            until: 3_000_000_000_000,
            message: Message::new(Some("On \"leave\"\n\u{1}ø".into())).unwrap(),
        };
        let silent = Absence {
            message: Message::none(),
            ..away.clone()
        };
        let presences = [
            presence(Some("Back at 14:00"), "anna", None),
            presence(None, "o\"brien\\", None),
            presence(Some("tab\there"), "bob", Some(vec![away])),
            presence(None, "eve", Some(vec![silent])),
            // Neither timer nor absence, unavailable and not.
            Presence {
                until: None,
                ..presence(Some("Away"), "carl", None)
            },
            Presence {
                until: None,
                stored: UserPresenceStatus {
                    status: UserStatus::StatusNormal,
                    message: Message::none(),
                },
                ..presence(None, "dora", None)
            },
        ];
        for now in [0, 2_000, 2_500_000_000_000] {
            let items: Vec<PresenceBody<'_>> = presences
                .iter()
                .enumerate()
                .map(|(i, p)| PresenceBody::at(AssociateId::new(i as i32 + 1), p, now))
                .collect();
            for item in &items {
                let mut hand = Vec::new();
                item.write(&mut hand);
                assert_eq!(
                    String::from_utf8(hand).unwrap(),
                    serde_json::to_string(item).unwrap()
                );
            }
            let batch = BatchBody {
                items,
                missing: vec![5, 6],
            };
            assert_eq!(batch.to_json(), serde_json::to_vec(&batch).unwrap());
            let page = PageBody {
                items: batch.items,
                next: Some("YTEw".into()),
            };
            assert_eq!(page.to_json(), serde_json::to_vec(&page).unwrap());
            let last = PageBody::<PresenceBody<'_>> {
                items: Vec::new(),
                next: None,
            };
            assert_eq!(last.to_json(), serde_json::to_vec(&last).unwrap());
        }
    }
}
