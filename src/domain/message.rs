use std::sync::Arc;

/// The comment shown while a user is not present: absent (`null` on the wire) or at most
/// [`Message::MAX_CHARS`] characters.
///
/// Shared rather than owned: every Get copies the cached presence, and copying an `Arc` is a
/// count where copying a `String` was an allocation and a free.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message(Option<Arc<str>>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Message has {0} characters; at most {max} are allowed", max = Message::MAX_CHARS)]
pub struct MessageTooLong(pub usize);

impl Message {
    /// The column width of SuperOffice's presence message.
    pub const MAX_CHARS: usize = 255;

    pub const fn none() -> Self {
        Self(None)
    }

    pub fn new(text: Option<String>) -> Result<Self, MessageTooLong> {
        match text {
            Some(text) => {
                let chars = text.chars().count();
                if chars > Self::MAX_CHARS {
                    Err(MessageTooLong(chars))
                } else {
                    Ok(Self(Some(text.into())))
                }
            }
            None => Ok(Self(None)),
        }
    }

    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_characters_not_bytes() {
        assert!(Message::new(Some("ø".repeat(255))).is_ok());
        assert_eq!(
            Message::new(Some("ø".repeat(256))),
            Err(MessageTooLong(256))
        );
    }
}
