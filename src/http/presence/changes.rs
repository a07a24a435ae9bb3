//! The history on the wire: `GET /presence/v1/changes`, a page of changes after a revision,
//! and the JSON of one change, which the feed (`feed.rs`) sends as well.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::json;

use super::query::Query;
use super::wire::invalid;
use super::{as_caller, json_bytes, limit};
use crate::domain::{AssociateId, Change, RecordedStatus};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::HistoryQuery;
use crate::timestamp;

/// One change as JSON: `{"revision":4712,"at":"2026-12-02T14:00:00.004Z","associateId":963,
/// "kind":"status","from":{...},"to":{...},"absence":null,"by":{"kind":"timer"},"via":null}`.
pub fn change_json(change: &Change) -> String {
    let status = |recorded: &Option<RecordedStatus>| match recorded {
        None => "null".to_owned(),
        Some(r) => format!(
            r#"{{"status":"{}","message":{},"until":{}}}"#,
            r.presence.status.name(),
            json!(r.presence.message.as_deref()),
            json!(r.until.map(timestamp::format)),
        ),
    };
    // `absence`, `by` and `via` are JSON the store wrote itself.
    format!(
        r#"{{"revision":{},"at":"{}","associateId":{},"kind":"{}","from":{},"to":{},"absence":{},"by":{},"via":{}}}"#,
        change.revision,
        timestamp::format(change.at),
        change.associate_id.get(),
        change.kind.name(),
        status(&change.from),
        status(&change.to),
        change.absence.as_deref().unwrap_or("null"),
        change.by.as_deref().unwrap_or("null"),
        change.via.as_deref().unwrap_or("null"),
    )
}

/// A revision in the query (`after`, `Last-Event-ID`).
pub(super) fn revision(text: &str, member: &'static str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|&r| r >= 0)
        .ok_or_else(|| invalid(member, format!("'{text}' is not a revision")))
}

/// The `associate` filter.
pub(super) fn associate(text: &str) -> Result<AssociateId, ApiError> {
    text.parse::<i32>()
        .ok()
        .filter(|&id| id > 0)
        .map(AssociateId::new)
        .ok_or_else(|| invalid("associate", format!("'{text}' is not an associate id")))
}

/// The answer to a cursor older than what the history keeps.
pub(super) fn expired(after: i64) -> ApiError {
    ApiError::Gone(format!(
        "Changes after revision {after} are no longer kept; start again without a cursor"
    ))
}

/// `GET /presence/v1/changes?after=REV&associate=ID&limit=N`: the changes after `after`,
/// oldest first, and `next`, the revision to go on after (past changes the filter left out).
#[utoipa::path(get, path = "/presence/v1/changes", tag = "presence",
    params(("after" = Option<i64>, Query, minimum = 0, description = "Changes numbered after this revision; none: from the oldest kept"),
        ("associate" = Option<i32>, Query, minimum = 1, description = "One associate's changes only"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "At most this many (1 to 1000; 100)")),
    responses((status = 200, description = "A page of changes, oldest first, and `next`"),
        (status = 410, description = "The cursor is older than the history keeps"),
        super::openapi::Refusals))]
pub(super) async fn changes(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (state, headers) = (&state, &headers);
    as_caller(state, headers, |_caller| async move {
        let query = Query::of(uri.query())?;
        query.only(&["after", "associate", "limit"])?;
        let after = query
            .get("after")
            .map(|text| revision(text, "after"))
            .transpose()?;
        let page = state
            .store()
            .history(HistoryQuery {
                after,
                associate: query.get("associate").map(associate).transpose()?,
                since: None,
                limit: limit(&query)?,
            })
            .await?;
        if page.expired {
            return Err(expired(after.unwrap_or(0)));
        }
        let mut body = String::from(r#"{"items":["#);
        for (i, change) in page.changes.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&change_json(change));
        }
        body.push_str(&format!(r#"],"next":{}}}"#, page.reached));
        Ok(json_bytes(StatusCode::OK, body.into_bytes()))
    })
    .await
}
