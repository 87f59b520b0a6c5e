//! The bulkflow engine: flows, the run ledger, the state store, the scheduler, tasks and the bus.

pub mod flow;
pub mod run;
pub mod schedule;
pub mod store;
