//! The inbox as a JSON REST API, for integrations and scripts: the same actions as the pages
//! (see [`crate::actions`]), authenticated with an API token (`Authorization: Bearer wct_…`,
//! made with `webcare user token LOGIN`). No cookies are read here, so no CSRF token is needed.
//!
//! | method and path | does |
//! |---|---|
//! | `GET /api/v1/escalations` | the open and claimed escalations you may work (`?team=`) |
//! | `GET /api/v1/escalations/{id}` | one, with its conversation, notes and work |
//! | `GET /api/v1/escalations/{id}/explain` | each message's decision step by step (the inbox's explain panel) |
//! | `POST /api/v1/escalations/{id}/claim` | take it |
//! | `POST /api/v1/escalations/{id}/reply` `{"text"}` | answer the customer (through the outbox) |
//! | `POST /api/v1/escalations/{id}/note` `{"text"}` | an internal note |
//! | `POST /api/v1/escalations/{id}/reassign` `{"team"}` | to another team |
//! | `POST /api/v1/escalations/{id}/resolve` | done; the bot takes the conversation back |
//! | `POST /api/v1/escalations/{id}/handback` | back to the bot without a solution |
//!
//! Errors are `{"error": "…"}`: 401 no or an unknown token, 403 another team's escalation, 404,
//! 409 (claimed by someone else, resolved), 422 (empty text, unknown team), 503.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use webcare_adapters::http::ApiError;
use webcare_engine::store::Escalation;

use crate::Inbox;
use crate::actions::{self, ActionError, EscalationView};
use crate::auth::{Actor, token_digest};

pub fn routes(inbox: Inbox) -> Router {
    Router::new()
        .route("/api/v1/escalations", get(list))
        .route("/api/v1/escalations/{id}", get(one))
        .route("/api/v1/escalations/{id}/explain", get(explain))
        .route("/api/v1/escalations/{id}/{action}", post(act))
        .with_state(inbox)
}

fn error(e: ActionError) -> ApiError {
    ApiError::new(e.status(), e.to_string())
}

/// Whether the request carries a valid API token.
pub(crate) async fn token_user(inbox: &Inbox, headers: &HeaderMap) -> bool {
    actor(inbox, headers).await.is_ok()
}

/// The token's user, or a 401.
async fn actor(inbox: &Inbox, headers: &HeaderMap) -> Result<Actor, ApiError> {
    let unauthorized = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "an API token is required: `Authorization: Bearer <token>` (see `webcare user token`)",
        )
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(unauthorized)?;
    let digest = token_digest(token);
    let user = inbox
        .gateway()
        .store(move |s| s.user_by_token(digest))
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?
        .ok_or_else(unauthorized)?;
    Ok(Actor {
        user,
        csrf: None,
        lang: None,
        session: None,
    })
}

fn summary(e: &Escalation, now: chrono::DateTime<chrono::Utc>) -> Value {
    json!({
        "id": e.id,
        "channel": e.channel.as_str(),
        "conversation": e.conversation,
        "team": e.team,
        "priority": e.priority,
        "status": e.status.name(),
        "claimed_by": match &e.status {
            webcare_engine::store::EscalationStatus::Claimed { by } => Some(by.as_str()),
            _ => None,
        },
        "reason": e.reason,
        "created_at": e.created_at,
        "sla_deadline": e.sla_deadline,
        // The first-response SLA as the report counts it, and whether the customer waits.
        "sla": e.sla(now).name(),
        "waiting": crate::sla::waiting(e),
        "waiting_since": e.case.waiting_since,
        "first_response_at": e.case.first_response_at,
        "satisfaction": e.case.survey.as_ref().and_then(|s| s.score),
        "messages": e.messages.len(),
    })
}

