//! `SO-Culture`: how numbers and dates are written inside translated strings.

use std::fmt::Write;

use super::{Language, LanguageChoice};

/// Number and date formatting rules: one culture for each supported language, that of its main
/// region (`nb-NO`, `en-US`, `zh-CN`).
///
/// A regional variant such as `en-GB` or `de-AT` gets its language's main culture: the project
/// ships one set of rules per language, and the language's rules are closer than none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Culture {
    language: Language,
}

/// The rules of one culture, after .NET's (ICU) data, which SuperOffice formats with.
struct Rules {
    name: &'static str,
    decimal_separator: char,
    group_separator: char,
    negative_sign: char,
    short_date_pattern: &'static str,
}

impl Rules {
    const fn new(
        name: &'static str,
        decimal_separator: char,
        group_separator: char,
        negative_sign: char,
        short_date_pattern: &'static str,
    ) -> Self {
        Self {
            name,
            decimal_separator,
            group_separator,
            negative_sign,
            short_date_pattern,
        }
    }
}

const NO_BREAK_SPACE: char = '\u{a0}';
const NARROW_NO_BREAK_SPACE: char = '\u{202f}';
const MINUS_SIGN: char = '\u{2212}';

impl Culture {
    /// The culture of a language's main region.
    pub const fn for_language(language: Language) -> Self {
        Self { language }
    }

    /// Reads an `SO-Culture` value (`nb-NO`, `en-US`, `de`), case-insensitively. A value that
    /// names no supported language is `None`, to be ignored rather than refused.
    pub fn parse(value: &str) -> Option<Self> {
        Language::from_tag(value.trim()).map(Self::for_language)
    }

    /// The culture a request's strings are formatted in. Without a language there is none,
    /// since `SO-Culture` is ignored then. With one, `SO-Culture` overrides the language's own
    /// culture ("partially overrides SO-Language", as the reference page puts it), and an
    /// unreadable `SO-Culture` leaves the language's culture in place.
    pub fn from_headers(so_culture: Option<&str>, choice: LanguageChoice) -> Option<Self> {
        let language = choice.language()?;
        Some(
            so_culture
                .and_then(Self::parse)
                .unwrap_or(Self::for_language(language)),
        )
    }

    /// The language whose rules these are.
    pub const fn language(self) -> Language {
        self.language
    }

