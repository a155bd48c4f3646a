//! The room registry actor: the one owner of rooms, membership, presence, the
//! room directory push and the flood-control buckets, and the only caller of
//! the [`MessageStore`] (ids, history, the `ref` window).
//!
//! Being one actor makes every room's order total: a message gets its id,
//! its `ack` and its broadcast in one handler, so every member sees ids
//! ascending without gaps, `joined` precedes live messages (rule 11) and the
//! `ack` precedes the sender's own copy (rule 20).
//!
//! The registry never waits on a socket: it pushes into each member's
//! bounded [`Outbox`] with `try_send`. A member whose queue is full is a slow
//! consumer: it is closed with 1008 and removed from its rooms at the end of
//! the handler that found it, while everyone else has already been served.
//! A broadcast is serialised once; members receive clones of one shared
//! buffer.

use crate::config::Config;
use crate::directory::Directory;
use crate::metrics::Metrics;
use crate::outbox::{NotQueued, Outbox};
use crate::store::{Appended, Draft, MessageStore, PageQuery};
use actix::prelude::*;
use actix_ws::CloseCode;
use bytestring::ByteString;
use charla_protocol::client::default_message;
use charla_protocol::{
    ChatMessage, DisplayName, ErrorCode, Member, MessageText, PresenceEvent, RoomName,
    ServerMessage,
};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// Shortest time between two `rooms` pushes to watchers.
pub const DIRECTORY_PUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Shortest time between two relayed `typing` events per member and room.
pub const TYPING_RELAY_INTERVAL: Duration = Duration::from_secs(1);
/// Requests an HTTP handler may have queued at the registry before its
/// `send` waits for room.
pub const REGISTRY_MAILBOX: usize = 65_536;
/// The `from.id` of messages posted through the HTTP API.
pub const API_SENDER_ID: &str = "api";

/// A session's key in the registry; on the wire it is an opaque hex string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A session opened: from now on the registry may push to its outbox.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Connect {
    pub session: SessionId,
    pub member: Member,
    pub outbox: Outbox,
}

/// A session ended: it leaves every room (rule 12).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub session: SessionId,
}

/// `join`: enter a room, or re-answer `joined` if already in it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Join {
    pub session: SessionId,
    pub room: RoomName,
    pub after: Option<u64>,
    pub reference: Option<String>,
}

/// `leave`: leave a joined room.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    pub session: SessionId,
    pub room: RoomName,
    pub reference: Option<String>,
}

/// `say`: post a message in a joined room.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Say {
    pub session: SessionId,
    pub room: RoomName,
    pub text: MessageText,
    pub reference: Option<String>,
}

/// `typing`: relay a typing hint to the room's other members.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Typing {
    pub session: SessionId,
    pub room: RoomName,
    pub reference: Option<String>,
}

/// `nick`: change a session's display name.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Rename {
    pub session: SessionId,
    pub name: DisplayName,
    pub reference: Option<String>,
}

/// `watch_rooms`: send the directory now and on every change.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchRooms {
    pub session: SessionId,
}

/// `unwatch_rooms`: stop the directory pushes.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnwatchRooms {
    pub session: SessionId,
}

/// `GET /api/rooms/{room}/messages`: one page of history.
#[derive(Message)]
#[rtype(result = "Vec<ChatMessage>")]
pub struct FetchHistory {
    pub room: RoomName,
    pub query: PageQuery,
}

/// `POST /api/rooms/{room}/messages`: store and broadcast a message from
/// outside; answers its id.
#[derive(Message)]
#[rtype(result = "Result<u64, ErrorCode>")]
pub struct Post {
    pub room: RoomName,
    pub from: DisplayName,
    pub text: MessageText,
}

/// The room page: current members and recent history.
#[derive(Message)]
#[rtype(result = "RoomView")]
pub struct ViewRoom {
    pub room: RoomName,
}

/// What a room page shows.
#[derive(Debug, Clone, Default)]
pub struct RoomView {
    pub members: Vec<Member>,
    pub history: Vec<ChatMessage>,
}

/// Close every session with 1001; the answer fires once none is left.
#[derive(Message)]
#[rtype(result = "oneshot::Receiver<()>")]
pub struct Shutdown;

/// A session as the registry knows it.
struct SessionState {
    member: Member,
    outbox: Outbox,
    rooms: HashSet<RoomName>,
    bucket: TokenBucket,
}

/// A room in memory. Its messages live in the [`MessageStore`].
#[derive(Default)]
struct Room {
    seats: HashMap<SessionId, Seat>,
    /// Registry tick of the last join, leave or message: eviction picks the
    /// smallest among empty rooms.
    last_active: u64,
}

