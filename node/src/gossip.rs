//! Membership and load gossip: chitchat over an authenticated UDP transport.
//!
//! Every datagram is sealed with the cluster key ([`mosaic_proto::auth`]); a
//! datagram from a peer without the key is dropped before chitchat sees it,
//! and the refusal is logged (at most once per peer every few seconds). Such
//! a peer therefore never enters any node's table.
//!
//! Each node publishes two keys: `load` (its [`LoadVector`] as JSON, about
//! once a second) and, when it stops cleanly, `leaving`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use chitchat::transport::{Socket, Transport};
use chitchat::{
    ChitchatConfig, ChitchatHandle, ChitchatId, ChitchatMessage, Deserializable,
    FailureDetectorConfig, Serializable, spawn_chitchat,
};
use mosaic_proto::{ClusterKey, LoadVector, NodeInfo, NodeState};
use tracing::{debug, warn};

/// How often a node gossips with a peer.
pub const GOSSIP_INTERVAL: Duration = Duration::from_millis(250);
const CLUSTER_ID: &str = "mosaic";
const KEY_LOAD: &str = "load";
const KEY_LEAVING: &str = "leaving";
const KEY_PROCS: &str = "procs";
const KEY_GUESTS: &str = "guests";
const KEY_WEB: &str = "web";
/// Largest datagram we send or accept.
const MAX_DATAGRAM: usize = 65_507;
/// Minimum time between two refusal log lines for one peer address.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(5);

/// chitchat [`Transport`] whose datagrams carry the cluster key's tag.
pub struct AuthUdpTransport {
    key: ClusterKey,
}

impl AuthUdpTransport {
    /// A transport for the cluster of `key`.
    pub fn new(key: ClusterKey) -> Self {
        AuthUdpTransport { key }
    }
}

#[async_trait]
impl Transport for AuthUdpTransport {
    async fn open(&self, listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let socket = tokio::net::UdpSocket::bind(listen_addr)
            .await
            .with_context(|| format!("cannot bind gossip socket {listen_addr}/udp"))?;
        Ok(Box::new(AuthUdpSocket {
            key: self.key.clone(),
            socket,
            buf: vec![0u8; MAX_DATAGRAM].into_boxed_slice(),
            last_refusal_log: HashMap::new(),
        }))
    }
}

struct AuthUdpSocket {
    key: ClusterKey,
    socket: tokio::net::UdpSocket,
    buf: Box<[u8]>,
    last_refusal_log: HashMap<SocketAddr, Instant>,
}

impl AuthUdpSocket {
    fn log_refusal(&mut self, from: SocketAddr, reason: &dyn std::fmt::Display) {
        let now = Instant::now();
        let due = self
            .last_refusal_log
            .get(&from)
            .is_none_or(|t| now.duration_since(*t) >= REFUSAL_LOG_EVERY);
        if due {
            self.last_refusal_log.insert(from, now);
            warn!(
                from = %from,
                reason = %reason,
                "refused gossip from {from}: {reason}; a node must use this cluster's key file (see `mosaic keygen`) to join"
            );
        }
    }
}

#[async_trait]
impl Socket for AuthUdpSocket {
    async fn send(&mut self, to: SocketAddr, message: ChitchatMessage) -> anyhow::Result<()> {
        let payload = message.serialize_to_vec();
        let datagram = self.key.seal_datagram(&payload, crate::now_ms());
        if let Err(e) = self.socket.send_to(&datagram, to).await {
            // A peer that is gone is the failure detector's business, not a broken transport.
            debug!(to = %to, error = %e, "gossip send failed");
        }
        Ok(())
    }

    async fn recv(&mut self) -> anyhow::Result<(SocketAddr, ChitchatMessage)> {
        loop {
            let (n, from) = match self.socket.recv_from(&mut self.buf).await {
                Ok(r) => r,
                Err(e) if is_transient(&e) => continue,
                Err(e) => return Err(e).context("gossip socket failed"),
            };
            let datagram = self.buf[..n].to_vec();
            let payload = match self.key.open_datagram(&datagram, crate::now_ms()) {
                Ok(p) => p,
                Err(e) => {
                    self.log_refusal(from, &e);
                    continue;
                }
            };
            let mut cursor = payload;
            match ChitchatMessage::deserialize(&mut cursor) {
                Ok(message) => return Ok((from, message)),
                Err(e) => {
                    // Authenticated but malformed: a peer with our key and a bug.
                    warn!(from = %from, error = %e, "malformed gossip message from a key holder");
                }
            }
        }
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::Interrupted
    )
}

