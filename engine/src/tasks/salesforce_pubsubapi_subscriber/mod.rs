//! The `salesforce_pubsubapi_subscriber` task.

pub mod config;
pub mod source;
#[cfg(test)]
mod tests;
mod window;
