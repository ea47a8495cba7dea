//! The forwarding codec: how each kind of argument of the table travels,
//! written once. A forwarded call makes four moves:
//!
//! ```text
//! remote (guest's node)                      home (placeholder)
//! resolve + gather: guest memory -> inbufs
//!                        Syscall { nr, args, inbufs } ->
//!                                            resolve + place: inbufs -> scratch,
//!                                              pointer arguments rewritten
//!                                            the call, injected
//!                                            collect: scratch -> outbufs
//!                        <- SyscallResult { ret, outbufs }
//! scatter: outbufs -> guest memory
//! ```
//!
//! Memory is reached through two small traits, [`GuestMemory`] (the remote's
//! view of the guest) and [`Scratch`] (the deputy's room in the
//! placeholder), so this module does no I/O and is tested against fakes.
//! Both sides bound every length that came over the wire before using it:
//! a malformed request is answered with an errno ([`PlaceError::Bad`]), a
//! malformed answer is refused ([`ScatterError::Malformed`]), and nothing
//! is ever written outside the room the guest's own arguments gave.

use super::{Arg, Cmd, Dir, Syscall, msghdr};
use crate::migrate::Buf;

/// Largest buffer one argument of a forwarded call carries. The link's
/// frames are at most 16 MiB (`node::net::MAX_FRAME`), so a call's
/// buffers together must stay below that: reads and writes above this are
/// made short (as the kernel may make them), other buffers answer E2BIG.
pub const MAX_BUF: u64 = 8 << 20;
/// Largest sum of one call's buffers, each way.
pub const MAX_CALL: u64 = 12 << 20;
/// Largest buffer behind a socklen_t (addresses, socket options).
pub const MAX_SOCKBUF: u64 = 64 << 10;
/// Longest path or name (with its NUL).
pub const PATH_MAX: usize = 4096;
/// Most iovecs in one call (the kernel's UIO_MAXIOV).
pub const IOV_MAX: u64 = 1024;
/// Most bits of an fd_set that travel.
const MAX_NFDS: u64 = 1 << 16;
/// Alignment of each piece placed in scratch.
const ALIGN: u64 = 16;

/// Return values of system calls, as negative numbers the way the kernel
/// returns them. The ERESTART codes are kernel-internal (linux/errno.h):
/// userspace sees them only in a tracee's registers.
pub mod errno {
    pub const EINTR: i64 = -(libc::EINTR as i64);
    pub const EAGAIN: i64 = -(libc::EAGAIN as i64);
    pub const EFAULT: i64 = -(libc::EFAULT as i64);
    pub const EINVAL: i64 = -(libc::EINVAL as i64);
    pub const E2BIG: i64 = -(libc::E2BIG as i64);
    pub const ENOSYS: i64 = -(libc::ENOSYS as i64);
    pub const ENAMETOOLONG: i64 = -(libc::ENAMETOOLONG as i64);
    pub const ERESTARTSYS: i64 = -512;
    pub const ERESTARTNOINTR: i64 = -513;
    pub const ERESTARTNOHAND: i64 = -514;
    pub const ERESTART_RESTARTBLOCK: i64 = -516;
}
use errno::*;

/// `N` bytes of `b` from `at`; the caller has checked the length.
pub(crate) fn array_at<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Bytes of a length that is known to be at most [`MAX_CALL`].
fn len_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The arguments of one call with every shape resolved to a concrete kind
/// (only [`resolve`] makes one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marshal(Vec<Arg>);

impl Marshal {
    /// No buffer to carry: a call home answers by its number and
    /// arguments alone (the remote's thread births and ends, which home
    /// makes in the placeholder, not as the guest asked them).
    pub fn bare() -> Marshal {
        Marshal(Vec::new())
    }

    pub fn args(&self) -> &[Arg] {
        &self.0
    }

    /// The argument that holds the length of SockBuf argument `buf`.
    pub fn sock_len_of(&self, buf: usize) -> Option<usize> {
        self.0
            .iter()
            .position(|a| matches!(*a, Arg::SockLen { buf: b } if usize::from(b) == buf))
    }
}

/// Why a call is made at home (the process comes home first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtHome(pub &'static str);

/// The concrete marshalling of one call with these argument values: the
/// row's shapes resolved by the other arguments (fcntl's command, ioctl's
/// request, an array's count). `Err`: the codec does not marshal this
/// call; it is made at home.
pub fn resolve(row: &Syscall, args: &[u64; 6]) -> Result<Marshal, AtHome> {
    let bytes = |n: u64| -> Result<u32, AtHome> {
        u32::try_from(n)
            .ok()
            .filter(|&b| u64::from(b) <= MAX_BUF)
            .ok_or(AtHome("an array larger than a forwarded call carries"))
    };
    let mut out = Vec::with_capacity(row.args.len());
    for (i, arg) in row.args.iter().enumerate() {
        out.push(match *arg {
            Arg::Array { count, elem, dir } => {
                let n = args[usize::from(count)]
                    .checked_mul(u64::from(elem))
                    .ok_or(AtHome("an array larger than a forwarded call carries"))?;
                let size = bytes(n)?;
                match dir {
                    Dir::In => Arg::InStruct { size },
                    Dir::InOut => Arg::InOutStruct { size },
                    Dir::Out => Arg::OutCounted {
                        size,
                        elem,
                        header: 0,
                    },
                }
            }
            Arg::FdSet => {
                // nfds is an int; a negative one is the kernel's EINVAL.
                let nfds = u64::try_from(crate::abi::int_arg(args[0])).unwrap_or(0);
                if nfds > MAX_NFDS {
                    return Err(AtHome("an fd_set larger than a forwarded call carries"));
                }
                Arg::InOutStruct {
                    size: bytes(nfds.div_ceil(64) * 8)?,
                }
            }
            Arg::MsgBuf { len, out } => {
                let size = bytes(args[usize::from(len)].saturating_add(8))?;
                if out {
                    Arg::OutCounted {
                        size,
                        elem: 1,
                        header: 8,
                    }
                } else {
                    Arg::InStruct { size }
                }
            }
            Arg::HomeIfSet { size } => {
                if args[i] != 0 {
                    return Err(AtHome("it sets state that travels with the process"));
                }
                Arg::InStruct { size }
            }
            Arg::ByCmd(Cmd::Fcntl) => fcntl_arg(args[1]),
            Arg::ByCmd(Cmd::Shmctl) => shmctl_arg(args[1]),
            Arg::ByCmd(Cmd::Msgctl) => msgctl_arg(args[1]),
            Arg::ByCmd(Cmd::Semctl) => semctl_arg(args[2])?,
            Arg::ByCmd(Cmd::Keyctl) => keyctl_arg(args[0], i)?,
            Arg::ByCmd(Cmd::Ioctl) => ioctl_arg(args[1])?,
            Arg::Opaque => return Err(AtHome(row.name)),
            concrete => concrete,
        });
    }
    Ok(Marshal(out))
}