/// One member's place in a room: a clone of its outbox, so a broadcast walks
/// one map and never looks the session up.
struct Seat {
    outbox: Outbox,
    last_typing: Option<Instant>,
}

/// Flood control: `burst` tokens, refilled at `rate` per second, starting full.
struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    fn full(burst: u32) -> TokenBucket {
        TokenBucket {
            tokens: f64::from(burst),
            updated: Instant::now(),
        }
    }

    fn take(&mut self, rate: f64, burst: u32) -> bool {
        if rate <= 0.0 {
            return true;
        }
        let now = Instant::now();
        let refill = now.duration_since(self.updated).as_secs_f64() * rate;
        self.tokens = (self.tokens + refill).min(f64::from(burst));
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The registry actor.
pub struct Registry {
    config: Arc<Config>,
    store: Box<dyn MessageStore>,
    directory: Arc<Directory>,
    metrics: Arc<Metrics>,
    sessions: HashMap<SessionId, SessionState>,
    rooms: HashMap<RoomName, Room>,
    watchers: HashSet<SessionId>,
    directory_push_scheduled: bool,
    last_directory_push: Option<Instant>,
    /// Sessions whose outbox was full during this handler: closed and removed
    /// at its end, once the others have been served.
    slow: Vec<SessionId>,
    tick: u64,
    shutting_down: bool,
    drained: Vec<oneshot::Sender<()>>,
}

impl Registry {
    pub fn new(
        config: Arc<Config>,
        store: Box<dyn MessageStore>,
        directory: Arc<Directory>,
        metrics: Arc<Metrics>,
    ) -> Registry {
        Registry {
            config,
            store,
            directory,
            metrics,
            sessions: HashMap::new(),
            rooms: HashMap::new(),
            watchers: HashSet::new(),
            directory_push_scheduled: false,
            last_directory_push: None,
            slow: Vec::new(),
            tick: 0,
            shutting_down: false,
            drained: Vec::new(),
        }
    }

    /// Serialises `message` and queues it for one session.
    fn send(&mut self, session: SessionId, message: &ServerMessage) {
        if let Some(state) = self.sessions.get(&session)
            && state.outbox.send(message) == Err(NotQueued::Full)
        {
            self.slow.push(session);
        }
    }

    fn send_error(&mut self, session: SessionId, code: ErrorCode, reference: Option<String>) {
        self.metrics.error(code);
        let error = ServerMessage::Error {
            code,
            message: default_message(code).to_owned(),
            reference,
        };
        self.send(session, &error);
    }

    /// Queues one serialised event for every member of `room` but `except`;
    /// answers how many members it reached.
    fn broadcast(
        &mut self,
        room: &RoomName,
        text: &ByteString,
        except: Option<SessionId>,
    ) -> usize {
        let Some(room) = self.rooms.get(room) else {
            return 0;
        };
        let mut reached = 0;
        for (id, seat) in &room.seats {
            if Some(*id) == except {
                continue;
            }
            match seat.outbox.push_text(text.clone()) {
                Ok(()) => reached += 1,
                Err(NotQueued::Full) => self.slow.push(*id),
                Err(NotQueued::Closing) => {}
            }
        }
        reached
    }

    fn members_of(&self, room: &RoomName) -> Vec<Member> {
        let Some(room) = self.rooms.get(room) else {
            return Vec::new();
        };
        let mut members: Vec<Member> = room
            .seats
            .keys()
            .filter_map(|id| self.sessions.get(id).map(|s| s.member.clone()))
            .collect();
        members.sort_unstable_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        members
    }

    fn member_count(&self, room: &RoomName) -> usize {
        self.rooms.get(room).map_or(0, |r| r.seats.len())
    }

    fn touch(&mut self, room: &RoomName) {
        self.tick += 1;
        if let Some(room) = self.rooms.get_mut(room) {
            room.last_active = self.tick;
        }
    }

    /// Makes sure `room` is in memory, evicting the least recently active
    /// empty room when the cap is reached (rule 22). False when nothing could go.
    fn ensure_room(&mut self, room: &RoomName) -> bool {
        if self.rooms.contains_key(room) {
            return true;
        }
        if self.rooms.len() >= self.config.max_rooms {
            let victim = self
                .rooms
                .iter()
                .filter(|(_, r)| r.seats.is_empty())
                .min_by_key(|(_, r)| r.last_active)
                .map(|(name, _)| name.clone());
            let Some(victim) = victim else {
                return false;
            };
            tracing::debug!(room = %victim, "evicting the least recently active empty room");
            self.forget_room(&victim);
        }
        self.rooms.insert(room.clone(), Room::default());
        self.directory.set_members(room, 0);
        self.metrics.set_rooms(self.rooms.len());
        true
    }

    fn forget_room(&mut self, room: &RoomName) {
        self.rooms.remove(room);
        self.store.forget(room);
        self.directory.remove(room);
        self.metrics.set_rooms(self.rooms.len());
    }

    /// Drops a room that has neither members nor messages: nothing to keep.
    fn drop_if_unused(&mut self, room: &RoomName) {
        if self.member_count(room) == 0 && self.store.last_id(room) == 0 {
            self.forget_room(room);
        }
    }

    /// Takes `session` out of `room` and tells the others (rule 12).
    fn unseat(&mut self, session: SessionId, room: &RoomName, ctx: &mut Context<Self>) {
        let Some(seat_room) = self.rooms.get_mut(room) else {
            return;
        };
        if seat_room.seats.remove(&session).is_none() {
            return;
        }
        if let Some(state) = self.sessions.get_mut(&session) {
            state.rooms.remove(room);
        }
        self.touch(room);
        let count = self.member_count(room);
        self.directory.set_members(room, count);
        if let Some(member) = self.sessions.get(&session).map(|s| s.member.clone()) {
            let presence = ServerMessage::Presence {
                room: room.as_str().to_owned(),
                event: PresenceEvent::Leave,
                member,
                count,
            };
            self.broadcast(room, &presence.to_json().into(), None);
        }
        self.drop_if_unused(room);
        self.directory_changed(ctx);
    }

    /// Removes a session from every room and forgets it.
    fn remove_session(&mut self, session: SessionId, ctx: &mut Context<Self>) {
        let Some(state) = self.sessions.get(&session) else {
            return;
        };
        let rooms: Vec<RoomName> = state.rooms.iter().cloned().collect();
        for room in &rooms {
            self.unseat(session, room, ctx);
        }
        self.sessions.remove(&session);
        self.watchers.remove(&session);
        if self.shutting_down && self.sessions.is_empty() {
            for drained in self.drained.drain(..) {
                let _ = drained.send(());
            }
        }
    }

    /// Closes and removes every session found slow during this handler;
    /// removing one may find others slow, so it runs to a fixed point.
    fn reap_slow_consumers(&mut self, ctx: &mut Context<Self>) {
        while let Some(session) = self.slow.pop() {
            let Some(state) = self.sessions.get(&session) else {
                continue;
            };
            tracing::info!(session = %session, "closing a slow consumer");
            state.outbox.close(CloseCode::Policy, "too slow");
            self.metrics.slow_consumer();
            self.remove_session(session, ctx);
        }
    }

    fn directory_changed(&mut self, ctx: &mut Context<Self>) {
        if self.watchers.is_empty() || self.directory_push_scheduled {
            return;
        }
        self.directory_push_scheduled = true;
        let due = self.last_directory_push.map_or(Duration::ZERO, |last| {
            (last + DIRECTORY_PUSH_INTERVAL).saturating_duration_since(Instant::now())
        });
        ctx.run_later(due, |registry, ctx| {
            registry.directory_push_scheduled = false;
            registry.last_directory_push = Some(Instant::now());
            let rooms = ServerMessage::Rooms {
                rooms: registry.directory.listing(),
            };
            let text: ByteString = rooms.to_json().into();
            let watchers: Vec<SessionId> = registry.watchers.iter().copied().collect();
            for watcher in watchers {
                if let Some(state) = registry.sessions.get(&watcher)
                    && state.outbox.push_text(text.clone()) == Err(NotQueued::Full)
                {
                    registry.slow.push(watcher);
                }
            }
            registry.reap_slow_consumers(ctx);
        });
    }

    /// Checks flood control for `session`; answers `rate_limited` when empty.
    fn take_token(&mut self, session: SessionId, reference: &Option<String>) -> bool {
        let (rate, burst) = (self.config.msg_rate, self.config.msg_burst);
        let Some(state) = self.sessions.get_mut(&session) else {
            return false;
        };
        if state.bucket.take(rate, burst) {
            return true;
        }
        self.send_error(session, ErrorCode::RateLimited, reference.clone());
        false
    }

    /// Whether `session` is in `room`; answers `not_joined` when not.
    fn check_joined(
        &mut self,
        session: SessionId,
        room: &RoomName,
        reference: &Option<String>,
    ) -> bool {
        let joined = self
            .sessions
            .get(&session)
            .is_some_and(|s| s.rooms.contains(room));
        if !joined && self.sessions.contains_key(&session) {
            self.send_error(session, ErrorCode::NotJoined, reference.clone());
        }
        joined
    }

    /// Stores a message and fans it out: `ack` to the sender first (rule 20),
    /// then one serialisation shared by every member. Answers the id.
    fn publish(&mut self, room: &RoomName, draft: Draft, sender: Option<SessionId>) -> u64 {
        let accepted = Instant::now();
        let reference = draft.reference.clone();
        let (id, text) = match self.store.append(room, draft) {
            Appended::Duplicate(id) => (id, None),
            Appended::New(message) => (
                message.id,
                Some(ByteString::from(
                    charla_protocol::server::message_event_json(message),
                )),
            ),
        };
        if let (Some(sender), Some(reference)) = (sender, reference) {
            let ack = ServerMessage::Ack {
                reference,
                room: room.as_str().to_owned(),
                id,
            };
            self.send(sender, &ack);
        }
        if let Some(text) = text {
            self.touch(room);
            self.directory.set_last_id(room, id);
            let reached = self.broadcast(room, &text, None);
            self.metrics.message_fanned_out(reached, accepted.elapsed());
        }
        id
    }
}

impl Actor for Registry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Sessions use `do_send`, which never waits; this bounds only the
        // HTTP handlers' `send`, which wait when the registry is this far behind.
        ctx.set_mailbox_capacity(REGISTRY_MAILBOX);
    }
}

