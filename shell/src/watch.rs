//! Every process the shell starts is managed by mosaic.
//!
//! The interpreter spawns external commands itself and offers no hook to
//! learn their PIDs (brush 0.5), so a thread looks for the shell's children
//! ten times a second and tells the daemon about each: a process in the
//! terminal's foreground group (a foreground job) is locked home, anything
//! else (background jobs, scripts) is the balancer's to place; a job sent
//! to the background (`bg`, or `&`) is unlocked, one brought to the
//! foreground (`fg`) is locked again. A process that lives less than a
//! tenth of a second may be missed; the balancer would never move it.
//!
//! Once a second it also asks where the children run, and tells a note
//! when one moved (at once, or at the next prompt: [`Session::note`]).

use std::collections::HashMap;
use std::time::Duration;

use mosaic_proto::control::{Hint, ProcInfo};

use crate::session::{Child, Note, Session};

/// How often the shell's children are looked for.
pub const EVERY: Duration = Duration::from_millis(100);
/// Where they run is asked every this many rounds.
const WHERE_EVERY: u64 = 10;

/// Starts the watcher thread. `terminal`: the shell's terminal, whose
/// foreground process group is a foreground job (`None`: no job control).
pub fn spawn(session: &'static Session, terminal: Option<std::os::fd::RawFd>) {
    let started = std::thread::Builder::new()
        .name("mosh-watch".into())
        .spawn(move || run(session, terminal));
    if let Err(e) = started {
        eprintln!("mosh: cannot watch this shell's jobs ({e}): mosaic will not manage them");
    }
}

fn run(session: &'static Session, terminal: Option<std::os::fd::RawFd>) {
    let me = mosaic_proto::abi::my_pid();
    for round in 1u64.. {
        std::thread::sleep(EVERY);
        let foreground = terminal.and_then(foreground_group);
        let now = descendants_of(me);
        let changed = session.with_children(|known| update(known, &now, foreground, session));
        for (pid, lock) in changed {
            // Gone already, or the daemon restarts: nothing to manage.
            let _ =
                session.with_client(Duration::from_secs(2), |c| c.manage(pid, lock, Hint::None));
        }
        session.retain_user_locks(|pid| now.iter().any(|d| d.pid == pid));
        if round % WHERE_EVERY == 0
            && !now.is_empty()
            && let Ok(procs) = session.with_client(Duration::from_secs(2), |c| c.ps())
        {
            session.with_children(|known| {
                for note in moves(known, &procs, &session.node) {
                    session.note(note);
                }
            });
        }
    }
}

/// Brings `known` up to date with the descendants seen `now`; returns the
/// (pid, lock) pairs to tell the daemon.
fn update(
    known: &mut HashMap<i32, Child>,
    now: &[Descendant],
    foreground: Option<i32>,
    session: &Session,
) -> Vec<(i32, bool)> {
    known.retain(|pid, _| now.iter().any(|d| d.pid == *pid));
    let mut changed = Vec::new();
    for Descendant { pid, pgrp, cmd, .. } in now {
        let lock = foreground == Some(*pgrp) || session.user_locked(*pid);
        match known.get_mut(pid) {
            Some(c) => {
                // Seen between fork and exec or setpgid, or since exec'd.
                c.pgrp = *pgrp;
                c.cmd.clone_from(cmd);
                if c.locked != lock {
                    c.locked = lock;
                    changed.push((*pid, lock));
                }
            }
            None => {
                known.insert(
                    *pid,
                    Child {
                        pgrp: *pgrp,
                        locked: lock,
                        node: None,
                        cmd: cmd.clone(),
                    },
                );
                changed.push((*pid, lock));
            }
        }
    }
    changed
}

/// Notes for the children whose node changed since the last look.
fn moves(known: &mut HashMap<i32, Child>, procs: &[ProcInfo], me: &str) -> Vec<Note> {
    let mut notes = Vec::new();
    for (pid, child) in known.iter_mut() {
        let Some(p) = procs.iter().find(|p| p.home == me && p.home_pid == *pid) else {
            continue;
        };
        let before = child.node.replace(p.node.clone());
        let moved = match &before {
            Some(b) => *b != p.node,
            None => p.node != me,
        };
        if moved {
            notes.push(Note {
                pid: *pid,
                pgrp: child.pgrp,
                what: if p.node == me {
                    "came home".to_string()
                } else {
                    format!("moved to {}", p.node)
                },
            });
        }
    }
    notes.sort_by_key(|n| n.pid);
    notes
}

