//! The session of one guest, the remote's side: its arrival (the image
//! restored into a stub that owns no files, its seccomp listener taken)
//! and the loop that serves it until it ends or goes home; the states and
//! legal messages are `mosaic_proto::session`'s.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use crate::calls::call;
use crate::filter::Confinement;
use crate::home::go_home;
use crate::pidns::GuestNs;
use crate::{GuestHandle, GuestPolicy, HostOrder, RemoteError, guest_filter, not_handled};
use mosaic_ckpt::cputime::Carried;
use mosaic_ckpt::ptrace::{Deferred, ProcMem, Tracee};
use mosaic_ckpt::{CkptError, RestoreOptions};
use mosaic_proto::abi;
use mosaic_proto::image::CpuTime;
use mosaic_proto::migrate::{
    Buf, HomeMsg, ImageIn, Link, LinkExt, Queue, RemoteMsg, SERVING_QUEUE,
};
use mosaic_proto::ratelimit::Every;
use mosaic_proto::session::{State, home_name};
use mosaic_proto::syscalls::codec::{self, errno::ERESTARTNOINTR};
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tracing::warn;

/// Wake the notified task on the CPU of the thread that answers
/// (linux/seccomp.h, Linux 6.6; libc 0.2 does not have it yet).
pub(crate) const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;

/// One notification of the listener (`struct seccomp_notif`).
pub(crate) type Notif = libc::seccomp_notif;

/// A notification of call `nr` with `args` (the rest zero).
pub(crate) fn notif(nr: i32, args: [u64; 6]) -> Notif {
    Notif {
        id: 0,
        pid: 0,
        flags: 0,
        data: libc::seccomp_data {
            nr,
            arch: 0,
            instruction_pointer: 0,
            args,
        },
    }
}

/// A guest as the remote holds it: untraced, its memory through
/// `/proc/PID/mem`, its calls through the seccomp listener.
pub(crate) struct Guest {
    pub(crate) pid: Pid,
    pub(crate) mem: ProcMem,
    pub(crate) pidfd: OwnedFd,
    pub(crate) listener: OwnedFd,
    /// Home asked for it back while a call was being answered.
    pub(crate) asked: std::cell::Cell<bool>,
    pub(crate) handle: GuestHandle,
    /// Where its home's files are seen here (`<mfs>/<home>`): files it
    /// maps from there go home under their own paths.
    pub(crate) files_from: Option<std::path::PathBuf>,
    /// Warnings about its calls, at most one a second.
    pub(crate) noisy: std::cell::RefCell<Every>,
    /// The CPU time it used before it came here.
    pub(crate) cpu: Carried,

    /// Its PID at home (the one it knows itself by).
    pub(crate) home_pid: i32,
    /// Its threads' home TIDs by their TIDs here (`notif.pid`).
    pub(crate) tids: std::cell::RefCell<std::collections::HashMap<u32, i32>>,
    /// The home TID of the thread whose call is being served.
    pub(crate) calling: std::cell::Cell<i32>,
    /// It has had threads while here, or came with them: home serves
    /// each in its own placeholder thread, and can cancel their calls
    /// (home's session takes that shape at the first thread's birth, see
    /// [`crate::threads::route_clone`]).
    pub(crate) threaded: std::cell::Cell<bool>,
    /// The threads with a call at home, and those calls.
    pub(crate) calls: std::cell::RefCell<mosaic_proto::session::Calls>,
    pub(crate) in_flight:
        std::cell::RefCell<std::collections::HashMap<i32, crate::calls::InFlight>>,
    /// When a stop signal was last sent to it (a job-control stop, or a
    /// SIGTSTP its handler takes): calls being sent in pieces meanwhile
    /// are given up once the stop is under way, or cancelled at home as
    /// soon as sent ([`crate::calls::advance`]). Ended by its stop, a
    /// SIGCONT, or once no stop comes.
    pub(crate) stop_asked: std::cell::Cell<Option<std::time::Instant>>,
    /// Calls being sent home in pieces, in turn ([`crate::calls::advance`]).
    pub(crate) outgoing:
        std::cell::RefCell<std::collections::VecDeque<(crate::calls::Outgoing, codec::Gathered)>>,
    /// The pieces of large results come so far, by thread
    /// ([`crate::calls::part`]).
    pub(crate) parts: std::cell::RefCell<std::collections::HashMap<i32, Vec<Buf>>>,
    /// The files it maps shared and writable (through `/mfs`, so its
    /// changes reach its home's files when written back).
    pub(crate) shared_files: Vec<std::fs::File>,
    /// Its namespace's init, which gives a thread it creates the TID of
    /// its placeholder thread at home (`crate::threads`).
    pub(crate) ns: Option<crate::pidns::NsControl>,
    /// A call it waits in that only home can make now (a thread home
    /// could not give a placeholder thread): it goes home with it.
    pub(crate) home_with: std::cell::Cell<Option<(Notif, &'static str)>>,
}

impl Guest {
    /// Logs with `log(held)` unless a line was logged within the second.
    pub(crate) fn warn(&self, log: impl FnOnce(u64)) {
        if let Some(held) = self.noisy.borrow_mut().allow() {
            log(held);
        }
    }

