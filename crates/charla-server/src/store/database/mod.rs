//! The SQLite file that keeps rooms' history across restarts. A [`Database`]
//! owns one file and is synchronous: its caller runs it on a dedicated
//! thread, and nothing here knows about actors or async. [`Reader`]s read the
//! same file from other threads.
//!
//! What it owns, per room: the last id handed out (`rooms`), the newest
//! `history` messages (`messages`) and the `ref` → id window (`refs`); per
//! file: the epoch (`meta`), a random id made when the file was created, which
//! names this file's id sequences.
//!
//! Invariants:
//! - a room's `last_id` never goes down, also when its messages are pruned, so
//!   ids continue after a restart and are never reused;
//! - [`Database::append`] commits a whole batch or nothing;
//! - after an append, a touched room keeps the messages with
//!   `id > last_id - history` (its newest `history`, because ids grow by
//!   exactly 1) and the refs with `id > last_id - ref_window`;
//! - one process per file: an advisory lock on `<file>-lock` is held for the
//!   `Database`'s lifetime. SQLite itself stays in its normal locking mode, so
//!   `sqlite3 charla.db ".backup backup.db"` works while Charla runs;
//! - the schema version is `PRAGMA user_version`: [`MIGRATIONS`] run in order
//!   from the file's version, so a later Charla opens an older file; a file
//!   newer than this binary, or another program's file, is refused untouched.
//!
//! Durability: WAL with `synchronous=NORMAL` (fsyncs happen at checkpoints,
//! not at each commit). A committed transaction survives a crash of the
//! process; a power loss or OS crash can lose the transactions committed
//! since the last checkpoint, and never corrupts the file.

mod open;
#[cfg(test)]
mod tests;

pub(crate) use open::OpenError;

use charla_protocol::{ChatMessage, Member};
use rusqlite::types::Type;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a statement waits for a lock held by another connection (an
/// operator's `sqlite3` shell writing, say) before failing with SQLITE_BUSY.
/// Short, so the writer thread reports trouble instead of stalling; readers
/// such as a running `.backup` never hold the writer up in WAL mode.
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

const SELECT_PAGE_UP: &str = "SELECT id, from_id, from_name, text, at, reference FROM messages
     WHERE room = ?1 AND id > ?2 AND id < ?3 ORDER BY id ASC LIMIT ?4";
const SELECT_PAGE_DOWN: &str = "SELECT id, from_id, from_name, text, at, reference FROM messages
     WHERE room = ?1 AND id > ?2 AND id < ?3 ORDER BY id DESC LIMIT ?4";
const SELECT_EPOCH: &str = "SELECT value FROM meta WHERE key = 'epoch'";
const PROBE_WRITE: &str = "INSERT OR REPLACE INTO meta (key, value) VALUES ('probe', '');
     DELETE FROM meta WHERE key = 'probe';";
const INSERT_MESSAGE: &str =
    "INSERT INTO messages (room, id, from_id, from_name, text, at, reference)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const INSERT_REF: &str = "INSERT INTO refs (room, id, reference) VALUES (?1, ?2, ?3)";
const UPSERT_ROOM: &str = "INSERT INTO rooms (name, last_id) VALUES (?1, ?2)
     ON CONFLICT (name) DO UPDATE SET last_id = max(last_id, excluded.last_id)
     RETURNING last_id";
const PRUNE_MESSAGES: &str = "DELETE FROM messages WHERE room = ?1 AND id <= ?2";
const PRUNE_REFS: &str = "DELETE FROM refs WHERE room = ?1 AND id <= ?2";
const SELECT_LAST_ID: &str = "SELECT last_id FROM rooms WHERE name = ?1";
const SELECT_NEWEST: &str = "SELECT id, from_id, from_name, text, at, reference FROM messages
     WHERE room = ?1 ORDER BY id DESC LIMIT ?2";
/// The registry decides what is a duplicate, so a `ref` reused once its first
/// use left the registry's window can be stored twice: the later id wins.
const SELECT_REFS: &str = "SELECT reference, max(id) AS id FROM refs WHERE room = ?1 AND id > ?2
     GROUP BY reference ORDER BY id";

/// One stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) room: String,
    pub(crate) id: u64,
    pub(crate) from_id: String,
    pub(crate) from_name: String,
    pub(crate) text: String,
    pub(crate) at: u64,
    pub(crate) reference: Option<String>,
}

