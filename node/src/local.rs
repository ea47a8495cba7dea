//! A whole cluster on one machine: `mosaic cluster up|add|down|exec|status`.
//!
//! Each node is a `mosaicd` in its own mount, UTS and PID namespace, with
//! hostname `nodeI`, gossip address `127.0.0.(10+I)` (loopback addresses
//! need no setup on Linux, so the nodes share the host's network namespace),
//! its own `/run/mosaic` (so `mosaic` inside the node finds that node's
//! daemon) and its own node-local directory at [`NODE_DIR_MOUNT`].
//!
//! The process tree of a node is:
//!
//! ```text
//! mosaic cluster __init   PID 1 of the node: mounts, hostname, reaps orphans,
//!   └─ mosaicd            forwards SIGTERM, exits when mosaicd exits
//! ```
//!
//! When the node's PID 1 exits the kernel kills every process left in the
//! node, and its namespaces (and so its mounts) vanish with the last of them:
//! `cluster down` leaves no mount, namespace or process behind. Logs stay in
//! the state directory (`<state-dir>/nodeI/mosaicd.log`) for post-mortems.

use std::ffi::CString;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mosaic_proto::ClusterKey;
use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::supervise::{block, forwarded_signals, supervise, unblocked_in_child};

/// Where each node sees its own node-local directory.
pub const NODE_DIR_MOUNT: &str = "/srv/mosaic-node";
/// Where each node sees its own run directory (control socket).
pub const RUN_MOUNT: &str = "/run/mosaic";
const STATE_FILE: &str = mosaic_client::CLUSTER_STATE_FILE;
const KEY_FILE: &str = "cluster.key";
/// How long a node's daemon may take to answer after start.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long `down` waits for a clean goodbye before killing.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Namespace identities (inode numbers) of a node, to recognise its processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespaces {
    pub mnt: u64,
    pub uts: u64,
    pub pid: u64,
}

impl Namespaces {
    /// The namespaces process `pid` lives in.
    pub fn of(pid: i32) -> Option<Namespaces> {
        let ino = |kind: &str| -> Option<u64> {
            let link = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok()?;
            let s = link.to_str()?;
            s[s.find('[')? + 1..s.find(']')?].parse().ok()
        };
        Some(Namespaces {
            mnt: ino("mnt")?,
            uts: ino("uts")?,
            pid: ino("pid")?,
        })
    }
}

/// One node of the local cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalNode {
    pub name: String,
    pub index: u32,
    pub addr: SocketAddr,
    /// Host PID of the node's PID 1.
    pub init_pid: i32,
    pub namespaces: Namespaces,
    /// CPUs the node is pinned to, if any.
    pub cpus: Option<Vec<usize>>,
}

impl LocalNode {
    /// The node's state directory.
    pub fn dir(&self, cluster_dir: &Path) -> PathBuf {
        cluster_dir.join(&self.name)
    }

    /// The node's control socket, as seen from the host.
    pub fn socket_path(&self, cluster_dir: &Path) -> PathBuf {
        mosaic_client::node_socket(cluster_dir, &self.name)
    }

    /// The node's daemon log.
    pub fn log_path(&self, cluster_dir: &Path) -> PathBuf {
        self.dir(cluster_dir).join("mosaicd.log")
    }

    /// Whether the node's PID 1 still runs (and is still that node: PIDs are reused).
    pub fn is_running(&self) -> bool {
        let alive = std::fs::read_to_string(format!("/proc/{}/stat", self.init_pid))
            .ok()
            .and_then(|s| crate::load::task_state(&s))
            .is_some_and(|st| st != 'Z' && st != 'X');
        alive && Namespaces::of(self.init_pid) == Some(self.namespaces)
    }

    /// Host PID of the node's `mosaicd`, if running.
    pub fn daemon_pid(&self) -> Option<i32> {
        if !self.is_running() {
            return None;
        }
        let p = self.init_pid;
        let children = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }
}

/// What `cluster up` records in `<state-dir>/cluster.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterState {
    pub port: u16,
    pub key_file: PathBuf,
    pub nodes: Vec<LocalNode>,
}

impl ClusterState {
    /// Reads the state of the cluster in `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<ClusterState> {
        let path = dir.join(STATE_FILE);
        if !path.exists() {
            bail!(
                "no local cluster is up in {} (no {STATE_FILE}); start one with `mosaic cluster up --nodes 3`",
                dir.display()
            );
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is damaged", path.display()))
    }

    fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(STATE_FILE);
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
    }

    fn node(&self, name: &str) -> anyhow::Result<&LocalNode> {
        self.nodes.iter().find(|n| n.name == name).with_context(|| {
            let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
            format!(
                "no node named {name} in the local cluster (nodes: {}); see `mosaic cluster status`",
                names.join(", ")
            )
        })
    }
}

/// Options of `cluster up`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub nodes: u32,
    pub cpus_per_node: Option<usize>,
    /// Memory each node offers, in MiB.
    pub memory_per_node: Option<u64>,
    pub port: u16,
    pub dir: PathBuf,
}

fn require_root(what: &str) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("{what} needs root (it creates namespaces and mounts); run it with sudo");
    }
    Ok(())
}

/// Starts a local cluster and waits until every node answers.
pub fn up(opts: &UpOptions) -> anyhow::Result<ClusterState> {
    require_root("mosaic cluster up")?;
    if opts.nodes == 0 || opts.nodes > 240 {
        bail!("--nodes must be between 1 and 240");
    }
    let dir = &opts.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if let Ok(old) = ClusterState::load(dir) {
        let running = old.nodes.iter().filter(|n| n.is_running()).count();
        if running > 0 {
            bail!(
                "a local cluster is already up in {} ({running} nodes running); use it (`mosaic nodes`) or stop it with `mosaic cluster down`",
                dir.display()
            );
        }
        cleanup(dir, &old);
    }
    let key_file = dir.join(KEY_FILE);
    if !key_file.exists() {
        write_new_key(&key_file)?;
    }
    let mut state = ClusterState {
        port: opts.port,
        key_file: key_file.clone(),
        nodes: Vec::new(),
    };
    state.save(dir)?;
    // Nodes get CPUs of their own where the machine has enough (and share
    // them round-robin where not): a node's load then means what a process
    // sent there would find, and the balancer counts nodes that share a
    // CPU together.
    let per_node = opts.cpus_per_node.unwrap_or_else(|| {
        (crate::load::usable_cpus() as usize / opts.nodes.max(1) as usize).max(1)
    });
    let started = (|| {
        for index in 1..=opts.nodes {
            let shape = (Some(per_node), opts.memory_per_node);
            start_node(dir, &mut state, index, None, shape)?;
        }
        Ok::<_, anyhow::Error>(())
    })();
    if let Err(e) = started {
        // Leave nothing half-up behind.
        stop_nodes(&state.nodes);
        cleanup(dir, &state);
        return Err(e);
    }
    wait_until_converged(&state, dir);
    Ok(state)
}

/// Waits (a bounded time) until the first node sees every node alive, so
/// that `mosaic nodes` right after `up` shows the whole cluster.
fn wait_until_converged(state: &ClusterState, dir: &Path) {
    let Some(first) = state.nodes.first() else {
        return;
    };
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(mut c) = mosaic_client::Client::connect(&first.socket_path(dir))
            && let Ok(nodes) = c.nodes()
            && nodes
                .iter()
                .filter(|n| n.state == mosaic_proto::NodeState::Alive)
                .count()
                >= state.nodes.len()
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "warning: {} does not see every node alive yet; see `mosaic nodes` and the logs in {}",
        first.name,
        dir.display()
    );
}

/// Adds one node to the running local cluster (optionally with another key
/// file, to see it refused).
pub fn add(
    dir: &Path,
    key_file: Option<PathBuf>,
    memory_mib: Option<u64>,
) -> anyhow::Result<LocalNode> {
    require_root("mosaic cluster add")?;
    let mut state = ClusterState::load(dir)?;
    let index = state.nodes.iter().map(|n| n.index).max().unwrap_or(0) + 1;
    if index > 240 {
        bail!("the local cluster is full (240 nodes)");
    }
    // As many CPUs as the others have, next in the round.
    let per_node = state
        .nodes
        .iter()
        .find_map(|n| n.cpus.as_ref().map(Vec::len));
    start_node(dir, &mut state, index, key_file, (per_node, memory_mib))
}

