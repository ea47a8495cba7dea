//! Timers of a process, capture and restore side by side: interval timers
//! (`setitimer`) and POSIX timers (`timer_create`).
//!
//! POSIX timers are kernel objects named by ids the program holds, so a
//! restored timer must get its old id: `prctl(PR_TIMER_CREATE_RESTORE_IDS)`
//! (Linux 6.16, made for CRIU) makes `timer_create` take the id written in
//! its third argument. What a timer is comes from `/proc/PID/timers` (id,
//! signal, value, notification, clock); how much of it is left from an
//! injected `timer_gettime`. Not carried: overruns counted but not yet
//! read (`timer_getoverrun` reads 0 after a move).

use crate::CkptError;
use crate::ptrace::Tracee;
use mosaic_proto::abi;
use mosaic_proto::image::{ImageMeta, PosixTimer};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `prctl` option and arguments (linux/prctl.h; libc 0.2 lacks them).
const PR_TIMER_CREATE_RESTORE_IDS: u64 = 77;
const RESTORE_IDS_OFF: u64 = 0;
const RESTORE_IDS_ON: u64 = 1;
/// `sigev_notify` values the kernel keeps (SIGEV_THREAD is glibc's, made
/// of SIGEV_THREAD_ID to a helper thread).
const SIGEV_SIGNAL: i32 = libc::SIGEV_SIGNAL;
const SIGEV_NONE: i32 = libc::SIGEV_NONE;
const SIGEV_THREAD_ID: i32 = libc::SIGEV_THREAD_ID;

const NS: u64 = 1_000_000_000;

/// `struct itimerspec` (timespecs) or `struct itimerval` (timevals):
/// the interval, then the value left, each as seconds and a fraction.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Default)]
#[repr(C)]
struct TimerSpec {
    interval_sec: u64,
    interval_frac: u64,
    value_sec: u64,
    value_frac: u64,
}

impl TimerSpec {
    /// From an interval and a value in units of `unit` a second.
    fn of(interval: u64, value: u64, unit: u64) -> TimerSpec {
        TimerSpec {
            interval_sec: interval / unit,
            interval_frac: interval % unit,
            value_sec: value / unit,
            value_frac: value % unit,
        }
    }

    /// (interval, value) in units of `unit` a second.
    fn in_units(&self, unit: u64) -> (u64, u64) {
        (
            self.interval_sec * unit + self.interval_frac,
            self.value_sec * unit + self.value_frac,
        )
    }
}

/// `struct sigevent` as the kernel reads it for `timer_create`.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct SigEvent {
    value: u64,
    signo: i32,
    notify: i32,
    tid: i32,
    _pad: [i32; 11],
}

const US: u64 = 1_000_000;

/// Armed interval timers: (which, interval µs, value µs).
pub(crate) fn capture_itimers(
    t: &mut Tracee,
    scratch: u64,
) -> Result<Vec<(i32, u64, u64)>, CkptError> {
    let mut itimers = Vec::new();
    for which in [libc::ITIMER_REAL, libc::ITIMER_VIRTUAL, libc::ITIMER_PROF] {
        t.syscall_ok(
            "getitimer",
            libc::SYS_getitimer,
            [abi::reg(which), scratch, 0, 0, 0, 0],
        )?;
        let (interval, value) = t.read_struct::<TimerSpec>(scratch)?.in_units(US);
        if value != 0 {
            itimers.push((which, interval, value));
        }
    }
    Ok(itimers)
}

pub(crate) fn restore_itimers(
    t: &mut Tracee,
    meta: &ImageMeta,
    data: u64,
) -> Result<(), CkptError> {
    for &(which, interval, value) in &meta.itimers {
        t.write_mem(data, TimerSpec::of(interval, value, US).as_bytes())?;
        t.syscall_ok(
            "setitimer",
            libc::SYS_setitimer,
            [abi::reg(which), data, 0, 0, 0, 0],
        )?;
    }
    Ok(())
}

