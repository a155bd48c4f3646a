//! Charla's load generator: drives many WebSocket clients against Charla or
//! against the Socket.IO peer in `bench/peers/socketio`, and reports what the
//! issue asks for as one JSON line per run.
//!
//! # Layout
//!
//! Scenarios use the engine; the engine uses no scenario.
//!
//! - [`traffic`]: `fanout` and `rooms`, plans of rooms, members and senders
//!   at a fixed rate or in a closed loop.
//! - [`churn`]: a plan of steady members plus clients that connect, join,
//!   leave and disconnect while the others chat.
//! - [`idle`]: many joined connections held idle; server RSS per connection.
//! - `engine`: what every scenario runs on: the phases (setup, run, drain,
//!   finish) and their signals, the counters every client shares, each
//!   sender's gate, connect-and-join, the counted member's hot loop, the
//!   progress line, and the run of a plan from setup to report.
//! - `wire`: one client, speaking Charla's protocol (through
//!   `charla-protocol`'s types) or Engine.IO v4 / Socket.IO.
//! - `marker`: the `{sender, seq, sent_at}` stamp inside each chat text, and
//!   the fast scanner that reads it from a frame.
//! - `stats`: the latency histogram and the per-client duplicate and gap
//!   tally.
//! - `process`: the server's CPU time and RSS from `/proc/<pid>`.
//! - `report`: the result, printed as one JSON line.
//!
//! # Several nodes
//!
//! With more than one `--url`, clients are split across the nodes
//! round-robin ([`Options::url_for`]) and counted exactly as with one: the
//! counters are the load generator's, not a node's, so a message sent on
//! one node owes a delivery to every member on every node. Against Charla
//! each counted member also checks that the room ids it receives follow each
//! other without a gap or a repeat (`out_of_order`), the promise a cluster
//! must keep across nodes.
//!
//! # Bounds
//!
//! Every loop is bounded in count and time: setup has a deadline, sending
//! stops after `--duration`, draining after `--drain`, and each churn cycle
//! and close has its own timeout. Only loopback addresses are accepted as
//! targets.

pub mod churn;
mod engine;
pub mod idle;
mod marker;
mod process;
mod report;
mod stats;
pub mod traffic;
mod wire;

pub use report::{ChurnFigures, Latency, Report};
pub use wire::{Error, Target};

use charla_protocol::settings::parse_seconds;
use std::time::Duration;

/// Settings shared by every scenario.
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// Base WebSocket URL of the server, loopback only
    /// (`ws://127.0.0.1:PORT`). Repeat it (or separate URLs with commas) to
    /// drive several nodes of one cluster: members are split across them
    /// round-robin, member m of room r on URL (r + m) mod the URL count.
    #[arg(
        long = "url",
        value_name = "URL",
        value_delimiter = ',',
        required = true
    )]
    pub urls: Vec<String>,

    /// Which protocol the server speaks.
    #[arg(long, value_enum, default_value_t = Target::Charla)]
    pub target: Target,

    /// The server's process id, for its CPU time and RSS from /proc. Repeat
    /// it (or separate ids with commas) for several nodes: their CPU times
    /// and RSS are added up.
    #[arg(long = "server-pid", value_name = "PID", value_delimiter = ',')]
    pub server_pids: Vec<u32>,

    /// The process id of a Redis the nodes share, for its CPU time, reported
    /// beside (not inside) the servers'.
    #[arg(long, value_name = "PID")]
    pub redis_pid: Option<u32>,

    /// Seconds of sending (or of holding, for `idle`).
    #[arg(long = "duration-secs", default_value = "10", value_parser = parse_seconds)]
    pub duration: Duration,

    /// Longest wait, after sending stops, for owed deliveries to arrive.
    #[arg(long = "drain-secs", default_value = "5", value_parser = parse_seconds)]
    pub drain: Duration,

    /// Longest wait for every client to connect and join.
    #[arg(long = "setup-secs", default_value = "120", value_parser = parse_seconds)]
    pub setup: Duration,

    /// Clients connecting at the same time during setup.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,

    /// Bytes of chat text per message (the stamp, padded).
    #[arg(long, default_value_t = 64)]
    pub text_bytes: usize,

    /// No live progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl Options {
    /// Options for one server at `url` with the defaults above.
    pub fn new(url: impl Into<String>, target: Target) -> Options {
        Options {
            urls: vec![url.into()],
            target,
            server_pids: Vec::new(),
            redis_pid: None,
            duration: Duration::from_secs(10),
            drain: Duration::from_secs(5),
            setup: Duration::from_secs(120),
            connect_concurrency: 64,
            text_bytes: 64,
            quiet: false,
        }
    }

    /// The URL for slot `slot`, round-robin over `--url`s. Scenarios pass a
    /// room's index plus the member's place in it, so every room with more
    /// members than nodes has members on every node, and the rooms' first
    /// members (the senders) are spread over the nodes too.
    pub fn url_for(&self, slot: usize) -> &str {
        &self.urls[slot % self.urls.len()]
    }
}

