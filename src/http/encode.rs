//! Response bodies, written byte for byte as SuperOffice's WebAPI writes them.
//!
//! The carrier is written by hand rather than through serde: it has two members, the bytes are
//! part of the contract, and this runs on every request.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};

use crate::domain::UserStatus;

use super::negotiate::ResponseFormat;

/// The XML Schema instance namespace, bound to `i` as DataContractSerializer does.
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// A `UserPresenceStatus` as it goes out: after `$select` (an unselected member is `None`,
/// written as null) and translation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceView<'a> {
    pub status: Option<UserStatus>,
    pub message: Option<Cow<'a, str>>,
}

/// Writes an operation's answer: the carrier, or `null` when there is nothing to return.
pub fn presence(format: ResponseFormat, view: Option<&PresenceView<'_>>) -> Bytes {
    let mut out = BytesMut::with_capacity(160);
    match (format.is_xml(), view) {
        (false, None) => out.put_slice(b"null"),
        (false, Some(view)) => {
            out.put_slice(b"{\"Status\":");
            match view.status {
                Some(status) => {
                    out.put_u8(b'"');
                    out.put_slice(status.name().as_bytes());
                    out.put_u8(b'"');
                }
                None => out.put_slice(b"null"),
            }
            out.put_slice(b",\"Message\":");
            json_string(&mut out, view.message.as_deref());
            out.put_u8(b'}');
        }
        (true, None) => {
            out.put_slice(b"<UserPresenceStatus i:nil=\"true\" xmlns:i=\"");
            out.put_slice(XSI.as_bytes());
            out.put_slice(b"\"/>");
        }
        (true, Some(view)) => {
            out.put_slice(b"<UserPresenceStatus xmlns:i=\"");
            out.put_slice(XSI.as_bytes());
            out.put_slice(b"\">");
            xml_element(&mut out, "Status", view.status.map(UserStatus::name));
            xml_element(&mut out, "Message", view.message.as_deref());
            out.put_slice(b"</UserPresenceStatus>");
        }
    }
    out.freeze()
}

/// Writes a JSON string, or `null`.
pub(crate) fn json_string(out: &mut BytesMut, text: Option<&str>) {
    match text {
        // serde_json escapes exactly what JSON requires and leaves other characters as UTF-8,
        // as Json.NET does.
        Some(text) => serde_json::to_writer(out.writer(), text)
            .expect("writing a string to memory cannot fail"),
        None => out.put_slice(b"null"),
    }
}

/// Writes `<name>text</name>`, or `<name i:nil="true"/>` for null.
pub(crate) fn xml_element(out: &mut BytesMut, name: &str, text: Option<&str>) {
    out.put_u8(b'<');
    out.put_slice(name.as_bytes());
    match text {
        None => out.put_slice(b" i:nil=\"true\"/>"),
        Some(text) => {
            out.put_u8(b'>');
            xml_text(out, text);
            out.put_slice(b"</");
            out.put_slice(name.as_bytes());
            out.put_u8(b'>');
        }
    }
}

/// Escapes text content as .NET's XmlWriter does: `&`, `<` and `>`, plus carriage returns,
/// which a parser would otherwise fold into line feeds.
pub(crate) fn xml_text(out: &mut BytesMut, text: &str) {
    let mut rest = text;
    while let Some(at) = rest.find(['&', '<', '>', '\r']) {
        out.put_slice(&rest.as_bytes()[..at]);
        out.put_slice(match rest.as_bytes()[at] {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            _ => b"&#xD;",
        });
        rest = &rest[at + 1..];
    }
    out.put_slice(rest.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(status: Option<UserStatus>, message: Option<&str>) -> PresenceView<'_> {
        PresenceView {
            status,
            message: message.map(Cow::Borrowed),
        }
    }

    #[test]
    fn json_bytes() {
        let json = ResponseFormat::ApplicationJson;
        assert_eq!(
            presence(json, Some(&view(Some(UserStatus::StatusNormal), None))),
            &br#"{"Status":"StatusNormal","Message":null}"#[..]
        );
        assert_eq!(
            presence(json, Some(&view(None, Some("Tab\t\"quoted\" \\ ø")))),
            r#"{"Status":null,"Message":"Tab\t\"quoted\" \\ ø"}"#.as_bytes()
        );
        assert_eq!(presence(json, None), &b"null"[..]);
    }

    #[test]
    fn xml_bytes() {
        let xml = ResponseFormat::TextXml;
        assert_eq!(
            presence(xml, Some(&view(Some(UserStatus::StatusNormal), None))),
            &br#"<UserPresenceStatus xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Status>StatusNormal</Status><Message i:nil="true"/></UserPresenceStatus>"#[..]
        );
        assert_eq!(
            presence(xml, Some(&view(None, Some("a<b & c>d\r\n'\"")))),
            &b"<UserPresenceStatus xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\"><Status i:nil=\"true\"/><Message>a&lt;b &amp; c&gt;d&#xD;\n'\"</Message></UserPresenceStatus>"[..]
        );
        assert_eq!(
            presence(xml, None),
            &br#"<UserPresenceStatus i:nil="true" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"/>"#[..]
        );
    }
}