fn detail(view: &EscalationView, now: chrono::DateTime<chrono::Utc>) -> Value {
    let mut out = summary(&view.escalation, now);
    out["linked"] = json!(view.linked.iter().map(|l| l.id).collect::<Vec<_>>());
    let opening = view.opening().map(|m| &m.decision);
    out["history"] = json!(view.escalation.history);
    out["work"] = json!(view.work);
    out["diagnostics"] = json!(opening.map(|d| &d.diagnostics));
    out["conversation_messages"] = json!(
        view.messages
            .iter()
            .map(|m| json!({
                "id": m.message.id,
                "author": m.message.author,
                "text": m.message.text,
                "received_at": m.message.received_at,
                "action": m.decision.action.name(),
            }))
            .collect::<Vec<_>>()
    );
    out["replies"] = json!(
        view.replies
            .iter()
            .map(|r| {
                let agent = view.work.replies.iter().find(|a| a.outbox == r.id);
                json!({
                    "id": r.id,
                    "text": r.text,
                    "by": agent.map_or("bot", |a| a.author.as_str()),
                    "status": match r.status {
                        webcare_engine::store::OutboxStatus::Pending => "pending",
                        webcare_engine::store::OutboxStatus::Sent { .. } => "sent",
                        webcare_engine::store::OutboxStatus::Dead => "dead",
                    },
                    "created_at": r.created_at,
                    // What the platform reported after it took the reply, if anything.
                    "receipt": view.receipt(r.id),
                })
            })
            .collect::<Vec<_>>()
    );
    out
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    team: Option<String>,
}

async fn list(
    State(inbox): State<Inbox>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let actor = actor(&inbox, &headers).await?;
    if let Some(team) = &query.team
        && !actor.user.may_work(team)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("team `{team}` is not one of yours"),
        ));
    }
    let mut all = actions::list(&inbox, &actor).await.map_err(error)?;
    if let Some(team) = &query.team {
        all.retain(|e| &e.team == team);
    }
    // Waiting on us first, as in the queue page.
    all.sort_by_key(crate::sla::queue_key);
    let now = inbox.gateway().now();
    let items: Vec<Value> = all.iter().map(|e| summary(e, now)).collect();
    Ok(Json(json!({ "escalations": items, "count": items.len() })).into_response())
}

async fn one(
    State(inbox): State<Inbox>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    let actor = actor(&inbox, &headers).await?;
    let view = actions::view(&inbox, &actor, id).await.map_err(error)?;
    Ok(Json(detail(&view, inbox.gateway().now())).into_response())
}

/// The explain panel as JSON: per message the normalised text, the stored diagnostics (topics
/// with their keywords, rules, reasons, version), both scripts' verdicts and any caveat.
async fn explain(
    State(inbox): State<Inbox>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    let actor = actor(&inbox, &headers).await?;
    let view = actions::view(&inbox, &actor, id).await.map_err(error)?;
    let explained = crate::explain::explain(&inbox, &view)
        .await
        .map_err(error)?;
    let messages: Vec<Value> = explained
        .iter()
        .map(|x| {
            json!({
                "id": x.message.message.id,
                "text": x.message.message.text,
                "normalized": x.trace.normalized,
                "action": x.message.decision.action.name(),
                "diagnostics": x.message.decision.diagnostics,
                "escalation_script": x.proposal(),
                "governance_script": x.governance(),
                "explained_with": x.rulebook,
                "notes": x.notes,
            })
        })
        .collect();
    Ok(Json(json!({ "id": id, "messages": messages })).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    text: Option<String>,
    team: Option<String>,
}

async fn act(
    State(inbox): State<Inbox>,
    headers: HeaderMap,
    Path((id, action)): Path<(u64, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let actor = actor(&inbox, &headers).await?;
    let body: Body = if body.is_empty() {
        Body::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("invalid body: {e}"),
            )
        })?
    };
    let need = |field: Option<String>, name: &str| {
        field.ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("`{name}` is required for `{action}`"),
            )
        })
    };
    let escalation = match action.as_str() {
        "claim" => actions::claim(&inbox, &actor, id).await,
        "reply" => {
            let text = need(body.text, "text")?;
            match actions::reply(&inbox, &actor, id, &text).await {
                Ok((escalation, entry)) => {
                    let mut out = summary(&escalation, inbox.gateway().now());
                    out["outbox"] = json!(entry.id);
                    return Ok(Json(out).into_response());
                }
                Err(e) => Err(e),
            }
        }
        "note" => {
            let text = need(body.text, "text")?;
            match actions::note(&inbox, &actor, id, &text).await {
                Ok(work) => return Ok(Json(json!({ "id": id, "work": work })).into_response()),
                Err(e) => Err(e),
            }
        }
        "reassign" => {
            let team = need(body.team, "team")?;
            actions::reassign(&inbox, &actor, id, &team).await
        }
        "resolve" => actions::resolve(&inbox, &actor, id).await,
        "handback" => actions::handback(&inbox, &actor, id).await,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown action `{other}`; expected claim, reply, note, reassign, resolve or handback"
                ),
            ));
        }
    }
    .map_err(error)?;
    Ok(Json(summary(&escalation, inbox.gateway().now())).into_response())
}
