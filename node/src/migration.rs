//! Wiring of migration: the listener for incoming guests (remote side) and
//! the start of outgoing migrations (deputy side). Each migrated process has
//! one authenticated TCP connection and one plain thread at each end: its
//! ptrace requests must all come from that thread.

use std::net::{SocketAddr, TcpListener};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use mosaic_proto::control::{GuestInfo, ProcInfo};
use mosaic_proto::image::CpuTime;
use mosaic_proto::{ClusterKey, ControlResponse, NodeState};
use tracing::{info, warn};

use crate::gossip::Membership;
use crate::net::AuthStream;
use crate::spent::{Ledger, Proc, ProcFs, Procs, lineage_of};

/// Accepts guests on the gossip address (TCP, same port) in a thread.
pub fn listen(
    addr: SocketAddr,
    key: ClusterKey,
    policy: mosaic_remote::GuestPolicy,
    guests: Guests,
    controls: Arc<crate::controls::Controls>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let listener = TcpListener::bind(addr)
        .with_context(|| format!("cannot listen for migrations on {addr}/tcp"))?;
    std::thread::Builder::new()
        .name("migration-listener".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let peer = conn.peer_addr().map(|a| a.to_string()).unwrap_or_default();
                let key = key.clone();
                let mut policy = policy.clone();
                // `mosaic node block` refuses newcomers, like accept_guests = false.
                policy.accept &= !controls.blocked();
                let guests = guests.clone();
                let spawned = std::thread::Builder::new()
                    .name("guest".into())
                    .spawn(move || {
                        let mut link = match AuthStream::accept_tcp(conn, &key) {
                            Ok(l) => l,
                            Err(e) => {
                                warn!(from = %peer, error = %e, "refused a migration connection");
                                return;
                            }
                        };
                        let mut guest = None;
                        use std::sync::atomic::Ordering::SeqCst;
                        guests.arriving.fetch_add(1, SeqCst);
                        let mut arrived = false;
                        let served = mosaic_remote::serve(
                            &mut link,
                            &policy,
                            &mut |home, home_pid, pid, handle| {
                                guests.insert(pid, home, home_pid, handle);
                                guests.arriving.fetch_sub(1, SeqCst);
                                arrived = true;
                                guest = Some(pid);
                            },
                        );
                        if !arrived {
                            guests.arriving.fetch_sub(1, SeqCst);
                        }
                        if let Some(pid) = guest {
                            guests.remove(pid);
                        }
                        match served {
                            Ok(()) => info!(from = %peer, "guest ended"),
                            Err(e) => warn!(from = %peer, error = %e, "guest failed"),
                        }
                    });
                if let Err(e) = spawned {
                    warn!(error = %e, "cannot start a guest thread");
                }
            }
        })?;
    Ok(())
}

/// Where a process is sent: a node's name and migration address.
pub type Target = (String, SocketAddr);
type Commands = std::sync::mpsc::Sender<mosaic_deputy::Command<Target>>;

/// A process of this node that runs elsewhere.
struct Away {
    info: ProcInfo,
    commands: Commands,
    stopped: Arc<std::sync::atomic::AtomicBool>,
    /// The program it runs (`crate::profile`), taught when its guest ends.
    program: Option<String>,
}

/// A process `mosaic run` handed to this node.
struct Managed {
    lock: bool,
    hint: mosaic_proto::control::Hint,
    /// Start time, so that a recycled PID is not taken for it.
    start: u64,
    /// CPU time it used away from home (its own kernel here counts only
    /// the rest), carried in its next image, and its parent then: the
    /// parent is credited with it when it ends (see [`crate::spent`]).
    cpu_elsewhere: CpuTime,
    lineage: Vec<Proc>,
}

#[derive(Default)]
struct Tables {
    /// What programs did in their past runs here, shared with the
    /// balancer.
    profiles: crate::profile::Shared,
    away: BTreeMap<i32, Away>,
    managed: BTreeMap<i32, Managed>,
    spent: Ledger,
}

