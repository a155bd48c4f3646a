//! The JSON HTTP API: the room directory, history pages, posting from
//! outside, health and metrics.

use crate::config::Secret;
use crate::error::HttpError;
use crate::metrics;
use crate::registry::{ModeratorDelete, Post, Probe};
use crate::state::AppState;
use crate::store::PageQuery;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use charla_protocol::api::{Health, MessagePage, PostMessage, Posted, RoomList};
use charla_protocol::{DisplayName, ErrorCode, MessageText, RoomName};
use serde::Deserialize;
use std::time::Duration;

/// How long `/healthz` waits for the room registry's answer.
pub(crate) const PROBE_DEADLINE: Duration = Duration::from_secs(2);

/// Messages per history page when the request names no `limit`.
pub(crate) const DEFAULT_PAGE_LIMIT: usize = 50;
/// Most messages per history page.
pub(crate) const MAX_PAGE_LIMIT: usize = 200;

/// Query of `GET /api/rooms/{room}/messages`.
#[derive(Debug, Deserialize)]
pub(crate) struct HistoryQuery {
    after: Option<u64>,
    before: Option<u64>,
    limit: Option<usize>,
}

/// Mounts the API routes.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::QueryConfig::default().error_handler(|error, _req| {
            HttpError::BadRequest(format!("bad query: {error}")).into()
        }),
    )
    .route("/api/rooms", web::get().to(list_rooms))
    .route("/api/rooms/{room}/messages", web::get().to(history))
    .route("/api/rooms/{room}/messages", web::post().to(post_message))
    .route(
        "/api/rooms/{room}/messages/{id}",
        web::delete().to(delete_message),
    )
    .route("/healthz", web::get().to(health))
    .route("/metrics", web::get().to(metrics));
}

/// `GET /api/rooms`: rooms with members, most members first.
async fn list_rooms(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(RoomList {
        rooms: state.directory.listing(),
    })
}

/// `GET /api/rooms/{room}/messages?after=&before=&limit=`.
async fn history(
    state: web::Data<AppState>,
    room: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, HttpError> {
    let room = RoomName::parse(&room).map_err(|_| HttpError::InvalidRoom)?;
    let limit = query
        .limit
        .unwrap_or(DEFAULT_PAGE_LIMIT)
        .clamp(1, MAX_PAGE_LIMIT);
    let query = PageQuery {
        after: query.after,
        before: query.before,
        limit,
    };
    let messages = state.history_page(&room, query).await?;
    Ok(HttpResponse::Ok().json(MessagePage {
        room: room.into_string(),
        messages,
    }))
}

/// Checks the `Authorization: Bearer <CHARLA_API_TOKEN>` header of a post
/// or a moderation call: `403` without a token configured, `401` for a
/// missing or wrong one.
pub(crate) fn authorize(state: &AppState, request: &HttpRequest) -> Result<(), HttpError> {
    let Some(token) = state.config.api_token.as_ref().map(Secret::expose) else {
        return Err(HttpError::PostingDisabled);
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if presented.is_some_and(|p| constant_time_eq::constant_time_eq(p.as_bytes(), token.as_bytes()))
    {
        Ok(())
    } else {
        Err(HttpError::Unauthorized)
    }
}

/// `POST /api/rooms/{room}/messages` with `Authorization: Bearer <token>`.
async fn post_message(
    state: web::Data<AppState>,
    request: HttpRequest,
    room: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    authorize(&state, &request)?;
    let room = RoomName::parse(&room).map_err(|_| HttpError::InvalidRoom)?;
    let post: PostMessage = serde_json::from_slice(&body).map_err(|error| {
        HttpError::BadRequest(format!("body must be {{\"from\",\"text\"}}: {error}"))
    })?;
    let from = DisplayName::parse(&post.from).map_err(|_| HttpError::InvalidName)?;
    let text = MessageText::parse(&post.text).map_err(|_| HttpError::InvalidText)?;
    let stored = state.registry.send(Post { room, from, text }).await?;
    match stored.await {
        Ok(Ok(id)) => Ok(HttpResponse::Created().json(Posted { id })),
        Ok(Err(ErrorCode::TooManyRooms)) => Err(HttpError::TooManyRooms),
        Ok(Err(ErrorCode::Unavailable)) => Err(HttpError::StoreUnavailable),
        Ok(Err(_)) | Err(_) => Err(HttpError::Internal),
    }
}

/// `DELETE /api/rooms/{room}/messages/{id}` with the token: a moderator
/// deletes any message (rule 50); `200 {"id"}` with the delete entry's id
/// once it is stored.
async fn delete_message(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, HttpError> {
    authorize(&state, &request)?;
    let (room, id) = path.into_inner();
    let room = RoomName::parse(&room).map_err(|_| HttpError::InvalidRoom)?;
    let id: u64 = id.parse().map_err(|_| HttpError::UnknownMessage)?;
    let stored = state.registry.send(ModeratorDelete { room, id }).await?;
    match stored.await {
        Ok(Ok(id)) => {
            state.metrics.moderated("delete");
            Ok(HttpResponse::Ok().json(Posted { id }))
        }
        Ok(Err(ErrorCode::UnknownMessage)) => Err(HttpError::UnknownMessage),
        Ok(Err(ErrorCode::TooManyRooms)) => Err(HttpError::TooManyRooms),
        Ok(Err(ErrorCode::Unavailable)) => Err(HttpError::StoreUnavailable),
        Ok(Err(_)) | Err(_) => Err(HttpError::Internal),
    }
}

/// `GET /healthz`: 200 while serving; 503 once shutting down, while the
/// room registry does not answer a probe within [`PROBE_DEADLINE`] (no
/// message would move), or while the database refuses writes (messages
/// are refused then).
async fn health(state: web::Data<AppState>) -> HttpResponse {
    if state.is_shutting_down() {
        return HttpResponse::ServiceUnavailable().json(Health {
            status: "shutting_down".to_owned(),
        });
    }
    let probe = state.registry.send(Probe).timeout(PROBE_DEADLINE).await;
    if let Err(error) = probe {
        tracing::error!(error = %error, "the room registry did not answer the health probe");
        HttpResponse::ServiceUnavailable().json(Health {
            status: "registry_unresponsive".to_owned(),
        })
    } else if !state.store_is_healthy() {
        HttpResponse::ServiceUnavailable().json(Health {
            status: "storage_failing".to_owned(),
        })
    } else {
        HttpResponse::Ok().json(Health {
            status: "ok".to_owned(),
        })
    }
}

/// `GET /metrics`: OpenMetrics text.
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(metrics::CONTENT_TYPE)
        .body(state.metrics.render())
}
