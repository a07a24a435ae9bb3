//! `presence user import FILE`: many Service users from a CSV or JSON file, checked whole
//! before anything is stored, their passwords hashed on every core, stored in one transaction.
//!
//! A user found already under the same login and associate is left exactly as it is (its
//! password is not hashed again), so importing a file twice changes nothing the second time.
//! Where such a user differs from its record (administrator or not, with a password or
//! without), it is still left as it is, and named, so that the administrator can change it with
//! the commands made for that: an import only ever adds.

use std::collections::HashMap;
use std::io::{IsTerminal, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Deserialize;

use super::CliError;
use crate::domain::AssociateId;
use crate::http::auth::MAX_LOGIN_BYTES;
use crate::password;
use crate::records;
use crate::store::{NewServiceUser, Store, StoreError};

/// The invalid records an aborted import lists; the rest are counted.
const LISTED: usize = 20;

/// One user as read from the file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    /// Where the record begins in the file, counted from 1: the CSV line, or the line of the
    /// JSON object's `{`.
    line: usize,
    login: String,
    associate_id: AssociateId,
    is_admin: bool,
    /// `None`: the user cannot sign in with a password (only by ticket, token or identity
    /// provider).
    password: Option<String>,
}

/// A record that cannot be imported, and why, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Invalid {
    line: usize,
    problem: String,
}

pub(super) async fn import(store: &Store, file: &Path, skip_invalid: bool) -> Result<(), CliError> {
    let shown = if file == Path::new("-") {
        "standard input".to_owned()
    } else {
        file.display().to_string()
    };
    let text = read(file)?;
    let file_error = |problem: String| CliError::UserFile {
        file: shown.clone(),
        problem,
    };
    let (records, mut invalid) = if is_json(file, &text) {
        parse_json(&text)
    } else {
        parse_csv(&text)
    }
    .map_err(file_error)?;
    let read = records.len() + invalid.len();
    let records = unique_within_file(records, &mut invalid);
    let existing = store.list_users().await?;
    let Checked {
        new,
        unchanged,
        differing,
    } = against_existing(records, &existing, &mut invalid);
    invalid.sort_by_key(|record| record.line);
    if !invalid.is_empty() && !skip_invalid {
        for record in invalid.iter().take(LISTED) {
            eprintln!("line {}: {}", record.line, record.problem);
        }
        if invalid.len() > LISTED {
            eprintln!("and {} more", invalid.len() - LISTED);
        }
        return Err(CliError::InvalidUsers {
            count: invalid.len(),
            read,
            file: shown,
        });
    }

    let users = hash_passwords(new).await?;
    let progress = Progress::start();
    progress.stage(format!(
        "storing {} user(s) in one transaction",
        users.len()
    ));
    let imported = store.import_users(users).await?;
    progress.finish();

    for record in &invalid {
        eprintln!("line {}: skipped: {}", record.line, record.problem);
    }
    for note in differing.iter().take(LISTED) {
        eprintln!("{note}");
    }
    if differing.len() > LISTED {
        eprintln!("and {} more left as they are", differing.len() - LISTED);
    }
    let unchanged = unchanged + imported.unchanged;
    let differ = match differing.len() {
        0 => String::new(),
        count => format!(" ({count} differ from the file)"),
    };
    println!(
        "imported {}, unchanged {unchanged}{differ}, invalid {} (from {shown})",
        imported.added,
        invalid.len()
    );
    Ok(())
}

fn read(file: &Path) -> Result<String, CliError> {
    let io = |source| CliError::Io {
        context: "cannot read the user file",
        source,
    };
    if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(io)?;
        return Ok(text);
    }
    std::fs::read_to_string(file).map_err(io)
}

/// JSON by its extension, or, from standard input or under any other name, by its first
/// character: a JSON file is an array.
fn is_json(file: &Path, text: &str) -> bool {
    file.extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("json"))
        || text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with('[')
}

/// The columns a CSV file may have, in any order; the first two are required.
const COLUMNS: [&str; 4] = ["login", "associate_id", "admin", "password"];

