//! The moderation API (docs/protocol.md, rules 51 and 52): kick a member's
//! connections out of a room; ban an identity or a client address from a
//! room or the whole server for a while; list and lift bans. (A moderator's
//! delete of a message is in [`crate::api`].)
//!
//! Every call needs the API token ([`api::authorize`]: `403` without one
//! configured, `401` for a wrong one); then the path and the body are
//! checked (`404` for a bad room in the path, `400` `bad_request` for a
//! body that breaks a rule, in the order of the fields below).
//!
//! A ban is stored before it is answered or enforced: with SQLite the row
//! is committed through the [`BanBook`] on a blocking thread, then the
//! registry enforces it (removing the connections it names), then `201`. A
//! lift deletes the row first, then the registry stops enforcing it, then
//! `204`. A database that refuses is `503` and changes nothing. In memory
//! mode bans live in the registry only, for the life of the process. With
//! Redis a ban (or a lift) is stored in Redis first, which tells every node
//! ([`crate::cluster`]); this node then applies it before answering. A
//! kick, with Redis, is an event every node acts on for its own
//! connections; the answer counts the member's connections on every node.

use crate::address::ClientAddress;
use crate::api;
use crate::bans::{Ban, BanTarget, now_millis};
use crate::error::HttpError;
use crate::identity::IDENTITY_ID_CHARS;
use crate::registry::{ImposeBan, Kick, LiftBan, ListBans};
use crate::state::AppState;
use crate::store::database::BanBook;
use actix_web::{HttpRequest, HttpResponse, web};
use charla_protocol::api::{
    BanList, KickMember, Kicked, MAX_BAN_SECONDS, MAX_REASON_CHARS, NewBan,
};
use charla_protocol::{MAX_ROOM_CHARS, RoomName};
use std::sync::PoisonError;

/// Milliseconds in a second, for a ban's `until`.
const MILLIS_PER_SECOND: u64 = 1000;

/// Mounts the moderation routes.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/rooms/{room}/kick", web::post().to(kick))
        .route("/api/bans", web::get().to(list_bans))
        .route("/api/bans", web::post().to(create_ban))
        .route("/api/bans/{id}", web::delete().to(lift_ban));
}

/// `POST /api/rooms/{room}/kick` body `{"member","reason"?}`: `200
/// {"kicked": n}`, the connections that left (rule 51).
async fn kick(
    state: web::Data<AppState>,
    request: HttpRequest,
    room: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    permitted(&state, &request)?;
    let room = RoomName::parse(&room).map_err(|_| HttpError::InvalidRoom)?;
    let KickMember { member, reason } = serde_json::from_slice(&body).map_err(|error| {
        HttpError::BadRequest(format!("body must be {{\"member\",\"reason\"?}}: {error}"))
    })?;
    if member.is_empty() {
        return Err(HttpError::BadRequest(
            "member must be a member id, as in a room's members[].id".to_owned(),
        ));
    }
    let reason = parse_reason(reason)?;
    // With Redis every node removes its own connections of the member (the
    // script tells them); this one does so before answering.
    let everywhere = match &state.cluster {
        Some(cluster) => Some(
            cluster
                .kick(&room, &member, reason.as_deref())
                .await
                .map_err(|error| {
                    tracing::error!(error = %error, "Redis did not take a kick");
                    HttpError::BansUnavailable
                })?,
        ),
        None => None,
    };
    let here = state
        .registry
        .send(Kick {
            room,
            member,
            reason,
        })
        .await?;
    let kicked = everywhere.unwrap_or(here).max(here);
    if kicked > 0 {
        state.metrics.moderated("kick");
    }
    Ok(HttpResponse::Ok().json(Kicked { kicked }))
}

/// `POST /api/bans`: `201` with the ban once it is stored and enforced
/// (rule 52).
async fn create_ban(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    permitted(&state, &request)?;
    let now = now_millis();
    let ban = parse_ban(&body, now)?;
    let wire = ban.to_wire();
    match &state.cluster {
        Some(cluster) => cluster.ban(&wire, now).await.map_err(|error| {
            tracing::error!(error = %error, "cannot store a ban in Redis");
            HttpError::BansUnavailable
        })?,
        None => {
            let row = wire.clone();
            write_book(&state, move |book| book.insert(&row, now)).await?;
        }
    }
    let removed = state.registry.send(ImposeBan { ban }).await?;
    state.metrics.moderated("ban");
    tracing::info!(ban = %wire.id, room = ?wire.room, until = wire.until, removed, "ban imposed");
    Ok(HttpResponse::Created().json(wire))
}

