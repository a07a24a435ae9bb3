use std::fmt;
use std::str::FromStr;

/// An associate (a SuperOffice user) id: the wire declares it an `int32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AssociateId(i32);

impl AssociateId {
    pub const fn new(id: i32) -> Self {
        Self(id)
    }

    pub const fn get(self) -> i32 {
        self.0
    }
}

impl fmt::Display for AssociateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for AssociateId {
    type Err = std::num::ParseIntError;

    /// Accepts what .NET's `int.Parse` accepts for the wire's numeric strings: optional sign and
    /// surrounding blanks.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        let unsigned = trimmed.strip_prefix('+').unwrap_or(trimmed);
        unsigned.parse().map(Self)
    }
}
