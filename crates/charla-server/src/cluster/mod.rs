//! The Redis engine: any number of Charla nodes on one Redis behave as one
//! chat server (`CHARLA_REDIS_URL` or `REDIS_URL`).
//!
//! # What Redis holds (every key starts with `charla:`)
//!
//! | key | type | what |
//! |---|---|---|
//! | `room:{room}` | hash | `last`: the room's last id; `epoch`: names its id sequence |
//! | `log:{room}` | sorted set | the newest `CHARLA_HISTORY` messages, scored by id, each its JSON |
//! | `refs:{room}` | sorted set | the `ref` window: each `ref` scored by the id it got |
//! | `members:{room}` | hash | seat → member JSON with its `seat`, every node's members |
//! | `rooms` | sorted set | rooms with members, scored by member count (the directory) |
//! | `seats:{node}` | set | `"{room} {seat}"` for every member a node holds |
//! | `nodes` | sorted set | node → its last heartbeat, in Redis's clock (ms) |
//! | `bans` | hash | ban id → ban JSON, the bans of every node (rule 52) |
//! | `seq` | string | the number of the last event published |
//! | `events` | pub/sub channel | every event, JSON, in one total order |
//!
//! # How one message travels
//!
//! The registry hands the `say` to [`Cluster::say`], a Lua script that, in
//! one atomic step, answers a known `ref` with its id, or takes the next id,
//! stores the message (trimming history and the `ref` window every 32 ids;
//! reads never go past `CHARLA_HISTORY`) and publishes
//! it as the next event. Ids are therefore contiguous whatever the number of
//! nodes and senders. The script's answer is the sender's `ack`; the event,
//! which every node receives on its subscription in publication order, is
//! what each node delivers to its own members. A node delivers a room's
//! messages in id order exactly once: it keeps the room's window in memory
//! (a [`crate::store::RoomLog`]) and drops ids it already has.
//!
//! # Events and snapshots
//!
//! Every script that changes shared state publishes an event numbered by
//! `seq`. A node reads a room (or the directory) with a script that returns
//! a consistent snapshot together with the `seq` it reflects; events up to
//! that number are already in the snapshot and are dropped. A gap in the
//! numbers (a subscription that dropped) makes the node read everything it
//! holds again ([`crate::registry`]'s resync), so nothing is missed.
//!
//! # Nodes
//!
//! Each node beats every [`HEARTBEAT`]; a node silent for [`NODE_TIMEOUT`]
//! is removed, with its members, by the next live node's heartbeat script,
//! which publishes a `leave` for each. A node stopping gracefully removes
//! its members at once ([`Cluster::depart`]). Scripts build their keys from
//! their arguments, so they need one Redis (with replicas if wanted), not a
//! Redis Cluster.
//!
//! - [`scripts`]: the Lua scripts.
//! - [`link`]: the ordered pipeline of script calls from the registry.
//! - [`events`]: the subscription and the events it delivers.

pub(crate) mod events;
pub(crate) mod link;
mod scripts;

use crate::config::Config;
use crate::store::PageQuery;
use charla_protocol::{ChatMessage, Member, RoomName, api};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisResult};
use scripts::Scripts;
use std::sync::Arc;
use std::time::Duration;

/// How often a node tells the others it is alive.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);
/// A node silent this long is gone: its members leave every room.
pub(crate) const NODE_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for Redis when connecting, and for an answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest pause between two attempts to reach Redis again.
pub(crate) const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);
/// The hash of every ban (rule 52), ban id → ban JSON.
const BANS_KEY: &str = "charla:bans";
/// The pub/sub channel every event goes through.
pub(crate) const EVENTS_CHANNEL: &str = "charla:events";

/// Redis could not be reached at start.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot reach Redis at {url} (CHARLA_REDIS_URL or REDIS_URL): {cause}; \
     check the URL and that Redis is up (with rediss:// and a self-signed \
     certificate, set CHARLA_REDIS_INSECURE_TLS=true)"
)]
pub(crate) struct ConnectError {
    /// The URL with its password replaced by `***`.
    url: String,
    cause: String,
}

/// A member as Redis holds it: the member, and its *seat*, the key of its
/// connection (the session id, unique across nodes). Two connections of one
/// identity are one member id on two seats (docs/protocol.md, rule 49).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Seated {
    #[serde(flatten)]
    pub(crate) member: Member,
    /// Absent in what a node older than seats wrote: then the member id,
    /// which was its session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seat: Option<String>,
}

impl Seated {
    /// The seat this member holds.
    pub(crate) fn key(&self) -> &str {
        self.seat.as_deref().unwrap_or(&self.member.id)
    }
}

