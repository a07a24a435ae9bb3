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
    /// Who made it, as JSON ([`Actor::by_json`]); `None` only for changes older than history.
    pub by: Option<String>,
    /// Through which scheme and application, as JSON ([`Actor::via_json`]).
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

    /// `{"kind":"user","associateId":963}`, `{"kind":"commandLine"}` or `{"kind":"timer"}`.
    pub fn by_json(&self) -> String {
        self.by.json()
    }

    /// `{"scheme":"basic","application":"Desk"}`, or `None` where no request was made.
    pub fn via_json(&self) -> Option<String> {
        self.via
            .as_ref()
            .map(|via| via_json(via.scheme, via.application.as_deref()))
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

    /// The author of a [`By::kind`] and [`By::associate`]; `None` if they name none.
    pub fn from_parts(kind: &str, associate: Option<AssociateId>) -> Option<Self> {
        match (kind, associate) {
            ("user", Some(id)) => Some(Self::User(id)),
            ("commandLine", None) => Some(Self::CommandLine),
            ("timer", None) => Some(Self::Timer),
            _ => None,
        }
    }

    /// As [`Actor::by_json`] writes it.
    pub fn json(&self) -> String {
        match self {
            Self::User(id) => format!(r#"{{"kind":"user","associateId":{}}}"#, id.get()),
            Self::CommandLine => r#"{"kind":"commandLine"}"#.to_owned(),
            Self::Timer => r#"{"kind":"timer"}"#.to_owned(),
        }
    }
}

/// A change's scheme and application as the history shows them:
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
    fn an_actor_is_json_that_escapes_what_an_application_is_called() {
        let actor = Actor::user(
            AssociateId::new(963),
            Via {
                scheme: "basic",
                application: Some("Desk \"2\"".to_owned()),
            },
        );
        assert_eq!(actor.by_json(), r#"{"kind":"user","associateId":963}"#);
        let via: serde_json::Value = serde_json::from_str(&actor.via_json().unwrap()).unwrap();
        assert_eq!(via, json!({"scheme": "basic", "application": "Desk \"2\""}));
        assert_eq!(Actor::TIMER.by_json(), r#"{"kind":"timer"}"#);
        assert_eq!(Actor::COMMAND_LINE.via_json(), None);
        assert_eq!(
            via_json("basic", None),
            r#"{"scheme":"basic","application":null}"#
        );
    }

    #[test]
    fn an_author_is_read_back_from_its_kind_and_associate() {
        for by in [By::User(AssociateId::new(963)), By::CommandLine, By::Timer] {
            assert_eq!(By::from_parts(by.kind(), by.associate()), Some(by));
        }
        assert_eq!(By::from_parts("user", None), None);
        assert_eq!(By::from_parts("timer", Some(AssociateId::new(1))), None);
        assert_eq!(By::from_parts("robot", None), None);
    }
}
