//! `presence history`: the changes the history keeps, oldest first, as columns or as the JSON
//! the API answers.

use std::io::Write;

use clap::Args;

use super::CliError;
use super::presence::{TimeArg, parse_time};
use crate::clock::Clock;
use crate::domain::{AssociateId, Change, RecordedStatus};
use crate::http::presence::change_json;
use crate::store::{HistoryQuery, Store};
use crate::timestamp;

/// Changes read from the store at a time.
const PAGE: usize = 1000;

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// One associate's changes only.
    #[arg(long)]
    associate: Option<i32>,
    /// Changes made at or after this time: RFC 3339 (2026-12-24T14:00:00Z) or a duration ago
    /// (30m, 2h, 1d).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    since: Option<TimeArg>,
    /// Changes numbered after this revision only.
    #[arg(long)]
    after: Option<i64>,
    /// One JSON object a line, as `GET /presence/v1/changes` gives each change.
    #[arg(long)]
    json: bool,
}

pub async fn history(store: &Store, args: HistoryArgs) -> Result<(), CliError> {
    let now = Clock::System.now_millis();
    let since = args.since.map(|since| match since {
        TimeArg::At(at) => at,
        TimeArg::FromNow(span) => now.saturating_sub(span),
    });
    let mut after = args.after;
    let mut out = std::io::stdout().lock();
    let written = |source| CliError::Io {
        context: "cannot write the history",
        source,
    };
    if !args.json {
        writeln!(
            out,
            "revision  at                       associate  kind              from -> to  by  via"
        )
        .map_err(written)?;
    }
    loop {
        let page = store
            .history(HistoryQuery {
                after,
                associate: args.associate.map(AssociateId::new),
                since,
                limit: PAGE,
            })
            .await?;
        if page.expired {
            return Err(CliError::HistoryExpired(after.unwrap_or(0)));
        }
        for change in &page.changes {
            let text = if args.json {
                change_json(change)
            } else {
                line(change)
            };
            writeln!(out, "{text}").map_err(written)?;
        }
        if page.changes.len() < PAGE {
            return Ok(());
        }
        after = Some(page.reached);
    }
}

fn line(change: &Change) -> String {
    let status = |recorded: &Option<RecordedStatus>| match recorded {
        None => "-".to_owned(),
        Some(r) => {
            let mut text = r.presence.status.name().to_owned();
            if let Some(message) = r.presence.message.as_deref() {
                text.push_str(&format!(" \"{message}\""));
            }
            if let Some(until) = r.until {
                text.push_str(&format!(" until {}", timestamp::format(until)));
            }
            text
        }
    };
    format!(
        "{:<9} {} {:<10} {:<17} {} -> {}  {}  {}",
        change.revision,
        timestamp::format(change.at),
        change.associate_id.get(),
        change.kind.name(),
        status(&change.from),
        status(&change.to),
        who(change.by.as_deref()),
        via(change.via.as_deref()),
    )
}

/// `user 963`, `commandLine` or `timer`, from the change's `by`.
fn who(by: Option<&str>) -> String {
    let Some(by) = by.and_then(|by| serde_json::from_str::<serde_json::Value>(by).ok()) else {
        return "-".to_owned();
    };
    match (by["kind"].as_str(), by["associateId"].as_i64()) {
        (Some("user"), Some(id)) => format!("user {id}"),
        (Some(kind), _) => kind.to_owned(),
        _ => "-".to_owned(),
    }
}

/// `basic` or `basic/Application`, from the change's `via`.
fn via(via: Option<&str>) -> String {
    let Some(via) = via.and_then(|via| serde_json::from_str::<serde_json::Value>(via).ok()) else {
        return "-".to_owned();
    };
    match (via["scheme"].as_str(), via["application"].as_str()) {
        (Some(scheme), Some(application)) => format!("{scheme}/{application}"),
        (Some(scheme), None) => scheme.to_owned(),
        _ => "-".to_owned(),
    }
}