/// Reads CSV with a header naming its columns (`login,associate_id,admin,password`; `admin`
/// and `password` may be left out). A file that cannot be read as CSV, or whose header is
/// wrong, is an error; a record that is wrong is returned as invalid.
fn parse_csv(text: &str) -> Result<(Vec<Record>, Vec<Invalid>), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = records::read_csv(text)
        .map_err(|e| e.to_string())?
        .into_iter();
    let expected = "expected the header login,associate_id,admin,password";
    let Some((line, header)) = rows.next() else {
        return Err(format!("the file is empty; {expected}"));
    };
    // Where each of COLUMNS is in a row.
    let mut at = [None; COLUMNS.len()];
    for (index, name) in header.iter().enumerate() {
        let column = COLUMNS
            .iter()
            .position(|column| column.eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("line {line}: unknown column '{name}'; {expected}"))?;
        if at[column].replace(index).is_some() {
            return Err(format!("line {line}: the column {name} is named twice"));
        }
    }
    let (Some(login_at), Some(associate_at)) = (at[0], at[1]) else {
        return Err(format!(
            "line {line}: the columns login and associate_id are required; {expected}"
        ));
    };
    let mut users = Vec::new();
    let mut invalid = Vec::new();
    for (line, fields) in rows {
        let checked = if fields.len() == header.len() {
            let field = |at: Option<usize>| at.map_or("", |at| fields[at].as_str());
            check_record(
                line,
                fields[login_at].clone(),
                &fields[associate_at],
                field(at[2]),
                field(at[3]),
            )
        } else {
            Err(format!(
                "expected {} fields, found {}",
                header.len(),
                fields.len()
            ))
        };
        match checked {
            Ok(user) => users.push(user),
            Err(problem) => invalid.push(Invalid { line, problem }),
        }
    }
    Ok((users, invalid))
}

/// One record of a JSON file, its members named as the WebAPI names them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct JsonRecord {
    login: String,
    associate_id: i64,
    #[serde(default)]
    admin: Option<bool>,
    /// Read as any JSON value, so that a password of the wrong type is refused without its
    /// value in the message.
    #[serde(default)]
    password: Option<serde_json::Value>,
}

/// An element of the array: a record, or what is wrong with it, read one at a time so that a
/// record of the wrong shape is one invalid record rather than a file that cannot be read.
enum Lenient {
    Record(Result<JsonRecord, String>),
    /// Not even an object: the lines of the objects after it could not be told.
    NotAnObject,
}

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        if !value.is_object() {
            return Ok(Self::NotAnObject);
        }
        Ok(Self::Record(
            JsonRecord::deserialize(value).map_err(|error| error.to_string()),
        ))
    }
}

/// Reads JSON: an array of `{"login", "associateId", "admin", "password"}` objects (`admin`
/// and `password` may be left out or null). A record's line is the one its `{` is on.
fn parse_json(text: &str) -> Result<(Vec<Record>, Vec<Invalid>), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rows: Vec<Lenient> = serde_json::from_str(text).map_err(|error| {
        let message = error.to_string();
        let position = format!(" at line {} column {}", error.line(), error.column());
        let problem = message.strip_suffix(&position).unwrap_or(&message);
        format!("line {}: {problem}", error.line())
    })?;
    if let Some(index) = rows
        .iter()
        .position(|row| matches!(row, Lenient::NotAnObject))
    {
        return Err(format!(
            "element {} of the array is not an object; each user is one {{\"login\": ..., \"associateId\": ...}}",
            index + 1
        ));
    }
    let lines = records::json_object_lines(text);
    let mut users = Vec::new();
    let mut invalid = Vec::new();
    for (index, row) in rows.into_iter().enumerate() {
        let Lenient::Record(row) = row else {
            continue;
        };
        // Each element of a parsed array of objects opens with a `{` of its own.
        let line = lines.get(index).copied().unwrap_or(1);
        let checked = row.and_then(|row| {
            let password = match row.password {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(password)) => password,
                Some(_) => return Err("password is not a string".to_owned()),
            };
            check_record(
                line,
                row.login,
                &row.associate_id.to_string(),
                if row.admin.unwrap_or(false) {
                    "true"
                } else {
                    "false"
                },
                &password,
            )
        });
        match checked {
            Ok(user) => users.push(user),
            Err(problem) => invalid.push(Invalid { line, problem }),
        }
    }
    Ok((users, invalid))
}

