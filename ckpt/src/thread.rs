//! A thread's own state, capture and restore side by side: its registers
//! (general and `NT_X86_XSTATE`; with them the call it was stopped in,
//! which [`crate::restart`] makes resume), its signal mask, its alternate
//! signal stack, and what it registered with the kernel by its own calls:
//! the TID address (`set_tid_address`: cleared and woken at its exit), the
//! robust futex list and the rseq area.
//!
//! Also its name and, for a thread other than the main one, the signals
//! queued to it alone and its CPUs (read and set from outside by
//! [`crate::capture`] and [`crate::restore`]). Each thread of a process is
//! captured and restored by these same functions, through its own tracee.
//! Nothing here is the process's.

use mosaic_proto::image::{AltStack, Rseq, ThreadImage};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::CkptError;
use crate::ptrace::Tracee;
use crate::restart::resume_regs;

/// `stack_t` (x86-64: a pointer, an int, padding, a size).
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct StackT {
    sp: u64,
    flags: i32,
    _pad: i32,
    size: u64,
}

/// `SS_AUTODISARM` (linux/signal.h; libc does not name it).
const SS_AUTODISARM: i32 = 1 << 31;

/// What ptrace shows of the stopped thread from outside. The alternate
/// stack and the TID address only the thread can tell: [`ask`] fills them.
pub(crate) fn capture(t: &Tracee) -> Result<ThreadImage, CkptError> {
    Ok(ThreadImage {
        // As the process knows it (a guest's: its home TID).
        tid: crate::procfs::own_id(t.pid.as_raw())?,
        regs: t.regs()?,
        xstate: t.xstate()?,
        sigmask: t.sigmask()?,
        altstack: AltStack::default(),
        tid_address: 0,
        robust_list: robust_list(t.pid.as_raw())?,
        rseq: t.rseq()?.map(|(addr, len, sig)| Rseq { addr, len, sig }),
        name: String::new(),
        pending: Vec::new(),
        cpus: Vec::new(),
    })
}

/// Its alternate stack and TID address, asked by injected `sigaltstack`
/// and `prctl(PR_GET_TID_ADDRESS)` that write at `scratch`.
pub(crate) fn ask(t: &mut Tracee, th: &mut ThreadImage, scratch: u64) -> Result<(), CkptError> {
    t.syscall_ok(
        "sigaltstack",
        libc::SYS_sigaltstack,
        [0, scratch, 0, 0, 0, 0],
    )?;
    let s: StackT = t.read_struct(scratch)?;
    th.altstack = AltStack {
        sp: s.sp,
        flags: s.flags,
        size: s.size,
    };
    t.syscall_ok(
        "prctl(PR_GET_TID_ADDRESS)",
        libc::SYS_prctl,
        [libc::PR_GET_TID_ADDRESS as u64, scratch, 0, 0, 0, 0],
    )?;
    th.tid_address = t.read_struct::<u64>(scratch)?;
    Ok(())
}

/// The thread's robust futex list: (head, length).
fn robust_list(tid: i32) -> Result<(u64, u64), CkptError> {
    let mut head: u64 = 0;
    let mut len: usize = 0;
    // SAFETY: get_robust_list writes one pointer and one size_t to the two
    // valid locations we pass.
    let r = unsafe {
        libc::syscall(
            libc::SYS_get_robust_list,
            tid,
            &mut head as *mut u64,
            &mut len as *mut usize,
        )
    };
    if r != 0 {
        return Err(CkptError::Ptrace(
            "get_robust_list",
            nix::errno::Errno::last(),
        ));
    }
    Ok((head, len as u64))
}

/// Gives the restored thread its alternate stack, TID address, robust list
/// and rseq area by injected calls (`data`: room for a `stack_t`).
pub(crate) fn restore(t: &mut Tracee, th: &ThreadImage, data: u64) -> Result<(), CkptError> {
    // The image's alternate stack, or none: the stub's own (a Rust thread
    // has one) would point into memory that is the image's now.
    let st = &th.altstack;
    let s = if st.flags & libc::SS_DISABLE == 0 {
        StackT {
            sp: st.sp,
            flags: st.flags & SS_AUTODISARM,
            _pad: 0,
            size: st.size,
        }
    } else {
        StackT {
            sp: 0,
            flags: libc::SS_DISABLE,
            _pad: 0,
            size: 0,
        }
    };
    t.write_mem(data, s.as_bytes())?;
    t.syscall_ok("sigaltstack", libc::SYS_sigaltstack, [data, 0, 0, 0, 0, 0])?;
    t.syscall_ok(
        "set_tid_address",
        libc::SYS_set_tid_address,
        [th.tid_address, 0, 0, 0, 0, 0],
    )?;
    if th.robust_list.0 != 0 {
        t.syscall_ok(
            "set_robust_list",
            libc::SYS_set_robust_list,
            [th.robust_list.0, th.robust_list.1, 0, 0, 0, 0],
        )?;
    }
    // Its name, at most 15 bytes and a NUL (TASK_COMM_LEN).
    if !th.name.is_empty() {
        let mut name = [0u8; 16];
        let len = th.name.len().min(15);
        name[..len].copy_from_slice(&th.name.as_bytes()[..len]);
        t.write_mem(data, &name)?;
        t.syscall_ok(
            "prctl(PR_SET_NAME)",
            libc::SYS_prctl,
            [libc::PR_SET_NAME as u64, data, 0, 0, 0, 0],
        )?;
    }
    if let Some(r) = th.rseq {
        t.syscall_ok(
            "rseq",
            libc::SYS_rseq,
            [r.addr, u64::from(r.len), 0, u64::from(r.sig), 0, 0],
        )?;
    }
    Ok(())
}

/// Last of a restore: the thread's registers, made to resume the call it
/// was stopped in, its xstate and its mask.
pub(crate) fn resume(t: &Tracee, th: &ThreadImage) -> Result<(), CkptError> {
    t.set_regs(&resume_regs(&th.regs))?;
    t.set_xstate(&th.xstate)?;
    t.set_sigmask(th.sigmask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_t_has_the_kernels_layout() {
        assert_eq!(size_of::<StackT>(), size_of::<libc::stack_t>());
        assert_eq!(
            std::mem::offset_of!(StackT, size),
            std::mem::offset_of!(libc::stack_t, ss_size)
        );
        assert_eq!(
            std::mem::offset_of!(StackT, flags),
            std::mem::offset_of!(libc::stack_t, ss_flags)
        );
    }
}
