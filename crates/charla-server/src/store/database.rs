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

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use charla_protocol::{ChatMessage, Member};
use rusqlite::types::Type;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use rusqlite::{MAIN_DB, params};

/// How long a statement waits for a lock held by another connection (an
/// operator's `sqlite3` shell writing, say) before failing with SQLITE_BUSY.
/// Short, so the writer thread reports trouble instead of stalling; readers
/// such as a running `.backup` never hold the writer up in WAL mode.
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// WAL pages (4 KiB each) after which a commit also checkpoints the log into
/// the file. Checkpoints are where `synchronous=NORMAL` pays its fsyncs and
/// where a page rewritten by many batches is written once: 10 000 (about
/// 40 MiB) appended 2 to 3 times faster than SQLite's default 1 000 in
/// `append_benchmark`.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;

/// The log is cut back to this size after a checkpoint that found it larger
/// (it grows past [`WAL_AUTOCHECKPOINT_PAGES`] while a long reader, such as a
/// `.backup`, keeps a checkpoint from finishing).
const WAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// Appended to the database file's path to name its advisory lock file.
const LOCK_SUFFIX: &str = "-lock";

/// Schema steps, in order: step `i` takes a file from `user_version` `i` to
/// `i + 1`, in the same transaction as the version bump. Only ever append a
/// step: a released one has already run on somebody's file.
const MIGRATIONS: &[&str] = &[SCHEMA_1];

