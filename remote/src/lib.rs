//! # mosaic-remote: the guest side of a migrated process
//!
//! The remote receives an image over a migration link, restores it as a
//! *guest* in a stub that owns no files, runs as an unprivileged user and
//! carries a seccomp filter built from the syscall table
//! (`mosaic_proto::syscalls`): local calls run at full speed, everything
//! else is sent to us by seccomp user notification and forwarded to the
//! deputy at home, whose answer (return value and out-buffers) is written
//! back before the guest's call returns. Signals for the guest are
//! delivered here; its exit or death is reported home. It never touches the
//! node's own files on the guest's behalf.
//!
//! Why user notification (`SECCOMP_RET_USER_NOTIF` with
//! `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`) and not `SECCOMP_RET_TRACE`: a trap
//! costs about 5 us instead of 12-48 us here, the listener is a descriptor
//! that one thread polls together with the link (no thread hop for results
//! or signals), and answering needs no ptrace stop: the guest runs
//! untraced. Ptrace is taken only when it is needed: to capture the guest
//! (coming home, moving on) and to place a file mapping (`mmap` made
//! while away), then released.
//!
//! Forwarded: calls whose arguments the forwarding codec
//! (`mosaic_proto::syscalls::codec`) marshals: integers, fds, strings,
//! buffers, fixed structs, iovecs, socket addresses, msghdrs and counted
//! arrays. Bring-home calls (fork, execve, clone, shared mmap, and calls
//! the codec does not marshal) send the guest home just before the call,
//! which home then makes natively. Job control: the guest stops natively
//! (it is our child) and home is told.

mod calls;
mod clocks;
mod fill;
mod filter;
mod home;
mod pidns;
mod procview;
mod session;
mod signals;
mod threads;

pub use filter::{guest_filter, verdict};

/// Log lines others look for (the tests, a person reading a node's log):
/// one text, here, for the code that writes them and whoever reads them.
pub mod log {
    /// A guest runs here.
    pub const GUEST_STARTED: &str = "guest started";
    /// A guest is captured to go home (asked, sent by its host, or for a
    /// call only home can make).
    pub const SENDING_HOME: &str = "sending the guest home";
}
pub use session::serve;

use calls::{Route, route};
use session::notif;

use mosaic_ckpt::CkptError;
use mosaic_proto::migrate::LinkError;
use thiserror::Error;

/// Why serving a guest failed.
#[derive(Debug, Error)]
pub enum RemoteError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Ckpt(#[from] CkptError),
    #[error("protocol: {0}")]
    Protocol(String),
    /// The one rule for an unexpected message: the session ends, and with
    /// it the guest (see [`mosaic_proto::session`]).
    #[error("protocol: {0}")]
    Unexpected(#[from] mosaic_proto::session::Unexpected),
}

/// A message legal where the session is but that this side does not
/// handle there (the table and the code disagree: a bug, ended as an
/// unexpected message is).
fn not_handled(what: &str) -> RemoteError {
    RemoteError::Protocol(format!("{what} is not handled where it is legal"))
}

/// The next message from home, which must be legal in `state` (the one
/// rule: an unexpected one is an error that ends the session).
fn receive(
    link: &mut dyn mosaic_proto::migrate::Link,
    state: mosaic_proto::session::State,
) -> Result<mosaic_proto::migrate::HomeMsg, RemoteError> {
    use mosaic_proto::migrate::LinkExt;
    let msg = link.recv_msg()?;
    state.home_may_send(&msg)?;
    Ok(msg)
}

/// What the node a guest runs on wants done with it (expel, a node that
/// leaves, the balancer). The guest is captured between two of its calls
/// and its image goes to its home, which runs it or sends it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostOrder {
    /// Back to its home node.
    Home,
    /// On to this node (through home, which may refuse and keep it).
    MoveTo(String),
}

/// The node's handle on one guest: orders for it, and its forwarded-call
/// count (an I/O-heavy guest is better at home).
#[derive(Debug, Clone, Default)]
pub struct GuestHandle {
    order: std::sync::Arc<std::sync::Mutex<Option<HostOrder>>>,
    forwarded: std::sync::Arc<std::sync::atomic::AtomicU64>,
    locked: bool,
}

impl GuestHandle {
    /// Asks for the guest to leave (acted on within 50 ms, between calls).
    pub fn order(&self, order: HostOrder) {
        *self.order.lock().unwrap_or_else(|e| e.into_inner()) = Some(order);
    }

