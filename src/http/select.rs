//! `$select`: which members of the carrier a response fills; the others are written as null.

use std::borrow::Cow;

use super::encode::PresenceView;
use crate::domain::UserPresenceStatus;

/// The members of `UserPresenceStatus` a request selected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Select {
    pub status: bool,
    pub message: bool,
}

impl Select {
    pub const ALL: Select = Select {
        status: true,
        message: true,
    };

    /// Reads `$select` from a query string. Names are comma-separated, matched
    /// case-insensitively with blanks trimmed; a path (`status/x`) selects its first segment;
    /// unknown names select nothing; an absent or empty `$select` selects everything.
    pub fn from_query(query: Option<&str>) -> Self {
        let Some(query) = query else {
            return Self::ALL;
        };
        let Some(list) = form_urlencoded::parse(query.as_bytes())
            .filter(|(name, _)| name.eq_ignore_ascii_case("$select"))
            .map(|(_, value)| value)
            .last()
        else {
            return Self::ALL;
        };
        if list.trim().is_empty() {
            return Self::ALL;
        }
        let mut select = Self {
            status: false,
            message: false,
        };
        for name in list.split(',') {
            let member = name.split('/').next().unwrap_or_default().trim();
            if member.eq_ignore_ascii_case("Status") {
                select.status = true;
            } else if member.eq_ignore_ascii_case("Message") {
                select.message = true;
            }
        }
        select
    }

    pub fn apply<'a>(&self, presence: &'a UserPresenceStatus) -> PresenceView<'a> {
        PresenceView {
            status: self.status.then_some(presence.status),
            message: if self.message {
                presence.message.as_deref().map(Cow::Borrowed)
            } else {
                None
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Select = Select {
        status: false,
        message: false,
    };
    const STATUS: Select = Select {
        status: true,
        message: false,
    };
    const MESSAGE: Select = Select {
        status: false,
        message: true,
    };

    #[test]
    fn reads_the_select_list() {
        let cases = [
            (None, Select::ALL),
            (Some(""), Select::ALL),
            (Some("other=1"), Select::ALL),
            (Some("$select="), Select::ALL),
            (Some("$select=%20"), Select::ALL),
            (Some("$select=Status"), STATUS),
            (Some("$select=status"), STATUS),
            (Some("%24select=MESSAGE"), MESSAGE),
            (Some("$select=%20message%20,%20status"), Select::ALL),
            (Some("$select=status/x"), STATUS),
            (Some("$select=name,department,category/id"), NONE),
            (Some("$SELECT=Message"), MESSAGE),
        ];
        for (query, expected) in cases {
            assert_eq!(Select::from_query(query), expected, "{query:?}");
        }
    }
}
