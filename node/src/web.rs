//! The web view: a page of the cluster, served by `mosaicd` on a local port
//! (off by default, on in a local cluster), in the spirit of
//! openMosixview and its migmon: every node's load, CPU use and memory
//! over the last minutes as charts, the cluster-wide process table with
//! where each process runs, the migrations as they happen, and a process
//! dragged onto a node migrates there.
//!
//! The page (`/`) is static and holds no data. Everything else is under
//! `/api/` and answers only a request that carries the view's token
//! (`Authorization: Bearer TOKEN`), which is derived from the cluster key
//! ([`ClusterKey::web_token`]): only someone who can read the key, or ask
//! a daemon on its root-only control socket (`mosaic web`), holds it. The
//! page is opened at `http://ADDR/#token=TOKEN`; the fragment never
//! reaches a server or its logs, and the page sends it as a header, which
//! a cross-site form or image cannot. So an unauthenticated request
//! neither reads the process table nor moves a process.
//!
//! A process is migrated by its home node (its PID means something only
//! there): the page sends a move to the home's own view, whose address the
//! home gossips ([`mosaic_proto::NodeInfo::web`]); the API therefore
//! answers other origins (CORS), with the same token as its authority.
//!
//! The server asks the daemon through the same handler as the control
//! socket, so the view can do nothing that `mosaic` cannot.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use mosaic_proto::control::ProcInfo;
use mosaic_proto::{ClusterKey, ControlRequest, ControlResponse, NodeInfo};
use serde::{Deserialize, Serialize};

/// The page: HTML, CSS and script in one file, nothing fetched from
/// elsewhere.
const PAGE: &str = include_str!("web/index.html");
/// Samples kept per node: five minutes, one a second.
pub const HISTORY: usize = 300;
/// Migrations kept.
pub const EVENTS: usize = 100;
/// How often the view asks the daemon for the process table (the nodes'
/// loads are sampled every fourth time).
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// The largest request body read (a move is a few dozen bytes).
const MAX_BODY: usize = 4096;

/// A boxed answer of the daemon.
pub type Answer = Pin<Box<dyn std::future::Future<Output = ControlResponse> + Send>>;
/// The daemon's request handler, as the control socket has it.
pub type Ask = Arc<dyn Fn(ControlRequest) -> Answer + Send + Sync>;

/// One node's sample: Unix time (ms), load, CPU use (0-1), memory in use
/// (0-1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample(pub u64, pub f64, pub f64, pub f64);

/// A migration seen in the process table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// When it was seen (Unix time, ms).
    pub at_ms: u64,
    pub home: String,
    pub home_pid: i32,
    pub cmd: String,
    pub from: String,
    pub to: String,
}

/// What the view remembers between requests.
#[derive(Debug, Default)]
pub struct Memory {
    history: BTreeMap<String, VecDeque<Sample>>,
    events: VecDeque<Event>,
    /// (home, home PID) -> the node it ran on at the last look.
    last: HashMap<(String, i32), String>,
    nodes: Vec<NodeInfo>,
    procs: Vec<ProcInfo>,
}

impl Memory {
    /// Folds in the nodes as the daemon sees them at `now_ms`.
    pub fn nodes(&mut self, nodes: Vec<NodeInfo>, now_ms: u64) {
        for n in &nodes {
            let Some(l) = &n.load else { continue };
            let used = if l.mem_total == 0 {
                0.0
            } else {
                1.0 - l.mem_free as f64 / l.mem_total as f64
            };
            let samples = self.history.entry(n.name.clone()).or_default();
            samples.push_back(Sample(now_ms, l.load, l.util, used.clamp(0.0, 1.0)));
            while samples.len() > HISTORY {
                samples.pop_front();
            }
        }
        self.nodes = nodes;
    }

