//! JSON bodies of the HTTP API (`/api/rooms`, `/api/rooms/{room}/messages`,
//! `/healthz`, and moderation: `/api/rooms/{room}/kick`, `/api/bans`).

use crate::{ChatMessage, RoomSummary};
use serde::{Deserialize, Serialize};

/// `GET /api/rooms`: rooms with members, most members first, ties by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomList {
    pub rooms: Vec<RoomSummary>,
}

/// `GET /api/rooms/{room}/messages`: messages in ascending id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePage {
    pub room: String,
    pub messages: Vec<ChatMessage>,
}

/// `POST /api/rooms/{room}/messages` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostMessage {
    pub from: String,
    pub text: String,
}

/// `201` answer to a post: the id the message got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    pub id: u64,
}

/// Longest ban, in seconds (365 days): `POST /api/bans` takes `seconds`
/// from 1 to this (docs/protocol.md, rule 52).
pub const MAX_BAN_SECONDS: u64 = 31_536_000;

/// Longest `reason` of a kick or a ban, in Unicode scalar values after
/// trimming (rules 51 and 52).
pub const MAX_REASON_CHARS: usize = 200;

/// `POST /api/rooms/{room}/kick` body: the member id whose connections
/// leave the room, and why (shown to them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KickMember {
    pub member: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `200` answer to a kick: how many connections left the room (0 when the
/// member was not in it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kicked {
    pub kicked: usize,
}

/// `POST /api/bans` body: exactly one of `identity` (a member id) and
/// `address` (an IP address); no `room` bans from the whole server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewBan {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// How long the ban lasts: 1 to [`MAX_BAN_SECONDS`].
    pub seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A ban as `POST /api/bans` answers it and `GET /api/bans` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    /// Opaque; names the ban in `DELETE /api/bans/{id}`.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// As the server counts client addresses: an IPv4 address, or an IPv6
    /// /64 written `2001:db8:1:2::/64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The room; absent for a ban from the whole server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// When the ban ends, in milliseconds since the Unix epoch.
    pub until: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `GET /api/bans`: the bans in force, soonest to end first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanList {
    pub bans: Vec<Ban>,
}

/// `GET /healthz`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
}

/// The body of every HTTP error answer: `{"error": code, "message": ...}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_ban_leaves_out_what_it_does_not_have() {
        let ban = Ban {
            id: "0f1e2d3c4b5a6978".into(),
            identity: None,
            address: Some("203.0.113.7".into()),
            room: None,
            until: 1_800_000_000_000,
            reason: None,
        };
        let expected = json!({"id": "0f1e2d3c4b5a6978", "address": "203.0.113.7", "until": 1_800_000_000_000u64});
        assert_eq!(serde_json::to_value(&ban).unwrap(), expected);
        assert_eq!(serde_json::from_value::<Ban>(expected).unwrap(), ban);
    }

    #[test]
    fn a_new_ban_needs_its_seconds_as_an_integer() {
        let ban: NewBan =
            serde_json::from_value(json!({"identity": "ab", "room": "general", "seconds": 60}))
                .unwrap();
        assert_eq!((ban.seconds, ban.room.as_deref()), (60, Some("general")));
        for body in [
            json!({"identity": "ab"}),
            json!({"identity": "ab", "seconds": 1.5}),
            json!({"identity": "ab", "seconds": "60"}),
            json!({"identity": "ab", "seconds": -1}),
        ] {
            assert!(serde_json::from_value::<NewBan>(body).is_err());
        }
    }
}
