//! Flow files: the YAML model, validation, templates and scripts.

pub mod de;
pub mod diagnostic;
pub mod duration;
pub mod load;
pub mod located;
pub mod model;
pub mod resource;
pub mod script;
pub mod size;
pub mod template;
pub mod yaml;

#[cfg(test)]
mod seed_tests;

pub use diagnostic::{Diagnostic, Mark, Severity};
pub use load::{LoadContext, LoadIoError, Loaded, TaskLoader, TaskType, load_dir, load_str};
pub use model::{Flow, Task, TaskKind};
