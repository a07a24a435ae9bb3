//! Language, culture and time-zone headers: which language a response's strings are in, how
//! they are translated, how numbers and dates inside them are written, and which zone
//! date-times are converted to.
//!
//! Everything here is pure; the HTTP layer reads the headers and passes their values in:
//!
//! - [`LanguageChoice::from_headers`][from_headers] for `SO-Language` and `Accept-Language`,
//!   and [`LanguageChoice::content_language`][content_language] for the response's
//!   `Content-Language`;
//! - [`translate`][translate] for each `Message`, with a [`Resources`][Resources] table;
//! - [`Culture::from_headers`][culture] for `SO-Culture`;
//! - [`TimeZoneChoice::parse`][time_zone] for `SO-TimeZone`, whose error is the 400.
//!
//! [from_headers]: crate::language::LanguageChoice::from_headers
//! [content_language]: crate::language::LanguageChoice::content_language
//! [translate]: crate::language::translate
//! [Resources]: crate::language::Resources
//! [culture]: crate::language::Culture::from_headers
//! [time_zone]: crate::language::TimeZoneChoice::parse

mod choice;
mod codes;
mod culture;
mod multi_language;
mod resources;
mod time_zone;

use std::borrow::Cow;

pub use choice::LanguageChoice;
pub use codes::Language;
pub use culture::Culture;
pub use multi_language::select_language;
pub use resources::{
    Resource, ResourceFileError, ResourceTable, Resources, is_resource_name, parse_resources_csv,
    parse_resources_json, replace_references, starter_resources,
};
pub use time_zone::{TimeZoneChoice, UnknownTimeZone};

/// Translates a stored string into `language`: first the multi-language value's entry is
/// selected ([`select_language`]), then the resource references in that entry are replaced
/// ([`replace_references`]). Borrows `text` when nothing changes.
///
/// Selection comes first so that each entry can hold its own references
/// (`US:"[SR_PRESENCE_AT_LUNCH] until 13:00";NO:"..."`), and so that a resource text containing
/// quotes or semicolons can never be taken apart as a multi-language value.
pub fn translate<'a>(
    text: &'a str,
    language: Language,
    resources: &(impl Resources + ?Sized),
) -> Cow<'a, str> {
    match select_language(text, language) {
        Cow::Borrowed(selected) => replace_references(selected, language, resources),
        Cow::Owned(selected) => match replace_references(&selected, language, resources) {
            Cow::Owned(replaced) => Cow::Owned(replaced),
            Cow::Borrowed(_) => Cow::Owned(selected),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starter_table() -> ResourceTable {
        starter_resources().into_iter().collect()
    }

    #[test]
    fn selects_then_replaces() {
        let table = starter_table();
        let text =
            r#"US:"[SR_PRESENCE_AT_LUNCH] until 13:00";NO:"[SR_PRESENCE_AT_LUNCH] til 13.00""#;
        assert_eq!(translate(text, Language::Nb, &table), "På lunsj til 13.00");
        assert_eq!(
            translate(text, Language::De, &table),
            "In der Mittagspause until 13:00"
        );
        assert_eq!(
            translate("[SR_PRESENCE_IN_A_MEETING]", Language::Ja, &table),
            "会議中"
        );
    }

    #[test]
    fn resource_texts_are_not_read_as_multi_language_values() {
        let mut table = ResourceTable::new();
        table.insert("SR_TRICK", Language::En, r#"US:"a";NO:"b""#);
        assert_eq!(
            translate("[SR_TRICK]", Language::Nb, &table),
            r#"US:"a";NO:"b""#
        );
    }

    #[test]
    fn borrows_when_nothing_changes() {
        let table = starter_table();
        assert!(matches!(
            translate("Back at 14:00", Language::Sv, &table),
            Cow::Borrowed("Back at 14:00")
        ));
        assert!(matches!(
            translate(r#"US:"a";SW:"b""#, Language::Sv, &table),
            Cow::Borrowed("b")
        ));
        assert!(
            matches!(translate(r#"US:"""a""""#, Language::Sv, &table), Cow::Owned(text) if text == "\"a\"")
        );
        assert_eq!(
            translate(r#"US:"""[SR_PRESENCE_SICK]""""#, Language::En, &table),
            "\"[SR_PRESENCE_SICK]\""
        );
        assert_eq!(
            translate(r#"US:"""[SR_PRESENCE_OUT_SICK]""""#, Language::Sv, &table),
            "\"Sjuk\""
        );
    }
}