    /// Folds in the process table; a process that runs on another node
    /// than at the last look has migrated.
    pub fn procs(&mut self, procs: Vec<ProcInfo>, now_ms: u64) {
        let mut now = HashMap::with_capacity(procs.len());
        for p in &procs {
            let key = (p.home.clone(), p.home_pid);
            if let Some(from) = self.last.get(&key)
                && *from != p.node
            {
                self.events.push_back(Event {
                    at_ms: now_ms,
                    home: p.home.clone(),
                    home_pid: p.home_pid,
                    cmd: p.cmd.clone(),
                    from: from.clone(),
                    to: p.node.clone(),
                });
                if self.events.len() > EVENTS {
                    self.events.pop_front();
                }
            }
            now.insert(key, p.node.clone());
        }
        self.last = now;
        self.procs = procs;
    }
}

/// The view's state, as `/api/state` sends it.
#[derive(Serialize)]
struct StateView<'a> {
    node: &'a str,
    now_ms: u64,
    nodes: &'a [NodeInfo],
    history: &'a BTreeMap<String, VecDeque<Sample>>,
    procs: &'a [ProcInfo],
    events: &'a VecDeque<Event>,
}

/// A move asked for by the page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Move {
    pid: i32,
    node: String,
}

#[derive(Clone)]
struct Shared {
    me: String,
    key: ClusterKey,
    ask: Ask,
    memory: Arc<Mutex<Memory>>,
}

/// Serves the view on `listener` until the daemon ends; `ask` answers as
/// the control socket does.
pub async fn serve(listener: tokio::net::TcpListener, me: String, key: ClusterKey, ask: Ask) {
    let shared = Shared {
        me,
        key,
        ask,
        memory: Arc::default(),
    };
    tokio::spawn(watch(shared.clone()));
    let app = axum::Router::new()
        .route("/", get(page))
        .route("/api/state", get(state).options(preflight))
        .route(
            "/api/migrate",
            axum::routing::post(migrate).options(preflight),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!(error = %e, "the web view stopped");
    }
}

/// Looks at the cluster every [`SAMPLE_EVERY`], so that the charts have a
/// history and migrations are seen when no page is open.
async fn watch(shared: Shared) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0u64.. {
        tick.tick().await;
        if let ControlResponse::Ps { procs } = (shared.ask)(ControlRequest::Ps).await {
            let now = mosaic_proto::load::now_ms();
            lock(&shared.memory).procs(procs, now);
        }
        if n % 4 == 0
            && let ControlResponse::Nodes { nodes } = (shared.ask)(ControlRequest::Nodes).await
        {
            let now = mosaic_proto::load::now_ms();
            lock(&shared.memory).nodes(nodes, now);
        }
    }
}

fn lock(m: &Mutex<Memory>) -> std::sync::MutexGuard<'_, Memory> {
    // A panic elsewhere leaves samples, not broken invariants.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            // The page loads nothing from elsewhere and is framed by no one.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src *; img-src data:; frame-ancestors 'none'",
            ),
        ],
        Html(PAGE),
    )
}

/// Headers every API answer carries: any origin may ask, with the token.
fn cors(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    cors(response)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": message.into() });
    cors((status, Json(body)).into_response())
}

/// Refuses a request without the view's token.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "no token: open the view at the address `mosaic web` prints (its #token=... is the authority)",
        ));
    };
    shared.key.check_web_token(token).map_err(|_| {
        error(
            StatusCode::FORBIDDEN,
            "wrong token: it is not this cluster's; open the address `mosaic web` prints",
        )
    })
}

async fn state(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&shared, &headers) {
        return refused;
    }
    let memory = lock(&shared.memory);
    let view = StateView {
        node: &shared.me,
        now_ms: mosaic_proto::load::now_ms(),
        nodes: &memory.nodes,
        history: &memory.history,
        procs: &memory.procs,
        events: &memory.events,
    };
    cors(Json(view).into_response())
}

