use std::fmt;

/// A language the server translates into: the fifteen of SuperOffice's legacy language codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    /// English (`US`).
    En,
    /// Norwegian Bokmål (`NO`).
    Nb,
    /// Swedish (`SW`).
    Sv,
    /// Danish (`DA`).
    Da,
    /// German (`GE`).
    De,
    /// Dutch (`NL`).
    Nl,
    /// French (`FR`).
    Fr,
    /// Spanish (`SP`).
    Es,
    /// Italian (`IT`).
    It,
    /// Finnish (`FI`).
    Fi,
    /// Polish (`PL`).
    Pl,
    /// Czech (`CZ`).
    Cs,
    /// Russian (`RU`).
    Ru,
    /// Japanese (`JP`).
    Ja,
    /// Simplified Chinese (`CN`).
    Zh,
}

impl Language {
    /// Every supported language, English first.
    pub const ALL: [Language; 15] = [
        Self::En,
        Self::Nb,
        Self::Sv,
        Self::Da,
        Self::De,
        Self::Nl,
        Self::Fr,
        Self::Es,
        Self::It,
        Self::Fi,
        Self::Pl,
        Self::Cs,
        Self::Ru,
        Self::Ja,
        Self::Zh,
    ];

    /// The ISO 639-1 code, as sent in `Content-Language`. Norwegian is `nb`: SuperOffice's `NO`
    /// texts are written in Bokmål, and `nb` says so where `no` would not.
    pub const fn iso(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Nb => "nb",
            Self::Sv => "sv",
            Self::Da => "da",
            Self::De => "de",
            Self::Nl => "nl",
            Self::Fr => "fr",
            Self::Es => "es",
            Self::It => "it",
            Self::Fi => "fi",
            Self::Pl => "pl",
            Self::Cs => "cs",
            Self::Ru => "ru",
            Self::Ja => "ja",
            Self::Zh => "zh",
        }
    }

    /// SuperOffice's legacy code, as used in multi-language values (`US:"..."`).
    pub const fn legacy_code(self) -> &'static str {
        match self {
            Self::En => "US",
            Self::Nb => "NO",
            Self::Sv => "SW",
            Self::Da => "DA",
            Self::De => "GE",
            Self::Nl => "NL",
            Self::Fr => "FR",
            Self::Es => "SP",
            Self::It => "IT",
            Self::Fi => "FI",
            Self::Pl => "PL",
            Self::Cs => "CZ",
            Self::Ru => "RU",
            Self::Ja => "JP",
            Self::Zh => "CN",
        }
    }

    /// Reads a BCP 47 language tag (`nb-NO`, `sv`, `zh-Hans-CN`), case-insensitively, by its
    /// primary subtag; the region and script pick nothing since each language has one text.
    /// `no`, `nb` and `nn` all give Norwegian: SuperOffice has one Norwegian, and a Nynorsk
    /// reader is better served by Bokmål than by the English fallback.
    ///
    /// Legacy codes are not accepted here: `sw` is Swahili in a language tag, not Swedish.
    pub fn from_tag(tag: &str) -> Option<Self> {
        let mut subtags = tag.split('-');
        let primary = subtags.next()?;
        let well_formed = subtags.all(|subtag| {
            (1..=8).contains(&subtag.len()) && subtag.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if !well_formed {
            return None;
        }
        if primary.eq_ignore_ascii_case("no") || primary.eq_ignore_ascii_case("nn") {
            return Some(Self::Nb);
        }
        Self::ALL
            .into_iter()
            .find(|language| language.iso().eq_ignore_ascii_case(primary))
    }

    /// Reads one of SuperOffice's legacy codes (`US`, `NO`, `GE`, ...), case-insensitively.
    pub fn from_legacy_code(code: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|language| language.legacy_code().eq_ignore_ascii_case(code))
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.iso())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tags_with_regions_in_any_case() {
        assert_eq!(Language::from_tag("nb-NO"), Some(Language::Nb));
        assert_eq!(Language::from_tag("NO"), Some(Language::Nb));
        assert_eq!(Language::from_tag("nn-no"), Some(Language::Nb));
        assert_eq!(Language::from_tag("sv-SE"), Some(Language::Sv));
        assert_eq!(Language::from_tag("EN-us"), Some(Language::En));
        assert_eq!(Language::from_tag("zh-Hans-CN"), Some(Language::Zh));
        assert_eq!(Language::from_tag("de-CH-1901"), Some(Language::De));
    }

    #[test]
    fn refuses_unsupported_and_malformed_tags() {
        for tag in [
            "",
            "ko",
            "sw",
            "US",
            "GE",
            "en-",
            "en--US",
            "en-toolongsubtag",
            "en_US",
            " en",
            "*",
            "x",
        ] {
            assert_eq!(Language::from_tag(tag), None, "{tag:?}");
        }
    }

    #[test]
    fn codes_round_trip() {
        for language in Language::ALL {
            assert_eq!(Language::from_tag(language.iso()), Some(language));
            assert_eq!(
                Language::from_legacy_code(language.legacy_code()),
                Some(language)
            );
            assert_eq!(
                Language::from_legacy_code(&language.legacy_code().to_lowercase()),
                Some(language)
            );
        }
        assert_eq!(Language::from_legacy_code("SW"), Some(Language::Sv));
        assert_eq!(Language::from_legacy_code("en"), None);
    }
}
