//! Logging with `tracing`: human-readable lines by default, one JSON object
//! per line with `LOG_FORMAT=json`, filtered by `RUST_LOG`. Message text is
//! never logged at any level.

use crate::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Installs the global subscriber; a second call (tests) changes nothing.
pub fn init(config: &Config) {
    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // A line when a span closes gives one log line per HTTP request (method,
    // route, status, time) and per session (its duration), with no code in
    // the handlers.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_span_events(FmtSpan::CLOSE);
    let _ = match config.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}
