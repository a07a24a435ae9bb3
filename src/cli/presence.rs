//! The presence commands: read and set a status (timed or not), list everyone's presence, and
//! plan, list and cancel absences. Times are given as RFC 3339 or as a duration from now.

use std::io::Write;

use clap::Subcommand;

use super::CliError;
use crate::clock::Clock;
use crate::domain::{Actor, AssociateId, Message, Presence, UserPresenceStatus, UserStatus};
use crate::http::encode;
use crate::http::negotiate::ResponseFormat;
use crate::http::select::Select;
use crate::store::{AbsencePlanned, NewAbsence, StatusChange, StatusChanged, Store};
use crate::timestamp;

#[derive(Debug, Subcommand)]
pub enum StatusCommand {
    /// Print an associate's presence now, as the WebAPI answers it (JSON).
    Get { associate_id: i32 },
    /// Set an associate's presence and print it as `get` does.
    Set {
        associate_id: i32,
        /// A status name (StatusNormal, StatusNotAvailable, ...) or number.
        status: String,
        #[arg(long)]
        message: Option<String>,
        /// When a StatusNotAvailable ends by itself and the user is present again: a time in
        /// RFC 3339 form (2026-12-24T14:00:00Z) or a duration from now (30s, 90m, 2h, 1d,
        /// 1h30m).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        until: Option<TimeArg>,
    },
    /// List every Service user's presence now, in associate order: associate, login, status,
    /// until (the end of a timed status) and message.
    List {
        /// Only the users who are present (StatusNormal), those tickets are assigned to.
        #[arg(long)]
        available: bool,
        /// Only the users of this status (a name or number).
        #[arg(long)]
        status: Option<String>,
        /// One JSON object a line instead of columns: associateId, login, status, message,
        /// until, available, revision, changedAt.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AbsenceCommand {
    /// Plan an absence: the user is StatusNotAvailable, with its message, from --from up to
    /// --until. Prints its id and times.
    Add {
        associate_id: i32,
        /// When it starts: RFC 3339 (2026-12-24T08:00:00Z) or a duration from now (2h, 1d).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        from: TimeArg,
        /// When it ends (not included), at most 366 days after it starts; in the same forms.
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        until: TimeArg,
        #[arg(long)]
        message: Option<String>,
    },
    /// List an associate's absences that have not ended: id, from, until, message.
    List { associate_id: i32 },
    /// Cancel one of an associate's absences.
    Remove { associate_id: i32, absence_id: i64 },
}

/// The longest absence one can plan: a year's leave, leap day included.
const MAX_ABSENCE_MILLIS: i64 = 366 * DAY_MILLIS;
const DAY_MILLIS: i64 = 24 * 3_600_000;

/// How many users `status list` reads from the database at once: few round trips, and memory
/// that stays small however many users there are.
const LIST_PAGE: usize = 1000;

/// A time on the command line: a moment, or a span from the moment the command runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeArg {
    At(i64),
    FromNow(i64),
}

impl TimeArg {
    fn at(self, now: i64) -> i64 {
        match self {
            Self::At(at) => at,
            Self::FromNow(span) => now.saturating_add(span),
        }
    }
}

/// Reads RFC 3339, or a duration as numbers each followed by a unit, s, m, h or d (`1h30m`).
pub(super) fn parse_time(text: &str) -> Result<TimeArg, String> {
    if let Ok(at) = timestamp::parse(text) {
        return Ok(TimeArg::At(at));
    }
    parse_duration(text).map(TimeArg::FromNow).ok_or_else(|| {
        format!(
            "'{text}' is neither a time in RFC 3339 form (2026-12-24T14:00:00Z) nor a duration \
             from now (30s, 90m, 2h, 1d, 1h30m)"
        )
    })
}

/// Milliseconds, or `None` if `text` is not one or more number-and-unit pairs.
fn parse_duration(text: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let number: i64 = rest[..digits].parse().ok()?;
        let mut units = rest[digits..].chars();
        let unit: i64 = match units.next()? {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => DAY_MILLIS,
            _ => return None,
        };
        total = total.checked_add(number.checked_mul(unit)?)?;
        rest = units.as_str();
    }
    Some(total)
}

