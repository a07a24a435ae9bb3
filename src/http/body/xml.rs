//! XML bodies, as .NET's DataContractSerializer writes them: any root element in any
//! namespace, members as child elements matched by local name, `i:nil="true"` for null.
//!
//! A document type declaration is refused outright, so no entity can be declared and the
//! "billion laughs" and external-entity attacks have nothing to work with; references to
//! undeclared entities are errors.

use quick_xml::Reader;
use quick_xml::events::{BytesRef, BytesStart, Event};

use super::DecodeError;
use super::fields::{Member, Scalar, WireFields, WirePresence};

pub(super) fn decode(body: &[u8]) -> Result<WireFields, DecodeError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| DecodeError::Invalid("The XML body is not valid UTF-8".into()))?;
    let mut reader = Reader::from_str(text);
    let mut parser = Parser {
        reader: &mut reader,
    };
    parser.document()
}

struct Parser<'r, 'i> {
    reader: &'r mut Reader<&'i [u8]>,
}

fn invalid(detail: impl std::fmt::Display) -> DecodeError {
    DecodeError::Invalid(format!("The body is not valid XML: {detail}"))
}

/// A member's value: its text, or null when marked `i:nil="true"`.
enum Value {
    Null,
    Text(String),
    /// Child elements where text belongs.
    Compound,
}

impl From<Value> for Scalar {
    fn from(value: Value) -> Self {
        match value {
            Value::Null => Scalar::Null,
            Value::Text(text) => Scalar::Text(text),
            Value::Compound => Scalar::Compound,
        }
    }
}

