//! # mosaic-ssi-fs: every node's files and processes, everywhere
//!
//! Each node serves its filesystem and a synthetic `proc` tree over 9P2000.L,
//! to peers holding the cluster key; a FUSE client mounts `/mfs` on every node
//! with `/mfs/<node>/...`, `/mfs/home`, `/mfs/here` and one cluster-wide
//! process table in `/mfs/proc`. It keeps no cluster state of its own: it asks
//! `mosaicd` for membership.
//!
//! Modules: [`export`], path-safe access to a served tree; [`server`], the
//! 9P2000.L dispatcher over it (tested with diod's tools and Python's p9fs
//! through `mosaic-9p`, a plain loopback server for tests); [`synth`], the
//! synthetic `proc` tree served beside it; [`client`], 9P requests one at a
//! time or in batches; [`mfs`], the FUSE file system behind `/mfs`.

pub mod client;
pub mod export;
pub mod mfs;
pub mod server;
pub mod synth;
