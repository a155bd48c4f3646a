//! Where rooms' messages are kept: the seam between the registry and the
//! storage engine.
//!
//! The registry owns membership and delivery; the [`Store`] owns, per room
//! in memory, a [`RoomLog`]: the id sequence, the newest `history` stored
//! messages and the `ref` window. Behind it sits one of two engines:
//!
//! - **SQLite** (the default, `CHARLA_DATABASE=charla.db`): a
//!   [`database::Database`] file written by the [`journal::Journal`]'s
//!   thread in batches. A message is acknowledged and broadcast only once
//!   its batch committed. A room's log is read from the file the first time
//!   the room is used after a start (or after eviction freed it), with one
//!   indexed read of at most `history` rows; `join`, resume and the room
//!   page are then answered from memory. History pages of rooms not in
//!   memory are read by the HTTP handler on a blocking thread.
//! - **Memory** (`CHARLA_DATABASE=:memory:`, for tests and benchmarks):
//!   staged messages are committed at once and nothing outlives the
//!   process or an evicted room. Each room log gets a fresh epoch, so a
//!   client resuming across a restarted sequence is told (`complete:
//!   false`).
//!
//! Invariants kept with either engine:
//! - ids are per room, start at 1 and grow by exactly 1; with SQLite they
//!   continue across restarts and evictions;
//! - a `ref` the room accepted among its last [`REF_WINDOW`] messages (or
//!   its retained history, if longer) maps to the id it got;
//! - a room keeps its last `history` messages, also while it has no members.

pub(crate) mod database;
pub(crate) mod journal;
mod log;
#[cfg(test)]
mod properties;

pub(crate) use log::{Changer, JoinedPage, RoomLog, Staged};

use actix::Recipient;
use charla_protocol::{ChatMessage, Member, RoomName};
use database::{Database, Reader, Record};
use journal::{Journal, Written};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Messages per room for which a `ref` is remembered, at least.
pub(crate) const REF_WINDOW: u64 = 10_000;

/// A message about to be stored: everything but its id.
#[derive(Debug, Default)]
pub(crate) struct Draft {
    pub(crate) from: Member,
    pub(crate) text: String,
    pub(crate) reference: Option<String>,
    pub(crate) at: u64,
    /// For an edit entry: the message it edits (docs/protocol.md, rule 50).
    pub(crate) edits: Option<u64>,
    /// For a delete entry: the message it deletes.
    pub(crate) deletes: Option<u64>,
}

/// Which page of history `GET /api/rooms/{room}/messages` asks for.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PageQuery {
    pub(crate) after: Option<u64>,
    pub(crate) before: Option<u64>,
    pub(crate) limit: usize,
}

/// What happened to a message handed to [`Store::submit`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Submitted {
    /// The engine keeps nothing: commit it now.
    Now,
    /// The writer has it; a [`Written`] reports the outcome.
    Later,
    /// The writer is gone: refuse it.
    Refused,
}

/// The logs of the rooms in memory, and the engine behind them.
pub(crate) struct Store {
    history: usize,
    ref_window: u64,
    logs: HashMap<RoomName, RoomLog>,
    /// The sum of every log's [`RoomLog::bytes`].
    bytes: usize,
    engine: Engine,
}

enum Engine {
    Memory,
    /// Redis ([`crate::cluster`]): ids come from Redis and the registry
    /// installs each room's log, a window on what Redis holds.
    Shared,
    /// The SQLite engine after [`Store::close`]: everything is refused.
    Closed,
    Sqlite {
        epoch: Arc<str>,
        reader: Reader,
        journal: Journal,
    },
}

/// A room's log could not be read from the database.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    #[error("cannot read room {room} from the database: {cause}")]
    Read {
        room: RoomName,
        cause: rusqlite::Error,
    },
    #[error("room {0} is not in memory and the database is closed (the server is stopping)")]
    Closed(RoomName),
}

impl Store {
    /// A store that keeps nothing beyond this process.
    pub(crate) fn memory(history: usize) -> Store {
        Store {
            history,
            ref_window: ref_window(history),
            logs: HashMap::new(),
            bytes: 0,
            engine: Engine::Memory,
        }
    }

    /// A store whose logs are windows on the rooms Redis holds.
    pub(crate) fn shared(history: usize) -> Store {
        Store {
            history,
            ref_window: ref_window(history),
            logs: HashMap::new(),
            bytes: 0,
            engine: Engine::Shared,
        }
    }

    /// Puts a room's log in memory, replacing the one there (Redis engine).
    pub(crate) fn install(&mut self, room: &RoomName, log: RoomLog) {
        self.bytes += log.bytes();
        if let Some(old) = self.logs.insert(room.clone(), log) {
            self.bytes -= old.bytes();
        }
    }

    /// Bytes of message history held in memory, every room together.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds a message stored elsewhere to `room`'s log in memory, if it is
    /// there and the message is the next one; answers whether it was.
    pub(crate) fn append(&mut self, room: &RoomName, message: ChatMessage) -> bool {
        let history = self.history;
        match self.logs.get_mut(room) {
            Some(log) if message.id == log.last_id() + 1 => {
                let before = log.bytes();
                log.append(message, history);
                self.bytes = self.bytes + log.bytes() - before;
                true
            }
            _ => false,
        }
    }

