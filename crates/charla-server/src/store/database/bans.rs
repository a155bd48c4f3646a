//! The ban book: the `bans` table (schema version 3), so that bans outlive
//! a restart (docs/protocol.md, rule 52).
//!
//! Why a connection of its own rather than the writer thread
//! ([`crate::store::journal`]): the writer's jobs are messages, reported
//! back to the registry as counts in submission order and tied to its
//! generations and id rewinds; a ban is rare, independent of every room's
//! order, and answers an HTTP request. So the HTTP handler writes it on a
//! blocking thread through this connection, in a transaction of its own,
//! and answers only once that has committed. WAL mode lets one writer in at
//! a time: a ban's one-row transaction waits at most [`BUSY_TIMEOUT`] for a
//! batch of messages (as the writer would for it), and holds the lock for
//! far less than the writer's own timeout. It commits with the writer's
//! durability (`synchronous=NORMAL`) and leaves checkpoints to the writer
//! thread, which already makes them on its schedule.

use super::*;
use charla_protocol::api::Ban;

const INSERT_BAN: &str = "INSERT INTO bans (id, identity, address, room, until, reason)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const DELETE_BAN: &str = "DELETE FROM bans WHERE id = ?1";
const DELETE_EXPIRED: &str = "DELETE FROM bans WHERE until <= ?1";
const SELECT_BANS: &str =
    "SELECT id, identity, address, room, until, reason FROM bans ORDER BY until, id";

/// A read-write connection to a [`Database`]'s file for its `bans` table.
#[derive(Debug)]
pub(crate) struct BanBook {
    connection: Connection,
}

impl Database {
    /// The ban book on this file, for the thread that writes bans.
    pub(crate) fn ban_book(&self) -> rusqlite::Result<BanBook> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(&self.file, flags)?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(BanBook { connection })
    }
}

impl BanBook {
    /// Stores `ban`, and deletes the bans that ended by `now`, in one
    /// transaction: `Ok` once it has committed.
    pub(crate) fn insert(&mut self, ban: &Ban, now: u64) -> rusqlite::Result<()> {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        transaction
            .prepare_cached(DELETE_EXPIRED)?
            .execute([to_sql(now)?])?;
        transaction.prepare_cached(INSERT_BAN)?.execute(params![
            ban.id,
            ban.identity,
            ban.address,
            ban.room,
            to_sql(ban.until)?,
            ban.reason,
        ])?;
        transaction.commit()
    }

    /// Deletes the ban `id`; answers whether there was one.
    pub(crate) fn lift(&mut self, id: &str) -> rusqlite::Result<bool> {
        let deleted = self.connection.prepare_cached(DELETE_BAN)?.execute([id])?;
        Ok(deleted > 0)
    }

    /// Deletes the bans that ended by `now` and answers the others, soonest
    /// to end first.
    pub(crate) fn active(&mut self, now: u64) -> rusqlite::Result<Vec<Ban>> {
        self.connection
            .prepare_cached(DELETE_EXPIRED)?
            .execute([to_sql(now)?])?;
        let mut select = self.connection.prepare_cached(SELECT_BANS)?;
        select
            .query_map([], |row| {
                Ok(Ban {
                    id: row.get(0)?,
                    identity: row.get(1)?,
                    address: row.get(2)?,
                    room: row.get(3)?,
                    until: from_sql(row, 4)?,
                    reason: row.get(5)?,
                })
            })?
            .collect()
    }
}
