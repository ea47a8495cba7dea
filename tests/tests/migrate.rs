//! Migration end to end on a local cluster: a process started on node1 and
//! moved to node2 mid-run keeps its home view of the world.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mosaic_tests::{Cluster, bin, log_tails, pseudo_random_file, text, wait_for};

fn build(name: &str, dir: &Path) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrate-programs")
        .join(format!("{name}.c"));
    let out = dir.join(name);
    let r = Command::new("gcc")
        .args(["-O1", "-Wall", "-Werror", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", text(&r));
    out.to_string_lossy().into_owned()
}

/// Host PIDs of processes whose uid is `uid` and whose cmdline starts with `prog`.
fn processes_of(uid: u32, prog: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            status.lines().any(|l| {
                l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some(&uid.to_string())
            }) && cmd.starts_with(prog)
        })
        .collect()
}

#[test]
fn a_migrated_process_keeps_its_home_view() {
    let mut c = Cluster::up("migrate", 2, 20946);
    let prog = build("transparency", &c.dir);
    let _ = std::fs::remove_file(c.dir.join("node1/srv/written.txt"));
    let _ = std::fs::remove_file(c.dir.join("node1/srv/go"));
    let mut run = c
        .command(&["cluster", "exec", "node1", "--", &prog])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(run.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let home_pid: i32 = first.trim().strip_prefix("pid ").unwrap().parse().unwrap();
    let mut waiting = String::new();
    out.read_line(&mut waiting).unwrap();
    assert_eq!(waiting, "waiting\n");

    let r = c.exec(
        "node1",
        &[
            bin("mosaic").to_str().unwrap(),
            "migrate",
            &home_pid.to_string(),
            "node2",
        ],
    );
    assert!(r.status.success(), "migrate: {}", text(&r));
    assert!(
        String::from_utf8_lossy(&r.stdout).contains("now runs on node2"),
        "{}",
        text(&r)
    );
    // The guest runs on node2 as the unprivileged guest user.
    let guests = processes_of(65534, &prog);
    assert_eq!(guests.len(), 1, "exactly one guest: {guests:?}");
    // Unprivileged: all ids nobody, no capabilities, no new privileges.
    let status = std::fs::read_to_string(format!("/proc/{}/status", guests[0])).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(field("Uid:"), ["65534"; 4], "{status}");
    assert_eq!(field("Gid:"), ["65534"; 4], "{status}");
    for cap in ["CapPrm:", "CapEff:", "CapInh:", "CapAmb:"] {
        assert_eq!(field(cap), ["0000000000000000"], "{cap} {status}");
    }
    assert_eq!(field("NoNewPrivs:"), ["1"], "{status}");
    assert_eq!(field("Seccomp:"), ["2"], "a seccomp filter: {status}");
    // The placeholder at home gave its memory back (a C program maps a
    // megabyte or more of libc) but still shows its command line.
    let home = processes_of(0, &prog);
    assert_eq!(home.len(), 1, "one placeholder: {home:?}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", home[0])).unwrap();
    let rss: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    assert!(rss < 200, "placeholder still holds {rss} kB: {status}");
    // In a PID namespace of its own inside node2's, where its PID is its
    // home PID.
    let node2_init = c.pid_of("node2", "init_pid").unwrap();
    let ns_of = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    assert_eq!(
        mosaic_tests::parent_pid_ns(guests[0]),
        ns_of(node2_init),
        "guest not in node2"
    );
    assert_eq!(
        field("NSpid:").last().copied(),
        Some(home_pid.to_string().as_str()),
        "{status}"
    );
    // `mosaic ps` on either node shows where it runs (published by gossip).
    let ps = |node: &str| -> Result<Vec<serde_json::Value>, String> {
        let r = c.exec(node, &[bin("mosaic").to_str().unwrap(), "ps", "--json"]);
        serde_json::from_slice(&r.stdout).map_err(|e| format!("{e}: {}", text(&r)))
    };
    let row = wait_for(
        "the process in mosaic ps on node2",
        Duration::from_secs(10),
        || {
            let rows = ps("node2")?;
            rows.into_iter()
                .find(|r| r["home_pid"] == home_pid)
                .ok_or_else(|| "not listed yet".to_string())
        },
    );
    assert_eq!(
        (row["home"].as_str(), row["node"].as_str()),
        (Some("node1"), Some("node2")),
        "{row}"
    );
    assert!(
        row["cmd"].as_str().unwrap().contains("transparency"),
        "{row}"
    );
    std::fs::write(c.dir.join("node1/srv/go"), "").unwrap();

    let status = wait_for(
        "the migrated process to finish",
        Duration::from_secs(60),
        || run.try_wait().unwrap().ok_or_else(|| "running".to_string()),
    );
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    run.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(
        status.code(),
        Some(42),
        "exit code reaches the parent; stdout: {rest} stderr: {err}"
    );
    let lines: Vec<&str> = rest.lines().collect();
    assert_eq!(lines[0], "hostname node1", "{rest}");
    assert_eq!(lines[1], "file node1", "{rest}");
    assert_eq!(lines[2], format!("pid {home_pid} ppid 0"), "{rest}");
    assert_eq!(
        lines[3],
        format!("tid {home_pid} set_tid_address {home_pid}"),
        "{rest}"
    );
    assert_eq!(lines[4], "readv node1", "{rest}");
    assert!(lines[5].starts_with("sum "), "{rest}");
    assert!(!rest.contains("FAIL"), "{rest}");
    assert_eq!(err, "to stderr\n");
    assert_eq!(
        std::fs::read_to_string(c.dir.join("node1/srv/written.txt")).unwrap(),
        "hello from a guest\n",
        "the file is written at home"
    );
    assert!(!c.dir.join("node2/srv/written.txt").exists());
    assert!(processes_of(65534, &prog).is_empty(), "no stray guest");
    wait_for("mosaic ps to forget it", Duration::from_secs(10), || {
        let rows = ps("node1")?;
        if rows.is_empty() {
            Ok(())
        } else {
            Err(format!("{rows:?}"))
        }
    });
    c.down();
}

/// Starts `prog args` in node1 with piped output; returns the child, its
/// stdout reader and its PID in node1 (after "pid N" and "waiting").
/// Runs `prog` in node1 with its stdin and stdout piped to the test (a
/// pipe from home).
fn piped_in_node1(
    c: &Cluster,
    prog: &str,
) -> (
    std::process::Child,
    std::process::ChildStdin,
    BufReader<std::process::ChildStdout>,
) {
    let mut run = c
        .command(&["cluster", "exec", "node1", "--", prog])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = run.stdin.take().unwrap();
    let out = BufReader::new(run.stdout.take().unwrap());
    (run, stdin, out)
}

fn start_in_node1(
    c: &Cluster,
    prog: &str,
    args: &[&str],
) -> (
    std::process::Child,
    BufReader<std::process::ChildStdout>,
    i32,
) {
    let mut all = vec!["cluster", "exec", "node1", "--", prog];
    all.extend_from_slice(args);
    let mut run = c
        .command(&all)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(run.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let pid: i32 = first
        .trim()
        .strip_prefix("pid ")
        .unwrap_or_else(|| panic!("{first}"))
        .parse()
        .unwrap();
    let mut waiting = String::new();
    out.read_line(&mut waiting).unwrap();
    assert_eq!(waiting, "waiting\n");
    (run, out, pid)
}

/// Locks `pid`: moved by hand only (an I/O-heavy guest would otherwise be
/// sent home by its host on its own, between the test's moves).
fn lock(c: &Cluster, pid: i32) {
    let r = c.exec(
        "node1",
        &[bin("mosaic").to_str().unwrap(), "lock", &pid.to_string()],
    );
    assert!(r.status.success(), "lock: {}", text(&r));
}

fn migrate(c: &Cluster, pid: i32, node: &str) {
    c.migrate(pid, node);
}

fn kill_in_node1(c: &Cluster, sig: &str, pid: i32) {
    let r = c.exec("node1", &["kill", sig, &pid.to_string()]);
    assert!(r.status.success(), "kill: {}", text(&r));
}

#[test]
fn signals_on_the_home_pid_reach_the_guest_and_end_it_as_at_home() {
    let mut c = Cluster::up("migrate-signals", 2, 21946);
    let prog = build("signals", &c.dir);

    // SIGUSR1: the handler runs on node2, the program finishes normally.
    let (mut run, mut out, pid) = start_in_node1(&c, &prog, &[]);
    migrate(&c, pid, "node2");
    assert_eq!(processes_of(65534, &prog).len(), 1);
    kill_in_node1(&c, "-USR1", pid);
    let status = wait_for("exit after SIGUSR1", Duration::from_secs(30), || {
        run.try_wait().unwrap().ok_or_else(|| "running".into())
    });
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "got usr1\n");
    assert_eq!(status.code(), Some(0));

    // SIGTERM, not caught: it ends the process as it would at home (the
    // guest's stub, a fork of mosaicd, caught SIGTERM itself: before the
    // restore reset such signals, the old handler's address ran and the
    // process died of SIGSEGV).
    let (mut run, _out, pid) = start_in_node1(&c, &prog, &["spin"]);
    migrate(&c, pid, "node2");
    kill_in_node1(&c, "-USR1", pid);
    std::thread::sleep(Duration::from_millis(300));
    kill_in_node1(&c, "-TERM", pid);
    let status = wait_for("death after SIGTERM", Duration::from_secs(30), || {
        run.try_wait().unwrap().ok_or_else(|| "running".into())
    });
    assert_eq!(status.code(), Some(128 + 15));

    // SIGKILL: the home PID dies, so does the guest; the parent sees 9.
    let (mut run, _out, pid) = start_in_node1(&c, &prog, &["spin"]);
    migrate(&c, pid, "node2");
    kill_in_node1(&c, "-USR1", pid);
    std::thread::sleep(Duration::from_millis(300));
    kill_in_node1(&c, "-KILL", pid);
    let status = wait_for("death after SIGKILL", Duration::from_secs(30), || {
        run.try_wait().unwrap().ok_or_else(|| "running".into())
    });
    assert_eq!(status.code(), Some(128 + 9));
    wait_for("no guest left on node2", Duration::from_secs(10), || {
        let left = processes_of(65534, &prog);
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    });
    c.down();
}

#[test]
fn when_the_guests_node_dies_the_home_pid_dies_killed_and_nothing_hangs() {
    let mut c = Cluster::up("migrate-nodedeath", 2, 23946);
    let prog = build("signals", &c.dir);
    let (mut run, _out, pid) = start_in_node1(&c, &prog, &["spin"]);
    migrate(&c, pid, "node2");
    assert_eq!(processes_of(65534, &prog).len(), 1);
    let daemon2 = c.pid_of("node2", "daemon_pid").unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon2),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let status = wait_for("the home process to die", Duration::from_secs(30), || {
        run.try_wait().unwrap().ok_or_else(|| "running".into())
    });
    assert_eq!(status.code(), Some(128 + 9), "killed, as if by SIGKILL");
    assert!(
        processes_of(65534, &prog).is_empty(),
        "no guest survives its node"
    );
    let log = c.log("node1");
    assert!(log.contains("lost the guest's node"), "{log}");
    c.down();
}

