//! The browser-facing routes: the lobby (`GET /`), room pages
//! (`GET /rooms/{room}`), the client's embedded files (`GET /assets/...`),
//! the 404 page for anything else that is not an API path, and the friendly
//! page for a 5xx. The pages themselves (templates, assets, the CSP) live in
//! `charla-web`; this module only fetches data and builds responses.
//!
//! Invariants:
//! - every HTML response, the 404 and 5xx pages included, carries the
//!   Content-Security-Policy, `X-Content-Type-Options: nosniff` and
//!   `Referrer-Policy: same-origin`;
//! - room names are validated with [`RoomName::parse`] like everywhere else:
//!   invalid is a 404 page, uppercase redirects to the canonical lowercase
//!   path;
//! - unknown paths under `/api/` stay JSON (`{"error","message"}`): API
//!   clients never get HTML;
//! - the lobby and room pages carry this server's facts (its configured
//!   room cap, the contract's limits) for their script, from
//!   [`server_facts`]: the client repeats none of them.

use crate::state::{AppState, HistoryError};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError, web};
use charla_protocol::RoomName;
use charla_protocol::api::ApiError;
use charla_web::{
    CONTENT_SECURITY_POLICY, LobbyPage, NotFoundPage, RoomPage, ServerErrorPage, Template,
};
use serde::Deserialize;

/// `Cache-Control` of the embedded assets: keep them, but ask before each
/// use. A revalidation is a cheap `304` thanks to the content-hash `ETag`,
/// and a new release is picked up at once, ES modules imported by other
/// modules included (their URLs carry no version to bust).
pub const ASSET_CACHE_CONTROL: &str = "no-cache";

/// `Cache-Control` of pages: their data is live, never reuse a stale copy.
pub const PAGE_CACHE_CONTROL: &str = "no-store";

/// Mounts the page routes and the default 404. Mount after the API so its
/// routes win.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(lobby))
        .route("/rooms", web::get().to(room_from_form))
        .route("/rooms/{room}", web::get().to(room))
        .route("/assets/{path:.*}", web::get().to(asset))
        .default_service(web::to(not_found));
}

/// A page could not be built. Answered with the friendly 5xx page; the
/// cause goes to the log only.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("the room could not be read: {0}")]
    History(#[from] HistoryError),
    #[error("a template failed to render: {0}")]
    Render(#[from] charla_web::RenderError),
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> HttpResponse {
        tracing::error!(error = %self, "a page failed");
        server_error_page(self.status_code())
    }
}

/// `GET /`: the lobby, with the room directory as it is now.
async fn lobby(state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let page = LobbyPage::new(state.directory.listing(), server_facts(&state)).render()?;
    Ok(html(StatusCode::OK).body(page))
}

/// Query of the lobby's form, `GET /rooms?room=...` (the form also carries
/// `name`, which only the client uses).
#[derive(Debug, Deserialize)]
struct RoomForm {
    room: Option<String>,
}

/// `GET /rooms?room=General`: the lobby form without JavaScript; redirects
/// to the room's canonical path, or answers the 404 page.
async fn room_from_form(query: web::Query<RoomForm>) -> Result<HttpResponse, PageError> {
    let raw = query.into_inner().room.unwrap_or_default();
    match RoomName::parse(raw.trim()) {
        Ok(room) => Ok(redirect(StatusCode::SEE_OTHER, &room)),
        Err(_) => not_found_page(NotFoundPage::invalid_room(&raw)),
    }
}

/// `GET /rooms/{room}`: the room's members and recent history, rendered.
async fn room(
    state: web::Data<AppState>,
    raw: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let raw = raw.into_inner();
    let Ok(room) = RoomName::parse(&raw) else {
        return not_found_page(NotFoundPage::invalid_room(&raw));
    };
    if room.as_str() != raw {
        // One canonical address per room, so links, history and the
        // client's list of open rooms agree.
        return Ok(redirect(StatusCode::PERMANENT_REDIRECT, &room));
    }
    let view = state.room_view(&room).await?;
    let page = RoomPage::new(
        room.as_str(),
        view.members,
        view.history.unwrap_or_default(),
        server_facts(&state),
    )
    .render()?;
    Ok(html(StatusCode::OK).body(page))
}

/// What the pages' script must know about this server: the room cap of its
/// `Config` (`CHARLA_MAX_ROOMS_PER_SESSION`) and the contract's limits.
fn server_facts(state: &AppState) -> charla_web::ServerFacts {
    charla_web::ServerFacts::new(state.config.max_rooms_per_session)
}

/// `GET /assets/{path}`: an embedded client file, with `304` when the
/// browser's copy is current.
async fn asset(request: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let Some(asset) = charla_web::asset(&path) else {
        return not_found(request).await;
    };
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == asset.etag));
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, asset.etag.as_str()))
        .insert_header((header::CACHE_CONTROL, ASSET_CACHE_CONTROL))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if fresh {
        return response.finish();
    }
    response
        .insert_header((header::CONTENT_TYPE, asset.content_type.as_str()))
        .body(asset.bytes.into_owned())
}