fn start_node(
    dir: &Path,
    state: &mut ClusterState,
    index: u32,
    key_file: Option<PathBuf>,
    (cpus_per_node, memory_mib): (Option<usize>, Option<u64>),
) -> anyhow::Result<LocalNode> {
    let name = format!("node{index}");
    let addr = SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(
            127,
            0,
            0,
            u8::try_from(10 + index).context("at most 240 nodes")?,
        ),
        state.port,
    ));
    let node_dir = dir.join(&name);
    // The nodes' mount points on the host: empty directories, kept after
    // `down` since other clusters (or a real mosaicd) may use them.
    for mount_point in [NODE_DIR_MOUNT, RUN_MOUNT] {
        std::fs::create_dir_all(mount_point)
            .with_context(|| format!("cannot create mount point {mount_point}"))?;
    }
    for sub in ["run", "srv"] {
        std::fs::create_dir_all(node_dir.join(sub))
            .with_context(|| format!("cannot create {}", node_dir.join(sub).display()))?;
    }
    let _ = std::fs::remove_file(node_dir.join("run").join("mosaicd.sock"));
    std::fs::write(
        node_dir.join("srv").join("hostname.txt"),
        format!("{name}\n"),
    )?;
    let cpus = cpus_per_node.map(|k| {
        let total = crate::load::usable_cpus() as usize;
        (0..k)
            .map(|j| ((index as usize - 1) * k + j) % total)
            .collect::<Vec<_>>()
    });
    let config = Config {
        name: name.clone(),
        listen: addr,
        seeds: state
            .nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| n.addr.to_string())
            .collect(),
        key_file: key_file.unwrap_or_else(|| state.key_file.clone()),
        control_socket: Path::new(RUN_MOUNT).join("mosaicd.sock"),
        // Nodes of one machine share its CPUs: the same speed (calibrating
        // each would only measure noise, and the balancer would chase it).
        speed: Some(1000),
        cpus: cpus.as_ref().map(|c| {
            let mut distinct = c.clone();
            distinct.sort_unstable();
            distinct.dedup();
            u32::try_from(distinct.len()).unwrap_or(u32::MAX)
        }),
        memory_mib,
        accept_guests: true,
        guest_uid: 65534,
        guest_gid: 65534,
        export: PathBuf::from("/"),
        export_read_only: false,
        exports: Vec::new(),
        mfs: crate::config::default_mfs(),
        // The web view is on in a local cluster: on the node's own
        // address, two ports above its gossip port (9P takes the next).
        web: Some(SocketAddr::new(addr.ip(), state.port.saturating_add(2))),
    };
    let config_path = node_dir.join("mosaicd.toml");
    std::fs::write(&config_path, config.to_toml())?;
    eprint!("starting {name} ({addr}) ... ");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(node_dir.join("mosaicd.log"))?;
    let mut args = vec![
        "cluster".to_string(),
        "__init".into(),
        "--name".into(),
        name.clone(),
        "--node-dir".into(),
        node_dir.display().to_string(),
    ];
    if let Some(c) = &cpus {
        args.push("--cpus".into());
        args.push(
            c.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    let init_pid = spawn_in_new_namespaces(&args, &log)?;
    let namespaces = Namespaces::of(init_pid).with_context(|| {
        format!(
            "{name} died at once; see {}",
            node_dir.join("mosaicd.log").display()
        )
    })?;
    let node = LocalNode {
        name: name.clone(),
        index,
        addr,
        init_pid,
        namespaces,
        cpus,
    };
    state.nodes.push(node.clone());
    state.save(dir)?;
    wait_until_ready(&node, dir)?;
    eprintln!("ready");
    Ok(node)
}

fn wait_until_ready(node: &LocalNode, dir: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(mut c) = mosaic_client::Client::connect(&node.socket_path(dir))
            && c.status().is_ok()
        {
            return Ok(());
        }
        if !node.is_running() || Instant::now() > deadline {
            eprintln!("failed");
            let log = std::fs::read_to_string(node.log_path(dir)).unwrap_or_default();
            let last: Vec<&str> = log.lines().rev().take(5).collect();
            bail!(
                "{} did not come up ({}); last log lines of {}:\n{}",
                node.name,
                if node.is_running() {
                    "no answer on its control socket"
                } else {
                    "its daemon exited"
                },
                node.log_path(dir).display(),
                last.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_new_key(path: &Path) -> anyhow::Result<()> {
    let key = new_key()?;
    std::fs::write(path, key.to_file_contents())
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// A fresh random cluster key.
pub fn new_key() -> anyhow::Result<ClusterKey> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a key: {e}"))?;
    Ok(ClusterKey::from_bytes(bytes))
}

/// Clones `mosaic <args>` into new mount, UTS and PID namespaces (it is PID 1
/// there), detached from our session, with stdout/stderr to `log`.
fn spawn_in_new_namespaces(args: &[String], log: &std::fs::File) -> anyhow::Result<i32> {
    use std::os::fd::AsRawFd;
    let exe = std::env::current_exe().context("cannot find the mosaic binary")?;
    let mut argv = vec![CString::new(exe.as_os_str().as_bytes())?];
    for a in args {
        argv.push(CString::new(a.as_bytes())?);
    }
    let devnull = std::fs::File::open("/dev/null")?;
    let pid = clone_exec(&argv, devnull.as_raw_fd(), log.as_raw_fd())
        .context("cannot create the node's namespaces (clone)")?;
    Ok(pid)
}

/// `clone(2)` with new mount, UTS and PID namespaces, then exec.
///
/// std's `Command` cannot do this: `unshare(CLONE_NEWPID)` in `pre_exec`
/// puts only the *children* of the new program in the namespace, and the node
/// needs its init to be PID 1 itself.
fn clone_exec(argv: &[CString], stdin: i32, out: i32) -> nix::Result<i32> {
    let mut stack = vec![0u8; 64 * 1024];
    let flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWPID;
    let child = Box::new(|| -> isize {
        // Only async-signal-safe calls between clone and exec.
        let _ = nix::unistd::setsid();
        // SAFETY: plain dup2 on descriptors this process owns.
        unsafe {
            libc::dup2(stdin, 0);
            libc::dup2(out, 1);
            libc::dup2(out, 2);
        }
        let _ = nix::unistd::execv(&argv[0], argv);
        // SAFETY: _exit never returns and is async-signal-safe.
        unsafe { libc::_exit(127) }
    });
    // SAFETY: without CLONE_VM the child runs on its own copy of our memory,
    // so the stack buffer and captured references stay valid in it; the
    // callback only calls async-signal-safe functions before exec, and the
    // `mosaic` CLI is single-threaded when it starts nodes.
    let pid = unsafe { nix::sched::clone(child, &mut stack, flags, Some(libc::SIGCHLD)) }?;
    Ok(pid.as_raw())
}

/// Stops the local cluster: a clean goodbye from every daemon, then kill
/// what is left. Returns how many nodes were running.
pub fn down(dir: &Path) -> anyhow::Result<usize> {
    require_root("mosaic cluster down")?;
    let state = ClusterState::load(dir)?;
    let running = stop_nodes(&state.nodes);
    cleanup(dir, &state);
    Ok(running)
}

fn stop_nodes(nodes: &[LocalNode]) -> usize {
    let running: Vec<&LocalNode> = nodes.iter().filter(|n| n.is_running()).collect();
    for n in &running {
        let _ = kill(Pid::from_raw(n.init_pid), Signal::SIGTERM);
    }
    let wait = |limit: Duration| {
        let deadline = Instant::now() + limit;
        while running.iter().any(|n| n.is_running()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait(STOP_TIMEOUT);
    for n in running.iter().filter(|n| n.is_running()) {
        tracing::warn!(node = %n.name, "no clean stop in time; killing");
        let _ = kill(Pid::from_raw(n.init_pid), Signal::SIGKILL);
    }
    wait(Duration::from_secs(5));
    running.len()
}

fn cleanup(dir: &Path, state: &ClusterState) {
    for n in &state.nodes {
        let _ = std::fs::remove_file(n.socket_path(dir));
    }
    let _ = std::fs::remove_file(dir.join(STATE_FILE));
}

/// One row of `cluster status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    pub addr: SocketAddr,
    pub running: bool,
    pub init_pid: i32,
    pub daemon_pid: Option<i32>,
    pub namespaces: Namespaces,
    pub log: PathBuf,
}

/// What runs of the local cluster.
pub fn status(dir: &Path) -> anyhow::Result<Vec<NodeStatus>> {
    let state = ClusterState::load(dir)?;
    Ok(state
        .nodes
        .iter()
        .map(|n| NodeStatus {
            name: n.name.clone(),
            addr: n.addr,
            running: n.is_running(),
            init_pid: n.init_pid,
            daemon_pid: n.daemon_pid(),
            namespaces: n.namespaces,
            log: n.log_path(dir),
        })
        .collect())
}

/// Runs `cmd` inside node `name` (its namespaces and CPUs) and returns its
/// exit code (128+N if killed by signal N, as a shell does).
pub fn exec(dir: &Path, name: &str, cmd: &[String]) -> anyhow::Result<i32> {
    require_root("mosaic cluster exec")?;
    let state = ClusterState::load(dir)?;
    let node = state.node(name)?;
    if !node.is_running() {
        bail!(
            "{name} is not running (its daemon stopped); see `mosaic cluster status` and {}",
            node.log_path(dir).display()
        );
    }
    let Some((program, args)) = cmd.split_first() else {
        bail!("nothing to run: give a command after `--`");
    };
    enter_namespaces(node.init_pid)?;
    if let Some(cpus) = &node.cpus {
        set_affinity(cpus)?;
    }
    let signals = forwarded_signals();
    block(&signals)?;
    let child = unblocked_in_child(std::process::Command::new(program).args(args))
        .env("MOSAIC_NODE", name)
        .spawn()
        .with_context(|| format!("cannot run {program} in {name}"))?;
    // Signals sent to us go to the command, so that killing `cluster exec`
    // never leaves its command orphaned inside the node.
    supervise(
        Pid::from_raw(mosaic_proto::abi::pid(child.id())),
        &signals,
        false,
    )
}

/// Joins the UTS, PID and mount namespaces of process `pid`; our next
/// child is born in its PID namespace.
fn enter_namespaces(pid: i32) -> anyhow::Result<()> {
    let open = |kind: &str| {
        std::fs::File::open(format!("/proc/{pid}/ns/{kind}"))
            .with_context(|| format!("cannot open the {kind} namespace of PID {pid}"))
    };
    // Open all before entering any: paths resolve differently afterwards.
    let uts = open("uts")?;
    let pidns = open("pid")?;
    let mnt = open("mnt")?;
    for (fd, flag) in [
        (&uts, CloneFlags::CLONE_NEWUTS),
        (&pidns, CloneFlags::CLONE_NEWPID),
        (&mnt, CloneFlags::CLONE_NEWNS),
    ] {
        nix::sched::setns(fd, flag).with_context(|| format!("cannot enter namespace {flag:?}"))?;
    }
    std::env::set_current_dir("/")?;
    Ok(())
}

fn set_affinity(cpus: &[usize]) -> anyhow::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    for &c in cpus {
        set.set(c)?;
    }
    nix::sched::sched_setaffinity(Pid::from_raw(0), &set)
        .context("cannot pin to the node's CPUs")?;
    Ok(())
}

/// PID 1 of a node: sets up the node's view of the world, starts `mosaicd`,
/// reaps orphans, forwards stop signals, and exits with the daemon's status.
pub fn node_init(name: &str, node_dir: &Path, cpus: Option<&[usize]>) -> anyhow::Result<i32> {
    use nix::mount::{MsFlags, mount};

    if std::process::id() != 1 {
        bail!(
            "`mosaic cluster __init` is started by `mosaic cluster up` as PID 1 of a new node; do not run it by hand"
        );
    }
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("cannot make the node's mounts private")?;
    nix::unistd::sethostname(name).context("cannot set the node's hostname")?;
    // A /mfs of the machine's own mosaicd, copied into this namespace, is
    // not this node's: its mosaicd mounts its own.
    let _ = nix::mount::umount2("/mfs", nix::mount::MntFlags::MNT_DETACH);
    for (src, dst) in [
        (node_dir.join("srv"), NODE_DIR_MOUNT),
        (node_dir.join("run"), RUN_MOUNT),
    ] {
        mount(
            Some(&src),
            dst,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("cannot bind {} on {dst}", src.display()))?;
    }
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .context("cannot mount the node's /proc")?;
    if let Some(cpus) = cpus {
        set_affinity(cpus)?;
    }

    let signals = forwarded_signals();
    block(&signals)?;
    let mosaicd = mosaicd_path();
    let daemon = unblocked_in_child(&mut std::process::Command::new(&mosaicd))
        .arg("--config")
        .arg(node_dir.join("mosaicd.toml"))
        .spawn()
        .with_context(|| format!("cannot start {}", mosaicd.display()))?;
    supervise(
        Pid::from_raw(mosaic_proto::abi::pid(daemon.id())),
        &signals,
        true,
    )
}

/// The `mosaicd` binary: `$MOSAICD`, else next to this executable, else `$PATH`.
pub fn mosaicd_path() -> PathBuf {
    if let Some(p) = std::env::var_os("MOSAICD") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let p = dir.join("mosaicd");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from("mosaicd")
}
