//! `application/x-www-form-urlencoded` bodies, as ASP.NET's model binder reads them:
//! `AssociateId=963&UserPresenceStatus.Status=...`, or `UserPresenceStatus[Status]=...`.

use super::DecodeError;
use super::fields::{Member, Scalar, WireFields};

pub(super) fn decode(body: &[u8]) -> Result<WireFields, DecodeError> {
    if std::str::from_utf8(body).is_err() {
        return Err(DecodeError::Invalid(
            "The form body is not valid UTF-8".into(),
        ));
    }
    let mut fields = WireFields::default();
    for (name, value) in form_urlencoded::parse(body) {
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
