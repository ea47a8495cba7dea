//! Authenticated node-to-node streams.
//!
//! Every stream channel between nodes (migration images and forwarded
//! calls now, 9P later) goes through [`AuthStream`]: a handshake in which
//! both ends prove they hold the cluster key over fresh nonces, then
//! length-prefixed frames each tagged with a per-connection key, a
//! direction and a sequence number, so a frame cannot be forged, replayed
//! or reordered. The arithmetic lives in [`mosaic_proto::auth`]; this module
//! does the I/O. It is blocking on purpose: the ends of a migration are
//! ptrace threads (a tracee must be handled by the thread that attached it),
//! never async tasks.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use mosaic_proto::auth::{
    AuthError, ClusterKey, FrameKey, KEY_LEN, Role, TAG_LEN, check_stream_proof, stream_proof,
};
use mosaic_proto::migrate::{Link, LinkError, LinkRecv, LinkSend, Queue};
use thiserror::Error;

/// First bytes of a stream handshake (2: frames tagged with BLAKE3).
const HELLO_MAGIC: &[u8; 4] = b"MSH2";
/// Largest frame accepted (bigger payloads are split by the caller).
pub const MAX_FRAME: usize = 16 << 20;
/// Frames up to this size are sent with one write.
const SMALL_FRAME: usize = 64 << 10;
/// How long a peer may take to complete the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a stream failed.
#[derive(Debug, Error)]
pub enum ChannelError {
    #[error(
        "peer is not a mosaic node of this version (bad hello): run the same mosaic on every node"
    )]
    NotMosaic,
    #[error("peer refused or failed authentication: {0}")]
    Auth(#[from] AuthError),
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

impl AuthStream<TcpStream> {
    /// Connects to `addr` and authenticates, within `HANDSHAKE_TIMEOUT`.
    pub fn connect_tcp(addr: std::net::SocketAddr, key: &ClusterKey) -> Result<Self, ChannelError> {
        let s = TcpStream::connect_timeout(&addr, HANDSHAKE_TIMEOUT)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        let a = AuthStream::connect(s, key)?;
        a.inner.set_read_timeout(None)?;
        Ok(a)
    }

    /// Authenticates an accepted connection, within `HANDSHAKE_TIMEOUT`.
    pub fn accept_tcp(s: TcpStream, key: &ClusterKey) -> Result<Self, ChannelError> {
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        let a = AuthStream::accept(s, key)?;
        a.inner.set_read_timeout(None)?;
        Ok(a)
    }
}

impl AuthStream<TcpStream> {
    /// The same channel, read and written through buffers (many small
    /// frames then cost one system call, not three each).
    pub fn buffered(self) -> std::io::Result<AuthStream<BufTcp>> {
        let write = self.inner.try_clone()?;
        Ok(AuthStream {
            inner: BufTcp {
                read: std::io::BufReader::with_capacity(BUF, self.inner),
                write: std::io::BufWriter::with_capacity(BUF, write),
            },
            key: self.key,
            role: self.role,
            send_seq: self.send_seq,
            recv_seq: self.recv_seq,
        })
    }
}

/// Buffer size of a [`BufTcp`] each way (larger frames bypass it).
const BUF: usize = 256 << 10;

/// A TCP stream read and written through buffers.
pub struct BufTcp {
    read: std::io::BufReader<TcpStream>,
    write: std::io::BufWriter<TcpStream>,
}

impl Read for BufTcp {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.read.read(buf)
    }
}

impl Write for BufTcp {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.write.flush()
    }
}

impl AuthStream<BufTcp> {
    /// Whether more input is already buffered (a server answering a batch
    /// flushes its answers once it has read them all).
    pub fn input_buffered(&self) -> bool {
        !self.inner.read.buffer().is_empty()
    }

    /// How long a read or a write may wait before it fails.
    pub fn set_timeout(&self, limit: Option<Duration>) -> std::io::Result<()> {
        let s = self.inner.read.get_ref();
        s.set_read_timeout(limit)?;
        s.set_write_timeout(limit)
    }
}

