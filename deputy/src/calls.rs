//! Forwarded calls: made inside the placeholder by injection, their
//! buffers placed in its scratch area, or read directly where that is
//! provably the same (regular files).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::DeputyError;
use crate::scratch::Scratch;
use crate::session::Placeholder;
use mosaic_ckpt::CkptError;
use mosaic_ckpt::ptrace::Tracee;
use mosaic_proto::abi;
use mosaic_proto::migrate::Buf;
use mosaic_proto::syscalls::codec::errno::{EINTR, ENOSYS, ERESTART_RESTARTBLOCK, ERESTARTNOINTR};
use mosaic_proto::syscalls::codec::{self, AtHome, PlaceError};
use mosaic_proto::syscalls::{Class, lookup};
use tracing::warn;

/// What one placeholder thread's calls are made with: the thread, traced
/// by the OS thread that makes them, its scratch room, and a pidfd of the
/// process for the direct-read path.
pub(crate) struct Caller<'a> {
    pub(crate) tracee: &'a mut Tracee,
    pub(crate) scratch: &'a mut Scratch,
    pub(crate) pidfd: &'a mut Option<OwnedFd>,
    pub(crate) noisy: &'a mut mosaic_proto::ratelimit::Every,
    /// Where its call stands for a cancel ([`Gate`]); `None`: its calls
    /// are never cancelled.
    pub(crate) gate: Option<&'a Gate>,
    /// Where a thread it makes for the guest goes to get a worker
    /// (`crate::threads`); `None`: no thread router, none is made.
    pub(crate) births: Option<&'a std::sync::mpsc::Sender<crate::threads::Birth>>,
}

/// The signal by which a placeholder thread's call is interrupted when the
/// remote cancels it (one no program uses: SIGSTKFLT; a real-time one
/// would do too, but nix's waitpid cannot name it). Met at the thread's
/// delivery stop and dropped there, once per cancel asked ([`Gate`]).
pub(crate) const CANCEL: nix::sys::signal::Signal = nix::sys::signal::Signal::SIGSTKFLT;

/// [`CANCEL`] in a signal mask.
pub(crate) fn cancel_bit() -> u64 {
    1 << (CANCEL as i32 - 1)
}

/// Where a placeholder thread's call stands, for its cancel: a Cancel
/// arrives on the router while the call is queued for the thread's
/// tracer, being made, or already answered (the remote's cancel crossed
/// the answer). Only a call being made is interrupted by [`CANCEL`]; a
/// queued one is answered interrupted without being made; a stale cancel
/// is nothing. The lock makes "being made" and the signal one step, so a
/// call that ends with a cancel not met knows the signal is pending on its
/// thread and takes it off (it would otherwise wait there, blocked, until
/// the restored program unblocks it and dies of it).
#[derive(Debug, Default)]
pub(crate) struct Gate(std::sync::Mutex<GateState>);

#[derive(Debug, Default)]
struct GateState {
    phase: Phase,
    /// A cancel of the call asked for and not yet met.
    asked: bool,
}

#[derive(Debug, Default, PartialEq)]
enum Phase {
    #[default]
    Idle,
    Queued,
    Making,
}

impl Gate {
    fn state(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The router queued a call for the thread.
    pub(crate) fn queued(&self) {
        *self.state() = GateState {
            phase: Phase::Queued,
            asked: false,
        };
    }

    /// The remote cancels the call of placeholder thread `tid` of process
    /// `pid` (see [`Gate`]).
    pub(crate) fn cancel(&self, pid: nix::unistd::Pid, tid: nix::unistd::Pid) {
        let mut s = self.state();
        match s.phase {
            Phase::Idle => {}
            Phase::Queued => s.asked = true,
            Phase::Making => {
                s.asked = true;
                // SAFETY: tgkill takes integers.
                unsafe {
                    libc::syscall(libc::SYS_tgkill, pid.as_raw(), tid.as_raw(), CANCEL as i32)
                };
            }
        }
    }

    /// The tracer is about to make the call: false if it was cancelled
    /// while queued (then it is not made).
    fn start(&self) -> bool {
        let mut s = self.state();
        if std::mem::take(&mut s.asked) {
            s.phase = Phase::Idle;
            return false;
        }
        s.phase = Phase::Making;
        true
    }

    /// The tracer met [`CANCEL`]: whether it is the cancel asked for.
    fn met(&self) -> bool {
        std::mem::take(&mut self.state().asked)
    }

    /// The call ended: whether a cancel's signal is still pending on the
    /// thread (sent, not met).
    fn end(&self) -> bool {
        let mut s = self.state();
        s.phase = Phase::Idle;
        std::mem::take(&mut s.asked)
    }
}

impl<T> Placeholder<T> {
    /// The main thread's [`Caller`].
    pub(crate) fn caller(&mut self) -> Caller<'_> {
        Caller {
            tracee: &mut self.tracee,
            scratch: &mut self.scratch,
            pidfd: &mut self.pidfd,
            noisy: &mut self.noisy,
            gate: Some(&*self.gate),
            births: self.births.as_ref(),
        }
    }

