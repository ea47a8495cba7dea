//! Descriptors, capture and restore side by side: regular files and
//! directories by path, flags and offset, pipes with their unread bytes,
//! a few character devices by path; anything else keeps a process home
//! (or blocks a stand-alone restore, said before any capture:
//! [`restore_blockers`]).

use mosaic_proto::abi;
use mosaic_proto::image::{FdInfo, FdKind, ImageMeta};
use zerocopy::IntoBytes;

use crate::procfs;
use crate::ptrace::Tracee;
use crate::{CkptError, RestoreOptions, StdioMode};

/// Character devices a stand-alone restore may reopen by path.
const REOPENABLE_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// Descriptors of `pid` that a stand-alone restore cannot reopen (sockets,
/// terminals, pipes shared with another process, ...): (fd, what it is).
/// Read from `/proc` without stopping the process, so that `mosaic
/// checkpoint --kill` can refuse before it touches anything.
pub fn restore_blockers(pid: i32) -> Result<Vec<(i32, String)>, CkptError> {
    Ok(classify(pid)?
        .into_iter()
        .filter_map(|f| match f.kind {
            FdKind::Other { what } => Some((f.fd, what)),
            _ => None,
        })
        .collect())
}

pub(crate) fn capture(t: &Tracee) -> Result<Vec<FdInfo>, CkptError> {
    let pid = t.pid.as_raw();
    let mut out = classify(pid)?;
    // The buffered bytes of a self-pipe, read once the process is stopped.
    let mut drained = std::collections::HashSet::new();
    for f in &mut out {
        if let FdKind::Pipe {
            id,
            write: false,
            contents,
            ..
        } = &mut f.kind
            && drained.insert(*id)
        {
            *contents = pipe_contents(pid, f.fd)?;
        }
    }
    Ok(out)
}

/// What each descriptor of `pid` is, from `/proc` (pipe contents empty).
fn classify(pid: i32) -> Result<Vec<FdInfo>, CkptError> {
    use std::os::unix::fs::FileTypeExt;
    let mut out: Vec<FdInfo> = Vec::new();
    let mut pipe_ends: std::collections::HashMap<u64, (bool, bool)> = Default::default();
    for (fd, target) in procfs::fds(pid)? {
        let (pos, flags) = procfs::fdinfo(pid, fd)?;
        if let Some(of) = out
            .iter()
            .map(|f| f.fd)
            .find(|&other| same_file(pid, other, fd))
        {
            out.push(FdInfo {
                fd,
                kind: FdKind::Dup {
                    of,
                    cloexec: flags & libc::O_CLOEXEC != 0,
                },
            });
            continue;
        }
        // Regular files and directories (gzip holds its directory open)
        // are reopened by path, at their offset.
        let is_file = target.starts_with('/')
            && !target.ends_with(" (deleted)")
            && std::fs::metadata(&target)
                .is_ok_and(|m| m.file_type().is_file() || m.file_type().is_dir());
        let kind = if is_file || REOPENABLE_DEVICES.contains(&target.as_str()) {
            FdKind::Path {
                path: target,
                flags,
                pos,
            }
        } else if let Some(id) = target
            .strip_prefix("pipe:[")
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|r| r.parse().ok())
        {
            let write = flags & libc::O_ACCMODE == libc::O_WRONLY;
            let ends = pipe_ends.entry(id).or_default();
            if write {
                ends.1 = true
            } else {
                ends.0 = true
            }
            FdKind::Pipe {
                id,
                write,
                flags,
                contents: Vec::new(),
            }
        } else {
            let what = match std::fs::metadata(&target) {
                Ok(m) if m.file_type().is_char_device() => {
                    format!("a terminal or device ({target})")
                }
                _ if target.starts_with("socket:") => format!("a socket ({target})"),
                _ => target,
            };
            FdKind::Other { what }
        };
        out.push(FdInfo { fd, kind });
    }
    // A pipe is carried only when this process holds both of its ends.
    for f in &mut out {
        if let FdKind::Pipe { id, write, .. } = &mut f.kind
            && pipe_ends.get(id) != Some(&(true, true))
        {
            let end = if *write { "write" } else { "read" };
            f.kind = FdKind::Other {
                what: format!("the {end} end of a pipe shared with another process (pipe:[{id}])"),
            };
        }
    }
    Ok(out)
}

