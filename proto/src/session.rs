//! The states of a migration session and the messages legal in each, for
//! both sides, defined once (the message types are in [`crate::migrate`]).
//!
//! ```text
//!   Opening --Begin--> Sending --ImageEnd--> Starting --Started--> Serving
//!                        (ImageChunk)          |  Failed, FilesMissing -> Ended
//!   Serving --Syscall--> InCall --SyscallResult--> Serving
//!             (SyscallPart before a call's Syscall; SyscallPart before its result)
//!   Serving --Exited, Killed--> Ended          (Stopped, Signal, ComeHome: Serving)
//!   Serving --Returning--> Returning --ImageEnd, CannotReturn--> Arriving
//!                            (ImageChunk)
//!   Arriving --Arrived--> Leaving --Gone--> Ended
//!   Arriving --Stay--> Serving        (home could not restore it: it goes on there)
//! ```
//!
//! Each side knows which state it is in by where it is in its own code
//! (its serving loop is `Serving`, waiting for a call's result is
//! `InCall`), and asks [`State::home_may_send`] or [`State::remote_may_send`]
//! of every message it receives. Messages cross: while the remote sends a
//! call, home may send a signal or ask for the process back, so every state
//! in which one side waits accepts what the other may have sent before it
//! knew. **One rule for an unexpected message:** it is a protocol error
//! ([`Unexpected`]), and the session ends as if the link had broken: the
//! remote ends its guest, home ends the placeholder by SIGKILL (its parent
//! sees the end; a process is never left hanging on a session that cannot
//! go on).

use thiserror::Error;

use crate::migrate::{HomeMsg, RemoteMsg};

/// Where a migration session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Nothing sent yet.
    Opening,
    /// Home sends the image.
    Sending,
    /// The image is sent; the remote starts the guest or says why not.
    Starting,
    /// The guest runs; the remote forwards its calls.
    Serving,
    /// A call is at home; the remote waits for its result.
    InCall,
    /// The guest is captured and its image on its way home.
    Returning,
    /// Its image is home (or the remote could not capture it); home says
    /// whether it runs there now.
    Arriving,
    /// It runs at home; the remote ends its guest.
    Leaving,
    /// The session is over.
    Ended,
}

/// A message that is not legal where the session is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{from} sent {message} while the session was {state:?}")]
pub struct Unexpected {
    /// `home` or `the remote`.
    pub from: &'static str,
    /// The message's kind (its variant name, without its contents).
    pub message: &'static str,
    pub state: State,
}

impl State {
    /// The state after home sent `m` (`Err` if home may not send it here).
    pub fn home_may_send(self, m: &HomeMsg) -> Result<State, Unexpected> {
        use State::*;
        let next = match (self, m) {
            (Opening, HomeMsg::Begin { .. }) => Sending,
            (Sending, HomeMsg::ImageChunk(_)) => Sending,
            (Sending, HomeMsg::ImageEnd) => Starting,
            (InCall, HomeMsg::SyscallResult { .. }) => Serving,
            (InCall, HomeMsg::SyscallPart { .. }) => InCall,
            // A signal for the guest, or the wish to have it back, may be
            // sent whenever the guest exists and home is not yet sure it
            // has it back (held or ignored by the remote once it left).
            (
                s @ (Serving | InCall | Returning | Arriving),
                HomeMsg::Signal { .. } | HomeMsg::ThreadSignal { .. } | HomeMsg::ComeHome,
            ) => s,
            (Arriving, HomeMsg::Arrived) => Leaving,
            (Arriving, HomeMsg::Stay { .. }) => Serving,
            (state, m) => {
                return Err(Unexpected {
                    from: "home",
                    message: home_name(m),
                    state,
                });
            }
        };
        Ok(next)
    }

