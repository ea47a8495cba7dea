//! A multi-threaded placeholder: each thread's forwarded calls are made in
//! that thread, by an OS thread of ours that traces it and nothing else.
//!
//! ptrace requests come from the tracing thread, and a call that blocks
//! at home (a `read` of a terminal) holds its tracer: so the session
//! thread keeps the main placeholder thread (signals, job control, exit,
//! coming home, and the main thread's calls, as for a single-threaded
//! process), and every other thread is parked ([`Tracee::park`]) and
//! seized by a worker of its own. One router thread reads the link: the
//! calls of the other threads go to their workers, everything else to the
//! session, which reads it through a [`Link`] of its own
//! ([`ChannelLink`]), so the session's code is the same with one thread or
//! many. Whoever has something to say sends it on the shared link.

use std::collections::HashMap;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::calls::{Caller, Gate, cancel_bit};
use crate::scratch::Scratch;
use mosaic_ckpt::ptrace::Tracee;
use mosaic_proto::migrate::{
    Buf, HomeMsg, Link, LinkError, LinkRecv, LinkSend, LinkSendExt, RemoteMsg, decode, encode,
    join_parts, result_messages, split,
};
use mosaic_proto::ratelimit::Every;
use mosaic_proto::syscalls::codec;
use mosaic_proto::syscalls::codec::errno::EINTR;
use nix::unistd::Pid;
use tracing::warn;

/// The link's sending half, shared by whoever sends (the router has the
/// receiving half to itself: a receive never waits for a send).
/// Fair: a frame sent under it is let go with `unlock_fair`
/// ([`send_fair`]), so a thread waiting to send a small result goes
/// before the next piece of a large one (std's lock lets the sender
/// barge in again).
pub(crate) type Shared<'a> = parking_lot::Mutex<Box<dyn LinkSend + 'a>>;

fn lock<'a, 'b>(link: &'a Shared<'b>) -> parking_lot::MutexGuard<'a, Box<dyn LinkSend + 'b>> {
    link.lock()
}

/// Sends `frame` and hands the link to the next waiting sender.
fn send_fair(link: &Shared<'_>, frame: &[u8]) -> Result<(), LinkError> {
    let mut l = lock(link);
    let sent = l.send_bytes(frame);
    parking_lot::MutexGuard::unlock_fair(l);
    sent
}

/// What a worker is asked.
pub(crate) enum Job {
    /// One call.
    Call {
        nr: u32,
        args: [u64; 6],
        inbufs: Vec<Buf>,
    },
    /// Park the thread again and end, saying its TID (the session takes
    /// the threads back to restore the process into them).
    HandBack(Sender<Option<Pid>>),
    /// Join the group-stop the main thread entered ([`join_group_stop`]).
    Stop,
}

/// Every worker's thread joins the group-stop the session's main thread
/// entered with its guest: only then is the stop whole and the parent (a
/// shell) told, as it is of a native threaded job's Ctrl-Z.
pub(crate) fn stop_all(crew: &Crew) {
    for w in crew.lock().unwrap_or_else(|e| e.into_inner()).values() {
        let _ = w.jobs.send(Job::Stop);
    }
}

