//! How a process stopped inside a system call resumes after a restore.
//!
//! When ptrace stops a process in a blocking call, the kernel has already
//! unwound the call with one of its internal restart codes in `rax` and the
//! call number in `orig_rax`. On the original process the kernel would redo
//! the call on resume; on a restored one we must arrange it ourselves, exactly
//! as the kernel would have:
//!
//! * `-ERESTARTSYS`, `-ERESTARTNOINTR`, `-ERESTARTNOHAND`: back up `rip` over
//!   the `syscall` instruction and put the number back in `rax`; the call
//!   runs again (`pause`, `select` with the remaining time Linux wrote back,
//!   `read`, `wait4`, ...).
//! * `-ERESTART_RESTARTBLOCK`: the kernel would continue from a restart
//!   block the new process does not have. For `nanosleep` and relative
//!   `clock_nanosleep` the kernel has already written the remaining time to
//!   the caller's `rem`, so we redo the call with `req = rem`: the sleep
//!   resumes with the time that was left. An absolute `clock_nanosleep` is
//!   simply redone. Anything else (`poll`, `nanosleep` without `rem`) returns
//!   `EINTR`, which callers must handle anyway (CRIU does the same).

use mosaic_proto::abi;
use mosaic_proto::image::Regs;

use mosaic_proto::syscalls::codec::errno::{
    EINTR, ERESTART_RESTARTBLOCK, ERESTARTNOHAND, ERESTARTNOINTR, ERESTARTSYS,
};
const TIMER_ABSTIME: u64 = libc::TIMER_ABSTIME as u64;

/// Registers to resume a restored process with, from the captured ones.
/// The result has `orig_rax = -1`, so no restart logic of the kernel's
/// applies on top.
pub fn resume_regs(captured: &Regs) -> Regs {
    let mut r = *captured;
    let in_syscall = abi::long(captured.orig_rax) >= 0;
    if in_syscall {
        let nr = abi::long(captured.orig_rax);
        let redo = |r: &mut Regs| {
            r.rax = captured.orig_rax;
            r.rip -= 2;
        };
        match abi::long(captured.rax) {
            ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND => redo(&mut r),
            ERESTART_RESTARTBLOCK => match nr {
                libc::SYS_nanosleep if captured.rsi != 0 => {
                    r.rdi = captured.rsi;
                    redo(&mut r);
                }
                libc::SYS_clock_nanosleep if captured.rsi & TIMER_ABSTIME != 0 => redo(&mut r),
                libc::SYS_clock_nanosleep if captured.r10 != 0 => {
                    r.rdx = captured.r10;
                    redo(&mut r);
                }
                _ => r.rax = abi::reg_long(EINTR),
            },
            _ => {}
        }
    }
    r.orig_rax = u64::MAX;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_call(nr: i64, rax: i64) -> Regs {
        Regs {
            orig_rax: abi::reg_long(nr),
            rax: abi::reg_long(rax),
            rip: 0x1002,
            ..Regs::default()
        }
    }

    #[test]
    fn restartable_calls_are_redone() {
        let r = resume_regs(&in_call(libc::SYS_pause, ERESTARTNOHAND));
        assert_eq!(
            (abi::long(r.rax), r.rip, r.orig_rax),
            (libc::SYS_pause, 0x1000, u64::MAX)
        );
    }

    #[test]
    fn relative_sleeps_resume_with_the_remaining_time() {
        let mut c = in_call(libc::SYS_clock_nanosleep, ERESTART_RESTARTBLOCK);
        c.rdx = 0x5000; // req
        c.r10 = 0x6000; // rem
        let r = resume_regs(&c);
        assert_eq!(
            (r.rdx, r.rip, abi::long(r.rax)),
            (0x6000, 0x1000, libc::SYS_clock_nanosleep)
        );
        c.r10 = 0;
        assert_eq!(abi::long(resume_regs(&c).rax), EINTR);
    }

    #[test]
    fn a_finished_call_or_user_code_is_left_alone() {
        let mut c = in_call(libc::SYS_read, 5);
        assert_eq!(resume_regs(&c).rip, 0x1002);
        c.orig_rax = u64::MAX;
        c.rax = abi::reg_long(ERESTARTSYS); // not in a call: rax is just data
        assert_eq!(abi::long(resume_regs(&c).rax), ERESTARTSYS);
    }
}
