//! The one configuration struct. Every setting is a command-line flag named
//! after its environment variable (`CHARLA_MSG_RATE` is `--msg-rate`), the
//! flag wins over the variable, and `charla --help` documents them all.
//!
//! A value that does not parse, or that contradicts another, stops start-up
//! with a message naming the variable: each flag's value name *is* the
//! variable's name, so clap's own error says `<CHARLA_MSG_RATE>`, and
//! [`Config::validate`] names the variables it compares.

use charla_protocol::settings::parse_seconds;
use clap::{Parser, ValueEnum};
use std::net::IpAddr;
use std::time::Duration;

/// Default number of frames a session may have waiting to be written before
/// it counts as a slow consumer.
pub const DEFAULT_OUTBOX_FRAMES: usize = 256;

/// Default bytes of frames a session may have waiting to be written before
/// it counts as a slow consumer (1 MiB).
pub const DEFAULT_OUTBOX_BYTES: usize = 1 << 20;

/// Default bytes of message history held in memory across all rooms
/// (256 MiB).
pub const DEFAULT_HISTORY_MEMORY_BYTES: usize = 256 << 20;

/// The smallest `CHARLA_OUTBOX_BYTES` (128 KiB): a `joined` page of
/// history (an eighth of it) still holds a few messages, and the queue a
/// few of the largest message events (about 24 KB).
pub const MIN_OUTBOX_BYTES: usize = 128 << 10;

/// Default `CHARLA_DATABASE`: a file in the working directory.
pub const DEFAULT_DATABASE: &str = "charla.db";
/// The `CHARLA_DATABASE` value that keeps history in memory only.
pub const IN_MEMORY: &str = ":memory:";

