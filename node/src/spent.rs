//! CPU time that ended processes used away from home, kept for their
//! parents.
//!
//! A parent learns what its children used from its own kernel: `wait4`'s
//! rusage and `getrusage(RUSAGE_CHILDREN)` add up a child's counters when
//! it is reaped. For a child that ran on other nodes those counters are the
//! placeholder's, which did little but serve calls, so a shell's `time`
//! of a 3 s job that moved says 0.2 s. The kernel's figure cannot be
//! corrected from outside; what can be done is to keep, per live process,
//! what its ended descendants used elsewhere, and to let the one program
//! that reports it to people (mosh's `time` and `times`) ask for it.
//!
//! The kernel credits a child to its parent when the parent reaps it, and
//! the parent's own total to the grandparent when the grandparent reaps the
//! parent; here a process is credited to its parent when it has ended (a
//! zombie or gone), and what its own children used goes with it. So a
//! `make` whose compilers moved is credited to the shell once `make` ends,
//! although `make` itself never moved.

use std::collections::BTreeMap;

use mosaic_proto::image::CpuTime;
use mosaic_proto::ratelimit::Every;
use tracing::warn;

/// A process: a PID and its start time (a recycled PID is another one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub start: u64,
}

/// What the ledger needs to know of live processes (`/proc`, or a fake in
/// tests).
pub trait Procs {
    /// Whether `p` still runs (a zombie has ended).
    fn running(&self, p: Proc) -> bool;
    /// The parent of `p`, if `p` still runs.
    fn parent(&self, p: Proc) -> Option<Proc>;
}

/// How many ancestors are remembered for a process that may end after its
/// parent ([`lineage_of`]).
const LINEAGE: usize = 8;

/// The parent of `p`, its parent, and so on (at most [`LINEAGE`]), while
/// they run: whom to credit if the nearer ones end first.
pub fn lineage_of(procs: &dyn Procs, p: Proc) -> Vec<Proc> {
    let mut out: Vec<Proc> = Vec::new();
    let mut at = p;
    while out.len() < LINEAGE
        && let Some(parent) = procs.parent(at)
        && parent.pid > 1
    {
        out.push(parent);
        at = parent;
    }
    out
}

/// The processes of this node's `/proc`.
pub struct ProcFs;

impl ProcFs {
    /// `pid` as it runs now, if it does.
    pub fn find(pid: i32) -> Option<Proc> {
        let st = mosaic_ckpt::procstat::stat(pid)?;
        Some(Proc {
            pid,
            start: st.start,
        })
    }
}

impl Procs for ProcFs {
    fn running(&self, p: Proc) -> bool {
        mosaic_ckpt::procstat::stat(p.pid).is_some_and(|s| s.start == p.start && s.state != 'Z')
    }

    fn parent(&self, p: Proc) -> Option<Proc> {
        let st = mosaic_ckpt::procstat::stat(p.pid).filter(|s| s.start == p.start)?;
        ProcFs::find(st.ppid)
    }
}

/// More processes with descendants' time than any node runs at once; past
/// it, credits are dropped (and said so).
const MAX_ENTRIES: usize = 8192;

struct Entry {
    start: u64,
    /// What its ended children and their descendants used elsewhere.
    cpu: CpuTime,
    /// Its parent (and theirs) when last credited, to credit in turn when
    /// it ends.
    lineage: Vec<Proc>,
}

/// Per live process, the CPU time its ended descendants used away from home.
pub struct Ledger {
    children: BTreeMap<i32, Entry>,
    noisy: Every,
}

impl Default for Ledger {
    fn default() -> Ledger {
        Ledger {
            children: BTreeMap::new(),
            noisy: Every::second(),
        }
    }
}

impl Ledger {
    /// `who` ended (or is about to), having used `own` away from home;
    /// `lineage`: its parent, theirs, ... ([`lineage_of`]). Its parent is
    /// credited with that and with what its own children used.
    pub fn ended(&mut self, procs: &dyn Procs, who: Proc, own: CpuTime, lineage: &[Proc]) {
        let theirs = match self.children.get(&who.pid) {
            Some(e) if e.start == who.start => self.children.remove(&who.pid),
            _ => None,
        };
        let total = own.plus(theirs.as_ref().map(|e| e.cpu).unwrap_or_default());
        // Whom to credit: as the caller knows it, else as its entry does.
        let lineage = match &theirs {
            Some(e) if lineage.is_empty() => &e.lineage[..],
            _ => lineage,
        };
        if total != CpuTime::default() && !lineage.is_empty() {
            self.credit(procs, lineage, total);
        }
    }

    fn credit(&mut self, procs: &dyn Procs, lineage: &[Proc], cpu: CpuTime) {
        let parent = lineage[0];
        if !self.children.contains_key(&parent.pid) && self.children.len() >= MAX_ENTRIES {
            self.settle(procs);
        }
        if !self.children.contains_key(&parent.pid) && self.children.len() >= MAX_ENTRIES {
            if let Some(held_back) = self.noisy.allow() {
                warn!(
                    pid = parent.pid,
                    held_back,
                    "too many processes with children that ran elsewhere; a shell's time of its children misses some"
                );
            }
            return;
        }
        let fresh = || Entry {
            start: parent.start,
            cpu: CpuTime::default(),
            lineage: Vec::new(),
        };
        let e = self.children.entry(parent.pid).or_insert_with(fresh);
        if e.start != parent.start {
            // The PID of an earlier process that ended unnoticed.
            *e = fresh();
        }
        e.cpu = e.cpu.plus(cpu);
        // Its ancestors as they are now, else as its child knew them.
        let now = lineage_of(procs, parent);
        if !now.is_empty() {
            e.lineage = now;
        } else if e.lineage.is_empty() {
            e.lineage = lineage[1..].to_vec();
        }
    }