impl Handler<Connect> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Connect, _ctx: &mut Context<Self>) {
        if self.shutting_down {
            msg.outbox.close(CloseCode::Away, "server shutting down");
            return;
        }
        let bucket = TokenBucket::full(self.config.msg_burst);
        self.sessions.insert(
            msg.session,
            SessionState {
                member: msg.member,
                outbox: msg.outbox,
                rooms: HashSet::new(),
                bucket,
            },
        );
    }
}

impl Handler<Disconnect> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, ctx: &mut Context<Self>) {
        self.remove_session(msg.session, ctx);
        self.reap_slow_consumers(ctx);
    }
}

impl Handler<Join> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Join, ctx: &mut Context<Self>) {
        let Join {
            session,
            room,
            after,
            reference,
        } = msg;
        let Some(state) = self.sessions.get(&session) else {
            return;
        };
        let already_joined = state.rooms.contains(&room);
        if !already_joined {
            let outbox = state.outbox.clone();
            let at_limit = state.rooms.len() >= self.config.max_rooms_per_session;
            if at_limit || !self.ensure_room(&room) {
                self.send_error(session, ErrorCode::TooManyRooms, reference);
                return;
            }
            if let Some(entry) = self.rooms.get_mut(&room) {
                entry.seats.insert(
                    session,
                    Seat {
                        outbox,
                        last_typing: None,
                    },
                );
            }
            if let Some(state) = self.sessions.get_mut(&session) {
                state.rooms.insert(room.clone());
            }
            self.touch(&room);
        }
        let (history, complete) = match after {
            Some(after) => {
                let since = self.store.since(&room, after, self.config.join_history);
                (since.messages, since.complete)
            }
            None => (self.store.recent(&room, self.config.join_history), true),
        };
        let joined = ServerMessage::Joined {
            room: room.as_str().to_owned(),
            members: self.members_of(&room),
            history,
            complete,
        };
        self.send(session, &joined);
        if !already_joined {
            let count = self.member_count(&room);
            self.directory.set_members(&room, count);
            let member = self.sessions.get(&session).map(|s| s.member.clone());
            if let Some(member) = member {
                let presence = ServerMessage::Presence {
                    room: room.as_str().to_owned(),
                    event: PresenceEvent::Join,
                    member,
                    count,
                };
                self.broadcast(&room, &presence.to_json().into(), Some(session));
            }
            self.directory_changed(ctx);
        }
        self.reap_slow_consumers(ctx);
    }
}

