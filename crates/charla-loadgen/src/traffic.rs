//! The engine behind `fanout`, `rooms` and `churn`: every member connects
//! and joins, then at one start signal the senders send, at a fixed total
//! rate (open loop) or as fast as a window of undelivered messages allows
//! (closed loop), and every member counts what it receives.
//!
//! Phases: **setup** (connect and join, bounded by `--setup-secs`), **run**
//! (`--duration-secs` of sending), **drain** (until every owed delivery
//! arrived, at most `--drain-secs`), **finish** (close). The measured
//! interval runs from the start signal to the end of the drain.
//!
//! Accounting: a message owes one delivery to each member that was in its
//! room from the start, the sender included (both servers echo to the
//! sender). A sender's counter is raised *before* its message is written, so
//! a delivery can never be counted before it is owed. `lost` is owed minus
//! unique deliveries; `duplicated` counts a `seq` heard twice.
//!
//! Closed loop: sender `s` may send while fewer than `--window` of its
//! messages are still undelivered to some member, that is while
//! `sent[s] * audience < delivered[s] + window * audience`. The window keeps
//! every member's server-side queue far below Charla's default outbox of 256
//! frames, so a maximum run measures throughput, not slow-consumer closes.

use crate::Options;
use crate::churn::{self, ChurnArgs, ChurnState};
use crate::marker::{self, Stamp};
use crate::process::{Process, Sample};
use crate::report::{Latency, Report};
use crate::stats::{Histogram, Tally};
use crate::wire::{Client, Error, Event};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

/// Latencies a client buffers before it takes the shared histogram's lock.
const LATENCY_BATCH: usize = 256;
/// How often the coordinator checks whether the drain is complete.
const DRAIN_POLL: Duration = Duration::from_millis(5);
/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// `fanout`: one room, many members, a few senders.
#[derive(Clone, Debug, clap::Args)]
pub struct FanoutArgs {
    /// Members of the room, senders included.
    #[arg(long, default_value_t = 1000)]
    pub members: usize,
    /// Members that also send.
    #[arg(long, default_value_t = 10)]
    pub senders: usize,
    /// Messages per second, all senders together (fixed-rate variant).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Closed loop: send as fast as the window allows; `--rate` is ignored.
    #[arg(long)]
    pub max: bool,
    /// Closed loop: messages per sender not yet delivered to every member.
    #[arg(long, default_value_t = 8)]
    pub window: u64,
}

/// `rooms`: many small rooms, one sender in each.
#[derive(Clone, Debug, clap::Args)]
pub struct RoomsArgs {
    #[arg(long, default_value_t = 200)]
    pub rooms: usize,
    /// Members per room, the sender included.
    #[arg(long, default_value_t = 10)]
    pub members: usize,
    /// Messages per second, all rooms together (fixed-rate variant).
    #[arg(long, default_value_t = 4000.0)]
    pub rate: f64,
    /// Closed loop: send as fast as the window allows; `--rate` is ignored.
    #[arg(long)]
    pub max: bool,
    /// Closed loop: messages per sender not yet delivered to every member.
    #[arg(long, default_value_t = 8)]
    pub window: u64,
}

/// One room of a plan.
#[derive(Clone, Debug)]
pub struct RoomPlan {
    pub name: String,
    pub members: usize,
    pub senders: usize,
}

/// How senders decide when to send.
#[derive(Clone, Copy, Debug)]
pub enum Pace {
    /// Open loop: `rate` messages per second over all senders.
    Fixed { rate: f64 },
    /// Closed loop: at most `window` undelivered messages per sender.
    Window(u64),
}

impl Pace {
    fn variant(self) -> &'static str {
        match self {
            Pace::Fixed { .. } => "fixed",
            Pace::Window(_) => "max",
        }
    }
}

/// Where the run is; clients watch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Setup,
    Run,
    StopSending,
    Finish,
}

/// One sender's counters.
#[derive(Debug)]
pub struct Gate {
    /// Messages sent (raised before each write).
    sent: AtomicU64,
    /// Unique deliveries of this sender's messages to counted members.
    delivered: AtomicU64,
    /// Counted members of the sender's room.
    audience: u64,
    notify: Notify,
}

