//! # mosaic-remote: the guest side of a migrated process
//!
//! The remote receives an image over a migration link, restores it as a
//! *guest* in a stub that owns no files, runs as an unprivileged user and
//! carries a seccomp filter built from the syscall table
//! (`mosaic_proto::syscalls`): local calls run at full speed, everything
//! else is sent to us by seccomp user notification and forwarded to the
//! deputy at home, whose answer (return value and out-buffers) is written
//! back before the guest's call returns. Signals for the guest are
//! delivered here; its exit or death is reported home. It never touches the
//! node's own files on the guest's behalf.
//!
//! Why user notification (`SECCOMP_RET_USER_NOTIF` with
//! `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`) and not `SECCOMP_RET_TRACE`: a trap
//! costs about 5 us instead of 12-48 us here, the listener is a descriptor
//! that one thread polls together with the link (no thread hop for results
//! or signals), and answering needs no ptrace stop: the guest runs
//! untraced. Ptrace is taken only when it is needed: to capture the guest
//! (coming home, moving on) and to place a file mapping (`mmap` made
//! while away), then released.
//!
//! Forwarded: calls whose arguments the forwarding codec
//! (`mosaic_proto::syscalls::codec`) marshals: integers, fds, strings,
//! buffers, fixed structs, iovecs, socket addresses, msghdrs and counted
//! arrays. Bring-home calls (fork, execve, clone, shared mmap, and calls
//! the codec does not marshal) send the guest home just before the call,
//! which home then makes natively. Job control: the guest stops natively
//! (it is our child) and home is told.

mod filter;
mod procview;

pub use filter::{guest_filter, verdict};

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use mosaic_ckpt::cputime::Carried;
use mosaic_ckpt::ptrace::{Deferred, Memory, ProcMem, Tracee};
use mosaic_ckpt::{CkptError, RestoreOptions};
use mosaic_proto::image::CpuTime;
use mosaic_proto::migrate::{Buf, HomeMsg, ImageIn, Link, LinkError, LinkExt, RemoteMsg};
use mosaic_proto::ratelimit::Every;
use mosaic_proto::session::{State, home_name};
use mosaic_proto::syscalls::codec::errno::{
    EAGAIN, EFAULT, ENOSYS, ERESTARTNOHAND, ERESTARTNOINTR, ERESTARTSYS,
};
use mosaic_proto::syscalls::codec::{self, AtHome, Fault, Marshal, ScatterError};
use mosaic_proto::syscalls::{Class, lookup};
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use thiserror::Error;
use tracing::warn;

/// Why serving a guest failed.
#[derive(Debug, Error)]
pub enum RemoteError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Ckpt(#[from] CkptError),
    #[error("protocol: {0}")]
    Protocol(String),
    /// The one rule for an unexpected message: the session ends, and with
    /// it the guest (see [`mosaic_proto::session`]).
    #[error("protocol: {0}")]
    Unexpected(#[from] mosaic_proto::session::Unexpected),
}

/// A message legal where the session is but that this side does not
/// handle there (the table and the code disagree: a bug, ended as an
/// unexpected message is).
fn not_handled(what: &str) -> RemoteError {
    RemoteError::Protocol(format!("{what} is not handled where it is legal"))
}

/// What the node a guest runs on wants done with it (expel, a node that
/// leaves, the balancer). The guest is captured between two of its calls
/// and its image goes to its home, which runs it or sends it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostOrder {
    /// Back to its home node.
    Home,
    /// On to this node (through home, which may refuse and keep it).
    MoveTo(String),
}

/// The node's handle on one guest: orders for it, and its forwarded-call
/// count (an I/O-heavy guest is better at home).
#[derive(Debug, Clone, Default)]
pub struct GuestHandle {
    order: std::sync::Arc<std::sync::Mutex<Option<HostOrder>>>,
    forwarded: std::sync::Arc<std::sync::atomic::AtomicU64>,
    locked: bool,
}

impl GuestHandle {
    /// Asks for the guest to leave (acted on within 50 ms, between calls).
    pub fn order(&self, order: HostOrder) {
        *self.order.lock().unwrap_or_else(|e| e.into_inner()) = Some(order);
    }

