use super::Language;

/// What the `SO-Language` and `Accept-Language` headers ask for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LanguageChoice {
    /// No supported language was asked for: strings go out as stored.
    #[default]
    Untouched,
    /// Translation was switched off with `*` or `x`: strings go out as stored.
    Off,
    /// Strings are translated into this language.
    Translate(Language),
}

impl LanguageChoice {
    /// Chooses from the two headers' values. A header sent more than once should be passed
    /// joined with `, `, as HTTP allows.
    ///
    /// Each value is a list of language ranges with optional quality values
    /// (`sv-SE,en;q=0.5`); the most preferred supported language wins, ties going to the first
    /// listed. `q=0` rules an entry out, and an entry with a malformed quality value is dropped.
    /// A value that is exactly `*` or `x` switches translation off; a `*` inside a list names no
    /// language of its own and is skipped.
    ///
    /// `SO-Language` comes first. When it names no supported language the choice falls through
    /// to `Accept-Language` rather than leaving strings untouched: the client still said which
    /// languages it reads, and the contract only promises untouched strings when there is no
    /// language at all.
    pub fn from_headers(so_language: Option<&str>, accept_language: Option<&str>) -> Self {
        for value in [so_language, accept_language].into_iter().flatten() {
            let value = value.trim();
            if value == "*" || value.eq_ignore_ascii_case("x") {
                return Self::Off;
            }
            if let Some(language) = most_preferred(value) {
                return Self::Translate(language);
            }
        }
        Self::Untouched
    }

    /// The language strings are translated into, if any.
    pub const fn language(self) -> Option<Language> {
        match self {
            Self::Translate(language) => Some(language),
            Self::Untouched | Self::Off => None,
        }
    }

    /// The `Content-Language` header value: the chosen language's ISO code. Untranslated
    /// strings are in whatever language they were stored in, so they get no header.
    pub const fn content_language(self) -> Option<&'static str> {
        match self {
            Self::Translate(language) => Some(language.iso()),
            Self::Untouched | Self::Off => None,
        }
    }
}

/// The supported language with the highest quality in a language-range list.
fn most_preferred(list: &str) -> Option<Language> {
    let mut best: Option<(u16, Language)> = None;
    for entry in list.split(',') {
        let Some((language, quality)) = parse_entry(entry) else {
            continue;
        };
        // Strictly greater, so that ties stay with the entry listed first.
        if quality > 0 && best.is_none_or(|(best_quality, _)| quality > best_quality) {
            best = Some((quality, language));
        }
    }
    best.map(|(_, language)| language)
}

