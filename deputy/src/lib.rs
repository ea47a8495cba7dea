//! # mosaic-deputy: the home side of a migrated process
//!
//! The deputy owns *placeholders*: the original processes on their home node,
//! kept stopped under ptrace after their user context left. It keeps their
//! system context (PID, parent, fds, cwd, credentials, terminal), executes
//! system calls forwarded by the guest inside the placeholder by injection,
//! relays signals and job control to the guest, turns the guest's exit into the
//! placeholder's exit, and takes the guest back when it comes home. It never
//! restores memory it did not dump.
//!
//! Status: not written yet (issue "Migration: the deputy keeps home").
