//! The API of `mosaicd`'s local control socket.
//!
//! One request per line, one response per line, both JSON. The socket is a
//! Unix socket readable by root only (`/run/mosaic/mosaicd.sock` by default).

use serde::{Deserialize, Serialize};

use crate::load::{LoadVector, NodeInfo};

/// What the admin CLI asks a daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum ControlRequest {
    /// Every node this daemon knows of, alive or not.
    Nodes,
    /// This daemon's own name, address and load.
    Status,
    /// Move process `pid` (of this node) to node `node` now.
    Migrate { pid: i32, node: String },
    /// Every managed process of the cluster.
    Ps,
    /// Manage process `pid` of this node (`mosaic run` does this for the
    /// program it starts; `mosaic lock`/`unlock` too); `lock`: no automatic
    /// migration.
    Manage { pid: i32, lock: bool },
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
    /// Answer to [`ControlRequest::Manage`].
    Managed { pid: i32 },
    /// The request could not be served; `message` says why, for a human.
    Error { message: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_as_one_json_line() {
        for req in [ControlRequest::Nodes, ControlRequest::Status] {
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
