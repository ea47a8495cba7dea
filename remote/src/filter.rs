//! The guest's seccomp filter, built from the syscall table, and a
//! reading of it: what it returns for a call.

use mosaic_proto::syscalls::Class;

use crate::RemoteError;
use mosaic_ckpt::CkptError;
use mosaic_ckpt::ptrace::Tracee;

/// The seccomp program for guests: local and exit calls run, every other
/// call stops the guest for its tracer.
pub fn guest_filter() -> Result<Vec<u8>, RemoteError> {
    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };
    let bad = |e: seccompiler::BackendError| RemoteError::Protocol(format!("seccomp filter: {e}"));
    // mmap runs here only for private anonymous memory; a file or shared
    // mapping traps and brings the process home (`brings_home`).
    let flags = |mask: u64, value: u64| {
        SeccompCondition::new(
            3,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(mask),
            value,
        )
    };
    let anon_private = SeccompRule::new(vec![
        flags(libc::MAP_TYPE as u64, libc::MAP_PRIVATE as u64).map_err(bad)?,
        flags(libc::MAP_ANONYMOUS as u64, libc::MAP_ANONYMOUS as u64).map_err(bad)?,
    ])
    .map_err(bad)?;
    // clock_gettime runs here but for CPU-time clocks (`cpu_clock`): the
    // process's own (CLOCK_PROCESS/THREAD_CPUTIME_ID) and those named by
    // a PID (negative clockids).
    let clock = |op: SeccompCmpOp, value: u64| {
        SeccompCondition::new(0, SeccompCmpArgLen::Dword, op, value).map_err(bad)
    };
    let wall_clock = SeccompRule::new(vec![
        clock(SeccompCmpOp::MaskedEq(0x8000_0000), 0)?,
        clock(SeccompCmpOp::Ne, libc::CLOCK_PROCESS_CPUTIME_ID as u64)?,
        clock(SeccompCmpOp::Ne, libc::CLOCK_THREAD_CPUTIME_ID as u64)?,
    ])
    .map_err(bad)?;
    let rules = mosaic_proto::syscalls::SYSCALLS
        .iter()
        // Numbers without an entry point answer ENOSYS from the guest's
        // own kernel, as natively.
        .filter(|s| matches!(s.class, Class::Local | Class::Exit | Class::Unsupported))
        // A thread's end is told home first (`crate::threads`).
        .filter(|s| i64::from(s.nr) != libc::SYS_exit)
        .map(|s| {
            let conditions = match i64::from(s.nr) {
                libc::SYS_mmap => vec![anon_private.clone()],
                libc::SYS_clock_gettime => vec![wall_clock.clone()],
                _ => Vec::new(),
            };
            (i64::from(s.nr), conditions)
        })
        .collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Trace(0),
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(|e| RemoteError::Protocol(format!("seccomp filter: {e}")))?;
    let prog: BpfProgram = filter
        .try_into()
        .map_err(|e| RemoteError::Protocol(format!("seccomp filter: {e}")))?;
    // seccompiler has no user-notification action: its `Trace(0)` returns
    // become `SECCOMP_RET_USER_NOTIF`.
    let mut bytes = Vec::with_capacity(prog.len() * 8);
    for ins in prog {
        let k = if ins.code == BPF_RET_K && ins.k == SECCOMP_RET_TRACE {
            SECCOMP_RET_USER_NOTIF
        } else {
            ins.k
        };
        bytes.extend_from_slice(&ins.code.to_le_bytes());
        bytes.push(ins.jt);
        bytes.push(ins.jf);
        bytes.extend_from_slice(&k.to_le_bytes());
    }
    Ok(bytes)
}

/// What a guest is made before it runs (the last step of its restore, by
/// [`mosaic_ckpt::Confine`]): a process group of its own (stop signals from
/// the terminal are discarded in an orphaned process group, and the
/// daemon's may be one), the node's unprivileged user and group without
/// supplementary groups, and mosaic's filter with a listener
/// (`SECCOMP_RET_USER_NOTIF`, installed with `NEW_LISTENER` and
/// `WAIT_KILLABLE_RECV`; the listener is left in the process as a
/// descriptor for the remote to take with `pidfd_getfd` and close there).
#[derive(Debug)]
pub(crate) struct Confinement {
    pub uid: u32,
    pub gid: u32,
    /// The filter (classic BPF, 8 bytes an instruction).
    pub filter: Vec<u8>,
}

