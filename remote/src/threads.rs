//! Threads born and ended while the guest is here.
//!
//! Every guest thread has its placeholder thread at home, which makes its
//! calls and has its TID. So a thread the guest creates is made at home
//! first: its `clone` goes home as a bare call of the creating thread (no
//! buffers: home makes a thread of its own kind in the placeholder, not
//! the one the guest asked for, see the deputy's `threads`), which
//! answers the new placeholder thread's TID T. The namespace's init then
//! sets `ns_last_pid` to T - 1 and the guest's `clone` is let through:
//! its own kernel makes the thread as asked and gives it T, which it
//! writes wherever the guest asked (glibc's `struct pthread`). Clones are
//! served one at a time, and each waits until its thread is seen with T,
//! so the next one's hint cannot be taken by this one. A thread's `exit`
//! also goes home first (its placeholder thread ends), then is let
//! through. A single-threaded guest's first thread is born so too: its
//! clone tells home's session to serve threads from then on. Anything
//! else (a fork, a thread with its own files, a `set_tid`) brings the
//! process home, as before.

use std::time::{Duration, Instant};

use crate::calls::Route;
use crate::session::{Guest, Notif};
use mosaic_ckpt::ptrace::Memory;
use tracing::warn;

/// The flags a thread must have to be born here: one memory, one signal
/// table, one thread group, one file table, one file-system context.
const THREAD: u64 = (libc::CLONE_VM
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_FILES
    | libc::CLONE_FS) as u64;

/// And what it may have besides (what glibc, Go and the like use); a flag
/// outside (a namespace, a vfork, a pidfd, a cgroup) brings it home.
const ALSO: u64 = (libc::CLONE_SYSVSEM
    | libc::CLONE_SETTLS
    | libc::CLONE_PARENT_SETTID
    | libc::CLONE_CHILD_SETTID
    | libc::CLONE_CHILD_CLEARTID
    | libc::CLONE_DETACHED
    | libc::CLONE_UNTRACED) as u64;

/// How long a thread let through may take to show up with its TID.
const SEEN_WITHIN: Duration = Duration::from_millis(200);

/// Whether notification `n` is a thread's birth or end (answered by
/// [`finish`], not by the codec).
pub(crate) fn is_thread_call(n: &Notif) -> bool {
    matches!(
        i64::from(n.data.nr),
        libc::SYS_clone | libc::SYS_clone3 | libc::SYS_exit
    )
}

/// `clone` or `clone3`: a thread born here, or the process goes home.
pub(crate) fn route_clone(g: &Guest, n: &Notif) -> Route {
    let flags = if i64::from(n.data.nr) == libc::SYS_clone {
        // The low byte is the signal for the parent, 0 for a thread.
        n.data.args[0] & !0xff
    } else {
        // struct clone_args: flags at 0, exit_signal at 32, set_tid_size
        // at 72, read only as far as the guest says it is long.
        let mut args = [0u8; 80];
        let size = usize::try_from(n.data.args[1]).unwrap_or(0).min(args.len());
        if size < 64 || g.mem.read_mem(n.data.args[0], &mut args[..size]).is_err() {
            return Route::Home("clone3 (its arguments could not be read)");
        }
        let word = |at: usize| u64::from_le_bytes(args[at..at + 8].try_into().unwrap_or([0; 8]));
        if word(72) != 0 {
            return Route::Home("clone3 with set_tid");
        }
        // A signal for the parent means a process, not a thread.
        if word(32) != 0 {
            return Route::Home("clone3 of a process (a fork)");
        }
        word(0)
    };
    if flags & THREAD != THREAD || flags & !(THREAD | ALSO) != 0 {
        return Route::Home("clone of a process (a fork), or of a thread that shares less");
    }
    if g.ns.is_none() {
        return Route::Home("clone of a thread (no hold on the guest's namespace)");
    }
    // A single-threaded guest's first: home's session, seeing a clone,
    // serves threads from then on (its router and workers), as it does a
    // guest that came with threads.
    g.threaded.set(true);
    Route::Thread
}

/// `exit`: a thread's end, told home first; the main thread's while
/// others run (its placeholder thread leads the process at home) brings
/// the process home, and the last thread's is the process's end.
pub(crate) fn route_exit(g: &Guest, n: &Notif) -> Route {
    let only = mosaic_ckpt::procfs::tids(g.pid.as_raw()).is_ok_and(|t| t.len() == 1);
    if only || !g.threaded.get() {
        return Route::LetThrough;
    }
    if g.home_tid(n.pid) == g.home_pid {
        return Route::Home("the main thread's exit while other threads run");
    }
    Route::ThreadEnd
}

/// Home's answer to a thread's birth or end: the guest's call let
/// through, or, where home could not, the process goes home with it.
pub(crate) fn finish(g: &Guest, n: &Notif, ret: i64) {
    if i64::from(n.data.nr) == libc::SYS_exit {
        if ret == 0 {
            g.tids.borrow_mut().remove(&n.pid);
            g.let_through(n.id);
        } else {
            g.home_with
                .set(Some((*n, "a thread's end its home could not make")));
        }
        return;
    }
    match i32::try_from(ret) {
        Ok(tid) if tid > 1 => born(g, n, tid),
        _ => {
            g.warn(|held| {
                warn!(
                    errno = -ret,
                    held, "home could not make a placeholder thread; the process goes home"
                )
            });
            g.home_with.set(Some((
                *n,
                "a thread its home could not make a placeholder for",
            )));
        }
    }
}

/// Lets the guest's clone make its thread with TID `tid` (its
/// placeholder thread's), and waits until it is seen so.
fn born(g: &Guest, n: &Notif, tid: i32) {
    let Some(ns) = &g.ns else {
        g.home_with
            .set(Some((*n, "a thread (no hold on the guest's namespace)")));
        return;
    };
    if let Err(e) = ns.set_last_pid(tid - 1) {
        warn!(error = %e, "could not set the guest's next TID; the process goes home");
        g.home_with
            .set(Some((*n, "a thread whose TID could not be given")));
        return;
    }
    g.let_through(n.id);
    let start = Instant::now();
    let mut others = Vec::new();
    loop {
        let tids = mosaic_ckpt::procfs::tids(g.pid.as_raw()).unwrap_or_default();
        for outer in tids {
            let Ok(here) = u32::try_from(outer) else {
                continue;
            };
            if outer == g.pid.as_raw() || g.tids.borrow().contains_key(&here) {
                continue;
            }
            // Each thread's own TID, read once (the map is filled as its
            // threads call, and here).
            if let Ok(own) = mosaic_ckpt::procfs::own_id(outer) {
                g.tids.borrow_mut().insert(here, own);
                if own == tid {
                    return;
                }
                others.push(own);
            }
        }
        if start.elapsed() > SEEN_WITHIN {
            // Not born (a limit of this node's failed it: the guest saw
            // its error), or born under another TID (the kernel took the
            // hint for something else), which home has no placeholder
            // thread for: either way the process goes home, where its
            // threads are made again by their TIDs.
            warn!(
                tid,
                ?others,
                "a thread let through was not seen with its home TID; the process goes home"
            );
            g.asked.set(true);
            return;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}
