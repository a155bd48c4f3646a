//! The live progress line on stderr: redrawn in place on a terminal, one
//! line per update otherwise (CI logs). Only `--quiet` turns it off; stdout
//! stays the report's alone.

use super::run::SideLoad;
use super::shared::{Phase, Shared};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often the progress line is redrawn.
pub(super) const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Redraws the progress line every second until the run finishes.
pub(super) async fn show_progress(
    shared: Arc<Shared>,
    label: String,
    started: Instant,
    side: Option<Arc<dyn SideLoad>>,
) {
    let mut phase = shared.phase.subscribe();
    let mut ticker = tokio::time::interval(PROGRESS_EVERY);
    ticker.tick().await;
    let (mut last_sent, mut last_received, mut last_at) = (0, 0, Instant::now());
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() == Phase::Finish {
                    break;
                }
                continue;
            }
        }
        let sent = shared.sent.load(Ordering::Relaxed);
        let received = shared.received.load(Ordering::Relaxed);
        let seconds = last_at.elapsed().as_secs_f64();
        let side_words = side.as_ref().map_or(String::new(), |s| s.progress());
        progress_line(&format!(
            "[{label}] {:5.1}s  sent {sent} ({:.0}/s)  deliveries {received} ({:.0}/s)  in-flight {}{side_words}",
            started.elapsed().as_secs_f64(),
            (sent - last_sent) as f64 / seconds,
            (received - last_received) as f64 / seconds,
            shared.expected().saturating_sub(shared.unique_received()),
        ));
        (last_sent, last_received, last_at) = (sent, received, Instant::now());
    }
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
}

/// Writes one progress line to stderr: redrawn in place on a terminal, one
/// line each otherwise (CI logs).
pub(crate) fn progress_line(text: &str) {
    let mut stderr = std::io::stderr().lock();
    if stderr.is_terminal() {
        let _ = write!(stderr, "\r\x1b[2K{text}");
    } else {
        let _ = writeln!(stderr, "{text}");
    }
    let _ = stderr.flush();
}