/// Anything no route matched: JSON under `/api/`, the 404 page elsewhere.
async fn not_found(request: HttpRequest) -> HttpResponse {
    let path = request.path();
    if path == "/api" || path.starts_with("/api/") {
        return HttpResponse::NotFound().json(ApiError {
            error: "not_found".to_owned(),
            message: "no such endpoint".to_owned(),
        });
    }
    not_found_page(NotFoundPage::unknown_path(path)).unwrap_or_else(|error| error.error_response())
}

/// A builder for an HTML response with the security headers every page
/// carries.
fn html(status: StatusCode) -> HttpResponseBuilder {
    let mut response = HttpResponse::build(status);
    response
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CACHE_CONTROL, PAGE_CACHE_CONTROL));
    response
}

fn not_found_page(page: NotFoundPage) -> Result<HttpResponse, PageError> {
    Ok(html(StatusCode::NOT_FOUND).body(page.render()?))
}

/// The friendly 5xx page. Rendering it cannot fail in practice (no data);
/// should it, a plain sentence still goes out with the same headers.
fn server_error_page(status: StatusCode) -> HttpResponse {
    let body = ServerErrorPage.render().unwrap_or_else(|error| {
        tracing::error!(error = %error, "the error page failed to render");
        "Something went wrong on our side. Try again in a moment.".to_owned()
    });
    html(status).body(body)
}

fn redirect(status: StatusCode, room: &RoomName) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::LOCATION, format!("/rooms/{room}")))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    fn header_of(response: &HttpResponse, name: header::HeaderName) -> &str {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    #[actix_web::test]
    async fn the_friendly_5xx_page_carries_the_security_headers() {
        let response = PageError::History(HistoryError::Registry(actix::MailboxError::Closed))
            .error_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            header_of(&response, header::CONTENT_SECURITY_POLICY),
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(
            header_of(&response, header::X_CONTENT_TYPE_OPTIONS),
            "nosniff"
        );
        assert_eq!(header_of(&response, header::REFERRER_POLICY), "same-origin");
        let body = to_bytes(response.into_body()).await.unwrap();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("Something went wrong"), "{body}");
        assert!(!body.contains("registry"), "internals stay in the log");
    }

    #[actix_web::test]
    async fn unknown_api_paths_stay_json_and_others_get_the_page() {
        let request = actix_web::test::TestRequest::get()
            .uri("/api/nope")
            .to_http_request();
        let response = not_found(request).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(header_of(&response, header::CONTENT_TYPE).starts_with("application/json"));
        let request = actix_web::test::TestRequest::get()
            .uri("/nowhere/%3Cb%3E")
            .to_http_request();
        let response = not_found(request).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(header_of(&response, header::CONTENT_TYPE).starts_with("text/html"));
        assert_eq!(
            header_of(&response, header::CONTENT_SECURITY_POLICY),
            CONTENT_SECURITY_POLICY
        );
    }

    #[actix_web::test]
    async fn assets_revalidate_with_their_etag() {
        let etag = charla_web::asset("charla.css").unwrap().etag;
        let request = actix_web::test::TestRequest::get()
            .insert_header((header::IF_NONE_MATCH, etag.as_str()))
            .to_http_request();
        let response = asset(request, web::Path::from("charla.css".to_owned())).await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        let request = actix_web::test::TestRequest::get().to_http_request();
        let response = asset(request, web::Path::from("charla.css".to_owned())).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header_of(&response, header::ETAG), etag);
        assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
        assert!(header_of(&response, header::CONTENT_TYPE).starts_with("text/css"));
        let request = actix_web::test::TestRequest::get().to_http_request();
        let response = asset(request, web::Path::from("nope.js".to_owned())).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