    /// Writes its changes to the files it maps shared back to them (to
    /// its home's file, through `/mfs`): before each forwarded call, which
    /// may look at the file another way or tell another process to, and
    /// before a capture. (`munmap` and its end write back by themselves:
    /// FUSE writes a file's pages when a mapping of it closes; `msync` is
    /// its own.) Costs a system call per file when nothing changed.
    pub(crate) fn write_back(&self) {
        let how = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        for f in &self.shared_files {
            // SAFETY: sync_file_range takes a descriptor we own and integers.
            if unsafe { libc::sync_file_range(f.as_raw_fd(), 0, 0, how) } != 0 {
                let e = std::io::Error::last_os_error();
                self.warn(|held| {
                    warn!(error = %e, held, "could not write a guest's shared mapping back to its file")
                });
            }
        }
    }

    /// The home TID (its own) of its thread `tid` here: the last of
    /// `NSpid`, read once per thread.
    pub(crate) fn home_tid(&self, tid: u32) -> i32 {
        if tid == self.pid.as_raw().unsigned_abs() {
            return self.home_pid;
        }
        *self
            .tids
            .borrow_mut()
            .entry(tid)
            .or_insert_with(|| mosaic_ckpt::procfs::own_id(abi::pid(tid)).unwrap_or(self.home_pid))
    }

    /// The next notification; `None` if it went away (the guest died).
    pub(crate) fn receive(&self) -> Option<Notif> {
        let mut n = notif(0, [0; 6]);
        // SAFETY: NOTIF_RECV fills one zeroed `struct seccomp_notif`.
        let r = unsafe {
            libc::ioctl(
                self.listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV,
                &mut n as *mut Notif,
            )
        };
        (r == 0).then_some(n)
    }

    /// Ends the guest's call `id` with `ret` (a negative errno or a value).
    pub(crate) fn answer(&self, id: u64, ret: i64) {
        let resp = libc::seccomp_notif_resp {
            id,
            val: ret.max(0),
            error: if ret < 0 { abi::int_result(ret) } else { 0 },
            flags: 0,
        };
        // SAFETY: NOTIF_SEND reads one `struct seccomp_notif_resp`. ENOENT
        // (the guest was killed meanwhile) needs no handling.
        unsafe {
            libc::ioctl(
                self.listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &resp as *const libc::seccomp_notif_resp,
            )
        };
    }

    /// Lets the call of notification `id` be made by the guest's kernel
    /// as it was asked (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`).
    pub(crate) fn let_through(&self, id: u64) {
        let resp = libc::seccomp_notif_resp {
            id,
            val: 0,
            error: 0,
            flags: 1, // SECCOMP_USER_NOTIF_FLAG_CONTINUE
        };
        // SAFETY: NOTIF_SEND reads one `struct seccomp_notif_resp`; ENOENT
        // as in `answer`.
        unsafe {
            libc::ioctl(
                self.listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &resp as *const libc::seccomp_notif_resp,
            )
        };
    }

