//! The registry on the Redis engine ([`crate::cluster`]): rooms shared with
//! the other nodes.
//!
//! For every room with members on this node the registry keeps a *view*:
//! the room's log (a window on Redis's history) and its members on every
//! node. A view is read from Redis with a snapshot when the room is first
//! joined here; events newer than the snapshot then keep it current.
//! Changes made here (a join, a leave, a rename) are applied to the view
//! and announced to this node's members at once, and published for the
//! others; messages, whose ids only Redis assigns, reach every node's
//! members, this one's included, through their event.
//!
//! A `join` of a room not yet read waits behind a fence (the session's
//! later answers keep their order, rule 36) until the snapshot arrives.
//! A `say` waits behind a fence for its script's answer (the `ack`); the
//! sender's own copy of the message, should its event arrive first, waits
//! behind the same fence, so the `ack` still comes first (rule 20).
//!
//! When events may have been missed (the subscription dropped, or their
//! numbers jump), the registry *resyncs*: it reads the directory and every
//! view again, delivers the messages its members missed, announces the
//! membership changes, and seats again this node's members that Redis lost.

use super::rooms::Seat;
use super::*;
use crate::cluster::events::{Body, Event, Subscribed};
use crate::cluster::link::Link;
use crate::cluster::{Beat, Cluster, DirectorySnapshot, HEARTBEAT, NODE_TIMEOUT, Snapshot};
use crate::store::Since;
use futures_util::FutureExt;
use redis::RedisResult;
use std::sync::atomic::{AtomicBool, Ordering};

/// The outcome of one script call, reported in call order.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) enum Outcome {
    Said(RedisResult<(u64, bool)>),
    Loaded(RoomName, RedisResult<Snapshot>),
    Directory(RedisResult<DirectorySnapshot>),
    Beat(RedisResult<Beat>),
    Done(RedisResult<()>),
}

/// A `join` waiting for its room's snapshot.
struct Waiting {
    session: SessionId,
    after: Option<u64>,
    epoch: Option<String>,
    fence: Option<FenceId>,
    /// Whether the session was not in the room before this `join`.
    newly: bool,
}

/// A room as this node sees it.
#[derive(Default)]
struct View {
    /// Members on every node, by id.
    members: HashMap<String, Member>,
    /// The event number the last snapshot reflects.
    seq: u64,
    /// Whether the log is in the store (a snapshot has arrived).
    ready: bool,
    /// Whether a snapshot is on its way.
    reading: bool,
    waiting: Vec<Waiting>,
    /// Events that came while a snapshot was on its way.
    buffered: Vec<Event>,
}

/// A `say` (or post) whose script has not answered yet.
struct Saying {
    room: RoomName,
    reply: Reply,
    fence: Option<FenceId>,
}

/// The registry's state on the Redis engine.
pub(crate) struct Shared {
    cluster: Cluster,
    link: Option<Link<Outcome>>,
    views: HashMap<RoomName, View>,
    saying: VecDeque<Saying>,
    /// Number of the last event applied; `None` until the first directory
    /// read, and again during a resync.
    last_seq: Option<u64>,
    /// Events held while the directory is being read again.
    syncing: Option<Vec<Event>>,
    /// A read failed: resync at the next heartbeat.
    stale: bool,
    subscribed: bool,
    failing: bool,
    /// Since when Redis has answered without a break; a node reaps others
    /// only after [`NODE_TIMEOUT`] of that, so that after an outage every
    /// node has had time to beat again.
    steady_since: Option<Instant>,
    health: Arc<AtomicBool>,
}

impl Shared {
    /// Tells the other nodes that `member` is typing in `room`.
    pub(super) fn typing(&self, room: &RoomName, member: &Member) {
        self.call(self.cluster.typing(room, member).map(Outcome::Done));
    }

