//! A message's way through the registry: staged in its room's log (the
//! next id), handed to the store's engine, then *settled* when the engine
//! reports: stored, the senders get their `ack` and every member the
//! `message`; refused, the senders get `unavailable` and nobody else hears
//! of it (docs/protocol.md, rules 39 and 40).
//!
//! While a session's `say` is being stored, the answers to its later
//! requests wait behind a *fence* in its [`SessionState`] so they keep
//! request order (rule 36). Pending messages settle in the order they were
//! submitted, which is the order the writer reports them in, so a session's
//! fences are released in order too.
//!
//! When the engine refuses a batch, every id staged after the last stored
//! one is void: the logs rewind and the registry's *generation* moves on,
//! so the writer refuses the rest of the old generation still queued and
//! ids stay contiguous.

use super::*;

/// An entry of [`SessionState::held`].
pub(super) enum Held {
    /// The place of the answer to a request still in progress (a message
    /// being stored, or with Redis a room being read for a `join`).
    Fence(FenceId),
    /// An answer to a later request.
    Frame(ByteString),
}

/// Names one [`Held::Fence`].
pub(super) type FenceId = u64;

/// Who waits for a message to be stored.
pub(super) enum Reply {
    /// A session, answered with `ack` (when its `say` had a `ref`) or an
    /// `unavailable` error.
    Session {
        session: SessionId,
        reference: Option<String>,
    },
    /// An HTTP `POST`, answered with the id or the error.
    Http(oneshot::Sender<Result<u64, ErrorCode>>),
}

/// A message handed to the engine: stored, it is acknowledged and
/// broadcast; refused, its senders hear `unavailable`.
pub(super) struct Pending {
    room: RoomName,
    message: ChatMessage,
    /// The sender, then resends of the same `ref` that came while it waited.
    replies: Vec<Reply>,
    /// When the registry accepted it, for the fan-out histogram.
    accepted: Instant,
    /// The registry's generation when it was submitted.
    generation: u64,
    /// The sender's (the first reply's) fence, if it has one.
    fence: Option<FenceId>,
}

impl Registry {
    /// Holds `session`'s later answers until the answer to its request
    /// now in progress takes the fence's place.
    pub(super) fn fence(&mut self, session: SessionId) -> Option<FenceId> {
        let state = self.sessions.get_mut(&session)?;
        self.fenced.insert(session);
        self.next_fence += 1;
        state.held.push_back(Held::Fence(self.next_fence));
        Some(self.next_fence)
    }

    /// Puts `frames` (the answer, possibly none) in the place of `fence`,
    /// then sends every answer no longer behind a fence.
    pub(super) fn fill(&mut self, session: SessionId, fence: FenceId, frames: Vec<ByteString>) {
        let Some(state) = self.sessions.get_mut(&session) else {
            return;
        };
        let place = state
            .held
            .iter()
            .position(|held| matches!(held, Held::Fence(f) if *f == fence));
        match place {
            Some(place) => {
                state.held.remove(place);
                for (offset, frame) in frames.into_iter().enumerate() {
                    state.held.insert(place + offset, Held::Frame(frame));
                }
            }
            None => state.held.extend(frames.into_iter().map(Held::Frame)),
        }
        while let Some(Held::Frame(_)) = state.held.front() {
            if let Some(Held::Frame(text)) = state.held.pop_front()
                && state.outbox.push_text(text) == Err(NotQueued::Full)
            {
                self.slow.push(session);
                return;
            }
        }
        if state.held.is_empty() {
            self.fenced.remove(&session);
        }
    }

    /// Gives a message its id and hands it to the engine; once stored it is
    /// acknowledged and broadcast ([`Registry::settle`]). A resend of a
    /// known `ref` is acknowledged with the original id, stored nothing
    /// twice. `room` must be in memory.
    pub(super) fn publish(&mut self, room: &RoomName, draft: Draft, reply: Reply) {
        let accepted = Instant::now();
        let staged = match self.store.stage(room, draft) {
            Ok(staged) => staged,
            Err(error) => {
                tracing::error!(error = %error, "refusing a message");
                self.refuse(reply, None);
                return;
            }
        };
        match staged {
            (Staged::New(_), Some(message)) => {
                let reference = match &reply {
                    Reply::Session { reference, .. } => reference.clone(),
                    Reply::Http(_) => None,
                };
                let submitted = self
                    .store
                    .submit(self.generation, &message, reference.as_deref());
                let pending = Pending {
                    room: room.clone(),
                    message,
                    replies: vec![reply],
                    accepted,
                    generation: self.generation,
                    fence: None,
                };
                match submitted {
                    Submitted::Now => self.settle(pending, true),
                    Submitted::Later => {
                        let mut pending = pending;
                        if let Some(Reply::Session { session, .. }) = pending.replies.first() {
                            pending.fence = self.fence(*session);
                        }
                        self.pending.push_back(pending);
                    }
                    Submitted::Refused => {
                        self.void_staged();
                        self.settle(pending, false);
                    }
                }
            }
            (Staged::Stored(id), _) => self.acknowledge(reply, room, id, None),
            (Staged::Pending(id), _) => {
                let waiting = self
                    .pending
                    .iter_mut()
                    .rev()
                    .find(|p| p.message.id == id && p.room == *room);
                match waiting {
                    Some(pending) => pending.replies.push(reply),
                    None => self.refuse(reply, None),
                }
            }
            (Staged::New(_), None) => unreachable!("a new message is always handed back"),
        }
    }

