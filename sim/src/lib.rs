//! A faithful local Salesforce: OAuth 2.0, Bulk API 2.0 query jobs and the Pub/Sub API, with seeded
//! data and fault injection. It shares no protocol code with the engine's client, so a misreading in
//! one cannot hide behind the same misreading in the other.

pub mod cli;
pub mod data;
pub mod soql;
