//! The balancer's rule, the openMosix way: which process, if any, this
//! node should send where, from the gossiped load vectors.
//!
//! The decisions are pure functions with their tests ([`decide`],
//! [`usher`], [`io_heavy_guest`], [`shared_view`]); [`Balancer`], which
//! mosaicd runs four times a second, samples this node's processes (how
//! often they run or wait to run, from the scheduler's own counts; memory;
//! I/O), asks them, and returns the migrations to start.
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

use mosaic_proto::abi;
use mosaic_proto::load::LoadVector;

/// Single-process loads by which a node must exceed another (or the
/// speed-up a process must gain) before a process moves.
pub const MARGIN: f64 = 1.3;
/// A process must have run this long where it is before it moves.
pub const MIN_RESIDENCY: std::time::Duration = std::time::Duration::from_millis(500);
/// A process busier than this (share of one CPU) is CPU-bound.
pub const BUSY: f64 = 0.5;
/// A node whose free memory falls below this share of its total sends its
/// biggest movable process to the node with the most free memory
/// (openMosix's memory ushering).
pub const LOW_MEMORY: f64 = 0.25;
/// Processes smaller than this are not worth ushering.
pub const USHER_MIN: u64 = 32 << 20;
/// More forwarded (or, at home, I/O) system calls per second than this make
/// a process I/O-heavy: it stays home, and a guest is sent home. A
/// forwarded call costs about 100 us here, so this is 5% of its time. (It
/// was 100: a compiler's cc1 writes its assembly at 50-150 writes a
/// second, so a make -j kept most of its compiles home.)
pub const IO_HEAVY: f64 = 500.0;

/// Another node as the balancer sees it.
#[derive(Debug, Clone)]
pub struct Peer {
    pub name: String,
    pub load: LoadVector,
    /// Processes sent there that its gossiped load does not show yet.
    pub in_flight: f64,
    /// Their memory, in bytes.
    pub in_flight_mem: u64,
}

/// A process of this node that might move.
#[derive(Debug, Clone, Default)]
pub struct Candidate {
    pub pid: i32,
    /// How much of one CPU it wants lately (0..1 a thread): its share, or
    /// how often it was found runnable, whichever is more; a process whose
    /// threads keep several CPUs busy wants more than one.
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
    /// Known CPU-bound (`mosaic run --cpu-bound`): it may move at once.
    pub eager: bool,
    /// A guest of this node (it may be sent home or on).
    pub guest: bool,
    /// Since when it is busy (Unix ms; 0: not busy or not known).
    pub busy_since_ms: u64,
}

/// What the node knows of a process, beyond what `/proc` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Nothing: the balancer watches it.
    Free,
    /// Never moved by the balancer: locked, stay'd, I/O-bound by hint.
    Pinned,
    /// Runs elsewhere: its placeholder here is neither load nor candidate.
    Away,
    /// CPU-bound by hint: busy from the start, no residency wait.
    CpuBound,
    /// A guest of this node: it counts in this node's load and may be sent
    /// home or on by the same rule (its deputy carries the move out).
    Guest,
}

/// Where a guest goes when it is sent home (the daemon knows which node).
pub const HOME: &str = "home";

/// The memory move to make, if this node is short of memory: its biggest
/// movable process, to the node with the most free memory, if that node
/// stays above [`LOW_MEMORY`] with it.
pub fn usher(me: &LoadVector, peers: &[Peer], candidates: &[Candidate]) -> Option<(i32, String)> {
    if me.mem_total == 0 || (me.mem_free as f64) >= LOW_MEMORY * me.mem_total as f64 {
        return None;
    }
    let big = candidates
        .iter()
        .filter(|c| !c.pinned && !c.cantmove && c.resident >= MIN_RESIDENCY)
        .filter(|c| c.mem_bytes >= USHER_MIN)
        .max_by_key(|c| (c.mem_bytes, std::cmp::Reverse(c.pid)))?;
    peers
        .iter()
        .filter(|p| p.load.accepts_guests)
        .map(|p| (p.load.mem_free.saturating_sub(p.in_flight_mem), p))
        .filter(|(free, p)| {
            free.saturating_sub(big.mem_bytes) as f64 >= LOW_MEMORY * p.load.mem_total as f64
        })
        .max_by_key(|(free, _)| *free)
        .map(|(_, p)| (big.pid, p.name.clone()))
}

