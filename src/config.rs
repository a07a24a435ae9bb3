//! Settings of the HTTP server, read from flags and `PRESENCE_*` environment variables (the
//! command line in `cli.rs` declares both).

/// How the server behaves on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSettings {
    /// A prefix in front of every address (`/cust12345` for `/Cust12345/api/v1/...`), stored
    /// lower-cased without a trailing slash; empty for none.
    pub base_path: String,
    /// The largest request body read, in bytes; a larger one is a 413. The operations'
    /// bodies are a few dozen bytes.
    pub body_limit: usize,
}

impl HttpSettings {
    pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            base_path: String::new(),
            body_limit: Self::DEFAULT_BODY_LIMIT,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "the base path {0:?} must start with '/' and hold only letters, digits, '-', '_', '.' and '/'"
)]
pub struct BadBasePath(pub String);

/// Reads a base path: `/Cust12345`, `/Cust12345/`, or `` and `/` for none.
pub fn parse_base_path(value: &str) -> Result<String, BadBasePath> {
    let trimmed = value.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let valid = trimmed.starts_with('/')
        && !trimmed.contains("//")
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    if !valid {
        return Err(BadBasePath(value.to_owned()));
    }
    Ok(trimmed.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths() {
        assert_eq!(parse_base_path(""), Ok(String::new()));
        assert_eq!(parse_base_path("/"), Ok(String::new()));
        assert_eq!(parse_base_path("/Cust12345/"), Ok("/cust12345".into()));
        assert_eq!(parse_base_path("/a/b"), Ok("/a/b".into()));
        assert!(parse_base_path("cust").is_err());
        assert!(parse_base_path("/a b").is_err());
        assert!(parse_base_path("/a//b").is_err());
    }
}
