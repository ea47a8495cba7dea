//! The session of one migrated process, home's side: sending it
//! ([`migrate`]) and serving its guest until it ends or comes home
//! ([`Placeholder::serve`]); the states and legal messages are
//! `mosaic_proto::session`'s.

use std::os::fd::OwnedFd;

use crate::scratch::Scratch;
use crate::{Command, DeputyError, Outcome, Reply};
use mosaic_ckpt::CaptureOptions;
use mosaic_ckpt::ptrace::Tracee;
use mosaic_proto::abi;
use mosaic_proto::image::CpuTime;
use mosaic_proto::migrate::{
    Buf, HomeMsg, ImageOut, Link, LinkError, LinkExt, Queue, RemoteMsg, SERVING_QUEUE, STALL,
    result_messages,
};
use mosaic_proto::ratelimit::Every;
use mosaic_proto::session::{State, remote_name};
use mosaic_proto::syscalls::codec::errno::{EINTR, ERESTARTNOHAND, ERESTARTSYS};
use nix::sys::signal::Signal;
use tracing::{debug, info, warn};

/// A message legal where the session is but that this side does not
/// handle there (the table and the code disagree: a bug, ended as an
/// unexpected message is).
fn not_handled(what: &str) -> DeputyError {
    DeputyError::Protocol(format!("{what} is not handled where it is legal"))
}

/// How often an idle placeholder is checked for signals.
pub(crate) const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// A migrated process's placeholder, once its guest runs.
pub struct Placeholder<T> {
    pub(crate) tracee: Tracee,
    pub(crate) scratch: Scratch,
    pub guest_pid: i32,
    /// In group-stop because its guest stopped (`PTRACE_LISTEN`); shared
    /// with whoever asked for [`Placeholder::stopped_flag`].
    pub(crate) stopped: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// A pending request to come home.
    pub(crate) asked: Option<(Option<T>, Reply)>,
    /// A pidfd of the placeholder, for `pidfd_getfd` (opened on first use).
    pub(crate) pidfd: Option<OwnedFd>,
    /// Warnings about its calls, at most one a second.
    pub(crate) noisy: Every,
    /// The CPU time its image said it had used when it left, and the part
    /// of it used away from home before.
    pub(crate) cpu_sent: CpuTime,
    pub(crate) cpu_elsewhere: CpuTime,
    /// Told, just before the placeholder ends, the CPU time its guests
    /// used away from home in all ([`Placeholder::when_it_ends`]).
    pub(crate) on_end: Option<EndHook>,
    /// Where the main thread's call stands for a cancel.
    pub(crate) gate: std::sync::Arc<crate::calls::Gate>,
    /// While a thread router serves: where a thread made for the guest
    /// gets its worker.
    pub(crate) births: Option<std::sync::mpsc::Sender<crate::threads::Birth>>,
    /// The workers of its other threads, while they have them.
    pub(crate) crew: crate::threads::Crew,
    /// Scratch rooms of other threads whose calls the session makes
    /// itself (taken back from their workers by a return that failed).
    pub(crate) scratches: std::collections::HashMap<i32, Scratch>,
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
            // Results go in pieces through a bounded queue, so that one
            // thread's small result is not queued behind megabytes of
            // another's (`SERVING_QUEUE`).
            if let Err(e) = link.bound_queue(Queue::Send, SERVING_QUEUE) {
                info!(pid, error = %e, "the link's queue is as the system tunes it");
            }
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
                gate: Default::default(),
                births: None,
                crew: Default::default(),
                scratches: Default::default(),
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
                    Ok(_) => not_handled(remote_name(&m)),
                }),
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// What the serving loop ends with.
pub(crate) enum Next<T> {
    Done(Outcome<T>),
    /// Restored at home: release it, then deliver these signals.
    Release(Outcome<T>, Vec<i32>),
    /// The guest's first thread is being born ([`Placeholder::serve`]):
    /// the call of its main thread, made once workers serve threads.
    FirstThread {
        nr: u32,
        args: [u64; 6],
        inbufs: Vec<mosaic_proto::migrate::Buf>,
    },
}

