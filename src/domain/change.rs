//! A change to a Service user as the history remembers it, and who made it.

use serde_json::json;

use super::{AssociateId, UserPresenceStatus};

/// What a change was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// The status, its message or its end changed: set by someone, or by a timer.
    Status,
    AbsencePlanned,
    AbsenceCancelled,
    UserAdded,
    UserRemoved,
}

impl ChangeKind {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::AbsencePlanned => "absencePlanned",
            Self::AbsenceCancelled => "absenceCancelled",
            Self::UserAdded => "userAdded",
            Self::UserRemoved => "userRemoved",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Status,
            Self::AbsencePlanned,
            Self::AbsenceCancelled,
            Self::UserAdded,
            Self::UserRemoved,
        ]
        .into_iter()
        .find(|kind| kind.name() == name)
    }
}

/// A status as a change records it: before or after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedStatus {
    pub presence: UserPresenceStatus,
    /// When a timed status ends (Unix milliseconds).
    pub until: Option<i64>,
}

/// One change of the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub revision: i64,
    /// When it took effect (Unix milliseconds): for a timer's, the moment the timer was due.
    pub at: i64,
    pub associate_id: AssociateId,
    pub kind: ChangeKind,
    pub from: Option<RecordedStatus>,
    pub to: Option<RecordedStatus>,
    /// The absence planned or cancelled, as JSON.
    pub absence: Option<String>,
    /// Who made it, as JSON ([`by_json`]); `None` only for changes older than history.
    pub by: Option<String>,
    /// Through which scheme and application, as JSON ([`via_json`]); `None` where no request
    /// was made.
    pub via: Option<String>,
}

/// Who makes a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum By {
    /// A signed-in user, through either API.
    User(AssociateId),
    /// An administrator at the command line.
    CommandLine,
    /// A timed status ending, or a planned absence starting or ending.
    Timer,
}

/// How a signed-in user reached the service: the scheme and, when the request named one, the
/// registered application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    pub scheme: &'static str,
    pub application: Option<String>,
}

/// Who makes a change and through what: written with the change, in its transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub by: By,
    pub via: Option<Via>,
}

impl Actor {
    pub const COMMAND_LINE: Self = Self {
        by: By::CommandLine,
        via: None,
    };

    pub const TIMER: Self = Self {
        by: By::Timer,
        via: None,
    };

    pub fn user(associate_id: AssociateId, via: Via) -> Self {
        Self {
            by: By::User(associate_id),
            via: Some(via),
        }
    }
}

impl By {
    /// What the history calls this kind of author: `user`, `commandLine` or `timer`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::User(_) => "user",
            Self::CommandLine => "commandLine",
            Self::Timer => "timer",
        }
    }

    /// The user's associate, for a change a user made.
    pub const fn associate(&self) -> Option<AssociateId> {
        match self {
            Self::User(id) => Some(*id),
            Self::CommandLine | Self::Timer => None,
        }
    }
}

/// Who made a change as the history shows it, from its [`By::kind`] and [`By::associate`]:
/// `{"kind":"user","associateId":963}`, `{"kind":"commandLine"}` or `{"kind":"timer"}`. The
/// kind is escaped and written as it is, so that a kind this version does not know (a newer
/// version's, or a hand-edited row's) is shown rather than failing every page that holds it.
pub fn by_json(kind: &str, associate: Option<AssociateId>) -> String {
    match associate {
        Some(id) => format!(r#"{{"kind":{},"associateId":{}}}"#, json!(kind), id.get()),
        None => format!(r#"{{"kind":{}}}"#, json!(kind)),
    }
}

/// Through what a change was made as the history shows it:
/// `{"scheme":"basic","application":"Desk"}`. Both are escaped, as a scheme read back from the
/// database is whatever the database holds.
pub fn via_json(scheme: &str, application: Option<&str>) -> String {
    format!(
        r#"{{"scheme":{},"application":{}}}"#,
        json!(scheme),
        json!(application)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_named_as_the_api_names_them() {
        for kind in [
            ChangeKind::Status,
            ChangeKind::AbsencePlanned,
            ChangeKind::AbsenceCancelled,
            ChangeKind::UserAdded,
            ChangeKind::UserRemoved,
        ] {
            assert_eq!(ChangeKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(ChangeKind::from_name("Status"), None);
    }

    #[test]
    fn who_and_through_what_are_json_that_escapes_what_an_application_is_called() {
        let by = |actor: &Actor| by_json(actor.by.kind(), actor.by.associate());
        let user = Actor::user(
            AssociateId::new(963),
            Via {
                scheme: "basic",
                application: Some("Desk \"2\"".to_owned()),
            },
        );
        assert_eq!(by(&user), r#"{"kind":"user","associateId":963}"#);
        assert_eq!(by(&Actor::TIMER), r#"{"kind":"timer"}"#);
        assert_eq!(by(&Actor::COMMAND_LINE), r#"{"kind":"commandLine"}"#);
        assert_eq!(
            via_json("basic", Some("Desk \"2\"")),
            r#"{"scheme":"basic","application":"Desk \"2\""}"#
        );
        assert_eq!(
            via_json("basic", None),
            r#"{"scheme":"basic","application":null}"#
        );
    }
}
