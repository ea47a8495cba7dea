//! The syscall table: for every x86-64 system call, what a guest does with
//! it and how its arguments travel. The one place that answers "what happens
//! to syscall N?" (gVisor's linux64.go is the model). Both sides use it: the
//! remote to decide (run here, forward home, bring the process home, exit),
//! the deputy to know which arguments are buffers to copy in and out. How
//! each kind of argument travels is written once, in [`codec`].
//!
//! Classes:
//! * `Local`: runs on the guest's node at full speed (memory management of
//!   private memory, signal masks and handlers, time, yield, futex on
//!   private memory, ...). Nothing node-dependent.
//! * `Forward`: executed at home inside the placeholder (files, fds, paths,
//!   identity, sockets, ...); arguments marshalled per `args`. An argument
//!   the codec cannot marshal ([`Arg::Opaque`], an unknown ioctl request)
//!   makes that call at home: the process comes home first.
//! * `BringHome`: the process must go home first and then runs natively
//!   (fork/vfork/clone/execve, shared writable mappings, ptrace, ...).
//! * `Exit`: ends the process (exit, exit_group).
//! * `Unsupported`: numbers without a kernel entry point: ENOSYS, natively
//!   too.
//!
//! Every row says what is missing in `gap` (empty: nothing known); the
//! listing users read, `SYSCALLS.md`, is made from the table by
//! [`listing`] (a test keeps it current).

pub mod codec;

/// What a guest does with a system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Local,
    Forward,
    BringHome,
    Exit,
    Unsupported,
}

/// Which way the bytes of a buffer go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// The kernel reads them.
    In,
    /// The kernel writes them.
    Out,
    /// Both.
    InOut,
}

/// Arguments whose meaning depends on a command in argument 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// fcntl's third argument, by `cmd`.
    Fcntl,
    /// ioctl's third argument, by `request` (a known-request table).
    Ioctl,
    /// shmctl's and msgctl's buffer (third argument), by `cmd`.
    Shmctl,
    Msgctl,
    /// semctl's `union semun` (fourth argument), by `cmd`.
    Semctl,
    /// keyctl's arguments after the operation, by operation.
    Keyctl,
}

/// How one argument travels when a call is forwarded. The first group
/// are the concrete kinds the codec moves; the second are shapes that
/// [`codec::resolve`] turns into concrete kinds from the other arguments
/// of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// A plain integer (flags, counts, modes, ids, offsets).
    Int,
    /// A file descriptor of the process (meaningful at home only).
    Fd,
    /// A NUL-terminated string read from the guest (paths, names), at most PATH_MAX.
    CStr,
    /// A buffer the kernel reads, whose length is argument number `len` (0-based).
    InBuf { len: u8 },
    /// A buffer the kernel reads of which it may take fewer bytes than
    /// asked (write, pwrite64, sendto): beyond [`codec::MAX_BUF`] only the
    /// first `MAX_BUF` travel, a short write as the kernel may make one.
    Bytes { len: u8 },
    /// A buffer the kernel writes, whose capacity is argument number `len`;
    /// the bytes valid afterwards are the return value (read, getdents64, ...)
    /// unless `whole` is true (then all `len` bytes are copied back).
    OutBuf { len: u8, whole: bool },
    /// A fixed-size struct the kernel reads (size in bytes); may be NULL.
    InStruct { size: u32 },
    /// A fixed-size struct the kernel writes; may be NULL.
    OutStruct { size: u32 },
    /// A fixed-size struct read and written.
    InOutStruct { size: u32 },
    /// An area of `size` bytes the kernel writes, of which `header` bytes
    /// plus `elem` bytes per unit of the return value are valid (an
    /// epoll_wait's events, a msgrcv's message).
    OutCounted { size: u32, elem: u16, header: u16 },
    /// An array of `struct iovec` with count in argument `count`; `write`
    /// true if the kernel writes into the buffers (readv), false if it reads
    /// them (writev).
    Iovec { count: u8, write: bool },
    /// A pointer to a `socklen_t` giving the size of the buffer in argument
    /// `buf` (accept, getsockname, recvfrom's addr, getsockopt...), read and written.
    SockLen { buf: u8 },
    /// The buffer described by a `SockLen` argument of the same row (the
    /// address of accept/getsockname/getpeername/recvfrom, getsockopt's
    /// value, the arrays of `lsm_get_self_attr`/`lsm_list_modules`): its capacity
    /// is the `u32` behind that `SockLen`, copied in and copied back out up
    /// to the updated length.
    SockBuf,
    /// A `struct msghdr` (sendmsg, recvmsg): its name, its iovec buffers
    /// and its control bytes travel as one blob ([`msghdr`]); `recv`: the
    /// kernel writes them and the lengths.
    MsgHdr { recv: bool },
    /// pselect6's sixth argument: a `{const sigset_t *, size_t}` pair,
    /// the set it points to copied too.
    SigsetPair,

    /// Shape: a struct of `size` bytes the kernel reads to change state
    /// that travels with the process (prlimit64's new limit): NULL is
    /// forwarded, anything else makes the call at home.
    HomeIfSet { size: u32 },
    /// Shape: `count` (argument number) elements of `elem` bytes.
    Array { count: u8, elem: u16, dir: Dir },
    /// Shape: an `fd_set` of select/pselect6, `ceil(nfds/64)` words by
    /// argument 0; read and written.
    FdSet,
    /// Shape: a SysV message, an 8-byte `mtype` then `len` (argument
    /// number) bytes of text; `out` for msgrcv.
    MsgBuf { len: u8, out: bool },
    /// Shape: by the command in argument 1.
    ByCmd(Cmd),
    /// An argument the codec does not marshal (its shape is in `note`):
    /// the call is made at home, natively, the process brought home first.
    Opaque,
}

/// The blob that carries a `struct msghdr` (x86-64, 56 bytes): the header
/// as the guest had it (lengths capped to what travels), then the name, the
/// control bytes, then for sending the gathered data, for receiving the
/// total capacity of the buffers as 8 bytes. The answer of a recvmsg is the
/// header as the kernel left it, the name and control bytes it wrote (up to
/// what travelled) and the data received.
pub mod msghdr {
    /// Size of `struct msghdr`.
    pub const SIZE: usize = 56;
    /// Largest name that travels (`struct sockaddr_storage`).
    pub const MAX_NAME: u64 = 128;
    /// Largest control buffer that travels.
    pub const MAX_CONTROL: u64 = 64 << 10;
    /// Offsets of the fields the kernel updates in the caller's header.
    pub const NAMELEN_AT: u64 = 8;
    pub const CONTROLLEN_AT: u64 = 40;
    pub const FLAGS_AT: u64 = 48;