/// `GET /api/bans`: the bans in force, soonest to end first.
async fn list_bans(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, HttpError> {
    permitted(&state, &request)?;
    let bans = state.registry.send(ListBans).await?;
    Ok(HttpResponse::Ok().json(BanList { bans }))
}

/// `DELETE /api/bans/{id}`: `204` once the ban is lifted; `404`
/// `unknown_ban` when no ban in force has this id.
async fn lift_ban(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    permitted(&state, &request)?;
    let id = id.into_inner();
    let in_redis = match &state.cluster {
        Some(cluster) => Some(cluster.unban(&id, now_millis()).await.map_err(|error| {
            tracing::error!(error = %error, "cannot lift a ban in Redis");
            HttpError::BansUnavailable
        })?),
        None => {
            let row = id.clone();
            write_book(&state, move |book| book.lift(&row)).await?;
            None
        }
    };
    let here = state.registry.send(LiftBan { id: id.clone() }).await?;
    if !in_redis.unwrap_or(here) {
        return Err(HttpError::UnknownBan);
    }
    state.metrics.moderated("unban");
    tracing::info!(ban = %id, "ban lifted");
    Ok(HttpResponse::NoContent().finish())
}

/// The token.
fn permitted(state: &AppState, request: &HttpRequest) -> Result<(), HttpError> {
    api::authorize(state, request)
}

/// Runs `write` on the ban book on a blocking thread, so no worker waits on
/// the disk; `Ok(None)` without a book (memory mode). `Ok` means the write
/// has committed.
async fn write_book<T: Send + 'static>(
    state: &AppState,
    write: impl FnOnce(&mut BanBook) -> rusqlite::Result<T> + Send + 'static,
) -> Result<Option<T>, HttpError> {
    let Some(book) = state.ban_book.clone() else {
        return Ok(None);
    };
    let written = web::block(move || {
        let mut book = book.lock().unwrap_or_else(PoisonError::into_inner);
        write(&mut book)
    })
    .await;
    match written {
        Ok(Ok(value)) => Ok(Some(value)),
        Ok(Err(error)) => {
            tracing::error!(error = %error, "cannot write a ban to the database");
            Err(HttpError::BansUnavailable)
        }
        Err(error) => {
            tracing::error!(error = %error, "the thread writing a ban failed");
            Err(HttpError::BansUnavailable)
        }
    }
}

/// A `POST /api/bans` body as the ban it asks for, starting at `now`.
/// Checked in order: the JSON shape, exactly one target, the target, the
/// room, `seconds`, `reason`.
fn parse_ban(body: &[u8], now: u64) -> Result<Ban, HttpError> {
    let bad = |message: String| HttpError::BadRequest(message);
    let NewBan {
        identity,
        address,
        room,
        seconds,
        reason,
    } = serde_json::from_slice(body).map_err(|error| {
        bad(format!(
            "body must be {{\"identity\"|\"address\",\"room\"?,\"seconds\",\"reason\"?}}: {error}"
        ))
    })?;
    let target = match (identity, address) {
        (Some(identity), None) => {
            let is_member_id = identity.len() == IDENTITY_ID_CHARS
                && identity
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !is_member_id {
                return Err(bad(format!(
                    "identity must be a member id: {IDENTITY_ID_CHARS} lowercase hex digits"
                )));
            }
            BanTarget::Identity(identity)
        }
        (None, Some(address)) => {
            BanTarget::Address(ClientAddress::parse(&address).ok_or_else(|| {
                bad("address must be an IPv4 or IPv6 address (IPv6 counts by its /64; 2001:db8:1:2::/64 is accepted too)".to_owned())
            })?)
        }
        _ => {
            return Err(bad(
                "give exactly one of \"identity\" and \"address\"".to_owned(),
            ));
        }
    };
    let room = match room {
        Some(room) => Some(RoomName::parse(&room).map_err(|_| {
            bad(format!(
                "room must be a room name: 1 to {MAX_ROOM_CHARS} letters, digits, '-' or '_', starting with a letter or digit (leave it out to ban from every room)"
            ))
        })?),
        None => None,
    };
    if !(1..=MAX_BAN_SECONDS).contains(&seconds) {
        return Err(bad(format!(
            "seconds must be an integer from 1 to {MAX_BAN_SECONDS}"
        )));
    }
    Ok(Ban {
        id: Ban::new_id(),
        target,
        room,
        until: now + seconds * MILLIS_PER_SECOND,
        reason: parse_reason(reason)?,
    })
}

