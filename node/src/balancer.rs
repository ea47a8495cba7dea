//! The balancer's rule, the openMosix way: which process, if any, this
//! node should send where, from the gossiped load vectors.
//!
//! Status (issue 5, first part): the decision alone, as a pure function
//! with its tests; mosaicd does not call it yet. Wiring it in needs the
//! per-process statistics (CPU share decayed over time, forwarded calls per
//! second, time since the last move) and the node controls.
//!
//! The rule. Loads are compared in *processes per CPU of this node's speed*
//! (`LoadVector::normalized_load` with this node's speed as reference). A
//! process moves when either
//! * this node's load exceeds the target's by more than [`MARGIN`]
//!   single-process loads (openMosix used 1.3): ten jobs on one of two
//!   equal one-CPU nodes end five and five, and two equal nodes never trade
//!   a process back and forth (one process is 1.0 < 1.3); or
//! * the process would run more than [`MARGIN`] times faster there (its
//!   share of a CPU times the CPU's speed): slow to fast nodes.
//!
//! Moves already made count on the target until its gossiped load shows
//! them (`in_flight`), so a burst of decisions does not overshoot while
//! the target's smoothed load is still rising.

use mosaic_proto::load::LoadVector;

/// Single-process loads by which a node must exceed another (or the
/// speed-up a process must gain) before a process moves.
pub const MARGIN: f64 = 1.3;
/// A process must have run this long where it is before it moves.
pub const MIN_RESIDENCY: std::time::Duration = std::time::Duration::from_secs(1);
/// A process busier than this (share of one CPU) is CPU-bound.
pub const BUSY: f64 = 0.5;

/// Another node as the balancer sees it.
#[derive(Debug, Clone)]
pub struct Peer {
    pub name: String,
    pub load: LoadVector,
    /// Processes sent there that its gossiped load does not show yet.
    pub in_flight: f64,
}

/// A process of this node that might move.
#[derive(Debug, Clone, Default)]
pub struct Candidate {
    pub pid: i32,
    /// Its share of one CPU lately (0..1).
    pub cpu_share: f64,
    pub mem_bytes: u64,
    /// Forwarded system calls per second while it was away (an I/O-heavy
    /// process is better at home, near its files).
    pub forwarded_per_s: f64,
    /// How long it has been where it is.
    pub resident: std::time::Duration,
    /// Locked (`mosaic run --lock`, `mosaic lock`), stay'd or I/O-bound by
    /// hint: never moved by the balancer.
    pub pinned: bool,
    /// It cannot be captured now (threads, shared memory, ...).
    pub cantmove: bool,
}

/// Effective speed a process gets on a node with `load` other processes
/// besides itself: its share of a CPU times the CPU's speed.
fn speed_there(v: &LoadVector, others: f64) -> f64 {
    let cpus = f64::from(v.cpus.max(1));
    f64::from(v.speed.max(1)) * (cpus / (others + 1.0)).min(1.0)
}

/// How good a candidate is to move: busy, small, few forwarded calls.
fn score(c: &Candidate) -> f64 {
    let gib = c.mem_bytes as f64 / f64::from(1u32 << 30);
    c.cpu_share / (1.0 + gib) / (1.0 + c.forwarded_per_s / 100.0)
}