impl Tables {
    /// Forgets managed processes that ended (or whose PID was reused),
    /// crediting their parents with what they used elsewhere.
    fn settle(&mut self) {
        let ended: Vec<i32> = self
            .managed
            .iter()
            .filter(|&(&pid, m)| {
                !ProcFs.running(Proc {
                    pid,
                    start: m.start,
                })
            })
            .map(|(&pid, _)| pid)
            .collect();
        for pid in ended {
            if let Some(m) = self.managed.remove(&pid) {
                let who = Proc {
                    pid,
                    start: m.start,
                };
                self.spent.ended(&ProcFs, who, m.cpu_elsewhere, &m.lineage);
            }
        }
        self.spent.settle(&ProcFs);
    }
}

/// This node's managed processes (by home PID), those that run elsewhere
/// with a line to each one's deputy thread.
#[derive(Clone, Default)]
pub struct Registry(Arc<Mutex<Tables>>);

impl Registry {
    /// The programs' profiles this registry teaches (the balancer places
    /// by them).
    pub fn profiles(&self) -> crate::profile::Shared {
        self.lock().profiles.clone()
    }

    /// A snapshot, for publishing: processes at home with their state,
    /// processes away as far as home knows (the node they run on reports
    /// the rest, see [`Guests`]).
    pub fn list(&self, me: &str) -> Vec<ProcInfo> {
        let mut t = self.lock();
        t.settle();
        let mut out: Vec<ProcInfo> = t
            .away
            .values()
            .map(|a| {
                let mut p = a.info.clone();
                p.lock = t.managed.get(&p.home_pid).is_some_and(|m| m.lock);
                p.threads = mosaic_ckpt::procstat::stat(p.home_pid).map_or(0, |s| s.threads);
                if a.stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    p.state = "stopped".into();
                }
                p
            })
            .collect();
        for (&pid, m) in t
            .managed
            .iter()
            .filter(|(pid, _)| !t.away.contains_key(pid))
        {
            let Some(st) = mosaic_ckpt::procstat::stat(pid) else {
                continue;
            };
            out.push(ProcInfo {
                home_pid: pid,
                home: me.to_string(),
                node: me.to_string(),
                guest_pid: pid,
                cmd: mosaic_ckpt::procstat::cmdline(pid),
                state: mosaic_ckpt::procstat::state_name(st.state).into(),
                cpu: st.cpu,
                mem_kb: st.mem_kb,
                cantmove: mosaic_ckpt::cantmove::reasons(pid)
                    .map(|r| r.join("; "))
                    .unwrap_or_default(),
                lock: m.lock,
                threads: st.threads,
            });
        }
        out
    }

    /// Manages `pid` from now on.
    pub fn manage(
        &self,
        pid: i32,
        lock: bool,
        hint: mosaic_proto::control::Hint,
    ) -> Result<(), String> {
        let st =
            mosaic_ckpt::procstat::stat(pid).ok_or_else(|| format!("no process {pid} here"))?;
        let mut t = self.lock();
        // `mosaic lock`/`unlock` keep what `mosaic run` said of it.
        let hint = match t.managed.get(&pid) {
            Some(m) if m.start == st.start && hint == Default::default() => m.hint,
            _ => hint,
        };
        let (cpu_elsewhere, lineage) = match t.managed.get_mut(&pid) {
            Some(m) if m.start == st.start => (m.cpu_elsewhere, std::mem::take(&mut m.lineage)),
            _ => (CpuTime::default(), Vec::new()),
        };
        t.managed.insert(
            pid,
            Managed {
                lock,
                hint,
                start: st.start,
                cpu_elsewhere,
                lineage,
            },
        );
        Ok(())
    }

    /// What `mosaic run` said of `pid` (`--cpu-bound`, `--io-bound`).
    pub fn hint(&self, pid: i32) -> mosaic_proto::control::Hint {
        self.lock()
            .managed
            .get(&pid)
            .map(|m| m.hint)
            .unwrap_or_default()
    }

    /// Whether `pid` runs elsewhere now.
    pub fn is_away(&self, pid: i32) -> bool {
        self.lock().away.contains_key(&pid)
    }

    /// Whether `pid` is locked (never moved automatically).
    pub fn locked(&self, pid: i32) -> bool {
        self.lock().managed.get(&pid).is_some_and(|m| m.lock)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(
        &self,
        info: ProcInfo,
        commands: Commands,
        stopped: Arc<std::sync::atomic::AtomicBool>,
    ) {
        let pid = info.home_pid;
        let mut t = self.lock();
        if let std::collections::btree_map::Entry::Vacant(e) = t.managed.entry(pid) {
            // A process sent away by hand is managed from then on.
            if let Some(st) = mosaic_ckpt::procstat::stat(pid) {
                e.insert(Managed {
                    lock: false,
                    hint: Default::default(),
                    start: st.start,
                    cpu_elsewhere: CpuTime::default(),
                    lineage: Vec::new(),
                });
            }
        }
        // Its memory may be gone already (released at the move): the
        // command line is the one read before, the executable its link.
        let program = std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .map(|exe| {
                crate::profile::program(&exe.to_string_lossy(), info.cmd.split_whitespace())
            });
        t.away.insert(
            pid,
            Away {
                info,
                commands,
                stopped,
                program,
            },
        );
    }

    fn remove(&self, pid: i32) {
        self.lock().away.remove(&pid);
    }

    /// The CPU time `pid` used away from home so far.
    fn cpu_elsewhere(&self, pid: i32) -> CpuTime {
        let start = mosaic_ckpt::procstat::stat(pid).map(|s| s.start);
        self.lock()
            .managed
            .get(&pid)
            .filter(|m| Some(m.start) == start)
            .map(|m| m.cpu_elsewhere)
            .unwrap_or_default()
    }

    /// `pid` came home having used `cpu` away from home in all.
    fn set_cpu_elsewhere(&self, pid: i32, cpu: CpuTime) {
        if let Some(m) = self.lock().managed.get_mut(&pid) {
            m.cpu_elsewhere = cpu;
            m.lineage = lineage_of(
                &ProcFs,
                Proc {
                    pid,
                    start: m.start,
                },
            );
        }
    }

    /// The guest of `pid` ended having used `cpu` away from home in all;
    /// its placeholder ends next. Its parent is credited now, while its
    /// ancestors are known (its parent may end before anyone asks).
    ///
    /// Its run is taught to the profiles after the tables are let go: the
    /// balancer holds the profiles while it asks the tables of each
    /// process (`is_away`, `hint`), so holding both here, tables first,
    /// deadlocked the two (the demo's guests that ended while the balancer
    /// sampled never had their placeholders end).
    fn ended_away(&self, pid: i32, cpu: CpuTime) {
        let (profiles, program) = {
            let t = self.lock();
            let program = t.away.get(&pid).and_then(|a| a.program.clone());
            (t.profiles.clone(), program)
        };
        if let Some(program) = program {
            learn_away(&profiles, pid, &program, cpu);
        }
        let mut t = self.lock();
        let Some(who) = ProcFs::find(pid) else {
            return;
        };
        if t.managed.get(&pid).is_some_and(|m| m.start == who.start) {
            t.managed.remove(&pid);
        }
        let lineage = lineage_of(&ProcFs, who);
        info!(
            pid,
            cpu_s = cpu.total_ns() as f64 / 1e9,
            parent = lineage.first().map(|p| p.pid),
            "its guest ended; its time away is counted for its parent"
        );
        t.spent.ended(&ProcFs, who, cpu, &lineage);
    }

    /// What the ended descendants of `pid` used away from home, which its
    /// kernel's `RUSAGE_CHILDREN` lacks (for a shell's `time`).
    pub fn children_cpu(&self, pid: i32) -> CpuTime {
        let mut t = self.lock();
        t.settle();
        ProcFs::find(pid)
            .map(|p| t.spent.children_of(p))
            .unwrap_or_default()
    }

    /// Asks every process of this node that runs elsewhere to come home
    /// (`mosaic node bring`); returns how many were asked.
    pub fn call_all_home(&self) -> usize {
        let t = self.lock();
        for a in t.away.values() {
            let (reply, _) = std::sync::mpsc::channel();
            let _ = a
                .commands
                .send(mosaic_deputy::Command::ComeHome { then: None, reply });
        }
        t.away.len()
    }

    /// The node `pid` runs on, if it is away.
    pub fn where_is(&self, pid: i32) -> Option<String> {
        self.lock().away.get(&pid).map(|a| a.info.node.clone())
    }

    /// How many processes of this node run elsewhere.
    pub fn away_count(&self) -> usize {
        self.lock().away.len()
    }

    /// Where `pid` runs now and its deputy's line, if it is away.
    fn away(&self, pid: i32) -> Option<(String, Commands)> {
        self.lock()
            .away
            .get(&pid)
            .map(|a| (a.info.node.clone(), a.commands.clone()))
    }
}

