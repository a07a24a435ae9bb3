//! Wire concerns: body decoding, negotiation, errors, authentication, and the operations.

pub mod access;
pub mod agents;
pub mod auth;
pub mod board;
pub mod body;
pub mod connection;
pub mod encode;
pub mod error;
pub mod health;
pub mod language;
pub mod login;
pub mod metrics;
pub mod negotiate;
pub mod presence;
pub mod respond;
pub mod select;
pub mod service;
pub mod state;
