//! `Accept` negotiation: which of the produced media types a response is written in.

use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, HeaderValue};

/// The media types the operations produce, in the server's order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseFormat {
    ApplicationJson,
    TextJson,
    JsonPatch,
    MergePatch,
    ApplicationXml,
    TextXml,
}

impl ResponseFormat {
    const ALL: [ResponseFormat; 6] = [
        Self::ApplicationJson,
        Self::TextJson,
        Self::JsonPatch,
        Self::MergePatch,
        Self::ApplicationXml,
        Self::TextXml,
    ];

    pub const fn media_type(self) -> &'static str {
        match self {
            Self::ApplicationJson => "application/json",
            Self::TextJson => "text/json",
            Self::JsonPatch => "application/json-patch+json",
            Self::MergePatch => "application/merge-patch+json",
            Self::ApplicationXml => "application/xml",
            Self::TextXml => "text/xml",
        }
    }

    /// The `Content-Type` of a response in this format.
    pub const fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::ApplicationJson => "application/json; charset=utf-8",
            Self::TextJson => "text/json; charset=utf-8",
            Self::JsonPatch => "application/json-patch+json; charset=utf-8",
            Self::MergePatch => "application/merge-patch+json; charset=utf-8",
            Self::ApplicationXml => "application/xml; charset=utf-8",
            Self::TextXml => "text/xml; charset=utf-8",
        })
    }

    pub const fn is_xml(self) -> bool {
        matches!(self, Self::ApplicationXml | Self::TextXml)
    }

    /// Picks the format for a request's `Accept` headers: the produced type with the highest
    /// quality, where a type's quality comes from the most specific range that matches it
    /// (`text/xml` over `text/*` over `*/*`). Ties go to the range listed first, then to the
    /// server's order. No header, or nothing acceptable, gives JSON.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(ACCEPT).iter();
        let (first, second) = (values.next(), values.next());
        let Some(first) = first else {
            return Self::ApplicationJson;
        };
        if second.is_none() {
            // The usual header: exactly one of the produced types, with nothing to parse.
            if let Some(format) = Self::ALL.into_iter().find(|format| {
                first
                    .as_bytes()
                    .eq_ignore_ascii_case(format.media_type().as_bytes())
            }) {
                return format;
            }
            // The next most common, a single range: the first produced type it matches, with
            // no list to collect and rank (this runs on every request).
            if let Ok(value) = first.to_str()
                && !value.contains(',')
            {
                return match MediaRange::parse(value) {
                    Some(range) if range.quality > 0 => Self::ALL
                        .into_iter()
                        .find(|format| range.matches(format.media_type()))
                        .unwrap_or(Self::ApplicationJson),
                    _ => Self::ApplicationJson,
                };
            }
        }
        let mut ranges = Vec::new();
        for value in headers.get_all(ACCEPT) {
            if let Ok(value) = value.to_str() {
                ranges.extend(value.split(',').filter_map(MediaRange::parse));
            }
        }
        if ranges.is_empty() {
            return Self::ApplicationJson;
        }
        Self::ALL
            .into_iter()
            .filter_map(|format| {
                let (position, range) = ranges
                    .iter()
                    .enumerate()
                    .filter(|(_, range)| range.matches(format.media_type()))
                    .max_by_key(|(position, range)| {
                        (range.specificity(), std::cmp::Reverse(*position))
                    })?;
                (range.quality > 0).then_some((range.quality, std::cmp::Reverse(position), format))
            })
            .max_by_key(|&(quality, position, format)| {
                (quality, position, std::cmp::Reverse(format as u8))
            })
            .map_or(Self::ApplicationJson, |(_, _, format)| format)
    }
}

/// One entry of an `Accept` header.
struct MediaRange<'a> {
    kind: &'a str,
    subtype: &'a str,
    /// The quality value in thousandths, so it orders exactly.
    quality: u16,
}

impl<'a> MediaRange<'a> {
    fn parse(entry: &'a str) -> Option<Self> {
        let (range, quality) = crate::weighted::parse_entry(entry)?;
        let (kind, subtype) = range.split_once('/')?;
        Some(Self {
            kind: kind.trim(),
            subtype: subtype.trim(),
            quality,
        })
    }

    fn matches(&self, media_type: &str) -> bool {
        let (kind, subtype) = media_type.split_once('/').unwrap_or((media_type, ""));
        (self.kind == "*" || self.kind.eq_ignore_ascii_case(kind))
            && (self.subtype == "*" || self.subtype.eq_ignore_ascii_case(subtype))
    }

    fn specificity(&self) -> u8 {
        u8::from(self.kind != "*") + u8::from(self.subtype != "*")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(accept: &[&str]) -> ResponseFormat {
        let mut headers = HeaderMap::new();
        for value in accept {
            headers.append(ACCEPT, HeaderValue::from_str(value).unwrap());
        }
        ResponseFormat::from_headers(&headers)
    }

    #[test]
    fn defaults_to_json() {
        assert_eq!(pick(&[]), ResponseFormat::ApplicationJson);
        assert_eq!(pick(&["*/*"]), ResponseFormat::ApplicationJson);
        assert_eq!(pick(&["text/html"]), ResponseFormat::ApplicationJson);
        assert_eq!(
            pick(&["application/xml;q=0"]),
            ResponseFormat::ApplicationJson
        );
    }

    #[test]
    fn names_each_type() {
        for format in ResponseFormat::ALL {
            assert_eq!(pick(&[format.media_type()]), format);
            assert_eq!(
                pick(&[&format!(
                    "{}; charset=utf-8",
                    format.media_type().to_uppercase()
                )]),
                format
            );
        }
    }

    #[test]
    fn quality_values_count() {
        assert_eq!(
            pick(&["application/json;q=0.5, text/xml"]),
            ResponseFormat::TextXml
        );
        assert_eq!(
            pick(&["text/xml;q=0.9, application/json;q=0.95"]),
            ResponseFormat::ApplicationJson
        );
        assert_eq!(
            pick(&["application/xml;q=0.1, */*;q=0.01"]),
            ResponseFormat::ApplicationXml
        );
        assert_eq!(pick(&["text/*"]), ResponseFormat::TextJson);
        assert_eq!(pick(&["text/*, text/json;q=0"]), ResponseFormat::TextXml);
        assert_eq!(
            pick(&["text/html", "application/xml"]),
            ResponseFormat::ApplicationXml
        );
    }

    #[test]
    fn ties_go_to_the_first_listed() {
        assert_eq!(
            pick(&["text/xml, application/json"]),
            ResponseFormat::TextXml
        );
        assert_eq!(
            pick(&["application/json, text/xml"]),
            ResponseFormat::ApplicationJson
        );
    }

    #[test]
    fn malformed_quality_drops_the_range() {
        assert_eq!(
            pick(&["application/xml;q=2"]),
            ResponseFormat::ApplicationJson
        );
        assert_eq!(
            pick(&["application/xml;q=abc, text/xml;q=0.2"]),
            ResponseFormat::TextXml
        );
    }
}
