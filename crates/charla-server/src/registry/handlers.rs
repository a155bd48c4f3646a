//! What the registry does for each message of the table, in the table's
//! order: one [`Command`] impl each (the moderation messages' are in
//! `moderation.rs`). The `Handler` in `mod.rs` runs them and reaps slow
//! consumers afterwards.

use super::rooms::Seat;
use super::*;
use crate::bans::now_millis;
use crate::identity;
use crate::store::{Changer, Draft};
use charla_protocol::{API_SENDER_ID, MODERATOR_NAME, MessageText};

impl Command for Connect {
    type Reply = ();

    fn run(self, registry: &mut Registry, _ctx: &mut Context<Registry>) {
        if registry.shutting_down {
            self.outbox.close(CloseCode::Away, "server shutting down");
            return;
        }
        let bucket = TokenBucket::full(registry.config.msg_burst);
        registry
            .sessions
            .insert(self.session, SessionState::new(self, bucket));
    }
}

impl Command for Disconnect {
    type Reply = ();

    fn run(self, registry: &mut Registry, ctx: &mut Context<Registry>) {
        registry.remove_session(self.session, ctx);
    }
}

impl Command for Join {
    type Reply = ();

    fn requester(&self) -> Option<SessionId> {
        Some(self.session)
    }

    fn run(self, registry: &mut Registry, ctx: &mut Context<Registry>) {
        if registry.refuse_if_banned(self.session, &self.room, &self.reference, false) {
            return;
        }
        if registry.shared.is_some() {
            registry.join_shared(self);
            registry.directory_changed(ctx);
            return;
        }
        let Join {
            session,
            room,
            after,
            epoch,
            reference,
        } = self;
        let Some(state) = registry.sessions.get(&session) else {
            return;
        };
        let already_joined = state.rooms.contains(&room);
        if !already_joined {
            let outbox = state.outbox.clone();
            if !registry.make_room_for(session, &room, &reference) {
                return;
            }
            match registry.store.log(&room) {
                Ok(log) => {
                    let last_id = log.last_id();
                    registry.directory.set_last_id(&room, last_id);
                }
                Err(error) => {
                    tracing::error!(error = %error, "refusing a join");
                    registry.send_error(session, ErrorCode::Unavailable, reference);
                    registry.drop_if_unused(&room);
                    return;
                }
            }
            registry.rooms.seat(&room, session, Seat::new(outbox));
            if let Some(state) = registry.sessions.get_mut(&session) {
                state.rooms.insert(room.clone());
            }
            registry.rooms.touch(&room);
        }
        let Some(log) = registry.store.loaded(&room) else {
            unreachable!("a joined room's log is in memory");
        };
        let members = registry.members_of(&room);
        let joined = registry.joined_event(&room, log, after, epoch.as_deref(), members);
        registry.send(session, &joined);
        if !already_joined {
            registry
                .directory
                .set_members(&room, registry.rooms.member_count(&room));
            if let Some(member) = registry.member(session) {
                registry.announce(&room, PresenceEvent::Join, member, Some(session));
            }
            registry.directory_changed(ctx);
        }
    }
}

impl Command for Leave {
    type Reply = ();

    fn requester(&self) -> Option<SessionId> {
        Some(self.session)
    }

    fn run(self, registry: &mut Registry, ctx: &mut Context<Registry>) {
        if !registry.check_joined(self.session, &self.room, &self.reference) {
            return;
        }
        let left = ServerMessage::Left {
            room: self.room.as_str().to_owned(),
        };
        registry.send(self.session, &left);
        registry.unseat(self.session, &self.room, ctx);
    }
}

impl Command for Say {
    type Reply = ();

    fn requester(&self) -> Option<SessionId> {
        Some(self.session)
    }

    fn run(self, registry: &mut Registry, _ctx: &mut Context<Registry>) {
        let Say {
            session,
            room,
            text,
            reference,
        } = self;
        if registry.refuse_if_banned(session, &room, &reference, true) {
            return;
        }
        let joined = registry
            .sessions
            .get(&session)
            .is_some_and(|s| s.rooms.contains(&room));
        if !joined {
            // A refused `say` is flood-controlled too (rule 28): a client
            // cannot spam refusals any faster than messages. Without a
            // token the answer is `rate_limited` instead.
            if registry.take_token(session, &reference) {
                registry.send_error(session, ErrorCode::NotJoined, reference);
            }
            return;
        }
        if !registry.take_token(session, &reference) {
            return;
        }
        let Some(from) = registry.member(session) else {
            return;
        };
        let draft = Draft {
            from,
            text: text.into_string(),
            reference: reference.clone(),
            at: now_millis(),
            ..Draft::default()
        };
        let reply = Reply::Session { session, reference };
        if registry.shared.is_some() {
            registry.say_shared(&room, draft, reply);
        } else {
            registry.publish(&room, draft, reply);
        }
    }
}

