//! Types that parse instead of validate: once a value has one of these types it is known good.

mod associate;
mod change;
mod message;
mod presence;
mod status;

pub use associate::AssociateId;
pub use change::{Actor, By, Change, ChangeKind, RecordedStatus, Via, by_json, via_json};
pub use message::{Message, MessageTooLong};
pub use presence::{Absence, Effective, Presence, UserPresenceStatus};
pub use status::{UnknownStatus, UserStatus};
