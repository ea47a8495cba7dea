//! # mosaic-remote: the guest side of a migrated process
//!
//! The remote receives an image over a migration link, restores it as a
//! *guest* in a stub that owns no files, runs as an unprivileged user and
//! carries a seccomp filter built from the syscall table
//! (`mosaic_proto::syscalls`): local calls run at full speed, everything
//! else stops the guest (`SECCOMP_RET_TRACE`) and is forwarded to the
//! deputy at home, whose answer (return value and out-buffers) is written
//! back before the guest resumes. Signals for the guest are delivered here;
//! its exit or death is reported home. It never touches the node's own
//! files on the guest's behalf.
//!
//! Why `RET_TRACE` and not seccomp user notification (about ten times
//! cheaper per trap across CPUs, ARCHITECTURE.md): the guest must be under
//! our ptrace anyway (signals, bring-home, exit), registers are editable at
//! a trace stop, and this first version favours one mechanism; the trap loop
//! is one function, so user notification can replace it behind the same
//! link protocol.
//!
//! Forwarded: calls whose arguments are integers, fds, strings, buffers,
//! fixed structs and iovecs. Bring-home calls (fork, execve, clone, mmap of
//! a file or of shared memory, ...) send the guest home just before the
//! call, which home then makes natively. Job control: a guest in group-stop
//! is held with `PTRACE_LISTEN` and home is told. Not yet: `Special`
//! arguments the table has no marshaller for (ENOSYS and a log line).

use mosaic_ckpt::ptrace::Tracee;
use mosaic_ckpt::{CkptError, RestoreOptions};
use mosaic_proto::migrate::{Buf, HomeMsg, ImageIn, Link, LinkError, LinkExt, RemoteMsg};
use mosaic_proto::syscalls::{Arg, Class, args_for, lookup};
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use thiserror::Error;
use tracing::{debug, warn};

/// Why serving a guest failed.
#[derive(Debug, Error)]
pub enum RemoteError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Ckpt(#[from] CkptError),
    #[error("protocol: {0}")]
    Protocol(String),
}

/// How guests run on this node.
#[derive(Debug, Clone)]
pub struct GuestPolicy {
    /// The unprivileged user and group guests run as.
    pub uid: u32,
    pub gid: u32,
}

impl Default for GuestPolicy {
    fn default() -> Self {
        // nobody:nogroup
        GuestPolicy {
            uid: 65534,
            gid: 65534,
        }
    }
}

/// Largest buffer a forwarded call may carry each way.
pub const MAX_BUF: u64 = 64 << 20;
/// Largest buffer behind a socklen_t (addresses, socket options).
const SOCKBUF_MAX: u64 = 64 << 10;
const ENOSYS: i64 = -38;
const EFAULT: i64 = -14;
const E2BIG: i64 = -7;

/// The seccomp program for guests: local and exit calls run, every other
/// call stops the guest for its tracer.
pub fn guest_filter() -> Result<Vec<u8>, RemoteError> {
    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };
    let bad = |e: seccompiler::BackendError| RemoteError::Protocol(format!("seccomp filter: {e}"));
    // mmap runs here only for private anonymous memory; a file or shared
    // mapping traps and brings the process home (`brings_home`).
    let flags = |mask: u64, value: u64| {
        SeccompCondition::new(
            3,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(mask),
            value,
        )
    };
    let anon_private = SeccompRule::new(vec![
        flags(libc::MAP_TYPE as u64, libc::MAP_PRIVATE as u64).map_err(bad)?,
        flags(libc::MAP_ANONYMOUS as u64, libc::MAP_ANONYMOUS as u64).map_err(bad)?,
    ])
    .map_err(bad)?;
    let rules = mosaic_proto::syscalls::SYSCALLS
        .iter()
        .filter(|s| matches!(s.class, Class::Local | Class::Exit))
        .map(|s| {
            let conditions = if i64::from(s.nr) == libc::SYS_mmap {
                vec![anon_private.clone()]
            } else {
                Vec::new()
            };
            (i64::from(s.nr), conditions)
        })
        .collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Trace(0),
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(|e| RemoteError::Protocol(format!("seccomp filter: {e}")))?;
    let prog: BpfProgram = filter
        .try_into()
        .map_err(|e| RemoteError::Protocol(format!("seccomp filter: {e}")))?;
    let mut bytes = Vec::with_capacity(prog.len() * 8);
    for ins in prog {
        bytes.extend_from_slice(&ins.code.to_le_bytes());
        bytes.push(ins.jt);
        bytes.push(ins.jf);
        bytes.extend_from_slice(&ins.k.to_le_bytes());
    }
    Ok(bytes)
}

