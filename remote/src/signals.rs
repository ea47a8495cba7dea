//! Signals for the guest: delivered here, as home relays them.

use std::os::fd::AsRawFd;

use crate::session::Guest;

/// Whether a signal is queued for `pid` and not blocked.
pub(crate) fn deliverable_signal(pid: i32) -> bool {
    use mosaic_ckpt::procfs::signal_set;
    let queued = signal_set(pid, &["SigPnd", "ShdPnd"]).unwrap_or(0);
    queued & !signal_set(pid, &["SigBlk"]).unwrap_or(0) != 0
}

impl Guest {
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
