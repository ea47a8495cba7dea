//! # mosaic-proto: the words every mosaic node shares
//!
//! This crate holds the types that cross a boundary between processes or
//! nodes, and nothing that does I/O: node identities and load vectors
//! ([`load`]), the request/response API of `mosaicd`'s control socket
//! ([`control`]), and the cluster key with the message authentication used by
//! every node-to-node channel ([`auth`]). Later it will also hold the migration
//! image and the syscall table. Everything here is `serde` so that the daemon,
//! the CLI and the tests agree on one encoding.

pub mod abi;
pub mod auth;
pub mod control;
pub mod image;
pub mod load;
pub mod migrate;
pub mod ratelimit;
pub mod session;
pub mod syscalls;

pub use auth::{AuthError, ClusterKey};
pub use control::{ControlRequest, ControlResponse};
pub use load::{LoadVector, NodeInfo, NodeState};
