//! Keeping the views current: the subscription's events applied in order,
//! room and directory snapshots, the resync after missed events, and the
//! outcomes of script calls (acks, heartbeats).

use super::*;
use crate::bans::{Ban, Bans, now_millis};

impl Registry {
    /// Reads the directory and every view again: events may have been
    /// missed.
    pub(super) fn resync(&mut self, _ctx: &mut Context<Self>) {
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
        shared.call(shared.cluster.directory(), Outcome::Directory);
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
            shared.call(load, move |snapshot| Outcome::Loaded(room, snapshot));
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
        let ours = event.node == shared.cluster.node();
        if matches!(
            event.body,
            Body::Ban { .. } | Body::Unban { .. } | Body::Kick { .. }
        ) {
            // The node that took the moderator's call applied it already.
            if !ours {
                self.moderate(event.body, ctx);
            }
            return;
        }
        let Ok(room) = RoomName::parse(event.body.room()) else {
            return;
        };
        let Some(view) = shared.views.get_mut(&room) else {
            match &event.body {
                Body::Message { message } => self.directory.set_last_id(&room, message.id),
                Body::Join { count, .. }
                | Body::Rename { count, .. }
                | Body::Leave { count, .. } => {
                    self.directory.set_members(&room, *count);
                }
                Body::Typing { .. } | Body::Ban { .. } | Body::Unban { .. } | Body::Kick { .. } => {
                    return;
                }
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
                let seat = member.key().to_owned();
                let member = member.member;
                let event = match view.members.insert(seat, member.clone()) {
                    None => PresenceEvent::Join,
                    Some(old) if old.name != member.name => PresenceEvent::Rename,
                    Some(_) => return,
                };
                self.directory.set_members(&room, self.room_count(&room));
                self.announce(&room, event, member, None);
                self.directory_changed(ctx);
            }
            // This node's own leaves are applied when they happen; one may
            // still be in the view after a snapshot taken before Redis
            // heard of it.
            Body::Leave { member, .. } => {
                let seated_here = ours
                    && u64::from_str_radix(member.key(), 16).is_ok_and(|session| {
                        self.rooms
                            .get(&room)
                            .is_some_and(|r| r.seats.contains_key(&SessionId(session)))
                    });
                let seat = member.key().to_owned();
                let member = member.member;
                if !seated_here && view.members.remove(&seat).is_some() {
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
            Body::Join { .. }
            | Body::Rename { .. }
            | Body::Typing { .. }
            | Body::Ban { .. }
            | Body::Unban { .. }
            | Body::Kick { .. } => {}
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
        let text = ByteString::from(charla_protocol::server::message_event_json(&message));
        self.store.append(room, message);
        self.rooms.touch(room);
        self.directory.set_last_id(room, id);
        let reached = self.deliver_frame(room, &text, &HashSet::new());
        self.metrics.message_delivered(reached);
    }

    /// Queues a message event for this node's members of `room` but
    /// `skip`. A member with answers held (a `say` waiting for its `ack`, a
    /// `join` for its room) gets it behind them, so it still gets its `ack`
    /// before its own copy (rule 20) and every message in id order.
    pub(super) fn deliver_frame(
        &mut self,
        room: &RoomName,
        text: &ByteString,
        skip: &HashSet<SessionId>,
    ) -> usize {
        if self.fenced.is_empty() {
            return self.broadcast_skipping(room, text, skip);
        }
        let Some(seats) = self.rooms.get(room).map(|r| &r.seats) else {
            return 0;
        };
        let mut reached = 0;
        for (session, seat) in seats {
            if skip.contains(session) {
                continue;
            }
            if self.fenced.contains(session) {
                if let Some(state) = self.sessions.get_mut(session) {
                    state.held.push_back(Held::Frame(text.clone()));
                    reached += 1;
                }
                continue;
            }
            match seat.outbox.push_text(text.clone()) {
                Ok(()) => reached += 1,
                Err(NotQueued::Full) => self.slow.push(*session),
                Err(NotQueued::Closing) => {}
            }
        }
        reached
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
            .map(|seated| (seated.key().to_owned(), seated.member))
            .collect();
        for (ghost_room, id) in &shared.ghosts {
            if *ghost_room == room {
                view.members.remove(id);
            }
        }
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
            let seat = session.to_string();
            if let Some(member) = self.sessions.get(&session).map(|s| s.member.clone())
                && !view.members.contains_key(&seat)
            {
                view.members.insert(seat.clone(), member.clone());
                lost.push((seat, member));
            }
        }
        for (seat, member) in &lost {
            shared.call(
                shared.cluster.seat(&room, seat, member, false),
                Outcome::Done,
            );
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
            let reached = self.deliver_frame(&room, text, &newcomers);
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
        // The bans as Redis holds them replace this node's copy; any of
        // them missed meanwhile is put in force now.
        self.bans = Bans::default();
        for ban in snapshot.bans.into_iter().filter_map(Ban::from_wire) {
            self.impose_ban(ban, ctx);
        }
        for event in held {
            if event.seq > snapshot.seq {
                self.on_event(event, ctx);
            }
        }
        self.directory_changed(ctx);
    }

    fn said(&mut self, said: RedisResult<Said>) {
        let Some(shared) = &mut self.shared else {
            return;
        };
        let Some(Saying { room, reply, fence }) = shared.saying.pop_front() else {
            tracing::error!("Redis answered a message that was not pending");
            return;
        };
        match said {
            Ok(Said::New(id)) => {
                shared.answered(true);
                self.metrics.message_stored();
                self.acknowledge(reply, &room, id, fence);
            }
            Ok(Said::Known(id)) => {
                shared.answered(true);
                self.acknowledge(reply, &room, id, fence);
            }
            Ok(Said::Refused(code)) => {
                shared.answered(true);
                self.refuse_as(reply, code, fence);
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

impl Registry {
    /// A moderation event from another node (rules 51 and 52).
    fn moderate(&mut self, body: Body, ctx: &mut Context<Self>) {
        match body {
            Body::Ban { ban } => match Ban::from_wire(ban) {
                Some(ban) => {
                    self.impose_ban(ban, ctx);
                }
                None => tracing::warn!("ignoring a ban from Redis that names no valid target"),
            },
            Body::Unban { id } => {
                self.bans.lift(&id, now_millis());
            }
            Body::Kick {
                room,
                member,
                reason,
            } => {
                if let Ok(room) = RoomName::parse(&room) {
                    self.kick_here(&room, &member, reason, ctx);
                }
            }
            _ => {}
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
            Outcome::Unseated(room, id, done) => {
                if let Some(shared) = &mut registry.shared {
                    if let Err(error) = &done {
                        tracing::warn!(error = %error, "Redis did not record a leave; trying again");
                        shared.ghosts.push((room, id));
                    }
                    shared.answered(done.is_ok());
                }
            }
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