impl Record {
    /// A message row (`id, from_id, from_name, text, at, reference`, the
    /// columns every message query selects) of `room`.
    fn read(room: &str, row: &Row<'_>) -> rusqlite::Result<Record> {
        Ok(Record {
            room: room.to_owned(),
            id: from_sql(row, 0)?,
            from_id: row.get(1)?,
            from_name: row.get(2)?,
            text: row.get(3)?,
            at: from_sql(row, 4)?,
            reference: row.get(5)?,
        })
    }

    /// The record of `message`, accepted with `reference`.
    pub(crate) fn of(message: &ChatMessage, reference: Option<&str>) -> Record {
        Record {
            room: message.room.clone(),
            id: message.id,
            from_id: message.from.id.clone(),
            from_name: message.from.name.clone(),
            text: message.text.clone(),
            at: message.at,
            reference: reference.map(str::to_owned),
        }
    }

    /// The message this record stores.
    pub(crate) fn into_message(self) -> ChatMessage {
        ChatMessage {
            room: self.room,
            id: self.id,
            from: Member {
                id: self.from_id,
                name: self.from_name,
            },
            text: self.text,
            at: self.at,
        }
    }
}

/// What a room has on disk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StoredRoom {
    /// The last id the room handed out; 0 for a room never seen.
    pub(crate) last_id: u64,
    /// The newest `history` messages, ascending.
    pub(crate) messages: Vec<Record>,
    /// `(ref, id)` for ids above `last_id - ref_window`, ascending by id; a
    /// `ref` stored twice appears once, with its later id.
    pub(crate) refs: Vec<(String, u64)>,
}

/// An open database file, locked against other Charla processes.
///
/// `Send` but not `Sync`: one thread (the writer) owns it. Other threads
/// read through their own [`Reader`].
#[derive(Debug)]
pub(crate) struct Database {
    /// Declared before `_lock` so it closes first: closing checkpoints the
    /// WAL, which must finish before another process may take the file.
    connection: Connection,
    /// The file's resolved path, for [`Database::reader`].
    file: PathBuf,
    epoch: String,
    /// The advisory lock on `<file>-lock`, released when this `File` closes.
    _lock: File,
}

impl Database {
    /// Opens (creating if missing) the database at `path` and migrates it to
    /// [`SCHEMA_VERSION`]. `:memory:` is refused: the in-memory mode has no
    /// `Database`.
    pub(crate) fn open(path: &Path) -> Result<Database, OpenError> {
        open::open(path)
    }

    /// The random id made when the file was created: names this file's id
    /// sequences (a client that sees it change knows ids restarted).
    pub(crate) fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Stores every record in one transaction (group commit), then, for each
    /// room touched, raises its last id to the batch's highest, keeps its
    /// newest `history` messages and the refs with `id > last_id -
    /// ref_window`. On `Err` nothing of the batch is stored.
    pub(crate) fn append(
        &mut self,
        batch: &[Record],
        history: usize,
        ref_window: u64,
    ) -> rusqlite::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let history = u64::try_from(history).unwrap_or(u64::MAX);
        // Dropped without `commit` (any `?` below), the transaction rolls back.
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert_message = transaction.prepare_cached(INSERT_MESSAGE)?;
            let mut insert_ref = transaction.prepare_cached(INSERT_REF)?;
            let mut newest: HashMap<&str, u64> = HashMap::new();
            for record in batch {
                let id = to_sql(record.id)?;
                insert_message.execute(params![
                    record.room,
                    id,
                    record.from_id,
                    record.from_name,
                    record.text,
                    to_sql(record.at)?,
                    record.reference,
                ])?;
                if let Some(reference) = &record.reference {
                    insert_ref.execute(params![record.room, id, reference])?;
                }
                let room_newest = newest.entry(record.room.as_str()).or_default();
                *room_newest = (*room_newest).max(record.id);
            }
            let mut upsert_room = transaction.prepare_cached(UPSERT_ROOM)?;
            let mut prune_messages = transaction.prepare_cached(PRUNE_MESSAGES)?;
            let mut prune_refs = transaction.prepare_cached(PRUNE_REFS)?;
            for (room, id) in newest {
                let last_id =
                    upsert_room.query_row(params![room, to_sql(id)?], |row| from_sql(row, 0))?;
                prune_messages.execute(params![room, to_sql(last_id.saturating_sub(history))?])?;
                prune_refs.execute(params![room, to_sql(last_id.saturating_sub(ref_window))?])?;
            }
        }
        transaction.commit()
    }

    /// Loads a room: its last id, newest `history` messages and `ref` window.
    /// A room never stored has last id 0 and nothing else. (The server reads
    /// through a [`Reader`]; tests compare both.)
    #[cfg(test)]
    pub(crate) fn load_room(
        &self,
        room: &str,
        history: usize,
        ref_window: u64,
    ) -> rusqlite::Result<StoredRoom> {
        load_room(&self.connection, room, history, ref_window)
    }

    /// A read-only connection to this file for another thread; call once per
    /// thread that reads.
    pub(crate) fn reader(&self) -> rusqlite::Result<Reader> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(&self.file, flags)?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        Ok(Reader { connection })
    }

    /// Copies the write-ahead log into the main file and syncs both to disk
    /// (a passive checkpoint: it never waits for readers). After it, what
    /// was committed survives a power loss too.
    pub(crate) fn checkpoint(&mut self) -> rusqlite::Result<()> {
        self.connection
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
    }

    /// A small write that changes nothing (a row added and removed in one
    /// transaction): `Ok` once the file accepts writes again after a failed
    /// [`Database::append`].
    pub(crate) fn probe(&mut self) -> rusqlite::Result<()> {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        transaction.execute_batch(PROBE_WRITE)?;
        transaction.commit()
    }
}

