//! The room registry actor: the one owner of rooms, membership, presence, the
//! room directory push and the flood-control buckets, and the only caller of
//! the [`MessageStore`] (ids, history, the `ref` window).
//!
//! Being one actor makes every room's order total: a message gets its id,
//! its `ack` and its broadcast in one handler, so every member sees ids
//! ascending without gaps, `joined` precedes live messages and the `ack`
//! precedes the sender's own copy (docs/protocol.md, rules 11 and 20).
//!
//! The registry never waits on a socket: it pushes into each member's
//! bounded [`Outbox`] with `try_send`. A member whose queue is full is a slow
//! consumer: it is closed with 1008 and removed from its rooms at the end of
//! the handler that found it, while everyone else has already been served.
//! Every message reaches the registry through the one `Handler` impl below,
//! which runs the [`Command`] and then reaps: no handler can forget to.
//! A broadcast is serialised once; members receive clones of one shared
//! buffer.
//!
//! # Layout
//!
//! - [`messages`]: the message table (what can be asked of the registry).
//! - [`handlers`]: one [`Command`] impl per message, in the table's order.
//! - [`rooms`]: rooms in memory, seats, eviction at the cap.
//! - [`limits`]: what a client may cost (rooms per session, new rooms per
//!   address, flood-control tokens), `joined` pages, the history budget.
//! - [`liveness`]: a panic in a handler ends the process.
//! - [`moderation`]: kicks and bans: the bans in force, the check that
//!   keeps a banned client out of `join` and `say`, and the removal of the
//!   connections a kick or a new ban names (rules 51 and 52).
//! - [`publish`]: a message's way from staged to stored to acknowledged and
//!   broadcast (or refused), and the fences that keep a session's answers
//!   in request order meanwhile.
//! - this file: the actor's state and the steps every handler shares
//!   (send, broadcast, announce, publish, reap, directory push).

mod handlers;
mod limits;
mod liveness;
mod messages;
mod moderation;
mod publish;
mod rooms;
mod shared;

pub(crate) use liveness::exit_on_registry_panic;
pub(crate) use messages::*;
pub(crate) use shared::Shared;

use publish::{FenceId, Held, Pending, Reply};

use crate::address::ClientAddress;
use crate::bans::Bans;
use crate::bucket::TokenBucket;
use crate::config::Config;
use crate::directory::Directory;
use crate::gate::RequestGate;
use crate::metrics::Metrics;
use crate::outbox::{NotQueued, Outbox};
use crate::store::journal::Written;
use crate::store::{Draft, JoinedPage, RoomLog, Staged, Store, Submitted};
use actix::dev::MessageResponse;
use actix::prelude::*;
use actix_ws::CloseCode;
use bytestring::ByteString;
use charla_protocol::client::default_message;
use charla_protocol::{ChatMessage, ErrorCode, Member, PresenceEvent, RoomName, ServerMessage};
use rooms::{Admitted, Rooms};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Shortest time between two `rooms` pushes to watchers.
pub(crate) const DIRECTORY_PUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Shortest time between two relayed `typing` events per member and room.
pub(crate) const TYPING_RELAY_INTERVAL: Duration = Duration::from_secs(1);
/// How often the registry forgets the new-room buckets that are full.
pub(crate) const ROOM_BUCKET_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// How often the registry forgets the bans that have ended (they stopped
/// applying at their end already: every check reads the clock).
pub(crate) const BAN_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// A `joined` carries at most this share of `CHARLA_OUTBOX_BYTES` of
/// history (an eighth: 128 KiB by default), so a join can never fill a
/// connection's queue by itself, however long the history asked for.
pub(crate) const JOINED_PAGE_SHARE: usize = 8;

/// Requests an HTTP handler may have queued at the registry before its
/// `send` waits for room.
pub(crate) const REGISTRY_MAILBOX: usize = 65_536;

/// A request the registry answers. Every one is handled by the single
/// `Handler` impl of this module, which reaps the slow consumers the
/// command found once it has run.
pub(crate) trait Command: Message + Sized {
    type Reply: MessageResponse<Registry, Self>;

    fn run(self, registry: &mut Registry, ctx: &mut Context<Registry>) -> Self::Reply;

    /// The session whose request this is, counted among its requests
    /// waiting here (`gate::MAX_WAITING_REQUESTS`); `None` for everything else.
    fn requester(&self) -> Option<SessionId> {
        None
    }
}

