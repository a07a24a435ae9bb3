//! The configuration file (`--config FILE`), as an operator uses it: which value wins, what
//! `presence config show` prints, how a bad file is refused, and a server started from one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

use crate::helpers::*;

both_backends!(a_server_runs_with_the_settings_of_its_file);

/// A folder for a test's configuration files and databases.
struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    /// Writes `text` to the file `name` and gives its path.
    fn write(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

/// Runs `presence ARGS` with the variables `env` and no other `PRESENCE_*` variable.
fn presence(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(presence_binary());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PRESENCE_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// The standard error of a command refused as a usage error (exit code 2).
fn refused(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(2),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// `config show`'s settings: each key's value as TOML and where it came from.
fn settings(shown: &str) -> BTreeMap<String, (String, String)> {
    shown
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (setting, source) = line.rsplit_once("  # ").expect("a source");
            let (key, value) = setting.split_once(" = ").expect("key = value");
            (
                key.to_owned(),
                (value.trim_end().to_owned(), source.to_owned()),
            )
        })
        .collect()
}

/// `presence --config FILE config show ARGS` with `env`: the setting `key` and its source.
fn shown(file: &str, args: &[&str], env: &[(&str, &str)], key: &str) -> (String, String) {
    let output = presence(&[&["--config", file, "config", "show"], args].concat(), env);
    settings(&stdout(&output))
        .remove(key)
        .unwrap_or_else(|| panic!("no {key}"))
}

fn pair(value: &str, source: &str) -> (String, String) {
    (value.to_owned(), source.to_owned())
}

#[test]
fn each_layer_overrides_the_one_before() {
    let files = Files::new();
    let database = files.path("presence.db");
    let file = files.write(
        "presence.toml",
        &format!(
            "# presence\n\
             database = \"sqlite://{}\"\n\
             listen = \"0.0.0.0:8081\"\n\
             base-path = \"/file\"\n\
             max-requests = 7\n\
             db-pool-size = 2\n\
             auth-basic = false\n",
            database.display()
        ),
    );
    // Default < file < environment < flag, one setting at a time.
    let base_path = |args: &[&str], env: &[(&str, &str)]| shown(&file, args, env, "base-path");
    assert_eq!(
        shown(&file, &[], &[], "body-limit"),
        pair("65536", "default")
    );
    assert_eq!(base_path(&[], &[]), pair("\"/file\"", "file"));
    let env = [("PRESENCE_BASE_PATH", "/env")];
    assert_eq!(base_path(&[], &env), pair("\"/env\"", "environment"));
    assert_eq!(
        base_path(&["--base-path", "/flag"], &env),
        pair("\"/flag\"", "flag")
    );
    // Global settings too, their flags before or after the subcommand.
    assert_eq!(shown(&file, &[], &[], "db-pool-size"), pair("2", "file"));
    assert_eq!(
        shown(
            &file,
            &[],
            &[("PRESENCE_DB_POOL_SIZE", "3")],
            "db-pool-size"
        ),
        pair("3", "environment")
    );
    assert_eq!(
        shown(
            &file,
            &["--db-pool-size", "4"],
            &[("PRESENCE_DB_POOL_SIZE", "3")],
            "db-pool-size"
        ),
        pair("4", "flag")
    );
    // Every setting at once.
    let all = settings(&stdout(&presence(
        &[
            "--db-pool-size",
            "4",
            "config",
            "show",
            "--auth-basic",
            "true",
        ],
        &[("PRESENCE_CONFIG", &file), ("PRESENCE_MAX_REQUESTS", "9")],
    )));
    assert_eq!(
        all["database"],
        pair(&format!("\"sqlite://{}\"", database.display()), "file")
    );
    assert_eq!(all["listen"], pair("\"0.0.0.0:8081\"", "file"));
    assert_eq!(all["base-path"], pair("\"/file\"", "file"));
    assert_eq!(all["max-requests"], pair("9", "environment"));
    assert_eq!(all["db-pool-size"], pair("4", "flag"));
    assert_eq!(all["auth-basic"], pair("true", "flag"));
    assert_eq!(all["max-connections"], pair("4096", "default"));
    assert_eq!(all["installation"], pair("\"onsite\"", "default"));
    // Showing the settings opens no database.
    assert!(!database.exists());
}

#[test]
fn the_settings_shown_read_back_as_a_file() {
    let files = Files::new();
    let output = presence(
        &[
            "config",
            "show",
            "--max-connections",
            "12",
            "--demo",
            "--jwt-issuer",
            "https://idp.example",
            "--jwt-audience",
            "presence",
        ],
        &[("PRESENCE_LISTEN", "127.0.0.1:9")],
    );
    let first = stdout(&output);
    let file = files.write("shown.toml", &first);
    let again = settings(&stdout(&presence(
        &["--config", &file, "config", "show"],
        &[],
    )));
    let before = settings(&first);
    assert_eq!(again.len(), before.len());
    for (key, (value, _)) in before {
        assert_eq!(again[&key], pair(&value, "file"), "{key}");
    }
    assert_eq!(again["max-connections"].0, "12");
    assert_eq!(again["demo"].0, "true");
    assert_eq!(again["listen"].0, "\"127.0.0.1:9\"");
    assert!(first.contains("\n# jwks-url is not set\n"), "{first}");
}

#[test]
fn secrets_are_redacted() {
    let files = Files::new();
    let file = files.write(
        "presence.toml",
        "jwt-hs256-secret = \"file-secret-3141\"\n\
         database = \"postgres://presence:db-pa55word@db.internal:5432/presence?sslmode=require\"\n",
    );
    let shown = stdout(&presence(&["--config", &file, "config", "show"], &[]));
    assert!(!shown.contains("file-secret-3141"), "{shown}");
    assert!(!shown.contains("db-pa55word"), "{shown}");
    let all = settings(&shown);
    assert_eq!(all["jwt-hs256-secret"], pair("\"<redacted>\"", "file"));
    assert_eq!(
        all["database"],
        pair(
            "\"postgres://presence:<redacted>@db.internal:5432/presence?sslmode=require\"",
            "file"
        )
    );
    // From the environment and from a flag too.
    let shown = stdout(&presence(
        &[
            "--database",
            "postgres://me:flag-pa55@db/presence",
            "config",
            "show",
        ],
        &[("PRESENCE_JWT_HS256_SECRET", "env-secret-2718")],
    ));
    assert!(!shown.contains("env-secret-2718") && !shown.contains("flag-pa55"));
    let all = settings(&shown);
    assert_eq!(
        all["jwt-hs256-secret"],
        pair("\"<redacted>\"", "environment")
    );
    assert_eq!(
        all["database"],
        pair("\"postgres://me:<redacted>@db/presence\"", "flag")
    );
    // Nor does an error about the file's flags show it.
    let file = files.write(
        "half.toml",
        "jwt-issuer = \"https://idp.example\"\njwt-hs256-secret = \"file-secret-3141\"\n",
    );
    let message = refused(&presence(&["--config", &file, "serve"], &[]));
    assert!(!message.contains("file-secret-3141"), "{message}");
    assert!(
        message.contains("--jwt-hs256-secret=<redacted>"),
        "{message}"
    );
}

#[test]
fn an_unknown_key_is_refused_with_its_name_and_line() {
    let files = Files::new();
    let file = files.write(
        "presence.toml",
        "listen = \"127.0.0.1:8080\"\n\n# the limits\nmax-conections = 100\n",
    );
    for command in [&["config", "show"][..], &["serve"], &["migrate"]] {
        let message = refused(&presence(&[&["--config", &file], command].concat(), &[]));
        assert_eq!(
            message,
            format!(
                "error: {file}, line 4: unknown key 'max-conections'; did you mean \
                 'max-connections'?\n"
            )
        );
    }
}

#[test]
fn a_bad_value_is_refused_with_its_key_and_line() {
    let files = Files::new();
    for (text, expected) in [
        (
            "max-requests = 10\nmax-connections = \"many\"\n",
            "line 2: 'max-connections' takes an integer, not a string",
        ),
        (
            "demo = \"yes\"\n",
            "line 1: 'demo' takes a boolean, not a string",
        ),
        (
            "base-path = \"/x\"\n\nlisten = \"nonsense\"\n",
            "line 3: invalid value \"nonsense\" for 'listen': invalid socket address syntax",
        ),
        (
            "installation = \"cloud\"\n",
            "line 1: invalid value \"cloud\" for 'installation'; possible values: onsite, online",
        ),
    ] {
        let file = files.write("presence.toml", text);
        // Refused even where the environment or a flag gives the setting.
        for env in [&[][..], &[("PRESENCE_LISTEN", "127.0.0.1:1")]] {
            let message = refused(&presence(&["--config", &file, "serve"], env));
            assert_eq!(message, format!("error: {file}, {expected}\n"));
        }
    }
    let file = files.write("broken.toml", "listen = \"127.0.0.1:1\"\nmax-requests =\n");
    let message = refused(&presence(&["--config", &file, "config", "show"], &[]));
    assert!(
        message.starts_with(&format!("error: {file}, line 2: ")),
        "{message}"
    );
}

#[test]
fn a_missing_file_is_refused() {
    let files = Files::new();
    let missing = files.path("missing.toml").display().to_string();
    for output in [
        presence(&["--config", &missing, "config", "show"], &[]),
        presence(&["migrate"], &[("PRESENCE_CONFIG", &missing)]),
    ] {
        let message = refused(&output);
        assert!(
            message.starts_with(&format!(
                "error: {missing}: cannot read the configuration file: "
            )),
            "{message}"
        );
    }
}

#[test]
fn settings_that_go_together_may_come_from_different_layers() {
    let files = Files::new();
    let issuer = files.write("issuer.toml", "jwt-issuer = \"https://idp.example\"\n");
    // Alone, the issuer is refused as it is on the command line.
    let message = refused(&presence(&["--config", &issuer, "config", "show"], &[]));
    assert!(message.contains("--jwt-audience"), "{message}");
    assert!(
        message.ends_with(&format!(
            "note: {issuer} gave --jwt-issuer=https://idp.example\n"
        )),
        "{message}"
    );
    // With its audience from a flag or the environment, it is a pair.
    let all = settings(&stdout(&presence(
        &[
            "--config",
            &issuer,
            "config",
            "show",
            "--jwt-audience",
            "presence",
        ],
        &[],
    )));
    assert_eq!(all["jwt-issuer"], pair("\"https://idp.example\"", "file"));
    assert_eq!(all["jwt-audience"], pair("\"presence\"", "flag"));
    let all = settings(&stdout(&presence(
        &["--config", &issuer, "config", "show"],
        &[("PRESENCE_JWT_AUDIENCE", "presence")],
    )));
    assert_eq!(all["jwt-audience"], pair("\"presence\"", "environment"));
    // A key file and a key URL conflict, whichever layer gives each.
    let keys = files.write(
        "keys.toml",
        "jwt-issuer = \"https://idp.example\"\njwt-audience = \"presence\"\njwks-file = \"/etc/jwks.json\"\n",
    );
    let message = refused(&presence(
        &["--config", &keys, "serve"],
        &[("PRESENCE_JWKS_URL", "https://idp.example/jwks")],
    ));
    assert!(message.contains("cannot be used with"), "{message}");
}

#[test]
fn every_command_reads_the_file() {
    let files = Files::new();
    let database = files.path("from-file.db");
    let file = files.write(
        "presence.toml",
        &format!(
            "database = \"sqlite://{}\"\nmax-connections = 5\n",
            database.display()
        ),
    );
    let output = presence(&["--config", &file, "migrate"], &[]);
    assert!(stdout(&output).contains("schema is now at version"));
    assert!(database.exists());
    // `--help` is clap's, with the defaults of the flags, whatever the file says.
    let help = stdout(&presence(&["--config", &file, "serve", "--help"], &[]));
    assert!(help.contains("--config <FILE>"), "{help}");
    assert!(help.contains("[default: 4096]"), "{help}");
}

async fn a_server_runs_with_the_settings_of_its_file() {
    let database = fresh_database().await;
    let files = Files::new();
    // The flags `ServerProcess` gives (--listen, --demo) override the file's.
    let file = files.write(
        "presence.toml",
        "listen = \"127.0.0.1:1\"\nbase-path = \"/Cust12345\"\nbody-limit = 64\n",
    );
    let server = ServerProcess::start(&database.url, &["--config", &file]);
    let get = |path: &str| {
        Request::post(path)
            .basic(ADMIN)
            .json(r#"{"AssociateId":963}"#)
    };
    let response = server.send(get(&format!("/Cust12345{GET}"))).await;
    assert_eq!(response.status, 200, "{}", response.wire());
    assert_eq!(
        response.text(),
        r#"{"Status":"StatusDeleted","Message":"ut"}"#
    );
    assert_eq!(server.send(get(GET)).await.status, 404);
    let padded = format!(r#"{{"AssociateId":963,"Padding":"{}"}}"#, "x".repeat(100));
    let response = server
        .send(
            Request::post(&format!("/Cust12345{GET}"))
                .basic(ADMIN)
                .json(&padded),
        )
        .await;
    assert_eq!(response.status, 413);
}
