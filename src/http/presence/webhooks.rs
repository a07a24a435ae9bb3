//! Webhooks on the wire, for administrators only: `GET` and `POST /presence/v1/webhooks`,
//! `DELETE /presence/v1/webhooks/{id}` and `GET /presence/v1/webhooks/{id}/deliveries`. What
//! `presence webhook` does from the command line; delivery is `crate::webhooks`'s.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::wire::{PageBody, Timestamp, invalid, required_string};
use super::{as_caller, json, json_body, now, segment};
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::{Delivery, MAX_WEBHOOKS, Webhook, WebhookAdded};
use crate::webhooks::{self, BadWebhook};

/// A webhook, its secret only in the answer that adds it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Webhook)]
pub struct WebhookBody {
    pub id: i64,
    pub url: String,
    /// The associates whose changes it gets; null: everyone's.
    #[schema(required = true)]
    pub associates: Option<Vec<i32>>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Every change up to this revision was delivered, filtered out or given up.
    pub delivered_through: i64,
    /// Failed attempts at the change after it.
    pub attempts: i32,
    /// When the first of them was; null while none failed.
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub failing_since: Option<Timestamp>,
    /// Signs every delivery (Standard Webhooks, `whsec_...`); shown only when it is added.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub secret: Option<String>,
}

impl WebhookBody {
    fn new(webhook: Webhook, secret: Option<String>) -> Self {
        Self {
            id: webhook.id,
            url: webhook.url,
            associates: webhook
                .associates
                .map(|ids| ids.into_iter().map(|id| id.get()).collect()),
            created_at: Timestamp(webhook.created_at),
            delivered_through: webhook.delivered_through,
            attempts: webhook.attempts,
            failing_since: webhook.failing_since.map(Timestamp),
            secret,
        }
    }
}

/// One attempt to deliver one change.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = WebhookDelivery)]
pub struct DeliveryBody {
    /// The change's revision.
    pub revision: i64,
    /// 1 for the change's first attempt.
    pub attempt: i32,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// `delivered` (a 2xx), `failed` (tried again later), `gaveUp` (failing for a day:
    /// skipped) or `expired` (no longer in the history: skipped).
    #[schema(value_type = String, pattern = "^(delivered|failed|gaveUp|expired)$")]
    pub outcome: &'static str,
    /// The receiver's status, when it answered.
    #[schema(required = true)]
    pub status: Option<u16>,
    /// What went wrong, when something did.
    #[schema(required = true)]
    pub error: Option<String>,
}

impl DeliveryBody {
    fn new(delivery: Delivery) -> Self {
        Self {
            revision: delivery.revision,
            attempt: delivery.attempt,
            at: Timestamp(delivery.at),
            outcome: delivery.outcome.name(),
            status: delivery.status,
            error: delivery.error,
        }
    }
}

/// `POST /presence/v1/webhooks`'s body. Read member by member; this type only describes it.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase", example = json!({
    "url": "https://hooks.example.com/presence", "associates": [963, 1]
}))]
#[expect(dead_code, reason = "describes a body that is read member by member")]
pub struct WebhookRequest {
    /// http or https, with a host and no credentials.
    #[schema(max_length = 2048)]
    url: String,
    /// Only these associates' changes (1 to 1000 ids); left out or null, everyone's.
    #[schema(required = false)]
    associates: Option<Vec<i32>>,
}

fn ensure_admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "Only an administrator may manage webhooks".into(),
        ))
    }
}

fn webhook_in_path(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| invalid("webhookId", format!("'{text}' is not a webhook id")))
}

fn no_webhook(id: i64) -> ApiError {
    tracing::trace!(webhook = id, "no such webhook");
    ApiError::NotFound
}

/// `GET /presence/v1/webhooks`: every webhook (at most 100, so one page).
#[utoipa::path(get, path = "/presence/v1/webhooks", tag = "webhooks",
    responses((status = 200, description = "Every webhook, by id; next is null",
        body = PageBody<WebhookBody>), super::openapi::Refusals))]