/// PID, in its node, of the program a `cluster exec` child runs.
fn program_pid_in_node(exec: &std::process::Child) -> i32 {
    let e = exec.id();
    wait_for("the program to start", Duration::from_secs(10), || {
        let children =
            std::fs::read_to_string(format!("/proc/{e}/task/{e}/children")).unwrap_or_default();
        let host: u32 = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or("no child yet")?;
        let status =
            std::fs::read_to_string(format!("/proc/{host}/status")).map_err(|e| e.to_string())?;
        let nspid = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .ok_or("no NSpid")?;
        nspid
            .split_whitespace()
            .last()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| "bad NSpid".to_string())
    })
}

/// Runs `cmd` natively, then in node1, locked, moved to node2, node3 and
/// home `pause` apart (`after(pid, node)` after each move, and first
/// `after(pid, "node1")` before any, where a test may wait until the
/// process is ready to be moved; `come_home`: it may have come home on its
/// own before the last): the moved run's status, output and errors must
/// be the native run's.
fn native_and_moved_through(
    c: &Cluster,
    cmd: &[&str],
    pause: Duration,
    come_home: bool,
    after: &mut dyn FnMut(i32, &str),
) {
    let native = Command::new(cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        native.status.success(),
        "{cmd:?} natively: {}",
        text(&native)
    );
    let mut all = vec!["cluster", "exec", "node1", "--"];
    all.extend_from_slice(cmd);
    let mut run = c
        .command(&all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = program_pid_in_node(&run);
    lock(c, pid);
    // Drained all along: a process blocked in a forwarded write (a full
    // pipe) moves only once the write returns.
    let mut stdout = run.stdout.take().unwrap();
    let mut stderr = run.stderr.take().unwrap();
    let outs = std::thread::spawn(move || {
        let mut o = Vec::new();
        stdout.read_to_end(&mut o).unwrap();
        o
    });
    let errs = std::thread::spawn(move || {
        let mut e = Vec::new();
        stderr.read_to_end(&mut e).unwrap();
        e
    });
    after(pid, "node1");
    for node in ["node2", "node3", "home"] {
        std::thread::sleep(pause);
        if node == "home" && come_home {
            // It may be home already: a thread made while away brings the
            // process home, which makes it natively.
            let r = c.exec(
                "node1",
                &[
                    bin("mosaic").to_str().unwrap(),
                    "migrate",
                    &pid.to_string(),
                    node,
                ],
            );
            assert!(
                r.status.success() || text(&r).contains("already runs at home"),
                "migrate {pid} home: {}\n{}",
                text(&r),
                log_tails(&c.dir, 25)
            );
        } else {
            migrate(c, pid, node);
        }
        after(pid, node);
    }
    let out = std::process::Output {
        status: run.wait().unwrap(),
        stdout: outs.join().unwrap(),
        stderr: errs.join().unwrap(),
    };
    assert_eq!(
        out.status.code(),
        Some(0),
        "{cmd:?} migrated: {}",
        text(&out)
    );
    if out.stdout != native.stdout {
        // Kept to compare.
        let _ = std::fs::write(c.dir.join("native.out"), &native.stdout);
        let _ = std::fs::write(c.dir.join("moved.out"), &out.stdout);
    }
    assert!(
        out.stdout == native.stdout,
        "{:?}: output differs from the native run ({} vs {} bytes; both in {})",
        cmd[0],
        out.stdout.len(),
        native.stdout.len(),
        c.dir.display()
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&native.stderr)
    );
}

#[test]
fn real_programs_migrated_node1_node2_node3_home_give_the_native_output() {
    let mut c = Cluster::up("migrate-real", 3, 25946);
    let pi = c.dir.join("pi.bc");
    std::fs::write(&pi, "scale=3000; 4*a(1)\n").unwrap();
    let small = c.dir.join("small");
    pseudo_random_file(&small, 6_000_000);
    let big = c.dir.join("big");
    pseudo_random_file(&big, 700 << 20);
    let (pi, small, big) = (
        pi.to_str().unwrap(),
        small.to_str().unwrap(),
        big.to_str().unwrap(),
    );
    let programs: Vec<Vec<&str>> = vec![
        vec![
            "mawk",
            "BEGIN {for(i=0;i<10000;i++) for(j=0;j<10000;j++) s+=j%7; print s}",
        ],
        vec![
            "python3",
            "-c",
            "n=[i for i in range(2,1000000) if all(i%p for p in range(2,int(i**0.5)+1))]\nprint(len(n), sum(n))",
        ],
        vec!["bc", "-l", pi],
        vec!["xz", "-9", "-c", small],
        vec!["sha256sum", big],
        vec![
            "perl",
            "-e",
            "$s=0; for $i (1..7000000) { $x=\"abc$i\"x5; $s++ if $x =~ /(\\d+)abc\\1/ } print \"$s\\n\"",
        ],
    ];
    for cmd in programs {
        // Locked: moved by hand only (sha256sum's reads make it I/O-heavy,
        // and its host would send it home on its own).
        native_and_moved_through(&c, &cmd, Duration::from_millis(300), false, &mut |_, _| {});
    }
    c.down();
}

