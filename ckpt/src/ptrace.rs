//! A stopped tracee: registers, signal state, memory, and system calls
//! injected into it.
//!
//! Every ptrace request for a tracee must come from the thread that attached
//! it; a [`Tracee`] is therefore not `Send`.

use mosaic_proto::abi;
use std::fs::File;
use std::os::unix::fs::FileExt;

use mosaic_proto::image::Regs;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::CkptError;

const PTRACE_GETREGSET: libc::c_uint = libc::PTRACE_GETREGSET;
const PTRACE_SETREGSET: libc::c_uint = libc::PTRACE_SETREGSET;
const PTRACE_GETSIGMASK: libc::c_uint = libc::PTRACE_GETSIGMASK;
const PTRACE_SETSIGMASK: libc::c_uint = libc::PTRACE_SETSIGMASK;
const PTRACE_GET_RSEQ_CONFIGURATION: libc::c_uint = libc::PTRACE_GET_RSEQ_CONFIGURATION;
const NT_X86_XSTATE: usize = 0x202;
/// Largest xstate buffer we offer the kernel (AMX needs ~11 KiB).
const XSTATE_MAX: usize = 16384;

/// A process stopped under our ptrace.
pub struct Tracee {
    pub pid: Pid,
    mem: File,
    /// Address of a `syscall` instruction in the tracee, for injection.
    syscall_insn: Option<u64>,
    /// Signals that arrived while we held it (at a delivery stop, which
    /// takes them off its queue), with their siginfo: given back on
    /// release, and carried by a capture.
    pub deferred_signals: Vec<Deferred>,
    /// It was in a job-control stop when we took it, by this signal: a
    /// capture carries the stop (the process stops again wherever it is
    /// restored), and a release leaves it stopped.
    pub group_stop: Option<Signal>,
    /// The process's other threads, stopped with it and traced from the
    /// same OS thread (a stand-alone capture or restore of a
    /// multi-threaded process): released with it.
    pub threads: Vec<Tracee>,
    /// The TID (as we see it) of the thread its last injected call
    /// created (`PTRACE_EVENT_CLONE`, with `PTRACE_O_TRACECLONE`).
    cloned: Option<Pid>,
    _not_send: std::marker::PhantomData<*const ()>,
}

/// The signal of a job-control stop, from the signal a seized tracee's
/// `PTRACE_EVENT_STOP` reports (SIGTRAP when it was running).
pub fn job_control_stop(sig: Signal) -> Option<Signal> {
    matches!(
        sig,
        Signal::SIGSTOP | Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU
    )
    .then_some(sig)
}

/// The head every `siginfo_t` starts with.
#[derive(zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout)]
#[repr(C)]
struct SiginfoHead {
    signo: i32,
    errno: i32,
    code: i32,
}

/// A signal taken off a tracee's queue at a delivery stop.
#[derive(Clone)]
pub struct Deferred {
    /// Its number (real-time ones too, which nix's `Signal` lacks).
    pub signal: i32,
    /// Its `siginfo_t` as the kernel gave it (zeros but the number if
    /// `PTRACE_GETSIGINFO` failed).
    pub info: [u8; 128],
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "signal {} (si_code {})", self.signal, self.code())
    }
}

impl Deferred {
    /// The signal `pid` is stopped at, with its siginfo.
    pub fn at_stop(pid: Pid, signal: Signal) -> Deferred {
        let mut info = [0u8; 128];
        // SAFETY: PTRACE_GETSIGINFO writes one siginfo_t (128 bytes) into `info`.
        let got =
            unsafe { raw_ptrace(libc::PTRACE_GETSIGINFO, pid, 0, info.as_mut_ptr() as usize) };
        if got.is_err() {
            return Deferred::plain(signal as i32);
        }
        Deferred {
            signal: signal as i32,
            info,
        }
    }

    /// A signal with no siginfo to keep (sent by number).
    pub fn plain(signal: i32) -> Deferred {
        let head = SiginfoHead {
            signo: signal,
            errno: 0,
            code: libc::SI_USER,
        };
        let mut info = [0u8; 128];
        info[..size_of::<SiginfoHead>()].copy_from_slice(zerocopy::IntoBytes::as_bytes(&head));
        Deferred { signal, info }
    }

