//! Writes the manual pages of `presence`, made from its command-line definitions: `presence.1`
//! and one page per subcommand (`presence-serve.1`, `presence-user-add.1`, ...), into the
//! folder given, which it empties of earlier pages first. `packaging/build-deb.sh` runs it for
//! the Debian package; an example rather than part of the binary, so that the server does not
//! carry the generator.
//!
//! ```text
//! cargo run --example man -- target/man
//! man -l target/man/presence.1
//! ```

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use presence::cli::Cli;

fn main() -> std::process::ExitCode {
    let Some(folder) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: man FOLDER");
        return std::process::ExitCode::FAILURE;
    };
    match write_pages(&folder) {
        Ok(pages) => {
            println!("{} manual pages in {}", pages.len(), folder.display());
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!(
                "error: cannot write the manual pages in {}: {error}",
                folder.display()
            );
            std::process::ExitCode::FAILURE
        }
    }
}

/// Writes every page into `folder` (made if missing), after removing the pages an earlier run
/// left there, so that a subcommand since removed does not keep its page; returns their paths.
fn write_pages(folder: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(folder)?;
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        if path.extension().is_some_and(|extension| extension == "1") {
            std::fs::remove_file(path)?;
        }
    }
    clap_mangen::generate_to(Cli::command(), folder)?;
    let mut pages = std::fs::read_dir(folder)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    pages.sort();
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names of the subcommands, each with those under it: `serve`, `user`, `user add`, ...
    fn subcommands(command: &clap::Command, parents: &str) -> Vec<String> {
        let mut names = Vec::new();
        for sub in command
            .get_subcommands()
            .filter(|sub| sub.get_name() != "help")
        {
            let name = format!("{parents}{}", sub.get_name());
            names.extend(subcommands(sub, &format!("{name}-")));
            names.push(name);
        }
        names
    }

    #[test]
    fn every_subcommand_has_a_page_and_the_main_page_names_each_command() {
        let folder = tempfile::tempdir().unwrap();
        // A page of a subcommand that no longer exists, as an earlier build would leave it.
        std::fs::write(folder.path().join("presence-gone.1"), "").unwrap();
        let pages = write_pages(folder.path()).unwrap();

        let mut expected = vec![folder.path().join("presence.1")];
        let names = subcommands(&Cli::command(), "");
        assert!(names.contains(&"serve".to_owned()) && names.contains(&"user-add".to_owned()));
        expected.extend(
            names
                .iter()
                .map(|name| folder.path().join(format!("presence-{name}.1"))),
        );
        expected.sort();
        assert_eq!(pages, expected);

        // roff escapes the hyphen in each reference to a subcommand's page: presence\-serve(1).
        let main = std::fs::read_to_string(folder.path().join("presence.1")).unwrap();
        for command in Cli::command().get_subcommands() {
            let reference = format!("presence\\-{}(1)", command.get_name());
            assert!(main.contains(&reference), "presence.1 lacks {reference}");
        }
        let serve = std::fs::read_to_string(folder.path().join("presence-serve.1")).unwrap();
        for flag in ["listen", "max\\-connections", "database"] {
            assert!(
                serve.contains(&format!("\\-\\-{flag}")),
                "no --{flag} in presence-serve.1"
            );
        }
    }
}