/// The move to make this interval, if any: (pid, node name).
pub fn decide(me: &LoadVector, peers: &[Peer], candidates: &[Candidate]) -> Option<(i32, String)> {
    let best = candidates
        .iter()
        .filter(|c| !c.pinned && !c.cantmove)
        .filter(|c| c.resident >= MIN_RESIDENCY && c.cpu_share >= BUSY)
        // Ties go to the oldest (lowest) PID, so the choice is stable.
        .max_by(|a, b| score(a).total_cmp(&score(b)).then(b.pid.cmp(&a.pid)))?;
    let reference = me.speed.max(1);
    let mine = me.normalized_load(reference);
    // The candidate shares this node with the rest of its load.
    let here = speed_there(me, (me.load - 1.0).max(0.0));
    peers
        .iter()
        .filter(|p| p.load.accepts_guests)
        .filter_map(|p| {
            let mut load = p.load.clone();
            load.load += p.in_flight;
            let theirs = load.normalized_load(reference);
            // One more process there, in this node's units.
            let one_there = LoadVector {
                load: 1.0,
                ..load.clone()
            }
            .normalized_load(reference);
            let balances = mine - theirs > MARGIN.max(one_there * MARGIN);
            let faster = speed_there(&load, load.load) > MARGIN * here;
            (balances || faster).then_some((theirs, p.name.clone()))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| (best.pid, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn node(load: f64, cpus: u32, speed: u32) -> LoadVector {
        LoadVector {
            load,
            cpus,
            speed,
            mem_total: 1 << 34,
            mem_free: 1 << 33,
            guests: 0,
            accepts_guests: true,
        }
    }

    fn peer(name: &str, v: LoadVector) -> Peer {
        Peer {
            name: name.into(),
            load: v,
            in_flight: 0.0,
        }
    }

    fn busy(pid: i32) -> Candidate {
        Candidate {
            pid,
            cpu_share: 1.0,
            mem_bytes: 1 << 20,
            resident: Duration::from_secs(5),
            ..Default::default()
        }
    }

    /// Runs the rule until it stops moving; returns the loads.
    fn settle(mut a: f64, mut b: f64) -> (f64, f64) {
        for _ in 0..100 {
            let jobs: Vec<Candidate> = (0..a as i32).map(busy).collect();
            match decide(&node(a, 1, 1000), &[peer("b", node(b, 1, 1000))], &jobs) {
                Some(_) => {
                    a -= 1.0;
                    b += 1.0;
                }
                None => break,
            }
        }
        (a, b)
    }

    #[test]
    fn ten_jobs_on_one_of_two_equal_nodes_end_five_and_five() {
        assert_eq!(settle(10.0, 0.0), (5.0, 5.0));
        assert_eq!(settle(7.0, 0.0), (4.0, 3.0));
    }

    #[test]
    fn equal_or_nearly_equal_nodes_trade_nothing() {
        for (a, b) in [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (5.0, 4.0), (3.0, 3.0)] {
            let jobs: Vec<Candidate> = (0..a as i32).map(busy).collect();
            assert_eq!(
                decide(&node(a, 1, 1000), &[peer("b", node(b, 1, 1000))], &jobs),
                None,
                "{a} vs {b}"
            );
        }
    }

    #[test]
    fn moves_on_their_way_count_on_the_target() {
        let mut p = peer("b", node(0.0, 1, 1000));
        p.in_flight = 5.0;
        let jobs: Vec<Candidate> = (0..5).map(busy).collect();
        assert_eq!(decide(&node(5.0, 1, 1000), &[p], &jobs), None);
    }

    #[test]
    fn a_lone_process_goes_from_a_slow_node_to_a_much_faster_one_and_stays() {
        let slow = node(1.0, 1, 1000);
        let fast = node(0.0, 1, 2000);
        assert_eq!(
            decide(&slow, &[peer("fast", fast.clone())], &[busy(7)]),
            Some((7, "fast".into()))
        );
        // Once there, it does not come back.
        let fast_busy = node(1.0, 1, 2000);
        let slow_idle = node(0.0, 1, 1000);
        assert_eq!(
            decide(&fast_busy, &[peer("slow", slow_idle)], &[busy(7)]),
            None
        );
    }

    #[test]
    fn the_least_loaded_node_that_accepts_guests_gets_it() {
        let mut closed = node(0.0, 1, 1000);
        closed.accepts_guests = false;
        let peers = [
            peer("closed", closed),
            peer("half", node(2.0, 1, 1000)),
            peer("idle", node(1.0, 1, 1000)),
        ];
        let jobs: Vec<Candidate> = (0..8).map(busy).collect();
        assert_eq!(
            decide(&node(8.0, 1, 1000), &peers, &jobs),
            Some((0, "idle".into()))
        );
    }

    #[test]
    fn pinned_unmovable_young_or_idle_processes_never_move_and_the_best_one_does() {
        let me = node(10.0, 1, 1000);
        let peers = [peer("b", node(0.0, 1, 1000))];
        let never = [
            Candidate {
                pinned: true,
                ..busy(1)
            },
            Candidate {
                cantmove: true,
                ..busy(2)
            },
            Candidate {
                resident: Duration::from_millis(200),
                ..busy(3)
            },
            Candidate {
                cpu_share: 0.1,
                ..busy(4)
            },
        ];
        assert_eq!(decide(&me, &peers, &never), None);
        let mut all = never.to_vec();
        all.push(Candidate {
            mem_bytes: 8 << 30,
            ..busy(5)
        });
        all.push(Candidate {
            forwarded_per_s: 5000.0,
            ..busy(6)
        });
        all.push(busy(7)); // small, busy, no calls: the best
        assert_eq!(decide(&me, &peers, &all), Some((7, "b".into())));
    }
}
