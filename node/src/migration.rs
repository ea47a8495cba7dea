//! Wiring of migration: the listener for incoming guests (remote side) and
//! the start of outgoing migrations (deputy side). Each migrated process has
//! one authenticated TCP connection and one plain thread at each end: its
//! ptrace requests must all come from that thread.

use std::net::{SocketAddr, TcpListener};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use mosaic_proto::control::{GuestInfo, ProcInfo};
use mosaic_proto::{ClusterKey, ControlResponse, NodeState};
use tracing::{info, warn};

use crate::gossip::Membership;
use crate::net::AuthStream;

/// Accepts guests on the gossip address (TCP, same port) in a thread.
pub fn listen(
    addr: SocketAddr,
    key: ClusterKey,
    policy: mosaic_remote::GuestPolicy,
    guests: Guests,
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
                let policy = policy.clone();
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
                        let served =
                            mosaic_remote::serve(&mut link, &policy, &mut |home, home_pid, pid| {
                                guests.insert(pid, home, home_pid);
                                guest = Some(pid);
                            });
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
}

/// A process `mosaic run` handed to this node.
struct Managed {
    lock: bool,
    /// Start time, so that a recycled PID is not taken for it.
    start: u64,
}

#[derive(Default)]
struct Tables {
    away: BTreeMap<i32, Away>,
    managed: BTreeMap<i32, Managed>,
}

/// This node's managed processes (by home PID), those that run elsewhere
/// with a line to each one's deputy thread.
#[derive(Clone, Default)]
pub struct Registry(Arc<Mutex<Tables>>);

impl Registry {
    /// A snapshot, for publishing: processes at home with their state,
    /// processes away as far as home knows (the node they run on reports
    /// the rest, see [`Guests`]).
    pub fn list(&self, me: &str) -> Vec<ProcInfo> {
        let mut t = self.lock();
        // Forget processes that ended (or whose PID was reused).
        t.managed.retain(|pid, m| {
            crate::procstat::stat(*pid).is_some_and(|s| s.start == m.start && s.state != 'Z')
        });
        let mut out: Vec<ProcInfo> = t
            .away
            .values()
            .map(|a| {
                let mut p = a.info.clone();
                p.lock = t.managed.get(&p.home_pid).is_some_and(|m| m.lock);
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
            let Some(st) = crate::procstat::stat(pid) else {
                continue;
            };
            out.push(ProcInfo {
                home_pid: pid,
                home: me.to_string(),
                node: me.to_string(),
                guest_pid: pid,
                cmd: cmdline(pid),
                state: crate::procstat::state_name(st.state).into(),
                cpu: st.cpu,
                mem_kb: st.mem_kb,
                cantmove: mosaic_ckpt::cantmove::reasons(pid)
                    .map(|r| r.join("; "))
                    .unwrap_or_default(),
                lock: m.lock,
            });
        }
        out
    }

    /// Manages `pid` from now on.
    pub fn manage(&self, pid: i32, lock: bool) -> Result<(), String> {
        let st = crate::procstat::stat(pid).ok_or_else(|| format!("no process {pid} here"))?;
        self.lock().managed.insert(
            pid,
            Managed {
                lock,
                start: st.start,
            },
        );
        Ok(())
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
            if let Some(st) = crate::procstat::stat(pid) {
                e.insert(Managed {
                    lock: false,
                    start: st.start,
                });
            }
        }
        t.away.insert(
            pid,
            Away {
                info,
                commands,
                stopped,
            },
        );
    }

    fn remove(&self, pid: i32) {
        self.lock().away.remove(&pid);
    }

    /// Where `pid` runs now and its deputy's line, if it is away.
    fn away(&self, pid: i32) -> Option<(String, Commands)> {
        self.lock()
            .away
            .get(&pid)
            .map(|a| (a.info.node.clone(), a.commands.clone()))
    }
}

/// The guests running on this node, by guest PID.
#[derive(Clone, Default)]
pub struct Guests(Arc<Mutex<BTreeMap<i32, (String, i32)>>>);

impl Guests {
    /// A snapshot with their state, for publishing.
    pub fn list(&self) -> Vec<GuestInfo> {
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.iter()
            .filter_map(|(&guest_pid, (home, home_pid))| {
                let st = crate::procstat::stat(guest_pid)?;
                Some(GuestInfo {
                    home: home.clone(),
                    home_pid: *home_pid,
                    guest_pid,
                    state: crate::procstat::state_name(st.state).into(),
                    cpu: st.cpu,
                    mem_kb: st.mem_kb,
                })
            })
            .collect()
    }

    /// Whether `pid` is a guest of this node.
    pub fn contains(&self, pid: i32) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&pid)
    }

    fn insert(&self, guest_pid: i32, home: &str, home_pid: i32) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(guest_pid, (home.to_string(), home_pid));
    }

    fn remove(&self, guest_pid: i32) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&guest_pid);
    }
}

/// Its command line, as `ps` shows it.
fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
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
    membership: &Membership,
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
        let (me, key, registry) = (me.to_string(), key.clone(), registry.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("deputy-{pid}"))
            .spawn(move || deputy(pid, target, reply, &me, &key, &registry));
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

/// The deputy thread of one process: sends it to `target`, serves it
/// there, and sends it on when it comes home with a next target.
fn deputy(
    pid: i32,
    mut target: Target,
    mut reply: mosaic_deputy::Reply,
    me: &str,
    key: &ClusterKey,
    registry: &Registry,
) {
    let cmd = cmdline(pid);
    loop {
        let (name, addr) = target;
        let mut link = match AuthStream::connect_tcp(addr, key) {
            Ok(l) => l,
            Err(e) => {
                let _ = reply.send(Err(format!("cannot reach {name} at {addr}: {e}")));
                return;
            }
        };
        let placeholder = match mosaic_deputy::migrate::<Target>(pid, me, &mut link) {
            Ok(p) => p,
            Err(e) => {
                let _ = reply.send(Err(e.to_string()));
                return;
            }
        };
        let _ = reply.send(Ok((Some(name.clone()), placeholder.guest_pid)));
        let (commands, incoming) = std::sync::mpsc::channel();
        registry.insert(
            ProcInfo {
                home_pid: pid,
                home: me.to_string(),
                node: name,
                guest_pid: placeholder.guest_pid,
                cmd: cmd.clone(),
                state: String::new(),
                cpu: 0.0,
                mem_kb: 0,
                cantmove: String::new(),
                lock: false,
            },
            commands,
            placeholder.stopped_flag(),
        );
        let served = placeholder.serve(&mut link, &incoming);
        registry.remove(pid);
        match served {
            Ok(mosaic_deputy::Outcome::Home {
                reason,
                then: Some((next, next_reply)),
            }) => {
                info!(pid, %reason, to = %next.0, "came home; sending it on");
                target = next;
                reply = next_reply;
            }
            Ok(outcome) => {
                info!(pid, ?outcome, "migrated process ended or came home");
                return;
            }
            Err(e) => {
                warn!(pid, error = %e, "migrated process failed");
                return;
            }
        }
    }
}