/// Checks one record's fields, as text; the problem, if any, in words.
fn check_record(
    line: usize,
    login: String,
    associate_id: &str,
    admin: &str,
    password: &str,
) -> Result<Record, String> {
    if login.is_empty() {
        return Err("the login is empty".into());
    }
    if login.len() > MAX_LOGIN_BYTES {
        return Err(format!(
            "the login has {} bytes; at most {MAX_LOGIN_BYTES} can sign in",
            login.len()
        ));
    }
    let associate_id = match associate_id.parse::<i32>() {
        Ok(id) if id > 0 => AssociateId::new(id),
        _ => {
            return Err(format!(
                "the associate id '{associate_id}' is not a positive whole number"
            ));
        }
    };
    let is_admin = match admin.to_ascii_lowercase().as_str() {
        "" | "false" | "no" | "0" => false,
        "true" | "yes" | "1" => true,
        _ => {
            return Err(format!(
                "admin is '{admin}'; expected true/false, yes/no, 1/0 or nothing"
            ));
        }
    };
    Ok(Record {
        line,
        login,
        associate_id,
        is_admin,
        password: (!password.is_empty()).then(|| password.to_owned()),
    })
}

/// Keeps the first record of each login (in any case) and of each associate; the later ones
/// are invalid, naming the line of the first.
fn unique_within_file(records: Vec<Record>, invalid: &mut Vec<Invalid>) -> Vec<Record> {
    let mut logins = HashMap::with_capacity(records.len());
    let mut associates = HashMap::with_capacity(records.len());
    let mut kept = Vec::with_capacity(records.len());
    for record in records {
        let first_login = logins.get(&record.login.to_ascii_lowercase()).copied();
        let first_associate = associates.get(&record.associate_id).copied();
        let problem = match (first_login, first_associate) {
            (Some(first), _) => format!("the login '{}' is on line {first} too", record.login),
            (None, Some(first)) => {
                format!("associate {} is on line {first} too", record.associate_id)
            }
            (None, None) => {
                logins.insert(record.login.to_ascii_lowercase(), record.line);
                associates.insert(record.associate_id, record.line);
                kept.push(record);
                continue;
            }
        };
        invalid.push(Invalid {
            line: record.line,
            problem,
        });
    }
    kept
}

/// The records sorted by what the database holds already.
struct Checked {
    /// Neither the login nor the associate is taken.
    new: Vec<Record>,
    /// There already as the same login and associate.
    unchanged: usize,
    /// What differs between an unchanged user and its record, one line each.
    differing: Vec<String>,
}

fn against_existing(
    records: Vec<Record>,
    existing: &[crate::store::ServiceUser],
    invalid: &mut Vec<Invalid>,
) -> Checked {
    let by_login: HashMap<String, &crate::store::ServiceUser> = existing
        .iter()
        .map(|user| (user.login.to_ascii_lowercase(), user))
        .collect();
    let by_associate: HashMap<AssociateId, &crate::store::ServiceUser> = existing
        .iter()
        .map(|user| (user.associate_id, user))
        .collect();
    let mut checked = Checked {
        new: Vec::with_capacity(records.len()),
        unchanged: 0,
        differing: Vec::new(),
    };
    for record in records {
        let same_login = by_login.get(&record.login.to_ascii_lowercase());
        let same_associate = by_associate.get(&record.associate_id);
        let problem = match (same_login, same_associate) {
            (None, None) => {
                checked.new.push(record);
                continue;
            }
            (Some(user), Some(other)) if user.associate_id == other.associate_id => {
                checked.unchanged += 1;
                if let Some(note) = differences(&record, user) {
                    checked.differing.push(note);
                }
                continue;
            }
            (Some(user), _) => format!(
                "the login '{}' is associate {}'s already",
                record.login, user.associate_id
            ),
            (None, Some(user)) => format!(
                "associate {} has the login '{}' already",
                record.associate_id, user.login
            ),
        };
        invalid.push(Invalid {
            line: record.line,
            problem,
        });
    }
    checked
}

