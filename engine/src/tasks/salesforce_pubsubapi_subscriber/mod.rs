//! The `salesforce_pubsubapi_subscriber` task.

pub mod config;
mod decode;
mod endpoint;
pub mod source;
mod window;
#[cfg(test)]
mod tests;
