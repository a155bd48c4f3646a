//! Where a room's messages are stored: the seam between the registry and the
//! storage engine.
//!
//! The registry owns membership and delivery; a [`MessageStore`] owns, per
//! room, the id sequence, the history ring and the idempotency window for
//! `ref`s. [`MemoryStore`] keeps them in this process. A Redis engine
//! implements the same trait (ids and history in a stream per room, the
//! `ref` window in a hash) and adds cross-node delivery beside it; the
//! registry does not change shape.
//!
//! Invariants kept by every implementation:
//! - ids are per room, start at 1 and grow by exactly 1;
//! - a `ref` the room accepted among its last [`REF_WINDOW`] messages (or its
//!   retained history, if longer) maps to the id it got;
//! - a room keeps its last `history` messages, also while it has no members.

use charla_protocol::{ChatMessage, Member, RoomName};
use std::collections::{HashMap, VecDeque};

/// Messages per room for which a `ref` is remembered, at least.
pub const REF_WINDOW: u64 = 10_000;

/// A message about to be stored: everything but its id.
#[derive(Debug)]
pub struct Draft {
    pub from: Member,
    pub text: String,
    pub reference: Option<String>,
    pub at: u64,
}

/// The result of [`MessageStore::append`].
#[derive(Debug)]
pub enum Appended<'a> {
    /// Stored under the next id.
    New(&'a ChatMessage),
    /// The room had already accepted this `ref`: the original id, nothing stored.
    Duplicate(u64),
}

/// Retained messages after a given id, and whether none were dropped.
#[derive(Debug)]
pub struct Since {
    pub messages: Vec<ChatMessage>,
    /// False when messages with ids after `after` are no longer retained, or
    /// when `after` is beyond the room's last id (the sequence restarted).
    pub complete: bool,
}

/// Which page of history `GET /api/rooms/{room}/messages` asks for.
#[derive(Clone, Copy, Debug, Default)]
pub struct PageQuery {
    pub after: Option<u64>,
    pub before: Option<u64>,
    pub limit: usize,
}

/// Storage of room messages, behind the registry.
pub trait MessageStore: Send + 'static {
    /// Stores a message under the room's next id, unless its `ref` is known.
    fn append(&mut self, room: &RoomName, draft: Draft) -> Appended<'_>;
    /// Id of the room's newest message; 0 when it has none.
    fn last_id(&self, room: &RoomName) -> u64;
    /// The newest `limit` messages, ascending.
    fn recent(&self, room: &RoomName, limit: usize) -> Vec<ChatMessage>;
    /// Every retained message with an id above `after`, ascending. When
    /// `after` is beyond the last id, the room's sequence has restarted since
    /// the client saw it: the answer is the newest `fallback` messages and
    /// `complete` is false.
    fn since(&self, room: &RoomName, after: u64, fallback: usize) -> Since;
    /// One page of history, by the contract's rule 13.
    fn page(&self, room: &RoomName, query: PageQuery) -> Vec<ChatMessage>;
    /// Drops everything about a room (it was evicted).
    fn forget(&mut self, room: &RoomName);
}

/// Messages kept in this process's memory.
#[derive(Debug)]
pub struct MemoryStore {
    history: usize,
    ref_window: u64,
    rooms: HashMap<RoomName, RoomLog>,
}

#[derive(Debug, Default)]
struct RoomLog {
    last_id: u64,
    messages: VecDeque<ChatMessage>,
    refs: HashMap<String, u64>,
    /// `(id, ref)` in id order, to forget refs that leave the window.
    ref_order: VecDeque<(u64, String)>,
}

impl MemoryStore {
    /// A store keeping `history` messages per room.
    pub fn new(history: usize) -> MemoryStore {
        MemoryStore {
            history,
            ref_window: REF_WINDOW.max(history as u64),
            rooms: HashMap::new(),
        }
    }
}