/// One-shot stop and finish signals, one pair per client.
///
/// A client's hot loop waits on these rather than on the phase `watch`:
/// polling a waiting `watch::Receiver::changed()` takes a lock every time,
/// once per received frame in a loop that handles a frame per wake, while a
/// `oneshot` is an atomic check.
#[derive(Debug, Default)]
pub struct Signals {
    stop: Mutex<Vec<oneshot::Sender<()>>>,
    finish: Mutex<Vec<oneshot::Sender<()>>>,
    fired_stop: std::sync::atomic::AtomicBool,
    fired_finish: std::sync::atomic::AtomicBool,
}

impl Signals {
    /// A client's pair: (stop sending, finish). Subscribed after a phase
    /// fired, the matching signal is already complete.
    pub fn subscribe(&self) -> (oneshot::Receiver<()>, oneshot::Receiver<()>) {
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
pub struct Shared {
    pub clock: Instant,
    pub phase: watch::Sender<Phase>,
    /// The stop and finish signals of the clients' hot loop.
    pub signals: Signals,
    pub options: Options,
    ready: AtomicUsize,
    failed_setup: AtomicUsize,
    setup_changed: Notify,
    senders_stopped: AtomicUsize,
    sent: AtomicU64,
    received: AtomicU64,
    duplicated: AtomicU64,
    errors: AtomicU64,
    closed: AtomicU64,
    gates: Vec<Gate>,
    latency: Mutex<Histogram>,
    first_error: Mutex<Option<String>>,
    window: Option<u64>,
}

impl Shared {
    /// The state of a run about to start, with one gate per sender.
    pub fn new(options: &Options, gates: Vec<Gate>, window: Option<u64>) -> Arc<Shared> {
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
            errors: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            gates,
            latency: Mutex::new(Histogram::new()),
            first_error: Mutex::new(None),
            window,
        })
    }

    /// Moves the run to `phase`, telling every client.
    pub fn enter(&self, phase: Phase) {
        self.phase.send_replace(phase);
        self.signals.fire(phase);
    }

    /// Counts a connection the server closed (or broke) during the run.
    pub fn connection_lost(&self) {
        self.closed.fetch_add(1, Ordering::Relaxed);
    }

    /// Errors counted so far, and the first one's words.
    pub fn errors(&self) -> (u64, Option<String>) {
        let first = self
            .first_error
            .lock()
            .expect("no client panics holding it");
        (self.errors.load(Ordering::Relaxed), first.clone())
    }

    /// Connections lost so far.
    pub fn closed(&self) -> u64 {
        self.closed.load(Ordering::Relaxed)
    }

    /// Microseconds since the run's clock origin.
    pub fn now_us(&self) -> u64 {
        self.clock.elapsed().as_micros() as u64
    }

    /// Counts an error and keeps the first one's words.
    pub fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first_error
            .lock()
            .expect("no client panics holding it");
        first.get_or_insert(what);
    }

    /// Adds buffered latencies to the run's histogram.
    pub fn flush_latencies(&self, buffer: &mut Vec<u64>) {
        let mut histogram = self.latency.lock().expect("no client panics holding it");
        for latency in buffer.drain(..) {
            histogram.record(latency);
        }
    }

    fn unique_received(&self) -> u64 {
        self.received.load(Ordering::Relaxed) - self.duplicated.load(Ordering::Relaxed)
    }

    fn expected(&self) -> u64 {
        self.gates
            .iter()
            .map(|g| g.sent.load(Ordering::Relaxed) * g.audience)
            .sum()
    }
}

/// `fanout`: one room `fanout`, `senders` of its `members` send.
pub async fn fanout(options: &Options, args: &FanoutArgs) -> Result<Report, Error> {
    let plan = vec![RoomPlan {
        name: "fanout".to_owned(),
        members: args.members,
        senders: args.senders.min(args.members),
    }];
    let pace = if args.max {
        Pace::Window(args.window)
    } else {
        Pace::Fixed { rate: args.rate }
    };
    run_plan(options, "fanout", plan, pace, None).await
}

/// `rooms`: rooms `r0`, `r1`, ... each with one sender.
pub async fn rooms(options: &Options, args: &RoomsArgs) -> Result<Report, Error> {
    let plan = (0..args.rooms)
        .map(|i| RoomPlan {
            name: format!("r{i}"),
            members: args.members,
            senders: 1.min(args.members),
        })
        .collect();
    let pace = if args.max {
        Pace::Window(args.window)
    } else {
        Pace::Fixed { rate: args.rate }
    };
    run_plan(options, "rooms", plan, pace, None).await
}

