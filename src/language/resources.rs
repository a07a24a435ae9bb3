//! Resource references (`[SR_NAME]`) and the tables they are looked up in.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;

use super::Language;
use crate::records;

/// A table of resource texts by name and language.
///
/// Lookups are synchronous because translation runs while a response is written; a
/// database-backed table is expected to load its rows into memory (a [`ResourceTable`], or its
/// own cache) and answer from there.
pub trait Resources {
    /// The text of resource `name` in exactly `language`, without any fallback.
    fn get(&self, name: &str, language: Language) -> Option<&str>;
}

/// One resource text, as read from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// The name a reference uses, without brackets: `SR_PRESENCE_OUT_OF_OFFICE`.
    pub name: String,
    /// The language of `text`.
    pub language: Language,
    /// What the reference is replaced with, never empty.
    pub text: String,
}

/// An in-memory resource table.
#[derive(Clone, Debug, Default)]
pub struct ResourceTable {
    texts: HashMap<String, HashMap<Language, String>>,
}

impl ResourceTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a text, returning the one it replaces.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        language: Language,
        text: impl Into<String>,
    ) -> Option<String> {
        self.texts
            .entry(name.into())
            .or_default()
            .insert(language, text.into())
    }

    /// The number of texts, counting each language of a name.
    pub fn len(&self) -> usize {
        self.texts.values().map(HashMap::len).sum()
    }

    /// Whether the table holds no text.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }
}

impl Resources for ResourceTable {
    fn get(&self, name: &str, language: Language) -> Option<&str> {
        self.texts.get(name)?.get(&language).map(String::as_str)
    }
}

impl Extend<Resource> for ResourceTable {
    fn extend<I: IntoIterator<Item = Resource>>(&mut self, resources: I) {
        for resource in resources {
            self.insert(resource.name, resource.language, resource.text);
        }
    }
}

impl FromIterator<Resource> for ResourceTable {
    fn from_iter<I: IntoIterator<Item = Resource>>(resources: I) -> Self {
        let mut table = Self::new();
        table.extend(resources);
        table
    }
}

/// Whether `name` can be referenced as `[name]`: `SR_` followed by upper-case ASCII letters,
/// digits and underscores, the way SuperOffice names its resources. Requiring the prefix keeps
/// ordinary bracketed words (`[draft]`) from being looked up at all.
pub fn is_resource_name(name: &str) -> bool {
    name.strip_prefix("SR_")
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(is_name_byte))
}

fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_uppercase() || byte.is_ascii_digit() || byte == b'_'
}

/// Replaces each `[SR_NAME]` in `text` with the resource's text in `language`, else in English;
/// a reference found in neither stays as written. Replacement texts are not searched again, so
/// a resource that mentions another (or itself) cannot loop.
pub fn replace_references<'a>(
    text: &'a str,
    language: Language,
    resources: &(impl Resources + ?Sized),
) -> Cow<'a, str> {
    let mut replaced = String::new();
    // How far `text` has been copied into `replaced`; zero means nothing was replaced yet.
    let mut copied = 0;
    let mut searched = 0;
    while let Some(offset) = text.get(searched..).and_then(|rest| rest.find('[')) {
        let start = searched + offset;
        let Some(name) = text.get(start..).and_then(reference_at) else {
            searched = start + 1;
            continue;
        };
        let end = start + name.len() + 2;
        let found = resources
            .get(name, language)
            .or_else(|| resources.get(name, Language::En));
        if let Some(found) = found {
            replaced.push_str(text.get(copied..start).unwrap_or_default());
            replaced.push_str(found);
            copied = end;
        }
        searched = end;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    replaced.push_str(text.get(copied..).unwrap_or_default());
    Cow::Owned(replaced)
}

/// The name in a reference at the start of `text`, if one is there.
fn reference_at(text: &str) -> Option<&str> {
    let rest = text.strip_prefix('[')?;
    let length = rest.bytes().take_while(|&byte| is_name_byte(byte)).count();
    let name = rest.get(..length)?;
    (rest.as_bytes().get(length) == Some(&b']') && is_resource_name(name)).then_some(name)
}

