//! This node's files for its peers: its export (`export` in mosaicd.toml,
//! `/` by default) and its synthetic `proc` served over 9P2000.L on the
//! cluster's authenticated channel, TCP on the gossip port + 1, one thread
//! per peer connection; the client side, to read another node's files;
//! and what `/mfs` asks of this daemon ([`View`]).
//!
//! Each 9P message travels in one frame of the channel (no size prefix:
//! the frame has its length), so only peers holding the cluster key reach
//! the server, and every message is authenticated.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use mosaic_proto::ClusterKey;
use mosaic_ssi_fs::client::{Client, Transport};
use mosaic_ssi_fs::export::Export;
use mosaic_ssi_fs::synth::{SynthNode, Synthetic};
use tracing::{info, warn};

use crate::net::{AuthStream, BufTcp};

/// Where a node whose gossip address is `listen` serves its files.
pub fn fs_addr(listen: SocketAddr) -> SocketAddr {
    SocketAddr::new(listen.ip(), listen.port().wrapping_add(1))
}

/// Starts serving `export` to peers on `addr`.
pub fn serve(
    addr: SocketAddr,
    key: ClusterKey,
    export: Export,
    proc: Arc<dyn Synthetic>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let listener = TcpListener::bind(addr)
        .with_context(|| format!("cannot listen for file requests on {addr}/tcp"))?;
    let export = Arc::new(export);
    std::thread::Builder::new()
        .name("files-listener".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else {
                    // Out of descriptors, say: do not spin.
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    continue;
                };
                let (key, export, proc) = (key.clone(), export.clone(), proc.clone());
                let peer = conn.peer_addr().map(|a| a.to_string()).unwrap_or_default();
                let spawned = std::thread::Builder::new()
                    .name("files".into())
                    .spawn(move || {
                        let accepted = AuthStream::accept_tcp(conn, &key)
                            .map_err(|e| e.to_string())
                            .and_then(|l| l.buffered().map_err(|e| e.to_string()));
                        let mut link = match accepted {
                            Ok(l) => l,
                            Err(e) => {
                                warn!(from = %peer, error = %e, "refused a file connection");
                                return;
                            }
                        };
                        let mut session =
                            mosaic_ssi_fs::server::Session::with_synthetic(export, proc);
                        while let Ok(msg) = link.recv() {
                            let Ok(answer) = session.answer_message(&msg) else {
                                break;
                            };
                            // Answers to a batch go out together, once
                            // its last request is read.
                            if link.queue(&answer).is_err()
                                || (!link.input_buffered() && link.flush().is_err())
                            {
                                break;
                            }
                        }
                        info!(from = %peer, "file connection ended");
                    });
                if let Err(e) = spawned {
                    warn!(error = %e, "cannot start a file-serving thread");
                }
            }
        })?;
    Ok(())
}

/// 9P messages in the frames of an authenticated channel.
pub struct Frames(pub AuthStream<BufTcp>);

impl Transport for Frames {
    fn send(&mut self, msg: &[u8]) -> std::io::Result<()> {
        self.0.send(msg).map_err(std::io::Error::other)
    }
    fn queue(&mut self, msg: &[u8]) -> std::io::Result<()> {
        self.0.queue(msg).map_err(std::io::Error::other)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().map_err(std::io::Error::other)
    }
    fn recv(&mut self) -> std::io::Result<Vec<u8>> {
        self.0.recv().map_err(std::io::Error::other)
    }
}

/// A 9P client of the node whose gossip address is `listen`.
pub fn connect(listen: SocketAddr, key: &ClusterKey) -> anyhow::Result<Client<Frames>> {
    Ok(Client::new(frames(listen, key)?, 1 << 20)?)
}

