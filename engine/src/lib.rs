//! The bulkflow engine: flows, the run ledger, the state store, the scheduler, tasks, the bus and the warehouses.

pub mod bus;
pub mod config;
pub mod credentials;
pub mod env;
pub mod event;
pub mod export;
pub mod fault;
pub mod file_format;
pub mod file_name;
pub mod flow;
#[doc(hidden)]
pub mod fuzz_entry;
pub mod lease;
pub mod metrics;
pub mod node;
pub mod run;
pub mod runtime;
pub mod salesforce;
pub mod schedule;
pub mod schema;
pub mod store;
pub mod tasks;
pub mod tls;
pub mod warehouse;