impl mosaic_ckpt::Confine for Confinement {
    fn confine(&self, t: &mut Tracee, data: u64) -> Result<(), CkptError> {
        t.syscall_ok("setpgid", libc::SYS_setpgid, [0, 0, 0, 0, 0, 0])?;
        let (uid, gid) = (u64::from(self.uid), u64::from(self.gid));
        // The raw calls change the credentials of the thread that makes
        // them (glibc's wrappers signal every thread to do the same).
        let mut threads = std::mem::take(&mut t.threads);
        let dropped = std::iter::once(&mut *t)
            .chain(threads.iter_mut())
            .try_for_each(|th| {
                th.syscall_ok("setgroups", libc::SYS_setgroups, [0, 0, 0, 0, 0, 0])?;
                th.syscall_ok("setresgid", libc::SYS_setresgid, [gid, gid, gid, 0, 0, 0])?;
                th.syscall_ok("setresuid", libc::SYS_setresuid, [uid, uid, uid, 0, 0, 0])
                    .map(drop)
            });
        let several = !threads.is_empty();
        t.threads = threads;
        dropped?;
        install_seccomp(t, &self.filter, data, several)
    }
}

/// `struct sock_fprog`: the number of instructions and where they are.
#[derive(zerocopy::IntoBytes, zerocopy::Immutable)]
#[repr(C)]
struct SockFprog {
    len: u16,
    _pad: [u8; 6],
    filter: u64,
}

/// Installs `prog` in the stopped process with `no_new_privs`, through a
/// `struct sock_fprog` at `data` and the program after it; on
/// `all_threads`, on each of its threads.
fn install_seccomp(
    t: &mut Tracee,
    prog: &[u8],
    data: u64,
    all_threads: bool,
) -> Result<(), CkptError> {
    // SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
    let mut flags: u64 = 8 | 32;
    if all_threads {
        // SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_TSYNC_ESRCH: on
        // every thread (with no_new_privs), one listener for all; TSYNC
        // alone with NEW_LISTENER is EINVAL (threads study, probe c).
        flags |= 1 | 16;
    }
    let room = mosaic_ckpt::DATA_ROOM - 16;
    if !prog.len().is_multiple_of(8) || prog.is_empty() || prog.len() as u64 > room {
        return Err(CkptError::Restore(format!(
            "seccomp program of {} bytes does not fit",
            prog.len()
        )));
    }
    t.write_mem(data + 16, prog)?;
    let fprog = SockFprog {
        len: u16::try_from(prog.len() / 8).unwrap_or(u16::MAX),
        _pad: [0; 6],
        filter: data + 16,
    };
    t.write_mem(data, zerocopy::IntoBytes::as_bytes(&fprog))?;
    t.syscall_ok(
        "prctl(PR_SET_NO_NEW_PRIVS)",
        libc::SYS_prctl,
        [libc::PR_SET_NO_NEW_PRIVS as u64, 1, 0, 0, 0, 0],
    )?;
    t.syscall_ok(
        "seccomp(SET_MODE_FILTER)",
        libc::SYS_seccomp,
        [
            u64::from(libc::SECCOMP_SET_MODE_FILTER),
            flags,
            data,
            0,
            0,
            0,
        ],
    )?;
    Ok(())
}

/// A BPF `ret` of a constant (libc's BPF_RET | BPF_K, as the code field).
#[expect(
    clippy::cast_possible_truncation,
    reason = "BPF opcodes are 16 bits; libc types them u32"
)]
pub(crate) const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const SECCOMP_RET_TRACE: u32 = libc::SECCOMP_RET_TRACE;
pub(crate) const SECCOMP_RET_USER_NOTIF: u32 = libc::SECCOMP_RET_USER_NOTIF;