    /// The culture's name, language and region: `nb-NO`.
    pub const fn name(self) -> &'static str {
        self.rules().name
    }

    /// The character between the whole and the fractional part.
    pub const fn decimal_separator(self) -> char {
        self.rules().decimal_separator
    }

    /// The character between groups of three digits. Several cultures use a no-break space
    /// so that a number never breaks across lines.
    pub const fn group_separator(self) -> char {
        self.rules().group_separator
    }

    /// The sign in front of a negative number: some cultures use the true minus sign (U+2212).
    pub const fn negative_sign(self) -> char {
        self.rules().negative_sign
    }

    /// The short date pattern in .NET's notation (`dd.MM.yyyy`).
    pub const fn short_date_pattern(self) -> &'static str {
        self.rules().short_date_pattern
    }

    /// Writes a number with `decimals` fractional digits and grouped thousands, as .NET's `N`
    /// format does: `1 234,50` in `nb-NO`.
    ///
    /// Rounding is half away from zero on the number's shortest decimal form, so a value
    /// written as `2.5` becomes `3` and `1.005` becomes `1.01`, as a reader expects; rounding
    /// the exact binary value would give `1.00`. A negative number that rounds to zero has no
    /// sign. Not-a-number and the infinities are written `NaN` and `∞`.
    pub fn format_number(self, value: f64, decimals: u8) -> String {
        if value.is_nan() {
            return "NaN".to_owned();
        }
        let mut formatted = String::new();
        if value.is_infinite() {
            if value < 0.0 {
                formatted.push(self.negative_sign());
            }
            formatted.push('∞');
            return formatted;
        }
        let (whole, fraction) = round_half_away_from_zero(value.abs(), usize::from(decimals));
        let is_zero = whole
            .bytes()
            .chain(fraction.bytes())
            .all(|digit| digit == b'0');
        if value < 0.0 && !is_zero {
            formatted.push(self.negative_sign());
        }
        for (index, digit) in whole.chars().enumerate() {
            if index > 0 && (whole.len() - index) % 3 == 0 {
                formatted.push(self.group_separator());
            }
            formatted.push(digit);
        }
        if decimals > 0 {
            formatted.push(self.decimal_separator());
            formatted.push_str(&fraction);
        }
        formatted
    }

    /// Writes a date in the culture's short date pattern: `24.12.2025` in `nb-NO`. `None` for a
    /// date that does not exist; years run from 1 to 9999, as in .NET.
    pub fn format_date(self, year: i32, month: u32, day: u32) -> Option<String> {
        if !(1..=9999).contains(&year)
            || !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
        {
            return None;
        }
        let mut formatted = String::new();
        let mut pattern = self.short_date_pattern().chars().peekable();
        while let Some(symbol) = pattern.next() {
            let mut width = 1;
            while pattern.next_if_eq(&symbol).is_some() {
                width += 1;
            }
            // A single letter means no padding; a repeated one pads to its count, except that
            // `yy` is the year within its century.
            let written = match symbol {
                'd' => write!(formatted, "{day:0width$}"),
                'M' => write!(formatted, "{month:0width$}"),
                'y' if width == 2 => write!(formatted, "{:02}", year % 100),
                'y' => write!(formatted, "{year:0width$}"),
                literal => {
                    formatted.extend(std::iter::repeat_n(literal, width));
                    Ok(())
                }
            };
            written.ok()?;
        }
        Some(formatted)
    }

    const fn rules(self) -> Rules {
        match self.language {
            Language::En => Rules::new("en-US", '.', ',', '-', "M/d/yyyy"),
            Language::Nb => Rules::new("nb-NO", ',', NO_BREAK_SPACE, MINUS_SIGN, "dd.MM.yyyy"),
            Language::Sv => Rules::new("sv-SE", ',', NO_BREAK_SPACE, MINUS_SIGN, "yyyy-MM-dd"),
            Language::Da => Rules::new("da-DK", ',', '.', '-', "dd.MM.yyyy"),
            Language::De => Rules::new("de-DE", ',', '.', '-', "dd.MM.yyyy"),
            Language::Nl => Rules::new("nl-NL", ',', '.', '-', "dd-MM-yyyy"),
            Language::Fr => Rules::new("fr-FR", ',', NARROW_NO_BREAK_SPACE, '-', "dd/MM/yyyy"),
            Language::Es => Rules::new("es-ES", ',', '.', '-', "dd/MM/yyyy"),
            Language::It => Rules::new("it-IT", ',', '.', '-', "dd/MM/yyyy"),
            Language::Fi => Rules::new("fi-FI", ',', NO_BREAK_SPACE, MINUS_SIGN, "d.M.yyyy"),
            Language::Pl => Rules::new("pl-PL", ',', NO_BREAK_SPACE, '-', "dd.MM.yyyy"),
            Language::Cs => Rules::new("cs-CZ", ',', NO_BREAK_SPACE, '-', "dd.MM.yyyy"),
            Language::Ru => Rules::new("ru-RU", ',', NO_BREAK_SPACE, '-', "dd.MM.yyyy"),
            Language::Ja => Rules::new("ja-JP", '.', ',', '-', "yyyy/MM/dd"),
            Language::Zh => Rules::new("zh-CN", '.', ',', '-', "yyyy/M/d"),
        }
    }
}