/// fcntl's third argument by its command.
fn fcntl_arg(cmd: u64) -> Arg {
    match crate::abi::int_arg(cmd) {
        libc::F_GETLK
        | libc::F_SETLK
        | libc::F_SETLKW
        | libc::F_OFD_GETLK
        | libc::F_OFD_SETLK
        | libc::F_OFD_SETLKW => Arg::InOutStruct { size: 32 },
        // F_SETOWN_EX, F_GETOWN_EX (libc lacks them): struct f_owner_ex
        15 => Arg::InStruct { size: 8 },
        16 => Arg::OutStruct { size: 8 },
        // F_GET_RW_HINT, F_SET_RW_HINT, F_GET_FILE_RW_HINT, F_SET_FILE_RW_HINT: u64
        1035 | 1037 => Arg::OutStruct { size: 8 },
        1036 | 1038 => Arg::InStruct { size: 8 },
        // Everything else takes an integer (or nothing).
        _ => Arg::Int,
    }
}

/// The command of a SysV ctl call: an int, whose IPC_64 flag x86-64
/// ignores (linux/ipc.h).
fn ipc_cmd(cmd: u64) -> i32 {
    const IPC_64: i32 = 0x100;
    crate::abi::int_arg(cmd) & !IPC_64
}

/// shmctl's buffer by `cmd`: the 112-byte shmid_ds in for IPC_SET, out for
/// IPC_STAT, SHM_STAT and SHM_STAT_ANY; shminfo (72 B) out for IPC_INFO,
/// shm_info (48 B) for SHM_INFO; others take none.
fn shmctl_arg(cmd: u64) -> Arg {
    // linux/shm.h (libc lacks them): SHM_STAT, SHM_INFO, SHM_STAT_ANY.
    const SHM_STAT: i32 = 13;
    const SHM_INFO: i32 = 14;
    const SHM_STAT_ANY: i32 = 15;
    match ipc_cmd(cmd) {
        libc::IPC_SET => Arg::InStruct { size: 112 },
        libc::IPC_STAT | SHM_STAT | SHM_STAT_ANY => Arg::OutStruct { size: 112 },
        libc::IPC_INFO => Arg::OutStruct { size: 72 },
        SHM_INFO => Arg::OutStruct { size: 48 },
        _ => Arg::Int,
    }
}

/// msgctl's buffer by `cmd`: the 120-byte msqid_ds in for IPC_SET, out for
/// IPC_STAT, MSG_STAT and MSG_STAT_ANY; msginfo (32 B) out for IPC_INFO and
/// MSG_INFO; others take none.
fn msgctl_arg(cmd: u64) -> Arg {
    // linux/msg.h (libc lacks it).
    const MSG_STAT_ANY: i32 = 13;
    match ipc_cmd(cmd) {
        libc::IPC_SET => Arg::InStruct { size: 120 },
        libc::IPC_STAT | libc::MSG_STAT | MSG_STAT_ANY => Arg::OutStruct { size: 120 },
        libc::IPC_INFO | libc::MSG_INFO => Arg::OutStruct { size: 32 },
        _ => Arg::Int,
    }
}

/// semctl's `union semun` by `cmd`: a pointer to the 104-byte semid_ds
/// (IPC_SET in; IPC_STAT, SEM_STAT, SEM_STAT_ANY out) or to the 40-byte
/// seminfo (IPC_INFO, SEM_INFO out); GETALL and SETALL pass an array as
/// long as the set, which only the kernel knows: made at home.
fn semctl_arg(cmd: u64) -> Result<Arg, AtHome> {
    Ok(match ipc_cmd(cmd) {
        libc::IPC_SET => Arg::InStruct { size: 104 },
        libc::IPC_STAT | libc::SEM_STAT | libc::SEM_STAT_ANY => Arg::OutStruct { size: 104 },
        libc::IPC_INFO | libc::SEM_INFO => Arg::OutStruct { size: 40 },
        libc::GETALL | libc::SETALL => {
            return Err(AtHome(
                "semctl GETALL/SETALL (an array the size of the set)",
            ));
        }
        _ => Arg::Int,
    })
}

/// keyctl's argument `i` (1 to 4) by operation (linux/keyctl.h).
fn keyctl_arg(op: u64, i: usize) -> Result<Arg, AtHome> {
    const JOIN_SESSION_KEYRING: u64 = 1;
    const UPDATE: u64 = 2;
    const DESCRIBE: u64 = 6;
    const SEARCH: u64 = 10;
    const READ: u64 = 11;
    const INSTANTIATE: u64 = 12;
    const GET_SECURITY: u64 = 17;
    Ok(match (op, i) {
        (JOIN_SESSION_KEYRING, 1) | (SEARCH, 2 | 3) => Arg::CStr,
        (UPDATE | INSTANTIATE, 2) => Arg::InBuf { len: 3 },
        (DESCRIBE | READ | GET_SECURITY, 2) => Arg::OutBuf {
            len: 3,
            whole: false,
        },
        // Key serials, ids, permissions, timeouts, lengths.
        (0..=19 | 21 | 22, _) => Arg::Int,
        _ => return Err(AtHome("a keyctl operation with structs or iovecs")),
    })
}

