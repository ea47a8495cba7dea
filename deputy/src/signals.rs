//! Signals: those sent to the home PID are relayed to the guest, those
//! that arrive during an injected call go with its result, and the
//! placeholder dies by the signal its guest died of.

use crate::DeputyError;
use crate::session::Placeholder;
use mosaic_ckpt::ptrace::Deferred;
use mosaic_proto::migrate::{HomeMsg, Link, LinkExt};
use nix::sys::signal::Signal;
use tracing::{debug, info, warn};

/// Signals queued on process `pid` (thread and process queues).
pub(crate) fn pending_signals(pid: i32) -> u64 {
    mosaic_ckpt::procfs::signal_set(pid, &["SigPnd", "ShdPnd"]).unwrap_or(0)
}

/// The signals caught at placeholder thread `t`, taken, but for those its
/// own timers sent (see [`Placeholder::take_deferred`]) and our own
/// cancels ([`own_cancel`]).
pub(crate) fn take_deferred(t: &mut mosaic_ckpt::ptrace::Tracee) -> Vec<i32> {
    std::mem::take(&mut t.deferred_signals)
        .into_iter()
        .filter(|d| !d.from_timer())
        .filter(|d| {
            let ours = own_cancel(d);
            if ours {
                debug!(
                    tid = t.pid.as_raw(),
                    "a cancel's signal met by another injection; dropped"
                );
            }
            !ours
        })
        .map(|d| d.signal)
        .collect()
}

/// Whether `d` is a cancel's signal ([`crate::calls::CANCEL`]) sent by this
/// daemon's `tgkill`, which any injection in its thread may meet before
/// the call it was for does (one that allocates scratch room, the call of
/// a thread's birth, a drain): never the guest's. Relayed, its default
/// action killed the guest (a thread-making python3 moved on while one of
/// its calls was cancelled ended by SIGSTKFLT). A SIGSTKFLT someone else
/// sends is relayed as any signal.
pub(crate) fn own_cancel(d: &Deferred) -> bool {
    d.signal == crate::calls::CANCEL as i32
        && d.code() == libc::SI_TKILL
        && (d.sender() == mosaic_proto::abi::my_pid() || d.sender() == 0)
}

