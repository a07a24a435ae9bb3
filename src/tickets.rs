//! Tickets (`SOTicket 7T:...`, and the browser sessions built on them) and opaque access
//! tokens (`Bearer 8A:...`): issued here, checked here, stored only as hashes.

use std::time::Duration;

use crate::clock::Clock;
use crate::domain::{AssociateId, UserStatus};
use crate::secret::{self, ACCESS_TOKEN_PREFIX, SecretHash, TICKET_PREFIX};
use crate::store::{Store, StoreError, TokenKind, TokenOwner};

/// How long a ticket lives after its last use.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(6 * 60 * 60);
/// How long an access token lives unless told otherwise.
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// A ticket's expiry is written back only once it would move by more than this: sliding to
/// the minute keeps a request that uses a ticket from being a database write every time.
const SLIDE_GRANULARITY_MS: i64 = 60_000;

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Issues a ticket for an associate; returns the ticket, which exists nowhere else.
pub async fn issue_ticket(
    store: &Store,
    clock: &Clock,
    associate_id: AssociateId,
) -> Result<String, StoreError> {
    let (ticket, hash) = secret::issue(TICKET_PREFIX);
    let now = clock.now_millis();
    store
        .insert_token(
            TokenKind::Ticket,
            hash,
            associate_id,
            now + millis(TICKET_LIFETIME),
            now,
        )
        .await?;
    Ok(ticket)
}

/// Issues an access token valid for `lifetime`.
pub async fn issue_access_token(
    store: &Store,
    clock: &Clock,
    associate_id: AssociateId,
    lifetime: Duration,
) -> Result<String, StoreError> {
    let (token, hash) = secret::issue(ACCESS_TOKEN_PREFIX);
    let now = clock.now_millis();
    store
        .insert_token(
            TokenKind::AccessToken,
            hash,
            associate_id,
            now.saturating_add(millis(lifetime)),
            now,
        )
        .await?;
    Ok(token)
}

/// The owner of a valid ticket, sliding its expiry; `None` for an unknown, expired or revoked
/// ticket, or one whose user has since been deleted.
pub async fn check_ticket(
    store: &Store,
    clock: &Clock,
    ticket: &str,
) -> Result<Option<TokenOwner>, StoreError> {
    let hash = SecretHash::of(ticket);
    let now = clock.now_millis();
    let Some(owner) = usable(store.find_token(TokenKind::Ticket, hash, now).await?) else {
        return Ok(None);
    };
    let slid = now + millis(TICKET_LIFETIME);
    if slid - owner.expires_at > SLIDE_GRANULARITY_MS {
        store.extend_token(hash, slid).await?;
    }
    Ok(Some(owner))
}

/// The owner of a valid access token.
pub async fn check_access_token(
    store: &Store,
    clock: &Clock,
    token: &str,
) -> Result<Option<TokenOwner>, StoreError> {
    let found = store
        .find_token(
            TokenKind::AccessToken,
            SecretHash::of(token),
            clock.now_millis(),
        )
        .await?;
    Ok(usable(found))
}

fn usable(owner: Option<TokenOwner>) -> Option<TokenOwner> {
    owner.filter(|o| o.status != UserStatus::StatusDeleted)
}