/// The terminal's foreground process group.
fn foreground_group(terminal: std::os::fd::RawFd) -> Option<i32> {
    // SAFETY: `terminal` is an fd number; tcgetpgrp only reads its state.
    let pgrp = unsafe { libc::tcgetpgrp(terminal) };
    (pgrp > 0).then_some(pgrp)
}

/// A descendant of the shell.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Descendant {
    pub pid: i32,
    pub parent: i32,
    pub pgrp: i32,
    /// Its command line, arguments separated by spaces.
    pub cmd: String,
}

/// The descendants of process `ancestor` (its children, theirs, ...), by PID.
pub fn descendants_of(ancestor: i32) -> Vec<Descendant> {
    // pid -> (parent, process group), of every live process.
    let mut all: HashMap<i32, (i32, i32)> = HashMap::new();
    for pid in std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        let Ok(f) = mosaic_ckpt::procfs::stat_fields(pid) else {
            continue;
        };
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<i32>().ok());
        if f.get(3).is_some_and(|s| s == "Z") {
            continue;
        }
        if let (Some(ppid), Some(pgrp)) = (num(4), num(5)) {
            all.insert(pid, (ppid, pgrp));
        }
    }
    let mut out = Vec::new();
    let mut parents = vec![ancestor];
    while let Some(parent) = parents.pop() {
        for (&pid, &(ppid, pgrp)) in &all {
            if ppid == parent {
                parents.push(pid);
                out.push(Descendant {
                    pid,
                    parent,
                    pgrp,
                    cmd: mosaic_ckpt::procstat::cmdline(pid),
                });
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pid: i32, node: &str) -> ProcInfo {
        ProcInfo {
            home_pid: pid,
            home: "node1".into(),
            node: node.into(),
            guest_pid: pid,
            cmd: "awk".into(),
            state: "running".into(),
            cpu: 99.0,
            mem_kb: 1,
            cantmove: String::new(),
            lock: false,
            threads: 1,
        }
    }

    #[test]
    fn a_child_that_moves_or_comes_home_gets_one_note_each_time() {
        let mut known = HashMap::from([(
            7,
            Child {
                pgrp: 7,
                locked: false,
                node: None,
                cmd: "awk".into(),
            },
        )]);
        // Still home: nothing to say.
        assert!(moves(&mut known, &[row(7, "node1")], "node1").is_empty());
        let notes = moves(&mut known, &[row(7, "node2")], "node1");
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].what, "moved to node2");
        assert!(moves(&mut known, &[row(7, "node2")], "node1").is_empty());
        assert_eq!(
            moves(&mut known, &[row(7, "node1")], "node1")[0].what,
            "came home"
        );
        // Another home's process of the same PID is not ours.
        let mut other = row(7, "node3");
        other.home = "node2".into();
        assert!(moves(&mut known, &[other], "node1").is_empty());
    }

    #[test]
    fn our_children_and_theirs_are_found_with_their_process_group() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 5 & wait"])
            .spawn()
            .unwrap();
        let pid = mosaic_proto::abi::pid(child.id());
        let found = poll(|| {
            let found = descendants_of(mosaic_proto::abi::my_pid());
            found.iter().any(|c| c.cmd == "sleep 5").then_some(found)
        });
        let _ = child.kill();
        let _ = child.wait();
        let sh = found
            .iter()
            .find(|c| c.pid == pid)
            .expect("the child is found");
        // SAFETY: getpgrp has no arguments and cannot fail.
        assert_eq!(sh.pgrp, unsafe { libc::getpgrp() });
        assert_eq!(sh.parent, mosaic_proto::abi::my_pid());
        assert_eq!(sh.cmd, "sh -c sleep 5 & wait");
        let sleep = found
            .iter()
            .find(|c| c.cmd == "sleep 5")
            .expect("the grandchild");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(sleep.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }

    /// Polls `f` for up to 5 s.
    fn poll<T>(mut f: impl FnMut() -> Option<T>) -> T {
        for _ in 0..100 {
            if let Some(v) = f() {
                return v;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("not seen within 5 s");
    }
}