/// What the link reader hands to the trap loop.
enum Incoming {
    Result(i64, Vec<Buf>),
    Arrived,
    Stay(String),
}

/// The link reader's and the trap loop's common view of the guest.
struct Shared {
    /// A pidfd, so that a late signal can never hit a recycled PID.
    pidfd: std::os::fd::OwnedFd,
    /// While the guest is being taken home: signals from home are held
    /// here (and go back home) instead of reaching a guest that is already
    /// captured.
    held: std::sync::Mutex<Option<Vec<i32>>>,
    /// Home asked for the guest back.
    come_home: std::sync::atomic::AtomicBool,
}

/// `si_value` of the trap loop's wake-up signal.
const WAKE_MAGIC: u64 = 0x6d6f_7361_6963_0001;
const SI_QUEUE: i32 = -1;

impl Shared {
    fn send(&self, signal: i32, info: Option<&[u8; 128]>) {
        use std::os::fd::AsRawFd;
        let info = info.map_or(std::ptr::null(), |i| i.as_ptr());
        // SAFETY: pidfd_send_signal with our pidfd and either no siginfo or
        // a 128-byte siginfo that lives across the call.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                signal,
                info,
                0,
            )
        };
    }

    /// A signal from home: delivered now, or held while the guest leaves.
    fn signal(&self, signal: i32) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        match held.as_mut() {
            Some(v) => v.push(signal),
            None => self.send(signal, None),
        }
    }

    /// Stops the guest where it is for the trap loop: a SIGSTOP queued
    /// with a mark ([`is_wakeup`]), which the trap loop suppresses. Only the
    /// tracing thread may ptrace, and it may be blocked in `waitpid`; this
    /// is our `PTRACE_INTERRUPT` from another thread.
    fn wake(&self) {
        let mut info = [0u8; 128];
        info[0..4].copy_from_slice(&libc::SIGSTOP.to_le_bytes());
        info[8..12].copy_from_slice(&SI_QUEUE.to_le_bytes());
        info[16..20].copy_from_slice(&std::process::id().to_le_bytes());
        info[24..32].copy_from_slice(&WAKE_MAGIC.to_le_bytes());
        self.send(libc::SIGSTOP, Some(&info));
    }

    fn hold(&self) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
    }

    /// Stops holding; returns what was held.
    fn unhold(&self) -> Vec<i32> {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default()
    }
}