/// Whether two descriptors of `pid` are the same open file description.
fn same_file(pid: i32, a: i32, b: i32) -> bool {
    const KCMP_FILE: i32 = 0;
    // SAFETY: kcmp takes integers only.
    unsafe { libc::syscall(libc::SYS_kcmp, pid, pid, KCMP_FILE, a, b) == 0 }
}

/// What is buffered in the pipe read by `pid`'s descriptor `fd`. The bytes
/// are read and written straight back, so the process (which is stopped)
/// finds its pipe as it was if it goes on running.
fn pipe_contents(pid: i32, fd: i32) -> Result<Vec<u8>, CkptError> {
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;
    let dup = |target: i32| -> Result<std::fs::File, CkptError> {
        // SAFETY: pidfd_open and pidfd_getfd take integers and return new
        // descriptors we own.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if pidfd < 0 {
            return Err(CkptError::Ptrace("pidfd_open", nix::errno::Errno::last()));
        }
        // SAFETY: as above.
        let got =
            unsafe { libc::syscall(libc::SYS_pidfd_getfd, abi::int_result(pidfd), target, 0) };
        let err = nix::errno::Errno::last();
        // SAFETY: pidfd is ours and no longer needed.
        unsafe { libc::close(abi::int_result(pidfd)) };
        if got < 0 {
            return Err(CkptError::Ptrace("pidfd_getfd", err));
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        Ok(unsafe { std::fs::File::from_raw_fd(abi::int_result(got)) })
    };
    let mut read_end = dup(fd)?;
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the location we pass.
    if unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&read_end),
            libc::FIONREAD,
            &mut n,
        )
    } < 0
    {
        return Err(CkptError::Ptrace(
            "ioctl(FIONREAD)",
            nix::errno::Errno::last(),
        ));
    }
    let mut contents = vec![0u8; usize::try_from(n).unwrap_or(0)];
    if n > 0 {
        read_end
            .read_exact(&mut contents)
            .map_err(|e| CkptError::Io(format!("reading pipe fd {fd} of {pid}"), e))?;
        // Put it back through the same pipe.
        let target = format!("/proc/{pid}/fd/{fd}");
        let mut write_end = std::fs::OpenOptions::new()
            .write(true)
            .open(&target)
            .map_err(|e| CkptError::Io(target.clone(), e))?;
        write_end
            .write_all(&contents)
            .map_err(|e| CkptError::Io(target, e))?;
    }
    Ok(contents)
}

