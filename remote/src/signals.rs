//! Signals for the guest: delivered here, as home relays them.

use std::os::fd::AsRawFd;

use crate::RemoteError;
use crate::session::Guest;
use mosaic_proto::migrate::{Link, LinkExt, RemoteMsg};

/// Whether a signal is queued for `pid` and not blocked.
pub(crate) fn deliverable_signal(pid: i32) -> bool {
    use mosaic_ckpt::procfs::signal_set;
    let queued = signal_set(pid, &["SigPnd", "ShdPnd"]).unwrap_or(0);
    queued & !signal_set(pid, &["SigBlk"]).unwrap_or(0) != 0
}

/// Whether a group stop of process `pid` is under way: a thread of it is
/// stopped (its others stop as they next leave the kernel).
pub(crate) fn stopping(pid: i32) -> bool {
    mosaic_ckpt::procfs::tids(pid)
        .unwrap_or_default()
        .into_iter()
        .any(|tid| {
            mosaic_ckpt::procfs::stat_fields(tid).is_ok_and(|f| f.get(3).is_some_and(|s| s == "T"))
        })
}

/// The signals that stop a process by default.
const STOPS: [i32; 4] = [libc::SIGSTOP, libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU];

fn stops(signal: i32) -> bool {
    STOPS.contains(&signal)
}

/// Whether a stop signal is queued for process `pid` or one of its
/// threads (sent, not yet taken by a thread).
pub(crate) fn stop_queued(pid: i32) -> bool {
    let stop = STOPS.iter().fold(0u64, |set, s| set | 1 << (s - 1));
    mosaic_ckpt::procfs::tids(pid)
        .unwrap_or_default()
        .into_iter()
        .any(|tid| {
            mosaic_ckpt::procfs::signal_set(tid, &["SigPnd", "ShdPnd"]).unwrap_or(0) & stop != 0
        })
}

impl Guest {
    /// Sends the guest `signal` from home. A stop also cancels every call
    /// in flight: a thread waiting for a call's answer cannot take part in
    /// the stop (a received seccomp notification waits killable only), so
    /// the stop would wait for the answer (a terminal read: for ever, and
    /// the shell never saw the job's Ctrl-Z). Home interrupts each call,
    /// the thread gets its restart, stops, and makes the call again once
    /// continued ([`crate::calls::finish`]), as a native thread in an
    /// interruptible wait does. A call still being sent in pieces is given
    /// up the same way once the stop is under way
    /// ([`crate::calls::advance`]).
    pub(crate) fn relay(&self, link: &mut dyn Link, signal: i32) -> Result<(), RemoteError> {
        self.signal(signal);
        self.stop_calls(link, signal)
    }

    /// [`Guest::relay`] of a signal home sent to one thread (a job-control
    /// stop that met a placeholder thread in its call, say).
    pub(crate) fn relay_to_thread(
        &self,
        link: &mut dyn Link,
        tid: i32,
        signal: i32,
    ) -> Result<(), RemoteError> {
        self.signal_thread(tid, signal);
        self.stop_calls(link, signal)
    }

    fn stop_calls(&self, link: &mut dyn Link, signal: i32) -> Result<(), RemoteError> {
        if !self.note_stop(signal) {
            return Ok(());
        }
        self.cancel_calls(link)
    }

    /// Notes a stop signal sent to it (true if `signal` is one), for the
    /// calls being sent in pieces ([`crate::calls::advance`]); a SIGCONT
    /// ends the note.
    pub(crate) fn note_stop(&self, signal: i32) -> bool {
        if signal == libc::SIGCONT {
            self.stop_asked.set(None);
        }
        if !stops(signal) {
            return false;
        }
        self.stop_asked.set(Some(std::time::Instant::now()));
        true
    }

    /// Asks home to cancel every call in flight (each is answered as it
    /// ends: made, or interrupted).
    pub(crate) fn cancel_calls(&self, link: &mut dyn Link) -> Result<(), RemoteError> {
        let tids: Vec<i32> = self.calls.borrow().tids().collect();
        for tid in tids {
            link.send_msg(&RemoteMsg::Cancel { tid })?;
        }
        Ok(())
    }

    /// Waits for it to end, if it has not been reaped yet (it was sent
    /// SIGKILL).
    pub(crate) fn reap(&self) {
        // P_PIDFD (linux/wait.h), which libc 0.2 lacks for this target.
        const P_PIDFD: libc::idtype_t = 3;
        let fd = u32::try_from(self.pidfd.as_raw_fd()).unwrap_or(u32::MAX);
        // SAFETY: waitid fills one zeroed siginfo_t; WNOWAIT reaps nothing.
        let unreaped = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                P_PIDFD,
                fd,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL,
            ) == 0
        };
        // Its threads we still trace (a capture that failed half-way) are
        // ours to reap before it can be. Not reaped yet, its PID is still
        // its own; a thread we do not trace is not ours to wait for (ECHILD).
        let tids = if unreaped {
            mosaic_ckpt::procfs::tids(self.pid.as_raw()).unwrap_or_default()
        } else {
            Vec::new()
        };
        for tid in tids {
            if tid != self.pid.as_raw() {
                let _ = nix::sys::wait::waitpid(
                    nix::unistd::Pid::from_raw(tid),
                    Some(nix::sys::wait::WaitPidFlag::__WALL),
                );
            }
        }
        loop {
            // SAFETY: waitid fills one zeroed siginfo_t.
            let r = unsafe {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                libc::waitid(P_PIDFD, fd, &mut info, libc::WEXITED | libc::__WALL)
            };
            if r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return;
            }
        }
    }

    /// Delivers `signal` to its thread with home TID `tid` (`tgkill` by
    /// the IDs it has here); to the process if that thread is gone.
    pub(crate) fn signal_thread(&self, tid: i32, signal: i32) {
        let Some(here) = self.thread_here(tid) else {
            self.warn(|held| {
                tracing::warn!(
                    tid,
                    signal,
                    held,
                    "a signal for a thread the guest no longer has; sent to the process"
                )
            });
            self.signal(signal);
            return;
        };
        // SAFETY: tgkill takes integers.
        unsafe { libc::syscall(libc::SYS_tgkill, self.pid.as_raw(), here, signal) };
    }

    /// The TID here of its thread with home TID `tid`.
    fn thread_here(&self, tid: i32) -> Option<i32> {
        if tid == self.home_pid {
            return Some(self.pid.as_raw());
        }
        if let Some((&here, _)) = self.tids.borrow().iter().find(|&(_, &own)| own == tid) {
            return i32::try_from(here).ok();
        }
        // Not met yet (a thread that made no call): each read once.
        for here in mosaic_ckpt::procfs::tids(self.pid.as_raw()).unwrap_or_default() {
            let Ok(key) = u32::try_from(here) else {
                continue;
            };
            if self.tids.borrow().contains_key(&key) {
                continue;
            }
            if let Ok(own) = mosaic_ckpt::procfs::own_id(here) {
                self.tids.borrow_mut().insert(key, own);
                if own == tid {
                    return Some(here);
                }
            }
        }
        None
    }

    pub(crate) fn signal(&self, signal: i32) {
        // SAFETY: pidfd_send_signal with our pidfd and no siginfo.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                signal,
                std::ptr::null::<u8>(),
                0,
            )
        };
    }
}