pub(super) async fn status(store: &Store, command: StatusCommand) -> Result<(), CliError> {
    let now = Clock::System.now_millis();
    let (associate_id, presence) = match command {
        StatusCommand::Get { associate_id } => {
            let associate_id = AssociateId::new(associate_id);
            let presence = store.presence(associate_id).await?;
            (associate_id, presence.map(|p| p.at(now).presence))
        }
        StatusCommand::Set {
            associate_id,
            status,
            message,
            until: None,
        } => {
            let associate_id = AssociateId::new(associate_id);
            let presence = UserPresenceStatus {
                status: status.parse()?,
                message: Message::new(message)?,
            };
            (
                associate_id,
                store
                    .set_presence(associate_id, presence, &Actor::COMMAND_LINE)
                    .await?,
            )
        }
        StatusCommand::Set {
            associate_id,
            status,
            message,
            until: Some(until),
        } => {
            let associate_id = AssociateId::new(associate_id);
            let status: UserStatus = status.parse()?;
            // Only a status the user may leave by themselves can end by itself: the server
            // turns a timed status into StatusNormal when its time is up.
            if status != UserStatus::StatusNotAvailable {
                return Err(CliError::UntilWithStatus(status));
            }
            let until = until.at(now);
            if until <= now {
                return Err(CliError::NotAhead {
                    what: "--until",
                    at: timestamp::format(until),
                });
            }
            let change = StatusChange {
                presence: UserPresenceStatus {
                    status,
                    message: Message::new(message)?,
                },
                until: Some(until),
                if_revision: None,
                at: now,
                actor: Actor::COMMAND_LINE,
            };
            // No revision is asked for, so none can be stale: what is stored is printed.
            if store.set_status(associate_id, change).await? == StatusChanged::NoUser {
                return Err(CliError::NotAServiceUser(associate_id));
            }
            let stored = store.read_presence(associate_id).await?;
            (associate_id, stored.map(|p| p.at(now).presence))
        }
        StatusCommand::List {
            available,
            status,
            json,
        } => {
            let status: Option<UserStatus> = status.as_deref().map(str::parse).transpose()?;
            let filter = Filter { available, status };
            return list_presences(store, filter, json, now).await;
        }
    };
    let presence = presence.ok_or(CliError::NotAServiceUser(associate_id))?;
    let view = Select::ALL.apply(&presence);
    let json = encode::presence(ResponseFormat::ApplicationJson, Some(&view));
    println!("{}", String::from_utf8_lossy(&json));
    Ok(())
}

/// Which users `status list` shows, by their presence now.
struct Filter {
    available: bool,
    status: Option<UserStatus>,
}

/// One line of `status list --json`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ListedPresence<'a> {
    associate_id: i32,
    login: &'a str,
    status: &'a str,
    message: Option<&'a str>,
    until: Option<String>,
    available: bool,
    revision: i64,
    changed_at: String,
}

async fn list_presences(
    store: &Store,
    filter: Filter,
    json: bool,
    now: i64,
) -> Result<(), CliError> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if !json {
        write_or_stop(writeln!(
            out,
            "{:>10}  {:<24}  {:<18}  {:<24}  MESSAGE",
            "ASSOCIATE", "LOGIN", "STATUS", "UNTIL"
        ))?;
    }
    // A page at a time, by associate: memory stays that of one page however many users.
    let mut after = 0;
    loop {
        let page = store.presence_page(after, LIST_PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = i64::from(last.get());
        for (associate_id, presence) in &page {
            if !write_listed(&mut out, *associate_id, presence, &filter, json, now)? {
                return Ok(());
            }
        }
        if page.len() < LIST_PAGE {
            break;
        }
    }
    write_or_stop(out.flush()).map(drop)
}

/// Writes one user's line if the filter keeps them; `false` once the reader has gone.
fn write_listed(
    out: &mut impl Write,
    associate_id: AssociateId,
    presence: &Presence,
    filter: &Filter,
    json: bool,
    now: i64,
) -> Result<bool, CliError> {
    let effective = presence.at(now);
    let status = effective.presence.status;
    if (filter.available && !effective.available())
        || filter.status.is_some_and(|wanted| wanted != status)
    {
        return Ok(true);
    }
    let message = effective.presence.message.as_deref();
    let until = effective.until.map(timestamp::format);
    if json {
        let line = ListedPresence {
            associate_id: associate_id.get(),
            login: &presence.login,
            status: status.name(),
            message,
            until,
            available: effective.available(),
            revision: presence.revision,
            changed_at: timestamp::format(presence.changed_at),
        };
        let text = serde_json::to_string(&line).expect("plain fields serialise");
        write_or_stop(writeln!(out, "{text}"))
    } else {
        let line = format!(
            "{:>10}  {:<24}  {:<18}  {:<24}  {}",
            associate_id,
            presence.login,
            // The name, not the status: Display writes it without the column's padding.
            status.name(),
            until.as_deref().unwrap_or(""),
            message.unwrap_or("")
        );
        write_or_stop(writeln!(out, "{}", line.trim_end()))
    }
}