/// Reopens the image's descriptors at their numbers. Each source (a file,
/// a pipe end) is first opened and moved above every target number, then
/// duplicated onto its targets, so that no opening can take a number that a
/// later target needs.
pub(crate) fn restore(
    t: &mut Tracee,
    meta: &ImageMeta,
    opts: &RestoreOptions,
    data: u64,
) -> Result<(), CkptError> {
    if opts.keep_files {
        return Ok(());
    }
    if opts.no_files {
        t.syscall_ok(
            "close_range",
            libc::SYS_close_range,
            [0, u64::from(u32::MAX), 0, 0, 0, 0],
        )?;
        return Ok(());
    }
    let keep_stdio = opts.stdio == StdioMode::Inherit;
    let wanted: Vec<&mosaic_proto::image::FdInfo> = meta
        .fds
        .iter()
        .filter(|f| !(keep_stdio && f.fd <= 2))
        .collect();
    let first_closed = if keep_stdio { 3 } else { 0 };
    t.syscall_ok(
        "close_range",
        libc::SYS_close_range,
        [first_closed, u64::from(u32::MAX), 0, 0, 0, 0],
    )?;
    let base = wanted
        .iter()
        .map(|f| abi::reg(f.fd) + 1)
        .max()
        .unwrap_or(3)
        .max(3);
    let lift = |t: &mut Tracee, fd: u64| -> Result<u64, CkptError> {
        let high = t.syscall_ok(
            "fcntl(F_DUPFD_CLOEXEC)",
            libc::SYS_fcntl,
            [fd, libc::F_DUPFD_CLOEXEC as u64, base, 0, 0, 0],
        )?;
        t.syscall_ok("close", libc::SYS_close, [fd, 0, 0, 0, 0, 0])?;
        Ok(high)
    };
    let mut sources: std::collections::HashMap<i32, u64> = Default::default();
    let mut pipes: std::collections::HashMap<u64, (u64, u64)> = Default::default();
    for f in &wanted {
        match &f.kind {
            FdKind::Path { path, flags, pos } => {
                crate::restore::put_path(t, data, path)?;
                let flags = abi::reg(*flags & !(libc::O_CREAT | libc::O_TRUNC | libc::O_EXCL));
                let fd = t.syscall_ok(
                    "open of a file",
                    libc::SYS_openat,
                    [abi::reg(libc::AT_FDCWD), data, flags, 0, 0, 0],
                )?;
                let high = lift(t, fd)?;
                let r = t.syscall(
                    libc::SYS_lseek,
                    [high, *pos, libc::SEEK_SET as u64, 0, 0, 0],
                )?;
                if r < 0 && r != -i64::from(libc::ESPIPE) {
                    return Err(CkptError::Injected {
                        what: "lseek",
                        errno: nix::errno::Errno::from_raw(abi::int_result(-r)),
                    });
                }
                sources.insert(f.fd, high);
            }
            FdKind::Pipe { id, .. } if !pipes.contains_key(id) => {
                t.syscall_ok("pipe2", libc::SYS_pipe2, [data, 0, 0, 0, 0, 0])?;
                // int pipefd[2]
                let mut ends = [0u32; 2];
                t.read_mem(data, ends.as_mut_bytes())?;
                let (r, w) = (lift(t, u64::from(ends[0]))?, lift(t, u64::from(ends[1]))?);
                pipes.insert(*id, (r, w));
            }
            _ => {}
        }
    }
    // Refill the pipes and set their status flags (O_NONBLOCK, ...).
    for f in &wanted {
        if let FdKind::Pipe {
            id,
            write,
            flags,
            contents,
        } = &f.kind
        {
            let (r, w) = pipes[id];
            let end = if *write { w } else { r };
            let status = abi::reg(*flags & (libc::O_NONBLOCK | libc::O_DIRECT));
            t.syscall_ok(
                "fcntl(F_SETFL)",
                libc::SYS_fcntl,
                [end, libc::F_SETFL as u64, status, 0, 0, 0],
            )?;
            for chunk in contents.chunks(2048) {
                t.write_mem(data, chunk)?;
                let n = t.syscall_ok(
                    "write to a pipe",
                    libc::SYS_write,
                    [w, data, chunk.len() as u64, 0, 0, 0],
                )?;
                if n != chunk.len() as u64 {
                    return Err(CkptError::Restore("could not refill a pipe".into()));
                }
            }
        }
    }
    for f in &wanted {
        let (source, cloexec) = match &f.kind {
            FdKind::Path { flags, .. } => (sources[&f.fd], flags & libc::O_CLOEXEC != 0),
            FdKind::Pipe {
                id, write, flags, ..
            } => {
                let (r, w) = pipes[id];
                (if *write { w } else { r }, flags & libc::O_CLOEXEC != 0)
            }
            FdKind::Dup { of, cloexec } => (abi::reg(*of), *cloexec),
            FdKind::Other { .. } => continue, // preflight refused these
        };
        let flag = if cloexec { libc::O_CLOEXEC as u64 } else { 0 };
        t.syscall_ok(
            "dup3",
            libc::SYS_dup3,
            [source, abi::reg(f.fd), flag, 0, 0, 0],
        )?;
    }
    t.syscall_ok(
        "close_range",
        libc::SYS_close_range,
        [base, u64::from(u32::MAX), 0, 0, 0, 0],
    )?;
    Ok(())
}
