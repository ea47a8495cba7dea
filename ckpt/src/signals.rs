//! Signals, capture and restore side by side: the dispositions
//! (`rt_sigaction`) and the queued signals with their siginfo. (The mask
//! and the alternate stack are the thread's: `thread.rs`.)
//!
//! The kernel's structs are `#[repr(C)]` types read and written whole
//! (zerocopy checks their layout), not byte offsets.

use mosaic_proto::abi;
use mosaic_proto::image::{ImageMeta, SigAction};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::CkptError;
use crate::procfs;
use crate::ptrace::Tracee;

/// `struct kernel_sigaction` as x86-64 `rt_sigaction` reads and writes it
/// (with an 8-byte mask: `sigsetsize` 8).
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct KernelSigaction {
    handler: u64,
    flags: u64,
    restorer: u64,
    mask: u64,
}

/// The dispositions of the signals process `pid` catches or ignores (every
/// other one is at its default), asked with an injected `rt_sigaction`
/// that writes at `scratch`.
pub(crate) fn capture_actions(
    t: &mut Tracee,
    pid: i32,
    scratch: u64,
) -> Result<Vec<SigAction>, CkptError> {
    let interesting = procfs::signal_set(pid, &["SigCgt", "SigIgn"])?;
    let mut out = Vec::new();
    for signo in (1..=64u32).filter(|s| interesting & (1 << (s - 1)) != 0) {
        t.syscall_ok(
            "rt_sigaction",
            libc::SYS_rt_sigaction,
            [u64::from(signo), 0, scratch, 8, 0, 0],
        )?;
        let k: KernelSigaction = t.read_struct(scratch)?;
        out.push(SigAction {
            signo,
            handler: k.handler,
            flags: k.flags,
            restorer: k.restorer,
            mask: k.mask,
        });
    }
    Ok(out)
}

/// Takes its queued signals off its queues into the tracee's deferred
/// signals (`Tracee::dequeue_signals`, writing at `scratch`): they travel
/// as queued ones, with their siginfo, exactly once.
pub(crate) fn take_queued(t: &mut Tracee, pid: i32, scratch: u64) -> Result<(), CkptError> {
    let queued = procfs::signal_set(pid, &["SigPnd", "ShdPnd"])?;
    t.dequeue_signals(queued, scratch)
}

/// Gives the restored process the image's dispositions (`data`: room
/// for the structs in the process).
pub(crate) fn restore(t: &mut Tracee, meta: &ImageMeta, data: u64) -> Result<(), CkptError> {
    // The image holds the caught and ignored signals; every other one is
    // at its default. The stub may have handlers of its own (a fork of a
    // daemon that catches SIGTERM: after the restore the handler's address
    // means nothing, and a SIGTERM would end the process with SIGSEGV) or
    // ignore what the process did not (SIGPIPE, ignored by Rust programs):
    // those go back to SIG_DFL.
    let pid = t.pid.as_raw();
    let mask = |name: &str| -> Result<u64, CkptError> {
        u64::from_str_radix(&procfs::status_field(pid, name)?, 16)
            .map_err(|_| CkptError::Parse(name.into()))
    };
    let stubs = mask("SigCgt")? | mask("SigIgn")?;
    let defaults = (1..=64u32)
        .filter(|&signo| stubs & (1 << (signo - 1)) != 0)
        .filter(|&signo| !meta.sigactions.iter().any(|a| a.signo == signo))
        .map(|signo| SigAction {
            signo,
            handler: 0,
            flags: 0,
            restorer: 0,
            mask: 0,
        });
    let all: Vec<SigAction> = meta.sigactions.iter().cloned().chain(defaults).collect();
    for a in &all {
        if a.signo == libc::SIGKILL as u32 || a.signo == libc::SIGSTOP as u32 {
            continue;
        }
        let k = KernelSigaction {
            handler: a.handler,
            flags: a.flags,
            restorer: a.restorer,
            mask: a.mask,
        };
        t.write_mem(data, k.as_bytes())?;
        t.syscall_ok(
            "rt_sigaction",
            libc::SYS_rt_sigaction,
            [u64::from(a.signo), data, 0, 8, 0, 0],
        )?;
    }
    Ok(())
}

/// Queues the image's pending signals again, each with its siginfo, on
/// the thread or the process as they were (the other threads must exist).
pub(crate) fn queue_pending(t: &mut Tracee, meta: &ImageMeta, data: u64) -> Result<(), CkptError> {
    // Made by the process, which names itself by its own PID.
    let pid = abi::reg(crate::procfs::own_id(t.pid.as_raw())?);
    // To the thread it names, or (None) to the process.
    let main = meta
        .pending
        .iter()
        .map(|p| ((!p.shared).then_some(pid), &p.siginfo));
    let others = meta
        .threads
        .iter()
        .skip(1)
        .flat_map(|th| th.pending.iter().map(|s| (Some(abi::reg(th.tid)), s)));
    for (tid, siginfo) in main.chain(others) {
        // siginfo_t: 128 bytes, si_signo first.
        let Some(signo) = siginfo
            .get(..4)
            .filter(|_| siginfo.len() == 128)
            .and_then(|b| u32::read_from_bytes(b).ok())
        else {
            return Err(CkptError::Restore(
                "a queued signal's siginfo is not 128 bytes".into(),
            ));
        };
        t.write_mem(data, siginfo)?;
        if let Some(tid) = tid {
            t.syscall_ok(
                "rt_tgsigqueueinfo",
                libc::SYS_rt_tgsigqueueinfo,
                [pid, tid, u64::from(signo), data, 0, 0],
            )?;
        } else {
            t.syscall_ok(
                "rt_sigqueueinfo",
                libc::SYS_rt_sigqueueinfo,
                [pid, u64::from(signo), data, 0, 0, 0],
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_structs_have_the_kernels_sizes() {
        // x86-64: kernel_sigaction with an 8-byte mask.
        assert_eq!(size_of::<KernelSigaction>(), 32);
    }
}
