//! `SO-TimeZone`: the zone date-times in responses are converted to.

use std::str::FromStr;
use std::sync::LazyLock;

/// A zone from the project's table (`data/timezones.csv`), as named by an `SO-TimeZone` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeZoneChoice {
    zone: &'static Zone,
    /// Whether date-times are written with their UTC offset (`, includeTZOffset`).
    include_offset: bool,
}

/// An `SO-TimeZone` value that names no zone in the table, or has a suffix other than
/// `includeTZOffset`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "'{0}' is not a time zone: expected a location code such as UTC, NO or US-NY, or a numeric zone id, \
     optionally followed by ', includeTZOffset'"
)]
pub struct UnknownTimeZone(pub String);

/// One row of the zone table.
#[derive(Debug, PartialEq, Eq)]
struct Zone {
    code: &'static str,
    id: u32,
    iana: &'static str,
}

/// The zone table. SuperOffice's own numeric ids are not published, so the ids are the
/// project's: stable once shipped, grouped by region (0 UTC, 1xx Europe, 2xx Africa, 3xx Asia,
/// 4xx Oceania, 5xx the Americas). Edit the file, never renumber a row.
static ZONES: LazyLock<Vec<Zone>> = LazyLock::new(|| {
    parse_zone_table(include_str!("../../data/timezones.csv")).unwrap_or_else(|problem| {
        panic!("data/timezones.csv is checked by the tests, yet: {problem}")
    })
});

impl TimeZoneChoice {
    /// Reads an `SO-TimeZone` value: a location code (`UTC`, `NO`, `US-NY`; any case) or a
    /// numeric zone id, optionally followed by `, includeTZOffset` (any case). A blank value
    /// names no zone and is refused like any other unknown one.
    pub fn parse(value: &str) -> Result<Self, UnknownTimeZone> {
        let unknown = || UnknownTimeZone(value.to_owned());
        let (name, include_offset) = match value.split_once(',') {
            Some((name, suffix)) if suffix.trim().eq_ignore_ascii_case("includeTZOffset") => {
                (name, true)
            }
            Some(_) => return Err(unknown()),
            None => (value, false),
        };
        let name = name.trim();
        let zone = if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
            let id: u32 = name.parse().map_err(|_| unknown())?;
            ZONES.iter().find(|zone| zone.id == id)
        } else {
            ZONES
                .iter()
                .find(|zone| zone.code.eq_ignore_ascii_case(name))
        };
        zone.map(|zone| Self {
            zone,
            include_offset,
        })
        .ok_or_else(unknown)
    }

    /// The IANA zone name, for the time-zone database: `Europe/Oslo`.
    pub fn iana(self) -> &'static str {
        self.zone.iana
    }

    /// The location code, as the table spells it: `US-NY`.
    pub fn code(self) -> &'static str {
        self.zone.code
    }

    /// The project's numeric id of the zone.
    pub fn id(self) -> u32 {
        self.zone.id
    }

    /// Whether date-times are written with their UTC offset.
    pub fn include_offset(self) -> bool {
        self.include_offset
    }
}

impl FromStr for TimeZoneChoice {
    type Err = UnknownTimeZone;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::parse(value)
    }
}