    pub(crate) fn new(cluster: Cluster, health: Arc<AtomicBool>) -> Shared {
        health.store(false, Ordering::Release);
        Shared {
            cluster,
            link: None,
            views: HashMap::new(),
            saying: VecDeque::new(),
            last_seq: None,
            syncing: None,
            stale: false,
            subscribed: false,
            failing: false,
            steady_since: None,
            health,
        }
    }

    fn call(&self, call: impl Future<Output = Outcome> + Send + 'static) {
        if let Some(link) = &self.link {
            link.call(call.boxed());
        }
    }

    /// Records whether Redis answers; health is a subscription plus answers.
    fn answered(&mut self, ok: bool) {
        self.failing = !ok;
        self.update_health();
    }

    fn update_health(&mut self) {
        let healthy = self.subscribed && !self.failing;
        if !healthy {
            self.steady_since = None;
        } else if self.steady_since.is_none() {
            self.steady_since = Some(Instant::now());
        }
        self.health.store(healthy, Ordering::Release);
    }
}

/// The message as the `say` script stores it, before Redis adds its id.
#[derive(serde::Serialize)]
struct Unnumbered<'a> {
    room: &'a str,
    from: &'a Member,
    text: &'a str,
    at: u64,
}

/// The session a member id of this node names.
fn session_of(member: &Member) -> Option<SessionId> {
    u64::from_str_radix(&member.id, 16).ok().map(SessionId)
}

impl Registry {
    /// Starts the pipeline, the subscription and the heartbeat.
    pub(super) fn start_shared(&mut self, ctx: &mut Context<Self>) {
        let Some(shared) = &mut self.shared else {
            return;
        };
        let address = ctx.address();
        shared.link = Some(Link::start(move |outcome| address.do_send(outcome)));
        crate::cluster::events::start(
            shared.cluster.client(),
            ctx.address().recipient(),
            ctx.address().recipient(),
        );
        ctx.run_interval(HEARTBEAT, |registry, ctx| registry.beat(ctx));
        self.beat(ctx);
    }

    fn beat(&mut self, ctx: &mut Context<Self>) {
        let Some(shared) = &mut self.shared else {
            return;
        };
        let reap = shared
            .steady_since
            .is_some_and(|since| since.elapsed() >= NODE_TIMEOUT);
        let beat = shared.cluster.heartbeat(reap);
        shared.call(beat.map(Outcome::Beat));
        if shared.stale && shared.subscribed && shared.syncing.is_none() {
            self.resync(ctx);
        }
    }

    /// Members of `room` on every node (Redis engine) or here.
    pub(super) fn room_count(&self, room: &RoomName) -> usize {
        match &self.shared {
            Some(shared) => shared.views.get(room).map_or(0, |v| v.members.len()),
            None => self.rooms.member_count(room),
        }
    }

    /// `room`'s members on every node, by name; `None` when this node has
    /// no view of it (Redis engine only).
    pub(super) fn shared_members(&self, room: &RoomName) -> Option<Vec<Member>> {
        let view = self.shared.as_ref()?.views.get(room).filter(|v| v.ready)?;
        let mut members: Vec<Member> = view.members.values().cloned().collect();
        members.sort_unstable_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        Some(members)
    }

