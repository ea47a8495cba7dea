//! Authenticated node-to-node streams.
//!
//! Every stream channel between nodes (migration images, deputy traffic, 9P)
//! goes through [`AuthStream`]: a handshake in which both ends prove they
//! hold the cluster key over fresh nonces, then length-prefixed frames each
//! tagged with a per-connection key, a direction and a sequence number, so a
//! frame cannot be forged, replayed or reordered. The arithmetic lives in
//! [`mosaic_proto::auth`]; this module does the I/O.

use std::time::Duration;

use mosaic_proto::auth::{
    AuthError, ClusterKey, FrameKey, KEY_LEN, Role, TAG_LEN, check_stream_proof, stream_proof,
};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// First bytes of a stream handshake.
const HELLO_MAGIC: &[u8; 4] = b"MSH1";
/// Largest frame accepted (bigger payloads are split by the caller).
pub const MAX_FRAME: usize = 16 << 20;
/// How long a peer may take to complete the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a stream failed.
#[derive(Debug, Error)]
pub enum ChannelError {
    #[error("peer is not a mosaic node (bad hello)")]
    NotMosaic,
    #[error("peer refused or failed authentication: {0}")]
    Auth(#[from] AuthError),
    #[error("peer took longer than {HANDSHAKE_TIMEOUT:?} to authenticate")]
    Timeout,
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A stream whose every frame is authenticated.
pub struct AuthStream<S> {
    inner: S,
    key: FrameKey,
    role: Role,
    send_seq: u64,
    recv_seq: u64,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AuthStream<S> {
    /// Authenticates the connecting side.
    pub async fn connect(inner: S, key: &ClusterKey) -> Result<Self, ChannelError> {
        Self::handshake(inner, key, Role::Initiator).await
    }

    /// Authenticates the accepting side.
    pub async fn accept(inner: S, key: &ClusterKey) -> Result<Self, ChannelError> {
        Self::handshake(inner, key, Role::Responder).await
    }

    async fn handshake(mut inner: S, key: &ClusterKey, role: Role) -> Result<Self, ChannelError> {
        let run = async {
            let mut own = [0u8; KEY_LEN];
            getrandom::fill(&mut own).map_err(|e| std::io::Error::other(e.to_string()))?;
            let mut hello = Vec::with_capacity(4 + KEY_LEN);
            hello.extend_from_slice(HELLO_MAGIC);
            hello.extend_from_slice(&own);
            inner.write_all(&hello).await?;
            let mut peer_hello = [0u8; 4 + KEY_LEN];
            inner.read_exact(&mut peer_hello).await?;
            if &peer_hello[..4] != HELLO_MAGIC {
                return Err(ChannelError::NotMosaic);
            }
            let mut peer = [0u8; KEY_LEN];
            peer.copy_from_slice(&peer_hello[4..]);
            inner
                .write_all(&stream_proof(key, role, &own, &peer))
                .await?;
            let mut proof = [0u8; TAG_LEN];
            inner.read_exact(&mut proof).await?;
            check_stream_proof(key, role, &own, &peer, &proof)?;
            let (ni, nr) = match role {
                Role::Initiator => (own, peer),
                Role::Responder => (peer, own),
            };
            Ok::<_, ChannelError>(FrameKey::derive(key, &ni, &nr))
        };
        let key = tokio::time::timeout(HANDSHAKE_TIMEOUT, run)
            .await
            .map_err(|_| ChannelError::Timeout)??;
        Ok(AuthStream {
            inner,
            key,
            role,
            send_seq: 0,
            recv_seq: 0,
        })
    }

    /// Sends one frame.
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), ChannelError> {
        if payload.len() > MAX_FRAME {
            return Err(ChannelError::TooLarge(payload.len()));
        }
        let tag = self.key.tag(self.role, self.send_seq, payload);
        self.send_seq += 1;
        self.inner
            .write_all(&(payload.len() as u32).to_le_bytes())
            .await?;
        self.inner.write_all(payload).await?;
        self.inner.write_all(&tag).await?;
        self.inner.flush().await?;
        Ok(())
    }

    /// Receives one frame.
    pub async fn recv(&mut self) -> Result<Vec<u8>, ChannelError> {
        let mut len = [0u8; 4];
        self.inner.read_exact(&mut len).await?;
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(ChannelError::TooLarge(len));
        }
        let mut payload = vec![0u8; len];
        self.inner.read_exact(&mut payload).await?;
        let mut tag = [0u8; TAG_LEN];
        self.inner.read_exact(&mut tag).await?;
        self.key
            .check(self.role.peer(), self.recv_seq, &payload, &tag)?;
        self.recv_seq += 1;
        Ok(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> ClusterKey {
        ClusterKey::from_bytes([b; KEY_LEN])
    }

    #[tokio::test]
    async fn frames_flow_both_ways_with_the_same_key() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let k = key(1);
        let k2 = k.clone();
        let server = tokio::spawn(async move {
            let mut s = AuthStream::accept(b, &k2).await.unwrap();
            let got = s.recv().await.unwrap();
            s.send(&got.iter().rev().copied().collect::<Vec<_>>())
                .await
                .unwrap();
        });
        let mut c = AuthStream::connect(a, &k).await.unwrap();
        c.send(b"abc").await.unwrap();
        assert_eq!(c.recv().await.unwrap(), b"cba");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_wrong_key_is_refused_on_both_sides() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let server = tokio::spawn(async move { AuthStream::accept(b, &key(2)).await.err() });
        let client = AuthStream::connect(a, &key(3)).await.err();
        assert!(
            matches!(client, Some(ChannelError::Auth(AuthError::BadTag))),
            "{client:?}"
        );
        assert!(server.await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_tampered_frame_is_refused() {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        // Hand-run the responder so we can corrupt its first frame.
        let k = key(4);
        let k2 = k.clone();
        let client = tokio::spawn(async move {
            let mut c = AuthStream::connect(a, &k2).await.unwrap();
            c.recv().await
        });
        let mut own = [9u8; KEY_LEN];
        own[0] = 1;
        let mut hello = [0u8; 4 + KEY_LEN];
        b.read_exact(&mut hello).await.unwrap();
        let peer: [u8; KEY_LEN] = hello[4..].try_into().unwrap();
        b.write_all(HELLO_MAGIC).await.unwrap();
        b.write_all(&own).await.unwrap();
        let mut proof = [0u8; TAG_LEN];
        b.read_exact(&mut proof).await.unwrap();
        b.write_all(&stream_proof(&k, Role::Responder, &own, &peer))
            .await
            .unwrap();
        let fk = FrameKey::derive(&k, &peer, &own);
        let tag = fk.tag(Role::Responder, 0, b"good");
        b.write_all(&4u32.to_le_bytes()).await.unwrap();
        b.write_all(b"evil").await.unwrap();
        b.write_all(&tag).await.unwrap();
        let got = client.await.unwrap();
        assert!(
            matches!(got, Err(ChannelError::Auth(AuthError::BadTag))),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn a_silent_peer_times_out_instead_of_hanging() {
        tokio::time::pause();
        let (a, _b) = tokio::io::duplex(1 << 16);
        let r = AuthStream::connect(a, &key(5)).await;
        assert!(matches!(r, Err(ChannelError::Timeout)), "{:?}", r.err());
    }
}
