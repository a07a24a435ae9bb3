//! Multi-language values: `US:"Out of office";NO:"Ikke til stede"`.

use std::borrow::Cow;

use super::Language;

/// Picks one language's text from a multi-language value: the requested language's entry, else
/// the English (`US`) one, else the first. Anything that is not exactly a multi-language value
/// comes back unchanged.
///
/// The form, as SuperOffice writes it:
///
/// - entries `CODE:"text"` separated by `;`, where `CODE` is one of the fifteen legacy codes in
///   upper case. Whitespace around an entry is allowed; a trailing `;` is not.
/// - a `"` inside a text is doubled (`""`), as in CSV. Doubling was chosen over `\"` because it
///   leaves backslashes as typed (`C:\`, `\o/`) and needs no escape for the escape character.
/// - when a code appears twice, its first entry counts.
///
/// Being strict keeps ordinary messages that merely contain a colon and quotes, such as
/// `Re:"budget"`, from being mistaken for a multi-language value.
pub fn select_language(text: &str, language: Language) -> Cow<'_, str> {
    let Some(entries) = parse(text) else {
        return Cow::Borrowed(text);
    };
    let find = |wanted: Language| entries.iter().find(|entry| entry.language == wanted);
    let Some(entry) = find(language)
        .or_else(|| find(Language::En))
        .or(entries.first())
    else {
        return Cow::Borrowed(text);
    };
    if entry.quoted.contains("\"\"") {
        Cow::Owned(entry.quoted.replace("\"\"", "\""))
    } else {
        Cow::Borrowed(entry.quoted)
    }
}

/// One `CODE:"text"` entry.
struct Entry<'a> {
    language: Language,
    /// The text between the quotes, its inner quotes still doubled.
    quoted: &'a str,
}

/// The entries of a well-formed multi-language value, in order; `None` for any other string.
fn parse(text: &str) -> Option<Vec<Entry<'_>>> {
    let mut entries = Vec::new();
    let mut rest = text.trim_start();
    loop {
        let (code, after_code) = rest.split_at_checked(2)?;
        let language = Language::ALL
            .into_iter()
            .find(|language| language.legacy_code() == code)?;
        let (quoted, after_entry) = split_quoted(after_code.strip_prefix(":\"")?)?;
        entries.push(Entry { language, quoted });
        rest = after_entry.trim_start();
        if rest.is_empty() {
            return Some(entries);
        }
        rest = rest.strip_prefix(';')?.trim_start();
    }
}

