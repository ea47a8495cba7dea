//! # mosaic-deputy: the home side of a migrated process
//!
//! The deputy owns *placeholders*: the original processes on their home node,
//! kept stopped under ptrace after their user context left. A placeholder
//! keeps its system context (PID, parent, fds, cwd, credentials, terminal);
//! system calls the guest forwards are executed inside it by injection, with
//! their buffers copied into a scratch area of the placeholder, so they see
//! exactly what the process would have seen at home. The guest's exit becomes
//! the placeholder's exit (an injected `exit_group`), its death by a signal
//! the placeholder's death by the same signal, so the parent's `wait` is
//! exact. The deputy never restores memory it did not dump.
//!
//! Signals sent to the home PID are relayed to the guest; when the guest
//! stops (job control) the placeholder enters group-stop by the same signal
//! (so the shell sees it) and a SIGCONT is relayed back. Coming home: the
//! guest's image is restored into the placeholder itself (same PID, same
//! descriptors), which is then released to run natively.
//!
//! Once the guest runs, the placeholder's memory is unmapped (all but the
//! vDSO, where injections find their `syscall` instruction). A request to
//! come home waits while a forwarded call blocks at home.
//!
//! [`journey`]: the whole trip of one process (sent, served, sent on),
//! over what the node provides.

pub mod journey;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use mosaic_ckpt::ptrace::{Deferred, Tracee};
use mosaic_ckpt::{CaptureOptions, CkptError, RestoreOptions};
use mosaic_proto::image::CpuTime;
use mosaic_proto::migrate::{
    Buf, HomeMsg, ImageIn, ImageOut, Link, LinkError, LinkExt, RemoteMsg, STALL,
};
use mosaic_proto::ratelimit::Every;
use mosaic_proto::session::{State, remote_name};
use mosaic_proto::syscalls::codec::errno::{
    EINTR, ENOSYS, ERESTART_RESTARTBLOCK, ERESTARTNOHAND, ERESTARTNOINTR, ERESTARTSYS,
};
use mosaic_proto::syscalls::codec::{self, AtHome, PlaceError};
use mosaic_proto::syscalls::{Class, lookup};
use nix::sys::signal::Signal;
use thiserror::Error;
use tracing::{debug, info, warn};