    /// A `join` on the Redis engine: answered at once from the view, or
    /// behind a fence once the room's snapshot arrives.
    pub(super) fn join_shared(&mut self, join: Join) {
        let Join {
            session,
            room,
            after,
            epoch,
            reference,
        } = join;
        let Some(state) = self.sessions.get(&session) else {
            return;
        };
        let newly = !state.rooms.contains(&room);
        if newly {
            let outbox = state.outbox.clone();
            let at_limit = state.rooms.len() >= self.config.max_rooms_per_session;
            if at_limit || !self.ensure_room(&room) {
                self.send_error(session, ErrorCode::TooManyRooms, reference);
                return;
            }
            self.rooms.seat(&room, session, Seat::new(outbox));
            if let Some(state) = self.sessions.get_mut(&session) {
                state.rooms.insert(room.clone());
            }
            self.rooms.touch(&room);
        }
        let mut waiting = Waiting {
            session,
            after,
            epoch,
            fence: None,
            newly,
        };
        let ready = self
            .shared
            .as_ref()
            .and_then(|s| s.views.get(&room))
            .is_some_and(|v| v.ready && !v.reading);
        if ready {
            self.answer_joins(&room, vec![waiting]);
            return;
        }
        waiting.fence = self.fence(session);
        let Some(shared) = &mut self.shared else {
            return;
        };
        let view = shared.views.entry(room.clone()).or_default();
        view.waiting.push(waiting);
        if !view.reading {
            view.reading = true;
            let load = shared.cluster.load(&room, self.config.history);
            shared.call(load.map(move |snapshot| Outcome::Loaded(room, snapshot)));
        }
    }

    /// Sends `joined` to each of `waiting` from the view; newcomers are put
    /// in the view first (so every joiner's `joined` lists the others), then
    /// announced to the members who were there before, and published for
    /// the other nodes. Answers the newcomers' sessions.
    fn answer_joins(&mut self, room: &RoomName, waiting: Vec<Waiting>) -> HashSet<SessionId> {
        let mut newcomers = Vec::new();
        for join in &waiting {
            let seated = self
                .sessions
                .get(&join.session)
                .is_some_and(|s| s.rooms.contains(room));
            if join.newly
                && seated
                && let Some(member) = self.member(join.session)
            {
                newcomers.push((join.session, member));
            }
        }
        if let Some(view) = self.shared.as_mut().and_then(|s| s.views.get_mut(room)) {
            for (_, member) in &newcomers {
                view.members.insert(member.id.clone(), member.clone());
            }
        }
        let join_history = self.config.join_history;
        let members = self.shared_members(room).unwrap_or_default();
        for join in waiting {
            let Some(log) = self.store.loaded(room) else {
                if let Some(fence) = join.fence {
                    self.fill(join.session, fence, Vec::new());
                }
                continue;
            };
            let Since { messages, complete } = match join.after {
                Some(after) => log.since(after, join.epoch.as_deref(), join_history),
                None => Since {
                    messages: log.recent(join_history),
                    complete: true,
                },
            };
            let joined = ServerMessage::Joined {
                room: room.as_str().to_owned(),
                epoch: log.epoch.to_string(),
                members: members.clone(),
                history: messages,
                complete,
            };
            self.deliver(join.session, &joined, join.fence);
        }
        let sessions: HashSet<SessionId> = newcomers.iter().map(|(session, _)| *session).collect();
        if !newcomers.is_empty() {
            self.directory.set_members(room, self.room_count(room));
        }
        for (_, member) in newcomers {
            if let Some(shared) = &self.shared {
                shared.call(shared.cluster.seat(room, &member, false).map(Outcome::Done));
            }
            let presence = ServerMessage::Presence {
                room: room.as_str().to_owned(),
                event: PresenceEvent::Join,
                member,
                count: self.room_count(room),
            };
            self.broadcast_skipping(room, &presence.to_json().into(), &sessions);
        }
        sessions
    }

    /// A member of this node left `room`: tells Redis; answers whether the
    /// view had it (and so whether to announce it).
    pub(super) fn unseat_shared(&mut self, room: &RoomName, member: &Member) -> bool {
        let Some(shared) = &mut self.shared else {
            return true;
        };
        let known = shared
            .views
            .get_mut(room)
            .is_some_and(|view| view.members.remove(&member.id).is_some());
        if known {
            shared.call(shared.cluster.unseat(room, &member.id).map(Outcome::Done));
        }
        known
    }

    /// A member of this node was renamed: updates the views, tells Redis.
    pub(super) fn rename_shared(&mut self, rooms: &[RoomName], member: &Member) {
        let Some(shared) = &mut self.shared else {
            return;
        };
        for room in rooms {
            if let Some(known) = shared
                .views
                .get_mut(room)
                .and_then(|view| view.members.get_mut(&member.id))
            {
                known.name.clone_from(&member.name);
                shared.call(shared.cluster.seat(room, member, true).map(Outcome::Done));
            }
        }
    }

