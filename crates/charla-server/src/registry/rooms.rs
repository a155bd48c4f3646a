//! The rooms in memory: who sits in each, and which room goes when the
//! `CHARLA_MAX_ROOMS` cap is reached (docs/protocol.md, rule 22).
//!
//! Invariants: at most `cap` rooms are held; only a room without members
//! (and that the caller allows: the registry keeps rooms whose messages are
//! still being stored) is ever evicted, and among those the least recently
//! active one (a join, a leave or a message makes a room active). A room's
//! messages are not here: they belong to the store.

use super::SessionId;
use crate::outbox::Outbox;
use charla_protocol::RoomName;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Instant;

/// A room in memory.
#[derive(Default)]
pub(crate) struct Room {
    pub(crate) seats: HashMap<SessionId, Seat>,
    /// [`Rooms`] tick of the last join, leave or message: eviction picks the
    /// smallest among empty rooms.
    last_active: u64,
}

/// One member's place in a room: a clone of its outbox, so a broadcast walks
/// one map and never looks the session up.
pub(crate) struct Seat {
    pub(crate) outbox: Outbox,
    pub(crate) last_typing: Option<Instant>,
}

impl Seat {
    pub(crate) fn new(outbox: Outbox) -> Seat {
        Seat {
            outbox,
            last_typing: None,
        }
    }
}

/// The answer of [`Rooms::admit`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// The room was already in memory, or there was room for it.
    Ready,
    /// The room is in memory now, and this room left to make space.
    Evicted(RoomName),
    /// The cap is reached and every room has members.
    Full,
}

/// Every room in memory, capped.
pub(crate) struct Rooms {
    rooms: HashMap<RoomName, Room>,
    cap: usize,
    tick: u64,
}

impl Rooms {
    pub(crate) fn new(cap: usize) -> Rooms {
        Rooms {
            rooms: HashMap::new(),
            cap,
            tick: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.rooms.len()
    }

    pub(crate) fn get(&self, room: &RoomName) -> Option<&Room> {
        self.rooms.get(room)
    }

    pub(crate) fn get_mut(&mut self, room: &RoomName) -> Option<&mut Room> {
        self.rooms.get_mut(room)
    }

    /// Members of `room`; 0 when it is not in memory.
    pub(crate) fn member_count(&self, room: &RoomName) -> usize {
        self.rooms.get(room).map_or(0, |r| r.seats.len())
    }

    /// Makes sure `room` is in memory, evicting the least recently active
    /// empty room that `evictable` allows when the cap is reached.
    pub(crate) fn admit(
        &mut self,
        room: &RoomName,
        evictable: impl Fn(&RoomName) -> bool,
    ) -> Admitted {
        if self.rooms.contains_key(room) {
            return Admitted::Ready;
        }
        let mut admitted = Admitted::Ready;
        if self.rooms.len() >= self.cap {
            let Some(victim) = self.least_recently_active_idle(evictable) else {
                return Admitted::Full;
            };
            self.rooms.remove(&victim);
            admitted = Admitted::Evicted(victim);
        }
        self.rooms.insert(room.clone(), Room::default());
        admitted
    }

    /// The least recently active room without members that `evictable`
    /// allows to go, if any.
    pub(crate) fn least_recently_active_idle(
        &self,
        evictable: impl Fn(&RoomName) -> bool,
    ) -> Option<RoomName> {
        self.rooms
            .iter()
            .filter(|(name, r)| r.seats.is_empty() && evictable(name))
            .min_by_key(|(_, r)| r.last_active)
            .map(|(name, _)| name.clone())
    }

    /// Seats `session` in `room` (which must have been admitted); false when
    /// it was already seated there.
    pub(crate) fn seat(&mut self, room: &RoomName, session: SessionId, seat: Seat) -> bool {
        let Some(entry) = self.rooms.get_mut(room) else {
            return false;
        };
        match entry.seats.entry(session) {
            Entry::Occupied(_) => false,
            Entry::Vacant(vacant) => {
                vacant.insert(seat);
                true
            }
        }
    }

    /// Takes `session` out of `room`; false when it was not there.
    pub(crate) fn unseat(&mut self, room: &RoomName, session: SessionId) -> bool {
        self.rooms
            .get_mut(room)
            .is_some_and(|r| r.seats.remove(&session).is_some())
    }

    /// Marks `room` as the most recently active one.
    pub(crate) fn touch(&mut self, room: &RoomName) {
        self.tick += 1;
        if let Some(room) = self.rooms.get_mut(room) {
            room.last_active = self.tick;
        }
    }

    /// Drops `room` from memory.
    pub(crate) fn remove(&mut self, room: &RoomName) {
        self.rooms.remove(room);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(raw: &str) -> RoomName {
        RoomName::parse(raw).unwrap()
    }

    fn occupy(rooms: &mut Rooms, room: &str, session: u64) {
        let (outbox, _receiver) = Outbox::channel(2, 1024);
        assert!(rooms.seat(&name(room), SessionId(session), Seat::new(outbox)));
    }

    #[test]
    fn the_least_recently_active_empty_room_goes_first() {
        let mut rooms = Rooms::new(3);
        for room in ["a", "b", "c"] {
            assert_eq!(rooms.admit(&name(room), |_| true), Admitted::Ready);
            rooms.touch(&name(room));
        }
        rooms.touch(&name("a"));
        assert_eq!(
            rooms.admit(&name("d"), |_| true),
            Admitted::Evicted(name("b"))
        );
        assert_eq!(rooms.len(), 3);
        assert!(rooms.get(&name("b")).is_none());
        assert_eq!(rooms.admit(&name("a"), |_| true), Admitted::Ready);
    }

    #[test]
    fn rooms_with_members_are_never_evicted() {
        let mut rooms = Rooms::new(2);
        rooms.admit(&name("a"), |_| true);
        rooms.admit(&name("b"), |_| true);
        occupy(&mut rooms, "a", 1);
        occupy(&mut rooms, "b", 2);
        assert_eq!(rooms.admit(&name("c"), |_| true), Admitted::Full);
        assert!(rooms.unseat(&name("a"), SessionId(1)));
        assert_eq!(rooms.admit(&name("c"), |n| n != &name("a")), Admitted::Full);
        occupy(&mut rooms, "a", 1);
        assert!(rooms.unseat(&name("b"), SessionId(2)));
        assert_eq!(
            rooms.admit(&name("c"), |_| true),
            Admitted::Evicted(name("b"))
        );
        assert_eq!(rooms.member_count(&name("a")), 1);
    }

    #[test]
    fn seating_twice_is_refused_and_unseating_a_stranger_is_a_no_op() {
        let mut rooms = Rooms::new(1);
        rooms.admit(&name("a"), |_| true);
        occupy(&mut rooms, "a", 1);
        let (outbox, _receiver) = Outbox::channel(2, 1024);
        assert!(!rooms.seat(&name("a"), SessionId(1), Seat::new(outbox)));
        assert!(!rooms.unseat(&name("a"), SessionId(9)));
        assert_eq!(rooms.member_count(&name("a")), 1);
    }
}