/// ioctl's third argument for the requests the codec knows; any other
/// request is made at home (its argument could hold pointers).
fn ioctl_arg(request: u64) -> Result<Arg, AtHome> {
    // The request is an int (glibc passes unsigned long; the kernel takes
    // the low 32 bits).
    Ok(match crate::abi::int_arg(request).cast_unsigned() {
        // TCGETS: the kernel's struct termios, 36 bytes on x86-64 (NCCS 19;
        // glibc's own is 60, and tcgetattr passes a 36-byte one: copying 60
        // back smashed its stack, "stack smashing detected" in bc).
        0x5401 => Arg::OutStruct { size: 36 },
        // TCSETS, TCSETSW, TCSETSF
        0x5402..=0x5404 => Arg::InStruct { size: 36 },
        // TCGETS2, TCSETS2, TCSETSW2, TCSETSF2: struct termios2, 44 bytes
        0x802c_542a => Arg::OutStruct { size: 44 },
        0x402c_542b..=0x402c_542d => Arg::InStruct { size: 44 },
        // TIOCGWINSZ / TIOCSWINSZ: struct winsize
        0x5413 => Arg::OutStruct { size: 8 },
        0x5414 => Arg::InStruct { size: 8 },
        // TIOCGPGRP, FIONREAD, TIOCOUTQ, TIOCGSID: int out
        0x540f | 0x541b | 0x5411 | 0x5429 => Arg::OutStruct { size: 4 },
        // TIOCSPGRP, FIONBIO, FIOASYNC: int in
        0x5410 | 0x5421 | 0x5452 => Arg::InStruct { size: 4 },
        // FIOCLEX, FIONCLEX, TIOCSCTTY, TIOCNOTTY, TCSBRK, TCXONC, TCFLSH,
        // TIOCEXCL, TIOCNXCL: an integer or nothing
        0x5450 | 0x5451 | 0x540e | 0x5422 | 0x5409 | 0x540a | 0x540b | 0x540c | 0x540d => Arg::Int,
        // A pty's master (`script`, terminal emulators, expect): TIOCGPTN
        // (its number out), TIOCSPTLCK (lock in), TIOCGPTPEER (flags; the
        // slave's descriptor is the result)
        0x8004_5430 => Arg::OutStruct { size: 4 },
        0x4004_5431 => Arg::InStruct { size: 4 },
        0x5441 => Arg::Int,
        // FICLONE (cp's reflink try): the source descriptor, by value
        0x4004_9409 => Arg::Int,
        _ => return Err(AtHome("an ioctl request the codec does not know")),
    })
}

/// A guest address the guest cannot read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault;

/// The guest's memory, as the remote reaches it.
pub trait GuestMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault>;
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), Fault>;
}

fn read_vec(mem: &dyn GuestMemory, addr: u64, len: u64) -> Result<Vec<u8>, i64> {
    if len > MAX_BUF {
        return Err(E2BIG);
    }
    let mut b = vec![0u8; len_usize(len)];
    mem.read(addr, &mut b).map_err(|Fault| EFAULT)?;
    Ok(b)
}

/// A NUL-terminated string, its NUL included, read page by page so that
/// it never reads past the mapping it ends in.
fn read_cstr(mem: &dyn GuestMemory, addr: u64) -> Result<Vec<u8>, i64> {
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < PATH_MAX {
        let room = len_usize(4096 - at % 4096).min(PATH_MAX - out.len());
        let start = out.len();
        out.resize(start + room, 0);
        mem.read(at, &mut out[start..]).map_err(|Fault| EFAULT)?;
        if let Some(nul) = out[start..].iter().position(|&b| b == 0) {
            out.truncate(start + nul + 1);
            return Ok(out);
        }
        at = at.wrapping_add(room as u64);
    }
    Err(ENAMETOOLONG)
}

/// The guest's `struct iovec` array: (base, len) pairs.
fn read_iovecs(mem: &dyn GuestMemory, ptr: u64, count: u64) -> Result<Vec<(u64, u64)>, i64> {
    if count > IOV_MAX {
        return Err(EINVAL); // as the kernel says above UIO_MAXIOV
    }
    let raw = read_vec(mem, ptr, count * 16)?;
    Ok(raw
        .chunks_exact(16)
        .map(|c| {
            (
                u64::from_le_bytes(array_at(c, 0)),
                u64::from_le_bytes(array_at(c, 8)),
            )
        })
        .collect())
}

/// What the kernel may take from an iovec array, at most `MAX_BUF`.
fn iov_total(iov: &[(u64, u64)]) -> u64 {
    iov.iter()
        .fold(0u64, |n, v| n.saturating_add(v.1))
        .min(MAX_BUF)
}

/// The buffers of an iovec array cut at [`iov_total`] (a short write, as
/// the kernel may make).
fn iov_clipped(iov: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut left = iov_total(iov);
    let mut out = Vec::with_capacity(iov.len());
    for &(base, len) in iov {
        let n = len.min(left);
        out.push((base, n));
        left -= n;
    }
    out
}

fn write_iov(mem: &dyn GuestMemory, iov: &[(u64, u64)], mut bytes: &[u8]) -> Result<(), Fault> {
    for &(base, len) in iov {
        if bytes.is_empty() {
            break;
        }
        let n = len_usize(len).min(bytes.len());
        mem.write(base, &bytes[..n])?;
        bytes = &bytes[n..];
    }
    Ok(())
}

/// Where an answer may be written in the guest.
#[derive(Debug)]
enum GuestOut {
    /// `cap` bytes at `ptr`.
    Flat { arg: u8, ptr: u64, cap: u64 },
    /// The buffers of an iovec array.
    Iov { arg: u8, iov: Vec<(u64, u64)> },
    /// A recvmsg's header at `ptr`, with the rooms that travelled.
    Msg {
        arg: u8,
        ptr: u64,
        name: (u64, u64),
        control: (u64, u64),
        iov: Vec<(u64, u64)>,
    },
}

impl GuestOut {
    fn arg(&self) -> u8 {
        match *self {
            GuestOut::Flat { arg, .. } | GuestOut::Iov { arg, .. } | GuestOut::Msg { arg, .. } => {
                arg
            }
        }
    }
}

/// A call gathered on the guest: the in-buffers to send, and where its
/// answer may go.
#[derive(Debug)]
pub struct Gathered {
    pub inbufs: Vec<Buf>,
    outs: Vec<GuestOut>,
    /// In-buffers still in the guest ([`gather_deferring`]), read piece
    /// by piece ([`Gathered::next_piece`]).
    deferred: std::collections::VecDeque<Deferred>,
}

