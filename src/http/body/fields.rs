use std::fmt;

/// The members of either operation's request as they came off the wire, before validation.
/// Absent members are `None`; every format fills the same structure.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WireFields {
    pub associate_id: Option<Scalar>,
    pub user_presence_status: WirePresence,
}

/// The nested `UserPresenceStatus` member of a Set request.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum WirePresence {
    #[default]
    Absent,
    Null,
    NotAnObject,
    Object(UserPresenceStatusFields),
}

impl WirePresence {
    /// The object's members, making it an object first if it was not one: formats that spread
    /// the members over several entries (form fields) fill them one at a time.
    pub(super) fn object_mut(&mut self) -> &mut UserPresenceStatusFields {
        if !matches!(self, Self::Object(_)) {
            *self = Self::Object(UserPresenceStatusFields::default());
        }
        match self {
            Self::Object(presence) => presence,
            _ => unreachable!("made an object above"),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserPresenceStatusFields {
    pub status: Option<Scalar>,
    pub message: Option<Scalar>,
}

/// One member's value. XML and form values are always text; JSON keeps its types so errors can
/// say what was sent.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    /// Wide enough for every JSON integer serde reads, so out-of-range values are reported as
    /// such rather than wrapped.
    Integer(i128),
    Float(f64),
    Text(String),
    /// An array or an object where a single value belongs.
    Compound,
}

impl Scalar {
    /// What kind of value this is, for error details.
    pub fn kind(&self) -> ScalarKind<'_> {
        ScalarKind(self)
    }
}

pub struct ScalarKind<'a>(&'a Scalar);

impl fmt::Display for ScalarKind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Scalar::Null => f.write_str("null"),
            Scalar::Bool(b) => write!(f, "the boolean {b}"),
            Scalar::Integer(n) => write!(f, "{n}"),
            Scalar::Float(x) => write!(f, "the number {x}"),
            Scalar::Text(_) => f.write_str("a string"),
            Scalar::Compound => f.write_str("an array or object"),
        }
    }
}

/// The request members the server knows, matched case-insensitively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Member {
    AssociateId,
    UserPresenceStatus,
    Status,
    Message,
    Other,
}

impl Member {
    pub(super) fn of_request(name: &str) -> Self {
        if name.eq_ignore_ascii_case("AssociateId") {
            Self::AssociateId
        } else if name.eq_ignore_ascii_case("UserPresenceStatus") {
            Self::UserPresenceStatus
        } else {
            Self::Other
        }
    }

    pub(super) fn of_presence(name: &str) -> Self {
        if name.eq_ignore_ascii_case("Status") {
            Self::Status
        } else if name.eq_ignore_ascii_case("Message") {
            Self::Message
        } else {
            Self::Other
        }
    }
}
