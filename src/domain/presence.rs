use super::{Message, UserStatus};

/// The `UserPresenceStatus` carrier: what both operations return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPresenceStatus {
    pub status: UserStatus,
    pub message: Message,
}
