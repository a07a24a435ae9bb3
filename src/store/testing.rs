//! Support for tests that run on both backends: a fresh PostgreSQL database per test on the
//! server that `PRESENCE_TEST_POSTGRES_URL` names.

use super::StoreError;

/// The environment variable naming a PostgreSQL server tests may create databases on, as
/// `postgres://USER@HOST:PORT/DATABASE`. The build script reads it too: built without it, the
/// PostgreSQL variants are ignored, which the test runner reports as skipped.
pub const POSTGRES_URL_VARIABLE: &str = "PRESENCE_TEST_POSTGRES_URL";

/// The PostgreSQL server of a test that runs on PostgreSQL. A PostgreSQL variant runs only
/// when the tests were built with the variable set; run without it, it fails rather than pass
/// having tested nothing.
pub fn postgres_admin_url() -> String {
    std::env::var(POSTGRES_URL_VARIABLE)
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "the tests were built with {POSTGRES_URL_VARIABLE} set and run without it: set it, or build again without it to skip the PostgreSQL variants"
            )
        })
}

/// Creates an empty database on the server and returns its URL.
pub async fn fresh_postgres_database(admin_url: &str) -> Result<String, StoreError> {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).expect("the operating system's random source failed");
    let name: String = std::iter::once("presence_test_".to_owned())
        .chain(random.iter().map(|b| format!("{b:02x}")))
        .collect();
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    drop(client);
    let _ = connection.await;
    Ok(with_database(admin_url, &name))
}

/// The URL with its database replaced.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database() {
        assert_eq!(
            with_database("postgres://pg@127.0.0.1:5432/postgres", "x"),
            "postgres://pg@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://pg@host/postgres?sslmode=disable", "x"),
            "postgres://pg@host/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://pg@host", "x"),
            "postgres://pg@host/x"
        );
    }
}