    /// The state after the remote sent `m` (`Err` if it may not send it
    /// here).
    pub fn remote_may_send(self, m: &RemoteMsg) -> Result<State, Unexpected> {
        use State::*;
        let next = match (self, m) {
            (Starting, RemoteMsg::Started { .. }) => Serving,
            (Starting, RemoteMsg::Failed { .. } | RemoteMsg::FilesMissing { .. }) => Ended,
            // Another thread's call while one waits, or a cancel that
            // crosses its result (home is then back in Serving).
            (Serving | InCall, RemoteMsg::Syscall { .. }) => InCall,
            (s @ (Serving | InCall), RemoteMsg::Cancel { .. }) => s,
            // A part of a call to come, while others may be at home.
            (s @ (Serving | InCall), RemoteMsg::SyscallPart { .. }) => s,
            (Serving, RemoteMsg::Stopped { .. }) => Serving,
            (Serving, RemoteMsg::Exited { .. } | RemoteMsg::Killed { .. }) => Ended,
            (Serving, RemoteMsg::Returning { .. }) => Returning,
            (Returning, RemoteMsg::ImageChunk(_)) => Returning,
            (Returning, RemoteMsg::ImageEnd | RemoteMsg::CannotReturn { .. }) => Arriving,
            (Leaving, RemoteMsg::Gone { .. }) => Ended,
            (state, m) => {
                return Err(Unexpected {
                    from: "the remote",
                    message: remote_name(m),
                    state,
                });
            }
        };
        Ok(next)
    }
}

/// The name of a home message, for errors and logs (without its contents,
/// which may be an image chunk).
/// The threads whose calls are in flight, for the rule the table cannot
/// hold: a thread has at most one call, and a result answers one.
#[derive(Debug, Default, Clone)]
pub struct Calls(std::collections::BTreeSet<i32>);

impl Calls {
    /// Thread `tid` sends a call.
    pub fn sent(&mut self, tid: i32) -> Result<(), Unexpected> {
        if self.0.insert(tid) {
            Ok(())
        } else {
            Err(Unexpected {
                from: "the remote",
                message: "Syscall of a thread already in a call",
                state: State::InCall,
            })
        }
    }

    /// Thread `tid`'s call is answered.
    pub fn answered(&mut self, tid: i32) -> Result<(), Unexpected> {
        if self.0.remove(&tid) {
            Ok(())
        } else {
            Err(Unexpected {
                from: "home",
                message: "SyscallResult of a thread with no call",
                state: State::InCall,
            })
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The state the session is in: in a call while any is in flight.
    pub fn state(&self) -> State {
        if self.0.is_empty() {
            State::Serving
        } else {
            State::InCall
        }
    }

    pub fn tids(&self) -> impl Iterator<Item = i32> + '_ {
        self.0.iter().copied()
    }
}

pub fn home_name(m: &HomeMsg) -> &'static str {
    match m {
        HomeMsg::Begin { .. } => "Begin",
        HomeMsg::ImageChunk(_) => "ImageChunk",
        HomeMsg::ImageEnd => "ImageEnd",
        HomeMsg::SyscallResult { .. } => "SyscallResult",
        HomeMsg::Signal { .. } => "Signal",
        HomeMsg::ThreadSignal { .. } => "ThreadSignal",
        HomeMsg::ComeHome => "ComeHome",
        HomeMsg::Arrived => "Arrived",
        HomeMsg::Stay { .. } => "Stay",
        HomeMsg::SyscallPart { .. } => "SyscallPart",
    }
}

/// The name of a remote message, as [`home_name`].
pub fn remote_name(m: &RemoteMsg) -> &'static str {
    match m {
        RemoteMsg::Started { .. } => "Started",
        RemoteMsg::Failed { .. } => "Failed",
        RemoteMsg::Syscall { .. } => "Syscall",
        RemoteMsg::Cancel { .. } => "Cancel",
        RemoteMsg::Exited { .. } => "Exited",
        RemoteMsg::Killed { .. } => "Killed",
        RemoteMsg::Stopped { .. } => "Stopped",
        RemoteMsg::Returning { .. } => "Returning",
        RemoteMsg::ImageChunk(_) => "ImageChunk",
        RemoteMsg::ImageEnd => "ImageEnd",
        RemoteMsg::CannotReturn { .. } => "CannotReturn",
        RemoteMsg::Gone { .. } => "Gone",
        RemoteMsg::FilesMissing { .. } => "FilesMissing",
        RemoteMsg::SyscallPart { .. } => "SyscallPart",
    }
}

#[cfg(test)]
mod tests;