/// An in-buffer left in the guest: its first bytes (read already: a
/// sendmsg's header, name and control) and where the rest is, in order.
#[derive(Debug)]
struct Deferred {
    arg: u8,
    head: Vec<u8>,
    regions: std::collections::VecDeque<(u64, u64)>,
}

/// Reads a call's in-buffers from the guest. `Err(errno)`: the call fails
/// so without going home (a bad pointer, a buffer too large).
pub fn gather(m: &Marshal, args: &[u64; 6], mem: &dyn GuestMemory) -> Result<Gathered, i64> {
    gather_deferring(m, args, mem, u64::MAX)
}

/// [`gather`], but an in-buffer of more than `over` bytes of data (a
/// large write's) is left in the guest, to be read in pieces as it is
/// sent ([`Gathered::next_piece`]): the remote's serving loop never reads
/// megabytes in one go while other threads' calls wait. Every length is
/// checked here, as by [`gather`]; only the reading is deferred.
pub fn gather_deferring(
    m: &Marshal,
    args: &[u64; 6],
    mem: &dyn GuestMemory,
    over: u64,
) -> Result<Gathered, i64> {
    let mut g = Gathered {
        inbufs: Vec::new(),
        outs: Vec::new(),
        deferred: Default::default(),
    };
    let mut deferred_bytes: u64 = 0;
    // The data at `regions` after `head`: read now, or left for later.
    let mut data =
        |at: u8, head: Vec<u8>, regions: Vec<(u64, u64)>, g: &mut Gathered| -> Result<(), i64> {
            let n = regions.iter().fold(0u64, |n, r| n.saturating_add(r.1));
            if n > over {
                deferred_bytes = deferred_bytes.saturating_add(n + head.len() as u64);
                g.deferred.push_back(Deferred {
                    arg: at,
                    head,
                    regions: regions.into(),
                });
                return Ok(());
            }
            let mut bytes = head;
            for (base, len) in regions {
                if len > 0 {
                    bytes.extend(read_vec(mem, base, len)?);
                }
            }
            g.inbufs.push((at, bytes.into()));
            Ok(())
        };
    for (i, arg) in m.0.iter().enumerate() {
        let ptr = args[i];
        let at = u8::try_from(i).unwrap_or(u8::MAX); // at most six arguments
        if ptr == 0 || matches!(arg, Arg::Int | Arg::Fd) {
            continue; // NULL stays NULL
        }
        let send = |bytes: Vec<u8>, g: &mut Gathered| g.inbufs.push((at, bytes.into()));
        match *arg {
            Arg::Int | Arg::Fd => {}
            Arg::CStr => send(read_cstr(mem, ptr)?, &mut g),
            Arg::InBuf { len } => {
                let n = args[usize::from(len)];
                if n > MAX_BUF {
                    return Err(E2BIG);
                }
                data(at, Vec::new(), vec![(ptr, n)], &mut g)?;
            }
            Arg::Bytes { len } => {
                let n = args[usize::from(len)].min(MAX_BUF);
                data(at, Vec::new(), vec![(ptr, n)], &mut g)?;
            }
            Arg::InStruct { size } => send(read_vec(mem, ptr, u64::from(size))?, &mut g),
            // An out-struct travels in too: where the kernel writes less
            // than all of it (wait4 with WNOHANG returning 0, a short
            // siginfo), the guest keeps its own bytes, as natively.
            Arg::InOutStruct { size } | Arg::OutStruct { size } => {
                send(read_vec(mem, ptr, u64::from(size))?, &mut g);
                let cap = u64::from(size);
                g.outs.push(GuestOut::Flat { arg: at, ptr, cap });
            }
            Arg::OutBuf { len, whole } => {
                let cap = args[usize::from(len)];
                if whole && cap > MAX_BUF {
                    return Err(E2BIG);
                }
                let cap = cap.min(MAX_BUF);
                g.outs.push(GuestOut::Flat { arg: at, ptr, cap });
            }
            Arg::OutCounted { size, .. } => {
                let cap = u64::from(size);
                g.outs.push(GuestOut::Flat { arg: at, ptr, cap });
            }
            Arg::SockLen { .. } => {
                send(read_vec(mem, ptr, 4)?, &mut g);
                g.outs.push(GuestOut::Flat {
                    arg: at,
                    ptr,
                    cap: 4,
                });
            }
            Arg::SockBuf => {
                // Its capacity is the u32 behind the row's SockLen; copied
                // in too (getsockopt reads it). Without a length pointer
                // home passes an empty room, and the kernel says EFAULT.
                let len_ptr = m.sock_len_of(i).map_or(0, |j| args[j]);
                if len_ptr == 0 {
                    continue;
                }
                let cap = read_vec(mem, len_ptr, 4)?;
                let cap = u64::from(u32_at(&cap, 0).unwrap_or(0)).min(MAX_SOCKBUF);
                send(read_vec(mem, ptr, cap)?, &mut g);
                g.outs.push(GuestOut::Flat { arg: at, ptr, cap });
            }
            Arg::Iovec { count, write } => {
                let iov = read_iovecs(mem, ptr, args[usize::from(count)])?;
                if write {
                    send(iov_total(&iov).to_le_bytes().to_vec(), &mut g);
                    g.outs.push(GuestOut::Iov { arg: at, iov });
                } else {
                    data(at, Vec::new(), iov_clipped(&iov), &mut g)?;
                }
            }
            Arg::MsgHdr { recv } => {
                let mut f =
                    msghdr::parse(&read_vec(mem, ptr, msghdr::SIZE as u64)?).ok_or(EFAULT)?;
                let (name_n, control_n) = msghdr::travelling(&f);
                let name = if name_n > 0 {
                    read_vec(mem, f.name, name_n)?
                } else {
                    Vec::new()
                };
                let control = if control_n > 0 {
                    read_vec(mem, f.control, control_n)?
                } else {
                    Vec::new()
                };
                let iov = read_iovecs(mem, f.iov, f.iovlen)?;
                // The kernel sees the same lengths (capped to what
                // travels); the bytes travel only behind non-NULL pointers.
                f.namelen = f
                    .namelen
                    .min(u32::try_from(msghdr::MAX_NAME).unwrap_or(u32::MAX));
                f.controllen = f.controllen.min(msghdr::MAX_CONTROL);
                let mut blob = msghdr::build(&f).to_vec();
                blob.extend_from_slice(&name);
                blob.extend_from_slice(&control);
                if recv {
                    blob.extend_from_slice(&iov_total(&iov).to_le_bytes());
                    send(blob, &mut g);
                } else {
                    data(at, blob, iov_clipped(&iov), &mut g)?;
                }
                if recv {
                    g.outs.push(GuestOut::Msg {
                        arg: at,
                        ptr,
                        name: (f.name, name_n),
                        control: (f.control, control_n),
                        iov,
                    });
                }
            }
            Arg::SigsetPair => {
                let mut pair = read_vec(mem, ptr, 16)?;
                let (set, size) = (u64_at(&pair, 0).unwrap_or(0), u64_at(&pair, 8).unwrap_or(0));
                // The kernel takes only its own sigset size (EINVAL otherwise).
                if set != 0 && size == 8 {
                    pair.extend(read_vec(mem, set, 8)?);
                }
                send(pair, &mut g);
            }
            Arg::Array { .. }
            | Arg::FdSet
            | Arg::MsgBuf { .. }
            | Arg::ByCmd(_)
            | Arg::HomeIfSet { .. }
            | Arg::Opaque => {
                unreachable!("resolve leaves no shapes")
            }
        }
    }
    let total = g.inbufs.iter().map(|b| b.1.len() as u64).sum::<u64>() + deferred_bytes;
    if total > MAX_CALL {
        return Err(E2BIG);
    }
    Ok(g)
}