/// A guest that forwards too many calls is better at home.
pub fn io_heavy_guest(candidates: &[Candidate]) -> Option<i32> {
    candidates
        .iter()
        .filter(|c| c.guest && !c.cantmove && c.resident >= MIN_RESIDENCY)
        .filter(|c| c.forwarded_per_s > IO_HEAVY)
        .max_by(|a, b| a.forwarded_per_s.total_cmp(&b.forwarded_per_s))
        .map(|c| c.pid)
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

/// The loads as the CPUs feel them: nodes of one machine whose CPU sets
/// overlap (a local cluster with more nodes than CPUs) share those CPUs,
/// so each one's load is counted on the others, in proportion to the
/// CPUs they share. Moves in flight are folded in. Nodes of other
/// machines, or that do not say, keep their own load.
pub fn shared_view(me: &LoadVector, peers: &[Peer]) -> (LoadVector, Vec<Peer>) {
    let all: Vec<(&LoadVector, f64)> = std::iter::once((me, 0.0))
        .chain(peers.iter().map(|p| (&p.load, p.in_flight)))
        .collect();
    let felt = |x: &LoadVector, own_in_flight: f64| -> f64 {
        let mut load = x.load + own_in_flight;
        if x.machine.is_empty() || x.cpuset.is_empty() {
            return load;
        }
        for &(y, in_flight) in &all {
            if std::ptr::eq(x, y) || y.machine != x.machine || y.cpuset.is_empty() {
                continue;
            }
            let shared = x.cpuset.iter().filter(|c| y.cpuset.contains(c)).count();
            load += (y.load + in_flight) * shared as f64 / y.cpuset.len() as f64;
        }
        load
    };
    let mine = LoadVector {
        load: felt(me, 0.0),
        ..me.clone()
    };
    let theirs = peers
        .iter()
        .map(|p| Peer {
            load: LoadVector {
                load: felt(&p.load, p.in_flight),
                ..p.load.clone()
            },
            in_flight: 0.0,
            ..p.clone()
        })
        .collect();
    (mine, theirs)
}

/// Where one busy process that runs on `here` would run best, by the same
/// rule (`mosaic migrate PID balance`); `None`: where it is.
pub fn place(here: &LoadVector, others: &[(String, LoadVector)]) -> Option<String> {
    let peers: Vec<Peer> = others
        .iter()
        .map(|(name, load)| Peer {
            name: name.clone(),
            load: load.clone(),
            in_flight: 0.0,
            in_flight_mem: 0,
        })
        .collect();
    let (felt_here, felt_there) = shared_view(here, &peers);
    // It is busy and counted where it runs, whatever its age.
    let me = LoadVector {
        load: felt_here.load.max(1.0),
        ..felt_here
    };
    let it = Candidate {
        cpu_share: 1.0,
        eager: true,
        ..Default::default()
    };
    decide(&me, &felt_there, &[it]).map(|(_, node)| node)
}

/// The load a candidate is, moved: one process, or as many as the CPUs
/// its threads keep busy (a four-thread CPU-bound process is four).
pub fn weight(c: &Candidate) -> f64 {
    c.cpu_share.round().max(1.0)
}

/// The move to make this interval, if any: (pid, node name).
pub fn decide(me: &LoadVector, peers: &[Peer], candidates: &[Candidate]) -> Option<(i32, String)> {
    let best = candidates
        .iter()
        .filter(|c| !c.pinned && !c.cantmove)
        .filter(|c| c.eager || (c.resident >= MIN_RESIDENCY && c.cpu_share >= BUSY))
        // An I/O-heavy process at home stays near its files.
        .filter(|c| c.guest || c.forwarded_per_s <= IO_HEAVY)
        // Scores within a tenth are ties, and ties go to the one here
        // longest, then the lowest PID, so the choice is stable. (The
        // longest here is the one a view of the target is fresh for: a
        // job just started, placed by its profile, scored 1.0 against its
        // elders' 0.98 and, its view not fresh yet, held up their moves
        // while the target idled: a make -j kept one job of two there.)
        .max_by(|a, b| {
            let bucket = |c: &Candidate| abi::float_to_u64(score(c) * 10.0 + 0.5);
            bucket(a)
                .cmp(&bucket(b))
                .then(a.resident.cmp(&b.resident))
                .then(b.pid.cmp(&a.pid))
        })?;
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
            // A process of several busy threads moves that much load: the
            // move must leave the two closer than they were, by the same
            // margin as one process's (d > w u + (MARGIN - 1) u, for w
            // processes of u each: so it is never turned round either).
            let more = (weight(best) - 1.0) * one_there;
            let balances = mine - theirs > MARGIN.max(one_there * MARGIN) + more;
            // Its other threads share the CPUs there with it too.
            let faster = speed_there(&load, load.load + weight(best) - 1.0) > MARGIN * here;
            (balances || faster).then_some((theirs, p.name.clone()))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| (best.pid, name))
}

/// Moves sent to a node count on it this long (its smoothed load rises
/// 30% of the way per second, so after 10 s it shows 97% of them); they
/// count until its load has risen by as many, or this long.
const IN_FLIGHT_FOR: std::time::Duration = std::time::Duration::from_secs(10);
/// At most this many moves per interval (the HOWTO set sends five at once).
const MOVES_PER_TICK: usize = 8;

