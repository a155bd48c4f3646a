//! One room's log as the registry sees it: the id sequence, the newest
//! `history` stored messages and the `ref` window.
//!
//! A message is first *staged* (it gets the next id and its `ref` is
//! remembered), then *committed* once the engine stored it (it joins the
//! window that `join`, resume and history pages read) or *rewound* if the
//! engine failed (its id and `ref` are handed out again). Nothing reads a
//! staged message: what a client can see has been stored.
//!
//! Invariants:
//! - `committed <= assigned`; ids are handed out one by one from
//!   `committed + 1`, so they stay contiguous through a rewind;
//! - `messages` holds committed messages only, ascending, at most `history`;
//! - every `ref` of the last `ref_window` stored ids, and of every staged
//!   one, maps to its id (older ones may linger until the next stage); it
//!   is pending while that id is above `committed`.

use super::{Draft, PageQuery};
use charla_protocol::ChatMessage;
use charla_protocol::ErrorCode;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// The answer of [`RoomLog::stage`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Staged {
    /// The message got this id and waits to be stored.
    New(u64),
    /// The room stored this `ref` already, under this id: nothing to do.
    Stored(u64),
    /// This `ref` is staged under this id and not stored yet.
    Pending(u64),
}

/// One room's log.
#[derive(Debug)]
pub(crate) struct RoomLog {
    /// Names this room's id sequence: a client compares it across
    /// reconnects to tell a continued sequence from a restarted one.
    pub(crate) epoch: Arc<str>,
    assigned: u64,
    committed: u64,
    messages: VecDeque<ChatMessage>,
    /// What `messages` holds in memory, by [`held_bytes`].
    bytes: usize,
    refs: HashMap<String, u64>,
    /// `(id, ref)` in id order, to forget refs that leave the window.
    ref_order: VecDeque<(u64, String)>,
    /// Messages a staged delete entry deletes: no further change of them
    /// is staged (rule 50).
    deleting: HashSet<u64>,
}

/// Who asks to change a message: its author's member id, or a moderator
/// (who may change any message).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Changer<'a> {
    Author(&'a str),
    Moderator,
}

impl RoomLog {
    /// A log that starts after `last_id` with these stored messages
    /// (ascending) and refs (ascending by id).
    pub(crate) fn new(
        epoch: Arc<str>,
        last_id: u64,
        messages: Vec<ChatMessage>,
        refs: Vec<(String, u64)>,
    ) -> RoomLog {
        let bytes = messages.iter().map(held_bytes).sum();
        let mut log = RoomLog {
            epoch,
            assigned: last_id,
            committed: last_id,
            messages: messages.into(),
            bytes,
            refs: HashMap::with_capacity(refs.len()),
            ref_order: VecDeque::with_capacity(refs.len()),
            deleting: HashSet::new(),
        };
        for (reference, id) in refs {
            log.refs.insert(reference.clone(), id);
            log.ref_order.push_back((id, reference));
        }
        log
    }

    /// Id of the newest stored message; 0 when there is none.
    pub(crate) fn last_id(&self) -> u64 {
        self.committed
    }

    /// The bytes of memory its messages hold (see [`held_bytes`]).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether `reference` is in the `ref` window (stored or staged).
    pub(crate) fn knows_ref(&self, reference: &str) -> bool {
        self.refs.contains_key(reference)
    }

    /// The retained message or entry with this id.
    fn position(&self, id: u64) -> Option<usize> {
        self.messages.binary_search_by_key(&id, |m| m.id).ok()
    }

    /// Whether `changer` may edit or delete message `id` (rule 50): it must
    /// be a retained message (not an entry), not deleted nor being deleted,
    /// and the changer's own unless a moderator asks.
    pub(crate) fn check_change(&self, id: u64, changer: Changer<'_>) -> Result<(), ErrorCode> {
        let message = self
            .position(id)
            .map(|at| &self.messages[at])
            .filter(|m| m.target().is_none() && !m.deleted && !self.deleting.contains(&id))
            .ok_or(ErrorCode::UnknownMessage)?;
        match changer {
            Changer::Author(author) if author != message.from.id => Err(ErrorCode::NotAuthor),
            _ => Ok(()),
        }
    }

