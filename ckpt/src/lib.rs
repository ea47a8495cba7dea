//! # mosaic-ckpt: capture and restore of one process's user context
//!
//! This crate owns everything needed to stop a running, unmodified,
//! single-threaded x86-64 Linux process with ptrace and capture its *user
//! context* (memory regions and the pages that exist, general and xstate
//! registers, fs/gs base, signal handlers, masks and pending signals, the
//! alternate signal stack, brk and the other mm fields, rseq, the syscall it
//! was in), and to restore that context into a fresh stub process so that it
//! continues as if nothing happened. It also answers *cantmove*: why a process
//! cannot be captured. It knows nothing about networks or nodes; the image type
//! it produces lives in `mosaic-proto`.
//!
//! Status: not written yet (issue "ckpt: capture a running x86-64 process").
