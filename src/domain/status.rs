use std::fmt;
use std::str::FromStr;

/// `EjUserStatus`: a Service user's status. The wire carries the name; storage the number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserStatus {
    StatusNone,
    /// Present: tickets are assigned to the user.
    StatusNormal,
    /// Not present: no tickets are assigned.
    StatusNotAvailable,
    /// Cannot authenticate, but the status is still readable.
    StatusDeleted,
    StatusReadOnly,
    StatusSpm,
    StatusSystem,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not a user status; expected one of {names}", names = UserStatus::NAMES.join(", "))]
pub struct UnknownStatus(pub String);

impl UserStatus {
    pub const ALL: [UserStatus; 7] = [
        Self::StatusNone,
        Self::StatusNormal,
        Self::StatusNotAvailable,
        Self::StatusDeleted,
        Self::StatusReadOnly,
        Self::StatusSpm,
        Self::StatusSystem,
    ];

    pub const NAMES: [&'static str; 7] = [
        "StatusNone",
        "StatusNormal",
        "StatusNotAvailable",
        "StatusDeleted",
        "StatusReadOnly",
        "StatusSpm",
        "StatusSystem",
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::StatusNone => "StatusNone",
            Self::StatusNormal => "StatusNormal",
            Self::StatusNotAvailable => "StatusNotAvailable",
            Self::StatusDeleted => "StatusDeleted",
            Self::StatusReadOnly => "StatusReadOnly",
            Self::StatusSpm => "StatusSpm",
            Self::StatusSystem => "StatusSystem",
        }
    }

    pub const fn number(self) -> i64 {
        match self {
            Self::StatusNone => 0,
            Self::StatusNormal => 1,
            Self::StatusNotAvailable => 2,
            Self::StatusDeleted => 3,
            Self::StatusReadOnly => 4,
            Self::StatusSpm => 5,
            Self::StatusSystem => 127,
        }
    }

    pub fn from_number(number: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.number() == number)
    }

    /// The statuses a user may give themselves; every other one takes an administrator.
    pub const fn is_self_service(self) -> bool {
        matches!(self, Self::StatusNormal | Self::StatusNotAvailable)
    }
}

impl fmt::Display for UserStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for UserStatus {
    type Err = UnknownStatus;

    /// The name in any casing, or the number (as .NET's enum parsing accepts both).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        if let Some(status) = Self::ALL
            .into_iter()
            .find(|status| status.name().eq_ignore_ascii_case(trimmed))
        {
            return Ok(status);
        }
        trimmed
            .parse::<i64>()
            .ok()
            .and_then(Self::from_number)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        for (status, name) in UserStatus::ALL.into_iter().zip(UserStatus::NAMES) {
            assert_eq!(status.name(), name);
            assert_eq!(name.parse::<UserStatus>(), Ok(status));
            assert_eq!(name.to_lowercase().parse::<UserStatus>(), Ok(status));
            assert_eq!(
                status.number().to_string().parse::<UserStatus>(),
                Ok(status)
            );
            assert_eq!(UserStatus::from_number(status.number()), Some(status));
        }
    }

    #[test]
    fn unknown_names_and_numbers_are_refused() {
        for bad in ["", "Normal", "StatusAway", "6", "-1", "128"] {
            assert!(bad.parse::<UserStatus>().is_err(), "{bad:?} parsed");
        }
    }
}