    /// Applies an edit or delete entry, about to be retained, to the
    /// message it changes if that is retained: the message takes its new
    /// text or is emptied, and a delete empties the edit entries that held
    /// the message's texts (so does an edit that comes after the delete).
    fn apply_change(&mut self, entry: &mut ChatMessage) {
        let Some(target) = entry.target() else {
            return;
        };
        if entry.deletes.is_some() {
            self.deleting.remove(&target);
        }
        let Some(at) = self.position(target) else {
            return;
        };
        let before = held_bytes(&self.messages[at]);
        self.messages[at].apply(entry);
        let after = held_bytes(&self.messages[at]);
        self.bytes = self.bytes + after - before;
        if self.messages[at].deleted {
            entry.text.clear();
            for later in self.messages.range_mut(at + 1..) {
                if later.edits == Some(target) && !later.text.is_empty() {
                    self.bytes -= later.text.len();
                    later.text.clear();
                }
            }
        }
    }

    /// Keeps the newest `history` messages once `message`, the next one,
    /// is added (an edit or delete entry changes its message first).
    fn push_retained(&mut self, mut message: ChatMessage, history: usize) {
        self.apply_change(&mut message);
        // `history` is at least 1 (the configuration insists).
        while self.messages.len() >= history.max(1) {
            if let Some(oldest) = self.messages.pop_front() {
                self.bytes -= held_bytes(&oldest);
            }
        }
        self.bytes += held_bytes(&message);
        self.messages.push_back(message);
    }

    /// Whether messages are staged and not yet stored.
    pub(crate) fn has_pending(&self) -> bool {
        self.assigned > self.committed
    }

    /// Whether the room ever had a message (stored or staged).
    pub(crate) fn is_empty(&self) -> bool {
        self.assigned == 0
    }

    /// Gives a message the next id, unless its `ref` is known.
    pub(crate) fn stage(
        &mut self,
        room: &str,
        draft: Draft,
        ref_window: u64,
    ) -> (Staged, Option<ChatMessage>) {
        if let Some(&id) = draft.reference.as_ref().and_then(|r| self.refs.get(r)) {
            let staged = if id <= self.committed {
                Staged::Stored(id)
            } else {
                Staged::Pending(id)
            };
            return (staged, None);
        }
        self.assigned += 1;
        let id = self.assigned;
        if let Some(reference) = &draft.reference {
            self.refs.insert(reference.clone(), id);
            self.ref_order.push_back((id, reference.clone()));
        }
        // The window is measured from the last stored id, not from this
        // staged one: a stage that is rewound must not have pushed out a
        // ref that is still among the last `ref_window` stored.
        while let Some((oldest, _)) = self.ref_order.front() {
            if *oldest + ref_window > self.committed {
                break;
            }
            if let Some((_, old)) = self.ref_order.pop_front() {
                self.refs.remove(&old);
            }
        }
        if let Some(target) = draft.deletes {
            self.deleting.insert(target);
        }
        let message = ChatMessage {
            room: room.to_owned(),
            id,
            from: draft.from,
            text: draft.text,
            at: draft.at,
            edits: draft.edits,
            deletes: draft.deletes,
            ..ChatMessage::default()
        };
        (Staged::New(id), Some(message))
    }

    /// Records that the staged message `message` is stored: it joins the
    /// window, which keeps its newest `history` messages.
    pub(crate) fn commit(&mut self, message: ChatMessage, history: usize) {
        debug_assert_eq!(message.id, self.committed + 1, "commits come in id order");
        self.committed = message.id;
        self.push_retained(message, history);
    }

    /// Adds a message stored elsewhere (another node's, with Redis): the
    /// sequence moves to its id.
    pub(crate) fn append(&mut self, message: ChatMessage, history: usize) {
        debug_assert!(message.id > self.committed, "appends come in id order");
        self.committed = message.id;
        self.assigned = message.id;
        self.push_retained(message, history);
    }

    /// Forgets every staged message: the engine could not store them, so
    /// their ids and refs are handed out again.
    pub(crate) fn rewind(&mut self) {
        while let Some((id, _)) = self.ref_order.back() {
            if *id <= self.committed {
                break;
            }
            if let Some((_, reference)) = self.ref_order.pop_back() {
                self.refs.remove(&reference);
            }
        }
        self.assigned = self.committed;
        self.deleting.clear();
    }