/// Placeholder thread `tid`, held by us in a ptrace stop, joins the
/// process's group-stop. A traced thread held so is never woken to take
/// part (the kernel wakes a seized one only from a listening stop or a
/// sleep), so the stop would never be whole and the parent never told.
/// Resumed, it takes part at once, on its way back to `pause()` (every
/// signal blocked), and stops in PTRACE_EVENT_STOP, where it listens
/// (PTRACE_LISTEN), as the main thread does. True if it listens; false if
/// no stop was pending any more (a SIGCONT came first): it is then
/// interrupted back into a ptrace stop.
fn join_group_stop(tid: Pid) -> bool {
    use nix::sys::ptrace;
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    if ptrace::cont(tid, None).is_err() {
        return false;
    }
    let start = std::time::Instant::now();
    loop {
        match waitpid(tid, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
            Ok(WaitStatus::PtraceEvent(_, sig, libc::PTRACE_EVENT_STOP)) => {
                if mosaic_ckpt::ptrace::job_control_stop(sig).is_none() {
                    return false; // an interrupt's stop: held as before
                }
                // SAFETY: PTRACE_LISTEN takes no pointers.
                return unsafe { libc::ptrace(libc::PTRACE_LISTEN, tid.as_raw(), 0, 0) } == 0;
            }
            // A signal it does not block (a late cancel): dropped.
            Ok(WaitStatus::Stopped(..)) => {
                if ptrace::cont(tid, None).is_err() {
                    return false;
                }
            }
            Ok(WaitStatus::StillAlive) if start.elapsed() < Duration::from_millis(200) => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(WaitStatus::StillAlive) => {
                // Back in pause(): no stop for it to join.
                hold(tid);
                return false;
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

/// Placeholder thread `tid`, running (in `pause()`) or listening, back
/// into a ptrace stop where injections work.
fn hold(tid: Pid) {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    if nix::sys::ptrace::interrupt(tid).is_err() {
        return;
    }
    loop {
        match waitpid(tid, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::PtraceEvent(..)) => return,
            Ok(WaitStatus::Stopped(..)) => {
                if nix::sys::ptrace::cont(tid, None).is_err() {
                    return;
                }
            }
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// What a worker's thread leaves unblocked (it blocks every other signal:
/// those for the guest are met by the main thread, or relayed from the
/// thread's own queue): the cancel, and the terminal's stop signals. The
/// kernel answers a terminal read (write, with `tostop`) of a background
/// job SIGTTIN (SIGTTOU) to its process group and a restart, but EIO to a
/// thread that blocks the signal: blocked, a guest thread's read of the
/// terminal after `bg` failed where natively the job stops ("Stopped (tty
/// input)"). Unblocked, the signal meets the thread in its call and goes
/// to the guest with the call's restart, and the guest stops as it would
/// at home. (A guest thread that blocks them itself still sees them
/// unblocked here: masks are not mirrored per thread yet.)
fn calls_unblock() -> u64 {
    let bit = |s: i32| 1u64 << (s - 1);
    cancel_bit() | bit(libc::SIGTTIN) | bit(libc::SIGTTOU)
}

/// A worker, as the router and the session reach it.
pub(crate) struct Worker {
    jobs: Sender<Job>,
    gate: Arc<Gate>,
}

/// The workers by their threads' TIDs.
pub(crate) type Crew = Arc<Mutex<HashMap<i32, Worker>>>;

/// A placeholder thread made for a thread the guest created (parked, see
/// `Caller::birth`), to get a worker; `ack` once it has one, before its
/// TID goes to the remote, so the router knows it by its first call.
pub(crate) struct Birth {
    pub(crate) tid: Pid,
    pub(crate) ack: Sender<()>,
}

/// Takes every thread back from its worker, parked, and seizes it here:
/// the threads, traced by the calling thread. A worker that cannot hand
/// its thread back is left out (said).
pub(crate) fn hand_back(crew: &Crew, insn: u64) -> Vec<Tracee> {
    let workers: Vec<(i32, Worker)> = crew
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .collect();
    let mut threads = Vec::new();
    for (tid, w) in workers {
        let (tx, rx) = channel();
        let parked = w
            .jobs
            .send(Job::HandBack(tx))
            .ok()
            .and_then(|()| rx.recv_timeout(Duration::from_secs(10)).ok().flatten());
        match parked.map(Tracee::seize) {
            Some(Ok(mut t)) => {
                t.set_syscall_insn(insn);
                threads.push(t);
            }
            Some(Err(e)) => warn!(tid, error = %e, "could not take a placeholder thread back"),
            None => warn!(tid, "a worker did not hand its placeholder thread back"),
        }
    }
    threads
}

/// The session's view of the link while a router reads it: frames the
/// router passes on, sent on the shared link.
pub(crate) struct ChannelLink<'a, 'b> {
    frames: Receiver<Vec<u8>>,
    next: Option<Vec<u8>>,
    link: &'a Shared<'b>,
    stall: Option<Duration>,
}

impl Link for ChannelLink<'_, '_> {
    fn send_bytes(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        send_fair(self.link, frame)
    }
    fn recv_bytes(&mut self) -> Result<Vec<u8>, LinkError> {
        if let Some(f) = self.next.take() {
            return Ok(f);
        }
        match self.stall {
            None => self.frames.recv().map_err(|_| LinkError::Closed),
            Some(stall) => self.frames.recv_timeout(stall).map_err(|e| match e {
                RecvTimeoutError::Timeout => LinkError::Stalled(stall),
                RecvTimeoutError::Disconnected => LinkError::Closed,
            }),
        }
    }
    fn readable(&mut self, timeout: Duration) -> Result<bool, LinkError> {
        if self.next.is_none() {
            match self.frames.recv_timeout(timeout) {
                Ok(f) => self.next = Some(f),
                Err(RecvTimeoutError::Timeout) => return Ok(false),
                // Said by the next receive.
                Err(RecvTimeoutError::Disconnected) => return Ok(true),
            }
        }
        Ok(true)
    }
    fn set_stall_timeout(&mut self, stall: Option<Duration>) -> Result<(), LinkError> {
        self.stall = stall;
        Ok(())
    }
}

/// Hands the process's other threads (stopped under us, the memory
/// released) over to workers, serves the session over a router, and ends
/// them with it. `serve` is the session's serving, given its link.
pub(crate) fn with_workers<R>(
    threads: Vec<Tracee>,
    insn: u64,
    main: (Pid, Arc<Gate>),
    workers: &Crew,
    link: &mut dyn Link,
    serve: impl FnOnce(&mut dyn Link, Sender<Birth>) -> R,
) -> R {
    let raw_fd = link.raw_fd();
    let (receiving, sending) = split(link);
    let shared: Shared<'_> = parking_lot::Mutex::new(sending);
    let stop = AtomicBool::new(false);
    let (births, born) = channel::<Birth>();
    std::thread::scope(|s| {
        let (shared, stop) = (&shared, &stop);
        for mut th in threads {
            th.set_syscall_insn(insn);
            let tid = th.pid;
            match th.park() {
                Ok(tid) => start(s, tid, insn, workers, shared, &births),
                Err(e) => {
                    warn!(tid = tid.as_raw(), error = %e, "could not hand a placeholder thread to a worker; its calls fail")
                }
            }
        }
        // Threads made while serving get their workers here (a scoped
        // thread's own spawns must come from the scope).
        let more = births.clone();
        s.spawn(move || {
            loop {
                match born.recv_timeout(Duration::from_millis(10)) {
                    Ok(b) => {
                        start(s, b.tid, insn, workers, shared, &more);
                        let _ = b.ack.send(());
                    }
                    Err(RecvTimeoutError::Timeout) if !stop.load(Ordering::Relaxed) => {}
                    Err(_) => return,
                }
            }
        });
        let (frames, from_router) = channel();
        s.spawn(move || route(raw_fd, receiving, stop, frames, main, workers));
        let mut own = ChannelLink {
            frames: from_router,
            next: None,
            link: shared,
            stall: None,
        };
        let served = serve(&mut own, births);
        stop.store(true, Ordering::Relaxed);
        served
    })
}

/// Gives parked placeholder thread `tid` a worker of its own, known to
/// the router before this returns.
fn start<'scope, 'env, 'l>(
    s: &'scope std::thread::Scope<'scope, 'env>,
    tid: Pid,
    insn: u64,
    workers: &'scope Crew,
    shared: &'scope Shared<'l>,
    births: &Sender<Birth>,
) where
    'l: 'scope,
{
    let (tx, rx) = channel();
    let gate = Arc::new(Gate::default());
    workers.lock().unwrap_or_else(|e| e.into_inner()).insert(
        tid.as_raw(),
        Worker {
            jobs: tx,
            gate: gate.clone(),
        },
    );
    let births = births.clone();
    s.spawn(move || work(tid, insn, &rx, &gate, shared, workers, &births));
}

/// Reads the link: a call of a thread with a worker goes to it, all else
/// to the session. Ends when told, or with the link (the session then
/// reads the end).
fn route(
    raw_fd: Option<i32>,
    mut link: Box<dyn LinkRecv + '_>,
    stop: &AtomicBool,
    session: Sender<Vec<u8>>,
    main: (Pid, Arc<Gate>),
    workers: &Crew,
) {
    let pid = main.0;
    let _ = mosaic_ckpt::sched::short_slice();
    const EVERY: Duration = Duration::from_millis(10);
    // The pieces of the large call come so far, and its thread (the
    // remote sends one call in pieces at a time: no more than one call's
    // buffers, `MAX_CALL`, are ever held).
    let mut parts: Option<(i32, Vec<Buf>)> = None;
    while !stop.load(Ordering::Relaxed) {
        let ready = match raw_fd {
            Some(fd) => {
                // SAFETY: the link's descriptor lives as long as the link,
                // which outlives this thread (scoped).
                let fd = unsafe { BorrowedFd::borrow_raw(fd) };
                let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
                matches!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10u16)), Ok(n) if n > 0)
            }
            None => {
                let r = link.readable(Duration::ZERO);
                if matches!(r, Ok(false)) {
                    std::thread::sleep(EVERY);
                }
                !matches!(r, Ok(false))
            }
        };
        if !ready {
            continue;
        }
        let mut frame = match link.recv_bytes() {
            Ok(f) => f,
            Err(_) => return, // the session sees the link closed
        };
        match decode::<RemoteMsg>(&frame) {
            Ok(RemoteMsg::SyscallPart { tid, inbufs }) => {
                let (of, joined) = parts.get_or_insert_with(|| (tid, Vec::new()));
                let joined = if *of == tid {
                    join_parts(joined, inbufs, codec::MAX_CALL)
                } else {
                    Err(LinkError::Malformed(format!(
                        "a piece of thread {tid}'s call while another call's pieces come"
                    )))
                };
                if let Err(e) = joined {
                    // As a malformed message: the session ends.
                    warn!(pid = pid.as_raw(), error = %e, "a guest's call in pieces is malformed; ending the session");
                    return;
                }
                continue;
            }
            Ok(RemoteMsg::Syscall {
                tid,
                nr,
                args,
                inbufs,
            }) => {
                // A large call's pieces came first: its in-buffers.
                let (inbufs, pieced) = match parts.take_if(|(of, _)| *of == tid) {
                    None => (inbufs, false),
                    Some((_, mut joined)) => {
                        if let Err(e) = join_parts(&mut joined, inbufs, codec::MAX_CALL) {
                            warn!(pid = pid.as_raw(), error = %e, "a guest's call in pieces is malformed; ending the session");
                            return;
                        }
                        (joined, true)
                    }
                };
                let crew = workers.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(w) = crew.get(&tid) {
                    w.gate.queued();
                    let _ = w.jobs.send(Job::Call { nr, args, inbufs });
                    continue;
                }
                if tid == pid.as_raw() {
                    main.1.queued();
                }
                if pieced {
                    frame = encode(&RemoteMsg::Syscall {
                        tid,
                        nr,
                        args,
                        inbufs,
                    });
                }
            }
            // Withdrawn while being sent (the guest is stopped or
            // captured): nothing of it ran, and nothing answers it.
            Ok(RemoteMsg::Cancel { tid }) if parts.as_ref().is_some_and(|(of, _)| *of == tid) => {
                parts = None;
                continue;
            }
            // Here, not by the session: it may be making that very call.
            // The call answers as it ends (interrupted, or done if it was).
            Ok(RemoteMsg::Cancel { tid }) => {
                let crew = workers.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(w) = crew.get(&tid) {
                    w.gate.cancel(pid, Pid::from_raw(tid));
                } else if tid == pid.as_raw() {
                    main.1.cancel(pid, pid);
                }
                continue;
            }
            _ => {}
        }
        if session.send(frame).is_err() {
            return;
        }
    }
}

/// A worker: traces placeholder thread `tid` (parked) and makes its calls
/// until the session ends.
fn work(
    tid: Pid,
    insn: u64,
    jobs: &Receiver<Job>,
    gate: &Gate,
    link: &Shared<'_>,
    workers: &Crew,
    births: &Sender<Birth>,
) {
    let _ = mosaic_ckpt::sched::short_slice();
    let mut tracee = match Tracee::seize(tid) {
        Ok(t) => Some(t),
        Err(e) => {
            warn!(tid = tid.as_raw(), error = %e, "could not seize a placeholder thread; its calls fail");
            None
        }
    };
    if let Some(t) = &mut tracee {
        t.set_syscall_insn(insn);
        let _ = t.set_sigmask(!calls_unblock());
    }
    let mut scratch = Scratch::default();
    let mut pidfd: Option<OwnedFd> = None;
    let mut noisy = Every::second();
    let tid = tid.as_raw();
    // In the process's group-stop, listening ([`join_group_stop`]).
    let mut listening = false;
    loop {
        let job = jobs.recv_timeout(Duration::from_millis(10));
        if listening && matches!(job, Ok(Job::Call { .. } | Job::HandBack(_))) {
            hold(Pid::from_raw(tid));
            listening = false;
        }
        let (nr, args, inbufs) = match job {
            Ok(Job::Call { nr, args, inbufs }) => (nr, args, inbufs),
            Ok(Job::Stop) => {
                if let Some(t) = &tracee {
                    listening = join_group_stop(t.pid);
                }
                continue;
            }
            Ok(Job::HandBack(reply)) => {
                let parked = tracee.take().and_then(|t| match t.park() {
                    Ok(tid) => Some(tid),
                    Err(e) => {
                        warn!(tid, error = %e, "could not park a placeholder thread");
                        None
                    }
                });
                let _ = reply.send(parked);
                return;
            }
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                // A thread that died (the process ended) is ours to reap,
                // and its process's end waits for that.
                use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
                match waitpid(
                    Pid::from_raw(tid),
                    Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL),
                ) {
                    Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_) => return,
                    // The group-stop ended (a SIGCONT): it stopped again
                    // in a ptrace stop, held as before.
                    Ok(WaitStatus::PtraceEvent(..)) if listening => listening = false,
                    _ => {}
                }
                if listening {
                    continue;
                }
                if let Some(t) = &mut tracee
                    && relay_own_signals(t, &mut scratch, link).is_err()
                {
                    return;
                }
                continue;
            }
        };
        if i64::from(nr) == libc::SYS_exit {
            // The guest thread ends: so does this one, then the guest's.
            let ret = tracee.take().map_or(EINTR, end_thread);
            workers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&tid);
            let _ = lock(link).send_msg(&HomeMsg::SyscallResult {
                tid,
                ret,
                outbufs: Vec::new(),
            });
            return;
        }
        let (ret, outbufs) = match &mut tracee {
            Some(t) => {
                let done = Caller {
                    tracee: t,
                    scratch: &mut scratch,
                    pidfd: &mut pidfd,
                    noisy: &mut noisy,
                    gate: Some(gate),
                    births: Some(births),
                }
                .execute(nr, args, &inbufs);
                match done {
                    Ok(done) => done,
                    Err(e) => {
                        if let Some(held) = noisy.allow() {
                            warn!(tid, error = %e, held, "a placeholder thread could not make a call; answered EINTR");
                        }
                        (EINTR, Vec::new())
                    }
                }
            }
            None => (EINTR, Vec::new()),
        };
        // Signals it met on the way (all but [`calls_unblock`] are
        // blocked: a terminal's SIGTTIN or SIGTTOU, or SIGKILL's end) go
        // to the guest's thread before the result. To that thread: the
        // kernel sent it to the process group, but made this thread take
        // it (the call's restart needs it to handle a signal); sent to the
        // guest process, another thread could take it, or a SIGCONT drop
        // it before any did, and the restart code reached the program
        // (python3: "OSError: [Errno 512]" after a quick bg and fg).
        let signals = tracee
            .as_mut()
            .map(crate::signals::take_deferred)
            .unwrap_or_default();
        for signal in signals {
            let _ = send_fair(link, &encode(&HomeMsg::ThreadSignal { tid, signal }));
        }
        // A large result in pieces, each sent on its own: another
        // thread's small result passes between them.
        for msg in result_messages(tid, ret, outbufs) {
            if send_fair(link, &encode(&msg)).is_err() {
                return;
            }
        }
    }
}

