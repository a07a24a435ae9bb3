//! The configuration file, `--config FILE`: a TOML file of settings, each under its flag's
//! long name (`max-connections = 4096`). The global settings and those of `serve` can be in
//! it; the defaults give way to it, it to the `PRESENCE_*` variables, and they to the flags.
//!
//! The command line is parsed twice. The first parse, with what arguments require of each
//! other and what conflicts left out, tells where the file is and which settings the command
//! line or the environment already gives. The file's values for the other settings are then
//! added to the arguments as flags (the global ones in front, `serve`'s at the end), and the
//! second parse is the real one: clap parses and checks them as if they had been typed, so a
//! `jwt-issuer` in the file and `--jwt-audience` on the command line make a pair, and either
//! alone is refused as it would be on the command line. Handing the file's values to clap as
//! default values instead would not do: clap counts a default as absent, both for what an
//! argument requires and for what conflicts with it.
//!
//! Each value is checked when the file is read, by the flag's own parser, so that a bad one is
//! named with its file, key and line even where the environment or a flag overrides it.

use std::any::TypeId;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use clap::builder::Resettable;
use clap::error::{ContextKind, ContextValue};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use toml::de::{DeTable, DeValue};

/// The id of `--config` itself, which is no setting of the file.
const CONFIG: &str = "config";

/// A command line that cannot be run: clap's own errors, help and version included, and the
/// configuration file's.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error(transparent)]
    Clap(#[from] clap::Error),
    #[error(transparent)]
    File(#[from] FileError),
    /// Clap's error about a command line to which the configuration file added `flags`, which
    /// the error may name although no one typed them.
    #[error("{error}note: {} gave {}", file.display(), flags.join(", "))]
    WithFile {
        error: clap::Error,
        file: PathBuf,
        flags: Vec<String>,
    },
}

impl UsageError {
    /// Prints the error as clap prints its own (help and version to standard output) and
    /// exits: 2 for a usage error, 0 after help or version.
    pub fn exit(&self) -> ! {
        match self {
            Self::Clap(error) => error.exit(),
            Self::File(error) => {
                eprintln!("error: {error}");
                std::process::exit(2)
            }
            Self::WithFile { error, file, flags } => {
                // Never help or version: the first parse, without the file, shows those.
                let _ = error.print();
                eprintln!("note: {} gave {}", file.display(), flags.join(", "));
                std::process::exit(error.exit_code())
            }
        }
    }
}

/// What is wrong with the configuration file, and where.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}", path.display(), line.map(|line| format!(", line {line}")).unwrap_or_default())]
pub struct FileError {
    path: PathBuf,
    line: Option<usize>,
    message: String,
}

/// Where a setting's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Default,
    File,
    Environment,
    Flag,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::File => "file",
            Self::Environment => "environment",
            Self::Flag => "flag",
        }
    }
}

/// The settings `serve` runs with, as `presence config show` prints them: a configuration file
/// whose every line says where its value came from, secrets redacted.
#[derive(Clone, Debug, Default)]
pub struct Effective {
    file: Option<PathBuf>,
    settings: Vec<Shown>,
}

#[derive(Clone, Debug)]
struct Shown {
    key: String,
    /// The value as TOML, redacted; `None` when the setting has none.
    value: Option<String>,
    source: Source,
}

impl fmt::Display for Effective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(path) => writeln!(
                f,
                "# The settings of `presence serve`: defaults < {} < PRESENCE_* variables < flags",
                path.display()
            )?,
            None => writeln!(
                f,
                "# The settings of `presence serve`: defaults < PRESENCE_* variables < flags \
                 (no --config file)"
            )?,
        }
        let lines: Vec<(String, Option<Source>)> = self
            .settings
            .iter()
            .map(|s| match &s.value {
                Some(value) => (format!("{} = {value}", s.key), Some(s.source)),
                None => (format!("# {} is not set", s.key), None),
            })
            .collect();
        // The comments line up, unless a long value (a database URL) would push them all far.
        let width = lines
            .iter()
            .map(|(line, _)| line.chars().count())
            .filter(|&n| n <= 48)
            .max()
            .unwrap_or(0);
        for (line, source) in lines {
            match source {
                Some(source) => writeln!(f, "{line:width$}  # {}", source.name())?,
                None => writeln!(f, "{line}")?,
            }
        }
        Ok(())
    }
}

/// What TOML value a setting takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A flag that is given or not (`--demo`): a boolean.
    Switch,
    /// A flag with a `true` or `false` value (`--auth-basic false`).
    Boolean,
    Integer,
    /// Anything else: addresses, paths, names, URLs.
    Text,
}