    /// The newest `limit` stored messages, ascending.
    pub(crate) fn recent(&self, limit: usize) -> Vec<ChatMessage> {
        let skip = self.messages.len().saturating_sub(limit);
        self.messages.iter().skip(skip).cloned().collect()
    }

    /// Whether a client that saw ids up to `after` of the sequence `epoch`
    /// (if it knows it) can continue this sequence: false once it restarted.
    fn continues(&self, after: u64, epoch: Option<&str>) -> bool {
        after <= self.committed && epoch.is_none_or(|e| e == &*self.epoch)
    }

    /// Every retained message after `after`, ascending, and whether none
    /// were dropped (docs/protocol.md, rule 11 and 27). When `after` is
    /// beyond the last id, or `epoch` names another sequence than this
    /// room's, the client saw a sequence that has restarted since: the
    /// answer is the newest `fallback` messages, incomplete. (A join's
    /// page without a byte budget: what tests compare against.)
    #[cfg(test)]
    pub(crate) fn since(&self, after: u64, epoch: Option<&str>, fallback: usize) -> JoinedPage {
        self.joined_page(Some(after), epoch, fallback, usize::MAX)
    }

    /// The history a `join` is answered with, at most `budget` bytes of
    /// message events (but never less than one message), read without
    /// copying more than it keeps. Resuming (`after` in this sequence):
    /// the oldest retained messages after `after`, `complete` as in
    /// [`RoomLog::since`], and `more` when the budget cut it (rule 43).
    /// Otherwise (no `after`, or a restarted sequence, rule 27): the newest
    /// of the last `recent` messages that fit, `complete` only without
    /// `after`.
    pub(crate) fn joined_page(
        &self,
        after: Option<u64>,
        epoch: Option<&str>,
        recent: usize,
        budget: usize,
    ) -> JoinedPage {
        match after.filter(|after| self.continues(*after, epoch)) {
            Some(after) => {
                let oldest = self.messages.front().map_or(self.committed + 1, |m| m.id);
                let missed = self.messages.iter().skip_while(|m| m.id <= after);
                let (messages, more) = take_fitting(missed, budget);
                JoinedPage {
                    messages,
                    complete: oldest <= after + 1,
                    more,
                }
            }
            None => {
                let skip = self.messages.len().saturating_sub(recent);
                let (mut messages, _) = take_fitting(self.messages.iter().skip(skip).rev(), budget);
                messages.reverse();
                JoinedPage {
                    messages,
                    complete: after.is_none(),
                    more: false,
                }
            }
        }
    }

    /// One page of history (docs/protocol.md, rule 13).
    pub(crate) fn page(&self, query: PageQuery) -> Vec<ChatMessage> {
        page(self.messages.iter(), query)
    }
}

/// What one message holds in memory: its struct and its strings' bytes
/// (allocator overhead aside), the measure of `CHARLA_HISTORY_MEMORY_BYTES`.
pub(crate) fn held_bytes(message: &ChatMessage) -> usize {
    std::mem::size_of::<ChatMessage>()
        + message.room.len()
        + message.from.id.len()
        + message.from.name.len()
        + message.text.len()
}

/// The messages a `join` is answered with (see [`RoomLog::joined_page`]).
#[derive(Debug)]
pub(crate) struct JoinedPage {
    pub(crate) messages: Vec<ChatMessage>,
    pub(crate) complete: bool,
    pub(crate) more: bool,
}

/// Copies messages in order while their events fit in `budget` bytes
/// (at least one, if there is one); answers them and whether any was left.
fn take_fitting<'a>(
    mut messages: impl Iterator<Item = &'a ChatMessage>,
    budget: usize,
) -> (Vec<ChatMessage>, bool) {
    let mut kept = Vec::new();
    let mut used = 0;
    for message in messages.by_ref() {
        used += charla_protocol::server::message_event_len(message);
        if used > budget && !kept.is_empty() {
            return (kept, true);
        }
        kept.push(message.clone());
    }
    (kept, false)
}