/// A scenario and its sizes.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum Scenario {
    /// One room, many members, a few senders.
    Fanout(traffic::FanoutArgs),
    /// Many small rooms, one sender each.
    Rooms(traffic::RoomsArgs),
    /// Many joined connections held idle.
    Idle(idle::IdleArgs),
    /// Clients connecting, joining, leaving and disconnecting while others
    /// chat.
    Churn(churn::ChurnArgs),
}

impl Scenario {
    /// Every scenario scaled down to a few dozen connections, for the smoke
    /// tests that run in CI against Charla and against the floor peer:
    /// `fanout` and `rooms` at a fixed rate and at their maximum, `idle` and
    /// `churn`. They check correctness (nothing lost, duplicated or
    /// reordered), never speed.
    pub fn smoke_set() -> Vec<Scenario> {
        vec![
            Scenario::Fanout(traffic::FanoutArgs {
                members: 30,
                senders: 3,
                rate: 60.0,
                max: false,
                window: 8,
            }),
            Scenario::Fanout(traffic::FanoutArgs {
                members: 30,
                senders: 3,
                rate: 0.0,
                max: true,
                window: 4,
            }),
            Scenario::Rooms(traffic::RoomsArgs {
                rooms: 6,
                members: 5,
                rate: 120.0,
                max: false,
                window: 8,
            }),
            Scenario::Rooms(traffic::RoomsArgs {
                rooms: 6,
                members: 5,
                rate: 0.0,
                max: true,
                window: 4,
            }),
            Scenario::Idle(idle::IdleArgs {
                connections: 40,
                room_size: 10,
                settle: Duration::from_millis(100),
            }),
            Scenario::Churn(churn::ChurnArgs {
                rooms: 3,
                members: 4,
                rate: 60.0,
                churn_rate: 20.0,
                dwell: Duration::from_millis(300),
                max_churners: 50,
            }),
        ]
    }
}

/// Runs one scenario against the server (or the nodes) at `options.urls`.
pub async fn run(options: &Options, scenario: &Scenario) -> Result<Report, Error> {
    if options.urls.is_empty() {
        return Err("at least one --url is needed".into());
    }
    for url in &options.urls {
        check_loopback(url)?;
    }
    match scenario {
        Scenario::Fanout(args) => traffic::fanout(options, args).await,
        Scenario::Rooms(args) => traffic::rooms(options, args).await,
        Scenario::Idle(args) => idle::run(options, args).await,
        Scenario::Churn(args) => churn::run(options, args).await,
    }
}

/// Refuses any target but this machine's loopback interface.
fn check_loopback(url: &str) -> Result<(), Error> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("--url must start with ws:// (got {url})"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(format!("refusing {url}: the load generator only targets loopback addresses").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_accepted() {
        assert!(check_loopback("ws://127.0.0.1:9000").is_ok());
        assert!(check_loopback("ws://127.8.0.1:9000/").is_ok());
        assert!(check_loopback("ws://localhost:9000").is_ok());
        assert!(check_loopback("ws://[::1]:9000").is_ok());
        assert!(check_loopback("ws://10.0.0.2:9000").is_err());
        assert!(check_loopback("ws://example.com").is_err());
        assert!(check_loopback("http://127.0.0.1:9000").is_err());
    }
}