/// The balancer of one node: per-process CPU samples and moves in flight.
#[derive(Default)]
pub struct Balancer {
    /// pid -> what was seen of it at the last sample.
    seen: std::collections::HashMap<i32, Seen>,
    last: Option<std::time::Instant>,
    /// node -> moves sent there and not yet seen in its load.
    in_flight: std::collections::HashMap<String, InFlight>,
    busy: usize,
    /// What programs did in their past runs here (`crate::profile`).
    profiles: crate::profile::Shared,
}

/// A node's process shows in the load it publishes within this long of its
/// start (its balancer samples and publishes every 250 ms; the rest is
/// slack for a late interval). A CPU move is made only on a view of the
/// target published at least this long after the candidate started (or
/// arrived): the others' loads reach us a gossip round late, and two nodes
/// whose jobs started together must not trade them on a stale view (the
/// equal-load test caught a swap).
pub const SEEN_WITHIN: std::time::Duration = std::time::Duration::from_millis(350);
/// A peer that does not date its load (an older mosaicd): its view is
/// trusted for candidates this much older than [`MIN_RESIDENCY`].
const UNDATED_SLACK: std::time::Duration = std::time::Duration::from_secs(1);

/// Moves sent to one node.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    /// Processes sent, and their memory.
    count: f64,
    mem: u64,
    /// The node's gossiped load when the first of them was sent.
    base: f64,
    /// The highest load it gossiped since: a move it showed once is
    /// never counted again (its jobs may end early and the load drop).
    seen: f64,
    /// When the last one was sent.
    when: std::time::Instant,
}

impl InFlight {
    /// How many its gossiped loads, the latest being `now`, have not shown
    /// yet.
    fn unseen(&mut self, now: f64) -> f64 {
        self.seen = self.seen.max(now);
        (self.base + self.count - self.seen).clamp(0.0, self.count)
    }
}

/// One process at the last sample.
#[derive(Debug, Clone)]
struct Seen {
    start: u64,
    /// The program it runs (`crate::profile::program`), read when first
    /// seen and again when its name changed (an `exec`: a forked `sh`
    /// becoming the `python3` it runs, whose run must not teach the
    /// shell's profile); `None` for guests, which are their home's to
    /// learn.
    program: Option<std::sync::Arc<str>>,
    /// Its name (`comm`) at the last sample.
    comm: Box<str>,
    /// Its age at the sample, in seconds.
    age: f64,
    cpu_ticks: u64,
    /// Time on a CPU or waiting for one so far (ns, `/proc/PID/schedstat`).
    sched_ns: Option<u64>,
    /// Decayed CPU share and runnable fraction.
    share: f64,
    runnable: f64,
    /// System calls forwarded (a guest) or read/write calls (at home) so
    /// far, and their decayed rate.
    io_calls: u64,
    io_rate: f64,
    /// Since when it is busy (Unix ms; 0: not busy).
    busy_since_ms: u64,
}

/// What the node tells the balancer about one process.
pub struct Facts {
    pub kind: Kind,
    /// Calls it forwarded so far, if it is a guest.
    pub forwarded: Option<u64>,
}

impl Balancer {
    /// A balancer that learns into, and places by, `profiles`.
    pub fn with_profiles(profiles: crate::profile::Shared) -> Balancer {
        Balancer {
            profiles,
            ..Default::default()
        }
    }

    /// Processes of this node busy at the last tick (whatever their age):
    /// the node publishes at least this load, so that the others compare
    /// what it compares, and see new work at once.
    pub fn busy(&self) -> usize {
        self.busy
    }