/// A kick's or ban's `reason`: trimmed, then 1 to [`MAX_REASON_CHARS`]
/// characters, on one line (no control characters).
fn parse_reason(reason: Option<String>) -> Result<Option<String>, HttpError> {
    let Some(reason) = reason else {
        return Ok(None);
    };
    let trimmed = reason.trim();
    let chars = trimmed.chars().count();
    if chars == 0 || chars > MAX_REASON_CHARS || trimmed.chars().any(char::is_control) {
        return Err(HttpError::BadRequest(format!(
            "reason must be 1 to {MAX_REASON_CHARS} characters without control characters (or left out)"
        )));
    }
    Ok(Some(trimmed.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: serde_json::Value) -> Result<Ban, String> {
        parse_ban(body.to_string().as_bytes(), 1_000).map_err(|error| error.to_string())
    }

    #[test]
    fn a_ban_body_becomes_a_ban_from_now() {
        let ban = parse(json!({"identity": "0123456789abcdef", "room": "General", "seconds": 60, "reason": "  spam "})).unwrap();
        assert_eq!(ban.target, BanTarget::Identity("0123456789abcdef".into()));
        assert_eq!(ban.room.as_ref().map(RoomName::as_str), Some("general"));
        assert_eq!(ban.until, 61_000);
        assert_eq!(ban.reason.as_deref(), Some("spam"));
        assert_eq!(ban.id.len(), 16);
        let ban = parse(
            json!({"address": "::ffff:203.0.113.7", "seconds": MAX_BAN_SECONDS, "reason": null}),
        )
        .unwrap();
        assert_eq!(ban.to_wire().address.as_deref(), Some("203.0.113.7"));
        assert_eq!((ban.room, ban.reason), (None, None));
        assert_eq!(ban.until, 1_000 + MAX_BAN_SECONDS * 1000);
        assert!(parse(json!({"identity": "0123456789abcdef", "seconds": 1, "reason": "x".repeat(MAX_REASON_CHARS)})).is_ok());
    }

    #[test]
    fn every_rule_of_a_ban_body_is_enforced() {
        let id = "0123456789abcdef";
        for (body, wanted) in [
            (json!("nope"), "body must be"),
            (json!({"identity": id}), "missing field `seconds`"),
            (json!({"identity": id, "seconds": 1.5}), "body must be"),
            (json!({"identity": id, "seconds": "60"}), "body must be"),
            (json!({"identity": id, "seconds": -1}), "body must be"),
            (json!({"identity": id, "seconds": 0}), "seconds must be"),
            (
                json!({"identity": id, "seconds": MAX_BAN_SECONDS + 1}),
                "seconds must be",
            ),
            (json!({"seconds": 60}), "exactly one"),
            (
                json!({"identity": id, "address": "192.0.2.1", "seconds": 60}),
                "exactly one",
            ),
            (
                json!({"identity": "0123456789ABCDEF", "seconds": 60}),
                "identity must be",
            ),
            (
                json!({"identity": "api", "seconds": 60}),
                "identity must be",
            ),
            (json!({"identity": 7, "seconds": 60}), "body must be"),
            (
                json!({"address": "nonsense", "seconds": 60}),
                "address must be",
            ),
            (
                json!({"address": "192.0.2.0/24", "seconds": 60}),
                "address must be",
            ),
            (
                json!({"identity": id, "room": "no way", "seconds": 60}),
                "room must be",
            ),
            (
                json!({"identity": id, "seconds": 60, "reason": ""}),
                "reason must be",
            ),
            (
                json!({"identity": id, "seconds": 60, "reason": "   "}),
                "reason must be",
            ),
            (
                json!({"identity": id, "seconds": 60, "reason": "two\nlines"}),
                "reason must be",
            ),
            (
                json!({"identity": id, "seconds": 60, "reason": "x".repeat(MAX_REASON_CHARS + 1)}),
                "reason must be",
            ),
        ] {
            let error = parse(body.clone()).expect_err(&body.to_string());
            assert!(error.contains(wanted), "{body}: {error}");
        }
    }
}