/// One list entry: its language, if supported, and its quality in thousandths.
fn parse_entry(entry: &str) -> Option<(Language, u16)> {
    let (tag, quality) = crate::weighted::parse_entry(entry)?;
    Some((Language::from_tag(tag)?, quality))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn choose(so_language: Option<&str>, accept_language: Option<&str>) -> LanguageChoice {
        LanguageChoice::from_headers(so_language, accept_language)
    }

    #[test]
    fn no_language_leaves_strings_untouched() {
        assert_eq!(choose(None, None), LanguageChoice::Untouched);
        assert_eq!(choose(Some(""), Some("  ")), LanguageChoice::Untouched);
        assert_eq!(
            choose(None, Some("ko, ar;q=0.5")),
            LanguageChoice::Untouched
        );
        assert_eq!(choose(None, Some("ko, *;q=0.5")), LanguageChoice::Untouched);
    }

    #[test]
    fn star_and_x_switch_translation_off() {
        for off in ["*", "x", "X", " * "] {
            assert_eq!(
                choose(Some(off), Some("nb-NO")),
                LanguageChoice::Off,
                "{off:?}"
            );
        }
        assert_eq!(choose(None, Some("*")), LanguageChoice::Off);
        assert_eq!(choose(Some("ko"), Some("*")), LanguageChoice::Off);
    }

    #[test]
    fn so_language_overrides_accept_language() {
        assert_eq!(
            choose(Some("de"), Some("nb-NO")),
            LanguageChoice::Translate(Language::De)
        );
        assert_eq!(
            choose(Some("ko"), Some("nb-NO")),
            LanguageChoice::Translate(Language::Nb)
        );
        assert_eq!(
            choose(Some("GE"), Some("fr")),
            LanguageChoice::Translate(Language::Fr)
        );
    }

    #[test]
    fn regions_and_quality_values_count() {
        assert_eq!(
            choose(None, Some("nb-NO")),
            LanguageChoice::Translate(Language::Nb)
        );
        assert_eq!(
            choose(None, Some("sv-SE,en;q=0.5")),
            LanguageChoice::Translate(Language::Sv)
        );
        assert_eq!(
            choose(None, Some("sv-SE;q=0.4, en;q=0.5")),
            LanguageChoice::Translate(Language::En)
        );
        assert_eq!(
            choose(None, Some("ko, ja;q=0.1")),
            LanguageChoice::Translate(Language::Ja)
        );
        assert_eq!(
            choose(None, Some("en;q=0, fi;q=0.001")),
            LanguageChoice::Translate(Language::Fi)
        );
        assert_eq!(
            choose(None, Some("en ; Q = 0.5 , de")),
            LanguageChoice::Translate(Language::De)
        );
    }

    #[test]
    fn ties_go_to_the_first_listed() {
        assert_eq!(
            choose(None, Some("fr, de")),
            LanguageChoice::Translate(Language::Fr)
        );
        assert_eq!(
            choose(None, Some("fr;q=0.5, de;q=0.500")),
            LanguageChoice::Translate(Language::Fr)
        );
    }

    #[test]
    fn zero_and_malformed_quality_drop_the_entry() {
        assert_eq!(choose(None, Some("nb;q=0")), LanguageChoice::Untouched);
        for malformed in ["2", "1.5", "0.0001", "-1", "abc", "", ".5", "0,5"] {
            let header = format!("nb;q={malformed}, da;q=0.1");
            assert_eq!(
                choose(None, Some(&header)),
                LanguageChoice::Translate(Language::Da),
                "{header:?}"
            );
        }
    }

    #[test]
    fn content_language_is_the_iso_code() {
        assert_eq!(
            LanguageChoice::Translate(Language::Nb).content_language(),
            Some("nb")
        );
        assert_eq!(LanguageChoice::Off.content_language(), None);
        assert_eq!(LanguageChoice::Untouched.content_language(), None);
    }

    /// Tags the generated headers draw from: supported, unsupported, regional and wildcard.
    const TAGS: [&str; 12] = [
        "en", "nb-NO", "no", "sv-SE", "de", "JA", "zh-Hans", "ko", "sw", "ar-EG", "*", "en-GB",
    ];

    /// A quality parameter as written, and what it means: `None` if malformed.
    fn quality() -> impl Strategy<Value = (String, Option<u16>)> {
        prop_oneof![
            Just((String::new(), Some(1000))),
            (0u16..=1000).prop_map(|q| (format!(";q={}", f64::from(q) / 1000.0), Some(q))),
            (0u16..=1000).prop_map(|q| (format!("; q={}.{:03}", q / 1000, q % 1000), Some(q))),
            Just((";q=1.001".to_owned(), None)),
            Just((";q=0.12345".to_owned(), None)),
            Just((";q=high".to_owned(), None)),
        ]
    }

    proptest! {
        #[test]
        fn picks_the_most_preferred_supported_language(
            entries in prop::collection::vec((prop::sample::select(TAGS.to_vec()), quality()), 0..8)
        ) {
            let header = entries
                .iter()
                .map(|(tag, (parameter, _))| format!("{tag}{parameter}"))
                .collect::<Vec<_>>()
                .join(", ");

            // The reference model: keep acceptable supported entries, take the highest quality,
            // and on equal quality the one listed first.
            let mut expected = None;
            let mut best_quality = 0;
            for (tag, (_, quality)) in &entries {
                if let (Some(language), Some(quality)) = (Language::from_tag(tag), *quality)
                    && quality > best_quality
                {
                    best_quality = quality;
                    expected = Some(language);
                }
            }
            let expected = match expected {
                Some(language) => LanguageChoice::Translate(language),
                None if header == "*" => LanguageChoice::Off,
                None => LanguageChoice::Untouched,
            };
            prop_assert_eq!(choose(None, Some(&header)), expected);
        }

        #[test]
        fn never_panics(so_language in ".*", accept_language in ".*") {
            let _ = choose(Some(&so_language), Some(&accept_language));
        }
    }
}
