//! The Salesforce client: credentials, OAuth, Bulk API 2.0 query jobs and their results.

pub mod auth;
pub mod bulk;
pub mod client;
pub mod credentials;
pub mod csv_batches;
pub mod deleted;
pub mod describe;
pub mod error;
pub mod job_create;
pub mod options;
pub mod pubsub;
pub mod results;
pub mod secret;
pub mod settings;

pub use client::{Clients, SalesforceClient};
pub use error::SalesforceError;
pub use settings::{ClientSettings, Limits, RetryPolicy};
