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

/// This node's migrated processes, by home PID.
#[derive(Clone, Default)]
pub struct Registry(Arc<Mutex<BTreeMap<i32, ProcInfo>>>);

impl Registry {
    /// A snapshot, for publishing.
    pub fn list(&self) -> Vec<ProcInfo> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn insert(&self, p: ProcInfo) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(p.home_pid, p);
    }

    fn remove(&self, pid: i32) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid);
    }
}

/// Starts migrating `pid` to `node`; answers once the guest runs (or why not).
pub async fn start(
    membership: &Membership,
    registry: &Registry,
    me: &str,
    key: &ClusterKey,
    pid: i32,
    node: String,
) -> ControlResponse {
    let error = |message: String| ControlResponse::Error { message };
    if node == me {
        return error(format!("process {pid} is already on {me}"));
    }
    let nodes = membership.nodes().await;
    let Some(target) = nodes.iter().find(|n| n.name == node) else {
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        return error(format!(
            "no node named {node} (known: {}); see `mosaic nodes`",
            names.join(", ")
        ));
    };
    if target.state != NodeState::Alive {
        return error(format!("{node} is {}; see `mosaic nodes`", target.state));
    }
    let Ok(addr) = target.addr.parse::<SocketAddr>() else {
        return error(format!("{node} has a bad address {}", target.addr));
    };
    let (tx, rx) = std::sync::mpsc::channel::<Result<i32, String>>();
    let (me, key, registry, target_name) =
        (me.to_string(), key.clone(), registry.clone(), node.clone());
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    let spawned = std::thread::Builder::new()
        .name(format!("deputy-{pid}"))
        .spawn(move || {
            let mut link = match AuthStream::connect_tcp(addr, &key) {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(format!("cannot reach {addr}: {e}")));
                    return;
                }
            };
            let placeholder = match mosaic_deputy::migrate(pid, &me, &mut link) {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = tx.send(Ok(placeholder.guest_pid));
            registry.insert(ProcInfo {
                home_pid: pid,
                home: me.clone(),
                node: target_name,
                guest_pid: placeholder.guest_pid,
                cmd,
            });
            match placeholder.serve(&mut link) {
                Ok(outcome) => info!(pid, ?outcome, "migrated process ended"),
                Err(e) => warn!(pid, error = %e, "migrated process failed"),
            }
            registry.remove(pid);
        });
    if let Err(e) = spawned {
        return error(format!("cannot start a deputy thread: {e}"));
    }
    match tokio::task::spawn_blocking(move || rx.recv()).await {
        Ok(Ok(Ok(guest_pid))) => ControlResponse::Migrated {
            pid,
            node,
            guest_pid,
        },
        Ok(Ok(Err(message))) => error(message),
        _ => error("the deputy thread died".into()),
    }
}