    fn take_order(&self) -> Option<HostOrder> {
        self.order.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// System calls forwarded home so far.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Locked at home: never moved automatically (its host's balancer
    /// leaves it).
    pub fn locked(&self) -> bool {
        self.locked
    }
}

/// How guests run on this node.
#[derive(Debug, Clone)]
pub struct GuestPolicy {
    /// The unprivileged user and group guests run as.
    pub uid: u32,
    pub gid: u32,
    /// Whether this node takes guests at all (`accept_guests` in
    /// mosaicd.toml); if not, every migration here is refused before any
    /// of its image is read, and the process goes on at home.
    pub accept: bool,
    /// Where this node sees every node's files (`/mfs`, if mounted): a
    /// guest's mapped files that are not here are mapped from
    /// `<mfs>/<home>/...`, their pages fetched when touched.
    pub mfs: Option<std::path::PathBuf>,
}

impl Default for GuestPolicy {
    fn default() -> Self {
        // nobody:nogroup
        GuestPolicy {
            uid: 65534,
            gid: 65534,
            accept: true,
            mfs: None,
        }
    }
}

/// What the remote does with a guest's call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The filter lets it run on the guest's kernel.
    Local,
    /// Forwarded home, marshalled by the codec.
    Forward,
    /// Answered here (a file mapping filled from home, a CPU-time clock).
    Served,
    /// Brings the process home, which makes the call natively.
    Home(&'static str),
    /// Answered ENOSYS: no way to run it.
    Refused(&'static str),
}

/// What the remote would do with call `nr` with `args` from a guest under
/// the filter `prog` ([`guest_filter`]): the filter's verdict, then the
/// routing the serving loop applies. (A guest's own `/proc` files, told by
/// their path, are served too; this says `Forward` for any `open`.)
pub fn decide(prog: &[u8], nr: u32, args: &[u64; 6]) -> Result<Decision, String> {
    let action = verdict(prog, nr, args)? & libc::SECCOMP_RET_ACTION_FULL;
    if action == libc::SECCOMP_RET_ALLOW {
        return Ok(Decision::Local);
    }
    if action != libc::SECCOMP_RET_USER_NOTIF {
        return Ok(Decision::Refused("the filter fails it"));
    }
    Ok(
        match route(&notif(i32::try_from(nr).unwrap_or(-1), *args)) {
            Route::Forward(_) => Decision::Forward,
            Route::Home(why) => Decision::Home(why),
            Route::FillMapping
            | Route::CpuClock
            | Route::Mmsg
            | Route::Thread
            | Route::ThreadEnd
            | Route::LetThrough => Decision::Served,
            Route::Refuse(why) => Decision::Refused(why),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_proto::migrate::{HomeMsg, Link, RemoteMsg, decode, encode};

    /// A link fed from a list of frames, keeping what is sent.
    struct Script {
        incoming: std::collections::VecDeque<Vec<u8>>,
        sent: Vec<Vec<u8>>,
    }

    impl Link for Script {
        fn send_bytes(&mut self, frame: &[u8]) -> Result<(), LinkError> {
            self.sent.push(frame.to_vec());
            Ok(())
        }
        fn recv_bytes(&mut self) -> Result<Vec<u8>, LinkError> {
            self.incoming.pop_front().ok_or(LinkError::Closed)
        }
    }

    #[test]
    fn a_node_that_accepts_no_guests_refuses_before_reading_the_image() {
        let begin = HomeMsg::Begin {
            home: "node1".into(),
            home_pid: 42,
            image_len: 0,
            locked: false,
        };
        let mut link = Script {
            incoming: [
                encode(&begin),
                encode(&HomeMsg::ImageChunk(vec![1, 2, 3].into())),
            ]
            .into(),
            sent: Vec::new(),
        };
        let policy = GuestPolicy {
            accept: false,
            ..Default::default()
        };
        let mut started = false;
        assert!(serve(&mut link, &policy, &mut |_, _, _, _| started = true).is_err());
        assert!(!started);
        assert_eq!(link.incoming.len(), 1, "the image was not read");
        match decode::<RemoteMsg>(&link.sent[0]).unwrap() {
            RemoteMsg::Failed { error } => assert!(error.contains("accepts no guests"), "{error}"),
            other => panic!("expected Failed, got {other:?}"),
        }
    }
}
