//! The SQLite file that keeps rooms' history across restarts. A [`Database`]
//! owns one file and is synchronous: its caller runs it on a dedicated
//! thread, and nothing here knows about actors or async. [`Reader`]s read the
//! same file from other threads.
//!
//! What it owns, per room: the newest `history` messages with their `ref`s
//! (the newest one's id is the room's last id) and the `ref`s of pruned
//! messages still in the `ref` window (`refs`); per file: the epoch
//! (`meta`), a random id made when the file was created, which names this
//! file's id sequences; and the bans in force (`bans`, written through the
//! [`BanBook`], its own connection: see `bans.rs` for why).
//!
//! Where a message lives: a batch is appended to the `inbox`, in arrival
//! order, so a transaction writes a few pages whatever rooms it spans; every
//! [`FILE_ROWS`] rows (or [`FILE_INTERVAL`]) the inbox is *filed* into
//! `messages`, keyed by room and id, where each room's newest page is then
//! rewritten once for many of its messages. Reads go through the `stored`
//! view, which is both.
//!
//! Invariants:
//! - a room's last id never goes down: pruning never deletes a room's newest
//!   message, so ids continue after a restart and are never reused;
//! - [`Database::append`] commits a whole batch or nothing;
//! - every read answers a room's newest `history` messages at most and the
//!   refs with `id > last_id - ref_window`; rows outside those windows are
//!   deleted in steps of [`PRUNE_EVERY`] ids, so at most that many more stay
//!   on disk;
//! - one process per file: an advisory lock on `<file>-lock` is held for the
//!   `Database`'s lifetime. SQLite itself stays in its normal locking mode, so
//!   `sqlite3 charla.db ".backup backup.db"` works while Charla runs;
//! - the schema version is `PRAGMA user_version`: the migrations in `open.rs`
//!   run in order from the file's version, so a later Charla opens an older
//!   file; a file newer than this binary, or another program's file, is
//!   refused untouched.
//!
//! Durability: WAL with `synchronous=NORMAL` (fsyncs happen at checkpoints,
//! not at each commit). A committed transaction survives a crash of the
//! process; a power loss or OS crash can lose the transactions committed
//! since the last checkpoint (the writer thread checkpoints within ten seconds
//! of a commit), and never corrupts the file.

mod bans;
mod open;
#[cfg(test)]
mod tests;

pub(crate) use bans::BanBook;
pub(crate) use open::OpenError;

use charla_protocol::{ChatMessage, Member};
use rusqlite::types::Type;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a statement waits for a lock held by another connection (an
/// operator's `sqlite3` shell writing, say) before failing with SQLITE_BUSY.
/// Short, so the writer thread reports trouble instead of stalling; readers
/// such as a running `.backup` never hold the writer up in WAL mode.
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// Pages see the retained window only (`?5` is the history length): rows
/// waiting for their pruning step are never answered.
const SELECT_PAGE_UP: &str = "SELECT id, from_id, from_name, text, at, reference, edited, deleted, edits, deletes FROM stored
     WHERE room = ?1 AND id < ?3
       AND id > max(?2, (SELECT coalesce(max(id), 0) FROM stored WHERE room = ?1) - ?5)
     ORDER BY id ASC LIMIT ?4";
const SELECT_PAGE_DOWN: &str = "SELECT id, from_id, from_name, text, at, reference, edited, deleted, edits, deletes FROM stored
     WHERE room = ?1 AND id < ?3
       AND id > max(?2, (SELECT coalesce(max(id), 0) FROM stored WHERE room = ?1) - ?5)
     ORDER BY id DESC LIMIT ?4";
const SELECT_EPOCH: &str = "SELECT value FROM meta WHERE key = 'epoch'";
const PROBE_WRITE: &str = "INSERT OR REPLACE INTO meta (key, value) VALUES ('probe', '');
     DELETE FROM meta WHERE key = 'probe';";
/// A batch goes to the `inbox`, whose rows are in arrival order: a batch
/// appends to its last pages whatever rooms it spans.
const INSERT_MESSAGE: &str =
    "INSERT INTO inbox (room, id, from_id, from_name, text, at, reference, edits, deletes)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
/// An edit entry gives its message the new text, unless it was deleted
/// (docs/protocol.md, rule 50); the message is in `messages` or still in
/// the `inbox` (at most [`FILE_ROWS`] rows), so both are updated.
const APPLY_EDIT: [&str; 2] = [
    "UPDATE messages SET text = ?3, edited = ?4 WHERE room = ?1 AND id = ?2 AND deleted = 0",
    "UPDATE inbox SET text = ?3, edited = ?4 WHERE room = ?1 AND id = ?2 AND deleted = 0",
];
/// A delete entry empties its message and the edit entries that held its
/// later texts: a deleted message's words stay nowhere.
const APPLY_DELETE: [&str; 4] = [
    "UPDATE messages SET text = '', deleted = 1 WHERE room = ?1 AND id = ?2",
    "UPDATE inbox SET text = '', deleted = 1 WHERE room = ?1 AND id = ?2",
    "UPDATE messages SET text = '' WHERE room = ?1 AND id > ?2 AND edits = ?2",
    "UPDATE inbox SET text = '' WHERE room = ?1 AND edits = ?2",
];
/// Filing moves the inbox into `messages`, ordered by room: each room's
/// newest page is rewritten once per filing rather than once per batch.
const FILE_INBOX: &str = "INSERT OR REPLACE INTO messages
         (room, id, from_id, from_name, text, at, reference, edited, deleted, edits, deletes)
     SELECT room, id, from_id, from_name, text, at, reference, edited, deleted, edits, deletes
     FROM inbox ORDER BY room, id;
     DELETE FROM inbox;";
/// A message's `ref` lives in its row while the message is retained; rows
/// about to be pruned hand their `ref`s to `refs`, which keeps them for the
/// rest of the `ref` window (one bulk copy per pruning step instead of a
/// second insert per message).
const KEEP_REFS: &str = "INSERT OR REPLACE INTO refs (room, id, reference)
     SELECT room, id, reference FROM messages
     WHERE room = ?1 AND id <= ?2 AND id > ?3 AND reference IS NOT NULL";
const PRUNE_MESSAGES: &str = "DELETE FROM messages WHERE room = ?1 AND id <= ?2";
const PRUNE_REFS: &str = "DELETE FROM refs WHERE room = ?1 AND id <= ?2";
/// A room's newest message is never pruned (the window holds at least one),
/// so its id is the room's last id.
const SELECT_LAST_ID: &str = "SELECT coalesce(max(id), 0) FROM stored WHERE room = ?1";
const SELECT_NEWEST: &str = "SELECT id, from_id, from_name, text, at, reference, edited, deleted, edits, deletes FROM stored
     WHERE room = ?1 ORDER BY id DESC LIMIT ?2";
/// The `ref`s of retained messages and of pruned ones still in the window.
/// The registry decides what is a duplicate, so a `ref` reused once its first
/// use left the registry's window can be stored twice: the later id wins.
const SELECT_REFS: &str = "SELECT reference, max(id) AS id FROM (
         SELECT reference, id FROM refs WHERE room = ?1 AND id > ?2
         UNION ALL
         SELECT reference, id FROM stored
         WHERE room = ?1 AND id > ?2 AND reference IS NOT NULL
     ) GROUP BY reference ORDER BY id";