/// Why an answer from home cannot be written into the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScatterError {
    /// The guest's memory refused the write: the call answers EFAULT.
    Fault,
    /// The answer does not fit what was asked: home (or the wire) is
    /// wrong. Nothing more of it is written.
    Malformed(String),
}

impl From<Fault> for ScatterError {
    fn from(_: Fault) -> Self {
        ScatterError::Fault
    }
}

impl Gathered {
    /// Writes home's out-buffers into the guest, each bounded by the room
    /// the guest's own arguments gave.
    pub fn scatter(&self, mem: &dyn GuestMemory, outbufs: &[Buf]) -> Result<(), ScatterError> {
        let bad = |what: String| Err(ScatterError::Malformed(what));
        for (n, (i, bytes)) in outbufs.iter().enumerate() {
            if outbufs[..n].iter().any(|(j, _)| j == i) {
                return bad(format!("two answers for argument {i}"));
            }
            let Some(out) = self.outs.iter().find(|o| o.arg() == *i) else {
                return bad(format!("an answer for argument {i}, which has none"));
            };
            match out {
                GuestOut::Flat { ptr, cap, .. } => {
                    if bytes.len() as u64 > *cap {
                        return bad(format!("{} bytes for a room of {cap}", bytes.len()));
                    }
                    mem.write(*ptr, bytes)?;
                }
                GuestOut::Iov { iov, .. } => {
                    if bytes.len() as u64 > iov_total(iov) {
                        return bad(format!(
                            "{} bytes for buffers of {}",
                            bytes.len(),
                            iov_total(iov)
                        ));
                    }
                    write_iov(mem, iov, bytes)?;
                }
                GuestOut::Msg {
                    ptr,
                    name,
                    control,
                    iov,
                    ..
                } => {
                    let Some(after) = msghdr::parse(bytes) else {
                        return bad("a recvmsg answer shorter than its header".into());
                    };
                    let name_n = u64::from(after.namelen).min(name.1);
                    let control_n = after.controllen.min(control.1);
                    let rest = &bytes[msghdr::SIZE..];
                    let Some(data_at) = name_n
                        .checked_add(control_n)
                        .filter(|&n| n <= rest.len() as u64)
                    else {
                        return bad(
                            "a recvmsg answer shorter than its name and control bytes".into()
                        );
                    };
                    let data = &rest[len_usize(data_at)..];
                    if data.len() as u64 > iov_total(iov) {
                        return bad(format!(
                            "{} bytes for buffers of {}",
                            data.len(),
                            iov_total(iov)
                        ));
                    }
                    if name_n > 0 {
                        mem.write(name.0, &rest[..len_usize(name_n)])?;
                    }
                    if control_n > 0 {
                        mem.write(control.0, &rest[len_usize(name_n)..len_usize(data_at)])?;
                    }
                    write_iov(mem, iov, data)?;
                    // The lengths and flags the kernel set, in the guest's own header.
                    mem.write(ptr + msghdr::NAMELEN_AT, &after.namelen.to_le_bytes())?;
                    mem.write(ptr + msghdr::CONTROLLEN_AT, &after.controllen.to_le_bytes())?;
                    mem.write(ptr + msghdr::FLAGS_AT, &after.flags.to_le_bytes())?;
                }
            }
        }
        Ok(())
    }
}

