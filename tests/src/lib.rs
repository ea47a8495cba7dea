//! # mosaic-tests: end-to-end tests on local clusters
//!
//! The tests in `tests/tests/` start real local clusters with the `mosaic`
//! binary (`mosaic cluster up`), drive them as a user would, and check what a
//! user would see. This library holds the harness: where the binaries are, a
//! cluster that is torn down when the test ends, and polling helpers (tests
//! wait for conditions with a deadline, they never assert a time).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mosaic_proto::NodeInfo;

/// Path of a binary of the workspace, built by `cargo test --workspace`.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: run the tests with `cargo test --workspace` so the binaries are built",
        p.display()
    );
    p
}

/// Fails the test at once unless it runs as root (namespaces and mounts need it).
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "end-to-end tests create namespaces and mounts: run them as root"
    );
}

/// Waits (20 s at most) until the file at `path` holds a PID, as a
/// process the test started writes its own there.
pub fn wait_for_pid_file(what: &str, path: &Path) -> i32 {
    wait_for(what, Duration::from_secs(20), || {
        std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|s| s.trim().parse().map_err(|e| format!("{e}: {s:?}")))
    })
}

/// Polls `f` until it returns `Some` or `limit` passes; panics with `what`
/// and the last observation otherwise.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => {
                panic!("timed out after {limit:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// A local cluster in a private state directory, stopped when dropped.
pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
    up: bool,
    /// Dropping this sender tells the watchdog the test is over.
    _watchdog: std::sync::mpsc::Sender<()>,
}

/// How long one test may keep a cluster before the watchdog stops it. A
/// hung migration must fail the test with the nodes' logs, not hang CI.
pub const TEST_LIMIT: Duration = Duration::from_secs(300);

/// Stops the cluster in `dir` if the test still holds it after `limit`:
/// prints what every node was doing, then kills the nodes (which ends
/// every process in them, so whatever the test waits for returns and the
/// test fails on its own assertions).
fn watchdog(dir: PathBuf, limit: Duration) -> std::sync::mpsc::Sender<()> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if rx.recv_timeout(limit) != Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
            return;
        }
        eprintln!("WATCHDOG: the test held its cluster for {limit:?}; stopping it");
        let mosaic = |args: &[&str]| {
            // `timeout`: a hung daemon must not hang the watchdog too.
            Command::new("timeout")
                .arg("20")
                .arg(bin("mosaic"))
                .env("MOSAIC_CLUSTER_DIR", &dir)
                .args(args)
                .stdin(Stdio::null())
                .output()
        };
        if let Ok(o) = mosaic(&["ps"]) {
            eprintln!("mosaic ps:\n{}", text(&o));
        }
        eprintln!("{}", log_tails(&dir, 60));
        let _ = mosaic(&["cluster", "down"]);
    });
    tx
}

/// The last `lines` lines of every node's daemon log in cluster `dir`,
/// for a failure's message (CI keeps nothing else of a failed run).
pub fn log_tails(dir: &Path, lines: usize) -> String {
    let mut out = String::new();
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path().join("mosaicd.log")).collect())
        .unwrap_or_default();
    logs.sort();
    for log in logs {
        if let Ok(s) = std::fs::read_to_string(&log) {
            let tail: Vec<&str> = s.lines().rev().take(lines).collect();
            out += &format!("--- {} (last {lines} lines)\n", log.display());
            for l in tail.iter().rev() {
                out += l;
                out.push('\n');
            }
        }
    }
    out
}

/// Runs `tmux args...` (tests drive real terminals with it).
pub fn tmux(args: &[&str]) -> Output {
    Command::new("tmux")
        .args(args)
        .output()
        .expect("tmux must be installed (apt-get install tmux)")
}

/// The output of a command as text, for assertions and messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

impl Cluster {
    /// Starts `nodes` nodes gossiping on `port` (distinct per test so tests
    /// may run in parallel).
    pub fn up(name: &str, nodes: u32, port: u16) -> Cluster {
        Cluster::up_with(name, nodes, port, &[])
    }

