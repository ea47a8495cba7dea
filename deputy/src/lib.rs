//! # mosaic-deputy: the home side of a migrated process
//!
//! The deputy owns *placeholders*: the original processes on their home node,
//! kept stopped under ptrace after their user context left. A placeholder
//! keeps its system context (PID, parent, fds, cwd, credentials, terminal);
//! system calls the guest forwards are executed inside it by injection, with
//! their buffers copied into a scratch area of the placeholder, so they see
//! exactly what the process would have seen at home. The guest's exit becomes
//! the placeholder's exit (an injected `exit_group`), its death by a signal
//! the placeholder's death by the same signal, so the parent's `wait` is
//! exact. The deputy never restores memory it did not dump.
//!
//! Signals sent to the home PID are relayed to the guest; when the guest
//! stops (job control) the placeholder enters group-stop by the same signal
//! (so the shell sees it) and a SIGCONT is relayed back. Coming home: the
//! guest's image is restored into the placeholder itself (same PID, same
//! descriptors), which is then released to run natively.
//!
//! Once the guest runs, the placeholder's memory is unmapped (all but the
//! vDSO, where injections find their `syscall` instruction). A request to
//! come home waits while a forwarded call blocks at home.
//!
//! [`journey`]: the whole trip of one process (sent, served, sent on),
//! over what the node provides.

mod calls;
mod home;
mod jobs;
pub mod journey;
mod scratch;
mod session;
mod signals;
mod threads;

pub use session::{EndHook, Placeholder, migrate};

/// Log lines others look for, one text for writer and readers.
pub mod log {
    /// A process that was away runs at home again.
    pub const CAME_HOME: &str = "the process came home and runs here again";
}

use mosaic_ckpt::CkptError;
use mosaic_proto::image::CpuTime;
use mosaic_proto::migrate::LinkError;
use thiserror::Error;

/// Why a migration or a placeholder failed.
#[derive(Debug, Error)]
pub enum DeputyError {
    #[error(transparent)]
    Ckpt(#[from] CkptError),
    #[error("the target node refused the guest: {0}; the process goes on at home")]
    Refused(String),
    /// The target cannot map some of its files (not there, and not
    /// through its `/mfs`): sending them in the image would do.
    #[error("the target node cannot map its files: {0}; the process goes on at home")]
    FilesMissing(String),
    #[error("lost the guest's node ({0}); the process was killed")]
    GuestLost(LinkError),
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("protocol: {0}")]
    Unexpected(#[from] mosaic_proto::session::Unexpected),
}

/// Where an answer to a [`Command`] goes: where the process runs
/// afterwards (`None`: at home) and its PID there, or why it could not move.
pub type Reply = std::sync::mpsc::Sender<Result<(Option<String>, i32), String>>;

/// What the node asks of a deputy while its guest runs.
pub enum Command<T> {
    /// Take the process back. `then` is passed through to the caller in
    /// [`Outcome::Home`] (where to send it next); without it, the deputy
    /// answers `reply` itself once the process runs at home.
    ComeHome { then: Option<T>, reply: Reply },
}

/// How serving a migrated process ended.
#[derive(Debug)]
pub enum Outcome<T> {
    Exited(i32),
    Killed(i32),
    /// The process runs at home again (restored into the placeholder).
    /// `then`: where home asked it to go next; `next`: the node its host
    /// suggested when it sent it back (home decides whether to follow).
    /// `cpu_elsewhere`: all the CPU time it used away from home so far
    /// (the home kernel counts only its time here): the next capture's
    /// [`CaptureOptions::cpu_elsewhere`].
    Home {
        reason: String,
        then: Option<(T, Reply)>,
        next: Option<String>,
        cpu_elsewhere: CpuTime,
    },
}