/// Splits at the quote that closes a text, skipping doubled quotes: the text and what follows
/// the closing quote.
fn split_quoted(text: &str) -> Option<(&str, &str)> {
    let bytes = text.as_bytes();
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'"' {
            if bytes.get(index + 1) == Some(&b'"') {
                index += 2;
                continue;
            }
            return Some((text.get(..index)?, text.get(index + 1..)?));
        }
        index += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn picks_the_requested_language() {
        let value = r#"US:"Out of office";NO:"Ikke til stede""#;
        assert_eq!(select_language(value, Language::Nb), "Ikke til stede");
        assert_eq!(select_language(value, Language::En), "Out of office");
    }

    #[test]
    fn falls_back_to_english_then_the_first_entry() {
        assert_eq!(
            select_language(r#"NO:"Ikke til stede";US:"Out of office""#, Language::De),
            "Out of office"
        );
        assert_eq!(
            select_language(r#"NO:"Ikke til stede";SW:"Inte här""#, Language::De),
            "Ikke til stede"
        );
    }

    #[test]
    fn doubled_quotes_are_one_quote() {
        let value = r#"US:"The ""big"" meeting";GE:"Die ""große"" Besprechung""#;
        assert_eq!(
            select_language(value, Language::De),
            r#"Die "große" Besprechung"#
        );
        assert_eq!(select_language(r#"US:"""""#, Language::En), "\"");
        assert_eq!(select_language(r#"US:"C:\";NO:"x""#, Language::En), r"C:\");
    }

    #[test]
    fn allows_whitespace_around_entries_and_keeps_the_first_duplicate() {
        assert_eq!(
            select_language(r#"  US:"a" ;  NO:" b "  "#, Language::Nb),
            " b "
        );
        assert_eq!(select_language(r#"US:"a";US:"b""#, Language::En), "a");
        assert_eq!(select_language(r#"US:"""#, Language::Nb), "");
    }

    #[test]
    fn borrows_when_nothing_is_unescaped() {
        assert!(matches!(
            select_language(r#"US:"a";NO:"b""#, Language::Nb),
            Cow::Borrowed("b")
        ));
        assert!(matches!(
            select_language("Back at 14:00", Language::Nb),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn other_strings_come_back_unchanged() {
        for text in [
            "",
            "Back at 14:00",
            r#"Re:"budget""#,
            r#"us:"lower case code""#,
            r#"XX:"unknown code""#,
            r#"US:"a";"#,
            r#"US:"a";;NO:"b""#,
            r#"US:"a" NO:"b""#,
            r#"US:"unterminated"#,
            r#"US:"a"b""#,
            r#"US :"a""#,
            r#"US:'a'"#,
            r#"US:"a";NO"#,
            "ÆØ:\"x\"",
        ] {
            assert_eq!(select_language(text, Language::Nb), text, "{text:?}");
        }
    }

    /// Distinct languages with arbitrary texts, in arbitrary order.
    fn entries() -> impl Strategy<Value = Vec<(Language, String)>> {
        prop::sample::subsequence(Language::ALL.to_vec(), 1..=Language::ALL.len())
            .prop_shuffle()
            .prop_flat_map(|languages| {
                let count = languages.len();
                (Just(languages), prop::collection::vec(".*", count))
            })
            .prop_map(|(languages, texts)| languages.into_iter().zip(texts).collect())
    }

    fn render(entries: &[(Language, String)]) -> String {
        entries
            .iter()
            .map(|(language, text)| {
                format!(
                    "{}:\"{}\"",
                    language.legacy_code(),
                    text.replace('"', "\"\"")
                )
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    proptest! {
        #[test]
        fn every_entry_comes_back(entries in entries()) {
            let value = render(&entries);
            for (language, text) in &entries {
                prop_assert_eq!(select_language(&value, *language), text.as_str());
            }
            let fallback = entries
                .iter()
                .find(|(language, _)| *language == Language::En)
                .unwrap_or(&entries[0]);
            for language in Language::ALL {
                if !entries.iter().any(|(present, _)| *present == language) {
                    prop_assert_eq!(select_language(&value, language), fallback.1.as_str());
                }
            }
        }

        #[test]
        fn broken_values_come_back_unchanged(entries in entries(), breakage in 0..5usize, language in prop::sample::select(Language::ALL.to_vec())) {
            let value = render(&entries);
            let broken = match breakage {
                0 => format!("{value};"),
                1 => format!("{value}x"),
                2 => value.to_lowercase(),
                3 => format!("{}\"", value.replacen(':', ": ", 1)),
                _ => value.get(..value.len() - 1).unwrap_or_default().to_owned(),
            };
            prop_assert_eq!(select_language(&broken, language), broken.as_str());
        }

        #[test]
        fn arbitrary_strings_never_panic(text in ".*", language in prop::sample::select(Language::ALL.to_vec())) {
            let selected = select_language(&text, language);
            if parse(&text).is_none() {
                prop_assert_eq!(selected, text.as_str());
            }
        }

        #[test]
        fn near_misses_never_panic(text in r#"( ?(US|NO|SW|us|ÆØ)?:?"?([a-z"]|"")*"? ?;?){0,4}"#, language in prop::sample::select(Language::ALL.to_vec())) {
            let selected = select_language(&text, language);
            if parse(&text).is_none() {
                prop_assert_eq!(selected, text.as_str());
            }
        }
    }
}