/// One member's place in the plan.
#[derive(Clone, Debug)]
struct Seat {
    index: usize,
    room: Arc<str>,
    /// This member's sender id, if it sends.
    sender: Option<u32>,
    /// Sender ids of the room, to expect each from `seq` 1.
    room_senders: std::ops::Range<u32>,
}

/// Runs a plan: setup, run, drain, finish, then the report.
pub async fn run_plan(
    options: &Options,
    scenario: &'static str,
    plan: Vec<RoomPlan>,
    pace: Pace,
    churn: Option<&ChurnArgs>,
) -> Result<Report, Error> {
    let mut seats = Vec::new();
    let mut gates = Vec::new();
    for room in &plan {
        let first_sender = gates.len() as u32;
        let room_senders = first_sender..first_sender + room.senders as u32;
        let name: Arc<str> = Arc::from(room.name.as_str());
        for member in 0..room.members {
            let sender = (member < room.senders).then(|| first_sender + member as u32);
            seats.push(Seat {
                index: seats.len(),
                room: name.clone(),
                sender,
                room_senders: room_senders.clone(),
            });
        }
        for _ in 0..room.senders {
            gates.push(Gate {
                sent: AtomicU64::new(0),
                delivered: AtomicU64::new(0),
                audience: room.members as u64,
                notify: Notify::new(),
            });
        }
    }
    let sender_count = gates.len();
    let window = match pace {
        Pace::Window(window) => Some(window.max(1)),
        Pace::Fixed { .. } => None,
    };
    let shared = Shared::new(options, gates, window);

    let label = format!("{scenario}/{} {}", pace.variant(), options.target);
    let connect_permits = Arc::new(Semaphore::new(options.connect_concurrency.max(1)));
    let total = seats.len();
    let mut clients = JoinSet::new();
    for seat in seats {
        let shared = shared.clone();
        let permits = connect_permits.clone();
        let period = match pace {
            Pace::Fixed { rate } if rate > 0.0 => {
                Some(Duration::from_secs_f64(sender_count as f64 / rate))
            }
            _ => None,
        };
        clients.spawn(async move {
            let result = member(&shared, seat, permits, period, sender_count).await;
            if let Err(error) = result {
                shared.error(error.to_string());
            }
        });
    }

    wait_for_setup(&shared, total, &label).await?;
    let server = options.server_pid.map(|pid| Process { pid });
    let before = server.and_then(|p| p.sample());
    let own_before = Process::current().sample();
    let started = Instant::now();
    let churn_state = churn.map(|_| Arc::new(ChurnState::default()));
    let churn_task = match (churn, &churn_state) {
        (Some(args), Some(state)) => Some(tokio::spawn(churn::drive(
            shared.clone(),
            args.clone(),
            plan.iter().map(|r| r.name.clone()).collect(),
            state.clone(),
        ))),
        _ => None,
    };
    shared.enter(Phase::Run);
    let progress = (!options.quiet).then(|| {
        tokio::spawn(show_progress(
            shared.clone(),
            label.clone(),
            started,
            churn_state.clone(),
        ))
    });

    tokio::time::sleep(options.duration).await;
    shared.enter(Phase::StopSending);
    // Every sender leaves its sending branch before the owed count is final.
    let stop_deadline = Instant::now() + options.drain;
    while shared.senders_stopped.load(Ordering::Acquire) < sender_count
        && Instant::now() < stop_deadline
        && !clients.is_empty()
    {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let drain_deadline = Instant::now() + options.drain;
    while shared.unique_received() < shared.expected() && Instant::now() < drain_deadline {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let elapsed = started.elapsed();
    let after = server.and_then(|p| p.sample());
    let own_after = Process::current().sample();
    if let Some(task) = churn_task {
        let _ = task.await;
    }
    shared.enter(Phase::Finish);
    if let Some(progress) = progress {
        let _ = progress.await;
    }
    while clients.join_next().await.is_some() {}

    let churn = churn_state.map(|state| state.figures(elapsed));
    let churn_lost = churn.as_ref().map_or(0, |c| c.1);
    let churn_duplicated = churn.as_ref().map_or(0, |c| c.2);
    let expected = shared.expected();
    let unique = shared.unique_received();
    let seconds = elapsed.as_secs_f64();
    let cpu = match (before, after) {
        (Some(b), Some(a)) => Some(a.cpu_seconds - b.cpu_seconds),
        _ => None,
    };
    let latency = Latency::of(&shared.latency.lock().expect("clients are done"));
    let first_error = shared.first_error.lock().expect("clients are done").clone();
    Ok(Report {
        scenario,
        variant: pace.variant(),
        target: options.target,
        connections: total,
        rooms: plan.len(),
        senders: sender_count,
        duration_s: round3(seconds),
        sent: shared.sent.load(Ordering::Relaxed),
        expected,
        received: shared.received.load(Ordering::Relaxed),
        lost: expected.saturating_sub(unique) + churn_lost,
        duplicated: shared.duplicated.load(Ordering::Relaxed) + churn_duplicated,
        errors: shared.errors.load(Ordering::Relaxed),
        closed: shared.closed.load(Ordering::Relaxed),
        messages_per_s: round3(shared.sent.load(Ordering::Relaxed) as f64 / seconds),
        deliveries_per_s: round3(unique as f64 / seconds),
        latency_ms: latency,
        server_cpu_s: cpu.map(round3),
        server_cpu_util: cpu.map(|c| round3(c / seconds)),
        cpu_s_per_million_deliveries: cpu
            .filter(|_| unique > 0)
            .map(|c| round3(c / unique as f64 * 1e6)),
        server_rss_kib: after.map(|a: Sample| a.rss_kib),
        loadgen_cpu_util: own_before
            .zip(own_after)
            .map(|(b, a)| round3((a.cpu_seconds - b.cpu_seconds) / seconds)),
        rss_per_connection_kib: None,
        churn: churn.map(|c| c.0),
        first_error,
    })
}

/// Rounds to three decimals, for readable JSON.
pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// Waits until every client joined, or fails with the first setup error.
pub async fn wait_for_setup(shared: &Shared, total: usize, label: &str) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + shared.options.setup;
    let mut last_shown = Instant::now();
    loop {
        let notified = shared.setup_changed.notified();
        let ready = shared.ready.load(Ordering::Acquire);
        let failed = shared.failed_setup.load(Ordering::Acquire);
        if failed > 0 {
            let first = shared.first_error.lock().expect("no panics").clone();
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
pub fn setup_done(shared: &Shared, ok: bool) {
    if ok {
        shared.ready.fetch_add(1, Ordering::AcqRel);
    } else {
        shared.failed_setup.fetch_add(1, Ordering::AcqRel);
    }
    shared.setup_changed.notify_one();
}

/// Connects as `name` (at most as many at once as `permits` allows), joins
/// `room`, and records the outcome with [`setup_done`].
pub async fn connect_and_join(
    shared: &Shared,
    permits: &Semaphore,
    name: &str,
    room: &str,
) -> Result<Client, Error> {
    let setup = async {
        let _permit = permits.acquire().await?;
        let mut client = Client::connect(&shared.options.url, shared.options.target, name).await?;
        client.join_and_wait(room).await?;
        Ok::<Client, Error>(client)
    };
    let outcome = setup.await;
    setup_done(shared, outcome.is_ok());
    outcome
}

/// One member: connect, join, then count (and maybe send) until finish.
async fn member(
    shared: &Shared,
    seat: Seat,
    permits: Arc<Semaphore>,
    period: Option<Duration>,
    sender_count: usize,
) -> Result<(), Error> {
    let mut client =
        connect_and_join(shared, &permits, &format!("lg-{}", seat.index), &seat.room).await?;
    let (mut stop, mut finish) = shared.signals.subscribe();
    let mut phase = shared.phase.subscribe();
    phase.wait_for(|p| *p >= Phase::Run).await?;

    let mut tally = Tally::default();
    for sender in seat.room_senders.clone() {
        tally.expect_from_start(sender);
    }
    let mut latencies = Vec::with_capacity(LATENCY_BATCH);
    let mut sending = seat.sender.is_some();
    let mut interval = period.zip(seat.sender).map(|(period, sender)| {
        // Senders are spread evenly over one period.
        let offset = period.mul_f64(f64::from(sender) / sender_count.max(1) as f64);
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
        interval
    });
    let gate = seat.sender.map(|s| &shared.gates[s as usize]);
    let text_bytes = shared.options.text_bytes;
    let mut stopped = false;
    let mut outcome = Ok(());
    loop {
        tokio::select! {
            biased;
            _ = &mut stop, if !stopped => {
                stopped = true;
                if sending {
                    sending = false;
                    shared.senders_stopped.fetch_add(1, Ordering::AcqRel);
                }
            }
            _ = &mut finish => break,
            event = client.next_event() => match event {
                Ok(Event::Stamped(stamp)) => {
                    count(shared, &mut tally, &mut latencies, stamp);
                }
                Ok(Event::Error(error)) => shared.error(error),
                Ok(Event::Closed(code)) => {
                    shared.closed.fetch_add(1, Ordering::Relaxed);
                    outcome = Err(format!("the server closed client {} ({code:?})", seat.index).into());
                    break;
                }
                Ok(_) => {}
                Err(error) => {
                    shared.closed.fetch_add(1, Ordering::Relaxed);
                    outcome = Err(error);
                    break;
                }
            },
            () = send_slot(gate, interval.as_mut(), shared.window), if sending => {
                let Some((gate, sender)) = gate.zip(seat.sender) else { continue };
                let seq = gate.sent.fetch_add(1, Ordering::AcqRel) + 1;
                shared.sent.fetch_add(1, Ordering::Relaxed);
                let stamp = Stamp { sender, seq, sent_us: shared.now_us() };
                if let Err(error) = client.say(&seat.room, marker::encode(stamp, text_bytes)).await {
                    outcome = Err(error);
                    break;
                }
            }
        }
    }
    if sending {
        shared.senders_stopped.fetch_add(1, Ordering::AcqRel);
    }
    shared.flush_latencies(&mut latencies);
    if outcome.is_ok() {
        client.close().await;
    }
    outcome
}

/// Records one stamped delivery to a counted member.
fn count(shared: &Shared, tally: &mut Tally, latencies: &mut Vec<u64>, stamp: Stamp) {
    shared.received.fetch_add(1, Ordering::Relaxed);
    if !tally.record(stamp.sender, stamp.seq) {
        shared.duplicated.fetch_add(1, Ordering::Relaxed);
        return;
    }
    latencies.push(shared.now_us().saturating_sub(stamp.sent_us));
    if latencies.len() >= LATENCY_BATCH {
        shared.flush_latencies(latencies);
    }
    if let Some(gate) = shared.gates.get(stamp.sender as usize) {
        gate.delivered.fetch_add(1, Ordering::AcqRel);
        if shared.window.is_some() {
            gate.notify.notify_one();
        }
    }
}

/// Completes when a sender may send its next message.
async fn send_slot(
    gate: Option<&Gate>,
    interval: Option<&mut tokio::time::Interval>,
    window: Option<u64>,
) {
    if let Some(interval) = interval {
        interval.tick().await;
        return;
    }
    let (Some(gate), Some(window)) = (gate, window) else {
        return std::future::pending().await;
    };
    loop {
        let notified = gate.notify.notified();
        let sent = gate.sent.load(Ordering::Acquire);
        let delivered = gate.delivered.load(Ordering::Acquire);
        if sent * gate.audience < delivered + window * gate.audience {
            return;
        }
        notified.await;
    }
}

/// Redraws the progress line every second until the run finishes.
async fn show_progress(
    shared: Arc<Shared>,
    label: String,
    started: Instant,
    churn: Option<Arc<ChurnState>>,
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
        let churned = churn.as_ref().map_or(String::new(), |c| {
            format!("  churn cycles {}", c.cycles.load(Ordering::Relaxed))
        });
        progress_line(&format!(
            "[{label}] {:5.1}s  sent {sent} ({:.0}/s)  deliveries {received} ({:.0}/s)  in-flight {}{churned}",
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
pub fn progress_line(text: &str) {
    let mut stderr = std::io::stderr().lock();
    if stderr.is_terminal() {
        let _ = write!(stderr, "\r\x1b[2K{text}");
    } else {
        let _ = writeln!(stderr, "{text}");
    }
    let _ = stderr.flush();
}
