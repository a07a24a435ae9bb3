//! The board's files, embedded. Each has a version, its content's hash, that the pages put in
//! its address: a browser keeps a file for as long as it likes under that address, and a new
//! server's pages name new addresses for the files that changed.

use std::sync::LazyLock;

use axum::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::texts;
use crate::http::error::ApiError;

struct File {
    name: &'static str,
    content_type: &'static str,
    bytes: Bytes,
    /// The first 16 hexadecimal digits of the content's SHA-256.
    version: String,
    etag: HeaderValue,
}

impl File {
    fn new(name: &'static str, content_type: &'static str, bytes: Bytes) -> Self {
        let digest = Sha256::digest(&bytes);
        let version: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let etag = HeaderValue::from_str(&format!("\"{version}\"")).expect("hex is ASCII");
        Self {
            name,
            content_type,
            bytes,
            version,
            etag,
        }
    }
}

static FILES: LazyLock<[File; 5]> = LazyLock::new(|| {
    let javascript = "text/javascript; charset=utf-8";
    [
        File::new(
            "board.js",
            javascript,
            Bytes::from_static(include_bytes!("board.js")),
        ),
        File::new(
            "sign-in.js",
            javascript,
            Bytes::from_static(include_bytes!("sign-in.js")),
        ),
        File::new("texts.js", javascript, Bytes::from(texts::script())),
        File::new(
            "board.css",
            "text/css; charset=utf-8",
            Bytes::from_static(include_bytes!("board.css")),
        ),
        File::new(
            "favicon.svg",
            "image/svg+xml",
            Bytes::from_static(include_bytes!("favicon.svg")),
        ),
    ]
});

/// A page with each `{{name}}` replaced by the file's versioned address, relative to the page
/// at `{base}/`.
pub fn versioned(page: &str) -> String {
    FILES.iter().fold(page.to_owned(), |page, file| {
        page.replace(
            &format!("{{{{{}}}}}", file.name),
            &format!("board/{}?v={}", file.name, file.version),
        )
    })
}

/// `GET {base}/board/{file}`. Under the address of its current version a file may be kept a
/// year without asking again; under any other it is revalidated with its `ETag` each time.
pub async fn asset(uri: Uri, headers: HeaderMap) -> Result<Response, ApiError> {
    let name = uri.path().rsplit('/').next().unwrap_or("");
    let file = FILES
        .iter()
        .find(|file| file.name == name)
        .ok_or(ApiError::NotFound)?;
    let current = uri
        .query()
        .is_some_and(|query| query == format!("v={}", file.version));
    let cache_control = HeaderValue::from_static(if current {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    });
    let headers_of_both = [
        (ETAG, file.etag.clone()),
        (CACHE_CONTROL, cache_control),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    let unchanged = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == file.etag
        });
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, headers_of_both).into_response());
    }
    Ok((
        headers_of_both,
        [(CONTENT_TYPE, HeaderValue::from_static(file.content_type))],
        file.bytes.clone(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_name_every_file_by_its_version() {
        let page = versioned("<script src=\"{{board.js}}\"></script>");
        let board = FILES.iter().find(|f| f.name == "board.js").unwrap();
        assert_eq!(
            page,
            format!(
                "<script src=\"board/board.js?v={}\"></script>",
                board.version
            )
        );
        for page in [super::super::BOARD_PAGE, super::super::SIGN_IN_PAGE] {
            let page = versioned(page);
            assert!(!page.contains("{{"), "a placeholder names no file: {page}");
        }
    }
}
