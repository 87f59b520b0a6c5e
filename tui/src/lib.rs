//! The terminal UI: a live view of every run and flow of a running engine, over its control API,
//! with retry and cancel. [`app`] is the state and the keys, [`render`] draws it, [`client`] feeds
//! it from the engine and carries out its actions.

pub mod app;
pub mod client;
pub mod render;
pub mod sample;
pub mod view;

pub use app::{Action, App};
pub use client::{TuiError, run};
pub use render::{buffer_text, render};

#[cfg(test)]
mod tests;
