//! mosh's `time` and `times` count what its children used on other nodes.
//!
//! A parent's kernel adds a child's CPU time to `RUSAGE_CHILDREN` when the
//! child is reaped, and for a child that ran elsewhere those counters are
//! its placeholder's (a 3 s job that moved shows 0.2 s). The daemon keeps
//! what the shell's ended descendants used away from home
//! (`ControlRequest::ChildrenCpu`); this adds it.
//!
//! brush reads children's time through libc's `getrusage` in both places
//! (the `time` keyword's stopwatch and the `times` builtin) and offers no
//! hook for it, so mosh defines `getrusage` itself: the binary's own
//! definition is the one its code links to (libc's stays for every
//! library loaded at run time). That is one function where a patch
//! carried to brush would be two, and it keeps brush as published. This
//! module belongs to the binary, not the library: a library's object is
//! linked only when something else pulls it in, so a definition there
//! could silently lose to libc's.

use std::ffi::c_int;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use mosaic_client::Client;
use mosaic_proto::image::CpuTime;
use mosaic_proto::ratelimit::Every;
use mosaic_shell::session;

/// `getrusage(2)`, answered by the kernel, with what the shell's children
/// used elsewhere added to `RUSAGE_CHILDREN`.
///
/// # Safety
/// As libc's: `usage` points to a `struct rusage` the caller owns.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getrusage(who: c_int, usage: *mut libc::rusage) -> c_int {
    // SAFETY: the system call writes one struct rusage at `usage`, which
    // the caller vouches for; on failure it returns -1 with errno set, as
    // libc's getrusage does.
    let r = unsafe { libc::syscall(libc::SYS_getrusage, who, usage) };
    if r != 0 || who != libc::RUSAGE_CHILDREN || usage.is_null() {
        return mosaic_proto::abi::int_result(r);
    }
    let more = elsewhere();
    // SAFETY: the kernel has just filled it; nothing else refers to it
    // during this call.
    let ru = unsafe { &mut *usage };
    add(&mut ru.ru_utime, more.user_ns);
    add(&mut ru.ru_stime, more.sys_ns);
    0
}

fn add(tv: &mut libc::timeval, ns: u64) {
    let us = u64::try_from(tv.tv_usec).unwrap_or(0) + ns / 1_000;
    tv.tv_sec += i64::try_from(us / 1_000_000).unwrap_or(0);
    tv.tv_usec = i64::try_from(us % 1_000_000).unwrap_or(0);
}

/// What this shell's ended descendants used on other nodes, from the
/// daemon; nothing (and a line on stderr, at most one a minute) if it
/// cannot be asked.
fn elsewhere() -> CpuTime {
    let Some(s) = session::get() else {
        return CpuTime::default();
    };
    let asked = Client::connect(&s.socket).and_then(|mut c| {
        c.set_timeout(Duration::from_secs(2))?;
        c.children_cpu(mosaic_proto::abi::my_pid())
    });
    match asked {
        Ok(cpu) => cpu,
        Err(e) => {
            static NOISY: OnceLock<Mutex<Every>> = OnceLock::new();
            let noisy = NOISY.get_or_init(|| Mutex::new(Every::new(Duration::from_secs(60))));
            if noisy
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .allow()
                .is_some()
            {
                eprintln!(
                    "mosh: times of jobs that ran on other nodes are missing (asking {}'s daemon: {e})",
                    s.node
                );
            }
            CpuTime::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanoseconds_carry_into_seconds() {
        let mut tv = libc::timeval {
            tv_sec: 1,
            tv_usec: 900_000,
        };
        add(&mut tv, 2_300_000_000);
        assert_eq!((tv.tv_sec, tv.tv_usec), (4, 200_000));
    }
}
