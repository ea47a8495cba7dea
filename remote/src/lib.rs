//! # mosaic-remote: the guest side of a migrated process
//!
//! The remote restores a guest into an unprivileged stub on a foreign node,
//! installs the seccomp filter that keeps node-dependent system calls from
//! running locally, runs the trap loop that forwards them to the deputy at
//! home, decides what runs locally, what is forwarded and what brings the
//! process home, and delivers signals relayed from home. It never touches the
//! node's own files on a guest's behalf.
//!
//! Status: not written yet (issue "Migration: the deputy keeps home").
