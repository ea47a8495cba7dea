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
use mosaic_proto::image::{ImageMeta, PosixTimer};

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

/// `struct itimerspec` or `struct itimerval` words.
fn words<const N: usize>(raw: &[u8; 32]) -> [u64; N] {
    let mut w = [0u64; N];
    for (i, v) in w.iter_mut().enumerate() {
        *v = u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    }
    w
}

fn spec(words: [u64; 4]) -> [u8; 32] {
    let mut s = [0u8; 32];
    for (i, w) in words.iter().enumerate() {
        s[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    s
}

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
            [which as u64, scratch, 0, 0, 0, 0],
        )?;
        let mut raw = [0u8; 32];
        t.read_mem(scratch, &mut raw)?;
        let [is, ius, vs, vus] = words::<4>(&raw);
        let (interval, value) = (is * 1_000_000 + ius, vs * 1_000_000 + vus);
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
        let s = spec([
            interval / 1_000_000,
            interval % 1_000_000,
            value / 1_000_000,
            value % 1_000_000,
        ]);
        t.write_mem(data, &s)?;
        t.syscall_ok(
            "setitimer",
            libc::SYS_setitimer,
            [which as u64, data, 0, 0, 0, 0],
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
                t.notify = base
                    | if whom.starts_with("tid.") {
                        SIGEV_THREAD_ID
                    } else {
                        0
                    };
            }
            "ClockID" => t.clock = value.trim().parse().ok()?,
            _ => {}
        }
    }
    Some(out)
}

/// Every POSIX timer of the stopped process, with what is left of it.
pub(crate) fn capture_posix(t: &mut Tracee, scratch: u64) -> Result<Vec<PosixTimer>, CkptError> {
    let mut timers = posix_timers_of(t.pid.as_raw())?;
    for timer in &mut timers {
        t.syscall_ok(
            "timer_gettime",
            libc::SYS_timer_gettime,
            [timer.id as u64, scratch, 0, 0, 0, 0],
        )?;
        let mut raw = [0u8; 32];
        t.read_mem(scratch, &mut raw)?;
        let [is, ins, vs, vns] = words::<4>(&raw);
        timer.interval_ns = is * NS + ins;
        timer.value_ns = vs * NS + vns;
    }
    Ok(timers)
}

/// Creates the image's POSIX timers under their ids and arms them with
/// what was left of them. A timer that signalled its thread signals the
/// restored process (single-threaded: its thread is itself).
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
        let s = spec([
            timer.interval_ns / NS,
            timer.interval_ns % NS,
            timer.value_ns / NS,
            timer.value_ns % NS,
        ]);
        t.write_mem(data, &s)?;
        t.syscall_ok(
            "timer_settime",
            libc::SYS_timer_settime,
            [timer.id as u64, 0, data, 0, 0, 0],
        )?;
    }
    Ok(())
}

fn create_all(t: &mut Tracee, meta: &ImageMeta, data: u64) -> Result<(), CkptError> {
    let tid = t.pid.as_raw();
    for timer in &meta.posix_timers {
        // struct sigevent: sigev_value, sigev_signo, sigev_notify, _tid, padding to 64.
        let mut sev = [0u8; 64];
        sev[0..8].copy_from_slice(&timer.sigval.to_le_bytes());
        sev[8..12].copy_from_slice(&timer.signo.to_le_bytes());
        sev[12..16].copy_from_slice(&timer.notify.to_le_bytes());
        sev[16..20].copy_from_slice(&tid.to_le_bytes());
        t.write_mem(data, &sev)?;
        t.write_mem(data + 64, &timer.id.to_le_bytes())?;
        t.syscall_ok(
            "timer_create",
            libc::SYS_timer_create,
            [timer.clock as u64, data, data + 64, 0, 0, 0],
        )?;
        let mut id = [0u8; 4];
        t.read_mem(data + 64, &mut id)?;
        if i32::from_le_bytes(id) != timer.id {
            return Err(CkptError::Restore(format!(
                "POSIX timer {} came back as {}",
                timer.id,
                i32::from_le_bytes(id)
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
            [timer.id as u64, 0, 0, 0, 0, 0],
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
                    ID: 7\nsignal: 12/00007ffdeadbeef0\nnotify: signal/tid.31956\nClockID: 2\n\
                    ID: 3\nsignal: 0/0000000000000000\nnotify: none/pid.1\nClockID: 0\n";
        let t = parse_timers(text).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(
            (t[0].id, t[0].signo, t[0].notify, t[0].clock),
            (8, 10, SIGEV_SIGNAL, 1)
        );
        assert_eq!(
            (t[1].id, t[1].sigval, t[1].notify),
            (7, 0x7ffd_eadb_eef0, SIGEV_THREAD_ID)
        );
        assert_eq!((t[2].notify, t[2].clock), (SIGEV_NONE, 0));
        assert_eq!(parse_timers(""), Some(vec![]));
        assert_eq!(parse_timers("signal: 1/0\n"), None, "a field before any ID");
        assert_eq!(parse_timers("ID: x\n"), None);
    }
}
