//! Automatic load balancing on a local cluster: jobs flow to idle nodes
//! on their own.

use std::time::Duration;

use std::process::Stdio;

use mosaic_node::daemon::log::{MOVING_GUEST, MOVING_PROCESS};
use mosaic_tests::{Cluster, bin, text, wait_for};

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
    let moved = c.log("node1").matches(MOVING_PROCESS).count();
    let guests = c
        .log("node2")
        .matches(mosaic_remote::log::GUEST_STARTED)
        .count();
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
            !log.contains(MOVING_PROCESS) && !log.contains(MOVING_GUEST),
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
            .contains(MOVING_PROCESS)
            .then_some(())
            .ok_or_else(|| "not yet".to_string())
    });
    locked.wait().unwrap();
    c.down();
}

/// `mosaic node ARGS...` run in `node`; panics unless it succeeds.
fn node_ctl(c: &Cluster, node: &str, args: &[&str]) -> String {
    let mosaic = mosaic_tests::bin("mosaic");
    let mut all = vec![mosaic.to_str().unwrap(), "node"];
    all.extend_from_slice(args);
    let out = c.exec(node, &all);
    assert!(out.status.success(), "mosaic node {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A number `mosaic node` shows, e.g. "guests here".
fn shown(c: &Cluster, node: &str, what: &str) -> usize {
    let out = node_ctl(c, node, &[]);
    out.split(&format!("{what}: "))
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {what} in {out}"))
}

/// `n` busy jobs of `secs` seconds on `node` through `mosaic run OPTS`;
/// the script prints one line per job that failed, then "done".
fn jobs(c: &Cluster, node: &str, n: u32, secs: u32, opts: &str) -> std::process::Child {
    let mosaic = mosaic_tests::bin("mosaic");
    let awk = format!("mawk 'BEGIN {{ t = systime(); while (systime() - t < {secs}) ; }}'");
    let script = format!(
        "for i in $(seq 1 {n}); do ({} run {opts} -- {awk} || echo FAILED) & done; wait; echo done",
        mosaic.display()
    );
    c.command(&["cluster", "exec", node, "--", "sh", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn moves(c: &Cluster, node: &str) -> usize {
    let log = c.log(node);
    log.matches(MOVING_PROCESS).count() + log.matches(MOVING_GUEST).count()
}

/// Waits until node2 runs guests.
fn wait_for_guests_on_node2(c: &Cluster, what: &str) {
    mosaic_tests::wait_for(what, Duration::from_secs(30), || {
        match shown(c, "node2", "guests here") {
            0 => Err("none yet".to_string()),
            n => Ok(n),
        }
    });
    // The cluster's table counts them as node2 does (it said 0).
    mosaic_tests::wait_for(
        "node1's table to count them",
        Duration::from_secs(10),
        || {
            let here = shown(c, "node2", "guests here");
            let nodes = c.nodes_seen_by("node1")?;
            let seen = nodes
                .iter()
                .find(|n| n.name == "node2")
                .and_then(|n| n.load.as_ref())
                .map_or(0, |l| l.guests);
            (usize::try_from(seen).ok() == Some(here))
                .then_some(())
                .ok_or(format!(
                    "node2 hosts {here}, node1's `mosaic nodes` says {seen}"
                ))
        },
    );
}

/// Waits until node1 sees `node`'s load at `at_least` or more.
fn wait_for_load(c: &Cluster, node: &str, at_least: f64) {
    wait_for_loads(c, &[(node, at_least, f64::INFINITY)]);
}

/// Waits until node1 sees, in one view, each `(node, low, high)`'s load
/// within `low..=high`.
fn wait_for_loads(c: &Cluster, bounds: &[(&str, f64, f64)]) {
    let what = bounds.iter().map(|b| b.0).collect::<Vec<_>>().join(", ");
    mosaic_tests::wait_for(&format!("loads of {what}"), Duration::from_secs(30), || {
        let nodes = c.nodes_seen_by("node1")?;
        let within = |&(node, low, high): &(&str, f64, f64)| {
            nodes
                .iter()
                .find(|n| n.name == node)
                .and_then(|n| n.load.as_ref())
                .is_some_and(|l| (low..=high).contains(&l.load))
        };
        bounds
            .iter()
            .all(within)
            .then_some(())
            .ok_or(format!("{nodes:?}"))
    });
}

/// Waits for the jobs of [`jobs`]: every one must have exited 0.
fn all_exit_0(jobs: std::process::Child) {
    let out = jobs.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "done\n",
        "every job exits 0"
    );
}

/// I/O-bound and stay'd processes never move; `expel` empties a node of its
/// guests and `block` keeps it empty; `bring` calls every process home.
#[test]
fn io_bound_and_stayed_jobs_stay_expel_and_bring_empty_a_node() {
    let c = Cluster::up_with("balance-controls", 2, 35946, &["--cpus-per-node", "1"]);
    let io = jobs(&c, "node1", 3, 8, "--io-bound");
    node_ctl(&c, "node1", &["stay"]);
    let stayed = jobs(&c, "node1", 3, 60, "");
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(moves(&c, "node1"), 0, "{}", c.log("node1"));
    all_exit_0(io);

    // nostay: they may go now, and some do.
    node_ctl(&c, "node1", &["nostay"]);
    wait_for_guests_on_node2(&c, "guests on node2");
    // expel: node2 is empty when the command returns, and stays empty.
    let out = node_ctl(&c, "node2", &["expel"]);
    assert!(
        out.contains("guests here: 0") && out.contains("block: yes"),
        "{out}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(shown(&c, "node2", "guests here"), 0);
    assert!(c.log("node1").contains("came home"), "{}", c.log("node1"));

    // noblock: work flows again; bring: node1 calls it all home.
    node_ctl(&c, "node2", &["noblock"]);
    wait_for_guests_on_node2(&c, "guests on node2 again");
    node_ctl(&c, "node1", &["stay"]);
    let out = node_ctl(&c, "node1", &["bring"]);
    assert!(out.contains("processes away: 0"), "{out}");
    assert_eq!(shown(&c, "node2", "guests here"), 0);
    all_exit_0(stayed);
}

/// A node that leaves cleanly (its daemon stopped) sends its guests home,
/// where they finish; a node that joins during the run receives work.
#[test]
fn a_leaving_node_sends_guests_home_and_a_joining_node_gets_work() {
    let c = Cluster::up_with("balance-leave", 1, 36946, &["--cpus-per-node", "1"]);
    let running = jobs(&c, "node1", 4, 30, "");
    std::thread::sleep(Duration::from_secs(2));
    let out = c.mosaic(&["cluster", "add"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_for_guests_on_node2(&c, "work on the new node2");
    let daemon = c.pid_of("node2", "daemon_pid").expect("node2's daemon");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    mosaic_tests::wait_for("node2's guests home", Duration::from_secs(30), || {
        let log = c.log("node2");
        log.contains("saying goodbye")
            .then_some(())
            .ok_or_else(|| log.lines().last().unwrap_or("").to_string())
    });
    assert!(
        !c.log("node2")
            .contains(mosaic_node::daemon::log::GUESTS_DID_NOT_LEAVE),
        "{}",
        c.log("node2")
    );
    assert!(c.log("node1").contains("came home"), "{}", c.log("node1"));
    all_exit_0(running);
}

/// Memory ushering: a node offering little memory (its config) whose
/// process holds most of it sends that process to a node with room, even
/// though the process is idle.
#[test]
fn a_heavy_memory_user_leaves_a_node_short_of_memory() {
    let c = Cluster::up_with(
        "balance-memory",
        1,
        37946,
        &["--cpus-per-node", "1", "--memory-per-node", "300"],
    );
    let out = c.mosaic(&["cluster", "add"]);
    assert!(out.status.success(), "{}", text(&out));
    // Idle, holding 200 MiB of node1's 300, until the test says stop.
    let hog = "import os, time\n\
               b = bytearray(b'\\x01') * (200 << 20)\n\
               print('pid', os.getpid(), flush=True)\n\
               while not os.path.exists('/srv/mosaic-node/stop'): time.sleep(0.2)\n\
               print('ok' if b[::4096].count(1) == len(b) // 4096 else 'changed', flush=True)\n";
    let _ = std::fs::remove_file(c.dir.join("node1/srv/stop"));
    let mut run = c
        .command(&["cluster", "exec", "node1", "--", "python3", "-c", hog])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(run.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut out, &mut first).unwrap();
    let pid: i64 = first.trim().strip_prefix("pid ").unwrap().parse().unwrap();
    let mosaic = mosaic_tests::bin("mosaic");
    // A debug build on a crowded CPU copies slowly: a generous deadline.
    mosaic_tests::wait_for("the memory user on node2", Duration::from_secs(120), || {
        let ps = c.exec("node1", &[mosaic.to_str().unwrap(), "ps", "--json"]);
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&ps.stdout).unwrap_or_default();
        rows.iter()
            .any(|r| r["home_pid"] == pid && r["node"] == "node2")
            .then_some(())
            .ok_or_else(|| format!("{rows:?}"))
    });
    assert!(c.log("node1").contains(MOVING_PROCESS));
    std::fs::write(c.dir.join("node1/srv/stop"), "").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert_eq!(rest, "ok\n");
    assert!(run.wait().unwrap().success());
}

/// `mosaic migrate PID balance` moves a process where the balancer's rule
/// says it runs better, and leaves it where it is otherwise.
#[test]
fn migrate_balance_moves_a_process_only_where_it_runs_better() {
    let c = Cluster::up_with("balance-ask", 2, 38946, &["--cpus-per-node", "1"]);
    // The balancer itself keeps out of it.
    node_ctl(&c, "node1", &["stay"]);
    let running = jobs(&c, "node1", 3, 25, "");
    let mosaic = mosaic_tests::bin("mosaic");
    let mosaic = mosaic.to_str().unwrap();
    let pids: Vec<String> =
        mosaic_tests::wait_for("three managed jobs", Duration::from_secs(20), || {
            let ps = c.exec("node1", &[mosaic, "ps", "--json"]);
            let rows: Vec<serde_json::Value> =
                serde_json::from_slice(&ps.stdout).unwrap_or_default();
            let pids: Vec<String> = rows.iter().map(|r| r["home_pid"].to_string()).collect();
            (pids.len() == 3).then_some(pids).ok_or(format!("{rows:?}"))
        });
    // Wait until node1's load shows its three jobs.
    wait_for_load(&c, "node1", 2.5);
    let ask = |pid: &str| {
        let out = c.exec("node1", &[mosaic, "migrate", pid, "balance"]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = ask(&pids[0]);
    assert!(first.contains("now runs on node2"), "{first}");
    // On node2 alone it runs better than back with the other two.
    let again = ask(&pids[0]);
    assert!(again.contains("stays on node2"), "{again}");
    // Two here and one there: a move would not balance anything. The rule
    // moves when the loads differ by more than 1.3, so both must have
    // settled first: node2's risen (30% of the way a second) and node1's
    // without a passing command's blip (in CI it asked at 0.9 against
    // more than 2.2 and moved the second job).
    wait_for_loads(&c, &[("node1", 1.5, 2.15), ("node2", 0.95, 1.5)]);
    let second = ask(&pids[1]);
    assert!(second.contains("stays on node1"), "{second}");
    all_exit_0(running);
}

/// A guest writing small blocks into a pipe at home as fast as it can (each
/// write a forwarded call) is sent home by the node it runs on, and ends
/// there: before, a guest was never a candidate on its host (mosaic's own
/// seccomp filter was taken for a reason it could not move) and wrote on at
/// a forwarded call's pace. The same writer locked stays where it was sent.
#[test]
fn an_io_heavy_guest_is_sent_home_by_its_host_unless_locked() {
    let c = Cluster::up_with("balance-ioguest", 2, 57946, &["--cpus-per-node", "1"]);
    // node1 sends nothing away by itself: moves here are the test's and
    // node2's. (Under a loaded CI its balancer once took the pipeline's
    // `sh -c`, a CPU-starved start that looks busy, to node2 at 720 ms,
    // and it came home at its fork: a second homecoming.)
    node_ctl(&c, "node1", &["stay"]);
    let script = "import os, sys, time\n\
        open(sys.argv[1] + '.tmp', 'w').write(str(os.getpid()))\n\
        os.rename(sys.argv[1] + '.tmp', sys.argv[1])\n\
        while not os.path.exists(sys.argv[2]): time.sleep(0.01)\n\
        for i in range(40000): os.write(1, b'x' * 64)\n";
    let mosaic = bin("mosaic");
    for locked in [false, true] {
        let (pid_file, go) = (
            c.dir.join(format!("writer-{locked}.pid")),
            c.dir.join(format!("writer-{locked}.go")),
        );
        let pipeline = format!(
            "python3 -c \"{script}\" {} {} | wc -c",
            pid_file.display(),
            go.display()
        );
        let writer = c
            .command(&["cluster", "exec", "node1", "--", "sh", "-c", &pipeline])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = wait_for("the writer's pid", Duration::from_secs(20), || {
            std::fs::read_to_string(&pid_file).map_err(|e| e.to_string())
        });
        if locked {
            let lock = c.exec("node1", &[mosaic.to_str().unwrap(), "lock", pid.trim()]);
            assert!(lock.status.success(), "{}", text(&lock));
        }
        let moved = c.exec(
            "node1",
            &[mosaic.to_str().unwrap(), "migrate", pid.trim(), "node2"],
        );
        assert!(moved.status.success(), "{}", text(&moved));
        std::fs::write(&go, "").unwrap();
        let out = writer.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2560000");
        let sent_home = c.log("node2").matches(MOVING_GUEST).count();
        assert_eq!(sent_home, 1, "locked {locked}: {}", c.log("node2"));
    }
    assert_eq!(
        c.log("node1").matches("the process came home").count(),
        1,
        "{}",
        c.log("node1")
    );
}

/// A guest whose host becomes loaded moves on to an idle third node, by
/// its host's balancer. Its home takes no guests (`block`) so that the
/// third node is the one idle choice: nodes of this 2-CPU machine share
/// CPUs, node3 with node1.
#[test]
fn a_guest_on_a_node_that_becomes_loaded_moves_on_to_an_idle_third_node() {
    let c = Cluster::up_with("balance-on", 3, 13946, &["--cpus-per-node", "1"]);
    node_ctl(&c, "node1", &["block"]);
    let job = jobs(&c, "node1", 1, 25, "");
    let mosaic = bin("mosaic");
    let mosaic = mosaic.to_str().unwrap();
    let where_is = |pid: Option<i64>| -> Result<(i64, String), String> {
        let ps = c.exec("node1", &[mosaic, "ps", "--json"]);
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&ps.stdout).unwrap_or_default();
        rows.iter()
            .filter(|r| r["cmd"].to_string().contains("mawk"))
            .find(|r| pid.is_none_or(|p| r["home_pid"] == p))
            .and_then(|r| Some((r["home_pid"].as_i64()?, r["node"].as_str()?.to_owned())))
            .ok_or(format!("{rows:?}"))
    };
    let (pid, _) = wait_for("the job", Duration::from_secs(20), || where_is(None));
    c.migrate(i32::try_from(pid).unwrap(), "node2");
    // node2 becomes loaded: two jobs of its own, locked there.
    let own = jobs(&c, "node2", 2, 25, "--lock");
    wait_for("the guest on node3", Duration::from_secs(30), || {
        where_is(Some(pid)).and_then(|(_, node)| (node == "node3").then_some(()).ok_or(node))
    });
    assert!(c.log("node2").contains(MOVING_GUEST), "{}", c.log("node2"));
    all_exit_0(job);
    all_exit_0(own);
}