impl<S: Read + Write> AuthStream<S> {
    /// Authenticates the connecting side.
    pub fn connect(inner: S, key: &ClusterKey) -> Result<Self, ChannelError> {
        Self::handshake(inner, key, Role::Initiator)
    }

    /// Authenticates the accepting side.
    pub fn accept(inner: S, key: &ClusterKey) -> Result<Self, ChannelError> {
        Self::handshake(inner, key, Role::Responder)
    }

    fn handshake(mut inner: S, key: &ClusterKey, role: Role) -> Result<Self, ChannelError> {
        let mut own = [0u8; KEY_LEN];
        getrandom::fill(&mut own).map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut hello = Vec::with_capacity(4 + KEY_LEN);
        hello.extend_from_slice(HELLO_MAGIC);
        hello.extend_from_slice(&own);
        inner.write_all(&hello)?;
        let mut peer_hello = [0u8; 4 + KEY_LEN];
        inner.read_exact(&mut peer_hello)?;
        if &peer_hello[..4] != HELLO_MAGIC {
            return Err(ChannelError::NotMosaic);
        }
        let mut peer = [0u8; KEY_LEN];
        peer.copy_from_slice(&peer_hello[4..]);
        inner.write_all(&stream_proof(key, role, &own, &peer))?;
        let mut proof = [0u8; TAG_LEN];
        inner.read_exact(&mut proof)?;
        check_stream_proof(key, role, &own, &peer, &proof)?;
        let (ni, nr) = match role {
            Role::Initiator => (own, peer),
            Role::Responder => (peer, own),
        };
        Ok(AuthStream {
            inner,
            key: FrameKey::derive(key, &ni, &nr),
            role,
            send_seq: 0,
            recv_seq: 0,
        })
    }

    /// Sends one frame.
    pub fn send(&mut self, payload: &[u8]) -> Result<(), ChannelError> {
        self.queue(payload)?;
        self.inner.flush()?;
        Ok(())
    }

    /// Sends what [`Self::queue`] left in a buffered stream's buffer.
    pub fn flush(&mut self) -> Result<(), ChannelError> {
        self.inner.flush()?;
        Ok(())
    }

    /// Writes one frame without flushing the stream (on a buffered stream:
    /// frames sent together go in one write; [`Self::flush`] after).
    pub fn queue(&mut self, payload: &[u8]) -> Result<(), ChannelError> {
        write_frame(
            &mut self.inner,
            &self.key,
            self.role,
            &mut self.send_seq,
            payload,
        )
    }

    /// Receives one frame.
    pub fn recv(&mut self) -> Result<Vec<u8>, ChannelError> {
        read_frame(&mut self.inner, &self.key, self.role, &mut self.recv_seq)
    }
}

/// Writes frame number `seq` (then counted) of `role` to `w`.
fn write_frame(
    w: &mut impl Write,
    key: &FrameKey,
    role: Role,
    seq: &mut u64,
    payload: &[u8],
) -> Result<(), ChannelError> {
    if payload.len() > MAX_FRAME {
        return Err(ChannelError::TooLarge(payload.len()));
    }
    let tag = key.tag(role, *seq, payload);
    *seq += 1;
    let len = u32::try_from(payload.len())
        .map_err(|_| ChannelError::TooLarge(payload.len()))?
        .to_le_bytes();
    if payload.len() <= SMALL_FRAME {
        // One write for the small frames of forwarded calls.
        let mut frame = Vec::with_capacity(4 + payload.len() + TAG_LEN);
        frame.extend_from_slice(&len);
        frame.extend_from_slice(payload);
        frame.extend_from_slice(&tag);
        w.write_all(&frame)?;
    } else {
        // Large frames (image chunks) are not copied again.
        w.write_all(&len)?;
        w.write_all(payload)?;
        w.write_all(&tag)?;
    }
    Ok(())
}

