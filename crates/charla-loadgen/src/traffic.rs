//! `fanout` and `rooms`: plans of counted members for the engine, one big
//! room with a few senders or many small rooms with one sender each, sending
//! at a fixed total rate (open loop) or as fast as a window of undelivered
//! messages allows (closed loop, `--max`). The engine (`engine.rs`)
//! runs them; its docs say how deliveries are owed and counted.

use crate::Options;
use crate::engine::{Pace, RoomPlan, run_plan};
use crate::report::Report;
use crate::wire::Error;

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

/// `fanout`: one room `fanout`, `senders` of its `members` send.
pub(crate) async fn fanout(options: &Options, args: &FanoutArgs) -> Result<Report, Error> {
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
pub(crate) async fn rooms(options: &Options, args: &RoomsArgs) -> Result<Report, Error> {
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
