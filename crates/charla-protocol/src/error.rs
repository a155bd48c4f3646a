//! The error codes of the contract. Each is a stable, machine-readable string
//! on the wire (`"rate_limited"`); the accompanying `message` is for humans.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a request was refused. The connection stays open after every one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, not an object, unknown `type`, missing or mistyped field.
    BadRequest,
    /// A room name outside `^[a-z0-9][a-z0-9_-]{0,63}$` after lowercasing.
    InvalidRoom,
    /// A display name that is empty, too long or holds a control character.
    InvalidName,
    /// Message text that is empty after trimming or longer than 4000 characters.
    InvalidText,
    /// `say`, `typing` or `leave` in a room the session has not joined.
    NotJoined,
    /// One room more than the session may join, or no room left on the server.
    TooManyRooms,
    /// The session's flood-control bucket is empty.
    RateLimited,
    /// A binary frame: Charla speaks JSON in text frames only.
    Unsupported,
}

impl ErrorCode {
    /// Every code, in the order of the contract.
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::BadRequest,
        ErrorCode::InvalidRoom,
        ErrorCode::InvalidName,
        ErrorCode::InvalidText,
        ErrorCode::NotJoined,
        ErrorCode::TooManyRooms,
        ErrorCode::RateLimited,
        ErrorCode::Unsupported,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidRoom => "invalid_room",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::InvalidText => "invalid_text",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::TooManyRooms => "too_many_rooms",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