pub(super) async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (state, headers) = (&state, &headers);
    as_caller(state, headers, |caller| async move {
        ensure_admin(&caller)?;
        let webhooks = state.store().list_webhooks().await?;
        let body = PageBody {
            items: webhooks
                .into_iter()
                .map(|webhook| WebhookBody::new(webhook, None))
                .collect(),
            next: None,
        };
        Ok(json(StatusCode::OK, &body))
    })
    .await
}

/// The filter of a request's body: missing or null for everyone.
fn associates(members: &Map<String, Value>) -> Result<Option<Vec<i64>>, ApiError> {
    let not_ids = || {
        invalid(
            "associates",
            "associates must be an array of associate ids, or null".into(),
        )
    };
    match members.get("associates") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|id| id.as_i64().ok_or_else(not_ids))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(not_ids()),
    }
}

/// `POST /presence/v1/webhooks`: adds one, which gets the changes made from now on.
#[utoipa::path(post, path = "/presence/v1/webhooks", tag = "webhooks", operation_id = "addWebhook",
    request_body = WebhookRequest,
    responses(
        (status = 201, description = "Added; `secret` is shown this once", body = WebhookBody,
            headers(("Location" = String, description = "The webhook's address"))),
        super::openapi::TooManyWebhooks, super::openapi::NotJson, super::openapi::Refusals))]
pub(super) async fn add(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (state, headers, uri) = (&state, &headers, &uri);
    as_caller(state, headers, |caller| async move {
        ensure_admin(&caller)?;
        let members = json_body(headers, &body)?;
        let url = required_string(&members, "url")?;
        let associates = associates(&members)?;
        let (webhook, secret) =
            webhooks::new_webhook(url, associates, now(state)).map_err(|e| match e {
                BadWebhook::Url(_) => invalid("url", e.to_string()),
                _ => invalid("associates", e.to_string()),
            })?;
        match state.store().add_webhook(webhook).await? {
            WebhookAdded::Added(added) => {
                let id = added.id;
                let mut response =
                    json(StatusCode::CREATED, &WebhookBody::new(added, Some(secret)));
                let location = format!("{}/{id}", uri.path().trim_end_matches('/'));
                if let Ok(location) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(LOCATION, location);
                }
                Ok(response)
            }
            WebhookAdded::TooMany => Err(ApiError::Conflict(format!(
                "There are {MAX_WEBHOOKS} webhooks already; remove one first"
            ))),
        }
    })
    .await
}

/// `DELETE /presence/v1/webhooks/{id}`.
#[utoipa::path(delete, path = "/presence/v1/webhooks/{webhookId}", tag = "webhooks",
    params(("webhookId" = i64, Path, minimum = 1)),
    responses((status = 204, description = "Removed; a delivery in flight may still arrive"),
        super::openapi::NoWebhook, super::openapi::Refusals))]
pub(super) async fn remove(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (state, headers, uri) = (&state, &headers, &uri);
    as_caller(state, headers, |caller| async move {
        let id = webhook_in_path(segment(uri, 0))?;
        ensure_admin(&caller)?;
        if state.store().remove_webhook(id).await? {
            Ok(StatusCode::NO_CONTENT.into_response())
        } else {
            Err(no_webhook(id))
        }
    })
    .await
}

/// `GET /presence/v1/webhooks/{id}/deliveries`: the latest attempts, newest first.
#[utoipa::path(get, path = "/presence/v1/webhooks/{webhookId}/deliveries", tag = "webhooks",
    params(("webhookId" = i64, Path, minimum = 1)),
    responses((status = 200, description = "The latest 100 attempts, newest first; next is null",
        body = PageBody<DeliveryBody>), super::openapi::NoWebhook, super::openapi::Refusals))]
pub(super) async fn deliveries(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (state, headers, uri) = (&state, &headers, &uri);
    as_caller(state, headers, |caller| async move {
        let id = webhook_in_path(segment(uri, 1))?;
        ensure_admin(&caller)?;
        let deliveries = state
            .store()
            .webhook_deliveries(id)
            .await?
            .ok_or_else(|| no_webhook(id))?;
        let body = PageBody {
            items: deliveries.into_iter().map(DeliveryBody::new).collect(),
            next: None,
        };
        Ok(json(StatusCode::OK, &body))
    })
    .await
}