/// Why a migration or a placeholder failed.
#[derive(Debug, Error)]
pub enum DeputyError {
    #[error(transparent)]
    Ckpt(#[from] CkptError),
    #[error("the target node refused the guest: {0}; the process goes on at home")]
    Refused(String),
    /// The target cannot map some of its files (not there, and not
    /// through its `/mfs`): sending them in the image would do.
    #[error("the target node cannot map its files: {0}; the process goes on at home")]
    FilesMissing(String),
    #[error("lost the guest's node ({0}); the process was killed")]
    GuestLost(LinkError),
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("protocol: {0}")]
    Unexpected(#[from] mosaic_proto::session::Unexpected),
}

/// Where an answer to a [`Command`] goes: where the process runs
/// afterwards (`None`: at home) and its PID there, or why it could not move.
pub type Reply = std::sync::mpsc::Sender<Result<(Option<String>, i32), String>>;

/// What the node asks of a deputy while its guest runs.
pub enum Command<T> {
    /// Take the process back. `then` is passed through to the caller in
    /// [`Outcome::Home`] (where to send it next); without it, the deputy
    /// answers `reply` itself once the process runs at home.
    ComeHome { then: Option<T>, reply: Reply },
}

/// How serving a migrated process ended.
#[derive(Debug)]
pub enum Outcome<T> {
    Exited(i32),
    Killed(i32),
    /// The process runs at home again (restored into the placeholder).
    /// `then`: where home asked it to go next; `next`: the node its host
    /// suggested when it sent it back (home decides whether to follow).
    /// `cpu_elsewhere`: all the CPU time it used away from home so far
    /// (the home kernel counts only its time here): the next capture's
    /// [`CaptureOptions::cpu_elsewhere`].
    Home {
        reason: String,
        then: Option<(T, Reply)>,
        next: Option<String>,
        cpu_elsewhere: CpuTime,
    },
}

/// How often an idle placeholder is checked for signals.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// Signals queued on process `pid` (thread and process queues).
fn pending_signals(pid: i32) -> u64 {
    mosaic_ckpt::procfs::signal_set(pid, &["SigPnd", "ShdPnd"]).unwrap_or(0)
}
/// Whether the process group of `pid` is orphaned: no member has a parent
/// in another group of the same session (POSIX). The kernel
/// discards SIGTSTP, SIGTTIN and SIGTTOU sent to such a group.
fn pgrp_orphaned(pid: i32) -> bool {
    // (pgrp, session, ppid) from /proc/PID/stat.
    let ids = |pid: i32| -> Option<(i32, i32, i32)> {
        let f = mosaic_ckpt::procfs::stat_fields(pid).ok()?;
        Some((
            f.get(5)?.parse().ok()?,
            f.get(6)?.parse().ok()?,
            f.get(4)?.parse().ok()?,
        ))
    };
    let Some((pgrp, session, _)) = ids(pid) else {
        return false;
    };
    let members = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(ids)
        .filter(|&(g, _, _)| g == pgrp);
    !members
        .filter_map(|(_, _, ppid)| ids(ppid))
        .any(|(g, s, _)| g != pgrp && s == session)
}

/// A migrated process's placeholder, once its guest runs.
pub struct Placeholder<T> {
    tracee: Tracee,
    scratch: Scratch,
    pub guest_pid: i32,
    /// In group-stop because its guest stopped (`PTRACE_LISTEN`); shared
    /// with whoever asked for [`Placeholder::stopped_flag`].
    stopped: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// A pending request to come home.
    asked: Option<(Option<T>, Reply)>,
    /// A pidfd of the placeholder, for `pidfd_getfd` (opened on first use).
    pidfd: Option<OwnedFd>,
    /// Warnings about its calls, at most one a second.
    noisy: Every,
    /// The CPU time its image said it had used when it left, and the part
    /// of it used away from home before.
    cpu_sent: CpuTime,
    cpu_elsewhere: CpuTime,
    /// Told, just before the placeholder ends, the CPU time its guests
    /// used away from home in all ([`Placeholder::when_it_ends`]).
    on_end: Option<EndHook>,
}

/// See [`Placeholder::when_it_ends`].
pub type EndHook = Box<dyn FnOnce(CpuTime) + Send>;

/// Sends process `pid` over `link`, captured with `opts` (`embed_files`:
/// the pages of its mapped files travel too, for a target that cannot map
/// them); `locked`: its host must not move it on its own. On success the process is a placeholder and its guest runs on
/// the other side; on any failure before that it goes on running at home
/// as if nothing happened.
pub fn migrate<T>(
    pid: i32,
    home: &str,
    link: &mut dyn Link,
    opts: &CaptureOptions,
    locked: bool,
) -> Result<Placeholder<T>, DeputyError> {
    link.set_stall_timeout(Some(STALL))?;
    link.send_msg(&HomeMsg::Begin {
        home: home.to_string(),
        home_pid: pid,
        image_len: 0,
        locked,
    })?;
    let started = std::time::Instant::now();
    let mut sender = ImageOut::<HomeMsg>::new(&mut *link);
    let (tracee, stats) = mosaic_ckpt::capture(pid, opts, &mut sender, &mut |_, _| {})?;
    let sent = sender.finish();
    debug!(
        pid,
        ms = started.elapsed().as_secs_f64() * 1e3,
        "captured and sent"
    );
    let answer = sent.and_then(|()| link.recv_msg::<RemoteMsg>());
    let answer = match answer {
        // Served by polling from now on.
        Ok(started @ RemoteMsg::Started { .. }) => link.set_stall_timeout(None).map(|()| started),
        other => other,
    };
    match answer {
        Ok(RemoteMsg::Started { guest_pid }) => {
            info!(
                pid,
                guest_pid,
                pages = stats.pages,
                image_bytes = stats.image_bytes,
                embedded_files = opts.embed_files,
                ms = started.elapsed().as_secs_f64() * 1e3,
                "migrated; the process is a placeholder now"
            );
            let mut p = Placeholder {
                tracee,
                scratch: Scratch::default(),
                guest_pid,
                stopped: Default::default(),
                asked: None,
                pidfd: None,
                noisy: Every::second(),
                cpu_sent: stats.cpu,
                cpu_elsewhere: opts.cpu_elsewhere,
                on_end: None,
            };
            // Signals caught while it was captured travelled in the image.
            p.tracee.deferred_signals.clear();
            // Its memory travelled: give it back to the home node.
            match p.tracee.release_memory() {
                Ok(bytes) => info!(pid, bytes, "released the placeholder's memory"),
                Err(e) => warn!(pid, error = %e, "could not release the placeholder's memory"),
            }
            p.quiet_timers();
            Ok(p)
        }
        other => {
            // Never lose a process: it goes on at home.
            tracee.release()?;
            match other {
                Ok(RemoteMsg::Failed { error }) => Err(DeputyError::Refused(error)),
                Ok(RemoteMsg::FilesMissing { error }) => Err(DeputyError::FilesMissing(error)),
                Ok(m) => Err(match State::Starting.remote_may_send(&m) {
                    Err(unexpected) => unexpected.into(),
                    Ok(_) => DeputyError::Protocol(format!("{} not handled", remote_name(&m))),
                }),
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// What the serving loop ends with.
enum Next<T> {
    Done(Outcome<T>),
    /// Restored at home: release it, then deliver these signals.
    Release(Outcome<T>, Vec<i32>),
}

impl<T> Placeholder<T> {
    /// A flag that is set while the process is stopped (job control).
    pub fn stopped_flag(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.stopped.clone()
    }

    /// Calls `hook` with the CPU time the process used away from home in
    /// all, once its guest ended (exited or killed), before the placeholder
    /// ends too: its parent's wait returns only after that, so whoever
    /// keeps the count for the parent (a shell's `time`, see the node) has
    /// it by then. The home kernel counts only the time spent here.
    pub fn when_it_ends(&mut self, hook: EndHook) {
        self.on_end = Some(hook);
    }

    /// Tells [`Placeholder::when_it_ends`]'s hook; `total`: what the guest
    /// used in all, every node's count.
    fn ended(&mut self, total: CpuTime) {
        if let Some(hook) = self.on_end.take() {
            hook(self.cpu_elsewhere.plus(total.since(self.cpu_sent)));
        }
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn set_stopped(&self, stopped: bool) {
        self.stopped
            .store(stopped, std::sync::atomic::Ordering::Relaxed);
    }

    /// Serves the guest's forwarded calls until it ends (the placeholder
    /// then ends the same way) or comes home (the placeholder is then the
    /// process again, running).
    pub fn serve(
        mut self,
        link: &mut dyn Link,
        commands: &std::sync::mpsc::Receiver<Command<T>>,
    ) -> Result<Outcome<T>, DeputyError> {
        let served = self.serve_until_done(link, commands);
        if let Some((_, reply)) = self.asked.take() {
            let _ = reply.send(Err("the process ended before it could come home".into()));
        }
        match served? {
            Next::Done(outcome) => Ok(outcome),
            Next::Release(outcome, signals) => {
                let pid = self.tracee.pid;
                self.tracee.release()?;
                for sig in signals {
                    if let Ok(sig) = Signal::try_from(sig) {
                        let _ = nix::sys::signal::kill(pid, sig);
                    }
                }
                Ok(outcome)
            }
        }
    }

    /// The serving loop, and the one rule for a session that cannot go on
    /// (an unexpected message, a failure of the placeholder, a link that
    /// breaks): the process ends by SIGKILL, so that its parent sees it end,
    /// and its guest ends over there with the link.
    fn serve_until_done(
        &mut self,
        link: &mut dyn Link,
        commands: &std::sync::mpsc::Receiver<Command<T>>,
    ) -> Result<Next<T>, DeputyError> {
        // Set once the home PID was killed (SIGKILL reaches the placeholder
        // itself): the guest is told and will report its death.
        let mut died: Option<i32> = None;
        let served = self.serve_loop(link, commands, &mut died);
        if let Err(e) = &served
            && died.is_none()
        {
            warn!(pid = self.tracee.pid.as_raw(), error = %e, "the session with the guest's node cannot go on; ending the process");
            self.trap();
            self.die_by(Signal::SIGKILL);
        }
        served
    }

    fn serve_loop(
        &mut self,
        link: &mut dyn Link,
        commands: &std::sync::mpsc::Receiver<Command<T>>,
        died: &mut Option<i32>,
    ) -> Result<Next<T>, DeputyError> {
        let mut watched = std::time::Instant::now();
        loop {
            // Signals and requests are looked at every WATCH_EVERY, also
            // while the guest keeps us busy with calls.
            if watched.elapsed() >= WATCH_EVERY {
                watched = std::time::Instant::now();
                if died.is_none() {
                    *died = self.watch(link)?;
                }
                if died.is_none()
                    && self.asked.is_none()
                    && let Ok(Command::ComeHome { then, reply }) = commands.try_recv()
                {
                    link.send_msg(&HomeMsg::ComeHome)?;
                    self.asked = Some((then, reply));
                }
            }
            let ready = link.readable(WATCH_EVERY);
            if matches!(ready, Ok(false)) {
                continue;
            }
            let msg = match ready.and_then(|_| link.recv_msg::<RemoteMsg>()) {
                Ok(m) => m,
                // The guest's node is gone: the process is lost with it.
                Err(e) => return Err(DeputyError::GuestLost(e)),
            };
            State::Serving.remote_may_send(&msg)?;
            match msg {
                RemoteMsg::Syscall { .. } if died.is_some() => {
                    link.send_msg(&HomeMsg::SyscallResult {
                        ret: EINTR,
                        outbufs: Vec::new(),
                    })?;
                }
                RemoteMsg::Syscall { nr, args, inbufs } => {
                    self.trap();
                    let (ret, outbufs) = self.execute(nr, args, &inbufs)?;
                    if matches!(ret, ERESTARTSYS | ERESTARTNOHAND) {
                        // Interrupted by a signal still queued (the
                        // injection's own trap came first): it goes along.
                        self.take_pending()?;
                    }
                    // Signals that arrived during the call are the guest's,
                    // and go first: an interrupted call restarts or fails
                    // by the handler of the signal that interrupted it.
                    for sig in self.take_deferred() {
                        link.send_msg(&HomeMsg::Signal { signal: sig })?;
                    }
                    link.send_msg(&HomeMsg::SyscallResult { ret, outbufs })?;
                }
                RemoteMsg::Exited { code, cpu } => {
                    self.ended(cpu);
                    if died.is_none() {
                        self.trap();
                        // exit_group inside the placeholder: its parent sees `code`.
                        let _ = self
                            .tracee
                            .syscall(libc::SYS_exit_group, [code as u64, 0, 0, 0, 0, 0]);
                    }
                    return Ok(Next::Done(Outcome::Exited(code)));
                }
                RemoteMsg::Killed { signal, cpu } => {
                    self.ended(cpu);
                    if died.is_none() {
                        self.trap();
                        self.die_by(Signal::try_from(signal).unwrap_or(Signal::SIGKILL));
                    }
                    return Ok(Next::Done(Outcome::Killed(signal)));
                }
                RemoteMsg::Stopped { signal } => {
                    if died.is_none() {
                        self.group_stop(link, signal)?;
                    }
                }
                RemoteMsg::Returning { reason, next } => {
                    if let Some(done) = self.take_back(link, reason, next, died.is_some())? {
                        return Ok(done);
                    }
                }
                other => {
                    return Err(DeputyError::Protocol(format!(
                        "{} not handled while serving",
                        remote_name(&other)
                    )));
                }
            }
        }
    }

    /// Restores the returning guest into the placeholder. `None` if it
    /// could not (the guest then goes on where it was).
    fn take_back(
        &mut self,
        link: &mut dyn Link,
        reason: String,
        next: Option<String>,
        died: bool,
    ) -> Result<Option<Next<T>>, DeputyError> {
        let pid = self.tracee.pid.as_raw();
        self.trap();
        let restored: Result<CpuTime, DeputyError> = if died {
            Err(DeputyError::Protocol("the home process was killed".into()))
        } else {
            let opts = RestoreOptions {
                keep_files: true,
                cpu_limit: mosaic_ckpt::CpuLimit::KeepOwn,
                ..Default::default()
            };
            link.set_stall_timeout(Some(STALL))?;
            let mut input = ImageIn::<RemoteMsg>::new(&mut *link);
            let r = mosaic_ckpt::restore_into(&mut self.tracee, &mut input, &opts, &mut |_, _| {});
            let drained = input.drain();
            let r = r
                .map_err(DeputyError::from)
                .and_then(|cpu| drained.map(|()| cpu).map_err(DeputyError::from));
            link.set_stall_timeout(None)?;
            r
        };
        let cpu_back = match restored {
            Ok(cpu) => cpu,
            Err(e) => {
                if died {
                    let _ = ImageIn::<RemoteMsg>::new(&mut *link).drain();
                }
                warn!(pid, error = %e, "could not take the process back; its guest goes on");
                self.quiet_timers();
                // Its memory may be gone: a new scratch on the next call.
                self.scratch = Scratch::default();
                link.send_msg(&HomeMsg::Stay {
                    error: e.to_string(),
                })?;
                if let Some((_, reply)) = self.asked.take() {
                    let _ = reply.send(Err(format!("could not take it back: {e}")));
                }
                return Ok(None);
            }
        };
        // What its guest (and any before it) used; the home kernel counts
        // the rest.
        let cpu_elsewhere = self.cpu_elsewhere.plus(cpu_back.since(self.cpu_sent));
        // It runs here from now on, whatever the link does: the remote
        // ends its guest when the link closes.
        let told = link.send_msg(&HomeMsg::Arrived);
        // The guest is ended over there; signals it caught meanwhile are ours.
        let signals = match told.and_then(|()| link.recv_msg::<RemoteMsg>()) {
            Ok(RemoteMsg::Gone { signals }) => signals,
            Ok(other) => {
                let why = State::Leaving.remote_may_send(&other).err();
                warn!(pid, ?why, "the session ended oddly; the process runs here");
                Vec::new()
            }
            Err(e) => {
                warn!(pid, error = %e, "the link broke as the process came home; it runs here");
                Vec::new()
            }
        };
        info!(pid, %reason, "the process came home and runs here again");
        let then = match self.asked.take() {
            Some((None, reply)) => {
                let _ = reply.send(Ok((None, pid)));
                None
            }
            Some((Some(next), reply)) => Some((next, reply)),
            None => None,
        };
        Ok(Some(Next::Release(
            Outcome::Home {
                reason,
                then,
                next,
                cpu_elsewhere,
            },
            signals,
        )))
    }

    /// Its guest stopped by `signal`: the placeholder enters group-stop by
    /// the same signal, so its parent (the shell) sees the stop, and stays
    /// there under `PTRACE_LISTEN` until a SIGCONT, which `watch` relays.
    fn group_stop(&mut self, link: &mut dyn Link, signal: i32) -> Result<(), DeputyError> {
        use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
        let Ok(sig) = Signal::try_from(signal) else {
            return Ok(());
        };
        if self.is_stopped() {
            return Ok(());
        }
        let pid = self.tracee.pid;
        if sig != Signal::SIGSTOP && pgrp_orphaned(pid.as_raw()) {
            // At home the kernel discards SIGTSTP/TTIN/TTOU in an orphaned
            // process group (nobody could continue it): so do we.
            info!(pid = pid.as_raw(), signal = %sig, "stop discarded: orphaned process group");
            link.send_msg(&HomeMsg::Signal {
                signal: libc::SIGCONT,
            })?;
            return Ok(());
        }
        // Its own disposition and mask are stale while the guest is away
        // (the guest's come back with it): default, unblocked.
        self.scratch.begin(&mut self.tracee, 64)?;
        let act = self.scratch.put(&mut self.tracee, &[0u8; 32])?;
        self.tracee
            .syscall(libc::SYS_rt_sigaction, [signal as u64, act, 0, 8, 0, 0])?;
        let mask = self.tracee.sigmask()?;
        self.tracee.set_sigmask(mask & !(1u64 << (signal - 1)))?;
        let _ = nix::sys::signal::kill(pid, sig);
        let ptrace_err = |what, e| DeputyError::Ckpt(CkptError::Ptrace(what, e));
        // With the signal queued, resuming stops again at its delivery
        // before any user instruction runs.
        nix::sys::ptrace::cont(pid, None).map_err(|e| ptrace_err("PTRACE_CONT", e))?;
        loop {
            match waitpid(pid, Some(WaitPidFlag::__WALL)).map_err(|e| ptrace_err("waitpid", e))? {
                WaitStatus::Stopped(_, s) if s == sig => {
                    nix::sys::ptrace::cont(pid, Some(sig))
                        .map_err(|e| ptrace_err("PTRACE_CONT", e))?;
                }
                WaitStatus::Stopped(
                    _,
                    fault @ (Signal::SIGSEGV | Signal::SIGBUS | Signal::SIGILL),
                ) => {
                    // It ran an instruction of its released memory: the
                    // stop signal was discarded after all. It faulted before
                    // executing anything, and stays in this stop (where
                    // injections work); the guest goes on, as it would here.
                    warn!(pid = pid.as_raw(), signal = %sig, %fault, "the stop signal was discarded; the guest goes on");
                    link.send_msg(&HomeMsg::Signal {
                        signal: libc::SIGCONT,
                    })?;
                    return Ok(());
                }
                WaitStatus::Stopped(_, other) => {
                    // Another signal first: the guest's; ours is still queued.
                    self.tracee
                        .deferred_signals
                        .push(Deferred::at_stop(pid, other));
                    nix::sys::ptrace::cont(pid, None).map_err(|e| ptrace_err("PTRACE_CONT", e))?;
                }
                WaitStatus::PtraceEvent(_, _, libc::PTRACE_EVENT_STOP) => {
                    // SAFETY: PTRACE_LISTEN takes no pointers.
                    let r = unsafe { libc::ptrace(libc::PTRACE_LISTEN, pid.as_raw(), 0, 0) };
                    if r < 0 {
                        return Err(ptrace_err("PTRACE_LISTEN", nix::errno::Errno::last()));
                    }
                    self.set_stopped(true);
                    info!(pid = pid.as_raw(), signal = %sig, "stopped with its guest");
                    return Ok(());
                }
                WaitStatus::Exited(..) | WaitStatus::Signaled(..) => {
                    return Err(DeputyError::Ckpt(CkptError::Gone(pid.as_raw())));
                }
                _ => {}
            }
        }
    }

    /// Back from group-stop into a ptrace stop we can inject from.
    fn trap(&mut self) {
        use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
        if !self.is_stopped() {
            return;
        }
        self.set_stopped(false);
        let pid = self.tracee.pid;
        if nix::sys::ptrace::interrupt(pid).is_ok() {
            while let Ok(st) = waitpid(pid, Some(WaitPidFlag::__WALL)) {
                if matches!(
                    st,
                    WaitStatus::PtraceEvent(..) | WaitStatus::Exited(..) | WaitStatus::Signaled(..)
                ) {
                    break;
                }
            }
        }
    }

    /// Between calls: relays signals queued on the placeholder to the
    /// guest, notices a SIGCONT that ended its group-stop, and notices its
    /// death (SIGKILL of the home PID). Returns the killing signal if it
    /// died.
    fn watch(&mut self, link: &mut dyn Link) -> Result<Option<i32>, DeputyError> {
        use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
        let pid = self.tracee.pid;
        let mut continued = false;
        match waitpid(pid, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                link.send_msg(&HomeMsg::Signal { signal: sig as i32 })?;
                return Ok(Some(sig as i32));
            }
            Ok(WaitStatus::Exited(..)) | Err(_) => {
                link.send_msg(&HomeMsg::Signal {
                    signal: libc::SIGKILL,
                })?;
                return Ok(Some(libc::SIGKILL));
            }
            Ok(WaitStatus::PtraceEvent(..)) if self.is_stopped() => {
                // SIGCONT woke it out of group-stop; it is in a trap stop.
                self.set_stopped(false);
                continued = true;
            }
            _ => {}
        }
        if self.is_stopped() {
            return Ok(None);
        }
        self.take_pending()?;
        if continued
            && !self
                .tracee
                .deferred_signals
                .iter()
                .any(|d| d.signal == libc::SIGCONT)
        {
            self.tracee
                .deferred_signals
                .push(Deferred::plain(libc::SIGCONT));
        }
        // A pending signal also shows up as a stop while we inject (the
        // injection then suppresses it): those are relayed too.
        for sig in self.take_deferred() {
            info!(
                pid = pid.as_raw(),
                signal = sig,
                "relaying a signal to the guest"
            );
            link.send_msg(&HomeMsg::Signal { signal: sig })?;
        }
        Ok(None)
    }

    /// The signals caught at the placeholder, to relay to the guest; those
    /// its own timers sent are dropped: its timers travelled with the
    /// guest, whose copies fire there (one that fired here before it was
    /// deleted would reach the guest twice).
    fn take_deferred(&mut self) -> Vec<i32> {
        std::mem::take(&mut self.tracee.deferred_signals)
            .into_iter()
            .filter(|d| !d.from_timer())
            .map(|d| d.signal)
            .collect()
    }

    /// Takes the signals queued on the placeholder off its queue, into
    /// `deferred_signals` (the guest's).
    fn take_pending(&mut self) -> Result<(), DeputyError> {
        let pid = self.tracee.pid;
        let mut pending = pending_signals(pid.as_raw());
        if pending & (1 << (libc::SIGSTOP - 1)) != 0 {
            // SIGSTOP cannot be waited for: any injection meets it at its
            // delivery stop, which suppresses and keeps it for the guest.
            self.tracee.syscall(libc::SYS_getpid, [0; 6])?;
            pending = pending_signals(pid.as_raw());
        }
        self.scratch.begin(&mut self.tracee, 256)?;
        let room = self.scratch.alloc(160)?;
        self.tracee.dequeue_signals(pending, room)?;
        Ok(())
    }

    /// Disarms the placeholder's interval timers and deletes its POSIX
    /// timers: they travelled with the guest and fire there (a second tick
    /// from home would be relayed too). Coming home recreates them.
    fn quiet_timers(&mut self) {
        let t = &mut self.tracee;
        let zero = self
            .scratch
            .begin(t, 64)
            .and_then(|()| self.scratch.put(t, &[0u8; 32]));
        if let Ok(zero) = zero {
            for which in 0..3u64 {
                let _ = t.syscall(libc::SYS_setitimer, [which, zero, 0, 0, 0, 0]);
            }
        }
        match mosaic_ckpt::timers::delete_posix(t) {
            Ok(0) => {}
            Ok(n) => debug!(
                pid = t.pid.as_raw(),
                n, "deleted the placeholder's POSIX timers"
            ),
            Err(e) => {
                warn!(pid = t.pid.as_raw(), error = %e, "could not delete the placeholder's POSIX timers; a timer may tick twice")
            }
        }
    }

    /// Makes the placeholder die by `sig`, as its guest did.
    fn die_by(&mut self, sig: Signal) {
        let pid = self.tracee.pid;
        if sig != Signal::SIGKILL {
            // Default disposition and unblocked, so the signal kills it.
            let reset = self
                .scratch
                .begin(&mut self.tracee, 64)
                .and_then(|()| self.scratch.put(&mut self.tracee, &[0u8; 32]))
                .and_then(|act| {
                    self.tracee
                        .syscall(libc::SYS_rt_sigaction, [sig as u64, act, 0, 8, 0, 0])
                });
            if !matches!(reset, Ok(0)) {
                warn!(
                    pid = pid.as_raw(),
                    "could not reset the disposition of {sig}"
                );
            }
            if let Ok(mask) = self.tracee.sigmask() {
                let _ = self.tracee.set_sigmask(mask & !(1u64 << (sig as u32 - 1)));
            }
            if nix::sys::ptrace::detach(pid, Some(sig)).is_ok() {
                return;
            }
        }
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::__WALL));
    }

    /// The fast path for `read` and `pread64` of a regular file: done by
    /// this thread on a duplicate of the placeholder's descriptor
    /// (`pidfd_getfd`: the same open file description, so the same offset
    /// and flags) instead of injected. Provably the same: reading a regular
    /// file depends on the open file description and the inode, not on the
    /// calling task, and never blocks on another process; except on FUSE,
    /// which tells the file system who calls (the caller would be us), so
    /// FUSE files (`/mfs` too) take the injected path. `None`: not this
    /// path.
    fn read_directly(&mut self, nr: u32, args: [u64; 6]) -> Option<(i64, Vec<Buf>)> {
        const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;
        let positional = match i64::from(nr) {
            libc::SYS_read => false,
            libc::SYS_pread64 => true,
            _ => return None,
        };
        let len = args[2];
        if len > codec::MAX_BUF || args[1] == 0 {
            return None;
        }
        if self.pidfd.is_none() {
            // SAFETY: pidfd_open takes integers and returns a descriptor we own.
            let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, self.tracee.pid.as_raw(), 0) };
            // SAFETY: a fresh descriptor nothing else owns.
            self.pidfd = (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(raw as i32) });
        }
        let pidfd = self.pidfd.as_ref()?.as_raw_fd();
        // SAFETY: pidfd_getfd takes integers and returns a descriptor we own.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, args[0] as i32, 0) };
        if raw < 0 {
            return None; // EBADF and the like: the injected call says it right
        }
        // SAFETY: as above.
        let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(raw as i32) });
        let regular = file.metadata().is_ok_and(|m| m.file_type().is_file());
        let fuse = nix::sys::statfs::fstatfs(&file)
            .map_or(true, |s| s.filesystem_type().0 == FUSE_SUPER_MAGIC);
        if !regular || fuse {
            return None;
        }
        let mut buf = vec![0u8; len as usize];
        let got = if positional {
            std::os::unix::fs::FileExt::read_at(&file, &mut buf, args[3])
        } else {
            std::io::Read::read(&mut &file, &mut buf)
        };
        Some(match got {
            Ok(n) => {
                buf.truncate(n);
                (n as i64, vec![(1, buf.into())])
            }
            Err(e) => (
                -i64::from(e.raw_os_error().unwrap_or(libc::EIO)),
                Vec::new(),
            ),
        })
    }

    /// Runs a forwarded call inside the placeholder: its buffers placed in
    /// scratch by the codec, the call injected, its out-buffers collected.
    fn execute(
        &mut self,
        nr: u32,
        args: [u64; 6],
        inbufs: &[Buf],
    ) -> Result<(i64, Vec<Buf>), DeputyError> {
        // The remote forwards only what the codec marshals; anything else
        // is its mistake, answered ENOSYS and said.
        let Some(spec) = lookup(nr).filter(|s| s.class == Class::Forward) else {
            return Ok(self.refuse(ENOSYS, nr, "not a forwarded call", "its row"));
        };
        let marshal = match codec::resolve(spec, &args) {
            Ok(m) => m,
            Err(AtHome(why)) => {
                return Ok(self.refuse(ENOSYS, nr, "a call made at home", why));
            }
        };
        if let Some(done) = self.read_directly(nr, args) {
            return Ok(done);
        }
        let placed = match codec::place(&marshal, &args, inbufs, &mut self.room()) {
            Ok(p) => p,
            Err(PlaceError::Bad { errno, why }) => {
                return Ok(self.refuse(errno, nr, "a malformed forwarded call", &why));
            }
            Err(PlaceError::Scratch(e)) => return Err(e.into()),
        };
        let mut room = self.room();
        // A signal for the home PID can interrupt a blocking call in the
        // placeholder. ERESTARTNOINTR means "always restart": done here.
        // ERESTARTSYS and ERESTARTNOHAND go to the remote with the signal,
        // whose kernel then restarts or fails the call by the guest's own
        // handler flags (SA_RESTART). A restart block cannot travel: EINTR.
        let ret = loop {
            match room.tracee.syscall(i64::from(nr), placed.args)? {
                ERESTARTNOINTR => continue,
                ERESTART_RESTARTBLOCK => break EINTR,
                r => break r,
            }
        };
        Ok((ret, placed.collect(ret, &mut room)?))
    }
}

