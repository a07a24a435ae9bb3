/// The body formats the operations consume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Xml,
    Form,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaTypeError {
    #[error(
        "The content type {0:?} is not supported; send application/json, text/json, \
         application/xml, text/xml, application/x-www-form-urlencoded, \
         application/json-patch+json or application/merge-patch+json"
    )]
    UnsupportedType(String),
    #[error("The character set {0:?} is not supported; send UTF-8")]
    UnsupportedCharset(String),
}

impl BodyFormat {
    /// Reads a `Content-Type` header. A missing header is read as JSON.
    pub fn from_content_type(header: Option<&[u8]>) -> Result<Self, MediaTypeError> {
        let Some(header) = header else {
            return Ok(Self::Json);
        };
        if header.eq_ignore_ascii_case(b"application/json") {
            // The usual header, with nothing to parse.
            return Ok(Self::Json);
        }
        let header = String::from_utf8_lossy(header);
        let mut parts = header.split(';');
        let essence = parts.next().unwrap_or_default().trim();
        let format = match_ignore_case(
            essence,
            &[
                ("application/json", Self::Json),
                ("text/json", Self::Json),
                ("application/json-patch+json", Self::Json),
                ("application/merge-patch+json", Self::Json),
                ("application/xml", Self::Xml),
                ("text/xml", Self::Xml),
                ("application/x-www-form-urlencoded", Self::Form),
            ],
        )
        .ok_or_else(|| MediaTypeError::UnsupportedType(essence.to_owned()))?;
        for parameter in parts {
            let Some((name, value)) = parameter.split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("charset") {
                let charset = value.trim().trim_matches('"');
                if !(charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("utf8"))
                {
                    return Err(MediaTypeError::UnsupportedCharset(charset.to_owned()));
                }
            }
        }
        Ok(format)
    }
}

fn match_ignore_case<T: Copy>(value: &str, table: &[(&str, T)]) -> Option<T> {
    table
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(value))
        .map(|&(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_consumed_type_with_and_without_charset() {
        let cases = [
            ("application/json", BodyFormat::Json),
            ("text/json", BodyFormat::Json),
            ("application/json-patch+json", BodyFormat::Json),
            ("application/merge-patch+json", BodyFormat::Json),
            ("application/xml", BodyFormat::Xml),
            ("text/xml", BodyFormat::Xml),
            ("application/x-www-form-urlencoded", BodyFormat::Form),
        ];
        for (name, format) in cases {
            for header in [
                name.to_owned(),
                name.to_uppercase(),
                format!("{name}; charset=utf-8"),
                format!("{name};charset=\"UTF-8\""),
            ] {
                assert_eq!(
                    BodyFormat::from_content_type(Some(header.as_bytes())),
                    Ok(format)
                );
            }
        }
        assert_eq!(BodyFormat::from_content_type(None), Ok(BodyFormat::Json));
    }

    #[test]
    fn refuses_other_types_and_charsets() {
        assert!(matches!(
            BodyFormat::from_content_type(Some(b"text/plain")),
            Err(MediaTypeError::UnsupportedType(_))
        ));
        assert!(matches!(
            BodyFormat::from_content_type(Some(b"application/json; charset=utf-16")),
            Err(MediaTypeError::UnsupportedCharset(_))
        ));
        assert!(matches!(
            BodyFormat::from_content_type(Some(b"text/xml; charset=iso-8859-1")),
            Err(MediaTypeError::UnsupportedCharset(_))
        ));
    }
}
