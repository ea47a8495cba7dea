//! A guest's own PID namespace, in which it has its home PID and its
//! threads their home TIDs.
//!
//! Its kernel must know the process by the IDs its memory holds: glibc
//! keeps each thread's TID (in `struct pthread`, which `raise`,
//! `pthread_kill` and the mutexes use), and the kernel compares the TIDs in
//! PI futex words and robust lists with its own (a contended PI mutex
//! deadlocks when they differ: `shared/research/threads-and-live-migration`,
//! probe i). So every guest is restored in a namespace of its own, under
//! the IDs it had (`clone3` with `set_tid`), where they are free; `getpid`
//! and `gettid` are then right on its own kernel and need not go home.
//!
//! The first process of a PID namespace is its init, PID 1; when it ends,
//! the kernel kills everything else in the namespace. Ours is a small child
//! of the remote that stays root and waits on a socket: the end of the
//! socket (the session over, or the daemon gone) ends it, and the guest
//! with it if it is still there. It also sets the namespace's
//! `ns_last_pid` when told (the sysctl is the writer's own namespace's, so
//! only a process inside can): a thread the guest creates then gets the
//! TID its placeholder thread got at home ([`NsControl`]). Outside the namespace (the remote,
//! `/proc`, the seccomp listener's `notif.pid`) the guest has other IDs.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use mosaic_ckpt::CkptError;
use mosaic_ckpt::restore::CloneArgs;
use mosaic_proto::abi;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// The most a PID namespace allows (`PID_MAX_LIMIT` on 64-bit): home PIDs
/// from a node with a larger `pid_max` than this node's must fit.
const PID_MAX_LIMIT: &[u8] = b"4194304";

/// A guest's PID namespace, held by its init.
#[derive(Debug)]
pub(crate) struct GuestNs {
    /// The namespace (`/proc/<init>/ns/pid`), to restore the guest in.
    pub ns: Arc<OwnedFd>,
    init: Pid,
    /// Our end of init's socket: closing it ends init and the namespace.
    keep: Option<OwnedFd>,
}

/// Tells a guest namespace's init to set `ns_last_pid` (one duplicate of
/// its socket; dropped before the [`GuestNs`], or init does not end).
#[derive(Debug)]
pub(crate) struct NsControl(OwnedFd);

impl NsControl {
    /// The namespace's next PID will be `last + 1` if that one is free
    /// (the kernel takes it as a hint: the caller checks).
    pub fn set_last_pid(&self, last: i32) -> std::io::Result<()> {
        use std::io::{Read, Write};
        let mut sock = std::fs::File::from(self.0.try_clone()?);
        sock.write_all(&last.to_le_bytes())?;
        let mut errno = [0u8; 1];
        sock.read_exact(&mut errno)?;
        match errno[0] {
            0 => Ok(()),
            e => Err(std::io::Error::from_raw_os_error(i32::from(e))),
        }
    }
}

impl GuestNs {
    /// A fresh PID namespace with its init running.
    pub fn new() -> Result<GuestNs, CkptError> {
        let mut ends = [0i32; 2];
        // SAFETY: socketpair writes two descriptors into `ends`.
        let made = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                ends.as_mut_ptr(),
            )
        };
        if made != 0 {
            return Err(CkptError::Io(
                "socket for a guest's namespace".into(),
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: fresh descriptors that nothing else owns.
        let (read, keep) =
            unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
        let args = CloneArgs {
            flags: abi::reg(libc::CLONE_NEWPID),
            exit_signal: abi::reg(libc::SIGCHLD),
            ..Default::default()
        };
        // SAFETY: clone3 without CLONE_VM is a fork: the child has a copy
        // of our memory and returns here on its own stack; it reads
        // `args`, alive across the call. The child runs only init(), which
        // makes async-signal-safe calls (we may have other threads).
        let r = unsafe { libc::syscall(libc::SYS_clone3, &raw const args, size_of::<CloneArgs>()) };
        if r == 0 {
            init(read.as_raw_fd());
        }
        if r < 0 {
            return Err(CkptError::Ptrace(
                "clone3(CLONE_NEWPID) for a guest's namespace",
                nix::errno::Errno::last(),
            ));
        }
        drop(read);
        let init = Pid::from_raw(abi::int_result(r));
        let path = format!("/proc/{init}/ns/pid");
        match std::fs::File::open(&path) {
            Ok(fd) => Ok(GuestNs {
                ns: Arc::new(fd.into()),
                init,
                keep: Some(keep),
            }),
            Err(e) => {
                drop(keep);
                let _ = waitpid(init, None);
                Err(CkptError::Io(path, e))
            }
        }
    }
}

impl GuestNs {
    /// A handle to set the namespace's `ns_last_pid`.
    pub fn control(&self) -> std::io::Result<NsControl> {
        let keep = self
            .keep
            .as_ref()
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EBADF))?;
        Ok(NsControl(keep.try_clone()?))
    }
}

