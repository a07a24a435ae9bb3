//! The query of the presence API's list and batch reads: its parameters, the filters, and a
//! batch's ids.

use std::borrow::Cow;

use super::MAX_IDS;
use super::wire::{PresenceBody, invalid};
use crate::domain::{AssociateId, UserStatus};
use crate::http::error::ApiError;

/// The query's parameters, each once at most.
pub(super) struct Query<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Query<'a> {
    pub fn of(query: Option<&'a str>) -> Result<Self, ApiError> {
        let query = query.unwrap_or("");
        // Nothing escaped, the usual case: the parameters are the query's own slices, neither
        // decoded byte by byte nor copied (a batch's ids are thousands of bytes).
        let pairs: Vec<_> = if memchr::memchr2(b'%', b'+', query.as_bytes()).is_none() {
            query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (Cow::Borrowed(name), Cow::Borrowed(value))
                })
                .collect()
        } else {
            form_urlencoded::parse(query.as_bytes()).collect()
        };
        for (i, (name, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(earlier, _)| earlier == name) {
                return Err(ApiError::InvalidRequest(format!(
                    "The query parameter {name} is given more than once"
                )));
            }
        }
        Ok(Self { pairs })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    /// Refuses parameters this address does not know, so that a misspelt filter is not
    /// silently ignored.
    pub fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self
            .pairs
            .iter()
            .find(|(n, _)| !known.contains(&n.as_ref()))
        {
            Some((name, _)) => Err(ApiError::InvalidRequest(format!(
                "Unknown query parameter {name}; this address takes {}",
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }
}

/// Which presences a list or batch answers.
pub(super) struct Filter {
    status: Option<UserStatus>,
    available: Option<bool>,
}

impl Filter {
    pub fn of(query: &Query<'_>) -> Result<Self, ApiError> {
        let status = query
            .get("status")
            .map(|s| {
                s.parse()
                    .map_err(|e: crate::domain::UnknownStatus| invalid("status", e.to_string()))
            })
            .transpose()?;
        let available = match query.get("available") {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(invalid(
                    "available",
                    format!("available must be true or false, not '{other}'"),
                ));
            }
        };
        Ok(Self { status, available })
    }

    pub fn passes(&self, body: &PresenceBody<'_>) -> bool {
        self.admits(body.status, body.available)
    }

    /// Whether a presence of this status (by name) and availability passes.
    pub fn admits(&self, status: &str, available: bool) -> bool {
        self.status.is_none_or(|s| s.name() == status)
            && self.available.is_none_or(|a| a == available)
    }
}

/// The associates a batch names, in the order named, each once.
pub(super) fn batch_ids(ids: &str) -> Result<Vec<AssociateId>, ApiError> {
    let mut wanted = Vec::with_capacity(MAX_IDS.min(ids.len() / 2 + 1));
    // Split as bytes, a comma being ASCII: cheaper than `str::split`'s character search, for
    // the thousand ids of a batch.
    for part in ids.as_bytes().split(|&b| b == b',') {
        if wanted.len() == MAX_IDS {
            return Err(invalid(
                "ids",
                format!("ids names more than {MAX_IDS} associates; ask in batches"),
            ));
        }
        match positive_id(part) {
            Some(id) => wanted.push(AssociateId::new(id)),
            None => {
                return Err(invalid(
                    "ids",
                    format!(
                        "'{}' in ids is not an associate id (a positive 32-bit integer)",
                        String::from_utf8_lossy(part)
                    ),
                ));
            }
        }
    }
    // Asked twice, answered once, in the order first asked.
    let mut asked: foldhash::HashSet<AssociateId> =
        foldhash::HashSet::with_capacity_and_hasher(wanted.len(), Default::default());
    wanted.retain(|id| asked.insert(*id));
    Ok(wanted)
}

/// A positive 32-bit integer in decimal, blanks around it allowed, as `str::parse` reads it
/// (a property test holds the two together). The common case, digits alone, is read by hand,
/// cheaper than `str::parse` for the thousand ids of a batch.
fn positive_id(part: &[u8]) -> Option<i32> {
    if (1..=10).contains(&part.len()) {
        let (value, digits_only) = part.iter().fold((0_u64, true), |(value, digits_only), b| {
            let digit = b.wrapping_sub(b'0');
            (value * 10 + u64::from(digit), digits_only && digit < 10)
        });
        if digits_only {
            return i32::try_from(value).ok().filter(|id| *id > 0);
        }
    }
    std::str::from_utf8(part)
        .ok()?
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str) -> Result<Vec<i32>, String> {
        batch_ids(text)
            .map(|ids| ids.into_iter().map(AssociateId::get).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_batch_s_ids_are_read_in_order_each_once() {
        assert_eq!(ids("5,3,5, 9 ,3"), Ok(vec![5, 3, 9]));
        assert_eq!(ids("2147483647"), Ok(vec![i32::MAX]));
        for bad in [
            "",
            "1,,2",
            "0",
            "-1",
            "2147483648",
            "12345678901",
            "1x",
            "١",
        ] {
            assert!(ids(bad).is_err(), "{bad:?} was taken");
        }
        let most: Vec<String> = (1..=MAX_IDS).map(|id| id.to_string()).collect();
        assert_eq!(ids(&most.join(",")).map(|ids| ids.len()), Ok(MAX_IDS));
        assert!(ids(&format!("{},1", most.join(","))).is_err());
    }

    proptest::proptest! {
        #[test]
        fn every_id_is_read_as_str_parse_reads_it(
            parts in proptest::collection::vec("[0-9 +x-]{0,12}|[0-9]{1,11}", 1..8)
        ) {
            let expected: Option<Vec<i32>> = parts
                .iter()
                .map(|part| part.trim().parse::<i32>().ok().filter(|id| *id > 0))
                .collect::<Option<Vec<_>>>()
                .map(|all| {
                    let mut seen = std::collections::HashSet::new();
                    all.into_iter().filter(|id| seen.insert(*id)).collect()
                });
            proptest::prop_assert_eq!(ids(&parts.join(",")).ok(), expected);
        }
    }

    #[test]
    fn parameters_are_decoded_only_when_escaped() {
        let plain = Query::of(Some("ids=1,2&status=StatusNormal&&flag")).unwrap();
        assert_eq!(plain.get("ids"), Some("1,2"));
        assert_eq!(plain.get("status"), Some("StatusNormal"));
        assert_eq!(plain.get("flag"), Some(""));
        assert!(matches!(plain.pairs[0].1, Cow::Borrowed(_)));
        let escaped = Query::of(Some("ids=1%2C2+&st%61tus=x")).unwrap();
        assert_eq!(escaped.get("ids"), Some("1,2 "));
        assert_eq!(escaped.get("status"), Some("x"));
        assert!(Query::of(Some("ids=1&ids=2")).is_err());
        assert!(Query::of(Some("a=1&%61=2")).is_err());
        assert!(Query::of(None).unwrap().pairs.is_empty());
    }
}