impl<T> Placeholder<T> {
    /// The codec's room in this placeholder.
    fn room(&mut self) -> InPlaceholder<'_> {
        InPlaceholder {
            tracee: &mut self.tracee,
            scratch: &mut self.scratch,
        }
    }

    /// A forwarded call answered `errno` without running: said, at most
    /// once a second (a guest may repeat it in a loop).
    fn refuse(&mut self, errno: i64, nr: u32, what: &str, why: &str) -> (i64, Vec<Buf>) {
        if let Some(held) = self.noisy.allow() {
            let syscall = lookup(nr).map_or("?", |s| s.name);
            warn!(
                pid = self.tracee.pid.as_raw(),
                nr, syscall, why, held, errno, "{what} from the guest; answered with an error"
            );
        }
        (errno, Vec::new())
    }
}

/// The codec's room for one call: the deputy's scratch mapping inside the
/// placeholder, reached through ptrace.
struct InPlaceholder<'a> {
    tracee: &'a mut Tracee,
    scratch: &'a mut Scratch,
}

impl codec::Scratch for InPlaceholder<'_> {
    type Error = CkptError;
    fn reserve(&mut self, len: u64) -> Result<u64, CkptError> {
        self.scratch.begin(self.tracee, len)?;
        Ok(self.scratch.base)
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), CkptError> {
        self.tracee.write_mem(addr, data)
    }
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), CkptError> {
        self.tracee.read_mem(addr, buf)
    }
}

