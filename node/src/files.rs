//! This node's files for its peers: its export (`export` in mosaicd.toml,
//! `/` by default) served over 9P2000.L on the cluster's authenticated
//! channel, TCP on the gossip port + 1, one thread per peer connection;
//! and the client side, to read another node's files.
//!
//! Each 9P message travels in one frame of the channel (no size prefix:
//! the frame has its length), so only peers holding the cluster key reach
//! the server, and every message is authenticated.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use mosaic_proto::ClusterKey;
use mosaic_ssi_fs::client::{Client, Transport};
use mosaic_ssi_fs::export::Export;
use tracing::{info, warn};

use crate::net::AuthStream;

/// Where a node whose gossip address is `listen` serves its files.
pub fn fs_addr(listen: SocketAddr) -> SocketAddr {
    SocketAddr::new(listen.ip(), listen.port().wrapping_add(1))
}

/// Starts serving `export` to peers on `addr`.
pub fn serve(addr: SocketAddr, key: ClusterKey, export: Export) -> anyhow::Result<()> {
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
                let (key, export) = (key.clone(), export.clone());
                let peer = conn.peer_addr().map(|a| a.to_string()).unwrap_or_default();
                let spawned = std::thread::Builder::new()
                    .name("files".into())
                    .spawn(move || {
                        let mut link = match AuthStream::accept_tcp(conn, &key) {
                            Ok(l) => l,
                            Err(e) => {
                                warn!(from = %peer, error = %e, "refused a file connection");
                                return;
                            }
                        };
                        let mut session = mosaic_ssi_fs::server::Session::new(export);
                        while let Ok(msg) = link.recv() {
                            let Ok(answer) = session.answer_message(&msg) else {
                                break;
                            };
                            if link.send(&answer).is_err() {
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
pub struct Frames(pub AuthStream<TcpStream>);

impl Transport for Frames {
    fn send(&mut self, msg: &[u8]) -> std::io::Result<()> {
        self.0.send(msg).map_err(std::io::Error::other)
    }
    fn recv(&mut self) -> std::io::Result<Vec<u8>> {
        self.0.recv().map_err(std::io::Error::other)
    }
}

/// A 9P client of the node whose gossip address is `listen`.
pub fn connect(listen: SocketAddr, key: &ClusterKey) -> anyhow::Result<Client<Frames>> {
    let addr = fs_addr(listen);
    let link = AuthStream::connect_tcp(addr, key)
        .map_err(|e| anyhow::anyhow!("cannot reach the files of {addr}: {e}"))?;
    Ok(Client::new(Frames(link), 1 << 20)?)
}