/// What differs between a user found already and its record, if anything can be seen without
/// hashing (a password is not compared: that would cost a hash per user on every run).
fn differences(record: &Record, user: &crate::store::ServiceUser) -> Option<String> {
    let mut found = Vec::new();
    if record.login != user.login {
        found.push(format!("its login is spelt '{}' there", user.login));
    }
    if record.is_admin != user.is_admin {
        found.push(
            if user.is_admin {
                "it is an administrator there"
            } else {
                "it is no administrator there"
            }
            .to_owned(),
        );
    }
    if record.password.is_some() != user.has_password {
        found.push(
            if user.has_password {
                "it has a password there"
            } else {
                "it has no password there"
            }
            .to_owned(),
        );
    }
    (!found.is_empty()).then(|| {
        format!(
            "line {}: '{}' (associate {}) is there already and was left as it is, though {}",
            record.line,
            record.login,
            record.associate_id,
            found.join(" and ")
        )
    })
}

/// Hashes the records' passwords on one thread per core, showing progress, and makes them
/// users, present as `user add` makes them.
async fn hash_passwords(records: Vec<Record>) -> Result<Vec<NewServiceUser>, CliError> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let progress = Arc::new(Progress::start());
    let hashed = tokio::task::spawn_blocking(move || {
        let passwords: Vec<&str> = records
            .iter()
            .filter_map(|record| record.password.as_deref())
            .collect();
        let mut hashes = Vec::new();
        if !passwords.is_empty() {
            progress.count("hashed", "passwords", passwords.len());
            hashes = password::hash_many(&passwords, threads, &|| progress.advance());
            progress.finish();
        }
        (records, hashes)
    })
    .await
    .map_err(|_| CliError::Store(StoreError::TaskFailed))?;
    let (records, hashes) = hashed;
    let mut hashes = hashes.into_iter();
    records
        .into_iter()
        .map(|record| {
            let password_hash = match record.password {
                Some(_) => Some(hashes.next().ok_or(StoreError::TaskFailed)??),
                None => None,
            };
            let mut user = NewServiceUser::present(record.associate_id, record.login);
            user.password_hash = password_hash;
            user.is_admin = record.is_admin;
            Ok(user)
        })
        .collect()
}

/// Progress on standard error: a bar on a terminal, and elsewhere (a log, a pipe) a plain line
/// at each tenth of the way, so that a log shows the import moving without a line per user.
enum Progress {
    Bar(indicatif::ProgressBar),
    Lines {
        /// What is counted: `("hashed", "passwords")` prints `hashed 50/100 passwords`.
        words: std::sync::Mutex<(&'static str, &'static str)>,
        total: AtomicUsize,
        done: AtomicUsize,
    },
}

impl Progress {
    fn start() -> Self {
        if std::io::stderr().is_terminal() {
            Self::Bar(indicatif::ProgressBar::hidden())
        } else {
            Self::Lines {
                words: std::sync::Mutex::new(("", "")),
                total: AtomicUsize::new(0),
                done: AtomicUsize::new(0),
            }
        }
    }