/// Teaches `program` the run of `pid`, whose guest ended having used
/// `away` elsewhere: its CPU time is that and what its placeholder used
/// here before it left; its wall time the placeholder's age.
fn learn_away(profiles: &crate::profile::Shared, pid: i32, program: &str, away: CpuTime) {
    let Some(st) = mosaic_ckpt::procstat::stat(pid) else {
        return;
    };
    if st.age_s < 0.05 {
        return;
    }
    let cpu_s = st.cpu_s + away.total_ns() as f64 / 1e9;
    profiles.lock().unwrap_or_else(|e| e.into_inner()).learn(
        program,
        crate::profile::Run {
            cpu_s,
            busy: (cpu_s / st.age_s).min(1.0),
            // Its forwarded calls were counted by its host.
            io_per_s: 0.0,
        },
    );
}

/// One guest of this node.
struct GuestEntry {
    home: String,
    home_pid: i32,
    handle: mosaic_remote::GuestHandle,
}

/// The guests running on this node, by guest PID, and how many are on
/// their way in.
#[derive(Clone, Default)]
pub struct Guests {
    running: Arc<Mutex<BTreeMap<i32, GuestEntry>>>,
    arriving: Arc<std::sync::atomic::AtomicUsize>,
}

impl Guests {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, GuestEntry>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Guests running here or being restored here.
    pub fn present(&self) -> usize {
        self.len() + self.arriving.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A snapshot with their state, for publishing.
    pub fn list(&self) -> Vec<GuestInfo> {
        let g = self.lock();
        g.iter()
            .filter_map(|(&guest_pid, e)| {
                let st = mosaic_ckpt::procstat::stat(guest_pid)?;
                Some(GuestInfo {
                    home: e.home.clone(),
                    home_pid: e.home_pid,
                    guest_pid,
                    state: mosaic_ckpt::procstat::state_name(st.state).into(),
                    cpu: st.cpu,
                    mem_kb: st.mem_kb,
                })
            })
            .collect()
    }

    /// Whether `pid` is a guest of this node.
    pub fn contains(&self, pid: i32) -> bool {
        self.lock().contains_key(&pid)
    }

    /// How many guests run here.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no guest runs here.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The home node of guest `pid`, if it is one.
    pub fn home_of(&self, pid: i32) -> Option<String> {
        self.lock().get(&pid).map(|e| e.home.clone())
    }

    /// System calls guest `pid` has forwarded home so far.
    pub fn forwarded(&self, pid: i32) -> Option<u64> {
        self.lock().get(&pid).map(|e| e.handle.forwarded())
    }

    /// Whether guest `pid` is locked at home (never moved automatically).
    pub fn locked(&self, pid: i32) -> bool {
        self.lock().get(&pid).is_some_and(|e| e.handle.locked())
    }

    /// Sends guest `pid` home, or on to `node` (through its home).
    pub fn order(&self, pid: i32, order: mosaic_remote::HostOrder) -> bool {
        match self.lock().get(&pid) {
            Some(e) => {
                e.handle.order(order);
                true
            }
            None => false,
        }
    }

    /// Sends every guest home; returns how many were asked.
    pub fn send_all_home(&self) -> usize {
        let g = self.lock();
        for e in g.values() {
            e.handle.order(mosaic_remote::HostOrder::Home);
        }
        g.len()
    }

    fn insert(
        &self,
        guest_pid: i32,
        home: &str,
        home_pid: i32,
        handle: mosaic_remote::GuestHandle,
    ) {
        self.lock().insert(
            guest_pid,
            GuestEntry {
                home: home.to_string(),
                home_pid,
                handle,
            },
        );
    }

    fn remove(&self, guest_pid: i32) {
        self.lock().remove(&guest_pid);
    }
}

/// Resolves `node` to a live node's migration address, or says why not.
async fn resolve(membership: &Membership, node: &str) -> Result<Target, String> {
    let nodes = membership.nodes().await;
    let Some(target) = nodes.iter().find(|n| n.name == node) else {
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        return Err(format!(
            "no node named {node} (known: {}, or `home`); see `mosaic nodes`",
            names.join(", ")
        ));
    };
    if target.state != NodeState::Alive {
        return Err(format!("{node} is {}; see `mosaic nodes`", target.state));
    }
    let addr = target
        .addr
        .parse::<SocketAddr>()
        .map_err(|_| format!("{node} has a bad address {}", target.addr))?;
    Ok((node.to_string(), addr))
}

/// Moves `pid` to `node` (`home` or this node's name: back home); answers
/// once it runs there (or why not).
pub async fn start(
    membership: &Arc<Membership>,
    registry: &Registry,
    me: &str,
    key: &ClusterKey,
    pid: i32,
    node: String,
) -> ControlResponse {
    let error = |message: String| ControlResponse::Error { message };
    let to_home = node == "home" || node == me;
    let (reply, answer) = std::sync::mpsc::channel();
    if let Some((now_on, commands)) = registry.away(pid) {
        if now_on == node {
            return error(format!("process {pid} already runs on {node}"));
        }
        let then = if to_home {
            None
        } else {
            match resolve(membership, &node).await {
                Ok(t) => Some(t),
                Err(e) => return error(e),
            }
        };
        let sent = commands.send(mosaic_deputy::Command::ComeHome { then, reply });
        if sent.is_err() {
            return error(format!("process {pid} is ending"));
        }
    } else {
        if to_home {
            return error(format!("process {pid} already runs at home on {me}"));
        }
        let target = match resolve(membership, &node).await {
            Ok(t) => t,
            Err(e) => return error(e),
        };
        let this = ThisNode {
            me: me.to_string(),
            key: key.clone(),
            registry: registry.clone(),
            membership: membership.clone(),
            runtime: tokio::runtime::Handle::current(),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("deputy-{pid}"))
            .spawn(move || mosaic_deputy::journey::journey(pid, target, reply, &this));
        if let Err(e) = spawned {
            return error(format!("cannot start a deputy thread: {e}"));
        }
    }
    match tokio::task::spawn_blocking(move || answer.recv()).await {
        Ok(Ok(Ok((where_now, guest_pid)))) => ControlResponse::Migrated {
            pid,
            node: where_now.unwrap_or_else(|| me.to_string()),
            guest_pid,
        },
        Ok(Ok(Err(message))) => error(message),
        _ => error("the deputy thread died".into()),
    }
}

/// What a process's journey (`mosaic_deputy::journey`) needs of this
/// node: its links to other nodes, its registry, node names.
#[derive(Clone)]
struct ThisNode {
    me: String,
    key: ClusterKey,
    registry: Registry,
    membership: Arc<Membership>,
    runtime: tokio::runtime::Handle,
}

impl mosaic_deputy::journey::Nodes for ThisNode {
    type Target = Target;

