//! Counters and gauges for `/metrics`, in the Prometheus/OpenMetrics text
//! format, kept with the `prometheus-client` crate.
//!
//! Every metric is an atomic (or, for the histogram, a lock only the registry
//! takes), so the hot path records without a round trip and `/metrics` reads
//! without asking any actor.

use charla_protocol::ErrorCode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

/// The content type of [`Metrics::render`]'s output.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of `charla_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    code: String,
}

/// Labels of `charla_moderation_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModerationLabels {
    action: &'static str,
}

/// Every metric the server exports.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    connections: Gauge,
    rooms: Gauge,
    messages: Counter,
    deliveries: Counter,
    slow_consumers: Counter,
    rate_limited: Counter,
    errors: Family<ErrorLabels, Counter>,
    fanout_seconds: Histogram,
    cluster_nodes: Gauge,
    address_refusals: Counter,
    history_memory_bytes: Gauge,
    moderation: Family<ModerationLabels, Counter>,
    banned_refusals: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric under the `charla_` prefix.
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("charla");
        let connections = Gauge::default();
        let rooms = Gauge::default();
        let messages = Counter::default();
        let deliveries = Counter::default();
        let slow_consumers = Counter::default();
        let rate_limited = Counter::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        // 10 µs to about 0.33 s, doubling.
        let fanout_seconds = Histogram::new(exponential_buckets(0.000_01, 2.0, 16));
        let cluster_nodes = Gauge::default();
        cluster_nodes.set(1);
        let address_refusals = Counter::default();
        let history_memory_bytes = Gauge::default();
        let moderation = Family::<ModerationLabels, Counter>::default();
        let banned_refusals = Counter::default();
        registry.register(
            "connections",
            "Open WebSocket connections",
            connections.clone(),
        );
        registry.register("rooms", "Rooms held in memory", rooms.clone());
        registry.register(
            "messages",
            "Messages accepted and stored (by this node, with Redis)",
            messages.clone(),
        );
        registry.register(
            "deliveries",
            "Message events queued to room members (of this node, with Redis)",
            deliveries.clone(),
        );
        registry.register(
            "slow_consumers",
            "Sessions closed with 1008 because their outbound queue was full",
            slow_consumers.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by flood control",
            rate_limited.clone(),
        );
        registry.register("errors", "Error events sent, by code", errors.clone());
        registry.register(
            "fanout_seconds",
            "Time from accepting a message to queueing it for the room's last member (not recorded with Redis)",
            fanout_seconds.clone(),
        );
        registry.register(
            "cluster_nodes",
            "Charla nodes alive on the shared Redis, as this node sees them (1 without Redis)",
            cluster_nodes.clone(),
        );
        registry.register(
            "address_refusals",
            "Upgrades refused with 429: the client's address held CHARLA_MAX_CONNECTIONS_PER_IP connections",
            address_refusals.clone(),
        );
        registry.register(
            "history_memory_bytes",
            "Bytes of message history held in memory, all rooms together (kept under CHARLA_HISTORY_MEMORY_BYTES by moving idle rooms out)",
            history_memory_bytes.clone(),
        );
        registry.register(
            "moderation",
            "Moderation calls that took effect, by action (delete, kick, ban, unban)",
            moderation.clone(),
        );
        registry.register(
            "banned_refusals",
            "Requests refused with banned",
            banned_refusals.clone(),
        );
        Metrics {
            registry,
            connections,
            rooms,
            messages,
            deliveries,
            slow_consumers,
            rate_limited,
            errors,
            fanout_seconds,
            cluster_nodes,
            address_refusals,
            history_memory_bytes,
            moderation,
            banned_refusals,
        }
    }

    /// A moderation call took effect: `action` is `delete`, `kick`, `ban`
    /// or `unban`.
    pub(crate) fn moderated(&self, action: &'static str) {
        self.moderation
            .get_or_create(&ModerationLabels { action })
            .inc();
    }

    pub(crate) fn set_history_memory_bytes(&self, bytes: usize) {
        self.history_memory_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// An upgrade was refused for its address's connection count.
    pub(crate) fn address_refused(&self) {
        self.address_refusals.inc();
    }

    /// Counts a new connection unless `max` are open already.
    pub(crate) fn try_open_connection(&self, max: usize) -> bool {
        let before = self.connections.inc();
        if usize::try_from(before).is_ok_and(|open| open >= max) {
            self.connections.dec();
            return false;
        }
        true
    }

    pub(crate) fn connection_closed(&self) {
        self.connections.dec();
    }

    pub(crate) fn set_rooms(&self, rooms: usize) {
        self.rooms.set(i64::try_from(rooms).unwrap_or(i64::MAX));
    }

    /// A message was stored and queued to `members` members in `elapsed`.
    pub(crate) fn message_fanned_out(&self, members: usize, elapsed: Duration) {
        self.messages.inc();
        self.deliveries.inc_by(members as u64);
        self.fanout_seconds.observe(elapsed.as_secs_f64());
    }

    /// A message was stored (Redis engine: by this node's script call).
    pub(crate) fn message_stored(&self) {
        self.messages.inc();
    }

    /// A message event was queued to `members` members of this node.
    pub(crate) fn message_delivered(&self, members: usize) {
        self.deliveries.inc_by(members as u64);
    }

    pub(crate) fn set_cluster_nodes(&self, nodes: usize) {
        self.cluster_nodes
            .set(i64::try_from(nodes).unwrap_or(i64::MAX));
    }

    pub(crate) fn slow_consumer(&self) {
        self.slow_consumers.inc();
    }

    /// An error event was sent to a client.
    pub(crate) fn error(&self, code: ErrorCode) {
        if code == ErrorCode::RateLimited {
            self.rate_limited.inc();
        }
        if code == ErrorCode::Banned {
            self.banned_refusals.inc();
        }
        self.errors
            .get_or_create(&ErrorLabels {
                code: code.as_str().to_owned(),
            })
            .inc();
    }

    /// The exposition text.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}