impl Gathered {
    /// Whether in-buffers are left in the guest ([`gather_deferring`]).
    pub fn has_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }

    /// The next piece of the in-buffers left in the guest: at most `max`
    /// bytes (at least 1) of one argument, read now; `None` once all are
    /// read. Pieces of one argument come in order, and joined
    /// ([`crate::migrate::join_parts`]) they are its bytes as [`gather`]
    /// reads them. `Err(EFAULT)`: the guest's memory refused the read.
    pub fn next_piece(&mut self, mem: &dyn GuestMemory, max: usize) -> Result<Option<Buf>, i64> {
        let max = max.max(1);
        let Some(d) = self.deferred.front_mut() else {
            return Ok(None);
        };
        let arg = d.arg;
        let n = d.head.len().min(max);
        let mut out: Vec<u8> = d.head.drain(..n).collect();
        while out.len() < max {
            let Some(&(base, len)) = d.regions.front() else {
                break;
            };
            let n = len.min((max - out.len()) as u64);
            let at = out.len();
            out.resize(at + len_usize(n), 0);
            if n > 0 {
                mem.read(base, &mut out[at..]).map_err(|Fault| EFAULT)?;
            }
            match d.regions.front_mut() {
                Some(r) if n < len => *r = (base.wrapping_add(n), len - n),
                _ => {
                    d.regions.pop_front();
                }
            }
        }
        if d.head.is_empty() && d.regions.iter().all(|r| r.1 == 0) {
            self.deferred.pop_front();
        }
        Ok(Some((arg, out.into())))
    }

    /// Whether argument `arg`'s answer can be written piece by piece as
    /// it comes ([`Self::scatter_at`]): a flat buffer or an iovec array,
    /// not a recvmsg's (its header says where the rest goes).
    pub fn streams(&self, arg: u8) -> bool {
        self.outs
            .iter()
            .any(|o| o.arg() == arg && matches!(o, GuestOut::Flat { .. } | GuestOut::Iov { .. }))
    }

    /// Writes `bytes`, the part of argument `arg`'s answer that starts
    /// `at` bytes in, into the guest, bounded by the room its arguments
    /// gave (a streaming argument's, see [`Self::streams`]).
    pub fn scatter_at(
        &self,
        mem: &dyn GuestMemory,
        arg: u8,
        at: u64,
        bytes: &[u8],
    ) -> Result<(), ScatterError> {
        let bad = |what: String| Err(ScatterError::Malformed(what));
        let end = at.saturating_add(bytes.len() as u64);
        match self.outs.iter().find(|o| o.arg() == arg) {
            Some(GuestOut::Flat { ptr, cap, .. }) => {
                if end > *cap {
                    return bad(format!("{end} bytes for a room of {cap}"));
                }
                mem.write(ptr + at, bytes)?;
            }
            Some(GuestOut::Iov { iov, .. }) => {
                if end > iov_total(iov) {
                    return bad(format!("{end} bytes for buffers of {}", iov_total(iov)));
                }
                let mut skip = at;
                let mut bytes = bytes;
                for &(base, len) in iov {
                    if bytes.is_empty() {
                        break;
                    }
                    if skip >= len {
                        skip -= len;
                        continue;
                    }
                    let n = len_usize(len - skip).min(bytes.len());
                    mem.write(base + skip, &bytes[..n])?;
                    bytes = &bytes[n..];
                    skip = 0;
                }
            }
            _ => return bad(format!("a piece for argument {arg}, which takes none")),
        }
        Ok(())
    }
}

/// The deputy's room for one call inside the placeholder.
pub trait Scratch {
    type Error;
    /// Room for `len` bytes (every piece of one call); returns its start.
    /// Earlier contents need not survive.
    fn reserve(&mut self, len: u64) -> Result<u64, Self::Error>;
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Self::Error>;
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Self::Error>;
}

/// Why a call from the wire cannot be placed.
#[derive(Debug)]
pub enum PlaceError<E> {
    /// The request is malformed: the call answers `errno` without running.
    Bad { errno: i64, why: String },
    /// The scratch failed (the placeholder's memory).
    Scratch(E),
}

/// How many bytes of an out-buffer are valid after the call.
#[derive(Debug, Clone, Copy)]
enum Count {
    Whole,
    /// min(return value, room).
    Ret,
    /// header + return value x elem.
    Counted {
        elem: u16,
        header: u16,
    },
    /// The u32 that argument `len` points to (a socklen).
    SockLen {
        len: u8,
    },
}

#[derive(Debug)]
enum HomeOut {
    Room {
        arg: u8,
        at: u64,
        cap: u64,
        count: Count,
    },
    Msg {
        arg: u8,
        hdr: u64,
        name: (u64, u64),
        control: (u64, u64),
        data: (u64, u64),
    },
}

/// A call placed in scratch: the arguments to inject, and what to collect.
#[derive(Debug)]
pub struct Placed {
    pub args: [u64; 6],
    outs: Vec<HomeOut>,
}

/// Where the pieces of a call go: a first pass counts (and checks
/// everything), the second writes into the room the first one measured.
trait Sink {
    type E;
    fn put(&mut self, data: &[u8]) -> Result<u64, Self::E>;
    fn room(&mut self, len: u64) -> Result<u64, Self::E>;
}

fn aligned(len: u64) -> u64 {
    len.max(1).div_ceil(ALIGN) * ALIGN
}

struct Measure(u64);

impl Sink for Measure {
    type E = std::convert::Infallible;
    fn put(&mut self, data: &[u8]) -> Result<u64, Self::E> {
        self.room(data.len() as u64)
    }
    fn room(&mut self, len: u64) -> Result<u64, Self::E> {
        let at = self.0;
        self.0 = self.0.saturating_add(aligned(len));
        Ok(at)
    }
}

struct Writer<'s, S> {
    scratch: &'s mut S,
    next: u64,
}

impl<S: Scratch> Sink for Writer<'_, S> {
    type E = S::Error;
    fn put(&mut self, data: &[u8]) -> Result<u64, S::Error> {
        let at = self.room(data.len() as u64)?;
        if !data.is_empty() {
            self.scratch.write(at, data)?;
        }
        Ok(at)
    }
    fn room(&mut self, len: u64) -> Result<u64, S::Error> {
        let at = self.next;
        self.next += aligned(len);
        Ok(at)
    }
}

fn bad<E>(errno: i64, why: impl Into<String>) -> PlaceError<E> {
    PlaceError::Bad {
        errno,
        why: why.into(),
    }
}

fn sink_err<E>(e: E) -> PlaceError<E> {
    PlaceError::Scratch(e)
}

/// Puts a call's in-buffers into scratch and rewrites its pointer
/// arguments to them. Every length from the wire is checked against what
/// the arguments say before anything is placed.
pub fn place<S: Scratch>(
    m: &Marshal,
    args: &[u64; 6],
    inbufs: &[Buf],
    scratch: &mut S,
) -> Result<Placed, PlaceError<S::Error>> {
    let mut by_arg: [Option<&[u8]>; 6] = [None; 6];
    for (i, bytes) in inbufs {
        let slot = by_arg
            .get_mut(usize::from(*i))
            .filter(|_| usize::from(*i) < m.0.len())
            .ok_or_else(|| {
                bad(
                    EFAULT,
                    format!("a buffer for argument {i}, which the call has not"),
                )
            })?;
        if slot.replace(bytes).is_some() {
            return Err(bad(EFAULT, format!("two buffers for argument {i}")));
        }
    }
    let mut counter = Measure(0);
    match lay_out(m, args, &by_arg, &mut counter) {
        Ok(_) => {}
        Err(PlaceError::Bad { errno, why }) => return Err(PlaceError::Bad { errno, why }),
        Err(PlaceError::Scratch(never)) => match never {},
    }
    let total = counter.0;
    if total > 2 * MAX_CALL {
        return Err(bad(E2BIG, format!("{total} bytes of buffers")));
    }
    let base = scratch.reserve(total).map_err(sink_err)?;
    let mut writer = Writer {
        scratch,
        next: base,
    };
    lay_out(m, args, &by_arg, &mut writer)
}