    /// Answers everyone waiting on a message. Stored, it joins its room's
    /// log, the senders get their `ack` first (rule 20), then every member
    /// gets one shared serialisation; refused, the senders hear
    /// `unavailable` and nobody else hears anything. Then the answers held
    /// behind the sender's fence go out.
    fn settle(&mut self, pending: Pending, stored: bool) {
        let Pending {
            room,
            message,
            replies,
            accepted,
            fence,
            ..
        } = pending;
        let id = message.id;
        let text =
            stored.then(|| ByteString::from(charla_protocol::server::message_event_json(&message)));
        if stored {
            self.store.commit(&room, message);
        }
        // A fenced sender gets its `ack` and then its own copy in the place
        // of its fence, ahead of the answers held behind it (rules 20, 36).
        let fenced = match replies.first() {
            Some(Reply::Session { session, .. }) => fence.map(|fence| (*session, fence)),
            _ => None,
        };
        let mut reached = 0;
        if let Some(text) = &text {
            self.rooms.touch(&room);
            self.directory.set_last_id(&room, id);
            reached = self.broadcast(&room, text, fenced.map(|(session, _)| session));
        }
        for (index, reply) in replies.into_iter().enumerate() {
            let fence = if index == 0 { fence } else { None };
            match (&text, fenced) {
                (Some(text), Some((session, fence))) if index == 0 => {
                    let mut frames = Vec::with_capacity(2);
                    if let Reply::Session {
                        reference: Some(reference),
                        ..
                    } = reply
                    {
                        let ack = ServerMessage::Ack {
                            reference,
                            room: room.as_str().to_owned(),
                            id,
                        };
                        frames.push(ack.to_json().into());
                    }
                    if self
                        .rooms
                        .get(&room)
                        .is_some_and(|r| r.seats.contains_key(&session))
                    {
                        frames.push(text.clone());
                        reached += 1;
                    }
                    self.fill(session, fence, frames);
                }
                (Some(_), _) => self.acknowledge(reply, &room, id, fence),
                (None, _) => self.refuse(reply, fence),
            }
        }
        if stored {
            self.metrics.message_fanned_out(reached, accepted.elapsed());
        }
    }

    /// Tells a sender its message is stored under `id`, in the place of
    /// `fence` when it has one.
    pub(super) fn acknowledge(
        &mut self,
        reply: Reply,
        room: &RoomName,
        id: u64,
        fence: Option<FenceId>,
    ) {
        match reply {
            Reply::Session {
                session,
                reference: Some(reference),
            } => {
                let ack = ServerMessage::Ack {
                    reference,
                    room: room.as_str().to_owned(),
                    id,
                };
                self.deliver(session, &ack, fence);
            }
            Reply::Session {
                session,
                reference: None,
            } => {
                if let Some(fence) = fence {
                    self.fill(session, fence, Vec::new());
                }
            }
            Reply::Http(answer) => {
                let _ = answer.send(Ok(id));
            }
        }
    }

    /// Tells a sender its message was not stored, in the place of `fence`
    /// when it has one.
    pub(super) fn refuse(&mut self, reply: Reply, fence: Option<FenceId>) {
        self.refuse_as(reply, ErrorCode::Unavailable, fence);
    }

    /// Tells a sender its message was refused with `code`.
    pub(super) fn refuse_as(&mut self, reply: Reply, code: ErrorCode, fence: Option<FenceId>) {
        match reply {
            Reply::Session { session, reference } => {
                self.deliver_error(session, code, reference, fence);
            }
            Reply::Http(answer) => {
                self.metrics.error(code);
                let _ = answer.send(Err(code));
            }
        }
    }

    /// Every staged id from the first refused one on is void: the logs hand
    /// them out again, under a generation the writer will accept.
    fn void_staged(&mut self) {
        self.store.rewind_all();
        self.generation += 1;
    }

    /// The engine reported on the next `count` pending messages.
    pub(super) fn written(&mut self, written: Written) {
        let current = self.pending.front().map(|p| p.generation) == Some(self.generation);
        // Later refusals of an old generation need no second rewind.
        if !written.stored && current {
            self.void_staged();
        }
        for _ in 0..written.count {
            let Some(pending) = self.pending.pop_front() else {
                tracing::error!("the writer reported more messages than were pending");
                break;
            };
            self.settle(pending, written.stored);
        }
    }
}
