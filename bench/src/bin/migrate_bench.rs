//! Migration time by memory size, and the openMosix test loop native vs
//! migrated, in one run.
//!
//! `cargo build --release && cargo run --release -p mosaic-bench --bin migrate-bench` (root)
//!
//! (a) A process with 1, 64 and 512 MiB touched is migrated node1 -> node2;
//! reported: the time of `mosaic migrate` from request to the guest
//! running, which is also how long the process is frozen (it is stopped
//! from capture until the guest runs). Idle guest memory is returned to the
//! host after ~2 s on these VMs, so each size runs right after its touch.
//! (c) `mawk` running the openMosix loop, wall time natively in node1 and
//! migrated to node2 right after start (nodes pinned one CPU each, so the
//! two runs get the same CPU share).

use std::time::Instant;

use mosaic_bench::LocalCluster;

const LOOP: &str = "BEGIN {for(i=0;i<10000;i++) for(j=0;j<10000;j++);}";

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("mosaic-migrate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let toucher = mosaic_bench::build_c("toucher_pid", &dir)?;
    // node1 and node2 pinned to their own CPUs, so that the loop gets the
    // same CPU share at home and away.
    let c = LocalCluster::up(&dir.join("cluster"), 2, 28946, &["--cpus-per-node", "1"])?;

    println!("(a) migration node1 -> node2, request to guest running (= freeze time)");
    for mib in [1u64, 64, 512] {
        let (mut run, _out, pid) =
            c.start_in_node1(&[toucher.to_str().unwrap(), &mib.to_string()])?;
        let t = Instant::now();
        c.migrate(&pid, "node2")?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{mib:>6} MiB  {:>8.1} ms  {:>6.2} GB/s",
            secs * 1e3,
            mib as f64 * 1.048_576e-3 / secs
        );
        let _ = c
            .cmd(&["cluster", "exec", "node1", "--", "kill", "-9", &pid])
            .output()?;
        run.wait()?;
    }

    println!("(c) openMosix loop in mawk: native in node1 vs migrated to node2");
    let time_loop = |migrate: bool| -> anyhow::Result<f64> {
        let t = Instant::now();
        let mut run = c
            .cmd(&["cluster", "exec", "node1", "--", "mawk", LOOP])
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
    let native = time_loop(false)?;
    let migrated = time_loop(true)?;
    println!(
        "native {native:.3} s   migrated {migrated:.3} s   overhead {:+.2}% (goal < 1%)",
        (migrated / native - 1.0) * 100.0
    );
    drop(c);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
