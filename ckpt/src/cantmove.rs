//! Why a process cannot be captured, in words a user can act on.

use crate::CkptError;
use crate::procfs;
use mosaic_proto::abi;

/// The reason given for a process under a seccomp filter: a capture would
/// not carry the filter (the sandbox would be lost), and mosaic's own
/// guests run under one (a guest is moved by the node it runs on, through
/// its deputy, never captured as a process of that node).
pub const SECCOMP: &str = "it runs under a seccomp filter (a sandbox, or a guest of another node) that a capture would not carry";

/// Why a writable shared mapping `m` of `pid` cannot travel, if it
/// cannot: it travels when it maps a regular file that no other process
/// maps (its changes then reach the file from wherever it runs; with
/// another mapper, the two would no longer see each other's writes).
fn shared_writable(pid: i32, m: &procfs::MapLine) -> Option<String> {
    let at = format!("{:#x}-{:#x}", m.start, m.end);
    let is_file = m.inode != 0
        && m.name.starts_with('/')
        && !m.name.ends_with(" (deleted)")
        && std::fs::metadata(&m.name).is_ok_and(|st| {
            use std::os::unix::fs::MetadataExt;
            st.is_file() && st.ino() == m.inode
        });
    if !is_file {
        let what = if m.name.is_empty() {
            "anonymous"
        } else {
            m.name.as_str()
        };
        return Some(format!("it has a writable shared mapping at {at} ({what})"));
    }
    let other = other_mapper(pid, m.dev, m.inode)?;
    Some(format!(
        "it has a writable shared mapping of {} which process {other} maps too (the two would no longer see each other's writes)",
        m.name
    ))
}

/// Another process that maps the file `(dev, inode)`, as "PID (name)".
fn other_mapper(pid: i32, dev: (u32, u32), inode: u64) -> Option<String> {
    let mine = pid.to_string();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()) && *n != mine)
        .find_map(|n| {
            let other: i32 = n.parse().ok()?;
            procfs::maps(other)
                .ok()?
                .iter()
                .any(|o| o.inode == inode && o.dev == dev)
                .then(|| {
                    let name = procfs::status_field(other, "Name").unwrap_or_default();
                    format!("{other} ({name})")
                })
        })
}

/// Reasons `pid` cannot be migrated; empty if it can. A migration takes
/// every thread, as a stand-alone capture does ([`capture_reasons`]).
pub fn reasons(pid: i32) -> Result<Vec<String>, CkptError> {
    capture_reasons(pid)
}

/// What of its threads a capture cannot carry: a thread that has exited
/// but not been joined by the kernel yet (a zombie thread), or credentials
/// that differ between threads (raw `setuid` changes one thread; CRIU
/// refuses both too).
fn thread_reasons(pid: i32, why: &mut Vec<String>) -> Result<(), CkptError> {
    let creds = |tid: i32| -> Option<(String, String)> {
        Some((
            procfs::status_field(tid, "Uid").ok()?,
            procfs::status_field(tid, "Gid").ok()?,
        ))
    };
    let main = creds(pid);
    for tid in procfs::tids(pid)?.into_iter().filter(|&t| t != pid) {
        let state = procfs::stat_fields(tid)
            .ok()
            .and_then(|f| f.get(3).cloned());
        if matches!(state.as_deref(), Some("Z" | "X")) {
            why.push(format!(
                "its thread {tid} has exited but is not reaped (zombie thread)"
            ));
        } else if let Some(c) = creds(tid).filter(|c| Some(c) != main.as_ref()) {
            why.push(format!(
                "its thread {tid} has other credentials than the process (uid {}, gid {})",
                c.0, c.1
            ));
        }
    }
    Ok(())
}

/// Reasons `pid` cannot be captured by a stand-alone checkpoint (every
/// thread with it); empty if it can.
pub fn capture_reasons(pid: i32) -> Result<Vec<String>, CkptError> {
    if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return Err(CkptError::NoProcess(pid));
    }
    let mut why = Vec::new();
    thread_reasons(pid, &mut why)?;
    let tracer = procfs::status_field(pid, "TracerPid")?;
    if tracer != "0" {
        why.push(format!("it is traced by process {tracer} (a debugger?)"));
    }
    // Filters beyond those every process here inherits (a container's own
    // profile applies to us as well and to wherever the process goes).
    let filters = |pid: i32| -> u32 {
        procfs::status_field(pid, "Seccomp_filters")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    if filters(pid) > filters(abi::my_pid()) {
        why.push(SECCOMP.into());
    }
    let state = procfs::stat_fields(pid)?[3].clone();
    if state == "Z" || state == "X" {
        why.push("it has exited (zombie)".into());
    }
    let locked = procfs::status_field(pid, "VmLck").unwrap_or_default();
    if !locked.starts_with('0') && !locked.is_empty() {
        why.push(format!("it has locked memory (mlock: {locked})"));
    }
    for m in procfs::maps(pid)? {
        if m.name.starts_with("/SYSV") {
            why.push(format!("it uses System V shared memory at {:#x}", m.start));
        } else if m.shared && m.write {
            if let Some(reason) = shared_writable(pid, &m) {
                why.push(reason);
            }
        } else if m.shared && m.inode == 0 && !m.name.starts_with('[') {
            why.push(format!(
                "it has a shared anonymous mapping at {:#x}",
                m.start
            ));
        } else if !m.shared && m.name.ends_with(" (deleted)") {
            why.push(format!("it maps a deleted file ({})", m.name));
        }
    }
    for (fd, target) in procfs::fds(pid)? {
        if target == "anon_inode:[io_uring]" {
            why.push(format!("it uses io_uring (fd {fd})"));
        } else if target == "anon_inode:[userfaultfd]" {
            why.push(format!("it uses userfaultfd (fd {fd})"));
        } else if target == "anon_inode:[signalfd]" {
            why.push(format!(
                "it reads signals through a signalfd (fd {fd}), which would not see them once they are relayed to a guest"
            ));
        }
    }
    Ok(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process with threads may migrate (and be captured).
    #[test]
    fn threads_stop_neither_a_migration_nor_a_capture() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || rx.recv());
        let me = abi::my_pid();
        let said = |r: Vec<String>| r.iter().any(|r| r.contains("thread"));
        assert!(!said(reasons(me).unwrap()));
        assert!(!said(capture_reasons(me).unwrap()));
        tx.send(()).unwrap();
        other.join().unwrap().unwrap();
    }
}