    /// Hands a message to the `say` script; `reply` hears the outcome.
    pub(super) fn say_shared(&mut self, room: &RoomName, draft: Draft, reply: Reply) {
        let body = Unnumbered {
            room: room.as_str(),
            from: &draft.from,
            text: &draft.text,
            at: draft.at,
        };
        let body = serde_json::to_string(&body).expect("messages always serialise");
        let fence = match &reply {
            Reply::Session { session, .. } => self.fence(*session),
            Reply::Http(_) => None,
        };
        let Some(shared) = &mut self.shared else {
            return;
        };
        let said = shared.cluster.say(room, body, draft.reference.as_deref());
        shared.call(said.map(Outcome::Said));
        shared.saying.push_back(Saying {
            room: room.clone(),
            reply,
            fence,
        });
    }

    /// A room without members here leaves memory (its view with it).
    pub(super) fn forget_view(&mut self, room: &RoomName) {
        if let Some(shared) = &mut self.shared {
            shared.views.remove(room);
        }
    }

    /// Reads the directory and every view again: events may have been
    /// missed.
    fn resync(&mut self, _ctx: &mut Context<Self>) {
        let history = self.config.history;
        let Some(shared) = &mut self.shared else {
            return;
        };
        if shared.syncing.is_some() {
            return;
        }
        shared.stale = false;
        shared.syncing = Some(Vec::new());
        shared.last_seq = None;
        shared.call(shared.cluster.directory().map(Outcome::Directory));
        let rooms: Vec<RoomName> = shared
            .views
            .iter()
            .filter(|(_, view)| !view.reading)
            .map(|(room, _)| room.clone())
            .collect();
        for room in rooms {
            if let Some(view) = shared.views.get_mut(&room) {
                view.reading = true;
            }
            let load = shared.cluster.load(&room, history);
            shared.call(load.map(move |snapshot| Outcome::Loaded(room, snapshot)));
        }
    }

    /// An event from the subscription: applied in order; a gap in the
    /// numbers means events were missed, and the registry resyncs.
    fn on_event(&mut self, event: Event, ctx: &mut Context<Self>) {
        let Some(shared) = &mut self.shared else {
            return;
        };
        if let Some(held) = &mut shared.syncing {
            held.push(event);
            return;
        }
        match shared.last_seq {
            Some(last) if event.seq == last + 1 => shared.last_seq = Some(event.seq),
            _ => {
                tracing::warn!(
                    seq = event.seq,
                    "events were missed; reading the rooms again"
                );
                self.resync(ctx);
                if let Some(Some(held)) = self.shared.as_mut().map(|s| s.syncing.as_mut()) {
                    held.push(event);
                }
                return;
            }
        }
        self.apply(event, ctx);
    }