impl Kind {
    fn of(arg: &Arg) -> Self {
        const INTEGERS: [fn() -> TypeId; 12] = [
            TypeId::of::<u8>,
            TypeId::of::<u16>,
            TypeId::of::<u32>,
            TypeId::of::<u64>,
            TypeId::of::<u128>,
            TypeId::of::<usize>,
            TypeId::of::<i8>,
            TypeId::of::<i16>,
            TypeId::of::<i32>,
            TypeId::of::<i64>,
            TypeId::of::<i128>,
            TypeId::of::<isize>,
        ];
        let parsed = arg.get_value_parser().type_id();
        if matches!(arg.get_action(), ArgAction::SetTrue) {
            Self::Switch
        } else if parsed == TypeId::of::<bool>() {
            Self::Boolean
        } else if INTEGERS.iter().any(|integer| parsed == integer()) {
            Self::Integer
        } else {
            Self::Text
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Self::Switch | Self::Boolean => "a boolean",
            Self::Integer => "an integer",
            Self::Text => "a string",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// The command's own flags, which every subcommand takes.
    Global,
    /// `serve`'s flags, which `config show` takes too.
    Serve,
}

/// A setting of the file: a flag of the command or of `serve`.
#[derive(Clone, Debug)]
struct Setting {
    id: String,
    /// The flag's long name, the setting's key in the file.
    key: String,
    kind: Kind,
    scope: Scope,
    /// Shown as `<redacted>`: the arguments whose environment values `--help` hides.
    secret: bool,
    arg: Arg,
}

impl Setting {
    /// The settings of `command`, the global ones first, each in its flags' order.
    fn all(command: &Command) -> Vec<Self> {
        let serve = command
            .find_subcommand("serve")
            .expect("the command has `serve`");
        let global = command.get_arguments().map(|arg| (arg, Scope::Global));
        let served = serve.get_arguments().map(|arg| (arg, Scope::Serve));
        global
            .chain(served)
            .filter(|(arg, _)| arg.get_id() != CONFIG && !arg.is_positional())
            .filter_map(|(arg, scope)| {
                let key = arg.get_long()?;
                (key != "help" && key != "version").then(|| Self {
                    id: arg.get_id().to_string(),
                    key: key.to_owned(),
                    kind: Kind::of(arg),
                    scope,
                    secret: arg.is_hide_env_values_set(),
                    arg: arg.clone(),
                })
            })
            .collect()
    }

    /// The flag that gives the setting `value`: none for a switch that is off.
    fn tokens(&self, value: &str) -> Vec<OsString> {
        match self.kind {
            Kind::Switch if value == "true" => vec![format!("--{}", self.key).into()],
            Kind::Switch => Vec::new(),
            _ => vec![format!("--{}={value}", self.key).into()],
        }
    }

    /// Runs the flag's own parser on `tokens`, alone, as clap would on the command line.
    fn check(&self, tokens: &[OsString]) -> Result<(), clap::Error> {
        let alone = self
            .arg
            .clone()
            .env(Resettable::Reset)
            .global(false)
            .required(false)
            .requires(Resettable::Reset)
            .conflicts_with(Resettable::Reset);
        Command::new("presence")
            .no_binary_name(true)
            .arg(alone)
            .try_get_matches_from(tokens)
            .map(drop)
    }
}

/// A setting the file gives.
#[derive(Debug)]
struct FileValue {
    key: String,
    tokens: Vec<OsString>,
}

/// Parses the command line `args` (the program's name first) for `command`, the
/// configuration file included, and says what `serve` would run with.
pub(super) fn parse(
    command: &mut Command,
    args: Vec<OsString>,
) -> Result<(ArgMatches, Effective), UsageError> {
    let settings = Setting::all(command);
    let first = relaxed(command.clone()).try_get_matches_from(&args)?;
    let file = first.get_one::<PathBuf>(CONFIG).cloned();
    let values = match &file {
        Some(path) => read(path, &settings)?,
        None => Vec::new(),
    };
    let mut front = Vec::new();
    let mut back = Vec::new();
    let mut from_file = BTreeSet::new();
    for value in values {
        let setting = settings
            .iter()
            .find(|s| s.key == value.key)
            .expect("read keeps settings only");
        let (matches, tokens) = match setting.scope {
            Scope::Global => (&first, &mut front),
            Scope::Serve => match serving(&first) {
                Some(matches) => (matches, &mut back),
                None => continue,
            },
        };
        if given(matches.value_source(&setting.id)) {
            continue;
        }
        tokens.extend(value.tokens);
        from_file.insert(value.key);
    }
    let flags: Vec<String> = front
        .iter()
        .chain(&back)
        .map(|token| redacted_flag(&settings, token))
        .collect();
    let args = with_flags(args, front, back);
    let matches = match command.try_get_matches_from_mut(args) {
        Ok(matches) => matches,
        Err(error) if flags.is_empty() => return Err(error.into()),
        Err(error) => {
            return Err(UsageError::WithFile {
                error,
                file: file.expect("flags come from a file"),
                flags,
            });
        }
    };
    let effective = Effective {
        settings: serving(&matches)
            .map(|served| shown(&settings, &matches, served, &from_file))
            .unwrap_or_default(),
        file,
    };
    Ok((matches, effective))
}

/// `--key=value` as a note may show it: a secret's value redacted.
fn redacted_flag(settings: &[Setting], token: &OsString) -> String {
    let token = token.to_string_lossy();
    match token.split_once('=') {
        Some((flag, _))
            if settings
                .iter()
                .any(|s| s.secret && flag.strip_prefix("--") == Some(s.key.as_str())) =>
        {
            format!("{flag}=<redacted>")
        }
        _ => token.into_owned(),
    }
}

/// The command with what its arguments require of each other, and what conflicts, left out.
fn relaxed(command: Command) -> Command {
    command
        .mut_args(|arg| {
            arg.requires(Resettable::Reset)
                .conflicts_with(Resettable::Reset)
        })
        .mut_subcommands(relaxed)
}

/// The arguments of `serve` or of `config show`, which takes the same.
fn serving(matches: &ArgMatches) -> Option<&ArgMatches> {
    match matches.subcommand()? {
        ("serve", served) => Some(served),
        ("config", config) => match config.subcommand()? {
            ("show", served) => Some(served),
            _ => None,
        },
        _ => None,
    }
}

/// Whether the command line or the environment gave an argument.
fn given(source: Option<ValueSource>) -> bool {
    matches!(
        source,
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// `args` with `front` after the program's name and `back` at the end (before a `--`, should
/// there be one: `serve` and `config show` take no other arguments).
fn with_flags(args: Vec<OsString>, front: Vec<OsString>, back: Vec<OsString>) -> Vec<OsString> {
    let mut args = args.into_iter();
    let program = args.next();
    let rest: Vec<OsString> = args.collect();
    let end = rest.iter().position(|a| a == "--").unwrap_or(rest.len());
    let (before, after) = rest.split_at(end);
    program
        .into_iter()
        .chain(front)
        .chain(before.iter().cloned())
        .chain(back)
        .chain(after.iter().cloned())
        .collect()
}

/// The settings of `serve` as `matches` (global) and `served` have them.
fn shown(
    settings: &[Setting],
    matches: &ArgMatches,
    served: &ArgMatches,
    from_file: &BTreeSet<String>,
) -> Vec<Shown> {
    settings
        .iter()
        .map(|setting| {
            let matches = match setting.scope {
                Scope::Global => matches,
                Scope::Serve => served,
            };
            let source = if from_file.contains(&setting.key) {
                Source::File
            } else {
                match matches.value_source(&setting.id) {
                    Some(ValueSource::CommandLine) => Source::Flag,
                    Some(ValueSource::EnvVariable) => Source::Environment,
                    _ => Source::Default,
                }
            };
            Shown {
                key: setting.key.clone(),
                value: value(setting, matches),
                source,
            }
        })
        .collect()
}

/// A setting's value in `matches` as TOML, secrets redacted.
fn value(setting: &Setting, matches: &ArgMatches) -> Option<String> {
    if matches!(setting.kind, Kind::Switch | Kind::Boolean) {
        return matches
            .get_one::<bool>(&setting.id)
            .map(ToString::to_string);
    }
    let raw = matches.get_raw(&setting.id)?.next()?.to_string_lossy();
    Some(match setting.kind {
        Kind::Integer => raw.trim().parse::<i128>().ok()?.to_string(),
        _ if setting.secret => toml_string("<redacted>"),
        _ => toml_string(&redact_url(&raw)),
    })
}

/// Reads the configuration file at `path`: each setting it gives, checked.
fn read(path: &Path, settings: &[Setting]) -> Result<Vec<FileValue>, FileError> {
    let text = std::fs::read_to_string(path).map_err(|error| FileError {
        path: path.to_owned(),
        line: None,
        message: format!("cannot read the configuration file: {error}"),
    })?;
    parse_file(&text, settings).map_err(|(line, message)| FileError {
        path: path.to_owned(),
        line,
        message,
    })
}

/// What is wrong with a file, and on which line.
type Refusal = (Option<usize>, String);

/// The settings `text` gives, or what is wrong with it and on which line: the first error in
/// the file's order.
fn parse_file(text: &str, settings: &[Setting]) -> Result<Vec<FileValue>, Refusal> {
    let table = DeTable::parse(text).map_err(|error| {
        (
            error.span().map(|span| line_of(text, span.start)),
            error.message().trim_end().to_owned(),
        )
    })?;
    let mut entries: Vec<_> = table.get_ref().iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    let mut values = Vec::new();
    for (key, value) in entries {
        let line = Some(line_of(text, key.span().start));
        let key = key.get_ref().as_ref();
        let Some(setting) = settings.iter().find(|s| s.key == key) else {
            return Err((line, unknown(key, settings)));
        };
        let given = match (setting.kind, value.get_ref()) {
            (Kind::Switch | Kind::Boolean, DeValue::Boolean(b)) => b.to_string(),
            (Kind::Integer, DeValue::Integer(integer)) => {
                i128::from_str_radix(integer.as_str(), integer.radix())
                    .map_err(|error| (line, format!("'{key}': {error}")))?
                    .to_string()
            }
            (Kind::Text, DeValue::String(string)) => string.to_string(),
            (kind, other) => {
                return Err((
                    line,
                    format!(
                        "'{key}' takes {}, not {}",
                        kind.expected(),
                        type_name(other)
                    ),
                ));
            }
        };
        let tokens = setting.tokens(&given);
        if let Err(error) = setting.check(&tokens) {
            let shown = match setting.kind {
                _ if setting.secret => "<redacted>".to_owned(),
                Kind::Text => toml_string(&given),
                _ => given,
            };
            return Err((line, rejected(key, &shown, &error)));
        }
        values.push(FileValue {
            key: key.to_owned(),
            tokens,
        });
    }
    Ok(values)
}

/// The line, counted from 1, of the byte at `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn unknown(key: &str, settings: &[Setting]) -> String {
    let mut message = format!("unknown key '{key}'");
    let wanted = key.replace('_', "-").to_ascii_lowercase();
    let closest = settings
        .iter()
        .map(|s| (edit_distance(&wanted, &s.key), &s.key))
        .min();
    if let Some((distance, suggestion)) = closest
        && distance <= 2.max(wanted.len() / 5)
    {
        let _ = write!(message, "; did you mean '{suggestion}'?");
    } else {
        message.push_str("; the keys are the long names of the flags of `presence serve --help`");
    }
    message
}

/// Levenshtein's distance between two short strings, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let replaced = previous[j] + usize::from(ca != *cb);
            current.push(replaced.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Why a flag's parser refused `shown`, the value as the file has it.
fn rejected(key: &str, shown: &str, error: &clap::Error) -> String {
    let mut message = format!("invalid value {shown} for '{key}'");
    if let Some(cause) = std::error::Error::source(error) {
        let _ = write!(message, ": {cause}");
    } else if let Some(ContextValue::Strings(valid)) = error.get(ContextKind::ValidValue) {
        let _ = write!(message, "; possible values: {}", valid.join(", "));
    }
    message
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{:04X}", u32::from(c));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// A URL with its password, in its user information or a `password` query parameter,
/// replaced by `<redacted>`; anything else as it is.
fn redact_url(text: &str) -> String {
    const REDACTED: &str = "<redacted>";
    let Some(scheme_end) = text.find("://").map(|i| i + 3) else {
        return text.to_owned();
    };
    let authority_end = text[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |i| scheme_end + i);
    let mut url = String::with_capacity(text.len());
    url.push_str(&text[..scheme_end]);
    let authority = &text[scheme_end..authority_end];
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    let _ = write!(url, "{user}:{REDACTED}");
                }
                None => url.push_str(userinfo),
            }
            url.push('@');
            url.push_str(host);
        }
        None => url.push_str(authority),
    }
    let rest = &text[authority_end..];
    let Some(query_start) = rest.find('?') else {
        url.push_str(rest);
        return url;
    };
    url.push_str(&rest[..=query_start]);
    let (query, fragment) = match rest[query_start + 1..].split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (&rest[query_start + 1..], None),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                format!("{name}={REDACTED}")
            }
            _ => pair.to_owned(),
        })
        .collect();
    url.push_str(&pairs.join("&"));
    if let Some(fragment) = fragment {
        url.push('#');
        url.push_str(fragment);
    }
    url
}

#[cfg(test)]
mod tests;
