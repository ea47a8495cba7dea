//! Migration time by memory size, and the openMosix test loop native vs
//! migrated, in one run.
//!
//! `cargo build --release && cargo run --release -p mosaic-bench --bin migrate-bench` (root)
//!
//! (a) A process with 1, 64 and 512 MiB touched is migrated node1 -> node2
//! and back home; reported: the time of `mosaic migrate` from request to
//! the process running at its destination, and the freeze as the process
//! itself saw it (the longest gap between two clock readings of its busy
//! loop). The 64 MiB one also with 15 more threads, asleep (the threads
//! issue: a 16-thread process beside a single-threaded one). Idle guest memory is returned to the host after ~2 s on these
//! VMs, so each size runs right after its touch.
//! (c) `mawk` running the openMosix loop, wall time natively in node2 and
//! started in node1 then migrated to node2 right after start (nodes pinned
//! one CPU each, so both runs end on the same CPU), seven runs each,
//! alternating; the fastest of each (noise only adds) and the medians.

use std::time::Instant;

use mosaic_bench::LocalCluster;

const RUNS: usize = 7;
const LOOP: &str = "BEGIN {for(i=0;i<10000;i++) for(j=0;j<10000;j++);}";

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("mosaic-migrate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let freezer = mosaic_bench::build_c("freeze_gap", &dir)?;
    // node1 and node2 pinned to their own CPUs, so that the loop gets the
    // same CPU share at home and away.
    let c = LocalCluster::up(&dir.join("cluster"), 2, 28946, &["--cpus-per-node", "1"])?;

    println!("(a) migration of a busy process, request to running / freeze seen by the process");
    println!("   touched threads  node1 -> node2            node2 -> home");
    for (mib, threads) in [(1u64, 1u32), (64, 1), (64, 16), (512, 1)] {
        let (mut run, mut out, pid) = c.start_in_node1(&[
            freezer.to_str().unwrap(),
            &mib.to_string(),
            &(threads - 1).to_string(),
        ])?;
        let t = Instant::now();
        c.migrate(&pid, "node2")?;
        let away = t.elapsed().as_secs_f64();
        let t = Instant::now();
        c.migrate(&pid, "home")?;
        let back = t.elapsed().as_secs_f64();
        let _ = c
            .cmd(&["cluster", "exec", "node1", "--", "kill", "-TERM", &pid])
            .output()?;
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest)?;
        run.wait()?;
        let gap: f64 = rest
            .trim()
            .strip_prefix("gap ")
            .and_then(|g| g.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no gap in {rest:?}"))?;
        println!(
            "{mib:>6} MiB {threads:>7}  {:>8.1} ms ({:>5.2} GB/s)   {:>8.1} ms   longest freeze {:>8.1} ms",
            away * 1e3,
            mib as f64 * 1.048_576e-3 / away,
            back * 1e3,
            gap / 1e6
        );
    }

    println!(
        "(c) openMosix loop in mawk: native in node2 vs started in node1 and migrated to node2"
    );
    let time_loop = |migrate: bool| -> anyhow::Result<f64> {
        let t = Instant::now();
        // Native on node2's CPU, migrated from node1 to node2: both runs
        // end on the same CPU, so only the migration differs.
        let node = if migrate { "node1" } else { "node2" };
        let mut run = c
            .cmd(&["cluster", "exec", node, "--", "mawk", LOOP])
            .spawn()?;
        if migrate {
            let e = run.id();
            // The program's PID inside node1 (NSpid of the exec's child).
            let pid = loop {
                let children = std::fs::read_to_string(format!("/proc/{e}/task/{e}/children"))
                    .unwrap_or_default();
                if let Some(host) = children.split_whitespace().next() {
                    let status = std::fs::read_to_string(format!("/proc/{host}/status"))?;
                    if let Some(ns) = status.lines().find_map(|l| l.strip_prefix("NSpid:")) {
                        break ns.split_whitespace().last().unwrap_or("0").to_string();
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            };
            c.migrate(&pid, "node2")?;
        }
        anyhow::ensure!(run.wait()?.success(), "mawk failed");
        Ok(t.elapsed().as_secs_f64())
    };
    let (mut native, mut migrated) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        native.push(time_loop(false)?);
        migrated.push(time_loop(true)?);
    }
    native.sort_by(f64::total_cmp);
    migrated.sort_by(f64::total_cmp);
    // Noise on this VM only ever adds time: the fastest run of each is the
    // best estimate of its cost; the medians are shown too.
    let (n, m) = (native[0], migrated[0]);
    println!(
        "native {n:.3} s   migrated {m:.3} s (fastest of {RUNS}; medians {:.3} / {:.3}; all {native:.3?} / {migrated:.3?})   overhead {:+.2}% (goal < 1%)",
        native[RUNS / 2],
        migrated[RUNS / 2],
        (m / n - 1.0) * 100.0
    );
    drop(c);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