/// What the `say` script answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Said {
    /// Stored under this id.
    New(u64),
    /// Its `ref` was stored before, under this id.
    Known(u64),
    /// An edit or delete refused: this is why.
    Refused(charla_protocol::ErrorCode),
}

/// One room as Redis holds it, as of event `seq`.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) seq: u64,
    pub(crate) last_id: u64,
    pub(crate) epoch: String,
    pub(crate) messages: Vec<ChatMessage>,
    pub(crate) members: Vec<Seated>,
}

/// Every room with members, as of event `seq`: name, members, last id;
/// and every ban, ended ones not yet forgotten included.
#[derive(Debug)]
pub(crate) struct DirectorySnapshot {
    pub(crate) seq: u64,
    pub(crate) rooms: Vec<(String, usize, u64)>,
    pub(crate) bans: Vec<api::Ban>,
}

/// What a heartbeat found.
#[derive(Debug)]
pub(crate) struct Beat {
    /// False when the other nodes had given this one up (its members were
    /// removed): the node then seats them again.
    pub(crate) known: bool,
    pub(crate) nodes: usize,
    pub(crate) reaped: usize,
}

/// One script call for the registry's [`link::Link`]: the command, and how
/// its answer reads.
pub(crate) struct Request<R> {
    pub(crate) cmd: redis::Cmd,
    pub(crate) parse: fn(redis::Value) -> RedisResult<R>,
}

impl<R> Request<R> {
    fn new(cmd: redis::Cmd, parse: fn(redis::Value) -> RedisResult<R>) -> Request<R> {
        Request { cmd, parse }
    }
}

/// A script answer that carries nothing but success.
fn done(_: redis::Value) -> RedisResult<()> {
    Ok(())
}

/// A node's handle on the shared Redis. Cheap to clone: every clone uses
/// the same multiplexed, self-reconnecting connection.
#[derive(Clone)]
pub(crate) struct Cluster {
    node: Arc<str>,
    client: Client,
    pub(crate) connection: ConnectionManager,
    scripts: Arc<Scripts>,
    history: usize,
    ref_window: u64,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node", &self.node).finish()
    }
}