/// This node's membership in the cluster.
pub struct Membership {
    handle: ChitchatHandle,
    /// Nodes the failure detector has judged alive at least once: a node
    /// that is not alive now is *dead* if it was, *joining* if not yet.
    seen_alive: std::sync::Arc<std::sync::Mutex<HashSet<ChitchatId>>>,
}

/// What starting membership needs.
pub struct MembershipConfig {
    pub name: String,
    pub listen: SocketAddr,
    pub seeds: Vec<String>,
    pub key: ClusterKey,
}

impl Membership {
    /// Binds the gossip socket and starts gossiping with the seeds.
    pub async fn start(config: MembershipConfig, initial: &LoadVector) -> anyhow::Result<Self> {
        // A restarted node is a new generation, so peers never mix its old
        // and new state.
        let generation = crate::now_ms();
        let chitchat_id = ChitchatId::new(config.name.clone(), generation, config.listen);
        let chitchat_config = ChitchatConfig {
            chitchat_id,
            cluster_id: CLUSTER_ID.to_string(),
            gossip_interval: GOSSIP_INTERVAL,
            listen_addr: config.listen,
            seed_nodes: config.seeds,
            failure_detector_config: FailureDetectorConfig {
                phi_threshold: 8.0,
                sampling_window_size: 1_000,
                max_interval: Duration::from_secs(5),
                initial_interval: GOSSIP_INTERVAL * 2,
                dead_node_grace_period: Duration::from_secs(15 * 60),
            },
            marked_for_deletion_grace_period: Duration::from_secs(15 * 60),
            catchup_callback: None,
            extra_liveness_predicate: None,
        };
        let initial_kv = vec![(KEY_LOAD.to_string(), load_json(initial))];
        let handle = spawn_chitchat(
            chitchat_config,
            initial_kv,
            &AuthUdpTransport::new(config.key),
        )
        .await?;
        let seen_alive = std::sync::Arc::new(std::sync::Mutex::new(HashSet::new()));
        let mut watcher = handle.with_chitchat(|c| c.live_nodes_watcher()).await;
        let seen = seen_alive.clone();
        tokio::spawn(async move {
            loop {
                let live: Vec<ChitchatId> = watcher.borrow_and_update().keys().cloned().collect();
                seen.lock().unwrap_or_else(|e| e.into_inner()).extend(live);
                if watcher.changed().await.is_err() {
                    return;
                }
            }
        });
        Ok(Membership { handle, seen_alive })
    }

    /// Publishes this node's load vector.
    pub async fn publish_load(&self, load: &LoadVector) {
        let value = load_json(load);
        self.handle
            .with_chitchat(|c| c.self_node_state().set(KEY_LOAD, &value))
            .await;
    }

    /// Publishes where this node's web view answers (`host:port`).
    pub async fn publish_web(&self, addr: &str) {
        self.handle
            .with_chitchat(|c| c.self_node_state().set(KEY_WEB, addr))
            .await;
    }

    /// Withdraws this node's load (`mosaic node quiet`): the others see no
    /// load and send it no work.
    pub async fn publish_quiet(&self) {
        self.handle
            .with_chitchat(|c| {
                if c.self_node_state().get(KEY_LOAD) != Some("") {
                    c.self_node_state().set(KEY_LOAD, "");
                }
            })
            .await;
    }

    /// Publishes this node's managed processes and the guests it runs.
    pub async fn publish_procs(
        &self,
        procs: &[mosaic_proto::control::ProcInfo],
        guests: &[mosaic_proto::control::GuestInfo],
    ) {
        let procs = serde_json::to_string(procs).expect("process list always serializes");
        let guests = serde_json::to_string(guests).expect("guest list always serializes");
        self.handle
            .with_chitchat(|c| {
                for (key, value) in [(KEY_PROCS, &procs), (KEY_GUESTS, &guests)] {
                    if c.self_node_state().get(key) != Some(value.as_str()) {
                        c.self_node_state().set(key, value);
                    }
                }
            })
            .await;
    }