/// The POSIX timers `/proc/PID/timers` lists, without their times.
pub fn posix_timers_of(pid: i32) -> Result<Vec<PosixTimer>, CkptError> {
    let path = format!("/proc/{pid}/timers");
    let text = std::fs::read_to_string(&path).map_err(|e| CkptError::Io(path.clone(), e))?;
    parse_timers(&text).ok_or(CkptError::Parse(path))
}

/// `ID: 3` / `signal: 10/00000000deadbeef` / `notify: signal/tid.42` /
/// `ClockID: 1`, one group a timer.
fn parse_timers(text: &str) -> Option<Vec<PosixTimer>> {
    let mut out: Vec<PosixTimer> = Vec::new();
    for line in text.lines() {
        let (key, value) = line.split_once(": ")?;
        if key == "ID" {
            out.push(PosixTimer {
                id: value.trim().parse().ok()?,
                ..Default::default()
            });
            continue;
        }
        let t = out.last_mut()?;
        match key {
            "signal" => {
                let (signo, sigval) = value.trim().split_once('/')?;
                t.signo = signo.parse().ok()?;
                t.sigval = u64::from_str_radix(sigval, 16).ok()?;
            }
            "notify" => {
                let (how, whom) = value.trim().split_once('/')?;
                let base = match how {
                    "signal" => SIGEV_SIGNAL,
                    "none" => SIGEV_NONE,
                    _ => return None,
                };
                // The thread's TID as this /proc names it; `capture_posix`
                // turns it into the process's own.
                if let Some(tid) = whom.strip_prefix("tid.") {
                    t.notify = base | SIGEV_THREAD_ID;
                    t.tid = tid.parse().ok()?;
                } else {
                    t.notify = base;
                }
            }
            "ClockID" => t.clock = value.trim().parse().ok()?,
            _ => {}
        }
    }
    Some(out)
}

/// Every POSIX timer of the stopped process, with what is left of it and
/// the thread it signals (its TID as the process names it, which its
/// restore gives that thread again).
pub(crate) fn capture_posix(t: &mut Tracee, scratch: u64) -> Result<Vec<PosixTimer>, CkptError> {
    let mut timers = posix_timers_of(t.pid.as_raw())?;
    for timer in &mut timers {
        if timer.notify & SIGEV_THREAD_ID != 0 {
            // 0: the kernel names no live thread (it ended); its signals
            // would go nowhere, and aimed at another thread they would be
            // wrong.
            let own = (timer.tid != 0)
                .then(|| crate::procfs::own_id(timer.tid).ok())
                .flatten();
            timer.tid = own.ok_or_else(|| CkptError::CantMove {
                pid: t.pid.as_raw(),
                reasons: vec![format!(
                    "its POSIX timer {} signals a thread that has ended",
                    timer.id
                )],
            })?;
        }
        t.syscall_ok(
            "timer_gettime",
            libc::SYS_timer_gettime,
            [abi::reg(timer.id), scratch, 0, 0, 0, 0],
        )?;
        (timer.interval_ns, timer.value_ns) = t.read_struct::<TimerSpec>(scratch)?.in_units(NS);
    }
    Ok(timers)
}

/// Creates the image's POSIX timers under their ids and arms them with
/// what was left of them, once every thread is there: a timer that
/// signalled one thread signals that thread again (by its TID, which the
/// restore kept; the main thread's in an image without it).
pub(crate) fn restore_posix(t: &mut Tracee, meta: &ImageMeta, data: u64) -> Result<(), CkptError> {
    if meta.posix_timers.is_empty() {
        return Ok(());
    }
    let on = t.syscall(
        libc::SYS_prctl,
        [PR_TIMER_CREATE_RESTORE_IDS, RESTORE_IDS_ON, 0, 0, 0, 0],
    )?;
    if on < 0 {
        return Err(CkptError::Restore(format!(
            "this kernel cannot give POSIX timers their ids back (PR_TIMER_CREATE_RESTORE_IDS: errno {}; Linux 6.16 or later has it)",
            -on
        )));
    }
    let created = create_all(t, meta, data);
    let off = t.syscall_ok(
        "prctl(PR_TIMER_CREATE_RESTORE_IDS, OFF)",
        libc::SYS_prctl,
        [PR_TIMER_CREATE_RESTORE_IDS, RESTORE_IDS_OFF, 0, 0, 0, 0],
    );
    created?;
    off?;
    for timer in &meta.posix_timers {
        if timer.value_ns == 0 {
            continue; // disarmed
        }
        let s = TimerSpec::of(timer.interval_ns, timer.value_ns, NS);
        t.write_mem(data, s.as_bytes())?;
        t.syscall_ok(
            "timer_settime",
            libc::SYS_timer_settime,
            [abi::reg(timer.id), 0, data, 0, 0, 0],
        )?;
    }
    Ok(())
}