    /// `si_code`.
    pub fn code(&self) -> i32 {
        <SiginfoHead as zerocopy::FromBytes>::read_from_prefix(&self.info)
            .map_or(0, |(head, _)| head.code)
    }

    /// `si_pid`: who sent it, for a signal sent by `kill`, `tgkill` or
    /// `sigqueue` (as the receiver's PID namespace names the sender: 0
    /// if it cannot); meaningless for other codes.
    pub fn sender(&self) -> i32 {
        // siginfo_t on x86-64: signo, errno, code, a pad, then si_pid.
        self.info
            .get(16..20)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, i32::from_le_bytes)
    }

    /// Whether the process's own timers sent it ([`timer_signal`]).
    pub fn from_timer(&self) -> bool {
        timer_signal(self.signal, self.code())
    }

    /// Queues it on `pid` again: with its siginfo where the kernel lets
    /// another process queue one (a negative si_code other than SI_TKILL:
    /// timers, sigqueue), else by number.
    pub fn requeue(&self, pid: Pid) {
        self.requeue_to(pid, pid);
    }

    /// Queues it again on thread `tid` of process `pid`: with its siginfo
    /// where the kernel allows it (as [`Deferred::requeue`]), else by
    /// number to the thread (`tgkill`), or to the process when `tid` is
    /// its main thread.
    pub fn requeue_to(&self, pid: Pid, tid: Pid) {
        let code = self.code();
        if code < 0 && code != libc::SI_TKILL {
            // SAFETY: rt_tgsigqueueinfo reads one siginfo_t from `info`.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_rt_tgsigqueueinfo,
                    pid.as_raw(),
                    tid.as_raw(),
                    self.signal,
                    self.info.as_ptr(),
                )
            };
            if r == 0 {
                return;
            }
        }
        if tid == pid {
            // SAFETY: kill takes integers.
            unsafe { libc::kill(pid.as_raw(), self.signal) };
        } else {
            // SAFETY: tgkill takes integers.
            unsafe { libc::syscall(libc::SYS_tgkill, pid.as_raw(), tid.as_raw(), self.signal) };
        }
    }
}

/// Whether a signal with this `si_code` was sent by the process's own
/// timers: a POSIX timer (SI_TIMER), or an interval timer (SIGALRM,
/// SIGVTALRM, SIGPROF from the kernel).
pub fn timer_signal(signo: i32, si_code: i32) -> bool {
    si_code == libc::SI_TIMER
        || (si_code == libc::SI_KERNEL
            && matches!(signo, libc::SIGALRM | libc::SIGVTALRM | libc::SIGPROF))
}

/// A ptrace request nix does not wrap (regsets, sigmask, siginfo, rseq
/// configuration).
///
/// # Safety
///
/// `addr` and `data` must be what `req` expects: where it takes a pointer,
/// one to live memory of at least the size the request reads or writes,
/// not aliased while the call runs.
unsafe fn raw_ptrace(
    req: libc::c_uint,
    pid: Pid,
    addr: usize,
    data: usize,
) -> nix::Result<libc::c_long> {
    // SAFETY: the caller's duty (above).
    let r = unsafe { libc::ptrace(req, pid.as_raw(), addr, data) };
    if r < 0 {
        Err(nix::errno::Errno::last())
    } else {
        Ok(r)
    }
}

impl Tracee {
    /// Attaches to `pid` with `PTRACE_SEIZE` and stops it wherever it is
    /// (inside a blocking system call too).
    pub fn seize(pid: Pid) -> Result<Tracee, CkptError> {
        Tracee::seize_with(pid, || {})
    }

    /// [`Tracee::seize`], calling `queued` once the interrupt is queued
    /// and before waiting for the stop (a guest thread waiting in a
    /// received seccomp notification stops only once it is answered).
    pub fn seize_with(pid: Pid, queued: impl FnOnce()) -> Result<Tracee, CkptError> {
        ptrace::seize(pid, ptrace::Options::empty()).map_err(|e| CkptError::Attach {
            pid: pid.as_raw(),
            errno: e,
        })?;
        ptrace::interrupt(pid).map_err(|e| CkptError::Ptrace("PTRACE_INTERRUPT", e))?;
        queued();
        let mut deferred = Vec::new();
        let mut group_stop = None;
        loop {
            match waitpid(pid, Some(WaitPidFlag::__WALL))
                .map_err(|e| CkptError::Ptrace("waitpid", e))?
            {
                WaitStatus::PtraceEvent(_, sig, _) => {
                    group_stop = job_control_stop(sig);
                    break;
                }
                WaitStatus::Stopped(_, Signal::SIGSTOP) => break,
                WaitStatus::Stopped(_, sig) => {
                    // A signal arrived before our interrupt: keep it for later.
                    deferred.push(Deferred::at_stop(pid, sig));
                    ptrace::cont(pid, None).map_err(|e| CkptError::Ptrace("PTRACE_CONT", e))?;
                }
                WaitStatus::Exited(..) | WaitStatus::Signaled(..) => {
                    return Err(CkptError::Gone(pid.as_raw()));
                }
                _ => {}
            }
        }
        let mut t = Tracee::new(pid, deferred)?;
        t.group_stop = group_stop;
        Ok(t)
    }

