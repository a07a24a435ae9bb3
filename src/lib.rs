//! A self-hosted server for SuperOffice's user presence WebAPI
//! (`Agents/User/GetUserPresenceStatus` and `SetUserPresenceStatus`).

/// The application state, router and `serve`.
pub mod app;
/// A hash map bounded by entries and by bytes, for the caches.
mod bounded;
/// Timers recorded as changes, and the feed of changes to open streams.
pub mod changes;
/// The `presence` command line.
pub mod cli;
/// The server's clock, injectable for tests.
pub mod clock;
/// Server settings.
pub mod config;
/// The reference page's example data.
pub mod demo;
/// Types that parse instead of validate.
pub mod domain;
/// Wire concerns: bodies, negotiation, errors, authentication, operations.
pub mod http;
/// Language, culture and time-zone headers.
pub mod language;
/// What `GET /metrics` reports.
pub mod metrics;
/// Argon2id password hashing.
pub mod password;
/// The import files: CSV records and JSON objects, with their line numbers.
pub mod records;
/// Conditions that can repeat many times a second, logged once and then counted.
pub mod repeated;
/// Server-issued secrets: tickets, tokens, application and XSRF tokens.
pub mod secret;
/// Storage behind one facade.
pub mod store;
/// Tickets and access tokens: issued, checked, slid.
pub mod tickets;
/// Times on the presence API's wire: RFC 3339 in, RFC 3339 UTC with milliseconds out.
pub mod timestamp;
/// Changes POSTed to administrators' URLs, signed, in order, at least once.
pub mod webhooks;
/// Weighted lists of content negotiation (`Accept`, `Accept-Language`).
pub mod weighted;