/// Reads frame number `seq` (then counted) of `role`'s peer from `r`.
fn read_frame(
    r: &mut impl Read,
    key: &FrameKey,
    role: Role,
    seq: &mut u64,
) -> Result<Vec<u8>, ChannelError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(ChannelError::TooLarge(len));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    let mut tag = [0u8; TAG_LEN];
    r.read_exact(&mut tag)?;
    key.check(role.peer(), *seq, &payload, &tag)?;
    *seq += 1;
    Ok(payload)
}

/// One half of a TCP [`AuthStream`] ([`Link::halves`]): the stream, shared
/// (`&TcpStream` reads and writes), and its own direction's sequence
/// number. [`Link::halves`] hands one out as [`LinkRecv`], the other as
/// [`LinkSend`].
struct Half<'a> {
    stream: &'a TcpStream,
    key: &'a FrameKey,
    role: Role,
    seq: &'a mut u64,
}

impl LinkSend for Half<'_> {
    fn send_bytes(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        let mut w = self.stream;
        let sent = write_frame(&mut w, self.key, self.role, self.seq, frame);
        sent.map_err(|e| link_error(e, self.stream.write_timeout().ok().flatten()))
    }
}

impl LinkRecv for Half<'_> {
    fn recv_bytes(&mut self) -> Result<Vec<u8>, LinkError> {
        let mut r = self.stream;
        let got = read_frame(&mut r, self.key, self.role, self.seq);
        got.map_err(|e| link_error(e, self.stream.read_timeout().ok().flatten()))
    }
    fn readable(&mut self, timeout: Duration) -> Result<bool, LinkError> {
        poll_in(self.stream, timeout)
    }
}

