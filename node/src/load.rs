//! This node's load vector: smoothed run queue, CPUs, speed, memory.
//!
//! The load is measured the openMosix way: the number of runnable tasks is
//! sampled ten times a second, averaged over one second, and folded into a
//! value that rises slowly (so a short burst does not make a node look busy)
//! and drops at once (so a node that became idle is offered work at once).
//! Tasks of `mosaicd` itself are not counted.
//!
//! The run queue is read from `/proc/*/task/*/stat` of the daemon's own PID
//! namespace: on a real machine that is the machine; on a namespaced local
//! node it is that node's processes only, which is what makes the local
//! cluster's loads differ.

use std::path::Path;
use std::time::{Duration, Instant};

use mosaic_proto::LoadVector;

/// Fraction of the gap closed per second when the load rises.
pub const RISE_RATE: f64 = 0.3;
/// How often the run queue is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Samples averaged into one load update.
pub const SAMPLES_PER_UPDATE: u32 = 10;
/// The last samples the load drops to at once, if lower.
const RECENT: usize = 3;

/// The smoothing rule: rises slowly, drops at once.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoadAverager {
    load: f64,
}

impl LoadAverager {
    /// Folds in one update (the mean run queue over the last second).
    pub fn update(&mut self, sample: f64) -> f64 {
        if sample >= self.load {
            self.load += (sample - self.load) * RISE_RATE;
        } else {
            self.load = sample;
        }
        self.load
    }

    /// Drops to `recent` (the run queue of the last few samples) if that
    /// is lower: jobs that ended are not load a second later.
    pub fn drop_to(&mut self, recent: f64) -> f64 {
        self.load = self.load.min(recent);
        self.load
    }

    /// The current value.
    pub fn load(&self) -> f64 {
        self.load
    }
}

/// Counts runnable tasks under `proc_root` (normally `/proc`), not counting
/// the tasks of process `exclude`.
pub fn count_runnable(proc_root: &Path, exclude: u32) -> u32 {
    let Ok(procs) = std::fs::read_dir(proc_root) else {
        return 0;
    };
    let mut n = 0;
    for entry in procs.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == exclude {
            continue;
        }
        let Ok(tasks) = std::fs::read_dir(entry.path().join("task")) else {
            continue;
        };
        for task in tasks.flatten() {
            // Processes come and go while we read: a vanished file is not an error.
            if let Ok(stat) = std::fs::read_to_string(task.path().join("stat"))
                && task_state(&stat) == Some('R')
            {
                n += 1;
            }
        }
    }
    n
}

/// The state letter of a `/proc/.../stat` line (the comm field may hold
/// spaces and parentheses, so look after the last `)`).
pub fn task_state(stat: &str) -> Option<char> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.trim_start().chars().next()
}

/// Resident memory of every process under `proc_root`, in bytes.
pub fn resident_bytes(proc_root: &Path) -> u64 {
    let Ok(procs) = std::fs::read_dir(proc_root) else {
        return 0;
    };
    procs
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("statm")).ok())
        .filter_map(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum::<u64>()
        * 4096
}

/// CPUs this process may run on.
pub fn usable_cpus() -> u32 {
    std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or(1)
}

/// `MemTotal` and `MemAvailable` from `/proc/meminfo`, in bytes.
pub fn meminfo() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    parse_meminfo(&text)
}

fn parse_meminfo(text: &str) -> (u64, u64) {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kib| kib * 1024)
            .unwrap_or(0)
    };
    (field("MemTotal:"), field("MemAvailable:"))
}

/// Relative CPU speed, measured by a loop of dependent multiply-adds:
/// 1000 means 10^9 iterations per second. The best of five 10 ms rounds is
/// kept, so a round disturbed by another process does not count; still,
/// calibrating on a busy CPU or a debug build gives a low value: set `speed`
/// in the config where that matters.
pub fn calibrate_speed() -> u32 {
    let mut best = 0.0f64;
    for _ in 0..5 {
        let start = Instant::now();
        let mut x: u64 = 1;
        let mut iterations: u64 = 0;
        while start.elapsed() < Duration::from_millis(10) {
            for _ in 0..10_000 {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
            }
            iterations += 10_000;
        }
        std::hint::black_box(x);
        best = best.max(iterations as f64 / start.elapsed().as_secs_f64());
    }
    speed_of(best)
}

/// The speed for a rate of `per_second` iterations: millions a second,
/// rounded, never 0 (a node of speed 0 would look infinitely slow).
fn speed_of(per_second: f64) -> u32 {
    if per_second.is_finite() && per_second > 0.0 {
        mosaic_proto::abi::float_to_u32((per_second / 1e6).round()).max(1)
    } else {
        1
    }
}

/// Fixed parts of the load vector, decided at start.
#[derive(Debug, Clone)]
pub struct NodeShape {
    pub cpus: u32,
    pub speed: u32,
    pub accepts_guests: bool,
    /// Memory offered, in bytes (`memory_mib`); the machine's when `None`.
    pub memory: Option<u64>,
    /// This machine's boot id and the CPUs this node may run on.
    pub machine: String,
    pub cpuset: Vec<u32>,
}