impl Cluster {
    /// Connects to the configured Redis; fails when it cannot be reached
    /// within [`CONNECT_TIMEOUT`].
    pub(crate) async fn connect(
        config: &Config,
        url: &str,
        ref_window: u64,
    ) -> Result<Cluster, ConnectError> {
        let fail = |cause: String| ConnectError {
            url: redact(url),
            cause,
        };
        let client = Client::open(connection_url(url, config.redis_insecure_tls))
            .map_err(|error| fail(error.to_string()))?;
        let settings = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CONNECT_TIMEOUT))
            .set_max_delay(MAX_RECONNECT_DELAY)
            .set_number_of_retries(2);
        let mut connection = ConnectionManager::new_with_config(client.clone(), settings)
            .await
            .map_err(|error| fail(error.to_string()))?;
        let _: String = redis::cmd("PING")
            .query_async(&mut connection)
            .await
            .map_err(|error| fail(error.to_string()))?;
        let cluster = Cluster {
            node: Arc::from(format!("{:016x}", fastrand::u64(..))),
            client,
            connection,
            scripts: Arc::new(Scripts::new()),
            history: config.history,
            ref_window,
        };
        cluster
            .load_scripts()
            .await
            .map_err(|error| fail(error.to_string()))?;
        Ok(cluster)
    }

    /// Runs one script call; on `NOSCRIPT` (Redis forgot the scripts) loads
    /// them again, and resends the call only if `resend` (calls that do not
    /// change state: see [`scripts`]).
    async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: redis::Cmd,
        resend: bool,
    ) -> RedisResult<T> {
        let mut connection = self.connection.clone();
        match cmd.query_async(&mut connection).await {
            Err(error)
                if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
            {
                self.load_scripts().await?;
                if resend {
                    cmd.query_async(&mut connection).await
                } else {
                    Err(error)
                }
            }
            answer => answer,
        }
    }

    /// Loads every script into Redis (`SCRIPT LOAD`).
    pub(crate) async fn load_scripts(&self) -> RedisResult<()> {
        let mut connection = self.connection.clone();
        for lua in self.scripts.all() {
            let _: String = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(&lua.source)
                .query_async(&mut connection)
                .await?;
        }
        Ok(())
    }

    /// This node's name in Redis (random per process).
    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// Stores a message (its JSON without the id) unless its `ref` is known.
    /// An edit or delete entry (`change`: the message it changes, and the
    /// author who may change it, `None` for a moderator) is checked and
    /// applied to its message in the same step (docs/protocol.md, rule 50).
    pub(crate) fn say(
        &self,
        room: &RoomName,
        body: String,
        reference: Option<&str>,
        change: Option<(u64, Option<&str>)>,
    ) -> Request<Said> {
        let mut cmd = self.scripts.say.call();
        cmd.arg(&*self.node)
            .arg(room.as_str())
            .arg(reference.unwrap_or(""))
            .arg(body)
            .arg(self.history)
            .arg(self.ref_window)
            .arg(fresh_epoch());
        if let Some((target, author)) = change {
            cmd.arg(target).arg(author.unwrap_or(""));
        }
        Request::new(cmd, |value| {
            let (id, outcome): (u64, u8) = redis::from_redis_value(value)?;
            Ok(match outcome {
                1 => Said::New(id),
                2 => Said::Refused(charla_protocol::ErrorCode::UnknownMessage),
                3 => Said::Refused(charla_protocol::ErrorCode::NotAuthor),
                _ => Said::Known(id),
            })
        })
    }

    /// Seats (`rename`: renames) `member` in `room` for every node, on
    /// `seat` (its session's id).
    pub(crate) fn seat(
        &self,
        room: &RoomName,
        seat: &str,
        member: &Member,
        rename: bool,
    ) -> Request<()> {
        let seated = Seated {
            member: member.clone(),
            seat: Some(seat.to_owned()),
        };
        let json = serde_json::to_string(&seated).expect("members always serialise");
        let mut cmd = self.scripts.join.call();
        cmd.arg(&*self.node)
            .arg(room.as_str())
            .arg(seat)
            .arg(json)
            .arg(if rename { "rename" } else { "join" });
        Request::new(cmd, done)
    }

    /// Takes the member on `seat` out of `room` for every node.
    pub(crate) fn unseat(&self, room: &RoomName, seat: &str) -> Request<()> {
        let mut cmd = self.scripts.leave.call();
        cmd.arg(&*self.node).arg(room.as_str()).arg(seat);
        Request::new(cmd, done)
    }

    /// Tells every node that `member` is typing in `room`.
    pub(crate) fn typing(&self, room: &RoomName, member: &Member) -> Request<()> {
        let json = serde_json::to_string(member).expect("members always serialise");
        let mut cmd = self.scripts.typing.call();
        cmd.arg(&*self.node).arg(room.as_str()).arg(json);
        Request::new(cmd, done)
    }

    /// Reads `room`: last id, epoch, the newest `limit` messages, members.
    pub(crate) fn load(&self, room: &RoomName, limit: usize) -> Request<Snapshot> {
        let mut cmd = self.scripts.load.call();
        cmd.arg(room.as_str()).arg(limit.max(1)).arg(fresh_epoch());
        Request::new(cmd, |value| {
            type Raw = (u64, u64, String, Vec<String>, Vec<String>);
            let (seq, last_id, epoch, messages, members): Raw = redis::from_redis_value(value)?;
            Ok(Snapshot {
                seq,
                last_id,
                epoch,
                messages: parse_all(&messages),
                members: parse_all(&members),
            })
        })
    }

    /// Reads every room with members.
    pub(crate) fn directory(&self) -> Request<DirectorySnapshot> {
        Request::new(self.scripts.directory.call(), |value| {
            type Raw = (u64, Vec<(String, usize, u64)>, Vec<String>);
            let (seq, rooms, bans): Raw = redis::from_redis_value(value)?;
            Ok(DirectorySnapshot {
                seq,
                rooms,
                bans: parse_all(&bans),
            })
        })
    }

    /// Says this node is alive; with `reap`, removes the nodes silent for
    /// [`NODE_TIMEOUT`].
    pub(crate) fn heartbeat(&self, reap: bool) -> Request<Beat> {
        let timeout = u64::try_from(NODE_TIMEOUT.as_millis()).unwrap_or(u64::MAX);
        let mut cmd = self.scripts.heartbeat.call();
        cmd.arg(&*self.node)
            .arg(timeout)
            .arg(if reap { "1" } else { "0" });
        Request::new(cmd, |value| {
            let (known, nodes, reaped): (u8, usize, usize) = redis::from_redis_value(value)?;
            Ok(Beat {
                known: known == 1,
                nodes,
                reaped,
            })
        })
    }

    /// This node stops: its members leave every room now.
    pub(crate) async fn depart(&self) -> RedisResult<()> {
        let _: u8 = self
            .query(self.scripts.depart.call().arg(&*self.node).clone(), true)
            .await?;
        Ok(())
    }

    /// One page of `room`'s history (docs/protocol.md, rule 13).
    pub(crate) async fn page(
        &self,
        room: &RoomName,
        query: PageQuery,
    ) -> RedisResult<Vec<ChatMessage>> {
        let bound = |id: Option<u64>| id.map(|id| id.to_string()).unwrap_or_default();
        let raw: Vec<String> = self
            .query(
                self.scripts
                    .page
                    .call()
                    .arg(room.as_str())
                    .arg(bound(query.after))
                    .arg(bound(query.before))
                    .arg(query.limit.max(1))
                    .arg(self.history)
                    .clone(),
                true,
            )
            .await?;
        Ok(parse_all(&raw))
    }

    /// `room`'s members on every node, by name.
    pub(crate) async fn members(&self, room: &RoomName) -> RedisResult<Vec<Member>> {
        let raw: Vec<String> = self
            .query(self.scripts.members.call().arg(room.as_str()).clone(), true)
            .await?;
        let seated: Vec<Seated> = parse_all(&raw);
        let mut members: Vec<Member> = seated.into_iter().map(|s| s.member).collect();
        members.sort_unstable_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        Ok(members)
    }

    /// Every ban Redis holds (ended ones not yet forgotten included).
    pub(crate) async fn bans(&self) -> RedisResult<Vec<api::Ban>> {
        let raw: Vec<String> = self
            .query(redis::cmd("HVALS").arg(BANS_KEY).clone(), true)
            .await?;
        Ok(parse_all(&raw))
    }

    /// Stores `ban` for every node (they hear of it by its event); forgets
    /// the bans that ended before `now`.
    pub(crate) async fn ban(&self, ban: &api::Ban, now: u64) -> RedisResult<()> {
        let json = serde_json::to_string(ban).expect("bans always serialise");
        let cmd = self
            .scripts
            .ban
            .call()
            .arg(&*self.node)
            .arg(&ban.id)
            .arg(json)
            .arg(now)
            .clone();
        let _: u8 = self.query(cmd, false).await?;
        Ok(())
    }

    /// Lifts ban `id` for every node; answers whether it was in force.
    pub(crate) async fn unban(&self, id: &str, now: u64) -> RedisResult<bool> {
        let cmd = self
            .scripts
            .unban
            .call()
            .arg(&*self.node)
            .arg(id)
            .arg(now)
            .clone();
        let lifted: u8 = self.query(cmd, false).await?;
        Ok(lifted == 1)
    }

    /// Tells every node to take `member`'s connections out of `room`;
    /// answers how many it has there, on every node.
    pub(crate) async fn kick(
        &self,
        room: &RoomName,
        member: &str,
        reason: Option<&str>,
    ) -> RedisResult<usize> {
        let reason = serde_json::to_string(&reason).expect("a reason always serialises");
        let cmd = self
            .scripts
            .kick
            .call()
            .arg(&*self.node)
            .arg(room.as_str())
            .arg(member)
            .arg(reason)
            .clone();
        self.query(cmd, false).await
    }

    /// A client for the subscription (a connection of its own).
    pub(crate) fn client(&self) -> Client {
        self.client.clone()
    }
}