    /// One interval: sample, decide, and return the moves to start.
    pub fn tick(
        &mut self,
        me: &LoadVector,
        peers: Vec<(String, LoadVector)>,
        facts: &dyn Fn(i32) -> Facts,
    ) -> Vec<(i32, String)> {
        let now = std::time::Instant::now();
        let now_ms = mosaic_proto::load::now_ms();
        let dt = self.last.map(|t| now - t).unwrap_or_default().as_secs_f64();
        self.last = Some(now);
        let mut candidates = self.sample(dt, facts);
        self.in_flight
            .retain(|_, f| now.duration_since(f.when) < IN_FLIGHT_FOR);
        let mut peers: Vec<Peer> = peers
            .into_iter()
            .map(|(name, load)| {
                let f = self.in_flight.get_mut(&name);
                let mem = f.as_ref().map_or(0, |f| f.mem);
                Peer {
                    in_flight: f.map_or(0.0, |f| f.unseen(load.load)),
                    in_flight_mem: mem,
                    name,
                    load,
                }
            })
            .collect();
        let mut me = me.clone();
        // The smoothed run queue rises slowly; a node counts what it sees
        // now, its busy processes (the others publish theirs the same way).
        let busy = candidates.iter().filter(|c| c.cpu_share >= BUSY).count();
        let busy_load: f64 = candidates
            .iter()
            .filter(|c| c.cpu_share >= BUSY)
            .map(weight)
            .sum();
        me.load = me.load.max(busy_load);
        self.busy = busy;
        let mut moves = Vec::new();
        // An I/O-heavy guest goes home; then memory; then CPU.
        if let Some(pid) = io_heavy_guest(&candidates) {
            take(&mut candidates, pid);
            me.load = (me.load - 1.0).max(0.0);
            moves.push((pid, HOME.to_string()));
        }
        if let Some((pid, node)) = usher(&me, &peers, &candidates) {
            let mem = take(&mut candidates, pid);
            me.mem_free += mem;
            me.load = (me.load - 1.0).max(0.0);
            self.sent(&mut peers, &node, mem, 1.0, now);
            moves.push((pid, node));
        }
        candidates.retain(|c| c.eager || c.cpu_share >= BUSY);
        let mut decided = 0;
        while decided < MOVES_PER_TICK {
            let (felt_here, felt_there) = shared_view(&me, &peers);
            let Some((pid, node)) = decide(&felt_here, &felt_there, &candidates) else {
                break;
            };
            decided += 1;
            let (resident, busy_since_ms, w, eager) = candidates
                .iter()
                .find(|c| c.pid == pid)
                .map_or((std::time::Duration::ZERO, 0, 1.0, false), |c| {
                    (c.resident, c.busy_since_ms, weight(c), c.eager)
                });
            let mem = take(&mut candidates, pid);
            me.load = (me.load - w).max(0.0);
            // Since it arrived here or became busy, whichever is later: an
            // old idle process that turns busy now is news to the others
            // as much as a new one.
            let started_ms = now_ms
                .saturating_sub(abi::millis(resident))
                .max(busy_since_ms);
            let fresh = peers.iter().find(|p| p.name == node).is_some_and(|p| {
                if p.load.at_ms == 0 {
                    resident >= MIN_RESIDENCY + UNDATED_SLACK
                } else {
                    p.load.at_ms >= started_ms + abi::millis(SEEN_WITHIN)
                }
            });
            if fresh {
                // How long a move waited for its view (the make bench's
                // question: how long a compile stays on a busy node).
                tracing::info!(
                    pid,
                    to = %node,
                    resident_ms = abi::millis(resident),
                    since_news_ms = now_ms.saturating_sub(started_ms),
                    eager,
                    "balancer: a move chosen"
                );
                self.sent(&mut peers, &node, mem, w, now);
                moves.push((pid, node));
            } else if let Some(p) = peers.iter_mut().find(|p| p.name == node) {
                // Not on a fresh view yet: counted for this tick's
                // decisions only.
                p.in_flight += w;
            }
        }
        moves
    }

    /// Counts a move to `node` until its gossiped load shows it.
    fn sent(
        &mut self,
        peers: &mut [Peer],
        node: &str,
        mem: u64,
        load: f64,
        now: std::time::Instant,
    ) {
        let Some(p) = peers.iter_mut().find(|p| p.name == node) else {
            return;
        };
        p.in_flight += load;
        p.in_flight_mem += mem;
        let f = self.in_flight.entry(node.to_string()).or_insert(InFlight {
            count: 0.0,
            mem: 0,
            base: p.load.load,
            seen: p.load.load,
            when: now,
        });
        // Those its load shows are forgotten: what is left, plus this one.
        f.base = p.load.load;
        f.seen = p.load.load;
        f.count = p.in_flight;
        f.mem += mem;
        f.when = now;
    }

