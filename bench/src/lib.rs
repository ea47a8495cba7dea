//! # mosaic-bench: benchmarks beside their peers
//!
//! Every benchmark here runs mosaic and the peer named in its issue (CRIU,
//! sshfs, bash, a native run) side by side in one run and reports ratios,
//! together with the floors of this machine measured in the same run
//! (loopback round trip, trap cost, page-fault rate). Tests never assert
//! times; benchmarks do not assert behaviour.
//!
//! Status: no benchmark yet; the first ones come with checkpoint/restore.
