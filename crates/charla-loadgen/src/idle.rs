//! `idle`: many connections, each joined to a room, held without traffic;
//! the figure is the server's resident memory per connection.
//!
//! The server's RSS is read before the first client connects and again
//! after every client has joined and `--settle-secs` have passed (so a
//! garbage-collected server has had a chance to collect); the growth divided
//! by the connections is the per-connection cost. CPU is read over the
//! following `--duration-secs` of holding: the cost of heartbeats and timers
//! for idle connections. Clients keep reading, so they answer WebSocket and
//! Engine.IO pings and stay alive as a real idle client would.

use crate::Options;
use crate::engine::{self, Phase, Shared};
use crate::process::{Group, Process};
use crate::report::{Report, round3};
use crate::wire::{Error, Event};
use charla_protocol::settings::parse_seconds;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// `idle`'s sizes.
#[derive(Clone, Debug, clap::Args)]
pub struct IdleArgs {
    /// Connections to open and hold.
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Connections per room (rooms `idle-0`, `idle-1`, ...).
    #[arg(long, default_value_t = 10)]
    pub room_size: usize,
    /// Wait after the last join before reading the server's RSS.
    #[arg(long = "settle-secs", default_value = "3", value_parser = parse_seconds)]
    pub settle: Duration,
}

/// Opens, joins and holds the connections, then reports.
pub(crate) async fn run(options: &Options, args: &IdleArgs) -> Result<Report, Error> {
    let shared = Shared::new(options, Vec::new(), None);
    let server = Group::of(&options.server_pids);
    let baseline = server.as_ref().and_then(Group::sample);
    let permits = Arc::new(Semaphore::new(options.connect_concurrency.max(1)));
    let room_size = args.room_size.max(1);
    let label = engine::run_label(options, "idle/hold");
    let mut clients = JoinSet::new();
    for index in 0..args.connections {
        let shared = shared.clone();
        let permits = permits.clone();
        let room = format!("idle-{}", index / room_size);
        // The same split as the engine's: room index plus place in the room.
        let url_slot = index / room_size + index % room_size;
        clients.spawn(async move {
            if let Err(error) = hold(&shared, permits, index, url_slot, &room).await {
                shared.error(error.to_string());
            }
        });
    }
    let setup_started = Instant::now();
    engine::wait_for_setup(&shared, args.connections, &label).await?;
    let setup_seconds = setup_started.elapsed().as_secs_f64();
    if !options.quiet {
        engine::progress_line(&format!(
            "[{label}] {} clients joined in {setup_seconds:.1}s; settling",
            args.connections
        ));
    }
    shared.enter(Phase::Run);
    tokio::time::sleep(args.settle).await;
    let settled = server.as_ref().and_then(Group::sample);
    let own_before = Process::current().sample();
    let held = Instant::now();
    tokio::time::sleep(options.duration).await;
    let after = server.as_ref().and_then(Group::sample);
    let own_after = Process::current().sample();
    let seconds = held.elapsed().as_secs_f64();
    let closed = shared.closed();
    shared.enter(Phase::Finish);
    while clients.join_next().await.is_some() {}
    if !options.quiet {
        engine::progress_line(&format!("[{label}] held for {seconds:.1}s; closed"));
    }

    let cpu = settled
        .zip(after)
        .map(|(s, a)| a.cpu_seconds - s.cpu_seconds);
    let growth = baseline
        .zip(settled)
        .map(|(b, s)| s.rss_kib as f64 - b.rss_kib as f64);
    let (errors, first_error) = shared.errors();
    Ok(Report {
        scenario: "idle",
        variant: "hold",
        target: options.target,
        nodes: options.urls.len(),
        connections: args.connections,
        rooms: args.connections.div_ceil(room_size),
        senders: 0,
        duration_s: round3(seconds),
        sent: 0,
        expected: 0,
        received: 0,
        lost: 0,
        duplicated: 0,
        out_of_order: 0,
        reordered: 0,
        errors,
        closed,
        messages_per_s: 0.0,
        deliveries_per_s: 0.0,
        latency_ms: None,
        server_cpu_s: cpu.map(round3),
        server_cpu_util: cpu.map(|c| round3(c / seconds)),
        cpu_s_per_million_deliveries: None,
        server_rss_kib: settled.map(|s| s.rss_kib),
        redis_cpu_s: None,
        redis_cpu_util: None,
        redis_cpu_s_per_million_deliveries: None,
        loadgen_cpu_util: own_before
            .zip(own_after)
            .map(|(b, a)| round3((a.cpu_seconds - b.cpu_seconds) / seconds)),
        rss_per_connection_kib: growth
            .filter(|_| args.connections > 0)
            .map(|g| round3(g / args.connections as f64)),
        churn: None,
        first_error,
    })
}

/// One idle client: connect, join, then read until the run finishes.
async fn hold(
    shared: &Shared,
    permits: Arc<Semaphore>,
    index: usize,
    url_slot: usize,
    room: &str,
) -> Result<(), Error> {
    let url = shared.options.url_for(url_slot);
    let name = format!("idle-{index}");
    let mut client = engine::connect_and_join(shared, &permits, url, &name, room).await?;
    let mut phase = shared.phase.subscribe();
    loop {
        tokio::select! {
            biased;
            _ = phase.wait_for(|p| *p == Phase::Finish) => break,
            event = client.next_event() => match event {
                Ok(Event::Closed(code)) => {
                    shared.connection_lost();
                    return Err(format!("the server closed idle client {index} ({code:?})").into());
                }
                Ok(Event::Error(error)) => shared.error(error),
                Ok(_) => {}
                Err(error) => {
                    shared.connection_lost();
                    return Err(error);
                }
            },
        }
    }
    client.close().await;
    Ok(())
}
