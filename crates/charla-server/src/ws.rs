//! `GET /ws`: everything decided before the upgrade (shutdown, origin,
//! display name, the connection caps per address and in all), then the
//! wiring of one connection: its outbox, its request gate, its writer task
//! and its session actor.

use crate::address::ClientAddress;
use crate::error::HttpError;
use crate::gate::{Gated, RequestGate};
use crate::outbox::{Outbox, run_writer};
use crate::registry::SessionId;
use crate::session::{ChatSession, SessionLinks, WriterDone};
use crate::state::AppState;
use actix::{Actor, AsyncContext};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use charla_protocol::{DisplayName, Member};
use serde::Deserialize;
use std::sync::Arc;

/// Query of `GET /ws`.
#[derive(Debug, Deserialize)]
pub(crate) struct UpgradeQuery {
    name: Option<String>,
}

/// Upgrades to a WebSocket session.
pub(crate) async fn upgrade(
    request: HttpRequest,
    body: web::Payload,
    query: web::Query<UpgradeQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    if state.is_shutting_down() {
        return Err(HttpError::ShuttingDown.into());
    }
    if !origin_allowed(&request, &state.config.allowed_origins) {
        tracing::info!(origin = ?request.headers().get(header::ORIGIN), "refused a cross-site upgrade");
        return Err(HttpError::ForbiddenOrigin.into());
    }
    let name = match query.into_inner().name {
        Some(raw) => DisplayName::parse(&raw)
            .map_err(|_| HttpError::InvalidName)?
            .into_string(),
        None => format!("guest-{:04}", fastrand::u16(0..10_000)),
    };
    let address = ClientAddress::of_request(&request, state.config.trusted_proxies);
    let permit = state.admit(address).inspect_err(|error| {
        tracing::info!(%address, error = %error, "refused an upgrade");
    })?;
    let (response, socket, stream) = actix_ws::handle(&request, body)?;
    let limit = state.config.max_frame_bytes;
    let stream = stream
        .max_frame_size(limit)
        .aggregate_continuations()
        .max_continuation_size(limit);
    let (outbox, receiver) = Outbox::channel(state.config.outbox_frames, state.config.outbox_bytes);
    let id = SessionId(state.next_session_id());
    let member = Member {
        id: id.to_string(),
        name,
    };
    let links = SessionLinks {
        registry: state.registry.clone(),
        metrics: state.metrics.clone(),
        heartbeat: state.config.heartbeat,
        client_timeout: state.config.client_timeout,
        request_rate: state.config.request_rate,
        request_burst: state.config.request_burst,
    };
    let gate = Arc::new(RequestGate::default());
    let stream = Gated::new(stream, gate.clone());
    let session = ChatSession::new(id, member, outbox, links, permit, address, gate);
    let address = ChatSession::create(|ctx| {
        ctx.add_stream(stream);
        session
    });
    actix_web::rt::spawn(async move {
        run_writer(socket, receiver).await;
        address.do_send(WriterDone);
    });
    Ok(response)
}

/// Rule 4 and 24: no `Origin` (a non-browser client) passes; otherwise the
/// origin's `host[:port]` must equal the request's `Host`, or the origin be
/// listed (or the list hold `*`). `Origin: null` matches nothing.
pub(crate) fn origin_allowed(request: &HttpRequest, allowed: &[String]) -> bool {
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim().trim_end_matches('/');
    if origin == "null" {
        return false;
    }
    if allowed
        .iter()
        .any(|a| a.trim() == "*" || a.trim().trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let Some((_scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    !authority.is_empty() && authority.eq_ignore_ascii_case(host.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn allowed(origin: Option<&str>, host: &str, list: &[&str]) -> bool {
        let mut request = TestRequest::get().insert_header((header::HOST, host));
        if let Some(origin) = origin {
            request = request.insert_header((header::ORIGIN, origin));
        }
        let list: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
        origin_allowed(&request.to_http_request(), &list)
    }

    #[test]
    fn origins_follow_rules_4_and_24() {
        assert!(allowed(None, "chat.example.com", &[]));
        assert!(allowed(
            Some("https://chat.example.com"),
            "chat.example.com",
            &[]
        ));
        assert!(allowed(
            Some("http://localhost:8080"),
            "localhost:8080",
            &[]
        ));
        assert!(allowed(
            Some("http://LOCALHOST:8080"),
            "localhost:8080",
            &[]
        ));
        assert!(!allowed(
            Some("http://localhost:9090"),
            "localhost:8080",
            &[]
        ));
        assert!(!allowed(
            Some("https://evil.example"),
            "chat.example.com",
            &[]
        ));
        assert!(!allowed(Some("null"), "chat.example.com", &[]));
        assert!(!allowed(Some("null"), "chat.example.com", &["*"]));
        assert!(allowed(
            Some("https://other.example"),
            "chat.example.com",
            &["https://other.example"]
        ));
        assert!(!allowed(
            Some("http://other.example"),
            "chat.example.com",
            &["https://other.example"]
        ));
        assert!(allowed(
            Some("https://evil.example"),
            "chat.example.com",
            &["*"]
        ));
    }
}