/// Whether `s` has input within `timeout`.
fn poll_in(s: &TcpStream, timeout: Duration) -> Result<bool, LinkError> {
    use std::os::fd::AsFd;
    let mut fds = [nix::poll::PollFd::new(
        s.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let ms = nix::poll::PollTimeout::try_from(timeout).unwrap_or(nix::poll::PollTimeout::MAX);
    match nix::poll::poll(&mut fds, ms) {
        Ok(n) => Ok(n > 0),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(e) => Err(LinkError::Io(e.to_string())),
    }
}

fn link_error(e: ChannelError, stall: Option<Duration>) -> LinkError {
    use std::io::ErrorKind::{TimedOut, UnexpectedEof, WouldBlock};
    match e {
        ChannelError::Io(io) if io.kind() == UnexpectedEof => LinkError::Closed,
        ChannelError::Io(io) if matches!(io.kind(), WouldBlock | TimedOut) => {
            LinkError::Stalled(stall.unwrap_or_default())
        }
        other => LinkError::Io(other.to_string()),
    }
}

impl Link for AuthStream<TcpStream> {
    fn send_bytes(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        let sent = self.send(frame);
        sent.map_err(|e| link_error(e, self.inner.write_timeout().ok().flatten()))
    }
    fn recv_bytes(&mut self) -> Result<Vec<u8>, LinkError> {
        let got = self.recv();
        got.map_err(|e| link_error(e, self.inner.read_timeout().ok().flatten()))
    }
    fn readable(&mut self, timeout: Duration) -> Result<bool, LinkError> {
        poll_in(&self.inner, timeout)
    }
    fn raw_fd(&self) -> Option<i32> {
        use std::os::fd::AsRawFd;
        Some(self.inner.as_raw_fd())
    }
    fn set_stall_timeout(&mut self, stall: Option<Duration>) -> Result<(), LinkError> {
        let io = |e: std::io::Error| LinkError::Io(e.to_string());
        self.inner.set_read_timeout(stall).map_err(io)?;
        self.inner.set_write_timeout(stall).map_err(io)
    }
    fn bound_queue(&mut self, way: Queue, bytes: usize) -> Result<(), LinkError> {
        use nix::sys::socket::{setsockopt, sockopt};
        let set = match way {
            Queue::Send => setsockopt(&self.inner, sockopt::SndBuf, &bytes),
            Queue::Receive => setsockopt(&self.inner, sockopt::RcvBuf, &bytes),
        };
        set.map_err(|e| LinkError::Io(format!("bounding the link's queue: {e}")))
    }
    fn splits(&self) -> bool {
        true
    }
    fn halves(&mut self) -> Option<(Box<dyn LinkRecv + '_>, Box<dyn LinkSend + '_>)> {
        // `&TcpStream` reads and writes: one thread may read while
        // another writes, each with its own sequence number.
        let AuthStream {
            inner,
            key,
            role,
            send_seq,
            recv_seq,
        } = self;
        let recv = Half {
            stream: inner,
            key,
            role: *role,
            seq: recv_seq,
        };
        let send = Half {
            stream: inner,
            key,
            role: *role,
            seq: send_seq,
        };
        Some((Box::new(recv), Box::new(send)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn key(b: u8) -> ClusterKey {
        ClusterKey::from_bytes([b; KEY_LEN])
    }

    #[test]
    fn frames_flow_both_ways_with_the_same_key() {
        let (a, b) = UnixStream::pair().unwrap();
        let k = key(1);
        let k2 = k.clone();
        let server = std::thread::spawn(move || {
            let mut s = AuthStream::accept(b, &k2).unwrap();
            let got = s.recv().unwrap();
            s.send(&got.iter().rev().copied().collect::<Vec<_>>())
                .unwrap();
        });
        let mut c = AuthStream::connect(a, &k).unwrap();
        c.send(b"abc").unwrap();
        assert_eq!(c.recv().unwrap(), b"cba");
        server.join().unwrap();
    }

    #[test]
    fn a_wrong_key_is_refused_on_both_sides() {
        let (a, b) = UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || AuthStream::accept(b, &key(2)).err());
        let client = AuthStream::connect(a, &key(3)).err();
        assert!(
            matches!(client, Some(ChannelError::Auth(AuthError::BadTag))),
            "{client:?}"
        );
        assert!(server.join().unwrap().is_some());
    }

    #[test]
    fn a_tampered_frame_is_refused() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let k = key(4);
        let k2 = k.clone();
        let client = std::thread::spawn(move || {
            let mut c = AuthStream::connect(a, &k2).unwrap();
            c.recv()
        });
        // Hand-run the responder so we can corrupt its first frame.
        let own = [9u8; KEY_LEN];
        let mut hello = [0u8; 4 + KEY_LEN];
        b.read_exact(&mut hello).unwrap();
        let peer: [u8; KEY_LEN] = hello[4..].try_into().unwrap();
        b.write_all(HELLO_MAGIC).unwrap();
        b.write_all(&own).unwrap();
        let mut proof = [0u8; TAG_LEN];
        b.read_exact(&mut proof).unwrap();
        b.write_all(&stream_proof(&k, Role::Responder, &own, &peer))
            .unwrap();
        let fk = FrameKey::derive(&k, &peer, &own);
        let tag = fk.tag(Role::Responder, 0, b"good");
        b.write_all(&4u32.to_le_bytes()).unwrap();
        b.write_all(b"evil").unwrap();
        b.write_all(&tag).unwrap();
        let got = client.join().unwrap();
        assert!(
            matches!(got, Err(ChannelError::Auth(AuthError::BadTag))),
            "{got:?}"
        );
    }

    #[test]
    fn a_silent_peer_times_out_instead_of_hanging() {
        let (a, _b) = UnixStream::pair().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let r = AuthStream::connect(a, &key(5));
        assert!(matches!(r, Err(ChannelError::Io(_))), "{:?}", r.err());
    }

    #[test]
    fn a_migration_link_that_stalls_fails_with_a_clear_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let link = AuthStream::accept_tcp(s, &key(6)).unwrap();
            // Says nothing, and holds the connection open.
            std::thread::sleep(Duration::from_millis(800));
            drop(link);
        });
        let mut link = AuthStream::connect_tcp(addr, &key(6)).unwrap();
        link.set_stall_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let r = link.recv_bytes();
        assert!(matches!(r, Err(LinkError::Stalled(_))), "{r:?}");
        assert!(r.unwrap_err().to_string().contains("no progress"));
        server.join().unwrap();
    }
}