    /// The processes of this node's PID namespace with their CPU share
    /// (decayed: half the old value, half the last interval's).
    fn sample(&mut self, dt: f64, facts: &dyn Fn(i32) -> Facts) -> Vec<Candidate> {
        // SAFETY: sysconf takes an integer and returns one.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let uptime: f64 = std::fs::read_to_string("/proc/uptime")
            .ok()
            .and_then(|u| u.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let me = abi::my_pid();
        let mut seen = std::collections::HashMap::new();
        let mut out = Vec::new();
        // Decayed by half per second, whatever the interval.
        let keep = 0.5f64.powf(dt);
        let wall_ms = mosaic_proto::load::now_ms();
        let listed: std::collections::HashSet<i32> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .collect();
        let mut profiles = self.profiles.lock().unwrap_or_else(|e| e.into_inner());
        for &pid in listed.iter().filter(|&&p| p != 1 && p != me) {
            let Ok(raw) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let Some(close) = raw.rfind(')') else {
                continue;
            };
            let comm = raw.get(raw.find('(').unwrap_or(0) + 1..close).unwrap_or("");
            let f: Vec<&str> = raw[close + 2..].split_whitespace().collect();
            let num = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok());
            let (Some(utime), Some(stime), Some(start), Some(rss)) =
                (num(14), num(15), num(22), num(24))
            else {
                continue;
            };
            // Kernel threads have no memory. Mosaic's own tools stay, but
            // are seen: one that execs a program (`mosaic cluster exec`,
            // `mosaic run`) is that program from its exec on, not busy
            // since its start.
            if rss == 0 {
                continue;
            }
            let ours = comm.starts_with("mosaic");
            let ticks = utime + stime;
            let age = (uptime - start as f64 / hz).max(0.0);
            // Runnable: on a crowded CPU a CPU-bound process gets a small
            // share but is always running or waiting to run, and that is
            // what counts. The scheduler's own count of both times says it
            // exactly, even of a process seen for the first time; without
            // it, the state now is a sample.
            let sched_ns = sched_ns(pid);
            let running = if f.first() == Some(&"R") { 1.0 } else { 0.0 };
            let Facts { kind, forwarded } = facts(pid);
            if kind == Kind::Away {
                continue;
            }
            let guest = kind == Kind::Guest;
            let io_calls = forwarded.unwrap_or_else(|| io_calls(pid));
            let program = match self.seen.get(&pid) {
                Some(old) if old.start == start && *old.comm == *comm => old.program.clone(),
                _ if guest || ours => None,
                _ => crate::profile::program_of(pid).map(std::sync::Arc::from),
            };
            let mut now = match self.seen.get(&pid) {
                Some(old) if old.start == start && dt > 0.0 => {
                    let share = (ticks.saturating_sub(old.cpu_ticks) as f64 / hz / dt).min(1.0);
                    let io = io_calls.saturating_sub(old.io_calls) as f64 / dt;
                    let runnable = match (sched_ns, old.sched_ns) {
                        (Some(now), Some(then)) => {
                            (now.saturating_sub(then) as f64 / 1e9 / dt).min(1.0)
                        }
                        _ => running,
                    };
                    let decay = |old: f64, new: f64| keep * old + (1.0 - keep) * new;
                    Seen {
                        start,
                        program: program.clone(),
                        comm: comm.into(),
                        age,
                        cpu_ticks: ticks,
                        sched_ns,
                        share: decay(old.share, share),
                        runnable: decay(old.runnable, runnable),
                        io_calls,
                        io_rate: decay(old.io_rate, io),
                        busy_since_ms: 0,
                    }
                }
                // First seen: what it did since it started (too young to
                // tell: half of what it does now).
                _ => Seen {
                    start,
                    program: program.clone(),
                    comm: comm.into(),
                    age,
                    cpu_ticks: ticks,
                    sched_ns,
                    share: if age >= 0.05 {
                        (ticks as f64 / hz / age).min(1.0)
                    } else {
                        0.0
                    },
                    runnable: match sched_ns {
                        Some(ns) if age >= 0.05 => (ns as f64 / 1e9 / age).min(1.0),
                        _ => 0.5 * running,
                    },
                    io_calls,
                    io_rate: 0.0,
                    busy_since_ms: 0,
                },
            };
            // Known CPU-bound by a hint, or by its program's past runs:
            // it may move at once.
            let eager = kind == Kind::CpuBound
                || (kind == Kind::Free
                    && program
                        .as_deref()
                        .is_some_and(|p| profiles.expects_cpu_bound(p)));
            let demand = if eager {
                1.0
            } else {
                now.share.max(now.runnable)
            };
            // A process first seen busy has been since it started.
            now.busy_since_ms = match self.seen.get(&pid) {
                _ if demand < BUSY => 0,
                // It exec'd: busy, if at all, since then.
                Some(old) if old.start == start && *old.comm != *comm => wall_ms,
                Some(old) if old.start == start && old.busy_since_ms != 0 => old.busy_since_ms,
                Some(old) if old.start == start => wall_ms,
                _ => wall_ms.saturating_sub(abi::float_to_u64(age * 1000.0)),
            };
            let busy_since_ms = now.busy_since_ms;
            seen.insert(pid, now.clone());
            if ours {
                continue;
            }
            // Busy ones may go for CPU, big ones for memory, guests home.
            if demand < BUSY && rss * 4096 < USHER_MIN && !guest {
                continue;
            }
            let resident = std::time::Duration::from_secs_f64(age);
            out.push(Candidate {
                pid,
                cpu_share: demand,
                mem_bytes: rss * 4096,
                forwarded_per_s: now.io_rate,
                resident,
                pinned: kind == Kind::Pinned,
                // A guest runs under mosaic's own filter, which is no
                // reason: it is moved through its deputy (the capture
                // leaves that filter behind).
                cantmove: mosaic_ckpt::cantmove::reasons(pid).map_or(true, |r| {
                    r.iter()
                        .any(|r| !(guest && r == mosaic_ckpt::cantmove::SECCOMP))
                }),
                eager,
                guest,
                busy_since_ms,
            });
        }
        // Those that ended here since the last sample teach their
        // programs what they did (a process sent away is not gone from
        // `/proc`: its placeholder stays, and its run is taught when its
        // guest ends, by the registry).
        for (pid, old) in &self.seen {
            let Some(program) = old.program.as_deref() else {
                continue;
            };
            if listed.contains(pid) || old.age < 0.05 {
                continue;
            }
            let busy = old
                .sched_ns
                .map_or(old.runnable, |ns| (ns as f64 / 1e9 / old.age).min(1.0));
            profiles.learn(
                program,
                crate::profile::Run {
                    cpu_s: old.cpu_ticks as f64 / hz,
                    busy,
                    io_per_s: old.io_rate,
                },
            );
        }
        drop(profiles);
        self.seen = seen;
        out
    }
}