impl Handler<Leave> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Leave, ctx: &mut Context<Self>) {
        if !self.check_joined(msg.session, &msg.room, &msg.reference) {
            return;
        }
        self.send(
            msg.session,
            &ServerMessage::Left {
                room: msg.room.as_str().to_owned(),
            },
        );
        self.unseat(msg.session, &msg.room, ctx);
        self.reap_slow_consumers(ctx);
    }
}

impl Handler<Say> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Say, ctx: &mut Context<Self>) {
        let Say {
            session,
            room,
            text,
            reference,
        } = msg;
        if !self.check_joined(session, &room, &reference) || !self.take_token(session, &reference) {
            return;
        }
        let Some(from) = self.sessions.get(&session).map(|s| s.member.clone()) else {
            return;
        };
        let draft = Draft {
            from,
            text: text.into_string(),
            reference,
            at: unix_millis(),
        };
        self.publish(&room, draft, Some(session));
        self.reap_slow_consumers(ctx);
    }
}

impl Handler<Typing> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Typing, ctx: &mut Context<Self>) {
        if !self.check_joined(msg.session, &msg.room, &msg.reference) {
            return;
        }
        let now = Instant::now();
        let Some(seat) = self
            .rooms
            .get_mut(&msg.room)
            .and_then(|r| r.seats.get_mut(&msg.session))
        else {
            return;
        };
        if seat
            .last_typing
            .is_some_and(|last| now.duration_since(last) < TYPING_RELAY_INTERVAL)
        {
            return;
        }
        seat.last_typing = Some(now);
        let Some(member) = self.sessions.get(&msg.session).map(|s| s.member.clone()) else {
            return;
        };
        let typing = ServerMessage::Typing {
            room: msg.room.as_str().to_owned(),
            member,
        };
        self.broadcast(&msg.room, &typing.to_json().into(), Some(msg.session));
        self.reap_slow_consumers(ctx);
    }
}