/// Reads the `code,id,iana` table, refusing duplicate codes or ids: either would make a header
/// value mean two zones.
fn parse_zone_table(text: &'static str) -> Result<Vec<Zone>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()));
    if lines.next().map(|(_, header)| header) != Some("code,id,iana") {
        return Err("line 1: expected the header code,id,iana".to_owned());
    }
    let mut zones: Vec<Zone> = Vec::new();
    for (line, row) in lines.filter(|(_, row)| !row.is_empty()) {
        let fields: Vec<&str> = row.split(',').map(str::trim).collect();
        let [code, id, iana] = fields[..] else {
            return Err(format!("line {line}: expected 3 fields"));
        };
        let id = id
            .parse()
            .map_err(|_| format!("line {line}: '{id}' is not a numeric id"))?;
        let code_is_usable = !code.is_empty() && !code.bytes().all(|b| b.is_ascii_digit());
        if !code_is_usable || !iana.contains('/') {
            return Err(format!("line {line}: '{code}' or '{iana}' is not usable"));
        }
        if zones
            .iter()
            .any(|zone| zone.code.eq_ignore_ascii_case(code) || zone.id == id)
        {
            return Err(format!(
                "line {line}: code {code} or id {id} is already in the table"
            ));
        }
        zones.push(Zone { code, id, iana });
    }
    Ok(zones)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn zone(value: &str) -> (&'static str, bool) {
        let choice = TimeZoneChoice::parse(value).unwrap();
        (choice.iana(), choice.include_offset())
    }

    #[test]
    fn the_table_is_sound() {
        assert!(ZONES.len() >= 40, "{}", ZONES.len());
        for code in [
            "UTC", "NO", "US-NY", "GB", "SE", "DK", "DE", "NL", "FR", "ES", "IT", "FI", "PL", "CZ",
            "RU", "JP", "CN", "US-CA", "US-LA", "US-CHI", "US-DEN",
        ] {
            assert!(ZONES.iter().any(|zone| zone.code == code), "{code}");
        }
    }

    #[test]
    fn reads_location_codes_and_ids() {
        assert_eq!(zone("UTC"), ("Etc/UTC", false));
        assert_eq!(zone("NO"), ("Europe/Oslo", false));
        assert_eq!(zone("us-ny"), ("America/New_York", false));
        assert_eq!(zone("RU"), ("Europe/Moscow", false));
        assert_eq!(zone("US-CA"), zone("US-LA"));
        assert_eq!(zone("0"), ("Etc/UTC", false));
        assert_eq!(zone("110"), ("Europe/Oslo", false));
        assert_eq!(zone(" 110 "), ("Europe/Oslo", false));
        assert_eq!(TimeZoneChoice::parse("no").unwrap().code(), "NO");
        assert_eq!(TimeZoneChoice::parse("NO").unwrap().id(), 110);
    }

    #[test]
    fn reads_the_offset_suffix() {
        assert_eq!(zone("NO, includeTZOffset"), ("Europe/Oslo", true));
        assert_eq!(zone("US-NY,INCLUDETZOFFSET"), ("America/New_York", true));
        assert_eq!(zone(" 500 , includetzoffset "), ("America/New_York", true));
    }

    #[test]
    fn refuses_unknown_zones() {
        for value in [
            "",
            " ",
            "XX",
            "Europe/Oslo",
            "999",
            "-1",
            "+110",
            "99999999999999999999",
            "NO,",
            "NO, includeOffset",
            "NO, includeTZOffset, includeTZOffset",
            ", includeTZOffset",
            "N O",
        ] {
            let error = TimeZoneChoice::parse(value).unwrap_err();
            assert_eq!(error, UnknownTimeZone(value.to_owned()));
            assert!(error.to_string().contains("US-NY"));
        }
    }

    #[test]
    fn the_table_parser_refuses_ambiguity() {
        assert!(parse_zone_table("code,id,iana\nNO,1,Europe/Oslo\nno,2,Europe/Oslo\n").is_err());
        assert!(
            parse_zone_table("code,id,iana\nNO,1,Europe/Oslo\nSE,1,Europe/Stockholm\n").is_err()
        );
        assert!(parse_zone_table("code,id,iana\n12,1,Europe/Oslo\n").is_err());
        assert!(parse_zone_table("code,id,iana\nNO,x,Europe/Oslo\n").is_err());
        assert!(parse_zone_table("code,id\n").is_err());
    }

    /// A table row's code or id written in a random way, with or without the suffix.
    fn accepted() -> impl Strategy<Value = (String, &'static Zone, bool)> {
        (
            0..ZONES.len(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            "[ ]{0,2}",
        )
            .prop_map(|(index, by_id, upper, include_offset, blank)| {
                let zone = &ZONES[index];
                let name = match (by_id, upper) {
                    (true, _) => zone.id.to_string(),
                    (false, true) => zone.code.to_uppercase(),
                    (false, false) => zone.code.to_lowercase(),
                };
                let suffix = if include_offset {
                    format!("{blank},{blank}includeTZOffset")
                } else {
                    String::new()
                };
                (
                    format!("{blank}{name}{suffix}{blank}"),
                    zone,
                    include_offset,
                )
            })
    }

    proptest! {
        #[test]
        fn table_entries_are_accepted((value, zone, include_offset) in accepted()) {
            let choice = TimeZoneChoice::parse(&value).unwrap();
            prop_assert_eq!(choice.iana(), zone.iana);
            prop_assert_eq!(choice.code(), zone.code);
            prop_assert_eq!(choice.include_offset(), include_offset);
        }

        #[test]
        fn other_values_are_refused(value in ".*") {
            let name = value.split(',').next().unwrap_or_default().trim().to_owned();
            let id = name.bytes().all(|b| b.is_ascii_digit()).then(|| name.parse::<u32>().ok()).flatten();
            let in_table = ZONES.iter().any(|zone| zone.code.eq_ignore_ascii_case(&name) || Some(zone.id) == id);
            if !in_table {
                prop_assert_eq!(TimeZoneChoice::parse(&value), Err(UnknownTimeZone(value.clone())));
            }
        }
    }
}