async fn migrate(State(shared): State<Shared>, headers: HeaderMap, body: String) -> Response {
    if let Err(refused) = authorize(&shared, &headers) {
        return refused;
    }
    let mv: Move = match serde_json::from_str(&body) {
        Ok(m) => m,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("a move is {{\"pid\": N, \"node\": NAME}}: {e}"),
            );
        }
    };
    tracing::info!(pid = mv.pid, to = %mv.node, "web view: migrate");
    let request = ControlRequest::Migrate {
        pid: mv.pid,
        node: mv.node,
    };
    match (shared.ask)(request).await {
        ControlResponse::Migrated {
            pid,
            node,
            guest_pid,
        } => cors(
            Json(serde_json::json!({ "pid": pid, "node": node, "guest_pid": guest_pid }))
                .into_response(),
        ),
        ControlResponse::Stays { pid, node } => cors(
            Json(serde_json::json!({ "pid": pid, "node": node, "stays": true })).into_response(),
        ),
        ControlResponse::Error { message } => error(StatusCode::CONFLICT, message),
        other => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected answer: {other:?}"),
        ),
    }
}

/// Binds the view's address; an address that is not loopback is
/// served with a warning (the token travels in clear over HTTP).
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    if !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "the web view listens beyond this machine; its token travels in clear over HTTP (use a loopback address and `ssh -L`)"
        );
    }
    tokio::net::TcpListener::bind(addr).await
}

/// The page's address with its token (`mosaic web`).
pub fn url(addr: SocketAddr, key: &ClusterKey) -> String {
    format!("http://{addr}/#token={}", key.web_token())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(home: &str, pid: i32, node: &str) -> ProcInfo {
        ProcInfo {
            home_pid: pid,
            home: home.into(),
            node: node.into(),
            guest_pid: pid,
            cmd: "job".into(),
            state: "running".into(),
            cpu: 0.0,
            mem_kb: 0,
            cantmove: String::new(),
            lock: false,
            threads: 1,
        }
    }

    #[test]
    fn a_process_seen_on_another_node_is_a_migration_and_only_once() {
        let mut m = Memory::default();
        m.procs(
            vec![proc("node1", 7, "node1"), proc("node2", 7, "node2")],
            1,
        );
        assert!(m.events.is_empty(), "first sight is no move");
        m.procs(
            vec![proc("node1", 7, "node3"), proc("node2", 7, "node2")],
            2,
        );
        m.procs(vec![proc("node1", 7, "node3")], 3);
        let moves: Vec<_> = m
            .events
            .iter()
            .map(|e| {
                (
                    e.home.as_str(),
                    e.home_pid,
                    e.from.as_str(),
                    e.to.as_str(),
                    e.at_ms,
                )
            })
            .collect();
        assert_eq!(moves, [("node1", 7, "node1", "node3", 2)]);
        // A PID of the same number at another home is another process.
        m.procs(
            vec![proc("node1", 7, "node3"), proc("node2", 7, "node1")],
            4,
        );
        assert_eq!(m.events.len(), 1);
    }

    #[test]
    fn history_and_events_are_bounded() {
        let mut m = Memory::default();
        let node = NodeInfo {
            name: "node1".into(),
            addr: String::new(),
            state: mosaic_proto::NodeState::Alive,
            generation: 1,
            is_self: true,
            load: Some(mosaic_proto::LoadVector {
                load: 1.0,
                mem_total: 4,
                mem_free: 1,
                ..Default::default()
            }),
            web: String::new(),
        };
        for t in 0..(HISTORY as u64 + 10) {
            m.nodes(vec![node.clone()], t);
            let on = if t % 2 == 0 { "node1" } else { "node2" };
            m.procs(vec![proc("node1", 1, on)], t);
        }
        assert_eq!(m.history["node1"].len(), HISTORY);
        assert_eq!(
            m.history["node1"].back(),
            Some(&Sample(HISTORY as u64 + 9, 1.0, 0.0, 0.75))
        );
        assert_eq!(m.events.len(), EVENTS);
    }
}
