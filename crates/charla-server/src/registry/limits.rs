//! What a client may cost the registry, and the budgets it keeps: rooms
//! per session and new rooms per client address (docs/protocol.md, rules
//! 22 and 45), flood-control tokens (rules 10, 21 and 28), `joined` pages
//! of history (rule 43), and the history held in memory (rule 48).

use super::*;

impl Registry {
    /// The `joined` answering a join of `room` with `after` and `epoch`:
    /// the history asked for (rule 11 and 27), cut to one page of at most
    /// `CHARLA_OUTBOX_BYTES / JOINED_PAGE_SHARE` bytes, but never to less
    /// than one message. A resume keeps the oldest messages of what it
    /// missed and says `more` when it was cut (rule 43); a join without
    /// `after`, or one whose sequence restarted, keeps the newest.
    pub(super) fn joined_event(
        &self,
        room: &RoomName,
        log: &RoomLog,
        after: Option<u64>,
        epoch: Option<&str>,
        members: Vec<Member>,
    ) -> ServerMessage {
        let page = self.config.outbox_bytes / JOINED_PAGE_SHARE;
        let JoinedPage {
            messages,
            complete,
            more,
        } = log.joined_page(after, epoch, self.config.join_history, page);
        ServerMessage::Joined {
            room: room.as_str().to_owned(),
            epoch: log.epoch.to_string(),
            members,
            history: messages,
            complete,
            more,
        }
    }

    /// Readies `room` for one more member, `session`: answers
    /// `too_many_rooms` when the session is in as many rooms as it may be
    /// or no room can make way (rule 22), and `rate_limited` when the room
    /// must come into memory and the session's address has created its
    /// `CHARLA_NEW_ROOMS_PER_MINUTE` already (so one client cannot churn
    /// other rooms out of memory).
    pub(super) fn make_room_for(
        &mut self,
        session: SessionId,
        room: &RoomName,
        reference: &Option<String>,
    ) -> bool {
        let Some(state) = self.sessions.get(&session) else {
            return false;
        };
        if state.rooms.len() >= self.config.max_rooms_per_session {
            self.send_error(session, ErrorCode::TooManyRooms, reference.clone());
            return false;
        }
        let address = state.address;
        if self.rooms.get(room).is_none() && !self.take_new_room_token(address) {
            self.send_error(session, ErrorCode::RateLimited, reference.clone());
            return false;
        }
        if !self.ensure_room(room) {
            self.send_error(session, ErrorCode::TooManyRooms, reference.clone());
            return false;
        }
        true
    }

    /// Takes one of `address`'s new-room tokens, if it has one left.
    pub(super) fn take_new_room_token(&mut self, address: ClientAddress) -> bool {
        let (rate, burst) = self.new_room_rate();
        if rate <= 0.0 {
            return true;
        }
        self.new_rooms
            .entry(address)
            .or_insert_with(|| TokenBucket::full(burst))
            .take(rate, burst)
    }

    /// The new-room buckets' refill per second and size: a minute's worth
    /// of `CHARLA_NEW_ROOMS_PER_MINUTE`.
    fn new_room_rate(&self) -> (f64, u32) {
        let per_minute = self.config.new_rooms_per_minute;
        (f64::from(per_minute) / 60.0, per_minute)
    }

    /// Forgets the new-room buckets that have filled up again: a full
    /// bucket is what a new one would be.
    pub(super) fn forget_full_room_buckets(&mut self) {
        let (rate, burst) = self.new_room_rate();
        self.new_rooms
            .retain(|_, bucket| !bucket.is_full(rate, burst));
    }

    /// Checks flood control for `session`; answers `rate_limited` when empty.
    pub(super) fn take_token(&mut self, session: SessionId, reference: &Option<String>) -> bool {
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

    /// Keeps the history held in memory under `CHARLA_HISTORY_MEMORY_BYTES`
    /// by evicting the least recently active rooms without members (their
    /// history the oldest in use); rooms with members here keep theirs.
    pub(super) fn keep_history_within_budget(&mut self) {
        let budget = self.config.history_memory_bytes;
        // After a look that found no idle room, look again only once the
        // history grew by a sixteenth of the budget or a room went idle:
        // the look walks every room.
        if self.store.bytes() <= self.budget_recheck_above {
            self.metrics.set_history_memory_bytes(self.store.bytes());
            return;
        }
        self.budget_recheck_above = 0;
        while self.store.bytes() > budget {
            let store = &self.store;
            let evictable = |name: &RoomName| {
                store
                    .loaded(name)
                    .is_some_and(|log| log.bytes() > 0 && !log.has_pending())
            };
            let Some(victim) = self.rooms.least_recently_active_idle(evictable) else {
                self.budget_recheck_above = self.store.bytes() + budget / 16;
                break;
            };
            tracing::debug!(room = %victim, "moved an idle room out of memory: history over its budget");
            self.rooms.remove(&victim);
            self.forget_evicted(&victim);
            self.metrics.set_rooms(self.rooms.len());
        }
        self.metrics.set_history_memory_bytes(self.store.bytes());
    }
}