impl Handler<Rename> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Rename, ctx: &mut Context<Self>) {
        if !self.sessions.contains_key(&msg.session)
            || !self.take_token(msg.session, &msg.reference)
        {
            return;
        }
        let Some(state) = self.sessions.get_mut(&msg.session) else {
            return;
        };
        state.member.name = msg.name.into_string();
        let member = state.member.clone();
        let rooms: Vec<RoomName> = state.rooms.iter().cloned().collect();
        for room in rooms {
            let presence = ServerMessage::Presence {
                room: room.as_str().to_owned(),
                event: PresenceEvent::Rename,
                member: member.clone(),
                count: self.member_count(&room),
            };
            self.broadcast(&room, &presence.to_json().into(), None);
        }
        self.reap_slow_consumers(ctx);
    }
}

impl Handler<WatchRooms> for Registry {
    type Result = ();

    fn handle(&mut self, msg: WatchRooms, ctx: &mut Context<Self>) {
        if !self.sessions.contains_key(&msg.session) {
            return;
        }
        self.watchers.insert(msg.session);
        let rooms = ServerMessage::Rooms {
            rooms: self.directory.listing(),
        };
        self.send(msg.session, &rooms);
        self.reap_slow_consumers(ctx);
    }
}

impl Handler<UnwatchRooms> for Registry {
    type Result = ();

    fn handle(&mut self, msg: UnwatchRooms, _ctx: &mut Context<Self>) {
        self.watchers.remove(&msg.session);
    }
}

impl Handler<FetchHistory> for Registry {
    type Result = MessageResult<FetchHistory>;

    fn handle(&mut self, msg: FetchHistory, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.store.page(&msg.room, msg.query))
    }
}

impl Handler<Post> for Registry {
    type Result = Result<u64, ErrorCode>;

    fn handle(&mut self, msg: Post, ctx: &mut Context<Self>) -> Self::Result {
        if !self.ensure_room(&msg.room) {
            return Err(ErrorCode::TooManyRooms);
        }
        let from = Member {
            id: API_SENDER_ID.to_owned(),
            name: msg.from.into_string(),
        };
        let draft = Draft {
            from,
            text: msg.text.into_string(),
            reference: None,
            at: unix_millis(),
        };
        let id = self.publish(&msg.room, draft, None);
        self.reap_slow_consumers(ctx);
        Ok(id)
    }
}

impl Handler<ViewRoom> for Registry {
    type Result = MessageResult<ViewRoom>;

    fn handle(&mut self, msg: ViewRoom, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(RoomView {
            members: self.members_of(&msg.room),
            history: self.store.recent(&msg.room, self.config.join_history),
        })
    }
}

impl Handler<Shutdown> for Registry {
    type Result = MessageResult<Shutdown>;

    fn handle(&mut self, _msg: Shutdown, _ctx: &mut Context<Self>) -> Self::Result {
        self.shutting_down = true;
        let (drained, receiver) = oneshot::channel();
        if self.sessions.is_empty() {
            let _ = drained.send(());
        } else {
            self.drained.push(drained);
            for state in self.sessions.values() {
                state.outbox.close(CloseCode::Away, "server shutting down");
            }
        }
        MessageResult(receiver)
    }
}

/// Milliseconds since the Unix epoch, for a message's `at`.
fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
