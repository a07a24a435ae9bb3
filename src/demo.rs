//! The reference page's example, for `presence serve --demo`: its sample request, sent as is,
//! gets its sample response.

use crate::domain::{AssociateId, Message, UserPresenceStatus, UserStatus};
use crate::password;
use crate::store::{NewServiceUser, Store, StoreError};

pub const ADMIN_LOGIN: &str = "tje0";
pub const ADMIN_PASSWORD: &str = "Tje0";
pub const ADMIN_ASSOCIATE: AssociateId = AssociateId::new(1);
pub const SAMPLE_ASSOCIATE: AssociateId = AssociateId::new(963);
/// The sample associate needs a login like every Service user; it has no password, so it
/// cannot sign in.
pub const SAMPLE_LOGIN: &str = "associate963";

/// Adds the example users where missing; says which it added.
pub async fn seed(store: &Store) -> Result<Vec<&'static str>, StoreError> {
    let mut added = Vec::new();
    let admin_hash = tokio::task::spawn_blocking(|| password::hash(ADMIN_PASSWORD))
        .await
        .map_err(|_| StoreError::TaskFailed)?
        .expect("the demo password is not empty");
    let admin = NewServiceUser {
        associate_id: ADMIN_ASSOCIATE,
        login: ADMIN_LOGIN.into(),
        password_hash: Some(admin_hash),
        is_admin: true,
        presence: UserPresenceStatus {
            status: UserStatus::StatusNormal,
            message: Message::none(),
        },
    };
    if store.add_user_if_missing(admin).await? {
        added.push(ADMIN_LOGIN);
    }
    let sample = NewServiceUser {
        associate_id: SAMPLE_ASSOCIATE,
        login: SAMPLE_LOGIN.into(),
        password_hash: None,
        is_admin: false,
        presence: UserPresenceStatus {
            status: UserStatus::StatusDeleted,
            message: Message::new(Some("ut".into())).expect("short"),
        },
    };
    if store.add_user_if_missing(sample).await? {
        added.push(SAMPLE_LOGIN);
    }
    Ok(added)
}
