//! `application/x-www-form-urlencoded` bodies, as ASP.NET's model binder reads them:
//! `AssociateId=963&UserPresenceStatus.Status=...`, or `UserPresenceStatus[Status]=...`.

use std::borrow::Cow;

use percent_encoding::percent_decode;

use super::DecodeError;
use super::fields::{Member, Scalar, WireFields};

pub(super) fn decode(body: &[u8]) -> Result<WireFields, DecodeError> {
    let mut fields = WireFields::default();
    for (name, value) in pairs(body)? {
        let (outer, inner) = split_member(&name);
        match (Member::of_request(outer), inner) {
            (Member::AssociateId, None) => {
                fields.associate_id = Some(Scalar::Text(value.into_owned()))
            }
            (Member::UserPresenceStatus, Some(inner)) => {
                let presence = fields.user_presence_status.object_mut();
                let value = Some(Scalar::Text(value.into_owned()));
                match Member::of_presence(inner) {
                    Member::Status => presence.status = value,
                    Member::Message => presence.message = value,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Ok(fields)
}

/// A form's names and values, in order.
pub type Pairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// A form's names and values, `+` and percent escapes decoded. A name or value that decodes
/// to bytes that are not UTF-8 is an error, as invalid UTF-8 is in JSON: replacing them, as
/// `form_urlencoded::parse` does, would store a message other than the one sent.
pub fn pairs(body: &[u8]) -> Result<Pairs<'_>, DecodeError> {
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(equals) => (&pair[..equals], &pair[equals + 1..]),
                None => (pair, &[][..]),
            };
            Ok((form_text(name)?, form_text(value)?))
        })
        .collect()
}

fn form_text(encoded: &[u8]) -> Result<Cow<'_, str>, DecodeError> {
    let decoded = if encoded.contains(&b'+') {
        let spaced: Vec<u8> = encoded
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        Cow::Owned(percent_decode(&spaced).collect::<Vec<u8>>())
    } else {
        Cow::from(percent_decode(encoded))
    };
    match decoded {
        Cow::Borrowed(bytes) => std::str::from_utf8(bytes).map(Cow::Borrowed),
        Cow::Owned(bytes) => String::from_utf8(bytes)
            .map(Cow::Owned)
            .map_err(|e| e.utf8_error()),
    }
    .map_err(|_| DecodeError::Invalid("The form body is not valid UTF-8, once decoded".into()))
}

/// Splits `Outer.Inner` or `Outer[Inner]` into its two names.
fn split_member(name: &str) -> (&str, Option<&str>) {
    if let Some((outer, inner)) = name.split_once('.') {
        return (outer, Some(inner));
    }
    if let Some((outer, rest)) = name.split_once('[')
        && let Some(inner) = rest.strip_suffix(']')
    {
        return (outer, Some(inner));
    }
    (name, None)
}
