//! Node identity and the load vector each node publishes through gossip.

use serde::{Deserialize, Serialize};

/// What a node publishes about itself four times a second.
///
/// `load` is in units of "single-process loads": one CPU-bound process on
/// the node adds about 1.0, whatever the node's CPU count or speed. A
/// balancer normalises it with [`LoadVector::normalized_load`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadVector {
    /// Smoothed run-queue length, the openMosix way: rises slowly, drops at once.
    pub load: f64,
    /// CPUs this node may use.
    pub cpus: u32,
    /// Relative CPU speed (calibrated at start, or set in the config).
    pub speed: u32,
    /// Total memory in bytes.
    pub mem_total: u64,
    /// Memory available for new work in bytes.
    pub mem_free: u64,
    /// Share of its CPUs this node kept busy over the last second (0 to 1;
    /// mosmon's utilization).
    #[serde(default)]
    pub util: f64,
    /// Guests (migrated processes from other homes) running here.
    pub guests: u32,
    /// Whether this node accepts guests.
    pub accepts_guests: bool,
    /// The machine it runs on (its boot id) and the CPUs it may use there:
    /// nodes of one machine whose CPU sets overlap share those CPUs (a
    /// local cluster), and a balancer counts their loads together.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub machine: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpuset: Vec<u32>,
    /// When the node published it (Unix time, ms; 0: unknown). A balancer
    /// confirms a move only on a view of the target newer than its own
    /// first wish to move there (clocks of a cluster are NTP-synchronized;
    /// nodes of a local cluster share one clock).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub at_ms: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The Unix time in milliseconds (for [`LoadVector::at_ms`]).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, crate::abi::millis)
}

impl LoadVector {
    /// Load per CPU, scaled by speed relative to `reference_speed`: what a new
    /// process would find on this node compared to a node of that speed.
    pub fn normalized_load(&self, reference_speed: u32) -> f64 {
        let cpus = f64::from(self.cpus.max(1));
        let speed = f64::from(self.speed.max(1));
        self.load / cpus * f64::from(reference_speed.max(1)) / speed
    }
}

/// Liveness of a node as seen by the node answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Heard of, but not yet heard from often enough to be judged alive.
    Joining,
    /// Heard from recently.
    Alive,
    /// Said goodbye when it stopped.
    Left,
    /// Stopped being heard from without saying goodbye (failure detector).
    Dead,
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeState::Joining => "joining",
            NodeState::Alive => "alive",
            NodeState::Left => "left",
            NodeState::Dead => "dead",
        })
    }
}

/// One row of `mosaic nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Node name, unique in the cluster (`node1`, a host name, ...).
    pub name: String,
    /// Address peers gossip with.
    pub addr: String,
    /// Alive, left or dead.
    pub state: NodeState,
    /// Incremented each time the node restarts.
    pub generation: u64,
    /// Whether this row describes the node that answered.
    pub is_self: bool,
    /// Last load vector heard from the node, if any.
    pub load: Option<LoadVector>,
    /// Where its web view answers (`http://ADDR/`); empty: it serves none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub web: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_load_divides_by_cpus_and_speed() {
        let v = LoadVector {
            load: 2.0,
            cpus: 2,
            speed: 2000,
            mem_total: 1,
            mem_free: 1,
            guests: 0,
            accepts_guests: true,
            ..Default::default()
        };
        assert_eq!(v.normalized_load(1000), 0.5);
        assert_eq!(v.normalized_load(2000), 1.0);
    }
}