impl<M: Command> Handler<M> for Registry {
    type Result = M::Reply;

    fn handle(&mut self, msg: M, ctx: &mut Context<Self>) -> M::Reply {
        liveness::IN_REGISTRY.set(true);
        if let Some(state) = msg.requester().and_then(|s| self.sessions.get(&s)) {
            state.gate.handled();
        }
        let reply = msg.run(self, ctx);
        self.reap_slow_consumers(ctx);
        self.keep_history_within_budget();
        liveness::IN_REGISTRY.set(false);
        reply
    }
}

/// A session as the registry knows it.
struct SessionState {
    member: Member,
    outbox: Outbox,
    rooms: HashSet<RoomName>,
    bucket: TokenBucket,
    /// Answers held back behind this session's messages that are still
    /// being stored, so it hears about its requests in the order it made
    /// them (docs/protocol.md, rule 36): one fence per unsettled `say`,
    /// then the answers that came after it.
    held: VecDeque<Held>,
    /// Requests of this session sent and not yet handled (the session
    /// counts in, the registry's `Handler` out).
    gate: Arc<RequestGate>,
    /// Where the session connects from: new rooms are counted per address.
    address: ClientAddress,
    /// Whether it sent `identify` (once per connection, rule 49).
    identified: bool,
}

impl SessionState {
    fn new(connect: Connect, bucket: TokenBucket) -> SessionState {
        SessionState {
            member: connect.member,
            outbox: connect.outbox,
            rooms: HashSet::new(),
            bucket,
            held: VecDeque::new(),
            gate: connect.gate,
            address: connect.address,
            identified: false,
        }
    }
}

/// The registry actor.
pub(crate) struct Registry {
    config: Arc<Config>,
    store: Store,
    directory: Arc<Directory>,
    metrics: Arc<Metrics>,
    sessions: HashMap<SessionId, SessionState>,
    rooms: Rooms,
    watchers: HashSet<SessionId>,
    directory_push_scheduled: bool,
    last_directory_push: Option<Instant>,
    /// Sessions whose outbox was full during this handler: closed and removed
    /// at its end, once the others have been served.
    slow: Vec<SessionId>,
    /// Messages handed to the engine and not yet reported on, in the order
    /// they were submitted (the order [`Written`] reports them in).
    pending: VecDeque<Pending>,
    /// Bumped when the engine fails a batch: jobs of older generations
    /// still queued are refused by the writer, since their ids follow one
    /// that was not stored.
    generation: u64,
    /// The last [`FenceId`] handed out.
    next_fence: FenceId,
    /// Sessions with answers held behind a fence (see [`publish`]).
    fenced: HashSet<SessionId>,
    /// The Redis engine's state, when rooms are shared with other nodes.
    shared: Option<Shared>,
    /// History bytes up to which the memory budget is not looked at again,
    /// after a look found no idle room to move out (0: look when over it).
    budget_recheck_above: usize,
    /// New-room buckets per client address (`CHARLA_NEW_ROOMS_PER_MINUTE`);
    /// an address whose bucket is full again is forgotten.
    new_rooms: HashMap<ClientAddress, TokenBucket>,
    /// The bans in force (rule 52); always empty with Redis, which has no
    /// moderation yet.
    bans: Bans,
    shutting_down: bool,
    drained: Vec<oneshot::Sender<()>>,
}

impl Registry {
    pub(crate) fn new(
        config: Arc<Config>,
        store: Store,
        directory: Arc<Directory>,
        metrics: Arc<Metrics>,
        shared: Option<Shared>,
    ) -> Registry {
        Registry {
            rooms: Rooms::new(config.max_rooms),
            config,
            store,
            directory,
            metrics,
            sessions: HashMap::new(),
            watchers: HashSet::new(),
            directory_push_scheduled: false,
            last_directory_push: None,
            slow: Vec::new(),
            pending: VecDeque::new(),
            generation: 0,
            next_fence: 0,
            fenced: HashSet::new(),
            shared,
            new_rooms: HashMap::new(),
            bans: Bans::default(),
            budget_recheck_above: 0,
            shutting_down: false,
            drained: Vec::new(),
        }
    }

    /// The registry with `bans` in force from its first message (the bans
    /// the database kept, read at start).
    pub(crate) fn with_bans(mut self, bans: Bans) -> Registry {
        self.bans = bans;
        self
    }