/// Time process `pid` spent on a CPU and waiting for one, in ns (the first
/// two fields of `/proc/PID/schedstat`; absent without CONFIG_SCHED_INFO).
fn sched_ns(pid: i32) -> Option<u64> {
    let raw = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    let mut f = raw.split_whitespace().map(|v| v.parse::<u64>().ok());
    Some(f.next()??.saturating_add(f.next()??))
}

/// Removes process `pid` from `candidates` (it is moving); returns its memory.
fn take(candidates: &mut Vec<Candidate>, pid: i32) -> u64 {
    let mem = candidates
        .iter()
        .find(|c| c.pid == pid)
        .map_or(0, |c| c.mem_bytes);
    candidates.retain(|c| c.pid != pid);
    mem
}

/// Read and write system calls of a process at home (`/proc/PID/io`): how
/// many calls it would forward if it ran elsewhere.
fn io_calls(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.strip_prefix("syscr: ")
                .or_else(|| l.strip_prefix("syscw: "))
        })
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .sum()
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
            ..Default::default()
        }
    }

    fn peer(name: &str, v: LoadVector) -> Peer {
        Peer {
            name: name.into(),
            load: v,
            in_flight: 0.0,
            in_flight_mem: 0,
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

    /// A process whose four threads are busy is four loads: it leaves a
    /// node of five for an idle one (one against four then, and not moved
    /// back), not for a node of two (it would make six against one),
    /// where a single thread would go.
    #[test]
    fn a_process_of_four_busy_threads_counts_four() {
        let four = Candidate {
            cpu_share: 4.0,
            ..busy(7)
        };
        let me = node(5.0, 1, 1000);
        let idle = [peer("b", node(0.0, 1, 1000))];
        let two = [peer("b", node(2.0, 1, 1000))];
        assert_eq!(
            decide(&me, &idle, std::slice::from_ref(&four)),
            Some((7, "b".into()))
        );
        let back = [peer("a", node(1.0, 1, 1000))];
        assert_eq!(
            decide(&node(4.0, 1, 1000), &back, std::slice::from_ref(&four)),
            None
        );
        assert_eq!(decide(&me, &two, &[four]), None);
        assert_eq!(decide(&me, &two, &[busy(8)]), Some((8, "b".into())));
    }

    #[test]
    fn of_nearly_equal_candidates_the_one_here_longest_moves() {
        let young = Candidate {
            eager: true,
            resident: Duration::from_millis(100),
            ..busy(90)
        };
        let old = Candidate {
            cpu_share: 0.97,
            ..busy(80)
        };
        let older = Candidate {
            cpu_share: 0.96,
            resident: Duration::from_secs(9),
            ..busy(95)
        };
        let peers = [peer("b", node(1.0, 1, 1000))];
        let me = node(3.0, 1, 1000);
        assert_eq!(
            decide(&me, &peers, &[young.clone(), old.clone(), older]),
            Some((95, "b".into()))
        );
        // A clearly better one still goes first.
        let idle_ish = Candidate {
            cpu_share: 0.6,
            ..old
        };
        assert_eq!(
            decide(&me, &peers, &[young, idle_ish]),
            Some((90, "b".into()))
        );
    }

    /// Runs the rule until it stops moving; returns the loads.
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the loads of these tests are small whole numbers"
    )]
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
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the loads of these tests are small whole numbers"
    )]
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
    fn moves_once_seen_on_the_target_are_not_counted_again_when_its_jobs_end() {
        let mut f = InFlight {
            count: 4.0,
            mem: 0,
            base: 0.0,
            seen: 0.0,
            when: std::time::Instant::now(),
        };
        assert_eq!(f.unseen(1.0), 3.0, "one shows");
        assert_eq!(f.unseen(4.0), 0.0, "all show");
        // Two of them end early: its load drops, and they stay seen (they
        // were counted again, and the target looked busy for 10 s).
        assert_eq!(f.unseen(2.0), 0.0);
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

    fn big(pid: i32, mib: u64) -> Candidate {
        Candidate {
            pid,
            cpu_share: 0.0,
            mem_bytes: mib << 20,
            resident: Duration::from_secs(5),
            ..Default::default()
        }
    }

    fn with_memory(total_mib: u64, free_mib: u64) -> LoadVector {
        LoadVector {
            mem_total: total_mib << 20,
            mem_free: free_mib << 20,
            ..node(0.0, 1, 1000)
        }
    }

    #[test]
    fn a_node_short_of_memory_ushers_its_biggest_process_where_it_fits() {
        let me = with_memory(600, 100);
        let roomy = peer("roomy", with_memory(8000, 7000));
        let tight = peer("tight", with_memory(1000, 600));
        let jobs = [big(1, 40), big(2, 400), big(3, 10)];
        assert_eq!(
            usher(&me, &[tight.clone(), roomy.clone()], &jobs),
            Some((2, "roomy".into()))
        );
        // Not short: nothing moves; nowhere it fits: nothing moves.
        assert_eq!(usher(&with_memory(600, 300), &[roomy], &jobs), None);
        assert_eq!(usher(&me, &[tight], &jobs), None);
        // Pinned, young or small processes are not ushered.
        let mut pinned = big(2, 400);
        pinned.pinned = true;
        let mut young = big(4, 400);
        young.resident = Duration::ZERO;
        let roomy = peer("roomy", with_memory(8000, 7000));
        assert_eq!(usher(&me, &[roomy], &[pinned, young, big(5, 8)]), None);
    }

    #[test]
    fn io_heavy_processes_stay_home_and_io_heavy_guests_go_home() {
        let mut reader = busy(3);
        reader.forwarded_per_s = 5000.0;
        let empty = peer("b", node(0.0, 1, 1000));
        assert_eq!(
            decide(&node(3.0, 1, 1000), &[empty], &[reader.clone()]),
            None
        );
        assert_eq!(io_heavy_guest(&[reader.clone()]), None, "not a guest");
        reader.guest = true;
        assert_eq!(io_heavy_guest(&[busy(2), reader]), Some(3));
    }

    fn on_cpus(load: f64, cpus: &[u32]) -> LoadVector {
        LoadVector {
            machine: "m".into(),
            cpuset: cpus.to_vec(),
            ..node(load, u32::try_from(cpus.len()).unwrap(), 1000)
        }
    }

    #[test]
    fn nodes_sharing_a_cpu_count_each_others_load() {
        // Four one-CPU nodes on two CPUs: node1 and node3 share CPU 0.
        let me = on_cpus(10.0, &[0]);
        let peers = [
            peer("node2", on_cpus(0.0, &[1])),
            peer("node3", on_cpus(0.0, &[0])),
            peer("node4", on_cpus(0.0, &[1])),
        ];
        let (felt_here, felt_there) = shared_view(&me, &peers);
        assert_eq!(felt_here.load, 10.0);
        let loads: Vec<f64> = felt_there.iter().map(|p| p.load.load).collect();
        assert_eq!(loads, [0.0, 10.0, 0.0]);
        // So work goes to the other CPU, never to node3.
        let (to, _) = (0..10).fold((Vec::new(), peers.to_vec()), |(mut to, mut ps), i| {
            let load = on_cpus(10.0 - to.len() as f64, &[0]);
            let (h, t) = shared_view(&load, &ps);
            if let Some((_, n)) = decide(&h, &t, &[busy(i)]) {
                ps.iter_mut().find(|p| p.name == n).unwrap().in_flight += 1.0;
                to.push(n);
            }
            (to, ps)
        });
        assert!(!to.contains(&"node3".to_string()), "{to:?}");
        assert_eq!(to.len(), 5, "CPU 0 and CPU 1 end with five each: {to:?}");
        // A node of another machine, or one that does not say, is alone.
        let mut far = on_cpus(1.0, &[0]);
        far.machine = "other".into();
        let (_, t) = shared_view(&me, &[peer("far", far)]);
        assert_eq!(t[0].load.load, 1.0);
    }

    /// Busy shell loops, killed when dropped.
    struct Spinners(Vec<std::process::Child>);

    impl Drop for Spinners {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    impl Spinners {
        /// Three `sh -c script` processes.
        fn start(script: &str) -> Spinners {
            Spinners(
                (0..3)
                    .map(|_| {
                        std::process::Command::new("sh")
                            .args(["-c", script])
                            .spawn()
                            .expect("sh runs")
                    })
                    .collect(),
            )
        }

        fn pids(&self) -> Vec<i32> {
            self.0.iter().map(|c| abi::pid(c.id())).collect()
        }
    }

    /// The balancer's facts: `pids` are free, every other process of the
    /// machine is pinned (but counts as load).
    fn only(pids: &[i32]) -> impl Fn(i32) -> Facts + '_ {
        move |pid| Facts {
            kind: if pids.contains(&pid) {
                Kind::Free
            } else {
                Kind::Pinned
            },
            forwarded: None,
        }
    }

    /// An idle node2 whose view was published at `at_ms`.
    fn idle_node2(at_ms: u64) -> Vec<(String, LoadVector)> {
        vec![(
            "node2".to_string(),
            LoadVector {
                at_ms,
                ..node(0.0, 1, 1000)
            },
        )]
    }

    #[test]
    fn busy_processes_are_seen_at_once_and_a_move_waits_for_a_view_of_the_target_newer_than_them() {
        let born = mosaic_proto::load::now_ms();
        let spin = Spinners::start("while :; do :; done");
        let pids = spin.pids();
        // Old enough to move, never sampled before.
        std::thread::sleep(MIN_RESIDENCY + Duration::from_millis(100));
        let facts = only(&pids);
        let me = node(0.0, 1, 1000);
        let idle = idle_node2;
        let mut b = Balancer::default();
        // The target's view is older than the spinners (or too close to
        // their start to show the like of them there).
        assert!(b.tick(&me, idle(born - 1000), &facts).is_empty());
        // The scheduler's counts show them busy on the first sample.
        assert!(b.busy() >= pids.len(), "busy {} of {pids:?}", b.busy());
        std::thread::sleep(Duration::from_millis(50));
        assert!(b.tick(&me, idle(born + 100), &facts).is_empty());
        std::thread::sleep(Duration::from_millis(50));
        let moves = b.tick(&me, idle(mosaic_proto::load::now_ms()), &facts);
        assert!(!moves.is_empty(), "a fresh view confirms the move");
        for (pid, node) in &moves {
            assert!(pids.contains(pid), "{pid} is one of the spinners");
            assert_eq!(node, "node2");
        }
    }

    #[test]
    fn an_old_process_that_turns_busy_waits_for_a_view_newer_than_its_turn() {
        let born = mosaic_proto::load::now_ms();
        let spin = Spinners::start("sleep 0.8; while :; do :; done");
        let pids = spin.pids();
        let facts = only(&pids);
        let me = node(0.0, 1, 1000);
        let peer = idle_node2;
        let mut b = Balancer::default();
        // Sampled every 100 ms for 2.2 s: idle for 0.8 s, then spinning,
        // busy (half of the time runnable, decayed) from about 1.8 s.
        for _ in 0..22 {
            // A view from before they started never confirms a move.
            assert!(b.tick(&me, peer(born - 1000), &facts).is_empty());
            std::thread::sleep(Duration::from_millis(100));
        }
        // Older than half a second, but busy only lately: a view dated
        // after their start yet before their turn does not confirm.
        assert!(b.tick(&me, peer(born + 1000), &facts).is_empty());
        std::thread::sleep(Duration::from_millis(50));
        let moves = b.tick(&me, peer(mosaic_proto::load::now_ms()), &facts);
        assert!(!moves.is_empty(), "a view newer than the turn confirms");
    }

    /// A forked shell that execs another program is that program from
    /// then on: before, it kept the shell's key, and the python3 it ran
    /// taught `sh -c ...` to be CPU-bound, whose next fork was then moved
    /// at once, only to come home at its exec (the balance test of an
    /// I/O-heavy guest saw that move).
    #[test]
    fn a_process_that_execs_is_its_new_program() {
        let spin = Spinners::start("sleep 0.4; exec sleep 30");
        let pids = spin.pids();
        let facts = only(&pids);
        let me = node(0.0, 1, 1000);
        let mut b = Balancer::default();
        let _ = b.tick(&me, idle_node2(0), &facts);
        let program = |b: &Balancer| b.seen[&pids[0]].program.as_deref().map(str::to_owned);
        let first = program(&b).unwrap();
        assert!(first.contains("sh"), "{first}");
        std::thread::sleep(Duration::from_millis(700));
        let _ = b.tick(&me, idle_node2(0), &facts);
        let then = program(&b).unwrap();
        assert!(then.ends_with("sleep *"), "{then}");
    }

    #[test]
    fn a_program_whose_past_runs_were_long_and_busy_moves_at_its_start_and_a_short_one_teaches() {
        let spin = Spinners::start("exec sleep 30");
        let pids = spin.pids();
        std::thread::sleep(Duration::from_millis(100)); // exec'd
        let facts = only(&pids);
        let me = node(0.0, 1, 1000);
        let fresh = || idle_node2(mosaic_proto::load::now_ms() + 1000);
        // Never seen: an idle young process stays.
        let mut b = Balancer::default();
        assert!(b.tick(&me, fresh(), &facts).is_empty());
        // Its program known long and CPU-bound: it moves at once, young
        // and idle as it is (a view newer than its start confirms).
        let profiles = crate::profile::Profiles::shared();
        let program = crate::profile::program_of(pids[0]).unwrap();
        assert!(program.ends_with("sleep *"), "{program}");
        let long = crate::profile::Run {
            cpu_s: 2.0,
            busy: 1.0,
            io_per_s: 0.0,
        };
        profiles.lock().unwrap().learn(&program, long);
        let mut b = Balancer::with_profiles(profiles.clone());
        let moves = b.tick(&me, fresh(), &facts);
        assert!(
            moves
                .iter()
                .any(|(pid, node)| pids.contains(pid) && node == "node2"),
            "{moves:?}"
        );
        // A run that ends here teaches what it did: sleeps are idle.
        let mut b = Balancer::with_profiles(profiles.clone());
        let _ = b.tick(&me, idle_node2(0), &facts);
        drop(spin);
        std::thread::sleep(Duration::from_millis(50));
        let _ = b.tick(&me, idle_node2(0), &facts);
        assert!(!profiles.lock().unwrap().expects_cpu_bound(&program));
    }
}