    /// Applies one event in order to the view of its room, or to the
    /// directory when this node has no view of it.
    fn apply(&mut self, event: Event, ctx: &mut Context<Self>) {
        let Some(shared) = &mut self.shared else {
            return;
        };
        let Ok(room) = RoomName::parse(event.body.room()) else {
            return;
        };
        let ours = event.node == shared.cluster.node();
        let Some(view) = shared.views.get_mut(&room) else {
            match &event.body {
                Body::Message { message } => self.directory.set_last_id(&room, message.id),
                Body::Join { count, .. }
                | Body::Rename { count, .. }
                | Body::Leave { count, .. } => {
                    self.directory.set_members(&room, *count);
                }
                Body::Typing { .. } => return,
            }
            self.directory_changed(ctx);
            return;
        };
        if view.reading {
            view.buffered.push(event);
            return;
        }
        if event.seq <= view.seq {
            return;
        }
        match event.body {
            Body::Message { message } => self.deliver_shared(&room, message, ctx),
            Body::Join { member, .. } | Body::Rename { member, .. } if !ours => {
                let event = match view.members.insert(member.id.clone(), member.clone()) {
                    None => PresenceEvent::Join,
                    Some(old) if old.name != member.name => PresenceEvent::Rename,
                    Some(_) => return,
                };
                self.directory.set_members(&room, self.room_count(&room));
                self.announce(&room, event, member, None);
                self.directory_changed(ctx);
            }
            Body::Leave { member, .. } if !ours => {
                if view.members.remove(&member.id).is_some() {
                    self.directory.set_members(&room, self.room_count(&room));
                    self.announce(&room, PresenceEvent::Leave, member, None);
                    self.directory_changed(ctx);
                }
            }
            Body::Typing { member, .. } if !ours => {
                let typing = ServerMessage::Typing {
                    room: room.as_str().to_owned(),
                    member,
                };
                self.broadcast(&room, &typing.to_json().into(), None);
            }
            Body::Join { .. } | Body::Rename { .. } | Body::Leave { .. } | Body::Typing { .. } => {}
        }
    }

    /// Delivers a stored message to this node's members of `room`, once and
    /// in id order; a gap means a message was missed: the room is read again.
    fn deliver_shared(&mut self, room: &RoomName, message: ChatMessage, ctx: &mut Context<Self>) {
        let last = self.store.loaded(room).map_or(0, RoomLog::last_id);
        if message.id <= last {
            return;
        }
        if message.id > last + 1 {
            tracing::warn!(room = %room, "a message was missed; reading the room again");
            self.stale_view(room);
            self.resync(ctx);
            return;
        }
        let id = message.id;
        let sender = session_of(&message.from);
        let text = ByteString::from(charla_protocol::server::message_event_json(&message));
        self.store.append(room, message);
        self.rooms.touch(room);
        self.directory.set_last_id(room, id);
        // The sender's own copy waits behind its fence if its `ack` has not
        // gone out yet (rule 20).
        let held_sender = sender.filter(|session| {
            self.rooms
                .get(room)
                .is_some_and(|r| r.seats.contains_key(session))
                && self
                    .sessions
                    .get(session)
                    .is_some_and(|s| !s.held.is_empty())
        });
        if let Some(session) = held_sender
            && let Some(state) = self.sessions.get_mut(&session)
        {
            // Right behind the newest fence, so that whichever fence is its
            // `say`'s, the `ack` goes out first.
            let place = state
                .held
                .iter()
                .rposition(|held| matches!(held, Held::Fence(_)))
                .map_or(state.held.len(), |fence| fence + 1);
            state.held.insert(place, Held::Frame(text.clone()));
        }
        let reached = self.broadcast(room, &text, held_sender);
        self.metrics
            .message_delivered(reached + usize::from(held_sender.is_some()));
    }

    /// Marks a view as needing a new snapshot (the resync reads it).
    fn stale_view(&mut self, room: &RoomName) {
        if let Some(view) = self.shared.as_mut().and_then(|s| s.views.get_mut(room)) {
            view.reading = false;
        }
    }

