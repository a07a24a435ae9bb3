//! The Debian package's files (`packaging/`) against the code they configure: the default
//! settings file names every setting with its real default, and the unit's limits leave the
//! server room.

use std::collections::BTreeMap;
use std::path::Path;

use clap::CommandFactory;
use presence::cli::Cli;
use presence::config::Limits;

fn packaging_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A setting of the default settings file: its value as written, and whether it is commented
/// out (showing the default) or set.
struct Setting {
    value: String,
    commented_out: bool,
}

/// The `key = value` lines of a settings file, set or commented out (`# key = value`).
fn settings(text: &str) -> BTreeMap<String, Setting> {
    let mut settings = BTreeMap::new();
    for line in text.lines() {
        let (line, commented_out) = match line.strip_prefix("# ") {
            Some(rest) => (rest, true),
            None => (line, false),
        };
        let Some((key, value)) = line.split_once(" = ") else {
            continue;
        };
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            continue;
        }
        let setting = Setting {
            value: value.to_owned(),
            commented_out,
        };
        assert!(
            settings.insert(key.to_owned(), setting).is_none(),
            "{key} appears twice"
        );
    }
    settings
}

/// The long names of `presence serve`'s flags, the global ones included, with their defaults.
fn serve_flags() -> BTreeMap<String, Option<String>> {
    let mut command = Cli::command();
    command.build();
    let serve = command.find_subcommand("serve").expect("a serve command");
    serve
        .get_arguments()
        .filter_map(|arg| {
            let long = arg.get_long()?;
            // `config` names the file itself.
            if ["help", "version", "config"].contains(&long) {
                return None;
            }
            let default = arg
                .get_default_values()
                .first()
                .map(|value| value.to_string_lossy().into_owned());
            Some((long.to_owned(), default))
        })
        .collect()
}

#[test]
fn the_default_settings_file_names_every_setting_with_its_default() {
    let file = settings(&packaging_file("presence.toml"));
    let flags = serve_flags();
    assert!(flags.contains_key("listen") && flags.contains_key("database"));

    let missing: Vec<_> = flags
        .keys()
        .filter(|flag| !file.contains_key(*flag))
        .collect();
    assert!(
        missing.is_empty(),
        "packaging/presence.toml lacks {missing:?}"
    );
    let unknown: Vec<_> = file
        .keys()
        .filter(|key| !flags.contains_key(*key))
        .collect();
    assert!(
        unknown.is_empty(),
        "packaging/presence.toml has no such flags: {unknown:?}"
    );

    for (flag, default) in &flags {
        let setting = &file[flag];
        if !setting.commented_out {
            continue;
        }
        // A flag without a default shows an example instead.
        if let Some(default) = default {
            let quoted = format!("\"{default}\"");
            assert!(
                setting.value == *default || setting.value == quoted,
                "packaging/presence.toml shows {flag} = {}, but its default is {default}",
                setting.value
            );
        }
    }

    // What the service sets: the database in its state directory, the usual address.
    assert_eq!(
        file["database"].value,
        "\"sqlite:///var/lib/presence/presence.db\""
    );
    assert!(!file["database"].commented_out && !file["listen"].commented_out);
}

/// The value of `Key=` in the unit file, which must appear once.
fn unit_value(unit: &str, key: &str) -> String {
    let prefix = format!("{key}=");
    let values: Vec<_> = unit
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .collect();
    assert_eq!(values.len(), 1, "{key}= appears {} times", values.len());
    values[0].to_owned()
}

#[test]
fn the_unit_gives_the_server_time_to_stop_and_files_for_its_connections() {
    let unit = packaging_file("presence.service");
    let limits = Limits::default();

    let stop: u64 = unit_value(&unit, "TimeoutStopSec").parse().unwrap();
    assert!(
        std::time::Duration::from_secs(stop) > limits.shutdown_timeout,
        "TimeoutStopSec={stop} does not leave the server its shutdown timeout"
    );

    // The server keeps about 256 files open besides its connections (serve.rs).
    let files: usize = unit_value(&unit, "LimitNOFILE").parse().unwrap();
    assert!(
        files >= limits.max_connections + 256,
        "LimitNOFILE={files} is too low"
    );

    assert_eq!(
        unit_value(&unit, "ExecStart"),
        "/usr/bin/presence --config /etc/presence/presence.toml serve"
    );
    assert_eq!(unit_value(&unit, "StateDirectory"), "presence");
}

/// The binary reads the default settings file as the unit has it do: `config show` fails on
/// an unknown key, a value of the wrong type or one a flag refuses.
#[test]
fn the_server_reads_the_default_settings_file() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/presence.toml");
    let output = std::process::Command::new(crate::helpers::presence_binary())
        .arg("--config")
        .arg(&file)
        .args(["config", "show"])
        .env_remove("PRESENCE_DATABASE_URL")
        .env_remove("PRESENCE_LISTEN")
        .output()
        .expect("presence runs");
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        shown.contains(r#"database = "sqlite:///var/lib/presence/presence.db"  # file"#),
        "{shown}"
    );
}
