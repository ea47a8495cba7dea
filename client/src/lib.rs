//! # mosaic-client: talking to a node's daemon
//!
//! `mosaicd` answers on a local control socket (`/run/mosaic/mosaicd.sock`,
//! mode 0600): one JSON request per line, one JSON response per line
//! ([`mosaic_proto::control`]). This crate is the client side, typed: each
//! request is a method that returns what its answer carries, a daemon's
//! refusal is [`ClientError::Refused`] with its message, and an answer of
//! the wrong kind is [`ClientError::Unexpected`]. `mosaic`, `mosh` and the
//! tests share it; it needs nothing of the daemon.
//!
//! It also knows where the local cluster's nodes keep their sockets
//! ([`node_socket`], [`local_sockets`]), so that a command run on the
//! host finds the cluster `mosaic cluster up` started.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mosaic_proto::control::{Hint, MfsStatus, NodeAction, NodeControls, ProcInfo};
use mosaic_proto::image::CpuTime;
use mosaic_proto::{ControlRequest, ControlResponse, LoadVector, NodeInfo};
use thiserror::Error;

/// Default path of the control socket.
pub const DEFAULT_SOCKET: &str = "/run/mosaic/mosaicd.sock";
/// Default state directory of the local cluster.
pub const DEFAULT_CLUSTER_DIR: &str = "/var/lib/mosaic/cluster";
/// The file `mosaic cluster up` records the local cluster in.
pub const CLUSTER_STATE_FILE: &str = "cluster.json";

/// Why a request to a daemon did not get its answer.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error(
        "no mosaicd is running here (nothing answers on {socket}) and no local cluster is up in {cluster_dir}; start one with `mosaic cluster up --nodes 3`, or run `mosaicd --config FILE`"
    )]
    NoDaemon {
        socket: PathBuf,
        cluster_dir: PathBuf,
    },
    #[error(
        "cannot reach mosaicd at {socket}: {source}; is it running? (`mosaic cluster status` for a local cluster)"
    )]
    Connect {
        socket: PathBuf,
        source: std::io::Error,
    },
    #[error("mosaicd at {socket} did not answer: {detail}")]
    Protocol { socket: PathBuf, detail: String },
    /// The daemon served the request and said no.
    #[error("{message}")]
    Refused { message: String },
    #[error("mosaicd at {socket} answered {request} with {got}")]
    Unexpected {
        socket: PathBuf,
        request: &'static str,
        got: String,
    },
}

/// Where a process runs after [`Client::migrate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    /// It runs on `node` as `guest_pid` there (or at home again).
    To {
        pid: i32,
        node: String,
        guest_pid: i32,
    },
    /// `balance` found no node that runs it better: it stays on `node`.
    Stays { pid: i32, node: String },
}

/// What [`Client::status`] tells of the node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeStatus {
    pub name: String,
    pub addr: String,
    pub load: LoadVector,
}

