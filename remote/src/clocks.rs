//! Its CPU time: the CPU-time clocks, `getrusage` and `times` answered
//! with the total it used on every node (`mosaic_ckpt::cputime`).

use crate::RemoteError;
use crate::calls::forward;
use crate::session::{Guest, Notif};
use mosaic_ckpt::ptrace::Memory;
use mosaic_proto::abi;
use mosaic_proto::image::CpuTime;
use mosaic_proto::migrate::Link;
use mosaic_proto::syscalls::Class;
use mosaic_proto::syscalls::codec;
use mosaic_proto::syscalls::codec::errno::EFAULT;

/// The CPU time it used, wherever it ran: what it came with plus what this
/// kernel counted since.
pub(crate) fn cpu_now(g: &Guest) -> CpuTime {
    match mosaic_ckpt::cputime::counted(g.pid.as_raw()) {
        Ok(here) => g.cpu.total(here),
        Err(_) => g.cpu.before,
    }
}

/// `getrusage` and `times` answered at home count the time the process
/// ran there: its whole CPU time is written over theirs, and what this
/// kernel counted of faults and context switches is added.
pub(crate) fn own_cpu_time(g: &Guest, nr: u32, args: &[u64; 6]) {
    use mosaic_ckpt::cputime::{RUSAGE_SIZE, amend_rusage, amend_tms, usage};
    let at = match i64::from(nr) {
        // RUSAGE_SELF and RUSAGE_THREAD (one thread); RUSAGE_CHILDREN's
        // children ran at home.
        libc::SYS_getrusage if matches!(abi::int_arg(args[0]), 0 | 1) => args[1],
        libc::SYS_times if args[0] != 0 => args[0],
        _ => return,
    };
    let total = cpu_now(g);
    if i64::from(nr) == libc::SYS_getrusage {
        let mut ru = [0; RUSAGE_SIZE];
        if g.mem.read_mem(at, &mut ru).is_ok() {
            amend_rusage(&mut ru, total, usage(g.pid.as_raw()).unwrap_or_default());
            let _ = g.mem.write_mem(at, &ru);
        }
    } else {
        let mut tms = [0; 32];
        if g.mem.read_mem(at, &mut tms).is_ok() {
            amend_tms(&mut tms, total);
            let _ = g.mem.write_mem(at, &tms);
        }
    }
}

/// `clock_gettime` as forwarded, for CPU clocks of other processes (home
/// PIDs) and clocks of descriptors (home descriptors).
pub(crate) const CLOCK_AT_HOME: mosaic_proto::syscalls::Syscall = mosaic_proto::syscalls::Syscall {
    nr: abi::nr(libc::SYS_clock_gettime),
    name: "clock_gettime",
    class: Class::Forward,
    args: &[
        mosaic_proto::syscalls::Arg::Int,
        mosaic_proto::syscalls::Arg::OutStruct { size: 16 },
    ],
    note: "",
    gap: "",
};

/// `clock_gettime` of a CPU-time clock (the filter lets the others run
/// here). The process's own clocks (CLOCK_PROCESS/THREAD_CPUTIME_ID, or
/// its home PID's and TID's clockids) read the time it used wherever it
/// ran; other processes' clocks, named by home PIDs, and descriptor
/// clocks are read at home.
pub(crate) fn cpu_clock(g: &Guest, link: &mut dyn Link, n: &Notif) -> Result<(), RemoteError> {
    let [clock, tp, ..] = n.data.args;
    let clock = abi::int_arg(clock); // a clockid_t is an int
    // linux/posix-timers.h: pid in the bits above 3 (inverted), a thread
    // clock if bit 2, the kind in bits 0-1 (PROF 0, VIRT 1, SCHED 2, FD 3).
    let kind = clock & 3;
    let own = match clock {
        libc::CLOCK_PROCESS_CPUTIME_ID | libc::CLOCK_THREAD_CPUTIME_ID => true,
        c if c < 0 && kind != 3 => {
            let pid = !(c >> 3);
            pid == 0 || pid == g.home_pid
        }
        _ => false,
    };
    if !own {
        let ret = match codec::resolve(&CLOCK_AT_HOME, &n.data.args) {
            Ok(m) => forward(link, g, CLOCK_AT_HOME.nr, n.data.args, &m)?,
            Err(_) => EFAULT,
        };
        g.answer(n.id, ret);
        return Ok(());
    }
    // CPUCLOCK_VIRT counts user time only (the split reads /proc); the
    // others are the CPU clock itself.
    let ns = if clock < 0 && kind == 1 {
        cpu_now(g).user_ns
    } else {
        match mosaic_ckpt::cputime::counted_ns(g.pid.as_raw()) {
            Ok(here) => g.cpu.total_ns(here),
            Err(_) => g.cpu.before.total_ns(),
        }
    };
    let ret = match g
        .mem
        .write_mem(tp, &mosaic_ckpt::cputime::timespec_bytes(ns))
    {
        Ok(()) => 0,
        Err(_) => EFAULT,
    };
    g.answer(n.id, ret);
    Ok(())
}
