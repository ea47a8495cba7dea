//! Wiring of migration: the listener for incoming guests (remote side) and
//! the start of outgoing migrations (deputy side). Each migrated process has
//! one authenticated TCP connection and one plain thread at each end: its
//! ptrace requests must all come from that thread.

use std::net::{SocketAddr, TcpListener};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use mosaic_proto::control::ProcInfo;
use mosaic_proto::{ClusterKey, ControlResponse, NodeState};
use tracing::{info, warn};

use crate::gossip::Membership;
use crate::net::AuthStream;

/// Accepts guests on the gossip address (TCP, same port) in a thread.
pub fn listen(
    addr: SocketAddr,
    key: ClusterKey,
    policy: mosaic_remote::GuestPolicy,
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
                        match mosaic_remote::serve(&mut link, &policy) {
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

/// This node's migrated processes, by home PID, with a line to each one's
/// deputy thread.
#[derive(Clone, Default)]
pub struct Registry(Arc<Mutex<BTreeMap<i32, (ProcInfo, Commands)>>>);

impl Registry {
    /// A snapshot, for publishing.
    pub fn list(&self) -> Vec<ProcInfo> {
        self.lock().values().map(|(p, _)| p.clone()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, (ProcInfo, Commands)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, p: ProcInfo, commands: Commands) {
        self.lock().insert(p.home_pid, (p, commands));
    }

    fn remove(&self, pid: i32) {
        self.lock().remove(&pid);
    }

    /// Where `pid` runs now and its deputy's line, if it is away.
    fn away(&self, pid: i32) -> Option<(String, Commands)> {
        self.lock()
            .get(&pid)
            .map(|(p, c)| (p.node.clone(), c.clone()))
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
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default();
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
            },
            commands,
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