fn lay_out<K: Sink>(
    m: &Marshal,
    args: &[u64; 6],
    by_arg: &[Option<&[u8]>; 6],
    sink: &mut K,
) -> Result<Placed, PlaceError<K::E>> {
    let mut real = *args;
    let mut outs = Vec::new();
    let need =
        |i: usize| by_arg[i].ok_or_else(|| bad(EFAULT, format!("no buffer for argument {i}")));
    let exact = |i: usize, n: u64| -> Result<&[u8], PlaceError<K::E>> {
        let b = need(i)?;
        if b.len() as u64 != n {
            return Err(bad(
                EFAULT,
                format!("{} bytes for argument {i} of {n}", b.len()),
            ));
        }
        Ok(b)
    };
    for (i, arg) in m.0.iter().enumerate() {
        let at = u8::try_from(i).unwrap_or(u8::MAX); // at most six arguments
        let takes_buf = !matches!(
            arg,
            Arg::Int | Arg::Fd | Arg::OutBuf { .. } | Arg::OutCounted { .. }
        );
        if (args[i] == 0 || !takes_buf) && by_arg[i].is_some() {
            return Err(bad(
                EFAULT,
                format!("a buffer for argument {i}, which takes none"),
            ));
        }
        if args[i] == 0 || matches!(arg, Arg::Int | Arg::Fd) {
            continue; // NULL stays NULL
        }
        match *arg {
            Arg::Int | Arg::Fd => {}
            Arg::CStr => {
                let s = need(i)?;
                if s.len() > PATH_MAX || s.last() != Some(&0) {
                    return Err(bad(
                        EFAULT,
                        format!("argument {i} is not a string of at most {PATH_MAX} bytes"),
                    ));
                }
                real[i] = sink.put(s).map_err(sink_err)?;
            }
            Arg::InBuf { len } => {
                let b = exact(i, args[usize::from(len)])?;
                real[i] = sink.put(b).map_err(sink_err)?;
            }
            Arg::Bytes { len } => {
                let b = need(i)?;
                let want = args[usize::from(len)];
                if b.len() as u64 != want.min(MAX_BUF) {
                    return Err(bad(
                        EFAULT,
                        format!("{} bytes for argument {i} of {want}", b.len()),
                    ));
                }
                real[i] = sink.put(b).map_err(sink_err)?;
                real[usize::from(len)] = b.len() as u64;
            }
            Arg::InStruct { size } => {
                real[i] = sink.put(exact(i, u64::from(size))?).map_err(sink_err)?;
            }
            Arg::InOutStruct { size } | Arg::OutStruct { size } => {
                real[i] = sink.put(exact(i, u64::from(size))?).map_err(sink_err)?;
                outs.push(HomeOut::Room {
                    arg: at,
                    at: real[i],
                    cap: u64::from(size),
                    count: Count::Whole,
                });
            }
            Arg::OutBuf { len, whole } => {
                let cap = args[usize::from(len)];
                if whole && cap > MAX_BUF {
                    return Err(bad(E2BIG, format!("a buffer of {cap} bytes")));
                }
                let cap = cap.min(MAX_BUF);
                real[i] = sink.room(cap).map_err(sink_err)?;
                real[usize::from(len)] = cap;
                let count = if whole { Count::Whole } else { Count::Ret };
                outs.push(HomeOut::Room {
                    arg: at,
                    at: real[i],
                    cap,
                    count,
                });
            }
            Arg::OutCounted { size, elem, header } => {
                real[i] = sink.room(u64::from(size)).map_err(sink_err)?;
                outs.push(HomeOut::Room {
                    arg: at,
                    at: real[i],
                    cap: u64::from(size),
                    count: Count::Counted { elem, header },
                });
            }
            Arg::SockLen { buf } => {
                let v = u32_at(exact(i, 4)?, 0).unwrap_or(0);
                // The kernel writes up to this many bytes into the buffer:
                // never more than the room that travelled.
                let room = by_arg
                    .get(usize::from(buf))
                    .copied()
                    .flatten()
                    .map_or(0, |b| b.len() as u64);
                let v = u32::try_from(u64::from(v).min(room)).unwrap_or(0);
                real[i] = sink.put(&v.to_le_bytes()).map_err(sink_err)?;
                outs.push(HomeOut::Room {
                    arg: at,
                    at: real[i],
                    cap: 4,
                    count: Count::Whole,
                });
            }
            Arg::SockBuf => {
                let len = m.sock_len_of(i);
                let len_null = len.is_none_or(|j| args[j] == 0);
                match by_arg[i] {
                    // No length to read: the kernel fails on it, as natively.
                    None if len_null => real[i] = sink.room(0).map_err(sink_err)?,
                    None => return Err(bad(EFAULT, format!("no buffer for argument {i}"))),
                    Some(b) => {
                        if b.len() as u64 > MAX_SOCKBUF {
                            return Err(bad(
                                EFAULT,
                                format!("a socket buffer of {} bytes", b.len()),
                            ));
                        }
                        real[i] = sink.put(b).map_err(sink_err)?;
                        let count = match len {
                            Some(j) => Count::SockLen {
                                len: u8::try_from(j).unwrap_or(u8::MAX),
                            },
                            None => Count::Whole,
                        };
                        outs.push(HomeOut::Room {
                            arg: at,
                            at: real[i],
                            cap: b.len() as u64,
                            count,
                        });
                    }
                }
            }
            Arg::Iovec { count, write } => {
                let (iov, base, total) = one_iovec(sink, need(i)?, write)?;
                real[i] = iov;
                real[usize::from(count)] = 1;
                if write {
                    outs.push(HomeOut::Room {
                        arg: at,
                        at: base,
                        cap: total,
                        count: Count::Ret,
                    });
                }
            }
            Arg::MsgHdr { recv } => {
                let blob = need(i)?;
                let Some(mut f) = msghdr::parse(blob) else {
                    return Err(bad(EFAULT, "a msghdr shorter than its header"));
                };
                if u64::from(f.namelen) > msghdr::MAX_NAME || f.controllen > msghdr::MAX_CONTROL {
                    return Err(bad(
                        EFAULT,
                        format!(
                            "a msghdr with {} name and {} control bytes",
                            f.namelen, f.controllen
                        ),
                    ));
                }
                let (name_n, control_n) = msghdr::travelling(&f);
                let rest = &blob[msghdr::SIZE..];
                let data_at = len_usize(name_n + control_n); // both bounded above
                let Some(payload) = rest.get(data_at..) else {
                    return Err(bad(
                        EFAULT,
                        "a msghdr shorter than its name and control bytes",
                    ));
                };
                let (name, control) = (
                    &rest[..len_usize(name_n)],
                    &rest[len_usize(name_n)..data_at],
                );
                let name_at = if f.name != 0 {
                    sink.put(name).map_err(sink_err)?
                } else {
                    0
                };
                let control_at = if f.control != 0 {
                    sink.put(control).map_err(sink_err)?
                } else {
                    0
                };
                let (iov, base, total) = one_iovec(sink, payload, recv)?;
                f.iov = iov;
                f.iovlen = 1;
                f.name = name_at;
                f.control = control_at;
                real[i] = sink.put(&msghdr::build(&f)).map_err(sink_err)?;
                if recv {
                    outs.push(HomeOut::Msg {
                        arg: at,
                        hdr: real[i],
                        name: (name_at, name_n),
                        control: (control_at, control_n),
                        data: (base, total),
                    });
                }
            }
            Arg::SigsetPair => {
                let b = need(i)?;
                let (set, size) = match (b.len(), u64_at(b, 0), u64_at(b, 8)) {
                    (16 | 24, Some(set), Some(size)) => (set, size),
                    _ => return Err(bad(EFAULT, "a sigset pair of the wrong size")),
                };
                let set_at = match (set, b.len()) {
                    (0, _) => 0,
                    (_, 24) => sink.put(&b[16..]).map_err(sink_err)?,
                    // Not the kernel's size: it fails with EINVAL before reading.
                    _ if size != 8 => sink.room(8).map_err(sink_err)?,
                    _ => return Err(bad(EFAULT, "a sigset pair without its set")),
                };
                let mut pair = [0u8; 16];
                pair[..8].copy_from_slice(&set_at.to_le_bytes());
                pair[8..].copy_from_slice(&size.to_le_bytes());
                real[i] = sink.put(&pair).map_err(sink_err)?;
            }
            Arg::Array { .. }
            | Arg::FdSet
            | Arg::MsgBuf { .. }
            | Arg::ByCmd(_)
            | Arg::HomeIfSet { .. }
            | Arg::Opaque => {
                unreachable!("resolve leaves no shapes")
            }
        }
    }
    Ok(Placed { args: real, outs })
}