/// A main thread's call made before the serving loop: number, arguments,
/// in-buffers ([`Next::FirstThread`]).
type FirstCall = (u32, [u64; 6], Vec<mosaic_proto::migrate::Buf>);

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
    pub(crate) fn ended(&mut self, total: CpuTime) {
        if let Some(hook) = self.on_end.take() {
            hook(self.cpu_elsewhere.plus(total.since(self.cpu_sent)));
        }
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn set_stopped(&self, stopped: bool) {
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
        let _ = mosaic_ckpt::sched::short_slice();
        // Its other threads go to workers (`crate::threads`).
        let others = std::mem::take(&mut self.tracee.threads);
        let mut served = match self.tracee.syscall_insn() {
            Some(insn) if !others.is_empty() => {
                self.serve_threaded(link, commands, others, insn, None)
            }
            _ => {
                self.tracee.threads = others;
                self.serve_until_done(link, commands, None)
            }
        };
        // A single-threaded guest's first thread: from now on its calls
        // go through the router, which gives each thread a worker. (Not
        // from the start: the router's hop costs a single thread's calls
        // a cross-CPU wake-up each.)
        if let Ok(Next::FirstThread { nr, args, inbufs }) = served {
            served = match self.tracee.syscall_insn() {
                Some(insn) => {
                    self.serve_threaded(link, commands, Vec::new(), insn, Some((nr, args, inbufs)))
                }
                None => Err(DeputyError::Protocol(
                    "a thread born away, and no system call instruction to make it with".into(),
                )),
            };
        }
        if let Some((_, reply)) = self.asked.take() {
            let _ = reply.send(Err("the process ended before it could come home".into()));
        }
        match served? {
            Next::Done(outcome) => Ok(outcome),
            Next::FirstThread { .. } => {
                Err(DeputyError::Protocol("a first thread born twice".into()))
            }
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

    /// Serves a guest with threads: `others` (its placeholder threads
    /// but the main one) each get a worker, and calls come through the
    /// router (`crate::threads`); `first`, a main thread's call that made
    /// the guest's first thread, is made first.
    fn serve_threaded(
        &mut self,
        link: &mut dyn Link,
        commands: &std::sync::mpsc::Receiver<Command<T>>,
        others: Vec<mosaic_ckpt::ptrace::Tracee>,
        insn: u64,
        first: Option<FirstCall>,
    ) -> Result<Next<T>, DeputyError> {
        // A cancel must reach the main thread's call too.
        if let Ok(mask) = self.tracee.sigmask() {
            let _ = self.tracee.set_sigmask(mask & !crate::calls::cancel_bit());
        }
        let main = (self.tracee.pid, self.gate.clone());
        let crew = self.crew.clone();
        crate::threads::with_workers(others, insn, main, &crew, link, |l, births| {
            self.births = Some(births);
            let served = self.serve_until_done(l, commands, first);
            self.births = None;
            served
        })
    }

    /// Makes a call of the guest's main thread in the placeholder and
    /// answers it.
    fn main_call(
        &mut self,
        link: &mut dyn Link,
        tid: i32,
        nr: u32,
        args: [u64; 6],
        inbufs: &[mosaic_proto::migrate::Buf],
    ) -> Result<(), DeputyError> {
        self.trap();
        let (ret, outbufs) = self.execute(nr, args, inbufs)?;
        if matches!(ret, ERESTARTSYS | ERESTARTNOHAND) {
            // Interrupted by a signal still queued (the injection's own
            // trap came first): it goes along.
            self.take_pending()?;
        }
        // Signals that arrived during the call are the guest's, and go
        // first: an interrupted call restarts or fails by the handler of
        // the signal that interrupted it.
        for sig in self.take_deferred() {
            link.send_msg(&HomeMsg::Signal { signal: sig })?;
        }
        send_result(link, tid, ret, outbufs)?;
        Ok(())
    }

    /// The serving loop (after `first`, a main thread's call to make
    /// before it), and the one rule for a session that cannot go on (an
    /// unexpected message, a failure of the placeholder, a link that
    /// breaks): the process ends by SIGKILL, so that its parent sees it end,
    /// and its guest ends over there with the link.
    pub(crate) fn serve_until_done(
        &mut self,
        link: &mut dyn Link,
        commands: &std::sync::mpsc::Receiver<Command<T>>,
        first: Option<FirstCall>,
    ) -> Result<Next<T>, DeputyError> {
        // Set once the home PID was killed (SIGKILL reaches the placeholder
        // itself): the guest is told and will report its death.
        let mut died: Option<i32> = None;
        let tid = self.tracee.pid.as_raw();
        let served = match first {
            Some((nr, args, inbufs)) => self.main_call(link, tid, nr, args, &inbufs),
            None => Ok(()),
        }
        .and_then(|()| self.serve_loop(link, commands, &mut died));
        if let Err(e) = &served
            && died.is_none()
        {
            warn!(pid = self.tracee.pid.as_raw(), error = %e, "the session with the guest's node cannot go on; ending the process");
            self.trap();
            self.die_by(Signal::SIGKILL);
        }
        served
    }

    pub(crate) fn serve_loop(
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
                RemoteMsg::Syscall { tid, .. } if died.is_some() => {
                    link.send_msg(&HomeMsg::SyscallResult {
                        tid,
                        ret: EINTR,
                        outbufs: Vec::new(),
                    })?;
                }
                // A thread taken back from its worker (a return that
                // failed): its calls are made here, one at a time.
                RemoteMsg::Syscall {
                    tid,
                    nr,
                    args,
                    inbufs,
                } if self.tracee.threads.iter().any(|t| t.pid.as_raw() == tid) => {
                    let (ret, outbufs) = self.execute_other(tid, nr, args, &inbufs)?;
                    send_result(link, tid, ret, outbufs)?;
                }
                RemoteMsg::Syscall { tid, .. } if tid != self.tracee.pid.as_raw() => {
                    return Err(DeputyError::Protocol(format!(
                        "a call of thread {tid}, which the placeholder does not have"
                    )));
                }
                // Answered before it came: nothing runs.
                RemoteMsg::Cancel { .. } => {}
                // Joined by the router of a guest with threads; no other
                // guest sends a call in pieces.
                RemoteMsg::SyscallPart { tid, .. } => {
                    return Err(DeputyError::Protocol(format!(
                        "a call of thread {tid} in pieces, from a guest served without threads"
                    )));
                }
                // The first thread of a single-threaded guest: made once
                // workers serve threads (see `serve`).
                RemoteMsg::Syscall {
                    nr, args, inbufs, ..
                } if self.births.is_none()
                    && matches!(i64::from(nr), libc::SYS_clone | libc::SYS_clone3) =>
                {
                    return Ok(Next::FirstThread { nr, args, inbufs });
                }
                RemoteMsg::Syscall {
                    tid,
                    nr,
                    args,
                    inbufs,
                } => self.main_call(link, tid, nr, args, &inbufs)?,
                RemoteMsg::Exited { code, cpu } => {
                    self.ended(cpu);
                    if died.is_none() {
                        self.trap();
                        // exit_group inside the placeholder: its parent sees `code`.
                        let _ = self
                            .tracee
                            .syscall(libc::SYS_exit_group, [abi::reg(code), 0, 0, 0, 0, 0]);
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
                other => return Err(not_handled(remote_name(&other))),
            }
        }
    }
}

/// Sends thread `tid`'s result, a large one in pieces
/// ([`result_messages`]): over a threaded session's link, other threads'
/// results pass between them.
pub(crate) fn send_result(
    link: &mut dyn Link,
    tid: i32,
    ret: i64,
    outbufs: Vec<Buf>,
) -> Result<(), LinkError> {
    for msg in result_messages(tid, ret, outbufs) {
        link.send_msg(&msg)?;
    }
    Ok(())
}
