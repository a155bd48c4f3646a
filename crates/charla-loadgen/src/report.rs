//! One result: what a run measured, printed as one JSON line.
//!
//! Latencies are milliseconds from the sender's send time (the stamp) to the
//! receiver's read, both on the load generator's one monotonic clock. CPU is
//! the server process's user plus system time over the measured interval;
//! RSS is the server's resident memory at the end of it. With several nodes
//! both are the sum over the nodes; a Redis they share is reported on its
//! own.

use crate::stats::Histogram;
use crate::wire::Target;
use serde::Serialize;

/// Rounds to three decimals, for readable JSON.
pub(crate) fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// The percentiles of a histogram of microseconds; `None` when empty.
    pub fn of(histogram: &Histogram) -> Option<Latency> {
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Latency {
            p50: ms(histogram.quantile(0.50)?),
            p99: ms(histogram.quantile(0.99)?),
            max: ms(histogram.max()),
        })
    }
}

/// What the churn scenario adds: connect-join-leave-disconnect cycles.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ChurnFigures {
    /// Cycles that connected, joined, left and disconnected.
    pub cycles: u64,
    /// Cycles that failed anywhere (refused, closed, timed out).
    pub failed: u64,
    pub cycles_per_s: f64,
    /// From starting to connect to holding `joined`.
    pub connect_join_ms: Option<Latency>,
    /// Live messages the churning clients received while joined.
    pub deliveries: u64,
}

/// One scenario's result against one server.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    pub scenario: &'static str,
    /// `fixed` (open loop at a set rate), `max` (closed loop), or `hold`.
    pub variant: &'static str,
    pub target: Target,
    /// Server URLs the clients were split across.
    pub nodes: usize,
    /// Clients connected for the whole run.
    pub connections: usize,
    pub rooms: usize,
    pub senders: usize,
    /// Measured interval: from the start signal until every expected
    /// delivery arrived (or the drain timed out).
    pub duration_s: f64,
    /// Messages sent.
    pub sent: u64,
    /// Deliveries owed: each message times its room's members.
    pub expected: u64,
    /// Deliveries received, duplicates included.
    pub received: u64,
    /// Owed deliveries that never arrived, plus gaps seen by clients that
    /// joined mid-run. Must be zero.
    pub lost: u64,
    /// Deliveries received more than once. Must be zero.
    pub duplicated: u64,
    /// Charla only: deliveries whose room id was not the one after the
    /// member's previous delivery (a gap, repeat or reordering). Must be
    /// zero.
    pub out_of_order: u64,
    /// Deliveries heard after a later message of the same sender (counted
    /// as received, not as lost or duplicated). Must be zero.
    pub reordered: u64,
    /// `error` events and unreadable frames.
    pub errors: u64,
    /// Connections the server closed during the run.
    pub closed: u64,
    pub messages_per_s: f64,
    pub deliveries_per_s: f64,
    pub latency_ms: Option<Latency>,
    pub server_cpu_s: Option<f64>,
    /// Server CPU seconds per wall second (1.0 = one core busy).
    pub server_cpu_util: Option<f64>,
    pub cpu_s_per_million_deliveries: Option<f64>,
    pub server_rss_kib: Option<u64>,
    /// The shared Redis's CPU seconds over the measured interval
    /// (`--redis-pid`), not included in `server_cpu_s`.
    pub redis_cpu_s: Option<f64>,
    pub redis_cpu_util: Option<f64>,
    pub redis_cpu_s_per_million_deliveries: Option<f64>,
    /// The load generator's own CPU seconds per wall second: near 1.0 with
    /// one CPU means the figures are the load generator's limit, not the
    /// server's.
    pub loadgen_cpu_util: Option<f64>,
    /// Idle only: server RSS growth divided by the connections held.
    pub rss_per_connection_kib: Option<f64>,
    pub churn: Option<ChurnFigures>,
    /// The first error seen, when any.
    pub first_error: Option<String>,
}

impl Report {
    /// Whether nothing was lost, duplicated or refused.
    pub fn is_clean(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.out_of_order == 0
            && self.reordered == 0
            && self.errors == 0
            && self.closed == 0
            && self.churn.as_ref().is_none_or(|c| c.failed == 0)
    }

    /// The report as one line of JSON.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("reports always serialise")
    }
}