/// The whole and fractional digits of a non-negative number rounded to `decimals` places.
fn round_half_away_from_zero(value: f64, decimals: usize) -> (String, String) {
    // `Display` writes the shortest form that reads back as the same number, never with an
    // exponent.
    let shortest = value.to_string();
    let (whole, fraction) = shortest.split_once('.').unwrap_or((&shortest, ""));
    let mut digits: Vec<u8> = whole
        .bytes()
        .chain(
            fraction
                .bytes()
                .chain(std::iter::repeat(b'0'))
                .take(decimals),
        )
        .collect();
    if fraction
        .as_bytes()
        .get(decimals)
        .is_some_and(|&digit| digit >= b'5')
    {
        let mut carry = true;
        for digit in digits.iter_mut().rev() {
            if *digit == b'9' {
                *digit = b'0';
            } else {
                *digit += 1;
                carry = false;
                break;
            }
        }
        if carry {
            digits.insert(0, b'1');
        }
    }
    let fraction = digits.split_off(digits.len() - decimals);
    (
        digits.into_iter().map(char::from).collect(),
        fraction.into_iter().map(char::from).collect(),
    )
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn culture(value: &str) -> Culture {
        Culture::parse(value).unwrap()
    }

    #[test]
    fn reads_culture_names() {
        assert_eq!(culture("nb-NO").name(), "nb-NO");
        assert_eq!(culture("EN-us").name(), "en-US");
        assert_eq!(culture("de").name(), "de-DE");
        assert_eq!(culture("de-AT").name(), "de-DE");
        assert_eq!(culture(" zh-CN ").name(), "zh-CN");
        for ignored in ["", "ko-KR", "nb_NO", "x", "*", "en-"] {
            assert_eq!(Culture::parse(ignored), None, "{ignored:?}");
        }
    }

    #[test]
    fn needs_a_language() {
        let nb = LanguageChoice::Translate(Language::Nb);
        assert_eq!(
            Culture::from_headers(Some("de-DE"), LanguageChoice::Untouched),
            None
        );
        assert_eq!(
            Culture::from_headers(Some("de-DE"), LanguageChoice::Off),
            None
        );
        assert_eq!(
            Culture::from_headers(Some("de-DE"), nb),
            Some(culture("de"))
        );
        assert_eq!(Culture::from_headers(None, nb), Some(culture("nb")));
        assert_eq!(Culture::from_headers(Some("tlh"), nb), Some(culture("nb")));
    }

    #[test]
    fn formats_numbers() {
        let cases = [
            ("en-US", "1,234,567.89", "-0.5"),
            ("nb-NO", "1\u{a0}234\u{a0}567,89", "\u{2212}0,5"),
            ("sv-SE", "1\u{a0}234\u{a0}567,89", "\u{2212}0,5"),
            ("da-DK", "1.234.567,89", "-0,5"),
            ("de-DE", "1.234.567,89", "-0,5"),
            ("nl-NL", "1.234.567,89", "-0,5"),
            ("fr-FR", "1\u{202f}234\u{202f}567,89", "-0,5"),
            ("es-ES", "1.234.567,89", "-0,5"),
            ("it-IT", "1.234.567,89", "-0,5"),
            ("fi-FI", "1\u{a0}234\u{a0}567,89", "\u{2212}0,5"),
            ("pl-PL", "1\u{a0}234\u{a0}567,89", "-0,5"),
            ("cs-CZ", "1\u{a0}234\u{a0}567,89", "-0,5"),
            ("ru-RU", "1\u{a0}234\u{a0}567,89", "-0,5"),
            ("ja-JP", "1,234,567.89", "-0.5"),
            ("zh-CN", "1,234,567.89", "-0.5"),
        ];
        for (name, large, negative) in cases {
            let culture = culture(name);
            assert_eq!(culture.name(), name);
            assert_eq!(culture.format_number(1_234_567.891, 2), large, "{name}");
            assert_eq!(culture.format_number(-0.5, 1), negative, "{name}");
        }
    }

    #[test]
    fn rounds_numbers_as_written() {
        let en = culture("en");
        assert_eq!(en.format_number(2.5, 0), "3");
        assert_eq!(en.format_number(-2.5, 0), "-3");
        assert_eq!(en.format_number(1.005, 2), "1.01");
        assert_eq!(en.format_number(999.995, 2), "1,000.00");
        assert_eq!(en.format_number(0.0, 0), "0");
        assert_eq!(en.format_number(-0.001, 2), "0.00");
        assert_eq!(en.format_number(123.0, 3), "123.000");
        assert_eq!(en.format_number(100.0, 0), "100");
        assert_eq!(en.format_number(1e21, 0), "1,000,000,000,000,000,000,000");
        assert_eq!(en.format_number(1e-7, 8), "0.00000010");
        assert_eq!(en.format_number(f64::NAN, 2), "NaN");
        assert_eq!(en.format_number(f64::NEG_INFINITY, 2), "-∞");
        assert_eq!(
            culture("sv").format_number(f64::NEG_INFINITY, 2),
            "\u{2212}∞"
        );
    }

    #[test]
    fn formats_dates() {
        let cases = [
            ("en-US", "3/7/2025"),
            ("nb-NO", "07.03.2025"),
            ("sv-SE", "2025-03-07"),
            ("da-DK", "07.03.2025"),
            ("de-DE", "07.03.2025"),
            ("nl-NL", "07-03-2025"),
            ("fr-FR", "07/03/2025"),
            ("es-ES", "07/03/2025"),
            ("it-IT", "07/03/2025"),
            ("fi-FI", "7.3.2025"),
            ("pl-PL", "07.03.2025"),
            ("cs-CZ", "07.03.2025"),
            ("ru-RU", "07.03.2025"),
            ("ja-JP", "2025/03/07"),
            ("zh-CN", "2025/3/7"),
        ];
        for (name, date) in cases {
            assert_eq!(
                culture(name).format_date(2025, 3, 7).as_deref(),
                Some(date),
                "{name}"
            );
        }
        assert_eq!(
            culture("en").format_date(12, 12, 31).as_deref(),
            Some("12/31/0012")
        );
    }

    #[test]
    fn refuses_dates_that_do_not_exist() {
        let de = culture("de");
        assert_eq!(de.format_date(2024, 2, 29).as_deref(), Some("29.02.2024"));
        assert_eq!(de.format_date(2000, 2, 29).as_deref(), Some("29.02.2000"));
        for (year, month, day) in [
            (2025, 2, 29),
            (1900, 2, 29),
            (2025, 4, 31),
            (2025, 13, 1),
            (2025, 0, 1),
            (2025, 1, 0),
            (0, 1, 1),
            (10_000, 1, 1),
        ] {
            assert_eq!(
                de.format_date(year, month, day),
                None,
                "{year}-{month}-{day}"
            );
        }
    }

    proptest! {
        #[test]
        fn formatted_numbers_read_back(value in -1e12f64..1e12, decimals in 0u8..6) {
            for language in Language::ALL {
                let culture = Culture::for_language(language);
                let formatted = culture.format_number(value, decimals);
                let plain: String = formatted
                    .chars()
                    .filter(|&c| c != culture.group_separator())
                    .map(|c| match c {
                        c if c == culture.decimal_separator() => '.',
                        c if c == culture.negative_sign() => '-',
                        c => c,
                    })
                    .collect();
                let read: f64 = plain.parse().unwrap();
                let step = 10f64.powi(-i32::from(decimals));
                // Half a step, plus room for the binary error of numbers this large.
                prop_assert!((read - value).abs() <= step / 2.0 + value.abs() * 1e-15, "{value} as {formatted}");
                let fraction_digits = plain.split_once('.').map_or(0, |(_, fraction)| fraction.len());
                prop_assert_eq!(fraction_digits, usize::from(decimals));
            }
        }

        #[test]
        fn never_panics(value: f64, decimals: u8, year: i32, month: u32, day: u32) {
            for language in Language::ALL {
                let culture = Culture::for_language(language);
                let _ = culture.format_number(value, decimals);
                let _ = culture.format_date(year, month, day);
            }
        }
    }
}
