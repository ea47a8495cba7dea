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
//! Status: thin slice. Forwarded: calls whose arguments are integers, fds,
//! strings, buffers, fixed structs and iovecs. Not yet: `Special`
//! arguments and bring-home (they fail with ENOSYS and a log line), signals
//! sent to the home PID, stop/continue, migrating on.

use std::io::Read;

use mosaic_ckpt::ptrace::Tracee;
use mosaic_ckpt::{CkptError, RestoreOptions};
use mosaic_proto::migrate::{Buf, HomeMsg, Link, LinkError, LinkExt, RemoteMsg};
use mosaic_proto::syscalls::{Arg, Class, args_for, lookup};
use nix::sys::ptrace;
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
const ENOSYS: i64 = -38;
const EFAULT: i64 = -14;
const E2BIG: i64 = -7;

/// The seccomp program for guests: local and exit calls run, every other
/// call stops the guest for its tracer.
pub fn guest_filter() -> Result<Vec<u8>, RemoteError> {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
    let rules = mosaic_proto::syscalls::SYSCALLS
        .iter()
        .filter(|s| matches!(s.class, Class::Local | Class::Exit))
        .map(|s| (i64::from(s.nr), Vec::new()))
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

/// Reads the image stream of a migration from the link.
struct ImageStream<'a> {
    link: &'a mut dyn Link,
    buf: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl Read for ImageStream<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.ended {
                return Ok(0);
            }
            match self.link.recv_msg::<HomeMsg>() {
                Ok(HomeMsg::ImageChunk(c)) => {
                    self.buf = c.into_vec();
                    self.pos = 0;
                }
                Ok(HomeMsg::ImageEnd) => self.ended = true,
                Ok(other) => {
                    return Err(std::io::Error::other(format!(
                        "unexpected {other:?} inside the image"
                    )));
                }
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Serves one migration: receives the image, starts the guest, forwards
/// its calls until it ends. If anything fails before the guest runs, home
/// is told (`Failed`) and keeps the process.
pub fn serve(link: &mut dyn Link, policy: &GuestPolicy) -> Result<(), RemoteError> {
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
            drop_to: Some((policy.uid, policy.gid)),
            seccomp: Some(guest_filter()?),
            ..Default::default()
        };
        let mut stream = ImageStream {
            link: &mut *link,
            buf: Vec::new(),
            pos: 0,
            ended: false,
        };
        let t = mosaic_ckpt::restore_traced(&mut stream, &opts, &mut |_, _| {})?;
        // Drain anything left of the stream (the trailer was read by restore).
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
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
    link.send_msg(&RemoteMsg::Started {
        guest_pid: t.pid.as_raw(),
    })?;
    // From here on a reader thread takes what home sends: signals for the
    // guest go straight to it (they need no ptrace), results of forwarded
    // calls go to the trap loop.
    let mut receiver = link.split_receiver()?;
    let (results_tx, results) = std::sync::mpsc::channel();
    // A pidfd, so that a late signal can never hit a recycled PID.
    // SAFETY: pidfd_open takes integers and returns a descriptor we own.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, t.pid.as_raw(), 0) } as i32;
    std::thread::Builder::new()
        .name("guest-link".into())
        .spawn(move || {
            loop {
                match receiver.recv_msg::<HomeMsg>() {
                    Ok(HomeMsg::Signal { signal }) => {
                        // SAFETY: pidfd_send_signal with our pidfd and no siginfo.
                        unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd, signal, 0, 0) };
                    }
                    Ok(HomeMsg::SyscallResult { ret, outbufs }) => {
                        if results_tx.send((ret, outbufs)).is_err() {
                            break;
                        }
                    }
                    Ok(other) => warn!(?other, "unexpected message from home"),
                    Err(_) => {
                        // Home is gone: nobody can answer for this process.
                        // SAFETY: as above.
                        unsafe {
                            libc::syscall(libc::SYS_pidfd_send_signal, pidfd, libc::SIGKILL, 0, 0)
                        };
                        break;
                    }
                }
            }
            // SAFETY: our descriptor, closed once.
            unsafe { libc::close(pidfd) };
        })
        .map_err(|e| RemoteError::Protocol(format!("cannot start the guest's link reader: {e}")))?;
    // The reader ends when home closes the link.
    run_guest(&mut t, link, &results)
}

/// The trap loop.
fn run_guest(t: &mut Tracee, link: &mut dyn Link, results: &Results) -> Result<(), RemoteError> {
    let pid = t.pid;
    let mut deliver = None;
    loop {
        ptrace::cont(pid, deliver.take()).map_err(|e| CkptError::Ptrace("PTRACE_CONT", e))?;
        match waitpid(pid, Some(WaitPidFlag::__WALL))
            .map_err(|e| CkptError::Ptrace("waitpid", e))?
        {
            WaitStatus::PtraceEvent(_, _, ev) if ev == libc::PTRACE_EVENT_SECCOMP => {
                let mut regs = t.regs()?;
                let ret = match forward(t, link, results, &regs) {
                    Ok(r) => r,
                    Err(RemoteError::Link(e)) => {
                        // Home is gone: nobody can answer for this process.
                        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                        return Err(e.into());
                    }
                    Err(e) => return Err(e),
                };
                // Skip the real call; its result is home's.
                regs.orig_rax = u64::MAX;
                regs.rax = ret as u64;
                t.set_regs(&regs)?;
            }
            WaitStatus::Stopped(_, sig) => deliver = Some(sig),
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

fn read_buf(t: &Tracee, addr: u64, len: u64) -> Result<Vec<u8>, i64> {
    if len > MAX_BUF {
        return Err(E2BIG);
    }
    let mut b = vec![0u8; len as usize];
    t.read_mem(addr, &mut b).map_err(|_| EFAULT)?;
    Ok(b)
}

/// Forwards the call the guest is stopped in; returns its result.
/// Results of forwarded calls, from the link reader.
type Results = std::sync::mpsc::Receiver<(i64, Vec<Buf>)>;

fn forward(
    t: &mut Tracee,
    link: &mut dyn Link,
    results: &Results,
    regs: &mosaic_proto::image::Regs,
) -> Result<i64, RemoteError> {
    let nr = regs.orig_rax as u32;
    let args = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9];
    let Some(spec) = lookup(nr) else {
        return Ok(ENOSYS);
    };
    if spec.class != Class::Forward {
        warn!(syscall = spec.name, class = ?spec.class, "guest call not supported yet (bring-home comes later)");
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
            Arg::Special | Arg::SockBuf => {
                warn!(
                    syscall = spec.name,
                    "forwarding of this call is not written yet"
                );
                return Ok(ENOSYS);
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
    let (ret, outbufs) = results.recv().map_err(|_| LinkError::Closed)?;
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
