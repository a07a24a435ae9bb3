//! Weighted lists of HTTP content negotiation (`Accept`, `Accept-Language`): entries with an
//! optional quality value, `text/xml;q=0.8` or `sv-SE;q=0.5`.

/// One entry of a weighted list: its value (before any parameter, trimmed) and its quality in
/// thousandths, so that qualities order exactly. A malformed quality drops the entry, as if it
/// were not listed; parameters other than `q` are ignored.
pub fn parse_entry(entry: &str) -> Option<(&str, u16)> {
    let mut parts = entry.split(';');
    let value = parts.next()?.trim();
    let mut quality = 1000;
    for parameter in parts {
        if let Some((name, q)) = parameter.split_once('=')
            && name.trim().eq_ignore_ascii_case("q")
        {
            quality = parse_quality(q.trim())?;
        }
    }
    Some((value, quality))
}

/// Reads a quality value, `0` to `1` with up to three decimals.
fn parse_quality(value: &str) -> Option<u16> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_qualities() {
        assert_eq!(parse_entry(" text/xml "), Some(("text/xml", 1000)));
        assert_eq!(parse_entry("sv-SE;q=0.5"), Some(("sv-SE", 500)));
        assert_eq!(parse_entry("a; charset=utf-8 ;Q=0.123"), Some(("a", 123)));
        assert_eq!(parse_entry("a;q=1.000"), Some(("a", 1000)));
        assert_eq!(parse_entry("a;q=0"), Some(("a", 0)));
        for bad in [
            "a;q=1.5",
            "a;q=2",
            "a;q=0.1234",
            "a;q=abc",
            "a;q=",
            "a;q=-0",
        ] {
            assert_eq!(parse_entry(bad), None, "{bad}");
        }
    }
}