    /// Serialises `message` and queues it for one session, behind the
    /// session's answers still in progress if it has any.
    fn send(&mut self, session: SessionId, message: &ServerMessage) {
        self.deliver(session, message, None);
    }

    /// As [`Registry::send`]; with `at`, the answer takes that fence's place.
    fn deliver(&mut self, session: SessionId, message: &ServerMessage, at: Option<FenceId>) {
        if let Some(fence) = at {
            self.fill(session, fence, vec![message.to_json().into()]);
            return;
        }
        let Some(state) = self.sessions.get_mut(&session) else {
            return;
        };
        if state.held.is_empty() {
            if state.outbox.send(message) == Err(NotQueued::Full) {
                self.slow.push(session);
            }
        } else {
            state.held.push_back(Held::Frame(message.to_json().into()));
        }
    }

    fn send_error(&mut self, session: SessionId, code: ErrorCode, reference: Option<String>) {
        self.deliver_error(session, code, reference, None);
    }

    /// Answers a refusal in words of its own (and, for `banned`, until
    /// when), in request order like any answer.
    fn send_refusal(
        &mut self,
        session: SessionId,
        code: ErrorCode,
        message: String,
        reference: Option<String>,
        until: Option<u64>,
    ) {
        self.metrics.error(code);
        let error = ServerMessage::Error {
            code,
            message,
            reference,
            until,
        };
        self.deliver(session, &error, None);
    }

