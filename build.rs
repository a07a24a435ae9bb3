//! Marks tests as ignored when what they need is missing as they are built, so that the test
//! runner counts them as skipped, never as passed:
//!
//! - the PostgreSQL variants, unless `PRESENCE_TEST_POSTGRES_URL` names a server (built with
//!   it, they run, and fail if the server cannot be reached);
//! - the browser tests, unless a `chromedriver` and a Chromium (`chromium`,
//!   `chromium-browser` or `google-chrome`) are found on `PATH`, or where
//!   `PRESENCE_TEST_CHROMEDRIVER` and `PRESENCE_TEST_CHROMIUM` say (a path, or a name looked
//!   up on `PATH`). Built with both found, they run, and fail if the browser does not start.
//!   The tests start the executables found here (`PRESENCE_FOUND_CHROMEDRIVER`,
//!   `PRESENCE_FOUND_CHROMIUM`), so what was checked is what runs.

use std::path::{Path, PathBuf};

fn main() {
    postgres();
    browsers();
}

fn postgres() {
    println!("cargo::rerun-if-env-changed=PRESENCE_TEST_POSTGRES_URL");
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    if std::env::var_os("PRESENCE_TEST_POSTGRES_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=postgres_tests");
    }
}

fn browsers() {
    for variable in [
        "PATH",
        "PRESENCE_TEST_CHROMEDRIVER",
        "PRESENCE_TEST_CHROMIUM",
    ] {
        println!("cargo::rerun-if-env-changed={variable}");
    }
    println!("cargo::rustc-check-cfg=cfg(browser_tests)");
    let driver = find("PRESENCE_TEST_CHROMEDRIVER", &["chromedriver"]);
    let chromium = find(
        "PRESENCE_TEST_CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    if let (Some(driver), Some(chromium)) = (driver, chromium) {
        println!("cargo::rustc-cfg=browser_tests");
        println!(
            "cargo::rustc-env=PRESENCE_FOUND_CHROMEDRIVER={}",
            driver.display()
        );
        println!(
            "cargo::rustc-env=PRESENCE_FOUND_CHROMIUM={}",
            chromium.display()
        );
    }
}

/// The executable the variable names, else the first of `names` on `PATH`. A variable that
/// names nothing runnable is worth a warning: whoever set it expects the tests to run.
fn find(variable: &str, names: &[&str]) -> Option<PathBuf> {
    match std::env::var(variable) {
        Ok(named) if !named.is_empty() => {
            let found = if named.contains('/') {
                Some(PathBuf::from(&named)).filter(|path| is_executable(path))
            } else {
                on_path(&named)
            };
            if found.is_none() {
                println!(
                    "cargo::warning={variable}={named} is no executable: the browser tests are skipped"
                );
            }
            found
        }
        _ => names.iter().find_map(|name| on_path(name)),
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|folder| folder.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
