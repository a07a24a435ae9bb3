//! The presence API's errors: RFC 9457 problem details (`application/problem+json`), written
//! for every error of a request under `/presence/`, whether its handler, the router or the
//! service in front of it met the error.
//!
//! Every problem's `type` is `about:blank`, with the status's reason phrase as its `title`, as
//! RFC 9457 asks of problems that mean no more than their status; `detail` says what happened,
//! and a 400 names the offending member in `errors`.

use bytes::Bytes;
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::error::ApiError;

/// The media type of every problem.
pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Serialize, ToSchema)]
pub(super) struct Problem<'a> {
    /// Always `about:blank`.
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    detail: &'a str,
    /// Only for a 400: the offending member.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    #[schema(required = false)]
    errors: &'a [MemberError<'a>],
}

#[derive(Serialize, ToSchema)]
pub(super) struct MemberError<'a> {
    /// The body member or query parameter, by its name on the wire.
    member: &'a str,
    detail: &'a str,
}

/// The problem body for an error.
pub fn body(error: &ApiError) -> Bytes {
    let status = error.status();
    let detail = error.to_string();
    let member = match error {
        ApiError::InvalidMember { member, detail } => Some(MemberError { member, detail }),
        ApiError::InvalidRequest(detail) => Some(MemberError {
            member: "body",
            detail,
        }),
        _ => None,
    };
    let problem = Problem {
        kind: "about:blank",
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail: &detail,
        errors: member.as_slice(),
    };
    Bytes::from(serde_json::to_vec(&problem).expect("a problem serializes"))
}

/// Whether `path` (as the client sent it) is under the presence API of `base_path`.
pub fn is_presence_path(base_path: &str, path: &str) -> bool {
    path.get(..base_path.len())
        .is_some_and(|base| base.eq_ignore_ascii_case(base_path))
        && path[base_path.len()..]
            .get(..super::PREFIX.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(super::PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_400_names_its_member_and_others_only_say_what_happened() {
        let bad = ApiError::InvalidMember {
            member: "until",
            detail: "until must lie ahead".into(),
        };
        let json: serde_json::Value = serde_json::from_slice(&body(&bad)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "about:blank", "title": "Bad Request", "status": 400,
                "detail": "until must lie ahead",
                "errors": [{"member": "until", "detail": "until must lie ahead"}]})
        );
        let json: serde_json::Value = serde_json::from_slice(&body(&ApiError::NotFound)).unwrap();
        assert_eq!(json["status"], 404);
        assert_eq!(json["title"], "Not Found");
        assert!(json.get("errors").is_none());
    }

    #[test]
    fn presence_paths_match_in_any_case_under_the_base_path() {
        assert!(is_presence_path("", "/presence/v1/users"));
        assert!(is_presence_path("/api", "/API/Presence/v1/users/1"));
        assert!(!is_presence_path("/api", "/presence/v1/users"));
        assert!(!is_presence_path(
            "",
            "/api/v1/Agents/User/GetUserPresenceStatus"
        ));
        assert!(!is_presence_path("", "/presenc"));
    }
}
