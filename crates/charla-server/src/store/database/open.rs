//! Opening a database file: the checks that refuse a file Charla must not
//! use (with an [`OpenError`] that names the path, the setting and what to
//! do), the advisory lock that keeps a second Charla off it, the pragmas,
//! and the schema migrations.

use super::*;
use rusqlite::{ErrorCode, MAIN_DB};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::PathBuf;

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

/// The writer's page cache, in KiB (SQLite's default is 2 MiB): under load
/// every busy room's newest pages stay in it, so a batch seldom reads a page
/// back from the file. It fills only as pages are used.
const CACHE_KIB: i64 = 32 * 1024;

/// Appended to the database file's path to name its advisory lock file.
const LOCK_SUFFIX: &str = "-lock";

/// Schema steps, in order: step `i` takes a file from `user_version` `i` to
/// `i + 1`, in the same transaction as the version bump. Only ever append a
/// step: a released one has already run on somebody's file.
pub(super) const MIGRATIONS: &[&str] = &[SCHEMA_1, SCHEMA_2, SCHEMA_3];

/// The newest schema this binary knows.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Version 1. New messages land in `inbox` (arrival order, cheap to append
/// to), which is filed into `messages` (room order) every second or so; the
/// `stored` view reads both. A room's last id is its newest message's
/// (never pruned). Both `messages` and
/// `refs` are keyed by `(room, id)`: an append writes at the end of the
/// room's range and a prune deletes from its start, with no second index to
/// keep up (refs are only ever read a room's window at a time, never looked
/// up one by one). `messages.reference` repeats the message's `ref` so a
/// loaded message is whole; `refs` outlives it, up to the `ref` window.
pub(super) const SCHEMA_1: &str = "
    CREATE TABLE meta (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
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
    CREATE TABLE inbox (
        seq INTEGER PRIMARY KEY,
        room TEXT NOT NULL,
        id INTEGER NOT NULL,
        from_id TEXT NOT NULL,
        from_name TEXT NOT NULL,
        text TEXT NOT NULL,
        at INTEGER NOT NULL,
        reference TEXT
    );
    CREATE VIEW stored AS
        SELECT room, id, from_id, from_name, text, at, reference FROM messages
        UNION ALL
        SELECT room, id, from_id, from_name, text, at, reference FROM inbox;
    CREATE TABLE refs (
        room TEXT NOT NULL,
        id INTEGER NOT NULL,
        reference TEXT NOT NULL,
        PRIMARY KEY (room, id)
    ) WITHOUT ROWID;
    INSERT INTO meta (key, value) VALUES ('epoch', lower(hex(randomblob(16))));
";

/// Version 2: edits and deletes (docs/protocol.md, rule 50). An edit or
/// delete entry is a row like a message, naming its target in `edits` or
/// `deletes`; the target row carries its current state (`text`, `edited`,
/// `deleted`), updated in the transaction that stores the entry.
const SCHEMA_2: &str = "
    ALTER TABLE messages ADD COLUMN edited INTEGER;
    ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN edits INTEGER;
    ALTER TABLE messages ADD COLUMN deletes INTEGER;
    ALTER TABLE inbox ADD COLUMN edited INTEGER;
    ALTER TABLE inbox ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE inbox ADD COLUMN edits INTEGER;
    ALTER TABLE inbox ADD COLUMN deletes INTEGER;
    DROP VIEW stored;
    CREATE VIEW stored AS
        SELECT room, id, from_id, from_name, text, at, reference,
               edited, deleted, edits, deletes FROM messages
        UNION ALL
        SELECT room, id, from_id, from_name, text, at, reference,
               edited, deleted, edits, deletes FROM inbox;
";

/// Version 3: bans (docs/protocol.md, rule 52), written and read by the
/// [`BanBook`](super::BanBook). A row names exactly one of `identity` (a
/// member id) and `address` (as `ClientAddress` displays it); no `room` is
/// a ban from every room; `until` is in Unix milliseconds. Rows whose
/// `until` has passed are deleted at start and with each new ban. There are
/// few bans, so no index beyond the key.
const SCHEMA_3: &str = "
    CREATE TABLE bans (
        id TEXT PRIMARY KEY NOT NULL,
        identity TEXT,
        address TEXT,
        room TEXT,
        until INTEGER NOT NULL,
        reason TEXT,
        CHECK ((identity IS NULL) <> (address IS NULL))
    ) WITHOUT ROWID;
";

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

/// Opens (creating if missing) the database at `path` and migrates it to
/// [`SCHEMA_VERSION`]. `:memory:` is refused: the in-memory mode has no
/// `Database`.
pub(super) fn open(path: &Path) -> Result<Database, OpenError> {
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
    connection
        .pragma_update(None, "cache_size", -CACHE_KIB)
        .map_err(sql)?;
    migrate(&mut connection, found).map_err(sql)?;
    let epoch = connection
        .query_row(SELECT_EPOCH, [], |row| row.get(0))
        .map_err(sql)?;
    Ok(Database {
        connection,
        file,
        epoch,
        unfiled: HashMap::new(),
        unfiled_rows: 0,
        filed_at: Instant::now(),
        _lock: lock,
    })
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
