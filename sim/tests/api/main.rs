//! The simulator driven over real HTTP on an ephemeral loopback port, with a plain client.

mod common;
mod deletes;
mod faults;
mod jobs;
mod oauth;
mod paging;
mod persistence;
mod pubsub;
mod results;
mod serve;