    /// Attaches and stops it for capture or injection. `answer`: the call
    /// it waits in (a notification) is ended with ERESTARTNOINTR after the
    /// interrupt is queued, so it stops right after, with the call made to
    /// look interrupted (redone when it resumes, here or at home).
    pub(crate) fn stop(&self, answer: Option<u64>) -> Result<Tracee, RemoteError> {
        self.stop_thread(self.pid, answer)
    }

    /// [`Guest::stop`] of one thread (`tid`, as this node names it): the
    /// one whose call is to be ended by an injection made in it.
    pub(crate) fn stop_thread(&self, pid: Pid, answer: Option<u64>) -> Result<Tracee, RemoteError> {
        ptrace::seize(pid, ptrace::Options::empty()).map_err(|e| {
            // Why, as far as /proc tells (a zombie leader: the process is
            // ending; a tracer: someone else holds it).
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let of = |k: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(k))
                    .unwrap_or("?")
                    .trim()
                    .to_string()
            };
            warn!(
                pid = pid.as_raw(),
                state = of("State:"),
                tracer = of("TracerPid:"),
                threads = of("Threads:"),
                "could not attach to the guest"
            );
            CkptError::Attach {
                pid: pid.as_raw(),
                errno: e,
            }
        })?;
        ptrace::interrupt(pid).map_err(|e| CkptError::Ptrace("PTRACE_INTERRUPT", e))?;
        if let Some(id) = answer {
            self.answer(id, ERESTARTNOINTR);
        }
        let mut deferred = Vec::new();
        let group_stop = loop {
            match waitpid(pid, Some(WaitPidFlag::__WALL))
                .map_err(|e| CkptError::Ptrace("waitpid", e))?
            {
                // Stopped by job control (Ctrl-Z, then moved on), or not.
                WaitStatus::PtraceEvent(_, sig, _) => {
                    break mosaic_ckpt::ptrace::job_control_stop(sig);
                }
                WaitStatus::Stopped(_, sig) => {
                    // A signal on its way: kept, and given back later.
                    deferred.push(Deferred::at_stop(pid, sig));
                    ptrace::cont(pid, None).map_err(|e| CkptError::Ptrace("PTRACE_CONT", e))?;
                }
                WaitStatus::Exited(..) | WaitStatus::Signaled(..) => {
                    return Err(CkptError::Gone(pid.as_raw()).into());
                }
                _ => {}
            }
        };
        let mut t = Tracee::from_stopped_child(pid)?;
        t.deferred_signals = deferred;
        t.group_stop = group_stop;
        Ok(t)
    }
}

impl Guest {
    /// Stops every thread for a capture: the main one as [`Guest::stop`]
    /// does, then the others, listed until a listing shows no new one. A
    /// thread in `answers` (its TID here) waits in a received
    /// notification, ended with ERESTARTNOINTR once its interrupt is
    /// queued, so that it stops with the call made to look interrupted.
    pub(crate) fn stop_all(
        &self,
        answers: &mut std::collections::HashMap<u32, u64>,
    ) -> Result<Tracee, RemoteError> {
        let main = self.pid.as_raw().unsigned_abs();
        // Taken once it stopped: a failed stop leaves it to the caller.
        let mut t = self.stop(answers.get(&main).copied())?;
        answers.remove(&main);
        let stopped = mosaic_ckpt::capture::seize_threads(&mut t, &mut |tid| {
            if let Some(id) = answers.remove(&tid.as_raw().unsigned_abs()) {
                self.answer(id, ERESTARTNOINTR);
            }
        });
        match stopped {
            Ok(()) => Ok(t),
            Err(e) => {
                let _ = t.release();
                Err(e.into())
            }
        }
    }
}

