//! `churn`: steady members chat in a few rooms at a fixed rate while other
//! clients connect, join a room, stay a moment, leave and disconnect, at a
//! steady rate of cycles per second.
//!
//! The steady members are a plan the engine runs and counts like any other
//! (every owed delivery, no duplicates); the cycles are the run's
//! `SideLoad`. A churning client is in its room only for a while, so it is
//! owed no fixed set of messages; instead it checks what the contract
//! promises while connected: per sender, the messages it does hear follow
//! each other without a gap and without a repeat (and, against Charla, so do
//! the room ids). Its gaps count as lost, its repeats as duplicated, its
//! late deliveries as reordered, its ids out of turn as out of order. A
//! cycle that is refused, closed or takes longer than its dwell plus
//! `CYCLE_TIMEOUT` counts as failed. With several nodes, the cycles of each
//! room take the nodes in turn.

use crate::Options;
use crate::engine::{Pace, Phase, RoomPlan, Shared, SideFigures, SideLoad, run_plan};
use crate::report::{ChurnFigures, Latency, Report, round3};
use crate::stats::{Histogram, IdOrder, Tally};
use crate::wire::{Client, Error, Event};
use charla_protocol::settings::parse_seconds;
use futures_util::future::BoxFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

/// Longest a cycle may take beyond its dwell.
pub(crate) const CYCLE_TIMEOUT: Duration = Duration::from_secs(10);

/// `churn`'s sizes.
#[derive(Clone, Debug, clap::Args)]
pub struct ChurnArgs {
    /// Rooms the steady members chat in.
    #[arg(long, default_value_t = 20)]
    pub rooms: usize,
    /// Steady members per room; one of them sends.
    #[arg(long, default_value_t = 10)]
    pub members: usize,
    /// Messages per second, all rooms together.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Connect-join-leave-disconnect cycles started per second.
    #[arg(long, default_value_t = 50.0)]
    pub churn_rate: f64,
    /// How long a churning client stays in its room.
    #[arg(long = "dwell-secs", default_value = "1", value_parser = parse_seconds)]
    pub dwell: Duration,
    /// Churning clients alive at once, at most; a cycle due beyond it is
    /// counted as failed.
    #[arg(long, default_value_t = 1000)]
    pub max_churners: usize,
}

/// The churning clients: their sizes, and what they counted.
#[derive(Debug)]
struct Churn {
    args: ChurnArgs,
    cycles: AtomicU64,
    failed: AtomicU64,
    deliveries: AtomicU64,
    gaps: AtomicU64,
    duplicated: AtomicU64,
    out_of_order: AtomicU64,
    reordered: AtomicU64,
    connect_join: Mutex<Histogram>,
}

/// Runs `churn`: rooms `c0`, `c1`, ... of steady members, plus the cycles.
pub(crate) async fn run(options: &Options, args: &ChurnArgs) -> Result<Report, Error> {
    let plan = (0..args.rooms.max(1))
        .map(|i| RoomPlan {
            name: format!("c{i}"),
            members: args.members,
            senders: 1.min(args.members),
        })
        .collect();
    let churn = Arc::new(Churn {
        args: args.clone(),
        cycles: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        deliveries: AtomicU64::new(0),
        gaps: AtomicU64::new(0),
        duplicated: AtomicU64::new(0),
        out_of_order: AtomicU64::new(0),
        reordered: AtomicU64::new(0),
        connect_join: Mutex::new(Histogram::new()),
    });
    run_plan(
        options,
        "churn",
        plan,
        Pace::Fixed { rate: args.rate },
        Some(churn),
    )
    .await
}

impl SideLoad for Churn {
    fn drive(self: Arc<Self>, shared: Arc<Shared>, rooms: Vec<String>) -> BoxFuture<'static, ()> {
        Box::pin(drive(self, shared, rooms))
    }

    fn progress(&self) -> String {
        format!("  churn cycles {}", self.cycles.load(Ordering::Relaxed))
    }

    fn figures(&self, elapsed: Duration) -> SideFigures {
        let cycles = self.cycles.load(Ordering::Relaxed);
        let histogram = self.connect_join.lock().expect("cycles are done");
        SideFigures {
            churn: ChurnFigures {
                cycles,
                failed: self.failed.load(Ordering::Relaxed),
                cycles_per_s: round3(cycles as f64 / elapsed.as_secs_f64()),
                connect_join_ms: Latency::of(&histogram),
                deliveries: self.deliveries.load(Ordering::Relaxed),
            },
            lost: self.gaps.load(Ordering::Relaxed),
            duplicated: self.duplicated.load(Ordering::Relaxed),
            out_of_order: self.out_of_order.load(Ordering::Relaxed),
            reordered: self.reordered.load(Ordering::Relaxed),
        }
    }
}