/// The newest schema this binary knows.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Version 1. `rooms.last_id` outlives pruned messages. Both `messages` and
/// `refs` are keyed by `(room, id)`: an append writes at the end of the
/// room's range and a prune deletes from its start, with no second index to
/// keep up (refs are only ever read a room's window at a time, never looked
/// up one by one). `messages.reference` repeats the message's `ref` so a
/// loaded message is whole; `refs` outlives it, up to the `ref` window.
const SCHEMA_1: &str = "
    CREATE TABLE meta (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE rooms (
        name TEXT PRIMARY KEY NOT NULL,
        last_id INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE messages (
        room TEXT NOT NULL,
        id INTEGER NOT NULL,
        from_id TEXT NOT NULL,
        from_name TEXT NOT NULL,
        text TEXT NOT NULL,
        at INTEGER NOT NULL,
        reference TEXT,
        PRIMARY KEY (room, id)
    ) WITHOUT ROWID;
    CREATE TABLE refs (
        room TEXT NOT NULL,
        id INTEGER NOT NULL,
        reference TEXT NOT NULL,
        PRIMARY KEY (room, id)
    ) WITHOUT ROWID;
    INSERT INTO meta (key, value) VALUES ('epoch', lower(hex(randomblob(16))));
";

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

/// Why [`Database::open`] refused. Each message names the path and what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error(
        "{path:?} names no database file (the in-memory mode opens none); set CHARLA_DATABASE (--database) to a file path"
    )]
    NotAFile { path: PathBuf },
    #[error(
        "cannot write a database at {}: {cause}. Create its directory and let this user write there, or set CHARLA_DATABASE (--database) to a writable path",
        .path.display()
    )]
    NotWritable {
        path: PathBuf,
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "{} is not a Charla database (not SQLite, damaged, or another program's file) and is left untouched: move it aside, or set CHARLA_DATABASE (--database) to another path",
        .path.display()
    )]
    NotADatabase { path: PathBuf },
    #[error(
        "{} has schema version {found}, newer than this Charla knows ({supported}): run the newer Charla that wrote it, or set CHARLA_DATABASE (--database) to another path",
        .path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(
        "{} is in use by another process (another Charla holds {}, or a program is writing to it): stop it, or set CHARLA_DATABASE (--database) to another path",
        .path.display(), .lock.display()
    )]
    InUse { path: PathBuf, lock: PathBuf },
    #[error(
        "cannot lock {} for the database {}: {cause}. Put the database on a local file system, or set CHARLA_DATABASE (--database) to another path",
        .lock.display(), .path.display()
    )]
    CannotLock {
        path: PathBuf,
        lock: PathBuf,
        cause: io::Error,
    },
    #[error(
        "{}: SQLite cannot keep a write-ahead log there (journal mode stays {mode:?}). Put the database on a local file system, or set CHARLA_DATABASE (--database) to another path",
        .path.display()
    )]
    NoWal { path: PathBuf, mode: String },
    #[error(
        "cannot open the database {}: {cause}. Check the file, or set CHARLA_DATABASE (--database) to another path",
        .path.display()
    )]
    Other {
        path: PathBuf,
        cause: rusqlite::Error,
    },
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
        if path.as_os_str().is_empty() || path == Path::new(":memory:") {
            return Err(OpenError::NotAFile {
                path: path.to_owned(),
            });
        }
        let file = resolve(path)?;
        let mut lock_path = OsString::from(file.as_os_str());
        lock_path.push(LOCK_SUFFIX);
        let lock_path = PathBuf::from(lock_path);
        let lock = take_lock(path, &lock_path)?;
        let sql = |cause: rusqlite::Error| classify(path, &lock_path, cause);

        // No SQLITE_OPEN_URI: the setting is a file path, never a URI.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut connection = Connection::open_with_flags(&file, flags).map_err(sql)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;

        // The first read of the file: a file that is not SQLite fails here,
        // before anything is written to it.
        let found: i64 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sql)?;
        if found > SCHEMA_VERSION {
            return Err(OpenError::NewerSchema {
                path: path.to_owned(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let foreign = found < 0
            || (found == 0
                && connection
                    .query_row("SELECT count(*) FROM sqlite_schema", [], |row| {
                        row.get::<_, i64>(0)
                    })
                    .map_err(sql)?
                    > 0);
        if foreign {
            return Err(OpenError::NotADatabase {
                path: path.to_owned(),
            });
        }
        // SQLite silently opens a write-protected file read-only.
        if connection.is_readonly(MAIN_DB).map_err(sql)? {
            return Err(OpenError::NotWritable {
                path: path.to_owned(),
                cause: "the file is read-only".into(),
            });
        }

        let mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
            .map_err(sql)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(OpenError::NoWal {
                path: path.to_owned(),
                mode,
            });
        }
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        connection
            .pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
            .map_err(sql)?;
        connection
            .pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES)
            .map_err(sql)?;
        migrate(&mut connection, found).map_err(sql)?;
        let epoch = connection
            .query_row(SELECT_EPOCH, [], |row| row.get(0))
            .map_err(sql)?;
        Ok(Database {
            connection,
            file,
            epoch,
            _lock: lock,
        })
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
                Ok(Record {
                    room: room.to_owned(),
                    id: from_sql(row, 0)?,
                    from_id: row.get(1)?,
                    from_name: row.get(2)?,
                    text: row.get(3)?,
                    at: from_sql(row, 4)?,
                    reference: row.get(5)?,
                })
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
            .query_map(params![room, limit], |row| {
                Ok(Record {
                    room: room.to_owned(),
                    id: from_sql(row, 0)?,
                    from_id: row.get(1)?,
                    from_name: row.get(2)?,
                    text: row.get(3)?,
                    at: from_sql(row, 4)?,
                    reference: row.get(5)?,
                })
            })?
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

/// The file's absolute path with symbolic links resolved, so that two
/// spellings of one file share one lock. Its directory must exist.
fn resolve(path: &Path) -> Result<PathBuf, OpenError> {
    let not_writable = |cause: io::Error| OpenError::NotWritable {
        path: path.to_owned(),
        cause: cause.into(),
    };
    match fs::canonicalize(path) {
        Ok(file) => Ok(file),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let Some(name) = path.file_name() else {
                return Err(not_writable(error));
            };
            let directory = match path.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent,
                _ => Path::new("."),
            };
            let directory = fs::canonicalize(directory).map_err(|error| {
                not_writable(io::Error::new(
                    error.kind(),
                    format!("its directory {}: {error}", directory.display()),
                ))
            })?;
            Ok(directory.join(name))
        }
        Err(error) => Err(not_writable(error)),
    }
}

