//! Running flows: tasks as tokio workers joined by bounded queues, events tracked to completion so
//! a source acknowledges only what every leaf has finished.

pub mod build;
pub mod engine;
pub mod graph;
pub mod inject;
pub mod processor;
pub mod source;
pub mod token;

#[cfg(test)]
mod tests;