/// Whether a raw siginfo is the trap loop's wake-up.
fn is_wakeup(info: &[u8]) -> bool {
    let word = |at: usize| {
        info.get(at..at + 4)
            .map(|b| i32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
    };
    word(0) == Some(libc::SIGSTOP)
        && word(8) == Some(SI_QUEUE)
        && info
            .get(24..32)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            == Some(WAKE_MAGIC)
}

/// Serves one migration: receives the image, starts the guest, forwards
/// its calls until it ends or goes home. If anything fails before the guest
/// runs, home is told (`Failed`) and keeps the process.
/// `on_started(home, home_pid, guest_pid)` is called once the guest runs.
pub fn serve(
    link: &mut dyn Link,
    policy: &GuestPolicy,
    on_started: &mut dyn FnMut(&str, i32, i32),
) -> Result<(), RemoteError> {
    let (home, home_pid) = match link.recv_msg::<HomeMsg>()? {
        HomeMsg::Begin { home, home_pid, .. } => (home, home_pid),
        other => {
            return Err(RemoteError::Protocol(format!(
                "expected Begin, got {other:?}"
            )));
        }
    };
    let started = (|| -> Result<Tracee, RemoteError> {
        let opts = RestoreOptions {
            no_files: true,
            own_process_group: true,
            drop_to: Some((policy.uid, policy.gid)),
            seccomp: Some(guest_filter()?),
            ..Default::default()
        };
        let mut stream = ImageIn::<HomeMsg>::new(&mut *link);
        let t = mosaic_ckpt::restore_traced(&mut stream, &opts, &mut |_, _| {})?;
        // The trailer was read by restore; take the end of the stream.
        stream.drain()?;
        Ok(t)
    })();
    let mut t = match started {
        Ok(t) => t,
        Err(e) => {
            let _ = link.send_msg(&RemoteMsg::Failed {
                error: e.to_string(),
            });
            return Err(e);
        }
    };
    tracing::info!(home = %home, home_pid, guest_pid = t.pid.as_raw(), "guest started");
    on_started(&home, home_pid, t.pid.as_raw());
    link.send_msg(&RemoteMsg::Started {
        guest_pid: t.pid.as_raw(),
    })?;
    // SAFETY: pidfd_open takes integers and returns a descriptor we own.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, t.pid.as_raw(), 0) } as i32;
    if raw < 0 {
        let _ = nix::sys::signal::kill(t.pid, nix::sys::signal::Signal::SIGKILL);
        return Err(RemoteError::Protocol(
            "pidfd_open of the guest failed".into(),
        ));
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let pidfd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    let shared = std::sync::Arc::new(Shared {
        pidfd,
        held: std::sync::Mutex::new(None),
        come_home: std::sync::atomic::AtomicBool::new(false),
    });
    // From here on a reader thread takes what home sends: signals for the
    // guest go straight to it (they need no ptrace), the rest to the trap
    // loop.
    let mut receiver = link.split_receiver()?;
    let (tx, incoming) = std::sync::mpsc::channel();
    let reader_shared = shared.clone();
    std::thread::Builder::new()
        .name("guest-link".into())
        .spawn(move || {
            let shared = reader_shared;
            loop {
                let to_loop = match receiver.recv_msg::<HomeMsg>() {
                    Ok(HomeMsg::Signal { signal }) => {
                        shared.signal(signal);
                        continue;
                    }
                    Ok(HomeMsg::ComeHome) => {
                        shared
                            .come_home
                            .store(true, std::sync::atomic::Ordering::SeqCst);
                        shared.wake();
                        continue;
                    }
                    Ok(HomeMsg::SyscallResult { ret, outbufs }) => Incoming::Result(ret, outbufs),
                    Ok(HomeMsg::Arrived) => Incoming::Arrived,
                    Ok(HomeMsg::Stay { error }) => Incoming::Stay(error),
                    Ok(other) => {
                        warn!(?other, "unexpected message from home");
                        continue;
                    }
                    Err(_) => {
                        // Home is gone: nobody can answer for this process.
                        shared.send(libc::SIGKILL, None);
                        break;
                    }
                };
                if tx.send(to_loop).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| RemoteError::Protocol(format!("cannot start the guest's link reader: {e}")))?;
    // The reader ends when home closes the link.
    run_guest(&mut t, link, &incoming, &shared)
}

const ERESTARTSYS: i64 = -512;
const ERESTARTNOINTR: i64 = -513;
const ERESTARTNOHAND: i64 = -514;
const EAGAIN: i64 = -11;

/// How the trap loop lets the guest go on after a stop.
enum Resume {
    Cont(Option<Signal>),
    /// Stay in group-stop, but report `SIGCONT` (`PTRACE_LISTEN`).
    Listen,
}

fn is_stop_signal(sig: Signal) -> bool {
    matches!(
        sig,
        Signal::SIGSTOP | Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU
    )
}

/// Why a call must be run at home, natively: `None` if it may be forwarded
/// or run here.
fn brings_home(regs: &mosaic_proto::image::Regs) -> Option<&'static str> {
    let spec = lookup(regs.orig_rax as u32)?;
    match spec.class {
        Class::BringHome => Some(spec.name),
        // Only anonymous private mmaps pass the filter (guest_filter);
        // private file mappings are filled from home (map_private_file).
        Class::Local if regs.orig_rax == libc::SYS_mmap as u64 => {
            Some("mmap of shared memory (or of a very large file)")
        }
        _ => None,
    }
}

/// The trap loop.
fn run_guest(
    t: &mut Tracee,
    link: &mut dyn Link,
    incoming: &Receiver,
    shared: &Shared,
) -> Result<(), RemoteError> {
    let pid = t.pid;
    let mut resume = Resume::Cont(None);
    loop {
        match std::mem::replace(&mut resume, Resume::Cont(None)) {
            Resume::Cont(sig) => {
                ptrace::cont(pid, sig).map_err(|e| CkptError::Ptrace("PTRACE_CONT", e))?
            }
            Resume::Listen => listen(pid)?,
        }
        match waitpid(pid, Some(WaitPidFlag::__WALL))
            .map_err(|e| CkptError::Ptrace("waitpid", e))?
        {
            WaitStatus::PtraceEvent(_, _, ev) if ev == libc::PTRACE_EVENT_SECCOMP => {
                let regs = t.regs()?;
                if private_file_map(&regs) {
                    match map_private_file(t, link, incoming, regs) {
                        Ok(()) => continue,
                        Err(RemoteError::Link(e)) => {
                            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                            return Err(e.into());
                        }
                        Err(e) => return Err(e),
                    }
                }
                if let Some(reason) = brings_home(&regs) {
                    if go_home(t, link, incoming, shared, Some(regs), reason)? {
                        return Ok(());
                    }
                    continue;
                }
                let ret = match forward(t, link, incoming, &regs) {
                    Ok(r) => r,
                    Err(RemoteError::Link(e)) => {
                        // Home is gone: nobody can answer for this process.
                        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                        return Err(e.into());
                    }
                    Err(e) => return Err(e),
                };
                finish_call(t, regs, ret)?;
            }
            WaitStatus::PtraceEvent(_, sig, libc::PTRACE_EVENT_STOP) => {
                if is_stop_signal(sig) {
                    // Job control: the guest is in group-stop. Home stops
                    // the placeholder the same way, so the parent sees it;
                    // SIGCONT (relayed from home) wakes us.
                    link.send_msg(&RemoteMsg::Stopped { signal: sig as i32 })?;
                    resume = Resume::Listen;
                }
            }
            WaitStatus::Stopped(_, Signal::SIGSTOP)
                if ptrace_siginfo(pid).is_some_and(|i| is_wakeup(&i)) =>
            {
                if shared
                    .come_home
                    .swap(false, std::sync::atomic::Ordering::SeqCst)
                    && go_home(t, link, incoming, shared, None, "asked by home")?
                {
                    return Ok(());
                }
            }
            WaitStatus::Stopped(_, sig) => resume = Resume::Cont(Some(sig)),
            WaitStatus::Exited(_, code) => {
                link.send_msg(&RemoteMsg::Exited { code })?;
                return Ok(());
            }
            WaitStatus::Signaled(_, sig, _) => {
                link.send_msg(&RemoteMsg::Killed { signal: sig as i32 })?;
                return Ok(());
            }
            other => debug!(?other, "guest stop ignored"),
        }
    }
}

/// Largest private file mapping filled from home (larger ones bring the
/// process home).
const FILL_MAX: u64 = 256 << 20;

/// Whether the guest stopped in an `mmap` of a file, private, that we fill
/// from home.
fn private_file_map(regs: &mosaic_proto::image::Regs) -> bool {
    let flags = regs.r10;
    regs.orig_rax == libc::SYS_mmap as u64
        && flags & libc::MAP_TYPE as u64 == libc::MAP_PRIVATE as u64
        && flags & libc::MAP_ANONYMOUS as u64 == 0
        && regs.rsi > 0
        && regs.rsi <= FILL_MAX
}

/// A private file mapping made while away: the file's bytes are read at
/// home (`pread64` on the home descriptor, forwarded like any call), the
/// guest's own `mmap` is turned into an anonymous one at the same place
/// with the same protection, and the bytes are written into it. The
/// mapping then holds what a private mapping of the file would have held
/// (bytes past the end of the file are zeros, as in the file's last page).
fn map_private_file(
    t: &mut Tracee,
    link: &mut dyn Link,
    incoming: &Receiver,
    mut regs: mosaic_proto::image::Regs,
) -> Result<(), RemoteError> {
    let (len, flags, fd, offset) = (regs.rsi, regs.r10, regs.r8, regs.r9);
    let mut data: Vec<u8> = Vec::with_capacity(len as usize);
    while (data.len() as u64) < len {
        let want = (len - data.len() as u64).min(MAX_BUF);
        let at = offset + data.len() as u64;
        link.send_msg(&RemoteMsg::Syscall {
            nr: libc::SYS_pread64 as u32,
            // The buffer pointer only has to be non-null: home allocates.
            args: [fd, 1, want, at, 0, 0],
            inbufs: Vec::new(),
        })?;
        let (ret, outbufs) = result_of(incoming)?;
        if ret < 0 {
            // EBADF and friends, as mmap would say (EACCES for a
            // write-only descriptor becomes EBADF).
            return finish_call(t, regs, ret);
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
    regs.r10 =
        (flags & !(libc::MAP_TYPE as u64)) | (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
    regs.r8 = u64::MAX;
    regs.r9 = 0;
    t.set_regs(&regs)?;
    // The changed call runs (seccomp re-checks it: now allowed); at its
    // exit stop, the mapping is there.
    ptrace::syscall(t.pid, None).map_err(|e| CkptError::Ptrace("PTRACE_SYSCALL", e))?;
    match waitpid(t.pid, Some(WaitPidFlag::__WALL)).map_err(|e| CkptError::Ptrace("waitpid", e))? {
        WaitStatus::Stopped(_, Signal::SIGTRAP) => {}
        other => {
            return Err(RemoteError::Protocol(format!(
                "expected the guest's mmap exit stop, got {other:?}"
            )));
        }
    }
    let mapped = t.regs()?.rax as i64;
    if mapped >= 0 && !data.is_empty() {
        t.write_mem(mapped as u64, &data)?;
    }
    Ok(())
}

/// The next call result from home.
fn result_of(incoming: &Receiver) -> Result<(i64, Vec<Buf>), RemoteError> {
    loop {
        match incoming.recv().map_err(|_| LinkError::Closed)? {
            Incoming::Result(ret, outbufs) => return Ok((ret, outbufs)),
            _ => warn!("home answered a call with something else; ignored"),
        }
    }
}

/// `PTRACE_LISTEN`: stay stopped, report the next SIGCONT.
fn listen(pid: nix::unistd::Pid) -> Result<(), CkptError> {
    // SAFETY: PTRACE_LISTEN takes no pointers.
    let r = unsafe { libc::ptrace(libc::PTRACE_LISTEN, pid.as_raw(), 0, 0) };
    if r < 0 {
        return Err(CkptError::Ptrace(
            "PTRACE_LISTEN",
            nix::errno::Errno::last(),
        ));
    }
    Ok(())
}

/// The siginfo of a signal-delivery stop, raw.
fn ptrace_siginfo(pid: nix::unistd::Pid) -> Option<[u8; 128]> {
    let mut info = [0u8; 128];
    // SAFETY: PTRACE_GETSIGINFO writes one siginfo (128 bytes) into `info`.
    let r = unsafe { libc::ptrace(libc::PTRACE_GETSIGINFO, pid.as_raw(), 0, info.as_mut_ptr()) };
    (r == 0).then_some(info)
}

/// Gives the guest the result of a forwarded call and lets it go on. An
/// interrupted call (home's kernel said "restart") is made to look
/// interrupted here too, at the syscall-exit stop: the guest's kernel then
/// restarts it or fails it with EINTR by the guest's own `SA_RESTART`, as
/// for a call of its own.
fn finish_call(
    t: &mut Tracee,
    mut regs: mosaic_proto::image::Regs,
    ret: i64,
) -> Result<(), RemoteError> {
    let nr = regs.orig_rax;
    // Skip the real call; its result is home's.
    regs.orig_rax = u64::MAX;
    regs.rax = ret as u64;
    t.set_regs(&regs)?;
    if !matches!(ret, ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND) {
        return Ok(());
    }
    if !deliverable_signal(t.pid.as_raw()) {
        // No signal will be delivered, so the kernel would not look at the
        // restart code: restart the call ourselves, as it does when no
        // handler runs.
        regs.rip -= 2;
        regs.rax = nr;
        t.set_regs(&regs)?;
        return Ok(());
    }
    ptrace::syscall(t.pid, None).map_err(|e| CkptError::Ptrace("PTRACE_SYSCALL", e))?;
    match waitpid(t.pid, Some(WaitPidFlag::__WALL)).map_err(|e| CkptError::Ptrace("waitpid", e))? {
        WaitStatus::Stopped(_, Signal::SIGTRAP) => {}
        other => {
            return Err(RemoteError::Protocol(format!(
                "expected the guest's syscall-exit stop, got {other:?}"
            )));
        }
    }
    let mut at_exit = t.regs()?;
    at_exit.orig_rax = nr;
    at_exit.rax = ret as u64;
    t.set_regs(&at_exit)?;
    Ok(())
}

/// Whether a signal is queued for `pid` and not blocked.
fn deliverable_signal(pid: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    (field("SigPnd:") | field("ShdPnd:")) & !field("SigBlk:") != 0
}

/// Sends the guest home: captured where it stopped (for a call that must
/// run at home, just before that call, so home redoes it) and streamed to
/// the deputy, which restores it into the placeholder. Returns true once
/// home has it (the guest is then ended here), false if home could not
/// take it back (the guest goes on here; a call that needed home fails with
/// EAGAIN).
fn go_home(
    t: &mut Tracee,
    link: &mut dyn Link,
    incoming: &Receiver,
    shared: &Shared,
    at_call: Option<mosaic_proto::image::Regs>,
    reason: &str,
) -> Result<bool, RemoteError> {
    let pid = t.pid;
    if let Some(mut regs) = at_call {
        // The state just before the `syscall` instruction, then a clean
        // signal-delivery stop (the single-step trap) to capture from.
        regs.rax = regs.orig_rax;
        regs.orig_rax = u64::MAX;
        regs.rip -= 2;
        t.set_regs(&regs)?;
        step_out(t, regs.rip)?;
    }
    tracing::info!(guest_pid = pid.as_raw(), reason, "sending the guest home");
    shared.hold();
    link.send_msg(&RemoteMsg::Returning {
        reason: reason.to_string(),
    })?;
    let opts = mosaic_ckpt::CaptureOptions {
        drop_queued: Some(is_wakeup),
        ..Default::default()
    };
    let mut out = mosaic_proto::migrate::ImageOut::<RemoteMsg>::new(&mut *link);
    let captured = mosaic_ckpt::capture_traced(t, &opts, &mut out, &mut |_, _| {});
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
    loop {
        match incoming.recv().map_err(|_| LinkError::Closed)? {
            Incoming::Arrived => {
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                while !matches!(
                    waitpid(pid, Some(WaitPidFlag::__WALL)),
                    Ok(WaitStatus::Signaled(..) | WaitStatus::Exited(..)) | Err(_)
                ) {}
                let mut signals = shared.unhold();
                signals.extend(t.deferred_signals.drain(..).map(|s| s as i32));
                link.send_msg(&RemoteMsg::Gone { signals })?;
                tracing::info!(guest_pid = pid.as_raw(), "the guest went home");
                return Ok(true);
            }
            Incoming::Stay(error) => {
                warn!(%error, "home could not take the guest back; it goes on here");
                for sig in shared.unhold() {
                    shared.send(sig, None);
                }
                for sig in t.deferred_signals.drain(..) {
                    shared.send(sig as i32, None);
                }
                if at_call.is_some() {
                    let mut regs = t.regs()?;
                    regs.rip += 2;
                    regs.rax = EAGAIN as u64;
                    t.set_regs(&regs)?;
                }
                return Ok(false);
            }
            Incoming::Result(..) => warn!("a call result while going home; ignored"),
        }
    }
}

/// From a seccomp stop whose call was turned into "not yet made" (`rip` at
/// the `syscall` instruction), to a signal-delivery stop there, which is
/// a clean point to capture from.
fn step_out(t: &mut Tracee, at: u64) -> Result<(), RemoteError> {
    ptrace::step(t.pid, None).map_err(|e| CkptError::Ptrace("PTRACE_SINGLESTEP", e))?;
    match waitpid(t.pid, Some(WaitPidFlag::__WALL)).map_err(|e| CkptError::Ptrace("waitpid", e))? {
        WaitStatus::Stopped(_, sig) => {
            if sig != Signal::SIGTRAP {
                t.deferred_signals.push(sig);
            }
            if t.regs()?.rip != at {
                return Err(RemoteError::Protocol("the guest ran past its call".into()));
            }
            Ok(())
        }
        other => Err(RemoteError::Protocol(format!(
            "the guest did not stop before its call: {other:?}"
        ))),
    }
}

fn read_buf(t: &Tracee, addr: u64, len: u64) -> Result<Vec<u8>, i64> {
    if len > MAX_BUF {
        return Err(E2BIG);
    }
    let mut b = vec![0u8; len as usize];
    t.read_mem(addr, &mut b).map_err(|_| EFAULT)?;
    Ok(b)
}

/// What the link reader passes on.
type Receiver = std::sync::mpsc::Receiver<Incoming>;

/// Forwards the call the guest is stopped in; returns its result.
fn forward(
    t: &mut Tracee,
    link: &mut dyn Link,
    incoming: &Receiver,
    regs: &mosaic_proto::image::Regs,
) -> Result<i64, RemoteError> {
    let nr = regs.orig_rax as u32;
    let args = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9];
    let Some(spec) = lookup(nr) else {
        return Ok(ENOSYS);
    };
    if spec.class != Class::Forward {
        warn!(syscall = spec.name, class = ?spec.class, "guest call has no implementation");
        return Ok(ENOSYS);
    }
    let Some(marshal) = args_for(spec, &args) else {
        warn!(
            syscall = spec.name,
            "forwarding of this call is not written yet"
        );
        return Ok(ENOSYS);
    };
    let mut inbufs: Vec<Buf> = Vec::new();
    for (i, arg) in marshal.iter().enumerate() {
        let ptr = args[i];
        let got = match *arg {
            _ if ptr == 0 => continue,
            Arg::Special => {
                warn!(
                    syscall = spec.name,
                    "forwarding of this call is not written yet"
                );
                return Ok(ENOSYS);
            }
            // Its capacity is the u32 behind the row's SockLen pointer;
            // copied in too (getsockopt reads it).
            Arg::SockBuf => {
                let len_ptr = marshal
                    .iter()
                    .position(|a| *a == Arg::SockLen { buf: i as u8 })
                    .map(|j| args[j])
                    .unwrap_or(0);
                if len_ptr == 0 {
                    continue;
                }
                read_buf(t, len_ptr, 4).and_then(|cap| {
                    let cap = u32::from_le_bytes(cap.try_into().unwrap_or([0; 4]));
                    read_buf(t, ptr, u64::from(cap).min(SOCKBUF_MAX))
                })
            }
            Arg::CStr => t.read_cstr(ptr, 4096).map_err(|_| EFAULT),
            Arg::InBuf { len } => read_buf(t, ptr, args[len as usize]),
            Arg::InStruct { size } | Arg::InOutStruct { size } => read_buf(t, ptr, u64::from(size)),
            Arg::SockLen { .. } => read_buf(t, ptr, 4),
            Arg::Iovec { count, write } => gather(t, ptr, args[count as usize], write),
            _ => continue,
        };
        match got {
            Ok(bytes) => inbufs.push((i as u8, bytes.into())),
            Err(errno) => return Ok(errno),
        }
    }
    link.send_msg(&RemoteMsg::Syscall { nr, args, inbufs })?;
    let (ret, outbufs) = result_of(incoming)?;
    for (i, bytes) in outbufs {
        let Some(arg) = marshal.get(i as usize) else {
            return Err(RemoteError::Protocol(format!(
                "result for argument {i} of {}",
                spec.name
            )));
        };
        let ptr = args[i as usize];
        if let Arg::Iovec { count, .. } = *arg {
            scatter(t, ptr, args[count as usize], &bytes)?;
        } else if t.write_mem(ptr, &bytes).is_err() {
            return Ok(EFAULT);
        }
    }
    Ok(ret)
}

/// The guest's iovec array at `ptr`: (base, len) pairs.
fn iovecs(t: &Tracee, ptr: u64, count: u64) -> Result<Vec<(u64, u64)>, i64> {
    if count > 1024 {
        return Err(-22); // EINVAL, as the kernel says above IOV_MAX
    }
    let raw = read_buf(t, ptr, count * 16)?;
    Ok(raw
        .chunks_exact(16)
        .map(|c| {
            (
                u64::from_le_bytes(c[..8].try_into().expect("8 bytes")),
                u64::from_le_bytes(c[8..].try_into().expect("8 bytes")),
            )
        })
        .collect())
}

/// For a gathering call (writev): the bytes of all buffers. For a
/// scattering one (readv): the total capacity as 8 bytes.
fn gather(t: &Tracee, ptr: u64, count: u64, kernel_writes: bool) -> Result<Vec<u8>, i64> {
    let iov = iovecs(t, ptr, count)?;
    let total: u64 = iov.iter().map(|v| v.1).sum();
    if total > MAX_BUF {
        return Err(E2BIG);
    }
    if kernel_writes {
        return Ok(total.to_le_bytes().to_vec());
    }
    let mut out = Vec::with_capacity(total as usize);
    for (base, len) in iov {
        out.extend(read_buf(t, base, len)?);
    }
    Ok(out)
}

fn scatter(t: &Tracee, ptr: u64, count: u64, mut bytes: &[u8]) -> Result<(), RemoteError> {
    let iov =
        iovecs(t, ptr, count).map_err(|e| RemoteError::Protocol(format!("iovec: errno {e}")))?;
    for (base, len) in iov {
        if bytes.is_empty() {
            break;
        }
        let n = (len as usize).min(bytes.len());
        t.write_mem(base, &bytes[..n])?;
        bytes = &bytes[n..];
    }
    Ok(())
}