/// Serves one migration: receives the image, starts the guest, forwards
/// its calls until it ends or goes home. If anything fails before the guest
/// runs, home is told (`Failed`) and keeps the process.
/// `on_started(home, home_pid, guest_pid)` is called once the guest runs.
pub fn serve(
    link: &mut dyn Link,
    policy: &GuestPolicy,
    on_started: &mut dyn FnMut(&str, i32, i32, GuestHandle),
) -> Result<(), RemoteError> {
    let _ = mosaic_ckpt::sched::short_slice();
    // A home node that stops sending mid-image must not keep a half-built
    // stub here; once the guest runs, the link is polled instead.
    link.set_stall_timeout(Some(mosaic_proto::migrate::STALL))?;
    let (home, home_pid, locked) = match crate::receive(link, State::Opening)? {
        HomeMsg::Begin {
            home,
            home_pid,
            locked,
            ..
        } => (home, home_pid, locked),
        other => return Err(not_handled(home_name(&other))),
    };
    if !policy.accept {
        let error = "this node accepts no guests (accept_guests = false)".to_string();
        link.send_msg(&RemoteMsg::Failed {
            error: error.clone(),
        })?;
        return Err(RemoteError::Protocol(error));
    }
    let begun = std::time::Instant::now();
    let files_from = policy.mfs.as_ref().map(|m| m.join(&home));
    // Dropped last: the guest is reaped before (see GuestNs).
    let ns = match GuestNs::new() {
        Ok(ns) => ns,
        Err(e) => {
            let _ = ImageIn::<HomeMsg>::new(&mut *link).drain();
            let error = format!("could not make the guest a PID namespace: {e}");
            link.send_msg(&RemoteMsg::Failed {
                error: error.clone(),
            })?;
            return Err(RemoteError::Protocol(error));
        }
    };
    let mut stream = ImageIn::<HomeMsg>::new(&mut *link);
    let started = (|| -> Result<Guest, RemoteError> {
        let opts = RestoreOptions {
            no_files: true,
            confine: Some(std::sync::Arc::new(Confinement {
                uid: policy.uid,
                gid: policy.gid,
                filter: guest_filter()?,
            })),
            file_fallback: files_from.clone(),
            // Home answers its getrlimit; this kernel counts from zero.
            cpu_limit: mosaic_ckpt::CpuLimit::CountImage,
            pid_namespace: Some(ns.ns.clone()),
            ..Default::default()
        };
        let (mut t, cpu) = mosaic_ckpt::restore_traced(&mut stream, &opts, &mut |_, _| {})?;
        tracing::debug!(ms = begun.elapsed().as_secs_f64() * 1e3, "restored");
        // The trailer was read by restore; take the end of the stream.
        let guest = stream.drain().map_err(RemoteError::from).and_then(|()| {
            take_guest(
                &mut t,
                Arrival {
                    cpu,
                    home_pid,
                    locked,
                    files_from: files_from.clone(),
                },
            )
        });
        match guest {
            Ok(g) => {
                t.release()?;
                Ok(g)
            }
            Err(e) => {
                let _ = nix::sys::signal::kill(t.pid, Signal::SIGKILL);
                let _ = waitpid(t.pid, Some(WaitPidFlag::__WALL));
                Err(e)
            }
        }
    })();
    let mut guest = match started {
        Ok(g) => g,
        Err(e) => {
            // Home is still sending the image: take the rest (it waits for
            // our answer only once it has sent it all).
            if !matches!(e, RemoteError::Link(_)) {
                let _ = stream.drain();
            }
            let error = e.to_string();
            let _ = link.send_msg(&match e {
                RemoteError::Ckpt(CkptError::FileChanged { .. }) => {
                    RemoteMsg::FilesMissing { error }
                }
                _ => RemoteMsg::Failed { error },
            });
            return Err(e);
        }
    };
    tracing::info!(
        home = %home,
        home_pid,
        guest_pid = guest.pid.as_raw(),
        ms = begun.elapsed().as_secs_f64() * 1e3,
        "{}",
        crate::log::GUEST_STARTED
    );
    guest.ns = ns
        .control()
        .inspect_err(|e| tracing::warn!(error = %e, "no hold on the guest's namespace: a thread it creates brings it home"))
        .ok();
    on_started(&home, home_pid, guest.pid.as_raw(), guest.handle.clone());
    link.send_msg(&RemoteMsg::Started {
        guest_pid: guest.pid.as_raw(),
    })?;
    link.set_stall_timeout(None)?;
    // Home's large results come in pieces: bounded, the queue holds few
    // ahead of another thread's small one. (Its image goes home the other
    // way, unbounded.)
    if let Err(e) = link.bound_queue(Queue::Receive, SERVING_QUEUE) {
        tracing::info!(error = %e, "the link's queue is as the system tunes it");
    }
    let served = run_guest(&guest, link);
    if served.is_err() {
        // Nobody can answer for this process any more.
        guest.signal(libc::SIGKILL);
    }
    // Reap it whatever happened (it is our child): it is gone, or ends
    // now. By its pidfd, which names it even once reaped.
    guest.signal(libc::SIGKILL);
    guest.reap();
    served
}