    fn take_order(&self) -> Option<HostOrder> {
        self.order.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// System calls forwarded home so far.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Locked at home: never moved automatically (its host's balancer
    /// leaves it).
    pub fn locked(&self) -> bool {
        self.locked
    }
}

/// How guests run on this node.
#[derive(Debug, Clone)]
pub struct GuestPolicy {
    /// The unprivileged user and group guests run as.
    pub uid: u32,
    pub gid: u32,
    /// Whether this node takes guests at all (`accept_guests` in
    /// mosaicd.toml); if not, every migration here is refused before any
    /// of its image is read, and the process goes on at home.
    pub accept: bool,
    /// Where this node sees every node's files (`/mfs`, if mounted): a
    /// guest's mapped files that are not here are mapped from
    /// `<mfs>/<home>/...`, their pages fetched when touched.
    pub mfs: Option<std::path::PathBuf>,
}

impl Default for GuestPolicy {
    fn default() -> Self {
        // nobody:nogroup
        GuestPolicy {
            uid: 65534,
            gid: 65534,
            accept: true,
            mfs: None,
        }
    }
}

/// Wake the notified task on the CPU of the thread that answers
/// (linux/seccomp.h, Linux 6.6; libc 0.2 does not have it yet).
const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;

/// One notification of the listener (`struct seccomp_notif`).
type Notif = libc::seccomp_notif;

/// A notification of call `nr` with `args` (the rest zero).
fn notif(nr: i32, args: [u64; 6]) -> Notif {
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
struct Guest {
    pid: Pid,
    mem: ProcMem,
    pidfd: OwnedFd,
    listener: OwnedFd,
    /// Home asked for it back while a call was being answered.
    asked: std::cell::Cell<bool>,
    handle: GuestHandle,
    /// Where its home's files are seen here (`<mfs>/<home>`): files it
    /// maps from there go home under their own paths.
    files_from: Option<std::path::PathBuf>,
    /// Warnings about its calls, at most one a second.
    noisy: std::cell::RefCell<Every>,
    /// The CPU time it used before it came here.
    cpu: Carried,

    /// Its PID at home (the one it knows itself by).
    home_pid: i32,
    /// The files it maps shared and writable (through `/mfs`, so its
    /// changes reach its home's files when written back).
    shared_files: Vec<std::fs::File>,
}

impl Guest {
    /// Logs with `log(held)` unless a line was logged within the second.
    fn warn(&self, log: impl FnOnce(u64)) {
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
    fn write_back(&self) {
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

    fn signal(&self, signal: i32) {
        // SAFETY: pidfd_send_signal with our pidfd and no siginfo.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                signal,
                std::ptr::null::<u8>(),
                0,
            )
        };
    }

    /// The next notification; `None` if it went away (the guest died).
    fn receive(&self) -> Option<Notif> {
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
    fn answer(&self, id: u64, ret: i64) {
        let resp = libc::seccomp_notif_resp {
            id,
            val: ret.max(0),
            error: if ret < 0 { ret as i32 } else { 0 },
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

    /// Attaches and stops it for capture or injection. `answer`: the call
    /// it waits in (a notification) is ended with ERESTARTNOINTR after the
    /// interrupt is queued, so it stops right after, with the call made to
    /// look interrupted (redone when it resumes, here or at home).
    fn stop(&self, answer: Option<u64>) -> Result<Tracee, RemoteError> {
        let pid = self.pid;
        ptrace::seize(pid, ptrace::Options::empty()).map_err(|e| CkptError::Attach {
            pid: pid.as_raw(),
            errno: e,
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

/// Serves one migration: receives the image, starts the guest, forwards
/// its calls until it ends or goes home. If anything fails before the guest
/// runs, home is told (`Failed`) and keeps the process.
/// `on_started(home, home_pid, guest_pid)` is called once the guest runs.
pub fn serve(
    link: &mut dyn Link,
    policy: &GuestPolicy,
    on_started: &mut dyn FnMut(&str, i32, i32, GuestHandle),
) -> Result<(), RemoteError> {
    // A home node that stops sending mid-image must not keep a half-built
    // stub here; once the guest runs, the link is polled instead.
    link.set_stall_timeout(Some(mosaic_proto::migrate::STALL))?;
    let first = link.recv_msg::<HomeMsg>()?;
    State::Opening.home_may_send(&first)?;
    let (home, home_pid, locked) = match first {
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
    let mut stream = ImageIn::<HomeMsg>::new(&mut *link);
    let started = (|| -> Result<Guest, RemoteError> {
        let opts = RestoreOptions {
            no_files: true,
            own_process_group: true,
            drop_to: Some((policy.uid, policy.gid)),
            seccomp: Some(guest_filter()?),
            seccomp_listener: true,
            file_fallback: files_from.clone(),
            // Home answers its getrlimit; this kernel counts from zero.
            cpu_limit: mosaic_ckpt::CpuLimit::CountImage,
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
                Err(e)
            }
        }
    })();
    let guest = match started {
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
        "guest started"
    );
    on_started(&home, home_pid, guest.pid.as_raw(), guest.handle.clone());
    link.send_msg(&RemoteMsg::Started {
        guest_pid: guest.pid.as_raw(),
    })?;
    link.set_stall_timeout(None)?;
    let served = run_guest(&guest, link);
    if served.is_err() {
        // Nobody can answer for this process any more.
        guest.signal(libc::SIGKILL);
    }
    // Reap it whatever happened (it is our child).
    let _ = waitpid(guest.pid, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL));
    served
}

/// What home said of a guest, and where its home's files are seen here.
struct Arrival {
    /// The CPU time its image had used.
    cpu: CpuTime,
    home_pid: i32,
    locked: bool,
    files_from: Option<std::path::PathBuf>,
}

/// Takes the restored guest's seccomp listener (its only descriptor) and
/// makes it die with the thread that serves it.
fn take_guest(t: &mut Tracee, arrival: Arrival) -> Result<Guest, RemoteError> {
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
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) } as i32;
    if raw < 0 {
        return Err(RemoteError::Protocol(
            "pidfd_open of the guest failed".into(),
        ));
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: pidfd_getfd takes integers and returns a descriptor we own.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) } as i32;
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
        shared_files: shared_files(pid.as_raw())?,
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
fn shared_files(pid: i32) -> Result<Vec<std::fs::File>, RemoteError> {
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
const STOP_CHECK: u16 = 50;

/// What becomes of a call the guest's filter sent us.
enum Route {
    /// Forwarded home and answered, marshalled so.
    Forward(Marshal),
    /// Made at home, natively: the guest goes home first.
    Home(&'static str),
    /// A private (or read-only shared) file mapping, filled from home.
    FillMapping,
    /// `clock_gettime` of a CPU-time clock.
    CpuClock,
    /// `sendmmsg`/`recvmmsg`: one `sendmsg`/`recvmsg` forwarded per message.
    Mmsg,
    /// No row says how (the filter lets only these through).
    Refuse(&'static str),
}

fn route(n: &Notif) -> Route {
    let Some(row) = u32::try_from(n.data.nr).ok().and_then(lookup) else {
        return Route::Refuse("not a system call of this kernel");
    };
    match row.class {
        Class::BringHome => Route::Home(row.name),
        // recvmmsg's timeout is checked between messages: made at home.
        Class::Forward if i64::from(n.data.nr) == libc::SYS_recvmmsg && n.data.args[4] != 0 => {
            Route::Home("recvmmsg with a timeout")
        }
        Class::Forward
            if matches!(
                i64::from(n.data.nr),
                libc::SYS_sendmmsg | libc::SYS_recvmmsg
            ) =>
        {
            Route::Mmsg
        }
        Class::Forward => match codec::resolve(row, &n.data.args) {
            Ok(m) => Route::Forward(m),
            Err(AtHome(why)) => Route::Home(why),
        },
        Class::Local if i64::from(n.data.nr) == libc::SYS_clock_gettime => Route::CpuClock,
        Class::Local if i64::from(n.data.nr) == libc::SYS_mmap => {
            if private_file_map(n) {
                Route::FillMapping
            } else {
                Route::Home("mmap of shared memory (or of a very large file)")
            }
        }
        Class::Local | Class::Exit | Class::Unsupported => Route::Refuse(row.name),
    }
}

/// What the remote does with a guest's call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The filter lets it run on the guest's kernel.
    Local,
    /// Forwarded home, marshalled by the codec.
    Forward,
    /// Answered here (a file mapping filled from home, a CPU-time clock).
    Served,
    /// Brings the process home, which makes the call natively.
    Home(&'static str),
    /// Answered ENOSYS: no way to run it.
    Refused(&'static str),
}

/// What the remote would do with call `nr` with `args` from a guest under
/// the filter `prog` ([`guest_filter`]): the filter's verdict, then the
/// routing the serving loop applies. (A guest's own `/proc` files, told by
/// their path, are served too; this says `Forward` for any `open`.)
pub fn decide(prog: &[u8], nr: u32, args: &[u64; 6]) -> Result<Decision, String> {
    let action = verdict(prog, nr, args)? & libc::SECCOMP_RET_ACTION_FULL;
    if action == libc::SECCOMP_RET_ALLOW {
        return Ok(Decision::Local);
    }
    if action != libc::SECCOMP_RET_USER_NOTIF {
        return Ok(Decision::Refused("the filter fails it"));
    }
    Ok(match route(&notif(nr as i32, *args)) {
        Route::Forward(_) => Decision::Forward,
        Route::Home(why) => Decision::Home(why),
        Route::FillMapping | Route::CpuClock | Route::Mmsg => Decision::Served,
        Route::Refuse(why) => Decision::Refused(why),
    })
}

/// The serving loop: the listener (the guest's calls), the link (home's
/// signals and requests) and the pidfd (its end), in one thread.
fn run_guest(g: &Guest, link: &mut dyn Link) -> Result<(), RemoteError> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::BorrowedFd;
    let link_fd = link
        .raw_fd()
        .ok_or_else(|| RemoteError::Protocol("the link has no descriptor to poll".into()))?;
    loop {
        if g.asked.take() && go_home(g, link, None, "asked by home", None)? {
            return Ok(());
        }
        let went = match g.handle.take_order() {
            Some(HostOrder::Home) => go_home(g, link, None, "sent home by its host", None)?,
            Some(HostOrder::MoveTo(node)) => {
                go_home(g, link, None, "moved on by its host", Some(node))?
            }
            None => false,
        };
        if went {
            return Ok(());
        }
        // SAFETY: the link's descriptor lives as long as `link`, beyond this poll.
        let link_fd = unsafe { BorrowedFd::borrow_raw(link_fd) };
        let mut fds = [
            PollFd::new(g.listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(link_fd, PollFlags::POLLIN),
            PollFd::new(g.pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::from(STOP_CHECK)) {
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
            let msg = link.recv_msg::<HomeMsg>()?;
            State::Serving.home_may_send(&msg)?;
            match msg {
                HomeMsg::Signal { signal } => g.signal(signal),
                HomeMsg::ComeHome => {
                    if go_home(g, link, None, "asked by home", None)? {
                        return Ok(());
                    }
                }
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
                    link.send_msg(&RemoteMsg::Stopped { signal: sig as i32 })?;
                }
                _ => {}
            }
        }
    }
}

/// One call of the guest. Returns true if the guest went home.
fn call(g: &Guest, link: &mut dyn Link, n: Notif) -> Result<bool, RemoteError> {
    let nr = n.data.nr as u32; // x86-64 numbers are small and positive
    if let Some(ret) = open_own_proc_file(g, link, &n)? {
        g.answer(n.id, ret);
        return Ok(false);
    }
    let marshal = match route(&n) {
        Route::Forward(m) => m,
        Route::Home(reason) => return go_home(g, link, Some(n.id), reason, None),
        Route::FillMapping => {
            map_private_file(g, link, &n)?;
            return Ok(false);
        }
        Route::CpuClock => {
            cpu_clock(g, link, &n)?;
            return Ok(false);
        }
        Route::Mmsg => {
            let ret = mmsg(g, link, &n)?;
            g.answer(n.id, ret);
            return Ok(false);
        }
        Route::Refuse(why) => {
            // Not a call the guest's filter sends us: said, and ENOSYS.
            g.warn(|held| {
                warn!(
                    nr,
                    why, held, "a guest call with no way to run; answered ENOSYS"
                )
            });
            g.answer(n.id, ENOSYS);
            return Ok(false);
        }
    };
    let ret = forward_restarting(link, g, nr, n.data.args, &marshal)?;
    if ret >= 0 {
        own_cpu_time(g, nr, &n.data.args);
    }
    // With a signal queued, the guest's kernel restarts the call or fails
    // it with EINTR by the guest's own SA_RESTART.
    g.answer(n.id, ret);
    Ok(false)
}

/// [`forward`], made again when home was interrupted but no signal will
/// run here (the kernel would restart it, so do we).
fn forward_restarting(
    link: &mut dyn Link,
    g: &Guest,
    nr: u32,
    args: [u64; 6],
    marshal: &Marshal,
) -> Result<i64, RemoteError> {
    loop {
        let ret = forward(link, g, nr, args, marshal)?;
        if matches!(ret, ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND)
            && !deliverable_signal(g.pid.as_raw())
        {
            continue;
        }
        return Ok(ret);
    }
}

/// `sendmmsg` and `recvmmsg` (without a timeout) as the kernel makes
/// them: a `sendmsg` or `recvmsg` per message, each forwarded as such, its
/// byte count written into the message's `msg_len`; after the first,
/// `MSG_WAITFORONE` makes the others non-blocking. The number of messages
/// done, or the first one's error.
fn mmsg(g: &Guest, link: &mut dyn Link, n: &Notif) -> Result<i64, RemoteError> {
    // struct mmsghdr: a msghdr, then the msg_len the kernel sets.
    const MMSGHDR_SIZE: u64 = std::mem::size_of::<libc::mmsghdr>() as u64;
    const MSG_LEN_AT: u64 = mosaic_proto::syscalls::msghdr::SIZE as u64;
    const MSG_WAITFORONE: u64 = libc::MSG_WAITFORONE as u64;
    let [fd, vec, vlen, flags, ..] = n.data.args;
    let recv = i64::from(n.data.nr) == libc::SYS_recvmmsg;
    let one = if recv {
        libc::SYS_recvmsg
    } else {
        libc::SYS_sendmsg
    };
    let Some(row) = lookup(one as u32) else {
        return Ok(ENOSYS);
    };
    // The kernel takes at most UIO_MAXIOV messages a call.
    let vlen = vlen.min(1024);
    let mut done: u64 = 0;
    while done < vlen {
        let hdr = vec.wrapping_add(done * MMSGHDR_SIZE);
        let mut each = flags & !MSG_WAITFORONE;
        if recv && done > 0 && flags & MSG_WAITFORONE != 0 {
            each |= libc::MSG_DONTWAIT as u64;
        }
        let args = [fd, hdr, each, 0, 0, 0];
        let ret = match codec::resolve(row, &args) {
            Ok(m) => forward_restarting(link, g, row.nr, args, &m)?,
            Err(_) => EFAULT,
        };
        if ret < 0 {
            return Ok(if done > 0 { done as i64 } else { ret });
        }
        let len = u32::try_from(ret).unwrap_or(u32::MAX).to_le_bytes();
        if g.mem.write_mem(hdr + MSG_LEN_AT, &len).is_err() {
            return Ok(if done > 0 { done as i64 } else { EFAULT });
        }
        done += 1;
    }
    Ok(done as i64)
}

/// The CPU time it used, wherever it ran: what it came with plus what this
/// kernel counted since.
fn cpu_now(g: &Guest) -> CpuTime {
    match mosaic_ckpt::cputime::counted(g.pid.as_raw()) {
        Ok(here) => g.cpu.total(here),
        Err(_) => g.cpu.before,
    }
}

/// `getrusage` and `times` answered at home count the time the process
/// ran there: its whole CPU time is written over theirs, and what this
/// kernel counted of faults and context switches is added.
fn own_cpu_time(g: &Guest, nr: u32, args: &[u64; 6]) {
    use mosaic_ckpt::cputime::{RUSAGE_SIZE, amend_rusage, amend_tms, usage};
    let at = match i64::from(nr) {
        // RUSAGE_SELF and RUSAGE_THREAD (one thread); RUSAGE_CHILDREN's
        // children ran at home.
        libc::SYS_getrusage if matches!(args[0] as i32, 0 | 1) => args[1],
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
const CLOCK_AT_HOME: mosaic_proto::syscalls::Syscall = mosaic_proto::syscalls::Syscall {
    nr: libc::SYS_clock_gettime as u32,
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
fn cpu_clock(g: &Guest, link: &mut dyn Link, n: &Notif) -> Result<(), RemoteError> {
    let [clock, tp, ..] = n.data.args;
    let clock = clock as u32 as i32; // a clockid_t is an int
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

/// Largest private file mapping filled from home (larger ones bring the
/// process home).
const FILL_MAX: u64 = 256 << 20;

/// Whether the guest's call is an `mmap` of a file, private, that we fill
/// from home.
fn private_file_map(n: &Notif) -> bool {
    let (prot, flags) = (n.data.args[2], n.data.args[3]);
    let kind = flags & libc::MAP_TYPE as u64;
    // A read-only shared mapping reads like a private one (ld.so maps
    // /etc/ld.so.cache so, right after exec: it brought every guest
    // captured at exec straight home). It would not see later writes to
    // the file by others.
    let read_only_shared = kind == libc::MAP_SHARED as u64 && prot & libc::PROT_WRITE as u64 == 0;
    i64::from(n.data.nr) == libc::SYS_mmap
        && (kind == libc::MAP_PRIVATE as u64 || read_only_shared)
        && flags & libc::MAP_ANONYMOUS as u64 == 0
        && n.data.args[1] > 0
        && n.data.args[1] <= FILL_MAX
}

/// A private file mapping made while away: the file's bytes are read at
/// home (`pread64` on the home descriptor, forwarded like any call), an
/// anonymous private mapping with the same address, length, protection and
/// other flags is made in the guest (injected: the guest is stopped for it,
/// its own call made to look interrupted and then ended with the result),
/// and the bytes are written into it. The mapping then holds what a private
/// mapping of the file would have held (bytes past the end of the file are
/// zeros, as in the file's last page).
fn map_private_file(g: &Guest, link: &mut dyn Link, n: &Notif) -> Result<(), RemoteError> {
    let [addr, len, prot, flags, fd, offset] = n.data.args;
    let mut data: Vec<u8> = Vec::with_capacity(len as usize);
    while (data.len() as u64) < len {
        let want = (len - data.len() as u64).min(codec::MAX_BUF);
        let at = offset + data.len() as u64;
        // The buffer pointer only has to be non-null: home allocates.
        let (ret, outbufs) = at_home(
            link,
            g,
            libc::SYS_pread64,
            [fd, 1, want, at, 0, 0],
            Vec::new(),
        )?;
        if ret < 0 {
            // EBADF and friends, as mmap would say (EACCES for a
            // write-only descriptor becomes EBADF).
            g.answer(n.id, ret);
            return Ok(());
        }
        let got = outbufs
            .into_iter()
            .next()
            .map(|b| b.1.into_vec())
            .unwrap_or_default();
        let short = (got.len() as u64) < want;
        data.extend_from_slice(&got);
        if short {
            break; // end of file
        }
    }
    let mut t = g.stop(Some(n.id))?;
    let mut regs = t.regs()?;
    // It stopped right after its own `syscall` instruction.
    t.set_syscall_insn(regs.rip - 2);
    let anon =
        (flags & !(libc::MAP_TYPE as u64)) | (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
    let mapped = t.syscall(libc::SYS_mmap, [addr, len, prot, anon, u64::MAX, 0])?;
    if mapped >= 0 && !data.is_empty() {
        t.write_mem(mapped as u64, &data)?;
    }
    // Its call returns the mapping (or the error), not restarted.
    regs.rax = mapped as u64;
    regs.orig_rax = u64::MAX;
    t.set_regs(&regs)?;
    t.release()?;
    Ok(())
}

/// The result of the call just sent home; signals home sends meanwhile are
/// delivered on the way (before the result: an interrupted call must find
/// its signal queued).
fn result_of(link: &mut dyn Link, g: &Guest) -> Result<(i64, Vec<Buf>), RemoteError> {
    loop {
        let msg = link.recv_msg::<HomeMsg>()?;
        State::InCall.home_may_send(&msg)?;
        match msg {
            HomeMsg::SyscallResult { ret, outbufs } => return Ok((ret, outbufs)),
            HomeMsg::Signal { signal } => g.signal(signal),
            // Served once the call is done.
            HomeMsg::ComeHome => g.asked.set(true),
            other => return Err(not_handled(home_name(&other))),
        }
    }
}

/// Whether a signal is queued for `pid` and not blocked.
fn deliverable_signal(pid: i32) -> bool {
    use mosaic_ckpt::procfs::signal_set;
    let queued = signal_set(pid, &["SigPnd", "ShdPnd"]).unwrap_or(0);
    queued & !signal_set(pid, &["SigBlk"]).unwrap_or(0) != 0
}

/// Sends the guest home: stopped and captured where it is (for a call that
/// must run at home, just before that call, so home redoes it) and
/// streamed to the deputy, which restores it into the placeholder. Returns
/// true once home has it (the guest is then ended here), false if home
/// could not take it back (the guest goes on here; a call that needed home
/// fails with EAGAIN).
fn go_home(
    g: &Guest,
    link: &mut dyn Link,
    at_call: Option<u64>,
    reason: &str,
    next: Option<String>,
) -> Result<bool, RemoteError> {
    let pid = g.pid;
    let t = g.stop(at_call)?;
    tracing::info!(guest_pid = pid.as_raw(), reason, "sending the guest home");
    // A home that stops answering must not keep this thread forever: the
    // error ends the guest here, and home, if it took the image, runs it.
    link.set_stall_timeout(Some(mosaic_proto::migrate::STALL))?;
    let went = go_home_stopped(g, t, link, at_call, reason, next);
    link.set_stall_timeout(None)?;
    went
}

fn go_home_stopped(
    g: &Guest,
    mut t: Tracee,
    link: &mut dyn Link,
    at_call: Option<u64>,
    reason: &str,
    next: Option<String>,
) -> Result<bool, RemoteError> {
    let pid = g.pid;
    // Its image carries no pages of the files it maps shared: they are
    // home's, once written back.
    g.write_back();
    link.send_msg(&RemoteMsg::Returning {
        reason: reason.to_string(),
        next,
    })?;
    let mut out = mosaic_proto::migrate::ImageOut::<RemoteMsg>::new(&mut *link);
    let captured = mosaic_ckpt::capture_traced(
        &mut t,
        &mosaic_ckpt::CaptureOptions {
            files_from: g.files_from.clone(),
            cpu_elsewhere: g.cpu.elsewhere(),
            ..Default::default()
        },
        &mut out,
        &mut |_, _| {},
    );
    match captured {
        Ok(_) => out.finish()?,
        Err(e) => {
            drop(out);
            warn!(error = %e, "could not capture the guest to send it home");
            link.send_msg(&RemoteMsg::CannotReturn {
                error: e.to_string(),
            })?;
        }
    }
    // Signals home sends meanwhile are held: the guest is captured.
    let mut held: Vec<i32> = Vec::new();
    loop {
        let msg = link.recv_msg::<HomeMsg>()?;
        State::Arriving.home_may_send(&msg)?;
        match msg {
            HomeMsg::Signal { signal } => held.push(signal),
            // Asked before home saw it coming: it is coming.
            HomeMsg::ComeHome => {}
            HomeMsg::Arrived => {
                g.signal(libc::SIGKILL);
                while !matches!(
                    waitpid(pid, Some(WaitPidFlag::__WALL)),
                    Ok(WaitStatus::Signaled(..) | WaitStatus::Exited(..)) | Err(_)
                ) {}
                // Those it caught while being captured travelled in the image.
                link.send_msg(&RemoteMsg::Gone { signals: held })?;
                tracing::info!(guest_pid = pid.as_raw(), "the guest went home");
                return Ok(true);
            }
            HomeMsg::Stay { error } => {
                warn!(%error, "home could not take the guest back; it goes on here");
                if at_call.is_some() {
                    let mut regs = t.regs()?;
                    regs.rax = EAGAIN as u64;
                    regs.orig_rax = u64::MAX;
                    t.set_regs(&regs)?;
                }
                // Deferred signals are sent again on release.
                t.release()?;
                for sig in held {
                    g.signal(sig);
                }
                return Ok(false);
            }
            other => return Err(not_handled(home_name(&other))),
        }
    }
}

/// The guest's memory as the codec reaches it.
struct GuestMem<'a>(&'a dyn Memory);

impl codec::GuestMemory for GuestMem<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        self.0.read_mem(addr, buf).map_err(|_| Fault)
    }
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        self.0.write_mem(addr, data).map_err(|_| Fault)
    }
}

/// Forwards the call the guest waits in (`marshal`, resolved by
/// [`call`]); returns its result.
fn forward(
    link: &mut dyn Link,
    g: &Guest,
    nr: u32,
    args: [u64; 6],
    marshal: &Marshal,
) -> Result<i64, RemoteError> {
    g.handle
        .forwarded
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    g.write_back();
    let mem = GuestMem(&g.mem);
    let mut gathered = match codec::gather(marshal, &args, &mem) {
        Ok(gathered) => gathered,
        Err(errno) => return Ok(errno),
    };
    let inbufs = std::mem::take(&mut gathered.inbufs);
    link.send_msg(&RemoteMsg::Syscall { nr, args, inbufs })?;
    let (ret, outbufs) = result_of(link, g)?;
    match gathered.scatter(&mem, &outbufs) {
        Ok(()) => Ok(ret),
        Err(ScatterError::Fault) => Ok(EFAULT),
        Err(ScatterError::Malformed(why)) => {
            g.warn(|held| {
                warn!(
                    nr,
                    why, held, "a malformed answer from home; the call answers EFAULT"
                )
            });
            Ok(EFAULT)
        }
    }
}

/// Makes call `nr` at home with `args` (pointers only non-null: home
/// allocates) and these in-buffers; its result and out-buffers.
fn at_home(
    link: &mut dyn Link,
    g: &Guest,
    nr: i64,
    args: [u64; 6],
    inbufs: Vec<Buf>,
) -> Result<(i64, Vec<Buf>), RemoteError> {
    link.send_msg(&RemoteMsg::Syscall {
        nr: nr as u32, // x86-64 numbers are small and positive
        args,
        inbufs,
    })?;
    result_of(link, g)
}

/// A guest's `open`/`openat` of one of its own `/proc` files that
/// describe memory and CPU ([`procview`]): answered with the guest's file
/// merged with home's, in a memfd made at home. `None`: not such an open
/// (it is forwarded as any other).
fn open_own_proc_file(
    g: &Guest,
    link: &mut dyn Link,
    n: &Notif,
) -> Result<Option<i64>, RemoteError> {
    let args = n.data.args;
    // An absolute path: openat's directory does not matter.
    let (path_at, flags) = match i64::from(n.data.nr) {
        libc::SYS_open => (args[0], args[1]),
        libc::SYS_openat => (args[1], args[2]),
        _ => return Ok(None),
    };
    if flags & libc::O_ACCMODE as u64 != libc::O_RDONLY as u64 || path_at == 0 {
        return Ok(None);
    }
    let mut path = [0u8; 40];
    // Within its page: a path near the end of a mapping is not ours.
    let room = (4096 - (path_at % 4096) as usize).min(path.len());
    if g.mem.read_mem(path_at, &mut path[..room]).is_err() {
        return Ok(None);
    }
    let Some(end) = path[..room].iter().position(|&b| b == 0) else {
        return Ok(None);
    };
    let Some(file) = procview::names(&path[..end], g.home_pid) else {
        return Ok(None);
    };
    let Ok(mine) = std::fs::read_to_string(format!("/proc/{}/{file}", g.pid)) else {
        return Ok(None);
    };
    let text = match file {
        "status" | "stat" => {
            let home = match read_at_home(g, link, &format!("/proc/self/{file}"))? {
                Ok(home) => home,
                Err(errno) => return Ok(Some(errno)),
            };
            if file == "status" {
                procview::status(&mine, &home)
            } else {
                let cpu = cpu_now(g);
                let ticks = mosaic_ckpt::cputime::ticks;
                match procview::stat(&mine, &home, ticks(cpu.user_ns), ticks(cpu.sys_ns)) {
                    Some(text) => text,
                    None => return Ok(None),
                }
            }
        }
        "statm" => mine,
        _ => procview::maps(&mine, g.files_from.as_deref()),
    };
    let cloexec = if flags & libc::O_CLOEXEC as u64 != 0 {
        libc::MFD_CLOEXEC as u64
    } else {
        0
    };
    let (fd, _) = at_home(
        link,
        g,
        libc::SYS_memfd_create,
        [1, cloexec, 0, 0, 0, 0],
        vec![(0, b"mosaic-proc\0".to_vec().into())],
    )?;
    if fd < 0 {
        return Ok(Some(fd));
    }
    let fd_arg = fd as u64;
    let bytes = text.into_bytes();
    for piece in bytes.chunks(codec::MAX_BUF as usize) {
        let (wrote, _) = at_home(
            link,
            g,
            libc::SYS_write,
            [fd_arg, 1, piece.len() as u64, 0, 0, 0],
            vec![(1, piece.to_vec().into())],
        )?;
        if wrote != piece.len() as i64 {
            at_home(
                link,
                g,
                libc::SYS_close,
                [fd_arg, 0, 0, 0, 0, 0],
                Vec::new(),
            )?;
            return Ok(Some(if wrote < 0 {
                wrote
            } else {
                -i64::from(libc::EIO)
            }));
        }
    }
    at_home(
        link,
        g,
        libc::SYS_lseek,
        [fd_arg, 0, 0, 0, 0, 0],
        Vec::new(),
    )?;
    Ok(Some(fd))
}

/// The contents of `path` as the placeholder reads it (up to 1 MiB), or
/// the errno its open or read failed with.
fn read_at_home(
    g: &Guest,
    link: &mut dyn Link,
    path: &str,
) -> Result<Result<String, i64>, RemoteError> {
    let mut name = path.as_bytes().to_vec();
    name.push(0);
    let (fd, _) = at_home(
        link,
        g,
        libc::SYS_openat,
        [
            libc::AT_FDCWD as u64,
            1,
            (libc::O_RDONLY | libc::O_CLOEXEC) as u64,
            0,
            0,
            0,
        ],
        vec![(1, name.into())],
    )?;
    if fd < 0 {
        return Ok(Err(fd));
    }
    let mut text = Vec::new();
    let read = loop {
        let (got, out) = at_home(
            link,
            g,
            libc::SYS_read,
            [fd as u64, 1, 64 << 10, 0, 0, 0],
            Vec::new(),
        )?;
        if got <= 0 || text.len() > 1 << 20 {
            break got;
        }
        if let Some((_, b)) = out.into_iter().next() {
            text.extend_from_slice(&b);
        }
    };
    at_home(
        link,
        g,
        libc::SYS_close,
        [fd as u64, 0, 0, 0, 0, 0],
        Vec::new(),
    )?;
    Ok(if read < 0 {
        Err(read)
    } else {
        Ok(String::from_utf8_lossy(&text).into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_proto::migrate::{decode, encode};

    /// A link fed from a list of frames, keeping what is sent.
    struct Script {
        incoming: std::collections::VecDeque<Vec<u8>>,
        sent: Vec<Vec<u8>>,
    }

    impl Link for Script {
        fn send_bytes(&mut self, frame: &[u8]) -> Result<(), LinkError> {
            self.sent.push(frame.to_vec());
            Ok(())
        }
        fn recv_bytes(&mut self) -> Result<Vec<u8>, LinkError> {
            self.incoming.pop_front().ok_or(LinkError::Closed)
        }
    }

    #[test]
    fn a_node_that_accepts_no_guests_refuses_before_reading_the_image() {
        let begin = HomeMsg::Begin {
            home: "node1".into(),
            home_pid: 42,
            image_len: 0,
            locked: false,
        };
        let mut link = Script {
            incoming: [
                encode(&begin),
                encode(&HomeMsg::ImageChunk(vec![1, 2, 3].into())),
            ]
            .into(),
            sent: Vec::new(),
        };
        let policy = GuestPolicy {
            accept: false,
            ..Default::default()
        };
        let mut started = false;
        assert!(serve(&mut link, &policy, &mut |_, _, _, _| started = true).is_err());
        assert!(!started);
        assert_eq!(link.incoming.len(), 1, "the image was not read");
        match decode::<RemoteMsg>(&link.sent[0]).unwrap() {
            RemoteMsg::Failed { error } => assert!(error.contains("accepts no guests"), "{error}"),
            other => panic!("expected Failed, got {other:?}"),
        }
    }
}