impl Drop for GuestNs {
    fn drop(&mut self) {
        // init reads the end of its pipe and exits once nothing else is
        // left in the namespace (the kernel kills what is, and init's
        // exit waits until those are reaped: the guest is our child, so
        // the session reaps it first).
        self.keep.take();
        let init = self.init;
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_secs(1) {
            match waitpid(init, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => {
                    std::thread::sleep(std::time::Duration::from_millis(1))
                }
                _ => return,
            }
        }
        tracing::warn!(
            init = init.as_raw(),
            "a guest's namespace is slow to end; reaping its init in the background"
        );
        std::thread::spawn(move || waitpid(init, None));
    }
}

/// Init of a guest's namespace: raise the namespace's `pid_max` to the
/// limit, then set `ns_last_pid` to each number read from the socket
/// `sock` (4 bytes, little-endian; answered by one byte, 0 or the errno),
/// and exit at its end.
fn init(sock: i32) -> ! {
    // SAFETY: only async-signal-safe system calls on integers and on
    // buffers that live through each call, then _exit; nothing returns.
    unsafe {
        // Not outliving the thread that serves the guest, even if the
        // socket stays open somewhere.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // Nothing of the daemon's but the socket: another guest's end
        // held here would keep that guest's init from seeing its end.
        if sock > 0 {
            libc::syscall(libc::SYS_close_range, 0, sock - 1, 0);
        }
        libc::syscall(libc::SYS_close_range, sock + 1, u32::MAX, 0);
        // Orphans in here (there should be none: a guest's fork brings it
        // home) are reaped by the kernel.
        libc::signal(libc::SIGCHLD, libc::SIG_IGN);
        // Per namespace since Linux 6.14; where it is not, writing changes
        // nothing and a home PID above this node's limit is refused at the
        // restore.
        let fd = libc::open(c"/proc/sys/kernel/pid_max".as_ptr(), libc::O_WRONLY);
        if fd >= 0 {
            libc::write(fd, PID_MAX_LIMIT.as_ptr().cast(), PID_MAX_LIMIT.len());
            libc::close(fd);
        }
        let mut word = [0u8; 4];
        let mut have = 0usize;
        loop {
            let r = libc::read(sock, word.as_mut_ptr().add(have).cast(), 4 - have);
            if r == 0 || (r < 0 && *libc::__errno_location() != libc::EINTR) {
                break;
            }
            have += usize::try_from(r).unwrap_or(0);
            if have < 4 {
                continue;
            }
            have = 0;
            let answer = set_last_pid(i32::from_le_bytes(word));
            libc::write(sock, (&raw const answer).cast(), 1);
        }
        libc::_exit(0)
    }
}

/// Writes `last` into this namespace's `ns_last_pid`: 0, or the errno
/// (async-signal-safe: init runs in a fork of a threaded process).
fn set_last_pid(last: i32) -> u8 {
    let mut digits = [0u8; 12];
    let mut at = digits.len();
    let mut v = last.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + u8::try_from(v % 10).unwrap_or(0);
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // SAFETY: open, write and close on a path and a buffer that live
    // through each call.
    unsafe {
        let fd = libc::open(c"/proc/sys/kernel/ns_last_pid".as_ptr(), libc::O_WRONLY);
        if fd < 0 {
            return u8::try_from(*libc::__errno_location()).unwrap_or(u8::MAX);
        }
        let n = digits.len() - at;
        let w = libc::write(fd, digits.as_ptr().add(at).cast(), n);
        let errno = *libc::__errno_location();
        libc::close(fd);
        if usize::try_from(w).ok() == Some(n) {
            0
        } else {
            u8::try_from(errno).unwrap_or(u8::MAX).max(1)
        }
    }
}