    /// Like [`Cluster::up`], with more `cluster up` options.
    pub fn up_with(name: &str, nodes: u32, port: u16, extra: &[&str]) -> Cluster {
        require_root();
        // Orphaned node inits are reparented to us, so we can reap them.
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let dir = std::env::temp_dir().join(format!("mosaic-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut c = Cluster {
            _watchdog: watchdog(dir.clone(), TEST_LIMIT),
            dir,
            port,
            up: false,
        };
        let (nodes, port) = (nodes.to_string(), port.to_string());
        let mut args = vec!["cluster", "up", "--nodes", &nodes, "--port", &port];
        args.extend_from_slice(extra);
        let out = c.mosaic(&args);
        assert!(out.status.success(), "cluster up failed: {}", text(&out));
        c.up = true;
        c
    }

    /// A `mosaic` command aimed at this cluster.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("mosaic"));
        cmd.env("MOSAIC_CLUSTER_DIR", &self.dir)
            .env_remove("MOSAIC_SOCKET")
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `mosaic args...` and returns its output.
    pub fn mosaic(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run mosaic")
    }

    /// Control socket of a node, as seen from the host.
    pub fn socket(&self, node: &str) -> PathBuf {
        self.dir.join(node).join("run").join("mosaicd.sock")
    }

    /// Daemon log of a node.
    pub fn log(&self, node: &str) -> String {
        std::fs::read_to_string(self.dir.join(node).join("mosaicd.log")).unwrap_or_default()
    }

    /// The node table as `node` sees it.
    pub fn nodes_seen_by(&self, node: &str) -> Result<Vec<NodeInfo>, String> {
        let socket = self.socket(node);
        let out = self.mosaic(&["--socket", socket.to_str().unwrap(), "nodes", "--json"]);
        if !out.status.success() {
            return Err(text(&out));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))
    }

    /// `cluster status --json`.
    pub fn status(&self) -> Vec<serde_json::Value> {
        self.try_status()
            .unwrap_or_else(|e| panic!("cluster status: {e}"))
    }

    fn try_status(&self) -> Result<Vec<serde_json::Value>, String> {
        let out = self.mosaic(&["cluster", "status", "--json"]);
        if !out.status.success() {
            return Err(text(&out));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
    }

    /// Host PID of a field (`init_pid`, `daemon_pid`) of a node in `cluster status`.
    pub fn pid_of(&self, node: &str, field: &str) -> Option<i32> {
        self.status()
            .into_iter()
            .find(|n| n["name"] == node)
            .and_then(|n| n[field].as_i64())
            .and_then(|p| i32::try_from(p).ok())
    }

    /// `cluster exec node -- args...`.
    pub fn exec(&self, node: &str, args: &[&str]) -> Output {
        let mut all = vec!["cluster", "exec", node, "--"];
        all.extend_from_slice(args);
        self.mosaic(&all)
    }

    /// `mosaic migrate PID NODE` on node1 (the tests' home node); panics
    /// if it fails.
    pub fn migrate(&self, pid: i32, node: &str) {
        let mosaic = bin("mosaic");
        let r = self.exec(
            "node1",
            &[mosaic.to_str().unwrap(), "migrate", &pid.to_string(), node],
        );
        assert!(
            r.status.success(),
            "migrate {pid} {node}: {}\n{}",
            text(&r),
            log_tails(&self.dir, 25)
        );
    }

    /// Stops the cluster and reaps the nodes' init processes (never
    /// panics: it also runs while a failed test unwinds).
    pub fn down(&mut self) -> Output {
        let inits: Vec<i32> = self
            .try_status()
            .unwrap_or_default()
            .iter()
            .filter_map(|n| n["init_pid"].as_i64().and_then(|p| i32::try_from(p).ok()))
            .collect();
        let out = self.mosaic(&["cluster", "down"]);
        self.up = false;
        for pid in inits {
            reap(pid);
        }
        out
    }
}

/// Waits for `pid` if it is our child (or orphan reparented to us); a
/// process that is not ours is left alone.
pub fn reap(pid: i32) {
    use nix::sys::wait::{WaitPidFlag, waitpid};
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        match waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            _ => return,
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.up {
            let _ = self.down();
        }
        // A passing test leaves nothing behind; a failing one keeps the
        // nodes' logs for whoever reads the failure.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A file of `len` deterministic, incompressible bytes.
pub fn pseudo_random_file(path: &Path, len: usize) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = Vec::with_capacity(len);
    while buf.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf.extend_from_slice(&x.to_le_bytes());
    }
    buf.truncate(len);
    std::fs::write(path, buf).unwrap();
}

/// The PID namespace that holds process `pid`'s (`NS_GET_PARENT`), as
/// `/proc/PID/ns/pid` names namespaces (`pid:[inode]`).
pub fn parent_pid_ns(pid: u32) -> PathBuf {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // _IO(0xb7, 0x2), linux/nsfs.h
    const NS_GET_PARENT: libc::c_ulong = 0xb702;
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/pid")).unwrap();
    // SAFETY: the ioctl takes no argument and returns a new descriptor.
    let fd = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_PARENT) };
    assert!(
        fd >= 0,
        "NS_GET_PARENT of {pid}: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a fresh descriptor nothing else owns.
    let parent = unsafe { OwnedFd::from_raw_fd(fd) };
    std::fs::read_link(format!("/proc/self/fd/{}", parent.as_raw_fd())).unwrap()
}