    /// Wraps a thread that was attached to us as it was born (a clone by
    /// a tracee with `PTRACE_O_TRACECLONE`), once its first stop (the
    /// `PTRACE_EVENT_STOP` of a seized tracee's new thread) is waited for
    /// here.
    pub fn born(tid: Pid) -> Result<Tracee, CkptError> {
        loop {
            match waitpid(tid, Some(WaitPidFlag::__WALL))
                .map_err(|e| CkptError::Ptrace("waitpid of a new thread", e))?
            {
                WaitStatus::PtraceEvent(..) | WaitStatus::Stopped(..) => break,
                WaitStatus::Exited(..) | WaitStatus::Signaled(..) => {
                    return Err(CkptError::Gone(tid.as_raw()));
                }
                _ => {}
            }
        }
        Tracee::new(tid, Vec::new())
    }

    /// Wraps a child that stopped itself after `PTRACE_TRACEME`.
    pub fn from_stopped_child(pid: Pid) -> Result<Tracee, CkptError> {
        Tracee::new(pid, Vec::new())
    }

    fn new(pid: Pid, deferred_signals: Vec<Deferred>) -> Result<Tracee, CkptError> {
        let mem = File::options()
            .read(true)
            .write(true)
            .open(format!("/proc/{pid}/mem"))
            .map_err(|e| CkptError::Io(format!("/proc/{pid}/mem"), e))?;
        Ok(Tracee {
            pid,
            mem,
            syscall_insn: None,
            deferred_signals,
            group_stop: None,
            threads: Vec::new(),
            cloned: None,
            _not_send: std::marker::PhantomData,
        })
    }

    /// General registers.
    pub fn regs(&self) -> Result<Regs, CkptError> {
        let r = ptrace::getregs(self.pid).map_err(|e| CkptError::Ptrace("PTRACE_GETREGS", e))?;
        Ok(from_user_regs(&r))
    }

    /// Sets general registers.
    pub fn set_regs(&self, regs: &Regs) -> Result<(), CkptError> {
        ptrace::setregs(self.pid, to_user_regs(regs))
            .map_err(|e| CkptError::Ptrace("PTRACE_SETREGS", e))
    }

    /// The `NT_X86_XSTATE` register set.
    pub fn xstate(&self) -> Result<Vec<u8>, CkptError> {
        let mut buf = vec![0u8; XSTATE_MAX];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: GETREGSET writes at most `iov_len` bytes at `iov_base`
        // (the buffer above) and updates `iov`, which lives across the call.
        unsafe {
            raw_ptrace(
                PTRACE_GETREGSET,
                self.pid,
                NT_X86_XSTATE,
                &mut iov as *mut _ as usize,
            )
        }
        .map_err(|e| CkptError::Ptrace("PTRACE_GETREGSET(xstate)", e))?;
        buf.truncate(iov.iov_len);
        Ok(buf)
    }