/// What the guest's filter `prog` returns for call `nr` with `args` (the
/// x86-64 audit arch): classic BPF run as the kernel runs a seccomp
/// program, for the instructions seccompiler emits. For tests and
/// [`crate::decide`]: the kernel runs the real thing.
pub fn verdict(prog: &[u8], nr: u32, args: &[u64; 6]) -> Result<u32, String> {
    // struct seccomp_data: nr, arch, instruction_pointer, args[6].
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&AUDIT_ARCH_X86_64.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + i * 8..24 + i * 8].copy_from_slice(&a.to_le_bytes());
    }
    let ins: Vec<(u16, u8, u8, u32)> = prog
        .chunks_exact(8)
        .map(|i| {
            (
                u16::from_le_bytes([i[0], i[1]]),
                i[2],
                i[3],
                u32::from_le_bytes([i[4], i[5], i[6], i[7]]),
            )
        })
        .collect();
    let (mut a, mut pc) = (0u32, 0usize);
    let code = |c: u32| u16::try_from(c).unwrap_or(u16::MAX);
    while let Some(&(op, jt, jf, k)) = ins.get(pc) {
        pc += 1;
        let jump = |taken: bool| usize::from(if taken { jt } else { jf });
        match op {
            o if o == code(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) => {
                let at = k as usize;
                let word = data
                    .get(at..at + 4)
                    .ok_or_else(|| format!("load beyond seccomp_data at {at}"))?;
                a = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            }
            o if o == code(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) => a &= k,
            o if o == code(libc::BPF_JMP | libc::BPF_JA) => pc += k as usize,
            o if o == code(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) => pc += jump(a == k),
            o if o == code(libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) => pc += jump(a > k),
            o if o == code(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) => pc += jump(a >= k),
            o if o == code(libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) => pc += jump(a & k != 0),
            o if o == BPF_RET_K => return Ok(k),
            other => return Err(format!("BPF instruction {other:#x} at {}", pc - 1)),
        }
    }
    Err("the program ran off its end".into())
}

/// `AUDIT_ARCH_X86_64` (linux/audit.h).
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sock_fprog_has_the_kernels_layout() {
        assert_eq!(size_of::<SockFprog>(), size_of::<libc::sock_fprog>());
        assert_eq!(
            std::mem::offset_of!(SockFprog, filter),
            std::mem::offset_of!(libc::sock_fprog, filter)
        );
    }

    #[test]
    fn the_filter_notifies_instead_of_tracing() {
        let prog = guest_filter().unwrap();
        let returns: Vec<u32> = prog
            .chunks_exact(8)
            .filter(|i| u16::from_le_bytes([i[0], i[1]]) == BPF_RET_K)
            .map(|i| u32::from_le_bytes([i[4], i[5], i[6], i[7]]))
            .collect();
        assert!(returns.contains(&SECCOMP_RET_USER_NOTIF));
        assert!(!returns.contains(&SECCOMP_RET_TRACE));
    }

    #[test]
    fn the_filter_reads_as_the_table_says() {
        let prog = guest_filter().unwrap();
        let run =
            |nr: i64, args: [u64; 6]| verdict(&prog, mosaic_proto::abi::nr(nr), &args).unwrap();
        let allow = libc::SECCOMP_RET_ALLOW;
        assert_eq!(run(libc::SYS_brk, [0; 6]), allow, "Local");
        assert_eq!(
            run(libc::SYS_read, [0; 6]),
            SECCOMP_RET_USER_NOTIF,
            "Forward"
        );
        assert_eq!(
            run(libc::SYS_fork, [0; 6]),
            SECCOMP_RET_USER_NOTIF,
            "BringHome"
        );
        let anon = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
        assert_eq!(run(libc::SYS_mmap, [0, 4096, 3, anon, u64::MAX, 0]), allow);
        let file = libc::MAP_PRIVATE as u64;
        assert_eq!(
            run(libc::SYS_mmap, [0, 4096, 1, file, 3, 0]),
            SECCOMP_RET_USER_NOTIF
        );
        let clock = |id: i32| {
            run(
                libc::SYS_clock_gettime,
                [u64::from(id.cast_unsigned()), 1, 0, 0, 0, 0],
            )
        };
        assert_eq!(clock(libc::CLOCK_MONOTONIC), allow);
        assert_eq!(
            clock(libc::CLOCK_PROCESS_CPUTIME_ID),
            SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(clock(libc::CLOCK_THREAD_CPUTIME_ID), SECCOMP_RET_USER_NOTIF);
        assert_eq!(clock(-6), SECCOMP_RET_USER_NOTIF, "a PID's clock");
    }
}
