//! # mosaic-ssi-fs: every node's files and processes, everywhere
//!
//! Each node serves its filesystem and a synthetic `proc` tree over 9P2000.L,
//! to peers holding the cluster key; a FUSE client mounts `/mfs` on every node
//! with `/mfs/<node>/...`, `/mfs/home`, `/mfs/here` and one cluster-wide
//! process table in `/mfs/proc`. It keeps no cluster state of its own: it asks
//! `mosaicd` for membership.
//!
//! Status (issue 6, first part): [`export`], path-safe access to a served
//! tree, and [`server`], the 9P2000.L dispatcher over it (tested with
//! diod's tools and Python's p9fs through `mosaic-9p`, a plain loopback
//! server for tests). Not yet: serving over the cluster's authenticated
//! channel from mosaicd, the synthetic `proc` tree, the FUSE client, lazy
//! file pages.

pub mod client;
pub mod export;
pub mod mfs;
pub mod server;
pub mod synth;