/// Takes the exclusive advisory lock that keeps a second Charla off the file.
fn take_lock(path: &Path, lock_path: &Path) -> Result<File, OpenError> {
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(lock_path)
        .map_err(|cause| OpenError::NotWritable {
            path: path.to_owned(),
            cause: format!("cannot create {}: {cause}", lock_path.display()).into(),
        })?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(TryLockError::WouldBlock) => Err(OpenError::InUse {
            path: path.to_owned(),
            lock: lock_path.to_owned(),
        }),
        Err(TryLockError::Error(cause)) => Err(OpenError::CannotLock {
            path: path.to_owned(),
            lock: lock_path.to_owned(),
            cause,
        }),
    }
}

/// Names an SQLite failure during `open` by what the operator can do about it.
fn classify(path: &Path, lock: &Path, cause: rusqlite::Error) -> OpenError {
    let path = path.to_owned();
    match cause.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => OpenError::NotADatabase { path },
        Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => {
            OpenError::NotWritable {
                path,
                cause: cause.into(),
            }
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => OpenError::InUse {
            path,
            lock: lock.to_owned(),
        },
        _ => OpenError::Other { path, cause },
    }
}

/// Runs the migration steps after `from`, with their version bumps, in one
/// transaction: a file is at its old version or the newest, never between.
fn migrate(connection: &mut Connection, from: i64) -> rusqlite::Result<()> {
    let from = usize::try_from(from).unwrap_or(0);
    if from >= MIGRATIONS.len() {
        return Ok(());
    }
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (done, step) in MIGRATIONS.iter().enumerate().skip(from) {
        transaction.execute_batch(step)?;
        transaction.pragma_update(None, "user_version", to_sql(done as u64 + 1)?)?;
    }
    transaction.commit()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    const HISTORY: usize = 100;
    const REF_WINDOW: u64 = 1_000;

    /// A fresh directory under the system's temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "charla-database-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        fn file(&self) -> PathBuf {
            self.0.join("charla.db")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn record(room: &str, id: u64, reference: Option<&str>) -> Record {
        Record {
            room: room.to_owned(),
            id,
            from_id: format!("session-{}", id % 3),
            from_name: format!("name {}", id % 3),
            text: format!("message {id} in {room}"),
            at: 1_764_000_000_000 + id,
            reference: reference.map(str::to_owned),
        }
    }

    /// Records `first..=last` of `room`, each with the ref `r<id>`.
    fn records(room: &str, first: u64, last: u64) -> Vec<Record> {
        (first..=last)
            .map(|id| record(room, id, Some(&format!("r{id}"))))
            .collect()
    }

    fn ids(room: &StoredRoom) -> Vec<u64> {
        room.messages.iter().map(|m| m.id).collect()
    }

    fn open_error(path: &Path) -> OpenError {
        match Database::open(path) {
            Ok(_) => panic!("{} opened", path.display()),
            Err(error) => error,
        }
    }

    #[test]
    fn append_then_load_returns_messages_and_refs() {
        let dir = TempDir::new();
        let mut db = Database::open(&dir.file()).unwrap();
        let mut batch = vec![record("lobby", 1, Some("a")), record("lobby", 2, None)];
        batch.push(record("other", 1, Some("a")));
        batch.push(record("lobby", 3, Some("b")));
        db.append(&batch, HISTORY, REF_WINDOW).unwrap();

        let lobby = db.load_room("lobby", HISTORY, REF_WINDOW).unwrap();
        assert_eq!(lobby.last_id, 3);
        assert_eq!(
            lobby.messages,
            vec![batch[0].clone(), batch[1].clone(), batch[3].clone()]
        );
        assert_eq!(lobby.refs, vec![("a".to_owned(), 1), ("b".to_owned(), 3)]);
        let other = db.load_room("other", HISTORY, REF_WINDOW).unwrap();
        assert_eq!((other.last_id, ids(&other)), (1, vec![1]));
        assert_eq!(other.refs, vec![("a".to_owned(), 1)]);
        assert_eq!(
            db.load_room("nobody", HISTORY, REF_WINDOW).unwrap(),
            StoredRoom::default()
        );
    }

    #[test]
    fn load_returns_the_newest_history_ascending() {
        let dir = TempDir::new();
        let mut db = Database::open(&dir.file()).unwrap();
        db.append(&records("lobby", 1, 10), HISTORY, REF_WINDOW)
            .unwrap();
        let room = db.load_room("lobby", 4, REF_WINDOW).unwrap();
        assert_eq!((room.last_id, ids(&room)), (10, vec![7, 8, 9, 10]));
    }

    #[test]
    fn pruning_to_history_keeps_last_id() {
        let dir = TempDir::new();
        let mut db = Database::open(&dir.file()).unwrap();
        for first in (1..=25).step_by(5) {
            db.append(&records("lobby", first, first + 4), 3, REF_WINDOW)
                .unwrap();
        }
        let room = db.load_room("lobby", HISTORY, REF_WINDOW).unwrap();
        assert_eq!((room.last_id, ids(&room)), (25, vec![23, 24, 25]));
        let stored: i64 = db
            .connection
            .query_row("SELECT count(*) FROM messages", [], |row| row.get(0))
            .unwrap();
        assert_eq!(stored, 3, "older rows are deleted, not only hidden");
    }

    #[test]
    fn refs_outside_the_window_are_pruned() {
        let dir = TempDir::new();
        let mut db = Database::open(&dir.file()).unwrap();
        db.append(&records("lobby", 1, 10), HISTORY, 4).unwrap();
        let room = db.load_room("lobby", HISTORY, 4).unwrap();
        let expected: Vec<(String, u64)> = (7..=10).map(|id| (format!("r{id}"), id)).collect();
        assert_eq!(room.refs, expected);
        assert_eq!(
            ids(&room).len(),
            10,
            "the ref window does not prune messages"
        );
        // A narrower window asked at load time is honoured too.
        assert_eq!(
            db.load_room("lobby", HISTORY, 2).unwrap().refs,
            expected[2..]
        );
    }

    #[test]
    fn a_ref_stored_twice_loads_with_its_later_id() {
        let dir = TempDir::new();
        let mut db = Database::open(&dir.file()).unwrap();
        // The registry's window (2) forgot `again` (1 + 2 <= 3) before the
        // database's (10) did: both uses are stored, the later one wins.
        db.append(&[record("lobby", 1, Some("again"))], HISTORY, 10)
            .unwrap();
        let batch = vec![
            record("lobby", 2, Some("b")),
            record("lobby", 3, Some("again")),
        ];
        db.append(&batch, HISTORY, 10).unwrap();
        let refs = db.load_room("lobby", HISTORY, 10).unwrap().refs;
        assert_eq!(refs, vec![("b".to_owned(), 2), ("again".to_owned(), 3)]);
    }

    #[test]
    fn reopening_keeps_everything_and_the_epoch() {
        let dir = TempDir::new();
        let epoch = {
            let mut db = Database::open(&dir.file()).unwrap();
            db.append(&records("lobby", 1, 5), 3, REF_WINDOW).unwrap();
            db.epoch().to_owned()
        };
        assert_eq!(epoch.len(), 32, "128 random bits in hex: {epoch}");
        let mut db = Database::open(&dir.file()).unwrap();
        assert_eq!(db.epoch(), epoch);
        let room = db.load_room("lobby", HISTORY, REF_WINDOW).unwrap();
        assert_eq!(
            (room.last_id, ids(&room), room.refs.len()),
            (5, vec![3, 4, 5], 5)
        );
        db.append(&records("lobby", 6, 6), 3, REF_WINDOW).unwrap();
        assert_eq!(
            db.load_room("lobby", HISTORY, REF_WINDOW).unwrap().last_id,
            6
        );

        let elsewhere = TempDir::new();
        let fresh = Database::open(&elsewhere.file()).unwrap();
        assert_ne!(fresh.epoch(), epoch, "each file gets its own epoch");
    }

    #[test]
    fn an_empty_existing_file_is_migrated() {
        let dir = TempDir::new();
        File::create(dir.file()).unwrap();
        let db = Database::open(&dir.file()).unwrap();
        let version: i64 = db
            .connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert!(!db.epoch().is_empty());
    }

    #[test]
    fn a_garbage_file_is_refused_untouched() {
        for garbage in [
            b"not a database\n".to_vec(),
            b"not a database\n".repeat(1000),
        ] {
            let dir = TempDir::new();
            fs::write(dir.file(), &garbage).unwrap();
            let error = open_error(&dir.file());
            assert!(matches!(error, OpenError::NotADatabase { .. }), "{error:?}");
            assert_eq!(fs::read(dir.file()).unwrap(), garbage);
        }
    }

    #[test]
    fn another_programs_sqlite_file_is_refused() {
        let dir = TempDir::new();
        Connection::open(dir.file())
            .unwrap()
            .execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY);")
            .unwrap();
        let error = open_error(&dir.file());
        assert!(matches!(error, OpenError::NotADatabase { .. }), "{error:?}");
    }

    #[test]
    fn a_newer_schema_is_refused_untouched() {
        let dir = TempDir::new();
        Connection::open(dir.file())
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let error = open_error(&dir.file());
        assert!(
            matches!(error, OpenError::NewerSchema { found, supported, .. }
                if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
            "{error:?}"
        );
        let mode: String = Connection::open(dir.file())
            .unwrap()
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "delete", "the refused file is not switched to WAL");
    }

    #[test]
    fn a_second_open_is_refused_while_the_first_is_open() {
        let dir = TempDir::new();
        let first = Database::open(&dir.file()).unwrap();
        let error = open_error(&dir.file());
        assert!(matches!(error, OpenError::InUse { .. }), "{error:?}");
        // Another spelling of the same file shares the lock.
        let error = open_error(&dir.0.join(".").join("charla.db"));
        assert!(matches!(error, OpenError::InUse { .. }), "{error:?}");
        drop(first);
        Database::open(&dir.file()).unwrap();
    }

    #[test]
    fn a_missing_directory_is_not_writable() {
        let dir = TempDir::new();
        let error = open_error(&dir.0.join("missing").join("charla.db"));
        assert!(matches!(error, OpenError::NotWritable { .. }), "{error:?}");
        assert!(!dir.0.join("missing").exists());
    }

    #[test]
    fn the_memory_name_is_refused() {
        for name in [":memory:", ""] {
            let error = open_error(Path::new(name));
            assert!(matches!(error, OpenError::NotAFile { .. }), "{error:?}");
        }
    }

    #[test]
    fn errors_name_the_path_and_the_setting() {
        let dir = TempDir::new();
        let missing = dir.0.join("missing").join("charla.db");
        fs::write(dir.file(), b"not a database\n").unwrap();
        for (path, error) in [
            (missing.clone(), open_error(&missing)),
            (dir.file(), open_error(&dir.file())),
        ] {
            let message = error.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains("CHARLA_DATABASE"), "{message}");
        }
    }

    #[test]
    fn a_failed_batch_stores_nothing() {
        let dir = TempDir::new();
        let mut db = Database::open(&dir.file()).unwrap();
        db.append(&records("lobby", 1, 2), HISTORY, REF_WINDOW)
            .unwrap();
        let before = db.load_room("lobby", HISTORY, REF_WINDOW).unwrap();

        // A duplicate (room, id) inside the batch, after good records.
        let mut batch = records("lobby", 3, 4);
        batch.push(record("other", 1, Some("x")));
        batch.push(record("lobby", 4, None));
        assert!(db.append(&batch, HISTORY, REF_WINDOW).is_err());
        // A duplicate of an id already stored.
        assert!(
            db.append(&records("lobby", 2, 3), HISTORY, REF_WINDOW)
                .is_err()
        );

        assert_eq!(db.load_room("lobby", HISTORY, REF_WINDOW).unwrap(), before);
        assert_eq!(
            db.load_room("other", HISTORY, REF_WINDOW).unwrap(),
            StoredRoom::default()
        );
        // The database is usable after a rolled-back batch.
        db.append(&records("lobby", 3, 4), HISTORY, REF_WINDOW)
            .unwrap();
        assert_eq!(
            db.load_room("lobby", HISTORY, REF_WINDOW).unwrap().last_id,
            4
        );
    }

    #[test]
    fn a_plain_reader_reads_while_the_database_is_open() {
        let dir = TempDir::new();
        let mut db = Database::open(&dir.file()).unwrap();
        db.append(&records("lobby", 1, 3), HISTORY, REF_WINDOW)
            .unwrap();

        // What `sqlite3 charla.db ".backup backup.db"` does: its own
        // connection, a read transaction held open for a while.
        let reader =
            Connection::open_with_flags(dir.file(), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let count = |c: &Connection| -> i64 {
            c.query_row("SELECT count(*) FROM messages", [], |row| row.get(0))
                .unwrap()
        };
        let snapshot = reader.unchecked_transaction().unwrap();
        assert_eq!(count(&snapshot), 3);
        // The writer is not held up by the reader, and the reader keeps its
        // snapshot until it ends its transaction.
        db.append(&records("lobby", 4, 5), HISTORY, REF_WINDOW)
            .unwrap();
        assert_eq!(count(&snapshot), 3);
        drop(snapshot);
        assert_eq!(count(&reader), 5);
    }

    #[test]
    fn a_reader_loads_what_the_writer_committed() {
        let dir = TempDir::new();
        let mut db = Database::open(&dir.file()).unwrap();
        let reader = db.reader().unwrap();
        assert_eq!(
            reader.load_room("lobby", HISTORY, REF_WINDOW).unwrap(),
            StoredRoom::default()
        );
        db.append(&records("lobby", 1, 3), HISTORY, REF_WINDOW)
            .unwrap();
        let room = reader.load_room("lobby", HISTORY, REF_WINDOW).unwrap();
        assert_eq!(room, db.load_room("lobby", HISTORY, REF_WINDOW).unwrap());
        assert_eq!((room.last_id, ids(&room)), (3, vec![1, 2, 3]));
        // The lock is the writer's alone: a reader does not take it.
        let error = open_error(&dir.file());
        assert!(matches!(error, OpenError::InUse { .. }), "{error:?}");
    }

    #[test]
    fn a_probe_writes_and_leaves_nothing() {
        let dir = TempDir::new();
        let mut db = Database::open(&dir.file()).unwrap();
        db.probe().unwrap();
        let rows: i64 = db
            .connection
            .query_row("SELECT count(*) FROM meta", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 1, "only the epoch");
    }

    #[test]
    fn a_record_round_trips_a_message() {
        let message = record("lobby", 7, None).into_message();
        assert_eq!(message.from.id, "session-1");
        let stored = Record::of(&message, Some("r7"));
        assert_eq!(stored, record("lobby", 7, Some("r7")));
        assert_eq!(stored.into_message(), message);
    }

    /// Appends `total` records over `rooms` rooms in batches of `batch`, with a
    /// `ref` and a chat-sized text each; returns records per second.
    fn append_rate(rooms: u64, total: u64, batch: usize) -> f64 {
        let dir = TempDir::new();
        let mut db = Database::open(&dir.file()).unwrap();
        let all: Vec<Record> = (0..total)
            .map(|n| Record {
                room: format!("room-{}", n % rooms),
                id: n / rooms + 1,
                from_id: format!("{:016x}", n % 97),
                from_name: format!("user {}", n % 97),
                text: format!("message number {n}, about as long as a line of chat is"),
                at: 1_764_000_000_000 + n,
                reference: Some(format!("ref-{n:012}")),
            })
            .collect();
        let started = Instant::now();
        for chunk in all.chunks(batch) {
            db.append(chunk, 1_000, 10_000).unwrap();
        }
        let elapsed = started.elapsed().as_secs_f64();
        let last = db.load_room("room-0", 1_000, 10_000).unwrap();
        assert_eq!(last.last_id, total / rooms);
        total as f64 / elapsed
    }

    #[test]
    #[ignore = "benchmark: cargo test -p charla-server --release --lib append_benchmark -- --ignored --nocapture"]
    fn append_benchmark() {
        for rooms in [1, 10, 100] {
            let rate = append_rate(rooms, 100_000, 64);
            eprintln!("100000 records, batches of 64, {rooms} rooms: {rate:.0} records/s");
        }
    }
}
