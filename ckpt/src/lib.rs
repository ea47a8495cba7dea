//! # mosaic-ckpt: capture and restore of one process's user context
//!
//! This crate stops a running, unmodified x86-64 Linux process with ptrace
//! and captures its *user context* (memory areas and the pages that exist,
//! signal dispositions and queued signals, brk and the other mm fields,
//! and of each thread: general and xstate registers, fs/gs base, mask,
//! queued signals, alternate stack, name, tid address, robust list, rseq,
//! the system call it was in), and restores that context into a fresh stub
//! process so that it continues as if nothing happened. A multi-threaded
//! process is captured whole by a stand-alone checkpoint and restored with
//! every thread under the TID it had (`clone3` with `set_tid`); a
//! migration takes single-threaded ones only, for now. It also answers *cantmove*: why a process cannot be
//! captured. It knows nothing about networks or nodes; the image format lives
//! in `mosaic_proto::image`.
//!
//! Modules: [`ptrace`] (a stopped tracee, injection of system calls),
//! [`procfs`] (what `/proc` says), [`cantmove`], [`capture`], [`restore`],
//! [`restart`] (how an interrupted system call resumes), and by resource,
//! capture and restore side by side: `thread` (what belongs to one thread:
//! registers, mask, alternate stack, TID address, robust list, rseq),
//! `areas` (memory areas and their pages), `mm` (the mm fields), `files`
//! (descriptors and pipes), `signals` (dispositions, queued signals),
//! [`timers`] (interval and POSIX timers), [`limits`] (resource limits),
//! [`cputime`] (CPU time used under other kernels).
//!
//! Why by hand: CRIU does this in C with a parasite blob; no Rust crate
//! restores a process. We inject single system calls with
//! `PTRACE_SINGLESTEP` over a `syscall` instruction instead of a parasite:
//! slower per call (tens of microseconds), but a capture needs a dozen calls
//! and a restore a few per memory area, and there is no blob to build.

mod areas;
pub mod cantmove;
pub mod capture;
pub mod cputime;
mod files;
pub mod limits;
mod mm;
pub mod procfs;
pub mod procstat;
pub mod ptrace;
pub mod restart;
pub mod restore;
pub mod sched;
mod signals;
mod thread;
pub mod timers;

use thiserror::Error;

pub use capture::{CaptureOptions, capture, capture_traced};
pub use restore::{
    Confine, CpuLimit, DATA_ROOM, RestoreOptions, StdioMode, restore, restore_into, restore_traced,
};

/// What went wrong while capturing or restoring.
#[derive(Debug, Error)]
pub enum CkptError {
    #[error("no process {0} (see `ps`)")]
    NoProcess(i32),
    #[error("process {pid} cannot be captured: {}", .reasons.join("; "))]
    CantMove { pid: i32, reasons: Vec<String> },
    #[error(
        "cannot attach to process {pid}: {errno} (does it exist, and is no debugger attached?)"
    )]
    Attach { pid: i32, errno: nix::errno::Errno },
    #[error("process {0} exited during the operation")]
    Gone(i32),
    #[error("{0} failed: {1}")]
    Ptrace(&'static str, nix::errno::Errno),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("cannot parse {0}")]
    Parse(String),
    #[error("no `syscall` instruction found in the process to inject system calls with")]
    NoSyscallInsn,
    #[error("{what} inside the process failed: {errno}")]
    Injected {
        what: &'static str,
        errno: nix::errno::Errno,
    },
    #[error(transparent)]
    Image(#[from] mosaic_proto::image::ImageError),
    #[error(
        "{path} changed since the checkpoint ({what}); restore needs the same file (or a checkpoint made with --embed-files)"
    )]
    FileChanged { path: String, what: String },
    #[error(
        "fd {fd} is {what}: a stand-alone restore reopens only regular files, directories, self-pipes and /dev/null-like devices{hint}"
    )]
    UnsupportedFd {
        fd: i32,
        what: String,
        hint: &'static str,
    },
    #[error("restore failed: {0}")]
    Restore(String),
}