    /// A store on `database`, whose writer thread reports to `written`.
    pub(crate) fn sqlite(
        database: Database,
        history: usize,
        written: Recipient<Written>,
    ) -> std::io::Result<Store> {
        let epoch: Arc<str> = Arc::from(database.epoch());
        let reader = database.reader().map_err(std::io::Error::other)?;
        let ref_window = ref_window(history);
        let journal = Journal::start(database, history, ref_window, written)?;
        Ok(Store {
            history,
            ref_window,
            logs: HashMap::new(),
            bytes: 0,
            engine: Engine::Sqlite {
                epoch,
                reader,
                journal,
            },
        })
    }

    /// The writer's health flag (always healthy in memory).
    pub(crate) fn health(&self) -> Arc<AtomicBool> {
        match &self.engine {
            Engine::Memory | Engine::Shared | Engine::Closed => Arc::new(AtomicBool::new(true)),
            Engine::Sqlite { journal, .. } => journal.health(),
        }
    }

    /// The log of `room`, read from the engine the first time.
    pub(crate) fn log(&mut self, room: &RoomName) -> Result<&mut RoomLog, LoadError> {
        if !self.logs.contains_key(room) {
            let log = match &self.engine {
                Engine::Memory => {
                    let epoch = format!("{:016x}", fastrand::u64(..));
                    RoomLog::new(Arc::from(epoch), 0, Vec::new(), Vec::new())
                }
                Engine::Closed | Engine::Shared => return Err(LoadError::Closed(room.clone())),
                Engine::Sqlite { epoch, reader, .. } => {
                    let stored = reader
                        .load_room(room.as_str(), self.history, self.ref_window)
                        .map_err(|cause| LoadError::Read {
                            room: room.clone(),
                            cause,
                        })?;
                    let messages = stored.messages.into_iter().map(Record::into_message);
                    RoomLog::new(
                        epoch.clone(),
                        stored.last_id,
                        messages.collect(),
                        stored.refs,
                    )
                }
            };
            self.bytes += log.bytes();
            self.logs.insert(room.clone(), log);
        }
        Ok(self
            .logs
            .get_mut(room)
            .expect("the log was inserted just above if it was missing"))
    }

    /// The log of `room` if it is in memory.
    pub(crate) fn loaded(&self, room: &RoomName) -> Option<&RoomLog> {
        self.logs.get(room)
    }

    /// Whether a room missing from memory may still have history elsewhere.
    pub(crate) fn is_durable(&self) -> bool {
        !matches!(self.engine, Engine::Memory)
    }

    /// Drops a room's log from memory (with SQLite, its history stays on
    /// disk).
    pub(crate) fn forget(&mut self, room: &RoomName) {
        if let Some(log) = self.logs.remove(room) {
            self.bytes -= log.bytes();
        }
    }

    /// Gives a message the next id of `room` (read from the engine the
    /// first time), unless its `ref` is known: see [`RoomLog::stage`].
    pub(crate) fn stage(
        &mut self,
        room: &RoomName,
        draft: Draft,
    ) -> Result<(Staged, Option<ChatMessage>), LoadError> {
        let ref_window = self.ref_window;
        Ok(self.log(room)?.stage(room.as_str(), draft, ref_window))
    }

    /// Records that a staged message of `room` is stored, if the room's log
    /// is still in memory (an evicted one reads it back from the engine).
    pub(crate) fn commit(&mut self, room: &RoomName, message: ChatMessage) {
        let history = self.history;
        if let Some(log) = self.logs.get_mut(room) {
            let before = log.bytes();
            log.commit(message, history);
            self.bytes = self.bytes + log.bytes() - before;
        }
    }

    /// Hands a staged message to the engine.
    pub(crate) fn submit(
        &self,
        generation: u64,
        message: &ChatMessage,
        reference: Option<&str>,
    ) -> Submitted {
        match &self.engine {
            Engine::Memory => Submitted::Now,
            Engine::Closed | Engine::Shared => Submitted::Refused,
            Engine::Sqlite { journal, .. } => {
                if journal.submit(generation, Record::of(message, reference)) {
                    Submitted::Later
                } else {
                    Submitted::Refused
                }
            }
        }
    }

    /// Stops the writer once it has stored (and synced) what it was given;
    /// the outcomes still reach the registry. Nothing is stored after.
    pub(crate) fn close(&mut self) {
        if matches!(self.engine, Engine::Sqlite { .. }) {
            // Dropping the journal joins its thread.
            self.engine = Engine::Closed;
        }
    }

    /// Forgets every staged message of every room (their batch failed).
    pub(crate) fn rewind_all(&mut self) {
        for log in self.logs.values_mut() {
            log.rewind();
        }
    }
}

/// Refs are remembered for [`REF_WINDOW`] messages, or the whole history if
/// it is longer.
pub(crate) fn ref_window(history: usize) -> u64 {
    REF_WINDOW.max(u64::try_from(history).unwrap_or(u64::MAX))
}
