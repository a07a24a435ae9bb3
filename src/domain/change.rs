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
        match &self.by {
            By::User(id) => format!(r#"{{"kind":"user","associateId":{}}}"#, id.get()),
            By::CommandLine => r#"{"kind":"commandLine"}"#.to_owned(),
            By::Timer => r#"{"kind":"timer"}"#.to_owned(),
        }
    }

    /// `{"scheme":"basic","application":"Desk"}`, or `None` where no request was made.
    pub fn via_json(&self) -> Option<String> {
        // The scheme is one of a few fixed words; only an application's name needs escaping.
        self.via.as_ref().map(|via| match &via.application {
            None => format!(r#"{{"scheme":"{}","application":null}}"#, via.scheme),
            Some(application) => format!(
                r#"{{"scheme":"{}","application":{}}}"#,
                via.scheme,
                json!(application)
            ),
        })
    }
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
    }
}