    fn me(&self) -> &str {
        &self.me
    }

    fn name(&self, target: &Target) -> String {
        target.0.clone()
    }

    fn connect(
        &self,
        (name, addr): &Target,
    ) -> Result<Box<dyn mosaic_proto::migrate::Link>, String> {
        AuthStream::connect_tcp(*addr, &self.key)
            .map(|l| Box::new(l) as Box<dyn mosaic_proto::migrate::Link>)
            .map_err(|e| format!("cannot reach {name} at {addr}: {e}"))
    }

    fn resolve(&self, node: &str) -> Result<Target, String> {
        self.runtime.block_on(resolve(&self.membership, node))
    }

    fn capture_options(&self, pid: i32) -> mosaic_ckpt::CaptureOptions {
        mosaic_ckpt::CaptureOptions {
            cpu_elsewhere: self.registry.cpu_elsewhere(pid),
            threads: true,
            ..Default::default()
        }
    }

    fn locked(&self, pid: i32) -> bool {
        self.registry.locked(pid)
    }

    fn away(
        &self,
        pid: i32,
        cmd: &str,
        node: &str,
        guest_pid: i32,
        commands: Commands,
        stopped: Arc<std::sync::atomic::AtomicBool>,
    ) {
        self.registry.insert(
            ProcInfo {
                home_pid: pid,
                home: self.me.clone(),
                node: node.to_string(),
                guest_pid,
                cmd: cmd.to_string(),
                state: String::new(),
                cpu: 0.0,
                mem_kb: 0,
                cantmove: String::new(),
                lock: false,
                threads: 0,
            },
            commands,
            stopped,
        );
    }

