//! When a query flow's trigger fires: cron or interval triggers, a clock that tests control, the
//! pure rule that picks the next tick, and a small driver that never overlaps two runs of a flow.
//!
//! Known issue: in classic cron, a day-of-month and a day-of-week that are both restricted match
//! when either matches; the `cron` crate requires both, so `0 9 1 * mon` runs only on a Monday
//! the 1st. Neither the seed nor our flows restrict both.

mod clock;
mod cron_expr;
mod driver;
mod next_tick;
mod trigger;

pub use clock::{Clock, ManualClock, Sleep, SystemClock};
pub use driver::drive;
pub use next_tick::next_tick;
pub use trigger::{Trigger, TriggerError};
