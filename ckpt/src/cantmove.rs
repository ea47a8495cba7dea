//! Why a process cannot be captured, in words a user can act on.

use crate::CkptError;
use crate::procfs;

/// The reason given for a process under a seccomp filter: a capture would
/// not carry the filter (the sandbox would be lost), and mosaic's own
/// guests run under one (a guest is moved by the node it runs on, through
/// its deputy, never captured as a process of that node).
pub const SECCOMP: &str = "it runs under a seccomp filter (a sandbox, or a guest of another node) that a capture would not carry";

/// Reasons `pid` cannot be captured; empty if it can.
pub fn reasons(pid: i32) -> Result<Vec<String>, CkptError> {
    if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return Err(CkptError::NoProcess(pid));
    }
    let mut why = Vec::new();
    let threads: u32 = procfs::status_field(pid, "Threads")?.parse().unwrap_or(1);
    if threads > 1 {
        why.push(format!(
            "it has {threads} threads (only single-threaded processes can be captured)"
        ));
    }
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
    if filters(pid) > filters(std::process::id() as i32) {
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
            let what = if m.name.is_empty() {
                "anonymous".to_string()
            } else {
                m.name.clone()
            };
            why.push(format!(
                "it has a writable shared mapping at {:#x}-{:#x} ({what})",
                m.start, m.end
            ));
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
