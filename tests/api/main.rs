//! The server over real HTTP: each test starts it on 127.0.0.1:0 with a fresh database.

mod helpers;

mod auth;
mod cli;
mod errors;
mod formats;
mod language;
mod permissions;
mod process;
mod sample;
