//! CPU time, carried across kernels. A kernel counts the CPU time of the
//! tasks it runs; a process restored elsewhere is a new task there, whose
//! count starts at zero. So an image carries what the process had used
//! (`ImageMeta::cpu_counted`, read here at capture, plus
//! `cpu_elsewhere`, given by the capturer), and whoever serves the
//! restored process's own questions about its CPU time (`getrusage`,
//! `times`, the CPU-time clocks) answers with that plus what the new kernel
//! counted since the restore ([`Carried`]).
//!
//! Read from outside: the process's CPU clock (`clock_gettime` on
//! `MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)`, which any process may read,
//! in nanoseconds) split into user and system time in the proportion of
//! `/proc/PID/stat`'s tick counts, as the kernel's `cputime_adjust` splits
//! it for `getrusage`.

use crate::CkptError;
use mosaic_proto::image::CpuTime;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The CPU clock of process `pid` (linux/posix-timers.h:
/// `MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)`, `(~pid << 3) | 2`).
fn process_clock(pid: i32) -> libc::clockid_t {
    (!pid << 3) | 2
}

/// Nanoseconds of CPU time process `pid` has used so far, as this kernel
/// counted it (its CPU clock alone: no split, no `/proc` read).
pub fn counted_ns(pid: i32) -> Result<u64, CkptError> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`.
    if unsafe { libc::clock_gettime(process_clock(pid), &mut ts) } != 0 {
        return Err(CkptError::Gone(pid));
    }
    Ok(u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000
        + u64::try_from(ts.tv_nsec).unwrap_or(0))
}

/// The CPU time process `pid` has used so far, as this kernel counted it.
pub fn counted(pid: i32) -> Result<CpuTime, CkptError> {
    let ns = counted_ns(pid)?;
    let f = crate::procfs::stat_fields(pid)?;
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let (utime, stime) = (ticks(14), ticks(15));
    let user_ns = if utime + stime == 0 {
        ns
    } else {
        // In u128: ns * ticks overflows u64 after a few CPU-years.
        u64::try_from(u128::from(ns) * u128::from(utime) / u128::from(utime + stime)).unwrap_or(ns)
    };
    Ok(CpuTime {
        user_ns,
        sys_ns: ns - user_ns,
    })
}

/// `waitpid` that also says what CPU time a child that ended had used, as
/// this kernel counted it (wait4's rusage: the exit is the last moment its
/// count can be read, and `/proc` is gone by then). Zero for a stop or
/// nothing to report. (nix wraps waitpid, not wait4.)
pub fn wait_counting(
    pid: i32,
    flags: nix::sys::wait::WaitPidFlag,
) -> nix::Result<(nix::sys::wait::WaitStatus, CpuTime)> {
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of the plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 writes one int and one struct rusage, both ours.
    let r = unsafe { libc::wait4(pid, &mut status, flags.bits(), &mut ru) };
    let r = nix::errno::Errno::result(r)?;
    let tv = |t: libc::timeval| {
        u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000
            + u64::try_from(t.tv_usec).unwrap_or(0) * 1_000
    };
    let cpu = CpuTime {
        user_ns: tv(ru.ru_utime),
        sys_ns: tv(ru.ru_stime),
    };
    if r == 0 {
        return Ok((nix::sys::wait::WaitStatus::StillAlive, CpuTime::default()));
    }
    Ok((
        nix::sys::wait::WaitStatus::from_raw(nix::unistd::Pid::from_raw(r), status)?,
        cpu,
    ))
}

/// Counters of a process that `getrusage` reports besides its CPU time,
/// from `/proc/PID/stat` and `status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub maxrss_kb: u64,
    pub minflt: u64,
    pub majflt: u64,
    pub nvcsw: u64,
    pub nivcsw: u64,
}