/// The presence messages the project ships (`data/resources.csv`), in all fifteen languages.
pub fn starter_resources() -> Vec<Resource> {
    parse_resources_csv(include_str!("../../data/resources.csv"))
        .unwrap_or_else(|error| panic!("data/resources.csv is checked by the tests, yet: {error}"))
}

/// A resource file that cannot be imported, and where.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {problem}")]
pub struct ResourceFileError {
    /// Counted from 1.
    pub line: usize,
    /// What is wrong, in words.
    pub problem: String,
}

impl ResourceFileError {
    fn new(line: usize, problem: impl Into<String>) -> Self {
        Self {
            line,
            problem: problem.into(),
        }
    }
}

/// Reads resources from CSV: a `name,language,text` header, then one resource a line.
///
/// Fields follow RFC 4180 (quote a field to put `,`, `"` or a line break in it, doubling the
/// quotes inside); unquoted ones are trimmed, since blanks after commas are layout in
/// hand-written files (see [`crate::records::read_csv`]).
/// `language` is an ISO code (`en`, `nb`, `sv-SE`). Blank lines are skipped. A name that cannot
/// be referenced, an unknown language, an empty text or a name and language given twice is an
/// error: each would otherwise be silently unreachable or ambiguous.
pub fn parse_resources_csv(text: &str) -> Result<Vec<Resource>, ResourceFileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = records::read_csv(text)
        .map_err(|e| ResourceFileError::new(e.line, e.problem))?
        .into_iter();
    let Some((line, header)) = records.next() else {
        return Err(ResourceFileError::new(
            1,
            "the file is empty; expected the header name,language,text",
        ));
    };
    let expected = ["name", "language", "text"];
    if header.len() != expected.len()
        || !header
            .iter()
            .zip(expected)
            .all(|(found, wanted)| found.eq_ignore_ascii_case(wanted))
    {
        return Err(ResourceFileError::new(
            line,
            "expected the header name,language,text",
        ));
    }
    let mut seen = Seen::default();
    let mut resources = Vec::new();
    for (line, fields) in records {
        let [name, language, text] = <[String; 3]>::try_from(fields).map_err(|fields| {
            ResourceFileError::new(line, format!("expected 3 fields, found {}", fields.len()))
        })?;
        let resource = check_resource(name, &language, text)
            .map_err(|problem| ResourceFileError::new(line, problem))?;
        seen.check(&resource, line)
            .map_err(|problem| ResourceFileError::new(line, problem))?;
        resources.push(resource);
    }
    Ok(resources)
}

/// Reads resources from JSON: an array of `{"name": ..., "language": ..., "text": ...}`
/// objects, checked as for [`parse_resources_csv`] (but not trimmed: JSON strings are exact).
/// Unknown members are refused so that a misspelt one is not silently ignored.
pub fn parse_resources_json(text: &str) -> Result<Vec<Resource>, ResourceFileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rows: Vec<ResourceRow> = serde_json::from_str(text).map_err(|error| {
        let message = error.to_string();
        let position = format!(" at line {} column {}", error.line(), error.column());
        let problem = message.strip_suffix(&position).unwrap_or(&message);
        let problem = match error.column() {
            0 => problem.to_owned(),
            column => format!("{problem} (column {column})"),
        };
        ResourceFileError::new(error.line(), problem)
    })?;
    let lines = records::json_object_lines(text);
    let mut seen = Seen::default();
    let mut resources = Vec::new();
    for (index, row) in rows.into_iter().enumerate() {
        let line = lines.get(index).copied().unwrap_or(1);
        let resource = check_resource(row.name, &row.language, row.text)
            .map_err(|problem| ResourceFileError::new(line, problem))?;
        seen.check(&resource, line)
            .map_err(|problem| ResourceFileError::new(line, problem))?;
        resources.push(resource);
    }
    Ok(resources)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceRow {
    name: String,
    language: String,
    text: String,
}