/// Scratch memory inside the placeholder for the buffers of one call,
/// mapped on first use and grown (between calls) as needed.
#[derive(Default)]
struct Scratch {
    base: u64,
    cap: u64,
    used: u64,
}

const ALIGN: u64 = 16;

impl Scratch {
    /// Starts a call that needs at most `len` bytes.
    fn begin(&mut self, t: &mut Tracee, len: u64) -> Result<(), CkptError> {
        self.used = 0;
        if len <= self.cap {
            return Ok(());
        }
        let new_cap = len.max(1 << 20).next_power_of_two();
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        let addr = t.mmap_anon("mmap of the deputy's scratch", 0, new_cap, rw, 0)?;
        if self.cap > 0 {
            t.syscall_ok(
                "munmap of the old scratch",
                libc::SYS_munmap,
                [self.base, self.cap, 0, 0, 0, 0],
            )?;
        }
        self.base = addr;
        self.cap = new_cap;
        Ok(())
    }

    fn alloc(&mut self, len: u64) -> Result<u64, CkptError> {
        let len = len.max(1).div_ceil(ALIGN) * ALIGN;
        if self.used + len > self.cap {
            return Err(CkptError::Restore("deputy scratch overflow".into()));
        }
        let at = self.base + self.used;
        self.used += len;
        Ok(at)
    }

    fn put(&mut self, t: &mut Tracee, data: &[u8]) -> Result<u64, CkptError> {
        let at = self.alloc(data.len() as u64)?;
        if !data.is_empty() {
            t.write_mem(at, data)?;
        }
        Ok(at)
    }
}
