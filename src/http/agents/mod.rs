//! The WebAPI agents this server answers, one module each, named as on the wire.

pub mod user;
