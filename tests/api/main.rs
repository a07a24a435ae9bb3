//! The server over real HTTP: each test starts it on 127.0.0.1:0 with a fresh database, once
//! on SQLite (`MODULE::sqlite::TEST`) and once on PostgreSQL (`MODULE::postgres::TEST`,
//! reported as skipped unless `PRESENCE_TEST_POSTGRES_URL` was set when the tests were built).

#[macro_use]
mod helpers;

mod auth;
mod board;
mod browser;
mod changes;
mod cli;
mod config;
mod errors;
mod formats;
mod import;
mod language;
mod limits;
mod nodes;
mod openapi;
mod operations;
mod packaging;
mod pages;
mod permissions;
mod presence;
mod presence_cli;
mod process;
mod sample;
mod webhooks;