impl Command for Typing {
    type Reply = ();

    fn requester(&self) -> Option<SessionId> {
        Some(self.session)
    }

    fn run(self, registry: &mut Registry, _ctx: &mut Context<Registry>) {
        if !registry.check_joined(self.session, &self.room, &self.reference) {
            return;
        }
        let now = Instant::now();
        let Some(seat) = registry
            .rooms
            .get_mut(&self.room)
            .and_then(|r| r.seats.get_mut(&self.session))
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
        let Some(member) = registry.member(self.session) else {
            return;
        };
        if let Some(shared) = &registry.shared {
            shared.typing(&self.room, &member);
        }
        let typing = ServerMessage::Typing {
            room: self.room.as_str().to_owned(),
            member,
        };
        registry.broadcast(&self.room, &typing.to_json().into(), Some(self.session));
    }
}

impl Command for Rename {
    type Reply = ();

    fn requester(&self) -> Option<SessionId> {
        Some(self.session)
    }

    fn run(self, registry: &mut Registry, _ctx: &mut Context<Registry>) {
        if !registry.sessions.contains_key(&self.session)
            || !registry.take_token(self.session, &self.reference)
        {
            return;
        }
        let Some(state) = registry.sessions.get_mut(&self.session) else {
            return;
        };
        state.member.name = self.name.into_string();
        let member = state.member.clone();
        let rooms: Vec<RoomName> = state.rooms.iter().cloned().collect();
        registry.rename_shared(&rooms, self.session, &member);
        for room in rooms {
            registry.announce(&room, PresenceEvent::Rename, member.clone(), None);
        }
    }
}

impl Command for Identify {
    type Reply = ();

    fn requester(&self) -> Option<SessionId> {
        Some(self.session)
    }

    fn run(self, registry: &mut Registry, _ctx: &mut Context<Registry>) {
        let Identify {
            session,
            secret,
            reference,
        } = self;
        let Some(state) = registry.sessions.get_mut(&session) else {
            return;
        };
        if state.identified || !state.rooms.is_empty() {
            registry.send_error(session, ErrorCode::IdentityLocked, reference);
            return;
        }
        let (secret, issued) = match secret {
            Some(secret) => (secret, false),
            None => match identity::issue() {
                Ok(secret) => (secret, true),
                Err(error) => {
                    tracing::error!(error = %error, "cannot draw a secret");
                    registry.send_error(session, ErrorCode::Unavailable, reference);
                    return;
                }
            },
        };
        state.identified = true;
        state.member.id = identity::member_id(&secret);
        let answer = ServerMessage::Identity {
            id: state.member.id.clone(),
            secret: issued.then(|| secret.expose().to_owned()),
        };
        registry.send(session, &answer);
    }
}

impl Command for Change {
    type Reply = ();

    fn requester(&self) -> Option<SessionId> {
        Some(self.session)
    }

    fn run(self, registry: &mut Registry, _ctx: &mut Context<Registry>) {
        let Change {
            session,
            room,
            id,
            text,
            reference,
        } = self;
        let Some(from) = registry.member(session) else {
            return;
        };
        let joined = registry
            .sessions
            .get(&session)
            .is_some_and(|s| s.rooms.contains(&room));
        // A resend of a change already stored is acknowledged, not checked
        // again (its message may be deleted by now). With Redis the script
        // checks, atomically, the `ref` first.
        let checked = if !joined {
            Err(ErrorCode::NotJoined)
        } else if registry.shared.is_some() {
            Ok(())
        } else {
            registry
                .store
                .loaded(&room)
                .map_or(Err(ErrorCode::UnknownMessage), |log| {
                    if reference.as_deref().is_some_and(|r| log.knows_ref(r)) {
                        Ok(())
                    } else {
                        log.check_change(id, Changer::Author(&from.id))
                    }
                })
        };
        // A change takes a flood-control token, refused or not, as a `say`
        // does (rule 28); without one the answer is `rate_limited`.
        if !registry.take_token(session, &reference) {
            return;
        }
        if let Err(code) = checked {
            registry.send_error(session, code, reference);
            return;
        }
        let draft = change_draft(from, id, text, reference.clone());
        let reply = Reply::Session { session, reference };
        if registry.shared.is_some() {
            registry.say_shared(&room, draft, reply);
        } else {
            registry.publish(&room, draft, reply);
        }
    }
}

impl Command for WatchRooms {
    type Reply = ();

    fn requester(&self) -> Option<SessionId> {
        Some(self.session)
    }

    fn run(self, registry: &mut Registry, _ctx: &mut Context<Registry>) {
        if !registry.sessions.contains_key(&self.session) {
            return;
        }
        registry.watchers.insert(self.session);
        let rooms = ServerMessage::Rooms {
            rooms: registry.directory.listing(),
        };
        registry.send(self.session, &rooms);
    }
}