/// How long a file request may wait for a peer before it fails (a dead
/// node must not hang `/mfs`).
pub const PEER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// An authenticated 9P transport to the node whose gossip address is
/// `listen`.
fn frames(listen: SocketAddr, key: &ClusterKey) -> std::io::Result<Frames> {
    let addr = fs_addr(listen);
    let link = AuthStream::connect_tcp(addr, key)
        .map_err(|e| std::io::Error::other(format!("cannot reach the files of {addr}: {e}")))?
        .buffered()?;
    link.set_timeout(Some(PEER_TIMEOUT))?;
    Ok(Frames(link))
}

/// What this daemon knows that `/mfs` and the `proc` tree show: kept
/// fresh by the daemon's tick, read by file-serving threads.
#[derive(Default)]
pub struct Facts {
    /// Live nodes (this one included) and their gossip addresses.
    pub nodes: Vec<(String, SocketAddr)>,
    /// This node's load as last published.
    pub load: mosaic_proto::LoadVector,
    /// The cluster's managed processes as last heard.
    pub procs: Vec<mosaic_proto::control::ProcInfo>,
}

/// This daemon, as `/mfs` and its `proc` tree see it.
#[derive(Clone)]
pub struct View {
    pub me: String,
    pub key: ClusterKey,
    pub facts: Arc<std::sync::Mutex<Facts>>,
    pub guests: crate::migration::Guests,
    pub registry: crate::migration::Registry,
}

impl View {
    fn facts(&self) -> std::sync::MutexGuard<'_, Facts> {
        self.facts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This node's managed processes, by home PID, with where each runs
    /// now (the registry knows a move at once; gossip a second later).
    fn own_procs(&self) -> Vec<mosaic_proto::control::ProcInfo> {
        let mut procs: Vec<_> = self
            .facts()
            .procs
            .iter()
            .filter(|p| p.home == self.me)
            .cloned()
            .collect();
        for p in &mut procs {
            p.node = self
                .registry
                .where_is(p.home_pid)
                .unwrap_or_else(|| self.me.clone());
        }
        procs.sort_by_key(|p| p.home_pid);
        procs
    }
}

impl mosaic_ssi_fs::mfs::Cluster for View {
    fn here(&self) -> String {
        self.me.clone()
    }

    fn nodes(&self) -> Vec<String> {
        let mut names: Vec<String> = self.facts().nodes.iter().map(|(n, _)| n.clone()).collect();
        if !names.contains(&self.me) {
            names.push(self.me.clone());
        }
        names.sort();
        names
    }

    fn home_of(&self, pid: u32) -> Option<String> {
        self.guests.home_of(mosaic_proto::abi::pid(pid))
    }

    fn connect(&self, node: &str) -> std::io::Result<Box<dyn Transport + Send>> {
        let addr = self
            .facts()
            .nodes
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, a)| *a)
            .ok_or_else(|| std::io::Error::other(format!("{node} is not a live node")))?;
        Ok(Box::new(frames(addr, &self.key)?))
    }
}

/// The header of a `ps` table in `proc`.
pub const PS_HEADER: &str = "HOME       PID WHERE      STATE        CPU%   MEM(KB) CMD";

fn ps_line(p: &mosaic_proto::control::ProcInfo) -> String {
    format!(
        "{:<8} {:>5} {:<10} {:<10} {:>6.1} {:>9} {}",
        p.home, p.home_pid, p.node, p.state, p.cpu, p.mem_kb, p.cmd
    )
}

fn text(s: impl std::fmt::Display) -> Option<SynthNode> {
    Some(SynthNode::File(format!("{s}\n").into_bytes()))
}