/// One page of history out of `messages` (ascending), by rule 13: with
/// `after`, the oldest `limit` above it; otherwise the newest `limit` below
/// `before` (or overall).
fn page<'a>(
    messages: impl DoubleEndedIterator<Item = &'a ChatMessage>,
    query: PageQuery,
) -> Vec<ChatMessage> {
    let in_range = |m: &&ChatMessage| {
        query.after.is_none_or(|after| m.id > after)
            && query.before.is_none_or(|before| m.id < before)
    };
    if query.after.is_some() {
        messages
            .filter(in_range)
            .take(query.limit)
            .cloned()
            .collect()
    } else {
        let mut newest: Vec<ChatMessage> = messages
            .rev()
            .filter(in_range)
            .take(query.limit)
            .cloned()
            .collect();
        newest.reverse();
        newest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::REF_WINDOW;
    use charla_protocol::Member;

    fn log() -> RoomLog {
        RoomLog::new(Arc::from("e1"), 0, Vec::new(), Vec::new())
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
            ..Draft::default()
        }
    }

    /// Stages and commits at once, as the in-memory engine does.
    fn append(log: &mut RoomLog, history: usize, reference: Option<&str>) -> Staged {
        let (staged, message) = log.stage("general", draft("x", reference), REF_WINDOW);
        if let Some(message) = message {
            log.commit(message, history);
        }
        staged
    }

    fn ids(messages: &[ChatMessage]) -> Vec<u64> {
        messages.iter().map(|m| m.id).collect()
    }

    #[test]
    fn ids_start_at_one_and_history_keeps_the_newest() {
        let mut log = log();
        for n in 1..=5 {
            assert_eq!(append(&mut log, 3, None), Staged::New(n));
        }
        assert_eq!(log.last_id(), 5);
        assert_eq!(ids(&log.recent(10)), [3, 4, 5]);
        assert_eq!(ids(&log.recent(2)), [4, 5]);
    }

    #[test]
    fn since_reports_gaps_and_restarted_sequences() {
        let mut log = log();
        for _ in 0..5 {
            append(&mut log, 3, None);
        }
        let since = log.since(2, None, 50);
        assert_eq!(
            (ids(&since.messages), since.complete),
            (vec![3, 4, 5], true)
        );
        let since = log.since(1, None, 50);
        assert_eq!(
            (ids(&since.messages), since.complete),
            (vec![3, 4, 5], false)
        );
        let since = log.since(5, None, 50);
        assert_eq!((ids(&since.messages), since.complete), (vec![], true));
        let since = log.since(9, None, 2);
        assert_eq!((ids(&since.messages), since.complete), (vec![4, 5], false));
        let since = log.since(2, Some("e1"), 50);
        assert_eq!(
            (ids(&since.messages), since.complete),
            (vec![3, 4, 5], true)
        );
        let since = log.since(2, Some("another"), 2);
        assert_eq!((ids(&since.messages), since.complete), (vec![4, 5], false));
    }

    #[test]
    fn refs_are_remembered_beyond_history_within_the_window() {
        let mut log = log();
        assert_eq!(append(&mut log, 1, Some("r1")), Staged::New(1));
        for _ in 0..100 {
            append(&mut log, 1, None);
        }
        assert_eq!(append(&mut log, 1, Some("r1")), Staged::Stored(1));
    }

    #[test]
    fn refs_leave_the_window_after_ten_thousand_messages() {
        let mut log = log();
        append(&mut log, 1, Some("old"));
        for n in 0..REF_WINDOW {
            append(&mut log, 1, Some(&format!("r{n}")));
        }
        assert_eq!(
            append(&mut log, 1, Some("r9999")),
            Staged::Stored(REF_WINDOW + 1)
        );
        // The window counts stored ids: "old" (id 1) leaves it once 10,000
        // newer ones are stored, at the next message staged.
        append(&mut log, 1, None);
        assert!(matches!(append(&mut log, 1, Some("old")), Staged::New(_)));
    }

    #[test]
    fn staged_messages_are_invisible_until_committed() {
        let mut log = log();
        append(&mut log, 10, None);
        let (staged, message) = log.stage("general", draft("y", Some("r")), REF_WINDOW);
        assert_eq!(staged, Staged::New(2));
        assert!(log.has_pending());
        assert_eq!(log.last_id(), 1);
        assert_eq!(ids(&log.recent(10)), [1]);
        let (again, none) = log.stage("general", draft("y", Some("r")), REF_WINDOW);
        assert_eq!((again, none), (Staged::Pending(2), None));
        log.commit(message.unwrap(), 10);
        assert!(!log.has_pending());
        assert_eq!(ids(&log.recent(10)), [1, 2]);
        assert_eq!(append(&mut log, 10, Some("r")), Staged::Stored(2));
    }

    #[test]
    fn a_rewind_hands_the_ids_and_refs_out_again() {
        let mut log = log();
        append(&mut log, 10, Some("kept"));
        let _ = log.stage("general", draft("lost", Some("lost")), REF_WINDOW);
        let _ = log.stage("general", draft("lost too", None), REF_WINDOW);
        log.rewind();
        assert!(!log.has_pending());
        assert_eq!(append(&mut log, 10, Some("lost")), Staged::New(2));
        assert_eq!(append(&mut log, 10, Some("kept")), Staged::Stored(1));
        assert_eq!(append(&mut log, 10, None), Staged::New(3));
    }

    #[test]
    fn pages_follow_rule_13() {
        let mut log = log();
        for _ in 0..10 {
            append(&mut log, 100, None);
        }
        let page = |after, before, limit| {
            ids(&log.page(PageQuery {
                after,
                before,
                limit,
            }))
        };
        assert_eq!(page(None, None, 3), [8, 9, 10]);
        assert_eq!(page(None, Some(5), 3), [2, 3, 4]);
        assert_eq!(page(Some(5), None, 3), [6, 7, 8]);
        assert_eq!(page(Some(2), Some(5), 50), [3, 4]);
        assert_eq!(page(Some(10), None, 50), Vec::<u64>::new());
    }

    /// Stages and commits a change entry of `target` by `author`.
    fn change(log: &mut RoomLog, author: &str, target: u64, text: Option<&str>) -> ChatMessage {
        let mut from = draft("", None).from;
        from.id = author.to_owned();
        let draft = Draft {
            from,
            text: text.unwrap_or_default().to_owned(),
            at: 9,
            edits: text.is_some().then_some(target),
            deletes: text.is_none().then_some(target),
            ..Draft::default()
        };
        let (_, message) = log.stage("general", draft, REF_WINDOW);
        let message = message.expect("a new entry");
        log.commit(message.clone(), 100);
        message
    }

    #[test]
    fn changes_apply_to_their_message_and_are_checked_against_its_author() {
        let mut log = log();
        append(&mut log, 100, None);
        append(&mut log, 100, None);
        let ana = Changer::Author("s1");
        assert_eq!(log.check_change(1, ana), Ok(()));
        assert_eq!(
            log.check_change(1, Changer::Author("s2")),
            Err(ErrorCode::NotAuthor)
        );
        assert_eq!(log.check_change(3, ana), Err(ErrorCode::UnknownMessage));
        let bytes = log.bytes();
        let edit = change(&mut log, "s1", 1, Some("longer text now"));
        assert_eq!(
            log.check_change(edit.id, ana),
            Err(ErrorCode::UnknownMessage)
        );
        let recent = log.recent(10);
        assert_eq!(
            (recent[0].text.as_str(), recent[0].edited),
            ("longer text now", Some(9))
        );
        assert!(
            log.bytes() > bytes + held_bytes(&edit) - 1,
            "the new text is counted"
        );

        // A staged delete makes the message unchangeable before it commits.
        let draft = Draft {
            deletes: Some(2),
            ..draft("", None)
        };
        let (_, staged) = log.stage("general", draft, REF_WINDOW);
        assert_eq!(
            log.check_change(2, Changer::Moderator),
            Err(ErrorCode::UnknownMessage)
        );
        log.rewind();
        assert_eq!(
            log.check_change(2, Changer::Moderator),
            Ok(()),
            "a rewound delete is void"
        );
        drop(staged);

        change(&mut log, "api", 1, None);
        let recent = log.recent(10);
        assert!(recent[0].deleted);
        assert_eq!(recent[0].text, "");
        assert_eq!(recent[2].text, "", "the edit's text goes with the message");
        assert_eq!(log.check_change(1, ana), Err(ErrorCode::UnknownMessage));
    }
}