    /// Runs a forwarded call of its thread `tid`, traced by this thread.
    pub(crate) fn execute_other(
        &mut self,
        tid: i32,
        nr: u32,
        args: [u64; 6],
        inbufs: &[Buf],
    ) -> Result<(i64, Vec<Buf>), DeputyError> {
        let scratch = self.scratches.entry(tid).or_default();
        let Some(tracee) = self
            .tracee
            .threads
            .iter_mut()
            .find(|t| t.pid.as_raw() == tid)
        else {
            return Ok((ENOSYS, Vec::new()));
        };
        Caller {
            tracee,
            scratch,
            pidfd: &mut self.pidfd,
            noisy: &mut self.noisy,
            gate: None,
            births: None,
        }
        .execute(nr, args, inbufs)
    }

    /// Runs a forwarded call of the main thread (see [`Caller::execute`]).
    pub(crate) fn execute(
        &mut self,
        nr: u32,
        args: [u64; 6],
        inbufs: &[Buf],
    ) -> Result<(i64, Vec<Buf>), DeputyError> {
        self.caller().execute(nr, args, inbufs)
    }
}

impl Caller<'_> {
    /// The fast path for `read` and `pread64` of a regular file: done by
    /// this thread on a duplicate of the placeholder's descriptor
    /// (`pidfd_getfd`: the same open file description, so the same offset
    /// and flags) instead of injected. Provably the same: reading a regular
    /// file depends on the open file description and the inode, not on the
    /// calling task, and never blocks on another process; except on FUSE,
    /// which tells the file system who calls (the caller would be us), so
    /// FUSE files (`/mfs` too) take the injected path. `None`: not this
    /// path.
    pub(crate) fn read_directly(&mut self, nr: u32, args: [u64; 6]) -> Option<(i64, Vec<Buf>)> {
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
            *self.pidfd = (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(abi::int_result(raw)) });
        }
        let pidfd = self.pidfd.as_ref()?.as_raw_fd();
        // SAFETY: pidfd_getfd takes integers and returns a descriptor we own.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, abi::int_arg(args[0]), 0) };
        if raw < 0 {
            return None; // EBADF and the like: the injected call says it right
        }
        // SAFETY: as above.
        let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(abi::int_result(raw)) });
        let regular = file.metadata().is_ok_and(|m| m.file_type().is_file());
        let fuse = nix::sys::statfs::fstatfs(&file)
            .map_or(true, |s| s.filesystem_type().0 == FUSE_SUPER_MAGIC);
        if !regular || fuse {
            return None;
        }
        let mut buf = vec![0u8; abi::usize_of(len)];
        let got = if positional {
            std::os::unix::fs::FileExt::read_at(&file, &mut buf, args[3])
        } else {
            std::io::Read::read(&mut &file, &mut buf)
        };
        Some(match got {
            Ok(n) => {
                buf.truncate(n);
                (abi::count(n), vec![(1, buf.into())])
            }
            Err(e) => (
                -i64::from(e.raw_os_error().unwrap_or(libc::EIO)),
                Vec::new(),
            ),
        })
    }

    /// Runs a forwarded call inside the placeholder: its buffers placed in
    /// scratch by the codec, the call injected, its out-buffers collected.
    /// One cancelled before it began is not made (ERESTARTNOINTR).
    pub(crate) fn execute(
        &mut self,
        nr: u32,
        args: [u64; 6],
        inbufs: &[Buf],
    ) -> Result<(i64, Vec<Buf>), DeputyError> {
        if self.gate.is_some_and(|g| !g.start()) {
            return Ok((ERESTARTNOINTR, Vec::new()));
        }
        let done = self.execute_started(nr, args, inbufs);
        self.end_call();
        done
    }

    fn execute_started(
        &mut self,
        nr: u32,
        args: [u64; 6],
        inbufs: &[Buf],
    ) -> Result<(i64, Vec<Buf>), DeputyError> {
        if matches!(i64::from(nr), libc::SYS_clone | libc::SYS_clone3) {
            return self.birth(nr);
        }
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
        if self.cancelled_early() {
            return Ok((ERESTARTNOINTR, Vec::new()));
        }
        let gate = self.gate;
        // A signal for the home PID can interrupt a blocking call in the
        // placeholder. ERESTARTNOINTR means "always restart": done here.
        // ERESTARTSYS and ERESTARTNOHAND go to the remote with the signal,
        // whose kernel then restarts or fails the call by the guest's own
        // handler flags (SA_RESTART). A restart block cannot travel: EINTR.
        // A cancelled call goes back as it ended (interrupted: ERESTART*;
        // ERESTARTNOINTR if it had not begun).
        let cancelled = std::cell::Cell::new(false);
        let mut cancel = |sig| {
            let met = sig == CANCEL && gate.is_some_and(Gate::met);
            cancelled.set(cancelled.get() | met);
            met
        };
        let ret = loop {
            match self
                .tracee
                .syscall_cancellable(i64::from(nr), placed.args, &mut cancel)
            {
                Ok(ERESTARTNOINTR) if !cancelled.get() => continue,
                Ok(ERESTART_RESTARTBLOCK) => break Ok(EINTR),
                r => break r,
            }
        };
        let ret = ret?;
        Ok((ret, placed.collect(ret, &mut self.room())?))
    }
}