/// Charla: a real-time, multi-room chat server.
#[derive(Clone, Debug, Parser)]
#[command(name = "charla", version, about, long_about = None)]
pub struct Config {
    /// TCP port to listen on (on CHARLA_HOST).
    #[arg(long, env = "PORT", value_name = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Address to listen on. The default, every interface, is what a
    /// platform's router needs; `127.0.0.1` keeps a local run (or a test)
    /// unreachable from other machines.
    #[arg(
        long,
        env = "CHARLA_HOST",
        value_name = "CHARLA_HOST",
        default_value = "0.0.0.0"
    )]
    pub host: IpAddr,

    /// Bearer token that allows `POST /api/rooms/{room}/messages` and the
    /// moderation calls (kicks, `/api/bans`, deleting any message). Unset,
    /// they are refused with 403.
    #[arg(
        long,
        env = "CHARLA_API_TOKEN",
        value_name = "CHARLA_API_TOKEN",
        hide_env_values = true
    )]
    pub api_token: Option<Secret>,

    /// Comma-separated origins (`https://chat.example.com`) allowed to open /ws
    /// besides the server's own host; `*` allows any origin.
    #[arg(
        long,
        env = "CHARLA_ALLOWED_ORIGINS",
        value_name = "CHARLA_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Seconds between the server's WebSocket pings (decimals allowed).
    #[arg(
        long = "heartbeat-secs",
        env = "CHARLA_HEARTBEAT_SECS",
        value_name = "CHARLA_HEARTBEAT_SECS",
        default_value = "15",
        value_parser = parse_seconds
    )]
    pub heartbeat: Duration,

    /// Seconds of silence (no frame, pong included) after which a connection is
    /// dropped (decimals allowed).
    #[arg(
        long = "client-timeout-secs",
        env = "CHARLA_CLIENT_TIMEOUT_SECS",
        value_name = "CHARLA_CLIENT_TIMEOUT_SECS",
        default_value = "45",
        value_parser = parse_seconds
    )]
    pub client_timeout: Duration,

    /// Largest WebSocket message a client may send, in bytes (a fragmented
    /// message counts whole); larger closes the connection with 1009.
    #[arg(
        long,
        env = "CHARLA_MAX_FRAME_BYTES",
        value_name = "CHARLA_MAX_FRAME_BYTES",
        default_value_t = 65_536
    )]
    pub max_frame_bytes: usize,

    /// Rooms one session may be in at once.
    #[arg(
        long,
        env = "CHARLA_MAX_ROOMS_PER_SESSION",
        value_name = "CHARLA_MAX_ROOMS_PER_SESSION",
        default_value_t = 16
    )]
    pub max_rooms_per_session: usize,

    /// Messages each room keeps (also while it has no members).
    #[arg(
        long,
        env = "CHARLA_HISTORY",
        value_name = "CHARLA_HISTORY",
        default_value_t = 1000
    )]
    pub history: usize,

    /// Messages sent in `joined` when the join has no `after`.
    #[arg(
        long,
        env = "CHARLA_JOIN_HISTORY",
        value_name = "CHARLA_JOIN_HISTORY",
        default_value_t = 50
    )]
    pub join_history: usize,

    /// Flood control: `say`/`nick` tokens refilled per second; 0 turns flood
    /// control off.
    #[arg(
        long,
        env = "CHARLA_MSG_RATE",
        value_name = "CHARLA_MSG_RATE",
        default_value_t = 10.0
    )]
    pub msg_rate: f64,

    /// Flood control: tokens in a full bucket (a new session starts full).
    #[arg(
        long,
        env = "CHARLA_MSG_BURST",
        value_name = "CHARLA_MSG_BURST",
        default_value_t = 20
    )]
    pub msg_burst: u32,

    /// Rooms kept in memory; beyond it the least recently active empty room is
    /// evicted, and when none can go a new room is refused.
    #[arg(
        long,
        env = "CHARLA_MAX_ROOMS",
        value_name = "CHARLA_MAX_ROOMS",
        default_value_t = 10_000
    )]
    pub max_rooms: usize,

    /// Request budget: tokens refilled per second for `join`, `leave`,
    /// `typing`, `watch_rooms`, `unwatch_rooms`, `ping` and refused
    /// requests (each takes one); 0 turns it off.
    #[arg(
        long,
        env = "CHARLA_REQUEST_RATE",
        value_name = "CHARLA_REQUEST_RATE",
        default_value_t = 20.0
    )]
    pub request_rate: f64,

    /// Request budget: tokens in a full bucket (a new session starts full).
    #[arg(
        long,
        env = "CHARLA_REQUEST_BURST",
        value_name = "CHARLA_REQUEST_BURST",
        default_value_t = 60
    )]
    pub request_burst: u32,

    /// New rooms one client address may create per minute (a join or a
    /// message that brings a room into memory); beyond it the join is
    /// refused with `rate_limited`. 0 turns the limit off.
    #[arg(
        long,
        env = "CHARLA_NEW_ROOMS_PER_MINUTE",
        value_name = "CHARLA_NEW_ROOMS_PER_MINUTE",
        default_value_t = 30
    )]
    pub new_rooms_per_minute: u32,

    /// Open WebSocket connections from one client address; an upgrade
    /// beyond it is answered 429.
    #[arg(
        long,
        env = "CHARLA_MAX_CONNECTIONS_PER_IP",
        value_name = "CHARLA_MAX_CONNECTIONS_PER_IP",
        default_value_t = 32
    )]
    pub max_connections_per_ip: usize,

    /// Proxies in front of Charla whose `X-Forwarded-For` entry is
    /// believed, as a hop count (1 behind Heroku's router); 0 uses the
    /// socket's address and ignores the header.
    #[arg(
        long,
        env = "CHARLA_TRUSTED_PROXIES",
        value_name = "CHARLA_TRUSTED_PROXIES",
        default_value_t = 0
    )]
    pub trusted_proxies: usize,

    /// Bytes of message history held in memory, all rooms together; beyond
    /// it the least recently active rooms without members leave memory
    /// (with SQLite or Redis their history stays stored and is read back
    /// when next used).
    #[arg(
        long,
        env = "CHARLA_HISTORY_MEMORY_BYTES",
        value_name = "CHARLA_HISTORY_MEMORY_BYTES",
        default_value_t = DEFAULT_HISTORY_MEMORY_BYTES
    )]
    pub history_memory_bytes: usize,

    /// Open WebSocket connections; an upgrade beyond it is answered 503.
    #[arg(
        long,
        env = "CHARLA_MAX_CONNECTIONS",
        value_name = "CHARLA_MAX_CONNECTIONS",
        default_value_t = 10_000
    )]
    pub max_connections: usize,

    /// Frames waiting to be written per session before it is closed as a slow
    /// consumer (1008).
    #[arg(
        long,
        env = "CHARLA_OUTBOX_FRAMES",
        value_name = "CHARLA_OUTBOX_FRAMES",
        default_value_t = DEFAULT_OUTBOX_FRAMES
    )]
    pub outbox_frames: usize,

    /// Bytes of frames waiting to be written per session before it is
    /// closed as a slow consumer (1008). A `join`'s history is paged so
    /// that it never needs more.
    #[arg(
        long,
        env = "CHARLA_OUTBOX_BYTES",
        value_name = "CHARLA_OUTBOX_BYTES",
        default_value_t = DEFAULT_OUTBOX_BYTES
    )]
    pub outbox_bytes: usize,

    /// Where history is kept: a SQLite file, created if missing (its
    /// directory must exist and be writable), or `:memory:` to keep
    /// nothing beyond the process (tests, benchmarks).
    #[arg(
        long,
        env = "CHARLA_DATABASE",
        value_name = "CHARLA_DATABASE",
        default_value = DEFAULT_DATABASE
    )]
    pub database: String,

    /// Redis URL (`redis://` or `rediss://` for TLS) for the Redis engine:
    /// history, ids, `ref`s, presence and the room directory are kept in
    /// Redis and shared by every Charla node on it; CHARLA_DATABASE is then
    /// not used. Unset, `REDIS_URL` (the name Heroku's Key-Value Store
    /// sets) is used if present.
    #[arg(
        long,
        env = "CHARLA_REDIS_URL",
        value_name = "CHARLA_REDIS_URL",
        hide_env_values = true
    )]
    pub redis_url: Option<Secret>,

    /// With a `rediss://` URL, accept a certificate that does not verify
    /// (Heroku's Key-Value Store presents a self-signed one). The link is
    /// still encrypted; the server is just not authenticated.
    #[arg(
        long,
        env = "CHARLA_REDIS_INSECURE_TLS",
        value_name = "CHARLA_REDIS_INSECURE_TLS",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub redis_insecure_tls: bool,

    /// Log filter, in `tracing` directive syntax (`info`, `charla_server=debug`).
    #[arg(
        long = "rust-log",
        env = "RUST_LOG",
        value_name = "RUST_LOG",
        default_value = "info"
    )]
    pub log_filter: String,

    /// Log format: `text` for people, `json` for one JSON object per line.
    #[arg(long, env = "LOG_FORMAT", value_name = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// A setting that must never reach a log: its `Debug` and `Display` print
