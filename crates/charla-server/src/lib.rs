//! Charla's server: a real-time, multi-room chat over WebSocket, with a JSON
//! HTTP API beside it. The wire contract lives in `charla-protocol`.
//!
//! # Layout
//!
//! - [`config`]: the one `Config` (flags and environment variables).
//! - [`app`]: [`Application`]: build on a listener, run until a shutdown
//!   future completes, drain sessions with 1001.
//! - [`state`]: `AppState`, what every request handler shares, and the
//!   permit an open connection holds.
//! - [`ws`]: `GET /ws`: origin check, name, connection caps (per address
//!   and in all), then the wiring of one connection.
//! - [`address`]: the client's address (the socket's, or a trusted
//!   `X-Forwarded-For` entry) and the count of connections per address.
//! - [`session`]: the per-connection actor (reads frames, heartbeat, the
//!   request budget).
//! - [`gate`]: the bound on a session's requests waiting at the registry:
//!   its socket is not read while the bound is reached.
//! - [`bucket`]: the token bucket behind flood control, the request budget
//!   and new rooms per address.
//! - [`outbox`]: a session's outbound queue, bounded in frames and bytes,
//!   and its writer task.
//! - [`registry`]: the room registry actor, a folder: its message table,
//!   one handler per message, rooms and eviction, flood control.
//! - [`store`]: the storage seam: each room's log (ids, recent history,
//!   the `ref` window) and the engine behind it: the SQLite
//!   [`store::database`] written by the [`store::journal`]'s thread, or
//!   memory only.
//! - [`cluster`]: the Redis engine (`CHARLA_REDIS_URL`): what Redis holds,
//!   its Lua scripts, the ordered pipeline of calls and the event
//!   subscription; the registry's side is `registry/shared/`.
//! - [`directory`]: the room directory snapshot read by HTTP.
//! - [`api`]: the JSON HTTP API, `/healthz` and `/metrics`.
//! - [`moderation`]: the moderation API: kicks and bans (the token, then
//!   the body; a ban is stored before it is answered).
//! - [`bans`]: what a ban is, the registry's set of bans in force and how
//!   a `join` or `say` is checked against it (clock passed in).
//! - [`pages`]: the browser's routes: lobby, room pages, embedded assets,
//!   the 404 and 5xx pages (their templates and files are `charla-web`).
//! - [`error`]: HTTP errors and their status codes.
//! - [`metrics`], [`telemetry`]: Prometheus metrics and logging.
//!
//! # Which state lives where, and why
//!
//! | state | owner | why there |
//! |---|---|---|
//! | rooms, seats, session names, flood buckets, new-room buckets per address, directory watchers | the registry actor | one owner serialises every change: ids, presence and acks are ordered without locks |
//! | ids, recent history, `ref` window of rooms in memory | the [`store::Store`]'s room logs, owned by the registry | `join`, resume and the room page are answered from memory; ids are assigned in one place |
//! | every room's stored history, last id and `ref` window | the SQLite file, written only by the writer thread ([`store::journal`]) | survives restarts and evictions; the registry never waits on the disk |
//! | messages waiting to be stored, answers held behind them | the registry (its pending queue and each session's fences) | a message is acknowledged and broadcast only once stored, and a session's answers keep its request order |
//! | with Redis: every room's ids, history, `ref` window, members on every node, the directory, node heartbeats | Redis, changed only by [`cluster`]'s Lua scripts, each atomic and publishing one numbered event | nodes share one order per room; a node that missed events reads snapshots again |
//! | with Redis: the rooms this node has members in (their log window and members on every node) | the registry's views (`registry/shared/`) | `join`, resume and presence are answered from memory; Redis is read once per room and kept current by events |
//! | room member counts and last ids | [`directory::Directory`] (a `DashMap`), written by the registry | `/api/rooms`, the lobby and `/metrics` read it without a round trip through the registry's mailbox |
//! | frames waiting for a client | each session's [`outbox::Outbox`], bounded in frames and bytes | the registry never waits on a socket; a full queue is the slow-consumer signal |
//! | a session's request budget, its count of requests at the registry | the session actor (the count shared with the registry in a [`gate::RequestGate`]) | refused or paused before any shared state is touched |
//! | bans in force | the registry ([`bans::Bans`]), loaded at start | `join` and `say` are checked where they are answered, and a new ban removes its connections in the same handler |
//! | the stored bans | the SQLite file's `bans` table, written by the HTTP handler through its own connection ([`store::database::BanBook`]) before it answers | bans outlive a restart; rare, independent of message order, so not the writer thread's |
//! | open connections per client address | [`address::AddressCounts`] (a `DashMap`) in the app state, a permit per connection | the upgrade handler decides before a session exists |
//! | last frame heard, heartbeat timer | the session actor | per connection, no one else needs it |
//! | counters and gauges | [`metrics::Metrics`] (atomics) | recorded on the hot path, read by `/metrics` |
//!
//! # The hot path
//!
//! A `say` is parsed and validated by its session actor, then the registry
//! checks membership and flood control, stages the message in the room's
//! log (the next id) and hands it to the writer thread. The writer stores
//! everything queued in one transaction and reports back; the registry then
//! queues the `ack` for the sender, serialises the `message` event once and
//! pushes a clone of the same reference-counted buffer into every member's
//! outbox. No lock is held across an await; nothing in the registry awaits
//! or touches the disk, but for the first use of a room since the start (or
//! since it was evicted): one indexed read of its last `CHARLA_HISTORY`
//! messages.
//!
//! With Redis the registry hands a `say` to a Lua script instead (the id,
//! the `ref` check, storage and publication in one atomic step); the
//! script's answer is the `ack`, and every node, this one included, delivers
//! the message to its own members when its event arrives on the
//! subscription.
//!
//! # Scaling out
//!
//! With SQLite, one process holds every room and its database file (a
//! second process on the same file refuses to start). With
//! `CHARLA_REDIS_URL`, any number of processes on one Redis are one chat
//! server: see [`cluster`] for what Redis holds and how nodes come and go.

mod address;
mod api;
mod app;
mod bans;
mod bucket;
mod cluster;
mod config;
mod directory;
mod error;
mod gate;
mod identity;
mod metrics;
mod moderation;
mod outbox;
mod pages;
mod registry;
mod session;
mod state;
mod store;
pub mod telemetry;
mod ws;

pub use app::{Application, StartError};
pub use config::{Config, LogFormat, Secret};