/// The node's `proc` tree: `load`, `cpus`, `speed`, `mem`, `ps` and a
/// directory per managed process of this home (`where`, `home`,
/// `status`, `cmdline`, `cantmove`, `lock`).
impl Synthetic for View {
    fn get(&self, path: &[String]) -> Option<SynthNode> {
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        const NODE_FILES: [&str; 5] = ["load", "cpus", "speed", "mem", "ps"];
        const PROC_FILES: [&str; 6] = ["where", "home", "status", "cmdline", "cantmove", "lock"];
        match p.as_slice() {
            [] => {
                let mut names: Vec<String> = NODE_FILES.iter().map(|s| s.to_string()).collect();
                names.extend(self.own_procs().iter().map(|p| p.home_pid.to_string()));
                Some(SynthNode::Dir(names))
            }
            ["load"] => text(format!("{:.2}", self.facts().load.load)),
            ["cpus"] => text(self.facts().load.cpus),
            ["speed"] => text(self.facts().load.speed),
            ["mem"] => {
                let l = &self.facts().load;
                text(format!(
                    "total_kb {}\nfree_kb {}",
                    l.mem_total >> 10,
                    l.mem_free >> 10
                ))
            }
            ["ps"] => {
                let mut out = format!("{PS_HEADER}\n");
                for p in self.own_procs() {
                    out.push_str(&ps_line(&p));
                    out.push('\n');
                }
                Some(SynthNode::File(out.into_bytes()))
            }
            [pid, rest @ ..] => {
                let pid: i32 = pid.parse().ok()?;
                let procs = self.own_procs();
                let p = procs.iter().find(|p| p.home_pid == pid)?;
                match rest {
                    [] => Some(SynthNode::Dir(
                        PROC_FILES.iter().map(|s| s.to_string()).collect(),
                    )),
                    ["where"] => text(&p.node),
                    ["home"] => text(&p.home),
                    ["status"] => text(&p.state),
                    ["cmdline"] => text(&p.cmd),
                    ["cantmove"] => text(&p.cantmove),
                    ["lock"] => text(u8::from(p.lock)),
                    _ => None,
                }
            }
        }
    }
}

/// This daemon's `/mfs`: mounted, or why not.
#[derive(Default)]
pub struct MfsState {
    inner: std::sync::Mutex<MfsInner>,
}

#[derive(Default)]
struct MfsInner {
    path: String,
    mounted: Option<mosaic_ssi_fs::mfs::Mounted>,
    error: String,
    view: Option<View>,
}

impl MfsState {
    fn lock(&self) -> std::sync::MutexGuard<'_, MfsInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Mounts `/mfs` at `at` (nothing when empty); a failure is logged and
    /// kept for `mosaic mfs status`: the node runs on without it.
    pub fn mount(&self, at: &std::path::Path, view: View) {
        let mut inner = self.lock();
        inner.path = at.display().to_string();
        if at.as_os_str().is_empty() {
            inner.error = "not configured (mfs = \"\" in mosaicd.toml)".into();
            return;
        }
        match mosaic_ssi_fs::mfs::mount(view.clone(), at) {
            Ok(m) => {
                info!(at = %at.display(), "/mfs mounted");
                inner.mounted = Some(m);
            }
            Err(e) => {
                warn!(error = %e, "/mfs is not mounted; the node runs without it");
                inner.error = e.to_string();
            }
        }
        inner.view = Some(view);
    }

    pub fn is_mounted(&self) -> bool {
        self.lock().mounted.is_some()
    }

    /// Unmounts it (at stop).
    pub fn unmount(&self) {
        if let Some(m) = self.lock().mounted.take() {
            m.unmount();
            info!("/mfs unmounted");
        }
    }

    pub fn status(&self) -> mosaic_proto::control::MfsStatus {
        use mosaic_ssi_fs::mfs::Cluster;
        use std::sync::atomic::Ordering::Relaxed;
        let inner = self.lock();
        let mut s = mosaic_proto::control::MfsStatus {
            path: inner.path.clone(),
            mounted: inner.mounted.is_some(),
            error: inner.error.clone(),
            nodes: inner.view.as_ref().map(|v| v.nodes()).unwrap_or_default(),
            ..Default::default()
        };
        if let Some(m) = &inner.mounted {
            let st = m.stats();
            s.read_bytes = st.read_bytes.load(Relaxed);
            s.written_bytes = st.written_bytes.load(Relaxed);
            s.round_trips = st.round_trips.load(Relaxed);
            s.connects = st.connects.load(Relaxed);
            s.transport_errors = st.transport_errors.load(Relaxed);
        }
        s
    }
}
