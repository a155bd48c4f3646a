//! Setup: each client connects and joins, at most `--connect-concurrency`
//! at once, and tells the run how it went; the run waits until every client
//! joined, the first failure, or `--setup-secs`.

use super::progress::{PROGRESS_EVERY, progress_line};
use super::shared::Shared;
use crate::wire::{Client, Error};
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::sync::Semaphore;

/// Waits until every client joined, or fails with the first setup error.
pub(crate) async fn wait_for_setup(
    shared: &Shared,
    total: usize,
    label: &str,
) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + shared.options.setup;
    let mut last_shown = Instant::now();
    loop {
        let notified = shared.setup_changed.notified();
        let ready = shared.ready.load(Ordering::Acquire);
        let failed = shared.failed_setup.load(Ordering::Acquire);
        if failed > 0 {
            let (_, first) = shared.errors();
            return Err(format!(
                "{failed} of {total} clients could not connect and join: {}",
                first.unwrap_or_default()
            )
            .into());
        }
        if ready == total {
            return Ok(());
        }
        if !shared.options.quiet && last_shown.elapsed() >= PROGRESS_EVERY {
            last_shown = Instant::now();
            progress_line(&format!("[{label}] setup: {ready}/{total} clients joined"));
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Err(format!("setup timed out: {ready}/{total} clients joined").into());
        }
    }
}

/// Marks one client's setup as done (or failed) for [`wait_for_setup`].
fn setup_done(shared: &Shared, ok: bool) {
    if ok {
        shared.ready.fetch_add(1, Ordering::AcqRel);
    } else {
        shared.failed_setup.fetch_add(1, Ordering::AcqRel);
    }
    shared.setup_changed.notify_one();
}

/// Connects to `url` as `name` (at most as many at once as `permits`
/// allows), joins `room`, and records the outcome for [`wait_for_setup`].
pub(crate) async fn connect_and_join(
    shared: &Shared,
    permits: &Semaphore,
    url: &str,
    name: &str,
    room: &str,
) -> Result<Client, Error> {
    let setup = async {
        let _permit = permits.acquire().await?;
        let mut client = Client::connect(url, shared.options.target, name).await?;
        client.join_and_wait(room).await?;
        Ok::<Client, Error>(client)
    };
    let outcome = setup.await;
    setup_done(shared, outcome.is_ok());
    outcome
}
