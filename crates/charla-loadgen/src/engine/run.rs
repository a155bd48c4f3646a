//! One run of a plan: every member connects and joins, then at one start
//! signal the senders send at their [`Pace`], and every member counts what
//! it receives; after `--duration-secs` sending stops, the drain waits for
//! owed deliveries, and the report is written from the counters.
//!
//! A scenario that adds load of another kind beside the members (`churn`)
//! hands the run a [`SideLoad`]; the run starts it with the start signal,
//! waits for it after the drain and adds its figures to the report.

use super::member::{Seat, member};
use super::progress::show_progress;
use super::setup::wait_for_setup;
use super::shared::{Gate, Phase, Shared};
use crate::Options;
use crate::process::{Group, Process, Sample};
use crate::report::{ChurnFigures, Latency, Report, round3};
use crate::wire::Error;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How often the coordinator checks whether the drain is complete.
const DRAIN_POLL: Duration = Duration::from_millis(5);

/// One room of a plan.
#[derive(Clone, Debug)]
pub(crate) struct RoomPlan {
    pub(crate) name: String,
    pub(crate) members: usize,
    pub(crate) senders: usize,
}

/// How senders decide when to send.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pace {
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

/// Load that runs beside a plan's members from the start signal until
/// sending stops, and adds figures of its own to the report: `churn`'s
/// connect-join-leave-disconnect cycles. The run starts it, shows its
/// progress and reports it without knowing what it does.
pub(crate) trait SideLoad: Send + Sync {
    /// Runs in the plan's `rooms` until the run reaches
    /// [`Phase::StopSending`], then waits for what it has in flight (each
    /// part bounded by its own timeout).
    fn drive(self: Arc<Self>, shared: Arc<Shared>, rooms: Vec<String>) -> BoxFuture<'static, ()>;

    /// Words appended to the progress line.
    fn progress(&self) -> String;

    /// What it adds to the report, over `elapsed`, the measured interval.
    fn figures(&self, elapsed: Duration) -> SideFigures;
}

/// What a [`SideLoad`] adds to the report.
#[derive(Debug)]
pub(crate) struct SideFigures {
    /// The report's `churn` figures.
    pub(crate) churn: ChurnFigures,
    /// Deliveries it missed, added to the run's `lost`.
    pub(crate) lost: u64,
    /// Deliveries it heard twice, added to the run's `duplicated`.
    pub(crate) duplicated: u64,
    /// Room ids it heard out of order, added to the run's `out_of_order`.
    pub(crate) out_of_order: u64,
    /// Deliveries it heard late, added to the run's `reordered`.
    pub(crate) reordered: u64,
}