    /// Managed processes of every live node, sorted by home and PID; for
    /// those that run elsewhere, state, CPU and memory as the node they run
    /// on reports them.
    pub async fn procs(&self) -> Vec<mosaic_proto::control::ProcInfo> {
        use mosaic_proto::control::{GuestInfo, ProcInfo};
        let chitchat = self.handle.chitchat();
        let chitchat = chitchat.lock().await;
        let live: HashSet<&ChitchatId> = chitchat.live_nodes().collect();
        let states: Vec<_> = chitchat
            .node_states()
            .iter()
            .filter(|(id, _)| live.contains(id))
            .map(|(_, st)| st)
            .collect();
        let mut out: Vec<ProcInfo> = states
            .iter()
            .filter_map(|st| st.get(KEY_PROCS))
            .filter_map(|v| serde_json::from_str::<Vec<ProcInfo>>(v).ok())
            .flatten()
            .collect();
        let guests: Vec<GuestInfo> = states
            .iter()
            .filter_map(|st| st.get(KEY_GUESTS))
            .filter_map(|v| serde_json::from_str::<Vec<GuestInfo>>(v).ok())
            .flatten()
            .collect();
        for p in out.iter_mut().filter(|p| p.node != p.home) {
            if let Some(g) = guests
                .iter()
                .find(|g| g.home == p.home && g.home_pid == p.home_pid)
            {
                if p.state.is_empty() {
                    p.state = g.state.clone();
                }
                p.cpu = g.cpu;
                p.mem_kb = g.mem_kb;
            }
        }
        out.sort_by(|a, b| (&a.home, a.home_pid).cmp(&(&b.home, b.home_pid)));
        out
    }

    /// Every node known, alive, left or dead, one row per name (latest
    /// generation), sorted by name.
    pub async fn nodes(&self) -> Vec<NodeInfo> {
        let self_id = self.handle.chitchat_id().clone();
        let chitchat = self.handle.chitchat();
        let chitchat = chitchat.lock().await;
        let live: HashSet<&ChitchatId> = chitchat.live_nodes().collect();
        let mut seen_alive = self.seen_alive.lock().unwrap_or_else(|e| e.into_inner());
        seen_alive.extend(live.iter().map(|id| (*id).clone()));
        let mut rows: BTreeMap<String, NodeInfo> = BTreeMap::new();
        for (id, state) in chitchat.node_states() {
            let node_state = if state.get(KEY_LEAVING).is_some() {
                NodeState::Left
            } else if live.contains(id) {
                NodeState::Alive
            } else if seen_alive.contains(id) {
                NodeState::Dead
            } else {
                NodeState::Joining
            };
            let row = NodeInfo {
                name: id.node_id.to_string(),
                addr: id.gossip_advertise_addr.to_string(),
                state: node_state,
                generation: id.generation_id,
                is_self: *id == self_id,
                load: state
                    .get(KEY_LOAD)
                    .and_then(|v| serde_json::from_str(v).ok()),
                web: state.get(KEY_WEB).unwrap_or_default().to_owned(),
            };
            match rows.get(&row.name) {
                Some(old) if old.generation > row.generation => {}
                _ => {
                    rows.insert(row.name.clone(), row);
                }
            }
        }
        rows.into_values().collect()
    }

    /// Says goodbye: marks this node as leaving, lets a few gossip rounds
    /// carry the news, and stops.
    pub async fn leave(&self) {
        self.handle
            .with_chitchat(|c| c.self_node_state().set(KEY_LEAVING, "1"))
            .await;
        tokio::time::sleep(GOSSIP_INTERVAL * 4).await;
        if let Err(e) = self.handle.initiate_shutdown() {
            debug!(error = %e, "gossip shutdown");
        }
    }
}

fn load_json(load: &LoadVector) -> String {
    serde_json::to_string(load).expect("load vector always serializes")
}
