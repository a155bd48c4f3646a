//! JSON bodies of the HTTP API (`/api/rooms`, `/api/rooms/{room}/messages`,
//! `/healthz`).

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
