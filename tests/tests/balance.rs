//! Automatic load balancing on a local cluster: jobs flow to idle nodes
//! on their own.

use std::time::Duration;

use mosaic_tests::{Cluster, text};

/// The openMosix HOWTO test: ten CPU-bound awk jobs started together on
/// node1 of a two-node cluster (one CPU each) spread over both nodes
/// without anyone naming a node, and every one exits 0.
#[test]
fn ten_awk_jobs_started_on_node1_spread_over_both_nodes() {
    let mut c = Cluster::up_with("balance-howto", 2, 32946, &["--cpus-per-node", "1"]);
    let script = r#"pids=""
for i in $(seq 1 10); do
  awk 'BEGIN {for(i=0;i<10000;i++) for(j=0;j<10000;j++);}' &
  pids="$pids $!"
done
for p in $pids; do wait $p || echo "FAILED $p"; done
echo all done"#;
    let started = std::time::Instant::now();
    let out = c.exec("node1", &["sh", "-c", script]);
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stdout, "all done\n", "every job exits 0: {}", text(&out));
    let moved = c
        .log("node1")
        .matches("balancer: moving a busy process")
        .count();
    let guests = c.log("node2").matches("guest started").count();
    assert!(
        moved >= 1 && guests >= 1,
        "node2 ran guests ({moved} moves, {guests} guests, {took:?}):\n{}",
        c.log("node1")
    );
    eprintln!("ten jobs: {moved} moved, {guests} guests on node2, {took:?}");
    std::thread::sleep(Duration::from_millis(100));
    c.down();
}

/// Starts `n` copies of a CPU-bound loop in `node` (each runs `secs`
/// seconds of wall time), optionally through `mosaic run --lock`.
fn spin(c: &Cluster, node: &str, n: u32, secs: u32, lock: bool) -> std::process::Child {
    let runner = if lock {
        format!("{} run --lock -- ", mosaic_tests::bin("mosaic").display())
    } else {
        String::new()
    };
    let awk = format!("mawk 'BEGIN {{ t = systime(); while (systime() - t < {secs}) ; }}'");
    let script = format!("for i in $(seq 1 {n}); do {runner}{awk} & done; wait");
    c.command(&["cluster", "exec", node, "--", "sh", "-c", &script])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// No ping-pong: two nodes with the same load trade nothing for 30 s; and
/// a busy node whose jobs are all locked keeps them.
#[test]
fn equal_nodes_trade_nothing_and_locked_jobs_stay() {
    let mut c = Cluster::up_with("balance-steady", 2, 34946, &["--cpus-per-node", "1"]);
    let mut a = spin(&c, "node1", 2, 30, false);
    let mut b = spin(&c, "node2", 2, 30, false);
    a.wait().unwrap();
    b.wait().unwrap();
    let mut locked = spin(&c, "node1", 3, 14, true);
    std::thread::sleep(Duration::from_secs(6));
    for node in ["node1", "node2"] {
        let log = c.log(node);
        assert!(
            !log.contains("balancer: moving"),
            "{node} moved a process:\n{log}"
        );
    }
    // `mosaic unlock`: now they may go.
    let mosaic = mosaic_tests::bin("mosaic");
    let ps = c.exec("node1", &[mosaic.to_str().unwrap(), "ps", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&ps.stdout).unwrap();
    let pids: Vec<String> = rows
        .iter()
        .filter(|r| r["lock"] == true)
        .map(|r| r["home_pid"].to_string())
        .collect();
    assert_eq!(pids.len(), 3, "{rows:?}");
    for pid in &pids {
        let r = c.exec("node1", &[mosaic.to_str().unwrap(), "unlock", pid]);
        assert!(r.status.success(), "{}", text(&r));
    }
    mosaic_tests::wait_for("an unlocked job to move", Duration::from_secs(6), || {
        c.log("node1")
            .contains("balancer: moving")
            .then_some(())
            .ok_or_else(|| "not yet".to_string())
    });
    locked.wait().unwrap();
    c.down();
}
