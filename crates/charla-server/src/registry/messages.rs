//! The registry's message table: every request a session or an HTTP handler
//! can make of it, one line of `///` each, in the order their handlers
//! appear in [`super::handlers`] (the moderation messages' in
//! [`super::moderation`]).

use crate::address::ClientAddress;
use crate::bans::Ban;
use crate::gate::RequestGate;
use crate::outbox::Outbox;
use crate::store::PageQuery;
use actix::prelude::*;
use charla_protocol::{
    ChatMessage, DisplayName, ErrorCode, Member, MessageText, RoomName, Secret, api,
};
use std::fmt;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A session's key in the registry; on the wire it is an opaque hex string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SessionId(pub(crate) u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A session opened: from now on the registry may push to its outbox.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Connect {
    pub(crate) session: SessionId,
    pub(crate) member: Member,
    pub(crate) outbox: Outbox,
    /// The session's count of requests waiting here: counted out as each
    /// is handled.
    pub(crate) gate: Arc<RequestGate>,
    /// Where the session connects from (room creation is limited per
    /// address).
    pub(crate) address: ClientAddress,
}

/// A session ended: it leaves every room (rule 12).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Disconnect {
    pub(crate) session: SessionId,
}

/// `join`: enter a room, or re-answer `joined` if already in it.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Join {
    pub(crate) session: SessionId,
    pub(crate) room: RoomName,
    pub(crate) after: Option<u64>,
    /// The room's epoch as the client last saw it.
    pub(crate) epoch: Option<String>,
    pub(crate) reference: Option<String>,
}

/// `leave`: leave a joined room.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Leave {
    pub(crate) session: SessionId,
    pub(crate) room: RoomName,
    pub(crate) reference: Option<String>,
}

/// `say`: post a message in a joined room.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Say {
    pub(crate) session: SessionId,
    pub(crate) room: RoomName,
    pub(crate) text: MessageText,
    pub(crate) reference: Option<String>,
}

/// `typing`: relay a typing hint to the room's other members.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Typing {
    pub(crate) session: SessionId,
    pub(crate) room: RoomName,
    pub(crate) reference: Option<String>,
}

/// `nick`: change a session's display name.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Rename {
    pub(crate) session: SessionId,
    pub(crate) name: DisplayName,
    pub(crate) reference: Option<String>,
}

/// `identify`: become the identity holding `secret`, or a new one.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Identify {
    pub(crate) session: SessionId,
    pub(crate) secret: Option<Secret>,
    pub(crate) reference: Option<String>,
}

/// `edit` and `delete`: change one of the session's messages.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Change {
    pub(crate) session: SessionId,
    pub(crate) room: RoomName,
    /// The message to change.
    pub(crate) id: u64,
    /// The new text; `None` deletes the message.
    pub(crate) text: Option<MessageText>,
    pub(crate) reference: Option<String>,
}

/// `watch_rooms`: send the directory now and on every change.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct WatchRooms {
    pub(crate) session: SessionId,
}

/// `unwatch_rooms`: stop the directory pushes.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct UnwatchRooms {
    pub(crate) session: SessionId,
}

/// `GET /api/rooms/{room}/messages`: one page of history, from memory;
/// `None` when the room's log is on disk only (the caller reads it there).
#[derive(Message)]
#[rtype(result = "Option<Vec<ChatMessage>>")]
pub(crate) struct FetchHistory {
    pub(crate) room: RoomName,
    pub(crate) query: PageQuery,
}

/// `POST /api/rooms/{room}/messages`: store and broadcast a message from
/// outside; the answer comes once it is stored: its id, or why not.
#[derive(Message)]
#[rtype(result = "oneshot::Receiver<Result<u64, ErrorCode>>")]
pub(crate) struct Post {
    pub(crate) room: RoomName,
    pub(crate) from: DisplayName,
    pub(crate) text: MessageText,
}

/// `DELETE /api/rooms/{room}/messages/{id}`: a moderator deletes any
/// message; the answer comes once the delete entry is stored: its id, or
/// why not.
#[derive(Message)]
#[rtype(result = "oneshot::Receiver<Result<u64, ErrorCode>>")]
pub(crate) struct ModeratorDelete {
    pub(crate) room: RoomName,
    pub(crate) id: u64,
}

/// `POST /api/rooms/{room}/kick`: every connection of `member` (a member
/// id) leaves the room and hears `kicked`; answers how many left.
#[derive(Message)]
#[rtype(result = "usize")]
pub(crate) struct Kick {
    pub(crate) room: RoomName,
    pub(crate) member: String,
    pub(crate) reason: Option<String>,
}

/// `POST /api/bans`, once the ban is stored: enforce it from now on, and
/// remove the connections it names from the rooms it covers; answers how
/// many seats were emptied.
#[derive(Message)]
#[rtype(result = "usize")]
pub(crate) struct ImposeBan {
    pub(crate) ban: Ban,
}

/// `GET /api/bans`: the bans in force.
#[derive(Message)]
#[rtype(result = "Vec<api::Ban>")]
pub(crate) struct ListBans;

/// `DELETE /api/bans/{id}`: stop enforcing a ban; answers whether it was
/// in force.
#[derive(Message)]
#[rtype(result = "bool")]
pub(crate) struct LiftBan {
    pub(crate) id: String,
}

/// The room page: current members and recent history.
#[derive(Message)]
#[rtype(result = "RoomView")]
pub(crate) struct ViewRoom {
    pub(crate) room: RoomName,
}

/// What a room page shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct RoomView {
    pub(crate) members: Vec<Member>,
    /// Recent history; `None` when the room's log is on disk only.
    pub(crate) history: Option<Vec<ChatMessage>>,
}

/// `GET /healthz`: answered at once, proving the registry still handles
/// messages.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Probe;

/// Close every session with 1001; the answer fires once none is left.
#[derive(Message)]
#[rtype(result = "oneshot::Receiver<()>")]
pub(crate) struct Shutdown;

/// The server stopped: store what is queued, sync it, stop the writer.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct CloseStore;