/// One stored message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) room: String,
    pub(crate) id: u64,
    pub(crate) from_id: String,
    pub(crate) from_name: String,
    pub(crate) text: String,
    pub(crate) at: u64,
    pub(crate) reference: Option<String>,
    pub(crate) edited: Option<u64>,
    pub(crate) deleted: bool,
    pub(crate) edits: Option<u64>,
    pub(crate) deletes: Option<u64>,
}

impl Record {
    /// A message row (`id, from_id, from_name, text, at, reference, edited,
    /// deleted, edits, deletes`, the columns every message query selects)
    /// of `room`.
    fn read(room: &str, row: &Row<'_>) -> rusqlite::Result<Record> {
        Ok(Record {
            room: room.to_owned(),
            id: from_sql(row, 0)?,
            from_id: row.get(1)?,
            from_name: row.get(2)?,
            text: row.get(3)?,
            at: from_sql(row, 4)?,
            reference: row.get(5)?,
            edited: optional_from_sql(row, 6)?,
            deleted: row.get(7)?,
            edits: optional_from_sql(row, 8)?,
            deletes: optional_from_sql(row, 9)?,
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
            edited: message.edited,
            deleted: message.deleted,
            edits: message.edits,
            deletes: message.deletes,
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
            edited: self.edited,
            deleted: self.deleted,
            edits: self.edits,
            deletes: self.deletes,
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
    /// Per room, the oldest and newest id put in the inbox since it was last
    /// filed: which rooms the next filing may prune.
    unfiled: HashMap<String, (u64, u64)>,
    /// Rows put in the inbox since it was last filed.
    unfiled_rows: usize,
    /// When the inbox was last filed.
    filed_at: Instant,
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
            for record in batch {
                insert_message.execute(params![
                    record.room,
                    to_sql(record.id)?,
                    record.from_id,
                    record.from_name,
                    record.text,
                    to_sql(record.at)?,
                    record.reference,
                    record.edits.map(to_sql).transpose()?,
                    record.deletes.map(to_sql).transpose()?,
                ])?;
                apply_change(&transaction, record)?;
                // A superset of what is filed is harmless: it only guides
                // pruning, which is bounded by each room's window anyway.
                let (oldest, newest) = self
                    .unfiled
                    .entry(record.room.clone())
                    .or_insert((record.id, record.id));
                *oldest = (*oldest).min(record.id);
                *newest = (*newest).max(record.id);
            }
        }
        self.unfiled_rows += batch.len();
        let file = self.unfiled_rows >= FILE_ROWS || self.filed_at.elapsed() >= FILE_INTERVAL;
        if file {
            file_inbox(&transaction, &self.unfiled, history, ref_window)?;
        }
        transaction.commit()?;
        if file {
            self.unfiled.clear();
            self.unfiled_rows = 0;
            self.filed_at = Instant::now();
        }
        Ok(())
    }

    /// Files the inbox now (tests; the writer files on its own schedule).
    #[cfg(test)]
    pub(crate) fn file_now(&mut self, history: usize, ref_window: u64) -> rusqlite::Result<()> {
        let history = u64::try_from(history).unwrap_or(u64::MAX);
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        file_inbox(&transaction, &self.unfiled, history, ref_window)?;
        transaction.commit()?;
        self.unfiled.clear();
        self.unfiled_rows = 0;
        self.filed_at = Instant::now();
        Ok(())
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
        history: usize,
    ) -> rusqlite::Result<Vec<Record>> {
        let low = to_sql(after.unwrap_or(0))?;
        let history = i64::try_from(history).unwrap_or(i64::MAX);
        let high = to_sql(before.unwrap_or(i64::MAX as u64))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let query = if after.is_some() {
            SELECT_PAGE_UP
        } else {
            SELECT_PAGE_DOWN
        };
        let mut statement = self.connection.prepare_cached(query)?;
        let mut records = statement
            .query_map(params![room, low, high, limit, history], |row| {
                Record::read(room, row)
            })?
            .collect::<rusqlite::Result<Vec<Record>>>()?;
        if after.is_none() {
            records.reverse();
        }
        Ok(records)
    }
}

/// Applies an edit or delete entry to the message it changes (rule 50);
/// nothing for a message.
fn apply_change(connection: &Connection, record: &Record) -> rusqlite::Result<()> {
    if let Some(target) = record.edits {
        let values = params![
            record.room,
            to_sql(target)?,
            record.text,
            to_sql(record.at)?
        ];
        for sql in APPLY_EDIT {
            connection.prepare_cached(sql)?.execute(values)?;
        }
    }
    if let Some(target) = record.deletes {
        for sql in APPLY_DELETE {
            connection
                .prepare_cached(sql)?
                .execute(params![record.room, to_sql(target)?])?;
        }
    }
    Ok(())
}

/// Moves the inbox into `messages`, then prunes the rooms it held:
/// messages outside `history` (their refs kept in `refs` while in the
/// `ref` window) and refs outside the window.
fn file_inbox(
    connection: &Connection,
    unfiled: &HashMap<String, (u64, u64)>,
    history: u64,
    ref_window: u64,
) -> rusqlite::Result<()> {
    connection.execute_batch(FILE_INBOX)?;
    let mut prune_messages = connection.prepare_cached(PRUNE_MESSAGES)?;
    let mut prune_refs = connection.prepare_cached(PRUNE_REFS)?;
    let mut keep_refs = connection.prepare_cached(KEEP_REFS)?;
    for (room, &(oldest, newest)) in unfiled {
        // Ids of a room are contiguous: before these it ended at `oldest - 1`.
        let before = oldest.saturating_sub(1);
        if let Some(floor) = prune_floor(before, newest, history) {
            let oldest_ref = newest.saturating_sub(ref_window);
            keep_refs.execute(params![room, to_sql(floor)?, to_sql(oldest_ref)?])?;
            prune_messages.execute(params![room, to_sql(floor)?])?;
        }
        if let Some(floor) = prune_floor(before, newest, ref_window) {
            prune_refs.execute(params![room, to_sql(floor)?])?;
        }
    }
    Ok(())
}

/// The inbox is filed into `messages` (and its rooms pruned) once it holds
/// this many rows, or [`FILE_INTERVAL`] after the last filing, whichever
/// comes first: often enough that one filing holds the writer up only
/// briefly, seldom enough that each room's newest page is rewritten for
/// many of its messages at once. Between filings reads see the inbox too.
pub(crate) const FILE_ROWS: usize = 4096;
/// The longest a message stays in the inbox while traffic is light.
pub(crate) const FILE_INTERVAL: Duration = Duration::from_secs(1);

/// Rows are deleted in steps: a room's old messages (and refs) go once
/// every this many ids, so most batches delete nothing. Up to this many
/// rows beyond the window stay on disk meanwhile; every read is bounded by
/// the window, so none of them is ever answered.
pub(crate) const PRUNE_EVERY: u64 = 64;

/// When a room's last id moves from `before` to `last_id`, the id at and
/// below which its rows outside a window of `window` ids go: `None` unless
/// the window's start crossed a multiple of [`PRUNE_EVERY`].
fn prune_floor(before: u64, last_id: u64, window: u64) -> Option<u64> {
    let start = last_id.saturating_sub(window);
    let step = |id: u64| id / PRUNE_EVERY;
    (start > 0 && step(start) > step(before.saturating_sub(window))).then_some(start)
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
fn optional_from_sql(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<u64>> {
    let value: Option<i64> = row.get(index)?;
    value
        .map(|value| {
            u64::try_from(value).map_err(|error| {
                rusqlite::Error::FromSqlConversionFailure(index, Type::Integer, Box::new(error))
            })
        })
        .transpose()
}

fn from_sql(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(index)?;
    u64::try_from(value).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(index, Type::Integer, Box::new(error))
    })
}
