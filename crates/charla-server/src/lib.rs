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
//! - [`ws`]: `GET /ws`: origin check, name, connection cap, then the wiring
//!   of one connection.
//! - [`session`]: the per-connection actor (reads frames, heartbeat).
//! - [`outbox`]: a session's bounded outbound queue and its writer task.
//! - [`registry`]: the room registry actor, a folder: its message table,
//!   one handler per message, rooms and eviction, flood control.
//! - [`store`]: the storage seam: ids, history, the `ref` window.
//! - [`directory`]: the room directory snapshot read by HTTP.
//! - [`api`]: the JSON HTTP API, `/healthz` and `/metrics`.
//! - [`pages`]: the browser's routes: lobby, room pages, embedded assets,
//!   the 404 and 5xx pages (their templates and files are `charla-web`).
//! - [`error`]: HTTP errors and their status codes.
//! - [`metrics`], [`telemetry`]: Prometheus metrics and logging.
//!
//! # Which state lives where, and why
//!
//! | state | owner | why there |
//! |---|---|---|
//! | rooms, seats, session names, flood buckets, directory watchers | the registry actor | one owner serialises every change: ids, presence and acks are ordered without locks |
//! | ids, history ring, `ref` window | the [`store::MessageStore`] behind the registry | the seam a Redis engine replaces |
//! | room member counts and last ids | [`directory::Directory`] (a `DashMap`), written by the registry | `/api/rooms`, the lobby and `/metrics` read it without a round trip through the registry's mailbox |
//! | frames waiting for a client | each session's bounded [`outbox::Outbox`] | the registry never waits on a socket; a full queue is the slow-consumer signal |
//! | last frame heard, heartbeat timer | the session actor | per connection, no one else needs it |
//! | counters and gauges | [`metrics::Metrics`] (atomics) | recorded on the hot path, read by `/metrics` |
//!
//! # The hot path
//!
//! A `say` is parsed and validated by its session actor, then the registry
//! checks membership and flood control, asks the store for the next id,
//! queues the `ack` for the sender, serialises the `message` event once and
//! pushes a clone of the same reference-counted buffer into every member's
//! outbox. No lock is held across an await; nothing in the registry awaits.
//!
//! # Scaling out
//!
//! One process holds every room. Beyond one machine a Redis engine
//! implements [`store::MessageStore`] (a stream per room for ids and
//! history, a hash for the `ref` window) and relays each stored message to
//! the other nodes' registries over pub/sub, where it enters the same
//! broadcast path as a local message.

mod api;
mod app;
mod config;
mod directory;
mod error;
mod metrics;
mod outbox;
mod pages;
mod registry;
mod session;
mod state;
mod store;
pub mod telemetry;
mod ws;

pub use app::{Application, StartError};
pub use config::{Config, LogFormat};