/// `***`; [`Secret::expose`] gives the value to the one place that needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_owned())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A setting that parsed but cannot work, or contradicts another.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// The defaults, as if started with no flag and no variable set (tests
    /// start from here and shorten timings).
    pub fn defaults() -> Config {
        Config::parse_from_env_free(["charla"])
    }

    /// Whether history lives in memory only.
    pub fn in_memory(&self) -> bool {
        self.database == IN_MEMORY
    }

    /// Fills what platforms set under their own names: `REDIS_URL` when
    /// neither `--redis-url` nor `CHARLA_REDIS_URL` is given (an empty
    /// value, as a platform may set for an optional variable, is none).
    pub fn with_platform_fallbacks(mut self) -> Config {
        if self
            .redis_url
            .as_ref()
            .is_some_and(|url| url.expose().trim().is_empty())
        {
            self.redis_url = None;
        }
        if self.redis_url.is_none()
            && let Ok(url) = std::env::var("REDIS_URL")
            && !url.trim().is_empty()
        {
            self.redis_url = Some(Secret(url));
        }
        self
    }

    /// Parses flags only, ignoring the environment.
    fn parse_from_env_free<I: IntoIterator<Item = &'static str>>(args: I) -> Config {
        let mut command = <Config as clap::CommandFactory>::command();
        // Stripping every `env` keeps a developer's environment out of the
        // defaults tests rely on.
        command = command.mut_args(|arg| arg.env(None::<&str>));
        let matches = command
            .try_get_matches_from(args)
            .expect("the built-in defaults always parse");
        <Config as clap::FromArgMatches>::from_arg_matches(&matches)
            .expect("the built-in defaults always parse")
    }

    /// Checks the settings against each other; the error names the variables.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |text: &str| Err(ConfigError(text.to_owned()));
        if self.heartbeat.is_zero() {
            return fail("CHARLA_HEARTBEAT_SECS must be greater than 0");
        }
        if self.client_timeout <= self.heartbeat {
            return fail("CHARLA_CLIENT_TIMEOUT_SECS must be greater than CHARLA_HEARTBEAT_SECS");
        }
        if self.max_frame_bytes < 1024 {
            return fail("CHARLA_MAX_FRAME_BYTES must be at least 1024");
        }
        if self.max_rooms_per_session == 0 {
            return fail("CHARLA_MAX_ROOMS_PER_SESSION must be at least 1");
        }
        if self.history == 0 {
            return fail("CHARLA_HISTORY must be at least 1");
        }
        if self.join_history > self.history {
            return fail("CHARLA_JOIN_HISTORY must not exceed CHARLA_HISTORY");
        }
        if !self.msg_rate.is_finite() || self.msg_rate < 0.0 {
            return fail("CHARLA_MSG_RATE must be a number of tokens per second, 0 or more");
        }
        if self.msg_rate > 0.0 && self.msg_burst == 0 {
            return fail("CHARLA_MSG_BURST must be at least 1 while CHARLA_MSG_RATE is not 0");
        }
        if self.max_rooms == 0 {
            return fail("CHARLA_MAX_ROOMS must be at least 1");
        }
        if self.max_connections == 0 {
            return fail("CHARLA_MAX_CONNECTIONS must be at least 1");
        }
        if self.database.trim().is_empty() {
            return fail("CHARLA_DATABASE must name a file, or be :memory:");
        }
        if self.outbox_frames < 2 {
            return fail("CHARLA_OUTBOX_FRAMES must be at least 2");
        }
        if self.outbox_bytes < MIN_OUTBOX_BYTES {
            return fail("CHARLA_OUTBOX_BYTES must be at least 131072");
        }
        if !self.request_rate.is_finite() || self.request_rate < 0.0 {
            return fail("CHARLA_REQUEST_RATE must be a number of tokens per second, 0 or more");
        }
        if self.request_rate > 0.0 && self.request_burst == 0 {
            return fail(
                "CHARLA_REQUEST_BURST must be at least 1 while CHARLA_REQUEST_RATE is not 0",
            );
        }
        if self.history_memory_bytes == 0 {
            return fail("CHARLA_HISTORY_MEMORY_BYTES must be at least 1");
        }
        if self.max_connections_per_ip == 0 {
            return fail("CHARLA_MAX_CONNECTIONS_PER_IP must be at least 1");
        }

        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract() {
        let config = Config::defaults();
        assert_eq!(config.port, 8080);
        assert_eq!(config.host, IpAddr::from([0, 0, 0, 0]));
        assert_eq!(config.heartbeat, Duration::from_secs(15));
        assert_eq!(config.client_timeout, Duration::from_secs(45));
        assert_eq!(config.max_frame_bytes, 65_536);
        assert_eq!(config.max_rooms_per_session, 16);
        assert_eq!(config.history, 1000);
        assert_eq!(config.join_history, 50);
        assert_eq!(config.msg_rate, 10.0);
        assert_eq!(config.msg_burst, 20);
        assert_eq!(config.max_rooms, 10_000);
        assert_eq!(config.max_connections, 10_000);
        assert_eq!(config.database, "charla.db");
        assert_eq!(config.outbox_bytes, 1 << 20);
        assert_eq!(config.request_rate, 20.0);
        assert_eq!(config.request_burst, 60);
        assert_eq!(config.new_rooms_per_minute, 30);
        assert_eq!(config.max_connections_per_ip, 32);
        assert_eq!(config.trusted_proxies, 0);
        assert_eq!(config.history_memory_bytes, 256 << 20);
        assert!(!config.in_memory());
        assert!(config.api_token.is_none());
        assert!(config.allowed_origins.is_empty());
        config.validate().unwrap();
    }

    #[test]
    fn flags_are_named_after_their_variables() {
        let config = Config::try_parse_from([
            "charla",
            "--port",
            "9000",
            "--msg-rate",
            "0",
            "--heartbeat-secs",
            "0.5",
            "--client-timeout-secs",
            "2",
            "--allowed-origins",
            "https://a.example,https://b.example",
        ])
        .unwrap();
        assert_eq!(config.port, 9000);
        assert_eq!(config.msg_rate, 0.0);
        assert_eq!(config.heartbeat, Duration::from_millis(500));
        assert_eq!(
            config.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        config.validate().unwrap();
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let mut config = Config::defaults();
        config.api_token = Some("s3cret-token".into());
        config.redis_url = Some("redis://:hunter2@127.0.0.1:6379".into());
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cret-token"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("api_token: Some(***)"), "{printed}");
    }

    #[test]
    fn contradictions_name_the_variables() {
        let mut config = Config::defaults();
        config.client_timeout = config.heartbeat;
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("CHARLA_CLIENT_TIMEOUT_SECS"), "{error}");
        let mut config = Config::defaults();
        config.msg_rate = -1.0;
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("CHARLA_MSG_RATE")
        );
    }
}
