//! The API of `mosaicd`'s local control socket.
//!
//! One request per line, one response per line, both JSON. The socket is a
//! Unix socket readable by root only (`/run/mosaic/mosaicd.sock` by default).

use serde::{Deserialize, Serialize};

use crate::image::CpuTime;
use crate::load::{LoadVector, NodeInfo};

/// What the admin CLI asks a daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum ControlRequest {
    /// Every node this daemon knows of, alive or not.
    Nodes,
    /// This daemon's own name, address and load.
    Status,
    /// Move process `pid` (of this node) to node `node` now (`home`: back
    /// home; `balance`: where the balancer's rule says it runs best).
    Migrate { pid: i32, node: String },
    /// Every managed process of the cluster.
    Ps,
    /// Manage process `pid` of this node (`mosaic run` does this for the
    /// program it starts; `mosaic lock`/`unlock` too); `lock`: no automatic
    /// migration; `hint`: what kind of work it does (`mosaic run
    /// --cpu-bound | --io-bound`).
    Manage {
        pid: i32,
        lock: bool,
        #[serde(default)]
        hint: Hint,
    },
    /// A node control (`mosaic node ...`), in the spirit of openMosix's
    /// `mosctl`.
    Node { action: NodeAction },
    /// The state of this node's `/mfs`.
    Mfs,
    /// The CPU time that the ended descendants of process `pid` (of this
    /// node) used on other nodes: what its kernel's `RUSAGE_CHILDREN`
    /// lacks. mosh's `time` and `times` add it.
    ChildrenCpu { pid: i32 },
    /// Where this node's web view answers, with its token (`mosaic web`).
    Web,
}

/// `/mfs` on one node, for `mosaic mfs status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfsStatus {
    /// Where it is (or would be) mounted; empty: not configured.
    pub path: String,
    pub mounted: bool,
    /// Why it is not mounted, for a human.
    #[serde(default)]
    pub error: String,
    /// The nodes it shows.
    #[serde(default)]
    pub nodes: Vec<String>,
    pub read_bytes: u64,
    pub written_bytes: u64,
    /// 9P round trips made.
    pub round_trips: u64,
    /// Connections made to nodes' file servers.
    pub connects: u64,
    /// Requests that failed because a node did not answer.
    pub transport_errors: u64,
}

/// What a process is known to do, as `mosrun -c` / `-i` told openMosix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hint {
    /// Nothing known: the balancer watches it.
    #[default]
    None,
    /// It computes: it may move as soon as it starts.
    CpuBound,
    /// It does I/O: it stays home, near its files.
    IoBound,
}

/// `mosaic node ACTION`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum NodeAction {
    /// Show the node's controls.
    Show,
    /// This node's processes stay here (the balancer moves none of them).
    Stay,
    NoStay,
    /// Accept no new guests.
    Block,
    NoBlock,
    /// Send every guest home; implies `block`.
    Expel,
    /// Call every process of this node that runs elsewhere home.
    Bring,
    /// Stop publishing this node's load (others stop sending work here).
    Quiet,
    NoQuiet,
    /// Publish this CPU speed instead of the calibrated one.
    Speed {
        speed: u32,
    },
}

/// A node's controls, as `mosaic node` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeControls {
    pub stay: bool,
    pub block: bool,
    pub quiet: bool,
    /// The speed published (calibrated or set by `mosaic node speed`).
    pub speed: u32,
    /// Guests running here now.
    pub guests: usize,
    /// Processes of this node running elsewhere now.
    pub away: usize,
}

/// One managed process, as its home node publishes it (and, for the
/// fields marked so, as the node it runs on reports it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcInfo {
    /// Its PID at home (in the home node's PID namespace).
    pub home_pid: i32,
    /// Its home node.
    pub home: String,
    /// The node it runs on now.
    pub node: String,
    /// Its PID on that node.
    pub guest_pid: i32,
    /// Its command line.
    pub cmd: String,
    /// running, sleeping, stopped, in a call (a guest waiting for home), ...
    /// (where it runs).
    #[serde(default)]
    pub state: String,
    /// CPU share since it last arrived where it runs, in percent of one
    /// CPU (where it runs).
    #[serde(default)]
    pub cpu: f64,
    /// Resident memory in KiB (where it runs).
    #[serde(default)]
    pub mem_kb: u64,
    /// Why it cannot migrate now (empty: it can).
    #[serde(default)]
    pub cantmove: String,
    /// Locked: never moved automatically.
    #[serde(default)]
    pub lock: bool,
    /// Its threads (as its home knows them: a placeholder has a thread
    /// for each of its guest's); 0 if not told.
    #[serde(default)]
    pub threads: u32,
}

/// A guest, as the node it runs on publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestInfo {
    pub home: String,
    pub home_pid: i32,
    pub guest_pid: i32,
    pub state: String,
    pub cpu: f64,
    pub mem_kb: u64,
}

/// What a daemon answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum ControlResponse {
    /// Answer to [`ControlRequest::Nodes`], sorted by name.
    Nodes { nodes: Vec<NodeInfo> },
    /// Answer to [`ControlRequest::Status`].
    Status {
        name: String,
        addr: String,
        load: LoadVector,
    },
    /// Answer to [`ControlRequest::Ps`], sorted by home node and PID.
    Ps { procs: Vec<ProcInfo> },
    /// Answer to [`ControlRequest::Migrate`]: the guest runs.
    Migrated {
        pid: i32,
        node: String,
        guest_pid: i32,
    },
    /// Answer to [`ControlRequest::Migrate`] with `balance` when no node
    /// would run it better: it stays where it runs.
    Stays { pid: i32, node: String },
    /// Answer to [`ControlRequest::Manage`].
    Managed { pid: i32 },
    /// Answer to [`ControlRequest::Node`]: the controls after the action,
    /// and what it set in motion, for a human.
    Node {
        controls: NodeControls,
        message: String,
    },
    /// Answer to [`ControlRequest::Mfs`].
    Mfs { status: MfsStatus },
    /// Answer to [`ControlRequest::ChildrenCpu`].
    ChildrenCpu { pid: i32, cpu: CpuTime },
    /// Answer to [`ControlRequest::Web`]: the page's address, its token
    /// in the fragment (`http://ADDR/#token=...`; a fragment never
    /// reaches a server or its logs).
    Web { url: String },
    /// The request could not be served; `message` says why, for a human.
    Error { message: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_as_one_json_line() {
        for req in [
            ControlRequest::Nodes,
            ControlRequest::Status,
            ControlRequest::ChildrenCpu { pid: 42 },
        ] {
            let line = serde_json::to_string(&req).unwrap();
            assert!(!line.contains('\n'));
            assert_eq!(serde_json::from_str::<ControlRequest>(&line).unwrap(), req);
        }
    }

    #[test]
    fn unknown_request_is_an_error_not_a_panic() {
        assert!(serde_json::from_str::<ControlRequest>(r#"{"request":"reboot"}"#).is_err());
    }
}