    fn not_away(&self, pid: i32) {
        self.registry.remove(pid);
    }

    fn came_home(&self, pid: i32, cpu: CpuTime) {
        self.registry.set_cpu_elsewhere(pid, cpu);
    }

    fn ended_away(&self, pid: i32, cpu: CpuTime) {
        self.registry.ended_away(pid, cpu);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A guest ends while the balancer samples: the balancer holds the
    /// profiles and asks the tables; the guest's end must not hold the
    /// tables while it waits for the profiles (checked by reverting: the
    /// tables do not answer while the profiles are held).
    #[test]
    fn a_guest_ending_while_the_balancer_samples_holds_up_neither() {
        let registry = Registry::default();
        let me = i32::try_from(std::process::id()).unwrap();
        let (commands, _orders) = std::sync::mpsc::channel();
        let info = ProcInfo {
            home_pid: me,
            home: "node1".into(),
            node: "node2".into(),
            guest_pid: 2,
            cmd: "sort big".into(),
            state: String::new(),
            cpu: 0.0,
            mem_kb: 0,
            cantmove: String::new(),
            lock: false,
            threads: 1,
        };
        registry.insert(info, commands, Arc::default());
        // Old enough to be taught (a run under 50 ms is not).
        std::thread::sleep(Duration::from_millis(60));
        let profiles = registry.profiles();
        let sampling = profiles.lock().unwrap();
        let r = registry.clone();
        let ending = std::thread::spawn(move || r.ended_away(me, CpuTime::default()));
        std::thread::sleep(Duration::from_millis(200));
        let (tx, rx) = std::sync::mpsc::channel();
        let r = registry.clone();
        std::thread::spawn(move || tx.send(r.is_away(me)));
        let answered = rx.recv_timeout(Duration::from_secs(5));
        drop(sampling);
        ending.join().unwrap();
        assert_eq!(
            answered,
            Ok(true),
            "the tables were held by the guest's end"
        );
    }
}