    /// Begins counting `total` things.
    fn count(&self, verb: &'static str, things: &'static str, total: usize) {
        match self {
            Self::Bar(bar) => {
                bar.set_length(u64::try_from(total).unwrap_or(u64::MAX));
                bar.set_position(0);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(&format!(
                        "{{bar:40}} {verb} {{pos}}/{{len}} {things} ({{elapsed}}, about {{eta}} left)"
                    ))
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            Self::Lines {
                words, total: t, ..
            } => {
                *words
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = (verb, things);
                t.store(total, Ordering::Relaxed);
            }
        }
    }

    /// One more done; may be called from several threads at once.
    fn advance(&self) {
        match self {
            Self::Bar(bar) => bar.inc(1),
            Self::Lines { words, total, done } => {
                let total = total.load(Ordering::Relaxed);
                let done = done.fetch_add(1, Ordering::Relaxed) + 1;
                let step = (total / 10).max(1);
                if done % step == 0 || done == total {
                    let (verb, things) = *words
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    eprintln!("{verb} {done}/{total} {things}");
                }
            }
        }
    }

    /// A step whose progress cannot be counted: a spinner, or one line.
    fn stage(&self, what: String) {
        match self {
            Self::Bar(bar) => {
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                bar.set_message(what);
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                bar.enable_steady_tick(std::time::Duration::from_millis(100));
            }
            Self::Lines { .. } => eprintln!("{what}"),
        }
    }

    fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(invalid: &[Invalid]) -> Vec<(usize, &str)> {
        invalid
            .iter()
            .map(|record| (record.line, record.problem.as_str()))
            .collect()
    }

    #[test]
    fn csv_records_are_read_with_their_lines_and_checked() {
        let csv = "login,associate_id,admin,password\n\
                   anna,7,,\n\
                   \"smith, john\",8,yes,\" pass word \"\n\
                   \n\
                   ,9,no,x\n\
                   carl,0,no,x\n\
                   dora,10,maybe,\n\
                   erik,11\n";
        let (users, invalid) = parse_csv(csv).unwrap();
        assert_eq!(
            users,
            [
                Record {
                    line: 2,
                    login: "anna".into(),
                    associate_id: AssociateId::new(7),
                    is_admin: false,
                    password: None,
                },
                Record {
                    line: 3,
                    login: "smith, john".into(),
                    associate_id: AssociateId::new(8),
                    is_admin: true,
                    password: Some(" pass word ".into()),
                },
            ]
        );
        let found = lines(&invalid);
        assert_eq!(
            found.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
            [5, 6, 7, 8]
        );
        assert!(found[0].1.contains("login is empty"), "{found:?}");
        assert!(found[1].1.contains("'0'"), "{found:?}");
        assert!(found[2].1.contains("'maybe'"), "{found:?}");
        assert!(
            found[3].1.contains("expected 4 fields, found 2"),
            "{found:?}"
        );
    }

    #[test]
    fn csv_columns_may_come_in_any_order_and_the_optional_ones_be_left_out() {
        let (users, invalid) = parse_csv("Associate_Id,Login\n3,x\n").unwrap();
        assert!(invalid.is_empty());
        assert_eq!(users[0].associate_id, AssociateId::new(3));
        assert_eq!(users[0].login, "x");
        for (csv, words) in [
            ("", "empty"),
            ("login,admin\n", "required"),
            ("login,associate_id,role\n", "unknown column 'role'"),
            ("login,login,associate_id\n", "twice"),
            ("login,associate_id\n\"x,1\n", "not closed"),
        ] {
            let error = parse_csv(csv).unwrap_err();
            assert!(error.contains(words), "{csv:?}: {error}");
        }
    }

    #[test]
    fn json_records_are_read_at_the_line_of_their_brace() {
        let json = r#"[
  {"login": "anna", "associateId": 7},
  {"login": "boss", "associateId": 1, "admin": true, "password": "pw"},
  {"login": "carl", "associateId": "eight"},
  {"login": "dora", "associateId": 9, "role": "x"},
  {"login": "", "associateId": 10, "password": null}
]"#;
        let (users, invalid) = parse_json(json).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!((users[1].line, users[1].is_admin), (3, true));
        assert_eq!(users[1].password.as_deref(), Some("pw"));
        let found = lines(&invalid);
        assert_eq!(
            found.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
            [4, 5, 6]
        );
        assert!(found[0].1.contains("invalid type"), "{found:?}");
        assert!(found[1].1.contains("role"), "{found:?}");
        assert!(found[2].1.contains("empty"), "{found:?}");
        assert!(
            parse_json("[\n{\"login\": ")
                .unwrap_err()
                .starts_with("line 2")
        );
        assert!(parse_json("{}").is_err());
        let error = parse_json(r#"[{"login": "a", "associateId": 1}, 7]"#).unwrap_err();
        assert!(
            error.contains("element 2 of the array is not an object"),
            "{error}"
        );
    }

    #[test]
    fn a_long_login_is_refused_at_the_bound_sign_in_uses() {
        let long = "x".repeat(MAX_LOGIN_BYTES + 1);
        let csv = format!("login,associate_id\n{},1\n{long},2\n", &long[1..]);
        let (users, invalid) = parse_csv(&csv).unwrap();
        assert_eq!(users.len(), 1);
        assert!(invalid[0].problem.contains("257 bytes"), "{invalid:?}");
    }

    #[test]
    fn the_first_record_of_a_login_or_associate_wins() {
        let (users, _) = parse_csv("login,associate_id\nanna,1\nANNA,2\nbob,1\ncarl,3\n").unwrap();
        let mut invalid = Vec::new();
        let kept = unique_within_file(users, &mut invalid);
        assert_eq!(
            kept.iter().map(|r| r.login.as_str()).collect::<Vec<_>>(),
            ["anna", "carl"]
        );
        assert_eq!(
            lines(&invalid),
            [
                (3, "the login 'ANNA' is on line 2 too"),
                (4, "associate 1 is on line 2 too")
            ]
        );
    }
}
