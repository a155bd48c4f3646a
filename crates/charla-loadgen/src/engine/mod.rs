//! The engine every scenario runs on: it knows rooms, members, senders and
//! phases, and no scenario. `fanout` and `rooms` hand it a plan, `churn`
//! hands it a plan and a [`SideLoad`] (its cycles), `idle` uses its shared
//! state, setup and progress line only.
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
//! unique deliveries; `duplicated` counts a `seq` heard twice; `reordered`
//! counts a `seq` heard after a later one of its sender (it still counts
//! once, as received). Against Charla, `out_of_order` counts deliveries
//! whose room id is not the previous one's plus one.
//!
//! Nodes: with several `--url`s, member `m` of the plan's room `r` connects
//! to URL `(r + m) mod nodes`; the counters stay the load generator's, so
//! the accounting is the same with one node or many.
//!
//! Closed loop: sender `s` may send while fewer than `--window` of its
//! messages are still undelivered to some member, that is while
//! `sent[s] * audience < delivered[s] + window * audience`. The window keeps
//! every member's server-side queue far below Charla's default outbox of 256
//! frames, so a maximum run measures throughput, not slow-consumer closes.
//!
//! # Layout
//!
//! - [`shared`]: [`Phase`], the per-client stop and finish signals, one
//!   [`Gate`] per sender, and [`Shared`], the counters every client of a run
//!   adds to.
//! - [`setup`]: connect and join one client, and wait until every client
//!   did.
//! - [`run`]: [`RoomPlan`], [`Pace`] and [`run_plan`]: setup, run, drain,
//!   finish, then the report.
//! - [`member`]: one counted member, the hot loop that receives, counts and
//!   (for a sender) sends.
//! - [`progress`]: the live progress line on stderr.

mod member;
mod progress;
mod run;
mod setup;
mod shared;

pub(crate) use progress::progress_line;
pub(crate) use run::{Pace, RoomPlan, SideFigures, SideLoad, run_label, run_plan};
pub(crate) use setup::{connect_and_join, wait_for_setup};
pub(crate) use shared::{Phase, Shared};
