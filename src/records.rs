//! Reading the files the import commands take (`resource import`, `user import`): CSV split
//! into records of fields, and the line each object of a JSON array opens on, so that a
//! problem is reported at the line a person finds it.

/// A file that cannot be split into records, and where.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {problem}")]
pub struct RecordError {
    /// Counted from 1.
    pub line: usize,
    pub problem: &'static str,
}

/// Splits CSV text into records of fields, each with the line it starts on.
///
/// Fields follow RFC 4180: quote a field to put `,`, `"` or a line break in it, doubling the
/// quotes inside. An unquoted field is trimmed, since blanks after commas are layout in
/// hand-written files; a quoted one is kept exactly as written between its quotes, so that
/// quoting is how a value keeps its blanks (a password may have some). Blank lines are
/// skipped.
pub fn read_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, RecordError> {
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut record_line = 1;
    let mut in_quotes = false;
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let finish = |field: &mut String, quoted: &mut bool| {
        let taken = std::mem::take(field);
        let value = if *quoted {
            taken
        } else {
            taken.trim().to_owned()
        };
        *quoted = false;
        value
    };
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                c => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            ',' => fields.push(finish(&mut field, &mut quoted)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                fields.push(finish(&mut field, &mut quoted));
                end_record(&mut records, &mut fields, record_line);
                line += 1;
                record_line = line;
            }
            // Blanks after a closing quote are layout, like those around an unquoted field.
            c if c.is_whitespace() && quoted => {}
            c if c.is_whitespace() => field.push(c),
            _ if quoted => {
                return Err(RecordError {
                    line,
                    problem: "text after a closing quote; quote the whole field",
                });
            }
            '"' if field.trim().is_empty() => {
                field.clear();
                in_quotes = true;
                quoted = true;
            }
            '"' => {
                return Err(RecordError {
                    line,
                    problem: "a quote inside an unquoted field; quote the whole field and double the quotes in it",
                });
            }
            c => field.push(c),
        }
    }
    if in_quotes {
        return Err(RecordError {
            line: record_line,
            problem: "a quoted field is not closed",
        });
    }
    fields.push(finish(&mut field, &mut quoted));
    end_record(&mut records, &mut fields, record_line);
    Ok(records)
}

/// Keeps a finished record unless it is a blank line.
fn end_record(records: &mut Vec<(usize, Vec<String>)>, fields: &mut Vec<String>, line: usize) {
    let fields = std::mem::take(fields);
    if !(fields.len() == 1 && fields[0].is_empty()) {
        records.push((line, fields));
    }
}

/// The line each object in a top-level JSON array opens on, for text already known to be JSON:
/// serde_json keeps no positions, and a problem is best reported where its record begins.
pub fn json_object_lines(json: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let mut line = 1;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => {
                if c == '{' && depth == 1 {
                    lines.push(line);
                }
                depth += 1;
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_keep_their_blanks_and_unquoted_ones_are_trimmed() {
        let records = read_csv("a , \" b \" ,\"c,\"\"d\"\"\"\n\n x,\"two\nlines\"\n").unwrap();
        assert_eq!(
            records,
            [
                (1, vec!["a".into(), " b ".into(), "c,\"d\"".into()]),
                (3, vec!["x".into(), "two\nlines".into()]),
            ]
        );
        assert_eq!(
            read_csv("\"\",x").unwrap(),
            [(1, vec![String::new(), "x".into()])]
        );
    }

    #[test]
    fn json_objects_are_found_at_their_lines() {
        let json = "[\n {\"a\": \"{[\\\"\"},\n\n {\"b\": {\"c\": 1}}\n]";
        assert_eq!(json_object_lines(json), [2, 4]);
    }
}
