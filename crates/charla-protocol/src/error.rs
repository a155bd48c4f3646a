//! The error codes of the contract (docs/protocol.md, "Errors"). Each is a
//! stable, machine-readable string on the wire (`"rate_limited"`); the
//! accompanying `message` is for humans.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a request was refused. The connection stays open after every one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, not an object, unknown `type`, missing or mistyped field.
    BadRequest,
    /// A room name that breaks [`RoomName`](crate::RoomName)'s rule after
    /// lowercasing.
    InvalidRoom,
    /// A display name that is empty, longer than
    /// [`MAX_NAME_CHARS`](crate::MAX_NAME_CHARS) or holds a control character.
    InvalidName,
    /// Message text that is empty after trimming or longer than
    /// [`MAX_TEXT_CHARS`](crate::MAX_TEXT_CHARS).
    InvalidText,
    /// `say`, `typing` or `leave` in a room the session has not joined.
    NotJoined,
    /// One room more than the session may join, or no room left on the server.
    TooManyRooms,
    /// The session's flood-control bucket is empty.
    RateLimited,
    /// A binary frame: Charla speaks JSON in text frames only.
    Unsupported,
    /// The server could not store the message (its disk failed): it was
    /// not sent to anyone and can be resent with the same `ref`.
    Unavailable,
    /// `identify` after joining a room, or a second `identify`.
    IdentityLocked,
    /// `edit` or `delete` of an id that is no retained, undeleted message
    /// of the room.
    UnknownMessage,
    /// `edit` or `delete` of another member's message.
    NotAuthor,
    /// A ban keeps this identity or address out of the room (or the whole
    /// server) until the error's `until`.
    Banned,
}

impl ErrorCode {
    /// Every code, in the order of docs/protocol.md's table of errors.
    pub const ALL: [ErrorCode; 13] = [
        ErrorCode::BadRequest,
        ErrorCode::InvalidRoom,
        ErrorCode::InvalidName,
        ErrorCode::InvalidText,
        ErrorCode::NotJoined,
        ErrorCode::TooManyRooms,
        ErrorCode::RateLimited,
        ErrorCode::Unsupported,
        ErrorCode::Unavailable,
        ErrorCode::IdentityLocked,
        ErrorCode::UnknownMessage,
        ErrorCode::NotAuthor,
        ErrorCode::Banned,
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
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::IdentityLocked => "identity_locked",
            ErrorCode::UnknownMessage => "unknown_message",
            ErrorCode::NotAuthor => "not_author",
            ErrorCode::Banned => "banned",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
