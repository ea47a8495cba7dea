//! The process's own view of itself. A guest's `open` of a `/proc` file
//! that describes its memory or CPU (`/proc/self/status`, `statm`, `stat`,
//! `maps`, `smaps`, `smaps_rollup`, the same under its home PID or
//! `thread-self`) would be made at home, where it reads the placeholder:
//! no heap, no libraries, a VmRSS near zero. Such an open is answered here
//! with the guest's own file, merged with what home knows (PID, parent,
//! credentials, process group, terminal, start time), in a memfd made at
//! home so that the descriptor is a home descriptor like any other.
//!
//! What differs from natively: the descriptor is a memfd (`fstat` says a
//! regular file with a size, `/proc/self/fd/N` names `memfd:`), its
//! contents are those of the moment it was opened (natively each read
//! reads afresh), and file mappings made while away are anonymous in
//! `maps` (they were filled from home).

use mosaic_ckpt::ptrace::Memory;
use mosaic_proto::abi;
use mosaic_proto::migrate::Link;
use mosaic_proto::syscalls::codec;

use crate::RemoteError;
use crate::calls::at_home;
use crate::clocks::cpu_now;
use crate::session::{Guest, Notif};

/// Files this view serves.
const FILES: [&str; 6] = ["status", "statm", "stat", "maps", "smaps", "smaps_rollup"];

/// Which of [`FILES`] `path` names for the process whose home PID is
/// `home_pid`, if any: `/proc/self/F`, `/proc/thread-self/F`,
/// `/proc/HOME_PID/F`, `/proc/HOME_PID/task/HOME_PID/F`.
pub fn names(path: &[u8], home_pid: i32) -> Option<&'static str> {
    let path = std::str::from_utf8(path).ok()?;
    let rest = path.strip_prefix("/proc/")?;
    let pid = home_pid.to_string();
    let file = rest
        .strip_prefix("self/")
        .or_else(|| rest.strip_prefix("thread-self/"))
        .or_else(|| {
            let after = rest.strip_prefix(pid.as_str())?.strip_prefix('/')?;
            Some(
                after
                    .strip_prefix("task/")
                    .and_then(|t| t.strip_prefix(pid.as_str())?.strip_prefix('/'))
                    .unwrap_or(after),
            )
        })?;
    FILES.iter().copied().find(|f| *f == file)
}

/// Lines of `/proc/PID/status` that are the system context's, kept at
/// home: identity, credentials, descriptors, capabilities, the queue of
/// signals of its user. The rest (state, memory, signal masks, CPUs,
/// context switches) are the guest's.
const HOME_STATUS: [&str; 22] = [
    "Umask",
    "Tgid",
    "Ngid",
    "Pid",
    "PPid",
    "Uid",
    "Gid",
    "FDSize",
    "Groups",
    "NStgid",
    "NSpid",
    "NSpgid",
    "NSsid",
    "Kthread",
    "SigQ",
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "NoNewPrivs",
    "Seccomp",
];

