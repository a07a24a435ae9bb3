use clap::CommandFactory;

use super::*;
use crate::cli::Cli;

fn settings() -> Vec<Setting> {
    Setting::all(&Cli::command())
}

fn parsed(text: &str) -> Result<Vec<(String, Vec<String>)>, Refusal> {
    parse_file(text, &settings()).map(|values| {
        values
            .into_iter()
            .map(|v| {
                let tokens = v
                    .tokens
                    .iter()
                    .map(|t| t.to_string_lossy().into_owned())
                    .collect();
                (v.key, tokens)
            })
            .collect()
    })
}

fn error(text: &str) -> Refusal {
    parsed(text).expect_err("an error")
}

#[test]
fn the_settings_are_the_global_flags_and_serves() {
    let settings = settings();
    let keys: Vec<&str> = settings.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys[0], "database");
    for key in [
        "db-pool-size",
        "set-queue",
        "listen",
        "base-path",
        "max-connections",
        "auth-basic",
        "jwt-hs256-secret",
    ] {
        assert!(keys.contains(&key), "{key} in {keys:?}");
    }
    assert!(!keys.contains(&"config") && !keys.contains(&"help"));
    let kind = |key: &str| settings.iter().find(|s| s.key == key).unwrap().kind;
    assert_eq!(kind("demo"), Kind::Switch);
    assert_eq!(kind("auth-basic"), Kind::Boolean);
    assert_eq!(kind("max-connections"), Kind::Integer);
    assert_eq!(kind("db-statement-timeout-ms"), Kind::Integer);
    assert_eq!(kind("listen"), Kind::Text);
    assert_eq!(kind("installation"), Kind::Text);
    let secrets: Vec<&str> = settings
        .iter()
        .filter(|s| s.secret)
        .map(|s| s.key.as_str())
        .collect();
    assert_eq!(secrets, ["jwt-hs256-secret"]);
}

#[test]
fn values_become_the_flags_that_give_them() {
    let values = parsed(
        "# a comment\n\
         max-connections = 0x10\n\
         listen = \"0.0.0.0:8080\"\n\
         auth-basic = false\n\
         demo = true\n\
         secure-cookies = false\n\
         database = 'sqlite:///var/lib/presence/presence.db'\n",
    )
    .unwrap();
    let flags = |key: &str| {
        values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, tokens)| tokens.clone())
            .unwrap()
    };
    assert_eq!(flags("max-connections"), ["--max-connections=16"]);
    assert_eq!(flags("listen"), ["--listen=0.0.0.0:8080"]);
    assert_eq!(flags("auth-basic"), ["--auth-basic=false"]);
    assert_eq!(flags("demo"), ["--demo"]);
    assert!(flags("secure-cookies").is_empty());
    assert_eq!(
        flags("database"),
        ["--database=sqlite:///var/lib/presence/presence.db"]
    );
    assert!(parsed("").unwrap().is_empty());
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    assert_eq!(
        error("listen = \"127.0.0.1:1\"\n\nmax-conections = 4\n"),
        (
            Some(3),
            "unknown key 'max-conections'; did you mean 'max-connections'?".to_owned()
        )
    );
    assert_eq!(
        error("max_requests = 4\n").1,
        "unknown key 'max_requests'; did you mean 'max-requests'?"
    );
    let (line, message) = error("\n[serve]\nlisten = \"127.0.0.1:1\"\n");
    assert_eq!(line, Some(2));
    assert!(
        message.starts_with("unknown key 'serve'; the keys are"),
        "{message}"
    );
    // The first in the file, not in the alphabet.
    assert_eq!(error("zzz = 1\naaa = 2\n").0, Some(1));
}

#[test]
fn a_value_of_the_wrong_type_is_named_with_its_line() {
    assert_eq!(
        error("listen = 8080\n"),
        (
            Some(1),
            "'listen' takes a string, not an integer".to_owned()
        )
    );
    assert_eq!(
        error("\nmax-connections = \"4096\"\n"),
        (
            Some(2),
            "'max-connections' takes an integer, not a string".to_owned()
        )
    );
    assert_eq!(
        error("auth-basic = \"false\"\n").1,
        "'auth-basic' takes a boolean, not a string"
    );
    assert_eq!(
        error("demo = 1\n").1,
        "'demo' takes a boolean, not an integer"
    );
    assert_eq!(
        error("max-requests = 1.5\n").1,
        "'max-requests' takes an integer, not a float"
    );
    assert_eq!(
        error("listen = [\"a\"]\n").1,
        "'listen' takes a string, not an array"
    );
}

#[test]
fn a_value_the_flag_refuses_is_named_with_its_line() {
    assert_eq!(
        error("demo = true\nlisten = \"nonsense\"\n"),
        (
            Some(2),
            "invalid value \"nonsense\" for 'listen': invalid socket address syntax".to_owned()
        )
    );
    assert_eq!(
        error("installation = \"cloud\"\n").1,
        "invalid value \"cloud\" for 'installation'; possible values: onsite, online"
    );
    let (line, message) = error("max-connections = -1\n");
    assert_eq!(line, Some(1));
    assert!(
        message.starts_with("invalid value -1 for 'max-connections'"),
        "{message}"
    );
    let (_, message) = error("base-path = \"no-slash\"\n");
    assert!(
        message.starts_with("invalid value \"no-slash\" for 'base-path': "),
        "{message}"
    );
}

#[test]
fn a_syntax_error_is_named_with_its_line() {
    let (line, message) = error("listen = \"127.0.0.1:1\"\nmax-requests = \n");
    assert_eq!(line, Some(2), "{message}");
    let (line, _) = error("listen = \"a\"\nlisten = \"b\"\n");
    assert_eq!(line, Some(2));
}

#[test]
fn passwords_in_urls_are_redacted() {
    assert_eq!(
        redact_url("postgres://presence:secret@db.internal:5432/presence?sslmode=require"),
        "postgres://presence:<redacted>@db.internal:5432/presence?sslmode=require"
    );
    assert_eq!(
        redact_url("postgres://me@db/presence?password=hunter2&sslmode=disable"),
        "postgres://me@db/presence?password=<redacted>&sslmode=disable"
    );
    assert_eq!(
        redact_url("postgres://me:p@ss@db/x"),
        "postgres://me:<redacted>@db/x"
    );
    assert_eq!(redact_url("sqlite://presence.db"), "sqlite://presence.db");
    assert_eq!(
        redact_url("sqlite:///var/lib/presence.db?synchronous=full"),
        "sqlite:///var/lib/presence.db?synchronous=full"
    );
    assert_eq!(redact_url("127.0.0.1:8080"), "127.0.0.1:8080");
}

#[test]
fn strings_are_quoted_as_toml() {
    assert_eq!(toml_string("plain"), "\"plain\"");
    assert_eq!(toml_string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    let quoted = toml_string("tab\there \"quoted\" \\ é");
    let document = format!("k = {quoted}");
    let table = DeTable::parse(&document).unwrap();
    match table.get_ref().get("k").unwrap().get_ref() {
        DeValue::String(s) => assert_eq!(s, "tab\there \"quoted\" \\ é"),
        other => panic!("{other:?}"),
    }
}
