//! The language headers of a request: `SO-Language` over `Accept-Language`, `SO-Culture`,
//! `SO-TimeZone`; and the translation of messages on their way out.

use std::borrow::Cow;

use axum::http::header::ACCEPT_LANGUAGE;
use axum::http::{HeaderMap, HeaderName};

use super::error::ApiError;
use crate::language::{
    self, Culture, Language, LanguageChoice, ResourceTable, TimeZoneChoice, is_resource_name,
    select_language,
};
use crate::store::{Store, StoreError};

const SO_LANGUAGE: HeaderName = HeaderName::from_static("so-language");
const SO_CULTURE: HeaderName = HeaderName::from_static("so-culture");
const SO_TIME_ZONE: HeaderName = HeaderName::from_static("so-timezone");

/// What a request asked for in language, formatting and time zone.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RequestLanguage {
    pub choice: LanguageChoice,
    /// Number and date formatting inside strings; only with a language.
    pub culture: Option<Culture>,
    /// The zone date-times in responses are given in; neither presence carrier holds one yet.
    pub time_zone: Option<TimeZoneChoice>,
}

impl RequestLanguage {
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError> {
        // Most requests carry none of the four: one pass over the names they do carry is
        // cheaper than looking each of the four up.
        if !headers.keys().any(|name| {
            name == SO_LANGUAGE
                || name == ACCEPT_LANGUAGE
                || name == SO_CULTURE
                || name == SO_TIME_ZONE
        }) {
            return Ok(Self::default());
        }
        let so_language = joined(headers, &SO_LANGUAGE);
        let accept_language = joined(headers, &ACCEPT_LANGUAGE);
        let choice =
            LanguageChoice::from_headers(so_language.as_deref(), accept_language.as_deref());
        let culture = Culture::from_headers(joined(headers, &SO_CULTURE).as_deref(), choice);
        let time_zone = joined(headers, &SO_TIME_ZONE)
            .map(|value| TimeZoneChoice::parse(&value))
            .transpose()
            .map_err(|e| ApiError::InvalidRequest(format!("SO-TimeZone: {e}")))?;
        Ok(Self {
            choice,
            culture,
            time_zone,
        })
    }

    /// The language messages are translated into, if any.
    pub fn language(&self) -> Option<Language> {
        self.choice.language()
    }
}

/// A header's values, joined as if sent on one line; `None` when it is absent.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// Translates a stored message: the language's entry of a multi-language value, then its
/// `[SR_NAME]` references from the resource table. Reads the database only for a message that
/// has references, and then only their rows.
pub async fn translate<'a>(
    store: &Store,
    text: &'a str,
    language: Language,
) -> Result<Cow<'a, str>, StoreError> {
    let names = reference_names(&select_language(text, language));
    let mut table = ResourceTable::new();
    if !names.is_empty() {
        for resource in store.resources(&names, language).await? {
            table.insert(resource.name, resource.language, resource.text);
        }
    }
    Ok(language::translate(text, language, &table))
}

/// The resource names referenced as `[SR_NAME]` in a text.
fn reference_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find(['[', ']']) else {
            break;
        };
        let name = &rest[..close];
        if rest[close..].starts_with(']')
            && is_resource_name(name)
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_owned());
        }
        rest = &rest[close..];
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_reference_once() {
        assert_eq!(
            reference_names("[SR_A] and [SR_B], [SR_A] [not one] [[SR_C]] [SR_"),
            ["SR_A", "SR_B", "SR_C"]
        );
        assert!(reference_names("no references").is_empty());
    }
}
