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

mod sync;

use super::rooms::Seat;
use super::*;
use crate::cluster::events::{Body, Event, Subscribed};
use crate::cluster::link::Link;
use crate::cluster::{
    Beat, Cluster, DirectorySnapshot, HEARTBEAT, NODE_TIMEOUT, Request, Said, Snapshot,
};
use charla_protocol::API_SENDER_ID;
use redis::RedisResult;
use std::sync::atomic::{AtomicBool, Ordering};

/// The outcome of one script call, reported in call order.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) enum Outcome {
    Said(RedisResult<Said>),
    Loaded(RoomName, RedisResult<Snapshot>),
    Directory(RedisResult<DirectorySnapshot>),
    Beat(RedisResult<Beat>),
    /// A member of this node left a room (its id) in Redis, or not.
    Unseated(RoomName, String, RedisResult<()>),
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
    /// Members on every node, by seat (their session's id: one identity
    /// can sit on several).
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
    /// Members of this node that left a room here while Redis could not
    /// be told: removed from Redis when it answers again.
    ghosts: Vec<(RoomName, String)>,
}

impl Shared {
    /// Tells the other nodes that `member` is typing in `room`.
    pub(super) fn typing(&self, room: &RoomName, member: &Member) {
        self.call(self.cluster.typing(room, member), Outcome::Done);
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
            ghosts: Vec::new(),
        }
    }

    /// Takes member `id` of this node out of `room` in Redis.
    fn unseat(&self, room: &RoomName, id: &str) {
        let (room, id) = (room.clone(), id.to_owned());
        let unseat = self.cluster.unseat(&room, &id);
        self.call(unseat, move |done| Outcome::Unseated(room, id, done));
    }

    fn call<R: 'static>(
        &self,
        request: Request<R>,
        wrap: impl FnOnce(RedisResult<R>) -> Outcome + Send + 'static,
    ) {
        if let Some(link) = &self.link {
            link.call(request, wrap);
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
    #[serde(skip_serializing_if = "Option::is_none")]
    edits: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deletes: Option<u64>,
}

impl Registry {
    /// Starts the pipeline, the subscription and the heartbeat.
    pub(super) fn start_shared(&mut self, ctx: &mut Context<Self>) {
        let Some(shared) = &mut self.shared else {
            return;
        };
        let address = ctx.address();
        shared.link = Some(Link::start(shared.cluster.clone(), move |outcome| {
            address.do_send(outcome);
        }));
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
        shared.call(beat, Outcome::Beat);
        if !shared.failing && shared.subscribed {
            for (room, id) in std::mem::take(&mut shared.ghosts) {
                shared.unseat(&room, &id);
            }
        }
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
            if !self.make_room_for(session, &room, &reference) {
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
            shared.call(load, move |snapshot| Outcome::Loaded(room, snapshot));
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
            for (session, member) in &newcomers {
                view.members.insert(session.to_string(), member.clone());
            }
        }
        let members = self.shared_members(room).unwrap_or_default();
        for join in waiting {
            let Some(log) = self.store.loaded(room) else {
                if let Some(fence) = join.fence {
                    self.fill(join.session, fence, Vec::new());
                }
                continue;
            };
            let joined = self.joined_event(
                room,
                log,
                join.after,
                join.epoch.as_deref(),
                members.clone(),
            );
            self.deliver(join.session, &joined, join.fence);
        }
        let sessions: HashSet<SessionId> = newcomers.iter().map(|(session, _)| *session).collect();
        if !newcomers.is_empty() {
            self.directory.set_members(room, self.room_count(room));
        }
        for (session, member) in newcomers {
            if let Some(shared) = &self.shared {
                let seat = shared
                    .cluster
                    .seat(room, &session.to_string(), &member, false);
                shared.call(seat, Outcome::Done);
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

    /// A member of this node (the one on `session`'s seat) left `room`:
    /// tells Redis; answers whether the view had it (and so whether to
    /// announce it).
    pub(super) fn unseat_shared(&mut self, room: &RoomName, session: SessionId) -> bool {
        let Some(shared) = &mut self.shared else {
            return true;
        };
        let seat = session.to_string();
        let known = shared
            .views
            .get_mut(room)
            .is_some_and(|view| view.members.remove(&seat).is_some());
        if known {
            shared.unseat(room, &seat);
        }
        known
    }

    /// A member of this node was renamed: updates the views, tells Redis.
    pub(super) fn rename_shared(
        &mut self,
        rooms: &[RoomName],
        session: SessionId,
        member: &Member,
    ) {
        let Some(shared) = &mut self.shared else {
            return;
        };
        let seat = session.to_string();
        for room in rooms {
            if let Some(known) = shared
                .views
                .get_mut(room)
                .and_then(|view| view.members.get_mut(&seat))
            {
                known.name.clone_from(&member.name);
                shared.call(
                    shared.cluster.seat(room, &seat, member, true),
                    Outcome::Done,
                );
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
            edits: draft.edits,
            deletes: draft.deletes,
        };
        let body = serde_json::to_string(&body).expect("messages always serialise");
        // Messages from the HTTP API's id are a moderator's: any message.
        let author = (draft.from.id != API_SENDER_ID).then_some(draft.from.id.as_str());
        let change = draft.edits.or(draft.deletes).map(|target| (target, author));
        let fence = match &reply {
            Reply::Session { session, .. } => self.fence(*session),
            Reply::Http(_) => None,
        };
        let Some(shared) = &mut self.shared else {
            return;
        };
        let said = shared
            .cluster
            .say(room, body, draft.reference.as_deref(), change);
        shared.call(said, Outcome::Said);
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
}
