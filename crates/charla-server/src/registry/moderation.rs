//! Moderation in the registry (docs/protocol.md, rules 51 and 52): the
//! handlers of [`Kick`], [`ImposeBan`], [`ListBans`] and [`LiftBan`], and
//! the check that keeps a banned client out of `join` and `say`.
//!
//! A kicked or newly banned connection gets `kicked` and leaves the room the
//! way a `leave` does ([`Registry::unseat`]: the directory, the `rooms`
//! watchers and the metrics follow); the others get `presence` `leave`, one
//! per connection, each with the count after it. The connections leaving
//! together are not told about each other: they have been told `kicked`.
//!
//! Where the ban check sits (rule 52): after what the session checks itself
//! (`bad_request`, `invalid_room`, `invalid_text`), before everything the
//! registry checks. For `join`: before `too_many_rooms`, the new-room
//! token (`rate_limited`) and reading the room (`unavailable`), so a banned
//! client spends no new-room token and loads nothing. For `say`: before
//! `not_joined` (a banned client is never in the room, and must hear why),
//! and, like a `say` refused as `not_joined` (rule 28), it takes a
//! flood-control token: without one the answer is `rate_limited`.
//!
//! With Redis the bans live in Redis, and every node holds a copy, kept by
//! the directory snapshot and the `ban` and `unban` events; a kick is an
//! event too, and each node removes its own connections of the member
//! ([`crate::cluster`]). The node that took the HTTP call applies the ban
//! or kick itself before answering, and skips its own event.

use super::*;
use crate::bans::{Ban, now_millis};
use charla_protocol::api;

impl Command for Kick {
    type Reply = MessageResult<Kick>;

    fn run(self, registry: &mut Registry, ctx: &mut Context<Registry>) -> Self::Reply {
        MessageResult(registry.kick_here(&self.room, &self.member, self.reason, ctx))
    }
}

impl Command for ImposeBan {
    type Reply = MessageResult<ImposeBan>;

    fn run(self, registry: &mut Registry, ctx: &mut Context<Registry>) -> Self::Reply {
        MessageResult(registry.impose_ban(self.ban, ctx))
    }
}

impl Registry {
    /// Takes this node's connections of `member` out of `room`, each told
    /// `kicked`; answers how many.
    pub(super) fn kick_here(
        &mut self,
        room: &RoomName,
        member: &str,
        reason: Option<String>,
        ctx: &mut Context<Self>,
    ) -> usize {
        let leaving: Vec<SessionId> = self.rooms.get(room).map_or_else(Vec::new, |r| {
            r.seats
                .keys()
                .filter(|id| {
                    self.sessions
                        .get(id)
                        .is_some_and(|state| state.member.id == member)
                })
                .copied()
                .collect()
        });
        let kicked = ServerMessage::Kicked {
            room: room.as_str().to_owned(),
            reason,
            until: None,
        };
        self.remove_from_room(room, leaving, &kicked, ctx)
    }

    /// Puts `ban` in force here: the connections of this node it names
    /// leave the rooms it covers, each told `kicked` with its end; answers
    /// how many left.
    pub(super) fn impose_ban(&mut self, ban: Ban, ctx: &mut Context<Self>) -> usize {
        let registry = self;
        let mut by_room: HashMap<RoomName, Vec<SessionId>> = HashMap::new();
        for (id, state) in &registry.sessions {
            if !ban.names(&state.member.id, state.address) {
                continue;
            }
            for room in state.rooms.iter().filter(|room| ban.covers(room)) {
                by_room.entry(room.clone()).or_default().push(*id);
            }
        }
        let mut removed = 0;
        for (room, leaving) in by_room {
            let kicked = ServerMessage::Kicked {
                room: room.as_str().to_owned(),
                reason: ban.reason.clone(),
                until: Some(ban.until),
            };
            removed += registry.remove_from_room(&room, leaving, &kicked, ctx);
        }
        registry.bans.insert(ban);
        removed
    }
}

impl Command for ListBans {
    type Reply = MessageResult<ListBans>;

    fn run(self, registry: &mut Registry, _ctx: &mut Context<Registry>) -> Self::Reply {
        let now = now_millis();
        MessageResult(
            registry
                .bans
                .active(now)
                .into_iter()
                .map(Ban::to_wire)
                .collect::<Vec<api::Ban>>(),
        )
    }
}

impl Command for LiftBan {
    type Reply = MessageResult<LiftBan>;

    fn run(self, registry: &mut Registry, _ctx: &mut Context<Registry>) -> Self::Reply {
        MessageResult(registry.bans.lift(&self.id, now_millis()))
    }
}

impl Registry {
    /// Refuses `session`'s request in `room` with `banned` when a ban keeps
    /// it out now; answers whether it did. A `flood_controlled` request (a
    /// `say`) takes a token first, and is `rate_limited` without one.
    pub(super) fn refuse_if_banned(
        &mut self,
        session: SessionId,
        room: &RoomName,
        reference: &Option<String>,
        flood_controlled: bool,
    ) -> bool {
        if self.bans.is_empty() {
            return false;
        }
        let Some(state) = self.sessions.get(&session) else {
            return false;
        };
        let Some(ban) = self
            .bans
            .barring(&state.member.id, state.address, room, now_millis())
        else {
            return false;
        };
        let (message, until) = (ban.refusal(), ban.until);
        if !flood_controlled || self.take_token(session, reference) {
            self.send_refusal(
                session,
                ErrorCode::Banned,
                message,
                reference.clone(),
                Some(until),
            );
        }
        true
    }

    /// Sends `kicked` to each session of `leaving`, then takes them out of
    /// `room`; the others hear `presence` `leave` once per connection.
    /// Answers how many left.
    fn remove_from_room(
        &mut self,
        room: &RoomName,
        leaving: Vec<SessionId>,
        kicked: &ServerMessage,
        ctx: &mut Context<Self>,
    ) -> usize {
        for session in &leaving {
            self.send(*session, kicked);
        }
        let together: HashSet<SessionId> = leaving.iter().copied().collect();
        for session in &leaving {
            self.unseat_telling_all_but(*session, room, &together, ctx);
        }
        leaving.len()
    }
}