/// Parses JSON values written by this module's scripts; one that does not
/// parse (a foreign writer) is skipped and logged.
fn parse_all<T: serde::de::DeserializeOwned>(raw: &[String]) -> Vec<T> {
    raw.iter()
        .filter_map(|json| match serde_json::from_str(json) {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::error!(error = %error, "skipping a value Redis holds that does not parse");
                None
            }
        })
        .collect()
}

/// A new random epoch, used if the room has none yet.
fn fresh_epoch() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// The URL the client opens: with `insecure`, a `rediss://` URL accepts a
/// certificate that does not verify (the client's `#insecure` fragment).
fn connection_url(url: &str, insecure: bool) -> String {
    if insecure && url.starts_with("rediss://") && !url.contains('#') {
        format!("{url}#insecure")
    } else {
        url.to_owned()
    }
}

/// `url` with the password of its user information replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let user_info = &rest[..at];
    let hidden = match user_info.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    format!("{}{hidden}{}", &url[..scheme_end], &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://:hunter2@127.0.0.1:6390"),
            "redis://:***@127.0.0.1:6390"
        );
        assert_eq!(
            redact("rediss://user:p@ss@host:1/0"),
            "rediss://user:***@host:1/0"
        );
        assert_eq!(
            redact("redis://127.0.0.1:6390/0"),
            "redis://127.0.0.1:6390/0"
        );
        assert_eq!(redact("redis://onlysecret@host"), "redis://***@host");
    }

    #[test]
    fn insecure_tls_is_a_fragment_on_rediss_only() {
        assert_eq!(
            connection_url("rediss://h:1", true),
            "rediss://h:1#insecure"
        );
        assert_eq!(connection_url("rediss://h:1", false), "rediss://h:1");
        assert_eq!(connection_url("redis://h:1", true), "redis://h:1");
    }
}