impl NodeShape {
    /// This machine's boot id and the CPUs this process may run on.
    pub fn placement() -> (String, Vec<u32>) {
        let machine = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let cpuset = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
            .map(|set| {
                (0..u32::try_from(nix::sched::CpuSet::count()).unwrap_or(u32::MAX))
                    .filter(|&c| set.is_set(c as usize).unwrap_or(false))
                    .collect()
            })
            .unwrap_or_default();
        (machine, cpuset)
    }
}

/// Samples the run queue on a plain thread and hands out fresh load vectors.
pub struct Sampler {
    rx: tokio::sync::watch::Receiver<LoadVector>,
}

impl Sampler {
    /// Starts sampling `/proc`.
    pub fn start(shape: NodeShape) -> Sampler {
        let (tx, rx) = tokio::sync::watch::channel(vector(&shape, 0.0, 0.0));
        let me = std::process::id();
        std::thread::Builder::new()
            .name("load-sampler".into())
            .spawn(move || {
                let mut avg = LoadAverager::default();
                let mut last = std::collections::VecDeque::new();
                let mut total = 0u32;
                // CPUs busy, summed over an update's samples, and the last
                // update's mean share.
                let (mut busy, mut util) = (0u32, 0.0);
                for n in 1u32.. {
                    let now = count_runnable(Path::new("/proc"), me);
                    total += now;
                    busy += now.min(shape.cpus.max(1));
                    last.push_back(now);
                    if last.len() > RECENT {
                        last.pop_front();
                    }
                    // Rises once a second by the second's mean; drops at
                    // once to the last few samples' (a node whose jobs
                    // ended looked busy up to two seconds more, and no work
                    // came: seen as gaps of 1-9 s in a make -j).
                    let mut load = avg.load();
                    if n % SAMPLES_PER_UPDATE == 0 {
                        load = avg.update(f64::from(total) / f64::from(SAMPLES_PER_UPDATE));
                        util = f64::from(busy) / f64::from(SAMPLES_PER_UPDATE * shape.cpus.max(1));
                        (total, busy) = (0, 0);
                    }
                    if last.len() == RECENT {
                        load = avg.drop_to(f64::from(last.iter().sum::<u32>()) / RECENT as f64);
                    }
                    if tx.send(vector(&shape, load, util)).is_err() {
                        return; // the daemon is gone
                    }
                    std::thread::sleep(SAMPLE_EVERY);
                }
            })
            .expect("cannot start the load sampler thread");
        Sampler { rx }
    }

    /// The latest load vector.
    pub fn current(&self) -> LoadVector {
        self.rx.borrow().clone()
    }
}

fn vector(shape: &NodeShape, load: f64, util: f64) -> LoadVector {
    let (mut mem_total, mut mem_free) = meminfo();
    if let Some(offered) = shape.memory {
        // What this node's processes (its PID namespace) do not hold yet,
        // and never more than the machine has.
        mem_free = offered
            .saturating_sub(resident_bytes(Path::new("/proc")))
            .min(mem_free);
        mem_total = offered;
    }
    LoadVector {
        load: (load * 100.0).round() / 100.0,
        cpus: shape.cpus,
        speed: shape.speed,
        util: (util * 100.0).round() / 100.0,
        mem_total,
        mem_free,
        guests: 0,
        accepts_guests: shape.accepts_guests,
        machine: shape.machine.clone(),
        cpuset: shape.cpuset.clone(),
        at_ms: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_drops_to_the_recent_run_queue_at_once() {
        let mut a = LoadAverager::default();
        for _ in 0..20 {
            a.update(3.0);
        }
        assert!(a.load() > 2.9);
        assert_eq!(a.drop_to(4.0), a.load(), "never raised by a drop");
        assert_eq!(a.drop_to(1.0), 1.0);
    }

    #[test]
    fn load_rises_slowly_and_drops_at_once() {
        let mut a = LoadAverager::default();
        let first = a.update(1.0);
        assert!(first > 0.0 && first < 0.5, "{first}");
        for _ in 0..20 {
            a.update(1.0);
        }
        assert!(a.load() > 0.95);
        assert_eq!(a.update(0.0), 0.0);
    }

    #[test]
    fn task_state_survives_odd_names() {
        assert_eq!(task_state("12 (a) b) R 1 2"), Some('R'));
        assert_eq!(task_state("12 (sleepy) S 1"), Some('S'));
        assert_eq!(task_state("garbage"), None);
    }

    #[test]
    fn meminfo_parses() {
        let (t, f) = parse_meminfo("MemTotal:  1000 kB\nMemFree: 1 kB\nMemAvailable:   500 kB\n");
        assert_eq!((t, f), (1_024_000, 512_000));
    }

    #[test]
    fn a_spinning_thread_is_counted_as_runnable() {
        // Spin in a child process so that excluding ourselves does not hide it.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let mut seen = 0;
        for _ in 0..50 {
            seen = seen.max(count_runnable(Path::new("/proc"), std::process::id()));
            if seen > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(seen >= 1, "a busy shell loop was never seen runnable");
    }

    #[test]
    fn speed_is_millions_of_iterations_a_second_and_never_zero() {
        assert_eq!(speed_of(2.6e9), 2600);
        assert_eq!(speed_of(1.49e6), 1);
        assert_eq!(speed_of(1.51e6), 2);
        for nothing in [0.0, 1.0, -5.0, f64::NAN, f64::INFINITY] {
            assert_eq!(speed_of(nothing), 1, "{nothing}");
        }
        assert_eq!(speed_of(1e30), u32::MAX);
    }
}
