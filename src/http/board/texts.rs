//! The board's texts: one JSON file per language under `texts/`, each a flat object from a
//! key to its text, `{name}` marking where a value goes. Adding a language is adding its file
//! and its line in [`LANGUAGES`]; the page picks the first of the browser's languages it has,
//! and English for anything else.

use std::sync::LazyLock;

use axum::http::HeaderMap;
use axum::http::header::ACCEPT_LANGUAGE;
use bytes::{Bytes, BytesMut};
use serde_json::{Map, Value};

use crate::http::encode::xml_text;

/// Each language's tag and its texts. English, first, has every key.
const LANGUAGES: [(&str, &str); 2] = [
    ("en", include_str!("texts/en.json")),
    ("nb", include_str!("texts/nb.json")),
];

/// Tags a browser may send for a language the board has under another tag: Norwegian, `no`,
/// and Nynorsk readers read Bokmål.
const ALIASES: [(&str, &str); 2] = [("no", "nb"), ("nn", "nb")];

/// Each language's texts, read once.
static PARSED: LazyLock<Vec<(&str, Map<String, Value>)>> = LazyLock::new(|| {
    LANGUAGES
        .iter()
        .map(|(tag, file)| match serde_json::from_str(file) {
            Ok(Value::Object(texts)) => (*tag, texts),
            _ => panic!("texts/{tag}.json is not a JSON object"),
        })
        .collect()
});

/// A language's texts; English's for a language the board does not have.
fn texts(language: &str) -> &'static Map<String, Value> {
    PARSED
        .iter()
        .find(|(tag, _)| *tag == language)
        .map_or(&PARSED[0].1, |(_, texts)| texts)
}

/// The pages' script of texts: `texts.js`, with every language's texts and the aliases
/// where its marker stands (JSON is a JavaScript expression).
pub fn script() -> String {
    let mut all = Map::new();
    for (tag, _) in LANGUAGES {
        all.insert(tag.to_owned(), Value::Object(texts(tag).clone()));
    }
    let aliases = ALIASES
        .iter()
        .map(|(alias, tag)| ((*alias).to_owned(), Value::from(*tag)))
        .collect();
    let data = serde_json::json!({ "languages": all, "aliases": Value::Object(aliases) });
    let marker = "/*TEXTS*/null";
    let code = include_str!("texts.js");
    assert!(code.contains(marker), "texts.js has its marker");
    code.replace(marker, &data.to_string())
}

/// The language of a page the server writes itself: the most preferred of `Accept-Language`
/// that the board has, else English.
pub fn choose(headers: &HeaderMap) -> &'static str {
    let mut best: Option<(u16, &'static str)> = None;
    let values = headers
        .get_all(ACCEPT_LANGUAGE)
        .iter()
        .filter_map(|value| value.to_str().ok());
    for entry in values.flat_map(|value| value.split(',')) {
        let Some((tag, quality)) = crate::weighted::parse_entry(entry) else {
            continue;
        };
        let primary = tag.split('-').next().unwrap_or("").to_ascii_lowercase();
        let known = LANGUAGES
            .iter()
            .map(|(tag, _)| *tag)
            .find(|tag| *tag == primary)
            .or_else(|| {
                ALIASES
                    .iter()
                    .find(|(alias, _)| *alias == primary)
                    .map(|(_, tag)| *tag)
            });
        // Strictly greater, so that ties stay with the entry listed first.
        if let Some(known) = known
            && quality > 0
            && best.is_none_or(|(best_quality, _)| quality > best_quality)
        {
            best = Some((quality, known));
        }
    }
    best.map_or(LANGUAGES[0].0, |(_, tag)| tag)
}

/// The page at `{base}/` of a server that signs no browser in: what the board is, why it is
/// not here, and how to reach it. Written once for each language and reason.
pub fn no_sign_in_page(language: &str, online: bool) -> Bytes {
    static PAGES: LazyLock<Vec<(&str, bool, Bytes)>> = LazyLock::new(|| {
        LANGUAGES
            .iter()
            .flat_map(|(tag, _)| [(*tag, true), (*tag, false)])
            .map(|(tag, online)| (tag, online, write_no_sign_in_page(tag, online)))
            .collect()
    });
    PAGES
        .iter()
        .find(|(tag, reason, _)| *tag == language && *reason == online)
        .map(|(_, _, page)| page.clone())
        .unwrap_or_else(|| write_no_sign_in_page(language, online))
}

fn write_no_sign_in_page(language: &str, online: bool) -> Bytes {
    let (texts, english) = (texts(language), texts(LANGUAGES[0].0));
    let text = |key: &str| {
        let value = texts
            .get(key)
            .or_else(|| english.get(key))
            .and_then(Value::as_str)
            .unwrap_or(key);
        let mut escaped = BytesMut::new();
        xml_text(&mut escaped, value);
        String::from_utf8(escaped.to_vec()).expect("escaping keeps UTF-8")
    };
    let reason = text(if online {
        "noSignInOnline"
    } else {
        "noSignInOff"
    });
    Bytes::from(format!(
        "<!doctype html>\n<html lang=\"{language}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<link rel=\"stylesheet\" href=\"{css}\">\n\
         <link rel=\"icon\" href=\"{icon}\" type=\"image/svg+xml\">\n</head>\n\
         <body class=\"narrow\">\n<main>\n<h1>{title}</h1>\n<p>{reason}</p>\n<p>{how}</p>\n\
         <p>{api}</p>\n</main>\n</body>\n</html>\n",
        title = text("noSignInTitle"),
        how = text("noSignInHow"),
        api = text("noSignInApi"),
        css = super::assets::versioned("{{board.css}}"),
        icon = super::assets::versioned("{{favicon.svg}}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn every_language_has_exactly_the_english_keys() {
        let english: Vec<_> = texts("en").keys().cloned().collect();
        for (tag, _) in LANGUAGES {
            let keys: Vec<_> = texts(tag).keys().cloned().collect();
            let missing: Vec<_> = english.iter().filter(|k| !keys.contains(k)).collect();
            let extra: Vec<_> = keys.iter().filter(|k| !english.contains(k)).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{tag}: missing {missing:?}, extra {extra:?}"
            );
            for (key, value) in texts(tag) {
                assert!(
                    value.as_str().is_some_and(|v| !v.is_empty()),
                    "{tag}: {key} is no text"
                );
            }
        }
    }

    #[test]
    fn the_language_follows_accept_language() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT_LANGUAGE, HeaderValue::from_str(value).unwrap());
            choose(&headers)
        };
        assert_eq!(choose(&HeaderMap::new()), "en");
        assert_eq!(with("nb-NO,nb;q=0.9,en;q=0.8"), "nb");
        assert_eq!(with("no"), "nb");
        assert_eq!(with("nn-NO"), "nb");
        assert_eq!(with("sv-SE,en;q=0.5,nb;q=0.4"), "en");
        assert_eq!(with("de, fr"), "en");
        assert_eq!(with("en;q=0, nb;q=0.1"), "nb");
    }
}