    /// A room's snapshot: the view is (re)built, its members hear what they
    /// missed, waiting joins are answered, buffered events applied.
    fn loaded(&mut self, room: RoomName, snapshot: RedisResult<Snapshot>, ctx: &mut Context<Self>) {
        let Some(shared) = &mut self.shared else {
            return;
        };
        shared.answered(snapshot.is_ok());
        if snapshot.is_err() {
            shared.stale = true;
        }
        let Some(view) = shared.views.get_mut(&room) else {
            return;
        };
        view.reading = false;
        let snapshot = match snapshot {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::error!(error = %error, room = %room, "cannot read a room from Redis");
                let waiting = std::mem::take(&mut view.waiting);
                view.buffered.clear();
                for waiting in waiting {
                    if let Some(fence) = waiting.fence {
                        self.deliver_error(
                            waiting.session,
                            ErrorCode::Unavailable,
                            None,
                            Some(fence),
                        );
                    }
                    if waiting.newly {
                        self.rooms.unseat(&room, waiting.session);
                        if let Some(state) = self.sessions.get_mut(&waiting.session) {
                            state.rooms.remove(&room);
                        }
                    }
                }
                if self.rooms.member_count(&room) == 0 {
                    self.drop_if_unused(&room);
                }
                return;
            }
        };
        let waiting = std::mem::take(&mut view.waiting);
        let buffered = std::mem::take(&mut view.buffered);
        let was_ready = view.ready;
        view.ready = true;
        view.seq = snapshot.seq;
        let old_members = std::mem::take(&mut view.members);
        view.members = snapshot
            .members
            .into_iter()
            .map(|member| (member.id.clone(), member))
            .collect();
        let waiting_sessions: HashSet<SessionId> = waiting.iter().map(|w| w.session).collect();
        // Members of this node that Redis lost (an outage, or this node was
        // given up for dead) are seated again.
        let local: Vec<SessionId> = self
            .rooms
            .get(&room)
            .map(|r| r.seats.keys().copied().collect())
            .unwrap_or_default();
        let mut lost = Vec::new();
        for session in local {
            if waiting_sessions.contains(&session) {
                continue;
            }
            if let Some(member) = self.sessions.get(&session).map(|s| s.member.clone())
                && !view.members.contains_key(&member.id)
            {
                view.members.insert(member.id.clone(), member.clone());
                lost.push(member);
            }
        }
        for member in &lost {
            shared.call(shared.cluster.seat(&room, member, false).map(Outcome::Done));
        }
        // The log: kept and extended when it is the same sequence; what this
        // node's members missed goes to them once the joiners have their
        // `joined` (which already holds it).
        let same = self
            .store
            .loaded(&room)
            .is_some_and(|log| *log.epoch == *snapshot.epoch && log.last_id() <= snapshot.last_id);
        let mut missed = Vec::new();
        if same {
            for message in snapshot.messages {
                let id = message.id;
                let text = charla_protocol::server::message_event_json(&message);
                if self.store.append(&room, message) {
                    missed.push((id, ByteString::from(text)));
                }
            }
        } else {
            let log = RoomLog::new(
                Arc::from(snapshot.epoch),
                snapshot.last_id,
                snapshot.messages,
                Vec::new(),
            );
            self.store.install(&room, log);
        }
        let last_id = self.store.loaded(&room).map_or(0, RoomLog::last_id);
        self.directory.set_last_id(&room, last_id);
        self.directory.set_members(&room, self.room_count(&room));
        let newcomers = self.answer_joins(&room, waiting);
        for (_, text) in &missed {
            let reached = self.broadcast_skipping(&room, text, &newcomers);
            self.metrics.message_delivered(reached);
        }
        if was_ready {
            let now: HashMap<String, Member> = self
                .shared
                .as_ref()
                .and_then(|s| s.views.get(&room))
                .map(|v| v.members.clone())
                .unwrap_or_default();
            let mut changes = Vec::new();
            for (id, member) in &old_members {
                if !now.contains_key(id) {
                    changes.push((PresenceEvent::Leave, member.clone()));
                }
            }
            for (id, member) in &now {
                match old_members.get(id) {
                    None if !newcomers.iter().any(|s| s.to_string() == *id) => {
                        changes.push((PresenceEvent::Join, member.clone()));
                    }
                    Some(old) if old.name != member.name => {
                        changes.push((PresenceEvent::Rename, member.clone()));
                    }
                    _ => {}
                }
            }
            let count = self.room_count(&room);
            for (event, member) in changes {
                let presence = ServerMessage::Presence {
                    room: room.as_str().to_owned(),
                    event,
                    member,
                    count,
                };
                self.broadcast_skipping(&room, &presence.to_json().into(), &newcomers);
            }
        }
        for event in buffered {
            if event.seq > snapshot.seq {
                self.apply(event, ctx);
            }
        }
        self.directory_changed(ctx);
    }

    fn directory_read(&mut self, read: RedisResult<DirectorySnapshot>, ctx: &mut Context<Self>) {
        let Some(shared) = &mut self.shared else {
            return;
        };
        let held = shared.syncing.take().unwrap_or_default();
        let snapshot = match read {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::error!(error = %error, "cannot read the room directory from Redis");
                shared.answered(false);
                shared.stale = true;
                return;
            }
        };
        shared.answered(true);
        shared.last_seq = Some(snapshot.seq);
        let rooms = snapshot
            .rooms
            .into_iter()
            .filter_map(|(name, members, last_id)| {
                RoomName::parse(&name)
                    .ok()
                    .map(|room| (room, members, last_id))
            });
        self.directory.replace(rooms);
        for event in held {
            if event.seq > snapshot.seq {
                self.on_event(event, ctx);
            }
        }
        self.directory_changed(ctx);
    }

    fn said(&mut self, said: RedisResult<(u64, bool)>) {
        let Some(shared) = &mut self.shared else {
            return;
        };
        let Some(Saying { room, reply, fence }) = shared.saying.pop_front() else {
            tracing::error!("Redis answered a message that was not pending");
            return;
        };
        match said {
            Ok((id, new)) => {
                shared.answered(true);
                if new {
                    self.metrics.message_stored();
                }
                self.acknowledge(reply, &room, id, fence);
            }
            Err(error) => {
                tracing::error!(error = %error, "refusing a message: Redis did not store it");
                shared.answered(false);
                self.refuse(reply, fence);
            }
        }
    }

    fn beaten(&mut self, beat: RedisResult<Beat>, ctx: &mut Context<Self>) {
        let Some(shared) = &mut self.shared else {
            return;
        };
        match beat {
            Ok(beat) => {
                shared.answered(true);
                self.metrics.set_cluster_nodes(beat.nodes);
                if beat.reaped > 0 {
                    tracing::info!(nodes = beat.reaped, "removed nodes that stopped beating");
                }
                if !beat.known && !self.sessions.is_empty() {
                    tracing::warn!(
                        "the other nodes had given this one up; seating its members again"
                    );
                    self.resync(ctx);
                }
            }
            Err(error) => {
                if !shared.failing {
                    tracing::error!(error = %error, "Redis does not answer");
                }
                shared.answered(false);
            }
        }
    }
}

