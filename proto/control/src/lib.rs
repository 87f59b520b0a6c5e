//! The engine's control API (`bulkflow.control.v1.Control`), generated at build time from
//! `proto/control.proto`. Runs and checkpoints travel as the ledger's own JSON (`record_json`,
//! `checkpoints_json`): one shape, so a client prints exactly what it would print reading the
//! store itself, and the proto need not mirror every field of the record.

pub mod bulkflow {
    pub mod control {
        pub mod v1 {
            tonic::include_proto!("bulkflow.control.v1");
        }
    }
}

pub mod client;

pub use bulkflow::control::v1::*;

/// The control socket's file name inside the state directory.
pub const SOCKET_NAME: &str = "control.sock";