impl<T> Placeholder<T> {
    /// Between calls: relays signals queued on the placeholder to the
    /// guest, notices a SIGCONT that ended its group-stop, and notices its
    /// death (SIGKILL of the home PID). Returns the killing signal if it
    /// died.
    pub(crate) fn watch(&mut self, link: &mut dyn Link) -> Result<Option<i32>, DeputyError> {
        use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
        let pid = self.tracee.pid;
        let mut continued = false;
        match waitpid(pid, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                link.send_msg(&HomeMsg::Signal { signal: sig as i32 })?;
                return Ok(Some(sig as i32));
            }
            Ok(WaitStatus::Exited(..)) | Err(_) => {
                link.send_msg(&HomeMsg::Signal {
                    signal: libc::SIGKILL,
                })?;
                return Ok(Some(libc::SIGKILL));
            }
            Ok(WaitStatus::PtraceEvent(..)) if self.is_stopped() => {
                // SIGCONT woke it out of group-stop; it is in a trap stop.
                self.set_stopped(false);
                continued = true;
            }
            _ => {}
        }
        if self.is_stopped() {
            return Ok(None);
        }
        self.take_pending()?;
        if continued
            && !self
                .tracee
                .deferred_signals
                .iter()
                .any(|d| d.signal == libc::SIGCONT)
        {
            self.tracee
                .deferred_signals
                .push(Deferred::plain(libc::SIGCONT));
        }
        // A pending signal also shows up as a stop while we inject (the
        // injection then suppresses it): those are relayed too.
        self.relay_deferred(link)?;
        Ok(None)
    }

    /// Relays the signals caught at the placeholder ([`Self::take_deferred`])
    /// to the guest.
    pub(crate) fn relay_deferred(&mut self, link: &mut dyn Link) -> Result<(), DeputyError> {
        let pid = self.tracee.pid;
        for sig in self.take_deferred() {
            info!(
                pid = pid.as_raw(),
                signal = sig,
                "relaying a signal to the guest"
            );
            link.send_msg(&HomeMsg::Signal { signal: sig })?;
        }
        Ok(())
    }

    /// The signals caught at the placeholder, to relay to the guest; those
    /// its own timers sent are dropped: its timers travelled with the
    /// guest, whose copies fire there (one that fired here before it was
    /// deleted would reach the guest twice).
    pub(crate) fn take_deferred(&mut self) -> Vec<i32> {
        take_deferred(&mut self.tracee)
    }

    /// Takes the signals queued on the placeholder off its queue, into
    /// `deferred_signals` (the guest's).
    pub(crate) fn take_pending(&mut self) -> Result<(), DeputyError> {
        let pid = self.tracee.pid;
        let mut pending = pending_signals(pid.as_raw());
        if pending & (1 << (libc::SIGSTOP - 1)) != 0 {
            // SIGSTOP cannot be waited for: any injection meets it at its
            // delivery stop, which suppresses and keeps it for the guest.
            self.tracee.syscall(libc::SYS_getpid, [0; 6])?;
            pending = pending_signals(pid.as_raw());
        }
        self.scratch.begin(&mut self.tracee, 256)?;
        let room = self.scratch.alloc(160)?;
        self.tracee.dequeue_signals(pending, room)?;
        Ok(())
    }

    /// Disarms the placeholder's interval timers and deletes its POSIX
    /// timers: they travelled with the guest and fire there (a second tick
    /// from home would be relayed too). Coming home recreates them.
    pub(crate) fn quiet_timers(&mut self) {
        let t = &mut self.tracee;
        let zero = self
            .scratch
            .begin(t, 64)
            .and_then(|()| self.scratch.put(t, &[0u8; 32]));
        if let Ok(zero) = zero {
            for which in 0..3u64 {
                let _ = t.syscall(libc::SYS_setitimer, [which, zero, 0, 0, 0, 0]);
            }
        }
        match mosaic_ckpt::timers::delete_posix(t) {
            Ok(0) => {}
            Ok(n) => debug!(
                pid = t.pid.as_raw(),
                n, "deleted the placeholder's POSIX timers"
            ),
            Err(e) => {
                warn!(pid = t.pid.as_raw(), error = %e, "could not delete the placeholder's POSIX timers; a timer may tick twice")
            }
        }
    }

    /// Makes the placeholder die by `sig`, as its guest did.
    pub(crate) fn die_by(&mut self, sig: Signal) {
        let pid = self.tracee.pid;
        if sig != Signal::SIGKILL {
            // Default disposition and unblocked, so the signal kills it.
            let reset = self
                .scratch
                .begin(&mut self.tracee, 64)
                .and_then(|()| self.scratch.put(&mut self.tracee, &[0u8; 32]))
                .and_then(|act| {
                    self.tracee
                        .syscall(libc::SYS_rt_sigaction, [sig as u64, act, 0, 8, 0, 0])
                });
            if !matches!(reset, Ok(0)) {
                warn!(
                    pid = pid.as_raw(),
                    "could not reset the disposition of {sig}"
                );
            }
            if let Ok(mask) = self.tracee.sigmask() {
                let _ = self.tracee.set_sigmask(mask & !(1u64 << (sig as u32 - 1)));
            }
            if nix::sys::ptrace::detach(pid, Some(sig)).is_ok() {
                return;
            }
        }
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::__WALL));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signal as a `tgkill` from `sender` leaves it in siginfo.
    fn tkill(signal: i32, sender: i32) -> Deferred {
        let mut d = Deferred::plain(signal);
        d.info[8..12].copy_from_slice(&libc::SI_TKILL.to_le_bytes());
        d.info[16..20].copy_from_slice(&sender.to_le_bytes());
        d
    }

    #[test]
    fn only_our_own_cancels_are_dropped() {
        let me = mosaic_proto::abi::my_pid();
        let cancel = crate::calls::CANCEL as i32;
        assert!(own_cancel(&tkill(cancel, me)));
        // Sent from outside the placeholder's PID namespace.
        assert!(own_cancel(&tkill(cancel, 0)));
        // Someone else's SIGSTKFLT, or ours by kill(): the guest's.
        assert!(!own_cancel(&tkill(cancel, me + 1)));
        assert!(!own_cancel(&Deferred::plain(cancel)));
        assert!(!own_cancel(&tkill(libc::SIGUSR1, me)));
    }
}