impl Command for Event {
    type Reply = ();

    fn run(self, registry: &mut Registry, ctx: &mut Context<Registry>) {
        registry.on_event(self, ctx);
    }
}

impl Command for Subscribed {
    type Reply = ();

    fn run(self, registry: &mut Registry, ctx: &mut Context<Registry>) {
        let Some(shared) = &mut registry.shared else {
            return;
        };
        shared.subscribed = self.0;
        shared.update_health();
        if self.0 {
            // Whatever happened while unsubscribed was missed.
            shared.syncing = None;
            registry.resync(ctx);
        }
    }
}

impl Command for Outcome {
    type Reply = ();

    fn run(self, registry: &mut Registry, ctx: &mut Context<Registry>) {
        match self {
            Outcome::Said(said) => registry.said(said),
            Outcome::Loaded(room, snapshot) => registry.loaded(room, snapshot, ctx),
            Outcome::Directory(read) => registry.directory_read(read, ctx),
            Outcome::Beat(beat) => registry.beaten(beat, ctx),
            Outcome::Done(done) => {
                if let Some(shared) = &mut registry.shared {
                    if let Err(error) = &done {
                        tracing::error!(error = %error, "Redis did not record a membership change");
                        // The next resync seats this node's members again.
                        shared.stale = true;
                    }
                    shared.answered(done.is_ok());
                }
            }
        }
    }
}
