//! What every client of a run shares: the [`Phase`] it is in, the stop and
//! finish [`Signals`] of the clients' hot loop, one [`Gate`] per sender, and
//! the run's counters in [`Shared`].
//!
//! Counters are atomics that clients add to without a lock; the latency
//! histogram and the first error's words sit behind a mutex that a client
//! takes once per batch or once per error.

use crate::Options;
use crate::stats::Histogram;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{Notify, oneshot, watch};

/// Where the run is; clients watch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Setup,
    Run,
    StopSending,
    Finish,
}

/// One sender's counters.
#[derive(Debug)]
pub(crate) struct Gate {
    /// Messages sent (raised before each write).
    pub(super) sent: AtomicU64,
    /// Unique deliveries of this sender's messages to counted members.
    pub(super) delivered: AtomicU64,
    /// Counted members of the sender's room.
    pub(super) audience: u64,
    pub(super) notify: Notify,
}

impl Gate {
    /// The counters of a sender whose room has `audience` counted members.
    pub(super) fn new(audience: u64) -> Gate {
        Gate {
            sent: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            audience,
            notify: Notify::new(),
        }
    }
}

/// One-shot stop and finish signals, one pair per client.
///
/// A client's hot loop waits on these rather than on the phase `watch`:
/// polling a waiting `watch::Receiver::changed()` takes a lock every time,
/// once per received frame in a loop that handles a frame per wake, while a
/// `oneshot` is an atomic check.
#[derive(Debug, Default)]
pub(super) struct Signals {
    stop: Mutex<Vec<oneshot::Sender<()>>>,
    finish: Mutex<Vec<oneshot::Sender<()>>>,
    fired_stop: AtomicBool,
    fired_finish: AtomicBool,
}

impl Signals {
    /// A client's pair: (stop sending, finish). Subscribed after a phase
    /// fired, the matching signal is already complete.
    pub(super) fn subscribe(&self) -> (oneshot::Receiver<()>, oneshot::Receiver<()>) {
        let (stop_tx, stop) = oneshot::channel();
        let (finish_tx, finish) = oneshot::channel();
        let mut stops = self.stop.lock().expect("no panics holding it");
        if self.fired_stop.load(Ordering::Acquire) {
            let _ = stop_tx.send(());
        } else {
            stops.push(stop_tx);
        }
        drop(stops);
        let mut finishes = self.finish.lock().expect("no panics holding it");
        if self.fired_finish.load(Ordering::Acquire) {
            let _ = finish_tx.send(());
        } else {
            finishes.push(finish_tx);
        }
        (stop, finish)
    }

    fn fire(&self, phase: Phase) {
        let (list, fired) = match phase {
            Phase::StopSending => (&self.stop, &self.fired_stop),
            Phase::Finish => (&self.finish, &self.fired_finish),
            Phase::Setup | Phase::Run => return,
        };
        let mut senders = list.lock().expect("no panics holding it");
        fired.store(true, Ordering::Release);
        for sender in senders.drain(..) {
            let _ = sender.send(());
        }
    }
}

/// State every client of a run shares.
#[derive(Debug)]
pub(crate) struct Shared {
    clock: Instant,
    pub(crate) phase: watch::Sender<Phase>,
    /// The stop and finish signals of the clients' hot loop.
    pub(super) signals: Signals,
    pub(crate) options: Options,
    pub(super) ready: AtomicUsize,
    pub(super) failed_setup: AtomicUsize,
    pub(super) setup_changed: Notify,
    pub(super) senders_stopped: AtomicUsize,
    pub(super) sent: AtomicU64,
    pub(super) received: AtomicU64,
    pub(super) duplicated: AtomicU64,
    /// Charla only: deliveries whose room id did not follow the previous
    /// one's (see `stats::IdOrder`).
    pub(super) out_of_order: AtomicU64,
    /// Deliveries heard after a later message of their sender.
    pub(super) reordered: AtomicU64,
    errors: AtomicU64,
    closed: AtomicU64,
    pub(super) gates: Vec<Gate>,
    pub(super) latency: Mutex<Histogram>,
    first_error: Mutex<Option<String>>,
    pub(super) window: Option<u64>,
}

impl Shared {
    /// The state of a run about to start, with one gate per sender.
    pub(crate) fn new(options: &Options, gates: Vec<Gate>, window: Option<u64>) -> Arc<Shared> {
        let (phase, _) = watch::channel(Phase::Setup);
        Arc::new(Shared {
            clock: Instant::now(),
            phase,
            signals: Signals::default(),
            options: options.clone(),
            ready: AtomicUsize::new(0),
            failed_setup: AtomicUsize::new(0),
            setup_changed: Notify::new(),
            senders_stopped: AtomicUsize::new(0),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            duplicated: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            reordered: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            gates,
            latency: Mutex::new(Histogram::new()),
            first_error: Mutex::new(None),
            window,
        })
    }

    /// Moves the run to `phase`, telling every client.
    pub(crate) fn enter(&self, phase: Phase) {
        self.phase.send_replace(phase);
        self.signals.fire(phase);
    }

    /// Counts a connection the server closed (or broke) during the run.
    pub(crate) fn connection_lost(&self) {
        self.closed.fetch_add(1, Ordering::Relaxed);
    }

    /// Errors counted so far, and the first one's words.
    pub(crate) fn errors(&self) -> (u64, Option<String>) {
        let first = self
            .first_error
            .lock()
            .expect("no client panics holding it");
        (self.errors.load(Ordering::Relaxed), first.clone())
    }

    /// Connections lost so far.
    pub(crate) fn closed(&self) -> u64 {
        self.closed.load(Ordering::Relaxed)
    }

    /// Microseconds since the run's clock origin.
    pub(super) fn now_us(&self) -> u64 {
        self.clock.elapsed().as_micros() as u64
    }

    /// Counts an error and keeps the first one's words.
    pub(crate) fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first_error
            .lock()
            .expect("no client panics holding it");
        first.get_or_insert(what);
    }

    /// Adds buffered latencies to the run's histogram.
    pub(super) fn flush_latencies(&self, buffer: &mut Vec<u64>) {
        let mut histogram = self.latency.lock().expect("no client panics holding it");
        for latency in buffer.drain(..) {
            histogram.record(latency);
        }
    }

    /// Deliveries received, each counted once.
    pub(super) fn unique_received(&self) -> u64 {
        self.received.load(Ordering::Relaxed) - self.duplicated.load(Ordering::Relaxed)
    }

    /// Deliveries owed so far: each sender's messages times its audience.
    pub(super) fn expected(&self) -> u64 {
        self.gates
            .iter()
            .map(|g| g.sent.load(Ordering::Relaxed) * g.audience)
            .sum()
    }
}
