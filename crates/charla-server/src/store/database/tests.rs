//! The database's unit tests: each opens real files in a temporary directory.

use super::open::{MIGRATIONS, SCHEMA_VERSION};
use super::*;
use charla_protocol::api::Ban;
use std::fs;
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
        ..Record::default()
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
    for first in (1..=200).step_by(5) {
        db.append(&records("lobby", first, first + 4), 3, REF_WINDOW)
            .unwrap();
    }
    db.file_now(3, REF_WINDOW).unwrap();
    let room = db.load_room("lobby", 3, REF_WINDOW).unwrap();
    assert_eq!((room.last_id, ids(&room)), (200, vec![198, 199, 200]));
    let stored: i64 = db
        .connection
        .query_row("SELECT count(*) FROM messages", [], |row| row.get(0))
        .unwrap();
    // Rows go in steps of PRUNE_EVERY ids: at 197 the window's start passed
    // 192, so everything up to 197 went.
    assert!(
        (3..3 + PRUNE_EVERY as i64).contains(&stored),
        "older rows are deleted, not only hidden: {stored} left"
    );
    let reader = db.reader().unwrap();
    let page = reader.page("lobby", Some(0), None, 50, 3).unwrap();
    assert_eq!(
        page.iter().map(|r| r.id).collect::<Vec<_>>(),
        [198, 199, 200]
    );
    let page = reader.page("lobby", None, Some(199), 50, 3).unwrap();
    assert_eq!(
        page.iter().map(|r| r.id).collect::<Vec<_>>(),
        [198],
        "only the window"
    );
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
    let room = db.load_room("lobby", 3, REF_WINDOW).unwrap();
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

    // A record SQLite cannot hold (an id past i64::MAX), after good records.
    let mut batch = records("lobby", 3, 4);
    batch.push(record("other", 1, Some("x")));
    batch.push(record("lobby", i64::MAX as u64 + 1, None));
    assert!(db.append(&batch, HISTORY, REF_WINDOW).is_err());

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
    let reader = Connection::open_with_flags(dir.file(), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let count = |c: &Connection| -> i64 {
        c.query_row("SELECT count(*) FROM stored", [], |row| row.get(0))
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
            ..Record::default()
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

#[test]
fn refs_outlive_their_pruned_messages_within_the_window() {
    let dir = TempDir::new();
    let mut db = Database::open(&dir.file()).unwrap();
    for first in (1..=300).step_by(10) {
        db.append(&records("lobby", first, first + 9), 3, 250)
            .unwrap();
    }
    // Before filing the inbox holds them all; after it, the windows.
    for file in [false, true] {
        if file {
            db.file_now(3, 250).unwrap();
        }
        let room = db.load_room("lobby", 3, 250).unwrap();
        assert_eq!(ids(&room), [298, 299, 300]);
        let expected: Vec<(String, u64)> = (51..=300).map(|id| (format!("r{id}"), id)).collect();
        assert_eq!(room.refs, expected, "the window's refs, retained or not");
    }
    let room = db.load_room("lobby", 3, 250).unwrap();
    assert_eq!(ids(&room), [298, 299, 300]);
    let expected: Vec<(String, u64)> = (51..=300).map(|id| (format!("r{id}"), id)).collect();
    assert_eq!(room.refs, expected, "the window's refs, retained or not");
    let kept: i64 = db
        .connection
        .query_row("SELECT count(*) FROM refs", [], |row| row.get(0))
        .unwrap();
    assert!(kept < 250 + PRUNE_EVERY as i64, "{kept} refs kept");
}

/// An edit entry of message `target`, stored as entry `id`.
fn edit_record(room: &str, id: u64, target: u64, text: &str) -> Record {
    Record {
        text: text.to_owned(),
        edits: Some(target),
        ..record(room, id, None)
    }
}

#[test]
fn edits_and_deletes_change_their_message_in_the_inbox_and_once_filed() {
    let dir = TempDir::new();
    let mut db = Database::open(&dir.file()).unwrap();
    db.append(&records("r", 1, 2), HISTORY, REF_WINDOW).unwrap();
    db.file_now(HISTORY, REF_WINDOW).unwrap();
    // Message 1 is filed in `messages`; message 3 waits in the inbox.
    db.append(&records("r", 3, 3), HISTORY, REF_WINDOW).unwrap();
    let edits = [
        edit_record("r", 4, 1, "one, fixed"),
        edit_record("r", 5, 3, "three, fixed"),
    ];
    db.append(&edits, HISTORY, REF_WINDOW).unwrap();
    let loaded = db.load_room("r", HISTORY, REF_WINDOW).unwrap().messages;
    assert_eq!(loaded[0].text, "one, fixed");
    assert_eq!(loaded[0].edited, Some(edits[0].at));
    assert_eq!(loaded[2].text, "three, fixed");
    assert_eq!(loaded[3].edits, Some(1));

    let delete = Record {
        text: String::new(),
        deletes: Some(1),
        ..record("r", 6, None)
    };
    db.append(&[delete], HISTORY, REF_WINDOW).unwrap();
    db.file_now(HISTORY, REF_WINDOW).unwrap();
    let reader = db.reader().unwrap();
    let page = reader.page("r", None, None, 10, HISTORY).unwrap();
    assert!(page[0].deleted);
    assert_eq!(page[0].text, "", "the deleted message's text is gone");
    assert_eq!(page[3].text, "", "and so is its edit's");
    assert_eq!(page[4].text, "three, fixed", "other messages keep theirs");
    assert_eq!(page[5].deletes, Some(1));
    // An edit of a deleted message changes nothing.
    db.append(&[edit_record("r", 7, 1, "back")], HISTORY, REF_WINDOW)
        .unwrap();
    let loaded = db.load_room("r", HISTORY, REF_WINDOW).unwrap().messages;
    assert_eq!((loaded[0].text.as_str(), loaded[0].deleted), ("", true));
}

#[test]
fn a_version_1_file_keeps_its_messages_when_migrated() {
    let dir = TempDir::new();
    {
        let connection = Connection::open(dir.file()).unwrap();
        connection.execute_batch(super::open::SCHEMA_1).unwrap();
        connection
            .execute(
                "INSERT INTO messages (room, id, from_id, from_name, text, at, reference)
                 VALUES ('r', 1, 'a', 'ana', 'from before', 5, 'ref-1')",
                [],
            )
            .unwrap();
        connection.pragma_update(None, "user_version", 1).unwrap();
    }
    let db = Database::open(&dir.file()).unwrap();
    let room = db.load_room("r", HISTORY, REF_WINDOW).unwrap();
    assert_eq!(room.last_id, 1);
    let message = &room.messages[0];
    assert_eq!(
        (message.text.as_str(), message.deleted, message.edited),
        ("from before", false, None)
    );
    assert_eq!(room.refs, vec![("ref-1".to_owned(), 1)]);
}

fn ban(id: &str, until: u64) -> Ban {
    Ban {
        id: id.to_owned(),
        identity: Some("0123456789abcdef".to_owned()),
        address: None,
        room: Some("general".to_owned()),
        until,
        reason: Some("spam".to_owned()),
    }
}

#[test]
fn bans_outlive_reopening_and_ended_ones_are_deleted() {
    let dir = TempDir::new();
    {
        let db = Database::open(&dir.file()).unwrap();
        let mut book = db.ban_book().unwrap();
        book.insert(&ban("short", 1_000), 0).unwrap();
        let mut server_wide = ban("long", 5_000);
        server_wide.identity = None;
        server_wide.address = Some("2001:db8::/64".to_owned());
        server_wide.room = None;
        server_wide.reason = None;
        book.insert(&server_wide, 0).unwrap();
        assert!(!book.lift("nope").unwrap());
    }
    let db = Database::open(&dir.file()).unwrap();
    let mut book = db.ban_book().unwrap();
    let active = book.active(1_000).unwrap();
    assert_eq!(active.len(), 1, "{active:?}");
    assert_eq!(active[0].id, "long");
    assert_eq!(active[0].address.as_deref(), Some("2001:db8::/64"));
    assert_eq!(
        (active[0].room.as_ref(), active[0].reason.as_ref()),
        (None, None)
    );
    let rows: i64 = db
        .connection
        .query_row("SELECT count(*) FROM bans", [], |row| row.get(0))
        .unwrap();
    assert_eq!(rows, 1, "the ended ban is deleted, not just skipped");
    assert!(book.lift("long").unwrap());
    assert!(book.active(0).unwrap().is_empty());
}

#[test]
fn a_new_ban_deletes_the_ended_ones() {
    let dir = TempDir::new();
    let db = Database::open(&dir.file()).unwrap();
    let mut book = db.ban_book().unwrap();
    book.insert(&ban("old", 1_000), 0).unwrap();
    book.insert(&ban("new", 9_000), 1_000).unwrap();
    assert_eq!(
        book.active(0)
            .unwrap()
            .iter()
            .map(|b| b.id.as_str())
            .collect::<Vec<_>>(),
        ["new"]
    );
}

#[test]
fn a_ban_names_exactly_one_target() {
    let dir = TempDir::new();
    let db = Database::open(&dir.file()).unwrap();
    let mut book = db.ban_book().unwrap();
    let mut both = ban("both", 1_000);
    both.address = Some("192.0.2.1".to_owned());
    assert!(book.insert(&both, 0).is_err());
    let mut neither = ban("neither", 1_000);
    neither.identity = None;
    assert!(book.insert(&neither, 0).is_err());
    assert!(book.active(0).unwrap().is_empty());
}

#[test]
fn a_version_2_file_is_migrated_to_hold_bans_and_keeps_its_messages() {
    let dir = TempDir::new();
    {
        let connection = Connection::open(dir.file()).unwrap();
        for (done, step) in MIGRATIONS.iter().take(2).enumerate() {
            connection.execute_batch(step).unwrap();
            connection
                .pragma_update(None, "user_version", done as i64 + 1)
                .unwrap();
        }
        connection
            .execute(
                "INSERT INTO messages (room, id, from_id, from_name, text, at) VALUES ('lobby', 1, 's', 'ana', 'hi', 5)",
                [],
            )
            .unwrap();
    }
    let db = Database::open(&dir.file()).unwrap();
    let version: i64 = db
        .connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(
        db.load_room("lobby", HISTORY, REF_WINDOW).unwrap().last_id,
        1
    );
    let mut book = db.ban_book().unwrap();
    book.insert(&ban("a", 1_000), 0).unwrap();
    assert_eq!(book.active(0).unwrap().len(), 1);
}