/// What the kernel counted for `pid` besides CPU time.
pub fn usage(pid: i32) -> Result<Usage, CkptError> {
    let f = crate::procfs::stat_fields(pid)?;
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let status = |name: &str| -> u64 {
        crate::procfs::status_field(pid, name)
            .ok()
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Ok(Usage {
        maxrss_kb: status("VmHWM"),
        minflt: num(10),
        majflt: num(12),
        nvcsw: status("voluntary_ctxt_switches"),
        nivcsw: status("nonvoluntary_ctxt_switches"),
    })
}

/// The CPU time of a restored process, for answering its own questions:
/// what its image had used plus what this kernel counted since it was
/// restored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Carried {
    /// All of it, from the image.
    pub before: CpuTime,
    /// This kernel's count at the restore (the restore's own injections,
    /// which are not the process's).
    pub at_restore: CpuTime,
}

impl Carried {
    /// Starts carrying for `pid`, just restored from an image that had used
    /// `before`.
    pub fn start(pid: i32, before: CpuTime) -> Result<Carried, CkptError> {
        Ok(Carried {
            before,
            at_restore: counted(pid)?,
        })
    }

    /// All the CPU time the process has used, given this kernel's count.
    pub fn total(&self, counted: CpuTime) -> CpuTime {
        self.before.plus(counted.since(self.at_restore))
    }

    /// The same in nanoseconds, given this kernel's count in nanoseconds
    /// ([`counted_ns`]: what a CPU clock reads, without the split).
    pub fn total_ns(&self, counted_ns: u64) -> u64 {
        self.before
            .total_ns()
            .saturating_add(counted_ns.saturating_sub(self.at_restore.total_ns()))
    }

    /// What a capture of it must say it used elsewhere, so that the image's
    /// `cpu_counted + cpu_elsewhere` is [`Carried::total`].
    pub fn elsewhere(&self) -> CpuTime {
        self.before.since(self.at_restore)
    }
}

/// `struct timespec` of `ns` nanoseconds, as a 64-bit kernel writes it.
pub fn timespec_bytes(ns: u64) -> [u8; 16] {
    let mut b = [0; 16];
    b[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    b[8..].copy_from_slice(&(ns % 1_000_000_000).to_le_bytes());
    b
}

/// Size of `struct rusage` on x86-64.
pub const RUSAGE_SIZE: usize = size_of::<Rusage>();

/// `struct timeval`.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Timeval {
    sec: u64,
    usec: u64,
}

impl Timeval {
    fn of_ns(ns: u64) -> Timeval {
        Timeval {
            sec: ns / 1_000_000_000,
            usec: ns % 1_000_000_000 / 1000,
        }
    }
}

/// `struct rusage` (x86-64: two timevals and fourteen longs).
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Rusage {
    utime: Timeval,
    stime: Timeval,
    maxrss: u64,
    ixrss: u64,
    idrss: u64,
    isrss: u64,
    minflt: u64,
    majflt: u64,
    nswap: u64,
    inblock: u64,
    oublock: u64,
    msgsnd: u64,
    msgrcv: u64,
    nsignals: u64,
    nvcsw: u64,
    nivcsw: u64,
}

/// `struct tms` (clock ticks).
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Tms {
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
}

/// Rewrites a `struct rusage` that the home kernel filled for the process
/// (its part: the time it ran there) to the whole: CPU time `total`, and
/// the counters of `here` (the guest's kernel's) added (`ru_maxrss`: the
/// larger).
pub fn amend_rusage(raw: &mut [u8; RUSAGE_SIZE], total: CpuTime, here: Usage) {
    let Ok(mut ru) = Rusage::read_from_bytes(raw.as_slice()) else {
        return; // same size: cannot fail
    };
    ru.utime = Timeval::of_ns(total.user_ns);
    ru.stime = Timeval::of_ns(total.sys_ns);
    ru.maxrss = ru.maxrss.max(here.maxrss_kb);
    ru.minflt = ru.minflt.saturating_add(here.minflt);
    ru.majflt = ru.majflt.saturating_add(here.majflt);
    ru.nvcsw = ru.nvcsw.saturating_add(here.nvcsw);
    ru.nivcsw = ru.nivcsw.saturating_add(here.nivcsw);
    raw.copy_from_slice(ru.as_bytes());
}