impl<'i> Parser<'_, 'i> {
    fn next(&mut self) -> Result<Event<'i>, DecodeError> {
        self.reader.read_event().map_err(invalid)
    }

    fn document(&mut self) -> Result<WireFields, DecodeError> {
        let mut fields = None;
        loop {
            match self.next()? {
                Event::Decl(decl) => {
                    if let Some(encoding) = decl.encoding() {
                        let encoding = encoding.map_err(invalid)?;
                        if !encoding.eq_ignore_ascii_case("utf-8") {
                            return Err(DecodeError::Unsupported(format!(
                                "The XML declares the encoding {encoding:?}; send UTF-8"
                            )));
                        }
                    }
                }
                Event::DocType(_) => {
                    return Err(DecodeError::Invalid(
                        "Document type declarations (DTDs) and entity declarations are not allowed"
                            .into(),
                    ));
                }
                Event::Start(root) if fields.is_none() => {
                    if is_nil(&root)? {
                        self.skip_to_end(&root)?;
                        return Err(DecodeError::Invalid("The request body is null".into()));
                    }
                    fields = Some(self.request()?);
                }
                Event::Empty(root) if fields.is_none() => {
                    if is_nil(&root)? {
                        return Err(DecodeError::Invalid("The request body is null".into()));
                    }
                    fields = Some(WireFields::default());
                }
                Event::Start(_) | Event::Empty(_) => {
                    return Err(invalid("more than one root element"));
                }
                Event::Text(text) if text.xml10_content().trim().is_empty() => {}
                Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                    return Err(invalid("text outside the root element"));
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::End(_) => return Err(invalid("an end tag without its start tag")),
                Event::Eof => {
                    return fields.ok_or_else(|| invalid("there is no root element"));
                }
            }
        }
    }

    /// The root element's children, up to and including its end tag.
    fn request(&mut self) -> Result<WireFields, DecodeError> {
        let mut fields = WireFields::default();
        while let Some((start, empty)) = self.next_child()? {
            match Member::of_request(start.local_name().as_ref()) {
                Member::AssociateId => {
                    fields.associate_id = Some(self.value(&start, empty)?.into())
                }
                Member::UserPresenceStatus => {
                    fields.user_presence_status = if is_nil(&start)? {
                        self.skip(&start, empty)?;
                        WirePresence::Null
                    } else {
                        let presence = fields.user_presence_status.object_mut();
                        if !empty {
                            while let Some((child, child_empty)) = self.next_child()? {
                                match Member::of_presence(child.local_name().as_ref()) {
                                    Member::Status => {
                                        presence.status =
                                            Some(self.value(&child, child_empty)?.into());
                                    }
                                    Member::Message => {
                                        presence.message =
                                            Some(self.value(&child, child_empty)?.into());
                                    }
                                    _ => self.skip(&child, child_empty)?,
                                }
                            }
                        }
                        std::mem::take(&mut fields.user_presence_status)
                    };
                }
                _ => self.skip(&start, empty)?,
            }
        }
        Ok(fields)
    }

    /// The next child element of the current one (with whether it is empty), or `None` once
    /// the current element's end tag has been read. Text between children is ignored.
    fn next_child(&mut self) -> Result<Option<(BytesStart<'i>, bool)>, DecodeError> {
        loop {
            match self.next()? {
                Event::Start(start) => return Ok(Some((start, false))),
                Event::Empty(start) => return Ok(Some((start, true))),
                Event::End(_) => return Ok(None),
                Event::GeneralRef(reference) => {
                    resolve(&reference)?;
                }
                Event::Eof => return Err(invalid("the document ends inside an element")),
                Event::DocType(_) => return Err(invalid("a DOCTYPE inside an element")),
                Event::Text(_)
                | Event::CData(_)
                | Event::Comment(_)
                | Event::PI(_)
                | Event::Decl(_) => {}
            }
        }
    }

    /// A member's value, up to and including its end tag.
    fn value(&mut self, start: &BytesStart<'i>, empty: bool) -> Result<Value, DecodeError> {
        if is_nil(start)? {
            self.skip(start, empty)?;
            return Ok(Value::Null);
        }
        let mut text = String::new();
        if empty {
            return Ok(Value::Text(text));
        }
        let mut compound = false;
        loop {
            match self.next()? {
                Event::Text(t) => text.push_str(&t.xml10_content()),
                Event::CData(c) => text.push_str(&c),
                Event::GeneralRef(reference) => text.push(resolve(&reference)?),
                Event::Start(child) => {
                    compound = true;
                    self.skip(&child, false)?;
                }
                Event::Empty(_) => compound = true,
                Event::End(_) => break,
                Event::Eof => return Err(invalid("the document ends inside an element")),
                Event::DocType(_) => return Err(invalid("a DOCTYPE inside an element")),
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) => {}
            }
        }
        Ok(if compound {
            Value::Compound
        } else {
            Value::Text(text)
        })
    }

    fn skip(&mut self, start: &BytesStart<'i>, empty: bool) -> Result<(), DecodeError> {
        if empty {
            Ok(())
        } else {
            self.skip_to_end(start)
        }
    }

    fn skip_to_end(&mut self, start: &BytesStart<'i>) -> Result<(), DecodeError> {
        self.reader.read_to_end(start.name()).map_err(invalid)?;
        Ok(())
    }
}

/// Whether an element carries `xsi:nil="true"`, whatever prefix names the instance namespace.
fn is_nil(start: &BytesStart<'_>) -> Result<bool, DecodeError> {
    for attribute in start.attributes() {
        let attribute = attribute.map_err(invalid)?;
        if attribute.key.local_name().as_ref() == "nil" {
            return Ok(attribute.value.as_ref().trim_ascii() == "true");
        }
    }
    Ok(false)
}

/// The character a reference stands for: the five predefined entities and character
/// references. Every other entity is undeclared, since DTDs are refused.
fn resolve(reference: &BytesRef<'_>) -> Result<char, DecodeError> {
    if let Some(c) = reference.resolve_char_ref().map_err(invalid)? {
        return Ok(c);
    }
    match &**reference {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        other => Err(invalid(format_args!(
            "the entity &{other}; is not declared"
        ))),
    }
}
