//! Job control: a guest that stops stops its placeholder (so the shell
//! sees it), and a SIGCONT at home continues it where it runs.

use crate::DeputyError;
use crate::session::Placeholder;
use mosaic_ckpt::CkptError;
use mosaic_ckpt::ptrace::Deferred;
use mosaic_proto::abi;
use mosaic_proto::migrate::{HomeMsg, Link, LinkExt};
use nix::sys::signal::Signal;
use tracing::{info, warn};

/// Whether the process group of `pid` is orphaned: no member has a parent
/// in another group of the same session (POSIX). The kernel
/// discards SIGTSTP, SIGTTIN and SIGTTOU sent to such a group.
pub(crate) fn pgrp_orphaned(pid: i32) -> bool {
    // (pgrp, session, ppid) from /proc/PID/stat.
    let ids = |pid: i32| -> Option<(i32, i32, i32)> {
        let f = mosaic_ckpt::procfs::stat_fields(pid).ok()?;
        Some((
            f.get(5)?.parse().ok()?,
            f.get(6)?.parse().ok()?,
            f.get(4)?.parse().ok()?,
        ))
    };
    let Some((pgrp, session, _)) = ids(pid) else {
        return false;
    };
    let members = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(ids)
        .filter(|&(g, _, _)| g == pgrp);
    !members
        .filter_map(|(_, _, ppid)| ids(ppid))
        .any(|(g, s, _)| g != pgrp && s == session)
}

impl<T> Placeholder<T> {
    /// Its guest stopped by `signal`: the placeholder enters group-stop by
    /// the same signal, so its parent (the shell) sees the stop, and stays
    /// there under `PTRACE_LISTEN` until a SIGCONT, which `watch` relays.
    pub(crate) fn group_stop(
        &mut self,
        link: &mut dyn Link,
        signal: i32,
    ) -> Result<(), DeputyError> {
        use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
        let Ok(sig) = Signal::try_from(signal) else {
            return Ok(());
        };
        if self.is_stopped() {
            return Ok(());
        }
        let pid = self.tracee.pid;
        if sig != Signal::SIGSTOP && pgrp_orphaned(pid.as_raw()) {
            // At home the kernel discards SIGTSTP/TTIN/TTOU in an orphaned
            // process group (nobody could continue it): so do we.
            info!(pid = pid.as_raw(), signal = %sig, "stop discarded: orphaned process group");
            link.send_msg(&HomeMsg::Signal {
                signal: libc::SIGCONT,
            })?;
            return Ok(());
        }
        // Its own disposition and mask are stale while the guest is away
        // (the guest's come back with it): default, unblocked.
        self.scratch.begin(&mut self.tracee, 64)?;
        let act = self.scratch.put(&mut self.tracee, &[0u8; 32])?;
        self.tracee
            .syscall(libc::SYS_rt_sigaction, [abi::reg(signal), act, 0, 8, 0, 0])?;
        let mask = self.tracee.sigmask()?;
        self.tracee.set_sigmask(mask & !(1u64 << (signal - 1)))?;
        // Continued before its guest's stop reached us: a job moved while
        // stopped stops again where it arrives, and a shell's `fg` sent in
        // between is already queued here (or was caught at the injections
        // above). At home that SIGCONT came after the stop and ended it;
        // stopping now would discard it (a stop signal drops a queued
        // SIGCONT) and leave the job stopped after `fg`. It goes to the
        // guest instead, with what else is queued.
        let cont = 1u64 << (libc::SIGCONT - 1);
        if crate::signals::pending_signals(pid.as_raw()) & cont != 0
            || self
                .tracee
                .deferred_signals
                .iter()
                .any(|d| d.signal == libc::SIGCONT)
        {
            self.take_pending()?;
            return self.relay_deferred(link);
        }
        let _ = nix::sys::signal::kill(pid, sig);
        let ptrace_err = |what, e| DeputyError::Ckpt(CkptError::Ptrace(what, e));
        // With the signal queued, resuming stops again at its delivery
        // before any user instruction runs.
        nix::sys::ptrace::cont(pid, None).map_err(|e| ptrace_err("PTRACE_CONT", e))?;
        loop {
            match waitpid(pid, Some(WaitPidFlag::__WALL)).map_err(|e| ptrace_err("waitpid", e))? {
                WaitStatus::Stopped(_, s) if s == sig => {
                    nix::sys::ptrace::cont(pid, Some(sig))
                        .map_err(|e| ptrace_err("PTRACE_CONT", e))?;
                }
                WaitStatus::Stopped(
                    _,
                    fault @ (Signal::SIGSEGV | Signal::SIGBUS | Signal::SIGILL),
                ) => {
                    // It ran an instruction of its released memory: the
                    // stop signal was discarded after all. It faulted before
                    // executing anything, and stays in this stop (where
                    // injections work); the guest goes on, as it would here.
                    warn!(pid = pid.as_raw(), signal = %sig, %fault, "the stop signal was discarded; the guest goes on");
                    link.send_msg(&HomeMsg::Signal {
                        signal: libc::SIGCONT,
                    })?;
                    return Ok(());
                }
                WaitStatus::Stopped(_, other) => {
                    // Another signal first: the guest's; ours is still queued.
                    self.tracee
                        .deferred_signals
                        .push(Deferred::at_stop(pid, other));
                    nix::sys::ptrace::cont(pid, None).map_err(|e| ptrace_err("PTRACE_CONT", e))?;
                }
                WaitStatus::PtraceEvent(_, _, libc::PTRACE_EVENT_STOP) => {
                    // SAFETY: PTRACE_LISTEN takes no pointers.
                    let r = unsafe { libc::ptrace(libc::PTRACE_LISTEN, pid.as_raw(), 0, 0) };
                    if r < 0 {
                        return Err(ptrace_err("PTRACE_LISTEN", nix::errno::Errno::last()));
                    }
                    self.set_stopped(true);
                    // Its other threads take part too: then the stop is
                    // whole and its parent is told.
                    crate::threads::stop_all(&self.crew);
                    info!(pid = pid.as_raw(), signal = %sig, "stopped with its guest");
                    return Ok(());
                }
                WaitStatus::Exited(..) | WaitStatus::Signaled(..) => {
                    return Err(DeputyError::Ckpt(CkptError::Gone(pid.as_raw())));
                }
                _ => {}
            }
        }
    }

    /// Back from group-stop into a ptrace stop we can inject from.
    pub(crate) fn trap(&mut self) {
        use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
        if !self.is_stopped() {
            return;
        }
        self.set_stopped(false);
        let pid = self.tracee.pid;
        if nix::sys::ptrace::interrupt(pid).is_ok() {
            while let Ok(st) = waitpid(pid, Some(WaitPidFlag::__WALL)) {
                if matches!(
                    st,
                    WaitStatus::PtraceEvent(..) | WaitStatus::Exited(..) | WaitStatus::Signaled(..)
                ) {
                    break;
                }
            }
        }
    }
}