fn create_all(t: &mut Tracee, meta: &ImageMeta, data: u64) -> Result<(), CkptError> {
    let main = crate::procfs::own_id(t.pid.as_raw())?;
    for timer in &meta.posix_timers {
        let sev = SigEvent {
            value: timer.sigval,
            signo: timer.signo,
            notify: timer.notify,
            tid: if timer.tid == 0 { main } else { timer.tid },
            _pad: [0; 11],
        };
        t.write_mem(data, sev.as_bytes())?;
        t.write_mem(data + 64, timer.id.as_bytes())?;
        t.syscall_ok(
            "timer_create",
            libc::SYS_timer_create,
            [abi::reg(timer.clock), data, data + 64, 0, 0, 0],
        )?;
        let id: i32 = t.read_struct(data + 64)?;
        if id != timer.id {
            return Err(CkptError::Restore(format!(
                "POSIX timer {} came back as {id}",
                timer.id
            )));
        }
    }
    Ok(())
}

/// Deletes the POSIX timers of a stopped process (a placeholder whose
/// timers travelled with its guest: they fire there, and a second tick
/// from home would be relayed too). Returns how many it deleted.
pub fn delete_posix(t: &mut Tracee) -> Result<usize, CkptError> {
    let timers = posix_timers_of(t.pid.as_raw())?;
    for timer in &timers {
        t.syscall_ok(
            "timer_delete",
            libc::SYS_timer_delete,
            [abi::reg(timer.id), 0, 0, 0, 0, 0],
        )?;
    }
    Ok(timers.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_timers_parse_into_their_notification_and_clock() {
        let text = "ID: 8\nsignal: 10/0000000000000000\nnotify: signal/pid.31956\nClockID: 1\n\
                    ID: 7\nsignal: 12/00007ffdeadbeef0\nnotify: signal/tid.31957\nClockID: 2\n\
                    ID: 3\nsignal: 0/0000000000000000\nnotify: none/pid.1\nClockID: 0\n";
        let t = parse_timers(text).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(
            (t[0].id, t[0].signo, t[0].notify, t[0].clock),
            (8, 10, SIGEV_SIGNAL, 1)
        );
        assert_eq!(
            (t[1].id, t[1].sigval, t[1].notify, t[1].tid),
            (7, 0x7ffd_eadb_eef0, SIGEV_THREAD_ID, 31957)
        );
        assert_eq!((t[2].notify, t[2].clock, t[0].tid), (SIGEV_NONE, 0, 0));
        assert_eq!(parse_timers(""), Some(vec![]));
        assert_eq!(parse_timers("signal: 1/0\n"), None, "a field before any ID");
        assert_eq!(parse_timers("ID: x\n"), None);
    }

    #[test]
    fn the_kernel_structs_have_the_kernels_layout() {
        assert_eq!(size_of::<TimerSpec>(), size_of::<libc::itimerspec>());
        assert_eq!(size_of::<TimerSpec>(), size_of::<libc::itimerval>());
        assert_eq!(
            std::mem::offset_of!(TimerSpec, value_sec),
            std::mem::offset_of!(libc::itimerspec, it_value)
        );
        assert_eq!(size_of::<SigEvent>(), size_of::<libc::sigevent>());
        assert_eq!(
            std::mem::offset_of!(SigEvent, notify),
            std::mem::offset_of!(libc::sigevent, sigev_notify)
        );
        let (i, v) = TimerSpec::of(2_500_000, 7, US).in_units(US);
        assert_eq!((i, v), (2_500_000, 7));
    }
}