    /// Sets the `NT_X86_XSTATE` register set.
    pub fn set_xstate(&self, xstate: &[u8]) -> Result<(), CkptError> {
        let mut buf = xstate.to_vec();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: SETREGSET reads `iov_len` bytes at `iov_base` (the
        // buffer above), which lives across the call.
        unsafe {
            raw_ptrace(
                PTRACE_SETREGSET,
                self.pid,
                NT_X86_XSTATE,
                &mut iov as *mut _ as usize,
            )
        }
        .map_err(|e| CkptError::Ptrace("PTRACE_SETREGSET(xstate)", e))?;
        Ok(())
    }

    /// The blocked-signal mask.
    pub fn sigmask(&self) -> Result<u64, CkptError> {
        let mut mask = 0u64;
        // SAFETY: GETSIGMASK writes `addr` = 8 bytes into `mask`.
        unsafe {
            raw_ptrace(
                PTRACE_GETSIGMASK,
                self.pid,
                8,
                &mut mask as *mut u64 as usize,
            )
        }
        .map_err(|e| CkptError::Ptrace("PTRACE_GETSIGMASK", e))?;
        Ok(mask)
    }

    /// Sets the blocked-signal mask.
    pub fn set_sigmask(&self, mask: u64) -> Result<(), CkptError> {
        let m = mask;
        // SAFETY: SETSIGMASK reads `addr` = 8 bytes from `m`.
        unsafe { raw_ptrace(PTRACE_SETSIGMASK, self.pid, 8, &m as *const u64 as usize) }
            .map_err(|e| CkptError::Ptrace("PTRACE_SETSIGMASK", e))?;
        Ok(())
    }

    /// rseq registration: (address, length, signature), if any.
    pub fn rseq(&self) -> Result<Option<(u64, u32, u32)>, CkptError> {
        #[repr(C)]
        #[derive(Default)]
        struct RseqConf {
            abi_ptr: u64,
            len: u32,
            sig: u32,
            flags: u32,
            pad: u32,
        }
        let mut conf = RseqConf::default();
        // SAFETY: the request writes at most `addr` = size_of RseqConf
        // bytes into `conf`.
        unsafe {
            raw_ptrace(
                PTRACE_GET_RSEQ_CONFIGURATION,
                self.pid,
                std::mem::size_of::<RseqConf>(),
                &mut conf as *mut _ as usize,
            )
        }
        .map_err(|e| CkptError::Ptrace("PTRACE_GET_RSEQ_CONFIGURATION", e))?;
        Ok((conf.abi_ptr != 0).then_some((conf.abi_ptr, conf.len, conf.sig)))
    }

    /// A kernel struct of type `T` read from the tracee at `addr`.
    pub fn read_struct<T: zerocopy::FromBytes + zerocopy::IntoBytes>(
        &self,
        addr: u64,
    ) -> Result<T, CkptError> {
        let mut v = T::new_zeroed();
        self.read_mem(addr, v.as_mut_bytes())?;
        Ok(v)
    }

    /// Reads tracee memory (any protection).
    pub fn read_mem(&self, addr: u64, buf: &mut [u8]) -> Result<(), CkptError> {
        self.mem.read_exact_at(buf, addr).map_err(|e| {
            CkptError::Io(
                format!("reading {} bytes at {addr:#x} of {}", buf.len(), self.pid),
                e,
            )
        })
    }

    /// Writes tracee memory (any protection; private pages are copied on write).
    pub fn write_mem(&self, addr: u64, data: &[u8]) -> Result<(), CkptError> {
        self.mem.write_all_at(data, addr).map_err(|e| {
            CkptError::Io(
                format!("writing {} bytes at {addr:#x} of {}", data.len(), self.pid),
                e,
            )
        })
    }

    /// A second handle on its memory, usable without a ptrace stop and
    /// after we detach.
    pub fn mem(&self) -> Result<ProcMem, CkptError> {
        let file = self
            .mem
            .try_clone()
            .map_err(|e| CkptError::Io(format!("/proc/{}/mem", self.pid), e))?;
        Ok(ProcMem {
            pid: self.pid.as_raw(),
            file,
        })
    }

    /// Whether threads its calls create are attached to us at birth
    /// (`PTRACE_O_TRACECLONE`; see [`Tracee::take_cloned`] and
    /// [`Tracee::born`]).
    pub fn trace_clones(&self, on: bool) -> Result<(), CkptError> {
        let opts = if on {
            ptrace::Options::PTRACE_O_TRACECLONE
        } else {
            ptrace::Options::empty()
        };
        ptrace::setoptions(self.pid, opts).map_err(|e| CkptError::Ptrace("PTRACE_SETOPTIONS", e))
    }

    /// Uses the `syscall` instruction at `addr` for injections.
    pub fn set_syscall_insn(&mut self, addr: u64) {
        self.syscall_insn = Some(addr);
    }

    /// Where calls are injected, if known.
    pub fn syscall_insn(&self) -> Option<u64> {
        self.syscall_insn
    }

    /// Lets a thread of a process whose memory is gone (a placeholder's)
    /// go, for another OS thread to seize ([`Tracee::seize`]): ptrace
    /// requests come from the thread that traces, so a thread that is to
    /// make calls of its own while another waits must be traced by a
    /// thread of its own. Untraced, it waits in `pause()` at the injection
    /// `syscall` (which stays mapped) with every signal blocked, so it
    /// runs no code of the process and takes no signal (but SIGKILL, which
    /// ends every thread anyway). Returns its TID.
    pub fn park(self) -> Result<Pid, CkptError> {
        let at = self.syscall_insn.ok_or(CkptError::NoSyscallInsn)?;
        self.set_sigmask(!0)?;
        let mut r =
            ptrace::getregs(self.pid).map_err(|e| CkptError::Ptrace("PTRACE_GETREGS", e))?;
        r.rip = at;
        r.rax = abi::reg_long(libc::SYS_pause);
        r.orig_rax = u64::MAX;
        ptrace::setregs(self.pid, r).map_err(|e| CkptError::Ptrace("PTRACE_SETREGS", e))?;
        ptrace::detach(self.pid, None).map_err(|e| CkptError::Ptrace("PTRACE_DETACH", e))?;
        Ok(self.pid)
    }

    /// Runs system call `nr` inside the tracee and returns its raw result
    /// (negative errno on failure). Registers are restored afterwards.
    pub fn syscall(&mut self, nr: i64, args: [u64; 6]) -> Result<i64, CkptError> {
        self.syscall_cancellable(nr, args, &mut |_| false)
    }

    /// [`Tracee::syscall`], where a signal for which `cancel` says true
    /// is the caller's own request to end the call: it interrupts a call
    /// that waits (which then returns its ERESTART* value), ends one that
    /// has not begun (not made: ERESTARTNOINTR), and is not kept.
    pub fn syscall_cancellable(
        &mut self,
        nr: i64,
        args: [u64; 6],
        cancel: &mut dyn FnMut(Signal) -> bool,
    ) -> Result<i64, CkptError> {
        let at = self.syscall_insn.ok_or(CkptError::NoSyscallInsn)?;
        let saved =
            ptrace::getregs(self.pid).map_err(|e| CkptError::Ptrace("PTRACE_GETREGS", e))?;
        let mut r = saved;
        r.rip = at;
        r.rax = abi::reg_long(nr);
        // No syscall-restart logic may apply to an injected call.
        r.orig_rax = u64::MAX;
        r.rdi = args[0];
        r.rsi = args[1];
        r.rdx = args[2];
        r.r10 = args[3];
        r.r8 = args[4];
        r.r9 = args[5];
        ptrace::setregs(self.pid, r).map_err(|e| CkptError::Ptrace("PTRACE_SETREGS", e))?;
        let ret = loop {
            ptrace::step(self.pid, None).map_err(|e| CkptError::Ptrace("PTRACE_SINGLESTEP", e))?;
            match waitpid(self.pid, Some(WaitPidFlag::__WALL))
                .map_err(|e| CkptError::Ptrace("waitpid", e))?
            {
                WaitStatus::Stopped(_, Signal::SIGTRAP) => break None,
                WaitStatus::Stopped(_, sig) => {
                    let cancelled = cancel(sig);
                    if !cancelled {
                        self.deferred_signals.push(Deferred::at_stop(self.pid, sig));
                    }
                    let now = ptrace::getregs(self.pid)
                        .map_err(|e| CkptError::Ptrace("PTRACE_GETREGS", e))?;
                    if now.rip != at {
                        break None; // the call ran; the signal came after it
                    }
                    if cancelled {
                        // Before the call began: it is not made.
                        break Some(abi::reg_long(
                            mosaic_proto::syscalls::codec::errno::ERESTARTNOINTR,
                        ));
                    }
                }
                WaitStatus::Exited(..) | WaitStatus::Signaled(..) => {
                    return Err(CkptError::Gone(self.pid.as_raw()));
                }
                WaitStatus::PtraceEvent(_, _, libc::PTRACE_EVENT_CLONE) => {
                    // The new thread's TID in our PID namespace (the
                    // call returns the one in the tracee's).
                    let tid = ptrace::getevent(self.pid)
                        .map_err(|e| CkptError::Ptrace("PTRACE_GETEVENTMSG", e))?;
                    self.cloned = i32::try_from(tid).ok().map(Pid::from_raw);
                }
                _ => {}
            }
        };
        let rax = match ret {
            Some(rax) => rax,
            None => {
                ptrace::getregs(self.pid)
                    .map_err(|e| CkptError::Ptrace("PTRACE_GETREGS", e))?
                    .rax
            }
        };
        ptrace::setregs(self.pid, saved).map_err(|e| CkptError::Ptrace("PTRACE_SETREGS", e))?;
        Ok(abi::long(rax))
    }

    /// The thread the last injected call created, as we see its TID
    /// (taken: asked once).
    pub fn take_cloned(&mut self) -> Option<Pid> {
        self.cloned.take()
    }

    /// Takes the signals of `mask` off the stopped process's queues (every
    /// instance of a real-time one) into [`Tracee::deferred_signals`], with
    /// their siginfo, by injected `rt_sigtimedwait(set, &info, {0, 0})`;
    /// `scratch` is 160 bytes of the process's memory to use. SIGKILL and
    /// SIGSTOP cannot be taken so.
    pub fn dequeue_signals(&mut self, mask: u64, scratch: u64) -> Result<(), CkptError> {
        let (set_at, zero_at, info_at) = (scratch, scratch + 16, scratch + 32);
        self.write_mem(zero_at, &[0u8; 16])?;
        for signo in 1..=64i32 {
            let bit = 1u64 << (signo - 1);
            if mask & bit == 0 || signo == libc::SIGKILL || signo == libc::SIGSTOP {
                continue;
            }
            self.write_mem(set_at, &bit.to_le_bytes())?;
            // Bounded: RLIMIT_SIGPENDING caps what can be queued.
            for _ in 0..1 << 16 {
                let r = self.syscall(
                    libc::SYS_rt_sigtimedwait,
                    [set_at, info_at, zero_at, 8, 0, 0],
                )?;
                if r != i64::from(signo) {
                    break; // EAGAIN: none left
                }
                let mut info = [0u8; 128];
                self.read_mem(info_at, &mut info)?;
                self.deferred_signals.push(Deferred {
                    signal: signo,
                    info,
                });
            }
        }
        Ok(())
    }

    /// Like [`Tracee::syscall`], turning a negative result into an error.
    pub fn syscall_ok(
        &mut self,
        what: &'static str,
        nr: i64,
        args: [u64; 6],
    ) -> Result<u64, CkptError> {
        let r = self.syscall(nr, args)?;
        if (-4095..0).contains(&r) {
            return Err(CkptError::Injected {
                what,
                errno: nix::errno::Errno::from_raw(abi::int_result(-r)),
            });
        }
        Ok(abi::reg_long(r))
    }

    /// Maps private anonymous memory inside the tracee (`flags` adds to
    /// MAP_PRIVATE | MAP_ANONYMOUS, e.g. MAP_FIXED) and returns its address.
    pub fn mmap_anon(
        &mut self,
        what: &'static str,
        addr: u64,
        len: u64,
        prot: i32,
        flags: u64,
    ) -> Result<u64, CkptError> {
        let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64 | flags;
        self.syscall_ok(
            what,
            libc::SYS_mmap,
            [addr, len, abi::reg(prot), flags, u64::MAX, 0],
        )
    }

    /// Unmaps all of the tracee's memory but the vDSO (and the area of
    /// the `syscall` instruction used for injection) and the pages of its
    /// arguments and environment (so `ps` still shows its command line),
    /// after unregistering its rseq area: a placeholder whose user context
    /// left. Returns the bytes unmapped. It must never run user code again
    /// (it may still be injected into, restored into, or made to die by a
    /// signal).
    pub fn release_memory(&mut self) -> Result<u64, CkptError> {
        let stat = crate::procfs::stat_fields(self.pid.as_raw())?;
        let field = |i: usize| stat.get(i).and_then(|s| s.parse::<u64>().ok());
        let page = mosaic_proto::image::PAGE_SIZE;
        let keep = match (field(48), field(51)) {
            (Some(a), Some(e)) if a > 0 && e > a => (a / page * page, e.div_ceil(page) * page),
            _ => (0, 0),
        };
        // Each thread's rseq area is about to go: unregistered in each
        // (the kernel would write the CPU number into it on every return
        // to user space, and kill the thread when it cannot).
        let mut threads = std::mem::take(&mut self.threads);
        let unregistered = std::iter::once(&mut *self)
            .chain(threads.iter_mut())
            .try_for_each(|t| {
                if let Some((addr, len, sig)) = t.rseq()? {
                    t.syscall_ok(
                        "rseq unregister",
                        libc::SYS_rseq,
                        [addr, u64::from(len), 1, u64::from(sig), 0, 0],
                    )?;
                }
                Ok::<(), CkptError>(())
            });
        self.threads = threads;
        unregistered?;
        let insn = self.syscall_insn.ok_or(CkptError::NoSyscallInsn)?;
        let mut freed = 0;
        for m in crate::procfs::maps(self.pid.as_raw())? {
            let special = m.name.starts_with("[v");
            if special || (m.start..m.end).contains(&insn) {
                continue;
            }
            // The area minus the kept range: up to two pieces.
            let pieces = [
                (m.start, m.end.min(keep.0).max(m.start)),
                (m.start.max(keep.1).min(m.end), m.end),
            ];
            for (start, end) in pieces {
                if end > start {
                    self.syscall_ok(
                        "munmap of the placeholder's memory",
                        libc::SYS_munmap,
                        [start, end - start, 0, 0, 0, 0],
                    )?;
                    freed += end - start;
                }
            }
        }
        Ok(freed)
    }

    /// Detaches, letting the process run; deferred signals are re-sent.
    pub fn release(self) -> Result<(), CkptError> {
        self.release_with(None)
    }

    /// Detaches, delivering `sig` on the way (SIGSTOP leaves it stopped);
    /// deferred signals are re-sent.
    pub fn release_with(mut self, sig: Option<Signal>) -> Result<(), CkptError> {
        // Its other threads first, each with the signals it took; an error
        // does not keep the others stopped.
        let mut first_error = None;
        for th in std::mem::take(&mut self.threads) {
            let tid = th.pid;
            match ptrace::detach(tid, None) {
                Ok(()) => th
                    .deferred_signals
                    .iter()
                    .for_each(|d| d.requeue_to(self.pid, tid)),
                Err(e) => {
                    first_error.get_or_insert(CkptError::Ptrace("PTRACE_DETACH of a thread", e));
                }
            }
        }
        ptrace::detach(self.pid, sig).map_err(|e| CkptError::Ptrace("PTRACE_DETACH", e))?;
        for d in &self.deferred_signals {
            d.requeue(self.pid);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Kills the process (`SIGKILL`) and waits for the exit of each of
    /// its threads we trace: a traced thread that died is ours to reap,
    /// and its process's death is not complete until it is.
    pub fn kill(mut self) -> Result<(), CkptError> {
        // Also a thread born to it that we trace but do not hold (its
        // creation failed half-way): the leader is not reaped before it.
        let mut tids: Vec<Pid> = crate::procfs::tids(self.pid.as_raw())
            .unwrap_or_default()
            .into_iter()
            .map(Pid::from_raw)
            .chain(std::mem::take(&mut self.threads).iter().map(|t| t.pid))
            .filter(|&t| t != self.pid)
            .collect();
        tids.sort_unstable();
        tids.dedup();
        tids.push(self.pid);
        nix::sys::signal::kill(self.pid, Signal::SIGKILL)
            .map_err(|e| CkptError::Ptrace("kill", e))?;
        for tid in tids {
            loop {
                match waitpid(tid, Some(WaitPidFlag::__WALL)) {
                    Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
        Ok(())
    }
}

/// `Regs` mirrors `user_regs_struct` field for field; one list serves both
/// conversions.
macro_rules! convert_regs {
    ($from:expr => $to:ident) => {
        $to {
            r15: $from.r15,
            r14: $from.r14,
            r13: $from.r13,
            r12: $from.r12,
            rbp: $from.rbp,
            rbx: $from.rbx,
            r11: $from.r11,
            r10: $from.r10,
            r9: $from.r9,
            r8: $from.r8,
            rax: $from.rax,
            rcx: $from.rcx,
            rdx: $from.rdx,
            rsi: $from.rsi,
            rdi: $from.rdi,
            orig_rax: $from.orig_rax,
            rip: $from.rip,
            cs: $from.cs,
            eflags: $from.eflags,
            rsp: $from.rsp,
            ss: $from.ss,
            fs_base: $from.fs_base,
            gs_base: $from.gs_base,
            ds: $from.ds,
            es: $from.es,
            fs: $from.fs,
            gs: $from.gs,
        }
    };
}

fn from_user_regs(r: &libc::user_regs_struct) -> Regs {
    convert_regs!(r => Regs)
}

fn to_user_regs(r: &Regs) -> libc::user_regs_struct {
    use libc::user_regs_struct as UserRegs;
    convert_regs!(r => UserRegs)
}

/// Pins the calling thread to one CPU while it lives, and puts its old
/// CPU set back on drop.
///
/// Every injected system call is a round trip between us and a stopped
/// tracee; across CPUs each wake-up costs tens of microseconds on these
/// machines, on one CPU a few (ARCHITECTURE.md, costs). Capture and restore
/// therefore run on the tracee's CPU.
pub struct SameCpu {
    old: Option<nix::sched::CpuSet>,
}

impl SameCpu {
    /// Pins us to `cpu` (None: the CPU we run on now).
    pub fn pin(cpu: Option<usize>) -> SameCpu {
        let me = Pid::from_raw(0);
        let old = nix::sched::sched_getaffinity(me).ok();
        // SAFETY: sched_getcpu has no arguments and no memory effects.
        let cpu =
            cpu.unwrap_or_else(|| usize::try_from(unsafe { libc::sched_getcpu() }).unwrap_or(0));
        let mut set = nix::sched::CpuSet::new();
        if set.set(cpu).is_err() || nix::sched::sched_setaffinity(me, &set).is_err() {
            return SameCpu { old: None }; // not allowed there: run unpinned
        }
        SameCpu { old }
    }

    /// The CPU set we had before pinning.
    pub fn previous(&self) -> Option<&nix::sched::CpuSet> {
        self.old.as_ref()
    }
}

impl Drop for SameCpu {
    fn drop(&mut self) {
        if let Some(old) = &self.old {
            let _ = nix::sched::sched_setaffinity(Pid::from_raw(0), old);
        }
    }
}

/// Reading and writing a process's memory (any protection).
pub trait Memory {
    fn read_mem(&self, addr: u64, buf: &mut [u8]) -> Result<(), CkptError>;
    fn write_mem(&self, addr: u64, data: &[u8]) -> Result<(), CkptError>;

    /// Reads a NUL-terminated string of at most `max` bytes (NUL included
    /// in the result), page by page so that it never reads past the end of
    /// a mapping it does not need.
    fn read_cstr(&self, addr: u64, max: usize) -> Result<Vec<u8>, CkptError> {
        let mut out = Vec::new();
        let mut at = addr;
        while out.len() < max {
            let room = abi::usize_of(4096 - (at % 4096));
            let mut chunk = vec![0u8; room.min(max - out.len())];
            self.read_mem(at, &mut chunk)?;
            if let Some(nul) = chunk.iter().position(|b| *b == 0) {
                out.extend_from_slice(&chunk[..=nul]);
                return Ok(out);
            }
            at += chunk.len() as u64;
            out.extend_from_slice(&chunk);
        }
        Err(CkptError::Restore(format!(
            "string at {addr:#x} longer than {max} bytes"
        )))
    }
}

impl Memory for Tracee {
    fn read_mem(&self, addr: u64, buf: &mut [u8]) -> Result<(), CkptError> {
        Tracee::read_mem(self, addr, buf)
    }
    fn write_mem(&self, addr: u64, data: &[u8]) -> Result<(), CkptError> {
        Tracee::write_mem(self, addr, data)
    }
}

/// A process's memory through `/proc/PID/mem`, without ptrace.
pub struct ProcMem {
    pid: i32,
    file: File,
}

impl Memory for ProcMem {
    fn read_mem(&self, addr: u64, buf: &mut [u8]) -> Result<(), CkptError> {
        self.file.read_exact_at(buf, addr).map_err(|e| {
            CkptError::Io(
                format!("reading {} bytes at {addr:#x} of {}", buf.len(), self.pid),
                e,
            )
        })
    }
    fn write_mem(&self, addr: u64, data: &[u8]) -> Result<(), CkptError> {
        self.file.write_all_at(data, addr).map_err(|e| {
            CkptError::Io(
                format!("writing {} bytes at {addr:#x} of {}", data.len(), self.pid),
                e,
            )
        })
    }
}
