//! What happens to changes once they are stored: the timers that record a timed status's end
//! and an absence's start and end as changes, and the feed that tells every open stream of
//! each new change.

pub mod feed;
pub mod timers;