impl Caller<'_> {
    /// Whether the call's cancel was met by an injection made for it
    /// before the call itself (the first call of a thread maps its scratch
    /// room): that injection kept the signal, so the call would wait for
    /// ever; it is not made. The signal is taken off either way: a cancel
    /// met there that is not this call's is stale.
    fn cancelled_early(&mut self) -> bool {
        let deferred = &mut self.tracee.deferred_signals;
        let before = deferred.len();
        deferred.retain(|d| !crate::signals::own_cancel(d));
        deferred.len() != before && self.gate.is_some_and(Gate::met)
    }

    /// The codec's room in this placeholder.
    pub(crate) fn room(&mut self) -> InPlaceholder<'_> {
        InPlaceholder {
            tracee: self.tracee,
            scratch: self.scratch,
        }
    }

    /// The call of a guest thread is over ([`Gate::end`]): a cancel whose
    /// signal came after it ended is taken off the thread at the delivery
    /// stop of a call that does nothing.
    fn end_call(&mut self) {
        if self.gate.is_some_and(Gate::end) {
            let drained = self
                .tracee
                .syscall_cancellable(libc::SYS_getpid, [0; 6], &mut |sig| sig == CANCEL);
            if let Err(e) = drained {
                warn!(tid = self.tracee.pid.as_raw(), error = %e, "could not take a late cancel off a placeholder thread");
            }
        }
    }

    /// A thread the guest creates away: its placeholder thread is made
    /// first, here, as a child of this one; answers its TID (see the
    /// remote's `threads`, which gives the guest's thread the same).
    fn birth(&mut self, nr: u32) -> Result<(i64, Vec<Buf>), DeputyError> {
        let Some(births) = self.births else {
            return Ok(self.refuse(ENOSYS, nr, "a thread born away", "no thread router here"));
        };
        self.make_thread(births)
    }

    /// The new placeholder thread: cloned with every signal blocked and
    /// attached to us at birth, so it runs no instruction of the process
    /// (whose memory is gone), then parked for a worker of its own
    /// ([`Tracee::park`]; ptrace requests come from the tracing thread).
    fn make_thread(
        &mut self,
        births: &std::sync::mpsc::Sender<crate::threads::Birth>,
    ) -> Result<(i64, Vec<Buf>), DeputyError> {
        const FLAGS: u64 = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM) as u64;
        let t = &mut *self.tracee;
        let insn = t.syscall_insn().ok_or(CkptError::NoSyscallInsn)?;
        let mask = t.sigmask()?;
        t.set_sigmask(!0)?;
        let made = t
            .trace_clones(true)
            .and_then(|()| t.syscall(libc::SYS_clone, [FLAGS, 0, 0, 0, 0, 0]));
        let _ = t.trace_clones(false);
        t.set_sigmask(mask)?;
        let tid = made?;
        if tid <= 0 {
            return Ok((tid, Vec::new()));
        }
        let child = t
            .take_cloned()
            .ok_or(CkptError::Gone(abi::int_result(tid)))?;
        let mut child = Tracee::born(child)?;
        child.set_syscall_insn(insn);
        let parked = child.park()?;
        let (ack, acked) = std::sync::mpsc::channel();
        let told = births
            .send(crate::threads::Birth { tid: parked, ack })
            .is_ok()
            && acked
                .recv_timeout(std::time::Duration::from_secs(5))
                .is_ok();
        if !told {
            return Err(DeputyError::Protocol(
                "a new placeholder thread got no worker".into(),
            ));
        }
        Ok((tid, Vec::new()))
    }

    /// A forwarded call answered `errno` without running: said, at most
    /// once a second (a guest may repeat it in a loop).
    pub(crate) fn refuse(&mut self, errno: i64, nr: u32, what: &str, why: &str) -> (i64, Vec<Buf>) {
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
pub(crate) struct InPlaceholder<'a> {
    pub(crate) tracee: &'a mut Tracee,
    pub(crate) scratch: &'a mut Scratch,
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