/// Ends placeholder thread `t` as its guest thread ends: its TID address
/// and robust list (in the released memory) cleared first, so that its
/// end writes nothing there. 0 once it is gone, or why it is not.
fn end_thread(mut t: Tracee) -> i64 {
    let tid = t.pid.as_raw();
    let cleared = t
        .syscall(libc::SYS_set_tid_address, [0; 6])
        .and_then(|_| t.syscall(libc::SYS_set_robust_list, [0, 24, 0, 0, 0, 0]));
    if let Err(e) = cleared {
        warn!(tid, error = %e, "could not ready a placeholder thread for its end");
        return EINTR;
    }
    match t.syscall(libc::SYS_exit, [0; 6]) {
        Err(mosaic_ckpt::CkptError::Gone(_)) => 0,
        Ok(r) => r.min(EINTR),
        Err(e) => {
            warn!(tid, error = %e, "could not end a placeholder thread");
            EINTR
        }
    }
}

/// Signals sent to placeholder thread `t` alone (`tgkill` at home: its
/// private queue; it blocks them all), taken off in it and sent to its
/// guest thread. Err: the link is gone.
fn relay_own_signals(
    t: &mut Tracee,
    scratch: &mut Scratch,
    link: &Shared<'_>,
) -> Result<(), LinkError> {
    let bit = |s: i32| 1u64 << (s - 1);
    let untakable = bit(libc::SIGKILL) | bit(libc::SIGSTOP) | cancel_bit();
    let tid = t.pid.as_raw();
    let pending = mosaic_ckpt::procfs::signal_set(tid, &["SigPnd"]).unwrap_or(0) & !untakable;
    if pending == 0 {
        return Ok(());
    }
    let taken = scratch
        .begin(t, 256)
        .and_then(|()| scratch.alloc(160))
        .and_then(|room| t.dequeue_signals(pending, room));
    if let Err(e) = taken {
        warn!(tid, error = %e, "could not take a signal sent to a placeholder thread");
    }
    let mut link = lock(link);
    for signal in crate::signals::take_deferred(t) {
        tracing::info!(tid, signal, "relaying a signal to the guest's thread");
        link.send_msg(&HomeMsg::ThreadSignal { tid, signal })?;
    }
    Ok(())
}