impl MessageStore for MemoryStore {
    fn append(&mut self, room: &RoomName, draft: Draft) -> Appended<'_> {
        let log = self.rooms.entry(room.clone()).or_default();
        if let Some(id) = draft.reference.as_ref().and_then(|r| log.refs.get(r)) {
            return Appended::Duplicate(*id);
        }
        log.last_id += 1;
        let id = log.last_id;
        if let Some(reference) = draft.reference {
            log.refs.insert(reference.clone(), id);
            log.ref_order.push_back((id, reference));
            while let Some((oldest, _)) = log.ref_order.front() {
                if *oldest + self.ref_window > id {
                    break;
                }
                if let Some((_, old)) = log.ref_order.pop_front() {
                    log.refs.remove(&old);
                }
            }
        }
        // `history` is at least 1 (the configuration insists), so the
        // message just pushed is always there to hand back.
        while log.messages.len() >= self.history.max(1) {
            log.messages.pop_front();
        }
        log.messages.push_back(ChatMessage {
            room: room.as_str().to_owned(),
            id,
            from: draft.from,
            text: draft.text,
            at: draft.at,
        });
        Appended::New(log.messages.back().expect("a message was just pushed"))
    }

    fn last_id(&self, room: &RoomName) -> u64 {
        self.rooms.get(room).map_or(0, |log| log.last_id)
    }

    fn recent(&self, room: &RoomName, limit: usize) -> Vec<ChatMessage> {
        let Some(log) = self.rooms.get(room) else {
            return Vec::new();
        };
        let skip = log.messages.len().saturating_sub(limit);
        log.messages.iter().skip(skip).cloned().collect()
    }

    fn since(&self, room: &RoomName, after: u64, fallback: usize) -> Since {
        if after > self.last_id(room) {
            return Since {
                messages: self.recent(room, fallback),
                complete: false,
            };
        }
        let Some(log) = self.rooms.get(room) else {
            return Since {
                messages: Vec::new(),
                complete: true,
            };
        };
        let oldest = log.messages.front().map_or(log.last_id + 1, |m| m.id);
        let messages: Vec<ChatMessage> = log
            .messages
            .iter()
            .filter(|m| m.id > after)
            .cloned()
            .collect();
        Since {
            messages,
            complete: oldest <= after + 1,
        }
    }

    fn page(&self, room: &RoomName, query: PageQuery) -> Vec<ChatMessage> {
        let Some(log) = self.rooms.get(room) else {
            return Vec::new();
        };
        let in_range = |m: &&ChatMessage| {
            query.after.is_none_or(|after| m.id > after)
                && query.before.is_none_or(|before| m.id < before)
        };
        if query.after.is_some() {
            log.messages
                .iter()
                .filter(in_range)
                .take(query.limit)
                .cloned()
                .collect()
        } else {
            let mut newest: Vec<ChatMessage> = log
                .messages
                .iter()
                .rev()
                .filter(in_range)
                .take(query.limit)
                .cloned()
                .collect();
            newest.reverse();
            newest
        }
    }

    fn forget(&mut self, room: &RoomName) {
        self.rooms.remove(room);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> RoomName {
        RoomName::parse("general").unwrap()
    }

    fn draft(text: &str, reference: Option<&str>) -> Draft {
        Draft {
            from: Member {
                id: "s1".into(),
                name: "ana".into(),
            },
            text: text.into(),
            reference: reference.map(str::to_owned),
            at: 1,
        }
    }

    fn append(store: &mut MemoryStore, text: &str, reference: Option<&str>) -> Result<u64, u64> {
        match store.append(&room(), draft(text, reference)) {
            Appended::New(message) => Ok(message.id),
            Appended::Duplicate(id) => Err(id),
        }
    }

    fn ids(messages: &[ChatMessage]) -> Vec<u64> {
        messages.iter().map(|m| m.id).collect()
    }

    #[test]
    fn ids_start_at_one_and_history_keeps_the_newest() {
        let mut store = MemoryStore::new(3);
        for n in 1..=5 {
            assert_eq!(append(&mut store, "x", None), Ok(n));
        }
        assert_eq!(store.last_id(&room()), 5);
        assert_eq!(ids(&store.recent(&room(), 10)), [3, 4, 5]);
        assert_eq!(ids(&store.recent(&room(), 2)), [4, 5]);
    }

    #[test]
    fn since_reports_gaps_and_restarted_sequences() {
        let mut store = MemoryStore::new(3);
        for _ in 0..5 {
            append(&mut store, "x", None).unwrap();
        }
        let since = store.since(&room(), 2, 50);
        assert_eq!(
            (ids(&since.messages), since.complete),
            (vec![3, 4, 5], true)
        );
        let since = store.since(&room(), 1, 50);
        assert_eq!(
            (ids(&since.messages), since.complete),
            (vec![3, 4, 5], false)
        );
        let since = store.since(&room(), 5, 50);
        assert_eq!((ids(&since.messages), since.complete), (vec![], true));
        let since = store.since(&room(), 9, 2);
        assert_eq!((ids(&since.messages), since.complete), (vec![4, 5], false));
    }

    #[test]
    fn refs_are_remembered_beyond_history_within_the_window() {
        let mut store = MemoryStore::new(1);
        assert_eq!(append(&mut store, "a", Some("r1")), Ok(1));
        for _ in 0..100 {
            append(&mut store, "x", None).unwrap();
        }
        assert_eq!(append(&mut store, "other text", Some("r1")), Err(1));
        let other = RoomName::parse("other").unwrap();
        assert!(
            matches!(store.append(&other, draft("a", Some("r1"))), Appended::New(m) if m.id == 1)
        );
    }

    #[test]
    fn refs_leave_the_window_after_ten_thousand_messages() {
        let mut store = MemoryStore::new(1);
        append(&mut store, "a", Some("old")).unwrap();
        for n in 0..REF_WINDOW {
            append(&mut store, "x", Some(&format!("r{n}"))).unwrap();
        }
        assert_eq!(
            append(&mut store, "again", Some("r9999")),
            Err(REF_WINDOW + 1)
        );
        assert!(append(&mut store, "again", Some("old")).is_ok());
    }

    #[test]
    fn pages_follow_rule_13() {
        let mut store = MemoryStore::new(100);
        for _ in 0..10 {
            append(&mut store, "x", None).unwrap();
        }
        let page = |after, before, limit| {
            ids(&store.page(
                &room(),
                PageQuery {
                    after,
                    before,
                    limit,
                },
            ))
        };
        assert_eq!(page(None, None, 3), [8, 9, 10]);
        assert_eq!(page(None, Some(5), 3), [2, 3, 4]);
        assert_eq!(page(Some(5), None, 3), [6, 7, 8]);
        assert_eq!(page(Some(2), Some(5), 50), [3, 4]);
        assert_eq!(page(Some(10), None, 50), Vec::<u64>::new());
        assert!(
            store
                .page(
                    &RoomName::parse("empty").unwrap(),
                    PageQuery {
                        limit: 5,
                        ..Default::default()
                    }
                )
                .is_empty()
        );
    }
}
