//! One counted member of a plan: it connects and joins (to the node its
//! seat's URL slot picks), then, from the start signal until finish, counts
//! every stamped delivery (and its latency; against Charla, its room id's
//! order too) and, if it is a sender, sends at its pace.
//!
//! This is the hot loop: a delivery costs a few atomic adds and, once per
//! [`LATENCY_BATCH`] deliveries, the histogram's lock. The loop waits on
//! one-shot signals rather than on the phase `watch` (see
//! [`Signals`](super::shared::Signals)).

use super::setup::connect_and_join;
use super::shared::{Gate, Phase, Shared};
use crate::marker::{self, Stamp};
use crate::stats::{Heard, IdOrder, Tally};
use crate::wire::{Error, Event};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::MissedTickBehavior;

/// Latencies a client buffers before it takes the shared histogram's lock.
const LATENCY_BATCH: usize = 256;

/// One member's place in the plan.
#[derive(Clone, Debug)]
pub(super) struct Seat {
    pub(super) index: usize,
    /// Which `--url` this member connects to, round-robin
    /// ([`Options::url_for`](crate::Options::url_for)).
    pub(super) url_slot: usize,
    pub(super) room: Arc<str>,
    /// This member's sender id, if it sends.
    pub(super) sender: Option<u32>,
    /// Sender ids of the room, to expect each from `seq` 1.
    pub(super) room_senders: std::ops::Range<u32>,
}

/// One member: connect, join, then count (and maybe send) until finish.
pub(super) async fn member(
    shared: &Shared,
    seat: Seat,
    permits: Arc<Semaphore>,
    period: Option<Duration>,
    sender_count: usize,
) -> Result<(), Error> {
    let url = shared.options.url_for(seat.url_slot);
    let name = format!("lg-{}", seat.index);
    let mut client = connect_and_join(shared, &permits, url, &name, &seat.room).await?;
    let (mut stop, mut finish) = shared.signals.subscribe();
    let mut phase = shared.phase.subscribe();
    phase.wait_for(|p| *p >= Phase::Run).await?;

    let mut tally = Tally::default();
    // The Socket.IO peer numbers per process, so only the per-room ids of
    // Charla and of the floor peer are checked.
    let mut id_order = shared.options.target.speaks_charla().then(IdOrder::default);
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
                Ok(Event::Stamped(stamp, id)) => {
                    if let (Some(order), Some(id)) = (id_order.as_mut(), id)
                        && !order.record(id)
                    {
                        shared.out_of_order.fetch_add(1, Ordering::Relaxed);
                    }
                    count(shared, &mut tally, &mut latencies, stamp);
                }
                Ok(Event::Error(error)) => shared.error(error),
                Ok(Event::Closed(code)) => {
                    shared.connection_lost();
                    outcome = Err(format!("the server closed client {} ({code:?})", seat.index).into());
                    break;
                }
                Ok(_) => {}
                Err(error) => {
                    shared.connection_lost();
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
    match tally.record(stamp.sender, stamp.seq) {
        Heard::New => {}
        Heard::Late => {
            shared.reordered.fetch_add(1, Ordering::Relaxed);
        }
        Heard::Duplicate => {
            shared.duplicated.fetch_add(1, Ordering::Relaxed);
            return;
        }
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