/// A read-only connection to a [`Database`]'s file. WAL lets it read while the
/// writer commits; each read sees whole batches only.
#[derive(Debug)]
pub(crate) struct Reader {
    connection: Connection,
}

impl Reader {
    /// As [`Database::load_room`].
    pub(crate) fn load_room(
        &self,
        room: &str,
        history: usize,
        ref_window: u64,
    ) -> rusqlite::Result<StoredRoom> {
        load_room(&self.connection, room, history, ref_window)
    }

    /// One page of a room's stored history, ascending (docs/protocol.md,
    /// rule 13): with `after`, the oldest `limit` messages above it (and
    /// below `before`); otherwise the newest `limit` below `before`.
    pub(crate) fn page(
        &self,
        room: &str,
        after: Option<u64>,
        before: Option<u64>,
        limit: usize,
    ) -> rusqlite::Result<Vec<Record>> {
        let low = to_sql(after.unwrap_or(0))?;
        let high = to_sql(before.unwrap_or(i64::MAX as u64))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let query = if after.is_some() {
            SELECT_PAGE_UP
        } else {
            SELECT_PAGE_DOWN
        };
        let mut statement = self.connection.prepare_cached(query)?;
        let mut records = statement
            .query_map(params![room, low, high, limit], |row| {
                Record::read(room, row)
            })?
            .collect::<rusqlite::Result<Vec<Record>>>()?;
        if after.is_none() {
            records.reverse();
        }
        Ok(records)
    }
}

/// Reads a room in one read transaction, so that its last id, messages and
/// refs come from the same commit even while another connection writes.
fn load_room(
    connection: &Connection,
    room: &str,
    history: usize,
    ref_window: u64,
) -> rusqlite::Result<StoredRoom> {
    let snapshot = connection.unchecked_transaction()?;
    let stored = {
        let connection = &*snapshot;
        let last_id = connection
            .prepare_cached(SELECT_LAST_ID)?
            .query_row([room], |row| from_sql(row, 0))
            .optional()?
            .unwrap_or(0);
        let limit = i64::try_from(history).unwrap_or(i64::MAX);
        let mut newest = connection.prepare_cached(SELECT_NEWEST)?;
        let mut messages = newest
            .query_map(params![room, limit], |row| Record::read(room, row))?
            .collect::<rusqlite::Result<Vec<Record>>>()?;
        messages.reverse();
        let oldest_ref = to_sql(last_id.saturating_sub(ref_window))?;
        let mut window = connection.prepare_cached(SELECT_REFS)?;
        let refs = window
            .query_map(params![room, oldest_ref], |row| {
                Ok((row.get(0)?, from_sql(row, 1)?))
            })?
            .collect::<rusqlite::Result<Vec<(String, u64)>>>()?;
        StoredRoom {
            last_id,
            messages,
            refs,
        }
    };
    snapshot.commit()?;
    Ok(stored)
}

/// SQLite integers are `i64`; an id or a time past `i64::MAX` fails the
/// statement instead of wrapping.
fn to_sql(value: u64) -> rusqlite::Result<i64> {
    i64::try_from(value).map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))
}

/// Reads an `i64` column back as the `u64` it was stored from.
fn from_sql(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(index)?;
    u64::try_from(value).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(index, Type::Integer, Box::new(error))
    })
}