/// Runs a plan: setup, run, drain, finish, then the report.
pub(crate) async fn run_plan(
    options: &Options,
    scenario: &'static str,
    plan: Vec<RoomPlan>,
    pace: Pace,
    side: Option<Arc<dyn SideLoad>>,
) -> Result<Report, Error> {
    let mut seats = Vec::new();
    let mut gates = Vec::new();
    for (room_index, room) in plan.iter().enumerate() {
        let first_sender = gates.len() as u32;
        let room_senders = first_sender..first_sender + room.senders as u32;
        let name: Arc<str> = Arc::from(room.name.as_str());
        for member in 0..room.members {
            let sender = (member < room.senders).then(|| first_sender + member as u32);
            seats.push(Seat {
                index: seats.len(),
                url_slot: room_index + member,
                room: name.clone(),
                sender,
                room_senders: room_senders.clone(),
            });
        }
        for _ in 0..room.senders {
            gates.push(Gate::new(room.members as u64));
        }
    }
    let sender_count = gates.len();
    let window = match pace {
        Pace::Window(window) => Some(window.max(1)),
        Pace::Fixed { .. } => None,
    };
    let shared = Shared::new(options, gates, window);

    let label = run_label(options, &format!("{scenario}/{}", pace.variant()));
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
    let server = Group::of(&options.server_pids);
    let before = server.as_ref().and_then(Group::sample);
    let redis = options.redis_pid.map(|pid| Process { pid });
    let redis_before = redis.and_then(|p| p.sample());
    let own_before = Process::current().sample();
    let started = Instant::now();
    let side_task = side.clone().map(|side| {
        let rooms = plan.iter().map(|r| r.name.clone()).collect();
        tokio::spawn(side.drive(shared.clone(), rooms))
    });
    shared.enter(Phase::Run);
    let progress = (!options.quiet).then(|| {
        tokio::spawn(show_progress(
            shared.clone(),
            label.clone(),
            started,
            side.clone(),
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
    let after = server.as_ref().and_then(Group::sample);
    let redis_after = redis.and_then(|p| p.sample());
    let own_after = Process::current().sample();
    if let Some(task) = side_task {
        let _ = task.await;
    }
    shared.enter(Phase::Finish);
    if let Some(progress) = progress {
        let _ = progress.await;
    }
    while clients.join_next().await.is_some() {}

    let side = side.map(|side| side.figures(elapsed));
    let side_lost = side.as_ref().map_or(0, |s| s.lost);
    let side_duplicated = side.as_ref().map_or(0, |s| s.duplicated);
    let side_out_of_order = side.as_ref().map_or(0, |s| s.out_of_order);
    let side_reordered = side.as_ref().map_or(0, |s| s.reordered);
    let expected = shared.expected();
    let unique = shared.unique_received();
    let seconds = elapsed.as_secs_f64();
    let cpu = match (before, after) {
        (Some(b), Some(a)) => Some(a.cpu_seconds - b.cpu_seconds),
        _ => None,
    };
    let redis_cpu = match (redis_before, redis_after) {
        (Some(b), Some(a)) => Some(a.cpu_seconds - b.cpu_seconds),
        _ => None,
    };
    let per_million = |cpu: Option<f64>| {
        cpu.filter(|_| unique > 0)
            .map(|c| round3(c / unique as f64 * 1e6))
    };
    let latency = Latency::of(&shared.latency.lock().expect("clients are done"));
    let (errors, first_error) = shared.errors();
    let sent = shared.sent.load(Ordering::Relaxed);
    Ok(Report {
        scenario,
        variant: pace.variant(),
        target: options.target,
        nodes: options.urls.len(),
        connections: total,
        rooms: plan.len(),
        senders: sender_count,
        duration_s: round3(seconds),
        sent,
        expected,
        received: shared.received.load(Ordering::Relaxed),
        lost: expected.saturating_sub(unique) + side_lost,
        duplicated: shared.duplicated.load(Ordering::Relaxed) + side_duplicated,
        out_of_order: shared.out_of_order.load(Ordering::Relaxed) + side_out_of_order,
        reordered: shared.reordered.load(Ordering::Relaxed) + side_reordered,
        errors,
        closed: shared.closed(),
        messages_per_s: round3(sent as f64 / seconds),
        deliveries_per_s: round3(unique as f64 / seconds),
        latency_ms: latency,
        server_cpu_s: cpu.map(round3),
        server_cpu_util: cpu.map(|c| round3(c / seconds)),
        cpu_s_per_million_deliveries: per_million(cpu),
        server_rss_kib: after.map(|a: Sample| a.rss_kib),
        redis_cpu_s: redis_cpu.map(round3),
        redis_cpu_util: redis_cpu.map(|c| round3(c / seconds)),
        redis_cpu_s_per_million_deliveries: per_million(redis_cpu),
        loadgen_cpu_util: own_before
            .zip(own_after)
            .map(|(b, a)| round3((a.cpu_seconds - b.cpu_seconds) / seconds)),
        rss_per_connection_kib: None,
        churn: side.map(|s| s.churn),
        first_error,
    })
}

/// The progress line's label: the scenario and the target, and how many
/// nodes when more than one.
pub(crate) fn run_label(options: &Options, what: &str) -> String {
    match options.urls.len() {
        0 | 1 => format!("{what} {}", options.target),
        nodes => format!("{what} {} x{nodes}", options.target),
    }
}
