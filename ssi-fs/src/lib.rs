//! # mosaic-ssi-fs: every node's files and processes, everywhere
//!
//! Each node serves its filesystem and a synthetic `proc` tree over 9P2000.L,
//! to peers holding the cluster key; a FUSE client mounts `/mfs` on every node
//! with `/mfs/<node>/...`, `/mfs/home`, `/mfs/here` and one cluster-wide
//! process table in `/mfs/proc`. It keeps no cluster state of its own: it asks
//! `mosaicd` for membership.
//!
//! Status: not written yet (issue "ssi-fs: every node's files and processes").