/// Clock ticks (`sysconf(_SC_CLK_TCK)`, as `times` and `/proc/PID/stat`
/// count) in `ns` nanoseconds.
pub fn ticks(ns: u64) -> u64 {
    // SAFETY: sysconf takes an integer and returns one.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .unwrap_or(100)
        .max(1);
    u64::try_from(u128::from(ns) * u128::from(hz) / 1_000_000_000).unwrap_or(u64::MAX)
}

/// Rewrites the process's own times in a `struct tms` (clock ticks; its
/// children's, which home counted, stay).
pub fn amend_tms(raw: &mut [u8; size_of::<Tms>()], total: CpuTime) {
    let Ok(mut tms) = Tms::read_from_bytes(raw.as_slice()) else {
        return; // same size: cannot fail
    };
    tms.utime = ticks(total.user_ns);
    tms.stime = ticks(total.sys_ns);
    raw.copy_from_slice(tms.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burn(d: std::time::Duration) {
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < d {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
    }

    #[test]
    fn our_own_count_agrees_with_getrusage() {
        burn(std::time::Duration::from_millis(60));
        let me = mosaic_proto::abi::my_pid();
        let c = counted(me).unwrap();
        // SAFETY: an all-zero struct rusage is a valid one.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: getrusage fills one struct rusage.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        let us = |t: libc::timeval| (t.tv_sec * 1_000_000 + t.tv_usec).cast_unsigned();
        let ru_ns = (us(ru.ru_utime) + us(ru.ru_stime)) * 1000;
        assert!(c.total_ns() >= 50_000_000, "{c:?}");
        // Other test threads run meanwhile: within 50 ms.
        assert!(
            c.total_ns().abs_diff(ru_ns) < 50_000_000,
            "{c:?} vs {ru_ns}"
        );
    }

    #[test]
    fn carried_time_adds_what_this_kernel_counted_since() {
        let ms = |m: u64| CpuTime {
            user_ns: m * 1_000_000,
            sys_ns: 0,
        };
        let c = Carried {
            before: ms(3000),
            at_restore: ms(5),
        };
        assert_eq!(c.total(ms(5)), ms(3000));
        assert_eq!(c.total(ms(1005)), ms(4000));
        assert_eq!(c.total_ns(1_005_000_000), 4_000_000_000);
        // A capture then says: counted (1005) + elsewhere (2995) = 4000.
        assert_eq!(ms(1005).plus(c.elsewhere()), ms(4000));
    }

    #[test]
    fn the_kernel_structs_have_the_kernels_layout() {
        assert_eq!(size_of::<Rusage>(), size_of::<libc::rusage>());
        assert_eq!(
            std::mem::offset_of!(Rusage, nivcsw),
            std::mem::offset_of!(libc::rusage, ru_nivcsw)
        );
        assert_eq!(
            std::mem::offset_of!(Rusage, minflt),
            std::mem::offset_of!(libc::rusage, ru_minflt)
        );
        assert_eq!(size_of::<Tms>(), size_of::<libc::tms>());
    }

    #[test]
    fn rusage_and_tms_are_amended_in_place() {
        let mut ru = [0u8; RUSAGE_SIZE];
        ru[32..40].copy_from_slice(&5000u64.to_le_bytes()); // maxrss at home
        ru[64..72].copy_from_slice(&10u64.to_le_bytes()); // minflt at home
        let total = CpuTime {
            user_ns: 2_500_000_000,
            sys_ns: 1_250_000,
        };
        let here = Usage {
            maxrss_kb: 9000,
            minflt: 7,
            ..Default::default()
        };
        amend_rusage(&mut ru, total, here);
        let r = Rusage::read_from_bytes(ru.as_slice()).unwrap();
        assert_eq!((r.utime.sec, r.utime.usec), (2, 500_000));
        assert_eq!((r.stime.sec, r.stime.usec), (0, 1250));
        assert_eq!((r.maxrss, r.minflt), (9000, 17));
        let mut tms = [0u8; 32];
        tms[16..24].copy_from_slice(&42u64.to_le_bytes()); // children's
        amend_tms(&mut tms, total);
        let t = Tms::read_from_bytes(tms.as_slice()).unwrap();
        // SAFETY: as above.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.cast_unsigned();
        assert_eq!((t.utime, t.stime, t.cutime), (hz * 5 / 2, 0, 42));
    }
}