/// A connection to one daemon's control socket.
pub struct Client {
    socket: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

/// Answers of one kind, or the error that says why not.
macro_rules! expect {
    ($self:ident, $req:expr, $name:literal, $pat:pat => $out:expr) => {
        match $self.request(&$req)? {
            $pat => Ok($out),
            ControlResponse::Error { message } => Err(ClientError::Refused { message }),
            other => Err(ClientError::Unexpected {
                socket: $self.socket.clone(),
                request: $name,
                got: format!("{other:?}"),
            }),
        }
    };
}

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            socket: path.to_owned(),
            source,
        })?;
        let proto_err = |e: std::io::Error| ClientError::Protocol {
            socket: path.to_owned(),
            detail: e.to_string(),
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(proto_err)?;
        let writer = stream.try_clone().map_err(proto_err)?;
        Ok(Client {
            socket: path.to_owned(),
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Finds the daemon to talk to: `explicit` if given; else the default
    /// socket if a daemon answers there; else the first node of a local
    /// cluster in `cluster_dir` that answers.
    pub fn find(explicit: Option<&Path>, cluster_dir: &Path) -> Result<Client, ClientError> {
        if let Some(p) = explicit {
            return Client::connect(p);
        }
        let default = Path::new(DEFAULT_SOCKET);
        if let Ok(c) = Client::connect(default) {
            return Ok(c);
        }
        for socket in local_sockets(cluster_dir) {
            if let Ok(c) = Client::connect(&socket) {
                return Ok(c);
            }
        }
        Err(ClientError::NoDaemon {
            socket: default.to_owned(),
            cluster_dir: cluster_dir.to_owned(),
        })
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Waits up to `timeout` for each answer (10 s by default).
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), ClientError> {
        self.reader
            .get_ref()
            .set_read_timeout(Some(timeout))
            .map_err(|e| ClientError::Protocol {
                socket: self.socket.clone(),
                detail: e.to_string(),
            })
    }

    /// Sends one request and reads its response, whatever it is.
    pub fn request(&mut self, req: &ControlRequest) -> Result<ControlResponse, ClientError> {
        let proto_err = |detail: String| ClientError::Protocol {
            socket: self.socket.clone(),
            detail,
        };
        let mut line = serde_json::to_string(req).map_err(|e| proto_err(e.to_string()))?;
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .map_err(|e| proto_err(e.to_string()))?;
        let mut answer = String::new();
        let n = self
            .reader
            .read_line(&mut answer)
            .map_err(|e| proto_err(e.to_string()))?;
        if n == 0 {
            return Err(proto_err("connection closed".into()));
        }
        serde_json::from_str(&answer).map_err(|e| proto_err(format!("bad response: {e}")))
    }

    /// The cluster's nodes as this one sees them, sorted by name.
    pub fn nodes(&mut self) -> Result<Vec<NodeInfo>, ClientError> {
        expect!(self, ControlRequest::Nodes, "Nodes", ControlResponse::Nodes { nodes } => nodes)
    }

    /// This node's name, address and load.
    pub fn status(&mut self) -> Result<NodeStatus, ClientError> {
        expect!(self, ControlRequest::Status, "Status",
            ControlResponse::Status { name, addr, load } => NodeStatus { name, addr, load })
    }

    /// The managed processes of the cluster.
    pub fn ps(&mut self) -> Result<Vec<ProcInfo>, ClientError> {
        expect!(self, ControlRequest::Ps, "Ps", ControlResponse::Ps { procs } => procs)
    }

    /// Moves process `pid` of this node to `node` (`home`, `balance`, or
    /// a node's name).
    pub fn migrate(&mut self, pid: i32, node: &str) -> Result<Moved, ClientError> {
        let req = ControlRequest::Migrate {
            pid,
            node: node.to_string(),
        };
        match self.request(&req)? {
            ControlResponse::Migrated {
                pid,
                node,
                guest_pid,
            } => Ok(Moved::To {
                pid,
                node,
                guest_pid,
            }),
            ControlResponse::Stays { pid, node } => Ok(Moved::Stays { pid, node }),
            ControlResponse::Error { message } => Err(ClientError::Refused { message }),
            other => Err(ClientError::Unexpected {
                socket: self.socket.clone(),
                request: "Migrate",
                got: format!("{other:?}"),
            }),
        }
    }

    /// Hands process `pid` to the daemon (`lock`: never moved
    /// automatically; `hint`: what it is expected to do).
    pub fn manage(&mut self, pid: i32, lock: bool, hint: Hint) -> Result<i32, ClientError> {
        expect!(self, ControlRequest::Manage { pid, lock, hint }, "Manage",
            ControlResponse::Managed { pid } => pid)
    }

    /// A node control (`Show` only reads them): the controls after it, and
    /// what it set in motion, for a human.
    pub fn node(&mut self, action: NodeAction) -> Result<(NodeControls, String), ClientError> {
        expect!(self, ControlRequest::Node { action }, "Node",
            ControlResponse::Node { controls, message } => (controls, message))
    }

    /// This node's /mfs.
    pub fn mfs(&mut self) -> Result<MfsStatus, ClientError> {
        expect!(self, ControlRequest::Mfs, "Mfs", ControlResponse::Mfs { status } => status)
    }

    /// The CPU time that the ended descendants of `pid` used on other
    /// nodes (which `getrusage(RUSAGE_CHILDREN)` of `pid` lacks).
    pub fn children_cpu(&mut self, pid: i32) -> Result<CpuTime, ClientError> {
        expect!(self, ControlRequest::ChildrenCpu { pid }, "ChildrenCpu",
            ControlResponse::ChildrenCpu { cpu, .. } => cpu)
    }

    /// The address of this node's web view, with its token.
    pub fn web(&mut self) -> Result<String, ClientError> {
        expect!(self, ControlRequest::Web, "Web", ControlResponse::Web { url } => url)
    }
}

/// The control socket of local node `name` in `cluster_dir`, as the host
/// sees it (each node bind-mounts `<dir>/<name>/run` on `/run/mosaic`).
pub fn node_socket(cluster_dir: &Path, name: &str) -> PathBuf {
    cluster_dir.join(name).join("run").join("mosaicd.sock")
}

/// The control sockets of the local cluster's nodes in `cluster_dir`, in
/// its order (empty if none was started there).
pub fn local_sockets(cluster_dir: &Path) -> Vec<PathBuf> {
    #[derive(serde::Deserialize)]
    struct Node {
        name: String,
    }
    #[derive(serde::Deserialize)]
    struct State {
        nodes: Vec<Node>,
    }
    std::fs::read_to_string(cluster_dir.join(CLUSTER_STATE_FILE))
        .ok()
        .and_then(|text| serde_json::from_str::<State>(&text).ok())
        .map(|s| {
            s.nodes
                .iter()
                .map(|n| node_socket(cluster_dir, &n.name))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A daemon that answers every request with `answer`.
    fn fake_daemon(name: &str, answer: &'static str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("mosaic-client-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut w = stream;
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    let _ = w.write_all(answer.as_bytes());
                    line.clear();
                }
            }
        });
        path
    }

    #[test]
    fn answers_come_typed_and_refusals_carry_the_daemons_words() {
        let ok = fake_daemon("ok", "{\"response\":\"ps\",\"procs\":[]}\n");
        let mut c = Client::connect(&ok).unwrap();
        assert!(c.ps().unwrap().is_empty());
        match c.nodes() {
            Err(ClientError::Unexpected {
                request: "Nodes",
                got,
                ..
            }) => {
                assert!(got.contains("Ps"), "{got}")
            }
            other => panic!("expected Unexpected, got {other:?}"),
        }
        let no = fake_daemon(
            "no",
            "{\"response\":\"error\",\"message\":\"no process 42 here\"}\n",
        );
        let mut c = Client::connect(&no).unwrap();
        match c.migrate(42, "node2") {
            Err(ClientError::Refused { message }) => assert_eq!(message, "no process 42 here"),
            other => panic!("expected Refused, got {other:?}"),
        }
        let garbage = fake_daemon("garbage", "not json\n");
        assert!(matches!(
            Client::connect(&garbage).unwrap().ps(),
            Err(ClientError::Protocol { .. })
        ));
    }

    #[test]
    fn the_local_clusters_sockets_come_from_its_state_file() {
        let dir = std::env::temp_dir().join(format!("mosaic-client-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(local_sockets(&dir).is_empty());
        std::fs::write(
            dir.join(CLUSTER_STATE_FILE),
            r#"{"port":7946,"nodes":[{"name":"node1","index":1},{"name":"node2","index":2}]}"#,
        )
        .unwrap();
        assert_eq!(
            local_sockets(&dir),
            vec![
                dir.join("node1/run/mosaicd.sock"),
                dir.join("node2/run/mosaicd.sock")
            ]
        );
        match Client::find(None, &dir) {
            // (Unless a daemon runs on this machine's default socket.)
            Err(ClientError::NoDaemon { cluster_dir, .. }) => assert_eq!(cluster_dir, dir),
            Err(e) => panic!("{e}"),
            Ok(_) => {}
        }
    }
}