    /// Passes on the time of processes that ended since the last look to
    /// their parents, until only running processes hold time.
    pub fn settle(&mut self, procs: &dyn Procs) {
        loop {
            let ended: Vec<Proc> = self
                .children
                .iter()
                .map(|(&pid, e)| Proc {
                    pid,
                    start: e.start,
                })
                .filter(|&p| !procs.running(p))
                .collect();
            if ended.is_empty() {
                return;
            }
            // Credited to the ancestors its entry remembers.
            for who in ended {
                self.ended(procs, who, CpuTime::default(), &[]);
            }
        }
    }

    /// What the ended descendants of `p` used away from home.
    pub fn children_of(&self, p: Proc) -> CpuTime {
        self.children
            .get(&p.pid)
            .filter(|e| e.start == p.start)
            .map(|e| e.cpu)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A process tree: PID -> (start, parent PID, running).
    #[derive(Default)]
    struct Tree(HashMap<i32, (u64, i32, bool)>);

    impl Tree {
        fn spawn(&mut self, pid: i32, parent: i32) -> Proc {
            self.0
                .insert(pid, (u64::from(pid.cast_unsigned()) * 10, parent, true));
            Proc {
                pid,
                start: u64::from(pid.cast_unsigned()) * 10,
            }
        }
        fn end(&mut self, p: Proc) {
            self.0.get_mut(&p.pid).unwrap().2 = false;
        }
        fn get(&self, pid: i32) -> Proc {
            Proc {
                pid,
                start: self.0[&pid].0,
            }
        }
    }

    impl Procs for Tree {
        fn running(&self, p: Proc) -> bool {
            self.0
                .get(&p.pid)
                .is_some_and(|&(s, _, r)| s == p.start && r)
        }
        fn parent(&self, p: Proc) -> Option<Proc> {
            let &(s, ppid, r) = self.0.get(&p.pid)?;
            (s == p.start && r && self.0.contains_key(&ppid)).then(|| self.get(ppid))
        }
    }

    fn secs(s: u64) -> CpuTime {
        CpuTime {
            user_ns: s * 1_000_000_000,
            sys_ns: s,
        }
    }

    #[test]
    fn a_child_that_ended_away_is_its_parents_and_a_grandchild_reaches_the_shell() {
        let mut t = Tree::default();
        let shell = t.spawn(100, 1);
        let job = t.spawn(200, 100);
        let make = t.spawn(300, 100);
        let cc1 = t.spawn(301, 300);
        let mut l = Ledger::default();

        // A job that moved ends: the shell has its time.
        let lineage = lineage_of(&t, job);
        t.end(job);
        l.ended(&t, job, secs(3), &lineage);
        l.settle(&t);
        assert_eq!(l.children_of(shell), secs(3));

        // A compiler under make ends: make's, not yet the shell's.
        let lineage = lineage_of(&t, cc1);
        t.end(cc1);
        l.ended(&t, cc1, secs(2), &lineage);
        l.settle(&t);
        assert_eq!(l.children_of(make), secs(2));
        assert_eq!(l.children_of(shell), secs(3));

        // make ends (it never moved): its children's time goes on up.
        t.end(make);
        l.settle(&t);
        assert_eq!(l.children_of(shell), secs(5));
        assert_eq!(l.children_of(make), CpuTime::default());
        assert_eq!(l.children.len(), 1, "only the running shell holds time");
    }

    #[test]
    fn a_process_that_ends_after_its_parent_reaches_the_grandparent() {
        let mut t = Tree::default();
        let shell = t.spawn(100, 1);
        let sh = t.spawn(200, 100);
        let job = t.spawn(300, 200);
        let mut l = Ledger::default();
        // Known when it came home; it ends at home after `sh` did.
        let lineage = lineage_of(&t, job);
        t.end(sh);
        t.end(job);
        l.ended(&t, job, secs(3), &lineage);
        l.settle(&t);
        assert_eq!(l.children_of(shell), secs(3));
    }

    #[test]
    fn a_parent_known_without_its_lineage_passes_its_childrens_time_on() {
        let mut t = Tree::default();
        let shell = t.spawn(100, 1);
        let sh = t.spawn(200, 100);
        let job = t.spawn(300, 200);
        let mut l = Ledger::default();
        let lineage = lineage_of(&t, job);
        t.end(job);
        l.ended(&t, job, secs(3), &lineage);
        // `sh` ends; whoever tells of it knows nothing of its parent.
        t.end(sh);
        l.ended(&t, sh, CpuTime::default(), &[]);
        assert_eq!(l.children_of(shell), secs(3));
    }

    #[test]
    fn a_recycled_pid_does_not_inherit_the_time() {
        let mut t = Tree::default();
        let shell = t.spawn(100, 1);
        let job = t.spawn(200, 100);
        let mut l = Ledger::default();
        t.end(job);
        l.ended(&t, job, secs(3), &[shell]);
        // The shell ends unnoticed and its PID is taken by another process.
        t.0.insert(100, (999, 1, true));
        let other = t.get(100);
        assert_eq!(l.children_of(other), CpuTime::default());
        let child = t.spawn(201, 100);
        t.end(child);
        l.ended(&t, child, secs(1), &[other]);
        assert_eq!(l.children_of(other), secs(1));
    }

    #[test]
    fn time_of_an_orphan_with_nobody_to_credit_is_dropped() {
        let mut t = Tree::default();
        let job = t.spawn(200, 1);
        let mut l = Ledger::default();
        t.end(job);
        l.ended(&t, job, secs(3), &[]);
        l.settle(&t);
        assert!(l.children.is_empty());
    }
}