/// Checks one resource's fields; the problem, if any, in words. A quoted CSV field keeps its
/// spaces, as a text may mean them; a name and a language never do, and a text of spaces
/// alone is as empty as none.
fn check_resource(name: String, language: &str, text: String) -> Result<Resource, String> {
    let name = name.trim().to_owned();
    if !is_resource_name(&name) {
        return Err(format!(
            "'{name}' is not a resource name: SR_ followed by upper-case letters, digits and underscores"
        ));
    }
    let language = language.trim();
    let language = Language::from_tag(language).ok_or_else(|| {
        format!(
            "'{language}' is not a supported language; expected an ISO code such as en, nb or sv"
        )
    })?;
    if text.trim().is_empty() {
        return Err(format!(
            "the {language} text of {name} is empty; leave the row out to fall back to English"
        ));
    }
    Ok(Resource {
        name,
        language,
        text,
    })
}

/// The name and language pairs read so far, with the line each was on.
#[derive(Default)]
struct Seen(HashMap<(String, Language), usize>);

impl Seen {
    fn check(&mut self, resource: &Resource, line: usize) -> Result<(), String> {
        match self
            .0
            .insert((resource.name.clone(), resource.language), line)
        {
            Some(first) => Err(format!(
                "{} already has a text in {}, on line {first}",
                resource.name, resource.language
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn table() -> ResourceTable {
        let mut table = ResourceTable::new();
        table.insert("SR_AWAY", Language::En, "Away");
        table.insert("SR_AWAY", Language::Nb, "Borte");
        table.insert("SR_ONLY_NORWEGIAN", Language::Nb, "Bare norsk");
        table.insert("SR_LOOP", Language::En, "[SR_LOOP]");
        table
    }

    #[test]
    fn replaces_references_anywhere() {
        let table = table();
        assert_eq!(
            replace_references("[SR_AWAY]", Language::Nb, &table),
            "Borte"
        );
        assert_eq!(
            replace_references("Now: [SR_AWAY]!", Language::Nb, &table),
            "Now: Borte!"
        );
        assert_eq!(
            replace_references("[SR_AWAY][SR_AWAY]", Language::En, &table),
            "AwayAway"
        );
        assert_eq!(
            replace_references("[[SR_AWAY]]", Language::En, &table),
            "[Away]"
        );
        assert_eq!(
            replace_references("ø[SR_AWAY]ø", Language::En, &table),
            "øAwayø"
        );
    }

    #[test]
    fn falls_back_to_english_then_to_the_reference() {
        let table = table();
        assert_eq!(
            replace_references("[SR_AWAY]", Language::Sv, &table),
            "Away"
        );
        assert_eq!(
            replace_references("[SR_ONLY_NORWEGIAN]", Language::Sv, &table),
            "[SR_ONLY_NORWEGIAN]"
        );
        assert_eq!(
            replace_references("[SR_MISSING] [SR_AWAY]", Language::Sv, &table),
            "[SR_MISSING] Away"
        );
    }

    #[test]
    fn replacements_are_not_searched_again() {
        assert_eq!(
            replace_references("[SR_LOOP]", Language::En, &table()),
            "[SR_LOOP]"
        );
    }

    #[test]
    fn only_resource_names_are_references() {
        let mut table = table();
        table.insert("draft", Language::En, "oops");
        table.insert("SR_", Language::En, "oops");
        for text in [
            "[draft]",
            "[SR_]",
            "[sr_away]",
            "[SR_AWAY",
            "SR_AWAY]",
            "[ SR_AWAY]",
            "[SR_AWAY ]",
            "[",
            "]",
        ] {
            assert!(
                matches!(replace_references(text, Language::En, &table), Cow::Borrowed(t) if t == text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn works_with_any_lookup() {
        struct Shouting;
        impl Resources for Shouting {
            fn get(&self, name: &str, _: Language) -> Option<&str> {
                (name == "SR_HI").then_some("HI")
            }
        }
        let dynamic: &dyn Resources = &Shouting;
        assert_eq!(
            replace_references("[SR_HI] there", Language::Fi, dynamic),
            "HI there"
        );
    }

    #[test]
    fn starter_resources_cover_every_language() {
        let resources = starter_resources();
        let names: HashSet<&str> = resources
            .iter()
            .map(|resource| resource.name.as_str())
            .collect();
        assert!(names.len() >= 8, "{names:?}");
        let table: ResourceTable = resources.iter().cloned().collect();
        assert_eq!(table.len(), resources.len());
        for name in &names {
            for language in Language::ALL {
                assert!(
                    table.get(name, language).is_some(),
                    "{name} has no {language} text"
                );
            }
        }
        assert_eq!(
            table.get("SR_PRESENCE_OUT_OF_OFFICE", Language::En),
            Some("Out of office")
        );
        assert_eq!(
            table.get("SR_PRESENCE_IN_A_MEETING", Language::De),
            Some("In einer Besprechung")
        );
    }

    #[test]
    fn reads_csv() {
        let csv = "\u{feff}Name,Language,Text\r\n\
                   SR_A,en,Away\r\n\
                   \r\n\
                   SR_A, nb-NO , \"Borte, \"\"helt\"\" borte\"\n\
                   SR_B,sv,\"two\nlines\"\n\
                   SR_C,fi,Poissa";
        let resources = parse_resources_csv(csv).unwrap();
        let texts: Vec<(&str, Language, &str)> = resources
            .iter()
            .map(|resource| {
                (
                    resource.name.as_str(),
                    resource.language,
                    resource.text.as_str(),
                )
            })
            .collect();
        assert_eq!(
            texts,
            [
                ("SR_A", Language::En, "Away"),
                ("SR_A", Language::Nb, "Borte, \"helt\" borte"),
                ("SR_B", Language::Sv, "two\nlines"),
                ("SR_C", Language::Fi, "Poissa"),
            ]
        );
    }

    #[test]
    fn csv_errors_name_the_line() {
        let header = "name,language,text\n";
        let cases = [
            ("", 1, "empty"),
            ("name,text\n", 1, "header"),
            ("name,language,text\nSR_A,en\n", 2, "3 fields"),
            ("name,language,text\n\nSR_A,en,a,b\n", 3, "3 fields"),
            ("name,language,text\nSR_A,xx,Away\n", 2, "'xx'"),
            ("name,language,text\nSR_A,US,Away\n", 2, "'US'"),
            ("name,language,text\nAWAY,en,Away\n", 2, "'AWAY'"),
            ("name,language,text\nSR_A,en,\n", 2, "empty"),
            ("name,language,text\nSR_A,en,a\nSR_A,en,b\n", 3, "line 2"),
            (
                "name,language,text\nSR_A,en,\"a\nb\nSR_B,en,c\n",
                2,
                "not closed",
            ),
            (
                "name,language,text\nSR_A,en,\"a\nb\"\nSR_B,en,c\"\n",
                4,
                "quote",
            ),
            ("name,language,text\nSR_A,en,\"a\"b\n", 2, "closing quote"),
        ];
        for (csv, line, words) in cases {
            let error = parse_resources_csv(csv).unwrap_err();
            assert_eq!(error.line, line, "{csv:?}: {error}");
            assert!(error.to_string().contains(words), "{csv:?}: {error}");
        }
        assert!(parse_resources_csv(header).unwrap().is_empty());
    }

    #[test]
    fn reads_json() {
        let json = r#"[
            {"name": "SR_A", "language": "en", "text": " Away "},
            {"name": "SR_A", "language": "ja", "text": "不在"}
        ]"#;
        let resources = parse_resources_json(json).unwrap();
        assert_eq!(
            resources[0],
            Resource {
                name: "SR_A".into(),
                language: Language::En,
                text: " Away ".into()
            }
        );
        assert_eq!(resources[1].text, "不在");
        assert!(parse_resources_json("[]").unwrap().is_empty());
        assert!(parse_resources_json("\u{feff} [ ] ").unwrap().is_empty());
    }

    #[test]
    fn json_errors_name_the_line() {
        let cases = [
            ("{}", 1, "expected a sequence"),
            (
                "[\n{\"name\": \"SR_A\", \"language\": \"en\"}\n]",
                2,
                "text",
            ),
            (
                "[\n{\"name\": \"SR_A\", \"language\": \"xx\", \"text\": \"a\"}\n]",
                2,
                "'xx'",
            ),
            (
                "[\n{\"name\": \"A\", \"language\": \"en\", \"text\": \"a\"}\n]",
                2,
                "'A'",
            ),
            (
                "[\n{\"name\": \"SR_A\", \"language\": \"en\", \"text\": \"a\", \"lang\": 1}\n]",
                2,
                "lang",
            ),
            (
                "[\n{\"name\": \"SR_A\", \"language\": \"en\", \"text\": \"a\"},\n{\"name\": \"SR_A\", \"language\": \"en-GB\", \"text\": \"b\"}\n]",
                3,
                "line 2",
            ),
            ("[\n{\"name\": \"SR_A\",", 2, "EOF"),
            (
                "[{\"name\": \"SR_A\", \"language\": \"en\", \"text\": \"{[\\\"}\"},\n\n  {\n\"name\": \"SR_B\",\n\"language\": \"zz\", \"text\": \"b\"}]",
                3,
                "'zz'",
            ),
        ];
        for (json, line, words) in cases {
            let error = parse_resources_json(json).unwrap_err();
            assert_eq!(error.line, line, "{json:?}: {error}");
            assert!(error.to_string().contains(words), "{json:?}: {error}");
        }
    }

    proptest! {
        #[test]
        fn text_without_references_is_borrowed(text in "[^\\[]*", language in prop::sample::select(Language::ALL.to_vec())) {
            prop_assert!(matches!(replace_references(&text, language, &table()), Cow::Borrowed(t) if t == text));
        }

        #[test]
        fn references_resolve_with_fallbacks(
            parts in prop::collection::vec(("[^\\[\\]]*", prop::sample::select(vec!["SR_AWAY", "SR_ONLY_NORWEGIAN", "SR_MISSING"])), 0..5),
            language in prop::sample::select(Language::ALL.to_vec()),
        ) {
            let table = table();
            let text: String = parts.iter().map(|(plain, name)| format!("{plain}[{name}]")).collect();
            let expected: String = parts
                .iter()
                .map(|(plain, name)| {
                    let replacement = match (*name, language) {
                        ("SR_AWAY", Language::Nb) => "Borte".to_owned(),
                        ("SR_AWAY", _) => "Away".to_owned(),
                        ("SR_ONLY_NORWEGIAN", Language::Nb) => "Bare norsk".to_owned(),
                        (name, _) => format!("[{name}]"),
                    };
                    format!("{plain}{replacement}")
                })
                .collect();
            prop_assert_eq!(replace_references(&text, language, &table), expected);
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".*", language in prop::sample::select(Language::ALL.to_vec())) {
            let _ = replace_references(&text, language, &table());
        }

        #[test]
        fn arbitrary_files_never_panic(text in ".*") {
            let _ = parse_resources_csv(&text);
            let _ = parse_resources_json(&text);
        }

        #[test]
        fn csv_round_trips(rows in prop::collection::vec(("SR_[A-Z0-9_]{1,8}", prop::sample::select(Language::ALL.to_vec()), "[^\\s\"]([^\"]|\"){0,10}[^\\s\"]"), 0..6)) {
            let mut csv = "name,language,text\n".to_owned();
            let mut unique = HashSet::new();
            let rows: Vec<_> = rows.into_iter().filter(|(name, language, _)| unique.insert((name.clone(), *language))).collect();
            for (name, language, text) in &rows {
                csv.push_str(&format!("{name},{language},\"{}\"\n", text.replace('"', "\"\"")));
            }
            let parsed = parse_resources_csv(&csv).unwrap();
            let parsed: Vec<_> = parsed.into_iter().map(|resource| (resource.name, resource.language, resource.text)).collect();
            prop_assert_eq!(parsed, rows);
        }
    }
}
