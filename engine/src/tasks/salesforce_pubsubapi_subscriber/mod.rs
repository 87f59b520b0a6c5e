//! The `salesforce_pubsubapi_subscriber` task.

pub mod config;
mod decode;
mod endpoint;
pub mod source;
#[cfg(test)]
mod tests;
mod window;