/// What home said of a guest, and where its home's files are seen here.
pub(crate) struct Arrival {
    /// The CPU time its image had used.
    cpu: CpuTime,
    home_pid: i32,
    locked: bool,
    files_from: Option<std::path::PathBuf>,
}

/// Takes the restored guest's seccomp listener (its only descriptor) and
/// makes it die with the thread that serves it.
pub(crate) fn take_guest(t: &mut Tracee, arrival: Arrival) -> Result<Guest, RemoteError> {
    let pid = t.pid;
    // The guest keeps its copy: closing it would be a forwarded call that
    // only this thread could answer. Its calls that take descriptors are
    // all forwarded home, so the number is never seen.
    let fd: i32 = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(|e| CkptError::Io(format!("/proc/{pid}/fd"), e))?
        .flatten()
        .find_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .ok_or_else(|| RemoteError::Protocol("the guest has no seccomp listener".into()))?;
    // SAFETY: pidfd_open takes integers and returns a descriptor we own.
    let raw = abi::int_result(unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) });
    if raw < 0 {
        return Err(RemoteError::Protocol(
            "pidfd_open of the guest failed".into(),
        ));
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: pidfd_getfd takes integers and returns a descriptor we own.
    let raw =
        abi::int_result(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) });
    if raw < 0 {
        return Err(RemoteError::Protocol(
            "pidfd_getfd of the seccomp listener failed".into(),
        ));
    }
    // SAFETY: as above.
    let listener = unsafe { OwnedFd::from_raw_fd(raw) };
    // Wake the guest on the CPU that answers (5 us instead of 40 across
    // CPUs here); older kernels lack it, which only costs time.
    let flags = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
    // SAFETY: SET_FLAGS reads one u64.
    unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
            &flags as *const u64,
        )
    };
    // Untraced from now on: it must not outlive the thread serving it.
    t.syscall_ok(
        "prctl(PR_SET_PDEATHSIG)",
        libc::SYS_prctl,
        [
            libc::PR_SET_PDEATHSIG as u64,
            libc::SIGKILL as u64,
            0,
            0,
            0,
            0,
        ],
    )?;
    Ok(Guest {
        pid,
        // Counted from here: the restore's injections are not its own.
        cpu: Carried::start(pid.as_raw(), arrival.cpu)?,

        home_pid: arrival.home_pid,
        tids: Default::default(),
        calling: std::cell::Cell::new(arrival.home_pid),
        calls: Default::default(),
        in_flight: Default::default(),
        outgoing: Default::default(),
        stop_asked: Default::default(),
        parts: Default::default(),
        threaded: std::cell::Cell::new(mosaic_ckpt::procfs::tids(pid.as_raw())?.len() > 1),
        shared_files: shared_files(pid.as_raw())?,
        ns: None,
        home_with: Default::default(),
        mem: t.mem()?,
        pidfd,
        listener,
        asked: Default::default(),
        handle: GuestHandle {
            locked: arrival.locked,
            ..Default::default()
        },
        files_from: arrival.files_from,
        noisy: std::cell::RefCell::new(Every::second()),
    })
}

/// The files `pid` maps shared and writable, open for writing them back.
pub(crate) fn shared_files(pid: i32) -> Result<Vec<std::fs::File>, RemoteError> {
    let mut paths: Vec<String> = mosaic_ckpt::procfs::maps(pid)?
        .into_iter()
        .filter(|m| m.shared && m.write && m.name.starts_with('/'))
        .map(|m| m.name)
        .collect();
    paths.sort();
    paths.dedup();
    paths
        .iter()
        .map(|p| std::fs::File::open(p).map_err(|e| CkptError::Io(p.clone(), e).into()))
        .collect()
}

