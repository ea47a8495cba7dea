//! # mosaic-node: `mosaicd` and the `mosaic` admin CLI
//!
//! One `mosaicd` runs on every node. This crate owns what makes a set of
//! daemons a cluster, and wires the other crates together:
//!
//! * [`config`]: the daemon's TOML configuration.
//! * [`gossip`]: membership, failure detection and load dissemination, built
//!   on [chitchat] over an authenticated UDP transport.
//! * [`net`]: authenticated node-to-node streams, for the channels that come
//!   later (migration, deputy, 9P).
//! * [`load`]: the load vector of this node (openMosix-style smoothed run
//!   queue, CPUs, calibrated speed, memory).
//! * [`control`]: the server of the local control socket (its client is
//!   the `mosaic-client` crate).
//! * [`daemon`]: `mosaicd` itself.
//! * [`local`]: `mosaic cluster up|down|exec|add`, a whole cluster of
//!   namespaced nodes on one machine.
//! * [`mon`]: the live terminal view `mosaic mon`.
//! * [`web`]: the web view (charts, process table, migrations, drag to
//!   move), behind the cluster key's token.
//!
//! ## Why chitchat for gossip
//!
//! The two well-kept Rust gossip crates are `chitchat` (Quickwit) and `foca`.
//! `foca` implements SWIM membership and leaves state dissemination, timers
//! and the socket loop to the caller. `chitchat` is scuttlebutt anti-entropy
//! over a versioned key-value state per node with a phi-accrual failure
//! detector: a node's load vector is one key that every peer converges on,
//! which is exactly what a load balancer reads, and its `Transport` trait lets
//! us put our HMAC layer under every datagram without forking the crate. So:
//! chitchat. Goodbye on a clean stop is a `leaving` key gossiped for a few
//! rounds before the daemon exits.
//!
//! This crate holds no migration logic: that belongs to ckpt/deputy/remote.

pub mod balancer;
pub mod checkpoint;
pub mod config;
pub mod control;
pub mod controls;
pub mod daemon;
pub mod files;
pub mod gossip;
pub mod load;
pub mod local;
pub mod migration;
pub mod mon;
pub mod net;
pub mod profile;
pub mod spent;
pub mod supervise;
pub mod web;

pub use mosaic_client::{DEFAULT_CLUSTER_DIR, DEFAULT_SOCKET};
/// Default UDP port for gossip.
pub const DEFAULT_GOSSIP_PORT: u16 = 7946;

/// Milliseconds since the Unix epoch, for datagram timestamps.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(mosaic_proto::abi::millis)
        .unwrap_or(0)
}
