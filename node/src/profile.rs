//! What programs did when they ran from this node before, so that the
//! next run of one that was long and CPU-bound is placed when it starts
//! (the balancer may move it at once, as if `mosaic run --cpu-bound` had
//! said so) instead of after it has proved busy for half a second on a
//! crowded node: a compiler's `cc1` of a `make -j` is the case.
//!
//! A program is its executable and the shape of its arguments (options as
//! they are, other words by their extension: `cc1 -quiet *.c -O2 -o *.s`),
//! so that the same compiler on other files is the same program and
//! `python3 -c ...` is not `python3 *.py`. Each run that ends teaches its
//! CPU time, how busy it was (CPU, or waiting for one, over its wall time)
//! and its I/O rate; the latest runs count most. The table is bounded
//! ([`CAPACITY`], the least recently taught go first) and kept per home
//! node, in memory: the home is where its processes start.
//!
//! Why this cannot make short jobs slower: only a program whose past runs
//! used at least [`EAGER_CPU_S`] of CPU, busy, with few I/O calls, is
//! placed early; a move of a process just after `exec` costs about 20 ms
//! (a few hundred kilobytes), 2% of such a run, and a run that turns out
//! short teaches its shortness at once. Programs never seen, or known
//! short or I/O-heavy, follow the usual rule (busy for 0.5 s, then move).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// At most this many programs are remembered.
pub const CAPACITY: usize = 512;
/// Past runs of at least this much CPU time...
pub const EAGER_CPU_S: f64 = 1.0;
/// ...at least this busy (on a CPU or waiting for one, over wall time)...
pub const EAGER_BUSY: f64 = 0.8;
/// ...and with fewer I/O calls a second than the balancer's I/O-heavy
/// mark make a program expected CPU-bound.
pub const EAGER_IO: f64 = crate::balancer::IO_HEAVY;

/// What one run did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    pub cpu_s: f64,
    /// On a CPU or waiting for one, over its wall time (0..1).
    pub busy: f64,
    pub io_per_s: f64,
}

#[derive(Debug, Clone, Copy)]
struct Profile {
    /// Decayed: half the last run, half the earlier ones.
    run: Run,
    runs: u32,
    /// When it was last taught (the table's clock).
    taught: u64,
}

/// The programs this node has seen run, bounded.
#[derive(Debug, Default)]
pub struct Profiles {
    map: HashMap<String, Profile>,
    clock: u64,
}

/// The table as the balancer and the registry share it.
pub type Shared = Arc<Mutex<Profiles>>;

impl Profiles {
    pub fn shared() -> Shared {
        Arc::default()
    }

    /// Teaches what a run of `program` did.
    pub fn learn(&mut self, program: &str, run: Run) {
        self.clock += 1;
        let clock = self.clock;
        let mix = |old: f64, new: f64| 0.5 * old + 0.5 * new;
        self.map
            .entry(program.to_owned())
            .and_modify(|p| {
                p.run = Run {
                    cpu_s: mix(p.run.cpu_s, run.cpu_s),
                    busy: mix(p.run.busy, run.busy),
                    io_per_s: mix(p.run.io_per_s, run.io_per_s),
                };
                p.runs = p.runs.saturating_add(1);
                p.taught = clock;
            })
            .or_insert(Profile {
                run,
                runs: 1,
                taught: clock,
            });
        if self.map.len() > CAPACITY
            && let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, p)| p.taught)
                .map(|(k, _)| k.clone())
        {
            self.map.remove(&oldest);
        }
    }

    /// Whether the next run of `program` is expected long and CPU-bound.
    pub fn expects_cpu_bound(&self, program: &str) -> bool {
        self.map.get(program).is_some_and(|p| {
            p.run.cpu_s >= EAGER_CPU_S && p.run.busy >= EAGER_BUSY && p.run.io_per_s <= EAGER_IO
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// A program: its executable and the shape of its arguments (at most 16).
pub fn program<'a>(exe: &str, args: impl IntoIterator<Item = &'a str>) -> String {
    let mut key = exe.to_owned();
    for a in args.into_iter().skip(1).take(16) {
        key.push(' ');
        if a.starts_with('-') {
            key.extend(a.chars().take(32));
        } else {
            let name = a.rsplit('/').next().unwrap_or(a);
            match name.rsplit_once('.') {
                Some((_, ext))
                    if !ext.is_empty()
                        && ext.len() <= 8
                        && ext.chars().all(|c| c.is_ascii_alphanumeric()) =>
                {
                    key.push_str("*.");
                    key.push_str(ext);
                }
                _ => key.push('*'),
            }
        }
    }
    key
}

/// The program process `pid` runs, from `/proc`.
pub fn program_of(pid: i32) -> Option<String> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text = String::from_utf8_lossy(&cmdline);
    Some(program(
        &exe.to_string_lossy(),
        text.split('\0').filter(|a| !a.is_empty()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_is_its_executable_and_its_arguments_shape() {
        let cc1 = |file: &str| {
            program(
                "/usr/libexec/gcc/x86_64-linux-gnu/12/cc1",
                ["cc1", "-quiet", file, "-O2", "-o", "/tmp/ccAbc.s"],
            )
        };
        assert_eq!(cc1("f1.c"), cc1("dir/other.c"));
        assert_eq!(
            cc1("f1.c"),
            "/usr/libexec/gcc/x86_64-linux-gnu/12/cc1 -quiet *.c -O2 -o *.s"
        );
        assert_ne!(
            program("/usr/bin/python3", ["python3", "-c", "print(1)"]),
            program("/usr/bin/python3", ["python3", "job.py"])
        );
    }

    #[test]
    fn long_busy_quiet_runs_make_a_program_cpu_bound_and_a_short_one_unmakes_it() {
        let mut p = Profiles::default();
        let long = Run {
            cpu_s: 1.6,
            busy: 0.97,
            io_per_s: 3.0,
        };
        assert!(!p.expects_cpu_bound("cc1"), "never seen");
        p.learn("cc1", long);
        assert!(p.expects_cpu_bound("cc1"));
        p.learn(
            "cc1",
            Run {
                cpu_s: 0.05,
                ..long
            },
        );
        assert!(!p.expects_cpu_bound("cc1"), "a short run counts at once");
        p.learn(
            "cat",
            Run {
                io_per_s: 5000.0,
                ..long
            },
        );
        assert!(!p.expects_cpu_bound("cat"), "I/O-heavy");
        p.learn("sleep", Run { busy: 0.01, ..long });
        assert!(!p.expects_cpu_bound("sleep"), "idle");
    }

    #[test]
    fn the_table_is_bounded_and_forgets_the_least_recently_taught() {
        let mut p = Profiles::default();
        let run = Run {
            cpu_s: 2.0,
            busy: 1.0,
            io_per_s: 0.0,
        };
        for i in 0..CAPACITY + 10 {
            p.learn(&format!("prog{i}"), run);
            p.learn("kept", run);
        }
        assert_eq!(p.len(), CAPACITY);
        assert!(p.expects_cpu_bound("kept"));
        assert!(!p.expects_cpu_bound("prog0"));
    }
}