/// The threads of the guest in `node` whose home PID is `pid`: the one
/// process of that node (its own PID namespace, looked at from inside:
/// other tests' nodes have a `pid` too) whose NSpid is `[its, pid]`.
fn threads_of(c: &Cluster, node: &str, pid: i32) -> usize {
    let script = format!(
        "for s in /proc/[0-9]*/status; do set -- $(grep ^NSpid: $s); \
         [ $# -eq 3 ] && [ \"$3\" = {pid} ] && ls ${{s%/status}}/task | wc -l; done"
    );
    let r = c.exec(node, &["sh", "-c", &script]);
    String::from_utf8_lossy(&r.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .max()
        .unwrap_or(0)
}

/// Waits until process `pid` of node1 has more than one thread.
fn wait_for_threads(c: &Cluster, pid: i32) {
    wait_for_n_threads(c, pid, 2);
}

/// Waits until process `pid` of node1 has `n` threads or more.
fn wait_for_n_threads(c: &Cluster, pid: i32, n: usize) {
    wait_for("its threads", Duration::from_secs(30), || {
        let has = traced_with_threads(c, pid).1.len();
        (has >= n).then_some(()).ok_or(format!("{has} threads"))
    });
}

/// Four python3 threads computing, each reporting its result in order.
const PY_THREADS: &str = "import threading, os\n\
    def work(k, out):\n\
    \x20   n = [i for i in range(2 + k, 1600000, 4) if all(i % p for p in range(2, int(i ** 0.5) + 1))]\n\
    \x20   out[k] = (len(n), sum(n), threading.get_native_id() in [int(t) for t in os.listdir('/proc/self/task')])\n\
    out = {}\n\
    ts = [threading.Thread(target=work, args=(k, out)) for k in range(4)]\n\
    [t.start() for t in ts]\n\
    [t.join() for t in ts]\n\
    print(sorted(out.items()))\n";

#[test]
fn threaded_programs_migrated_node1_node2_node3_home_give_the_native_output() {
    let mut c = Cluster::up("migrate-threads", 3, 61946);
    let small = c.dir.join("small");
    pseudo_random_file(&small, 40_000_000);
    let lines = c.dir.join("lines");
    let text_of: String = (0..4_000_000u64)
        .map(|i| format!("{:016x}\n", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
        .collect();
    std::fs::write(&lines, text_of).unwrap();
    let (small, lines) = (small.to_str().unwrap(), lines.to_str().unwrap());
    let programs: Vec<Vec<&str>> = vec![
        vec!["python3", "-c", PY_THREADS],
        // The issue's level; in 4 MiB blocks, so that both threads have
        // work (at -9 a block is 192 MiB: this input would be one).
        vec!["xz", "-T2", "-9", "--block-size=4MiB", "-c", small],
        // Its buffer smaller than the input: sorted in runs, each by four
        // threads, merged through temporary files (2 s natively here).
        vec!["sort", "--parallel=4", "-S", "20M", lines],
    ];
    for cmd in programs {
        // Moved while its threads run; at home its placeholder keeps them.
        let (mut threads_seen, mut ps_threads) = (0, 0);
        native_and_moved_through(
            &c,
            &cmd,
            Duration::from_millis(250),
            true,
            &mut |pid, node| {
                if node == "node1" {
                    // python3 makes its threads once: moved with them
                    // (its first threads born away have their own test,
                    // a_single_threaded_guest_makes_its_first_threads...).
                    if cmd[0] == "python3" {
                        wait_for_threads(&c, pid);
                    }
                    return;
                }
                threads_seen = threads_seen.max(threads_of(&c, node, pid));
                // `mosaic ps` counts them, also while it is away (once its
                // home has published where it runs: within a gossip round).
                let start = std::time::Instant::now();
                while node != "home" && start.elapsed() < Duration::from_secs(2) {
                    let r = c.exec("node1", &[bin("mosaic").to_str().unwrap(), "ps", "--json"]);
                    let rows: Vec<serde_json::Value> =
                        serde_json::from_slice(&r.stdout).unwrap_or_default();
                    let away = rows
                        .iter()
                        .filter(|r| r["home_pid"] == pid && r["node"] == node)
                        .filter_map(|r| r["threads"].as_u64())
                        .max();
                    if let Some(n) = away {
                        ps_threads = ps_threads.max(n);
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            },
        );
        assert!(threads_seen > 1, "{:?} moved with one thread only", cmd[0]);
        // (sort and xz make threads as they go, each bringing them home
        // for a while; python3 makes its threads once and stays away.)
        if cmd[0] == "python3" {
            assert!(ps_threads > 1, "mosaic ps showed {ps_threads} threads away");
        }
    }
    c.down();
}

/// Node.js counting primes on four `worker_threads` (each a V8 isolate
/// in a thread of its own, beside V8's platform threads and libuv's),
/// the results posted to the main thread and printed in order.
const NODE_WORKERS: &str =
    "const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
if (isMainThread) {
  const res = [];
  let done = 0;
  for (let i = 0; i < 4; i++) {
    new Worker(__filename, { workerData: i }).on('message', (m) => {
      res[i] = m;
      if (++done === 4) console.log(JSON.stringify(res));
    });
  }
} else {
  let primes = 0, sum = 0;
  for (let n = 1 + 2 * workerData; n < 1.5e7; n += 8) {
    let p = n > 1;
    for (let d = 3; p && d * d <= n; d += 2) if (n % d === 0) p = false;
    if (p) { primes++; sum = (sum + n) % 1000000007; }
  }
  parentPort.postMessage([primes, sum]);
}
";

/// python3's `concurrent.futures.ThreadPoolExecutor`: 24 tasks on four
/// pool threads, each saying whether its TID is in `/proc/self/task`.
const PY_POOL: &str = "from concurrent.futures import ThreadPoolExecutor\n\
    import hashlib, os, threading\n\
    def work(k):\n\
    \x20   h = hashlib.sha256()\n\
    \x20   for j in range(400000):\n\
    \x20       h.update(b'%d:%d' % (k, j))\n\
    \x20   mine = threading.get_native_id() in [int(t) for t in os.listdir('/proc/self/task')]\n\
    \x20   return k, h.hexdigest()[:16], mine\n\
    with ThreadPoolExecutor(max_workers=4) as ex:\n\
    \x20   for r in ex.map(work, range(24)):\n\
    \x20       print(*r, flush=True)\n";

/// Two python3 threads reading a file 3 MiB a call at once, each read
/// answered by its own placeholder thread at home; the digests printed.
const PY_BIG_READS: &str = "import hashlib, sys, threading\n\
    out = {}\n\
    def digest(k):\n\
    \x20   h = hashlib.sha256()\n\
    \x20   for r in range(40):\n\
    \x20       with open(sys.argv[1], 'rb', buffering=0) as f:\n\
    \x20           while b := f.read(3 << 20):\n\
    \x20               h.update(b)\n\
    \x20   out[k] = h.hexdigest()\n\
    ts = [threading.Thread(target=digest, args=(k,)) for k in range(2)]\n\
    [t.start() for t in ts]\n\
    [t.join() for t in ts]\n\
    print(sorted(out.items()))\n";

/// Node.js on worker threads (Node 20 here uses no io_uring: libuv's is
/// off by default since 20.x, and a process with a ring would be refused
/// by `cantmove`) and python3's thread pool, moved node1 -> node2 ->
/// node3 -> home while their threads compute: the native output.
#[test]
fn node_worker_threads_and_a_python_thread_pool_migrated_give_the_native_output() {
    let mut c = Cluster::up("migrate-workers", 3, 37946);
    let script = c.dir.join("workers.js");
    std::fs::write(&script, NODE_WORKERS).unwrap();
    let script = script.to_str().unwrap();
    let data = c.dir.join("data");
    pseudo_random_file(&data, 8 << 20);
    let data = data.to_str().unwrap();
    let programs: [(Vec<&str>, usize); 3] = [
        // main, V8's four platform threads, the four workers
        (vec!["node", script], 9),
        // main and the pool's four
        (vec!["python3", "-c", PY_POOL], 5),
        // main and two readers
        (vec!["python3", "-c", PY_BIG_READS, data], 3),
    ];
    for (cmd, threads) in programs {
        let mut seen = 0;
        native_and_moved_through(
            &c,
            &cmd,
            Duration::from_millis(300),
            true,
            &mut |pid, node| match node {
                // Moved once its threads run.
                "node1" => wait_for_n_threads(&c, pid, threads),
                "home" => {}
                node => seen = seen.max(threads_of(&c, node, pid)),
            },
        );
        assert!(seen >= threads, "{:?} had {seen} threads away", cmd[0]);
    }
    c.down();
}

/// Makes and joins three threads a round, 6000 rounds, beside one that
/// waits: each thread checks that its TID is in `/proc/self/task` (its
/// home's while away: the call is made at home; looked up, not listed: a
/// listing skips threads when others end meanwhile, natively too).
const PY_CHURN: &str = "import threading, hashlib, os\n\
    stop = threading.Event()\n\
    threading.Thread(target=stop.wait, daemon=True).start()\n\
    for r in range(6000):\n\
    \x20   res = [None] * 3\n\
    \x20   def work(k):\n\
    \x20       h = hashlib.sha256()\n\
    \x20       for j in range(400):\n\
    \x20           h.update(b'%d-%d-%d' % (r, k, j))\n\
    \x20       res[k] = (h.hexdigest()[:12], os.path.exists('/proc/self/task/%d' % threading.get_native_id()))\n\
    \x20   ts = [threading.Thread(target=work, args=(k,)) for k in range(3)]\n\
    \x20   [t.start() for t in ts]\n\
    \x20   [t.join() for t in ts]\n\
    \x20   print(r, *res)\n\
    stop.set()\n";

/// Whether process `pid` of node1 is traced (a placeholder, while its
/// process is away), and its threads' TIDs there (read in node1: other
/// tests' nodes have a `pid` too).
fn traced_with_threads(c: &Cluster, pid: i32) -> (bool, Vec<String>) {
    let r = c.exec(
        "node1",
        &[
            "sh",
            "-c",
            &format!("grep TracerPid /proc/{pid}/status; ls /proc/{pid}/task"),
        ],
    );
    let out = String::from_utf8_lossy(&r.stdout).to_string();
    let traced = out
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .is_some_and(|v| v.trim() != "0");
    let tids = out
        .lines()
        .filter(|l| l.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
        .collect();
    (traced, tids)
}

/// Threads made and ended while away stay away: each gets its placeholder
/// thread at home first, and the guest's kernel gives it that TID.
#[test]
fn threads_born_and_ended_away_keep_the_process_away_with_their_home_tids() {
    let mut c = Cluster::up("migrate-births", 3, 62946);
    let mut away_births = 0;
    native_and_moved_through(
        &c,
        &["python3", "-c", PY_CHURN],
        Duration::from_millis(400),
        false,
        &mut |pid, node| {
            if node == "node1" {
                // Moved once it has its waiting thread (a guest that
                // has had threads keeps them).
                wait_for_threads(&c, pid);
                return;
            }
            if node == "home" {
                return;
            }
            // Threads come and go at home while it stays away.
            let mut seen = std::collections::HashSet::new();
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_millis(300) {
                let (traced, tids) = traced_with_threads(&c, pid);
                assert!(traced, "{pid} came home from {node}");
                seen.extend(tids);
            }
            away_births += seen.len().saturating_sub(2);
        },
    );
    assert!(
        away_births > 3,
        "{away_births} threads seen born at home while away"
    );
    c.down();
}

/// Single-threaded for a second, then four threads computing.
const PY_LATE_THREADS: &str = "import threading, hashlib, os\n\
    def digest(k, n):\n\
    \x20   h = hashlib.sha256()\n\
    \x20   for i in range(n):\n\
    \x20       h.update(b'%d:%d' % (k, i))\n\
    \x20   return h.hexdigest()[:16]\n\
    print('alone', digest(0, 3000000), threading.active_count(), flush=True)\n\
    out = {}\n\
    def work(k):\n\
    \x20   out[k] = (digest(k + 1, 1000000), threading.get_native_id() in [int(t) for t in os.listdir('/proc/self/task')])\n\
    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]\n\
    [t.start() for t in ts]\n\
    [t.join() for t in ts]\n\
    print(sorted(out.items()))\n";

/// A process moved while it has one thread makes its first threads away:
/// they are born at home first (its placeholder's session takes the
/// threaded shape at the first clone) and it stays away, its threads
/// seeing their TIDs in its task list; moved on and home, the native
/// output. (It came home for its first thread before.)
#[test]
fn a_single_threaded_guest_makes_its_first_threads_and_stays_away() {
    let mut c = Cluster::up("migrate-first-thread", 3, 16946);
    let mut threads_away = 0;
    native_and_moved_through(
        &c,
        &["python3", "-c", PY_LATE_THREADS],
        Duration::from_millis(300),
        true,
        &mut |pid, node| {
            if node != "node2" {
                return;
            }
            assert_eq!(
                traced_with_threads(&c, pid).1.len(),
                1,
                "moved with threads"
            );
            threads_away = wait_for("its threads born away", Duration::from_secs(30), || {
                let (traced, tids) = traced_with_threads(&c, pid);
                assert!(traced, "{pid}'s first thread brought it home");
                (tids.len() > 1)
                    .then_some(tids.len())
                    .ok_or(format!("{tids:?}"))
            });
        },
    );
    assert!(threads_away > 1);
    c.down();
}

/// A C program of many threads, one mechanism each (tests/programs/
/// pthreads.c, which the stand-alone checkpoint test runs too), moved
/// node1 -> node2 -> node3 while its four threads compute, home once it
/// listed its threads there, and out to node2 again, where it ends: TIDs
/// and the task list (listed and named at home while it is on node3),
/// masks, `__thread` data, a contended PI mutex, barriers, a thread making
/// and joining threads all along (each born at home first), a real-time
/// signal queued to one thread before the moves, SIGUSR1 sent to the home
/// PID while away and taken by the one thread that does not block it
/// (which waits for it, holding the process), `pthread_kill` run on an
/// altstack, a robust mutex whose owner exited, and `exit(3)` from a
/// thread, away: output and status as natively.
#[test]
fn a_c_program_of_many_threads_moved_three_times_gives_the_native_output() {
    let mut c = Cluster::up("migrate-pthreads", 3, 64946);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/pthreads.c");
    let prog = c.dir.join("pthreads");
    let r = Command::new("gcc")
        .args(["-O1", "-Wall", "-Werror", "-o"])
        .arg(&prog)
        .arg(&src)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", text(&r));
    let prog = prog.to_str().unwrap();
    // Natively: SIGUSR1 once it is ready.
    let mut native = Command::new(prog).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(native.stdout.take().unwrap());
    assert_eq!(line_of(&mut out), "ready\n");
    let native_pid = nix::unistd::Pid::from_raw(i32::try_from(native.id()).unwrap());
    nix::sys::signal::kill(native_pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
    let mut expected = String::from("ready\n");
    out.read_to_string(&mut expected).unwrap();
    assert_eq!(native.wait().unwrap().code(), Some(3));
    assert!(!expected.contains("FAIL"), "natively: {expected}");

    let mut run = c
        .command(&["cluster", "exec", "node1", "--", prog])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = program_pid_in_node(&run);
    lock(&c, pid);
    let mut out = BufReader::new(run.stdout.take().unwrap());
    let mut moved = line_of(&mut out);
    assert_eq!(moved, "ready\n");
    migrate(&c, pid, "node2");
    std::thread::sleep(Duration::from_millis(300));
    migrate(&c, pid, "node3");
    // Its task list and its threads' names, seen while it is away; then
    // calc3 waits for SIGUSR1.
    for _ in 0..5 {
        moved += &line_of(&mut out);
    }
    let (traced, tids) = traced_with_threads(&c, pid);
    assert!(
        traced && tids.len() > 1,
        "{pid} is not away with its threads: {tids:?}"
    );
    migrate(&c, pid, "home");
    migrate(&c, pid, "node2");
    kill_in_node1(&c, "-USR1", pid);
    out.read_to_string(&mut moved).unwrap();
    let status = run.wait().unwrap();
    assert_eq!(moved, expected, "moved (left) vs native (right)");
    assert_eq!(status.code(), Some(3));
    c.down();
}

/// Three threads compute while a fourth waits in `read` of a pipe from
/// home, and a POSIX timer signals one computing thread by its TID
/// (`SIGEV_THREAD_ID`, migrate-programs/thread_timer_pipe.c): moved
/// node1 -> node2 -> node3, a line written at home wakes the reader there,
/// then home, where the second line ends it. Every tick runs in its
/// thread, before and after each move, and the output is the native one.
#[test]
fn a_thread_reading_a_home_pipe_and_a_timer_aimed_at_one_thread_move_three_times() {
    let mut c = Cluster::up("migrate-timer-pipe", 3, 12946);
    let prog = build("thread_timer_pipe", &c.dir);
    let feed = |stdin: &mut std::process::ChildStdin, line: &str| {
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.flush().unwrap();
    };
    let mut native = Command::new(&prog)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = native.stdin.take().unwrap();
    let mut out = BufReader::new(native.stdout.take().unwrap());
    let mut expected = line_of(&mut out);
    std::thread::sleep(Duration::from_millis(300));
    feed(&mut stdin, "first\n");
    expected += &line_of(&mut out);
    std::thread::sleep(Duration::from_millis(300));
    feed(&mut stdin, "stop\n");
    out.read_to_string(&mut expected).unwrap();
    assert!(native.wait().unwrap().success());
    assert_eq!(
        expected,
        "ready\ngot first\ngot stop\nticked between the lines: yes\n\
         timer ticks all in their thread: yes\n"
    );

    let (mut run, mut stdin, mut out) = piped_in_node1(&c, &prog);
    let pid = program_pid_in_node(&run);
    lock(&c, pid);
    let mut moved = line_of(&mut out);
    migrate(&c, pid, "node2");
    std::thread::sleep(Duration::from_millis(300));
    migrate(&c, pid, "node3");
    let (traced, tids) = traced_with_threads(&c, pid);
    assert!(
        traced && tids.len() == 5,
        "{pid} is not away with its five threads: {tids:?}"
    );
    // Written at home while the reader waits on node3.
    feed(&mut stdin, "first\n");
    moved += &line_of(&mut out);
    migrate(&c, pid, "home");
    std::thread::sleep(Duration::from_millis(300));
    feed(&mut stdin, "stop\n");
    out.read_to_string(&mut moved).unwrap();
    assert!(run.wait().unwrap().success());
    assert_eq!(moved, expected, "moved (left) vs native (right)");
    c.down();
}

/// A thread writing 4 MiB blocks (and writev's of 288 KiB) to a file at
/// home while another makes a small call every millisecond
/// (migrate-programs/big_writes.c), under a parent that reports its stops
/// as a shell sees them: moved node1 -> node2, stopped (SIGSTOP at home)
/// and continued there, moved to node3, then home. Its large writes go
/// home in pieces between the small calls; a write given up by the stop
/// or by a return is made again, and none twice: the file is
/// byte-identical to a native run's, and so is its output.
#[test]
fn large_writes_of_a_threaded_guest_go_in_pieces_and_survive_stops_and_moves() {
    let mut c = Cluster::up("migrate-big-writes", 3, 11946);
    let prog = build("big_writes", &c.dir);
    let parent = build("parent", &c.dir);
    let native_file = c.dir.join("native-out");
    let native = Command::new(&prog).arg(&native_file).output().unwrap();
    assert!(native.status.success(), "natively: {}", text(&native));
    let native_out = String::from_utf8_lossy(&native.stdout);
    let (_, expected) = native_out.split_once("waiting\n").unwrap();
    assert!(
        expected.contains("every write whole: yes\nsmall calls answered: yes\nparent kept: yes"),
        "{expected}"
    );

    let (mut run, mut out, pid) = start_in_node1(&c, &parent, &[&prog, "/srv/mosaic-node/big-out"]);
    lock(&c, pid);
    migrate(&c, pid, "node2");
    std::thread::sleep(Duration::from_millis(200));
    kill_in_node1(&c, "-STOP", pid);
    assert_eq!(line_of(&mut out), "stopped 19\n");
    std::thread::sleep(Duration::from_millis(200));
    kill_in_node1(&c, "-CONT", pid);
    assert_eq!(line_of(&mut out), "continued\n");
    std::thread::sleep(Duration::from_millis(200));
    migrate(&c, pid, "node3");
    std::thread::sleep(Duration::from_millis(300));
    migrate(&c, pid, "home");
    let mut moved = String::new();
    out.read_to_string(&mut moved).unwrap();
    assert!(run.wait().unwrap().success());
    assert_eq!(
        moved,
        format!("{expected}exited 0\n"),
        "moved (left) vs native (right)"
    );
    let sha = |p: &Path| {
        let r = Command::new("sha256sum").arg(p).output().unwrap();
        String::from_utf8_lossy(&r.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        sha(&c.dir.join("node1/srv/big-out")),
        sha(&native_file),
        "the file written while moved differs from the native one"
    );
    c.down();
}

/// Sends SIGUSR1 to thread 1 of tkill (started as `pid`, its TIDs in
/// `tids`), by `tgkill` from `sender` (a command prefix that runs perl
/// where the TIDs mean them).
fn tgkill_thread_1(sender: &dyn Fn(&[&str]) -> std::process::Output, pid: i32, tids: &Path) {
    wait_for("its TIDs", Duration::from_secs(20), || {
        tids.exists()
            .then_some(())
            .ok_or_else(|| "no file yet".to_string())
    });
    let text_of = std::fs::read_to_string(tids).unwrap();
    let one = text_of.split_whitespace().nth(1).unwrap().to_string();
    let r = sender(&[
        "perl",
        "-e",
        &format!("syscall(234, {pid}, {one}, 10) == 0 or die \"tgkill: $!\""),
    ]);
    assert!(r.status.success(), "tgkill: {}", text(&r));
}

/// A signal sent at home to one thread of a process that is away runs in
/// that very thread there (its placeholder thread's worker takes it off
/// the thread's own queue and the remote `tgkill`s the guest's thread).
#[test]
fn a_signal_sent_at_home_to_one_thread_runs_in_that_thread_away() {
    let mut c = Cluster::up("migrate-tkill", 2, 63946);
    let prog = build("tkill", &c.dir);
    let tids = c.dir.join("tids");
    let native = Command::new(&prog)
        .arg(&tids)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = i32::try_from(native.id()).unwrap();
    tgkill_thread_1(
        &|cmd| Command::new(cmd[0]).args(&cmd[1..]).output().unwrap(),
        pid,
        &tids,
    );
    let native = native.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&native.stdout),
        "ready\nSIGUSR1 sent to thread 1 ran in thread 1\n"
    );
    std::fs::remove_file(&tids).unwrap();
    let run = c
        .command(&[
            "cluster",
            "exec",
            "node1",
            "--",
            &prog,
            tids.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = program_pid_in_node(&run);
    wait_for("its TIDs", Duration::from_secs(20), || {
        tids.exists()
            .then_some(())
            .ok_or_else(|| "no file yet".to_string())
    });
    lock(&c, pid);
    migrate(&c, pid, "node2");
    tgkill_thread_1(&|cmd| c.exec("node1", cmd), pid, &tids);
    let out = run.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&native.stdout)
    );
    assert!(
        c.log("node2").contains("guest started"),
        "it ran away: {}",
        c.log("node2")
    );
    c.down();
}

/// Runs `cmd` natively and then on node1, moved to node2 `move_after` into
/// its run, each fed `line` on stdin `feed_after` into its run: both
/// outputs and statuses must be the same.
fn native_then_moved(
    c: &Cluster,
    cmd: &[&str],
    move_after: Duration,
    feed_after: Duration,
    line: &str,
) {
    let feed = |stdin: std::process::ChildStdin| {
        let line = line.to_string();
        std::thread::spawn(move || {
            let mut stdin = stdin;
            std::thread::sleep(feed_after);
            let _ = stdin.write_all(line.as_bytes());
        })
    };
    let mut native = Command::new(cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let fed = feed(native.stdin.take().unwrap());
    let native = native.wait_with_output().unwrap();
    fed.join().unwrap();
    assert!(
        native.status.success(),
        "{cmd:?} natively: {}",
        text(&native)
    );
    let mut all = vec!["cluster", "exec", "node1", "--"];
    all.extend_from_slice(cmd);
    let mut run = c
        .command(&all)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let fed = feed(run.stdin.take().unwrap());
    let pid = program_pid_in_node(&run);
    std::thread::sleep(move_after);
    migrate(c, pid, "node2");
    let moved = run.wait_with_output().unwrap();
    fed.join().unwrap();
    assert_eq!(
        moved.status.code(),
        Some(0),
        "{cmd:?} moved: {}",
        text(&moved)
    );
    assert_eq!(
        String::from_utf8_lossy(&moved.stdout),
        String::from_utf8_lossy(&native.stdout),
        "{cmd:?}: output differs from the native run"
    );
}

#[test]
fn select_naps_a_home_pipe_and_reads_larger_than_a_frame_work_while_away() {
    let mut c = Cluster::up("migrate-select", 2, 33946);
    // perl's 4-argument select is glibc's select, which is pselect6: forty
    // naps of 50 ms sleep (they did not, answered ENOSYS), then IO::Select
    // waits for the home pipe until the test writes to it.
    let perl = r#"use IO::Select; use Time::HiRes qw(time); $|=1;
        my $t0 = time; select(undef, undef, undef, 0.05) for 1..40;
        printf "napped %s
", time - $t0 >= 1.9 ? "yes" : "no";
        my @r = IO::Select->new(\*STDIN)->can_read(30); print "ready ", scalar(@r), "
";
        my $l = <STDIN>; print "got $l";"#;
    native_then_moved(
        &c,
        &["perl", "-e", perl],
        Duration::from_millis(400),
        Duration::from_secs(3),
        "hello
",
    );
    // One read of 20 MiB (python's readall asks for the whole file): more
    // than a frame of the link carries; home answers in short reads, as
    // the kernel may, and the file arrives whole.
    let file = c.dir.join("twenty");
    pseudo_random_file(&file, 20 << 20);
    let py = format!(
        "import hashlib, sys, time\ntime.sleep(1)\nd = open('{}', 'rb').read()\nprint(len(d), hashlib.sha256(d).hexdigest())",
        file.display()
    );
    native_then_moved(
        &c,
        &["python3", "-c", &py],
        Duration::from_millis(400),
        Duration::ZERO,
        "",
    );
    assert!(c.log("node2").contains(mosaic_remote::log::GUEST_STARTED));
    c.down();
}

#[test]
fn mosaic_run_starts_at_home_moves_it_and_returns_its_status() {
    let mut c = Cluster::up("migrate-run", 2, 26946);
    let prog = build("transparency", &c.dir);
    // It need not wait to be seen.
    std::fs::write(c.dir.join("node1/srv/go"), "").unwrap();
    for placement in [&["--node", "node2"][..], &["--best"][..]] {
        let mut args = vec![bin("mosaic").to_str().unwrap().to_string(), "run".into()];
        args.extend(placement.iter().map(|s| s.to_string()));
        args.extend(["--".to_string(), prog.clone()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let before = c
            .log("node2")
            .matches(mosaic_remote::log::GUEST_STARTED)
            .count();
        let out = c.exec("node1", &args);
        assert_eq!(out.status.code(), Some(42), "{placement:?}: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("hostname node1\nfile node1\n"), "{stdout}");
        assert_eq!(
            c.log("node2")
                .matches(mosaic_remote::log::GUEST_STARTED)
                .count(),
            before + 1,
            "{placement:?} did not move it"
        );
    }
    // It becomes the program: `$!` is the PID the program sees, moved or not.
    let mosaic = bin("mosaic");
    for placement in ["", "--node node2"] {
        let script = format!(
            "{} run {placement} -- python3 -c 'import os, time; time.sleep(0.5); print(os.getpid())' & echo $!; wait $!; echo status $?",
            mosaic.display()
        );
        let out = c.exec("node1", &["sh", "-c", &script]);
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<&str> = said.lines().collect();
        assert!(
            lines.len() == 3 && lines[0] == lines[1] && lines[2] == "status 0",
            "{placement:?}: {}",
            text(&out)
        );
    }
    assert_eq!(
        c.log("node2")
            .matches(mosaic_remote::log::GUEST_STARTED)
            .count(),
        3
    );
    let missing = c.exec(
        "node1",
        &[mosaic.to_str().unwrap(), "run", "--", "/no/such/program"],
    );
    assert_eq!(missing.status.code(), Some(127), "{}", text(&missing));
    c.down();
}

#[test]
fn a_blocking_forwarded_read_interrupted_by_a_signal_fails_or_restarts_per_sa_restart() {
    let mut c = Cluster::up("migrate-eintr", 2, 27946);
    let prog = build("blocked_read", &c.dir);
    for (mode, expected) in [
        ("eintr", "read -1 EINTR, handler ran\n"),
        ("restart", "read 1 'x', handler ran\n"),
    ] {
        let mut run = c
            .command(&["cluster", "exec", "node1", "--", &prog, mode])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = run.stdin.take().unwrap(); // nothing written yet
        let mut out = BufReader::new(run.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let pid: i32 = line.trim().strip_prefix("pid ").unwrap().parse().unwrap();
        line.clear();
        out.read_line(&mut line).unwrap();
        migrate(&c, pid, "node2");
        // Let it reach the read (it spins 2 s first), then interrupt it.
        std::thread::sleep(Duration::from_millis(2800));
        kill_in_node1(&c, "-USR1", pid);
        std::thread::sleep(Duration::from_millis(500));
        // (Without SA_RESTART it may have finished already.)
        let _ = stdin.write_all(b"x");
        let status = wait_for("the program to finish", Duration::from_secs(30), || {
            run.try_wait().unwrap().ok_or_else(|| "running".into())
        });
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, expected, "{mode}");
        assert_eq!(status.code(), Some(0));
    }
    c.down();
}

/// Reads one line.
fn line_of(out: &mut impl BufRead) -> String {
    let mut l = String::new();
    out.read_line(&mut l).unwrap();
    l
}

/// The tick count the ticker program last wrote.
fn ticks(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn stop_and_continue_on_the_home_pid_stop_the_guest_and_the_parent_sees_it() {
    let mut c = Cluster::up("migrate-jobctl", 2, 22946);
    let parent = build("parent", &c.dir);
    let ticker = build("ticker", &c.dir);
    let tick_file = c.dir.join("node1/srv/ticks");
    let (mut run, mut out, pid) = start_in_node1(&c, &parent, &[&ticker, "/srv/mosaic-node/ticks"]);
    migrate(&c, pid, "node2");
    let guest = processes_of(65534, &ticker);
    assert_eq!(guest.len(), 1, "one guest: {guest:?}");
    wait_for("ticks", Duration::from_secs(10), || {
        (ticks(&tick_file) > 2)
            .then_some(())
            .ok_or("no ticks".into())
    });

    for (sig, number) in [("-STOP", 19), ("-TSTP", 20)] {
        kill_in_node1(&c, sig, pid);
        // The parent sees the stop, as a shell would.
        assert_eq!(line_of(&mut out), format!("stopped {number}\n"));
        // The guest on node2 is stopped too: no tick for a while.
        let state = std::fs::read_to_string(format!("/proc/{}/status", guest[0])).unwrap();
        assert!(
            state.contains("State:\tt (tracing stop)") || state.contains("State:\tT (stopped)"),
            "{state}"
        );
        let before = ticks(&tick_file);
        std::thread::sleep(Duration::from_millis(700));
        assert_eq!(ticks(&tick_file), before, "it ran while stopped by {sig}");
        kill_in_node1(&c, "-CONT", pid);
        assert_eq!(line_of(&mut out), "continued\n");
        wait_for("ticks after SIGCONT", Duration::from_secs(10), || {
            (ticks(&tick_file) > before)
                .then_some(())
                .ok_or("no ticks".into())
        });
    }
    // It was never lost on the way: it finishes its 80 ticks and exits 5.
    assert_eq!(line_of(&mut out), "exited 5\n");
    assert_eq!(ticks(&tick_file), 80);
    assert!(run.wait().unwrap().success());

    // In an orphaned process group (its own session: nobody could continue
    // it) the kernel discards SIGTSTP; migrated, it goes on just the same.
    let orphan_ticks = c.dir.join("node1/srv/orphan-ticks");
    let (mut run, _out, pid) =
        start_in_node1(&c, "setsid", &[&ticker, "/srv/mosaic-node/orphan-ticks"]);
    migrate(&c, pid, "node2");
    kill_in_node1(&c, "-TSTP", pid);
    let before = ticks(&orphan_ticks);
    wait_for(
        "ticks after a discarded SIGTSTP",
        Duration::from_secs(20),
        || {
            (ticks(&orphan_ticks) > before + 3)
                .then_some(())
                .ok_or("no ticks".into())
        },
    );
    wait_for("the orphan's 80 ticks", Duration::from_secs(60), || {
        (ticks(&orphan_ticks) == 80)
            .then_some(())
            .ok_or(format!("{} ticks", ticks(&orphan_ticks)))
    });
    let _ = run.wait();
    c.down();
}

#[test]
fn death_by_sigsegv_and_stdin_from_a_pipe_are_exact_after_migration() {
    let mut c = Cluster::up("migrate-segv", 2, 24946);
    let parent = build("parent", &c.dir);
    let segv = build("segv", &c.dir);
    let (mut run, mut out, pid) = start_in_node1(&c, &parent, &[&segv]);
    migrate(&c, pid, "node2");
    assert_eq!(line_of(&mut out), "killed 11\n");
    assert!(run.wait().unwrap().success());

    let sum = build("stdin_sum", &c.dir);
    let (mut run, mut stdin, mut out) = piped_in_node1(&c, &sum);
    let pid: i32 = line_of(&mut out)
        .trim()
        .strip_prefix("pid ")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(line_of(&mut out), "waiting\n");
    migrate(&c, pid, "node2");
    let data: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i * 7 + i / 1000).to_le_bytes()[0])
        .collect();
    stdin.write_all(&data).unwrap();
    drop(stdin);
    let expected = data
        .iter()
        .fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(u64::from(b)));
    assert_eq!(
        line_of(&mut out),
        format!("bytes {} sum {expected}\n", data.len())
    );
    assert!(run.wait().unwrap().success());
    c.down();
}

/// Runs `python3 -c script` natively, then in node1 moved to node2 `after`
/// its start; both must succeed. Returns both outputs.
fn python3_native_and_migrated(
    c: &Cluster,
    script: &str,
    after: Duration,
) -> (std::process::Output, std::process::Output) {
    let native = Command::new("python3")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(native.status.success(), "{}", text(&native));
    let run = c
        .command(&["cluster", "exec", "node1", "--", "python3", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = program_pid_in_node(&run);
    std::thread::sleep(after);
    migrate(c, pid, "node2");
    let out = run.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    (native, out)
}

#[test]
fn a_python3_that_forks_after_migrating_comes_home_and_forks() {
    let mut c = Cluster::up("migrate-fork", 2, 28946);
    let script = "import os, sys, time\n\
        me = os.getpid()\n\
        t = time.time()\n\
        while time.time() - t < 2.0: pass\n\
        print('forking', flush=True)\n\
        pid = os.fork()\n\
        if pid == 0:\n    print('child of me:', os.getppid() == me, flush=True)\n    os._exit(7)\n\
        _, st = os.waitpid(pid, 0)\n\
        print('parent saw', os.WEXITSTATUS(st), 'same pid:', os.getpid() == me)\n";
    let (native, out) = python3_native_and_migrated(&c, script, Duration::from_millis(600));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&native.stdout)
    );
    let log = c.log("node1");
    assert!(
        log.contains("came home") && log.contains("clone"),
        "it came home to fork:\n{log}"
    );
    c.down();
}

#[test]
fn mosaic_ps_shows_where_state_cpu_memory_and_lock() {
    let mut c = Cluster::up("migrate-ps", 2, 29946);
    let ticker = build("ticker", &c.dir);
    let mosaic = bin("mosaic");
    let (mut run, _out, pid) = start_in_node1(
        &c,
        mosaic.to_str().unwrap(),
        &["run", "--lock", "--", &ticker, "/srv/mosaic-node/ticks"],
    );
    let row_on = |node: &str, want: &dyn Fn(&serde_json::Value) -> bool| {
        wait_for("the row in mosaic ps", Duration::from_secs(10), || {
            let r = c.exec(node, &[bin("mosaic").to_str().unwrap(), "ps", "--json"]);
            let rows: Vec<serde_json::Value> =
                serde_json::from_slice(&r.stdout).map_err(|e| format!("{e}: {}", text(&r)))?;
            rows.into_iter()
                .find(|r| r["home_pid"] == pid && want(r))
                .ok_or_else(|| "no such row yet".to_string())
        })
    };
    // At home: managed because `mosaic run` started it, locked, running.
    let row = row_on("node2", &|r| {
        r["node"] == "node1" && r["state"] == "running"
    });
    assert_eq!(row["lock"], true, "{row}");
    assert_eq!(row["cantmove"], "", "{row}");
    assert!(row["mem_kb"].as_u64().unwrap() > 0, "{row}");
    // Away: where it runs, and its CPU share and memory there.
    migrate(&c, pid, "node2");
    let row = row_on("node1", &|r| {
        r["node"] == "node2" && r["cpu"].as_f64().unwrap() > 10.0
    });
    assert!(row["mem_kb"].as_u64().unwrap() > 0, "{row}");
    assert_eq!(row["lock"], true, "{row}");
    kill_in_node1(&c, "-STOP", pid);
    row_on("node1", &|r| r["state"] == "stopped");
    kill_in_node1(&c, "-KILL", pid);
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 9));
    c.down();
}

#[test]
fn private_file_mappings_made_while_away_are_filled_from_home() {
    let mut c = Cluster::up("migrate-mmap", 2, 30946);
    let prog = build("mmap_file", &c.dir);
    let (mut run, mut out, pid) = start_in_node1(&c, &prog, &[]);
    migrate(&c, pid, "node2");
    let status = run.wait().unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(
        rest,
        "mapped node1\nfile still starts with n, mapping with X\noffset map bb cc\nbad fd fails\n"
    );
    assert_eq!(status.code(), Some(0));

    // python3 loading C extensions (dlopen maps them) after migrating.
    let script = "import time\n\
        t = time.time()\n\
        while time.time() - t < 1.5: pass\n\
        import decimal, bz2, lzma\n\
        print(decimal.Decimal(1) / 7, len(bz2.compress(b'x' * 1000)), len(lzma.compress(b'y' * 1000)))\n";
    let (native, out) = python3_native_and_migrated(&c, script, Duration::from_millis(500));
    assert_eq!(out.stdout, native.stdout);
    let log = c.log("node2");
    assert!(
        !log.contains(mosaic_remote::log::SENDING_HOME),
        "it stayed on node2:\n{log}"
    );

    // Captured at exec (`mosaic run --node`), before ld.so ran: ld.so's
    // read-only shared mapping of /etc/ld.so.cache is filled from home
    // like a private one, and the process stays on node2.
    let out = c.exec(
        "node1",
        &[
            bin("mosaic").to_str().unwrap(),
            "run",
            "--node",
            "node2",
            "--",
            "mawk",
            "BEGIN { for (i = 0; i < 3000000; i++) n++; print n }",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "3000000\n");
    let log = c.log("node1");
    assert!(
        !log.contains(mosaic_deputy::log::CAME_HOME),
        "it stayed on node2:\n{log}"
    );
    c.down();
}

#[test]
fn sockets_epoll_and_address_buffers_work_while_away() {
    let mut c = Cluster::up("migrate-sockets", 2, 31946);
    let prog = build("sockets", &c.dir);
    let native = Command::new(&prog).output().unwrap();
    assert!(native.status.success(), "{}", text(&native));
    let native = String::from_utf8_lossy(&native.stdout);
    let native_rest: String = native.lines().skip(2).map(|l| format!("{l}\n")).collect();
    let (mut run, mut out, pid) = start_in_node1(&c, &prog, &[]);
    migrate(&c, pid, "node2");
    let status = run.wait().unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, native_rest);
    assert_eq!(status.code(), Some(0));
    let log = c.log("node2");
    // No call brought it home (a call mosaic cannot forward would), not
    // even sendmmsg/recvmmsg.
    assert!(!log.contains(mosaic_remote::log::SENDING_HOME), "{log}");
    c.down();
}

#[test]
fn posix_timers_travel_under_their_ids_and_tick_on_every_node() {
    let mut c = Cluster::up("migrate-timers", 3, 39946);
    let prog = build("posix_timers", &c.dir);
    let (mut run, mut out, pid) = start_in_node1(&c, &prog, &[]);
    // Windows of 100 ms, each timer ticking every 10 ms: moved after the
    // 5th, 12th and 20th window, node1 -> node2 -> node3 -> home.
    let mut windows = Vec::new();
    for w in 0..30 {
        let line = line_of(&mut out);
        let ticks: Vec<u32> = line
            .trim()
            .strip_prefix("w ")
            .unwrap_or_else(|| panic!("window {w}: {line:?}"))
            .split(' ')
            .map(|n| n.parse().unwrap())
            .collect();
        windows.push(ticks);
        match w {
            4 => migrate(&c, pid, "node2"),
            11 => migrate(&c, pid, "node3"),
            19 => migrate(&c, pid, "home"),
            _ => {}
        }
    }
    assert_eq!(
        line_of(&mut out),
        "bad 0\n",
        "every tick carried its timer's value"
    );
    assert_eq!(
        run.wait().unwrap().code(),
        Some(0),
        "both timers were there at the end"
    );
    // Ticks keep coming on every node (a window can lose some to the
    // freeze of a move), and never twice (a placeholder's timer still
    // armed at home would double them).
    for (w, ticks) in windows.iter().enumerate() {
        for &n in ticks {
            assert!((2..=14).contains(&n), "window {w}: {windows:?}");
        }
    }
    for timer in 0..2 {
        let total: u32 = windows.iter().map(|t| t[timer]).sum();
        assert!(
            (240..=330).contains(&total),
            "timer {timer}: {total} ticks in 3 s: {windows:?}"
        );
    }
    assert!(c.log("node2").contains(mosaic_remote::log::GUEST_STARTED));
    assert!(c.log("node3").contains(mosaic_remote::log::GUEST_STARTED));
    c.down();
}

#[test]
fn resource_limits_travel_and_the_guests_own_kernel_enforces_them() {
    let mut c = Cluster::up("migrate-limits", 2, 40946);
    let prog = build("deep_stack", &c.dir);
    // The shell sets them, the program inherits them (exec keeps the PID).
    let script = format!("ulimit -s unlimited; ulimit -n 64; exec {prog}");
    let (mut run, mut out, pid) = start_in_node1(&c, "sh", &["-c", &script]);
    migrate(&c, pid, "node2");
    let guest = wait_for("the guest on node2", Duration::from_secs(10), || {
        processes_of(65534, &prog)
            .first()
            .copied()
            .ok_or_else(|| "no guest yet".to_string())
    });
    let limits = std::fs::read_to_string(format!("/proc/{guest}/limits")).unwrap();
    let line = |name: &str| -> Vec<String> {
        let l = limits.lines().find(|l| l.starts_with(name)).unwrap();
        l[name.len()..]
            .split_whitespace()
            .take(2)
            .map(String::from)
            .collect()
    };
    assert_eq!(
        line("Max stack size"),
        ["unlimited", "unlimited"],
        "{limits}"
    );
    assert_eq!(
        line("Max open files"),
        ["64", "64"],
        "not mosaicd's: {limits}"
    );
    // 64 MiB of stack on the guest: only the unlimited stack allows it.
    assert_eq!(line_of(&mut out), "deep 0\n");
    assert_eq!(run.wait().unwrap().code(), Some(0));
    c.down();
}

/// `ulimit -t` counts all its CPU time: each kernel counts a restored
/// process from zero, so a guest's RLIMIT_CPU is lowered by what it had
/// used (and raised back in its next image), while `getrlimit` (answered
/// at home) keeps saying the limit as set.
#[test]
fn a_cpu_time_limit_counts_the_time_used_on_every_node() {
    let mut c = Cluster::up("migrate-cpu-limit", 3, 59946);
    let script = c.dir.join("cpu_limit.py");
    std::fs::write(
        &script,
        "import os, resource, time\n\
         print('pid', os.getpid(), flush=True)\n\
         print('waiting', flush=True)\n\
         while True:\n\
         \x20   t = time.process_time()\n\
         \x20   while time.process_time() - t < 0.2:\n\
         \x20       sum(range(2000))\n\
         \x20   print('cpu %.2f limit %s' % (time.process_time(), resource.getrlimit(resource.RLIMIT_CPU)), flush=True)\n",
    )
    .unwrap();
    let cmd = format!("ulimit -t 3; exec python3 -u {}", script.display());
    // Natively the kernel kills it (SIGKILL at the hard limit) before 3 s.
    let (mut run, mut out, pid) = start_in_node1(&c, "sh", &["-c", &cmd]);
    let mut moves = vec!["node3", "node2"];
    let mut last = 0.0;
    loop {
        let line = line_of(&mut out);
        if line.is_empty() {
            break;
        }
        let (cpu, limit) = line
            .trim()
            .strip_prefix("cpu ")
            .and_then(|l| l.split_once(" limit "))
            .unwrap_or_else(|| panic!("{line}"));
        assert_eq!(limit, "(3, 3)", "the limit as set, wherever it runs");
        last = cpu.parse().unwrap();
        // node1 -> node2 after 1 s, node2 -> node3 (through home) after 2 s.
        if !moves.is_empty() && last >= 3.0 - moves.len() as f64 {
            migrate(&c, pid, moves.pop().unwrap());
        }
    }
    assert!(moves.is_empty(), "it ended at {last} s before both moves");
    assert!(!run.wait().unwrap().success());
    assert!(
        (2.5..4.0).contains(&last),
        "killed after {last} s of CPU time (the limit: 3 s)"
    );
    assert!(c.log("node3").contains(mosaic_remote::log::GUEST_STARTED));
    c.down();
}

/// Ctrl-Z of a job of four computing threads while it is away: the stop
/// is whole (every placeholder thread takes part in the group-stop, or
/// the kernel never tells the parent), its parent sees it stopped, and
/// `fg` (SIGCONT) lets it finish with the native output.
#[test]
fn a_threaded_job_stopped_away_is_seen_stopped_and_continues() {
    let mut c = Cluster::up("migrate-threads-jobctl", 2, 47946);
    let parent = build("parent", &c.dir);
    let native = Command::new("python3")
        .args(["-c", PY_THREADS])
        .output()
        .unwrap();
    assert!(native.status.success(), "natively: {}", text(&native));
    let mut run = c
        .command(&[
            "cluster",
            "exec",
            "node1",
            "--",
            &parent,
            "/usr/bin/env",
            "python3",
            "-c",
            PY_THREADS,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The parent's reports, line by line, each awaited with a limit.
    let (tx, lines) = std::sync::mpsc::channel();
    let mut out = BufReader::new(run.stdout.take().unwrap());
    std::thread::spawn(move || {
        loop {
            let l = line_of(&mut out);
            if l.is_empty() || tx.send(l).is_err() {
                return;
            }
        }
    });
    let next = |limit: u64| {
        lines
            .recv_timeout(Duration::from_secs(limit))
            .unwrap_or_else(|_| format!("(nothing in {limit} s)"))
    };
    // Its node has no other python3.
    let pid: i32 = wait_for("python3 in node1", Duration::from_secs(10), || {
        let r = c.exec("node1", &["pgrep", "-n", "python3"]);
        String::from_utf8_lossy(&r.stdout)
            .trim()
            .parse()
            .map_err(|_| text(&r))
    });
    wait_for_threads(&c, pid);
    lock(&c, pid);
    migrate(&c, pid, "node2");
    kill_in_node1(&c, "-TSTP", pid);
    assert_eq!(next(20), "stopped 20\n");
    let (traced, tids) = traced_with_threads(&c, pid);
    assert!(
        traced && tids.len() > 1,
        "not away with its threads: {tids:?}"
    );
    std::thread::sleep(Duration::from_millis(500));
    kill_in_node1(&c, "-CONT", pid);
    assert_eq!(next(20), "continued\n");
    // (Four threads on the one CPU of node2.)
    let result = next(120);
    assert_eq!(
        result,
        String::from_utf8_lossy(&native.stdout),
        "its output"
    );
    assert_eq!(next(20), "exited 0\n");
    assert!(run.wait().unwrap().success());
    c.down();
}

#[test]
fn a_stopped_job_stays_stopped_through_two_moves_and_continues_where_it_is() {
    let mut c = Cluster::up("migrate-stopped", 3, 43946);
    let parent = build("parent", &c.dir);
    let ticker = build("ticker", &c.dir);
    let tick_file = c.dir.join("node1/srv/ticks");
    let (mut run, mut out, pid) = start_in_node1(&c, &parent, &[&ticker, "/srv/mosaic-node/ticks"]);
    wait_for("ticks", Duration::from_secs(10), || {
        (ticks(&tick_file) > 2)
            .then_some(())
            .ok_or("no ticks".into())
    });
    // Ctrl-Z at home, as a shell's job; then moved twice while stopped.
    kill_in_node1(&c, "-TSTP", pid);
    assert_eq!(line_of(&mut out), "stopped 20\n");
    let stopped_at = ticks(&tick_file);
    for node in ["node2", "node3"] {
        migrate(&c, pid, node);
        let guest = wait_for("the guest", Duration::from_secs(10), || {
            processes_of(65534, &ticker)
                .first()
                .copied()
                .ok_or_else(|| "no guest yet".to_string())
        });
        // Stopped there, using no CPU: its state, its CPU time, its ticks.
        let cpu = |pid: u32| -> (String, u64) {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            // Fields after the command: state, then utime and stime at 12, 13.
            let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
            (
                f[0].to_string(),
                f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap(),
            )
        };
        let (state, before) = wait_for("the guest to stop", Duration::from_secs(10), || {
            let (state, t) = cpu(guest);
            if state == "T" {
                Ok((state, t))
            } else {
                Err(format!("state {state}"))
            }
        });
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(
            cpu(guest),
            (state, before),
            "it ran on {node} while stopped"
        );
        assert_eq!(
            ticks(&tick_file),
            stopped_at,
            "it ticked on {node} while stopped"
        );
    }
    // fg: SIGCONT to the home PID; it goes on where it is and finishes.
    kill_in_node1(&c, "-CONT", pid);
    let mut line = line_of(&mut out);
    while line == "stopped 20\n" {
        // (Each move stops the placeholder again; its parent hears it.)
        line = line_of(&mut out);
    }
    assert_eq!(line, "continued\n");
    assert_eq!(line_of(&mut out), "exited 5\n");
    assert_eq!(ticks(&tick_file), 80);
    assert!(run.wait().unwrap().success());
    assert!(c.log("node3").contains(mosaic_remote::log::GUEST_STARTED));
    c.down();
}

#[test]
fn signals_queued_while_blocked_travel_once_with_their_values() {
    let mut c = Cluster::up("migrate-queued", 2, 48946);
    let prog = build("queued_signals", &c.dir);
    let (mut run, mut out, pid) = start_in_node1(&c, &prog, &[]);
    migrate(&c, pid, "node2");
    // As natively: one SIGUSR1, two SIGRTMIN with their values (a capture
    // that only peeked at the queue left them queued at home too, and the
    // placeholder relayed them: a second SIGUSR1).
    assert_eq!(line_of(&mut out), "usr1 1 rt 2 values 7 8\n");
    assert_eq!(run.wait().unwrap().code(), Some(0));
    assert!(c.log("node2").contains(mosaic_remote::log::GUEST_STARTED));
    c.down();
}

/// A python3 that works in 30 equal chunks and reads its own CPU time
/// after each: `process_time`, `thread_time`, `getrusage(RUSAGE_SELF)`
/// and `os.times()`.
const CPU_CHUNKS: &str = "import os, resource, sys, time\n\
    print('pid', os.getpid(), flush=True)\n\
    print('waiting', flush=True)\n\
    sys.stdin.readline()\n\
    for i in range(30):\n\
    \x20   x = 0\n\
    \x20   for _ in range(1500000): x += 1\n\
    \x20   ru = resource.getrusage(resource.RUSAGE_SELF)\n\
    \x20   t = os.times()\n\
    \x20   print(time.process_time(), time.thread_time(), ru.ru_utime + ru.ru_stime, t.user + t.system, flush=True)\n";

/// CPU times read by [`CPU_CHUNKS`], one row per chunk.
fn cpu_rows(out: &mut impl BufRead, moves: &mut dyn FnMut(usize)) -> Vec<[f64; 4]> {
    (0..30)
        .map(|i| {
            let line = line_of(out);
            let row: Vec<f64> = line
                .split_whitespace()
                .map(|v| v.parse().unwrap_or_else(|_| panic!("chunk {i}: {line:?}")))
                .collect();
            moves(i);
            row.try_into()
                .unwrap_or_else(|_| panic!("chunk {i}: {line:?}"))
        })
        .collect()
}

#[test]
fn cpu_time_counts_every_node_the_process_ran_on() {
    let mut c = Cluster::up("migrate-cputime", 3, 51946);
    let mut run = c
        .command(&[
            "cluster", "exec", "node1", "--", "python3", "-c", CPU_CHUNKS,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(run.stdout.take().unwrap());
    let pid: i32 = line_of(&mut out)
        .trim()
        .strip_prefix("pid ")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(line_of(&mut out), "waiting\n");
    run.stdin.take().unwrap().write_all(b"go\n").unwrap();
    // Moved after the 8th chunk and the 18th: node1 -> node2 -> node3
    // (through home).
    let rows = cpu_rows(&mut out, &mut |i| match i {
        7 => migrate(&c, pid, "node2"),
        17 => migrate(&c, pid, "node3"),
        _ => {}
    });
    assert!(run.wait().unwrap().success());
    assert!(c.log("node2").contains(mosaic_remote::log::GUEST_STARTED));
    assert!(c.log("node3").contains(mosaic_remote::log::GUEST_STARTED));
    let report = |rows: &[[f64; 4]]| {
        rows.iter()
            .map(|r| format!("{r:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    // Every reading grows with the work, across both moves: the cost of
    // one chunk, as the median chunk measured it, never a count started
    // again on a new node (a negative step) nor one counted twice.
    let mut steps: Vec<f64> = rows.windows(2).map(|w| w[1][0] - w[0][0]).collect();
    steps.sort_by(f64::total_cmp);
    let chunk = steps[steps.len() / 2];
    for (i, w) in rows.windows(2).enumerate() {
        let step = w[1][0] - w[0][0];
        assert!(
            step > chunk * 0.3 && step < chunk * 3.0 + 0.05,
            "chunk {}: process_time grew by {step} (a chunk costs {chunk}):\n{}",
            i + 1,
            report(&rows)
        );
        for (k, (now, before)) in w[1].iter().zip(&w[0]).enumerate().skip(1) {
            assert!(
                now + 0.011 >= *before,
                "chunk {}: reading {k} went back:\n{}",
                i + 1,
                report(&rows)
            );
        }
    }
    // All four readings say the same, as natively (os.times() in ticks).
    for (i, r) in rows.iter().enumerate() {
        for (k, reading) in r.iter().enumerate().skip(1) {
            assert!(
                (reading - r[0]).abs() < 0.03 + r[0] * 0.02,
                "chunk {i}: reading {k} is {reading} where process_time is {}:\n{}",
                r[0],
                report(&rows)
            );
        }
    }
    // (Not compared with a native run's total: on this VM the CPU time of
    // the same work moved by half between two runs under other tests'
    // load; the steps above are each measured against the same run.)
    c.down();
}

/// A python3 that holds 48 MiB, waits for a line, then reads its own
/// `/proc` files: what it prints must be the native run's, and its
/// resident sizes (the last line) within 10% of native.
const PROC_SELF: &str = "import os, resource, sys, time\n\
    held = bytearray(48 << 20)\n\
    for i in range(0, len(held), 4096): held[i] = 1\n\
    print('pid', os.getpid(), flush=True)\n\
    print('waiting', flush=True)\n\
    sys.stdin.readline()\n\
    t = time.time()\n\
    while time.time() - t < 0.3: pass\n\
    status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())\n\
    print('status pid', int(status['Pid']) == os.getpid(), 'ppid', int(status['PPid']) == os.getppid())\n\
    print('state', status['State'].split()[0], 'tracer', status['TracerPid'].strip())\n\
    maps = open(f'/proc/{os.getpid()}/maps').read()\n\
    print('heap', '[heap]' in maps, 'stack', '[stack]' in maps, 'libc', 'libc.so' in maps, 'exe', os.path.realpath(sys.executable) in maps)\n\
    stat = open('/proc/self/stat').read()\n\
    f = stat[stat.rindex(')') + 2:].split()\n\
    print('stat pid', int(stat.split()[0]) == os.getpid(), 'ppid', int(f[1]) == os.getppid(), 'state', f[0])\n\
    cpu = (int(f[11]) + int(f[12])) / os.sysconf('SC_CLK_TCK')\n\
    print('stat cpu', abs(cpu - time.process_time()) < 0.05)\n\
    rollup = open('/proc/thread-self/smaps_rollup').read()\n\
    print('rollup heap', '[rollup]' in rollup)\n\
    statm = open('/proc/self/statm').read().split()\n\
    rss = int(status['VmRSS'].split()[0])\n\
    print('rss', rss, int(statm[1]) * 4, held[4096])\n";

#[test]
fn a_process_reading_its_own_proc_files_sees_its_guest_memory() {
    let mut c = Cluster::up("migrate-procself", 2, 52946);
    let run_it = |mut run: std::process::Child, before_go: &mut dyn FnMut(i32)| {
        let mut out = BufReader::new(run.stdout.take().unwrap());
        let first = line_of(&mut out);
        let pid: i32 = first.trim().strip_prefix("pid ").unwrap().parse().unwrap();
        assert_eq!(line_of(&mut out), "waiting\n");
        before_go(pid);
        run.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        assert!(run.wait().unwrap().success(), "{rest}");
        let (lines, rss) = rest.trim_end().rsplit_once('\n').unwrap();
        let rss: Vec<u64> = rss
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap())
            .collect();
        (lines.to_string(), rss)
    };
    let native = Command::new("python3")
        .args(["-c", PROC_SELF])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (native_lines, native_rss) = run_it(native, &mut |_| {});
    let moved = c
        .command(&["cluster", "exec", "node1", "--", "python3", "-c", PROC_SELF])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, rss) = run_it(moved, &mut |pid| migrate(&c, pid, "node2"));
    assert!(c.log("node2").contains(mosaic_remote::log::GUEST_STARTED));
    assert_eq!(lines, native_lines);
    assert!(
        native_lines.contains("heap True stack True libc True exe True"),
        "{native_lines}"
    );
    eprintln!("resident kB (VmRSS, statm): moved {rss:?}, native {native_rss:?}");
    for i in 0..2 {
        let (m, n) = (rss[i] as f64, native_rss[i] as f64);
        assert!(
            (m - n).abs() < n * 0.1,
            "resident {m} kB moved vs {n} kB native ({rss:?} vs {native_rss:?})"
        );
    }
    c.down();
}

/// A python3 writing into a file through a writable shared mapping (as
/// numpy.memmap does), checking after each write that a read of the file
/// (made at home while away) sees it, and `msync`ing every 16 writes.
const MEMMAP_WRITER: &str = "import hashlib, mmap, os, sys, time\n\
    f = open(sys.argv[1], 'r+b')\n\
    m = mmap.mmap(f.fileno(), 0)\n\
    print('pid', os.getpid(), flush=True)\n\
    print('waiting', flush=True)\n\
    sys.stdin.readline()\n\
    for i in range(48):\n\
    \x20   off = (i * 65537) % (len(m) - 4096)\n\
    \x20   m[off:off + 4096] = bytes((i * 7 + j) % 251 for j in range(256)) * 16\n\
    \x20   t = time.time()\n\
    \x20   while time.time() - t < 0.03: pass\n\
    \x20   if i % 16 == 15: m.flush()\n\
    \x20   print(i, os.pread(f.fileno(), 4096, off) == m[off:off + 4096], flush=True)\n\
    m.close()\n\
    f.close()\n\
    print(hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest())\n";

/// Runs `script file` from its "waiting" on, moving it by `moves(line
/// number, pid)` as its lines come; its output after "waiting".
fn run_moved(mut run: std::process::Child, moves: &mut dyn FnMut(usize, i32)) -> String {
    let mut out = BufReader::new(run.stdout.take().unwrap());
    let pid: i32 = line_of(&mut out)
        .trim()
        .strip_prefix("pid ")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(line_of(&mut out), "waiting\n");
    moves(0, pid);
    run.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut text = String::new();
    for n in 1.. {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        text.push_str(&line);
        moves(n, pid);
    }
    assert!(run.wait().unwrap().success(), "{text}");
    text
}

/// Runs `prog` natively with `native_args`, then in node1 with
/// `moved_args`, moved by `moves` as its lines come ([`run_moved`]); both
/// outputs after "waiting".
fn native_and_moved(
    c: &Cluster,
    prog: &str,
    native_args: &[&str],
    moved_args: &[&str],
    moves: &mut dyn FnMut(usize, i32),
) -> (String, String) {
    let native = Command::new(prog)
        .args(native_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let native = run_moved(native, &mut |_, _| {});
    let mut all = vec!["cluster", "exec", "node1", "--", prog];
    all.extend_from_slice(moved_args);
    let moved = c
        .command(&all)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    (native, run_moved(moved, moves))
}

#[test]
fn a_writable_shared_file_mapping_travels_and_its_writes_reach_the_file() {
    let mut c = Cluster::up("migrate-sharedmap", 2, 53946);
    let (native_file, moved_file) = (c.dir.join("native.bin"), c.dir.join("moved.bin"));
    for f in [&native_file, &moved_file] {
        std::fs::write(f, vec![0u8; 1 << 20]).unwrap();
    }
    let (native_path, moved_path) = (native_file.to_str().unwrap(), moved_file.to_str().unwrap());
    // Away from its start, home at the 20th write, away again at the 30th.
    let (native, moved) = native_and_moved(
        &c,
        "python3",
        &["-c", MEMMAP_WRITER, native_path],
        &["-c", MEMMAP_WRITER, moved_path],
        &mut |n, pid| match n {
            0 => {
                lock(&c, pid);
                migrate(&c, pid, "node2")
            }
            30 => migrate(&c, pid, "node2"),
            20 => migrate(&c, pid, "home"),
            _ => {}
        },
    );
    assert_eq!(moved, native);
    assert!(!native.contains("False"), "{native}");
    assert!(
        std::fs::read(&moved_file).unwrap() == std::fs::read(&native_file).unwrap(),
        "the files differ"
    );
    assert_eq!(
        c.log("node2")
            .matches(mosaic_remote::log::GUEST_STARTED)
            .count(),
        2
    );
    c.down();
}

#[test]
fn a_file_mapped_shared_by_two_processes_keeps_its_writer_home() {
    let mut c = Cluster::up("migrate-sharedtwo", 2, 54946);
    let file = c.dir.join("two.bin");
    std::fs::write(&file, vec![0u8; 1 << 20]).unwrap();
    let mapper = "import mmap, os, sys\n\
        f = open(sys.argv[1], 'r+b')\n\
        m = mmap.mmap(f.fileno(), 0)\n\
        print('pid', os.getpid(), flush=True)\n\
        print('waiting', flush=True)\n\
        sys.stdin.readline()\n";
    let path = file.to_str().unwrap();
    let spawn = |script: &str| {
        c.command(&[
            "cluster", "exec", "node1", "--", "python3", "-c", script, path,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let mut other = spawn(mapper);
    let mut other_out = BufReader::new(other.stdout.take().unwrap());
    let other_pid = line_of(&mut other_out);
    let other_pid = other_pid.trim().strip_prefix("pid ").unwrap().to_string();
    assert_eq!(line_of(&mut other_out), "waiting\n");
    let writer = spawn(MEMMAP_WRITER);
    let out = run_moved(writer, &mut |n, pid| {
        if n == 0 {
            let r = c.exec(
                "node1",
                &[
                    bin("mosaic").to_str().unwrap(),
                    "migrate",
                    &pid.to_string(),
                    "node2",
                ],
            );
            let said = text(&r);
            assert!(!r.status.success(), "{said}");
            assert!(
                said.contains(&format!("process {other_pid} (python3) maps too")),
                "{said}"
            );
        }
    });
    assert!(!out.contains("False"), "{out}");
    other.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert!(other.wait().unwrap().success());
    assert!(!c.log("node2").contains(mosaic_remote::log::GUEST_STARTED));
    c.down();
}

/// A python3 inserting into a sqlite database in WAL mode, in
/// transactions (its `-shm` index is a writable shared mapping).
const SQLITE_WAL: &str = "import os, sqlite3, sys, time\n\
    db = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
    mode = db.execute('pragma journal_mode=wal').fetchone()[0]\n\
    db.execute('create table t(i integer primary key, v text)')\n\
    print('pid', os.getpid(), flush=True)\n\
    print('waiting', flush=True)\n\
    sys.stdin.readline()\n\
    for tx in range(40):\n\
    \x20   db.execute('begin')\n\
    \x20   for k in range(25): db.execute('insert into t values (?, ?)', (tx * 25 + k, 'v%d' % (tx * k)))\n\
    \x20   db.execute('commit')\n\
    \x20   t = time.time()\n\
    \x20   while time.time() - t < 0.03: pass\n\
    \x20   print('tx', tx, db.execute('select count(*) from t').fetchone()[0], flush=True)\n\
    print(mode, db.execute('pragma integrity_check').fetchone()[0], db.execute('select count(*), sum(i), max(v) from t').fetchone())\n\
    db.close()\n";

#[test]
fn sqlite_in_wal_mode_moved_mid_run_keeps_a_sound_database() {
    let mut c = Cluster::up("migrate-sqlite", 2, 55946);
    let (native_db, moved_db) = (c.dir.join("native.db"), c.dir.join("moved.db"));
    let (native, moved) = native_and_moved(
        &c,
        "python3",
        &["-c", SQLITE_WAL, native_db.to_str().unwrap()],
        &["-c", SQLITE_WAL, moved_db.to_str().unwrap()],
        &mut |n, pid| match n {
            0 => lock(&c, pid),
            5 | 30 => migrate(&c, pid, "node2"),
            20 => migrate(&c, pid, "home"),
            _ => {}
        },
    );
    assert_eq!(moved, native);
    assert!(native.contains("\nwal ok (1000,"), "{native}");
    let dump = |db: &Path| {
        let out = Command::new("sqlite3")
            .arg(db)
            .arg(".dump")
            .output()
            .unwrap();
        assert!(out.status.success());
        out.stdout
    };
    assert!(dump(&moved_db) == dump(&native_db), "the databases differ");
    assert_eq!(
        c.log("node2")
            .matches(mosaic_remote::log::GUEST_STARTED)
            .count(),
        2
    );
    c.down();
}

/// perl's System V IPC after a move: a message queue and a semaphore set
/// (their ctl calls forwarded), then a shared memory segment's status
/// (`shmget` brings the process home).
const PERL_SYSV: &str = r#"use strict;
use IPC::SysV qw(IPC_PRIVATE IPC_CREAT IPC_STAT IPC_RMID S_IRUSR S_IWUSR SETVAL GETVAL GETPID);
$| = 1;
print "pid $$\nwaiting\n";
<STDIN>;
my $q = msgget(IPC_PRIVATE, IPC_CREAT | S_IRUSR | S_IWUSR) // die "msgget: $!";
msgsnd($q, pack("l! a*", 7, "first"), 0) or die "msgsnd: $!";
msgsnd($q, pack("l! a*", 9, "second"), 0) or die "msgsnd: $!";
my $ds;
msgctl($q, IPC_STAT, $ds) or die "msgctl: $!";
my @f = unpack("x48 q q q Q Q Q", $ds);
print "queue messages $f[4] bytes $f[3]\n";
my $buf;
msgrcv($q, $buf, 64, 9, 0) or die "msgrcv: $!";
my ($type, $text) = unpack("l! a*", $buf);
print "received $type $text\n";
msgctl($q, IPC_RMID, 0) or die "rmid: $!";
my $s = semget(IPC_PRIVATE, 2, IPC_CREAT | S_IRUSR | S_IWUSR) // die "semget: $!";
semctl($s, 1, SETVAL, 5) or die "setval: $!";
semop($s, pack("s!3", 1, -2, 0)) or die "semop: $!";
my $v = semctl($s, 1, GETVAL, 0);
my $sds;
semctl($s, 0, IPC_STAT, $sds) or die "semctl stat: $!";
my $nsems = unpack("x48 x8 x8 x8 x8 Q", $sds);
print "sem value $v nsems $nsems pid ", semctl($s, 1, GETPID, 0) == $$ ? "mine" : "other", "\n";
semctl($s, 0, IPC_RMID, 0) or die "sem rmid: $!";
my $m = shmget(IPC_PRIVATE, 8192, IPC_CREAT | S_IRUSR | S_IWUSR) // die "shmget: $!";
my $mds;
shmctl($m, IPC_STAT, $mds) or die "shmctl: $!";
my ($segsz, $cpid) = unpack("x48 Q x8 x8 x8 l", $mds);
print "shm size $segsz creator ", $cpid == $$ ? "me" : "other", "\n";
shmctl($m, IPC_RMID, 0) or die "shm rmid: $!";
print "done\n";
"#;

#[test]
fn perl_system_v_ipc_works_while_away() {
    let mut c = Cluster::up("migrate-sysv", 2, 56946);
    let (native, moved) = native_and_moved(
        &c,
        "perl",
        &["-e", PERL_SYSV],
        &["-e", PERL_SYSV],
        &mut |n, pid| {
            if n == 0 {
                migrate(&c, pid, "node2")
            }
        },
    );
    assert!(native.ends_with("done\n"), "{native}");
    assert_eq!(moved, native);
    let log = c.log("node2");
    assert!(log.contains(mosaic_remote::log::GUEST_STARTED), "{log}");
    // msgctl and semctl were made from node2; shmget brings it home (by
    // design: shmat, which maps, almost always follows).
    let homeward: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(mosaic_remote::log::SENDING_HOME))
        .collect();
    assert!(
        homeward.len() == 1 && homeward[0].contains("reason=\"shmget\""),
        "{log}"
    );
    c.down();
}
