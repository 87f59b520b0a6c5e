//! The terminal UI: a live view of every run, built on the engine's control API (a later issue).