impl Command for UnwatchRooms {
    type Reply = ();

    fn requester(&self) -> Option<SessionId> {
        Some(self.session)
    }

    fn run(self, registry: &mut Registry, _ctx: &mut Context<Registry>) {
        registry.watchers.remove(&self.session);
    }
}

impl Command for FetchHistory {
    type Reply = MessageResult<FetchHistory>;

    fn run(self, registry: &mut Registry, _ctx: &mut Context<Registry>) -> Self::Reply {
        MessageResult(registry.in_memory(&self.room, |log| log.page(self.query)))
    }
}

impl Command for Post {
    type Reply = MessageResult<Post>;

    fn run(self, registry: &mut Registry, _ctx: &mut Context<Registry>) -> Self::Reply {
        let (answer, receiver) = oneshot::channel();
        if registry.shared.is_none() && !registry.ensure_room(&self.room) {
            let _ = answer.send(Err(ErrorCode::TooManyRooms));
            return MessageResult(receiver);
        }
        let from = Member {
            id: API_SENDER_ID.to_owned(),
            name: self.from.into_string(),
        };
        let draft = Draft {
            from,
            text: self.text.into_string(),
            reference: None,
            at: now_millis(),
            ..Draft::default()
        };
        if registry.shared.is_some() {
            registry.say_shared(&self.room, draft, Reply::Http(answer));
        } else {
            registry.publish(&self.room, draft, Reply::Http(answer));
        }
        MessageResult(receiver)
    }
}

impl Command for ModeratorDelete {
    type Reply = MessageResult<ModeratorDelete>;

    fn run(self, registry: &mut Registry, _ctx: &mut Context<Registry>) -> Self::Reply {
        let (answer, receiver) = oneshot::channel();
        let moderator = Member {
            id: API_SENDER_ID.to_owned(),
            name: MODERATOR_NAME.to_owned(),
        };
        let draft = change_draft(moderator, self.id, None, None);
        if registry.shared.is_some() {
            // The script checks the message, whether this node holds the
            // room or not.
            registry.say_shared(&self.room, draft, Reply::Http(answer));
            return MessageResult(receiver);
        }
        let checked = if registry.ensure_room(&self.room) {
            match registry.store.log(&self.room) {
                Ok(log) => log.check_change(self.id, Changer::Moderator),
                Err(error) => {
                    tracing::error!(error = %error, "refusing a moderator's delete");
                    Err(ErrorCode::Unavailable)
                }
            }
        } else {
            Err(ErrorCode::TooManyRooms)
        };
        if let Err(code) = checked {
            registry.drop_if_unused(&self.room);
            let _ = answer.send(Err(code));
            return MessageResult(receiver);
        }
        registry.publish(&self.room, draft, Reply::Http(answer));
        MessageResult(receiver)
    }
}

impl Command for ViewRoom {
    type Reply = MessageResult<ViewRoom>;

    fn run(self, registry: &mut Registry, _ctx: &mut Context<Registry>) -> Self::Reply {
        let join_history = registry.config.join_history;
        MessageResult(RoomView {
            members: registry.members_of(&self.room),
            history: registry.in_memory(&self.room, |log| log.recent(join_history)),
        })
    }
}

impl Command for Probe {
    type Reply = ();

    fn run(self, _registry: &mut Registry, _ctx: &mut Context<Registry>) {}
}

impl Command for Shutdown {
    type Reply = MessageResult<Shutdown>;

    fn run(self, registry: &mut Registry, _ctx: &mut Context<Registry>) -> Self::Reply {
        registry.shutting_down = true;
        let (drained, receiver) = oneshot::channel();
        if registry.sessions.is_empty() {
            let _ = drained.send(());
        } else {
            registry.drained.push(drained);
            for state in registry.sessions.values() {
                state.outbox.close(CloseCode::Away, "server shutting down");
            }
        }
        MessageResult(receiver)
    }
}

impl Command for CloseStore {
    type Reply = ();

    fn run(self, registry: &mut Registry, _ctx: &mut Context<Registry>) {
        registry.store.close();
    }
}

impl Command for Written {
    type Reply = ();

    fn run(self, registry: &mut Registry, _ctx: &mut Context<Registry>) {
        registry.written(self);
    }
}

/// The entry that edits message `id` to `text`, or deletes it (`None`).
fn change_draft(
    from: Member,
    id: u64,
    text: Option<MessageText>,
    reference: Option<String>,
) -> Draft {
    let deletes = text.is_none().then_some(id);
    Draft {
        from,
        text: text.map(MessageText::into_string).unwrap_or_default(),
        reference,
        at: now_millis(),
        edits: deletes.is_none().then_some(id),
        deletes,
    }
}