/// Starts cycles at `args.churn_rate` until sending stops, then waits for
/// those in flight (each bounded by its own timeout).
async fn drive(churn: Arc<Churn>, shared: Arc<Shared>, rooms: Vec<String>) {
    let args = &churn.args;
    if args.churn_rate <= 0.0 || rooms.is_empty() {
        return;
    }
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.churn_rate));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let alive = Arc::new(Semaphore::new(args.max_churners.max(1)));
    let mut phase = shared.phase.subscribe();
    let mut cycles = JoinSet::new();
    let mut index = 0usize;
    loop {
        tokio::select! {
            biased;
            _ = phase.wait_for(|p| *p >= Phase::StopSending) => break,
            _ = ticker.tick() => {}
        }
        let Ok(permit) = alive.clone().try_acquire_owned() else {
            churn.failed.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let room = rooms[index % rooms.len()].clone();
        // Cycle `i` is room `i mod rooms`'s `(i / rooms)`th: the slot moves
        // on by one per visit to a room, so its cycles take the nodes in turn.
        let url_slot = index + index / rooms.len();
        let (shared, churn) = (shared.clone(), churn.clone());
        let dwell = args.dwell;
        cycles.spawn(async move {
            let result = tokio::time::timeout(
                dwell + CYCLE_TIMEOUT,
                cycle(&shared, &churn, index, url_slot, &room, dwell),
            )
            .await
            .unwrap_or_else(|_| Err("a churn cycle timed out".into()));
            match result {
                Ok(()) => churn.cycles.fetch_add(1, Ordering::Relaxed),
                Err(error) => {
                    shared.error(format!("churn cycle {index}: {error}"));
                    churn.failed.fetch_add(1, Ordering::Relaxed)
                }
            };
            drop(permit);
        });
        index += 1;
        while cycles.try_join_next().is_some() {}
    }
    while cycles.join_next().await.is_some() {}
}

/// Connect, join, stay `dwell` counting, leave, disconnect.
async fn cycle(
    shared: &Shared,
    churn: &Churn,
    index: usize,
    url_slot: usize,
    room: &str,
    dwell: Duration,
) -> Result<(), Error> {
    let started = Instant::now();
    let mut client = Client::connect(
        shared.options.url_for(url_slot),
        shared.options.target,
        &format!("churn-{index}"),
    )
    .await?;
    client.join_and_wait(room).await?;
    churn
        .connect_join
        .lock()
        .expect("no cycle panics holding it")
        .record(started.elapsed().as_micros() as u64);
    let mut tally = Tally::default();
    let mut id_order = shared.options.target.speaks_charla().then(IdOrder::default);
    let until = tokio::time::Instant::now() + dwell;
    let mut leaving = false;
    loop {
        let event = tokio::select! {
            () = tokio::time::sleep_until(until), if !leaving => {
                client.leave(room).await?;
                leaving = true;
                continue;
            }
            event = client.next_event() => event?,
        };
        match event {
            Event::Stamped(stamp, id) => {
                tally.record(stamp.sender, stamp.seq);
                if let (Some(order), Some(id)) = (id_order.as_mut(), id) {
                    order.record(id);
                }
            }
            Event::Left { room: left } if left == room => break,
            Event::Error(error) => return Err(error.into()),
            Event::Closed(code) => return Err(format!("closed by the server ({code:?})").into()),
            _ => {}
        }
    }
    client.close().await;
    churn
        .deliveries
        .fetch_add(tally.received, Ordering::Relaxed);
    churn.gaps.fetch_add(tally.gaps, Ordering::Relaxed);
    churn
        .reordered
        .fetch_add(tally.reordered, Ordering::Relaxed);
    churn
        .duplicated
        .fetch_add(tally.duplicated, Ordering::Relaxed);
    if let Some(order) = id_order {
        churn
            .out_of_order
            .fetch_add(order.out_of_order, Ordering::Relaxed);
    }
    Ok(())
}