/// How often a running guest is checked for a job-control stop.
pub(crate) const STOP_CHECK: u16 = 50;

/// The serving loop: the listener (the guest's calls), the link (home's
/// signals and requests) and the pidfd (its end), in one thread.
pub(crate) fn run_guest(g: &Guest, link: &mut dyn Link) -> Result<(), RemoteError> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::BorrowedFd;
    let link_fd = link
        .raw_fd()
        .ok_or_else(|| RemoteError::Protocol("the link has no descriptor to poll".into()))?;
    loop {
        // With calls at home, a request to go home cancels them if home
        // can (a multi-threaded placeholder, whose router takes a cancel
        // while a call runs); else it waits for them.
        let between_calls = g.calls.borrow().is_empty() || g.threaded.get();
        if let Some((n, why)) = g.home_with.take()
            && go_home(g, link, Some((n.id, n.pid)), why, None)?
        {
            return Ok(());
        }
        if between_calls && g.asked.take() && go_home(g, link, None, "asked by home", None)? {
            return Ok(());
        }
        let order = if between_calls {
            g.handle.take_order()
        } else {
            None
        };
        let went = match order {
            Some(HostOrder::Home) => go_home(g, link, None, "sent home by its host", None)?,
            Some(HostOrder::MoveTo(node)) => {
                go_home(g, link, None, "moved on by its host", Some(node))?
            }
            None => false,
        };
        if went {
            return Ok(());
        }
        // A piece of a large call each turn, between everything else.
        crate::calls::advance(g, link)?;
        let wait = if g.outgoing.borrow().is_empty() {
            PollTimeout::from(STOP_CHECK)
        } else {
            PollTimeout::ZERO
        };
        // SAFETY: the link's descriptor lives as long as `link`, beyond this poll.
        let link_fd = unsafe { BorrowedFd::borrow_raw(link_fd) };
        let mut fds = [
            PollFd::new(g.listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(link_fd, PollFlags::POLLIN),
            PollFd::new(g.pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, wait) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(CkptError::Ptrace("poll", e).into()),
        }
        let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
        let (calls, home, ended) = (ready(0), ready(1), ready(2));
        if calls && let Some(n) = g.receive() {
            if call(g, link, n)? {
                return Ok(());
            }
            continue;
        }
        if home {
            let state = g.calls.borrow().state();
            match crate::receive(link, state)? {
                HomeMsg::Signal { signal } => g.relay(link, signal)?,
                HomeMsg::ThreadSignal { tid, signal } => g.relay_to_thread(link, tid, signal)?,
                HomeMsg::SyscallResult { tid, ret, outbufs } => {
                    crate::calls::finish(g, link, tid, ret, outbufs)?;
                }
                HomeMsg::SyscallPart { tid, outbufs } => crate::calls::part(g, tid, outbufs)?,
                HomeMsg::ComeHome => g.asked.set(true),
                other => return Err(not_handled(home_name(&other))),
            }
        }
        if ended || !calls {
            // Ended, or stopped (job control: it is our child, untraced).
            // Its CPU time in all goes home with its end (a shell's
            // `time` counts it, see the deputy).
            match mosaic_ckpt::cputime::wait_counting(
                g.pid.as_raw(),
                WaitPidFlag::WNOHANG | WaitPidFlag::WSTOPPED | WaitPidFlag::__WALL,
            ) {
                Ok((WaitStatus::Exited(_, code), here)) => {
                    let cpu = g.cpu.total(here);
                    link.send_msg(&RemoteMsg::Exited { code, cpu })?;
                    return Ok(());
                }
                Ok((WaitStatus::Signaled(_, sig, _), here)) => {
                    let cpu = g.cpu.total(here);
                    link.send_msg(&RemoteMsg::Killed {
                        signal: sig as i32,
                        cpu,
                    })?;
                    return Ok(());
                }
                Ok((WaitStatus::Stopped(_, sig), _)) => {
                    g.stop_asked.set(None);
                    link.send_msg(&RemoteMsg::Stopped { signal: sig as i32 })?;
                }
                _ => {}
            }
        }
    }
}
