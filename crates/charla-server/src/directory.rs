//! The room directory: member count and last message id of every room in
//! memory, in a [`DashMap`] the registry writes and HTTP handlers read.
//!
//! Only the registry writes, so the map never disagrees with the rooms it
//! owns for longer than one registry step; readers (`/api/rooms`, the lobby,
//! `watch_rooms` snapshots) take a consistent-enough view without a round
//! trip through the registry's mailbox.

use charla_protocol::{MAX_LISTED_ROOMS, RoomName, RoomSummary};
use dashmap::DashMap;

#[derive(Clone, Copy, Debug, Default)]
struct RoomStats {
    members: usize,
    last_id: u64,
}

/// Read-mostly snapshot of every room's counts.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    rooms: DashMap<RoomName, RoomStats>,
}

impl Directory {
    /// Records a room's member count.
    pub(crate) fn set_members(&self, room: &RoomName, members: usize) {
        self.rooms.entry(room.clone()).or_default().members = members;
    }

    /// Records a room's newest message id.
    pub(crate) fn set_last_id(&self, room: &RoomName, last_id: u64) {
        if let Some(mut stats) = self.rooms.get_mut(room) {
            stats.last_id = last_id;
        } else {
            self.rooms.insert(
                room.clone(),
                RoomStats {
                    members: 0,
                    last_id,
                },
            );
        }
    }

    /// Replaces every entry (the Redis engine's directory snapshot: name,
    /// members, last id).
    pub(crate) fn replace(&self, rooms: impl Iterator<Item = (RoomName, usize, u64)>) {
        let fresh: DashMap<RoomName, RoomStats> = rooms
            .map(|(room, members, last_id)| (room, RoomStats { members, last_id }))
            .collect();
        self.rooms.retain(|room, _| fresh.contains_key(room));
        for (room, stats) in fresh {
            self.rooms.insert(room, stats);
        }
    }

    /// Forgets a room that left memory.
    pub(crate) fn remove(&self, room: &RoomName) {
        self.rooms.remove(room);
    }

    /// Rooms with members: most members first, ties by name, at most 100.
    pub(crate) fn listing(&self) -> Vec<RoomSummary> {
        let mut rooms: Vec<RoomSummary> = self
            .rooms
            .iter()
            .filter(|entry| entry.value().members > 0)
            .map(|entry| RoomSummary {
                name: entry.key().as_str().to_owned(),
                members: entry.value().members,
                last_id: entry.value().last_id,
            })
            .collect();
        rooms.sort_unstable_by(|a, b| b.members.cmp(&a.members).then_with(|| a.name.cmp(&b.name)));
        rooms.truncate(MAX_LISTED_ROOMS);
        rooms
    }
}