/// `status`: the guest's, with [`HOME_STATUS`] lines (and the seccomp
/// and speculation lines: its filter is mosaic's, not its own) from home,
/// `TracerPid` 0 (the placeholder is traced by mosaic; a traced process
/// does not move) and `State` running, as a process reading its own
/// status is (the guest sleeps while we answer its call).
pub fn status(guest: &str, home: &str) -> String {
    let key = |l: &str| l.split(':').next().unwrap_or("").to_string();
    let from_home = |k: &str| {
        HOME_STATUS.contains(&k) || k.starts_with("Seccomp") || k.starts_with("Speculation")
    };
    let home_lines: std::collections::HashMap<String, &str> =
        home.lines().map(|l| (key(l), l)).collect();
    let mut out = String::with_capacity(guest.len());
    for line in guest.lines() {
        let k = key(line);
        let line = if k == "TracerPid" {
            "TracerPid:\t0"
        } else if k == "State" {
            "State:\tR (running)"
        } else if from_home(&k) {
            match home_lines.get(&k) {
                Some(h) => h,
                None => continue,
            }
        } else {
            line
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `stat` fields (numbered as in proc(5)) that are home's: pid, ppid,
/// process group, session, terminal, its foreground group, children's
/// times, start time, exit signal.
const HOME_STAT: [usize; 10] = [1, 4, 5, 6, 7, 8, 16, 17, 22, 38];

/// `stat`: the guest's, with [`HOME_STAT`] fields from home, the state
/// (3) running (see [`status`]) and the user and system time (14, 15) of
/// all its CPU time (`utime_ticks`, `stime_ticks`). `None` if either
/// cannot be parsed.
pub fn stat(guest: &str, home: &str, utime_ticks: u64, stime_ticks: u64) -> Option<String> {
    // Field 2 (comm) is in parentheses and may hold spaces: split after it.
    let split = |s: &str| -> Option<(String, Vec<String>)> {
        let close = s.rfind(')')?;
        let head = s[..=close].to_string(); // "pid (comm)"
        let rest = s[close + 1..]
            .split_whitespace()
            .map(String::from)
            .collect();
        Some((head, rest))
    };
    let (ghead, mut gf) = split(guest.trim_end())?;
    let (hhead, hf) = split(home.trim_end())?;
    // Fields from 3 on: index = number - 3.
    for &n in HOME_STAT.iter().filter(|&&n| n >= 3) {
        if let (Some(g), Some(h)) = (gf.get_mut(n - 3), hf.get(n - 3)) {
            g.clone_from(h);
        }
    }
    if gf.len() > 12 {
        gf[0] = "R".into();
        gf[11] = utime_ticks.to_string();
        gf[12] = stime_ticks.to_string();
    }
    // Field 1 (pid) from home, comm from the guest.
    let pid = hhead.split(' ').next()?;
    let comm = &ghead[ghead.find(' ')?..];
    Some(format!("{pid}{comm} {}\n", gf.join(" ")))
}

/// `maps`, `smaps`: the guest's, with files it maps through `/mfs/<home>`
/// named by their path at home.
pub fn maps(guest: &str, files_from: Option<&std::path::Path>) -> String {
    let Some(prefix) = files_from.and_then(|p| p.to_str()) else {
        return guest.to_string();
    };
    let prefix = prefix.trim_end_matches('/');
    let mut out = String::with_capacity(guest.len());
    for line in guest.lines() {
        match line.find(&format!(" {prefix}/")) {
            Some(at) => {
                out.push_str(&line[..=at]);
                out.push_str(&line[at + 1 + prefix.len()..]);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// A guest's `open`/`openat` of one of its own `/proc` files that
/// describe memory and CPU ([`procview`]): answered with the guest's file
/// merged with home's, in a memfd made at home. `None`: not such an open
/// (it is forwarded as any other).
pub(crate) fn open_own_proc_file(
    g: &Guest,
    link: &mut dyn Link,
    n: &Notif,
) -> Result<Option<i64>, RemoteError> {
    let args = n.data.args;
    // An absolute path: openat's directory does not matter.
    let (path_at, flags) = match i64::from(n.data.nr) {
        libc::SYS_open => (args[0], args[1]),
        libc::SYS_openat => (args[1], args[2]),
        _ => return Ok(None),
    };
    if flags & libc::O_ACCMODE as u64 != libc::O_RDONLY as u64 || path_at == 0 {
        return Ok(None);
    }
    let mut path = [0u8; 40];
    // Within its page: a path near the end of a mapping is not ours.
    let room = (4096 - (path_at % 4096) as usize).min(path.len());
    if g.mem.read_mem(path_at, &mut path[..room]).is_err() {
        return Ok(None);
    }
    let Some(end) = path[..room].iter().position(|&b| b == 0) else {
        return Ok(None);
    };
    let Some(file) = names(&path[..end], g.home_pid) else {
        return Ok(None);
    };
    let Ok(mine) = std::fs::read_to_string(format!("/proc/{}/{file}", g.pid)) else {
        return Ok(None);
    };
    let text = match file {
        "status" | "stat" => {
            let home = match read_at_home(g, link, &format!("/proc/self/{file}"))? {
                Ok(home) => home,
                Err(errno) => return Ok(Some(errno)),
            };
            if file == "status" {
                status(&mine, &home)
            } else {
                let cpu = cpu_now(g);
                let ticks = mosaic_ckpt::cputime::ticks;
                match stat(&mine, &home, ticks(cpu.user_ns), ticks(cpu.sys_ns)) {
                    Some(text) => text,
                    None => return Ok(None),
                }
            }
        }
        "statm" => mine,
        _ => maps(&mine, g.files_from.as_deref()),
    };
    let cloexec = if flags & libc::O_CLOEXEC as u64 != 0 {
        u64::from(libc::MFD_CLOEXEC)
    } else {
        0
    };
    let (fd, _) = at_home(
        link,
        g,
        libc::SYS_memfd_create,
        [1, cloexec, 0, 0, 0, 0],
        vec![(0, b"mosaic-proc\0".to_vec().into())],
    )?;
    if fd < 0 {
        return Ok(Some(fd));
    }
    let fd_arg = abi::reg_long(fd);
    let bytes = text.into_bytes();
    for piece in bytes.chunks(abi::usize_of(codec::MAX_BUF)) {
        let (wrote, _) = at_home(
            link,
            g,
            libc::SYS_write,
            [fd_arg, 1, piece.len() as u64, 0, 0, 0],
            vec![(1, piece.to_vec().into())],
        )?;
        if wrote != abi::count(piece.len()) {
            at_home(
                link,
                g,
                libc::SYS_close,
                [fd_arg, 0, 0, 0, 0, 0],
                Vec::new(),
            )?;
            return Ok(Some(if wrote < 0 {
                wrote
            } else {
                -i64::from(libc::EIO)
            }));
        }
    }
    at_home(
        link,
        g,
        libc::SYS_lseek,
        [fd_arg, 0, 0, 0, 0, 0],
        Vec::new(),
    )?;
    Ok(Some(fd))
}

/// The contents of `path` as the placeholder reads it (up to 1 MiB), or
/// the errno its open or read failed with.
pub(crate) fn read_at_home(
    g: &Guest,
    link: &mut dyn Link,
    path: &str,
) -> Result<Result<String, i64>, RemoteError> {
    let mut name = path.as_bytes().to_vec();
    name.push(0);
    let (fd, _) = at_home(
        link,
        g,
        libc::SYS_openat,
        [
            abi::reg(libc::AT_FDCWD),
            1,
            (libc::O_RDONLY | libc::O_CLOEXEC) as u64,
            0,
            0,
            0,
        ],
        vec![(1, name.into())],
    )?;
    if fd < 0 {
        return Ok(Err(fd));
    }
    let mut text = Vec::new();
    let read = loop {
        let (got, out) = at_home(
            link,
            g,
            libc::SYS_read,
            [abi::reg_long(fd), 1, 64 << 10, 0, 0, 0],
            Vec::new(),
        )?;
        if got <= 0 || text.len() > 1 << 20 {
            break got;
        }
        if let Some((_, b)) = out.into_iter().next() {
            text.extend_from_slice(&b);
        }
    };
    at_home(
        link,
        g,
        libc::SYS_close,
        [abi::reg_long(fd), 0, 0, 0, 0, 0],
        Vec::new(),
    )?;
    Ok(if read < 0 {
        Err(read)
    } else {
        Ok(String::from_utf8_lossy(&text).into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_files_it_serves_under_every_name_of_the_process() {
        assert_eq!(names(b"/proc/self/status", 42), Some("status"));
        assert_eq!(names(b"/proc/thread-self/stat", 42), Some("stat"));
        assert_eq!(names(b"/proc/42/maps", 42), Some("maps"));
        assert_eq!(names(b"/proc/42/task/42/smaps", 42), Some("smaps"));
        assert_eq!(names(b"/proc/self/smaps_rollup", 42), Some("smaps_rollup"));
        assert_eq!(names(b"/proc/43/status", 42), None, "another process");
        assert_eq!(names(b"/proc/421/status", 42), None);
        assert_eq!(names(b"/proc/self/fd/3", 42), None);
        assert_eq!(names(b"/proc/self/cmdline", 42), None, "home's is right");
        assert_eq!(names(b"proc/self/status", 42), None, "relative");
    }

    #[test]
    fn status_keeps_home_identity_and_the_guests_memory() {
        let guest = "Name:\tpython3\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t7\nPid:\t7\nPPid:\t1\nTracerPid:\t0\nUid:\t65534\t65534\t65534\t65534\nVmRSS:\t  9000 kB\nSeccomp:\t2\nSeccomp_filters:\t1\nSigBlk:\t0000000000000000\n";
        let home = "Name:\tpython3\nUmask:\t0002\nState:\tt (tracing stop)\nTgid:\t42\nPid:\t42\nPPid:\t41\nTracerPid:\t9\nUid:\t1000\t1000\t1000\t1000\nVmRSS:\t  120 kB\nSeccomp:\t0\nSeccomp_filters:\t0\nSigBlk:\tffffffffffffffff\n";
        assert_eq!(
            status(guest, home),
            "Name:\tpython3\nUmask:\t0002\nState:\tR (running)\nTgid:\t42\nPid:\t42\nPPid:\t41\nTracerPid:\t0\nUid:\t1000\t1000\t1000\t1000\nVmRSS:\t  9000 kB\nSeccomp:\t0\nSeccomp_filters:\t0\nSigBlk:\t0000000000000000\n"
        );
    }

    #[test]
    fn stat_takes_identity_from_home_and_the_total_cpu_time() {
        // pid comm state ppid pgrp session tty tpgid flags minflt cminflt
        // majflt cmajflt utime stime cutime cstime prio nice threads
        // itreal starttime vsize rss ...
        let guest =
            "7 (a b) S 1 7 7 0 -1 4194304 500 0 0 0 30 2 0 0 20 0 1 0 900 12345678 2200 X\n";
        let home =
            "42 (a b) t 41 42 41 34816 42 4194304 90 5 1 0 10 1 3 4 20 0 1 0 100 4096 30 Y\n";
        assert_eq!(
            stat(guest, home, 250, 12).unwrap(),
            "42 (a b) R 41 42 41 34816 42 4194304 500 0 0 0 250 12 3 4 20 0 1 0 100 12345678 2200 X\n"
        );
        assert_eq!(stat("garbage", home, 0, 0), None);
    }

    #[test]
    fn maps_name_files_by_their_path_at_home() {
        let guest = "7f00-7f10 r--p 00000000 00:2a 17 /mfs/node1/usr/lib/libpython3.11.so\n7f10-7f20 rw-p 00000000 00:00 0 [heap]\n";
        assert_eq!(
            maps(guest, Some(std::path::Path::new("/mfs/node1"))),
            "7f00-7f10 r--p 00000000 00:2a 17 /usr/lib/libpython3.11.so\n7f10-7f20 rw-p 00000000 00:00 0 [heap]\n"
        );
    }
}
