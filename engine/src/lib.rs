//! The bulkflow engine: flows, the run ledger, the state store, the scheduler, tasks and the bus.

pub mod flow;