    /// Counts an error and answers it, as [`Registry::deliver`] does.
    fn deliver_error(
        &mut self,
        session: SessionId,
        code: ErrorCode,
        reference: Option<String>,
        at: Option<FenceId>,
    ) {
        self.metrics.error(code);
        let error = ServerMessage::Error {
            code,
            message: default_message(code),
            reference,
            until: None,
        };
        self.deliver(session, &error, at);
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

    /// As [`Registry::broadcast`], skipping every session in `skip`.
    fn broadcast_skipping(
        &mut self,
        room: &RoomName,
        text: &ByteString,
        skip: &HashSet<SessionId>,
    ) -> usize {
        let Some(room) = self.rooms.get(room) else {
            return 0;
        };
        let mut reached = 0;
        for (id, seat) in &room.seats {
            if skip.contains(id) {
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

    /// Tells `room`'s members (but `except`) that `member` joined, left or
    /// was renamed, with the room's member count after the change.
    fn announce(
        &mut self,
        room: &RoomName,
        event: PresenceEvent,
        member: Member,
        except: Option<SessionId>,
    ) {
        let presence = ServerMessage::Presence {
            room: room.as_str().to_owned(),
            event,
            member,
            count: self.room_count(room),
        };
        self.broadcast(room, &presence.to_json().into(), except);
    }

    /// Answers from `room`'s log in memory; `None` when the log is only on
    /// disk. A room without a log in the memory engine has no history.
    fn in_memory<T: Default>(
        &self,
        room: &RoomName,
        read: impl FnOnce(&RoomLog) -> T,
    ) -> Option<T> {
        match self.store.loaded(room) {
            Some(log) => Some(read(log)),
            None if self.store.is_durable() => None,
            None => Some(T::default()),
        }
    }

    fn member(&self, session: SessionId) -> Option<Member> {
        self.sessions.get(&session).map(|s| s.member.clone())
    }

    fn members_of(&self, room: &RoomName) -> Vec<Member> {
        if self.shared.is_some() {
            return self.shared_members(room).unwrap_or_default();
        }
        let Some(room) = self.rooms.get(room) else {
            return Vec::new();
        };
        let mut members: Vec<Member> = room
            .seats
            .keys()
            .filter_map(|id| self.member(*id))
            .collect();
        members.sort_unstable_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        members
    }

    /// Makes sure `room` is in memory (rule 22); false when the cap is
    /// reached and no room can go.
    fn ensure_room(&mut self, room: &RoomName) -> bool {
        let store = &self.store;
        let evictable = |name: &RoomName| store.loaded(name).is_none_or(|log| !log.has_pending());
        match self.rooms.admit(room, evictable) {
            Admitted::Ready => {}
            Admitted::Evicted(victim) => {
                tracing::debug!(room = %victim, "evicted the least recently active empty room");
                self.forget_evicted(&victim);
            }
            Admitted::Full => return false,
        }
        if self.shared.is_none() {
            self.directory
                .set_members(room, self.rooms.member_count(room));
        }
        self.metrics.set_rooms(self.rooms.len());
        true
    }

    /// What goes with a room evicted from memory (rule 22): its log (with
    /// SQLite or Redis it stays stored), its view, its directory entry.
    fn forget_evicted(&mut self, victim: &RoomName) {
        self.store.forget(victim);
        self.forget_view(victim);
        if self.shared.is_none() {
            self.directory.remove(victim);
        }
    }

    /// Drops a room that has neither members nor messages: nothing to keep.
    /// With Redis, a room without members here leaves memory: Redis keeps it.
    fn drop_if_unused(&mut self, room: &RoomName) {
        if self.shared.is_some() {
            if self.rooms.member_count(room) == 0 {
                self.rooms.remove(room);
                self.store.forget(room);
                self.forget_view(room);
                self.metrics.set_rooms(self.rooms.len());
            }
            return;
        }
        let no_messages = self.store.loaded(room).is_none_or(|log| log.is_empty());
        if self.rooms.member_count(room) == 0 && no_messages {
            self.rooms.remove(room);
            self.store.forget(room);
            self.directory.remove(room);
            self.metrics.set_rooms(self.rooms.len());
        }
    }

    /// Takes `session` out of `room` and tells the others (rule 12).
    fn unseat(&mut self, session: SessionId, room: &RoomName, ctx: &mut Context<Self>) {
        self.unseat_telling_all_but(session, room, &HashSet::new(), ctx);
    }

    /// As [`Registry::unseat`], but the members in `leaving` (about to be
    /// unseated too) are not told.
    fn unseat_telling_all_but(
        &mut self,
        session: SessionId,
        room: &RoomName,
        leaving: &HashSet<SessionId>,
        ctx: &mut Context<Self>,
    ) {
        if !self.rooms.unseat(room, session) {
            return;
        }
        if let Some(state) = self.sessions.get_mut(&session) {
            state.rooms.remove(room);
        }
        self.rooms.touch(room);
        // The room may have gone idle: one the memory budget can move out.
        self.budget_recheck_above = 0;
        if let Some(member) = self.member(session)
            && self.unseat_shared(room, session)
        {
            self.directory.set_members(room, self.room_count(room));
            let presence = ServerMessage::Presence {
                room: room.as_str().to_owned(),
                event: PresenceEvent::Leave,
                member,
                count: self.room_count(room),
            };
            self.broadcast_skipping(room, &presence.to_json().into(), leaving);
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
        self.fenced.remove(&session);
        if self.shutting_down && self.sessions.is_empty() {
            for drained in self.drained.drain(..) {
                let _ = drained.send(());
            }
        }
    }

    /// Closes and removes every session found slow since the last call;
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

    /// Schedules a `rooms` push to the watchers, at most one per
    /// [`DIRECTORY_PUSH_INTERVAL`].
    fn directory_changed(&mut self, ctx: &mut Context<Self>) {
        if self.watchers.is_empty() || self.directory_push_scheduled {
            return;
        }
        self.directory_push_scheduled = true;
        let due = self.last_directory_push.map_or(Duration::ZERO, |last| {
            (last + DIRECTORY_PUSH_INTERVAL).saturating_duration_since(Instant::now())
        });
        ctx.run_later(due, |registry, ctx| {
            registry.push_directory();
            registry.reap_slow_consumers(ctx);
        });
    }

    fn push_directory(&mut self) {
        self.directory_push_scheduled = false;
        self.last_directory_push = Some(Instant::now());
        let rooms = ServerMessage::Rooms {
            rooms: self.directory.listing(),
        };
        let text: ByteString = rooms.to_json().into();
        for watcher in &self.watchers {
            if let Some(state) = self.sessions.get(watcher)
                && state.outbox.push_text(text.clone()) == Err(NotQueued::Full)
            {
                self.slow.push(*watcher);
            }
        }
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
}

impl Actor for Registry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Sessions use `do_send`, which never waits; this bounds only the
        // HTTP handlers' `send`, which wait when the registry is this far behind.
        ctx.set_mailbox_capacity(REGISTRY_MAILBOX);
        ctx.run_interval(ROOM_BUCKET_SWEEP_INTERVAL, |registry, _ctx| {
            registry.forget_full_room_buckets();
        });
        ctx.run_interval(BAN_SWEEP_INTERVAL, |registry, _ctx| {
            registry.bans.forget_expired(crate::bans::now_millis());
        });
        self.start_shared(ctx);
    }
}
