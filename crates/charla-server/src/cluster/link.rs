//! The registry's ordered pipeline of script calls: every call is sent at
//! once (Redis pipelines them on the one multiplexed connection), and the
//! outcomes come back to the registry in the order the calls were made, so
//! a session's `say`s settle in order, as with the SQLite writer.

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use tokio::sync::mpsc;

/// Calls in flight at once; more wait in the channel.
const IN_FLIGHT: usize = 4096;

/// Hands calls to the pipeline; dropping it ends the task once the calls
/// in flight have reported.
#[derive(Debug)]
pub(crate) struct Link<T> {
    calls: mpsc::UnboundedSender<BoxFuture<'static, T>>,
}

impl<T: Send + 'static> Link<T> {
    /// Starts the pipeline on the current runtime; `report` gets each
    /// outcome, in call order.
    pub(crate) fn start(report: impl Fn(T) + 'static) -> Link<T> {
        let (calls, mut queued) = mpsc::unbounded_channel::<BoxFuture<'static, T>>();
        actix_rt::spawn(async move {
            let mut running = FuturesOrdered::new();
            loop {
                tokio::select! {
                    call = queued.recv(), if running.len() < IN_FLIGHT => match call {
                        Some(call) => running.push_back(call),
                        None => break,
                    },
                    Some(outcome) = running.next(), if !running.is_empty() => report(outcome),
                }
            }
            while let Some(outcome) = running.next().await {
                report(outcome);
            }
        });
        Link { calls }
    }

    /// Queues one call.
    pub(crate) fn call(&self, call: BoxFuture<'static, T>) {
        // The task ends only when this sender is dropped.
        let _ = self.calls.send(call);
    }
}