/// A list cut short by its reader (`| head`) is no failure: `Ok(false)` says to stop.
fn write_or_stop(written: std::io::Result<()>) -> Result<bool, CliError> {
    match written {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(source) => Err(CliError::Io {
            context: "cannot write the list",
            source,
        }),
    }
}

pub(super) async fn absence(store: &Store, command: AbsenceCommand) -> Result<(), CliError> {
    let now = Clock::System.now_millis();
    match command {
        AbsenceCommand::Add {
            associate_id,
            from,
            until,
            message,
        } => {
            let associate_id = AssociateId::new(associate_id);
            let (from, until) = (from.at(now), until.at(now));
            let span = || (timestamp::format(from), timestamp::format(until));
            if from >= until {
                let (from, until) = span();
                return Err(CliError::AbsenceEndsFirst { from, until });
            }
            if until - from > MAX_ABSENCE_MILLIS {
                let (from, until) = span();
                return Err(CliError::AbsenceTooLong { from, until });
            }
            if until <= now {
                return Err(CliError::NotAhead {
                    what: "--until",
                    at: timestamp::format(until),
                });
            }
            let absence = NewAbsence {
                from,
                until,
                message: Message::new(message)?,
                at: now,
                actor: Actor::COMMAND_LINE,
            };
            match store.plan_absence(associate_id, absence).await? {
                AbsencePlanned::Planned(absence) => println!(
                    "planned absence {} of associate {associate_id} from {} until {}",
                    absence.id,
                    timestamp::format(absence.from),
                    timestamp::format(absence.until)
                ),
                AbsencePlanned::NoUser => return Err(CliError::NotAServiceUser(associate_id)),
                AbsencePlanned::Overlaps(other) => {
                    return Err(CliError::AbsenceOverlaps {
                        id: other.id,
                        from: timestamp::format(other.from),
                        until: timestamp::format(other.until),
                    });
                }
                AbsencePlanned::TooMany => return Err(CliError::TooManyAbsences(associate_id)),
            }
        }
        AbsenceCommand::List { associate_id } => {
            let associate_id = AssociateId::new(associate_id);
            let presence = store
                .read_presence(associate_id)
                .await?
                .ok_or(CliError::NotAServiceUser(associate_id))?;
            println!("{:>10}  {:<24}  {:<24}  MESSAGE", "ID", "FROM", "UNTIL");
            for absence in presence.planned(now) {
                let line = format!(
                    "{:>10}  {:<24}  {:<24}  {}",
                    absence.id,
                    timestamp::format(absence.from),
                    timestamp::format(absence.until),
                    absence.message.as_deref().unwrap_or("")
                );
                println!("{}", line.trim_end());
            }
        }
        AbsenceCommand::Remove {
            associate_id,
            absence_id,
        } => {
            let associate_id = AssociateId::new(associate_id);
            if !store
                .cancel_absence(associate_id, absence_id, now, &Actor::COMMAND_LINE)
                .await?
            {
                return Err(CliError::UnknownAbsence {
                    associate_id,
                    absence_id,
                });
            }
            println!("cancelled absence {absence_id} of associate {associate_id}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_numbers_with_units_in_any_combination() {
        assert_eq!(parse_duration("30s"), Some(30_000));
        assert_eq!(parse_duration("90m"), Some(90 * 60_000));
        assert_eq!(parse_duration("2h"), Some(2 * 3_600_000));
        assert_eq!(parse_duration("1d"), Some(DAY_MILLIS));
        assert_eq!(parse_duration("1h30m"), Some(90 * 60_000));
        for bad in [
            "",
            "2",
            "h",
            "2x",
            "1.5h",
            "-2h",
            "2h 30m",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_time_is_a_moment_or_a_span_from_now() {
        assert_eq!(
            parse_time("2026-12-24T14:00:00Z"),
            Ok(TimeArg::At(
                timestamp::parse("2026-12-24T14:00:00Z").unwrap()
            ))
        );
        assert_eq!(parse_time("2h").map(|t| t.at(1_000)), Ok(1_000 + 7_200_000));
        assert!(parse_time("tomorrow").unwrap_err().contains("'tomorrow'"));
    }
}
