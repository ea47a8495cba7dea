//! The local control socket: the daemon's server side and the CLI's client.
//!
//! One JSON request per line, one JSON response per line
//! ([`mosaic_proto::control`]). The socket is made mode 0600: only root (the
//! owner) may steer the daemon.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mosaic_proto::{ControlRequest, ControlResponse};
use thiserror::Error;

/// Why the CLI could not talk to a daemon.
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
}

/// A connection to one daemon's control socket.
pub struct Client {
    socket: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            socket: path.to_owned(),
            source,
        })?;
        let timeout = Some(Duration::from_secs(10));
        let proto_err = |e: std::io::Error| ClientError::Protocol {
            socket: path.to_owned(),
            detail: e.to_string(),
        };
        stream.set_read_timeout(timeout).map_err(proto_err)?;
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
        let default = Path::new(crate::DEFAULT_SOCKET);
        if let Ok(c) = Client::connect(default) {
            return Ok(c);
        }
        if let Ok(cluster) = crate::local::ClusterState::load(cluster_dir) {
            for node in &cluster.nodes {
                if let Ok(c) = Client::connect(&node.socket_path(cluster_dir)) {
                    return Ok(c);
                }
            }
        }
        Err(ClientError::NoDaemon {
            socket: default.to_owned(),
            cluster_dir: cluster_dir.to_owned(),
        })
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

    /// Sends one request and reads its response.
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
}

/// Serves the control socket until the listener fails; `handle` answers
/// each request.
pub async fn serve<F, Fut>(listener: tokio::net::UnixListener, handle: F)
where
    F: Fn(ControlRequest) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ControlResponse> + Send,
{
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut lines = tokio::io::BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let response = match serde_json::from_str::<ControlRequest>(&line) {
                    Ok(req) => handle(req).await,
                    Err(e) => ControlResponse::Error {
                        message: format!("malformed request: {e}"),
                    },
                };
                let mut out = serde_json::to_string(&response).expect("responses serialize");
                out.push('\n');
                if w.write_all(out.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Binds the control socket at `path` (mode 0600), replacing a stale socket
/// file but refusing to steal one a live daemon answers on.
pub fn bind(path: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    use anyhow::Context;
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another mosaicd already answers on {}; stop it first or set control_socket",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale socket {}", path.display()))?;
    }
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("cannot bind control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    Ok(listener)
}
