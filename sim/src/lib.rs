//! A faithful local Salesforce: OAuth 2.0, Bulk API 2.0 query jobs and the Pub/Sub API, with seeded
//! data and fault injection. It shares no protocol code with the engine's client, so a misreading in
//! one cannot hide behind the same misreading in the other.
//!
//! Start it in-process with [`Simulator::start`] (tests, `bulkflow demo`) or from the command line
//! with `bulkflow sim serve` ([`cli`]).

mod admin;
mod api_error;
pub mod bigquery;
mod bulk;
mod changes;
pub mod cli;
mod config;
mod csv_writer;
pub mod data;
mod deleted;
mod describe;
mod events;
mod faults;
mod gate;
mod ids;
mod oauth;
mod org;
pub mod pubsub;
mod server;
pub mod soql;
mod state;
mod stats;
mod store;
mod sync;
pub mod tls;
mod tooling;

pub use config::{DEFAULT_MAX_PAGE_RECORDS, SimConfig};
pub use events::{JobEvent, JobState};
pub use faults::FaultConfig;
pub use org::Credentials;
pub use pubsub::PubSubStatsSnapshot;
pub use server::{SimError, Simulator};
pub use stats::StatsSnapshot;