    /// The fields of a `struct msghdr`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct Fields {
        pub name: u64,
        pub namelen: u32,
        pub iov: u64,
        pub iovlen: u64,
        pub control: u64,
        pub controllen: u64,
        pub flags: i32,
    }

    /// `struct msghdr` as the kernel lays it out on x86-64.
    #[derive(
        zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout,
    )]
    #[repr(C)]
    struct Raw {
        name: u64,
        namelen: u32,
        _pad: u32,
        iov: u64,
        iovlen: u64,
        control: u64,
        controllen: u64,
        flags: i32,
        _pad2: u32,
    }

    /// Reads the fields; `None` if `h` is shorter than a msghdr.
    pub fn parse(h: &[u8]) -> Option<Fields> {
        let (r, _) = <Raw as zerocopy::FromBytes>::read_from_prefix(h).ok()?;
        Some(Fields {
            name: r.name,
            namelen: r.namelen,
            iov: r.iov,
            iovlen: r.iovlen,
            control: r.control,
            controllen: r.controllen,
            flags: r.flags,
        })
    }

    /// A msghdr with these fields.
    pub fn build(f: &Fields) -> [u8; SIZE] {
        let r = Raw {
            name: f.name,
            namelen: f.namelen,
            _pad: 0,
            iov: f.iov,
            iovlen: f.iovlen,
            control: f.control,
            controllen: f.controllen,
            flags: f.flags,
            _pad2: 0,
        };
        let mut h = [0u8; SIZE];
        h.copy_from_slice(zerocopy::IntoBytes::as_bytes(&r));
        h
    }

    /// How many name and control bytes travel for these fields.
    pub fn travelling(f: &Fields) -> (u64, u64) {
        let name = if f.name == 0 {
            0
        } else {
            u64::from(f.namelen).min(MAX_NAME)
        };
        let control = if f.control == 0 {
            0
        } else {
            f.controllen.min(MAX_CONTROL)
        };
        (name, control)
    }

    #[cfg(test)]
    mod layout {
        use super::*;

        #[test]
        fn raw_has_the_kernels_layout() {
            assert_eq!(size_of::<Raw>(), SIZE);
            assert_eq!(size_of::<Raw>(), size_of::<libc::msghdr>());
            assert_eq!(std::mem::offset_of!(Raw, namelen) as u64, NAMELEN_AT);
            assert_eq!(std::mem::offset_of!(Raw, controllen) as u64, CONTROLLEN_AT);
            assert_eq!(std::mem::offset_of!(Raw, flags) as u64, FLAGS_AT);
            assert_eq!(
                std::mem::offset_of!(Raw, controllen),
                std::mem::offset_of!(libc::msghdr, msg_controllen)
            );
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Syscall {
    pub nr: u32,
    pub name: &'static str,
    pub class: Class,
    /// Arguments in order; only for `Forward` (empty otherwise).
    pub args: &'static [Arg],
    /// How, for anything not obvious: what the row does, never a plan.
    pub note: &'static str,
    /// What a migrated process would see differently from a native one
    /// (empty: nothing known). Shown in `SYSCALLS.md` as "partial".
    pub gap: &'static str,
}

use Arg::*;
use Class::*;
use Dir::*;

// Conventions for the marshaller, common to every `Forward` row:
// * Any pointer argument (`CStr`, buffers, structs) may be NULL unless the
//   kernel forbids it; NULL travels as NULL and the home kernel answers as
//   it would natively (EFAULT, or the documented NULL meaning). Notes
//   mention NULL only where it carries a meaning.
// * `OutBuf { whole: false }` copies back min(return value, capacity) bytes,
//   and nothing when the call fails; a capacity over `codec::MAX_BUF` is
//   cut to it (a short read, as the kernel may return one).
// * fds are the placeholder's and travel unchanged (AT_FDCWD included); PIDs,
//   TIDs and PGIDs are home ones.
// * Struct sizes are the x86-64 ones (struct stat 144, statx 256, statfs 120,
//   utsname 390, rusage 144, siginfo 128, timespec/timeval 16, itimerspec 32,
//   sigset_t as the kernel sees it 8, epoll_event 12 packed, timex 208).
// Numbers the kernel lists without an entry point (sys_ni_syscall) are
// `Unsupported`: they return ENOSYS natively as well. Unassigned numbers
// (337..=423, and beyond the last row) have no row; `lookup` returns None.
/// Every x86-64 system call, by number.
#[rustfmt::skip]
pub static SYSCALLS: &[Syscall] = &[
    Syscall { nr: 0, name: "read", class: Forward, args: &[Fd, OutBuf { len: 2, whole: false }, Int], note: "", gap: "" },
    Syscall { nr: 1, name: "write", class: Forward, args: &[Fd, Bytes { len: 2 }, Int], note: "", gap: "" },
    Syscall { nr: 2, name: "open", class: Forward, args: &[CStr, Int, Int], note: "its own /proc files of memory and CPU (status, statm, stat, maps, smaps, smaps_rollup, under self, thread-self or its home PID) open the guest's, merged with home's, in a memfd made at home", gap: "such a descriptor is a memfd holding the file as it was when opened" },
    Syscall { nr: 3, name: "close", class: Forward, args: &[Fd], note: "", gap: "" },
    Syscall { nr: 4, name: "stat", class: Forward, args: &[CStr, OutStruct { size: 144 }], note: "", gap: "" },
    Syscall { nr: 5, name: "fstat", class: Forward, args: &[Fd, OutStruct { size: 144 }], note: "", gap: "" },
    Syscall { nr: 6, name: "lstat", class: Forward, args: &[CStr, OutStruct { size: 144 }], note: "", gap: "" },
    Syscall { nr: 7, name: "poll", class: Forward, args: &[Array { count: 1, elem: 8, dir: InOut }, Int, Int], note: "fds: nfds x 8-byte struct pollfd, copied in and back out (revents)", gap: "" },
    Syscall { nr: 8, name: "lseek", class: Forward, args: &[Fd, Int, Int], note: "", gap: "" },
    Syscall { nr: 9, name: "mmap", class: Local, args: &[], note: "private anonymous mappings run here; file mappings are filled from home (private, and read-only shared); writable shared ones bring the process home", gap: "a read-only MAP_SHARED mapping made while away is a copy: it does not see later writes to the file" },
    Syscall { nr: 10, name: "mprotect", class: Local, args: &[], note: "runs on the guest: its shared mappings are read-only copies", gap: "making a copied read-only shared file mapping writable does not reach the file" },
    Syscall { nr: 11, name: "munmap", class: Local, args: &[], note: "", gap: "" },
    Syscall { nr: 12, name: "brk", class: Local, args: &[], note: "", gap: "" },
    Syscall { nr: 13, name: "rt_sigaction", class: Local, args: &[], note: "signal delivery is local", gap: "" },
    Syscall { nr: 14, name: "rt_sigprocmask", class: Local, args: &[], note: "signal delivery is local", gap: "" },
    Syscall { nr: 15, name: "rt_sigreturn", class: Local, args: &[], note: "", gap: "" },
    Syscall { nr: 16, name: "ioctl", class: Forward, args: &[Fd, Int, ByCmd(Cmd::Ioctl)], note: "arg by request: _IOC direction/size decoded from the request number; legacy non-_IOC requests (TCGETS, TIOCGWINSZ, FIONREAD, ...) need a known-request table; otherwise passed as an integer", gap: "" },
    Syscall { nr: 17, name: "pread64", class: Forward, args: &[Fd, OutBuf { len: 2, whole: false }, Int, Int], note: "", gap: "" },
    Syscall { nr: 18, name: "pwrite64", class: Forward, args: &[Fd, Bytes { len: 2 }, Int, Int], note: "", gap: "" },
    Syscall { nr: 19, name: "readv", class: Forward, args: &[Fd, Iovec { count: 2, write: true }, Int], note: "", gap: "" },
    Syscall { nr: 20, name: "writev", class: Forward, args: &[Fd, Iovec { count: 2, write: false }, Int], note: "", gap: "" },
    Syscall { nr: 21, name: "access", class: Forward, args: &[CStr, Int], note: "", gap: "" },
    Syscall { nr: 22, name: "pipe", class: Forward, args: &[OutStruct { size: 8 }], note: "", gap: "" },
    Syscall { nr: 23, name: "select", class: Forward, args: &[Int, FdSet, FdSet, FdSet, InOutStruct { size: 16 }], note: "each fd_set (may be NULL): ceil(nfds/64)*8 bytes, copied in and back out; timeval updated by Linux", gap: "" },
    Syscall { nr: 24, name: "sched_yield", class: Local, args: &[], note: "", gap: "" },
    Syscall { nr: 25, name: "mremap", class: Local, args: &[], note: "moving a shared mapping never happens remotely (shared writable mappings are home)", gap: "" },
    Syscall { nr: 26, name: "msync", class: Local, args: &[], note: "acts on the local mappings; shared file mappings are home or /mfs-backed", gap: "" },
    Syscall { nr: 27, name: "mincore", class: Local, args: &[], note: "", gap: "" },
    Syscall { nr: 28, name: "madvise", class: Local, args: &[], note: "", gap: "" },
    Syscall { nr: 29, name: "shmget", class: BringHome, args: &[], note: "SysV shm: only creates an id, but shmat almost always follows", gap: "" },
    Syscall { nr: 30, name: "shmat", class: BringHome, args: &[], note: "SysV shm: a shared writable mapping", gap: "" },
    Syscall { nr: 31, name: "shmctl", class: Forward, args: &[Int, Int, ByCmd(Cmd::Shmctl)], note: "buf by cmd: shmid_ds (112 B) in for IPC_SET, out for IPC_STAT/SHM_STAT/SHM_STAT_ANY; shminfo (72 B) / shm_info (48 B) out for IPC_INFO/SHM_INFO; segments are home objects", gap: "" },
    Syscall { nr: 32, name: "dup", class: Forward, args: &[Fd], note: "", gap: "" },
    Syscall { nr: 33, name: "dup2", class: Forward, args: &[Fd, Fd], note: "", gap: "" },
    Syscall { nr: 34, name: "pause", class: Local, args: &[], note: "waits for a signal; delivery is local", gap: "" },
    Syscall { nr: 35, name: "nanosleep", class: Local, args: &[], note: "", gap: "" },
    Syscall { nr: 36, name: "getitimer", class: Local, args: &[], note: "interval timers fire in the guest kernel (signal delivery is local); their state travels in the migration image", gap: "" },
    Syscall { nr: 37, name: "alarm", class: Local, args: &[], note: "interval timers fire in the guest kernel (signal delivery is local); their state travels in the migration image", gap: "" },
    Syscall { nr: 38, name: "setitimer", class: Local, args: &[], note: "interval timers fire in the guest kernel (signal delivery is local); their state travels in the migration image", gap: "" },
    Syscall { nr: 39, name: "getpid", class: Local, args: &[], note: "the guest's own PID namespace gives it its home PID", gap: "" },
    Syscall { nr: 40, name: "sendfile", class: Forward, args: &[Fd, Fd, InOutStruct { size: 8 }, Int], note: "offset may be NULL", gap: "" },
    Syscall { nr: 41, name: "socket", class: Forward, args: &[Int, Int, Int], note: "", gap: "" },
    Syscall { nr: 42, name: "connect", class: Forward, args: &[Fd, InBuf { len: 2 }, Int], note: "", gap: "" },
    Syscall { nr: 43, name: "accept", class: Forward, args: &[Fd, SockBuf, SockLen { buf: 1 }], note: "addr and addrlen may both be NULL", gap: "" },
    Syscall { nr: 44, name: "sendto", class: Forward, args: &[Fd, Bytes { len: 2 }, Int, Int, InBuf { len: 5 }, Int], note: "dest_addr may be NULL", gap: "" },
    Syscall { nr: 45, name: "recvfrom", class: Forward, args: &[Fd, OutBuf { len: 2, whole: false }, Int, Int, SockBuf, SockLen { buf: 4 }], note: "src_addr and addrlen may both be NULL", gap: "" },
    Syscall { nr: 46, name: "sendmsg", class: Forward, args: &[Fd, MsgHdr { recv: false }, Int], note: "msghdr in: msg_name (namelen), iovec array (iovlen) copied in, control (controllen; SCM_RIGHTS carries home fds)", gap: "" },
    Syscall { nr: 47, name: "recvmsg", class: Forward, args: &[Fd, MsgHdr { recv: true }, Int], note: "msghdr: iov buffers and msg_name/msg_control written back; msg_namelen, msg_controllen, msg_flags updated; received SCM_RIGHTS fds are home fds", gap: "" },
    Syscall { nr: 48, name: "shutdown", class: Forward, args: &[Fd, Int], note: "", gap: "" },
    Syscall { nr: 49, name: "bind", class: Forward, args: &[Fd, InBuf { len: 2 }, Int], note: "", gap: "" },
    Syscall { nr: 50, name: "listen", class: Forward, args: &[Fd, Int], note: "", gap: "" },
    Syscall { nr: 51, name: "getsockname", class: Forward, args: &[Fd, SockBuf, SockLen { buf: 1 }], note: "", gap: "" },
    Syscall { nr: 52, name: "getpeername", class: Forward, args: &[Fd, SockBuf, SockLen { buf: 1 }], note: "", gap: "" },
    Syscall { nr: 53, name: "socketpair", class: Forward, args: &[Int, Int, Int, OutStruct { size: 8 }], note: "", gap: "" },
    Syscall { nr: 54, name: "setsockopt", class: Forward, args: &[Fd, Int, Int, InBuf { len: 4 }, Int], note: "", gap: "options whose value holds a pointer (SO_ATTACH_FILTER, SO_ATTACH_REUSEPORT_CBPF) are not marshalled: the home kernel reads a guest address" },
    Syscall { nr: 55, name: "getsockopt", class: Forward, args: &[Fd, Int, Int, SockBuf, SockLen { buf: 3 }], note: "optval copied in as well: a few options read it", gap: "" },
    Syscall { nr: 56, name: "clone", class: BringHome, args: &[], note: "a thread (CLONE_VM|CLONE_SIGHAND|CLONE_THREAD) of a guest that came with threads is born away: its placeholder thread is made at home first and the guest's kernel gives it the same TID (ns_last_pid); any other clone brings the process home", gap: "a single-threaded guest's first thread brings it home (its placeholder has no router)" },
    Syscall { nr: 57, name: "fork", class: BringHome, args: &[], note: "", gap: "" },
    Syscall { nr: 58, name: "vfork", class: BringHome, args: &[], note: "", gap: "" },
    Syscall { nr: 59, name: "execve", class: BringHome, args: &[], note: "", gap: "" },
    Syscall { nr: 60, name: "exit", class: Exit, args: &[], note: "ends the calling thread: its placeholder thread ends at home first; the main thread's while others run brings the process home", gap: "" },
    Syscall { nr: 61, name: "wait4", class: Forward, args: &[Int, OutStruct { size: 4 }, Int, OutStruct { size: 144 }], note: "children live at home (fork brings home); pid is a home PID", gap: "" },
    Syscall { nr: 62, name: "kill", class: Forward, args: &[Int, Int], note: "pids are home PIDs; a signal to the process itself hits the placeholder and the deputy relays it to the guest", gap: "" },
    Syscall { nr: 63, name: "uname", class: Forward, args: &[OutStruct { size: 390 }], note: "answered at home: home hostname and kernel", gap: "" },
    Syscall { nr: 64, name: "semget", class: Forward, args: &[Int, Int, Int], note: "", gap: "" },
    Syscall { nr: 65, name: "semop", class: Forward, args: &[Int, Array { count: 2, elem: 6, dir: In }, Int], note: "sops: nsops x 6-byte struct sembuf, in", gap: "" },
    Syscall { nr: 66, name: "semctl", class: Forward, args: &[Int, Int, Int, ByCmd(Cmd::Semctl)], note: "arg (union semun) by cmd: integer for SETVAL; semid_ds (104 B) in for IPC_SET, out for IPC_STAT/SEM_STAT(_ANY); seminfo (40 B) out for IPC_INFO/SEM_INFO; GETALL/SETALL (an array whose size is the set's) are made at home", gap: "" },
    Syscall { nr: 67, name: "shmdt", class: Local, args: &[], note: "SysV shm attachments never exist remotely (shmat brings home): the local kernel answers EINVAL", gap: "" },
    Syscall { nr: 68, name: "msgget", class: Forward, args: &[Int, Int], note: "", gap: "" },
    Syscall { nr: 69, name: "msgsnd", class: Forward, args: &[Int, MsgBuf { len: 2, out: false }, Int, Int], note: "msgp: 8-byte mtype followed by msgsz bytes, in", gap: "" },
    Syscall { nr: 70, name: "msgrcv", class: Forward, args: &[Int, MsgBuf { len: 2, out: true }, Int, Int, Int], note: "msgp: 8-byte mtype followed by up to msgsz bytes, out (8 + ret bytes valid)", gap: "" },
    Syscall { nr: 71, name: "msgctl", class: Forward, args: &[Int, Int, ByCmd(Cmd::Msgctl)], note: "buf by cmd: msqid_ds (120 B) in for IPC_SET, out for IPC_STAT/MSG_STAT(_ANY); msginfo (32 B) out for IPC_INFO/MSG_INFO", gap: "" },
    Syscall { nr: 72, name: "fcntl", class: Forward, args: &[Fd, Int, ByCmd(Cmd::Fcntl)], note: "arg by cmd: integer for most; struct flock (32 B) in/out for F_GETLK/F_SETLK(W)/F_OFD_*; f_owner_ex (8 B) for F_GETOWN_EX/F_SETOWN_EX; u64 for F_GET/SET_RW_HINT; F_SETOWN pids are home PIDs", gap: "" },
    Syscall { nr: 73, name: "flock", class: Forward, args: &[Fd, Int], note: "", gap: "" },
    Syscall { nr: 74, name: "fsync", class: Forward, args: &[Fd], note: "", gap: "" },
    Syscall { nr: 75, name: "fdatasync", class: Forward, args: &[Fd], note: "", gap: "" },
    Syscall { nr: 76, name: "truncate", class: Forward, args: &[CStr, Int], note: "", gap: "" },
    Syscall { nr: 77, name: "ftruncate", class: Forward, args: &[Fd, Int], note: "", gap: "" },
    Syscall { nr: 78, name: "getdents", class: Forward, args: &[Fd, OutBuf { len: 2, whole: false }, Int], note: "", gap: "" },
    Syscall { nr: 79, name: "getcwd", class: Forward, args: &[OutBuf { len: 1, whole: false }, Int], note: "returns the length including the NUL", gap: "" },
    Syscall { nr: 80, name: "chdir", class: Forward, args: &[CStr], note: "", gap: "" },
    Syscall { nr: 81, name: "fchdir", class: Forward, args: &[Fd], note: "", gap: "" },
    Syscall { nr: 82, name: "rename", class: Forward, args: &[CStr, CStr], note: "", gap: "" },
    Syscall { nr: 83, name: "mkdir", class: Forward, args: &[CStr, Int], note: "", gap: "" },
    Syscall { nr: 84, name: "rmdir", class: Forward, args: &[CStr], note: "", gap: "" },
    Syscall { nr: 85, name: "creat", class: Forward, args: &[CStr, Int], note: "", gap: "" },
    Syscall { nr: 86, name: "link", class: Forward, args: &[CStr, CStr], note: "", gap: "" },
    Syscall { nr: 87, name: "unlink", class: Forward, args: &[CStr], note: "", gap: "" },
    Syscall { nr: 88, name: "symlink", class: Forward, args: &[CStr, CStr], note: "", gap: "" },
    Syscall { nr: 89, name: "readlink", class: Forward, args: &[CStr, OutBuf { len: 2, whole: false }, Int], note: "", gap: "" },
    Syscall { nr: 90, name: "chmod", class: Forward, args: &[CStr, Int], note: "", gap: "" },
    Syscall { nr: 91, name: "fchmod", class: Forward, args: &[Fd, Int], note: "", gap: "" },
    Syscall { nr: 92, name: "chown", class: Forward, args: &[CStr, Int, Int], note: "", gap: "" },
    Syscall { nr: 93, name: "fchown", class: Forward, args: &[Fd, Int, Int], note: "", gap: "" },
    Syscall { nr: 94, name: "lchown", class: Forward, args: &[CStr, Int, Int], note: "", gap: "" },
    Syscall { nr: 95, name: "umask", class: Forward, args: &[Int], note: "governs file creation, which happens at home", gap: "" },
    Syscall { nr: 96, name: "gettimeofday", class: Local, args: &[], note: "", gap: "" },
    Syscall { nr: 97, name: "getrlimit", class: Forward, args: &[Int, OutStruct { size: 16 }], note: "the placeholder's limits, which are the guest's: limits travel in the migration image and change only at home", gap: "" },
    Syscall { nr: 98, name: "getrusage", class: Forward, args: &[Int, OutStruct { size: 144 }], note: "home accounting (RUSAGE_CHILDREN lives there); for RUSAGE_SELF/THREAD the remote writes the process's whole CPU time (carried in its images) and adds the guest kernel's faults and context switches", gap: "once the process is home again it counts only its time at home (its own kernel's count); RUSAGE_CHILDREN misses its children's time away" },
    Syscall { nr: 99, name: "sysinfo", class: Forward, args: &[OutStruct { size: 112 }], note: "the home node's view (uptime, load, memory)", gap: "" },
    Syscall { nr: 100, name: "times", class: Forward, args: &[OutStruct { size: 32 }], note: "home accounting; the return value is home clock ticks; the remote writes the process's whole CPU time into tms_utime/tms_stime", gap: "once the process is home again it counts only its time at home; tms_cutime/tms_cstime miss its children's time away" },
    Syscall { nr: 101, name: "ptrace", class: BringHome, args: &[], note: "tracing or being traced needs the native process", gap: "" },
    Syscall { nr: 102, name: "getuid", class: Forward, args: &[], note: "answered at home: home credentials (the placeholder's)", gap: "" },
    Syscall { nr: 103, name: "syslog", class: Forward, args: &[Int, Opaque, Int], note: "buf written (ret bytes) only for READ/READ_ALL/READ_CLEAR (2, 3, 4); ignored, possibly NULL, otherwise", gap: "not marshalled: the call is made at home" },
    Syscall { nr: 104, name: "getgid", class: Forward, args: &[], note: "answered at home: home credentials (the placeholder's)", gap: "" },
    Syscall { nr: 105, name: "setuid", class: Forward, args: &[Int], note: "home credentials (the placeholder's)", gap: "" },
    Syscall { nr: 106, name: "setgid", class: Forward, args: &[Int], note: "home credentials (the placeholder's)", gap: "" },
    Syscall { nr: 107, name: "geteuid", class: Forward, args: &[], note: "answered at home: home credentials (the placeholder's)", gap: "" },
    Syscall { nr: 108, name: "getegid", class: Forward, args: &[], note: "answered at home: home credentials (the placeholder's)", gap: "" },
    Syscall { nr: 109, name: "setpgid", class: Forward, args: &[Int, Int], note: "home PIDs/PGIDs", gap: "" },
    Syscall { nr: 110, name: "getppid", class: Forward, args: &[], note: "answered at home: the home parent's PID", gap: "" },
    Syscall { nr: 111, name: "getpgrp", class: Forward, args: &[], note: "answered at home: home PGID", gap: "" },
    Syscall { nr: 112, name: "setsid", class: Forward, args: &[], note: "session and controlling tty are home ones", gap: "" },
    Syscall { nr: 113, name: "setreuid", class: Forward, args: &[Int, Int], note: "home credentials (the placeholder's)", gap: "" },
    Syscall { nr: 114, name: "setregid", class: Forward, args: &[Int, Int], note: "home credentials (the placeholder's)", gap: "" },
    Syscall { nr: 115, name: "getgroups", class: Forward, args: &[Int, Array { count: 0, elem: 4, dir: Out }], note: "list: size x 4-byte gid_t, out (ret entries valid); size 0 asks for the count and list may be NULL", gap: "" },
    Syscall { nr: 116, name: "setgroups", class: Forward, args: &[Int, Array { count: 0, elem: 4, dir: In }], note: "list: size x 4-byte gid_t, in", gap: "" },
    Syscall { nr: 117, name: "setresuid", class: Forward, args: &[Int, Int, Int], note: "home credentials (the placeholder's)", gap: "" },
    Syscall { nr: 118, name: "getresuid", class: Forward, args: &[OutStruct { size: 4 }, OutStruct { size: 4 }, OutStruct { size: 4 }], note: "home credentials (the placeholder's)", gap: "" },
    Syscall { nr: 119, name: "setresgid", class: Forward, args: &[Int, Int, Int], note: "home credentials (the placeholder's)", gap: "" },
    Syscall { nr: 120, name: "getresgid", class: Forward, args: &[OutStruct { size: 4 }, OutStruct { size: 4 }, OutStruct { size: 4 }], note: "home credentials (the placeholder's)", gap: "" },
    Syscall { nr: 121, name: "getpgid", class: Forward, args: &[Int], note: "home PIDs", gap: "" },
    Syscall { nr: 122, name: "setfsuid", class: Forward, args: &[Int], note: "home credentials (the placeholder's)", gap: "" },
    Syscall { nr: 123, name: "setfsgid", class: Forward, args: &[Int], note: "home credentials (the placeholder's)", gap: "" },
    Syscall { nr: 124, name: "getsid", class: Forward, args: &[Int], note: "home PIDs", gap: "" },
    Syscall { nr: 125, name: "capget", class: Forward, args: &[InOutStruct { size: 8 }, Opaque], note: "hdr: version written back on mismatch; data: 1 (v1) or 2 (v2/v3) x 12-byte cap_user_data, out, NULL to probe the version", gap: "not marshalled: the call is made at home" },
    Syscall { nr: 126, name: "capset", class: Forward, args: &[InStruct { size: 8 }, Opaque], note: "data: 1 (v1) or 2 (v2/v3) x 12-byte cap_user_data, in", gap: "not marshalled: the call is made at home" },
    Syscall { nr: 127, name: "rt_sigpending", class: Local, args: &[], note: "signal delivery is local", gap: "" },
    Syscall { nr: 128, name: "rt_sigtimedwait", class: Local, args: &[], note: "signal delivery is local", gap: "" },
    Syscall { nr: 129, name: "rt_sigqueueinfo", class: Forward, args: &[Int, Int, InStruct { size: 128 }], note: "pids are home PIDs; a signal to the process itself hits the placeholder and the deputy relays it to the guest", gap: "" },
    Syscall { nr: 130, name: "rt_sigsuspend", class: Local, args: &[], note: "signal delivery is local", gap: "" },
    Syscall { nr: 131, name: "sigaltstack", class: Local, args: &[], note: "", gap: "" },
    Syscall { nr: 132, name: "utime", class: Forward, args: &[CStr, InStruct { size: 16 }], note: "times (struct utimbuf) may be NULL", gap: "" },
    Syscall { nr: 133, name: "mknod", class: Forward, args: &[CStr, Int, Int], note: "", gap: "" },
    Syscall { nr: 134, name: "uselib", class: Unsupported, args: &[], note: "removed from the kernel (no entry point): ENOSYS natively too; it would map a library into guest memory anyway", gap: "" },
    Syscall { nr: 135, name: "personality", class: Local, args: &[], note: "per-process flags (ADDR_NO_RANDOMIZE, ...) kept by the guest kernel", gap: "not carried in the migration image: a migrated process has its node's default personality" },
    Syscall { nr: 136, name: "ustat", class: Forward, args: &[Int, OutStruct { size: 32 }], note: "", gap: "" },
    Syscall { nr: 137, name: "statfs", class: Forward, args: &[CStr, OutStruct { size: 120 }], note: "", gap: "" },
    Syscall { nr: 138, name: "fstatfs", class: Forward, args: &[Fd, OutStruct { size: 120 }], note: "", gap: "" },
    Syscall { nr: 139, name: "sysfs", class: Forward, args: &[Int, Opaque, Opaque], note: "by option: 1: arg1 is a fs-name string; 2: arg1 an index (integer), arg2 an out buffer for the name (no length given, copy back strlen+1 from the result); 3: no arguments", gap: "not marshalled: the call is made at home" },
    Syscall { nr: 140, name: "getpriority", class: Forward, args: &[Int, Int], note: "pid is a home PID: the placeholder's nice value", gap: "the guest's own scheduling priority on its node is not changed" },
    Syscall { nr: 141, name: "setpriority", class: Forward, args: &[Int, Int, Int], note: "pid is a home PID: sets the placeholder's nice value", gap: "the guest's own scheduling priority on its node is not changed" },
    Syscall { nr: 142, name: "sched_setparam", class: Forward, args: &[Int, InStruct { size: 4 }], note: "pid is a home PID: the placeholder's", gap: "the guest's own scheduling on its node is not changed" },
    Syscall { nr: 143, name: "sched_getparam", class: Forward, args: &[Int, OutStruct { size: 4 }], note: "pid is a home PID: the placeholder's", gap: "answers the placeholder's scheduling, not the guest's" },
    Syscall { nr: 144, name: "sched_setscheduler", class: Forward, args: &[Int, Int, InStruct { size: 4 }], note: "pid is a home PID: the placeholder's", gap: "the guest's own scheduling on its node is not changed" },
    Syscall { nr: 145, name: "sched_getscheduler", class: Forward, args: &[Int], note: "pid is a home PID: the placeholder's", gap: "answers the placeholder's scheduling, not the guest's" },
    Syscall { nr: 146, name: "sched_get_priority_max", class: Local, args: &[], note: "a constant per policy", gap: "" },
    Syscall { nr: 147, name: "sched_get_priority_min", class: Local, args: &[], note: "a constant per policy", gap: "" },
    Syscall { nr: 148, name: "sched_rr_get_interval", class: Forward, args: &[Int, OutStruct { size: 16 }], note: "pid is a home PID: the placeholder's", gap: "" },
    Syscall { nr: 149, name: "mlock", class: Local, args: &[], note: "locks the guest's local pages under its node's RLIMIT_MEMLOCK", gap: "" },
    Syscall { nr: 150, name: "munlock", class: Local, args: &[], note: "", gap: "" },
    Syscall { nr: 151, name: "mlockall", class: Local, args: &[], note: "locks the guest's local pages under its node's RLIMIT_MEMLOCK", gap: "" },
    Syscall { nr: 152, name: "munlockall", class: Local, args: &[], note: "", gap: "" },
    Syscall { nr: 153, name: "vhangup", class: Forward, args: &[], note: "hangs up the home controlling terminal", gap: "" },
    Syscall { nr: 154, name: "modify_ldt", class: BringHome, args: &[], note: "the LDT is CPU state that is not migrated: a process with its own LDT stays home", gap: "" },
    Syscall { nr: 155, name: "pivot_root", class: Forward, args: &[CStr, CStr], note: "", gap: "" },
    Syscall { nr: 156, name: "_sysctl", class: Unsupported, args: &[], note: "no entry point on x86-64 (sys_ni_syscall): ENOSYS natively too, so answered without a round trip", gap: "" },
    Syscall { nr: 157, name: "prctl", class: Local, args: &[], note: "runs on the guest: PR_SET_NAME and the like change the guest only", gap: "options that are home state (PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_DUMPABLE, PR_SET_KEEPCAPS, securebits, capabilities, PR_SET_PTRACER) act on the guest, not on the placeholder" },
    Syscall { nr: 158, name: "arch_prctl", class: Local, args: &[], note: "FS/GS base are guest CPU state, carried in the migration image", gap: "CPUID faulting (ARCH_SET_CPUID) is not carried" },
    Syscall { nr: 159, name: "adjtimex", class: Forward, args: &[InOutStruct { size: 208 }], note: "the home clock; modes 0 just reads its state", gap: "" },
    Syscall { nr: 160, name: "setrlimit", class: BringHome, args: &[], note: "the process comes home to change a limit (its guest's kernel enforces them, and they travel with it)", gap: "" },
    Syscall { nr: 161, name: "chroot", class: Forward, args: &[CStr], note: "root of path resolution, which happens at home", gap: "" },
    Syscall { nr: 162, name: "sync", class: Forward, args: &[], note: "", gap: "" },
    Syscall { nr: 163, name: "acct", class: Forward, args: &[CStr], note: "filename may be NULL (turns accounting off)", gap: "" },
    Syscall { nr: 164, name: "settimeofday", class: Forward, args: &[InStruct { size: 16 }, InStruct { size: 8 }], note: "sets the home clock (home privileges decide)", gap: "" },
    Syscall { nr: 165, name: "mount", class: Forward, args: &[CStr, CStr, CStr, Int, Opaque], note: "source and fstype may be NULL; data is fs-specific, usually a NUL-terminated option string (copy up to a page), may be NULL", gap: "not marshalled: the call is made at home" },
    Syscall { nr: 166, name: "umount2", class: Forward, args: &[CStr, Int], note: "", gap: "" },
    Syscall { nr: 167, name: "swapon", class: Forward, args: &[CStr, Int], note: "", gap: "" },
    Syscall { nr: 168, name: "swapoff", class: Forward, args: &[CStr], note: "", gap: "" },
    Syscall { nr: 169, name: "reboot", class: Forward, args: &[Int, Int, Int, Opaque], note: "arg: a command string only for LINUX_REBOOT_CMD_RESTART2, otherwise ignored (pass the raw value)", gap: "not marshalled: the call is made at home" },
    Syscall { nr: 170, name: "sethostname", class: Forward, args: &[InBuf { len: 1 }, Int], note: "", gap: "" },
    Syscall { nr: 171, name: "setdomainname", class: Forward, args: &[InBuf { len: 1 }, Int], note: "", gap: "" },
    Syscall { nr: 172, name: "iopl", class: BringHome, args: &[], note: "I/O privilege is guest CPU state and the ports belong to the home hardware", gap: "" },
    Syscall { nr: 173, name: "ioperm", class: BringHome, args: &[], note: "the I/O bitmap is guest CPU state and the ports belong to the home hardware", gap: "" },
    Syscall { nr: 174, name: "create_module", class: Unsupported, args: &[], note: "no entry point on x86-64 (sys_ni_syscall): ENOSYS natively too, so answered without a round trip", gap: "" },
    Syscall { nr: 175, name: "init_module", class: Forward, args: &[InBuf { len: 1 }, Int, CStr], note: "", gap: "" },
    Syscall { nr: 176, name: "delete_module", class: Forward, args: &[CStr, Int], note: "", gap: "" },
    Syscall { nr: 177, name: "get_kernel_syms", class: Unsupported, args: &[], note: "no entry point on x86-64 (sys_ni_syscall): ENOSYS natively too, so answered without a round trip", gap: "" },
    Syscall { nr: 178, name: "query_module", class: Unsupported, args: &[], note: "no entry point on x86-64 (sys_ni_syscall): ENOSYS natively too, so answered without a round trip", gap: "" },
    Syscall { nr: 179, name: "quotactl", class: Forward, args: &[Int, CStr, Int, Opaque], note: "special may be NULL (Q_SYNC); addr by cmd: if_dqblk, if_dqinfo, fs_quota_stat(v), fs_disk_quota, a u32 format or a quota-file path; direction by cmd", gap: "not marshalled: the call is made at home" },
    Syscall { nr: 180, name: "nfsservctl", class: Unsupported, args: &[], note: "no entry point on x86-64 (sys_ni_syscall): ENOSYS natively too, so answered without a round trip", gap: "" },
    Syscall { nr: 181, name: "getpmsg", class: Unsupported, args: &[], note: "no entry point on x86-64 (sys_ni_syscall): ENOSYS natively too, so answered without a round trip", gap: "" },
    Syscall { nr: 182, name: "putpmsg", class: Unsupported, args: &[], note: "no entry point on x86-64 (sys_ni_syscall): ENOSYS natively too, so answered without a round trip", gap: "" },
    Syscall { nr: 183, name: "afs_syscall", class: Unsupported, args: &[], note: "no entry point on x86-64 (sys_ni_syscall): ENOSYS natively too, so answered without a round trip", gap: "" },
    Syscall { nr: 184, name: "tuxcall", class: Unsupported, args: &[], note: "no entry point on x86-64 (sys_ni_syscall): ENOSYS natively too, so answered without a round trip", gap: "" },
    Syscall { nr: 185, name: "security", class: Unsupported, args: &[], note: "no entry point on x86-64 (sys_ni_syscall): ENOSYS natively too, so answered without a round trip", gap: "" },
    Syscall { nr: 186, name: "gettid", class: Local, args: &[], note: "the guest's own PID namespace gives its threads their home TIDs", gap: "" },
    Syscall { nr: 187, name: "readahead", class: Forward, args: &[Fd, Int, Int], note: "", gap: "" },
    Syscall { nr: 188, name: "setxattr", class: Forward, args: &[CStr, CStr, InBuf { len: 3 }, Int, Int], note: "", gap: "" },
    Syscall { nr: 189, name: "lsetxattr", class: Forward, args: &[CStr, CStr, InBuf { len: 3 }, Int, Int], note: "", gap: "" },
    Syscall { nr: 190, name: "fsetxattr", class: Forward, args: &[Fd, CStr, InBuf { len: 3 }, Int, Int], note: "", gap: "" },
    Syscall { nr: 191, name: "getxattr", class: Forward, args: &[CStr, CStr, OutBuf { len: 3, whole: false }, Int], note: "size 0 asks for the needed size: copy back min(ret, size)", gap: "" },
    Syscall { nr: 192, name: "lgetxattr", class: Forward, args: &[CStr, CStr, OutBuf { len: 3, whole: false }, Int], note: "size 0 asks for the needed size: copy back min(ret, size)", gap: "" },
    Syscall { nr: 193, name: "fgetxattr", class: Forward, args: &[Fd, CStr, OutBuf { len: 3, whole: false }, Int], note: "size 0 asks for the needed size: copy back min(ret, size)", gap: "" },
    Syscall { nr: 194, name: "listxattr", class: Forward, args: &[CStr, OutBuf { len: 2, whole: false }, Int], note: "size 0 asks for the needed size: copy back min(ret, size)", gap: "" },
    Syscall { nr: 195, name: "llistxattr", class: Forward, args: &[CStr, OutBuf { len: 2, whole: false }, Int], note: "size 0 asks for the needed size: copy back min(ret, size)", gap: "" },
    Syscall { nr: 196, name: "flistxattr", class: Forward, args: &[Fd, OutBuf { len: 2, whole: false }, Int], note: "size 0 asks for the needed size: copy back min(ret, size)", gap: "" },
    Syscall { nr: 197, name: "removexattr", class: Forward, args: &[CStr, CStr], note: "", gap: "" },
    Syscall { nr: 198, name: "lremovexattr", class: Forward, args: &[CStr, CStr], note: "", gap: "" },
    Syscall { nr: 199, name: "fremovexattr", class: Forward, args: &[Fd, CStr], note: "", gap: "" },
    Syscall { nr: 200, name: "tkill", class: Forward, args: &[Int, Int], note: "tid is a home TID; a signal to the process itself hits the placeholder and the deputy relays it to the guest", gap: "" },
    Syscall { nr: 201, name: "time", class: Local, args: &[], note: "", gap: "" },
    Syscall { nr: 202, name: "futex", class: Local, args: &[], note: "private futexes only: a shared futex word lives in a shared mapping, which forces the process home", gap: "" },
    Syscall { nr: 203, name: "sched_setaffinity", class: Forward, args: &[Int, Int, InBuf { len: 1 }], note: "pid is a home PID and the mask uses home CPU numbers: the placeholder's", gap: "the guest's own CPU set on its node is not changed" },
    Syscall { nr: 204, name: "sched_getaffinity", class: Forward, args: &[Int, Int, OutBuf { len: 1, whole: false }], note: "the placeholder's CPU set (home CPU numbers); returns the bytes copied", gap: "not the CPUs the guest runs on" },
    Syscall { nr: 205, name: "set_thread_area", class: Unsupported, args: &[], note: "no entry point on x86-64 (sys_ni_syscall): ENOSYS natively too, so answered without a round trip (64-bit TLS is arch_prctl)", gap: "" },
    Syscall { nr: 206, name: "io_setup", class: BringHome, args: &[], note: "kernel AIO: the context is a ring mapped into the address space and completions write guest buffers asynchronously; home only", gap: "" },
    Syscall { nr: 207, name: "io_destroy", class: BringHome, args: &[], note: "kernel AIO: the context is a ring mapped into the address space and completions write guest buffers asynchronously; home only", gap: "" },
    Syscall { nr: 208, name: "io_getevents", class: BringHome, args: &[], note: "kernel AIO: the context is a ring mapped into the address space and completions write guest buffers asynchronously; home only", gap: "" },
    Syscall { nr: 209, name: "io_submit", class: BringHome, args: &[], note: "kernel AIO: the context is a ring mapped into the address space and completions write guest buffers asynchronously; home only", gap: "" },
    Syscall { nr: 210, name: "io_cancel", class: BringHome, args: &[], note: "kernel AIO: the context is a ring mapped into the address space and completions write guest buffers asynchronously; home only", gap: "" },
    Syscall { nr: 211, name: "get_thread_area", class: Unsupported, args: &[], note: "no entry point on x86-64 (sys_ni_syscall): ENOSYS natively too, so answered without a round trip (64-bit TLS is arch_prctl)", gap: "" },
    Syscall { nr: 212, name: "lookup_dcookie", class: Unsupported, args: &[], note: "removed from the kernel (no entry point): ENOSYS natively too", gap: "" },
    Syscall { nr: 213, name: "epoll_create", class: Forward, args: &[Int], note: "", gap: "" },
    Syscall { nr: 214, name: "epoll_ctl_old", class: Unsupported, args: &[], note: "no entry point on x86-64 (sys_ni_syscall): ENOSYS natively too, so answered without a round trip", gap: "" },
    Syscall { nr: 215, name: "epoll_wait_old", class: Unsupported, args: &[], note: "no entry point on x86-64 (sys_ni_syscall): ENOSYS natively too, so answered without a round trip", gap: "" },
    Syscall { nr: 216, name: "remap_file_pages", class: Local, args: &[], note: "rearranges an existing local mapping", gap: "" },
    Syscall { nr: 217, name: "getdents64", class: Forward, args: &[Fd, OutBuf { len: 2, whole: false }, Int], note: "", gap: "" },
    Syscall { nr: 218, name: "set_tid_address", class: Local, args: &[], note: "the address lives in guest memory and travels with it; returns the home TID (the guest's PID namespace)", gap: "" },
    Syscall { nr: 219, name: "restart_syscall", class: Local, args: &[], note: "restarts an interrupted local call (nanosleep, clock_nanosleep, futex); interrupted forwarded calls are re-issued by the remote itself", gap: "" },
    Syscall { nr: 220, name: "semtimedop", class: Forward, args: &[Int, Array { count: 2, elem: 6, dir: In }, Int, InStruct { size: 16 }], note: "sops: nsops x 6-byte struct sembuf, in; timeout may be NULL", gap: "" },
    Syscall { nr: 221, name: "fadvise64", class: Forward, args: &[Fd, Int, Int, Int], note: "", gap: "" },
    Syscall { nr: 222, name: "timer_create", class: BringHome, args: &[], note: "the process comes home to create a timer (a SIGEV_THREAD_ID names a home TID, which the guest's kernel does not know); its timers then travel with it, under their ids", gap: "" },
    Syscall { nr: 223, name: "timer_settime", class: Local, args: &[], note: "POSIX timers travel in the migration image under their ids and fire in the guest's kernel", gap: "" },
    Syscall { nr: 224, name: "timer_gettime", class: Local, args: &[], note: "POSIX timers travel in the migration image under their ids and fire in the guest's kernel", gap: "" },
    Syscall { nr: 225, name: "timer_getoverrun", class: Local, args: &[], note: "POSIX timers travel in the migration image under their ids and fire in the guest's kernel", gap: "overruns not yet read when the process moved read 0" },
    Syscall { nr: 226, name: "timer_delete", class: Local, args: &[], note: "POSIX timers travel in the migration image under their ids and fire in the guest's kernel", gap: "" },
    Syscall { nr: 227, name: "clock_settime", class: Forward, args: &[Int, InStruct { size: 16 }], note: "sets a home clock (home privileges decide)", gap: "" },
    Syscall { nr: 228, name: "clock_gettime", class: Local, args: &[], note: "read on the guest's node (the vDSO mostly answers without a call); CPU-time clocks trap: the process's own (CLOCK_PROCESS/THREAD_CPUTIME_ID, its home PID's) read its whole CPU time, other processes' and descriptor clocks are read at home", gap: "CLOCK_MONOTONIC/BOOTTIME are the node's; once the process is home again its CPU clocks count only its time at home" },
    Syscall { nr: 229, name: "clock_getres", class: Local, args: &[], note: "", gap: "" },
    Syscall { nr: 230, name: "clock_nanosleep", class: Local, args: &[], note: "", gap: "an absolute CLOCK_MONOTONIC/BOOTTIME deadline is read on the guest's node clock" },
    Syscall { nr: 231, name: "exit_group", class: Exit, args: &[], note: "", gap: "" },
    Syscall { nr: 232, name: "epoll_wait", class: Forward, args: &[Fd, Array { count: 2, elem: 12, dir: Out }, Int, Int], note: "events: maxevents x 12-byte (packed) struct epoll_event, out; ret entries valid", gap: "" },
    Syscall { nr: 233, name: "epoll_ctl", class: Forward, args: &[Fd, Int, Fd, InStruct { size: 12 }], note: "event (packed, 12 B) may be NULL for EPOLL_CTL_DEL", gap: "" },
    Syscall { nr: 234, name: "tgkill", class: Forward, args: &[Int, Int, Int], note: "pids are home PIDs; a signal to the process itself hits the placeholder and the deputy relays it to the guest", gap: "" },
    Syscall { nr: 235, name: "utimes", class: Forward, args: &[CStr, InStruct { size: 32 }], note: "times (2 x timeval) may be NULL", gap: "" },
    Syscall { nr: 236, name: "vserver", class: Unsupported, args: &[], note: "no entry point on x86-64 (sys_ni_syscall): ENOSYS natively too, so answered without a round trip", gap: "" },
    Syscall { nr: 237, name: "mbind", class: Local, args: &[], note: "NUMA policy of the guest's local memory; node numbers are the current node's", gap: "" },
    Syscall { nr: 238, name: "set_mempolicy", class: Local, args: &[], note: "NUMA policy of the guest's local memory; node numbers are the current node's", gap: "" },
    Syscall { nr: 239, name: "get_mempolicy", class: Local, args: &[], note: "NUMA policy of the guest's local memory; node numbers are the current node's", gap: "" },
    Syscall { nr: 240, name: "mq_open", class: Forward, args: &[CStr, Int, Int, InStruct { size: 64 }], note: "attr (struct mq_attr) may be NULL", gap: "" },
    Syscall { nr: 241, name: "mq_unlink", class: Forward, args: &[CStr], note: "", gap: "" },
    Syscall { nr: 242, name: "mq_timedsend", class: Forward, args: &[Fd, InBuf { len: 2 }, Int, Int, InStruct { size: 16 }], note: "abs_timeout may be NULL", gap: "" },
    Syscall { nr: 243, name: "mq_timedreceive", class: Forward, args: &[Fd, OutBuf { len: 2, whole: false }, Int, OutStruct { size: 4 }, InStruct { size: 16 }], note: "msg_prio and abs_timeout may be NULL", gap: "" },
    Syscall { nr: 244, name: "mq_notify", class: Forward, args: &[Fd, InStruct { size: 64 }], note: "struct sigevent, may be NULL; SIGEV_SIGNAL signals the placeholder and the deputy relays it to the guest", gap: "" },
    Syscall { nr: 245, name: "mq_getsetattr", class: Forward, args: &[Fd, InStruct { size: 64 }, OutStruct { size: 64 }], note: "", gap: "" },
    Syscall { nr: 246, name: "kexec_load", class: Forward, args: &[Int, Int, Opaque, Int], note: "segments: nr_segments x 32-byte kexec_segment whose buf/bufsz point into guest memory; EPERM unless privileged at home", gap: "not marshalled: the call is made at home" },
    Syscall { nr: 247, name: "waitid", class: Forward, args: &[Int, Int, OutStruct { size: 128 }, Int, OutStruct { size: 144 }], note: "children live at home; id is a home PID/PGID or a home pidfd", gap: "" },
    Syscall { nr: 248, name: "add_key", class: Forward, args: &[CStr, CStr, InBuf { len: 3 }, Int, Int], note: "payload may be NULL; keyrings are per-credential state at home", gap: "" },
    Syscall { nr: 249, name: "request_key", class: Forward, args: &[CStr, CStr, CStr, Int], note: "callout_info may be NULL", gap: "" },
    Syscall { nr: 250, name: "keyctl", class: Forward, args: &[Int, ByCmd(Cmd::Keyctl), ByCmd(Cmd::Keyctl), ByCmd(Cmd::Keyctl), ByCmd(Cmd::Keyctl)], note: "arguments by operation: key serials and integers, strings (JOIN_SESSION_KEYRING, SEARCH), payloads (UPDATE, INSTANTIATE), out buffers (DESCRIBE, READ, GET_SECURITY: copy back min(ret, size)); the operations with structs or iovecs (INSTANTIATE_IOV, DH_COMPUTE, PKEY_*, RESTRICT_KEYRING, ...) are made at home", gap: "" },
    Syscall { nr: 251, name: "ioprio_set", class: Forward, args: &[Int, Int, Int], note: "home I/O priority: the guest's I/O happens at home", gap: "" },
    Syscall { nr: 252, name: "ioprio_get", class: Forward, args: &[Int, Int], note: "home I/O priority: the guest's I/O happens at home", gap: "" },
    Syscall { nr: 253, name: "inotify_init", class: Forward, args: &[], note: "", gap: "" },
    Syscall { nr: 254, name: "inotify_add_watch", class: Forward, args: &[Fd, CStr, Int], note: "", gap: "" },
    Syscall { nr: 255, name: "inotify_rm_watch", class: Forward, args: &[Fd, Int], note: "", gap: "" },
    Syscall { nr: 256, name: "migrate_pages", class: Local, args: &[], note: "NUMA policy of the guest's local memory; node numbers are the current node's; only pid 0 (self) is meaningful remotely", gap: "" },
    Syscall { nr: 257, name: "openat", class: Forward, args: &[Fd, CStr, Int, Int], note: "its own /proc files of memory and CPU (status, statm, stat, maps, smaps, smaps_rollup, under self, thread-self or its home PID) open the guest's, merged with home's, in a memfd made at home", gap: "such a descriptor is a memfd holding the file as it was when opened" },
    Syscall { nr: 258, name: "mkdirat", class: Forward, args: &[Fd, CStr, Int], note: "", gap: "" },
    Syscall { nr: 259, name: "mknodat", class: Forward, args: &[Fd, CStr, Int, Int], note: "", gap: "" },
    Syscall { nr: 260, name: "fchownat", class: Forward, args: &[Fd, CStr, Int, Int, Int], note: "", gap: "" },
    Syscall { nr: 261, name: "futimesat", class: Forward, args: &[Fd, CStr, InStruct { size: 32 }], note: "times (2 x timeval) may be NULL", gap: "" },
    Syscall { nr: 262, name: "newfstatat", class: Forward, args: &[Fd, CStr, OutStruct { size: 144 }, Int], note: "", gap: "" },
    Syscall { nr: 263, name: "unlinkat", class: Forward, args: &[Fd, CStr, Int], note: "", gap: "" },
    Syscall { nr: 264, name: "renameat", class: Forward, args: &[Fd, CStr, Fd, CStr], note: "", gap: "" },
    Syscall { nr: 265, name: "linkat", class: Forward, args: &[Fd, CStr, Fd, CStr, Int], note: "", gap: "" },
    Syscall { nr: 266, name: "symlinkat", class: Forward, args: &[CStr, Fd, CStr], note: "", gap: "" },
    Syscall { nr: 267, name: "readlinkat", class: Forward, args: &[Fd, CStr, OutBuf { len: 3, whole: false }, Int], note: "", gap: "" },
    Syscall { nr: 268, name: "fchmodat", class: Forward, args: &[Fd, CStr, Int], note: "", gap: "" },
    Syscall { nr: 269, name: "faccessat", class: Forward, args: &[Fd, CStr, Int], note: "", gap: "" },
    Syscall { nr: 270, name: "pselect6", class: Forward, args: &[Int, FdSet, FdSet, FdSet, InOutStruct { size: 16 }, SigsetPair], note: "each fd_set (may be NULL): ceil(nfds/64)*8 bytes, in and out; the {sigset, size} pair and its set are copied; the mask is applied in the placeholder while it blocks", gap: "" },
    Syscall { nr: 271, name: "ppoll", class: Forward, args: &[Array { count: 1, elem: 8, dir: InOut }, Int, InOutStruct { size: 16 }, InStruct { size: 8 }, Int], note: "fds: nfds x 8-byte struct pollfd, in and out; timeout (may be NULL) updated by Linux; the mask is applied in the placeholder while it blocks", gap: "" },
    Syscall { nr: 272, name: "unshare", class: BringHome, args: &[], note: "namespaces and fs/files sharing are properties of the native process", gap: "" },
    Syscall { nr: 273, name: "set_robust_list", class: Local, args: &[], note: "the list lives in guest memory", gap: "" },
    Syscall { nr: 274, name: "get_robust_list", class: Local, args: &[], note: "pid 0 (self) is the useful case; other pids are home PIDs the local kernel does not know", gap: "" },
    Syscall { nr: 275, name: "splice", class: Forward, args: &[Fd, InOutStruct { size: 8 }, Fd, InOutStruct { size: 8 }, Int, Int], note: "offsets may be NULL", gap: "" },
    Syscall { nr: 276, name: "tee", class: Forward, args: &[Fd, Fd, Int, Int], note: "", gap: "" },
    Syscall { nr: 277, name: "sync_file_range", class: Forward, args: &[Fd, Int, Int, Int], note: "", gap: "" },
    Syscall { nr: 278, name: "vmsplice", class: Forward, args: &[Fd, Opaque, Int, Int], note: "iov direction by pipe end: write end -> copied in like writev, read end -> copied out like readv; the zero-copy/gift semantics are lost", gap: "not marshalled: the call is made at home" },
    Syscall { nr: 279, name: "move_pages", class: Local, args: &[], note: "NUMA policy of the guest's local memory; node numbers are the current node's; only pid 0 (self) is meaningful remotely", gap: "" },
    Syscall { nr: 280, name: "utimensat", class: Forward, args: &[Fd, CStr, InStruct { size: 32 }, Int], note: "path may be NULL (futimens); times (2 x timespec) may be NULL", gap: "" },
    Syscall { nr: 281, name: "epoll_pwait", class: Forward, args: &[Fd, Array { count: 2, elem: 12, dir: Out }, Int, Int, InStruct { size: 8 }, Int], note: "events: maxevents x 12-byte (packed) struct epoll_event, out; ret entries valid; the mask is applied in the placeholder while it blocks", gap: "" },
    Syscall { nr: 282, name: "signalfd", class: BringHome, args: &[], note: "signals for a migrated process are relayed to its guest, which a signalfd at home would not see: the process comes home, and cantmove keeps a process that holds a signalfd at home", gap: "" },
    Syscall { nr: 283, name: "timerfd_create", class: Forward, args: &[Int, Int], note: "", gap: "" },
    Syscall { nr: 284, name: "eventfd", class: Forward, args: &[Int], note: "", gap: "" },
    Syscall { nr: 285, name: "fallocate", class: Forward, args: &[Fd, Int, Int, Int], note: "", gap: "" },
    Syscall { nr: 286, name: "timerfd_settime", class: Forward, args: &[Fd, Int, InStruct { size: 32 }, OutStruct { size: 32 }], note: "old_value may be NULL", gap: "" },
    Syscall { nr: 287, name: "timerfd_gettime", class: Forward, args: &[Fd, OutStruct { size: 32 }], note: "", gap: "" },
    Syscall { nr: 288, name: "accept4", class: Forward, args: &[Fd, SockBuf, SockLen { buf: 1 }, Int], note: "addr and addrlen may both be NULL", gap: "" },
    Syscall { nr: 289, name: "signalfd4", class: BringHome, args: &[], note: "signals for a migrated process are relayed to its guest, which a signalfd at home would not see: the process comes home, and cantmove keeps a process that holds a signalfd at home", gap: "" },
    Syscall { nr: 290, name: "eventfd2", class: Forward, args: &[Int, Int], note: "", gap: "" },
    Syscall { nr: 291, name: "epoll_create1", class: Forward, args: &[Int], note: "", gap: "" },
    Syscall { nr: 292, name: "dup3", class: Forward, args: &[Fd, Fd, Int], note: "", gap: "" },
    Syscall { nr: 293, name: "pipe2", class: Forward, args: &[OutStruct { size: 8 }, Int], note: "", gap: "" },
    Syscall { nr: 294, name: "inotify_init1", class: Forward, args: &[Int], note: "", gap: "" },
    Syscall { nr: 295, name: "preadv", class: Forward, args: &[Fd, Iovec { count: 2, write: true }, Int, Int, Int], note: "", gap: "" },
    Syscall { nr: 296, name: "pwritev", class: Forward, args: &[Fd, Iovec { count: 2, write: false }, Int, Int, Int], note: "", gap: "" },
    Syscall { nr: 297, name: "rt_tgsigqueueinfo", class: Forward, args: &[Int, Int, Int, InStruct { size: 128 }], note: "pids are home PIDs; a signal to the process itself hits the placeholder and the deputy relays it to the guest", gap: "" },
    Syscall { nr: 298, name: "perf_event_open", class: BringHome, args: &[], note: "counters attach to a task or CPU of one node; monitoring itself needs the native process (others' pids are home PIDs)", gap: "" },
    Syscall { nr: 299, name: "recvmmsg", class: Forward, args: &[Fd, Opaque, Int, Int, InOutStruct { size: 16 }], note: "the remote makes it a recvmsg per message (each forwarded, msg_len set; MSG_WAITFORONE: the others non-blocking); with a timeout it is made at home", gap: "" },
    Syscall { nr: 300, name: "fanotify_init", class: Forward, args: &[Int, Int], note: "", gap: "" },
    Syscall { nr: 301, name: "fanotify_mark", class: Forward, args: &[Fd, Int, Int, Fd, CStr], note: "pathname may be NULL", gap: "" },
    Syscall { nr: 302, name: "prlimit64", class: Forward, args: &[Int, Int, HomeIfSet { size: 16 }, OutStruct { size: 16 }], note: "pid is a home PID; reading is forwarded (the placeholder's limits are the guest's); setting makes the call at home, the process brought home first (limits travel with it)", gap: "" },
    Syscall { nr: 303, name: "name_to_handle_at", class: Forward, args: &[Fd, CStr, Opaque, Opaque, Int], note: "handle: struct file_handle, 8-byte header whose handle_bytes gives the capacity, in and out; mount_id: int out, or u64 with AT_HANDLE_MNT_ID_UNIQUE", gap: "not marshalled: the call is made at home" },
    Syscall { nr: 304, name: "open_by_handle_at", class: Forward, args: &[Fd, Opaque, Int], note: "handle: struct file_handle, 8-byte header + handle_bytes, in", gap: "not marshalled: the call is made at home" },
    Syscall { nr: 305, name: "clock_adjtime", class: Forward, args: &[Int, InOutStruct { size: 208 }], note: "the home clock; modes 0 just reads its state", gap: "" },
    Syscall { nr: 306, name: "syncfs", class: Forward, args: &[Fd], note: "", gap: "" },
    Syscall { nr: 307, name: "sendmmsg", class: Forward, args: &[Fd, Opaque, Int, Int], note: "the remote makes it a sendmsg per message (each forwarded, msg_len set)", gap: "" },
    Syscall { nr: 308, name: "setns", class: BringHome, args: &[], note: "namespaces are properties of the native process", gap: "" },
    Syscall { nr: 309, name: "getcpu", class: Local, args: &[], note: "", gap: "the CPU and NUMA node of the guest's node" },
    Syscall { nr: 310, name: "process_vm_readv", class: BringHome, args: &[], note: "local iovecs are guest memory, remote ones belong to a home process", gap: "" },
    Syscall { nr: 311, name: "process_vm_writev", class: BringHome, args: &[], note: "local iovecs are guest memory, remote ones belong to a home process", gap: "" },
    Syscall { nr: 312, name: "kcmp", class: Forward, args: &[Int, Int, Int, Int, Opaque], note: "home PIDs; idx2 is an integer, except a pointer to a 12-byte kcmp_epoll_slot (in) for KCMP_EPOLL_TFD", gap: "not marshalled: the call is made at home" },
    Syscall { nr: 313, name: "finit_module", class: Forward, args: &[Fd, CStr, Int], note: "", gap: "" },
    Syscall { nr: 314, name: "sched_setattr", class: Forward, args: &[Int, Opaque, Int], note: "attr: struct sched_attr whose first u32 gives its size (>= 48), in; pid is a home PID", gap: "not marshalled: the call is made at home" },
    Syscall { nr: 315, name: "sched_getattr", class: Forward, args: &[Int, OutBuf { len: 2, whole: true }, Int, Int], note: "the kernel writes attr->size and zero-fills the rest of size; pid is a home PID: the placeholder's", gap: "answers the placeholder's scheduling, not the guest's" },
    Syscall { nr: 316, name: "renameat2", class: Forward, args: &[Fd, CStr, Fd, CStr, Int], note: "", gap: "" },
    Syscall { nr: 317, name: "seccomp", class: BringHome, args: &[], note: "a filter sees every call only natively (forwarded calls would escape it); a filtered process stays home", gap: "" },
    Syscall { nr: 318, name: "getrandom", class: Local, args: &[], note: "", gap: "" },
    Syscall { nr: 319, name: "memfd_create", class: Forward, args: &[CStr, Int], note: "the fd lives at home; mmap of it is decided by mmap (shared -> bring home)", gap: "" },
    Syscall { nr: 320, name: "kexec_file_load", class: Forward, args: &[Fd, Fd, Int, InBuf { len: 2 }, Int], note: "", gap: "" },
    Syscall { nr: 321, name: "bpf", class: BringHome, args: &[], note: "bpf_attr embeds guest pointers per command (insns, log buffer, keys, values) and maps can be mmapped; too command-specific to marshal", gap: "" },
    Syscall { nr: 322, name: "execveat", class: BringHome, args: &[], note: "", gap: "" },
    Syscall { nr: 323, name: "userfaultfd", class: BringHome, args: &[], note: "faults of guest memory would have to be served across nodes", gap: "" },
    Syscall { nr: 324, name: "membarrier", class: Local, args: &[], note: "acts on the threads sharing the mm; the guest has one", gap: "" },
    Syscall { nr: 325, name: "mlock2", class: Local, args: &[], note: "locks the guest's local pages under its node's RLIMIT_MEMLOCK", gap: "" },
    Syscall { nr: 326, name: "copy_file_range", class: Forward, args: &[Fd, InOutStruct { size: 8 }, Fd, InOutStruct { size: 8 }, Int, Int], note: "offsets may be NULL", gap: "" },
    Syscall { nr: 327, name: "preadv2", class: Forward, args: &[Fd, Iovec { count: 2, write: true }, Int, Int, Int, Int], note: "", gap: "" },
    Syscall { nr: 328, name: "pwritev2", class: Forward, args: &[Fd, Iovec { count: 2, write: false }, Int, Int, Int, Int], note: "", gap: "" },
    Syscall { nr: 329, name: "pkey_mprotect", class: Local, args: &[], note: "protection keys (PKRU) are guest CPU state carried in the xstate; needs PKU on this node", gap: "the key allocation map is not carried" },
    Syscall { nr: 330, name: "pkey_alloc", class: Local, args: &[], note: "protection keys (PKRU) are guest CPU state carried in the xstate; needs PKU on this node", gap: "the key allocation map is not carried: keys allocated before a move may be handed out again" },
    Syscall { nr: 331, name: "pkey_free", class: Local, args: &[], note: "protection keys (PKRU) are guest CPU state carried in the xstate; needs PKU on this node", gap: "the key allocation map is not carried" },
    Syscall { nr: 332, name: "statx", class: Forward, args: &[Fd, CStr, Int, Int, OutStruct { size: 256 }], note: "", gap: "" },
    Syscall { nr: 333, name: "io_pgetevents", class: BringHome, args: &[], note: "kernel AIO: the context is a ring mapped into the address space and completions write guest buffers asynchronously; home only (not in libc's x86_64 gnu list)", gap: "" },
    Syscall { nr: 334, name: "rseq", class: Local, args: &[], note: "the registration area is guest memory; carried in the migration image", gap: "" },
    Syscall { nr: 335, name: "uretprobe", class: Local, args: &[], note: "only valid from the kernel's uprobe trampoline (SIGILL otherwise); the local kernel decides", gap: "" },
    Syscall { nr: 336, name: "uprobe", class: Local, args: &[], note: "only valid from the kernel's uprobe trampoline (SIGILL otherwise); the local kernel decides", gap: "" },
    Syscall { nr: 424, name: "pidfd_send_signal", class: Forward, args: &[Fd, Int, InStruct { size: 128 }, Int], note: "info may be NULL; a signal to the process itself hits the placeholder and the deputy relays it to the guest", gap: "" },
    Syscall { nr: 425, name: "io_uring_setup", class: BringHome, args: &[], note: "io_uring: rings are shared memory with the kernel and SQEs carry guest pointers; home only", gap: "" },
    Syscall { nr: 426, name: "io_uring_enter", class: BringHome, args: &[], note: "io_uring: rings are shared memory with the kernel and SQEs carry guest pointers; home only", gap: "" },
    Syscall { nr: 427, name: "io_uring_register", class: BringHome, args: &[], note: "io_uring: rings are shared memory with the kernel and SQEs carry guest pointers; home only", gap: "" },
    Syscall { nr: 428, name: "open_tree", class: Forward, args: &[Fd, CStr, Int], note: "", gap: "" },
    Syscall { nr: 429, name: "move_mount", class: Forward, args: &[Fd, CStr, Fd, CStr, Int], note: "", gap: "" },
    Syscall { nr: 430, name: "fsopen", class: Forward, args: &[CStr, Int], note: "", gap: "" },
    Syscall { nr: 431, name: "fsconfig", class: Forward, args: &[Fd, Int, CStr, Opaque, Int], note: "key may be NULL; value by cmd: NULL, a string, a binary blob of aux bytes, or a path (aux is then a dirfd)", gap: "not marshalled: the call is made at home" },
    Syscall { nr: 432, name: "fsmount", class: Forward, args: &[Fd, Int, Int], note: "", gap: "" },
    Syscall { nr: 433, name: "fspick", class: Forward, args: &[Fd, CStr, Int], note: "", gap: "" },
    Syscall { nr: 434, name: "pidfd_open", class: Forward, args: &[Int, Int], note: "pid is a home PID", gap: "" },
    Syscall { nr: 435, name: "clone3", class: BringHome, args: &[], note: "as clone: a thread without set_tid is born away, the rest brings the process home", gap: "" },
    Syscall { nr: 436, name: "close_range", class: Forward, args: &[Int, Int, Int], note: "bounds are home fd numbers; the placeholder holds no descriptor of the deputy's", gap: "" },
    Syscall { nr: 437, name: "openat2", class: Forward, args: &[Fd, CStr, InBuf { len: 3 }, Int], note: "how: struct open_how of size bytes", gap: "" },
    Syscall { nr: 438, name: "pidfd_getfd", class: Forward, args: &[Fd, Int, Int], note: "targetfd is an fd of the pidfd's process", gap: "" },
    Syscall { nr: 439, name: "faccessat2", class: Forward, args: &[Fd, CStr, Int, Int], note: "", gap: "" },
    Syscall { nr: 440, name: "process_madvise", class: BringHome, args: &[], note: "the iovec names address ranges of the target's memory: a home process's, or the guest's own", gap: "" },
    Syscall { nr: 441, name: "epoll_pwait2", class: Forward, args: &[Fd, Array { count: 2, elem: 12, dir: Out }, Int, InStruct { size: 16 }, InStruct { size: 8 }, Int], note: "events: maxevents x 12-byte (packed) struct epoll_event, out; ret entries valid; timeout may be NULL; the mask is applied in the placeholder while it blocks", gap: "" },
    Syscall { nr: 442, name: "mount_setattr", class: Forward, args: &[Fd, CStr, Int, InBuf { len: 4 }, Int], note: "", gap: "" },
    Syscall { nr: 443, name: "quotactl_fd", class: Forward, args: &[Fd, Int, Int, Opaque], note: "addr by cmd, as for quotactl", gap: "not marshalled: the call is made at home" },
    Syscall { nr: 444, name: "landlock_create_ruleset", class: Forward, args: &[InBuf { len: 1 }, Int, Int], note: "attr may be NULL (LANDLOCK_CREATE_RULESET_VERSION)", gap: "" },
    Syscall { nr: 445, name: "landlock_add_rule", class: Forward, args: &[Fd, Int, Opaque, Int], note: "rule_attr by rule_type: landlock_path_beneath_attr (12 B packed, holds a home fd) or landlock_net_port_attr (16 B), in", gap: "not marshalled: the call is made at home" },
    Syscall { nr: 446, name: "landlock_restrict_self", class: Forward, args: &[Fd, Int], note: "enforced on the placeholder, where the guest's file and network calls run", gap: "file mappings the guest makes later through /mfs are not checked against the ruleset" },
    Syscall { nr: 447, name: "memfd_secret", class: Forward, args: &[Int], note: "the fd lives at home; its memory can only be mapped shared, so mmap of it brings the process home", gap: "" },
    Syscall { nr: 448, name: "process_mrelease", class: Forward, args: &[Fd, Int], note: "", gap: "" },
    Syscall { nr: 449, name: "futex_waitv", class: Local, args: &[], note: "private futexes only: a shared futex word lives in a shared mapping, which forces the process home", gap: "" },
    Syscall { nr: 450, name: "set_mempolicy_home_node", class: Local, args: &[], note: "NUMA policy of the guest's local memory; node numbers are the current node's", gap: "" },
    Syscall { nr: 451, name: "cachestat", class: Forward, args: &[Fd, InStruct { size: 16 }, OutStruct { size: 40 }, Int], note: "(not in libc's x86_64 gnu list)", gap: "" },
    Syscall { nr: 452, name: "fchmodat2", class: Forward, args: &[Fd, CStr, Int, Int], note: "", gap: "" },
    Syscall { nr: 453, name: "map_shadow_stack", class: Local, args: &[], note: "private memory (not in libc's x86_64 gnu list)", gap: "shadow-stack state is not carried in the migration image" },
    Syscall { nr: 454, name: "futex_wake", class: Local, args: &[], note: "private futexes only: a shared futex word lives in a shared mapping, which forces the process home", gap: "" },
    Syscall { nr: 455, name: "futex_wait", class: Local, args: &[], note: "private futexes only: a shared futex word lives in a shared mapping, which forces the process home", gap: "" },
    Syscall { nr: 456, name: "futex_requeue", class: Local, args: &[], note: "private futexes only: a shared futex word lives in a shared mapping, which forces the process home", gap: "" },
    Syscall { nr: 457, name: "statmount", class: Forward, args: &[Opaque, OutBuf { len: 2, whole: true }, Int, Int], note: "req: struct mnt_id_req whose first u32 gives its size (24 or 32 B), in; buf: the kernel sets buf->size", gap: "not marshalled: the call is made at home" },
    Syscall { nr: 458, name: "listmount", class: Forward, args: &[Opaque, Opaque, Int, Int], note: "req: struct mnt_id_req whose first u32 gives its size, in; mnt_ids: nr_mnt_ids x u64, out, ret entries valid", gap: "not marshalled: the call is made at home" },
    Syscall { nr: 459, name: "lsm_get_self_attr", class: Forward, args: &[Int, SockBuf, SockLen { buf: 1 }, Int], note: "home credentials; size is a u32 capacity updated by the kernel, as for socklen", gap: "" },
    Syscall { nr: 460, name: "lsm_set_self_attr", class: Forward, args: &[Int, InBuf { len: 2 }, Int, Int], note: "home credentials", gap: "" },
    Syscall { nr: 461, name: "lsm_list_modules", class: Forward, args: &[SockBuf, SockLen { buf: 0 }, Int], note: "ids: u64 array; size is a u32 capacity updated by the kernel, as for socklen", gap: "" },
    Syscall { nr: 462, name: "mseal", class: Local, args: &[], note: "seals local mappings", gap: "seals are not carried in the migration image" },
    Syscall { nr: 463, name: "setxattrat", class: Forward, args: &[Fd, CStr, Int, CStr, Opaque, Int], note: "uargs: struct xattr_args (usize B) holding a guest pointer to value (size bytes, in)", gap: "not marshalled: the call is made at home" },
    Syscall { nr: 464, name: "getxattrat", class: Forward, args: &[Fd, CStr, Int, CStr, Opaque, Int], note: "uargs: struct xattr_args (usize B) holding a guest pointer to value (size bytes, out, min(ret, size) valid)", gap: "not marshalled: the call is made at home" },
    Syscall { nr: 465, name: "listxattrat", class: Forward, args: &[Fd, CStr, Int, OutBuf { len: 4, whole: false }, Int], note: "size 0 asks for the needed size: copy back min(ret, size)", gap: "" },
    Syscall { nr: 466, name: "removexattrat", class: Forward, args: &[Fd, CStr, Int, CStr], note: "", gap: "" },
    Syscall { nr: 467, name: "open_tree_attr", class: Forward, args: &[Fd, CStr, Int, InBuf { len: 4 }, Int], note: "uattr (struct mount_attr of usize bytes) may be NULL", gap: "" },
    Syscall { nr: 468, name: "file_getattr", class: Forward, args: &[Fd, CStr, OutBuf { len: 3, whole: true }, Int, Int], note: "the kernel zero-fills the rest of usize", gap: "" },
    Syscall { nr: 469, name: "file_setattr", class: Forward, args: &[Fd, CStr, InBuf { len: 3 }, Int, Int], note: "", gap: "" },
    Syscall { nr: 470, name: "listns", class: Forward, args: &[Opaque, Opaque, Int, Int], note: "req: struct ns_id_req whose first u32 gives its size, in; ns_ids: nr_ns_ids x u64, out, ret entries valid", gap: "not marshalled: the call is made at home" },
];

/// The row for system call `nr`, if the x86-64 kernel defines one.
pub fn lookup(nr: u32) -> Option<&'static Syscall> {
    SYSCALLS
        .binary_search_by_key(&nr, |s| s.nr)
        .ok()
        .map(|i| &SYSCALLS[i])
}

/// The concrete marshalling of one call with these argument values: the
/// row's `args`, with a `Special` argument resolved where the other
/// arguments say what it is (fcntl's command, ioctl's request). `None`: no
/// marshaller for this case yet (the call fails with ENOSYS).
/// What a migrated process can do, call by call: the Markdown page
/// `SYSCALLS.md` (kept current by a test) and `mosaic syscalls`.
pub fn listing() -> String {
    let mut out = String::from(
        "# System calls of a migrated process\n\n\
         Made from the syscall table (`proto/src/syscalls.rs`) by `mosaic syscalls`;\n\
         a test keeps this page current (`MOSAIC_BLESS=1 cargo test -p mosaic-proto` rewrites it).\n\n\
         - **guest**: runs on the node the process moved to, at full speed.\n\
         - **home**: forwarded and executed at home inside the placeholder, which keeps\n  \
           the process's PID, files, cwd, credentials and terminal.\n\
         - **comes home**: the process is brought home first and makes the call there,\n  \
           natively (it may be sent out again later).\n\
         - **exit**: ends the process; its parent sees the status.\n\
         - **ENOSYS**: no kernel entry point; ENOSYS natively too.\n\n\
         *partial* says what a migrated process sees differently from a native one.\n\n\
         | nr | call | where | how | partial |\n|---|---|---|---|---|\n",
    );
    let (mut counts, mut partial) = ([0usize; 5], 0usize);
    for row in SYSCALLS {
        let opaque = row.args.contains(&Opaque);
        let (i, place) = match row.class {
            Local => (0, "guest"),
            Forward if opaque => (2, "home, or comes home"),
            Forward => (1, "home"),
            BringHome => (2, "comes home"),
            Exit => (3, "exit"),
            Unsupported => (4, "ENOSYS"),
        };
        counts[i] += 1;
        partial += usize::from(!row.gap.is_empty());
        let cell = |t: &str| t.replace('|', "\\|");
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} |\n",
            row.nr,
            row.name,
            place,
            cell(row.note),
            cell(row.gap)
        ));
    }
    out.push_str(&format!(
        "\n{} calls: {} on the guest, {} at home, {} bring the process home (or some of their uses do), {} exit, {} without an entry point; {} partial.\n",
        SYSCALLS.len(),
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        counts[4],
        partial
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn int_at(row: &Syscall, i: u8) -> bool {
        matches!(row.args.get(usize::from(i)), Some(Int))
    }

    #[test]
    fn rows_strictly_ascending() {
        for pair in SYSCALLS.windows(2) {
            assert!(
                pair[0].nr < pair[1].nr,
                "{} ({}) then {} ({})",
                pair[0].name,
                pair[0].nr,
                pair[1].name,
                pair[1].nr
            );
        }
        assert_eq!(SYSCALLS.first().map(|s| s.nr), Some(0));
        assert!(SYSCALLS.iter().any(|s| s.nr == 462 && s.name == "mseal"));
    }

    #[test]
    fn forward_rows_have_at_most_six_args() {
        for s in SYSCALLS.iter().filter(|s| s.class == Forward) {
            assert!(s.args.len() <= 6, "{} has {} args", s.name, s.args.len());
        }
    }

    #[test]
    fn non_forward_rows_have_no_args() {
        for s in SYSCALLS.iter().filter(|s| s.class != Forward) {
            assert!(
                s.args.is_empty(),
                "{} is {:?} but has args",
                s.name,
                s.class
            );
        }
    }

    #[test]
    fn length_indices_point_to_int_args() {
        for s in SYSCALLS {
            for (pos, arg) in s.args.iter().enumerate() {
                let idx = match *arg {
                    InBuf { len } | Bytes { len } | OutBuf { len, .. } | MsgBuf { len, .. } => len,
                    Iovec { count, .. } | Array { count, .. } => count,
                    _ => continue,
                };
                assert!(
                    usize::from(idx) < s.args.len(),
                    "{} arg {pos}: index {idx} out of range",
                    s.name
                );
                assert!(
                    usize::from(idx) != pos,
                    "{} arg {pos}: refers to itself",
                    s.name
                );
                assert!(int_at(s, idx), "{} arg {pos}: arg {idx} is not Int", s.name);
            }
        }
    }

    #[test]
    fn socklen_pairs_with_exactly_one_sockbuf() {
        for s in SYSCALLS {
            let lens: Vec<u8> = s
                .args
                .iter()
                .filter_map(|a| match *a {
                    SockLen { buf } => Some(buf),
                    _ => None,
                })
                .collect();
            let bufs: Vec<usize> = (0..s.args.len())
                .filter(|&i| s.args[i] == SockBuf)
                .collect();
            assert_eq!(
                lens.len(),
                bufs.len(),
                "{}: SockLen/SockBuf mismatch",
                s.name
            );
            for buf in lens {
                assert!(
                    usize::from(buf) < s.args.len(),
                    "{}: SockLen index out of range",
                    s.name
                );
                assert_eq!(
                    s.args[usize::from(buf)],
                    SockBuf,
                    "{}: SockLen must point to a SockBuf",
                    s.name
                );
            }
        }
    }

    #[test]
    fn names_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for s in SYSCALLS {
            assert!(seen.insert(s.name), "duplicate name {}", s.name);
            assert!(
                !s.name.is_empty()
                    && s.name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "bad name {:?}",
                s.name
            );
        }
    }

    #[test]
    fn special_and_unsupported_rows_explain_themselves() {
        for s in SYSCALLS {
            if s.args.contains(&Opaque) || s.class == Unsupported {
                assert!(!s.note.is_empty(), "{} needs a note", s.name);
            }
        }
    }

    #[test]
    fn lookup_finds_rows_and_gaps() {
        assert_eq!(lookup(0).map(|s| s.name), Some("read"));
        for s in SYSCALLS {
            assert_eq!(lookup(s.nr).map(|r| r.name), Some(s.name));
        }
        for gap in [337, 400, 423, 10_000, u32::MAX] {
            assert!(lookup(gap).is_none(), "{gap} should be unassigned");
        }
    }

    fn class_of(name: &str) -> Class {
        SYSCALLS
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no row {name}"))
            .class
    }

    #[test]
    fn key_classes() {
        for name in [
            "fork",
            "vfork",
            "clone",
            "clone3",
            "execve",
            "execveat",
            "ptrace",
            "shmget",
            "shmat",
            "unshare",
            "setns",
            "io_uring_setup",
            "userfaultfd",
        ] {
            assert_eq!(class_of(name), BringHome, "{name}");
        }
        assert_eq!(class_of("exit_group"), Exit);
        assert_eq!(class_of("exit"), Exit);
        for name in [
            "mmap",
            "munmap",
            "brk",
            "rt_sigaction",
            "rt_sigprocmask",
            "clock_gettime",
            "futex",
            "arch_prctl",
            "getrandom",
            "sched_yield",
            "getpid",
            "gettid",
        ] {
            assert_eq!(class_of(name), Local, "{name}");
        }
        for name in [
            "openat",
            "read",
            "write",
            "getppid",
            "uname",
            "kill",
            "wait4",
            "ioctl",
            "socket",
            "chdir",
            "umask",
            "reboot",
            "kexec_load",
        ] {
            assert_eq!(class_of(name), Forward, "{name}");
        }
    }

    #[test]
    fn some_marshalling() {
        let args = |name: &str| lookup_name(name).args;
        assert_eq!(
            args("read"),
            &[
                Fd,
                OutBuf {
                    len: 2,
                    whole: false
                },
                Int
            ]
        );
        assert_eq!(args("write"), &[Fd, Bytes { len: 2 }, Int]);
        assert_eq!(
            args("readv"),
            &[
                Fd,
                Iovec {
                    count: 2,
                    write: true
                },
                Int
            ]
        );
        assert_eq!(
            args("writev"),
            &[
                Fd,
                Iovec {
                    count: 2,
                    write: false
                },
                Int
            ]
        );
        assert_eq!(
            args("newfstatat"),
            &[Fd, CStr, OutStruct { size: 144 }, Int]
        );
        assert_eq!(args("statx")[4], OutStruct { size: 256 });
        assert_eq!(args("uname"), &[OutStruct { size: 390 }]);
        assert_eq!(args("kill"), &[Int, Int]);
        assert!(args("getpid").is_empty());
        assert_eq!(args("accept"), &[Fd, SockBuf, SockLen { buf: 1 }]);
    }

    #[test]
    fn syscalls_md_is_the_listing_of_the_table() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../SYSCALLS.md");
        let made = listing();
        if std::env::var_os("MOSAIC_BLESS").is_some() {
            std::fs::write(&path, &made).expect("write SYSCALLS.md");
        }
        let kept = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            kept == made,
            "SYSCALLS.md is not the listing of the table: run `MOSAIC_BLESS=1 cargo test -p mosaic-proto` and commit it"
        );
    }

    #[test]
    fn notes_say_what_is_not_what_is_planned() {
        // A note describes code that exists; what is missing goes in `gap`.
        for s in SYSCALLS {
            for planned in [
                "must ",
                "mirrors",
                "will ",
                "the deputy adds",
                "substitutes",
            ] {
                assert!(
                    !s.note.contains(planned),
                    "{}: {:?} in its note",
                    s.name,
                    planned
                );
            }
        }
    }

    fn lookup_name(name: &str) -> &'static Syscall {
        SYSCALLS
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no row {name}"))
    }

    // BEGIN LIBC TEST
    /// Every nr/name pair libc knows for x86-64 (its `SYS_*` constants) must
    /// match the table. (libc omits a few the kernel has: create_module,
    /// get_kernel_syms, query_module, io_pgetevents, uretprobe, uprobe,
    /// cachestat, 453..=461 and everything after mseal.)
    #[cfg(all(
        target_os = "linux",
        target_arch = "x86_64",
        target_pointer_width = "64"
    ))]
    #[test]
    fn numbers_match_libc() {
        let pairs: &[(libc::c_long, &str)] = &[
            (libc::SYS_read, "read"),
            (libc::SYS_write, "write"),
            (libc::SYS_open, "open"),
            (libc::SYS_close, "close"),
            (libc::SYS_stat, "stat"),
            (libc::SYS_fstat, "fstat"),
            (libc::SYS_lstat, "lstat"),
            (libc::SYS_poll, "poll"),
            (libc::SYS_lseek, "lseek"),
            (libc::SYS_mmap, "mmap"),
            (libc::SYS_mprotect, "mprotect"),
            (libc::SYS_munmap, "munmap"),
            (libc::SYS_brk, "brk"),
            (libc::SYS_rt_sigaction, "rt_sigaction"),
            (libc::SYS_rt_sigprocmask, "rt_sigprocmask"),
            (libc::SYS_rt_sigreturn, "rt_sigreturn"),
            (libc::SYS_ioctl, "ioctl"),
            (libc::SYS_pread64, "pread64"),
            (libc::SYS_pwrite64, "pwrite64"),
            (libc::SYS_readv, "readv"),
            (libc::SYS_writev, "writev"),
            (libc::SYS_access, "access"),
            (libc::SYS_pipe, "pipe"),
            (libc::SYS_select, "select"),
            (libc::SYS_sched_yield, "sched_yield"),
            (libc::SYS_mremap, "mremap"),
            (libc::SYS_msync, "msync"),
            (libc::SYS_mincore, "mincore"),
            (libc::SYS_madvise, "madvise"),
            (libc::SYS_shmget, "shmget"),
            (libc::SYS_shmat, "shmat"),
            (libc::SYS_shmctl, "shmctl"),
            (libc::SYS_dup, "dup"),
            (libc::SYS_dup2, "dup2"),
            (libc::SYS_pause, "pause"),
            (libc::SYS_nanosleep, "nanosleep"),
            (libc::SYS_getitimer, "getitimer"),
            (libc::SYS_alarm, "alarm"),
            (libc::SYS_setitimer, "setitimer"),
            (libc::SYS_getpid, "getpid"),
            (libc::SYS_sendfile, "sendfile"),
            (libc::SYS_socket, "socket"),
            (libc::SYS_connect, "connect"),
            (libc::SYS_accept, "accept"),
            (libc::SYS_sendto, "sendto"),
            (libc::SYS_recvfrom, "recvfrom"),
            (libc::SYS_sendmsg, "sendmsg"),
            (libc::SYS_recvmsg, "recvmsg"),
            (libc::SYS_shutdown, "shutdown"),
            (libc::SYS_bind, "bind"),
            (libc::SYS_listen, "listen"),
            (libc::SYS_getsockname, "getsockname"),
            (libc::SYS_getpeername, "getpeername"),
            (libc::SYS_socketpair, "socketpair"),
            (libc::SYS_setsockopt, "setsockopt"),
            (libc::SYS_getsockopt, "getsockopt"),
            (libc::SYS_clone, "clone"),
            (libc::SYS_fork, "fork"),
            (libc::SYS_vfork, "vfork"),
            (libc::SYS_execve, "execve"),
            (libc::SYS_exit, "exit"),
            (libc::SYS_wait4, "wait4"),
            (libc::SYS_kill, "kill"),
            (libc::SYS_uname, "uname"),
            (libc::SYS_semget, "semget"),
            (libc::SYS_semop, "semop"),
            (libc::SYS_semctl, "semctl"),
            (libc::SYS_shmdt, "shmdt"),
            (libc::SYS_msgget, "msgget"),
            (libc::SYS_msgsnd, "msgsnd"),
            (libc::SYS_msgrcv, "msgrcv"),
            (libc::SYS_msgctl, "msgctl"),
            (libc::SYS_fcntl, "fcntl"),
            (libc::SYS_flock, "flock"),
            (libc::SYS_fsync, "fsync"),
            (libc::SYS_fdatasync, "fdatasync"),
            (libc::SYS_truncate, "truncate"),
            (libc::SYS_ftruncate, "ftruncate"),
            (libc::SYS_getdents, "getdents"),
            (libc::SYS_getcwd, "getcwd"),
            (libc::SYS_chdir, "chdir"),
            (libc::SYS_fchdir, "fchdir"),
            (libc::SYS_rename, "rename"),
            (libc::SYS_mkdir, "mkdir"),
            (libc::SYS_rmdir, "rmdir"),
            (libc::SYS_creat, "creat"),
            (libc::SYS_link, "link"),
            (libc::SYS_unlink, "unlink"),
            (libc::SYS_symlink, "symlink"),
            (libc::SYS_readlink, "readlink"),
            (libc::SYS_chmod, "chmod"),
            (libc::SYS_fchmod, "fchmod"),
            (libc::SYS_chown, "chown"),
            (libc::SYS_fchown, "fchown"),
            (libc::SYS_lchown, "lchown"),
            (libc::SYS_umask, "umask"),
            (libc::SYS_gettimeofday, "gettimeofday"),
            (libc::SYS_getrlimit, "getrlimit"),
            (libc::SYS_getrusage, "getrusage"),
            (libc::SYS_sysinfo, "sysinfo"),
            (libc::SYS_times, "times"),
            (libc::SYS_ptrace, "ptrace"),
            (libc::SYS_getuid, "getuid"),
            (libc::SYS_syslog, "syslog"),
            (libc::SYS_getgid, "getgid"),
            (libc::SYS_setuid, "setuid"),
            (libc::SYS_setgid, "setgid"),
            (libc::SYS_geteuid, "geteuid"),
            (libc::SYS_getegid, "getegid"),
            (libc::SYS_setpgid, "setpgid"),
            (libc::SYS_getppid, "getppid"),
            (libc::SYS_getpgrp, "getpgrp"),
            (libc::SYS_setsid, "setsid"),
            (libc::SYS_setreuid, "setreuid"),
            (libc::SYS_setregid, "setregid"),
            (libc::SYS_getgroups, "getgroups"),
            (libc::SYS_setgroups, "setgroups"),
            (libc::SYS_setresuid, "setresuid"),
            (libc::SYS_getresuid, "getresuid"),
            (libc::SYS_setresgid, "setresgid"),
            (libc::SYS_getresgid, "getresgid"),
            (libc::SYS_getpgid, "getpgid"),
            (libc::SYS_setfsuid, "setfsuid"),
            (libc::SYS_setfsgid, "setfsgid"),
            (libc::SYS_getsid, "getsid"),
            (libc::SYS_capget, "capget"),
            (libc::SYS_capset, "capset"),
            (libc::SYS_rt_sigpending, "rt_sigpending"),
            (libc::SYS_rt_sigtimedwait, "rt_sigtimedwait"),
            (libc::SYS_rt_sigqueueinfo, "rt_sigqueueinfo"),
            (libc::SYS_rt_sigsuspend, "rt_sigsuspend"),
            (libc::SYS_sigaltstack, "sigaltstack"),
            (libc::SYS_utime, "utime"),
            (libc::SYS_mknod, "mknod"),
            (libc::SYS_uselib, "uselib"),
            (libc::SYS_personality, "personality"),
            (libc::SYS_ustat, "ustat"),
            (libc::SYS_statfs, "statfs"),
            (libc::SYS_fstatfs, "fstatfs"),
            (libc::SYS_sysfs, "sysfs"),
            (libc::SYS_getpriority, "getpriority"),
            (libc::SYS_setpriority, "setpriority"),
            (libc::SYS_sched_setparam, "sched_setparam"),
            (libc::SYS_sched_getparam, "sched_getparam"),
            (libc::SYS_sched_setscheduler, "sched_setscheduler"),
            (libc::SYS_sched_getscheduler, "sched_getscheduler"),
            (libc::SYS_sched_get_priority_max, "sched_get_priority_max"),
            (libc::SYS_sched_get_priority_min, "sched_get_priority_min"),
            (libc::SYS_sched_rr_get_interval, "sched_rr_get_interval"),
            (libc::SYS_mlock, "mlock"),
            (libc::SYS_munlock, "munlock"),
            (libc::SYS_mlockall, "mlockall"),
            (libc::SYS_munlockall, "munlockall"),
            (libc::SYS_vhangup, "vhangup"),
            (libc::SYS_modify_ldt, "modify_ldt"),
            (libc::SYS_pivot_root, "pivot_root"),
            (libc::SYS__sysctl, "_sysctl"),
            (libc::SYS_prctl, "prctl"),
            (libc::SYS_arch_prctl, "arch_prctl"),
            (libc::SYS_adjtimex, "adjtimex"),
            (libc::SYS_setrlimit, "setrlimit"),
            (libc::SYS_chroot, "chroot"),
            (libc::SYS_sync, "sync"),
            (libc::SYS_acct, "acct"),
            (libc::SYS_settimeofday, "settimeofday"),
            (libc::SYS_mount, "mount"),
            (libc::SYS_umount2, "umount2"),
            (libc::SYS_swapon, "swapon"),
            (libc::SYS_swapoff, "swapoff"),
            (libc::SYS_reboot, "reboot"),
            (libc::SYS_sethostname, "sethostname"),
            (libc::SYS_setdomainname, "setdomainname"),
            (libc::SYS_iopl, "iopl"),
            (libc::SYS_ioperm, "ioperm"),
            (libc::SYS_init_module, "init_module"),
            (libc::SYS_delete_module, "delete_module"),
            (libc::SYS_quotactl, "quotactl"),
            (libc::SYS_nfsservctl, "nfsservctl"),
            (libc::SYS_getpmsg, "getpmsg"),
            (libc::SYS_putpmsg, "putpmsg"),
            (libc::SYS_afs_syscall, "afs_syscall"),
            (libc::SYS_tuxcall, "tuxcall"),
            (libc::SYS_security, "security"),
            (libc::SYS_gettid, "gettid"),
            (libc::SYS_readahead, "readahead"),
            (libc::SYS_setxattr, "setxattr"),
            (libc::SYS_lsetxattr, "lsetxattr"),
            (libc::SYS_fsetxattr, "fsetxattr"),
            (libc::SYS_getxattr, "getxattr"),
            (libc::SYS_lgetxattr, "lgetxattr"),
            (libc::SYS_fgetxattr, "fgetxattr"),
            (libc::SYS_listxattr, "listxattr"),
            (libc::SYS_llistxattr, "llistxattr"),
            (libc::SYS_flistxattr, "flistxattr"),
            (libc::SYS_removexattr, "removexattr"),
            (libc::SYS_lremovexattr, "lremovexattr"),
            (libc::SYS_fremovexattr, "fremovexattr"),
            (libc::SYS_tkill, "tkill"),
            (libc::SYS_time, "time"),
            (libc::SYS_futex, "futex"),
            (libc::SYS_sched_setaffinity, "sched_setaffinity"),
            (libc::SYS_sched_getaffinity, "sched_getaffinity"),
            (libc::SYS_set_thread_area, "set_thread_area"),
            (libc::SYS_io_setup, "io_setup"),
            (libc::SYS_io_destroy, "io_destroy"),
            (libc::SYS_io_getevents, "io_getevents"),
            (libc::SYS_io_submit, "io_submit"),
            (libc::SYS_io_cancel, "io_cancel"),
            (libc::SYS_get_thread_area, "get_thread_area"),
            (libc::SYS_lookup_dcookie, "lookup_dcookie"),
            (libc::SYS_epoll_create, "epoll_create"),
            (libc::SYS_epoll_ctl_old, "epoll_ctl_old"),
            (libc::SYS_epoll_wait_old, "epoll_wait_old"),
            (libc::SYS_remap_file_pages, "remap_file_pages"),
            (libc::SYS_getdents64, "getdents64"),
            (libc::SYS_set_tid_address, "set_tid_address"),
            (libc::SYS_restart_syscall, "restart_syscall"),
            (libc::SYS_semtimedop, "semtimedop"),
            (libc::SYS_fadvise64, "fadvise64"),
            (libc::SYS_timer_create, "timer_create"),
            (libc::SYS_timer_settime, "timer_settime"),
            (libc::SYS_timer_gettime, "timer_gettime"),
            (libc::SYS_timer_getoverrun, "timer_getoverrun"),
            (libc::SYS_timer_delete, "timer_delete"),
            (libc::SYS_clock_settime, "clock_settime"),
            (libc::SYS_clock_gettime, "clock_gettime"),
            (libc::SYS_clock_getres, "clock_getres"),
            (libc::SYS_clock_nanosleep, "clock_nanosleep"),
            (libc::SYS_exit_group, "exit_group"),
            (libc::SYS_epoll_wait, "epoll_wait"),
            (libc::SYS_epoll_ctl, "epoll_ctl"),
            (libc::SYS_tgkill, "tgkill"),
            (libc::SYS_utimes, "utimes"),
            (libc::SYS_vserver, "vserver"),
            (libc::SYS_mbind, "mbind"),
            (libc::SYS_set_mempolicy, "set_mempolicy"),
            (libc::SYS_get_mempolicy, "get_mempolicy"),
            (libc::SYS_mq_open, "mq_open"),
            (libc::SYS_mq_unlink, "mq_unlink"),
            (libc::SYS_mq_timedsend, "mq_timedsend"),
            (libc::SYS_mq_timedreceive, "mq_timedreceive"),
            (libc::SYS_mq_notify, "mq_notify"),
            (libc::SYS_mq_getsetattr, "mq_getsetattr"),
            (libc::SYS_kexec_load, "kexec_load"),
            (libc::SYS_waitid, "waitid"),
            (libc::SYS_add_key, "add_key"),
            (libc::SYS_request_key, "request_key"),
            (libc::SYS_keyctl, "keyctl"),
            (libc::SYS_ioprio_set, "ioprio_set"),
            (libc::SYS_ioprio_get, "ioprio_get"),
            (libc::SYS_inotify_init, "inotify_init"),
            (libc::SYS_inotify_add_watch, "inotify_add_watch"),
            (libc::SYS_inotify_rm_watch, "inotify_rm_watch"),
            (libc::SYS_migrate_pages, "migrate_pages"),
            (libc::SYS_openat, "openat"),
            (libc::SYS_mkdirat, "mkdirat"),
            (libc::SYS_mknodat, "mknodat"),
            (libc::SYS_fchownat, "fchownat"),
            (libc::SYS_futimesat, "futimesat"),
            (libc::SYS_newfstatat, "newfstatat"),
            (libc::SYS_unlinkat, "unlinkat"),
            (libc::SYS_renameat, "renameat"),
            (libc::SYS_linkat, "linkat"),
            (libc::SYS_symlinkat, "symlinkat"),
            (libc::SYS_readlinkat, "readlinkat"),
            (libc::SYS_fchmodat, "fchmodat"),
            (libc::SYS_faccessat, "faccessat"),
            (libc::SYS_pselect6, "pselect6"),
            (libc::SYS_ppoll, "ppoll"),
            (libc::SYS_unshare, "unshare"),
            (libc::SYS_set_robust_list, "set_robust_list"),
            (libc::SYS_get_robust_list, "get_robust_list"),
            (libc::SYS_splice, "splice"),
            (libc::SYS_tee, "tee"),
            (libc::SYS_sync_file_range, "sync_file_range"),
            (libc::SYS_vmsplice, "vmsplice"),
            (libc::SYS_move_pages, "move_pages"),
            (libc::SYS_utimensat, "utimensat"),
            (libc::SYS_epoll_pwait, "epoll_pwait"),
            (libc::SYS_signalfd, "signalfd"),
            (libc::SYS_timerfd_create, "timerfd_create"),
            (libc::SYS_eventfd, "eventfd"),
            (libc::SYS_fallocate, "fallocate"),
            (libc::SYS_timerfd_settime, "timerfd_settime"),
            (libc::SYS_timerfd_gettime, "timerfd_gettime"),
            (libc::SYS_accept4, "accept4"),
            (libc::SYS_signalfd4, "signalfd4"),
            (libc::SYS_eventfd2, "eventfd2"),
            (libc::SYS_epoll_create1, "epoll_create1"),
            (libc::SYS_dup3, "dup3"),
            (libc::SYS_pipe2, "pipe2"),
            (libc::SYS_inotify_init1, "inotify_init1"),
            (libc::SYS_preadv, "preadv"),
            (libc::SYS_pwritev, "pwritev"),
            (libc::SYS_rt_tgsigqueueinfo, "rt_tgsigqueueinfo"),
            (libc::SYS_perf_event_open, "perf_event_open"),
            (libc::SYS_recvmmsg, "recvmmsg"),
            (libc::SYS_fanotify_init, "fanotify_init"),
            (libc::SYS_fanotify_mark, "fanotify_mark"),
            (libc::SYS_prlimit64, "prlimit64"),
            (libc::SYS_name_to_handle_at, "name_to_handle_at"),
            (libc::SYS_open_by_handle_at, "open_by_handle_at"),
            (libc::SYS_clock_adjtime, "clock_adjtime"),
            (libc::SYS_syncfs, "syncfs"),
            (libc::SYS_sendmmsg, "sendmmsg"),
            (libc::SYS_setns, "setns"),
            (libc::SYS_getcpu, "getcpu"),
            (libc::SYS_process_vm_readv, "process_vm_readv"),
            (libc::SYS_process_vm_writev, "process_vm_writev"),
            (libc::SYS_kcmp, "kcmp"),
            (libc::SYS_finit_module, "finit_module"),
            (libc::SYS_sched_setattr, "sched_setattr"),
            (libc::SYS_sched_getattr, "sched_getattr"),
            (libc::SYS_renameat2, "renameat2"),
            (libc::SYS_seccomp, "seccomp"),
            (libc::SYS_getrandom, "getrandom"),
            (libc::SYS_memfd_create, "memfd_create"),
            (libc::SYS_kexec_file_load, "kexec_file_load"),
            (libc::SYS_bpf, "bpf"),
            (libc::SYS_execveat, "execveat"),
            (libc::SYS_userfaultfd, "userfaultfd"),
            (libc::SYS_membarrier, "membarrier"),
            (libc::SYS_mlock2, "mlock2"),
            (libc::SYS_copy_file_range, "copy_file_range"),
            (libc::SYS_preadv2, "preadv2"),
            (libc::SYS_pwritev2, "pwritev2"),
            (libc::SYS_pkey_mprotect, "pkey_mprotect"),
            (libc::SYS_pkey_alloc, "pkey_alloc"),
            (libc::SYS_pkey_free, "pkey_free"),
            (libc::SYS_statx, "statx"),
            (libc::SYS_rseq, "rseq"),
            (libc::SYS_pidfd_send_signal, "pidfd_send_signal"),
            (libc::SYS_io_uring_setup, "io_uring_setup"),
            (libc::SYS_io_uring_enter, "io_uring_enter"),
            (libc::SYS_io_uring_register, "io_uring_register"),
            (libc::SYS_open_tree, "open_tree"),
            (libc::SYS_move_mount, "move_mount"),
            (libc::SYS_fsopen, "fsopen"),
            (libc::SYS_fsconfig, "fsconfig"),
            (libc::SYS_fsmount, "fsmount"),
            (libc::SYS_fspick, "fspick"),
            (libc::SYS_pidfd_open, "pidfd_open"),
            (libc::SYS_clone3, "clone3"),
            (libc::SYS_close_range, "close_range"),
            (libc::SYS_openat2, "openat2"),
            (libc::SYS_pidfd_getfd, "pidfd_getfd"),
            (libc::SYS_faccessat2, "faccessat2"),
            (libc::SYS_process_madvise, "process_madvise"),
            (libc::SYS_epoll_pwait2, "epoll_pwait2"),
            (libc::SYS_mount_setattr, "mount_setattr"),
            (libc::SYS_quotactl_fd, "quotactl_fd"),
            (libc::SYS_landlock_create_ruleset, "landlock_create_ruleset"),
            (libc::SYS_landlock_add_rule, "landlock_add_rule"),
            (libc::SYS_landlock_restrict_self, "landlock_restrict_self"),
            (libc::SYS_memfd_secret, "memfd_secret"),
            (libc::SYS_process_mrelease, "process_mrelease"),
            (libc::SYS_futex_waitv, "futex_waitv"),
            (libc::SYS_set_mempolicy_home_node, "set_mempolicy_home_node"),
            (libc::SYS_fchmodat2, "fchmodat2"),
            (libc::SYS_mseal, "mseal"),
        ];
        assert!(pairs.len() >= 40);
        for &(nr, name) in pairs {
            let nr = u32::try_from(nr).expect("syscall numbers are small");
            assert_eq!(lookup(nr).map(|s| s.name), Some(name), "SYS_{name} = {nr}");
        }
    }
    // END LIBC TEST
}
