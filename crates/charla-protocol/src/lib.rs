//! Charla's wire contract in code: every message a client and the server
//! exchange over `/ws`, the JSON bodies of the HTTP API, the validation rules
//! for names and text, and the error codes.
//!
//! This crate is the single source of truth for the shapes described in
//! `docs/protocol.md` (the contract, numbered rules included); the server,
//! the browser client's expectations and the load generator all follow it.
//! It depends on serde and serde_json only, so any Rust client can use it.
//!
//! # Layout
//!
//! - [`names`]: room names, display names and message text, each parsed once
//!   into a type that can only hold a valid value.
//! - [`error`]: [`ErrorCode`], the machine-readable reason carried by every
//!   `error` event.
//! - [`client`]: [`ClientMessage`], what a client sends (one enum, tagged by
//!   `"type"`), and [`parse_request`], which turns a text frame into a
//!   validated [`Request`] or a [`Rejection`] in the order of
//!   docs/protocol.md, rules 7 and 28.
//! - [`server`]: [`ServerMessage`], what the server sends (one enum, tagged by
//!   `"type"`), and the records it carries.
//! - [`api`]: the JSON bodies of the HTTP API.
//! - [`settings`]: how settings given in seconds parse, for the server and
//!   the load generator alike.

pub mod api;
pub mod client;
pub mod error;
pub mod names;
pub mod server;
pub mod settings;

pub use client::{ClientMessage, Command, Rejection, Request, parse_request};
pub use error::ErrorCode;
pub use names::{DisplayName, MessageText, RoomName, Secret};
pub use server::{ChatMessage, Member, PresenceEvent, RoomSummary, ServerMessage};

/// Longest display name, in Unicode scalar values.
pub const MAX_NAME_CHARS: usize = 32;
/// Longest message text after trimming, in Unicode scalar values.
pub const MAX_TEXT_CHARS: usize = 4000;
/// Longest room name, in bytes (room names are ASCII).
pub const MAX_ROOM_CHARS: usize = 64;
/// Longest `epoch` a `join` may carry, in Unicode scalar values.
pub const MAX_EPOCH_CHARS: usize = 64;
/// Longest client-chosen `ref`, in Unicode scalar values.
pub const MAX_REF_CHARS: usize = 64;
/// Most rooms listed in a `rooms` event or by `GET /api/rooms`.
pub const MAX_LISTED_ROOMS: usize = 100;
/// Length of an identity's secret: 32 random bytes as lowercase hex.
pub const SECRET_CHARS: usize = 64;
/// `from.name` of deletions made through the moderation API.
pub const MODERATOR_NAME: &str = "moderator";
/// `from.id` of messages posted through the HTTP API (`POST
/// /api/rooms/{room}/messages`). Session ids are hex, so no session can have
/// it; the sender's name is whatever the poster claimed, so pages mark these.
pub const API_SENDER_ID: &str = "api";