/// One iovec in the room: over the bytes of a gathering call (`blob` is
/// the data), or over room for what a scattering one may receive (`blob`
/// is its capacity as 8 bytes). Returns (the iovec, its buffer, its length).
fn one_iovec<K: Sink>(
    sink: &mut K,
    blob: &[u8],
    kernel_writes: bool,
) -> Result<(u64, u64, u64), PlaceError<K::E>> {
    let (base, total) = if kernel_writes {
        let Some(total) = u64_at(blob, 0).filter(|_| blob.len() == 8) else {
            return Err(bad(EFAULT, "a receiving call without its capacity"));
        };
        let total = total.min(MAX_BUF);
        (sink.room(total).map_err(sink_err)?, total)
    } else {
        if blob.len() as u64 > MAX_BUF {
            return Err(bad(E2BIG, format!("{} bytes to write", blob.len())));
        }
        (sink.put(blob).map_err(sink_err)?, blob.len() as u64)
    };
    let mut iov = [0u8; 16];
    iov[..8].copy_from_slice(&base.to_le_bytes());
    iov[8..].copy_from_slice(&total.to_le_bytes());
    Ok((sink.put(&iov).map_err(sink_err)?, base, total))
}

impl Placed {
    /// The out-buffers of the call that returned `ret`, read from scratch
    /// (nothing when it failed).
    pub fn collect<S: Scratch>(&self, ret: i64, scratch: &mut S) -> Result<Vec<Buf>, S::Error> {
        let Ok(ret) = u64::try_from(ret) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let read = |at: u64, n: u64, scratch: &mut S| -> Result<Vec<u8>, S::Error> {
            let mut b = vec![0u8; len_usize(n)];
            if n > 0 {
                scratch.read(at, &mut b)?;
            }
            Ok(b)
        };
        for o in &self.outs {
            match *o {
                HomeOut::Room {
                    arg,
                    at,
                    cap,
                    count,
                } => {
                    let n = match count {
                        Count::Whole => cap,
                        Count::Ret => ret.min(cap),
                        Count::Counted { elem, header } => ret
                            .saturating_mul(u64::from(elem))
                            .saturating_add(u64::from(header))
                            .min(cap),
                        Count::SockLen { len } => {
                            let mut v = [0u8; 4];
                            let len_at = self.args[usize::from(len)];
                            if len_at != 0 {
                                scratch.read(len_at, &mut v)?;
                            }
                            u64::from(u32::from_le_bytes(v)).min(cap)
                        }
                    };
                    out.push((arg, read(at, n, scratch)?.into()));
                }
                HomeOut::Msg {
                    arg,
                    hdr,
                    name,
                    control,
                    data,
                } => {
                    let mut blob = read(hdr, msghdr::SIZE as u64, scratch)?;
                    let after = msghdr::parse(&blob).unwrap_or_default();
                    for (at, n) in [
                        (name.0, u64::from(after.namelen).min(name.1)),
                        (control.0, after.controllen.min(control.1)),
                        (data.0, ret.min(data.1)),
                    ] {
                        if at != 0 {
                            blob.extend(read(at, n, scratch)?);
                        }
                    }
                    out.push((arg, blob.into()));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
